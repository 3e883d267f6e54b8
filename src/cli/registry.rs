//! `spawn-elite registry`: read a receiver's fleet registry.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Where the registry is and how to read it.
#[derive(Args, Debug, Clone)]
pub struct RegistryConn {
    /// The receiver's base URL (https, or http to loopback)
    #[arg(long, value_name = "URL", env = "SPAWN_ELITE_REGISTRY")]
    pub url: String,
    /// Sign each read with this private key: needed from another host, whose
    /// reads the receiver checks against its --readers directory
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
    /// Trust this CA bundle (PEM) instead of the system's
    #[arg(long = "ca-cert", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Allow plain http:// to a host other than loopback
    #[arg(long)]
    pub allow_insecure_http: bool,
    /// Seconds to wait for the answer
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u16).range(1..=3600))]
    pub timeout: u16,
}

#[derive(Debug, Subcommand)]
pub enum RegistryAction {
    /// One row per repository: type, template set and version, last event, signer
    ///
    /// For a rollout: `registry list --set NAME --behind VERSION` lists the
    /// repositories of that set on an older version.
    List {
        #[command(flatten)]
        conn: RegistryConn,
        /// Only repositories of this type (service, infra, tool)
        #[arg(long = "type", value_name = "TYPE")]
        kind: Option<String>,
        /// Only repositories spawned or last updated from this template set
        #[arg(long, value_name = "NAME")]
        set: Option<String>,
        /// Only repositories on exactly this version of their set
        #[arg(long, value_name = "VERSION")]
        version: Option<String>,
        /// Only repositories of --set on a version older than this one
        #[arg(long, value_name = "VERSION", requires = "set")]
        behind: Option<String>,
        /// Only repositories whose last event is at or after this time (RFC 3339)
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Rows a page (the API's limit); every page is fetched
        #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=1000))]
        page_size: u32,
    },
    /// One repository's history: its spawn, each update, their receipts
    Show {
        /// Repository name
        #[arg(value_name = "NAME")]
        name: String,
        #[command(flatten)]
        conn: RegistryConn,
    },
    /// Each template set in use, with how many repositories are on each version
    Sets {
        #[command(flatten)]
        conn: RegistryConn,
    },
}
