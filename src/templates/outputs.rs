//! What the output paths of one spawn may be together, checked on the
//! whole plan before anything is written (each path on its own is held to
//! `receipt::path::problem`): a set that passes `templates check` is one
//! that spawn can write and git can record as planned.
//!
//! - no path is both a file and a folder (`a` from one layer, `a/b` from
//!   another);
//! - no path, the receipt's included, is ignored by a `.gitignore` the
//!   spawn itself writes: git would leave it out of the initial commit, and
//!   a fresh clone would fail `verify`. The `ignore` crate reads the
//!   patterns, as git does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::Problem;
use crate::receipt::RECEIPT_PATH;

/// One planned output: its path and how problems name its source.
pub(super) struct Output<'a> {
    pub path: &'a str,
    pub contents: &'a [u8],
    /// The source file as shown in problems.
    pub shown: &'a str,
    /// Whether the source is a template (then its lines are not the output's).
    pub template: bool,
}

/// Every path that is written as a file and is also a folder of another.
pub(super) fn collisions(outputs: &BTreeMap<&str, Output<'_>>) -> Vec<Problem> {
    let mut out = Vec::new();
    for o in outputs.values() {
        let mut at = 0;
        while let Some(slash) = o.path[at..].find('/') {
            let folder = &o.path[..at + slash];
            if let Some(file) = outputs.get(folder) {
                out.push(Problem {
                    file: o.shown.to_owned(),
                    line: None,
                    message: format!(
                        "would be written to {}, inside {folder}, which {} writes as a file; a path cannot be both a file and a folder, so rename one",
                        o.path, file.shown
                    ),
                });
                break;
            }
            at += slash + 1;
        }
    }
    out
}

/// One generated `.gitignore`, read as git reads it.
struct Ignore<'a> {
    /// Its folder in the output, "" at the top.
    dir: &'a str,
    matcher: Gitignore,
    output: &'a Output<'a>,
}

/// Every output path, and the receipt, that a generated `.gitignore`
/// ignores: one problem per pattern that ignores any, at its line.
pub(super) fn ignored(outputs: &BTreeMap<&str, Output<'_>>) -> Vec<Problem> {
    let ignores = gitignores(outputs);
    if ignores.is_empty() {
        return Vec::new();
    }
    // (the .gitignore's index, its pattern) -> the paths it ignores
    let mut found: BTreeMap<(usize, String), Vec<&str>> = BTreeMap::new();
    let paths = outputs.keys().copied().chain([RECEIPT_PATH]);
    for path in paths {
        if let Some((i, pattern)) = ignored_by(&ignores, path) {
            found.entry((i, pattern)).or_default().push(path);
        }
    }
    found
        .into_iter()
        .map(|((i, pattern), paths)| {
            let o = ignores[i].output;
            let text = String::from_utf8_lossy(o.contents);
            let line = text
                .lines()
                .enumerate()
                .filter(|(_, l)| l.trim_end() == pattern.trim_end())
                .map(|(n, _)| n + 1)
                .last();
            let (line, where_) = match (o.template, line) {
                (false, line) => (line, String::new()),
                (true, Some(n)) => (None, format!(" (line {n} of the generated {})", o.path)),
                (true, None) => (None, String::new()),
            };
            let shown: Vec<String> = paths
                .iter()
                .take(3)
                .map(|p| {
                    if *p == RECEIPT_PATH {
                        format!("{p} (the receipt)")
                    } else {
                        (*p).to_owned()
                    }
                })
                .collect();
            let more = match paths.len() {
                n if n > 3 => format!(" and {} more", n - 3),
                _ => String::new(),
            };
            Problem {
                file: o.shown.to_owned(),
                line,
                message: format!(
                    "the pattern `{pattern}`{where_} ignores {}{more}, which the spawn writes: git would leave {} out of the initial commit and a clone would fail `verify`; narrow the pattern, or add a `!` line for {}",
                    shown.join(", "),
                    if paths.len() == 1 { "it" } else { "them" },
                    if paths.len() == 1 { "it" } else { "each" },
                ),
            }
        })
        .collect()
}

