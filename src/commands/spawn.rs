//! `spawn-elite NAME [TYPE]` and `spawn-elite new NAME [TYPE]`: check the
//! options, resolve the callback, and run the spawn.

use std::io::IsTerminal;

use anyhow::Result;

use crate::cli::SpawnArgs;
use crate::error::{ExitCode, fail};
use crate::spawn::{self, config::Request, config::SpawnConfig, report};

pub fn run(name: &str, kind: Option<&str>, args: &SpawnArgs) -> Result<ExitCode> {
    if args.interactive && !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(fail(
            ExitCode::Usage,
            "-i needs a terminal; pass values with --set KEY=VALUE or --values FILE",
        ));
    }
    let request = Request {
        name: name.to_owned(),
        kind: kind.map(str::to_owned),
        type_option: args.type_option.clone(),
        out_dir: args.out_dir.clone(),
        no_elite: args.no_elite,
        no_git: args.no_git,
        dry_run: args.dry_run,
        json: args.json,
        quiet: args.quiet,
        no_ledger: args.no_ledger,
        set: args.set.clone(),
        templates: args.templates.clone().filter(|p| !p.as_os_str().is_empty()),
        templates_digest: args.templates_digest.clone(),
        values: args.values.clone(),
        from_receipt: args.from_receipt.clone(),
        interactive: args.interactive,
    };
    let config = SpawnConfig::from_request(&request)?;
    for warning in &config.warnings {
        report::warn(warning);
    }
    // A bad callback key or URL fails before anything is written.
    let callback = super::callback::spawn_options(&args.callback)?;
    if let Some(cb) = &callback {
        cb.check()?;
    }
    spawn::run(&config, callback.as_ref())
}
