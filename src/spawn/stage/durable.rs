//! Making the staged repository durable before it is renamed into place,
//! so that after a power cut the repository is whole or absent, never
//! there with empty files.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::durable::{self, Method};

/// Flushes the staged repository to disk before it is renamed into place,
/// so that after a power cut the repository is whole or absent, never there
/// with empty files.
///
/// Only what the spawn and its git processes wrote is waited for, never
/// other processes' data ([`crate::durable`]). When the kernel has little
/// else to write, that is one `syncfs` at the end ([`Method::Filesystem`]).
/// Otherwise each file and directory is flushed ([`Method::Files`]), and
/// while git works, what can no longer change is flushed behind it on
/// threads ([`Durability::flush_behind`]: the spawn's own files and folders
/// while `git init` and `git add` run, then what `git init` and `git add`
/// wrote while `git commit` runs). What those flushes take is listed when
/// they start, so that the last flush ([`Durability::finish`]) starts at
/// once with the rest (the index, refs, logs, the commit's objects and the
/// directories holding them) while they end. Every flush's error fails the
/// spawn.
pub(super) struct Durability {
    dir: PathBuf,
    /// The staging directory's filesystem, watched for write errors from
    /// before the spawn writes its files, when one `syncfs` of it can be
    /// trusted ([`durable::Watched`]).
    watched: Option<durable::Watched>,
    /// Chosen when the spawn's files are written: whether to flush behind
    /// git at all.
    method: Method,
    /// The files and directories the flushes behind git took.
    taken: HashSet<durable::FileId>,
    /// The flushes behind git, running at once.
    behind: Vec<std::thread::JoinHandle<std::io::Result<()>>>,
}

/// What is written for good when [`Durability::flush_behind`] is called.
#[derive(Clone, Copy)]
pub(super) enum Settled {
    /// The spawn's own files and folders (the receipt too), not `.git`,
    /// which `git init` may still be writing.
    OwnFiles,
    /// What `git init` and `git add` wrote: the hooks, `info/`,
    /// `description`, and every object under its final name (git writes an
    /// object or a pack under a temporary name and renames it when it is
    /// complete, so the commit running meanwhile adds objects but never
    /// changes one).
    AfterAdd,
}

impl Durability {
    /// Made before the spawn writes its files into `dir`, so that a write
    /// that fails later is reported to the last flush.
    pub(super) fn new(dir: &Path) -> Self {
        let watched = durable::Watched::start(dir);
        Durability {
            dir: dir.to_path_buf(),
            method: Method::choose(watched.as_ref()),
            watched,
            taken: HashSet::new(),
            behind: Vec::new(),
        }
    }

    /// List what is `settled` and start flushing it on a thread of its
    /// own, unless the kernel was quiet when the files were written (then
    /// the last flush is one `syncfs`, and flushing behind would only add
    /// flushes). What cannot be listed, or gets no thread, is left to the
    /// last flush, which lists everything again.
    pub(super) fn flush_behind(&mut self, settled: Settled) {
        if self.method == Method::Filesystem {
            return;
        }
        let Ok(entries) = settled_entries(&self.dir, settled) else {
            return;
        };
        let ids: Vec<durable::FileId> = entries.iter().map(|e| e.id).collect();
        let started = std::thread::Builder::new()
            .name("flush-behind".to_owned())
            .spawn(move || durable::flush(&entries));
        if let Ok(thread) = started {
            self.taken.extend(ids);
            self.behind.push(thread);
        }
    }

    /// Everything written in the staging directory is on disk when this
    /// returns `Ok`: the rest is flushed the way the kernel's state at this
    /// moment favours, and the flushes behind git have ended.
    pub(super) fn finish(mut self) -> std::io::Result<()> {
        let watched = self.watched.take();
        let method = Method::choose(watched.as_ref());
        // Per file, the rest goes while the flushes behind git end; one
        // syncfs would flush what they are flushing too, so it waits for
        // them, to report their errors first.
        let rest = match method {
            Method::Files => self.rest().and_then(|rest| durable::flush(&rest)),
            Method::Filesystem => Ok(()),
        };
        let mut failed = rest.err();
        if let Err(e) = self.join_behind() {
            failed.get_or_insert(e);
        }
        match (failed, watched) {
            (Some(e), _) => Err(e),
            (None, Some(watched)) if method == Method::Filesystem => watched.flush(),
            (None, _) => Ok(()),
        }
    }

