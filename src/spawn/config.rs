//! Turns what the user typed into a checked, complete description of one
//! spawn. Every input check happens here, before anything touches the disk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use anyhow::Result;

use crate::clock::Clock;
use crate::error::{ExitCode, fail};
use crate::provenance::Signer;
use crate::receipt::{Receipt, SpawnInfo};
use crate::templates::values::{self, shown};
use crate::templates::{Render, TemplateSet};

/// One spawn as the user asked for it, before any check: what the command
/// layer hands the engine.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub name: String,
    /// The positional TYPE, if any.
    pub kind: Option<String>,
    /// `--type`, if given.
    pub type_option: Option<String>,
    pub out_dir: Option<PathBuf>,
    pub no_elite: bool,
    pub no_git: bool,
    pub dry_run: bool,
    pub json: bool,
    pub quiet: bool,
    pub no_ledger: bool,
    /// `--set KEY=VALUE`, as typed.
    pub set: Vec<String>,
    /// `--templates DIR` (or `SPAWN_ELITE_TEMPLATES`): a set on disk.
    pub templates: Option<PathBuf>,
    /// `--templates-digest HEX`: the digest the set must have.
    pub templates_digest: Option<String>,
    /// `--values FILE`: keys from a TOML or JSON file.
    pub values: Option<PathBuf>,
    /// `--from-receipt FILE`: replay another spawn.
    pub from_receipt: Option<PathBuf>,
    /// `-i`: ask on the terminal for every key not given otherwise. The
    /// command layer has checked that there is a terminal.
    pub interactive: bool,
}

/// Everything one spawn needs, already validated.
#[derive(Debug, Clone)]
pub struct SpawnConfig {
    pub name: String,
    /// The type's name, one the set declares.
    pub kind: String,
    /// The template set, loaded and checked.
    pub set: Arc<TemplateSet>,
    /// Parent directory of the repository; created if missing.
    pub base: PathBuf,
    /// `base/name`.
    pub target: PathBuf,
    pub elite: bool,
    pub git: bool,
    pub dry_run: bool,
    pub json: bool,
    pub quiet: bool,
    pub ledger: bool,
    /// Template values after defaults, a replayed receipt, `--values` and
    /// `--set`, keyed by key name.
    pub values: BTreeMap<String, String>,
    /// Things the user typed that are allowed but probably not meant.
    pub warnings: Vec<String>,
    /// `--sign`: the key that signs the attestation.
    pub signer: Option<Arc<Signer>>,
    /// The moment of the spawn: `SOURCE_DATE_EPOCH` when set, so that output
    /// can be reproduced byte for byte.
    pub clock: Clock,
}

impl SpawnConfig {
    /// Check every part of `args`; the positional TYPE or `--type` may name the type.
    pub fn from_request(args: &Request, clock: Clock) -> Result<SpawnConfig> {
        let name = args.name.as_str();
        validate_name(name)?;
        let replay = match &args.from_receipt {
            Some(path) => Some(replayed(path)?),
            None => None,
        };
        let recorded = replay.as_ref().and_then(|(_, s)| s.templates.as_ref());
        if let Some(t) = recorded
            && t.source == "dir"
            && args.templates.is_none()
        {
            return Err(fail(
                ExitCode::Usage,
                format!(
                    "receipt {} was spawned from template set {} {} on disk (digest {}); pass that set with --templates DIR",
                    shown_path(args.from_receipt.as_deref()),
                    t.name,
                    t.version,
                    t.digest
                ),
            ));
        }
        let set = TemplateSet::open(args.templates.as_deref())?;
        check_pin(&set, args, recorded.map(|t| t.digest.as_str()))?;
        let kind = match (args.kind.as_deref(), args.type_option.as_deref()) {
            (Some(a), Some(b)) if a != b => {
                return Err(fail(
                    ExitCode::Usage,
                    format!("the type is given twice, as '{a}' and as --type '{b}'; give it once"),
                ));
            }
            (Some(kind), _) | (None, Some(kind)) => kind.to_owned(),
            (None, None) => match &replay {
                Some((_, spawn)) => spawn.kind.clone(),
                None => set.manifest.default_type.clone(),
            },
        };
        set.type_spec(&kind)?;
        let mut values = values::defaults(&set, &kind);
        if let Some((path, spawn)) = &replay {
            values::replay_values(&set, path, spawn, &mut values)?;
        }
        let mut given = Vec::new();
        if let Some(file) = &args.values {
            given = values::file_values(&set, file, &mut values)?;
        }
        let warnings = values::resolve_sets(&set, &kind, &args.set, &mut values)?;
        if args.interactive {
            given.extend(
                args.set
                    .iter()
                    .filter_map(|s| s.split_once('='))
                    .map(|(k, _)| k.to_owned()),
            );
            super::prompt::ask(&set, &kind, &given, &mut values)?;
        }
        let base = absolute(&base_dir(args.out_dir.as_deref())?)?;
        let target = base.join(name);
        let recorded_elite = replay.as_ref().is_none_or(|(_, s)| s.elite);
        Ok(SpawnConfig {
            name: name.to_owned(),
            kind,
            set: Arc::new(set),
            base,
            target,
            elite: !args.no_elite && recorded_elite,
            git: !args.no_git,
            dry_run: args.dry_run,
            json: args.json,
            quiet: args.quiet,
            ledger: !args.no_ledger,
            values,
            warnings,
            signer: None,
            clock,
        })
    }

