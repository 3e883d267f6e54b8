//! What the current set renders for a spawned repository: the receipt's
//! type, elite flag and values (changed by `--set`), rendered in memory by
//! the template set, as a spawn renders, with the receipt of that pristine
//! output.

use anyhow::Result;

use super::Options;
use crate::error::{ExitCode, fail};
use crate::receipt::{RECEIPT_PATH, Receipt, SpawnInfo, TemplatesInfo, meta};
use crate::templates::{PlannedFile, Render, TemplateSet, values};

/// The old pristine output (as the repository's receipt describes it) and
/// the new one (rendered now).
#[derive(Debug)]
pub struct Plan {
    /// The receipt in the repository now.
    pub old: Receipt,
    /// Its spawn section, less the values of keys that do not apply to the
    /// type (which earlier receipts recorded): what is compared.
    recorded: Option<SpawnInfo>,
    pub old_templates: TemplatesInfo,
    /// The new pristine files, sorted by path, the receipt excluded.
    pub files: Vec<PlannedFile>,
    /// The receipt of `files`.
    pub receipt: Receipt,
    pub new_templates: TemplatesInfo,
    pub warnings: Vec<String>,
    /// The metadata files besides the receipt, written (and committed) with
    /// it: with `--sign` the attestation of the new pristine files and
    /// receipt, and with `--tsa` its timestamp token.
    pub metadata: Vec<PlannedFile>,
}

impl Plan {
    /// Whether the new pristine output is the old one, file for file, and
    /// the receipt already records this set (name, version, digest) and
    /// these values. A set that renders the same files under a new version
    /// or digest is not current: the update records it (a pristine commit
    /// where only the receipt changes), so `--check` and the receipt tell
    /// the truth.
    pub fn current(&self) -> bool {
        self.files_current() && self.recorded == self.receipt.spawn
    }

    /// Whether the new pristine files are the old ones (the receipt aside).
    pub fn files_current(&self) -> bool {
        self.old.files == self.receipt.files
    }

    /// The new receipt's bytes, as committed and written.
    pub fn receipt_bytes(&self) -> Vec<u8> {
        self.receipt.to_json_bytes()
    }

    /// The new receipt, as the file it is written to.
    pub fn receipt_file(&self) -> PlannedFile {
        self.receipt.as_planned()
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
    let (values, warnings) = values::carried(&set, &spawn, &opts.set)?;
    // Only checked: `created` is carried from receipt to receipt as it is.
    let created: jiff::Timestamp = old.created.parse().map_err(|_| {
        fail(
            ExitCode::InvalidReceipt,
            format!(
                "receipt {} has an unreadable created time",
                receipt_path.display()
            ),
        )
    })?;
    let new_templates = set.info();
    let render = Render {
        name: &spawn.name,
        kind: &spawn.kind,
        elite: spawn.elite,
        // The render's clock is the spawn's: `created` is carried from
        // receipt to receipt, so `{{ date }}` and `{{ year }}` never change
        // by an update, and an unchanged set renders the same bytes.
        now: created,
        values: &values,
    };
    let mut files = set.render_type(&render)?;
    files.retain(|f| !meta::is_uncovered(&f.path));
    files.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    let receipt = Receipt::of_planned(&files, Some(render.spawn_info(&set)), old.created.clone());
    let mut recorded = old.spawn.clone();
    if let Some(r) = &mut recorded {
        r.options = set.applying(&r.kind, &r.options);
    }
    Ok(Plan {
        old,
        recorded,
        old_templates,
        files,
        receipt,
        new_templates,
        warnings,
        metadata: Vec::new(),
    })
}
