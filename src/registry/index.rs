//! The SQLite index of the receiver's log: one row per repository (its
//! latest event) and one per event (where its line is in the log), so the
//! registry's questions are queries instead of a read of the whole log.
//!
//! The log is the durable copy. The index follows it with
//! `synchronous=NORMAL` in WAL mode (a commit is not flushed to disk), so a
//! crash may lose its last commits; it remembers the log head it has taken
//! in (seq, end offset, BLAKE3 of the last line) and [`Index::open`] takes
//! in whatever the log has beyond that. An index that cannot be trusted
//! (not a database, damaged, from a newer schema, or of another log than
//! the one at its head) is rebuilt from the log into a temporary file that
//! is renamed into place, so there is never a half-built index to read.
//! The index keeps no receipts: a repository's history is read from the log
//! at the offsets the index stores.

use std::fs::{self, File};
use std::io::{BufRead as _, BufReader, ErrorKind, Seek as _, SeekFrom};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};
use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension as _, Row, params};

use super::event::{self, Event};
use super::filter::Filter;
use super::version;
use super::{EventKind, HistoryEntry, Repo, RepoDetail, RepoPage, SetRef, SetUse, VersionUse};
use crate::chain::line_hash;
use crate::error::{ExitCode, fail_with};
use crate::fsutil::{self, TempFile, WriteOptions};

/// `PRAGMA user_version` of the schema below. An index with another one is
/// rebuilt: there is nothing in it the log does not hold.
const SCHEMA_VERSION: i64 = 1;

/// The tables. `repos` holds each repository's latest event (`version_key`
/// is [`version::sort_key`] of its set's version, for `behind=`); `events`
/// where each event's line is in the log. `meta` holds the head: `seq`,
/// `end_offset` (where the next line starts), `last_offset` (where the last
/// line starts) and `last_hash` (its BLAKE3).
const TABLES: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID;
CREATE TABLE repos (
    name TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    elite INTEGER NOT NULL,
    org TEXT,
    set_name TEXT,
    set_version TEXT,
    set_digest TEXT,
    version_key TEXT,
    merkle_root TEXT NOT NULL,
    keyid TEXT NOT NULL,
    signed INTEGER NOT NULL,
    last_at TEXT NOT NULL,
    last_unix INTEGER NOT NULL,
    events INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    offset INTEGER NOT NULL,
    len INTEGER NOT NULL,
    is_update INTEGER NOT NULL
);
";

/// The secondary indexes, made after a rebuild's rows are in (one sort
/// instead of a million index updates). `repos` has no rowid, so each of
/// its indexes ends in the name: `behind=` and `version=` read names from
/// `repos_by_version` alone, and [`Index::sets`] counts from it alone.
const INDEXES: &str = "
CREATE INDEX repos_by_version ON repos(set_name, version_key, set_version);
CREATE INDEX repos_by_kind ON repos(kind);
CREATE INDEX repos_by_time ON repos(last_unix);
CREATE INDEX events_by_repo ON events(name, seq);
";

const REPO_COLUMNS: &str = "name, kind, elite, org, set_name, set_version, set_digest, merkle_root, keyid, signed, last_at, events";

/// Upsert a repository's row from an event; returns how many events it has.
const UPSERT_REPO: &str = "
INSERT INTO repos (name, kind, elite, org, set_name, set_version, set_digest, version_key,
                   merkle_root, keyid, signed, last_at, last_unix, events)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 1)
ON CONFLICT (name) DO UPDATE SET
    kind = excluded.kind, elite = excluded.elite, org = excluded.org,
    set_name = excluded.set_name, set_version = excluded.set_version,
    set_digest = excluded.set_digest, version_key = excluded.version_key,
    merkle_root = excluded.merkle_root, keyid = excluded.keyid, signed = excluded.signed,
    last_at = excluded.last_at, last_unix = excluded.last_unix, events = events + 1
RETURNING events";

const INSERT_EVENT: &str =
    "INSERT INTO events (seq, name, offset, len, is_update) VALUES (?1, ?2, ?3, ?4, ?5)";

const SAVE_HEAD: &str = "
INSERT INTO meta (key, value) VALUES ('seq', ?1), ('end_offset', ?2), ('last_offset', ?3), ('last_hash', ?4)
ON CONFLICT (key) DO UPDATE SET value = excluded.value";

