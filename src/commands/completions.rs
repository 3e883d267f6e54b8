//! `spawn-elite completions SHELL` and `spawn-elite man`: both generated from
//! the clap definition in `cli.rs`, so they never drift from the real
//! options; the man page's exit status comes from [`crate::error::EXIT_CODES`].

use std::io::Write;

use anyhow::{Context, Result};
use clap::builder::{PossibleValue, PossibleValuesParser};
use clap::{Command, CommandFactory, ValueHint};
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};

use crate::cli::{Cli, ENVIRONMENT, EXAMPLES};
use crate::error::{EXIT_CODES, ExitCode};
use crate::templates::TemplateSet;

const BIN: &str = "spawn-elite";

pub fn completions(shell: Shell) -> Result<ExitCode> {
    print(&completion_script(shell))?;
    Ok(ExitCode::Success)
}

pub fn man() -> Result<ExitCode> {
    print(&man_page()?)?;
    Ok(ExitCode::Success)
}

/// The completion script for `shell`.
pub fn completion_script(shell: Shell) -> Vec<u8> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut completing_command(shell), BIN, &mut buf);
    if shell == Shell::Bash {
        buf = bash_subcommand_states(&buf);
    }
    buf
}

/// clap_complete's bash script finds a subcommand's options under a state
/// it spells `spawn__elite__subcmd__NAME`, but labels their `case` arm
/// `spawn__subcmd__elite__subcmd__NAME` whenever the binary's name has a
/// hyphen (clap-rs/clap#6421), so nothing after a subcommand completed:
/// not `new NAME --type`, not `ledger` nor `verify --`. The arms are
/// relabelled to the spelling the script looks for.
fn bash_subcommand_states(script: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(script);
    text.replace("spawn__subcmd__elite__subcmd__", "spawn__elite__subcmd__")
        .into_bytes()
}

/// The command line as completion scripts see it: `--type` offers the
/// embedded set's types, `--set` (of a spawn or `update`) its keys as
/// `KEY=`, each with its
/// description where the shell shows one (zsh, fish). The types and keys are
/// data of the template set, not of the parser, which accepts those of any
/// `--templates DIR`; so they are added here, for completion only.
///
/// The positional `TYPE` offers them in zsh only: zsh's script completes
/// each position apart, while bash's offers every positional's values at
/// every position, which would suggest a type where NAME goes.
fn completing_command(shell: Shell) -> Command {
    let cmd = Cli::command();
    let Ok(set) = TemplateSet::embedded() else {
        return cmd;
    };
    let types: Vec<PossibleValue> = set
        .manifest
        .types
        .iter()
        .map(|t| PossibleValue::new(t.name.clone()).help(t.description.clone()))
        .collect();
    let keys: Vec<PossibleValue> = set
        .manifest
        .keys
        .iter()
        .map(|k| PossibleValue::new(format!("{}=", k.name)).help(k.description.clone()))
        .collect();
    let offer = |cmd: Command| {
        let cmd = if shell == Shell::Zsh {
            offer_values(cmd, "kind", &types)
        } else {
            cmd
        };
        let cmd = offer_values(cmd, "type_option", &types);
        offer_values(cmd, "set", &keys)
    };
    let cmd = offer(cmd);
    let cmd = offer_in(cmd, "new", offer);
    // `update --set` changes a recorded value: the same keys.
    offer_in(cmd, "update", |sub| offer_values(sub, "set", &keys))
}

/// `cmd` with its subcommand `name`, if it has one, changed by `f`.
fn offer_in(cmd: Command, name: &str, f: impl FnOnce(Command) -> Command) -> Command {
    if cmd.find_subcommand(name).is_none() {
        return cmd;
    }
    cmd.mut_subcommand(name, f)
}

