//! Turns what the user typed into a checked, complete description of one
//! spawn. Every input check happens here, before anything touches the disk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::{ExitCode, fail};
use crate::templates::Kind;

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
}

/// One `--set` key: its default and the check its value must pass.
struct SetKey {
    key: &'static str,
    default: &'static str,
    check: fn(&str) -> Result<(), &'static str>,
    /// The types whose files use the value.
    kinds: &'static [Kind],
}

const SET_KEYS: &[SetKey] = &[
    SetKey {
        key: "description",
        default: "",
        check: check_description,
        kinds: &Kind::ALL,
    },
    SetKey {
        key: "org",
        default: "vaultmesh",
        check: check_org,
        kinds: &Kind::ALL,
    },
    SetKey {
        key: "python_version",
        default: "3.12",
        check: check_python_version,
        kinds: &[Kind::Service],
    },
    SetKey {
        key: "port",
        default: "8000",
        check: check_port,
        kinds: &[Kind::Service],
    },
    SetKey {
        key: "version",
        default: "0.1.0",
        check: check_version,
        kinds: &Kind::ALL,
    },
];

/// Everything one spawn needs, already validated.
#[derive(Debug, Clone)]
pub struct SpawnConfig {
    pub name: String,
    pub kind: Kind,
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
    /// Template values after defaults and `--set`, keyed by `--set` name.
    pub values: BTreeMap<String, String>,
    /// Things the user typed that are allowed but probably not meant.
    pub warnings: Vec<String>,
    /// The moment of the spawn: `SOURCE_DATE_EPOCH` when set, so that output
    /// can be reproduced byte for byte.
    pub now: jiff::Timestamp,
}

impl SpawnConfig {
    /// Check every part of `args`; the positional TYPE or `--type` may name the type.
    pub fn from_request(args: &Request) -> Result<SpawnConfig> {
        let name = args.name.as_str();
        validate_name(name)?;
        let kind = match (args.kind.as_deref(), args.type_option.as_deref()) {
            (Some(a), Some(b)) if a != b => {
                return Err(fail(
                    ExitCode::Usage,
                    format!("the type is given twice, as '{a}' and as --type '{b}'; give it once"),
                ));
            }
            (Some(kind), _) | (None, Some(kind)) => Kind::parse(kind)?,
            (None, None) => Kind::Service,
        };
        let (values, warnings) = resolve_values(kind, &args.set)?;
        let base = absolute(&base_dir(args.out_dir.as_deref())?)?;
        let target = base.join(name);
        Ok(SpawnConfig {
            name: name.to_owned(),
            kind,
            base,
            target,
            elite: !args.no_elite,
            git: !args.no_git,
            dry_run: args.dry_run,
            json: args.json,
            quiet: args.quiet,
            ledger: !args.no_ledger,
            values,
            warnings,
            now: now()?,
        })
    }
}

/// The name becomes a directory, a Kubernetes object name and a Docker image
/// name, so it must satisfy the strictest of them: an RFC 1123 DNS label that
/// starts with a letter.
pub fn validate_name(name: &str) -> Result<()> {
    const RULE: &str = "a name must be 1-63 characters of lowercase letters, digits and '-', start with a letter and not end with '-' (e.g. my-svc)";
    let problem = if name.is_empty() {
        Some("the name is empty".to_owned())
    } else if name.len() > 63 {
        Some(format!("{} is {} characters long", shown(name), name.len()))
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some(format!(
            "{} does not start with a lowercase letter",
            shown(name)
        ))
    } else if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        Some(format!("{} contains {bad:?}", shown(name)))
    } else if name.ends_with('-') {
        Some(format!("{} ends with '-'", shown(name)))
    } else {
        None
    };
    match problem {
        Some(problem) => Err(fail(
            ExitCode::Usage,
            format!("invalid name: {problem}; {RULE}"),
        )),
        None => Ok(()),
    }
}

/// Long or multi-line values are shown escaped and cut, so that an error
/// about a value stays on one readable line.
fn shown(value: &str) -> String {
    let cut: String = value.chars().take(40).collect();
    if cut.len() < value.len() {
        format!("{:?}...", cut)
    } else {
        format!("{cut:?}")
    }
}

