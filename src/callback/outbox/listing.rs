//! `callback list` and `callback drop`: what the outbox holds, and giving
//! up on one entry without losing its receipt.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::*;

/// Resolve `callback drop FILE`: a file in the outbox, by path or by name.
/// Anything outside the outbox is refused, so `drop` never deletes other files.
fn entry_path(arg: &Path) -> Result<PathBuf> {
    let dir = outbox_dir()?;
    let by_name = arg.components().count() == 1;
    let candidate = if by_name {
        dir.join(arg)
    } else {
        arg.to_path_buf()
    };
    let not_entry = |why: String| {
        fail(
            ExitCode::Usage,
            format!(
                "{} {why}; pass a file listed by `spawn-elite callback list`",
                arg.display()
            ),
        )
    };
    let file = fs::canonicalize(&candidate)
        .map_err(|e| not_entry(format!("is not an outbox entry ({e})")))?;
    let dir = fs::canonicalize(&dir).map_err(|e| {
        not_entry(format!(
            "is not an outbox entry (outbox {}: {e})",
            dir.display()
        ))
    })?;
    if file.parent() != Some(dir.as_path()) || !is_entry_name(&file) {
        return Err(not_entry(format!("is not in the outbox {}", dir.display())));
    }
    Ok(file)
}

/// `callback drop FILE`: remove one entry; the receipt must survive
/// elsewhere, so it is saved when it is not where the entry says it is.
/// Returns the message for the user.
pub fn drop_entry(arg: &Path) -> Result<String> {
    let file = entry_path(arg)?;
    if stamp::is_stamp(&file) {
        return stamp::drop_entry(&file);
    }
    let claim = match Claim::<OutboxEntry>::take(&file) {
        Ok(Take::Claimed(claim)) => *claim,
        Ok(Take::Busy) => {
            return Err(fail(
                ExitCode::Io,
                format!(
                    "{} is being sent by another process right now; drop it once that has finished, if it is still listed by `spawn-elite callback list`",
                    file.display()
                ),
            ));
        }
        Ok(Take::Gone) => {
            return Err(fail(
                ExitCode::Usage,
                format!(
                    "{} was removed meanwhile (delivered or dropped); nothing to drop",
                    file.display()
                ),
            ));
        }
        Err(e) => {
            return Err(fail(
                ExitCode::InvalidReceipt,
                format!(
                    "{}: {e}; it is not an entry spawn-elite can read: inspect it and remove it by hand",
                    file.display()
                ),
            ));
        }
    };
    let entry = &claim.entry;
    let receipt = entry.receipt().map_err(|e| {
        fail(
            ExitCode::InvalidReceipt,
            format!("{}: {e}; inspect it and remove it by hand", file.display()),
        )
    })?;
    let kept_at = entry
        .receipt_path
        .as_ref()
        .filter(|p| fs::read(p).is_ok_and(|b| b == receipt));
    let where_now = match kept_at {
        Some(p) => format!("the receipt is still at {}", p.display()),
        None => {
            let saved_dir = crate::paths::data_dir()?.join("dropped");
            fs::create_dir_all(&saved_dir)
                .with_context(|| format!("cannot create {}", saved_dir.display()))?;
            let name = file.file_name().map(|n| n.to_owned()).unwrap_or_default();
            let saved = saved_dir.join(name);
            fsutil::write_atomic(&saved, &receipt, WriteOptions::DATA).with_context(|| {
                format!(
                    "cannot save the receipt to {}; the entry was not dropped",
                    saved.display()
                )
            })?;
            let missing = match &entry.receipt_path {
                Some(p) => format!("is no longer at {}", p.display()),
                None => "has no recorded location".to_owned(),
            };
            format!(
                "the receipt {missing}, so it was saved to {}",
                saved.display()
            )
        }
    };
    let message = format!(
        "dropped {} (callback to {}, merkle_root {}); {where_now}",
        file.display(),
        entry.url,
        entry.idempotency_key
    );
    claim.remove()?;
    Ok(message)
}

/// `callback list`: one block per queued callback.
pub fn list() -> Result<String> {
    let files = outbox_files()?;
    let dir = outbox_dir()?;
    if files.is_empty() {
        return Ok(format!("outbox {} is empty\n", dir.display()));
    }
    let mut out = String::new();
    let mut permanent = 0;
    for f in &files {
        out.push_str(&format!("{}\n", f.display()));
        if stamp::is_stamp(f) {
            match stamp::describe_entry(f) {
                Ok((block, failing)) => {
                    out.push_str(&block);
                    permanent += usize::from(failing);
                }
                Err(why) => {
                    permanent += 1;
                    out.push_str(&format!("  unreadable: {why}\n"));
                }
            }
            continue;
        }
        match OutboxEntry::read(f) {
            Ok(e) => {
                if e.permanent {
                    permanent += 1;
                }
                out.push_str(&format!("  url:       {}\n", e.url));
                out.push_str(&format!("  root:      {}\n", e.idempotency_key));
                if let Some(p) = &e.receipt_path {
                    out.push_str(&format!("  receipt:   {}\n", p.display()));
                }
                out.push_str(&format!("  queued at: {}\n", e.queued_at));
                if e.awaiting_spawn {
                    out.push_str(
                        "  spawn:     not completed yet, or killed; sent only once the receipt is there\n",
                    );
                }
                out.push_str(&format!("  attempts:  {}\n", e.attempts));
                out.push_str(&format!(
                    "  last:      {}{}\n",
                    e.last_error,
                    if e.permanent {
                        " (permanent: retrying will not help until this is fixed)"
                    } else {
                        ""
                    }
                ));
            }
            Err(why) => {
                permanent += 1;
                out.push_str(&format!("  unreadable: {why}\n"));
            }
        }
    }
    out.push_str(&format!(
        "{} queued ({permanent} failing permanently); resend with `spawn-elite callback flush`, remove one with `spawn-elite callback drop FILE`\n",
        files.len()
    ));
    Ok(out)
}
