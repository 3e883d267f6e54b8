mod callback;
mod httpsig;
mod keys;
mod paths;
mod receive;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Temporary command line for the callback work; the lead's `cli.rs`
/// takes these subcommands over when it lands.
#[derive(Parser, Debug)]
#[command(name = "spawn-elite", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create an Ed25519 key pair for signed callbacks and print its key id
    Keygen(keys::KeygenArgs),
    /// Send or resend signed callbacks
    #[command(subcommand)]
    Callback(callback::CallbackCommand),
    /// Run a receiver that verifies signed callbacks and logs the receipts
    Receive(receive::ReceiveArgs),
}

/// Spawned (or sent) but the callback is queued in the outbox.
const EXIT_CALLBACK_PENDING: u8 = 7;
/// A key file is missing, malformed or would be overwritten.
const EXIT_KEY_ERROR: u8 = 9;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Keygen(a) => keys::run_keygen(a).map(|_| ExitCode::SUCCESS),
        Command::Callback(c) => callback::run(c).map(|s| match s {
            callback::CallbackStatus::Done => ExitCode::SUCCESS,
            callback::CallbackStatus::Pending => ExitCode::from(EXIT_CALLBACK_PENDING),
        }),
        Command::Receive(a) => receive::run(a).map(|_| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<keys::KeyError>().is_some() {
                ExitCode::from(EXIT_KEY_ERROR)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
