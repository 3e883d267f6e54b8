//! A trust directory of `*.pub` keys, loaded at start and read again on a
//! miss, so that keys added while the receiver runs are picked up: the
//! senders' keys (`--trust`) and the readers' keys (`--readers`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};

use anyhow::Result;
use ed25519_dalek::VerifyingKey;

use crate::callback::keys;

pub struct KeyRing {
    dir: PathBuf,
    /// The option that named the directory, for its errors.
    option: &'static str,
    keys: RwLock<HashMap<String, VerifyingKey>>,
}

impl KeyRing {
    /// Load the keys of `dir`, given as `option` (see
    /// `callback::keys::load_trusted`).
    pub fn load(dir: &Path, option: &'static str) -> Result<KeyRing> {
        Ok(KeyRing {
            dir: dir.to_path_buf(),
            option,
            keys: RwLock::new(keys::load_trusted(dir, option)?),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many keys were loaded last.
    pub fn len(&self) -> usize {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// The key with id `id`; the directory is read again once on a miss.
    pub fn get(&self, id: &str) -> Option<VerifyingKey> {
        if let Some(k) = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
        {
            return Some(*k);
        }
        let fresh = keys::load_trusted(&self.dir, self.option).ok()?;
        let found = fresh.get(id).copied();
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        found
    }
}
