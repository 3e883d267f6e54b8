//! Unit tests of the receipt: parsing valid, arbitrary and mutated
//! receipts, and spawn fields that round-trip under their documented names.

use super::*;
use proptest::prelude::*;

fn valid_receipt_json() -> Vec<u8> {
    let files = vec![FileEntry {
        path: "a".into(),
        size: 1,
        mode: "100644".into(),
        blake3: hex(blake3::hash(b"a").as_bytes()),
    }];
    let leaves = vec![merkle::leaf_hash(
        "a",
        MODE_FILE,
        blake3::hash(b"a").as_bytes(),
    )];
    Receipt {
        format: FORMAT.into(),
        tool: Tool {
            name: "spawn-elite".into(),
            version: "0".into(),
        },
        spawn: None,
        created: "2026-01-01T00:00:00Z".into(),
        merkle_root: hex(&merkle::root(&leaves)),
        leaf_count: 1,
        files,
    }
    .to_json_bytes()
}

#[test]
fn a_valid_receipt_parses() {
    assert!(Receipt::parse(&valid_receipt_json(), "t").is_ok());
}

#[test]
fn spawn_fields_survive_a_round_trip_under_their_documented_names() -> Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("f"), "x")?;
    let spawn = SpawnInfo {
        name: "my-svc".into(),
        kind: "service".into(),
        options: BTreeMap::from([("port".into(), "8000".into())]),
        template_digest: None,
        templates: Some(TemplatesInfo {
            source: "dir".into(),
            name: "acme".into(),
            version: "2".into(),
            digest: "d".into(),
        }),
        elite: true,
    };
    let r = Receipt::of_tree(dir.path(), Some(spawn), jiff::Timestamp::UNIX_EPOCH)?;
    let bytes = r.to_json_bytes();
    let v: serde_json::Value = serde_json::from_slice(&bytes)?;
    assert_eq!(v["spawn"]["type"], "service");
    assert_eq!(v["spawn"]["options"]["port"], "8000");
    assert_eq!(v["format"], FORMAT_V2);
    assert_eq!(v["spawn"]["templates"]["source"], "dir");
    assert!(v["spawn"].get("template_digest").is_none());
    assert_eq!(v["created"], "1970-01-01T00:00:00Z");
    assert_eq!(Receipt::parse(&bytes, "t")?, r);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(2000)
    ))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Receipt::parse(&bytes, "fuzz");
    }

    /// Well-formed JSON with the right format and arbitrary field values
    /// reaches the deeper checks, which must reject or accept cleanly.
    #[test]
    fn structured_receipts_never_panic_and_accepted_ones_round_trip(
        files in proptest::collection::vec(
            (
                "[a-z./\\x00é]{0,6}",
                any::<u64>(),
                prop::sample::select(vec!["100644", "100755", "120000", "100600", ""]),
                "[0-9a-fA-F]{0,65}",
            ),
            0..6,
        ),
        leaf_count in 0u64..8,
        root in "[0-9a-f]{64}|[a-z]{0,3}",
        created in "2026-01-01T00:00:00Z|[0-9TZ:-]{0,22}",
    ) {
        let files: Vec<serde_json::Value> = files
            .into_iter()
            .map(|(path, size, mode, hash)| serde_json::json!({
                "path": path, "size": size, "mode": mode, "blake3": hash,
            }))
            .collect();
        let doc = serde_json::json!({
            "format": FORMAT,
            "tool": {"name": "spawn-elite", "version": "0"},
            "created": created,
            "merkle_root": root,
            "leaf_count": leaf_count,
            "files": files,
        });
        if let Ok(r) = Receipt::parse(doc.to_string().as_bytes(), "fuzz") {
            let again = Receipt::parse(&r.to_json_bytes(), "fuzz");
            prop_assert_eq!(again.ok(), Some(r));
        }
    }

    #[test]
    fn mutated_receipts_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = valid_receipt_json();
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        let keep = cut.index(bytes.len() + 1);
        let _ = Receipt::parse(&bytes[..keep], "fuzz");
    }
}
