//! Reading a set's files: from the binary or from a folder on disk, with
//! their modes and digest, symlinks resolved inside the set, and the
//! manifest parsed and checked against the files it names.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::Arc;

use include_dir::{Dir, DirEntry, include_dir};

use super::{EMBEDDED_SHOWN, MANIFEST, Manifest, Problem, SetFile, Source, TemplateSet};
use crate::receipt::merkle::{self, Hash, MODE_EXEC, MODE_FILE, MODE_LINK};
use crate::receipt::meta;

static EMBEDDED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// A file as read from a set's folder, before symlinks are resolved.
pub(super) struct RawEntry {
    pub(super) path: String,
    pub(super) mode: u32,
    pub(super) contents: Vec<u8>,
    /// As shown in problems.
    pub(super) shown: String,
}

pub(super) fn join_shown(root: &str, path: &str) -> String {
    if root == EMBEDDED_SHOWN {
        format!("{EMBEDDED_SHOWN}{path}")
    } else {
        format!("{}/{path}", root.trim_end_matches('/'))
    }
}

/// The digest of a set's files by the receipt's rules: the Merkle root of
/// docs/RECEIPT.md over (path, mode, content), sorted by path bytes.
pub(super) fn merkle_digest(entries: &[RawEntry]) -> Hash {
    let leaves: Vec<Hash> = entries
        .iter()
        .map(|e| merkle::leaf_hash(&e.path, e.mode, blake3::hash(&e.contents).as_bytes()))
        .collect();
    merkle::root(&leaves)
}

