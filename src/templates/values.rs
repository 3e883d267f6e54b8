//! Template values: each key's default for a type, and the values a spawn
//! or an update takes from a receipt, a `--values` file and `--set`, each
//! checked by its key's rules. Spawn and update resolve values here alike.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use super::TemplateSet;
use super::manifest::KeySpec;
use crate::error::{ExitCode, fail};
use crate::receipt::SpawnInfo;

/// Long or multi-line values are shown escaped and cut, so that an error
/// about a value stays on one readable line.
pub fn shown(value: &str) -> String {
    let cut: String = value.chars().take(40).collect();
    if cut.len() < value.len() {
        format!("{:?}...", cut)
    } else {
        format!("{cut:?}")
    }
}

/// Every key of the set with its default for `kind`.
pub fn defaults(set: &TemplateSet, kind: &str) -> BTreeMap<String, String> {
    set.manifest
        .keys
        .iter()
        .map(|k| {
            let value = k.default_for(kind).unwrap_or_else(|_| k.default.clone());
            (k.name.clone(), value)
        })
        .collect()
}

fn valid_keys(set: &TemplateSet) -> String {
    set.manifest
        .keys
        .iter()
        .map(|k| k.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The values a replayed receipt records, checked against today's set.
pub fn replay_values(
    set: &TemplateSet,
    path: &Path,
    spawn: &SpawnInfo,
    values: &mut BTreeMap<String, String>,
) -> Result<()> {
    for (key, value) in &spawn.options {
        let Some(spec) = set.manifest.keys.iter().find(|k| &k.name == key) else {
            return Err(fail(
                ExitCode::Usage,
                format!(
                    "receipt {} records key {}, which template set {} does not declare (valid keys are {}); pass the set it was spawned from with --templates",
                    path.display(),
                    shown(key),
                    set.manifest.name,
                    valid_keys(set)
                ),
            ));
        };
        spec.check(value).map_err(|rule| {
            fail(
                ExitCode::Usage,
                format!(
                    "invalid {key}={} recorded in receipt {}: {rule}",
                    shown(value),
                    path.display()
                ),
            )
        })?;
        values.insert(key.clone(), value.clone());
    }
    Ok(())
}

/// The largest `--values` file read: a file of keys is a few hundred bytes,
/// and anything this large is not one.
pub const VALUES_MAX: u64 = 1 << 20;

/// The text of a `--values` file: a regular file of at most [`VALUES_MAX`]
/// bytes. A device (`/dev/zero`), a FIFO or a directory is refused before a
/// byte is read, so that nothing can make the read endless or unbounded.
fn read_values_file(file: &Path) -> Result<String> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let shown_file = file.display();
    let refuse = |why: String| {
        fail(
            ExitCode::Usage,
            format!(
                "cannot read --values {shown_file}: {why}; pass a TOML or JSON file of KEY = VALUE"
            ),
        )
    };
    // Non-blocking, so that opening a FIFO with no writer does not wait.
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(file)
        .map_err(|e| refuse(e.to_string()))?;
    let meta = opened.metadata().map_err(|e| refuse(e.to_string()))?;
    if !meta.is_file() {
        use std::os::unix::fs::FileTypeExt as _;
        let t = meta.file_type();
        let what = if t.is_dir() {
            "a directory"
        } else if t.is_char_device() || t.is_block_device() {
            "a device"
        } else if t.is_fifo() {
            "a FIFO"
        } else {
            "a socket"
        };
        return Err(refuse(format!("it is {what}, not a regular file")));
    }
    if meta.len() > VALUES_MAX {
        return Err(refuse(format!(
            "it is {} bytes, more than the {VALUES_MAX} a file of values may hold",
            meta.len()
        )));
    }
    let mut bytes = Vec::new();
    opened
        .take(VALUES_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| refuse(e.to_string()))?;
    if bytes.len() as u64 > VALUES_MAX {
        return Err(refuse(format!(
            "it grew past the {VALUES_MAX} bytes a file of values may hold while it was read"
        )));
    }
    String::from_utf8(bytes).map_err(|_| refuse("it is not UTF-8".into()))
}

/// `--values FILE`: a TOML table or JSON object of keys to strings (whole
/// numbers are taken as their digits).
/// Returns the keys the file gives.
pub fn file_values(
    set: &TemplateSet,
    file: &Path,
    values: &mut BTreeMap<String, String>,
) -> Result<Vec<String>> {
    let shown_file = file.display();
    let text = read_values_file(file)?;
    let is_json = file.extension().is_some_and(|e| e == "json");
    let table: serde_json::Map<String, serde_json::Value> = if is_json {
        serde_json::from_str(&text).map_err(|e| {
            fail(
                ExitCode::Usage,
                format!("--values {shown_file} is not a JSON object of keys: {e}"),
            )
        })?
    } else {
        let parsed: toml::Table = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map_or(1, |s| crate::templates::manifest::line_of(&text, s.start));
            fail(
                ExitCode::Usage,
                format!(
                    "{shown_file}:{line}: --values is not valid TOML: {}; write KEY = \"VALUE\" lines (or pass a .json file)",
                    e.message().trim_end().replace('\n', " ")
                ),
            )
        })?;
        serde_json::to_value(parsed)
            .ok()
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default()
    };
    let mut given = Vec::new();
    for (key, value) in table {
        let Some(spec) = set.manifest.keys.iter().find(|k| k.name == key) else {
            return Err(fail(
                ExitCode::Usage,
                format!(
                    "unknown key {} in --values {shown_file}: valid keys are {}",
                    shown(&key),
                    valid_keys(set)
                ),
            ));
        };
        let value = match value {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
            _ => {
                return Err(fail(
                    ExitCode::Usage,
                    format!(
                        "{key} in --values {shown_file} is not a string or a whole number; quote it"
                    ),
                ));
            }
        };
        spec.check(&value).map_err(|rule| {
            fail(
                ExitCode::Usage,
                format!(
                    "invalid {key}={} in --values {shown_file}: {rule}",
                    shown(&value)
                ),
            )
        })?;
        given.push(key.clone());
        values.insert(key, value);
    }
    Ok(given)
}

