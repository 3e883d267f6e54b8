//! The one rule for a relative path that spawn-elite reads from a set, a
//! receipt, a proof or a repository and then joins to a directory: it must
//! stay inside that directory and mean the same on every system.

use super::meta;

/// What a path may name besides ordinary files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A file a template set holds or a spawn writes: never anything in
    /// `.git/` or the metadata directory.
    Output,
    /// A file a receipt lists: never `.git/` or a metadata file (a receipt
    /// of any tree may list other files under `.spawn-elite/`, as earlier
    /// releases wrote them).
    Covered,
    /// A name inside a set that is not an output (a layer, an include, a
    /// `remove` entry): the plain rules only.
    Plain,
}

/// Why `path` cannot be used, if it cannot: empty, absolute, a NUL, an
/// empty, `.` or `..` component; for names a set holds or writes
/// ([`Scope::Output`], [`Scope::Plain`]) also a backslash or a drive
/// (`C:x`), which mean a folder or a root elsewhere; then what `scope`
/// keeps out: `.git` and the metadata directory.
///
/// [`Scope::Covered`] is what receipts of earlier releases were held to: a
/// receipt of a Linux tree may list a file whose name holds a backslash,
/// or a nested repository's `sub/.git/config`, and it must still verify.
pub fn problem(path: &str, scope: Scope) -> Option<&'static str> {
    let bytes = path.as_bytes();
    let strict = scope != Scope::Covered;
    if path.is_empty() {
        return Some("it is empty");
    }
    if path.starts_with('/') || (strict && path.starts_with('\\')) {
        return Some("it is absolute");
    }
    if path.contains('\0') {
        return Some("it contains a NUL byte");
    }
    if strict && path.contains('\\') {
        return Some("use '/' between folders, not '\\'");
    }
    if strict && bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Some("it names a drive, as an absolute Windows path does");
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Some(
            "it has an empty, '.' or '..' component, which could point out of its directory",
        );
    }
    match scope {
        Scope::Plain => None,
        // Any case: `.GIT` is the git directory on a case-insensitive
        // filesystem, and git refuses it as well.
        Scope::Output if path.split('/').any(|c| c.eq_ignore_ascii_case(".git")) => {
            Some("git owns every .git directory, and would not commit it")
        }
        Scope::Covered if path == ".git" || path.starts_with(".git/") => {
            Some("receipts never cover .git")
        }
        Scope::Covered if meta::is_uncovered(path) => Some("a receipt cannot cover itself"),
        Scope::Output if meta::is_inside(path) => Some("spawn-elite keeps its receipt there"),
        Scope::Covered | Scope::Output => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_every_way_out_of_the_directory() {
        for bad in [
            "",
            "/etc/passwd",
            "a\0b",
            "a//b",
            "./a",
            "a/./b",
            "../a",
            "a/..",
            "a/",
        ] {
            for scope in [Scope::Plain, Scope::Covered, Scope::Output] {
                assert!(problem(bad, scope).is_some(), "{bad:?} in {scope:?}");
            }
        }
        for bad in ["\\x", "C:x", "c:/x", "a\\b"] {
            assert!(problem(bad, Scope::Output).is_some(), "{bad:?}");
            assert!(problem(bad, Scope::Plain).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn git_and_metadata_paths_depend_on_the_scope() {
        assert!(problem(".git/config", Scope::Output).is_some());
        assert!(problem("sub/.git/config", Scope::Output).is_some());
        assert!(problem("sub/.GIT/config", Scope::Output).is_some());
        assert!(problem("sub/.git/config", Scope::Covered).is_none());
        assert!(problem("a\\b", Scope::Covered).is_none());
        assert!(problem(".git", Scope::Covered).is_some());
        assert!(problem(".git/config", Scope::Plain).is_none());
        assert!(problem(meta::RECEIPT_PATH, Scope::Covered).is_some());
        assert!(problem(meta::RECEIPT_PATH, Scope::Output).is_some());
        assert!(problem(".spawn-elite/notes.txt", Scope::Covered).is_none());
        assert!(problem(".spawn-elite/notes.txt", Scope::Output).is_some());
        assert!(problem(".spawn-elite", Scope::Output).is_some());
        assert!(problem(".spawn-elitex/a", Scope::Output).is_none());
        assert!(problem("src/.gitignore", Scope::Output).is_none());
    }
}