/// `cmd` with the argument `id`, if it has one, completing to `values`.
fn offer_values(cmd: Command, id: &str, values: &[PossibleValue]) -> Command {
    if !cmd.get_arguments().any(|a| a.get_id() == id) {
        return cmd;
    }
    let values = values.to_vec();
    // `KEY=` is half a word: bash is told not to add a space after it.
    let partial = values.iter().any(|v| v.get_name().ends_with('='));
    cmd.mut_arg(id, |arg| {
        let arg = arg.value_parser(PossibleValuesParser::new(values));
        if partial {
            arg.value_hint(ValueHint::Other)
        } else {
            arg
        }
    })
}

/// The man page, in roff: clap_mangen's NAME, SYNOPSIS, DESCRIPTION and
/// OPTIONS, then our own SUBCOMMANDS (this page is the only one shipped, so
/// it names no `spawn-elite-SUB(1)` pages), EXAMPLES, EXIT STATUS and
/// ENVIRONMENT, then VERSION.
pub fn man_page() -> Result<Vec<u8>> {
    let cmd = Cli::command();
    let man = Man::new(cmd.clone());
    let mut page = Vec::new();
    let render = |page: &mut Vec<u8>, f: &dyn Fn(&mut Vec<u8>) -> std::io::Result<()>| {
        let mut buf = Vec::new();
        f(&mut buf)?;
        // Every clap_mangen section starts with roff's preamble; the page
        // needs it once.
        let preamble = Roff::new().render();
        let body = buf.strip_prefix(preamble.as_bytes()).unwrap_or(&buf);
        page.extend_from_slice(body);
        std::io::Result::Ok(())
    };
    let rendered = man
        .render_title(&mut page)
        .and_then(|()| render(&mut page, &|w| man.render_name_section(w)))
        .and_then(|()| render(&mut page, &|w| synopsis(&cmd).to_writer(w)))
        .and_then(|()| render(&mut page, &|w| man.render_description_section(w)))
        .and_then(|()| render(&mut page, &|w| man.render_options_section(w)))
        .and_then(|()| render(&mut page, &|w| own_sections(&cmd).to_writer(w)))
        .and_then(|()| render(&mut page, &|w| man.render_version_section(w)));
    rendered.context("cannot render the man page")?;
    Ok(page)
}

/// SYNOPSIS: every option with its value's placeholder (`--type TYPE`,
/// `--set KEY=VALUE...`), which clap_mangen's own synopsis leaves out, then
/// the positionals and the subcommands.
fn synopsis(cmd: &clap::Command) -> Roff {
    // Built, so that clap's own --help and --version are among the options.
    let mut cmd = cmd.clone();
    cmd.build();
    let mut parts = vec![bold(BIN), roman(" ")];
    let visible: Vec<_> = cmd.get_arguments().filter(|a| !a.is_hide_set()).collect();
    for arg in visible.iter().filter(|a| !a.is_positional()) {
        parts.push(roman("["));
        if let Some(short) = arg.get_short() {
            parts.push(bold(format!("-{short}")));
            parts.push(roman("|"));
        }
        if let Some(long) = arg.get_long() {
            parts.push(bold(format!("--{long}")));
        }
        if arg.get_action().takes_values() {
            let names = arg.get_value_names().unwrap_or_default();
            let name = names
                .first()
                .map_or("VALUE".to_owned(), ToString::to_string);
            parts.push(roman(" "));
            parts.push(italic(name));
        }
        if matches!(arg.get_action(), clap::ArgAction::Append) {
            parts.push(roman("..."));
        }
        parts.push(roman("] "));
    }
    for arg in visible.iter().filter(|a| a.is_positional()) {
        let names = arg.get_value_names().unwrap_or_default();
        let name = names
            .first()
            .map_or(arg.get_id().to_string(), ToString::to_string);
        parts.push(roman("["));
        parts.push(italic(name));
        parts.push(roman("] "));
    }
    parts.push(roman("| "));
    parts.push(italic("SUBCOMMAND"));
    parts.push(roman(" ..."));
    let mut roff = Roff::new();
    roff.control("SH", ["SYNOPSIS"]);
    roff.text(parts);
    roff
}

