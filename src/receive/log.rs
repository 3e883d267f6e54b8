//! The receiver's log of accepted receipts: a hash chain (see
//! [`crate::chain`]) held locked for as long as the receiver runs, with
//! group commit, so that a 204 is only ever sent for a line on disk. A line
//! that cannot be written (a full disk) is undone before the error is
//! returned, so later lines are never chained onto a partial one.
//!
//! The log is opened in memory that does not grow with its lines' size: it
//! is walked line by line, each line read only for its `seq`, `prev` and
//! `idempotency_key` ([`Logged`]), and the keys are kept as 32 bytes each
//! ([`Seen`]): about 32 MB for a million lines.

use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::io::ErrorKind;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use anyhow::Result;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::chain::{Chain, Fault, Link, Lock};
use crate::error::{ExitCode, fail, fail_with};

pub struct Log {
    inner: Mutex<Inner>,
    /// Group commit: the highest `seq` known to be on disk, and a handle to
    /// flush the log with. One `fdatasync` covers every line written before
    /// it, so concurrent requests share it.
    synced: Mutex<u64>,
    sync_file: File,
}

struct Inner {
    chain: Chain,
    /// The Idempotency-Keys already logged.
    seen: Seen,
}

/// A set of Idempotency-Keys, small: a key is a receipt's merkle root, 64
/// lowercase hex digits, kept as its 32 bytes. Those found when the log
/// was opened are sorted in one array (no per-key overhead); those logged
/// since are hashed. Any other key (the log keeps whatever a sender sent)
/// is kept as it is, in a set of its own.
#[derive(Debug, Default)]
struct Seen {
    opened: Vec<[u8; 32]>,
    added: HashSet<[u8; 32]>,
    other: HashSet<String>,
}

impl Seen {
    /// The 32 bytes of a key written as 64 lowercase hex digits (exactly
    /// as `to_hex` writes them back, so no two keys share bytes).
    fn root(key: &str) -> Option<[u8; 32]> {
        let hash = blake3::Hash::from_hex(key).ok()?;
        (hash.to_hex().as_str() == key).then(|| *hash.as_bytes())
    }

    /// Collect a key while the log is opened; [`Seen::opened_all`] then
    /// sorts them.
    fn collect(&mut self, key: String) {
        match Seen::root(&key) {
            Some(root) => self.opened.push(root),
            None => {
                self.other.insert(key);
            }
        }
    }

    fn opened_all(&mut self) {
        self.opened.sort_unstable();
        self.opened.dedup();
        self.opened.shrink_to_fit();
    }

    fn contains(&self, key: &str) -> bool {
        match Seen::root(key) {
            Some(root) => self.opened.binary_search(&root).is_ok() || self.added.contains(&root),
            None => self.other.contains(key),
        }
    }

    fn insert(&mut self, key: &str) {
        match Seen::root(key) {
            Some(root) => {
                self.added.insert(root);
            }
            None => {
                self.other.insert(key.to_owned());
            }
        }
    }
}

/// What opening the log needs of a line: its place in the chain and its
/// Idempotency-Key, read as `serde_json::Value` would read them (a member
/// that is absent or of another type is `None`, the last of repeated
/// members counts, a line that is not an object has none), without
/// building the rest of the line.
#[derive(Debug, Default)]
struct Logged {
    seq: Option<u64>,
    prev: Option<String>,
    idempotency_key: Option<String>,
}

impl Link for Logged {
    fn seq(&self) -> Option<u64> {
        self.seq
    }
    fn prev(&self) -> Option<&str> {
        self.prev.as_deref()
    }
    /// Read lean; a line that read refuses is read whole instead, as every
    /// line was before, so that it is refused with the same message (the
    /// lean read can place an error a column apart).
    fn parse(line: &[u8]) -> serde_json::Result<Self> {
        match serde_json::from_slice::<Logged>(line) {
            Ok(logged) => Ok(logged),
            Err(_) => serde_json::from_slice::<serde_json::Value>(line).map(|v| Logged {
                seq: v.seq(),
                prev: v.prev().map(str::to_owned),
                idempotency_key: v
                    .get("idempotency_key")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned),
            }),
        }
    }
}

impl<'de> Deserialize<'de> for Logged {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LoggedVisitor)
    }
}

/// The members of a line that [`Logged`] reads.
enum Member {
    Seq,
    Prev,
    IdempotencyKey,
    Other,
}

