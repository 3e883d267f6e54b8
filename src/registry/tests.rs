//! The index against logs written here line by line, as the receiver
//! writes them (chained, one JSON object a line).

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

/// A fleet: three sets, versions that sort wrongly as text, updates.
fn fleet() -> (Log, Index) {
    let mut log = Log::new();
    let mut on = |name, set, version, kind, at| {
        let mut e = ev(name, set, version);
        e.kind = kind;
        e.at = at;
        log.push(&e);
    };
    on("a", "web", "1.9.0", "svc", "2026-12-01T00:00:00Z");
    on("b", "web", "1.10.0", "svc", "2026-12-01T00:00:00.5Z");
    on("c", "web", "1.2.0", "lib", "2026-12-02T00:00:00Z");
    on("d", "web", "2.0.0-rc.1", "svc", "2026-12-02T12:00:00Z");
    on("e", "cli", "1.0.0", "lib", "2026-12-03T00:00:00Z");
    on("f", "web", "1.9.0", "svc", "2026-12-03T00:00:00Z");
    // c is updated from 1.2.0 to 1.10.0.
    on("c", "web", "1.10.0", "lib", "2026-12-04T00:00:00Z");
    let mut v1 = ev("g", "", "");
    v1.set = None;
    v1.at = "2026-12-04T00:00:00Z";
    log.push(&v1);
    let (index, _) = log.index();
    (log, index)
}

#[test]
fn filters_select_by_type_set_and_exact_version() {
    let (_log, index) = fleet();
    let q = |q: &str| names(&index.repos(&filter(q)).unwrap()).join(",");
    assert_eq!(q(""), "a,b,c,d,e,f,g");
    assert_eq!(q("type=lib"), "c,e");
    assert_eq!(q("set=web"), "a,b,c,d,f");
    assert_eq!(q("set=web&version=1.10.0"), "b,c");
    assert_eq!(q("version=1.9.0&type=svc"), "a,f");
    assert_eq!(q("set=nope"), "");
}

#[test]
fn behind_compares_versions_as_versions_within_the_set() {
    let (_log, index) = fleet();
    let q = |q: &str| names(&index.repos(&filter(q)).unwrap()).join(",");
    // 1.9.0 < 1.10.0, though not as text; c was updated past 1.2.0.
    assert_eq!(q("set=web&behind=1.10.0"), "a,f");
    assert_eq!(q("set=web&behind=2.0.0"), "a,b,c,d,f");
    // A pre-release is behind its release and ahead of what came before.
    assert_eq!(q("set=web&behind=2.0.0-rc.1"), "a,b,c,f");
    assert_eq!(q("set=web&behind=1.9.0"), "");
    assert_eq!(q("set=cli&behind=1.0.1"), "e");
    assert_eq!(q("set=web&behind=2.0.0&type=lib"), "c");
}

#[test]
fn since_selects_by_the_latest_event() {
    let (_log, index) = fleet();
    let q = |q: &str| names(&index.repos(&filter(q)).unwrap()).join(",");
    assert_eq!(q("since=2026-12-03T00:00:00Z"), "c,e,f,g");
    // c's spawn was before, but its update after.
    assert_eq!(q("since=2026-12-03T00:00:01Z"), "c,g");
    assert_eq!(q("since=2026-12-04T01:00:00%2B01:00"), "c,g");
    assert_eq!(q("since=2027-01-01T00:00:00Z"), "");
}

#[test]
fn pages_follow_the_after_cursor_and_count_every_match() {
    let (_log, index) = fleet();
    let first = index.repos(&filter("set=web&limit=2")).unwrap();
    assert_eq!(
        (names(&first), first.next.as_deref(), first.total),
        (vec!["a", "b"], Some("b"), 5)
    );
    let second = index.repos(&filter("set=web&limit=2&after=b")).unwrap();
    assert_eq!(
        (names(&second), second.next.as_deref(), second.total),
        (vec!["c", "d"], Some("d"), 5)
    );
    let last = index.repos(&filter("set=web&limit=2&after=d")).unwrap();
    assert_eq!(
        (names(&last), last.next.as_deref(), last.total),
        (vec!["f"], None, 5)
    );
    // A page that ends exactly at the last match has no next.
    let exact = index.repos(&filter("set=web&limit=5")).unwrap();
    assert_eq!((exact.repos.len(), exact.next), (5, None));
    let behind = index
        .repos(&filter("set=web&behind=2.0.0&limit=3&after=a"))
        .unwrap();
    assert_eq!(
        (names(&behind), behind.next.as_deref(), behind.total),
        (vec!["b", "c", "d"], Some("d"), 5)
    );
}

#[test]
fn sets_count_repositories_by_their_current_version_newest_first() {
    let (_log, index) = fleet();
    let v = |version: &str, repos| VersionUse {
        version: version.into(),
        repos,
    };
    assert_eq!(
        index.sets().unwrap(),
        vec![
            SetUse {
                name: "cli".into(),
                versions: vec![v("1.0.0", 1)],
                repos: 1,
            },
            SetUse {
                name: "web".into(),
                versions: vec![v("2.0.0-rc.1", 1), v("1.10.0", 2), v("1.9.0", 2)],
                repos: 5,
            },
        ]
    );
}

#[test]
fn a_v1_receipt_is_a_repository_without_a_set() {
    let (_log, index) = fleet();
    let g = index.repo("g").unwrap().unwrap();
    assert_eq!((g.repo.set, g.repo.elite, g.repo.org), (None, false, None));
    assert_eq!(g.history[0].set, None);
}

#[test]
fn the_index_can_be_shared_behind_a_mutex() {
    fn send<T: Send>() {}
    send::<Index>();
    send::<std::sync::Mutex<Index>>();
}

#[test]
fn an_index_of_a_missing_log_is_an_error_naming_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("none.jsonl");
    let err = Index::open(&log).err().unwrap().to_string();
    assert_eq!(
        err,
        format!(
            "cannot read log {}: No such file or directory (os error 2)",
            log.display()
        )
    );
    assert!(!Index::path_for(&log).exists());
}
