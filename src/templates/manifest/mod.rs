//! The manifest at a template set's root, `spawn-elite.toml`: the set's name
//! and version, its types, its keys with their rules, and its file rules.
//! docs/TEMPLATES.md is the reference; this reads and checks it.
//!
//! Every problem is reported as a [`Problem`] with the manifest's file name
//! and the line of the value at fault.

mod parse;

use std::collections::BTreeMap;
use std::fmt;

use globset::GlobSet;

pub use super::rules::{Check, Pattern, Rule};

/// The manifest's name at the root of every set.
pub const MANIFEST: &str = "spawn-elite.toml";

/// The one value `extends` may have.
pub const EXTENDS_EMBEDDED: &str = "embedded";

/// One thing wrong with a set, where it is: `file:line: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// As shown to the user: the set's directory joined with the file.
    pub file: String,
    /// 1-based; none for problems that have no line (a symlink).
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Where a manifest value came from, for problems found after parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At {
    pub file: String,
    pub line: usize,
}

impl At {
    pub fn problem(&self, message: impl Into<String>) -> Problem {
        Problem {
            file: self.file.clone(),
            line: Some(self.line),
            message: message.into(),
        }
    }
}

// ---------------------------------------------------------------- resolved

/// A manifest, parsed and checked on its own (its layers are checked against
/// the set's files by the set).
#[derive(Debug, Clone)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub default_type: String,
    /// Where the manifest is (line 1), or its `default_type` when given.
    pub default_type_at: At,
    /// Whether `default_type` was written (else it is the first type's).
    pub default_type_given: bool,
    /// `extends = "embedded"`: where this manifest's `set.extends` is.
    pub extends: Option<At>,
    /// Embedded files an extending set drops, with where each is named.
    pub remove: Vec<(String, At)>,
    pub files: FileRules,
    pub types: Vec<TypeSpec>,
    pub keys: Vec<KeySpec>,
}

#[derive(Debug, Clone)]
pub struct FileRules {
    pub template_suffix: String,
    pub name_placeholder: String,
    /// The globs as written, for `templates list`.
    pub executable: Vec<String>,
    matcher: GlobSet,
}

impl FileRules {
    /// Whether the output file at `path` gets mode 0755.
    pub fn is_executable(&self, path: &str) -> bool {
        self.matcher.is_match(path)
    }
}

/// One repository type.
#[derive(Debug, Clone)]
pub struct TypeSpec {
    pub name: String,
    pub description: String,
    /// Layers every spawn of this type includes, in order.
    pub layers: Vec<(String, At)>,
    /// Layers "elite" adds after those; `--no-elite` leaves them out.
    pub elite: Vec<(String, At)>,
    /// Output paths a later layer may take over from an earlier one.
    pub overrides: Vec<String>,
    pub next_steps: Vec<String>,
    pub elite_next_steps: Vec<String>,
    pub at: At,
}

impl TypeSpec {
    /// The layers of one spawn, in order, each with whether it is elite.
    pub fn layers(&self, elite: bool) -> Vec<(&str, bool, &At)> {
        let mut out: Vec<(&str, bool, &At)> = self
            .layers
            .iter()
            .map(|(l, at)| (l.as_str(), false, at))
            .collect();
        if elite {
            out.extend(self.elite.iter().map(|(l, at)| (l.as_str(), true, at)));
        }
        out
    }

    /// What to print after a spawn of this type, after `cd DIR`.
    pub fn next_steps(&self, elite: bool) -> Vec<&str> {
        let mut steps: Vec<&str> = self.next_steps.iter().map(String::as_str).collect();
        if elite {
            steps.extend(self.elite_next_steps.iter().map(String::as_str));
        }
        steps
    }
}

/// One key the templates see, which `--set`, `--values` and receipts use.
#[derive(Debug, Clone)]
pub struct KeySpec {
    pub name: String,
    pub description: String,
    /// A minijinja expression template; it sees `type`.
    pub default: String,
    /// Per-type defaults that replace `default`.
    pub defaults: BTreeMap<String, String>,
    /// The types whose files use it; none means every type.
    pub types: Option<Vec<String>>,
    pub rules: Vec<Rule>,
    pub at: At,
    pub default_at: At,
}

impl KeySpec {
    /// Whether a spawn of `kind` uses this key.
    pub fn applies_to(&self, kind: &str) -> bool {
        self.types
            .as_ref()
            .is_none_or(|t| t.iter().any(|k| k == kind))
    }

    /// The first rule `value` breaks, as its message.
    pub fn check(&self, value: &str) -> Result<(), &str> {
        match self.rules.iter().find(|r| !r.accepts(value)) {
            Some(rule) => Err(&rule.message),
            None => Ok(()),
        }
    }