/// `value` against `spec`'s rules: on a break, `KEY=VALUE: RULE` for an
/// "invalid ..." message (`--set` and `-i` both say it).
pub fn check_value(spec: &KeySpec, value: &str) -> std::result::Result<(), String> {
    spec.check(value)
        .map_err(|rule| format!("{}={}: {rule}", spec.name, shown(value)))
}

/// `--set KEY=VALUE`, each checked by its key's rules; returns warnings.
pub fn resolve_sets(
    set: &TemplateSet,
    kind: &str,
    sets: &[String],
    values: &mut BTreeMap<String, String>,
) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for item in sets {
        let Some((key, value)) = item.split_once('=') else {
            return Err(fail(
                ExitCode::Usage,
                format!(
                    "--set {} has no '=': write --set KEY=VALUE with KEY one of {}",
                    shown(item),
                    valid_keys(set)
                ),
            ));
        };
        let Some(spec) = set.manifest.keys.iter().find(|k| k.name == key) else {
            return Err(fail(
                ExitCode::Usage,
                format!(
                    "unknown --set key {}: valid keys are {}",
                    shown(key),
                    valid_keys(set)
                ),
            ));
        };
        check_value(spec, value)
            .map_err(|problem| fail(ExitCode::Usage, format!("invalid --set {problem}")))?;
        let repeated = seen.contains(&key);
        if repeated {
            warnings.push(format!(
                "--set {key} is given more than once; the last value, {}, wins",
                shown(value)
            ));
        }
        seen.push(key);
        // Said once per key, however often it is given.
        if !spec.applies_to(kind) && !repeated {
            warnings.push(format!("--set {key} has no effect on a {kind} repository"));
        }
        values.insert(key.to_owned(), value.to_owned());
    }
    Ok(warnings)
}

/// The recorded values, checked against the current set; keys the set no
/// longer declares are dropped and keys it added take their default; then
/// `--set`.
pub fn carried(
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

/// What a repository name must be, said to people.
pub const NAME_RULE: &str = "a name must be 1-63 characters of lowercase letters, digits and '-', start with a letter and not end with '-' (e.g. my-svc)";

/// What is wrong with a repository name, if anything. The name becomes a
/// directory, a Kubernetes object name and a Docker image name, so it must
/// satisfy the strictest of them: an RFC 1123 DNS label that starts with a
/// letter. The spawn refuses such a name, and the registry does not index
/// a receipt that carries one.
pub fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
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
    }
}
