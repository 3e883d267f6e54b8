//! The read side of the receiver: the fleet registry's JSON API, its page,
//! and the operational endpoints, for `GET` and `HEAD`.
//!
//! | route               | answers                                        | who may read          |
//! |---------------------|------------------------------------------------|-----------------------|
//! | `/`                 | the fleet page (HTML)                          | loopback, or signed   |
//! | `/v1/repos`         | repositories, filtered and paged (JSON)        | loopback, or signed   |
//! | `/v1/repos/{name}`  | one repository's history (JSON)                | loopback, or signed   |
//! | `/v1/sets`          | template sets and versions in use (JSON)       | loopback, or signed   |
//! | `/v1/catalog`       | Backstage catalog entities (YAML)              | loopback, or signed   |
//! | `/healthz`          | the process is up                              | anyone                |
//! | `/readyz`           | the index has taken in every log line          | anyone                |
//! | `/metrics`          | OpenMetrics text for Prometheus                | anyone                |
//!
//! "Signed" is an RFC 9421 signature by a key of `--readers DIR` (see
//! [`super::verify::check_read`]); the operational endpoints reveal no
//! repository, so probes and scrapers need no key. See docs/REGISTRY.md.

use std::net::SocketAddr;

use serde::Serialize;

use super::state::State;
use super::verify;
use crate::callback::httpsig::RequestParts;
use crate::registry::filter::{self, Filter};
use crate::registry::{API_VERSION, catalog, page};

/// One read request, head only (reads have no body).
pub(super) struct Read {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    /// Who connected (the TCP peer, not a header a client can set).
    pub peer: SocketAddr,
    pub local: SocketAddr,
}

/// An answer: status, body and its type, and a line for the log.
pub(super) struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub note: String,
}

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const YAML: &str = "application/yaml";

/// What a path asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Page,
    Repos,
    Repo(String),
    Sets,
    Catalog,
    Health,
    Ready,
    Metrics,
}

impl Route {
    fn of(path: &str) -> Option<Route> {
        let prefix = format!("/{API_VERSION}/");
        Some(match path {
            "/" => Route::Page,
            "/healthz" => Route::Health,
            "/readyz" => Route::Ready,
            "/metrics" => Route::Metrics,
            p => match p.strip_prefix(prefix.as_str())? {
                "repos" => Route::Repos,
                "sets" => Route::Sets,
                "catalog" => Route::Catalog,
                rest => {
                    let name = rest.strip_prefix("repos/")?;
                    if name.is_empty() || name.contains('/') {
                        return None;
                    }
                    // A client may percent-encode the segment (RFC 3986):
                    // `al%70ha` names `alpha`.
                    let name = percent_encoding::percent_decode_str(name)
                        .decode_utf8()
                        .ok()?;
                    Route::Repo(name.into_owned())
                }
            },
        })
    }

    /// The route's label in the metrics (few, fixed values).
    fn label(&self) -> &'static str {
        match self {
            Route::Page => "page",
            Route::Repos => "repos",
            Route::Repo(_) => "repo",
            Route::Sets => "sets",
            Route::Catalog => "catalog",
            Route::Health => "healthz",
            Route::Ready => "readyz",
            Route::Metrics => "metrics",
        }
    }

    /// Whether the answer shows the fleet (and so needs a reader).
    fn shows_fleet(&self) -> bool {
        !matches!(self, Route::Health | Route::Ready | Route::Metrics)
    }
}

/// The metrics label of a path (`other` for what no route serves).
pub(super) fn route_label(path: &str) -> &'static str {
    Route::of(path).map_or("other", |r| r.label())
}

pub(super) fn answer(state: &State, read: Read) -> Reply {
    let Some(route) = Route::of(&read.path) else {
        return error(
            404,
            format!(
                "no such page: {}; the registry serves /, /{API_VERSION}/repos, /{API_VERSION}/repos/NAME, /{API_VERSION}/sets, /{API_VERSION}/catalog, /healthz, /readyz and /metrics",
                read.path
            ),
        );
    };
    // A read that carries a signature has it checked, even where reads are
    // open: a key that would be refused from another host is never
    // "working" on loopback.
    let signed = read.headers.iter().any(|(k, _)| {
        k.eq_ignore_ascii_case("signature-input") || k.eq_ignore_ascii_case("signature")
    });
    let open = state.loopback_reads_open && read.peer.ip().to_canonical().is_loopback() && !signed;
    if route.shows_fleet()
        && !open
        && let Err((status, why)) = verify::check_read(
            state,
            RequestParts {
                method: read.method.clone(),
                authority: String::new(),
                path: read.path.clone(),
                query: read.query.clone(),
                headers: read.headers.clone(),
            },
            read.peer.ip(),
            read.local,
        )
    {
        state.metrics.read_refused("signature");
        return error(status, why);
    }
    let result = match &route {
        Route::Health => Ok(text(200, "ok")),
        Route::Ready => Ok(ready(state)),
        Route::Metrics => {
            let (log, index) = positions(state);
            let body = state.metrics.render(log, index);
            Ok(Reply {
                status: 200,
                content_type: super::metrics::CONTENT_TYPE,
                body: body.into_bytes(),
                note: "metrics".to_owned(),
            })
        }
        Route::Repos => repos(state, read.query.as_deref()),
        Route::Repo(name) => repo(state, name),
        Route::Sets => sets(state),
        Route::Catalog => catalog(state),
        Route::Page => page(state, read.query.as_deref()),
    };
    result.unwrap_or_else(|e| {
        tracing::error!(error = %format!("{e:#}"), "the registry index failed");
        error(
            500,
            format!("the registry index failed: {e:#}; the log is intact, restart the receiver to rebuild the index"),
        )
    })
}

