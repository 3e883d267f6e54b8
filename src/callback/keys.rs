//! Ed25519 callback keys: `spawn-elite keygen`, loading, and key ids.
//!
//! Key id: the first 16 bytes (128 bits) of SHA-256 over the raw 32-byte
//! Ed25519 public key, base64url-encoded without padding (22 characters).
//! It depends on the public key only, so the signer and every receiver
//! compute the same id from the key files alone.

use std::collections::HashMap;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::spki::der::zeroize::Zeroizing;
use ed25519_dalek::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, KeypairBytes,
};
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::error::{ExitCode, fail, fail_with};
use crate::fsutil::{self, TempFile, WriteOptions};

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
    let private_pem = private_key_pem(&sk)?;
    let public_pem = pk
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| key_err(format!("cannot encode the public key: {e}")))?;
    write_pair(
        [private, public.as_path()],
        [private_pem.as_bytes(), public_pem.as_bytes()],
        &mut |file, bytes| file.write_all(bytes),
    )
    .map_err(|(path, e)| {
        let remedy = if e.kind() == std::io::ErrorKind::StorageFull {
            "free some space and run `spawn-elite keygen` again"
        } else {
            "check that the directory is writable, or choose another path with -o"
        };
        fail_with(
            ExitCode::Io,
            format!(
                "cannot write key {}: {e}; neither key file was created: {remedy}",
                path.display()
            ),
            e,
        )
    })?;
    Ok(Generated {
        private_path: private.to_path_buf(),
        public_path: public,
        key_id: key_id(&pk),
    })
}

/// The private key as RFC 8410 PKCS#8 v1 PEM: `PrivateKeyInfo` version 0
/// holding only the 32-byte seed, as `openssl genpkey -algorithm ed25519`
/// writes it. (The v2 form, with the public key embedded, is still read
/// but not written: OpenSSL 3 and Python's `cryptography` refuse it.)
fn private_key_pem(sk: &SigningKey) -> anyhow::Result<Zeroizing<String>> {
    let v1 = KeypairBytes {
        secret_key: sk.to_bytes(),
        public_key: None,
    };
    v1.to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| key_err(format!("cannot encode the private key: {e}")))
}

/// Write a key pair so that a failure at any point leaves neither file, and
/// a key file never exists half-written or empty: both go to new temporary
/// files first (mode 0600 and 0644, exactly) and are flushed, then renamed
/// into place without replacing anything; if the second rename (or the
/// directory flush) fails, what was placed is removed. `write` writes the
/// bytes (tests make it fail). The error names the file that failed.
fn write_pair(
    paths: [&Path; 2],
    contents: [&[u8]; 2],
    write: &mut dyn FnMut(&mut fs::File, &[u8]) -> std::io::Result<()>,
) -> Result<(), (PathBuf, std::io::Error)> {
    let at = |p: &Path| {
        let p = p.to_path_buf();
        move |e| (p, e)
    };
    let [private, public] = paths;
    let [private_bytes, public_bytes] = contents;
    let temp = |path: &Path,
                bytes: &[u8],
                mode: u32,
                write: &mut dyn FnMut(&mut fs::File, &[u8]) -> std::io::Result<()>| {
        let opts = WriteOptions {
            mode,
            exact_mode: true,
            replace: false,
        };
        let mut tmp = TempFile::beside(path, opts)?;
        write(tmp.file(), bytes)?;
        tmp.file().sync_all()?;
        Ok::<_, std::io::Error>(tmp)
    };
    let private_tmp = temp(private, private_bytes, 0o600, write).map_err(at(private))?;
    let public_tmp = temp(public, public_bytes, 0o644, write).map_err(at(public))?;
    private_tmp.persist(private, false).map_err(at(private))?;
    let placed = match public_tmp.persist(public, false) {
        Err(e) => Err((public.to_path_buf(), e)),
        Ok(()) => fsutil::sync_dir(private).map_err(|e| {
            let _ = fs::remove_file(public);
            (private.to_path_buf(), e)
        }),
    };
    if placed.is_err() {
        let _ = fs::remove_file(private);
    }
    placed
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
            crate::output::warn(&format!(
                "private key {shown} is readable by group or others (mode {:o}); run `chmod 600 {shown}`",
                mode & 0o777
            ));
        }
    }
    // Blank lines around the block (a key pasted into a CI secret, an
    // editor's final newline) are not part of it.
    SigningKey::from_pkcs8_pem(text.trim()).map_err(|e| {
        key_err(format!(
            "{shown} is not an Ed25519 PKCS#8 PEM private key ({e}); create one with `spawn-elite keygen`"
        ))
    })
}

/// Load a public key (SPKI PEM, as `keygen` writes to `PATH.pub`).
pub fn load_public_key(path: &Path) -> anyhow::Result<VerifyingKey> {
    let text = fs::read_to_string(path)
        .map_err(|e| key_err(format!("cannot read public key {}: {e}", path.display())))?;
    VerifyingKey::from_public_key_pem(text.trim()).map_err(|e| {
        key_err(format!(
            "{} is not an Ed25519 SPKI PEM public key ({e}); use the .pub file written by `spawn-elite keygen`",
            path.display()
        ))
    })
}

