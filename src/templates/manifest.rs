//! The manifest at a template set's root, `spawn-elite.toml`: the set's name
//! and version, its types, its keys with their rules, and its file rules.
//! docs/TEMPLATES.md is the reference; this reads and checks it.
//!
//! Every problem is reported as a [`Problem`] with the manifest's file name
//! and the line of the value at fault.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use globset::{GlobSet, GlobSetBuilder};
use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

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

// ---------------------------------------------------------------- raw TOML

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    set: RawSet,
    files: Option<RawFiles>,
    #[serde(default)]
    types: Vec<Spanned<RawType>>,
    #[serde(default)]
    keys: Vec<Spanned<RawKey>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSet {
    name: Spanned<String>,
    version: Spanned<String>,
    default_type: Option<Spanned<String>>,
    extends: Option<Spanned<String>>,
    #[serde(default)]
    remove: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFiles {
    template_suffix: Option<Spanned<String>>,
    name_placeholder: Option<Spanned<String>>,
    executable: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawType {
    name: Spanned<String>,
    description: String,
    layers: Vec<Spanned<String>>,
    #[serde(default)]
    elite: Vec<Spanned<String>>,
    #[serde(default)]
    overrides: Vec<Spanned<String>>,
    #[serde(default)]
    next_steps: Vec<String>,
    #[serde(default)]
    elite_next_steps: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    name: Spanned<String>,
    description: String,
    default: Spanned<String>,
    #[serde(default)]
    defaults: BTreeMap<String, Spanned<String>>,
    types: Option<Vec<Spanned<String>>>,
    rules: Spanned<Vec<Spanned<RawRule>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    pattern: Option<Spanned<String>>,
    choices: Option<Vec<String>>,
    range: Option<[i64; 2]>,
    message: String,
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

/// A declarative rule and the message shown when a value breaks it.
#[derive(Debug, Clone)]
pub struct Rule {
    pub check: Check,
    pub message: String,
}

#[derive(Debug, Clone)]
pub enum Check {
    /// The whole value must match.
    Pattern(Regex),
    Choices(Vec<String>),
    /// A plain decimal integer (no sign but '-', no leading zero), inclusive.
    Range(i64, i64),
}

impl Rule {
    pub fn accepts(&self, value: &str) -> bool {
        match &self.check {
            Check::Pattern(re) => re.is_match(value),
            Check::Choices(choices) => choices.iter().any(|c| c == value),
            Check::Range(lo, hi) => {
                let digits = value.strip_prefix('-').unwrap_or(value);
                let plain = !digits.is_empty()
                    && digits.len() <= 18
                    && digits.bytes().all(|b| b.is_ascii_digit())
                    && (digits == "0" || !digits.starts_with('0'))
                    && value != "-0";
                plain && value.parse::<i64>().is_ok_and(|n| (*lo..=*hi).contains(&n))
            }
        }
    }
}

/// A pattern as a full match: `\A(?:PATTERN)\z`.
pub fn anchored(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!(r"\A(?:{pattern})\z"))
}

// ---------------------------------------------------------------- parsing

/// 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

struct Ctx<'a> {
    text: &'a str,
    file: &'a str,
    problems: Vec<Problem>,
}

impl Ctx<'_> {
    fn at(&self, span: Range<usize>) -> At {
        At {
            file: self.file.to_owned(),
            line: line_of(self.text, span.start),
        }
    }

    fn report(&mut self, span: Range<usize>, message: impl Into<String>) {
        let p = self.at(span).problem(message);
        self.problems.push(p);
    }
}

impl Manifest {
    /// Parse and check `text`, the manifest shown as `file`. A manifest that
    /// extends the embedded one may leave out `files` and have no types; a
    /// standalone one needs both.
    pub fn parse(text: &str, file: &str) -> Result<Manifest, Vec<Problem>> {
        let raw: RawManifest = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(text, s.start));
            vec![Problem {
                file: file.to_owned(),
                line: Some(line),
                message: format!(
                    "{}; see the manifest reference in docs/TEMPLATES.md",
                    e.message().trim_end().replace('\n', " ")
                ),
            }]
        })?;
        let mut cx = Ctx {
            text,
            file,
            problems: Vec::new(),
        };
        let manifest = resolve(raw, &mut cx);
        if cx.problems.is_empty() {
            Ok(manifest)
        } else {
            Err(cx.problems)
        }
    }

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

    /// Every problem of the keys' defaults: each must pass its own rules for
    /// every type it applies to.
    pub fn default_problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        for key in &self.keys {
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

/// Why `path`, a path inside the set named in the manifest, is unsafe.
pub fn relative_path_problem(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        Some("it is empty")
    } else if path.starts_with('/') || path.starts_with('\\') {
        Some("it is absolute")
    } else if path.contains('\\') || path.contains('\0') {
        Some("use '/' between folders, and no NUL")
    } else if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        Some("it has an empty, '.' or '..' component, which could point out of the set")
    } else {
        None
    }
}

