//! Unit tests of the chain: walking, appending (and undoing failed
//! appends), and repair.

use std::io::ErrorKind;
use std::time::Duration;

use super::repair::{repair_within, save_aside};
use super::*;

fn chain_of(n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut prev = GENESIS.to_owned();
    for seq in 1..=n {
        let line = serde_json::json!({"seq": seq, "x": "y", "prev": prev}).to_string();
        prev = line_hash(line.as_bytes());
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out
}

fn broken_at(text: &[u8]) -> Option<usize> {
    walk::<serde_json::Value>(text).broken.map(|(n, _)| n)
}

#[test]
fn an_intact_chain_walks_to_its_end() {
    let w = walk::<serde_json::Value>(&chain_of(3));
    assert_eq!((w.entries.len(), w.broken.is_none()), (3, true));
    assert_eq!(broken_at(b""), None);
}

#[test]
fn edits_drops_and_cuts_break_the_chain_where_they_show() {
    let text = String::from_utf8(chain_of(3)).unwrap_or_default();
    assert_eq!(
        broken_at(text.replacen("\"y\"", "\"z\"", 1).as_bytes()),
        Some(2)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        broken_at(format!("{}\n{}\n", lines[0], lines[2]).as_bytes()),
        Some(2)
    );
    assert_eq!(broken_at(&text.as_bytes()[..text.len() - 3]), Some(3));
}

#[test]
fn appends_continue_the_chain_and_a_second_exclusive_writer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/log.jsonl");
    let (mut chain, _) = Chain::open::<serde_json::Value>(&path, Lock::Fail).unwrap();
    for _ in 0..2 {
        let line = serde_json::json!({"seq": chain.seq + 1, "prev": chain.last_hash});
        chain.append(line.to_string().as_bytes()).unwrap();
    }
    chain.sync().unwrap();
    let second = Chain::open::<serde_json::Value>(&path, Lock::Fail);
    assert!(second.is_err(), "the lock is held");
    drop(chain);
    let (again, walked) = Chain::open::<serde_json::Value>(&path, Lock::Fail).unwrap();
    assert_eq!((again.seq, walked.broken.is_none()), (2, true));
}

/// A chain file that takes `room` more bytes, then fails like a full
/// disk; with `fail_sync`, its next flush fails; with `undo_fails`,
/// cutting it back fails too.
struct FullDisk {
    file: File,
    room: usize,
    fail_sync: bool,
    undo_fails: bool,
}

impl Sink for FullDisk {
    fn append_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let fits = bytes.len().min(self.room);
        self.file.write_all(&bytes[..fits])?;
        self.room -= fits;
        if fits < bytes.len() {
            return Err(ErrorKind::StorageFull.into());
        }
        Ok(())
    }
    fn cut_to(&mut self, len: u64) -> std::io::Result<()> {
        if self.undo_fails {
            return Err(std::io::Error::other("injected: cannot truncate"));
        }
        self.file.set_len(len)
    }
    fn sync(&mut self) -> std::io::Result<()> {
        if std::mem::take(&mut self.fail_sync) {
            return Err(std::io::Error::other("injected: cannot sync"));
        }
        self.file.sync_data()
    }
}

fn next_line(chain: &Chain) -> Vec<u8> {
    serde_json::json!({"seq": chain.seq + 1, "pad": "x".repeat(40), "prev": chain.last_hash})
        .to_string()
        .into_bytes()
}

fn full_disk(path: &Path, room: usize) -> FullDisk {
    let file = OpenOptions::new().append(true).open(path).unwrap();
    FullDisk {
        file,
        room,
        fail_sync: false,
        undo_fails: false,
    }
}

#[test]
fn a_failed_append_is_undone_wherever_the_disk_fills_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.jsonl");
    let (mut chain, _) = Chain::open::<serde_json::Value>(&path, Lock::Wait).unwrap();
    for _ in 0..2 {
        chain.append_synced(&next_line(&chain)).unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let line = next_line(&chain);
    // Every byte the line and its newline could be cut after, and a
    // failed flush after the whole line was written.
    for room in 0..=line.len() + 1 {
        for sync in [false, true] {
            let mut sink = full_disk(&path, room);
            sink.fail_sync = room > line.len();
            let sync = sync || sink.fail_sync;
            let err = chain.append_through(&mut sink, &line, sync);
            assert!(err.is_err(), "room {room}");
            assert_eq!(std::fs::read(&path).unwrap(), before, "room {room}");
            assert_eq!(chain.seq, 2, "the chain did not advance");
        }
    }
    // Space again: the next append continues the chain.
    chain.append_synced(&line).unwrap();
    drop(chain);
    let text = std::fs::read(&path).unwrap();
    let walked = walk::<serde_json::Value>(&text);
    assert_eq!((walked.entries.len(), walked.broken.is_none()), (3, true));
}

