//! What the current set renders for a spawned repository: the receipt's
//! type, elite flag and values (changed by `--set`), rendered in memory by
//! the spawn's own planning, with the receipt of that pristine output.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Result;

use super::Options;
use crate::error::{ExitCode, fail};
use crate::receipt::merkle::{self, MODE_EXEC, MODE_FILE};
use crate::receipt::{
    FORMAT_V2, FileEntry, RECEIPT_PATH, Receipt, SpawnInfo, TemplatesInfo, Tool, hex, mode_str,
};
use crate::spawn::config::{SpawnConfig, defaults, resolve_sets};
use crate::spawn::plan as spawn_plan;
use crate::templates::{PlannedFile, TemplateSet};

/// The old pristine output (as the repository's receipt describes it) and
/// the new one (rendered now).
#[derive(Debug)]
pub struct Plan {
    /// The receipt in the repository now.
    pub old: Receipt,
    pub old_templates: TemplatesInfo,
    /// The new pristine files, sorted by path, the receipt excluded.
    pub files: Vec<PlannedFile>,
    /// The receipt of `files`.
    pub receipt: Receipt,
    pub new_templates: TemplatesInfo,
    pub warnings: Vec<String>,
}

impl Plan {
    /// Whether the new pristine output is the old one, file for file, and
    /// the receipt already records this set (name, version, digest) and
    /// these values. A set that renders the same files under a new version
    /// or digest is not current: the update records it (a pristine commit
    /// where only the receipt changes), so `--check` and the receipt tell
    /// the truth.
    pub fn current(&self) -> bool {
        self.files_current() && self.old.spawn == self.receipt.spawn
    }

    /// Whether the new pristine files are the old ones (the receipt aside).
    pub fn files_current(&self) -> bool {
        self.old.files == self.receipt.files
    }

    /// The new receipt's bytes, as committed and written.
    pub fn receipt_bytes(&self) -> Vec<u8> {
        self.receipt.to_json_bytes()
    }

    pub fn file(&self, path: &str) -> Option<&PlannedFile> {
        self.files
            .binary_search_by(|f| f.path.as_bytes().cmp(path.as_bytes()))
            .ok()
            .map(|i| &self.files[i])
    }
}

/// Read the receipt in `opts.dir` and render what the current set makes of it.
pub fn plan(opts: &Options) -> Result<Plan> {
    let receipt_path = opts.dir.join(RECEIPT_PATH);
    if !receipt_path.exists() {
        return Err(fail(
            ExitCode::Usage,
            format!(
                "{} has no {RECEIPT_PATH}; update works on a repository spawn-elite spawned (pass its directory)",
                opts.dir.display()
            ),
        ));
    }
    let old = Receipt::read(&receipt_path)?;
    let Some(spawn) = old.spawn.clone() else {
        return Err(fail(
            ExitCode::Usage,
            format!(
                "receipt {} records no spawn (`spawn-elite receipt` made it), so there is nothing to re-render; update works on a spawned repository",
                receipt_path.display()
            ),
        ));
    };
    let old_templates = spawn.templates.clone().unwrap_or_else(|| TemplatesInfo {
        source: "embedded".into(),
        name: "spawn-elite".into(),
        version: "unknown".into(),
        digest: spawn.template_digest.clone().unwrap_or_default(),
    });
    if old_templates.source == "dir" && opts.templates.is_none() {
        return Err(fail(
            ExitCode::Usage,
            format!(
                "{} was spawned from template set {} {} on disk; pass the set to update to with --templates DIR",
                opts.dir.display(),
                old_templates.name,
                old_templates.version
            ),
        ));
    }
    let set = TemplateSet::open(opts.templates.as_deref())?;
    set.type_spec(&spawn.kind).map_err(|e| {
        fail(
            ExitCode::Usage,
            format!(
                "{}; the repository is a {} and template set {} {} has no such type: pass the set it was spawned from, or one that keeps the type, with --templates",
                crate::error::describe(&e),
                spawn.kind,
                set.manifest.name,
                set.manifest.version
            ),
        )
    })?;
    let (values, warnings) = values(&set, &spawn, &opts.set)?;
    let created: jiff::Timestamp = old.created.parse().map_err(|_| {
        fail(
            ExitCode::InvalidReceipt,
            format!(
                "receipt {} has an unreadable created time",
                receipt_path.display()
            ),
        )
    })?;
    let new_templates = TemplatesInfo {
        source: set.source.as_str().to_owned(),
        name: set.manifest.name.clone(),
        version: set.manifest.version.clone(),
        digest: set.digest().to_owned(),
    };
    let config = SpawnConfig {
        name: spawn.name.clone(),
        kind: spawn.kind.clone(),
        set: Arc::new(set),
        base: opts.dir.clone(),
        target: opts.dir.clone(),
        elite: spawn.elite,
        git: false,
        dry_run: true,
        json: opts.json,
        quiet: opts.quiet,
        ledger: opts.ledger,
        values,
        warnings: Vec::new(),
        // The render's clock is the spawn's: `created` is carried from
        // receipt to receipt, so `{{ date }}` and `{{ year }}` never change
        // by an update, and an unchanged set renders the same bytes.
        now: created,
    };
    let mut files = spawn_plan::plan(&config)?;
    files.retain(|f| f.path != RECEIPT_PATH);
    files.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    let info = SpawnInfo {
        name: config.name.clone(),
        kind: config.kind.clone(),
        options: config.values.clone(),
        template_digest: None,
        templates: Some(new_templates.clone()),
        elite: config.elite,
    };
    let receipt = receipt_of(&files, info, &old.created);
    Ok(Plan {
        old,
        old_templates,
        files,
        receipt,
        new_templates,
        warnings,
    })
}

