//! `spawn-elite callback send|flush|list|drop`, and resolving the callback
//! flags (flag, else environment variable, else default) for `spawn` too.

use anyhow::Result;

use crate::callback::{
    self, CallbackOptions, Delivery, DeliveryOptions, RetryOptions, keys, outbox,
};
use crate::cli::{
    CallbackArgs, CallbackCommand, DeliveryArgs, RetryArgs, SendArgs, parse_attempts,
    parse_duration,
};
use crate::error::{ExitCode, fail, fail_with};
use crate::interrupt;

pub fn run(cmd: &CallbackCommand) -> Result<ExitCode> {
    match cmd {
        CallbackCommand::Send(a) => send(a),
        CallbackCommand::Flush(a) => flush(&a.retry),
        CallbackCommand::List => {
            crate::output::stdout_write(outbox::list()?.to_string().as_bytes())?;
            Ok(ExitCode::Success)
        }
        CallbackCommand::Drop { file } => {
            crate::output::stdout_line(&outbox::drop_entry(file)?.to_string())?;
            Ok(ExitCode::Success)
        }
    }
}

fn send(a: &SendArgs) -> Result<ExitCode> {
    let receipt = std::fs::read(&a.receipt).map_err(|e| {
        let message = format!(
            "cannot read receipt {}: {e}; pass the right file with --receipt",
            a.receipt.display()
        );
        fail_with(ExitCode::Io, message, e)
    })?;
    let root = callback::checked_root(&receipt, &a.receipt.display().to_string())?;
    let opts = CallbackOptions::new(
        a.url.clone(),
        a.key.clone(),
        a.key_id.clone(),
        delivery_options(&a.delivery)?,
    );
    if a.dry_run {
        crate::output::stdout_write(
            callback::dry_run(&receipt, &root, &opts)?
                .to_string()
                .as_bytes(),
        )?;
        return Ok(ExitCode::Success);
    }
    let receipt_path = std::path::absolute(&a.receipt).ok();
    // Ctrl-C, SIGTERM and SIGHUP stop the delivery, not the process: the
    // callback stays queued and the command says so.
    interrupt::install();
    let outcome = callback::deliver(&receipt, &root, receipt_path.as_deref(), &opts)?;
    match &outcome {
        Delivery::Delivered(d) => {
            crate::output::stdout_line(&outcome.message(&opts.url))?;
            if let Some(w) = &d.warning {
                eprintln!("warning: {w}");
            }
        }
        Delivery::Queued { .. } | Delivery::Interrupted { .. } => {
            eprintln!("{}", outcome.message(&opts.url))
        }
    }
    Ok(outcome.exit_code())
}

