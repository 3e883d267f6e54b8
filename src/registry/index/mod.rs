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
//!
//! - `schema`: the tables, and the statements that write them.
//! - `query`: the registry's questions, answered from them.

mod query;
mod schema;

use std::fs::{self, File};
use std::io::{BufRead as _, BufReader, ErrorKind, Seek as _, SeekFrom};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};
use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension as _, params};

use self::schema::{INDEXES, INSERT_EVENT, SAVE_HEAD, SCHEMA_VERSION, TABLES, UPSERT_REPO};
use super::event::{self, Event};
use super::version;
use crate::chain::line_hash;
use crate::error::{ExitCode, fail_with};
use crate::fsutil::{self, TempFile, WriteOptions};

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
    /// The last line in the database.
    head: Head,
    /// Lines given by [`Index::stage`] and not yet in the database, and
    /// the head after them.
    pending: Vec<(u64, u64, Vec<u8>)>,
    staged: Head,
}

/// How many staged lines make [`Index::stage`] write them: one transaction
/// for that many lines instead of one each, so taking a line in stays far
/// below the cost of the line's own fsync.
pub const BATCH: usize = 256;

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
    Usable(Box<Index>),
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
                    return Ok((*index, caught));
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
        Ok(Found::Usable(Box::new(Index {
            conn,
            log: log.to_owned(),
            staged: head.clone(),
            head,
            pending: Vec::new(),
        })))
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
            staged: head.clone(),
            head,
            pending: Vec::new(),
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
        self.staged = head.clone();
        self.head = head;
        Ok(caught)
    }

    /// One line the receiver just appended (its seq, the offset it starts
    /// at, its bytes without the newline), taken in at once: [`Index::stage`]
    /// and [`Index::flush`]. `Ok(Some(why))` when it is not a fleet event.
    pub fn apply(&mut self, seq: u64, offset: u64, line: &[u8]) -> Result<Option<String>> {
        self.stage(seq, offset, line)?;
        Ok(self.flush()?.pop().map(|(_, why)| why))
    }

    /// Stage one line the receiver just appended; every [`BATCH`] lines
    /// they are written in one transaction ([`Index::flush`], whose
    /// skipped lines this returns). Until then the line is not in the
    /// database: reads call [`Index::flush`] first, and a crash loses only
    /// what the log has and the next start catches up.
    pub fn stage(&mut self, seq: u64, offset: u64, line: &[u8]) -> Result<Vec<(u64, String)>> {
        if seq != self.staged.seq + 1 || offset != self.staged.end {
            return Err(anyhow!(
                "the registry index is at line {} (offset {}) but was given line {seq} at offset {offset}; restart the receiver to catch it up from the log",
                self.staged.seq,
                self.staged.end
            ));
        }
        self.staged = Head {
            seq,
            end: offset + line.len() as u64 + 1,
            last: offset,
            hash: line_hash(line),
        };
        self.pending.push((seq, offset, line.to_vec()));
        if self.pending.len() >= BATCH {
            return self.flush();
        }
        Ok(Vec::new())
    }

    /// Write the staged lines in one transaction; returns the ones that
    /// are not fleet events (seq, why). If the write fails the lines stay
    /// staged for the next try.
    pub fn flush(&mut self) -> Result<Vec<(u64, String)>> {
        if self.pending.is_empty() {
            return Ok(Vec::new());
        }
        let shown = Index::path_for(&self.log);
        let cannot = |e: rusqlite::Error| db(format!("cannot update index {}", shown.display()), e);
        let mut head = self.head.clone();
        let mut skipped = Vec::new();
        let tx = self.conn.transaction().map_err(cannot)?;
        for (seq, offset, line) in &self.pending {
            if let Some(why) = take_in(&tx, &mut head, *offset, line).map_err(cannot)? {
                skipped.push((*seq, why));
            }
        }
        save_head(&tx, &head).map_err(cannot)?;
        tx.commit().map_err(cannot)?;
        self.head = head;
        self.pending.clear();
        Ok(skipped)
    }

    /// The seq of the last log line the index has taken in (applied or
    /// skipped, staged lines included); the index is ready when this is
    /// the log's.
    pub fn seq(&self) -> u64 {
        self.staged.seq
    }
}

impl Drop for Index {
    /// Staged lines are written when the receiver stops; if that fails, the
    /// next start catches them up from the log.
    fn drop(&mut self) {
        let _ = self.flush();
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

fn io(context: String, e: std::io::Error) -> anyhow::Error {
    let message = format!("{context}: {}", fsutil::describe_io(&e));
    fail_with(ExitCode::Io, message, e)
}

fn db(context: String, e: rusqlite::Error) -> anyhow::Error {
    let message = format!("{context}: {e}");
    fail_with(ExitCode::Io, message, e)
}
