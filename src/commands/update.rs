//! `spawn-elite update [DIR]`: resolve the options and run the update.

use anyhow::Result;

use crate::cli::UpdateArgs;
use crate::error::ExitCode;
use crate::update::{self, Options};

pub fn run(args: &UpdateArgs) -> Result<ExitCode> {
    let opts = Options {
        dir: update::checked_dir(&args.dir)?,
        templates: args.templates.clone().filter(|p| !p.as_os_str().is_empty()),
        set: args.set.clone(),
        dry_run: args.dry_run,
        check: args.check,
        json: args.json,
        quiet: args.quiet,
        ledger: !args.no_ledger,
    };
    if opts.check {
        return update::check(&opts);
    }
    // A bad callback key or URL fails before anything is changed.
    let callback = super::callback::spawn_options(&args.callback)?;
    if let Some(cb) = &callback {
        cb.check()?;
    }
    update::run(&opts, callback.as_ref())
}