fn own_sections(cmd: &clap::Command) -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", ["SUBCOMMANDS"]);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        roff.control("TP", []);
        roff.text([bold(format!("{BIN} {}", sub.get_name()))]);
        if let Some(about) = sub.get_about() {
            roff.text([roman(about.to_string())]);
        }
    }
    roff.control("PP", []);
    roff.text([roman(format!(
        "Each subcommand lists its own options with {BIN} SUBCOMMAND --help."
    ))]);

    roff.control("SH", ["EXAMPLES"]);
    for (command, what) in EXAMPLES {
        roff.control("TP", []);
        roff.text([bold(*command)]);
        roff.text([roman(*what)]);
    }

    roff.control("SH", ["EXIT STATUS"]);
    roff.text([roman(
        "Exit status: 0 on success; otherwise one of these codes, which scripts can tell apart.",
    )]);
    for info in EXIT_CODES {
        roff.control("TP", []);
        roff.text([
            bold(info.code.code().to_string()),
            roman(format!(" ({})", info.name)),
        ]);
        roff.text([roman(info.plain_meaning())]);
    }
    roff.control("PP", []);
    roff.text([roman(crate::error::JSON_ERRORS)]);

    roff.control("SH", ["ENVIRONMENT"]);
    for (var, what) in ENVIRONMENT {
        roff.control("TP", []);
        roff.text([bold(*var)]);
        roff.text([roman(*what)]);
    }
    roff
}

/// Write generated text to stdout. A reader that went away (`| head`) is not
/// an error worth a message.
fn print(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(err).context("cannot write to standard output")
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_naming_the_binary() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::PowerShell] {
            let script = String::from_utf8(completion_script(shell)).unwrap();
            assert!(script.contains(BIN), "{shell}");
            assert!(script.contains("doctor"), "{shell} completes subcommands");
        }
    }

    #[test]
    fn type_and_set_complete_to_the_embedded_types_and_keys() {
        let set = TemplateSet::embedded().unwrap();
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = String::from_utf8(completion_script(shell)).unwrap();
            for t in &set.manifest.types {
                assert!(script.contains(&t.name), "{shell}: {}", t.name);
            }
            for key in [
                "description=",
                "org=",
                "python_version=",
                "port=",
                "version=",
            ] {
                assert!(script.contains(key), "{shell}: {key}");
            }
        }
        let bash = String::from_utf8(completion_script(Shell::Bash)).unwrap();
        assert!(
            bash.contains(r#"compgen -W "service infra tool" -- "${cur}""#),
            "{bash}"
        );
        assert!(
            bash.contains(
                r#"compgen -W "description= org= python_version= port= version=" -- "${cur}""#
            ),
            "{bash}"
        );
        assert!(
            !bash.contains("subcmd__elite"),
            "every case arm is reachable"
        );
    }

    #[test]
    fn completion_values_do_not_change_what_the_parser_accepts() {
        use clap::Parser as _;
        let cli = Cli::try_parse_from(["spawn-elite", "w", "worker", "--set", "queue=jobs"]);
        assert!(
            cli.is_ok(),
            "types and keys of --templates DIR stay accepted"
        );
    }

    #[test]
    fn man_page_is_roff_for_spawn_elite() {
        let page = String::from_utf8(man_page().unwrap()).unwrap();
        assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
        assert!(page.contains("spawn\\-elite"));
    }

    #[test]
    fn man_page_has_proper_sections_and_no_dangling_references() {
        let page = String::from_utf8(man_page().unwrap()).unwrap();
        for section in [
            ".SH EXAMPLES",
            ".SH \"EXIT STATUS\"",
            ".SH ENVIRONMENT",
            ".SH SUBCOMMANDS",
        ] {
            assert!(page.contains(section), "{section} missing:\n{page}");
        }
        assert!(!page.contains("EXTRA"), "{page}");
        assert!(!page.contains("(1)"), "no other page is shipped:\n{page}");
        assert_eq!(page.matches(".ds Aq").count(), 2, "one preamble (.ie/.el)");
        for info in EXIT_CODES {
            assert!(
                page.contains(&format!(".B {}\n", info.code.code()))
                    || page.contains(&format!("\\fB{}\\fR", info.code.code())),
                "{page}"
            );
        }
    }
}