/// The recorded values, checked against the current set; keys the set no
/// longer declares are dropped and keys it added take their default; then
/// `--set`.
fn values(
    set: &TemplateSet,
    spawn: &SpawnInfo,
    sets: &[String],
) -> Result<(BTreeMap<String, String>, Vec<String>)> {
    let mut values = defaults(set, &spawn.kind);
    let mut warnings = Vec::new();
    let overridden = |key: &str| {
        sets.iter()
            .any(|s| s.split_once('=').is_some_and(|(k, _)| k == key))
    };
    for (key, value) in &spawn.options {
        let Some(spec) = set.manifest.keys.iter().find(|k| &k.name == key) else {
            warnings.push(format!(
                "the receipt records {key}={value:?}, but template set {} {} has no key {key}; it is dropped",
                set.manifest.name, set.manifest.version
            ));
            continue;
        };
        if !overridden(key) {
            spec.check(value).map_err(|rule| {
                fail(
                    ExitCode::Usage,
                    format!(
                        "the receipt records {key}={value:?}, which template set {} {} refuses: {rule}; pass --set {key}=VALUE",
                        set.manifest.name, set.manifest.version
                    ),
                )
            })?;
        }
        values.insert(key.clone(), value.clone());
    }
    warnings.extend(resolve_sets(set, &spawn.kind, sets, &mut values)?);
    Ok((values, warnings))
}

/// The receipt of rendered files, as `Receipt::of_tree` would make it of
/// them written out (the same leaves, order and fields), without writing.
pub fn receipt_of(files: &[PlannedFile], spawn: SpawnInfo, created: &str) -> Receipt {
    let mut leaves = Vec::with_capacity(files.len());
    let mut entries = Vec::with_capacity(files.len());
    for f in files {
        let mode = if f.executable { MODE_EXEC } else { MODE_FILE };
        let content = *blake3::hash(&f.contents).as_bytes();
        leaves.push(merkle::leaf_hash(&f.path, mode, &content));
        entries.push(FileEntry {
            path: f.path.clone(),
            size: f.contents.len() as u64,
            mode: mode_str(mode).to_owned(),
            blake3: hex(&content),
        });
    }
    Receipt {
        format: FORMAT_V2.to_owned(),
        tool: Tool {
            name: env!("CARGO_PKG_NAME").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        },
        spawn: Some(spawn),
        created: created.to_owned(),
        merkle_root: hex(&merkle::root(&leaves)),
        leaf_count: entries.len() as u64,
        files: entries,
    }
}
