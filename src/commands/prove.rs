//! `spawn-elite prove DIR PATH` and `spawn-elite verify-proof PROOF FILE`:
//! an inclusion proof for one file, and checking one offline.

use std::path::{Component, Path, PathBuf};

use anyhow::Result;

use super::shared::{read_receipt, receipt_path, stdout_write};
use crate::error::{ExitCode, fail, fail_with};
use crate::receipt::Receipt;
use crate::receipt::path::{self, Scope};
use crate::receipt::proof::Proof;

/// `spawn-elite prove DIR PATH [--receipt FILE]`: against the receipt when
/// there is one, since that is what a third party can trust; else against
/// the tree as it is now.
pub fn run(dir: &Path, path: &Path, receipt_file: Option<&Path>) -> Result<ExitCode> {
    super::shared::must_be_dir(dir)?;
    let candidates = PathCandidates::new(dir, path)?;
    let receipt_at = receipt_path(dir, receipt_file);
    let receipt = if receipt_file.is_some() || receipt_at.exists() {
        let receipt = read_receipt(dir, receipt_file)?.1;
        eprintln!("proving against {}", receipt_at.display());
        receipt
    } else {
        eprintln!(
            "no receipt at {}: proving against the tree as it is now",
            receipt_at.display()
        );
        Receipt::of_tree(dir, None, jiff::Timestamp::now())?
    };
    let wanted = candidates.choose(&receipt);
    let proof = Proof::build(&receipt, &wanted)?;
    stdout_write(&proof.to_json_bytes())?;
    Ok(ExitCode::Success)
}

/// What PATH may mean inside DIR. PATH may be relative to DIR (as the
/// receipt lists it), relative to the current directory (as a shell
/// completes it), or absolute; either of the last two must lie inside DIR.
struct PathCandidates {
    /// PATH resolved against the current directory, relative to DIR.
    from_cwd: Option<String>,
    /// PATH taken as relative to DIR.
    from_dir: Option<String>,
    /// Whether PATH names something on disk (from the current directory).
    exists: bool,
}

impl PathCandidates {
    /// Fails (exit 2) when PATH cannot name anything inside DIR, before any
    /// receipt is read.
    fn new(dir: &Path, path: &Path) -> Result<Self> {
        let shown = path.display();
        if path.to_str().is_none() {
            return Err(fail(
                ExitCode::Usage,
                format!("{shown} is not valid UTF-8, so no receipt can list it"),
            ));
        }
        let root = resolve(dir).unwrap_or_else(|| dir.to_path_buf());
        let from_cwd = resolve(path).and_then(|p| {
            let rel = p.strip_prefix(&root).ok()?;
            if rel.as_os_str().is_empty() {
                return None;
            }
            rel.to_str().map(str::to_owned)
        });
        let from_dir = if path.is_absolute() {
            None
        } else {
            dir_relative(path)
        };
        if from_cwd.is_none() && from_dir.is_none() {
            return Err(fail(
                ExitCode::Usage,
                format!(
                    "{shown} is not a file inside {}; name one relative to DIR, to the current directory, or by an absolute path inside DIR",
                    dir.display()
                ),
            ));
        }
        Ok(PathCandidates {
            from_cwd,
            from_dir,
            exists: std::fs::symlink_metadata(path).is_ok(),
        })
    }

    /// The path the receipt should list: a meaning the receipt does list
    /// (the current directory's first, as for every other command-line
    /// path), else the likeliest one, for the "not in the receipt" error.
    fn choose(self, receipt: &Receipt) -> String {
        let PathCandidates {
            from_cwd,
            from_dir,
            exists,
        } = self;
        let listed = |p: &Option<String>| p.as_deref().is_some_and(|p| receipt.lists(p));
        let pick = if listed(&from_cwd) {
            from_cwd
        } else if listed(&from_dir) {
            from_dir
        } else if exists && from_cwd.is_some() {
            from_cwd
        } else {
            from_dir.or(from_cwd)
        };
        // `new` made sure there is at least one meaning.
        pick.unwrap_or_default()
    }
}

/// PATH as a path inside DIR: `./` components dropped, `None` if it is
/// empty, climbs out with `..`, or could not be in a receipt.
fn dir_relative(path: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?),
            Component::CurDir => {}
            _ => return None,
        }
    }
    let joined = parts.join("/");
    path::problem(&joined, Scope::Covered)
        .is_none()
        .then_some(joined)
}

/// `path` made absolute against the current directory, with every existing
/// directory on the way resolved (symlinks included, so `DIR` given through
/// a link still contains its files), but the last component left as it is:
/// a symlink in the tree is proved as a link, not as what it points to.
fn resolve(path: &Path) -> Option<PathBuf> {
    let mut abs = PathBuf::new();
    for c in std::path::absolute(path).ok()?.components() {
        match c {
            Component::ParentDir => {
                abs.pop();
            }
            Component::CurDir => {}
            other => abs.push(other),
        }
    }
    let Some(name) = abs.file_name().map(ToOwned::to_owned) else {
        return Some(abs);
    };
    let mut base = abs.parent()?.to_path_buf();
    let mut missing = Vec::new();
    loop {
        if let Ok(mut real) = base.canonicalize() {
            real.extend(missing.iter().rev());
            real.push(name);
            return Some(real);
        }
        missing.push(base.file_name()?.to_owned());
        base = base.parent()?.to_path_buf();
    }
}

/// `spawn-elite verify-proof PROOF FILE [--root HEX]`
pub fn verify_proof(proof_file: &Path, file: &Path, root: Option<&str>) -> Result<ExitCode> {
    let root = root.map(expected_root).transpose()?;
    let root = root.as_deref();
    let bytes = std::fs::read(proof_file).map_err(|e| {
        let message = format!(
            "cannot read proof {}: {e}; check the path",
            proof_file.display()
        );
        fail_with(ExitCode::Io, message, e)
    })?;
    let checked = Proof::parse(&bytes, &proof_file.display().to_string())?;
    checked.verify_file(file, root)?;
    let p = &checked.proof;
    stdout_write(
        format!(
            "ok: {} is {:?}, leaf {} of {} under root {}\n",
            file.display(),
            p.path,
            p.leaf_index,
            p.leaf_count,
            p.merkle_root
        )
        .as_bytes(),
    )?;
    Ok(ExitCode::Success)
}

/// `--root HEX` in the one spelling receipts use: 64 hex digits, any case.
fn expected_root(hex: &str) -> Result<String> {
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(hex.to_ascii_lowercase());
    }
    Err(fail(
        ExitCode::Usage,
        format!(
            "--root {hex:?} is not a Merkle root; give the 64 hex digits of a receipt's merkle_root"
        ),
    ))
}
