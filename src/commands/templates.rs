//! `spawn-elite templates list|export|check`: what a template set holds,
//! the embedded set written out as the start of your own, and a set checked
//! before anyone spawns from it.

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use crate::error::{ExitCode, fail, fail_with};
use crate::fsutil::{self, WriteOptions, beneath};
use crate::templates::manifest::Check;
use crate::templates::{self, TemplateSet};

/// The set `--templates` names (empty means none), else the embedded one;
/// unlike a spawn, a set with problems is still listed.
fn load_for_listing(dir: Option<&Path>) -> Result<TemplateSet> {
    match dir.filter(|d| !d.as_os_str().is_empty()) {
        None => TemplateSet::embedded(),
        Some(dir) => TemplateSet::from_dir(dir).map_err(|problems| {
            let first = problems.first().map(ToString::to_string).unwrap_or_default();
            fail(
                ExitCode::Usage,
                format!(
                    "template set {}: {first}; `spawn-elite templates check {}` lists every problem",
                    dir.display(),
                    dir.display()
                ),
            )
        }),
    }
}

pub fn list(dir: Option<&Path>, json: bool, sources: bool) -> Result<ExitCode> {
    let set = load_for_listing(dir)?;
    let m = &set.manifest;
    let rows = set.catalogue();
    if json {
        let types: Vec<_> = m
            .types
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "description": t.description,
                    "layers": t.layers.iter().map(|(l, _)| l).collect::<Vec<_>>(),
                    "elite": t.elite.iter().map(|(l, _)| l).collect::<Vec<_>>(),
                    "overrides": t.overrides,
                    "next_steps": t.next_steps,
                    "elite_next_steps": t.elite_next_steps,
                })
            })
            .collect();
        let keys: Vec<_> = m
            .keys
            .iter()
            .map(|k| {
                let rules: Vec<_> = k
                    .rules
                    .iter()
                    .map(|r| match &r.check {
                        Check::Pattern(re) => {
                            json!({"pattern": re.as_str(), "message": r.message})
                        }
                        Check::Choices(c) => json!({"choices": c, "message": r.message}),
                        Check::Range(lo, hi) => json!({"range": [lo, hi], "message": r.message}),
                    })
                    .collect();
                json!({
                    "name": k.name,
                    "description": k.description,
                    "default": k.default,
                    "defaults": k.defaults,
                    "types": k.types,
                    "rules": rules,
                })
            })
            .collect();
        let files: Vec<_> = rows
            .iter()
            .map(|r| json!({"path": r.path, "sources": r.sources, "spawns": r.spawns}))
            .collect();
        let out = json!({
            "source": set.source.as_str(),
            "name": m.name,
            "version": m.version,
            "digest": set.digest(),
            "default_type": m.default_type,
            "executable": m.files.executable,
            "types": types,
            "keys": keys,
            "files": files,
        });
        crate::output::stdout_line(&serde_json::to_string_pretty(&out)?)?;
        return Ok(ExitCode::Success);
    }
    crate::output::stdout_line(&format!(
        "# set {} {} ({}), digest {}",
        m.name,
        m.version,
        set.source.as_str(),
        set.digest()
    ))?;
    crate::output::stdout_line(&format!("# types (default {}):", m.default_type))?;
    for t in &m.types {
        crate::output::stdout_line(&format!("#   {:<12} {}", t.name, t.description))?;
    }
    crate::output::stdout_line("# keys (--set KEY=VALUE):")?;
    for k in &m.keys {
        let only = k
            .types
            .as_ref()
            .map(|t| format!(" [{}]", t.join(", ")))
            .unwrap_or_default();
        crate::output::stdout_line(&format!(
            "#   {:<16} default {:?}{only}: {}",
            k.name, k.default, k.description
        ))?;
    }
    let width = rows.iter().map(|r| r.path.len()).max().unwrap_or(0);
    if sources {
        // The set files, one a line, with the output each writes: what
        // `remove = [...]` and an extending set's replacement files name.
        crate::output::stdout_line("# set files and the output path each writes:")?;
        let mut pairs: Vec<(&str, &str)> = rows
            .iter()
            .flat_map(|r| r.sources.iter().map(|src| (src.as_str(), r.path.as_str())))
            .collect();
        pairs.sort();
        let from = pairs.iter().map(|(src, _)| src.len()).max().unwrap_or(0);
        for (src, path) in pairs {
            crate::output::stdout_line(&format!("{src:from$}  {path}"))?;
        }
    } else {
        crate::output::stdout_line("# files (--sources adds the set files that write each):")?;
        for r in &rows {
            crate::output::stdout_line(&format!("{:width$}  {}", r.path, r.spawns.join(", ")))?;
        }
    }
    Ok(ExitCode::Success)
}