/// The last log line the index has taken in.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    seq: u64,
    /// Where the next line starts.
    end: u64,
    /// Where the last line starts.
    last: u64,
    /// BLAKE3 of the last line ([`crate::chain::GENESIS`] before any).
    hash: String,
}

impl Head {
    fn empty() -> Head {
        Head {
            seq: 0,
            end: 0,
            last: 0,
            hash: crate::chain::GENESIS.to_owned(),
        }
    }
}

/// The index of one log.
pub struct Index {
    conn: Connection,
    log: PathBuf,
    head: Head,
}

/// What [`Index::open`] did to bring the index up to the log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CatchUp {
    /// Set when the index was rebuilt from the whole log: why, as a one-line
    /// warning.
    pub rebuilt: Option<String>,
    /// How many lines were taken in (of the whole log, after a rebuild).
    pub applied: u64,
    /// The lines taken in that are not fleet events: their seq and why.
    pub skipped: Vec<(u64, String)>,
}

/// Why an existing index is not used, or the index ready to catch up.
enum Found {
    Usable(Index),
    Rebuild(String),
}

impl Index {
    /// The index file for a log: beside it, `<log file name>.index.sqlite`.
    pub fn path_for(log: &Path) -> PathBuf {
        let mut name = log.file_name().unwrap_or_default().to_os_string();
        name.push(".index.sqlite");
        log.with_file_name(name)
    }

