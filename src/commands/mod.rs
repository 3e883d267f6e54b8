//! One file per subcommand. Each resolves what was typed into the engine's
//! options, calls the engine, and prints the outcome; none holds engine logic.

pub mod callback;
pub mod completions;
pub mod doctor;
pub mod keygen;
pub mod ledger;
pub mod prove;
pub mod receipt;
pub mod receive;
pub mod shared;
pub mod spawn;
pub mod templates;
pub mod update;
pub mod verify;

use anyhow::Result;
use clap::CommandFactory as _;

use crate::cli::{Cli, Command, TemplatesAction};
use crate::error::ExitCode;

/// Run the subcommand `cli` names (or the spawn, when it names none).
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Some(Command::New { name, kind, spawn }) => spawn::run(&name, kind.as_deref(), &spawn),
        Some(Command::Templates { action }) => match action {
            TemplatesAction::List { templates, json } => {
                templates::list(templates.as_deref(), json)
            }
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
        }) => verify::run(&dir, receipt.as_deref(), json, &exclude, no_ignore),
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
        None => match cli.name {
            Some(name) => {
                crate::cli::refuse_command_like(&name)?;
                spawn::run(&name, cli.kind.as_deref(), &cli.spawn)
            }
            None => {
                let _ = Cli::command().print_help();
                Ok(ExitCode::Usage)
            }
        },
    }
}