/// The trusted keys by key id, from the directory given as `option`
/// (`--trust`, `--readers`), which the error names. An unreadable directory
/// is a bad value, like an unreadable `--ca-cert` (exit code 2).
pub fn load_trusted(dir: &Path, option: &str) -> anyhow::Result<HashMap<String, VerifyingKey>> {
    let entries = fs::read_dir(dir).map_err(|e| {
        let message = format!(
            "cannot read the {option} directory {}: {e}; create it and put *.pub keys in it",
            dir.display()
        );
        fail_with(ExitCode::Usage, message, e)
    })?;
    let mut keys = HashMap::new();
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "pub") {
            match load_public_key(&p) {
                Ok(k) => {
                    keys.insert(key_id(&k), k);
                }
                Err(e) => {
                    tracing::warn!(file = %p.display(), error = %e, "skipping a key that cannot be read")
                }
            }
        }
    }
    Ok(keys)
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

    /// RFC 8032 section 7.1, test 1.
    const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    fn test_key() -> SigningKey {
        let mut seed = [0u8; 32];
        for (i, b) in seed.iter_mut().enumerate() {
            *b = u8::from_str_radix(&SEED[2 * i..2 * i + 2], 16).unwrap();
        }
        SigningKey::from_bytes(&seed)
    }

    #[test]
    fn the_key_id_is_unchanged() {
        let pk = test_key().verifying_key();
        assert_eq!(crate::receipt::hex(pk.as_bytes()), PUBLIC);
        assert_eq!(key_id(&pk), "If4x36FUomFia_hUBG_SJw");
    }

    #[test]
    fn the_private_key_is_written_as_pkcs8_v1_and_v1_and_v2_are_read() {
        let sk = test_key();
        let pem = private_key_pem(&sk).unwrap();
        let (label, der) =
            ed25519_dalek::pkcs8::spki::der::pem::decode_vec(pem.as_bytes()).unwrap();
        assert_eq!(label, "PRIVATE KEY");
        // SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING {
        // OCTET STRING (32) } }: nothing else, as openssl writes it.
        let prefix = [
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        assert_eq!(der.len(), 48);
        assert_eq!(der[..16], prefix);
        assert_eq!(crate::receipt::hex(&der[16..]), SEED);

        let dir = tempfile::tempdir().unwrap();
        let v1 = dir.path().join("v1.pem");
        let v2 = dir.path().join("v2.pem");
        write_pair(
            [&v1, &v2],
            [
                pem.as_bytes(),
                sk.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
            ],
            &mut |f, b| f.write_all(b),
        )
        .unwrap();
        for path in [&v1, &v2] {
            let loaded = load_signing_key(path).unwrap();
            assert_eq!(loaded.to_bytes(), sk.to_bytes());
        }
    }

    #[test]
    fn keys_with_blank_lines_around_the_block_are_read() {
        let sk = test_key();
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("pasted.pem");
        let public = dir.path().join("pasted.pem.pub");
        let pem = private_key_pem(&sk).unwrap();
        let public_pem = sk
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        fs::write(&private, format!("\n  {}\n\n", pem.as_str())).unwrap();
        fs::write(&public, format!("\n{public_pem}\n\n")).unwrap();
        fs::set_permissions(&private, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            load_signing_key(&private).unwrap().to_bytes(),
            sk.to_bytes()
        );
        assert_eq!(load_public_key(&public).unwrap(), sk.verifying_key());
    }

    #[test]
    fn a_failed_key_write_leaves_neither_file() {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("k.pem");
        let public = public_path_for(&private);
        // Fail the first write, then the second after half its bytes.
        for fail_at in [0, 1] {
            let mut n = 0;
            let mut full = |f: &mut fs::File, b: &[u8]| {
                n += 1;
                if n > fail_at {
                    f.write_all(&b[..b.len() / 2])?;
                    return Err(std::io::ErrorKind::StorageFull.into());
                }
                f.write_all(b)
            };
            let (path, e) =
                write_pair([&private, &public], [b"private", b"public"], &mut full).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::StorageFull);
            assert_eq!(&path, if fail_at == 0 { &private } else { &public });
            let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
            assert!(left.is_empty(), "fail_at {fail_at}: {left:?}");
        }
        // The public key appears meanwhile: the private one is taken back
        // and the stranger's file is left alone.
        fs::write(&public, "theirs").unwrap();
        let (path, e) = write_pair([&private, &public], [b"private", b"public"], &mut |f, b| {
            f.write_all(b)
        })
        .unwrap_err();
        assert_eq!(
            (path, e.kind()),
            (public.clone(), std::io::ErrorKind::AlreadyExists)
        );
        assert!(!private.exists());
        assert_eq!(fs::read_to_string(&public).unwrap(), "theirs");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        // And with room, both are written with their modes.
        fs::remove_file(&public).unwrap();
        write_pair([&private, &public], [b"private", b"public"], &mut |f, b| {
            f.write_all(b)
        })
        .unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&private), mode(&public)), (0o600, 0o644));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