pub fn export(dir: &Path, force: bool) -> Result<ExitCode> {
    let io = |what: &Path, e: std::io::Error| {
        let message = format!(
            "cannot write {}: {e}; check the directory is writable",
            what.display()
        );
        fail_with(ExitCode::Io, message, e)
    };
    // A symlink to nothing is neither a new directory nor an empty one:
    // say so, rather than the "File exists" that creating through it gives.
    if let Ok(link) = std::fs::symlink_metadata(dir)
        && link.file_type().is_symlink()
        && std::fs::metadata(dir).is_err()
    {
        let to = std::fs::read_link(dir)
            .map(|t| t.display().to_string())
            .unwrap_or_default();
        return Err(fail(
            ExitCode::Usage,
            format!(
                "{} is a symlink to {to}, which does not exist; create {to} first, or name a new or empty directory",
                dir.display()
            ),
        ));
    }
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() && !force {
                return Err(fail(
                    ExitCode::Usage,
                    format!(
                        "{} is not empty; export into a new or empty directory, or pass --force to write the set's files over what is there",
                        dir.display()
                    ),
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            return Err(fail(
                ExitCode::Usage,
                format!(
                    "{} is a file, not a directory; name a new or empty directory",
                    dir.display()
                ),
            ));
        }
        Err(e) => return Err(io(dir, e)),
    }
    let files = templates::embedded_files();
    for (path, _) in &files {
        if let Some(why) = crate::receipt::path::problem(path, crate::receipt::path::Scope::Plain) {
            return Err(fail(
                ExitCode::Unrecordable,
                format!(
                    "the embedded set holds {path:?}, which cannot be exported: {why}; this is a bug in spawn-elite"
                ),
            ));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let root = beneath::Root::open(dir).map_err(|e| io(dir, e))?;
    // Nothing is written through a symlink inside DIR (`DIR/base` pointing
    // elsewhere): checked for every file before the first is written, and
    // each folder is then made without following one.
    if let Some(linked) = files.iter().find_map(|(path, _)| root.linked_folder(path)) {
        return Err(fail(
            ExitCode::Usage,
            format!(
                "{} is a symlink (or a file), and export never writes through one; remove it, or export into another directory; nothing was written",
                dir.join(linked).display()
            ),
        ));
    }
    for (path, bytes) in &files {
        let target = dir.join(path);
        let (parent, _) = beneath::split(Path::new(path)).map_err(|e| io(&target, e))?;
        root.create_dirs(parent)
            .map_err(|e| io(&dir.join(parent), e))?;
        fsutil::write_atomic(&target, bytes, WriteOptions::DATA).map_err(|e| io(&target, e))?;
    }
    let set = TemplateSet::embedded()?;
    crate::output::stdout_line(&format!(
        "Exported template set {} {} ({} files) to {}",
        set.manifest.name,
        set.manifest.version,
        files.len(),
        dir.display()
    ))?;
    crate::output::stdout_line(&format!("  digest {}", set.digest()))?;
    crate::output::stdout_line(&format!(
        "  edit it, then: spawn-elite templates check {0} && spawn-elite NAME --templates {0}",
        dir.display()
    ))?;
    Ok(ExitCode::Success)
}

pub fn check(dir: &Path) -> Result<ExitCode> {
    let set = match TemplateSet::from_dir(dir) {
        Ok(set) => set,
        Err(problems) => {
            for p in &problems {
                eprintln!("error: {p}");
            }
            return Ok(ExitCode::Usage);
        }
    };
    let problems = set.check();
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("error: {p}");
        }
        return Ok(ExitCode::Usage);
    }
    let m = &set.manifest;
    if let Ok(embedded) = TemplateSet::embedded()
        && m.name == embedded.manifest.name
        && m.version == embedded.manifest.version
        && set.digest() != embedded.digest()
    {
        crate::output::warn(&format!(
            "{} differs from the set built into spawn-elite but keeps its name and version ({} {}), so receipts cannot tell them apart; change name and version under [set] in {}",
            dir.display(),
            m.name,
            m.version,
            dir.join(templates::MANIFEST).display()
        ));
    }
    crate::output::stdout_line(&format!(
        "ok: template set {} {} in {}: {} types each rendered with and without elite, {} keys, {} files; digest {}",
        m.name,
        m.version,
        dir.display(),
        m.types.len(),
        m.keys.len(),
        set.file_paths().len(),
        set.digest()
    ))?;
    Ok(ExitCode::Success)
}
