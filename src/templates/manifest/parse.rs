//! Reading a manifest: the TOML as written, then each value resolved and
//! checked into a [`Manifest`], every problem with its line.

use std::collections::BTreeMap;
use std::ops::Range;

use globset::{GlobSet, GlobSetBuilder};
use serde::Deserialize;
use toml::Spanned;

use super::{
    At, BUILTIN_VARIABLES, EXTENDS_EMBEDDED, FileRules, KeySpec, Manifest, Problem, TypeSpec,
    line_of,
};
use crate::receipt::path::{self, Scope};
use crate::templates::rules::{self, RawRule};

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
}

fn identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

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
        if let Some(why) = path::problem(r.get_ref(), Scope::Plain) {
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
                    if let Some(why) = path::problem(l.get_ref(), Scope::Plain) {
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
                if let Some(why) = path::problem(o.get_ref(), Scope::Plain) {
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
            if let Some(rule) =
                rules::resolve(&name, r, &mut |span, message| cx.report(span, message))
            {
                rules.push(rule);
            }
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
    fn a_toml_error_names_its_line() {
        let err = Manifest::parse("[set]\nname = \"x\"\nversion = 1\n", "m.toml").unwrap_err();
        assert_eq!(err[0].line, Some(3), "{err:?}");
        assert!(err[0].to_string().starts_with("m.toml:3: "), "{err:?}");
    }
}
