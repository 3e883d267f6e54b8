//! Template sets: the one embedded in the binary, and sets on disk that
//! replace or extend it. A set is a folder of layers, partials and a
//! manifest (`spawn-elite.toml`, see [`manifest`]) that declares its types,
//! keys and file rules. docs/TEMPLATES.md is the reference for authors.
//!
//! Loading a set reads every file into memory and computes its digest;
//! rendering happens in memory too, so a bad set fails a spawn before
//! anything is written.

mod check;
mod load;
pub mod manifest;
mod outputs;
mod render;
mod rules;
pub mod values;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;

use crate::error::{ExitCode, fail};
use crate::receipt::{SpawnInfo, TemplatesInfo, hex};
pub use load::embedded_files;
use load::{RawEntry, embedded_entries, merkle_digest, read_dir_entries, toml_has_table};
pub use manifest::{KeySpec, MANIFEST, Manifest, Problem, TypeSpec};
pub use render::context;

/// How problems in the embedded set are shown (it is `templates/` in the source).
const EMBEDDED_SHOWN: &str = "embedded:";

/// Domain byte of the digest of a set that extends the embedded one (leaves
/// and nodes of the Merkle tree use 0x00 and 0x01).
const EXTENDS_DOMAIN: u8 = 0x02;

pub use crate::fsutil::PlannedFile;

/// One output path of a set, as `templates list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueRow {
    /// The output path, before `__name__` is replaced.
    pub path: String,
    /// The set's files that write it (what `remove` and overrides name).
    pub sources: Vec<String>,
    /// The spawns that include it, e.g. `service (elite)`.
    pub spawns: Vec<String>,
}

/// One rendering of a type: what the templates see, besides the set.
#[derive(Debug, Clone, Copy)]
pub struct Render<'a> {
    /// The repository's name.
    pub name: &'a str,
    /// The type, one the set declares.
    pub kind: &'a str,
    pub elite: bool,
    /// `{{ year }}` and `{{ date }}`.
    pub now: jiff::Timestamp,
    /// Every key's value, after defaults and what the user gave.
    pub values: &'a BTreeMap<String, String>,
}

impl Render<'_> {
    /// What a receipt records of this rendering of `set`, so that it can be
    /// repeated (`--from-receipt`) or updated: the values of the keys that
    /// apply to the type.
    pub fn spawn_info(&self, set: &TemplateSet) -> SpawnInfo {
        SpawnInfo {
            name: self.name.to_owned(),
            kind: self.kind.to_owned(),
            options: set.applying(self.kind, self.values),
            template_digest: None,
            templates: Some(set.info()),
            elite: self.elite,
        }
    }
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
        let own_files = std::fs::read_to_string(dir.join(MANIFEST))
            .map(|t| toml_has_table(&t, "files"))
            .unwrap_or(false);
        let remove = manifest.remove.clone();
        let manifest = manifest.over(&base.manifest, own_files);
        for (path, at) in &remove {
            let prefix = format!("{path}/");
            let before = merged.len();
            merged.retain(|p, _| p != path && !p.starts_with(&prefix));
            if merged.len() == before {
                problems.push(at.problem(format!(
                    "remove {path:?} names no file of the embedded set; `spawn-elite templates list --sources` shows them"
                )));
            }
        }
        // A file of this set replaces the embedded file that writes the same
        // output: its twin with or without the template suffix
        // (`base/CODEOWNERS` replaces `base/CODEOWNERS.j2`, and the other
        // way round). Both in this set is this set's own collision.
        let suffix = manifest.files.template_suffix.clone();
        let own: std::collections::BTreeSet<String> =
            entries.iter().map(|e| e.path.clone()).collect();
        for e in entries {
            if e.path == MANIFEST {
                continue;
            }
            if !suffix.is_empty() {
                let twin = match e.path.strip_suffix(suffix.as_str()) {
                    Some(plain) => plain.to_owned(),
                    None => format!("{}{suffix}", e.path),
                };
                if !own.contains(&twin) {
                    merged.remove(&twin);
                }
            }
            merged.insert(e.path.clone(), e);
        }
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

    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Of `values`, those of keys that apply to `kind` (and any the set
    /// does not declare, which are not this set's to judge).
    pub fn applying(
        &self,
        kind: &str,
        values: &BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        values
            .iter()
            .filter(|(key, _)| {
                self.manifest
                    .keys
                    .iter()
                    .find(|k| &k.name == *key)
                    .is_none_or(|k| k.applies_to(kind))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The set as a receipt records it: source, name, version, digest.
    pub fn info(&self) -> TemplatesInfo {
        TemplatesInfo {
            source: self.source.as_str().to_owned(),
            name: self.manifest.name.clone(),
            version: self.manifest.version.clone(),
            digest: self.digest().to_owned(),
        }
    }

    /// Every file of one rendering of a type, sorted by path: all of it in
    /// memory before anything is written, so that a failure leaves nothing
    /// half-done.
    pub fn render_type(&self, r: &Render<'_>) -> Result<Vec<PlannedFile>> {
        let ctx = context(r.name, r.kind, r.elite, r.now, r.values);
        self.render(r.kind, r.elite, r.name, &ctx)
    }

    /// Problems found while loading: a set with any is not spawned from.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// The type named `name`, or a usage error listing the set's types.
    pub fn type_spec(&self, name: &str) -> Result<&TypeSpec> {
        self.manifest.type_spec(name).ok_or_else(|| {
            let hint = match self.source {
                Source::Embedded => "; a type of your own template set needs --templates DIR (or SPAWN_ELITE_TEMPLATES=DIR)",
                Source::Dir => "",
            };
            fail(
                ExitCode::Usage,
                format!(
                    "unknown type '{name}': choose one of {}{hint}",
                    self.manifest.type_names().join(", ")
                ),
            )
        })
    }

    /// Every template: its output path (before `__name__` substitution),
    /// the set files that write it, and the spawns that include it, e.g.
    /// `Dockerfile` from `elite/service/Dockerfile.j2` in "service (elite)".
    pub fn catalogue(&self) -> Vec<CatalogueRow> {
        let rules = &self.manifest.files;
        let mut rows: BTreeMap<String, CatalogueRow> = BTreeMap::new();
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
                    let row = rows
                        .entry(pattern.to_owned())
                        .or_insert_with(|| CatalogueRow {
                            path: pattern.to_owned(),
                            sources: Vec::new(),
                            spawns: Vec::new(),
                        });
                    if !row.spawns.contains(&label) {
                        row.spawns.push(label);
                    }
                    if !row.sources.contains(path) {
                        row.sources.push(path.clone());
                    }
                }
            }
        }
        rows.into_values().collect()
    }

    /// Every file of the set (manifest aside), by path.
    pub fn file_paths(&self) -> Vec<&str> {
        self.files.keys().map(String::as_str).collect()
    }
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

#[cfg(test)]
mod tests {
    use super::rules::Check;
    use super::*;

    /// A spawn from the embedded set skips these checks (see
    /// `TemplateSet::assemble`), so they must hold here.
    #[test]
    fn the_embedded_sets_patterns_compile_and_its_defaults_pass_their_rules() {
        let set = TemplateSet::embedded().expect("embedded set");
        let patterns = set
            .manifest
            .keys
            .iter()
            .flat_map(|k| &k.rules)
            .filter(|r| matches!(r.check, Check::Pattern(_)))
            .count();
        assert!(patterns >= 5, "the embedded set has {patterns} patterns");
        assert_eq!(set.manifest.pattern_problems(), Vec::new());
        assert_eq!(set.manifest.default_problems(), Vec::new());
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
