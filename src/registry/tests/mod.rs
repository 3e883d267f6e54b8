//! The index against logs written here line by line, as the receiver
//! writes them (chained, one JSON object a line): opening, catching up and
//! rebuilding here, the questions in `queries`.

mod queries;

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::filter::Filter;
use super::index::{CatchUp, Index};
use super::*;
use crate::chain::{GENESIS, line_hash};

/// A receiver log being written.
struct Log {
    _dir: tempfile::TempDir,
    path: PathBuf,
    seq: u64,
    len: u64,
    prev: String,
}

/// What one event says.
#[derive(Clone)]
struct Ev<'a> {
    name: &'a str,
    kind: &'a str,
    set: Option<(&'a str, &'a str)>,
    at: &'a str,
    signed: bool,
}

fn ev<'a>(name: &'a str, set: &'a str, version: &'a str) -> Ev<'a> {
    Ev {
        name,
        kind: "rust-cli",
        set: Some((set, version)),
        at: "2026-12-04T10:00:00.123Z",
        signed: false,
    }
}

fn receipt(e: &Ev<'_>, root: &str) -> Value {
    let spawn = match e.set {
        Some((set, version)) => json!({
            "name": e.name, "type": e.kind, "options": {"org": "acme"},
            "templates": {"source": "dir", "name": set, "version": version, "digest": "cd".repeat(32)},
            "elite": true,
        }),
        None => json!({
            "name": e.name, "type": e.kind, "options": {},
            "template_digest": "ef".repeat(32), "elite": false,
        }),
    };
    json!({
        "format": "spawn-elite.receipt/v2",
        "tool": {"name": "spawn-elite", "version": "0.1.0"},
        "spawn": spawn,
        "created": "2026-12-04T10:00:00Z",
        "merkle_root": root,
        "leaf_count": 0,
        "files": [],
    })
}

impl Log {
    fn new() -> Log {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("receive.jsonl");
        fs::write(&path, "").unwrap();
        Log {
            _dir: dir,
            path,
            seq: 0,
            len: 0,
            prev: GENESIS.to_owned(),
        }
    }

    /// The next line for a receipt, as the receiver makes it.
    fn line_of(&self, receipt: Value, signed: bool, at: &str) -> String {
        let root = receipt["merkle_root"].clone();
        let mut l = json!({
            "seq": self.seq + 1,
            "received_at": at,
            "keyid": "sender",
            "idempotency_key": root,
            "content_digest": "sha-256=:AAAA:",
            "receipt": receipt,
        });
        if signed {
            l["attestation"] = json!({"payloadType": "application/vnd.in-toto+json", "payload": "e30=", "signatures": [{"keyid": "k", "sig": "AA=="}]});
        }
        l["prev"] = json!(self.prev);
        l.to_string()
    }

    /// Append a line; returns what the receiver tells the index.
    fn push_line(&mut self, line: &str) -> (u64, u64, Vec<u8>) {
        let mut f = OpenOptions::new().append(true).open(&self.path).unwrap();
        f.write_all(format!("{line}\n").as_bytes()).unwrap();
        let offset = self.len;
        self.seq += 1;
        self.len += line.len() as u64 + 1;
        self.prev = line_hash(line.as_bytes());
        (self.seq, offset, line.as_bytes().to_vec())
    }

    fn push(&mut self, e: &Ev<'_>) -> (u64, u64, Vec<u8>) {
        let root = line_hash(format!("{}-{}", e.name, self.seq).as_bytes());
        let line = self.line_of(receipt(e, &root), e.signed, e.at);
        self.push_line(&line)
    }

    /// A receipt of an arbitrary tree (`spawn-elite receipt DIR`).
    fn push_plain_receipt(&mut self) -> (u64, u64, Vec<u8>) {
        let mut r = receipt(&ev("x", "s", "1"), &"ab".repeat(32));
        r.as_object_mut().unwrap().remove("spawn");
        r["format"] = json!("spawn-elite.receipt/v1");
        let line = self.line_of(r, false, "2026-12-04T10:00:00Z");
        self.push_line(&line)
    }

    fn index(&self) -> (Index, CatchUp) {
        Index::open(&self.path).unwrap()
    }
}

fn names(page: &RepoPage) -> Vec<&str> {
    page.repos.iter().map(|r| r.name.as_str()).collect()
}

fn filter(q: &str) -> Filter {
    Filter::parse(Some(q)).unwrap()
}

#[test]
fn the_index_file_is_beside_the_log() {
    assert_eq!(
        Index::path_for(std::path::Path::new("/srv/reg/receive.jsonl")),
        PathBuf::from("/srv/reg/receive.jsonl.index.sqlite")
    );
}

