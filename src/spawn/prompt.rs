//! `-i/--interactive`: ask on the terminal for each key of the type that
//! `--set` and `--values` did not give, re-asking until the key's own rules
//! accept the answer. The command layer refuses `-i` without a terminal, so
//! nothing here ever waits on a pipe.

use std::collections::BTreeMap;

use anyhow::Result;
use dialoguer::Input;
use dialoguer::console::{Term, style};

use crate::error::{ExitCode, fail};
use crate::interrupt;
use crate::templates::TemplateSet;
use crate::templates::values::check_value;

/// Ask for every key of `kind`, in manifest order, that is not in `given`;
/// each answer (or the current value, on an empty answer) goes into `values`.
pub fn ask(
    set: &TemplateSet,
    kind: &str,
    given: &[String],
    values: &mut BTreeMap<String, String>,
) -> Result<()> {
    // Ctrl-C at a prompt becomes a request we answer with exit 130, before
    // anything is written.
    interrupt::install();
    let term = Term::stderr();
    for spec in &set.manifest.keys {
        if !spec.applies_to(kind) || given.iter().any(|k| k == &spec.name) {
            continue;
        }
        let current = values.get(&spec.name).cloned().unwrap_or_default();
        let rules: Vec<&str> = spec.rules.iter().map(|r| r.message.as_str()).collect();
        if !rules.is_empty() {
            let _ = term.write_line(&format!("{}", style(rules.join("; ")).dim()));
        }
        let mut input = Input::<String>::new()
            .with_prompt(format!("{} ({})", spec.name, spec.description))
            .allow_empty(true)
            .validate_with(|value: &String| -> Result<(), String> {
                check_value(spec, value).map_err(|problem| format!("invalid {problem}"))
            });
        if !current.is_empty() {
            input = input.default(current);
        }
        let answer = input.interact_text_on(&term);
        if interrupt::requested() {
            return Err(interrupted());
        }
        let answer = answer.map_err(|dialoguer::Error::IO(e)| {
            if e.kind() == std::io::ErrorKind::Interrupted {
                interrupted()
            } else {
                fail(
                    ExitCode::Usage,
                    format!(
                        "cannot read the answer for {} from the terminal: {e}; pass it with --set {}=VALUE",
                        spec.name, spec.name
                    ),
                )
            }
        })?;
        values.insert(spec.name.clone(), answer);
    }
    Ok(())
}

fn interrupted() -> anyhow::Error {
    fail(ExitCode::Interrupted, "interrupted; nothing was created")
}
