//! One file per subcommand. Each resolves what was typed into the engine's
//! options, calls the engine, and prints the outcome; none holds engine logic.

pub mod attest;
pub mod callback;
pub mod completions;
pub mod doctor;
pub mod keygen;
pub mod ledger;
pub mod names;
pub mod prove;
pub mod receipt;
pub mod receive;
pub mod registry;
pub mod shared;
pub mod spawn;
pub mod templates;
pub mod update;
pub mod verify;

use anyhow::Result;
use clap::CommandFactory as _;

use crate::cli::{Cli, Command, LedgerAction, RegistryAction, TemplatesAction};
use crate::error::{ExitCode, code_of, describe, json_error};

/// Run the subcommand `cli` names (or the spawn, when it names none). When
/// it asked for `--json`, an error is also printed on stdout as JSON
/// ([`json_error`]); stderr has it as text either way.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let json = wants_json(&cli);
    let result = dispatch(cli);
    if json && let Err(err) = &result {
        // Failing already: a stdout that cannot be written adds nothing.
        let _ = crate::output::stdout_line(&json_error(code_of(err), &describe(err)));
    }
    result
}

/// Whether the command line asked for JSON output.
fn wants_json(cli: &Cli) -> bool {
    match &cli.command {
        None => cli.spawn.json,
        Some(Command::New { spawn, .. }) => spawn.json,
        Some(Command::Update(args)) => args.json,
        Some(Command::Verify { json, .. } | Command::Doctor { json }) => *json,
        Some(Command::Templates {
            action: TemplatesAction::List { json, .. },
        }) => *json,
        Some(Command::Ledger {
            action: LedgerAction::List { json, .. },
        }) => *json,
        Some(Command::Registry {
            action:
                RegistryAction::List { conn, .. }
                | RegistryAction::Show { conn, .. }
                | RegistryAction::Sets { conn },
        }) => conn.json,
        Some(_) => false,
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Some(Command::New { name, kind, spawn }) => spawn::run(&name, kind.as_deref(), &spawn),
        Some(Command::Templates { action }) => match action {
            TemplatesAction::List {
                templates,
                json,
                sources,
            } => templates::list(templates.as_deref(), json, sources),
            TemplatesAction::Export { dir, force } => templates::export(&dir, force),
            TemplatesAction::Check { dir } => templates::check(&dir),
        },
        Some(Command::Update(args)) => update::run(&args),
        Some(Command::Verify {
            dir,
            receipt,
            json,
            exclude,
            no_ignore,
            trust,
            tsa_cert,
        }) => verify::run(
            &dir,
            receipt.as_deref(),
            json,
            &exclude,
            no_ignore,
            (trust.as_deref(), tsa_cert.as_deref()),
        ),
        Some(Command::Attest {
            dir,
            key,
            tsa,
            json,
        }) => attest::run(&dir, key.as_deref(), tsa.as_deref(), json),
        Some(Command::Receipt { dir, output, force }) => {
            receipt::run(&dir, output.as_deref(), force)
        }
        Some(Command::Prove { dir, path, receipt }) => prove::run(&dir, &path, receipt.as_deref()),
        Some(Command::VerifyProof { proof, file, root }) => {
            prove::verify_proof(&proof, &file, root.as_deref())
        }
        Some(Command::Ledger { action }) => ledger::run(&action),
        Some(Command::Completions { shell }) => completions::completions(shell),
        Some(Command::Man) => completions::man(),
        Some(Command::Doctor { json }) => doctor::run(json),
        Some(Command::Keygen(args)) => keygen::run(&args),
        Some(Command::Callback { action }) => callback::run(&action),
        Some(Command::Receive(args)) => receive::run(&args),
        Some(Command::Registry { action }) => registry::run(&action),
        None => match cli.name {
            Some(name) => {
                names::refuse_command_like(&name)?;
                spawn::run(&name, cli.kind.as_deref(), &cli.spawn)
            }
            None => {
                eprint!("{}", short_usage());
                Ok(ExitCode::Usage)
            }
        },
    }
}

/// What `spawn-elite` alone prints (on stderr, exit 2), as git and cargo
/// do: the three forms, and where the rest is. The commands and types are
/// read from the command line's definition and the embedded set.
fn short_usage() -> String {
    let cmd = Cli::command();
    let commands: Vec<&str> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && !matches!(s.get_name(), "new" | "help"))
        .map(|s| s.get_name())
        .collect();
    let types = crate::templates::TemplateSet::embedded()
        .map(|set| {
            let names: Vec<&str> = set.manifest.types.iter().map(|t| t.name.as_str()).collect();
            match names.split_last() {
                Some((last, rest)) if !rest.is_empty() => {
                    format!("; TYPE is {} or {last}", rest.join(", "))
                }
                _ => String::new(),
            }
        })
        .unwrap_or_default();
    let mut text = format!(
        "Usage: spawn-elite NAME [TYPE] [OPTIONS]       spawn a repository{types}\n\
         \x20      spawn-elite new NAME [TYPE] [OPTIONS]   the same, for a NAME that is also a command\n\
         \x20      spawn-elite COMMAND [ARGS]              run a command\n\
         \n\
         Commands:"
    );
    let mut width = "Commands:".len();
    for (i, name) in commands.iter().enumerate() {
        let word = if i + 1 < commands.len() {
            format!(" {name},")
        } else {
            format!(" {name}")
        };
        if width + word.len() > 76 {
            text.push_str("\n         ");
            width = "Commands:".len();
        }
        width += word.len();
        text.push_str(&word);
    }
    text.push_str(
        "\nSee 'spawn-elite --help' for the options and examples, 'spawn-elite COMMAND --help' for one command.\n",
    );
    text
}