#[test]
fn a_first_receipt_is_a_spawn_and_a_later_one_an_update_with_both_in_the_history() {
    let mut log = Log::new();
    let (mut index, caught) = log.index();
    assert_eq!(caught, CatchUp::default());
    assert!(Index::path_for(&log.path).exists());

    let first = log.push(&ev("billing", "acme", "1.9.0"));
    assert_eq!(index.apply(first.0, first.1, &first.2).unwrap(), None);
    let mut update = ev("billing", "acme", "1.10.0");
    update.signed = true;
    update.at = "2026-12-05T08:30:00Z";
    let second = log.push(&update);
    assert_eq!(index.apply(second.0, second.1, &second.2).unwrap(), None);
    assert_eq!(index.seq(), 2);

    let detail = index.repo("billing").unwrap().unwrap();
    let root = line_hash(b"billing-1");
    assert_eq!(
        detail.repo,
        Repo {
            name: "billing".into(),
            kind: "rust-cli".into(),
            elite: true,
            org: Some("acme".into()),
            set: Some(SetRef {
                name: "acme".into(),
                version: "1.10.0".into(),
                digest: "cd".repeat(32),
            }),
            merkle_root: root.clone(),
            last_event: EventKind::Update,
            last_at: "2026-12-05T08:30:00Z".into(),
            keyid: "sender".into(),
            signed: true,
            events: 2,
        }
    );
    let h = &detail.history;
    assert_eq!(h.len(), 2);
    assert_eq!((h[0].seq, h[0].event), (1, EventKind::Spawn));
    assert_eq!((h[1].seq, h[1].event), (2, EventKind::Update));
    assert_eq!(h[0].set.as_ref().unwrap().version, "1.9.0");
    assert_eq!(h[0].attestation, None);
    assert_eq!(h[1].merkle_root, root);
    // The receipt and envelope exactly as logged, read back from the log.
    let logged: Value = serde_json::from_slice(&second.2).unwrap();
    assert_eq!(h[1].receipt, logged["receipt"]);
    assert_eq!(h[1].attestation.as_ref(), Some(&logged["attestation"]));
    assert_eq!(index.repo("nobody").unwrap(), None);
}

#[test]
fn staged_lines_are_written_a_batch_at_a_time_on_a_flush_and_when_dropped() {
    let mut log = Log::new();
    let (mut index, _) = log.index();
    let (seq, offset, line) = log.push(&ev("a", "acme", "1.0.0"));
    assert_eq!(index.stage(seq, offset, &line).unwrap(), vec![]);
    assert_eq!(index.seq(), 1, "taken in");
    assert_eq!(
        index.repos(&Filter::default()).unwrap().total,
        0,
        "not yet written"
    );
    index.flush().unwrap();
    assert_eq!(index.repos(&Filter::default()).unwrap().total, 1);

    // A full batch writes itself; the line after it waits.
    let names: Vec<String> = (0..=super::index::BATCH)
        .map(|i| format!("r{i:04}"))
        .collect();
    for name in &names {
        let (seq, offset, line) = log.push(&ev(name, "acme", "1.0.0"));
        index.stage(seq, offset, &line).unwrap();
    }
    let total = index.repos(&Filter::default()).unwrap().total;
    assert_eq!(total, 1 + super::index::BATCH as u64);
    // Dropped (the receiver stops): the staged line is written, and the
    // next open has nothing to catch up.
    drop(index);
    let (index, caught) = log.index();
    assert_eq!(caught, CatchUp::default());
    assert_eq!(
        index.repos(&Filter::default()).unwrap().total,
        2 + super::index::BATCH as u64
    );
}

#[test]
fn lines_appended_while_closed_are_caught_up_at_open() {
    let mut log = Log::new();
    log.push(&ev("a", "acme", "1.0.0"));
    log.push(&ev("b", "acme", "1.0.0"));
    let (index, caught) = log.index();
    assert_eq!((caught.rebuilt, caught.applied, index.seq()), (None, 2, 2));
    drop(index);

    log.push(&ev("a", "acme", "1.1.0"));
    log.push(&ev("c", "acme", "1.1.0"));
    let (index, caught) = log.index();
    assert_eq!(
        caught,
        CatchUp {
            rebuilt: None,
            applied: 2,
            skipped: vec![]
        }
    );
    assert_eq!(index.seq(), 4);
    let page = index.repos(&Filter::default()).unwrap();
    assert_eq!(names(&page), ["a", "b", "c"]);
    assert_eq!(page.repos[0].events, 2);
    assert_eq!(page.repos[0].set.as_ref().unwrap().version, "1.1.0");

    // Nothing new: nothing applied.
    drop(index);
    let (_, caught) = log.index();
    assert_eq!(caught, CatchUp::default());
}

#[test]
fn a_line_still_being_written_is_not_taken_in() {
    let mut log = Log::new();
    log.push(&ev("a", "acme", "1.0.0"));
    let mut f = OpenOptions::new().append(true).open(&log.path).unwrap();
    f.write_all(b"{\"seq\":2,\"received_at\"").unwrap();
    let (index, caught) = log.index();
    assert_eq!((caught.applied, index.seq()), (1, 1));
}

