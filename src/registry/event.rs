//! One line of the receiver's log read as a fleet event: which repository,
//! of which type and template set, received when and signed by whom.
//!
//! The receiver logs only receipts that `Receipt::parse` accepted, so this
//! reads just the fields the registry needs and leaves the rest (the file
//! list, the attestation's contents) unread. A line that is not a spawned
//! repository's receipt is an error with the reason, which the index
//! reports and skips.

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::SetRef;

/// What the registry takes from one log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub seq: u64,
    /// As logged (RFC 3339).
    pub received_at: String,
    /// `received_at` in Unix seconds: the strings do not sort as times
    /// (their fractions vary in length).
    pub received_unix: i64,
    pub keyid: String,
    pub merkle_root: String,
    /// The repository's name (`spawn.name`).
    pub name: String,
    /// Its type (`spawn.type`).
    pub kind: String,
    pub elite: bool,
    /// The `org` template value, when the spawn had one.
    pub org: Option<String>,
    /// The template set (receipt v2); `None` for a v1 receipt.
    pub set: Option<SetRef>,
    /// Whether the callback carried a signed attestation.
    pub signed: bool,
}

#[derive(Deserialize)]
struct Line {
    seq: u64,
    received_at: String,
    keyid: String,
    idempotency_key: String,
    receipt: Receipt,
    #[serde(default)]
    attestation: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Receipt {
    merkle_root: String,
    #[serde(default)]
    spawn: Option<Spawn>,
}

#[derive(Deserialize)]
struct Spawn {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    elite: bool,
    #[serde(default)]
    options: Options,
    #[serde(default)]
    templates: Option<Templates>,
}

#[derive(Deserialize, Default)]
struct Options {
    #[serde(default)]
    org: Option<String>,
}

#[derive(Deserialize)]
struct Templates {
    name: String,
    version: String,
    digest: String,
}

/// Read one log line (without its newline) as an event. The error is one
/// line saying why it is not one.
pub fn parse(line: &[u8]) -> Result<Event, String> {
    let l: Line = serde_json::from_slice(line).map_err(|e| {
        format!("not a receiver log line with a receipt ({e}); the log holds only what `spawn-elite receive` wrote, so check where this line came from")
    })?;
    let Some(spawn) = l.receipt.spawn else {
        return Err(format!(
            "its receipt {} has no spawn section (it was made by `spawn-elite receipt DIR`, not by a spawn), so it names no repository; send receipts of spawned repositories only",
            l.receipt.merkle_root
        ));
    };
    if l.idempotency_key != l.receipt.merkle_root {
        return Err(format!(
            "its idempotency_key {} is not its receipt's merkle_root {}; the line was not written by `spawn-elite receive`",
            l.idempotency_key, l.receipt.merkle_root
        ));
    }
    if let Some(problem) = crate::templates::values::name_problem(&spawn.name) {
        return Err(format!(
            "its receipt names no repository a spawn could make ({problem}); a sender's key made a receipt by hand, so check that key"
        ));
    }
    let texts = [
        ("type", Some(spawn.kind.as_str())),
        ("org", spawn.options.org.as_deref()),
        ("keyid", Some(l.keyid.as_str())),
        (
            "template set name",
            spawn.templates.as_ref().map(|t| t.name.as_str()),
        ),
        (
            "template set version",
            spawn.templates.as_ref().map(|t| t.version.as_str()),
        ),
        (
            "template set digest",
            spawn.templates.as_ref().map(|t| t.digest.as_str()),
        ),
    ];
    for (what, value) in texts {
        if let Some(v) = value
            && v.chars().any(char::is_control)
        {
            return Err(format!(
                "its {what} {v:?} holds control characters, which no spawn writes; a sender's key made this receipt by hand, so check that key"
            ));
        }
    }
    let received = l.received_at.parse::<jiff::Timestamp>().map_err(|e| {
        format!(
            "its received_at {:?} is not an RFC 3339 time ({e}); the line was not written by `spawn-elite receive`",
            l.received_at
        )
    })?;
    Ok(Event {
        seq: l.seq,
        received_unix: received.as_second(),
        received_at: l.received_at,
        keyid: l.keyid,
        merkle_root: l.receipt.merkle_root,
        name: spawn.name,
        kind: spawn.kind,
        elite: spawn.elite,
        org: spawn.options.org,
        set: spawn.templates.map(|t| SetRef {
            name: t.name,
            version: t.version,
            digest: t.digest,
        }),
        signed: l.attestation.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(receipt: serde_json::Value, attestation: bool) -> Vec<u8> {
        let mut l = json!({
            "seq": 3,
            "received_at": "2026-12-04T10:00:00.5Z",
            "keyid": "k1",
            "idempotency_key": receipt["merkle_root"],
            "content_digest": "sha-256=:AAAA:",
            "receipt": receipt,
        });
        if attestation {
            l["attestation"] = json!({"payloadType": "x", "payload": "", "signatures": []});
        }
        l["prev"] = json!(crate::chain::GENESIS);
        l.to_string().into_bytes()
    }

    fn receipt(spawn: serde_json::Value) -> serde_json::Value {
        json!({
            "format": "spawn-elite.receipt/v2",
            "tool": {"name": "spawn-elite", "version": "0.1.0"},
            "spawn": spawn,
            "created": "2026-12-04T10:00:00Z",
            "merkle_root": "ab".repeat(32),
            "leaf_count": 0,
            "files": [],
        })
    }

    #[test]
    fn a_receipt_with_a_name_no_spawn_makes_or_control_characters_is_no_event() {
        let spawn = |name: &str, version: &str| {
            receipt(json!({
                "name": name, "type": "service", "options": {},
                "templates": {"source": "dir", "name": "acme", "version": version, "digest": "cd".repeat(32)},
                "elite": true,
            }))
        };
        let why = parse(&line(spawn("Bad Name\n---", "1.0.0"), false)).unwrap_err();
        assert!(why.contains("names no repository"), "{why}");
        let why = parse(&line(spawn("ok", "\u{1b}[31m1.0.0"), false)).unwrap_err();
        assert!(
            why.contains("template set version") && why.contains("control"),
            "{why}"
        );
        assert!(parse(&line(spawn("ok", "1.0.0"), false)).is_ok());
    }

    #[test]
    fn a_v2_receipt_names_its_repository_set_and_org() {
        let r = receipt(json!({
            "name": "billing", "type": "rust-cli",
            "options": {"org": "acme", "license": "MIT"},
            "templates": {"source": "dir", "name": "acme", "version": "1.10.0", "digest": "cd".repeat(32)},
            "elite": true,
        }));
        let e = parse(&line(r, true)).unwrap();
        assert_eq!(
            e,
            Event {
                seq: 3,
                received_at: "2026-12-04T10:00:00.5Z".into(),
                received_unix: 1_796_378_400,
                keyid: "k1".into(),
                merkle_root: "ab".repeat(32),
                name: "billing".into(),
                kind: "rust-cli".into(),
                elite: true,
                org: Some("acme".into()),
                set: Some(SetRef {
                    name: "acme".into(),
                    version: "1.10.0".into(),
                    digest: "cd".repeat(32)
                }),
                signed: true,
            }
        );
    }

    #[test]
    fn a_v1_receipt_has_no_set() {
        let r = receipt(json!({
            "name": "old", "type": "lib", "options": {},
            "template_digest": "ef".repeat(32), "elite": false,
        }));
        let e = parse(&line(r, false)).unwrap();
        assert_eq!((e.set, e.org, e.signed), (None, None, false));
    }

    #[test]
    fn a_receipt_without_spawn_is_refused_with_the_reason() {
        let mut r = receipt(json!(null));
        r.as_object_mut().unwrap().remove("spawn");
        let why = parse(&line(r, false)).unwrap_err();
        assert!(why.contains("has no spawn section"), "{why}");
        assert!(why.contains("`spawn-elite receipt DIR`"), "{why}");
        assert!(!why.contains('\n'));
    }

    #[test]
    fn a_line_that_is_not_a_log_line_is_refused() {
        let why = parse(b"{\"seq\": 1}").unwrap_err();
        assert!(
            why.starts_with("not a receiver log line with a receipt"),
            "{why}"
        );
    }
}
