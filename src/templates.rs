//! The template set embedded in the binary: the repository types it knows,
//! the layers each is made of, and rendering them into in-memory files.
//! Layout rules are in docs/TEMPLATES.md.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use include_dir::{Dir, DirEntry, File, include_dir};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use crate::error::{ExitCode, fail};

static TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");

const NAME_PLACEHOLDER: &str = "__name__";

/// One file of the repository to be, fully rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    /// Relative path with `/` separators.
    pub path: String,
    pub contents: Vec<u8>,
    pub executable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Service,
    Infra,
    Tool,
}

/// One repository type: its name, the template layers it is made of, and
/// what to do after spawning one. What "elite" adds is decided here and
/// nowhere else in Rust: one more layer, and a few more next steps. (The
/// templates see it as the `elite` value.)
pub struct TypeSpec {
    pub kind: Kind,
    pub name: &'static str,
    /// Layers every spawn of this type includes, in order.
    pub layers: &'static [&'static str],
    /// The layer `--no-elite` leaves out: CI, containers, monitoring.
    pub elite_layer: &'static str,
    /// Printed after a spawn, after `cd DIR`.
    pub next_steps: &'static [&'static str],
    /// Printed after those when the elite layer was included.
    pub elite_next_steps: &'static [&'static str],
}

pub const TYPES: &[TypeSpec] = &[
    TypeSpec {
        kind: Kind::Service,
        name: "service",
        layers: &["base", "service"],
        elite_layer: "elite/service",
        next_steps: &[
            "make venv      # .venv with runtime and development dependencies",
            "make test      # run the tests",
            "make dev       # serve on localhost with reload",
        ],
        elite_next_steps: &[
            "cp .env.example .env   # then set GRAFANA_ADMIN_PASSWORD in .env",
            "docker compose up -d   # app, Prometheus and Grafana",
        ],
    },
    TypeSpec {
        kind: Kind::Infra,
        name: "infra",
        layers: &["base", "infra"],
        elite_layer: "elite/infra",
        next_steps: &[
            "cp .env.example .env   # then fill in your cloud settings",
            "make init && make plan",
        ],
        elite_next_steps: &[],
    },
    TypeSpec {
        kind: Kind::Tool,
        name: "tool",
        layers: &["base", "tool"],
        elite_layer: "elite/tool",
        next_steps: &[
            "make test      # bats tests",
            "make install   # install the command into ~/.local/bin",
        ],
        elite_next_steps: &[],
    },
];

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Service, Kind::Infra, Kind::Tool];

    pub fn spec(self) -> &'static TypeSpec {
        // Every Kind has a row; the table's test checks it.
        TYPES.iter().find(|t| t.kind == self).unwrap_or(&TYPES[0])
    }

    pub fn as_str(self) -> &'static str {
        self.spec().name
    }

    pub fn parse(text: &str) -> Result<Kind> {
        TYPES
            .iter()
            .find(|t| t.name == text)
            .map(|t| t.kind)
            .ok_or_else(|| {
                fail(
                    ExitCode::Usage,
                    format!("unknown type '{text}': choose one of service, infra, tool"),
                )
            })
    }

    /// What to do after spawning this type, after `cd DIR`.
    pub fn next_steps(self, elite: bool) -> Vec<&'static str> {
        let spec = self.spec();
        let mut steps = spec.next_steps.to_vec();
        if elite {
            steps.extend_from_slice(spec.elite_next_steps);
        }
        steps
    }
}

/// A layer of the template tree and whether it is the elite one.
struct Layer {
    dir: &'static str,
    elite: bool,
}

fn layers(kind: Kind, elite: bool) -> Vec<Layer> {
    let spec = kind.spec();
    let mut layers: Vec<Layer> = spec
        .layers
        .iter()
        .map(|dir| Layer { dir, elite: false })
        .collect();
    if elite {
        layers.push(Layer {
            dir: spec.elite_layer,
            elite: true,
        });
    }
    layers
}

fn files_under(dir: &str) -> Vec<&'static File<'static>> {
    TEMPLATES.get_dir(dir).map(walk).unwrap_or_default()
}

fn walk(dir: &'static Dir<'static>) -> Vec<&'static File<'static>> {
    let mut out = Vec::new();
    for entry in dir.entries() {
        match entry {
            DirEntry::Dir(sub) => out.extend(walk(sub)),
            DirEntry::File(file) => out.push(file),
        }
    }
    out
}