#[test]
fn a_failed_undo_stops_later_appends_and_repair_mends_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.jsonl");
    let (mut chain, _) = Chain::open::<serde_json::Value>(&path, Lock::Wait).unwrap();
    chain.append_synced(&next_line(&chain)).unwrap();
    let before = std::fs::read(&path).unwrap();
    let line = next_line(&chain);
    let mut sink = full_disk(&path, 10);
    sink.undo_fails = true;
    let err = chain.append_through(&mut sink, &line, false).unwrap_err();
    assert!(err.to_string().contains("could not be removed"), "{err}");
    let err = chain.append(&line).unwrap_err();
    assert!(err.to_string().contains("nothing may be chained"), "{err}");
    drop(chain);
    assert_eq!(std::fs::read(&path).unwrap().len(), before.len() + 10);

    let repaired = repair::<serde_json::Value>(&path).unwrap();
    let (saved, bytes) = repaired.saved.unwrap();
    assert_eq!((repaired.walked.entries.len(), bytes), (1, 10));
    assert_eq!(std::fs::read(&saved).unwrap(), &line[..10]);
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let (mut chain, walked) = Chain::open::<serde_json::Value>(&path, Lock::Wait).unwrap();
    assert!(walked.broken.is_none());
    chain.append_synced(&next_line(&chain)).unwrap();
}

#[test]
fn repair_leaves_intact_and_otherwise_broken_chains_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.jsonl");
    std::fs::write(&path, chain_of(3)).unwrap();
    let r = repair::<serde_json::Value>(&path).unwrap();
    assert!(r.saved.is_none() && r.walked.broken.is_none());
    let edited = String::from_utf8(chain_of(3))
        .unwrap()
        .replacen("\"y\"", "\"z\"", 1)
        + "{\"cut";
    std::fs::write(&path, &edited).unwrap();
    let r = repair::<serde_json::Value>(&path).unwrap();
    assert!(matches!(r.walked.broken, Some((2, Fault::Prev(_)))));
    assert!(r.saved.is_none());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), edited);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let missing = repair::<serde_json::Value>(&dir.path().join("none")).unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
}

#[test]
fn repair_waits_for_the_writers_lock_and_saves_aside_without_replacing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.jsonl");
    let mut text = chain_of(2);
    text.extend_from_slice(b"{\"seq\":3,\"pr");
    std::fs::write(&path, &text).unwrap();
    let (held, _) = Chain::open::<serde_json::Value>(&path, Lock::Fail).unwrap();
    let err = repair_within::<serde_json::Value>(&path, Duration::from_millis(100));
    assert_eq!(err.unwrap_err().kind(), ErrorKind::WouldBlock);
    drop(held);
    let first = save_aside(&path, b"a").unwrap();
    let r = repair::<serde_json::Value>(&path).unwrap();
    let (second, _) = r.saved.unwrap();
    assert_ne!(first, second);
    assert_eq!(std::fs::read(&first).unwrap(), b"a");
    assert_eq!(std::fs::read(&second).unwrap(), b"{\"seq\":3,\"pr");
    assert_eq!(std::fs::read(&path).unwrap(), chain_of(2));
}