/// The generated `.gitignore` files, deepest first.
fn gitignores<'a>(outputs: &'a BTreeMap<&str, Output<'a>>) -> Vec<Ignore<'a>> {
    let mut ignores: Vec<Ignore<'a>> = Vec::new();
    for o in outputs.values() {
        let dir = match o.path.rsplit_once('/') {
            Some((dir, ".gitignore")) => dir,
            None if o.path == ".gitignore" => "",
            _ => continue,
        };
        let mut builder = GitignoreBuilder::new(virtual_path(dir));
        for line in String::from_utf8_lossy(o.contents).lines() {
            // A line git cannot read is one git ignores; so do we.
            let _ = builder.add_line(None, line);
        }
        if let Ok(matcher) = builder.build() {
            ignores.push(Ignore {
                dir,
                matcher,
                output: o,
            });
        }
    }
    // Deepest first: a `.gitignore` deeper in the tree decides before one
    // above it, as in git.
    ignores.sort_by_key(|i| std::cmp::Reverse(i.dir.len()));
    ignores
}

/// The `.gitignore` (index into `ignores`) and pattern that ignore `path`,
/// if any does. As git does: each folder on the way down is checked first,
/// and a folder that is ignored takes everything in it along, whatever a
/// deeper `!` says; at each level the deepest `.gitignore` with a matching
/// pattern decides, and within one file the last matching line.
fn ignored_by(ignores: &[Ignore<'_>], path: &str) -> Option<(usize, String)> {
    let mut end = 0;
    loop {
        let next = path[end..].find('/').map(|s| end + s);
        let (sub, is_dir) = match next {
            Some(slash) => (&path[..slash], true),
            None => (path, false),
        };
        for (i, ig) in ignores.iter().enumerate() {
            let applies = ig.dir.is_empty()
                || sub
                    .strip_prefix(ig.dir)
                    .is_some_and(|rest| rest.starts_with('/'));
            if !applies {
                continue;
            }
            match ig.matcher.matched(virtual_path(sub), is_dir) {
                Match::None => continue,
                Match::Whitelist(_) => break,
                Match::Ignore(glob) => return Some((i, glob.original().to_owned())),
            }
        }
        match next {
            Some(slash) => end = slash + 1,
            None => return None,
        }
    }
}

/// An output path as an absolute path under a root that exists nowhere:
/// the matcher strips its own folder from it, and never touches the disk.
fn virtual_path(rel: &str) -> PathBuf {
    let root = Path::new("/spawn-elite-output");
    if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs<'a>(files: &'a [(&'a str, &'a str)]) -> BTreeMap<&'a str, Output<'a>> {
        files
            .iter()
            .map(|(path, contents)| {
                (
                    *path,
                    Output {
                        path,
                        contents: contents.as_bytes(),
                        shown: path,
                        template: false,
                    },
                )
            })
            .collect()
    }

    fn ignored_paths(files: &[(&str, &str)]) -> Vec<String> {
        ignored(&outputs(files))
            .into_iter()
            .map(|p| format!("{}:{}: {}", p.file, p.line.unwrap_or(0), p.message))
            .collect()
    }

    #[test]
    fn a_path_that_is_a_file_and_a_folder_is_one_problem() {
        let o = outputs(&[("a", "1"), ("a/b", "2"), ("a/c/d", "3"), ("ab", "4")]);
        let found: Vec<String> = collisions(&o).into_iter().map(|p| p.file).collect();
        assert_eq!(found, ["a/b", "a/c/d"]);
    }

    #[test]
    fn gitignore_rules_follow_git() {
        // Nothing ignored: the negation wins, and a folder pattern does not
        // match a file.
        assert_eq!(
            ignored_paths(&[
                (".gitignore", ".env*\n!.env.example\nbuild/\n"),
                (".env.example", ""),
                ("bin/build", ""),
            ]),
            Vec::<String>::new()
        );
        // A file pattern at any depth, the line it is on.
        assert_eq!(
            ignored_paths(&[(".gitignore", "# x\ntfplan\n"), ("bin/tfplan", "")]),
            [
                ".gitignore:2: the pattern `tfplan` ignores bin/tfplan, which the spawn writes: git would leave it out of the initial commit and a clone would fail `verify`; narrow the pattern, or add a `!` line for it"
            ]
        );
        // `*` ignores everything, itself and the receipt included.
        let all = ignored_paths(&[(".gitignore", "*\n"), ("a", ""), ("b/c", "")]);
        assert_eq!(all.len(), 1, "{all:?}");
        assert!(
            all[0].contains("ignores .gitignore, a, b/c and 1 more"),
            "{all:?}"
        );
        // An ignored folder takes its files along, whatever a deeper `!` says.
        let deep = ignored_paths(&[
            (".gitignore", "logs/\n"),
            ("logs/.gitignore", "!keep\n"),
            ("logs/keep", ""),
        ]);
        assert_eq!(deep.len(), 1, "{deep:?}");
        assert!(
            deep[0].contains("ignores logs/.gitignore, logs/keep"),
            "{deep:?}"
        );
        // A deeper .gitignore decides for its own folder, and only there.
        assert_eq!(
            ignored_paths(&[
                (".gitignore", "*.log\n"),
                ("sub/.gitignore", "!*.log\n"),
                ("sub/a.log", ""),
            ]),
            Vec::<String>::new()
        );
        let sub = ignored_paths(&[
            ("sub/.gitignore", "*.md\n"),
            ("README.md", ""),
            ("sub/x.md", ""),
        ]);
        assert_eq!(sub.len(), 1, "{sub:?}");
        assert!(sub[0].contains("ignores sub/x.md,"), "{sub:?}");
    }

    /// The same paths through our matcher and through `git check-ignore`
    /// in a real repository: the embedded `.gitignore`, a nested one that
    /// re-includes inside an ignored folder, one that re-includes a file.
    #[test]
    fn the_matcher_agrees_with_git_check_ignore() {
        let files: Vec<(&str, &str)> = vec![
            (
                ".gitignore",
                include_str!("../../templates/base/.gitignore"),
            ),
            ("logs/.gitignore", "!keep\n"),
            ("sub/.gitignore", "*.md\n!README.md\n"),
        ];
        let paths = [
            "bin/tfplan",
            "bin/build",
            "build/x",
            ".env",
            ".env.example",
            "x.tfvars",
            "a.tfvars.example",
            "logs/keep",
            "sub/x.md",
            "sub/README.md",
            "README.md",
            "artifacts/a.json",
            "artifacts/sub/a.json",
            "dist",
            ".venv/x",
            "venv",
            "tfplan/x",
            "crash.1.log",
            "src/app.pyc",
            ".spawn-elite/receipt.json",
        ];
        let dir = tempfile::tempdir().expect("tempdir");
        let git = |args: &[&str]| {
            std::process::Command::new("git")
                .arg("-C")
                .arg(dir.path())
                .args(args)
                .output()
        };
        if git(&["init", "-q"]).is_err() {
            // In CI a test that cannot run fails; elsewhere it is skipped.
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "git is not installed, so this test cannot run"
            );
            eprintln!("git is not installed: skipped");
            return;
        }
        let mut all = files.clone();
        all.extend(paths.iter().map(|p| (*p, "")));
        for (path, contents) in &all {
            let at = dir.path().join(path);
            std::fs::create_dir_all(at.parent().expect("parent")).expect("mkdir");
            std::fs::write(at, contents).expect("write");
        }
        let o = outputs(&all);
        let ignores = gitignores(&o);
        for path in paths.iter().chain([&"logs/.gitignore"]) {
            let by_git = git(&["check-ignore", "-q", "--no-index", path])
                .expect("git check-ignore")
                .status
                .success();
            let ours = ignored_by(&ignores, path).is_some();
            assert_eq!(ours, by_git, "{path}: ours {ours}, git {by_git}");
        }
    }
}