impl<'de> Deserialize<'de> for Member {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Name;
        impl Visitor<'_> for Name {
            type Value = Member;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Member, E> {
                Ok(match name {
                    "seq" => Member::Seq,
                    "prev" => Member::Prev,
                    "idempotency_key" => Member::IdempotencyKey,
                    _ => Member::Other,
                })
            }
        }
        d.deserialize_identifier(Name)
    }
}

struct LoggedVisitor;

impl<'de> Visitor<'de> for LoggedVisitor {
    type Value = Logged;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Logged, A::Error> {
        let mut logged = Logged::default();
        while let Some(member) = map.next_key::<Member>()? {
            match member {
                Member::Seq => logged.seq = map.next_value::<serde_json::Value>()?.as_u64(),
                Member::Prev => logged.prev = text(map.next_value()?),
                Member::IdempotencyKey => logged.idempotency_key = text(map.next_value()?),
                Member::Other => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(logged)
    }
    // Any other value is a line without the members.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Logged, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Logged::default())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Logged, E> {
        Ok(Logged::default())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Logged, E> {
        Ok(Logged::default())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Logged, E> {
        Ok(Logged::default())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Logged, E> {
        Ok(Logged::default())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Logged, E> {
        Ok(Logged::default())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Logged, E> {
        Ok(Logged::default())
    }
}

/// A value read and dropped, checked as a `Value` is checked (numbers in
/// range, strings valid), which `serde::de::IgnoredAny` does not do.
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_entry::<Skip, Skip>()?.is_some() {}
        Ok(Skip)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
}

/// A member's value if it is a string.
fn text(value: serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    }
}

impl Log {
    /// Open the log, check its chain line by line, and collect the keys it
    /// accepted. A broken log exits with code 1, like a broken ledger.
    pub fn open(path: &Path) -> Result<Log> {
        let shown = path.display();
        let mut seen = Seen::default();
        let opened = Chain::open_walking::<Logged>(path, Lock::Fail, |line| {
            if let Some(key) = line.idempotency_key {
                seen.collect(key);
            }
        });
        seen.opened_all();
        let (chain, walked) = opened.map_err(|e| {
            if e.kind() == ErrorKind::WouldBlock {
                return fail(
                    ExitCode::Usage,
                    format!(
                        "log {shown} is in use by another receiver; give this one its own --log"
                    ),
                );
            }
            let message = format!("cannot open log {shown} for appending: {e}");
            fail_with(ExitCode::Io, message, e)
        })?;
        if let Some((n, fault)) = &walked.broken {
            let message = match fault {
                Fault::Cut => format!(
                    "log {shown} ends in a partial line (cut off while written); run `spawn-elite ledger repair --file {}` to set it aside and keep the {} complete entries before it",
                    crate::ledger::shell_word(&shown.to_string()),
                    n - 1
                ),
                Fault::Unparsable(e) => format!(
                    "log {shown} is broken at line {n}: not JSON ({e}); move the file aside"
                ),
                Fault::Seq(_) => format!(
                    "log {shown} is broken at line {n}: its seq is not {n}, lines were removed or reordered; move the file aside"
                ),
                Fault::Prev(_) => format!(
                    "log {shown} is broken at line {n}: its prev is not the BLAKE3 of the line before; move the file aside"
                ),
            };
            return Err(fail(ExitCode::Drift, message));
        }
        let sync_file = chain.try_clone_file().map_err(|e| {
            let message = format!("cannot open log {shown}: {e}");
            fail_with(ExitCode::Io, message, e)
        })?;
        Ok(Log {
            synced: Mutex::new(chain.seq),
            sync_file,
            inner: Mutex::new(Inner { chain, seen }),
        })
    }

    /// How many lines the log holds.
    pub fn seq(&self) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .chain
            .seq
    }

    /// Log the receipt with Idempotency-Key `idem`, unless it was logged
    /// before: `line(seq, prev)` makes the line. `logged` is told of the
    /// line once it is written (its seq, the file offset it starts at, its
    /// bytes), still in log order: the registry's index follows the log
    /// through it. `Ok(true)` once the line is on disk, `Ok(false)` if it
    /// was already there; `Err` says why it could not be written.
    pub fn accept(
        &self,
        idem: &str,
        line: impl FnOnce(u64, &str) -> String,
        logged: impl FnOnce(u64, u64, &[u8]),
    ) -> Result<bool, String> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.seen.contains(idem) {
            return Ok(false);
        }
        let text = line(inner.chain.seq + 1, &inner.chain.last_hash);
        let offset = inner.chain.end_offset();
        inner
            .chain
            .append(text.as_bytes())
            .map_err(|e| format!("cannot write the log: {e}"))?;
        inner.seen.insert(idem);
        let my_seq = inner.chain.seq;
        logged(my_seq, offset, text.as_bytes());
        drop(inner);

        // 204 only once the line is on disk.
        let mut synced = self.synced.lock().unwrap_or_else(PoisonError::into_inner);
        if *synced < my_seq {
            let written = self
                .inner
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .chain
                .seq;
            self.sync_file
                .sync_data()
                .map_err(|e| format!("cannot flush the log to disk: {e}"))?;
            *synced = written;
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line's `seq`, `prev` and `idempotency_key`, or why it was refused.
    type Read = Result<(Option<u64>, Option<String>, Option<String>), String>;

    /// What the log reads of a line, read as a whole `Value` (as the
    /// receiver read every line before) or as a [`Logged`].
    fn as_value(line: &[u8]) -> Read {
        let v = <serde_json::Value as Link>::parse(line).map_err(|e| e.to_string())?;
        let key = v.get("idempotency_key").and_then(|k| k.as_str());
        Ok((v.seq(), v.prev().map(str::to_owned), key.map(str::to_owned)))
    }

    fn as_logged(line: &[u8]) -> Read {
        let l = Logged::parse(line).map_err(|e| e.to_string())?;
        Ok((l.seq, l.prev, l.idempotency_key))
    }

    #[test]
    fn a_line_is_read_for_its_place_and_key_exactly_as_a_whole_value_reads_it() {
        let lines: [&[u8]; 21] = [
            br#"{"seq":1,"received_at":"t","idempotency_key":"ab","receipt":{"files":[{"seq":9}]},"prev":"00"}"#,
            br#"{"seq":2,"seq":3,"prev":"a","prev":null,"idempotency_key":7}"#,
            br#"{"seq":-1,"prev":["x"]}"#,
            br#"{"seq":1.0}"#,
            br#"{"seq":"1","se\u0071":4,"prev":"\u00e9\n"}"#,
            br#"{"seq":18446744073709551616}"#,
            b"5",
            b"[1,{\"seq\":1}]",
            b"\"seq\"",
            b"null",
            b"true",
            b"",
            b"{",
            b"{\"seq\":1} x",
            b"{\"seq\":1,}",
            b"{\"a\":\"\xff\"}",
            b"{\"a\":\"\x01\"}",
            b"{\"a\":\"\\q\"}",
            b"{\"a\":1e400,\"seq\":1}",
            b"{\"a\":\"\\ud800\",\"seq\":1}",
            b"{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
        ];
        for line in lines {
            let shown = String::from_utf8_lossy(line);
            assert_eq!(as_logged(line), as_value(line), "{shown}");
        }
        assert_eq!(
            as_logged(lines[0]),
            Ok((Some(1), Some("00".to_owned()), Some("ab".to_owned())))
        );
    }

    #[test]
    fn keys_are_found_again_whether_kept_as_bytes_or_as_text() {
        let root = blake3::hash(b"r").to_hex().to_string();
        let upper = root.to_uppercase();
        assert_eq!(Seen::root(&root), Some(*blake3::hash(b"r").as_bytes()));
        assert_eq!(Seen::root(&upper), None, "kept as sent, apart from {root}");
        assert_eq!(Seen::root(&root[..62]), None);

        let mut seen = Seen::default();
        for key in [root.clone(), upper.clone(), "abc".to_owned(), root.clone()] {
            seen.collect(key);
        }
        seen.opened_all();
        assert_eq!((seen.opened.len(), seen.other.len()), (1, 2));
        assert!(seen.contains(&root) && seen.contains(&upper) && seen.contains("abc"));
        let later = blake3::hash(b"s").to_hex().to_string();
        assert!(!seen.contains(&later) && !seen.contains("abd"));
        seen.insert(&later);
        seen.insert("abd");
        assert!(seen.contains(&later) && seen.contains("abd"));
        assert!(!seen.contains(blake3::hash(b"t").to_hex().as_str()));
    }
}
