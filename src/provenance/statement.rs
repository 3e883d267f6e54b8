//! The in-toto Statement v1 a spawn-elite attestation carries: one subject
//! per file the receipt covers (by path and SHA-256, so `sha256sum` checks
//! each), and an SLSA Provenance v1 predicate saying what was asked for
//! (name, type, elite flag, values), from which template set and
//! spawn-elite, when, and which receipt it binds. docs/PROVENANCE.md is the
//! reference.

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::receipt::{RECEIPT_PATH, Receipt, hex};

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// What the predicate's `buildDefinition` describes: a repository rendered
/// from a template set by spawn-elite (docs/PROVENANCE.md, "buildType").
pub const BUILD_TYPE: &str =
    "https://github.com/vaultmesh/spawn-elite/blob/main/docs/PROVENANCE.md#buildtype-v1";
/// The builder: spawn-elite run by whoever holds the signing key.
pub const BUILDER_ID: &str =
    "https://github.com/vaultmesh/spawn-elite/blob/main/docs/PROVENANCE.md#builder";

/// What one attestation claims.
pub struct Claim<'a> {
    /// The receipt of the tree, with its spawn section.
    pub receipt: &'a Receipt,
    /// The SHA-256 of every file the receipt covers, by path, in the
    /// receipt's order.
    pub subjects: Vec<(String, [u8; 32])>,
    pub started: jiff::Timestamp,
    pub finished: jiff::Timestamp,
    /// The SHA-256 of the attestation this one follows (an update's
    /// predecessor), if there was one.
    pub previous: Option<[u8; 32]>,
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn time(t: jiff::Timestamp) -> String {
    crate::clock::stamp(t)
}

/// The statement, as the JSON value that is signed.
pub fn statement(claim: &Claim<'_>) -> Value {
    let receipt = claim.receipt;
    let subject: Vec<Value> = claim
        .subjects
        .iter()
        .map(|(path, digest)| json!({"name": path, "digest": {"sha256": hex(digest)}}))
        .collect();
    let spawn = receipt.spawn.as_ref();
    let mut external = json!({
        "name": spawn.map(|s| s.name.as_str()),
        "type": spawn.map(|s| s.kind.as_str()),
        "elite": spawn.map(|s| s.elite),
        "values": spawn.map(|s| &s.options),
    });
    if spawn.is_none() {
        external = json!({});
    }
    let mut dependencies = vec![json!({
        "name": "spawn-elite",
        "uri": format!("pkg:cargo/spawn-elite@{}", receipt.tool.version),
    })];
    if let Some(t) = spawn.and_then(|s| s.templates.as_ref()) {
        dependencies.push(json!({
            "name": format!("template-set:{}", t.name),
            "uri": format!("spawn-elite-template-set:{}/{}@{}", t.source, t.name, t.version),
            "annotations": {"source": t.source, "version": t.version, "digest": t.digest},
        }));
    }
    if let Some(previous) = &claim.previous {
        dependencies.push(json!({
            "name": "previous-attestation",
            "uri": format!("file:{}", super::ATTESTATION_PATH),
            "digest": {"sha256": hex(previous)},
        }));
    }
    json!({
        "_type": STATEMENT_TYPE,
        "subject": subject,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": {
                    "id": BUILDER_ID,
                    "version": {"spawn-elite": env!("CARGO_PKG_VERSION")},
                },
                "metadata": {
                    "startedOn": time(claim.started),
                    "finishedOn": time(claim.finished),
                },
                "byproducts": [{
                    "name": RECEIPT_PATH,
                    "digest": {"sha256": hex(&sha256(&receipt.to_json_bytes()))},
                    "annotations": {
                        "format": receipt.format,
                        "merkle_root": receipt.merkle_root,
                        "leaf_count": receipt.leaf_count,
                    },
                }],
            },
        },
    })
}

/// What a verifier reads back from a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// Path → SHA-256 hex, as the statement lists them.
    pub subjects: Vec<(String, String)>,
    /// The receipt's Merkle root the statement binds.
    pub merkle_root: String,
    /// The SHA-256 hex of the receipt file it binds.
    pub receipt_sha256: String,
    /// When the attestation was made (`finishedOn`).
    pub finished: String,
}

/// Read the parts of `payload` a verifier checks; `Err` says what is not
/// an in-toto Statement v1 with a spawn-elite SLSA predicate.
pub fn read(payload: &[u8]) -> Result<Read, String> {
    let v: Value =
        serde_json::from_slice(payload).map_err(|e| format!("the payload is not JSON: {e}"))?;
    if v["_type"] != STATEMENT_TYPE {
        return Err(format!("the payload's _type is not {STATEMENT_TYPE}"));
    }
    if v["predicateType"] != PREDICATE_TYPE {
        return Err(format!("the predicateType is not {PREDICATE_TYPE}"));
    }
    let predicate = &v["predicate"];
    if predicate["buildDefinition"]["buildType"] != BUILD_TYPE {
        return Err(format!("the buildType is not {BUILD_TYPE}"));
    }
    let mut subjects = Vec::new();
    for s in v["subject"].as_array().ok_or("it has no subject list")? {
        let name = s["name"].as_str().ok_or("a subject has no name")?;
        let digest = s["digest"]["sha256"]
            .as_str()
            .ok_or_else(|| format!("subject {name} has no sha256 digest"))?;
        subjects.push((name.to_owned(), digest.to_owned()));
    }
    let receipt = predicate["runDetails"]["byproducts"]
        .as_array()
        .and_then(|b| b.iter().find(|d| d["name"] == RECEIPT_PATH))
        .ok_or("it names no receipt among its byproducts")?;
    let text = |v: &Value, what: &str| {
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("it has no {what}"))
    };
    Ok(Read {
        subjects,
        merkle_root: text(
            &receipt["annotations"]["merkle_root"],
            "receipt Merkle root",
        )?,
        receipt_sha256: text(&receipt["digest"]["sha256"], "receipt digest")?,
        finished: text(
            &predicate["runDetails"]["metadata"]["finishedOn"],
            "finishedOn",
        )?,
    })
}