/// Where a template lands in the repository, before `__name__` substitution:
/// the path below its layer, without a `.j2` suffix.
fn output_pattern(layer_dir: &str, file: &File<'_>) -> String {
    let full = path_text(file);
    let relative = full
        .strip_prefix(layer_dir)
        .unwrap_or(&full)
        .trim_start_matches('/');
    relative.strip_suffix(".j2").unwrap_or(relative).to_owned()
}

fn path_text(file: &File<'_>) -> String {
    file.path().to_string_lossy().replace('\\', "/")
}

/// Files a repository runs directly; everything else is data.
fn is_executable(path: &str) -> bool {
    path.starts_with("bin/") || path.starts_with("scripts/")
}

fn environment() -> Environment<'static> {
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
    env.set_loader(|name| {
        Ok(TEMPLATES
            .get_file(name)
            .and_then(|f| f.contents_utf8())
            .map(str::to_owned))
    });
    env
}

/// `value` as one single-quoted shell word: the shell takes everything in
/// it as text (no `$`, backquote, `\` or glob), and a `'` in it is written
/// `'\''` (end the quotes, an escaped quote, quote again). Values never hold
/// a newline (`--set` refuses control characters), so the word is one line.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// Render every file of one spawn of `kind` named `name` in memory, sorted
/// by path; `ctx` holds the values the templates see.
///
/// Rendering everything before writing anything is what lets a spawn fail
/// without leaving half a repository behind.
pub fn render(
    kind: Kind,
    elite: bool,
    name: &str,
    ctx: &minijinja::Value,
) -> Result<Vec<PlannedFile>> {
    let env = environment();
    let mut planned: BTreeMap<String, PlannedFile> = BTreeMap::new();
    for layer in layers(kind, elite) {
        for file in files_under(layer.dir) {
            let pattern = output_pattern(layer.dir, file);
            let path = pattern.replace(NAME_PLACEHOLDER, name);
            let source = path_text(file);
            let contents = if source.ends_with(".j2") {
                let text = file
                    .contents_utf8()
                    .with_context(|| format!("template {source} is not UTF-8"))?;
                let mut rendered = env
                    .render_str(text, ctx)
                    .with_context(|| format!("cannot render template {source}"))?;
                if !rendered.ends_with('\n') && !rendered.is_empty() {
                    rendered.push('\n');
                }
                rendered.into_bytes()
            } else {
                file.contents().to_vec()
            };
            let entry = PlannedFile {
                executable: is_executable(&path),
                path: path.clone(),
                contents,
            };
            if planned.insert(path.clone(), entry).is_some() {
                bail!(
                    "two templates produce {path} for a {} repository (layer {}); keep each path in one layer",
                    kind.as_str(),
                    layer.dir
                );
            }
        }
    }
    Ok(planned.into_values().collect())
}

/// Every embedded template: its output path and the spawns that include it,
/// e.g. `("Dockerfile", ["service (elite)"])`.
pub fn catalogue() -> Vec<(String, Vec<String>)> {
    let mut rows: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for kind in Kind::ALL {
        for layer in layers(kind, true) {
            for file in files_under(layer.dir) {
                let label = if layer.elite {
                    format!("{} (elite)", kind.as_str())
                } else {
                    kind.as_str().to_owned()
                };
                rows.entry(output_pattern(layer.dir, file))
                    .or_default()
                    .push(label);
            }
        }
    }
    rows.into_iter().collect()
}

/// BLAKE3 over every embedded template (path and bytes, in path order), so a
/// receipt can name exactly which template set produced a repository.
pub fn digest() -> String {
    let mut all = walk(&TEMPLATES);
    all.sort_by_key(|f| path_text(f));
    let mut hasher = blake3::Hasher::new();
    for file in all {
        let path = path_text(file);
        hasher.update(&(path.len() as u64).to_le_bytes());
        hasher.update(path.as_bytes());
        hasher.update(&(file.contents().len() as u64).to_le_bytes());
        hasher.update(file.contents());
    }
    hasher.finalize().to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quote_makes_one_literal_word() {
        assert_eq!(shell_quote("plain"), "'plain'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$(id) `id`"), "'$(id) `id`'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn every_kind_has_one_row_and_its_layers_exist() {
        for kind in Kind::ALL {
            let rows = TYPES.iter().filter(|t| t.kind == kind).count();
            assert_eq!(rows, 1, "{kind:?}");
            assert_eq!(Kind::parse(kind.as_str()).ok(), Some(kind));
            for layer in layers(kind, true) {
                assert!(TEMPLATES.get_dir(layer.dir).is_some(), "{}", layer.dir);
            }
        }
    }
}
