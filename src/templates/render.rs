//! Rendering: the minijinja environment a set's templates run in, the
//! plan of one spawn (every output path and its contents, all in memory),
//! and template errors as `file:line` problems.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use super::load::join_shown;
use super::outputs;
use super::{
    MANIFEST, PlannedFile, Problem, Source, TemplateSet, TypeSpec, internal_set_error, manifest,
    set_error,
};
use crate::error::{ExitCode, fail};
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
            // Not `TemplateNotFound`, which an `include` reports as a missing
            // file whatever the loader said: the name itself is the problem.
            if let Some(why) = path::problem(name, Scope::Plain) {
                return Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    format!("{name:?} cannot be included: absolute names and '..' are not allowed ({why}); name a file of the set from its root, such as partials/FILE"),
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
        let (files, problems, of_outputs) = self.plan(spec, elite, name, ctx, true);
        if !problems.is_empty() {
            return Err(match self.source {
                Source::Embedded => internal_set_error(&problems),
                Source::Dir => set_error(Path::new(&self.shown), &problems),
            });
        }
        match (of_outputs.first(), self.source) {
            (None, _) => Ok(files),
            // The embedded set checks clean (its tests say so), so a problem
            // of its output paths comes from the name or a value: a tool
            // named `tfplan` gets `bin/tfplan`, which its `.gitignore` ignores.
            (Some(p), Source::Embedded) => Err(fail(
                ExitCode::Usage,
                format!("cannot spawn {name} from the embedded set: {p}; choose another name"),
            )),
            (Some(_), Source::Dir) => Err(set_error(Path::new(&self.shown), &of_outputs)),
        }
    }

    pub(super) fn plan(
        &self,
        spec: &TypeSpec,
        elite: bool,
        name: &str,
        ctx: &minijinja::Value,
        stop_at_first: bool,
    ) -> (Vec<PlannedFile>, Vec<Problem>, Vec<Problem>) {
        let rules = &self.manifest.files;
        let mut env = self.environment();
        let mut budget = Budget::spawn();
        let known = self.known_variables();
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
                    match render_one(&mut env, source, ctx, self, &known, &mut budget) {
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
        let of_outputs = if stop_at_first && !problems.is_empty() {
            Vec::new()
        } else {
            self.output_problems(&planned, &rules.template_suffix)
        };
        let files = planned.into_values().map(|(f, _, _)| f).collect();
        (files, problems, of_outputs)
    }

    /// What the planned paths together break: a path both a file and a
    /// folder, a path a generated `.gitignore` ignores (see [`outputs`]).
    fn output_problems(
        &self,
        planned: &BTreeMap<String, (PlannedFile, String, String)>,
        template_suffix: &str,
    ) -> Vec<Problem> {
        let outputs: BTreeMap<&str, outputs::Output<'_>> = planned
            .iter()
            .map(|(path, (file, _, source))| {
                let shown = self
                    .files
                    .get(source)
                    .map_or(source.as_str(), |f| f.shown.as_str());
                let output = outputs::Output {
                    path,
                    contents: &file.contents,
                    shown,
                    template: source.ends_with(template_suffix),
                };
                (path.as_str(), output)
            })
            .collect();
        let mut problems = outputs::collisions(&outputs);
        problems.extend(outputs::ignored(&outputs));
        problems
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

/// What rendering may use: each template render gets at most
/// [`FILE_FUEL`] and [`FILE_OUTPUT`], one spawn's renders together at most
/// [`SPAWN_FUEL`] and [`SPAWN_OUTPUT`]. A template set is code from
/// whoever wrote it; these bounds keep a loop or a repeated string in one
/// from running for hours or exhausting memory, far above what a real set
/// uses (the embedded set's largest render takes under 0.3 % of each; see
/// docs/TEMPLATES.md, "Limits").
///
/// Fuel is minijinja's: about one unit per instruction executed and per
/// 64 bytes of data a template creates, so it bounds time and the memory of
/// values that are never output.
pub const FILE_FUEL: u64 = 1_000_000;
/// The fuel of one spawn's renders together.
pub const SPAWN_FUEL: u64 = 10_000_000;
/// Bytes one template may render.
pub const FILE_OUTPUT: u64 = 4 << 20;
/// Bytes one spawn's templates may render together (files copied as they
/// are do not count: they are no larger than the set's own files).
pub const SPAWN_OUTPUT: u64 = 32 << 20;

/// What is left of one spawn's budget as its templates are rendered.
pub(super) struct Budget {
    fuel: u64,
    output: u64,
}

impl Budget {
    pub(super) fn spawn() -> Budget {
        Budget {
            fuel: SPAWN_FUEL,
            output: SPAWN_OUTPUT,
        }
    }
}

/// The output of one render, refusing to grow past `limit` bytes.
struct Capped {
    out: Vec<u8>,
    limit: u64,
    exceeded: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() as u64 + buf.len() as u64 > self.limit {
            self.exceeded = true;
            return Err(std::io::Error::other("output limit reached"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Render the template at `source` within `budget`, or the problem with
/// file and line.
fn render_one(
    env: &mut Environment<'static>,
    source: &str,
    ctx: &minijinja::Value,
    set: &TemplateSet,
    known: &[String],
    budget: &mut Budget,
) -> Result<String, Problem> {
    let fuel = FILE_FUEL.min(budget.fuel);
    env.set_fuel(Some(fuel));
    let mut out = Capped {
        out: Vec::new(),
        limit: FILE_OUTPUT.min(budget.output),
        exceeded: false,
    };
    let rendered = env.get_template(source).and_then(|t| {
        t.render_captured_to(ctx, &mut out)
            .map(|c| c.state().fuel_levels())
    });
    let levels = match rendered {
        Ok(levels) => levels,
        Err(e) => {
            // Where it stopped, as for any error; what stopped it, in our words.
            let mut problem = template_problem(env, &e, source, set, known);
            if out.exceeded {
                problem.message = over_limit(Limit::Output, out.limit < FILE_OUTPUT);
            } else if e.kind() == minijinja::ErrorKind::OutOfFuel {
                problem.message = over_limit(Limit::Fuel, fuel < FILE_FUEL);
            }
            return Err(problem);
        }
    };
    budget.fuel -= levels.map_or(0, |(used, _)| used).min(budget.fuel);
    budget.output -= (out.out.len() as u64).min(budget.output);
    let mut rendered = String::from_utf8(out.out).map_err(|_| Problem {
        file: set
            .files
            .get(source)
            .map_or_else(|| join_shown(&set.shown, source), |f| f.shown.clone()),
        line: None,
        message: "renders text that is not UTF-8".into(),
    })?;
    if !rendered.ends_with('\n') && !rendered.is_empty() {
        rendered.push('\n');
    }
    Ok(rendered)
}

#[derive(Clone, Copy)]
enum Limit {
    Output,
    Fuel,
}

/// Why a render was stopped: a limit of one file, or of the whole spawn.
fn over_limit(limit: Limit, whole_spawn: bool) -> String {
    match (limit, whole_spawn) {
        (Limit::Output, false) => format!(
            "renders more than {} MiB, the limit for one file; look for a loop or a repeated string",
            FILE_OUTPUT >> 20
        ),
        (Limit::Output, true) => format!(
            "the templates of one spawn render more than {} MiB together, the limit for a spawn; look for a loop or a repeated string",
            SPAWN_OUTPUT >> 20
        ),
        (Limit::Fuel, false) => format!(
            "takes more than {FILE_FUEL} steps to render, the limit for one file; look for a loop that runs too often (nested loops multiply)"
        ),
        (Limit::Fuel, true) => format!(
            "the templates of one spawn take more than {SPAWN_FUEL} steps to render together, the limit for a spawn; look for a loop that runs too often"
        ),
    }
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
