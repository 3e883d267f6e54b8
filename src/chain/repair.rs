//! Mending a chain whose last line was torn by a crash mid-write: the
//! torn bytes are saved aside and the file is cut back to its last
//! complete line, under the writers' lock.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Fault, Link, Walked, walk};

/// What [`repair`] found, and did.
#[derive(Debug)]
pub struct Repaired<T> {
    /// The chain as it was found.
    pub walked: Walked<T>,
    /// When its last line was cut off: where the cut-off bytes were saved,
    /// and how many there were. The file now ends after the line before.
    pub saved: Option<(PathBuf, usize)>,
}

/// How long [`repair`] waits for another writer to let go of the file.
const REPAIR_LOCK_WAIT: Duration = Duration::from_secs(5);

/// Mend a chain whose last line was cut off while written (a crash, or a
/// full disk under an older version): save the cut-off bytes to
/// `PATH.torn-TIME` (never replacing a file), then cut the file back to the
/// end of its last complete line and flush it, all under the writers' lock.
/// Every complete line is kept, so the chain verifies again. A chain that
/// is intact, or broken anywhere else, is left as it is (see
/// [`Repaired::walked`]). Fails with `ErrorKind::WouldBlock` if another
/// process holds the lock for longer than a few seconds (a receiver holds
/// its log as long as it runs), and `NotFound` if there is no file.
pub fn repair<T: Link>(path: &Path) -> std::io::Result<Repaired<T>> {
    repair_within(path, REPAIR_LOCK_WAIT)
}

pub(super) fn repair_within<T: Link>(path: &Path, wait: Duration) -> std::io::Result<Repaired<T>> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    lock_within(&file, wait)?;
    let mut text = Vec::new();
    file.read_to_end(&mut text)?;
    let walked = walk::<T>(&text);
    let Some((_, Fault::Cut)) = &walked.broken else {
        return Ok(Repaired {
            walked,
            saved: None,
        });
    };
    let keep = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let torn = &text[keep..];
    let saved = save_aside(path, torn)?;
    file.set_len(keep as u64)?;
    file.sync_all()?;
    Ok(Repaired {
        walked,
        saved: Some((saved, torn.len())),
    })
}

/// Take the writers' lock, trying again for up to `wait`.
fn lock_within(file: &File, wait: Duration) -> std::io::Result<()> {
    let step = Duration::from_millis(50);
    let tries = wait.as_millis() / step.as_millis();
    for _ in 0..tries {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) => std::thread::sleep(step),
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
    }
    file.try_lock().map_err(std::io::Error::from)
}

/// Write `bytes` to a new `PATH.torn-YYYYMMDDTHHMMSSZ` (or `…-2`, `…-3`
/// when that exists) beside `path`, atomically, and return its path.
pub(super) fn save_aside(path: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let opts = crate::fsutil::WriteOptions {
        replace: false,
        ..crate::fsutil::WriteOptions::DATA
    };
    let mut last = None;
    for n in 1..=100 {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".torn-{stamp}"));
        if n > 1 {
            name.push(format!("-{n}"));
        }
        let aside = PathBuf::from(name);
        match crate::fsutil::write_atomic(&aside, bytes, opts) {
            Ok(()) => return Ok(aside),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| ErrorKind::AlreadyExists.into()))
}