    /// Open the index of the log at `log` (creating, catching up or
    /// rebuilding it).
    pub fn open(log: &Path) -> Result<(Index, CatchUp)> {
        let path = Index::path_for(log);
        let log_len = fs::metadata(log)
            .map_err(|e| io(format!("cannot read log {}", log.display()), e))?
            .len();
        let rebuilt = match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(io(format!("cannot read index {}", path.display()), e)),
            Ok(_) => match Index::check(&path, log, log_len)? {
                Found::Usable(mut index) => {
                    let caught = index.catch_up()?;
                    return Ok((index, caught));
                }
                Found::Rebuild(why) => Some(format!(
                    "rebuilt index {} from the log: {why}",
                    path.display()
                )),
            },
        };
        let (index, built) = Index::build(&path, log)?;
        Ok((index, CatchUp { rebuilt, ..built }))
    }

    /// Open an existing index and see whether it can be caught up: it is a
    /// sound database of this schema, and the log still holds, at the
    /// offset where it ends, the last line it took in.
    fn check(path: &Path, log: &Path, log_len: u64) -> Result<Found> {
        let unreadable =
            |e: rusqlite::Error| Found::Rebuild(format!("it cannot be read as an index ({e})"));
        let conn = match Connection::open(path) {
            Ok(c) => c,
            Err(e) => return Ok(unreadable(e)),
        };
        let schema: i64 = match conn.pragma_query_value(None, "user_version", |r| r.get(0)) {
            Ok(v) => v,
            Err(e) => return Ok(unreadable(e)),
        };
        if schema > SCHEMA_VERSION {
            return Ok(Found::Rebuild(format!(
                "it was made by a newer spawn-elite (schema {schema}; this one reads {SCHEMA_VERSION})"
            )));
        }
        if schema != SCHEMA_VERSION {
            return Ok(Found::Rebuild(format!(
                "it has schema {schema}, not {SCHEMA_VERSION}"
            )));
        }
        let quick: String = match conn.query_row("PRAGMA quick_check(1)", [], |r| r.get(0)) {
            Ok(v) => v,
            Err(e) => return Ok(unreadable(e)),
        };
        if quick != "ok" {
            return Ok(Found::Rebuild(format!("it is damaged ({quick})")));
        }
        if let Err(e) = configure(&conn) {
            return Ok(unreadable(e));
        }
        let head = match read_head(&conn) {
            Ok(h) => h,
            Err(e) => return Ok(unreadable(e)),
        };
        if head.end > log_len {
            return Ok(Found::Rebuild(format!(
                "the log is shorter ({log_len} bytes) than what the index took in ({} bytes): the log was replaced, or lost lines in a crash",
                head.end
            )));
        }
        if head.seq > 0 {
            let mut line = vec![0; (head.end - head.last) as usize];
            File::open(log)
                .and_then(|f| f.read_exact_at(&mut line, head.last))
                .map_err(|e| io(format!("cannot read log {}", log.display()), e))?;
            if line.pop() != Some(b'\n') || line_hash(&line) != head.hash {
                return Ok(Found::Rebuild(format!(
                    "line {} of the log is not the one the index took in: the log was replaced",
                    head.seq
                )));
            }
        }
        Ok(Found::Usable(Index {
            conn,
            log: log.to_owned(),
            head,
        }))
    }

    /// Build the index of the whole log in a temporary file beside `path`
    /// and rename it into place.
    fn build(path: &Path, log: &Path) -> Result<(Index, CatchUp)> {
        let shown = path.display();
        let cannot = |e: rusqlite::Error| db(format!("cannot build index {shown}"), e);
        let mut tmp = TempFile::beside(path, WriteOptions::DATA)
            .map_err(|e| io(format!("cannot create index {shown}"), e))?;
        let mut head = Head::empty();
        let built = {
            let mut conn = Connection::open(tmp.path()).map_err(cannot)?;
            // Nothing to recover in a file that is renamed into place only
            // once complete: no journal, no flush until the end.
            conn.execute_batch(
                "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;",
            )
            .map_err(cannot)?;
            let tx = conn.transaction().map_err(cannot)?;
            tx.execute_batch(TABLES).map_err(cannot)?;
            let taken = take_in_from(&tx, log, &mut head)?;
            tx.execute_batch(INDEXES).map_err(cannot)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(cannot)?;
            tx.commit().map_err(cannot)?;
            conn.execute_batch("PRAGMA optimize = 0x10002;")
                .map_err(cannot)?;
            conn.close().map_err(|(_, e)| cannot(e))?;
            taken
        };
        tmp.file()
            .sync_all()
            .map_err(|e| io(format!("cannot write index {shown}"), e))?;
        // The old index's WAL and shared memory belong to the old file: left
        // beside the new one, SQLite would replay the old pages into it.
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut side = path.as_os_str().to_owned();
            side.push(suffix);
            match fs::remove_file(PathBuf::from(side)) {
                Err(e) if e.kind() != ErrorKind::NotFound => {
                    return Err(io(format!("cannot replace index {shown}"), e));
                }
                _ => {}
            }
        }
        tmp.persist(path, true)
            .and_then(|()| fsutil::sync_dir(path))
            .map_err(|e| io(format!("cannot write index {shown}"), e))?;
        let conn = Connection::open(path).map_err(cannot)?;
        configure(&conn).map_err(cannot)?;
        let index = Index {
            conn,
            log: log.to_owned(),
            head,
        };
        Ok((index, built))
    }

    /// Take in the lines the log has beyond the head, in one transaction.
    fn catch_up(&mut self) -> Result<CatchUp> {
        let shown = Index::path_for(&self.log);
        let cannot = |e: rusqlite::Error| db(format!("cannot update index {}", shown.display()), e);
        let mut head = self.head.clone();
        let tx = self.conn.transaction().map_err(cannot)?;
        let caught = take_in_from(&tx, &self.log, &mut head)?;
        tx.commit().map_err(cannot)?;
        self.head = head;
        Ok(caught)
    }

    /// One line the receiver just appended: its seq, the byte offset it
    /// starts at, its bytes (no newline). `Ok(Some(why))` when the line was
    /// skipped (unparsable as an event). A line that does not follow the
    /// last one taken in is an error: the index would no longer match the
    /// log.
    pub fn apply(&mut self, seq: u64, offset: u64, line: &[u8]) -> Result<Option<String>> {
        if seq != self.head.seq + 1 || offset != self.head.end {
            return Err(anyhow!(
                "the registry index is at line {} (offset {}) but was given line {seq} at offset {offset}; restart the receiver to catch it up from the log",
                self.head.seq,
                self.head.end
            ));
        }
        let shown = Index::path_for(&self.log);
        let cannot = |e: rusqlite::Error| db(format!("cannot update index {}", shown.display()), e);
        let mut head = self.head.clone();
        let tx = self.conn.transaction().map_err(cannot)?;
        let skipped = take_in(&tx, &mut head, offset, line).map_err(cannot)?;
        save_head(&tx, &head).map_err(cannot)?;
        tx.commit().map_err(cannot)?;
        self.head = head;
        Ok(skipped)
    }

    /// The seq of the last log line the index has taken in (applied or
    /// skipped); the index is ready when this is the log's.
    pub fn seq(&self) -> u64 {
        self.head.seq
    }

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

/// WAL, and commits not flushed: the log is the durable copy.
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
}