/// The log's line count and the index's.
fn positions(state: &State) -> (u64, u64) {
    let log = state.log.seq();
    let index = state.index().seq();
    (log, index)
}

fn ready(state: &State) -> Reply {
    let (log, index) = positions(state);
    if index >= log {
        text(
            200,
            format!("ready: the index has every one of {log} log lines"),
        )
    } else {
        text(
            503,
            format!(
                "not ready: the index has {index} of {log} log lines; it catches up at start (restart the receiver if this persists)"
            ),
        )
    }
}

fn repos(state: &State, query: Option<&str>) -> anyhow::Result<Reply> {
    let filter = match Filter::parse(query) {
        Ok(f) => f,
        Err(why) => return Ok(error(400, why)),
    };
    let page = state.index().repos(&filter)?;
    Ok(json(&page))
}

fn repo(state: &State, name: &str) -> anyhow::Result<Reply> {
    let found = state.index().repo(name)?;
    Ok(match found {
        Some(detail) => json(&detail),
        None => error(
            404,
            format!(
                "no repository named {name:?} has reported here; list them with GET /{API_VERSION}/repos"
            ),
        ),
    })
}

fn sets(state: &State) -> anyhow::Result<Reply> {
    let sets = state.index().sets()?;
    Ok(json(&serde_json::json!({ "sets": sets })))
}

/// Every repository, page by page (the index answers at most
/// [`filter::MAX_LIMIT`] at a time).
fn all_repos(state: &State, mut filter: Filter) -> anyhow::Result<Vec<crate::registry::Repo>> {
    filter.limit = filter::MAX_LIMIT;
    let mut all = Vec::new();
    loop {
        let page = state.index().repos(&filter)?;
        all.extend(page.repos);
        match page.next {
            Some(next) => filter.after = Some(next),
            None => return Ok(all),
        }
    }
}

fn catalog(state: &State) -> anyhow::Result<Reply> {
    let everything = Filter::parse(None).map_err(anyhow::Error::msg)?;
    let repos = all_repos(state, everything)?;
    Ok(Reply {
        status: 200,
        content_type: YAML,
        body: catalog::render(&repos)?.into_bytes(),
        note: format!("catalog of {} repositories", repos.len()),
    })
}

/// The page takes the API's filters too (`/?set=NAME&behind=V`); it shows
/// one page of repositories, the API pages through the rest.
fn page(state: &State, query: Option<&str>) -> anyhow::Result<Reply> {
    let filter = match Filter::parse(query) {
        Ok(f) => f,
        Err(why) => return Ok(error(400, why)),
    };
    let (repos, sets) = {
        let index = state.index();
        (index.repos(&filter)?, index.sets()?)
    };
    let now = jiff::Timestamp::now().to_string();
    let html = page::render(&repos, query, &sets, &now)?;
    Ok(Reply {
        status: 200,
        content_type: HTML,
        body: html.into_bytes(),
        note: format!(
            "page of {} of {} repositories",
            repos.repos.len(),
            repos.total
        ),
    })
}

fn json(value: &impl Serialize) -> Reply {
    match serde_json::to_vec_pretty(value) {
        Ok(mut body) => {
            body.push(b'\n');
            Reply {
                status: 200,
                content_type: JSON,
                body,
                note: "ok".to_owned(),
            }
        }
        Err(e) => error(500, format!("cannot encode the answer: {e}")),
    }
}

fn text(status: u16, message: impl Into<String>) -> Reply {
    let note: String = message.into();
    Reply {
        status,
        content_type: TEXT,
        body: format!("{note}\n").into_bytes(),
        note,
    }
}

/// A refusal, as JSON (`{"error": "..."}`) like every API answer.
pub(super) fn error(status: u16, message: impl Into<String>) -> Reply {
    let note: String = message.into();
    let mut body = serde_json::json!({ "error": note })
        .to_string()
        .into_bytes();
    body.push(b'\n');
    Reply {
        status,
        content_type: JSON,
        body,
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_told_apart_by_path() {
        let table = [
            ("/", Some(Route::Page)),
            ("/v1/repos", Some(Route::Repos)),
            ("/v1/repos/my-svc", Some(Route::Repo("my-svc".to_owned()))),
            ("/v1/repos/my%2Dsvc", Some(Route::Repo("my-svc".to_owned()))),
            ("/v1/repos/%FF", None),
            ("/v1/repos/", None),
            ("/v1/repos/a/b", None),
            ("/v1/sets", Some(Route::Sets)),
            ("/v1/catalog", Some(Route::Catalog)),
            ("/healthz", Some(Route::Health)),
            ("/readyz", Some(Route::Ready)),
            ("/metrics", Some(Route::Metrics)),
            ("/v2/repos", None),
            ("/index.html", None),
        ];
        for (path, want) in table {
            assert_eq!(Route::of(path), want, "{path}");
        }
        assert!(Route::Page.shows_fleet() && !Route::Metrics.shows_fleet());
    }
}
