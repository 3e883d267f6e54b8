//! The subcommands that read receipts, proofs and the ledger: `verify`,
//! `receipt`, `prove`, `verify-proof` and `ledger`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::exit_codes::{ExitCode, fail};
use crate::ledger;
use crate::proof::Proof;
use crate::receipt::{self, Receipt};
use crate::scan::RECEIPT_PATH;

fn stdout_write(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| {
            fail(
                ExitCode::Io,
                format!("cannot write to standard output: {e}"),
            )
        })
}

fn receipt_path(dir: &Path, explicit: Option<&Path>) -> PathBuf {
    explicit.map_or_else(|| dir.join(RECEIPT_PATH), Path::to_path_buf)
}

fn read_receipt(dir: &Path, explicit: Option<&Path>) -> Result<(PathBuf, Receipt)> {
    let path = receipt_path(dir, explicit);
    if explicit.is_none() && !path.exists() {
        return Err(fail(
            ExitCode::Io,
            format!(
                "no receipt at {}; pass one with --receipt FILE, or make one with `spawn-elite receipt DIR -o FILE`",
                path.display()
            ),
        ));
    }
    let receipt = Receipt::read(&path)?;
    Ok((path, receipt))
}

/// `spawn-elite verify [DIR] [--receipt FILE] [--json]`
pub fn verify(dir: &Path, receipt_file: Option<&Path>, json: bool) -> Result<ExitCode> {
    let (path, expected) = read_receipt(dir, receipt_file)?;
    let actual = Receipt::of_tree(dir, None, jiff::Timestamp::now())?;
    let drift = receipt::compare(&expected, &actual);
    if json {
        let report = serde_json::json!({
            "ok": drift.is_empty(),
            "receipt": path.display().to_string(),
            "expected_root": expected.merkle_root,
            "actual_root": actual.merkle_root,
            "modified": drift.modified,
            "added": drift.added,
            "removed": drift.removed,
            "mode_changed": drift.mode_changed,
        });
        let mut bytes = serde_json::to_vec_pretty(&report).unwrap_or_default();
        bytes.push(b'\n');
        stdout_write(&bytes)?;
    } else {
        let mut text = String::new();
        for p in &drift.modified {
            text.push_str(&format!("modified      {p}\n"));
        }
        for p in &drift.added {
            text.push_str(&format!("added         {p}\n"));
        }
        for p in &drift.removed {
            text.push_str(&format!("removed       {p}\n"));
        }
        for m in &drift.mode_changed {
            text.push_str(&format!(
                "mode-changed  {} ({} -> {})\n",
                m.path, m.from, m.to
            ));
        }
        if drift.is_empty() {
            text.push_str(&format!(
                "ok: {} matches {} ({} files, root {})\n",
                dir.display(),
                path.display(),
                expected.leaf_count,
                expected.merkle_root
            ));
        }
        stdout_write(text.as_bytes())?;
    }
    if drift.is_empty() {
        Ok(ExitCode::Success)
    } else {
        let n = drift.modified.len()
            + drift.added.len()
            + drift.removed.len()
            + drift.mode_changed.len();
        eprintln!(
            "drift: {} differs from {} in {n} place(s) (root {} now, {} in the receipt)",
            dir.display(),
            path.display(),
            actual.merkle_root,
            expected.merkle_root
        );
        Ok(ExitCode::Drift)
    }
}

/// `spawn-elite receipt DIR [-o FILE]`
pub fn receipt(dir: &Path, out: Option<&Path>) -> Result<ExitCode> {
    let receipt = Receipt::of_tree(dir, None, crate::config::now()?)?;
    match out {
        Some(path) => {
            receipt.write(path)?;
            eprintln!(
                "wrote {} ({} files, root {})",
                path.display(),
                receipt.leaf_count,
                receipt.merkle_root
            );
        }
        None => stdout_write(&receipt.to_json_bytes())?,
    }
    Ok(ExitCode::Success)
}

/// `spawn-elite prove DIR PATH [--receipt FILE]`: against the receipt when
/// there is one, since that is what a third party can trust; else against
/// the tree as it is now.
pub fn prove(dir: &Path, path: &Path, receipt_file: Option<&Path>) -> Result<ExitCode> {
    let receipt_at = receipt_path(dir, receipt_file);
    let receipt = if receipt_file.is_some() || receipt_at.exists() {
        eprintln!("proving against {}", receipt_at.display());
        read_receipt(dir, receipt_file)?.1
    } else {
        eprintln!(
            "no receipt at {}: proving against the tree as it is now",
            receipt_at.display()
        );
        Receipt::of_tree(dir, None, jiff::Timestamp::now())?
    };
    let wanted = in_tree_path(dir, path)?;
    let proof = Proof::build(&receipt, &wanted)?;
    stdout_write(&proof.to_json_bytes())?;
    Ok(ExitCode::Success)
}

/// PATH as the receipt spells it: relative to DIR, or given with DIR in front
/// the way shell completion produces it.
fn in_tree_path(dir: &Path, path: &Path) -> Result<String> {
    let rel = path.strip_prefix(dir).unwrap_or(path);
    let rel = rel.strip_prefix("./").unwrap_or(rel);
    rel.to_str().map(str::to_owned).ok_or_else(|| {
        fail(
            ExitCode::Usage,
            format!(
                "{} is not valid UTF-8, so no receipt can list it",
                path.display()
            ),
        )
    })
}

/// `spawn-elite verify-proof PROOF FILE [--root HEX]`
pub fn verify_proof(proof_file: &Path, file: &Path, root: Option<&str>) -> Result<ExitCode> {
    let bytes = std::fs::read(proof_file).map_err(|e| {
        fail(
            ExitCode::Io,
            format!(
                "cannot read proof {}: {e}; check the path",
                proof_file.display()
            ),
        )
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

/// `spawn-elite ledger verify`
pub fn ledger_verify() -> Result<ExitCode> {
    let path = ledger::path()?;
    let entries = ledger::read_verified(&path)?;
    let msg = match entries.last() {
        None => format!(
            "ok: ledger {} is empty or absent; nothing to check\n",
            path.display()
        ),
        Some(last) => format!(
            "ok: ledger {} holds {} entries and its chain is intact (last root {})\n",
            path.display(),
            entries.len(),
            last.merkle_root
        ),
    };
    stdout_write(msg.as_bytes())?;
    Ok(ExitCode::Success)
}

/// `spawn-elite ledger list`
pub fn ledger_list() -> Result<ExitCode> {
    let path = ledger::path()?;
    // A broken line does not hide the spawns before it: they are listed,
    // then the error (exit 1) names the line.
    let (entries, broken) = ledger::read_until_break(&path)?;
    if entries.is_empty() && broken.is_none() {
        eprintln!("no spawns recorded yet in {}", path.display());
        return Ok(ExitCode::Success);
    }
    let mut text = String::new();
    for e in &entries {
        text.push_str(&format!(
            "{:>4}  {}  {:<8} {:<24} {}  {}\n",
            e.seq,
            e.created,
            e.kind.as_deref().unwrap_or("-"),
            e.name.as_deref().unwrap_or("-"),
            e.merkle_root.chars().take(16).collect::<String>(),
            e.repo
        ));
    }
    stdout_write(text.as_bytes())?;
    match broken {
        Some(err) => Err(err),
        None => Ok(ExitCode::Success),
    }
}
