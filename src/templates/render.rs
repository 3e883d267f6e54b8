//! Rendering: the minijinja environment a set's templates run in, the
//! plan of one spawn (every output path and its contents, all in memory),
//! and template errors as `file:line` problems.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use super::load::join_shown;
use super::{
    MANIFEST, PlannedFile, Problem, Source, TemplateSet, TypeSpec, internal_set_error, manifest,
    set_error,
};
use crate::receipt::path::{self, Scope};

impl TemplateSet {
    pub(super) fn environment(&self) -> Environment<'static> {
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
            if let Some(why) = path::problem(name, Scope::Plain) {
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

    pub(super) fn plan(
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
                if let Some(why) = path::problem(&path, Scope::Output) {
                    problems.push(Problem {
                        file: file.shown.clone(),
                        line: None,
                        message: format!("would be written to {path:?}, where {why}; move it"),
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
                    && prev_layer == layer
                {
                    // One layer, two spellings (`X` and `X.j2`): the set's
                    // own files collide, whatever the type.
                    let p = Problem {
                        file: file.shown.clone(),
                        line: None,
                        message: format!(
                            "writes {path}, as {prev_source} in the same layer does; keep one of the two files"
                        ),
                    };
                    if !problems.contains(&p) {
                        problems.push(p);
                    }
                    continue;
                }
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
    pub(super) fn known_variables(&self) -> Vec<String> {
        manifest::BUILTIN_VARIABLES
            .iter()
            .map(|s| (*s).to_owned())
            .chain(self.manifest.keys.iter().map(|k| k.name.clone()))
            .collect()
    }
}

pub(super) fn unknown_variable_message(var: &str, known: &str) -> String {
    format!(
        "unknown variable `{var}`: templates see {known}; fix the name, or declare a key {var} in {MANIFEST}"
    )
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
}