fn resolve_values(kind: Kind, sets: &[String]) -> Result<(BTreeMap<String, String>, Vec<String>)> {
    let mut warnings = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    let mut values: BTreeMap<String, String> = SET_KEYS
        .iter()
        .map(|k| (k.key.to_owned(), k.default.to_owned()))
        .collect();
    let valid_keys = || {
        SET_KEYS
            .iter()
            .map(|k| k.key)
            .collect::<Vec<_>>()
            .join(", ")
    };
    for set in sets {
        let Some((key, value)) = set.split_once('=') else {
            return Err(fail(
                ExitCode::Usage,
                format!(
                    "--set {} has no '=': write --set KEY=VALUE with KEY one of {}",
                    shown(set),
                    valid_keys()
                ),
            ));
        };
        let Some(spec) = SET_KEYS.iter().find(|k| k.key == key) else {
            return Err(fail(
                ExitCode::Usage,
                format!(
                    "unknown --set key {}: valid keys are {}",
                    shown(key),
                    valid_keys()
                ),
            ));
        };
        (spec.check)(value).map_err(|rule| {
            fail(
                ExitCode::Usage,
                format!("invalid --set {key}={}: {rule}", shown(value)),
            )
        })?;
        if seen.contains(&key) {
            warnings.push(format!(
                "--set {key} is given more than once; the last value, {}, wins",
                shown(value)
            ));
        }
        seen.push(spec.key);
        if !spec.kinds.contains(&kind) {
            warnings.push(format!(
                "--set {key} has no effect on a {} repository",
                kind.as_str()
            ));
        }
        values.insert(key.to_owned(), value.to_owned());
    }
    if values["description"].is_empty() {
        values.insert(
            "description".to_owned(),
            format!("A VaultMesh {}.", kind.as_str()),
        );
    }
    Ok((values, warnings))
}

fn check_description(value: &str) -> Result<(), &'static str> {
    if value.is_empty() || value.chars().count() > 200 {
        return Err("the description must be 1-200 characters");
    }
    if value.chars().any(char::is_control) {
        return Err("the description must be one line without control characters");
    }
    Ok(())
}

fn check_org(value: &str) -> Result<(), &'static str> {
    let ok = (1..=39).contains(&value.len())
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(
            "an org must be 1-39 letters, digits or '-', not starting or ending with '-' (a GitHub organisation name)",
        )
    }
}

/// Only ASCII digits: Rust's integer parsing also takes a leading '+', and
/// `char::is_numeric` takes digits of other scripts.
fn all_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

fn check_python_version(value: &str) -> Result<(), &'static str> {
    const RULE: &str = "use a Python version of the form 3.N with N from 10 to 14 (e.g. 3.12)";
    let minor = value.strip_prefix("3.").ok_or(RULE)?;
    if minor.len() != 2 || !all_digits(minor) {
        return Err(RULE);
    }
    match minor.parse::<u8>() {
        Ok(10..=14) => Ok(()),
        _ => Err(RULE),
    }
}

fn check_port(value: &str) -> Result<(), &'static str> {
    const RULE: &str = "use a port from 1024 to 65535 (the container runs as a non-root user, which cannot bind lower ports)";
    if !all_digits(value) || value.starts_with('0') {
        return Err(RULE);
    }
    match value.parse::<u16>() {
        Ok(port) if port >= 1024 => Ok(()),
        _ => Err(RULE),
    }
}

fn check_version(value: &str) -> Result<(), &'static str> {
    const RULE: &str = "use a version of the form MAJOR.MINOR.PATCH with plain numbers (e.g. 0.1.0); it becomes the image tag";
    let parts: Vec<&str> = value.split('.').collect();
    let numeric = |p: &&str| {
        !p.is_empty() && p.len() <= 9 && all_digits(p) && (p.len() == 1 || !p.starts_with('0'))
    };
    if parts.len() == 3 && parts.iter().all(numeric) {
        Ok(())
    } else {
        Err(RULE)
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

/// `SOURCE_DATE_EPOCH` is the reproducible-builds convention; honouring it
/// lets tests and release pipelines get identical bytes from identical input.
pub fn now() -> Result<jiff::Timestamp> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) => text
            .trim()
            .parse::<i64>()
            .ok()
            .and_then(|secs| jiff::Timestamp::from_second(secs).ok())
            .ok_or_else(|| {
                fail(
                    ExitCode::Usage,
                    format!("SOURCE_DATE_EPOCH='{text}' is not a number of seconds since 1970; fix or unset it"),
                )
            }),
        Err(_) => Ok(jiff::Timestamp::now()),
    }
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

    #[test]
    fn set_values_are_checked() {
        assert!(check_port("8080").is_ok());
        for bad in [
            "80",
            "0",
            "65536",
            "08080",
            "http",
            "+8000",
            "-8000",
            " 8000",
            "8000 ",
            "８０００",
            "",
        ] {
            assert!(check_port(bad).is_err(), "{bad}");
        }
        assert!(check_python_version("3.12").is_ok());
        assert!(check_python_version("3.10").is_ok());
        for bad in [
            "3.9", "3", "3.012", "2.7", "3.12.1", "3.+12", "3.+1", "+3.12", "3. 12", "3.１２", "3.",
        ] {
            assert!(check_python_version(bad).is_err(), "{bad}");
        }
        assert!(check_version("1.20.3").is_ok());
        for bad in [
            "1.2",
            "v1.2.3",
            "1.2.3-rc1",
            "01.2.3",
            "+1.2.3",
            "1.+2.3",
            "1.2.３",
        ] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
        assert!(check_org("Acme-Corp").is_ok());
        assert!(check_org("acme/corp").is_err());
        assert!(check_description("line one\nline two").is_err());
    }
}