    /// What the templates see for this spawn.
    pub fn render(&self) -> Render<'_> {
        Render {
            name: &self.name,
            kind: &self.kind,
            elite: self.elite,
            now: self.clock.now(),
            values: &self.values,
        }
    }
}

fn shown_path(path: Option<&Path>) -> String {
    path.map(|p| p.display().to_string()).unwrap_or_default()
}

/// The spawn section of the receipt `--from-receipt` names.
fn replayed(path: &Path) -> Result<(PathBuf, SpawnInfo)> {
    let receipt = Receipt::read(path)?;
    match receipt.spawn {
        Some(spawn) => Ok((path.to_path_buf(), spawn)),
        None => Err(fail(
            ExitCode::Usage,
            format!(
                "receipt {} records no spawn (`spawn-elite receipt` made it); pass the .spawn-elite/receipt.json of a spawned repository",
                path.display()
            ),
        )),
    }
}

/// `--templates-digest`, else the digest a replayed receipt records: the
/// set must have it, or nothing is spawned.
fn check_pin(set: &TemplateSet, args: &Request, recorded: Option<&str>) -> Result<()> {
    let (pin, why) = match (&args.templates_digest, recorded) {
        (Some(pin), _) => (pin.as_str(), "--templates-digest requires".to_owned()),
        (None, Some(d)) => (
            d,
            format!(
                "receipt {} records; pass the set it was spawned from, or --templates-digest {} to accept this one",
                shown_path(args.from_receipt.as_deref()),
                set.digest()
            ),
        ),
        (None, None) => return Ok(()),
    };
    if pin.len() != 64 || !pin.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(fail(
            ExitCode::Usage,
            format!(
                "--templates-digest {} is not 64 hex digits; `spawn-elite templates list --json` prints a set's digest",
                shown(pin)
            ),
        ));
    }
    if !pin.eq_ignore_ascii_case(set.digest()) {
        let which = if args.templates.is_none() {
            " (no --templates was given, so that is the set built into spawn-elite; pass --templates DIR or set SPAWN_ELITE_TEMPLATES for your own)"
        } else {
            ""
        };
        return Err(fail(
            ExitCode::Usage,
            format!(
                "template set {} has digest {}, not {} as {why}{which}; nothing was created",
                set.shown,
                set.digest(),
                pin.to_ascii_lowercase()
            ),
        ));
    }
    Ok(())
}

/// A repository name, checked ([`values::name_problem`]): a usage error
/// naming the problem and the rule.
pub fn validate_name(name: &str) -> Result<()> {
    match values::name_problem(name) {
        Some(problem) => Err(fail(
            ExitCode::Usage,
            format!("invalid name: {problem}; {}", values::NAME_RULE),
        )),
        None => Ok(()),
    }
}

/// Where a spawn without `--out-dir` goes: `$VAULTMESH_REPOS`, else
/// `$HOME/repos`.
pub fn default_base() -> Result<PathBuf> {
    absolute(&base_dir(None)?)
}

/// `--out-dir`, else `$VAULTMESH_REPOS`, else `$HOME/repos` (the old scripts' default).
fn base_dir(out_dir: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = out_dir {
        if dir.starts_with("~") {
            return Err(fail(
                ExitCode::Usage,
                format!(
                    "--out-dir {} starts with '~', which only a shell expands; leave it unquoted or write $HOME instead",
                    dir.display()
                ),
            ));
        }
        return Ok(dir.to_path_buf());
    }
    if let Some(dir) = std::env::var_os("VAULTMESH_REPOS").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join("repos")),
        None => Err(fail(
            ExitCode::Usage,
            "cannot choose where to spawn: HOME is not set; pass --out-dir DIR or set VAULTMESH_REPOS",
        )),
    }
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| {
        fail(
            ExitCode::Io,
            format!(
                "cannot resolve {}: {e}; pass an absolute --out-dir",
                path.display()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dns_1123_labels() {
        for good in ["a", "my-svc", "svc2", "a-b-c", &"a".repeat(63)] {
            assert!(validate_name(good).is_ok(), "{good} should be accepted");
        }
        for bad in [
            "",
            "../x",
            "a b",
            "My_Svc",
            "-rf",
            "1abc",
            "abc-",
            "ünï",
            "a.b",
            &"a".repeat(64),
        ] {
            assert!(validate_name(bad).is_err(), "{bad} should be refused");
        }
    }
}
