//! The registry's questions, answered from the index: repositories by
//! filter and page, one repository's history (read from the log at the
//! offsets the index keeps), and the template sets in use.

use std::fs::File;
use std::os::unix::fs::FileExt as _;

use anyhow::{Result, anyhow};
use rusqlite::types::Value as Sql;
use rusqlite::{OptionalExtension as _, Row};

use super::schema::REPO_COLUMNS;
use super::{Index, db, io};
use crate::registry::event;
use crate::registry::filter::Filter;
use crate::registry::version;
use crate::registry::{
    EventKind, HistoryEntry, Repo, RepoDetail, RepoPage, SetRef, SetUse, VersionUse,
};

impl Index {
    /// One page of the repositories `f` selects, ordered by name.
    pub fn repos(&self, f: &Filter) -> Result<RepoPage> {
        let cannot = |e: rusqlite::Error| db("cannot query the registry index".to_owned(), e);
        let (conds, mut args) = conditions(f);
        let total: u64 = self
            .conn
            .prepare_cached(&format!("SELECT COUNT(*) FROM repos{}", where_sql(&conds)))
            .and_then(|mut s| s.query_row(rusqlite::params_from_iter(&args), |r| r.get(0)))
            .map_err(cannot)?;
        let mut page_conds = conds;
        if let Some(after) = &f.after {
            page_conds.push("name > ?");
            args.push(Sql::Text(after.clone()));
        }
        // One more than a page, to know whether there is a next one.
        args.push(Sql::Integer(i64::from(f.limit) + 1));
        // The names first, from an index alone where one covers the
        // filter; then the rows of just those.
        let sql = format!(
            "SELECT {REPO_COLUMNS} FROM repos WHERE name IN (SELECT name FROM repos{} ORDER BY name LIMIT ?) ORDER BY name",
            where_sql(&page_conds)
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(cannot)?;
        let mut repos = stmt
            .query_map(rusqlite::params_from_iter(&args), repo_of)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<Repo>>>())
            .map_err(cannot)?;
        let next = if repos.len() > f.limit as usize {
            repos.truncate(f.limit as usize);
            repos.last().map(|r| r.name.clone())
        } else {
            None
        };
        Ok(RepoPage { repos, next, total })
    }

