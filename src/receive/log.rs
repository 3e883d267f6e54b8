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

/// The callbacks already logged, each known by its Idempotency-Key (the
/// receipt's Merkle root) and its body's `Content-Digest`: a retry of a
/// callback is the same pair and is not logged again, while a second
/// receipt of the same files with another body (an update that changed
/// only the template set's version) is a new event. Each pair is kept as
/// the 32 bytes of its BLAKE3 ([`callback_id`]): those found when the log
/// was opened sorted in one array (no per-key overhead), those logged since
/// in a hash set.
#[derive(Debug, Default)]
struct Seen {
    opened: Vec<[u8; 32]>,
    added: HashSet<[u8; 32]>,
}

/// What identifies one callback: BLAKE3 of its Idempotency-Key and its
/// `Content-Digest` (a line logged without one counts as empty).
fn callback_id(idem: &str, content_digest: &str) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&(idem.len() as u64).to_le_bytes());
    h.update(idem.as_bytes());
    h.update(content_digest.as_bytes());
    *h.finalize().as_bytes()
}

impl Seen {
    /// Collect a callback while the log is opened; [`Seen::opened_all`]
    /// then sorts them.
    fn collect(&mut self, id: [u8; 32]) {
        self.opened.push(id);
    }

    fn opened_all(&mut self) {
        self.opened.sort_unstable();
        self.opened.dedup();
        self.opened.shrink_to_fit();
    }

    fn contains(&self, id: &[u8; 32]) -> bool {
        self.opened.binary_search(id).is_ok() || self.added.contains(id)
    }

    fn insert(&mut self, id: [u8; 32]) {
        self.added.insert(id);
    }
}

/// What opening the log needs of a line: its place in the chain, its
/// Idempotency-Key and its Content-Digest, read as `serde_json::Value` would read them (a member
/// that is absent or of another type is `None`, the last of repeated
/// members counts, a line that is not an object has none), without
/// building the rest of the line.
#[derive(Debug, Default)]
struct Logged {
    seq: Option<u64>,
    prev: Option<String>,
    idempotency_key: Option<String>,
    content_digest: Option<String>,
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
                content_digest: v
                    .get("content_digest")
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
    ContentDigest,
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
                    "content_digest" => Member::ContentDigest,
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
                Member::ContentDigest => logged.content_digest = text(map.next_value()?),
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
                let digest = line.content_digest.as_deref().unwrap_or("");
                seen.collect(callback_id(&key, digest));
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

    /// Log the receipt with Idempotency-Key `idem` sent in a body whose
    /// `Content-Digest` is `digest`, unless that callback was logged before
    /// (see [`Seen`]): `line(seq, prev)` makes the line. `logged` is told of the
    /// line once it is written (its seq, the file offset it starts at, its
    /// bytes), still in log order: the registry's index follows the log
    /// through it. `Ok(true)` once the line is on disk, `Ok(false)` if it
    /// was already there; `Err` says why it could not be written.
    pub fn accept(
        &self,
        idem: &str,
        digest: &str,
        line: impl FnOnce(u64, &str) -> String,
        logged: impl FnOnce(u64, u64, &[u8]),
    ) -> Result<bool, String> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let id = callback_id(idem, digest);
        if inner.seen.contains(&id) {
            return Ok(false);
        }
        let text = line(inner.chain.seq + 1, &inner.chain.last_hash);
        let offset = inner.chain.end_offset();
        inner
            .chain
            .append(text.as_bytes())
            .map_err(|e| format!("cannot write the log: {e}"))?;
        inner.seen.insert(id);
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

    /// A line's `seq`, `prev`, `idempotency_key` and `content_digest`, or
    /// why it was refused.
    type Read = Result<(Option<u64>, Option<String>, Option<String>, Option<String>), String>;

    /// What the log reads of a line, read as a whole `Value` (as the
    /// receiver read every line before) or as a [`Logged`].
    fn as_value(line: &[u8]) -> Read {
        let v = <serde_json::Value as Link>::parse(line).map_err(|e| e.to_string())?;
        let text = |name: &str| v.get(name).and_then(|k| k.as_str()).map(str::to_owned);
        Ok((
            v.seq(),
            v.prev().map(str::to_owned),
            text("idempotency_key"),
            text("content_digest"),
        ))
    }

    fn as_logged(line: &[u8]) -> Read {
        let l = Logged::parse(line).map_err(|e| e.to_string())?;
        Ok((l.seq, l.prev, l.idempotency_key, l.content_digest))
    }

    #[test]
    fn a_line_is_read_for_its_place_and_key_exactly_as_a_whole_value_reads_it() {
        let lines: [&[u8]; 21] = [
            br#"{"seq":1,"received_at":"t","idempotency_key":"ab","content_digest":"sha-256=:x:","receipt":{"files":[{"seq":9}]},"prev":"00"}"#,
            br#"{"seq":2,"seq":3,"prev":"a","prev":null,"idempotency_key":7,"content_digest":1}"#,
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
            Ok((
                Some(1),
                Some("00".to_owned()),
                Some("ab".to_owned()),
                Some("sha-256=:x:".to_owned())
            ))
        );
    }

    #[test]
    fn a_callback_is_known_by_its_key_and_its_body_together() {
        let root = blake3::hash(b"r").to_hex().to_string();
        let (a, b) = ("sha-256=:YQ==:", "sha-256=:Yg==:");
        let mut seen = Seen::default();
        seen.collect(callback_id(&root, a));
        seen.collect(callback_id(&root, a));
        seen.opened_all();
        assert_eq!(seen.opened.len(), 1);
        assert!(
            seen.contains(&callback_id(&root, a)),
            "a retry: the same pair"
        );
        assert!(
            !seen.contains(&callback_id(&root, b)),
            "the same files, another body"
        );
        assert!(!seen.contains(&callback_id(&root.to_uppercase(), a)));
        // The key's length is hashed too: no pair runs into another.
        assert_ne!(callback_id("ab", "c"), callback_id("a", "bc"));
        seen.insert(callback_id(&root, b));
        assert!(seen.contains(&callback_id(&root, b)));
    }
}