    /// The default for a spawn of `kind`, rendered (it may use `type`).
    pub fn default_for(&self, kind: &str) -> Result<String, String> {
        let source = self.defaults.get(kind).unwrap_or(&self.default);
        if !source.contains("{{") && !source.contains("{%") {
            return Ok(source.clone());
        }
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.render_str(source, minijinja::context! { type => kind })
            .map_err(|e| {
                format!(
                    "the default of key {} cannot be rendered: {}",
                    self.name,
                    e.detail().unwrap_or(&e.kind().to_string())
                )
            })
    }
}

/// 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl Manifest {
    pub fn type_spec(&self, name: &str) -> Option<&TypeSpec> {
        self.types.iter().find(|t| t.name == name)
    }

    pub fn type_names(&self) -> Vec<&str> {
        self.types.iter().map(|t| t.name.as_str()).collect()
    }

    /// This manifest laid over `base`: types and keys with a base name
    /// replace the base's, new ones follow; the base's file rules unless
    /// this one gives its own.
    pub fn over(self, base: &Manifest, own_files: bool) -> Manifest {
        let mut types = base.types.clone();
        for t in self.types {
            match types.iter_mut().find(|b| b.name == t.name) {
                Some(slot) => *slot = t,
                None => types.push(t),
            }
        }
        let mut keys = base.keys.clone();
        for k in self.keys {
            match keys.iter_mut().find(|b| b.name == k.name) {
                Some(slot) => *slot = k,
                None => keys.push(k),
            }
        }
        let (default_type, default_type_at) = if self.default_type_given {
            (self.default_type.clone(), self.default_type_at.clone())
        } else {
            (base.default_type.clone(), base.default_type_at.clone())
        };
        Manifest {
            default_type,
            default_type_at,
            files: if own_files {
                self.files
            } else {
                base.files.clone()
            },
            types,
            keys,
            ..self
        }
    }

    /// The patterns whose syntax is right but that cannot be compiled (too
    /// large); compiling them here spares the spawn from compiling them again.
    pub fn pattern_problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        for key in &self.keys {
            for rule in &key.rules {
                if let Check::Pattern(p) = &rule.check
                    && let Err(why) = p.compile()
                {
                    out.push(key.at.problem(format!(
                        "key {}: pattern {:?} cannot be used: {why}; simplify it",
                        key.name,
                        p.as_str()
                    )));
                }
            }
        }
        out
    }

    /// Every problem of the keys' defaults: each must pass its own rules for
    /// every type it applies to.
    pub fn default_problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        for key in &self.keys {
            // A pattern that cannot be used is its own problem (see
            // `pattern_problems`), not also a default that breaks it.
            let unusable = key
                .rules
                .iter()
                .any(|r| matches!(&r.check, Check::Pattern(p) if p.compile().is_err()));
            if unusable {
                continue;
            }
            for t in &self.types {
                if !key.applies_to(&t.name) {
                    continue;
                }
                let problem = match key.default_for(&t.name) {
                    Err(why) => Some(why),
                    Ok(value) => key.check(&value).err().map(|rule| {
                        format!(
                            "the default of key {} for type {} is {value:?}, which breaks its own rule: {rule}; change the default or the rule",
                            key.name, t.name
                        )
                    }),
                };
                if let Some(message) = problem {
                    let p = key.default_at.problem(message);
                    if !out.contains(&p) {
                        out.push(p);
                    }
                }
            }
        }
        out
    }

    /// Types named by keys, and the default type, must exist (checked after
    /// an extending manifest is laid over its base).
    pub fn reference_problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let names = self.type_names();
        for key in &self.keys {
            for t in key.types.iter().flatten().chain(key.defaults.keys()) {
                if !names.contains(&t.as_str()) {
                    out.push(key.at.problem(format!(
                        "key {} names type {t:?}, which the set does not declare (types: {})",
                        key.name,
                        names.join(", ")
                    )));
                }
            }
        }
        if self.types.is_empty() {
            out.push(
                self.default_type_at
                    .problem("the set declares no type; add a [[types]] table"),
            );
        } else if !names.contains(&self.default_type.as_str()) {
            out.push(self.default_type_at.problem(format!(
                "default_type {:?} is not a declared type (types: {})",
                self.default_type,
                names.join(", ")
            )));
        }
        out
    }
}

/// Names the templates already see; a key may not take one.
pub const BUILTIN_VARIABLES: &[&str] = &["name", "type", "elite", "year", "date", "tool_version"];
