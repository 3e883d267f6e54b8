//! Template sets: the one embedded in the binary, and sets on disk that
//! replace or extend it. A set is a folder of layers, partials and a
//! manifest (`spawn-elite.toml`, see [`manifest`]) that declares its types,
//! keys and file rules. docs/TEMPLATES.md is the reference for authors.
//!
//! Loading a set reads every file into memory and computes its digest;
//! rendering happens in memory too, so a bad set fails a spawn before
//! anything is written.

pub mod manifest;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use include_dir::{Dir, DirEntry, include_dir};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use crate::error::{ExitCode, fail};
use crate::receipt::merkle::{self, Hash, MODE_EXEC, MODE_FILE, MODE_LINK};
use crate::receipt::{RECEIPT_PATH, hex};
pub use manifest::{KeySpec, MANIFEST, Manifest, Problem, TypeSpec};

static EMBEDDED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// How problems in the embedded set are shown (it is `templates/` in the source).
const EMBEDDED_SHOWN: &str = "embedded:";

/// Domain byte of the digest of a set that extends the embedded one (leaves
/// and nodes of the Merkle tree use 0x00 and 0x01).
const EXTENDS_DOMAIN: u8 = 0x02;

/// One file of the repository to be, fully rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    /// Relative path with `/` separators.
    pub path: String,
    pub contents: Vec<u8>,
    pub executable: bool,
}

/// Where a set came from, as receipts record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Embedded,
    Dir,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Embedded => "embedded",
            Source::Dir => "dir",
        }
    }
}

/// One file of a set, after `extends`, `remove` and symlinks are resolved.
struct SetFile {
    contents: Vec<u8>,
    /// The file as shown in problems: `DIR/path` or `embedded:path`.
    shown: String,
}

/// A loaded template set: its manifest, its files in memory, its digest,
/// and the problems found while loading it (a set with problems can be
/// listed and checked, but not spawned from).
pub struct TemplateSet {
    pub source: Source,
    pub manifest: Manifest,
    files: Arc<BTreeMap<String, SetFile>>,
    digest: String,
    problems: Vec<Problem>,
    /// The directory as the user gave it, or `embedded`.
    pub shown: String,
}

/// A file as read from a set's folder, before symlinks are resolved.
struct RawEntry {
    path: String,
    mode: u32,
    contents: Vec<u8>,
    /// As shown in problems.
    shown: String,
}

fn join_shown(root: &str, path: &str) -> String {
    if root == EMBEDDED_SHOWN {
        format!("{EMBEDDED_SHOWN}{path}")
    } else {
        format!("{}/{path}", root.trim_end_matches('/'))
    }
}

/// The digest of a set's files by the receipt's rules: the Merkle root of
/// docs/RECEIPT.md over (path, mode, content), sorted by path bytes.
fn merkle_digest(entries: &[RawEntry]) -> Hash {
    let leaves: Vec<Hash> = entries
        .iter()
        .map(|e| merkle::leaf_hash(&e.path, e.mode, blake3::hash(&e.contents).as_bytes()))
        .collect();
    merkle::root(&leaves)
}