#[test]
fn an_index_file_that_is_not_a_database_is_rebuilt_with_a_warning() {
    let mut log = Log::new();
    log.push(&ev("a", "acme", "1.0.0"));
    let path = Index::path_for(&log.path);
    fs::write(&path, vec![0x5a; 8192]).unwrap();
    let (index, caught) = log.index();
    let warning = caught.rebuilt.unwrap();
    assert!(
        warning.starts_with(&format!(
            "rebuilt index {} from the log: it cannot be read as an index",
            path.display()
        )),
        "{warning}"
    );
    assert!(!warning.contains('\n'));
    assert_eq!((caught.applied, index.seq()), (1, 1));
    assert_eq!(names(&index.repos(&Filter::default()).unwrap()), ["a"]);
    // No temporary file is left beside it.
    let left: Vec<_> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert_eq!(left, Vec::<String>::new());
}

#[test]
fn an_index_from_a_newer_schema_is_rebuilt_with_a_warning() {
    let mut log = Log::new();
    log.push(&ev("a", "acme", "1.0.0"));
    drop(log.index());
    let conn = rusqlite::Connection::open(Index::path_for(&log.path)).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let (index, caught) = log.index();
    let warning = caught.rebuilt.unwrap();
    assert!(
        warning.ends_with("it was made by a newer spawn-elite (schema 99; this one reads 1)"),
        "{warning}"
    );
    assert_eq!(index.seq(), 1);
}

#[test]
fn an_index_of_a_replaced_log_is_rebuilt_with_a_warning() {
    let mut log = Log::new();
    log.push(&ev("old-1", "acme", "1.0.0"));
    log.push(&ev("old-2", "acme", "1.0.0"));
    drop(log.index());

    // Replaced by a log just as long: the last line is another one.
    let mut other = Log::new();
    other.push(&ev("new-1", "acme", "1.0.0"));
    other.push(&ev("new-2", "acme", "1.0.0"));
    fs::copy(&other.path, &log.path).unwrap();
    let (index, caught) = log.index();
    let warning = caught.rebuilt.unwrap();
    assert!(
        warning
            .ends_with("line 2 of the log is not the one the index took in: the log was replaced"),
        "{warning}"
    );
    assert_eq!(
        names(&index.repos(&Filter::default()).unwrap()),
        ["new-1", "new-2"]
    );
    drop(index);

    // Replaced by a shorter one.
    let mut short = Log::new();
    short.push(&ev("s", "acme", "1.0.0"));
    fs::copy(&short.path, &log.path).unwrap();
    let (index, caught) = log.index();
    assert!(
        caught
            .rebuilt
            .unwrap()
            .contains("than what the index took in"),
    );
    assert_eq!(names(&index.repos(&Filter::default()).unwrap()), ["s"]);
    assert_eq!(index.seq(), 1);
}

#[test]
fn a_line_that_is_not_a_fleet_event_is_skipped_and_reported() {
    let mut log = Log::new();
    log.push(&ev("a", "acme", "1.0.0"));
    log.push_plain_receipt();
    log.push(&ev("b", "acme", "1.0.0"));
    let (mut index, caught) = log.index();
    assert_eq!((caught.applied, index.seq()), (3, 3));
    assert_eq!(caught.skipped.len(), 1);
    assert_eq!(caught.skipped[0].0, 2);
    assert!(
        caught.skipped[0].1.contains("has no spawn section"),
        "{:?}",
        caught.skipped
    );

    // The same through apply; the head still moves past it.
    let (seq, offset, line) = log.push_plain_receipt();
    let why = index.apply(seq, offset, &line).unwrap().unwrap();
    assert!(why.contains("has no spawn section"), "{why}");
    assert_eq!(index.seq(), 4);
    let (seq, offset, line) = log.push(&ev("c", "acme", "1.0.0"));
    assert_eq!(index.apply(seq, offset, &line).unwrap(), None);
    assert_eq!(
        names(&index.repos(&Filter::default()).unwrap()),
        ["a", "b", "c"]
    );
    // And a later open finds nothing more to take in.
    drop(index);
    assert_eq!(log.index().1, CatchUp::default());
}

#[test]
fn a_line_out_of_step_with_the_index_is_refused() {
    let mut log = Log::new();
    let (mut index, _) = log.index();
    log.push(&ev("a", "acme", "1.0.0"));
    let (seq, offset, line) = log.push(&ev("b", "acme", "1.0.0"));
    let err = index.apply(seq, offset, &line).unwrap_err().to_string();
    assert!(
        err.starts_with("the registry index is at line 0 (offset 0) but was given line 2"),
        "{err}"
    );
    assert_eq!(index.seq(), 0);
}