fn identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Names the templates already see; a key may not take one.
pub const BUILTIN_VARIABLES: &[&str] = &["name", "type", "elite", "year", "date", "tool_version"];

fn resolve(raw: RawManifest, cx: &mut Ctx<'_>) -> Manifest {
    let set = raw.set;
    let one_line = |s: &str| !s.is_empty() && !s.chars().any(char::is_control) && s.len() <= 100;
    if !one_line(set.name.get_ref()) {
        cx.report(
            set.name.span(),
            "set.name must be one line of 1-100 characters",
        );
    }
    if !one_line(set.version.get_ref()) {
        cx.report(
            set.version.span(),
            "set.version must be one line of 1-100 characters",
        );
    }
    let extends = set.extends.as_ref().map(|e| {
        if e.get_ref() != EXTENDS_EMBEDDED {
            cx.report(
                e.span(),
                format!(
                    "extends = {:?} is not supported; the only set to extend is \"embedded\"",
                    e.get_ref()
                ),
            );
        }
        cx.at(e.span())
    });
    if extends.is_none() && !set.remove.is_empty() {
        cx.report(
            set.remove[0].span(),
            "remove only applies to a set that extends another; add extends = \"embedded\" or drop remove",
        );
    }
    let mut remove = Vec::new();
    for r in &set.remove {
        if let Some(why) = relative_path_problem(r.get_ref()) {
            cx.report(r.span(), format!("remove {:?}: {why}", r.get_ref()));
        }
        remove.push((r.get_ref().clone(), cx.at(r.span())));
    }

    let raw_files = raw.files.unwrap_or(RawFiles {
        template_suffix: None,
        name_placeholder: None,
        executable: None,
    });
    let files = file_rules(raw_files, cx);

    let mut types: Vec<TypeSpec> = Vec::new();
    for t in raw.types {
        let at = cx.at(t.span());
        let t = t.into_inner();
        let name = t.name.get_ref().clone();
        if !identifier_type(&name) {
            cx.report(
                t.name.span(),
                format!(
                    "type name {name:?} must be lowercase letters, digits and '-', starting with a letter"
                ),
            );
        }
        if types.iter().any(|o| o.name == name) {
            cx.report(
                t.name.span(),
                format!("type {name} is declared twice; keep one [[types]] table per type"),
            );
        }
        if t.layers.is_empty() {
            cx.report(
                t.name.span(),
                format!("type {name} has no layers; list its folders in layers = [...]"),
            );
        }
        let layer_list = |list: &[Spanned<String>], cx: &mut Ctx<'_>| {
            list.iter()
                .map(|l| {
                    if let Some(why) = relative_path_problem(l.get_ref()) {
                        cx.report(
                            l.span(),
                            format!(
                                "type {name}: layer {:?} is not a folder inside the set: {why}",
                                l.get_ref()
                            ),
                        );
                    }
                    (l.get_ref().clone(), cx.at(l.span()))
                })
                .collect::<Vec<_>>()
        };
        let layers = layer_list(&t.layers, cx);
        let elite = layer_list(&t.elite, cx);
        let overrides = t
            .overrides
            .iter()
            .map(|o| {
                if let Some(why) = relative_path_problem(o.get_ref()) {
                    cx.report(
                        o.span(),
                        format!("type {name}: override {:?}: {why}", o.get_ref()),
                    );
                }
                o.get_ref().clone()
            })
            .collect();
        types.push(TypeSpec {
            name,
            description: t.description,
            layers,
            elite,
            overrides,
            next_steps: t.next_steps,
            elite_next_steps: t.elite_next_steps,
            at,
        });
    }

    let mut keys: Vec<KeySpec> = Vec::new();
    for k in raw.keys {
        let at = cx.at(k.span());
        let k = k.into_inner();
        let name = k.name.get_ref().clone();
        if !identifier(&name) {
            cx.report(
                k.name.span(),
                format!("key name {name:?} must be lowercase letters, digits and '_', starting with a letter or '_' (a template variable)"),
            );
        } else if BUILTIN_VARIABLES.contains(&name.as_str()) {
            cx.report(
                k.name.span(),
                format!(
                    "key name {name:?} is a variable spawn-elite sets itself; choose another name"
                ),
            );
        }
        if keys.iter().any(|o| o.name == name) {
            cx.report(
                k.name.span(),
                format!("key {name} is declared twice; keep one [[keys]] table per key"),
            );
        }
        if k.rules.get_ref().is_empty() {
            cx.report(
                k.rules.span(),
                format!("key {name} has no rule; give it at least one of pattern, choices or range, with a message"),
            );
        }
        let mut rules = Vec::new();
        for r in k.rules.into_inner() {
            let span = r.span();
            let r = r.into_inner();
            let given = [r.pattern.is_some(), r.choices.is_some(), r.range.is_some()]
                .iter()
                .filter(|g| **g)
                .count();
            if given != 1 {
                cx.report(
                    span,
                    format!("key {name}: each rule needs exactly one of pattern, choices or range"),
                );
                continue;
            }
            if r.message.trim().is_empty() || r.message.contains('\n') {
                cx.report(
                    span.clone(),
                    format!("key {name}: a rule's message must be one non-empty line; it is what users see"),
                );
            }
            let check = if let Some(p) = r.pattern {
                match anchored(p.get_ref()) {
                    Ok(re) => Check::Pattern(re),
                    Err(e) => {
                        let detail = e.to_string();
                        let last = detail.lines().last().unwrap_or("").trim().to_owned();
                        cx.report(
                            p.span(),
                            format!("key {name}: pattern {:?} is not a valid regular expression: {last}", p.get_ref()),
                        );
                        continue;
                    }
                }
            } else if let Some(choices) = r.choices {
                if choices.is_empty() {
                    cx.report(span, format!("key {name}: choices is empty"));
                    continue;
                }
                Check::Choices(choices)
            } else if let Some([lo, hi]) = r.range {
                if lo > hi {
                    cx.report(
                        span,
                        format!("key {name}: range [{lo}, {hi}] is empty; write [LOW, HIGH]"),
                    );
                    continue;
                }
                Check::Range(lo, hi)
            } else {
                continue;
            };
            rules.push(Rule {
                check,
                message: r.message,
            });
        }
        let types = k
            .types
            .map(|list| list.into_iter().map(Spanned::into_inner).collect());
        keys.push(KeySpec {
            name,
            description: k.description,
            default_at: cx.at(k.default.span()),
            default: k.default.into_inner(),
            defaults: k
                .defaults
                .into_iter()
                .map(|(t, v)| (t, v.into_inner()))
                .collect(),
            types,
            rules,
            at,
        });
    }

    let default_type_given = set.default_type.is_some();
    let (default_type, default_type_at) = match set.default_type {
        Some(t) => (t.get_ref().clone(), cx.at(t.span())),
        None => (
            types.first().map(|t| t.name.clone()).unwrap_or_default(),
            cx.at(0..0),
        ),
    };
    Manifest {
        name: set.name.into_inner(),
        version: set.version.into_inner(),
        default_type,
        default_type_at,
        default_type_given,
        extends,
        remove,
        files,
        types,
        keys,
    }
}

