mod audit;
mod callback;
mod cli;
mod completions;
mod config;
mod doctor;
mod exit_codes;
mod git;
mod httpsig;
mod interrupt;
mod keys;
mod ledger;
mod merkle;
mod output;
mod paths;
mod proof;
mod receipt;
mod receive;
mod scan;
mod spawn;
mod templates;

use anyhow::Result;
use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command, LedgerAction, TemplatesAction};
use crate::exit_codes::{ExitCode, code_of};

fn main() {
    restore_sigpipe();
    let cli = Cli::try_parse().unwrap_or_else(|err| exit_with_hint(err));
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
        Some(Command::New { name, kind, spawn }) => spawn::run(&name, kind.as_deref(), &spawn),
        Some(Command::Templates {
            action: TemplatesAction::List,
        }) => {
            output::catalogue(&templates::catalogue());
            Ok(ExitCode::Success)
        }
        Some(Command::Verify {
            dir,
            receipt,
            json,
            exclude,
        }) => audit::verify(&dir, receipt.as_deref(), json, &exclude),
        Some(Command::Receipt { dir, output, force }) => {
            audit::receipt(&dir, output.as_deref(), force)
        }
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
        Some(Command::Completions { shell }) => {
            completions::print(&completions::completion_script(shell))?;
            Ok(ExitCode::Success)
        }
        Some(Command::Man) => {
            completions::print(&completions::man_page()?)?;
            Ok(ExitCode::Success)
        }
        Some(Command::Doctor { json }) => {
            doctor::report(&doctor::check_all(), json);
            Ok(ExitCode::Success)
        }
        Some(Command::Keygen(args)) => {
            keys::run_keygen(&args)?;
            Ok(ExitCode::Success)
        }
        Some(Command::Callback { action }) => Ok(match callback::run(&action)? {
            callback::CallbackStatus::Done => ExitCode::Success,
            callback::CallbackStatus::Pending => ExitCode::CallbackPending,
        }),
        Some(Command::Receive(args)) => {
            receive::run(&args)?;
            Ok(ExitCode::Success)
        }
        None => match cli.name {
            Some(name) => spawn::run(&name, cli.kind.as_deref(), &cli.spawn),
            None => {
                let _ = Cli::command().print_help();
                Ok(ExitCode::Usage)
            }
        },
    }
}

/// Rust ignores SIGPIPE, so `spawn-elite man | head` would panic on a closed
/// pipe; like other Unix tools we just stop. Sockets are unaffected: the
/// standard library sends with MSG_NOSIGNAL / SO_NOSIGPIPE.
fn restore_sigpipe() {
    // SAFETY: called first thing in main, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Someone who wants a repository named like a subcommand (`spawn-elite
/// verify -o x`) gets that subcommand's parse error; point them at `new`.
fn exit_with_hint(err: clap::Error) -> ! {
    use clap::error::ErrorKind;
    let _ = err.print();
    let first = std::env::args().nth(1).unwrap_or_default();
    let is_subcommand = Cli::command()
        .get_subcommands()
        .any(|sub| sub.get_name() == first && first != "new" && first != "help");
    let usage_error = !matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    );
    if usage_error && is_subcommand {
        eprintln!(
            "hint: to spawn a repository named '{first}', run `spawn-elite new {first} [TYPE] [OPTIONS]`"
        );
    }
    std::process::exit(err.exit_code());
}