fn embedded_entries() -> Vec<RawEntry> {
    fn walk(dir: &'static Dir<'static>, out: &mut Vec<RawEntry>) {
        for entry in dir.entries() {
            match entry {
                DirEntry::Dir(sub) => walk(sub, out),
                DirEntry::File(file) => {
                    let path = file.path().to_string_lossy().replace('\\', "/");
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
                DirEntry::File(file) => out.push((
                    file.path().to_string_lossy().replace('\\', "/"),
                    file.contents(),
                )),
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
fn read_dir_entries(dir: &Path, shown: &str) -> Result<Vec<RawEntry>, Vec<Problem>> {
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
        let Some(rel) = rel.to_str().map(|r| r.replace('\\', "/")) else {
            problems.push(here(format!(
                "holds {}, whose name is not UTF-8; rename it",
                entry.path().display()
            )));
            continue;
        };
        let file_shown = join_shown(shown, &rel);
        let ft = entry.file_type();
        if ft.is_dir() || rel == RECEIPT_PATH {
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

impl std::fmt::Debug for TemplateSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemplateSet")
            .field("source", &self.source)
            .field("name", &self.manifest.name)
            .field("version", &self.manifest.version)
            .field("digest", &self.digest)
            .finish()
    }
}

impl TemplateSet {
    /// The set built into the binary.
    pub fn embedded() -> Result<TemplateSet> {
        let entries = embedded_entries();
        let digest = merkle_digest(&entries);
        let (manifest, problems) = Self::manifest_of(&entries, EMBEDDED_SHOWN);
        let manifest = manifest.map_err(|p| internal_set_error(&p))?;
        let set = Self::assemble(
            Source::Embedded,
            manifest,
            entries,
            EMBEDDED_SHOWN,
            hex(&digest),
            problems,
        );
        if let Some(p) = set.problems.first() {
            return Err(internal_set_error(std::slice::from_ref(p)));
        }
        Ok(set)
    }

    /// The set in `dir`, or the problems that keep it from being read at
    /// all (no manifest, a manifest that does not parse). Lesser problems
    /// are kept in the set: see [`TemplateSet::problems`].
    pub fn from_dir(dir: &Path) -> Result<TemplateSet, Vec<Problem>> {
        let shown = dir.display().to_string();
        let entries = read_dir_entries(dir, &shown)?;
        let dir_root = merkle_digest(&entries);
        let (manifest, mut problems) = Self::manifest_of(&entries, &shown);
        let manifest = manifest?;
        let Some(extends_at) = manifest.extends.clone() else {
            problems.extend(manifest.reference_problems());
            return Ok(Self::assemble(
                Source::Dir,
                manifest,
                entries,
                &shown,
                hex(&dir_root),
                problems,
            ));
        };
        // Extending: the embedded files less `remove`, then this set's files.
        let base = TemplateSet::embedded().map_err(|e| {
            vec![extends_at.problem(format!("the embedded set cannot be read: {e}"))]
        })?;
        let base_entries = embedded_entries();
        let base_root = merkle_digest(&base_entries);
        let mut merged: BTreeMap<String, RawEntry> = base_entries
            .into_iter()
            .filter(|e| e.path != MANIFEST)
            .map(|e| (e.path.clone(), e))
            .collect();
        for (path, at) in &manifest.remove {
            let prefix = format!("{path}/");
            let before = merged.len();
            merged.retain(|p, _| p != path && !p.starts_with(&prefix));
            if merged.len() == before {
                problems.push(at.problem(format!(
                    "remove {path:?} names no file of the embedded set; `spawn-elite templates list` shows them"
                )));
            }
        }
        for e in entries {
            if e.path != MANIFEST {
                merged.insert(e.path.clone(), e);
            }
        }
        let own_files = std::fs::read_to_string(dir.join(MANIFEST))
            .map(|t| toml_has_table(&t, "files"))
            .unwrap_or(false);
        let manifest = manifest.over(&base.manifest, own_files);
        problems.extend(manifest.reference_problems());
        let mut digest_input = vec![EXTENDS_DOMAIN];
        digest_input.extend_from_slice(&base_root);
        digest_input.extend_from_slice(&dir_root);
        let digest = hex(blake3::hash(&digest_input).as_bytes());
        let entries: Vec<RawEntry> = merged.into_values().collect();
        Ok(Self::assemble(
            Source::Dir,
            manifest,
            entries,
            &shown,
            digest,
            problems,
        ))
    }

    /// The set `--templates` names, else the embedded one. A set with
    /// problems is refused with the first of them.
    pub fn open(dir: Option<&Path>) -> Result<TemplateSet> {
        let Some(dir) = dir else {
            return TemplateSet::embedded();
        };
        let set = TemplateSet::from_dir(dir).map_err(|p| set_error(dir, &p))?;
        if !set.problems.is_empty() {
            return Err(set_error(dir, &set.problems));
        }
        Ok(set)
    }

    fn manifest_of(
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
    fn assemble(
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
        problems.extend(manifest.default_problems());
        TemplateSet {
            source,
            manifest,
            files: Arc::new(files),
            digest,
            problems,
            shown: shown.trim_end_matches(':').to_owned(),
        }
    }

    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Problems found while loading: a set with any is not spawned from.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// The type named `name`, or a usage error listing the set's types.
    pub fn type_spec(&self, name: &str) -> Result<&TypeSpec> {
        self.manifest.type_spec(name).ok_or_else(|| {
            fail(
                ExitCode::Usage,
                format!(
                    "unknown type '{name}': choose one of {}",
                    self.manifest.type_names().join(", ")
                ),
            )
        })
    }

    fn environment(&self) -> Environment<'static> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Output formats vary (YAML, Python, HCL, Markdown); templates quote
        // explicitly with `tojson` rather than relying on a guess from the name.
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.add_filter("shquote", shell_quote);
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build();
        if let Ok(syntax) = syntax {
            env.set_syntax(syntax);
        }
        // Includes resolve inside the set only: never the file system.
        let files = Arc::clone(&self.files);
        env.set_loader(move |name| {
            if let Some(why) = manifest::relative_path_problem(name) {
                return Err(minijinja::Error::new(
                    minijinja::ErrorKind::TemplateNotFound,
                    format!("{name:?} cannot be included: {why}; includes name a file of the set from its root"),
                ));
            }
            match files.get(name) {
                None => Ok(None),
                Some(f) => String::from_utf8(f.contents.clone()).map(Some).map_err(|_| {
                    minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        format!("{name} is not UTF-8, so it cannot be a template"),
                    )
                }),
            }
        });
        env
    }

    /// Render every file of one spawn of `kind` named `name`, sorted by
    /// path; `ctx` holds the values the templates see. Rendering everything
    /// before writing anything is what lets a spawn fail without leaving half
    /// a repository behind.
    pub fn render(
        &self,
        kind: &str,
        elite: bool,
        name: &str,
        ctx: &minijinja::Value,
    ) -> Result<Vec<PlannedFile>> {
        let spec = self.type_spec(kind)?;
        let (files, problems) = self.plan(spec, elite, name, ctx, true);
        match problems.first() {
            None => Ok(files),
            Some(_) if self.source == Source::Embedded => Err(internal_set_error(&problems)),
            Some(_) => Err(set_error(Path::new(&self.shown), &problems)),
        }
    }

    fn plan(
        &self,
        spec: &TypeSpec,
        elite: bool,
        name: &str,
        ctx: &minijinja::Value,
        stop_at_first: bool,
    ) -> (Vec<PlannedFile>, Vec<Problem>) {
        let rules = &self.manifest.files;
        let env = self.environment();
        let mut problems = Vec::new();
        // Output path -> (file, the layer and source path that wrote it).
        let mut planned: BTreeMap<String, (PlannedFile, String, String)> = BTreeMap::new();
        for (layer, _, at) in spec.layers(elite) {
            let prefix = format!("{layer}/");
            let under = self
                .files
                .range::<str, _>((
                    std::ops::Bound::Included(prefix.as_str()),
                    std::ops::Bound::Unbounded,
                ))
                .take_while(|(p, _)| p.starts_with(&prefix));
            for (source, file) in under {
                if stop_at_first && !problems.is_empty() {
                    break;
                }
                let rel = &source[prefix.len()..];
                let is_template = rel.ends_with(&rules.template_suffix);
                let pattern = if is_template {
                    &rel[..rel.len() - rules.template_suffix.len()]
                } else {
                    rel
                };
                let path = pattern.replace(&rules.name_placeholder, name);
                if path.is_empty()
                    || path == ".git"
                    || path.starts_with(".git/")
                    || path == RECEIPT_PATH
                {
                    problems.push(Problem {
                        file: file.shown.clone(),
                        line: None,
                        message: format!(
                            "would be written to {path:?}, which git or the receipt owns; move it"
                        ),
                    });
                    continue;
                }
                let contents = if is_template {
                    match render_one(&env, source, ctx, self, &self.known_variables()) {
                        Ok(text) => text.into_bytes(),
                        Err(p) => {
                            if !problems.contains(&p) {
                                problems.push(p);
                            }
                            continue;
                        }
                    }
                } else {
                    file.contents.clone()
                };
                if let Some((_, prev_layer, prev_source)) = planned.get(&path)
                    && !spec.overrides.iter().any(|o| o == pattern)
                {
                    problems.push(at.problem(format!(
                        "type {}: layers {prev_layer} and {layer} both write {path} ({prev_source}, {source}); keep the path in one layer, or add {pattern:?} to this type's overrides to let {layer} win",
                        spec.name
                    )));
                    continue;
                }
                let entry = PlannedFile {
                    executable: rules.is_executable(&path),
                    path: path.clone(),
                    contents,
                };
                planned.insert(path, (entry, layer.to_owned(), source.clone()));
            }
        }
        (planned.into_values().map(|(f, _, _)| f).collect(), problems)
    }

    /// Names a template may use: spawn-elite's own and the set's keys.
    fn known_variables(&self) -> Vec<String> {
        manifest::BUILTIN_VARIABLES
            .iter()
            .map(|s| (*s).to_owned())
            .chain(self.manifest.keys.iter().map(|k| k.name.clone()))
            .collect()
    }

    /// Every problem of the set: what loading found, then every type
    /// rendered with and without elite from the keys' defaults, then any
    /// unknown variable in a branch those renders did not take.
    pub fn check(&self) -> Vec<Problem> {
        let mut out = self.problems.clone();
        let push = |p: Problem, out: &mut Vec<Problem>| {
            if !out.contains(&p) {
                out.push(p);
            }
        };
        if !out.is_empty() {
            return out;
        }
        let now = jiff::Timestamp::now();
        for spec in &self.manifest.types {
            let mut values = BTreeMap::new();
            for key in &self.manifest.keys {
                if let Ok(v) = key.default_for(&spec.name) {
                    values.insert(key.name.clone(), v);
                }
            }
            for elite in [false, true] {
                let ctx = context("my-repo", &spec.name, elite, now, &values);
                let (_, problems) = self.plan(spec, elite, "my-repo", &ctx, false);
                for p in problems {
                    push(p, &mut out);
                }
            }
        }
        let env = self.environment();
        let known: BTreeSet<String> = self
            .known_variables()
            .into_iter()
            .chain(env.globals().map(|(n, _)| n.to_owned()))
            .collect();
        for (path, file) in self.files.iter() {
            if !path.ends_with(&self.manifest.files.template_suffix) {
                continue;
            }
            let Ok(tmpl) = env.get_template(path) else {
                continue;
            };
            let mut unknown: Vec<String> = tmpl
                .undeclared_variables(false)
                .into_iter()
                .filter(|v| !known.contains(v))
                .collect();
            unknown.sort();
            let text = String::from_utf8_lossy(&file.contents);
            for var in unknown {
                let line = first_line_with_word(&text, &var);
                let p = Problem {
                    file: file.shown.clone(),
                    line: Some(line),
                    message: unknown_variable_message(&var, &known_list(self)),
                };
                if !out
                    .iter()
                    .any(|o| o.file == p.file && o.line == p.line && o.message.contains(&var))
                {
                    out.push(p);
                }
            }
        }
        out
    }

    /// Every template: its output path (before `__name__` substitution) and
    /// the spawns that include it, e.g. `("Dockerfile", ["service (elite)"])`.
    pub fn catalogue(&self) -> Vec<(String, Vec<String>)> {
        let rules = &self.manifest.files;
        let mut rows: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for spec in &self.manifest.types {
            for (layer, elite, _) in spec.layers(true) {
                let prefix = format!("{layer}/");
                for path in self.files.keys().filter(|p| p.starts_with(&prefix)) {
                    let rel = &path[prefix.len()..];
                    let pattern = rel.strip_suffix(&rules.template_suffix).unwrap_or(rel);
                    let label = if elite {
                        format!("{} (elite)", spec.name)
                    } else {
                        spec.name.clone()
                    };
                    let labels = rows.entry(pattern.to_owned()).or_default();
                    if !labels.contains(&label) {
                        labels.push(label);
                    }
                }
            }
        }
        rows.into_iter().collect()
    }

    /// Every file of the set (manifest aside), by path.
    pub fn file_paths(&self) -> Vec<&str> {
        self.files.keys().map(String::as_str).collect()
    }
}

fn known_list(set: &TemplateSet) -> String {
    set.known_variables().join(", ")
}

fn unknown_variable_message(var: &str, known: &str) -> String {
    format!(
        "unknown variable `{var}`: templates see {known}; fix the name, or declare a key {var} in {MANIFEST}"
    )
}

/// The first line of `text` where `word` appears as a whole identifier.
fn first_line_with_word(text: &str, word: &str) -> usize {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    for (i, line) in text.lines().enumerate() {
        let mut from = 0;
        while let Some(pos) = line[from..].find(word) {
            let start = from + pos;
            let end = start + word.len();
            let before = line[..start].chars().next_back();
            let after = line[end..].chars().next();
            if !before.is_some_and(is_ident) && !after.is_some_and(is_ident) {
                return i + 1;
            }
            from = end;
        }
    }
    1
}

/// Render the template at `source`, or the problem with file and line.
fn render_one(
    env: &Environment<'static>,
    source: &str,
    ctx: &minijinja::Value,
    set: &TemplateSet,
    known: &[String],
) -> Result<String, Problem> {
    let rendered = env
        .get_template(source)
        .and_then(|t| t.render(ctx))
        .map_err(|e| template_problem(env, &e, source, set, known))?;
    let mut rendered = rendered;
    if !rendered.ends_with('\n') && !rendered.is_empty() {
        rendered.push('\n');
    }
    Ok(rendered)
}

/// A minijinja error as `file:line: what`, from the innermost error that
/// knows its place (an error inside an included partial names the partial).
fn template_problem(
    env: &Environment<'static>,
    err: &minijinja::Error,
    source: &str,
    set: &TemplateSet,
    known: &[String],
) -> Problem {
    let mut best = err;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(c) = cause {
        if let Some(m) = c.downcast_ref::<minijinja::Error>()
            && m.line().is_some()
        {
            best = m;
        }
        cause = c.source();
    }
    let name = best.name().unwrap_or(source).to_owned();
    let shown = set
        .files
        .get(&name)
        .map_or_else(|| join_shown(&set.shown, &name), |f| f.shown.clone());
    let detail = best.detail().map(str::to_owned);
    let message = match best.kind() {
        minijinja::ErrorKind::UndefinedError => {
            let globals: BTreeSet<String> = env.globals().map(|(n, _)| n.to_owned()).collect();
            let unknown: Vec<String> = env
                .get_template(&name)
                .map(|t| {
                    let mut v: Vec<String> = t
                        .undeclared_variables(false)
                        .into_iter()
                        .filter(|v| !known.contains(v) && !globals.contains(v))
                        .collect();
                    v.sort();
                    v
                })
                .unwrap_or_default();
            match unknown.first() {
                Some(var) => unknown_variable_message(var, &known.join(", ")),
                None => format!(
                    "undefined value{}; templates see {}",
                    detail.map(|d| format!(" ({d})")).unwrap_or_default(),
                    known.join(", ")
                ),
            }
        }
        kind => match detail {
            Some(d) => format!("{kind}: {d}"),
            None => kind.to_string(),
        },
    };
    Problem {
        file: shown,
        line: best.line(),
        message,
    }
}

/// The values every template sees: spawn-elite's own, then the keys.
pub fn context(
    name: &str,
    kind: &str,
    elite: bool,
    now: jiff::Timestamp,
    values: &BTreeMap<String, String>,
) -> minijinja::Value {
    minijinja::context! {
        name => name,
        type => kind,
        elite => elite,
        year => now.strftime("%Y").to_string(),
        date => now.strftime("%Y-%m-%d").to_string(),
        tool_version => env!("CARGO_PKG_VERSION"),
        ..minijinja::Value::from(values.clone())
    }
}

/// Whether a TOML text has a top-level `[NAME]` table (an extending
/// manifest inherits `[files]` unless it has its own).
fn toml_has_table(text: &str, name: &str) -> bool {
    toml::from_str::<toml::Table>(text)
        .map(|t| t.contains_key(name))
        .unwrap_or(false)
}

/// A bad set given to a spawn: its first problem, and where to see the rest.
fn set_error(dir: &Path, problems: &[Problem]) -> anyhow::Error {
    let first = problems
        .first()
        .map_or_else(|| "unreadable".to_owned(), ToString::to_string);
    let more = match problems.len() {
        0 | 1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    fail(
        ExitCode::Usage,
        format!(
            "template set {}: {first}{more}; `spawn-elite templates check {}` lists every problem",
            dir.display(),
            dir.display()
        ),
    )
}

fn internal_set_error(problems: &[Problem]) -> anyhow::Error {
    let first = problems
        .first()
        .map_or_else(|| "unreadable".to_owned(), ToString::to_string);
    fail(
        ExitCode::Internal,
        format!("the embedded template set is broken: {first}"),
    )
}

/// `value` as one single-quoted shell word: the shell takes everything in
/// it as text (no `$`, backquote, `\` or glob), and a `'` in it is written
/// `'\''` (end the quotes, an escaped quote, quote again). Values never hold
/// a newline (key rules refuse control characters), so the word is one line.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn shell_quote_makes_one_literal_word() {
        use super::shell_quote;
        assert_eq!(shell_quote("plain"), "'plain'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$(id) `id`"), "'$(id) `id`'");
        assert_eq!(shell_quote(""), "''");
    }

    use super::*;

    #[test]
    fn the_embedded_set_loads_and_checks_clean() {
        let set = TemplateSet::embedded().expect("embedded set");
        assert_eq!(set.manifest.type_names(), ["service", "infra", "tool"]);
        let keys: Vec<&str> = set.manifest.keys.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(
            keys,
            ["description", "org", "python_version", "port", "version"]
        );
        assert_eq!(set.check(), Vec::<Problem>::new());
    }

    /// Today's `--set` rules, now in the embedded manifest.
    #[test]
    fn embedded_key_rules_match_the_documented_values() {
        let set = TemplateSet::embedded().expect("embedded set");
        let key = |n: &str| {
            set.manifest
                .keys
                .iter()
                .find(|k| k.name == n)
                .expect("key")
                .clone()
        };
        let port = key("port");
        assert!(port.check("8080").is_ok());
        for bad in [
            "80",
            "0",
            "65536",
            "08080",
            "http",
            "+8000",
            "-8000",
            " 8000",
            "8000 ",
            "８０００",
            "",
        ] {
            assert!(port.check(bad).is_err(), "{bad}");
        }
        let py = key("python_version");
        assert!(py.check("3.12").is_ok());
        for bad in [
            "3.9", "3", "3.012", "2.7", "3.12.1", "3.+12", "3.١٢", "3.1 ",
        ] {
            assert!(py.check(bad).is_err(), "{bad}");
        }
        let version = key("version");
        assert!(version.check("1.20.3").is_ok());
        for bad in ["1.2", "v1.2.3", "1.2.3-rc1", "01.2.3", "1234567890.0.0"] {
            assert!(version.check(bad).is_err(), "{bad}");
        }
        let org = key("org");
        assert!(org.check("Acme-Corp").is_ok());
        assert!(org.check(&"a".repeat(39)).is_ok());
        for bad in ["acme/corp", "-acme", "acme-", "", &"a".repeat(40)] {
            assert!(org.check(bad).is_err(), "{bad}");
        }
        let description = key("description");
        assert_eq!(
            description.check("line one\nline two"),
            Err("the description must be one line without control characters")
        );
        assert_eq!(
            description.check(""),
            Err("the description must be 1-200 characters")
        );
        assert!(description.check(&"é".repeat(200)).is_ok());
        assert!(description.check(&"é".repeat(201)).is_err());
        for (kind, default) in [
            ("service", "A VaultMesh service."),
            ("infra", "Terraform infrastructure for VaultMesh."),
            ("tool", "A VaultMesh command-line tool."),
            // A type a set of one's own adds gets the general default.
            ("worker", "A VaultMesh worker."),
        ] {
            assert_eq!(description.default_for(kind).as_deref(), Ok(default));
        }
    }
}
