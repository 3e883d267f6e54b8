//! Ed25519 callback keys: `spawn-elite keygen`, loading, and key ids.
//!
//! Key id: the first 16 bytes (128 bits) of SHA-256 over the raw 32-byte
//! Ed25519 public key, base64url-encoded without padding (22 characters).
//! It depends on the public key only, so the signer and every receiver
//! compute the same id from the key files alone.

use std::fs;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::error::{ExitCode, fail};
use crate::fsutil::{self, WriteOptions};

/// A problem with a key file: exit code 9 ("key error").
fn key_err(msg: String) -> anyhow::Error {
    fail(ExitCode::Key, msg)
}

/// The key id of a public key (see the module documentation).
pub fn key_id(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// What `keygen` wrote.
#[derive(Debug)]
pub struct Generated {
    pub private_path: PathBuf,
    pub public_path: PathBuf,
    pub key_id: String,
}

/// `PATH.pub` beside a private key path.
pub fn public_path_for(private: &Path) -> PathBuf {
    let mut s = private.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// Default private key location.
pub fn default_key_path() -> anyhow::Result<PathBuf> {
    Ok(crate::paths::data_dir()?.join("keys").join("callback.pem"))
}

/// Generate a key pair at `private` and `private.pub`. Refuses to overwrite
/// either file.
pub fn generate(private: &Path) -> anyhow::Result<Generated> {
    let public = public_path_for(private);
    for p in [private, public.as_path()] {
        if p.exists() || p.is_symlink() {
            return Err(key_err(format!(
                "{} already exists: refusing to overwrite a key; choose another path with -o",
                p.display()
            )));
        }
    }
    if let Some(dir) = private.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| key_err(format!("cannot create {}: {e}", dir.display())))?;
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| key_err(format!("no randomness from the operating system: {e}")))?;
    let sk = SigningKey::from_bytes(&seed);
    seed.fill(0);
    let pk = sk.verifying_key();
    let private_pem = sk
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| key_err(format!("cannot encode the private key: {e}")))?;
    let public_pem = pk
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| key_err(format!("cannot encode the public key: {e}")))?;
    write_new(private, private_pem.as_bytes(), 0o600)?;
    if let Err(e) = write_new(&public, public_pem.as_bytes(), 0o644) {
        // Leave no half pair behind.
        let _ = fs::remove_file(private);
        return Err(e);
    }
    Ok(Generated {
        private_path: private.to_path_buf(),
        public_path: public,
        key_id: key_id(&pk),
    })
}

/// Write a new key file with exactly `mode`, atomically; never replaces one.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let opts = WriteOptions {
        mode,
        exact_mode: true,
        replace: false,
    };
    fsutil::write_atomic(path, bytes, opts)
        .map_err(|e| key_err(format!("cannot create {}: {e}", path.display())))
}

/// The label of the first PEM block (`-----BEGIN LABEL-----`) in `text`.
fn pem_label(text: &str) -> Option<&str> {
    let start = text.find("-----BEGIN ")? + "-----BEGIN ".len();
    let rest = &text[start..];
    let end = rest.find("-----")?;
    Some(rest[..end].trim())
}

/// Load a private key. Warns on stderr when the file is readable by group
/// or others. A public key, another kind of PEM, or no PEM at all gets an
/// error saying what was passed instead.
pub fn load_signing_key(path: &Path) -> anyhow::Result<SigningKey> {
    let shown = path.display();
    let bytes = fs::read(path).map_err(|e| {
        key_err(format!(
            "cannot read key {shown}: {e}; create one with `spawn-elite keygen -o {shown}`"
        ))
    })?;
    let no_pem = || {
        key_err(format!(
            "no PEM private key found in {shown}; create a key with `spawn-elite keygen -o NEW.pem` and pass that"
        ))
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| no_pem())?;
    match pem_label(text) {
        None => return Err(no_pem()),
        Some("PUBLIC KEY") => {
            let private = path
                .to_str()
                .and_then(|p| p.strip_suffix(".pub"))
                .map_or_else(
                    || "the file `spawn-elite keygen` wrote beside it, without .pub".to_owned(),
                    str::to_owned,
                );
            return Err(key_err(format!(
                "{shown} is a public key; pass the private key ({private}) to --key"
            )));
        }
        Some("PRIVATE KEY") => {}
        Some(other) => {
            return Err(key_err(format!(
                "{shown} holds a PEM {other:?} block, not an Ed25519 PKCS#8 private key (\"PRIVATE KEY\"); create one with `spawn-elite keygen`"
            )));
        }
    }
    if let Ok(meta) = fs::metadata(path) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            eprintln!(
                "warning: private key {shown} is readable by group or others (mode {:o}); run `chmod 600 {shown}`",
                mode & 0o777
            );
        }
    }
    SigningKey::from_pkcs8_pem(text).map_err(|e| {
        key_err(format!(
            "{shown} is not an Ed25519 PKCS#8 PEM private key ({e}); create one with `spawn-elite keygen`"
        ))
    })
}

/// Load a public key (SPKI PEM, as `keygen` writes to `PATH.pub`).
pub fn load_public_key(path: &Path) -> anyhow::Result<VerifyingKey> {
    let text = fs::read_to_string(path)
        .map_err(|e| key_err(format!("cannot read public key {}: {e}", path.display())))?;
    VerifyingKey::from_public_key_pem(&text).map_err(|e| {
        key_err(format!(
            "{} is not an Ed25519 SPKI PEM public key ({e}); use the .pub file written by `spawn-elite keygen`",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_label_finds_the_first_block() {
        assert_eq!(
            pem_label("junk\n-----BEGIN PUBLIC KEY-----\nAAA\n-----END PUBLIC KEY-----\n"),
            Some("PUBLIC KEY")
        );
        assert_eq!(
            pem_label("-----BEGIN PRIVATE KEY-----\n"),
            Some("PRIVATE KEY")
        );
        assert_eq!(pem_label("just some text\n"), None);
        assert_eq!(pem_label("-----BEGIN unterminated"), None);
    }
}