    /// Wait for every flush behind git, even after one failed; the first
    /// error.
    fn join_behind(&mut self) -> std::io::Result<()> {
        let mut failed = None;
        for thread in self.behind.drain(..) {
            let ended = thread
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("a flush thread panicked")));
            if let Err(e) = ended {
                failed.get_or_insert(e);
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Every file and directory of the staged tree that no flush behind
    /// git took. Files are told apart by inode number; on a filesystem
    /// that does not give each its own (FUSE without `use_ino`), nothing
    /// counts as taken.
    fn rest(&self) -> std::io::Result<Vec<durable::Entry>> {
        let mut entries = durable::tree(&self.dir, |_, _| durable::Take::Yes)?;
        let distinct: HashSet<durable::FileId> = entries.iter().map(|e| e.id).collect();
        if distinct.len() == entries.len() {
            entries.retain(|e| !self.taken.contains(&e.id));
        }
        Ok(entries)
    }
}

/// A spawn that fails before [`Durability::finish`] still waits for its
/// flushes behind git, so that nothing works in the staging directory once
/// it is removed.
impl Drop for Durability {
    fn drop(&mut self) {
        let _ = self.join_behind();
    }
}

/// What is `settled` in the staged tree: the spawn's own files, or what git
/// wrote, never both. The staging directory itself never is: `.git`
/// appears in it.
pub(super) fn settled_entries(
    dir: &Path,
    settled: Settled,
) -> std::io::Result<Vec<durable::Entry>> {
    use durable::Take;
    durable::tree(dir, |path, is_dir| {
        let parts: Vec<&str> = path
            .components()
            .map(|c| c.as_os_str().to_str().unwrap_or(""))
            .collect();
        let take = |yes: bool| if yes { Take::Yes } else { Take::No };
        let after_add = matches!(settled, Settled::AfterAdd);
        match parts.as_slice() {
            [] => Take::No,
            [".git", rest @ ..] if after_add => match rest {
                // A pack and its indexes, which `git add` writes when it
                // packs the objects it adds.
                ["objects", "pack", name] => take(!is_dir && name.starts_with("pack-")),
                // SHA-1 and SHA-256 names, less the two characters of `fan`.
                ["objects", fan, name] => take(
                    !is_dir
                        && fan.len() == 2
                        && is_hex(fan)
                        && matches!(name.len(), 38 | 62)
                        && is_hex(name),
                ),
                [] | ["objects", ..] => Take::No,
                ["hooks" | "info", ..] | ["description"] => Take::Yes,
                _ => Take::Prune,
            },
            [".git", ..] => Take::Prune,
            _ if after_add => Take::Prune,
            _ => Take::Yes,
        }
    })
}

/// Whether `s` is lowercase hex.
fn is_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Flush `dir` itself (the new name in it); filesystems that cannot sync a
/// directory (`EINVAL`) have nothing to flush.
pub(super) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    durable::flush_dir(dir)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let out = crate::ops::git::Git::new(dir, crate::ops::git::SPAWN)
            .command()
            .args(["-c", "user.name=t", "-c", "user.email=t@localhost"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    }

    /// A small staged tree, `git init` already run in it.
    fn staged_tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("src/app")).unwrap();
        fs::write(root.join("README.md"), "readme\n").unwrap();
        fs::write(root.join("src/app/main.py"), "print(1)\n").unwrap();
        git(root, &["-c", "init.defaultBranch=main", "init", "--quiet"]);
        dir
    }

    fn snapshot(entries: &[durable::Entry]) -> Vec<(PathBuf, u64, Vec<u8>)> {
        entries
            .iter()
            .filter(|e| !e.dir)
            .map(|e| (e.path.clone(), e.id, fs::read(&e.path).unwrap()))
            .collect()
    }

    /// Flushed per file, the waves behind git and the last flush together
    /// take every file and directory of the staged tree, each once; on a
    /// quiet kernel nothing is flushed behind git (one syncfs at the end
    /// takes it all).
    #[test]
    fn per_file_flushes_take_the_whole_tree_once_and_a_quiet_kernel_takes_it_at_the_end() {
        let dir = staged_tree();
        let root = dir.path();

        let mut quiet = Durability::new(root);
        quiet.method = Method::Filesystem;
        quiet.watched = None;
        quiet.flush_behind(Settled::OwnFiles);
        assert!(quiet.taken.is_empty() && quiet.behind.is_empty());

        let mut durability = Durability::new(root);
        durability.method = Method::Files;
        durability.flush_behind(Settled::OwnFiles);
        git(root, &crate::spawn::git::ADD);
        durability.flush_behind(Settled::AfterAdd);
        git(
            root,
            &["commit", "--quiet", "--no-verify", "-m", "scaffold"],
        );
        let rest = durability.rest().unwrap();
        let all = durable::tree(root, |_, _| durable::Take::Yes).unwrap();
        let behind = durability.taken.len();
        assert!(behind >= 4, "own files and git's were flushed behind git");
        assert_eq!(
            behind + rest.len(),
            all.len(),
            "every file and directory is flushed"
        );
        for name in [".git/index", ".git/HEAD", "src"] {
            let named = root.join(name);
            let id = all.iter().find(|e| e.path == named).unwrap().id;
            let last = rest.iter().any(|e| e.id == id);
            assert_eq!(last, name != "src", "{name} flushed last: {last}");
        }
        durability.finish().unwrap();
        quiet.finish().unwrap();
    }

    /// What is flushed behind git and then skipped by the last flush must
    /// not change afterwards: every file settled after `git add` is still
    /// the same file (inode) with the same bytes once `git commit` has run,
    /// and what is settled before git runs leaves out `.git`.
    #[test]
    fn what_is_settled_behind_git_is_never_changed_by_the_commit() {
        let dir = staged_tree();
        let root = dir.path();

        let own = settled_entries(root, Settled::OwnFiles).unwrap();
        let mut own_paths: Vec<String> = own
            .iter()
            .map(|e| e.path.strip_prefix(root).unwrap().display().to_string())
            .collect();
        own_paths.sort();
        assert_eq!(
            own_paths,
            ["README.md", "src", "src/app", "src/app/main.py"]
        );

        // As a spawn adds: the blobs in a pack.
        git(root, &crate::spawn::git::ADD);
        let after_add = settled_entries(root, Settled::AfterAdd).unwrap();
        let names: Vec<String> = after_add
            .iter()
            .map(|e| e.path.strip_prefix(root).unwrap().display().to_string())
            .collect();
        let objects = names
            .iter()
            .filter(|n| n.starts_with(".git/objects/"))
            .count();
        assert!(
            objects >= 2,
            "the blobs git add wrote are settled: {names:?}"
        );
        assert!(
            names
                .iter()
                .any(|n| n.starts_with(".git/objects/pack/pack-") && n.ends_with(".pack")),
            "the pack git add wrote is settled: {names:?}"
        );
        assert!(
            !names.iter().any(|n| !n.starts_with(".git/")),
            "what git wrote is settled apart from the spawn's own files: {names:?}"
        );
        for never in [
            ".git",
            ".git/index",
            ".git/HEAD",
            ".git/config",
            ".git/objects",
        ] {
            assert!(
                !names.iter().any(|n| n == never),
                "{never} is not settled: {names:?}"
            );
        }

        let before = snapshot(&after_add);
        git(
            root,
            &["commit", "--quiet", "--no-verify", "-m", "scaffold"],
        );
        let after = snapshot(&settled_entries(root, Settled::AfterAdd).unwrap());
        for file in &before {
            assert!(
                after.contains(file),
                "{} changed after the commit",
                file.0.display()
            );
        }
    }
}
