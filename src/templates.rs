//! The template set embedded in the binary, and rendering it into an
//! in-memory plan. Layout rules are in docs/TEMPLATES.md.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use include_dir::{Dir, DirEntry, File, include_dir};
use minijinja::{AutoEscape, Environment, UndefinedBehavior, context};

use crate::config::{Kind, SpawnConfig};

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

/// A layer of the template tree and whether a given spawn includes it.
struct Layer {
    dir: String,
    kind: Kind,
    elite: bool,
}

fn layers(kind: Kind, elite: bool) -> Vec<Layer> {
    let mut layers = vec![
        Layer {
            dir: "base".into(),
            kind,
            elite: false,
        },
        Layer {
            dir: kind.as_str().into(),
            kind,
            elite: false,
        },
    ];
    if elite {
        layers.push(Layer {
            dir: format!("elite/{}", kind.as_str()),
            kind,
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

/// Render every file of one spawn in memory, sorted by path.
///
/// Rendering everything before writing anything is what lets a spawn fail
/// without leaving half a repository behind.
pub fn plan(config: &SpawnConfig) -> Result<Vec<PlannedFile>> {
    let env = environment();
    let ctx = context! {
        name => &config.name,
        type => config.kind.as_str(),
        elite => config.elite,
        year => config.now.strftime("%Y").to_string(),
        date => config.now.strftime("%Y-%m-%d").to_string(),
        tool_version => env!("CARGO_PKG_VERSION"),
        ..minijinja::Value::from(config.values.clone())
    };
    let mut planned: BTreeMap<String, PlannedFile> = BTreeMap::new();
    for layer in layers(config.kind, config.elite) {
        for file in files_under(&layer.dir) {
            let pattern = output_pattern(&layer.dir, file);
            let path = pattern.replace(NAME_PLACEHOLDER, &config.name);
            let source = path_text(file);
            let contents = if source.ends_with(".j2") {
                let text = file
                    .contents_utf8()
                    .with_context(|| format!("template {source} is not UTF-8"))?;
                let mut rendered = env
                    .render_str(text, ctx.clone())
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
                    layer.kind.as_str(),
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
            for file in files_under(&layer.dir) {
                let label = if layer.elite {
                    format!("{} (elite)", kind.as_str())
                } else {
                    kind.as_str().to_owned()
                };
                rows.entry(output_pattern(&layer.dir, file))
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
