//! The timestamp of an attestation: what is stamped (the envelope's
//! signature bytes), getting a token for it, and checking the kept token
//! (`verify --tsa-cert`). The RFC 3161 protocol itself is in [`super::tsa`].

use std::path::Path;

use anyhow::Result;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::dsse::Envelope;
use super::tsa::{self, Failed, Query, Stamp, Tsa};
use crate::error::{ExitCode, fail};
use crate::fsutil::PlannedFile;
use crate::receipt::meta::{ATTESTATION_PATH, TIMESTAMP_PATH};

/// The bytes a timestamp covers: the envelope's first signature, the raw
/// 64-byte Ed25519 signature (base64-decoded from `signatures[0].sig`).
pub fn stamped_bytes(envelope: &[u8]) -> Result<Vec<u8>, String> {
    let env = Envelope::parse(envelope).map_err(|e| format!("{e:?}"))?;
    let sig = env
        .signatures
        .first()
        .ok_or("the envelope has no signature")?;
    STANDARD
        .decode(&sig.sig)
        .map_err(|e| format!("its signature is not base64 ({e})"))
}

/// A timestamp asked for and not (yet) kept: sent again by
/// `callback flush`.
#[derive(Debug, Clone)]
pub struct PendingStamp {
    pub url: String,
    pub query: Query,
    /// Why it is pending.
    pub reason: String,
}

/// What came of `--tsa`.
#[derive(Debug, Clone)]
pub enum Stamping {
    /// The token file, checked, to be written with the attestation.
    Stamped { file: PlannedFile, stamp: Stamp },
    /// The TSA could not be reached: queue it.
    Pending(PendingStamp),
}

/// Ask `tsa` for a timestamp of the attestation `envelope` (its file's
/// bytes). A TSA that answers with anything but a good token for this
/// request is an error (exit 17): the user asked for a stamp, and keeping
/// a bad one, or none without saying so, would mislead whoever checks it.
pub fn stamp_attestation(envelope: &[u8], tsa: &Tsa) -> Result<Stamping> {
    let bytes = stamped_bytes(envelope).map_err(|why| {
        fail(
            ExitCode::Internal,
            format!("the new attestation cannot be stamped: {why}"),
        )
    })?;
    let query = Query::new(&bytes).map_err(|why| fail(ExitCode::Io, why))?;
    match tsa::stamp(tsa, &query) {
        Ok(token) => Ok(Stamping::Stamped {
            file: PlannedFile {
                path: TIMESTAMP_PATH.to_owned(),
                contents: token.der,
                executable: false,
            },
            stamp: token.stamp,
        }),
        Err(Failed::Unreachable(reason)) => Ok(Stamping::Pending(PendingStamp {
            url: tsa.url.clone(),
            query,
            reason,
        })),
        Err(Failed::Refused(why)) => Err(fail(
            ExitCode::BadTimestamp,
            format!(
                "{why}; nothing was written: check the TSA URL (--tsa or SPAWN_ELITE_TSA), or sign without --tsa"
            ),
        )),
    }
}

/// What `verify --trust` found about the timestamp.
#[derive(Debug, Clone)]
pub enum TimestampCheck {
    /// No token beside the attestation.
    Absent,
    /// A token, not checked: no `--tsa-cert`.
    Unchecked,
    /// A token for this attestation, by a TSA the certificate vouches for.
    Checked(Stamp),
}

/// Check the token in `dir` (if any) against the attestation there and
/// the TSA certificate(s) in `tsa_cert`. A bad or foreign token is exit 17.
pub fn verify_timestamp(dir: &Path, tsa_cert: Option<&Path>) -> Result<TimestampCheck> {
    let at = dir.join(TIMESTAMP_PATH);
    let token = match std::fs::read(&at) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(TimestampCheck::Absent),
        Err(e) => {
            return Err(fail(
                ExitCode::Io,
                format!("cannot read {}: {e}", at.display()),
            ));
        }
    };
    let Some(cert) = tsa_cert else {
        return Ok(TimestampCheck::Unchecked);
    };
    let trusted = tsa::load_certificates(cert).map_err(|why| {
        fail(
            ExitCode::Usage,
            format!("--tsa-cert: {why}; pass the TSA's CA certificate (PEM)"),
        )
    })?;
    let envelope = std::fs::read(dir.join(ATTESTATION_PATH)).map_err(|e| {
        fail(
            ExitCode::Io,
            format!("cannot read {}: {e}", dir.join(ATTESTATION_PATH).display()),
        )
    })?;
    let bytes = stamped_bytes(&envelope).map_err(|why| {
        fail(
            ExitCode::BadSignature,
            format!("{}: {why}", dir.join(ATTESTATION_PATH).display()),
        )
    })?;
    tsa::verify(&token, &bytes, &trusted)
        .map(TimestampCheck::Checked)
        .map_err(|tsa::Bad(why)| {
            fail(
                ExitCode::BadTimestamp,
                format!(
                    "{} is not a good timestamp of this attestation: {why}",
                    at.display()
                ),
            )
        })
}