fn read_head(conn: &Connection) -> rusqlite::Result<Head> {
    let get = |key: &str| {
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| {
            r.get::<_, Sql>(0)
        })
        .optional()
    };
    let int = |key: &str| -> rusqlite::Result<u64> {
        match get(key)? {
            Some(Sql::Integer(n)) if n >= 0 => Ok(n as u64),
            None => Ok(0),
            other => Err(rusqlite::Error::InvalidColumnType(
                0,
                format!("meta {key} = {other:?}"),
                rusqlite::types::Type::Integer,
            )),
        }
    };
    let hash = match get("last_hash")? {
        Some(Sql::Text(h)) => h,
        None => crate::chain::GENESIS.to_owned(),
        other => {
            return Err(rusqlite::Error::InvalidColumnType(
                0,
                format!("meta last_hash = {other:?}"),
                rusqlite::types::Type::Text,
            ));
        }
    };
    Ok(Head {
        seq: int("seq")?,
        end: int("end_offset")?,
        last: int("last_offset")?,
        hash,
    })
}

fn save_head(conn: &Connection, head: &Head) -> rusqlite::Result<()> {
    conn.prepare_cached(SAVE_HEAD)?
        .execute(params![head.seq, head.end, head.last, head.hash])?;
    Ok(())
}

/// Take in every complete line of the log after `head`, advancing it, and
/// save the head. Returns how many lines, and the skipped ones.
fn take_in_from(conn: &Connection, log: &Path, head: &mut Head) -> Result<CatchUp> {
    let shown = log.display();
    let read_err = |e: std::io::Error| io(format!("cannot read log {shown}"), e);
    let mut file = File::open(log).map_err(read_err)?;
    file.seek(SeekFrom::Start(head.end)).map_err(read_err)?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut buf = Vec::new();
    let mut applied = 0;
    let mut skipped = Vec::new();
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(read_err)?;
        // Only complete lines: a line still being written has no newline.
        if n == 0 || buf.last() != Some(&b'\n') {
            break;
        }
        let line = &buf[..n - 1];
        let offset = head.end;
        if let Some(why) = take_in(conn, head, offset, line).map_err(|e| {
            db(
                format!("cannot index line {} of log {shown}", head.seq + 1),
                e,
            )
        })? {
            skipped.push((head.seq, why));
        }
        applied += 1;
    }
    save_head(conn, head).map_err(|e| db("cannot save the index head".to_owned(), e))?;
    Ok(CatchUp {
        rebuilt: None,
        applied,
        skipped,
    })
}

/// Take in one line (without its newline) starting at `offset`: index its
/// event, or return why it is not one. Advances `head` either way; the
/// caller saves it.
fn take_in(
    conn: &Connection,
    head: &mut Head,
    offset: u64,
    line: &[u8],
) -> rusqlite::Result<Option<String>> {
    let seq = head.seq + 1;
    let skipped = match event::parse(line) {
        Ok(e) if e.seq != seq => Some(format!(
            "its seq is {}, but it is line {seq} of the log: the log is broken; check it with `spawn-elite ledger verify --file LOG`",
            e.seq
        )),
        Ok(e) => {
            index_event(conn, &e, offset, line.len() as u64)?;
            None
        }
        Err(why) => Some(why),
    };
    *head = Head {
        seq,
        end: offset + line.len() as u64 + 1,
        last: offset,
        hash: line_hash(line),
    };
    Ok(skipped)
}

fn index_event(conn: &Connection, e: &Event, offset: u64, len: u64) -> rusqlite::Result<()> {
    let set = e.set.as_ref();
    let events: u64 = conn.prepare_cached(UPSERT_REPO)?.query_row(
        params![
            e.name,
            e.kind,
            e.elite,
            e.org,
            set.map(|s| &s.name),
            set.map(|s| &s.version),
            set.map(|s| &s.digest),
            set.map(|s| version::sort_key(&s.version)),
            e.merkle_root,
            e.keyid,
            e.signed,
            e.received_at,
            e.received_unix,
        ],
        |r| r.get(0),
    )?;
    conn.prepare_cached(INSERT_EVENT)?
        .execute(params![e.seq, e.name, offset, len, events > 1])?;
    Ok(())
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
        args.push(Sql::Text(version::sort_key(behind)));
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

fn io(context: String, e: std::io::Error) -> anyhow::Error {
    let message = format!("{context}: {}", fsutil::describe_io(&e));
    fail_with(ExitCode::Io, message, e)
}

fn db(context: String, e: rusqlite::Error) -> anyhow::Error {
    let message = format!("{context}: {e}");
    fail_with(ExitCode::Io, message, e)
}