    /// One repository and its history, oldest first; `None` if the log has
    /// no event for it. The history's lines are read from the log.
    pub fn repo(&self, name: &str) -> Result<Option<RepoDetail>> {
        let cannot = |e: rusqlite::Error| db("cannot query the registry index".to_owned(), e);
        let repo = self
            .conn
            .prepare_cached(&format!("SELECT {REPO_COLUMNS} FROM repos WHERE name = ?1"))
            .and_then(|mut s| s.query_row([name], repo_of).optional())
            .map_err(cannot)?;
        let Some(repo) = repo else {
            return Ok(None);
        };
        let events: Vec<(u64, u64, u64, bool)> = self
            .conn
            .prepare_cached(
                "SELECT seq, offset, len, is_update FROM events WHERE name = ?1 ORDER BY seq",
            )
            .and_then(|mut s| {
                s.query_map([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect()
            })
            .map_err(cannot)?;
        let shown = self.log.display();
        let file = File::open(&self.log).map_err(|e| io(format!("cannot read log {shown}"), e))?;
        let mut history = Vec::with_capacity(events.len());
        for (seq, offset, len, is_update) in events {
            let mut line = vec![0; len as usize];
            file.read_exact_at(&mut line, offset)
                .map_err(|e| io(format!("cannot read line {seq} of log {shown}"), e))?;
            history.push(entry(seq, is_update, &line).map_err(|why| {
                anyhow!(
                    "line {seq} of log {shown} is not the one the registry index took in ({why}); restart the receiver to rebuild the index"
                )
            })?);
        }
        Ok(Some(RepoDetail { repo, history }))
    }

    /// The template sets in use, by name, each with its versions newest
    /// first and how many repositories are on each now.
    pub fn sets(&self) -> Result<Vec<SetUse>> {
        let cannot = |e: rusqlite::Error| db("cannot query the registry index".to_owned(), e);
        let rows: Vec<(String, String, u64)> = self
            .conn
            .prepare_cached(
                "SELECT set_name, set_version, COUNT(*) FROM repos WHERE set_name IS NOT NULL
                 GROUP BY set_name, version_key ORDER BY set_name",
            )
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .map_err(cannot)?;
        let mut sets: Vec<SetUse> = Vec::new();
        for (name, version, repos) in rows {
            match sets.last_mut() {
                Some(set) if set.name == name => {
                    set.repos += repos;
                    set.versions.push(VersionUse { version, repos });
                }
                _ => sets.push(SetUse {
                    name,
                    versions: vec![VersionUse { version, repos }],
                    repos,
                }),
            }
        }
        for set in &mut sets {
            set.versions
                .sort_by(|a, b| version::cmp(&b.version, &a.version));
        }
        Ok(sets)
    }
}
/// The SQL conditions of a filter (without paging) and their arguments.
fn conditions(f: &Filter) -> (Vec<&'static str>, Vec<Sql>) {
    let mut conds = Vec::new();
    let mut args = Vec::new();
    let text = [("kind = ?", &f.kind), ("set_name = ?", &f.set)];
    for (cond, value) in text {
        if let Some(v) = value {
            conds.push(cond);
            args.push(Sql::Text(v.clone()));
        }
    }
    if let Some(version) = &f.version {
        // The key ends in the version's text, so equal keys are equal
        // versions; as a key it is a lookup in repos_by_version.
        conds.push("version_key = ?");
        args.push(Sql::Text(version::sort_key(version)));
    }
    if let Some(behind) = &f.behind {
        // With set_name = ? above: a range of repos_by_version.
        conds.push("version_key < ?");
        args.push(Sql::Text(version::bound_key(behind)));
    }
    if let Some(since) = f.since {
        conds.push("last_unix >= ?");
        args.push(Sql::Integer(since.as_second()));
    }
    (conds, args)
}

fn where_sql(conds: &[&str]) -> String {
    if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    }
}

/// A row of `SELECT {REPO_COLUMNS}`.
fn repo_of(r: &Row<'_>) -> rusqlite::Result<Repo> {
    let set = match (
        r.get::<_, Option<String>>(4)?,
        r.get::<_, Option<String>>(5)?,
        r.get::<_, Option<String>>(6)?,
    ) {
        (Some(name), Some(version), Some(digest)) => Some(SetRef {
            name,
            version,
            digest,
        }),
        _ => None,
    };
    let events: u64 = r.get(11)?;
    Ok(Repo {
        name: r.get(0)?,
        kind: r.get(1)?,
        elite: r.get(2)?,
        org: r.get(3)?,
        set,
        merkle_root: r.get(7)?,
        last_event: if events > 1 {
            EventKind::Update
        } else {
            EventKind::Spawn
        },
        last_at: r.get(10)?,
        keyid: r.get(8)?,
        signed: r.get(9)?,
        events,
    })
}

/// One history entry from its log line.
fn entry(seq: u64, is_update: bool, line: &[u8]) -> Result<HistoryEntry, String> {
    let e = event::parse(line)?;
    if e.seq != seq {
        return Err(format!("it says seq {}", e.seq));
    }
    let mut value: serde_json::Value = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    let receipt = value
        .get_mut("receipt")
        .map(serde_json::Value::take)
        .unwrap_or_default();
    let attestation = value.get_mut("attestation").map(serde_json::Value::take);
    Ok(HistoryEntry {
        seq,
        event: if is_update {
            EventKind::Update
        } else {
            EventKind::Spawn
        },
        received_at: e.received_at,
        keyid: e.keyid,
        merkle_root: e.merkle_root,
        set: e.set,
        receipt,
        attestation,
    })
}