fn identifier_type(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn file_rules(raw: RawFiles, cx: &mut Ctx<'_>) -> FileRules {
    let suffix = match raw.template_suffix {
        Some(s) => {
            if s.get_ref().is_empty() || s.get_ref().contains('/') {
                cx.report(
                    s.span(),
                    "template_suffix must be a non-empty file-name ending such as \".j2\"",
                );
            }
            s.into_inner()
        }
        None => ".j2".to_owned(),
    };
    let placeholder = match raw.name_placeholder {
        Some(s) => {
            if s.get_ref().is_empty() || s.get_ref().contains('/') {
                cx.report(
                    s.span(),
                    "name_placeholder must be a non-empty piece of a file name such as \"__name__\"",
                );
            }
            s.into_inner()
        }
        None => "__name__".to_owned(),
    };
    let mut builder = GlobSetBuilder::new();
    let mut executable = Vec::new();
    for g in raw.executable.unwrap_or_default() {
        match globset::GlobBuilder::new(g.get_ref())
            .literal_separator(true)
            .build()
        {
            Ok(glob) => {
                builder.add(glob);
            }
            Err(e) => cx.report(
                g.span(),
                format!("executable glob {:?} is invalid: {}", g.get_ref(), e.kind()),
            ),
        }
        executable.push(g.into_inner());
    }
    let matcher = builder.build().unwrap_or_else(|_| GlobSet::empty());
    FileRules {
        template_suffix: suffix,
        name_placeholder: placeholder,
        executable,
        matcher,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_take_plain_decimal_integers_only() {
        let rule = Rule {
            check: Check::Range(1024, 65535),
            message: String::new(),
        };
        for good in ["1024", "8080", "65535"] {
            assert!(rule.accepts(good), "{good}");
        }
        for bad in [
            "80", "0", "65536", "08080", "+8000", "http", "", "-1", " 8000",
        ] {
            assert!(!rule.accepts(bad), "{bad}");
        }
    }

    #[test]
    fn a_toml_error_names_its_line() {
        let err = Manifest::parse("[set]\nname = \"x\"\nversion = 1\n", "m.toml").unwrap_err();
        assert_eq!(err[0].line, Some(3), "{err:?}");
        assert!(err[0].to_string().starts_with("m.toml:3: "), "{err:?}");
    }
}
