//! The registry: what the receiver's log says about the fleet.
//!
//! The hash-chained log of `spawn-elite receive` stays the source of truth.
//! Beside it the registry keeps an SQLite index ([`index`]), updated in the
//! step that appends a line and caught up (or rebuilt) from the log at
//! start, so that "which repositories exist, from which template set and
//! version, and which are behind" is one query instead of a read of the
//! whole log. The index is never trusted over the log: a line it cannot
//! parse is reported and skipped in the index, never in the log.
//!
//! - [`event`]: one log line read as a fleet event.
//! - [`index`]: the SQLite index and its queries.
//! - [`filter`]: the query parameters of `GET /v1/repos`.
//! - [`version`]: template-set versions compared as versions.
//! - [`catalog`]: the fleet as Backstage catalog entities.
//! - [`page`]: the fleet page (server-rendered HTML).
//! - [`client`]: reading a registry over HTTP (`spawn-elite registry`).
//!
//! The types below are the registry's answers, the same for the HTTP API
//! (`receive`), the CLI (`spawn-elite registry`) and the page.

pub mod catalog;
pub mod client;
pub mod event;
pub mod filter;
pub mod index;
pub mod page;
pub mod version;

use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

/// The version of the read API's JSON (`/v1/...`).
pub const API_VERSION: &str = "v1";

/// What happened to a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// The first receipt received for the repository's name.
    Spawn,
    /// A later receipt for the same name (another Merkle root).
    Update,
}

/// A template set as a receipt names it (receipt v2); v1 receipts name
/// none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetRef {
    pub name: String,
    pub version: String,
    pub digest: String,
}

/// One repository as the fleet sees it: its latest event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repo {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub elite: bool,
    /// The `org` template value of its latest receipt, when the set has one.
    pub org: Option<String>,
    /// The template set of its latest receipt.
    pub set: Option<SetRef>,
    pub merkle_root: String,
    pub last_event: EventKind,
    /// When the receiver accepted the latest event (RFC 3339).
    pub last_at: String,
    /// The key that signed the latest callback.
    pub keyid: String,
    /// Whether the latest event carried a signed attestation.
    pub signed: bool,
    /// How many events the log holds for it.
    pub events: u64,
}

/// One event in a repository's history, with what was received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The line's `seq` in the log.
    pub seq: u64,
    pub event: EventKind,
    pub received_at: String,
    pub keyid: String,
    pub merkle_root: String,
    pub set: Option<SetRef>,
    /// The receipt as received.
    pub receipt: serde_json::Value,
    /// The DSSE envelope, when the callback was signed provenance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<serde_json::Value>,
}

/// `GET /v1/repos/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepoDetail {
    pub repo: Repo,
    /// Oldest first.
    pub history: Vec<HistoryEntry>,
}

/// How many repositories are on one version of a set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionUse {
    pub version: String,
    pub repos: u64,
}

/// `GET /v1/sets`: one template set and the versions in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetUse {
    pub name: String,
    /// Newest version first (compared as versions).
    pub versions: Vec<VersionUse>,
    pub repos: u64,
}

/// `GET /v1/repos`: one page of repositories, ordered by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoPage {
    pub repos: Vec<Repo>,
    /// Pass as `after=` for the next page; `None` on the last one.
    pub next: Option<String>,
    /// How many repositories match the filter in all.
    pub total: u64,
}