/// `chain_of(n)` with every line padded to `pad` bytes of `x`.
fn padded_chain(n: u64, pad: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut prev = GENESIS.to_owned();
    for seq in 1..=n {
        let line =
            serde_json::json!({"seq": seq, "pad": "x".repeat(pad), "prev": prev}).to_string();
        prev = line_hash(line.as_bytes());
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out
}

/// What [`Chain::open_at_head`] finds in a file holding `text`.
fn at_head(text: &[u8]) -> (Chain, Checked, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.jsonl");
    std::fs::write(&path, text).unwrap();
    let (chain, checked) = Chain::open_at_head::<serde_json::Value>(&path, Lock::Wait).unwrap();
    (chain, checked, dir)
}

#[test]
fn the_head_of_an_intact_chain_is_where_a_full_walk_ends() {
    // Short lines, and lines longer than the first read from the end, so
    // that the read has to reach further back.
    for text in [
        Vec::new(),
        chain_of(1),
        chain_of(2),
        chain_of(500),
        padded_chain(3, 3 * TAIL_READ as usize),
    ] {
        let walked = walk::<serde_json::Value>(&text);
        let (mut chain, checked, dir) = at_head(&text);
        assert!(checked.broken.is_none());
        assert_eq!(
            (chain.seq, &chain.last_hash),
            (walked.entries.len() as u64, &walked.last_hash)
        );
        assert_eq!(chain.end_offset(), text.len() as u64);
        chain.append_synced(&next_line(&chain)).unwrap();
        drop(chain);
        let after = std::fs::read(dir.path().join("log.jsonl")).unwrap();
        let walked = walk::<serde_json::Value>(&after);
        assert!(walked.broken.is_none());
        assert_eq!(
            walked.entries.len(),
            text.iter().filter(|&&b| b == b'\n').count() + 1
        );
    }
}

#[test]
fn a_head_that_does_not_fit_is_refused_where_and_why_a_full_walk_says() {
    let text = String::from_utf8(chain_of(4)).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let join = |ls: &[&str]| ls.iter().map(|l| format!("{l}\n")).collect::<String>();
    let cases = [
        // Cut off while written.
        text[..text.len() - 3].to_owned(),
        format!("{text}{{\"seq\":5"),
        // The line before the last edited, or dropped; the last two swapped.
        text.replacen(lines[2], &lines[2].replace("\"y\"", "\"z\""), 1),
        join(&[lines[0], lines[1], lines[3]]),
        join(&[lines[0], lines[1], lines[3], lines[2]]),
        // A last line that is not JSON, is empty, or has no seq.
        format!("{text}garbage\n"),
        format!("{text}\n"),
        format!(
            "{text}{{\"prev\":\"{}\"}}\n",
            line_hash(lines[3].as_bytes())
        ),
        // One line that does not start the chain.
        join(&[lines[1]]),
        "\n".to_owned(),
    ];
    for case in cases {
        let walked = walk::<serde_json::Value>(case.as_bytes());
        let (chain, checked, _dir) = at_head(case.as_bytes());
        let found = checked.broken.as_ref().map(|(n, f)| (*n, format!("{f:?}")));
        let expected = walked.broken.as_ref().map(|(n, f)| (*n, format!("{f:?}")));
        assert!(expected.is_some(), "{case}");
        assert_eq!(found, expected, "{case}");
        assert_eq!(checked.last_hash, walked.last_hash, "{case}");
        let mut chain = chain;
        let err = chain.append(b"{}").unwrap_err();
        assert!(err.to_string().contains("nothing may be chained"), "{err}");
    }
}

/// The deliberate limit of an append at the head: a break further back
/// is not looked for; the chain goes on and a full walk still finds it.
#[test]
fn an_edit_before_the_head_is_left_for_a_full_walk_to_find() {
    let text = String::from_utf8(chain_of(4)).unwrap();
    let edited = text.replacen("\"y\"", "\"z\"", 1);
    let (mut chain, checked, dir) = at_head(edited.as_bytes());
    assert!(checked.broken.is_none());
    assert_eq!(chain.seq, 4);
    chain.append_synced(&next_line(&chain)).unwrap();
    drop(chain);
    let after = std::fs::read(dir.path().join("log.jsonl")).unwrap();
    let walked = walk::<serde_json::Value>(&after);
    assert!(matches!(walked.broken, Some((2, Fault::Prev(_)))));
    let (chain, walked) =
        Chain::open::<serde_json::Value>(&dir.path().join("log.jsonl"), Lock::Wait).unwrap();
    assert!(walked.broken.is_some() && chain.torn);
}

#[test]
fn a_streamed_walk_hands_over_each_line_and_keeps_none() {
    let text = chain_of(5);
    let mut seqs = Vec::new();
    let checked =
        walk_from::<serde_json::Value>(&text[..text.len() - 1], |v| seqs.push(v["seq"].clone()))
            .unwrap();
    assert_eq!(
        seqs,
        (1..=4).map(serde_json::Value::from).collect::<Vec<_>>()
    );
    assert!(matches!(checked.broken, Some((5, Fault::Cut))));
    assert_eq!(checked.seq, 4);
}
