//! Writing files so that a crash or a concurrent writer never leaves half of
//! one: the one atomic-write routine, a rename that never replaces, and the
//! one writer of a planned file (a spawn's, an update's, a receipt's).

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

pub mod beneath;

/// How [`write_atomic`] creates the file.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    /// Permission bits of the new file; the umask narrows them unless
    /// `exact_mode` is set.
    pub mode: u32,
    /// Set `mode` exactly, whatever the umask (key files).
    pub exact_mode: bool,
    /// Replace a file already at the path; if false, fail with
    /// `ErrorKind::AlreadyExists` instead, even if one appears meanwhile.
    pub replace: bool,
}

impl WriteOptions {
    /// An ordinary data file (mode 0666 less the umask) that may replace an
    /// older version of itself.
    pub const DATA: WriteOptions = WriteOptions {
        mode: 0o666,
        exact_mode: false,
        replace: true,
    };
}

/// Write `bytes` to `path` so that readers see the old file or the new one,
/// never a part: a temporary file with a fresh name is created beside it
/// (`O_EXCL`, so an existing file or symlink of that name is never reused
/// or followed), written, flushed to disk, renamed over `path`, and the
/// directory flushed so the rename itself survives a crash.
pub fn write_atomic(path: &Path, bytes: &[u8], opts: WriteOptions) -> std::io::Result<()> {
    let mut tmp = TempFile::beside(path, opts)?;
    tmp.file().write_all(bytes)?;
    tmp.file().sync_all()?;
    tmp.persist(path, opts.replace)?;
    sync_dir(path)
}

/// A new file with a fresh name beside its destination, removed when
/// dropped unless [`TempFile::persist`] moved it into place: the parts of
/// [`write_atomic`], for callers that place several files together (a key
/// pair) or write in steps.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
    file: File,
    placed: bool,
}

impl TempFile {
    /// Create `.NAME.RANDOM.tmp` beside `dest` with `opts.mode` (exactly,
    /// if `opts.exact_mode`), `O_EXCL`.
    pub fn beside(dest: &Path, opts: WriteOptions) -> std::io::Result<TempFile> {
        let (path, file) = create_temp_beside(dest, opts.mode)?;
        let tmp = TempFile {
            path,
            file,
            placed: false,
        };
        if opts.exact_mode {
            tmp.file
                .set_permissions(fs::Permissions::from_mode(opts.mode))?;
        }
        Ok(tmp)
    }

    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Where it is, for writers that open it themselves (SQLite).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rename it to `dest` (replacing a file there if `replace`, else
    /// failing with `ErrorKind::AlreadyExists`). Flush its contents first:
    /// this does not. On failure it is removed.
    pub fn persist(mut self, dest: &Path, replace: bool) -> std::io::Result<()> {
        if replace {
            fs::rename(&self.path, dest)?;
        } else {
            rename_no_replace(&self.path, dest)?;
        }
        self.placed = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.placed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// One file of a repository to be: its relative path (`/` separators), its
/// bytes, and whether it is executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    /// Relative path with `/` separators.
    pub path: String,
    pub contents: Vec<u8>,
    pub executable: bool,
}

impl PlannedFile {
    /// The one rule for a planned file's permission bits: 0755 when it is
    /// executable, else 0644 (receipts record them as 100755 and 100644).
    pub fn mode(&self) -> u32 {
        mode_of(self.executable)
    }
}

/// 0755 for an executable file, else 0644.
pub fn mode_of(executable: bool) -> u32 {
    if executable { 0o755 } else { 0o644 }
}

/// Write `file` under `root`, creating its directories; the file must not
/// exist yet. Its mode is exactly [`PlannedFile::mode`], whatever the umask.
/// Not flushed: the caller decides when its tree is made durable.
///
/// Nothing below `root` is followed if it is a symlink (see [`beneath`]):
/// a folder some other process replaced with one fails the write.
pub fn write_planned(root: &Path, file: &PlannedFile) -> std::io::Result<File> {
    let root = match beneath::Root::open(root) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            fs::create_dir_all(root)?;
            beneath::Root::open(root)?
        }
        other => other?,
    };
    let (parent, name) = beneath::split(Path::new(&file.path))?;
    let dir = root.create_dirs(parent)?;
    beneath::write_new_in(&dir, name, &file.contents, file.mode())
}

/// Create `path` (never an existing file or symlink), write `bytes` and set
/// `mode` exactly; the open file is returned for the caller to flush.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<File> {
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    out.write_all(bytes)?;
    // The umask may have removed bits; the executable bit is part of what
    // we promise (and of the receipt), so it is set exactly.
    out.set_permissions(fs::Permissions::from_mode(mode))?;
    Ok(out)
}

