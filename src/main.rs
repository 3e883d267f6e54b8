mod audit;
mod callback;
mod cli;
mod completions;
mod config;
mod doctor;
mod exit_codes;
mod git;
mod httpsig;
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

use crate::cli::{Cli, Command, LedgerAction, SpawnArgs, TemplatesAction};
use crate::config::SpawnConfig;
use crate::exit_codes::{ExitCode, code_of};
use crate::git::GitOutcome;
use crate::receipt::{Receipt, SpawnInfo};

fn spawn_info(config: &SpawnConfig) -> SpawnInfo {
    SpawnInfo {
        name: config.name.clone(),
        kind: config.kind.as_str().to_owned(),
        options: config.values.clone(),
        template_digest: templates::digest(),
        elite: config.elite,
    }
}

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
        Some(Command::New { name, kind, spawn }) => spawn_repo(&name, &kind, &spawn),
        Some(Command::Templates {
            action: TemplatesAction::List,
        }) => {
            output::catalogue(&templates::catalogue());
            Ok(ExitCode::Success)
        }
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
            Some(name) => spawn_repo(&name, cli.kind.as_deref().unwrap_or("service"), &cli.spawn),
            None => {
                let _ = Cli::command().print_help();
                Ok(ExitCode::Usage)
            }
        },
    }
}

fn spawn_repo(name: &str, kind: &str, args: &SpawnArgs) -> Result<ExitCode> {
    let config = SpawnConfig::from_args(name, kind, args)?;
    // A bad callback key or URL fails before anything is written.
    let callback = args.callback.options()?;
    if let Some(cb) = &callback {
        cb.check()?;
    }
    let files = templates::plan(&config)?;
    if config.dry_run {
        spawn::refuse_existing(&config.target)?;
        output::plan(&config, &files);
        if let Some(cb) = &callback {
            let receipt = preview_receipt(&config, &files)?;
            print!(
                "{}",
                callback::dry_run(&receipt.to_json_bytes(), receipt.merkle_root(), cb)?
            );
        }
        return Ok(ExitCode::Success);
    }
    spawn::install_interrupt_handler();
    let mut made = None;
    let spawned = spawn::write_repository(&config, &files, |staging| {
        let receipt = Receipt::of_tree(staging, Some(spawn_info(&config)), config.now)?;
        receipt.write(&staging.join(scan::RECEIPT_PATH))?;
        made = Some(receipt);
        Ok(())
    })?;
    let receipt =
        made.ok_or_else(|| anyhow::anyhow!("internal error: the spawn wrote no receipt"))?;
    if spawned.git == Some(GitOutcome::NotInstalled) {
        output::warn(
            "git is not installed: the repository was created without git; install git, or pass --no-git to silence this",
        );
    }
    // The repository and its receipt exist now; a ledger that cannot be
    // written is worth a warning, not a failed spawn.
    let ledger = if config.ledger {
        ledger::append(&receipt, &spawned.path)
            .inspect_err(|e| output::warn(&format!("{e:#}; the spawn is complete but not in the ledger (pass --no-ledger to skip it)")))
            .ok()
    } else {
        None
    };
    output::summary(&config, &files, &spawned, &receipt, ledger.as_deref());
    if let Some(cb) = &callback {
        let status = callback::after_spawn(
            &receipt.to_json_bytes(),
            receipt.merkle_root(),
            &spawned.path.join(scan::RECEIPT_PATH),
            cb,
            config.quiet,
        );
        if status == callback::CallbackStatus::Pending {
            return Ok(ExitCode::CallbackPending);
        }
    }
    Ok(ExitCode::Success)
}

/// The receipt a spawn would write, for `--dry-run --callback`: the planned
/// files are written to a scratch directory and measured like the real thing.
fn preview_receipt(config: &SpawnConfig, files: &[templates::PlannedFile]) -> Result<Receipt> {
    let scratch = tempfile::tempdir()?;
    for file in files {
        spawn::write_file(scratch.path(), file)?;
    }
    Receipt::of_tree(scratch.path(), Some(spawn_info(config)), config.now)
}