pub(super) fn embedded_entries() -> Vec<RawEntry> {
    fn walk(dir: &'static Dir<'static>, out: &mut Vec<RawEntry>) {
        for entry in dir.entries() {
            match entry {
                DirEntry::Dir(sub) => walk(sub, out),
                DirEntry::File(file) => {
                    let path = file.path().to_string_lossy().into_owned();
                    out.push(RawEntry {
                        shown: join_shown(EMBEDDED_SHOWN, &path),
                        path,
                        mode: MODE_FILE,
                        contents: file.contents().to_vec(),
                    })
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&EMBEDDED, &mut out);
    out.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    out
}

/// Every embedded file, manifest included, as `templates export` writes them.
pub fn embedded_files() -> Vec<(String, &'static [u8])> {
    fn walk(dir: &'static Dir<'static>, out: &mut Vec<(String, &'static [u8])>) {
        for entry in dir.entries() {
            match entry {
                DirEntry::Dir(sub) => walk(sub, out),
                DirEntry::File(file) => {
                    out.push((file.path().to_string_lossy().into_owned(), file.contents()))
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&EMBEDDED, &mut out);
    out.sort();
    out
}

/// Read every file under `dir` as a receipt would see it: regular files
/// with their mode, symlinks as their target, the top-level `.git` and a
/// receipt left out. Anything else is a problem.
pub(super) fn read_dir_entries(dir: &Path, shown: &str) -> Result<Vec<RawEntry>, Vec<Problem>> {
    let here = |message: String| Problem {
        file: shown.to_owned(),
        line: None,
        message,
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(vec![here("is not a directory; pass the folder of a template set (`spawn-elite templates export DIR` makes one)".into())]),
        Err(e) => return Err(vec![here(format!("cannot be read: {e}; pass the folder of a template set (`spawn-elite templates export DIR` makes one)"))]),
    }
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let walker = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| !(e.depth() == 1 && e.file_name() == ".git"));
    for entry in walker {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                problems.push(here(format!("cannot be read: {e}")));
                continue;
            }
        };
        let Ok(rel) = entry.path().strip_prefix(dir) else {
            continue;
        };
        let Some(rel) = rel.to_str().map(str::to_owned) else {
            problems.push(here(format!(
                "holds {}, whose name is not UTF-8; rename it",
                entry.path().display()
            )));
            continue;
        };
        // A backslash is an ordinary character in a name here but a folder
        // separator elsewhere: `a\b` beside `a/b` would be two files of the
        // set and one output path (and, once, one digest). Refused.
        if rel.contains('\\') {
            problems.push(Problem {
                file: join_shown(shown, &rel),
                line: None,
                message: "has a backslash in its name, which is a folder separator on some systems; rename it (folders are separated by '/')".into(),
            });
            continue;
        }
        let file_shown = join_shown(shown, &rel);
        let ft = entry.file_type();
        if ft.is_dir() || meta::is_uncovered(&rel) {
            continue;
        }
        let read = if ft.is_symlink() {
            std::fs::read_link(entry.path()).map(|t| {
                use std::os::unix::ffi::OsStrExt as _;
                (MODE_LINK, t.as_os_str().as_bytes().to_vec())
            })
        } else if ft.is_file() {
            let mode = entry
                .metadata()
                .map(|m| m.permissions().mode())
                .unwrap_or(0);
            let mode = if mode & 0o100 != 0 {
                MODE_EXEC
            } else {
                MODE_FILE
            };
            std::fs::read(entry.path()).map(|c| (mode, c))
        } else {
            problems.push(Problem {
                file: file_shown,
                line: None,
                message: "is not a regular file or symlink; a set holds only files".into(),
            });
            continue;
        };
        match read {
            Ok((mode, contents)) => out.push(RawEntry {
                path: rel,
                mode,
                contents,
                shown: file_shown,
            }),
            Err(e) => problems.push(Problem {
                file: file_shown,
                line: None,
                message: format!("cannot be read: {e}"),
            }),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    out.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    Ok(out)
}

/// Follow a symlink of the set to the regular file it names, lexically and
/// only inside the set.
fn resolve_link(entries: &BTreeMap<&str, &RawEntry>, path: &str) -> Result<Vec<u8>, String> {
    let mut current = path.to_owned();
    for _ in 0..8 {
        let Some(entry) = entries.get(current.as_str()) else {
            return Err(format!(
                "is a symlink to {current}, which is not a file of the set"
            ));
        };
        if entry.mode != MODE_LINK {
            return Ok(entry.contents.clone());
        }
        let target = String::from_utf8_lossy(&entry.contents).into_owned();
        if target.starts_with('/') {
            return Err(format!(
                "is a symlink to the absolute path {target}, which points out of the set; replace it with the file itself"
            ));
        }
        let mut parts: Vec<&str> = current.split('/').collect();
        parts.pop();
        for part in target.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        return Err(format!(
                            "is a symlink to {target}, which points out of the set; replace it with the file itself"
                        ));
                    }
                }
                p => parts.push(p),
            }
        }
        current = parts.join("/");
    }
    Err("is a symlink in a loop of symlinks; replace it with the file itself".into())
}

impl TemplateSet {
    pub(super) fn manifest_of(
        entries: &[RawEntry],
        shown: &str,
    ) -> (Result<Manifest, Vec<Problem>>, Vec<Problem>) {
        let file = join_shown(shown, MANIFEST);
        let Some(entry) = entries.iter().find(|e| e.path == MANIFEST) else {
            let p = Problem {
                file,
                line: None,
                message: "is missing: every set has a manifest; `spawn-elite templates export DIR` writes the embedded set's, to start from".into(),
            };
            return (Err(vec![p]), Vec::new());
        };
        let Ok(text) = std::str::from_utf8(&entry.contents) else {
            let p = Problem {
                file,
                line: None,
                message: "is not UTF-8".into(),
            };
            return (Err(vec![p]), Vec::new());
        };
        match Manifest::parse(text, &file) {
            Ok(m) => (Ok(m), Vec::new()),
            Err(problems) => (Err(problems), Vec::new()),
        }
    }

    /// Resolve symlinks, drop the manifest from the files, and check what
    /// can be checked without rendering: layers exist, defaults pass.
    pub(super) fn assemble(
        source: Source,
        manifest: Manifest,
        entries: Vec<RawEntry>,
        shown: &str,
        digest: String,
        mut problems: Vec<Problem>,
    ) -> TemplateSet {
        let by_path: BTreeMap<&str, &RawEntry> =
            entries.iter().map(|e| (e.path.as_str(), e)).collect();
        let mut files = BTreeMap::new();
        for e in &entries {
            if e.path == MANIFEST {
                continue;
            }
            let file_shown = e.shown.clone();
            let contents = if e.mode == MODE_LINK {
                match resolve_link(&by_path, &e.path) {
                    Ok(c) => c,
                    Err(why) => {
                        problems.push(Problem {
                            file: file_shown,
                            line: None,
                            message: why,
                        });
                        continue;
                    }
                }
            } else {
                e.contents.clone()
            };
            files.insert(
                e.path.clone(),
                SetFile {
                    contents,
                    shown: file_shown,
                },
            );
        }
        for t in &manifest.types {
            for (layer, _, at) in t.layers(true) {
                let prefix = format!("{layer}/");
                if !files.keys().any(|p| p.starts_with(&prefix)) {
                    problems.push(at.problem(format!(
                        "type {}: layer {layer:?} has no files; create the folder {} or fix the name",
                        t.name,
                        join_shown(shown, layer)
                    )));
                }
            }
        }
        // The embedded set cannot change after the build, and its tests
        // prove its defaults pass their rules and its patterns compile: a
        // spawn from it compiles no pattern it does not use.
        if source != Source::Embedded {
            problems.extend(manifest.pattern_problems());
            problems.extend(manifest.default_problems());
        }
        TemplateSet {
            source,
            manifest,
            files: Arc::new(files),
            digest,
            problems,
            shown: shown.trim_end_matches(':').to_owned(),
        }
    }
}

/// Whether a TOML text has a top-level `[NAME]` table (an extending
/// manifest inherits `[files]` unless it has its own).
pub(super) fn toml_has_table(text: &str, name: &str) -> bool {
    toml::from_str::<toml::Table>(text)
        .map(|t| t.contains_key(name))
        .unwrap_or(false)
}
