mod audit;
mod cli;
mod exit_codes;
mod ledger;
mod merkle;
mod paths;
mod proof;
mod receipt;
mod scan;

use anyhow::Result;
use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command, LedgerAction};
use crate::exit_codes::{ExitCode, code_of};

fn main() {
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            code_of(&err)
        }
    };
    std::process::exit(code.code());
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Some(Command::Verify { dir, receipt, json }) => {
            audit::verify(&dir, receipt.as_deref(), json)
        }
        Some(Command::Receipt { dir, output }) => audit::receipt(&dir, output.as_deref()),
        Some(Command::Prove { dir, path, receipt }) => {
            audit::prove(&dir, &path, receipt.as_deref())
        }
        Some(Command::VerifyProof { proof, file, root }) => {
            audit::verify_proof(&proof, &file, root.as_deref())
        }
        Some(Command::Ledger { action }) => match action {
            LedgerAction::Verify => audit::ledger_verify(),
            LedgerAction::List => audit::ledger_list(),
        },
        None => {
            let _ = Cli::command().print_help();
            Ok(ExitCode::Usage)
        }
    }
}