/// `.NAME.RANDOM.tmp` in `path`'s directory, created new.
fn create_temp_beside(path: &Path, mode: u32) -> std::io::Result<(PathBuf, File)> {
    let dir = parent_of(path);
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidInput, "no file name"))?;
    let mut tries = 0;
    loop {
        let mut tag = [0u8; 6];
        getrandom::fill(&mut tag).map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut tmp_name = OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.tmp", u64_hex(&tag)));
        let tmp = dir.join(tmp_name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
        {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists && tries < 8 => tries += 1,
            Err(e) => return Err(e),
        }
    }
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

fn u64_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Flush `path`'s directory entry to disk. Filesystems that cannot sync a
/// directory (`EINVAL`) have nothing to flush.
pub fn sync_dir(path: &Path) -> std::io::Result<()> {
    let dir = parent_of(path);
    match File::open(dir).and_then(|d| d.sync_all()) {
        Err(e) if e.kind() == ErrorKind::InvalidInput => Ok(()),
        other => other,
    }
}

/// Rename that fails instead of replacing whatever appeared at `to` (plain
/// rename(2) would replace a file or an empty directory):
/// renameat2(RENAME_NOREPLACE) on Linux, renameatx_np(RENAME_EXCL) on macOS.
pub fn rename_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        // Filesystems without no-replace renames: check, then rename.
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
            if fs::symlink_metadata(to).is_ok() {
                return Err(ErrorKind::AlreadyExists.into());
            }
            fs::rename(from, to)
        }
        Err(e) => Err(e.into()),
    }
}

/// Create `path` as [`write_atomic`] does, never replacing anything, and
/// return the new file holding an exclusive `flock`, taken before the file
/// appears at `path`: no other process can lock it before the caller lets
/// go (the callback outbox claims its entries this way).
pub fn write_new_locked(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<File> {
    use rustix::fs::{FlockOperation, flock};
    let (tmp, mut file) = create_temp_beside(path, mode)?;
    let written = (|| {
        flock(&file, FlockOperation::NonBlockingLockExclusive)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        rename_no_replace(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // Not durable is not queued: take it back rather than half-promise it.
    if let Err(e) = sync_dir(path) {
        let _ = fs::remove_file(path);
        return Err(e);
    }
    Ok(file)
}

/// The OS's reason alone: some errors carry the path of our hidden staging
/// directory, which would only confuse.
pub fn describe_io(err: &std::io::Error) -> String {
    match err.kind() {
        ErrorKind::PermissionDenied => "permission denied".into(),
        ErrorKind::StorageFull => "no space left on device".into(),
        ErrorKind::ReadOnlyFilesystem => "read-only file system".into(),
        _ => match err.raw_os_error() {
            Some(code) => std::io::Error::from_raw_os_error(code).to_string(),
            None => err.kind().to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_never_replaces_an_empty_directory_that_appeared() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("staging"), dir.path().join("target"));
        fs::create_dir(&from).unwrap();
        fs::write(from.join("f"), "new").unwrap();
        fs::create_dir(&to).unwrap();
        let err = rename_no_replace(&from, &to).unwrap_err();
        assert!(matches!(
            err.kind(),
            ErrorKind::AlreadyExists | ErrorKind::DirectoryNotEmpty
        ));
        assert!(from.join("f").exists() && fs::read_dir(&to).unwrap().next().is_none());
        fs::remove_dir(&to).unwrap();
        rename_no_replace(&from, &to).unwrap();
        assert_eq!(fs::read_to_string(to.join("f")).unwrap(), "new");
    }

    #[test]
    fn an_existing_tmp_file_or_symlink_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("receipt.json");
        let victim = dir.path().join("victim");
        fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("receipt.json.tmp")).unwrap();
        write_atomic(&target, b"new", WriteOptions::DATA).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 3, "no temporary file is left behind");
    }

    #[test]
    fn no_replace_refuses_an_existing_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.pem");
        fs::write(&key, "old").unwrap();
        let opts = WriteOptions {
            mode: 0o600,
            exact_mode: true,
            replace: false,
        };
        let err = write_atomic(&key, b"new", opts).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
        assert_eq!(fs::read_to_string(&key).unwrap(), "old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        let fresh = dir.path().join("new.pem");
        write_atomic(&fresh, b"k", opts).unwrap();
        let mode = fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
