//! The sending side of callbacks: keys, receipts to send, `callback send`
//! and the outbox it queues in.

use std::path::PathBuf;

use super::{Outcome, Sandbox};

impl Sandbox {
    /// `callback send --receipt RECEIPT --url URL --key KEY EXTRA...`.
    pub fn send(&self, receipt: &str, url: &str, key: &str, extra: &[&str]) -> Outcome {
        let mut args = send_args(receipt, url, key);
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// `keygen -o PATH`, returning (private key path, key id).
    pub fn keygen(&self, name: &str) -> (PathBuf, String) {
        let path = self.path().join(format!("{name}.pem"));
        let out = self.run(["keygen", "-o", path.to_str().expect("utf8")]);
        assert!(out.success(), "keygen: {}", out.stderr);
        let id = out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("key id:").map(|s| s.trim().to_owned()))
            .expect("keygen prints the key id");
        (path, id)
    }

    /// keygen and trust the public key.
    pub fn trusted_key(&self, name: &str) -> (PathBuf, String) {
        let (path, id) = self.keygen(name);
        let mut public = path.clone().into_os_string();
        public.push(".pub");
        std::fs::copy(&public, self.trust().join(format!("{name}.pub"))).expect("copy pub");
        (path, id)
    }

    /// Write `receipt_json(seed)` to `name`.
    pub fn write_receipt(&self, name: &str, seed: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, receipt_json(seed)).expect("write receipt");
        p
    }

    pub fn outbox_files(&self) -> Vec<PathBuf> {
        match std::fs::read_dir(self.outbox()) {
            Ok(rd) => {
                let mut v: Vec<PathBuf> = rd
                    .map(|e| e.expect("dir entry").path())
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect();
                v.sort();
                v
            }
            Err(_) => Vec::new(),
        }
    }
}

/// The arguments of `callback send` for one receipt, URL and key.
pub fn send_args<'a>(receipt: &'a str, url: &'a str, key: &'a str) -> Vec<&'a str> {
    vec![
        "callback",
        "send",
        "--receipt",
        receipt,
        "--url",
        url,
        "--key",
        key,
    ]
}

/// A valid `spawn-elite.receipt/v1` receipt of a one-file tree whose
/// `README.md` holds `seed`: distinct seeds give distinct roots. The root is
/// computed here from docs/RECEIPT.md (a one-leaf tree's root is its leaf).
pub fn receipt_json(seed: &str) -> String {
    let content = format!("{seed}\n");
    format!(
        "{{\n  \"format\": \"spawn-elite.receipt/v1\",\n  \"tool\": {{\"name\": \"spawn-elite\", \"version\": \"0.1.0\"}},\n  \"created\": \"2026-11-26T10:00:00Z\",\n  \"merkle_root\": \"{}\",\n  \"leaf_count\": 1,\n  \"files\": [{{\"path\": \"README.md\", \"size\": {}, \"mode\": \"100644\", \"blake3\": \"{}\"}}]\n}}\n",
        root_for(seed),
        content.len(),
        blake3::hash(content.as_bytes()).to_hex()
    )
}

/// `receipt_json(seed)` as a spawn's receipt (v2): repository `name`, a
/// service from the embedded set, so the registry indexes it.
pub fn spawn_receipt_json(seed: &str, name: &str) -> String {
    let content = format!("{seed}\n");
    serde_json::json!({
        "format": "spawn-elite.receipt/v2",
        "tool": {"name": "spawn-elite", "version": "0.1.0"},
        "spawn": {
            "name": name,
            "type": "service",
            "options": {},
            "templates": {
                "source": "embedded",
                "name": "spawn-elite",
                "version": "1.0.0",
                "digest": blake3::hash(b"set").to_hex().to_string(),
            },
            "elite": true,
        },
        "created": "2026-11-26T10:00:00Z",
        "merkle_root": root_for(seed),
        "leaf_count": 1,
        "files": [{
            "path": "README.md",
            "size": content.len(),
            "mode": "100644",
            "blake3": blake3::hash(content.as_bytes()).to_hex().to_string(),
        }],
    })
    .to_string()
}

/// The merkle_root of `receipt_json(seed)`.
pub fn root_for(seed: &str) -> String {
    let content = blake3::hash(format!("{seed}\n").as_bytes());
    let path = "README.md";
    let mut leaf = blake3::Hasher::new();
    leaf.update(&[0x00]);
    leaf.update(&(path.len() as u64).to_le_bytes());
    leaf.update(path.as_bytes());
    leaf.update(&0o100644u32.to_le_bytes());
    leaf.update(content.as_bytes());
    leaf.finalize().to_hex().to_string()
}
