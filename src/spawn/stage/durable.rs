//! Making the staged repository durable before it is renamed into place,
//! so that after a power cut the repository is whole or absent, never
//! there with empty files.

use std::fs::File;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// Flushes the staged repository to disk before it is renamed into place,
/// so that after a power cut the repository is whole or absent, never there
/// with empty files.
///
/// On Linux a flush is one `syncfs` of the staging directory's filesystem,
/// whose cost grows with what is unflushed. So while git works, flushes run
/// behind it on a thread ([`Durability::flush_behind`]: the files while
/// `git init` and `git add` run, then git's objects while `git commit`
/// runs), and the last flush ([`Durability::finish`]) has only the commit
/// left to write. Every flush's error fails the spawn: an error a flush
/// reports is reported once, so none may be dropped.
pub(super) struct Durability {
    dir: PathBuf,
    behind: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Durability {
    pub(super) fn new(dir: &Path) -> Self {
        Durability {
            dir: dir.to_path_buf(),
            behind: None,
        }
    }

    /// Start flushing what is written so far, on a thread, after the
    /// previous such flush has ended (its error is returned here).
    pub(super) fn flush_behind(&mut self) -> std::io::Result<()> {
        self.wait()?;
        #[cfg(target_os = "linux")]
        {
            let dir = self.dir.clone();
            self.behind = Some(std::thread::spawn(move || make_durable(&dir)));
        }
        Ok(())
    }

    fn wait(&mut self) -> std::io::Result<()> {
        match self.behind.take() {
            Some(thread) => thread
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the flush thread panicked"))),
            None => Ok(()),
        }
    }

    /// Everything written in the staging directory is on disk when this
    /// returns `Ok`.
    pub(super) fn finish(mut self) -> std::io::Result<()> {
        self.wait()?;
        make_durable(&self.dir)
    }
}

/// Flush the staged repository: on Linux one `syncfs` of its filesystem
/// (measured as cheap as not syncing at all, where syncing each file cost
/// 2-3 times the spawn; see docs/RELIABILITY.md); elsewhere each file and
/// directory, in parallel.
fn make_durable(dir: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        rustix::fs::syncfs(File::open(dir)?)?;
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        use rayon::prelude::*;
        let entries: Vec<(PathBuf, bool)> = walkdir::WalkDir::new(dir)
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| !e.file_type().is_symlink())
            .map(|e| (e.path().to_path_buf(), e.file_type().is_dir()))
            .collect();
        entries.par_iter().try_for_each(|(path, is_dir)| {
            let file = File::open(path)?;
            if *is_dir {
                file.sync_all()
            } else {
                file.sync_data()
            }
        })
    }
}

/// Flush `dir` itself (the new name in it); filesystems that cannot sync a
/// directory (`EINVAL`) have nothing to flush.
pub(super) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    match File::open(dir).and_then(|d| d.sync_all()) {
        Err(e) if e.kind() == ErrorKind::InvalidInput => Ok(()),
        other => other,
    }
}