fn flush(retry: &RetryArgs) -> Result<ExitCode> {
    let retry = retry_options(retry)?;
    interrupt::install();
    let report = outbox::flush(&retry)?;
    for f in &report.delivered {
        crate::output::stdout_line(&format!("delivered {}", f.display()))?;
    }
    for (f, token, time) in &report.stamped {
        crate::output::stdout_line(&format!(
            "stamped {}: wrote {} (TSA time {time}); commit it",
            f.display(),
            token.display()
        ))?;
    }
    for (f, why) in &report.abandoned {
        crate::output::stdout_line(&format!("removed {}: {why}", f.display()))?;
    }
    for f in &report.busy {
        crate::output::stdout_line(&format!(
            "skipped {}: another process is sending it right now",
            f.display()
        ))?;
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    let mut permanent = 0;
    for (file, failed) in &report.pending {
        if failed.permanent {
            permanent += 1;
            eprintln!(
                "rejected {}: {}; retrying will not help until that is fixed; to give up on it: spawn-elite callback drop {}",
                file.display(),
                failed.reason,
                file.display()
            );
        } else {
            eprintln!("still queued {}: {}", file.display(), failed.reason);
        }
    }
    let stamped = if report.stamped.is_empty() {
        String::new()
    } else {
        format!(", {} timestamp(s) written", report.stamped.len())
    };
    let mut summary = format!(
        "outbox: {} delivered{stamped}, {} still queued",
        report.delivered.len(),
        report.pending.len()
    );
    if permanent > 0 {
        summary.push_str(&format!(
            " ({permanent} rejected; `spawn-elite callback list` shows them)"
        ));
    }
    if !report.busy.is_empty() {
        summary.push_str(&format!(
            ", {} being sent by another process",
            report.busy.len()
        ));
    }
    crate::output::stdout_line(&summary)?;
    if report.interrupted {
        eprintln!(
            "interrupted: what was not delivered is still queued in the outbox; resend with `spawn-elite callback flush`"
        );
        Ok(ExitCode::Interrupted)
    } else if report.pending.len() > report.pending_stamps {
        Ok(ExitCode::CallbackPending)
    } else if report.pending.is_empty() {
        Ok(ExitCode::Success)
    } else {
        // Only timestamp requests are left: the same code as the spawn
        // whose TSA could not be reached.
        Ok(ExitCode::TimestampPending)
    }
}

/// `--sign` or `SPAWN_ELITE_SIGN=1`: the signer of a spawn's or an
/// update's attestation, its key loaded (so a bad key fails before
/// anything is written); `--key` or the default key.
///
/// `--tsa` or `SPAWN_ELITE_TSA` makes the signer time-stamp too.
pub(crate) fn signer(
    args: &CallbackArgs,
) -> Result<Option<std::sync::Arc<crate::provenance::Signer>>> {
    let from_env = match std::env::var("SPAWN_ELITE_SIGN") {
        Ok(v) => match v.trim() {
            "" | "0" | "false" | "no" => false,
            "1" | "true" | "yes" => true,
            other => {
                return Err(fail(
                    ExitCode::Usage,
                    format!(
                        "SPAWN_ELITE_SIGN={other:?} is not 1 or 0; set SPAWN_ELITE_SIGN=1 to sign by default, or unset it"
                    ),
                ));
            }
        },
        Err(_) => false,
    };
    let tsa = tsa_url(args.tsa.as_deref())?;
    if !(args.sign || from_env) {
        if args.tsa.is_some() {
            return Err(fail(
                ExitCode::Usage,
                "--tsa time-stamps the attestation, so it needs --sign (or SPAWN_ELITE_SIGN=1)",
            ));
        }
        if args.key.is_some() && args.callback.is_none() {
            return Err(fail(
                ExitCode::Usage,
                "--key names the key of --sign and --callback; pass one of them too",
            ));
        }
        return Ok(None);
    }
    let path = match &args.key {
        Some(k) => k.clone(),
        None => keys::default_key_path()?,
    };
    if !path.exists() && args.key.is_none() {
        return Err(fail(
            ExitCode::Key,
            format!(
                "--sign needs a key, and there is none at {}; create one with `spawn-elite keygen`, or pass --key PATH",
                path.display()
            ),
        ));
    }
    Ok(Some(std::sync::Arc::new(
        crate::provenance::Signer::load(&path)?.with_tsa(tsa),
    )))
}

/// `--tsa URL`, else `SPAWN_ELITE_TSA` (an organisation's default TSA; an
/// empty value is none), checked to be an http(s) URL. The whole exchange
/// may take `SPAWN_ELITE_TSA_TIMEOUT` (default 15s), then it is queued.
pub(crate) fn tsa_url(flag: Option<&str>) -> Result<Option<crate::provenance::tsa::Tsa>> {
    let url = match flag {
        Some(u) => u.to_owned(),
        None => match std::env::var("SPAWN_ELITE_TSA") {
            Ok(v) if !v.trim().is_empty() => v.trim().to_owned(),
            _ => return Ok(None),
        },
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(fail(
            ExitCode::Usage,
            format!(
                "the TSA URL {url:?} is not http:// or https://; pass the TSA's RFC 3161 URL to --tsa (or SPAWN_ELITE_TSA)"
            ),
        ));
    }
    let mut tsa = crate::provenance::tsa::Tsa::new(&url);
    tsa.timeout = pick(None, "SPAWN_ELITE_TSA_TIMEOUT", parse_duration, tsa.timeout)?;
    tsa.connect_timeout = tsa.connect_timeout.min(tsa.timeout);
    Ok(Some(tsa))
}

/// The callback options of a spawn or an update, checked (key readable,
/// URL allowed), so that a bad key or URL fails before anything is written.
pub(crate) fn checked_options(args: &CallbackArgs) -> Result<Option<CallbackOptions>> {
    let callback = spawn_options(args)?;
    if let Some(cb) = &callback {
        cb.check()?;
    }
    Ok(callback)
}

/// The spawn's callback options, if `--callback` was given. The caller
/// checks them ([`CallbackOptions::check`]) before spawning, so a bad key
/// or URL fails before anything is created.
pub fn spawn_options(args: &CallbackArgs) -> Result<Option<CallbackOptions>> {
    let Some(url) = &args.callback else {
        return Ok(None);
    };
    let key_path = match &args.key {
        Some(k) => k.clone(),
        None => keys::default_key_path()?,
    };
    Ok(Some(CallbackOptions::new(
        url.clone(),
        key_path,
        args.key_id.clone(),
        delivery_options(&args.delivery)?,
    )))
}

fn delivery_options(args: &DeliveryArgs) -> Result<DeliveryOptions> {
    Ok(DeliveryOptions {
        retry: retry_options(&args.retry)?,
        ca_cert: args.ca_cert.clone(),
        allow_insecure_http: args.allow_insecure_http,
        quiet: false,
    })
}

/// Each setting: the flag, else its environment variable, else the
/// default. A malformed variable is a usage error (exit code 2) naming it.
fn retry_options(args: &RetryArgs) -> Result<RetryOptions> {
    let d = RetryOptions::default();
    Ok(RetryOptions {
        connect_timeout: pick(
            args.connect_timeout,
            "SPAWN_ELITE_CALLBACK_CONNECT_TIMEOUT",
            parse_duration,
            d.connect_timeout,
        )?,
        timeout: pick(
            args.timeout,
            "SPAWN_ELITE_CALLBACK_TIMEOUT",
            parse_duration,
            d.timeout,
        )?,
        attempts: pick(
            args.attempts,
            "SPAWN_ELITE_CALLBACK_ATTEMPTS",
            parse_attempts,
            d.attempts,
        )?,
        backoff: pick(
            args.backoff,
            "SPAWN_ELITE_CALLBACK_BACKOFF",
            parse_duration,
            d.backoff,
        )?,
        max_backoff: pick(
            args.max_backoff,
            "SPAWN_ELITE_CALLBACK_MAX_BACKOFF",
            parse_duration,
            d.max_backoff,
        )?,
    })
}

fn pick<T>(
    flag: Option<T>,
    var: &str,
    parse: fn(&str) -> Result<T, String>,
    default: T,
) -> Result<T> {
    if let Some(v) = flag {
        return Ok(v);
    }
    match std::env::var(var) {
        Ok(v) if v.trim().is_empty() => Ok(default),
        Ok(v) => parse(&v).map_err(|e| {
            fail(
                ExitCode::Usage,
                format!("environment variable {var}: {e}; fix it or unset it"),
            )
        }),
        Err(std::env::VarError::NotPresent) => Ok(default),
        Err(std::env::VarError::NotUnicode(_)) => Err(fail(
            ExitCode::Usage,
            format!("environment variable {var} is not UTF-8; fix it or unset it"),
        )),
    }
}

/// What became of a spawn's or an update's callback, one line each on
/// standard error.
pub(crate) fn print_notes(notes: &[callback::Note]) {
    for note in notes {
        match note {
            callback::Note::Info(line) => crate::output::progress(line),
            callback::Note::Warning(line) => crate::output::warn(line),
            callback::Note::Error(line) => crate::output::error(line),
        }
    }
}
