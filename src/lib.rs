//! spawn-elite: spawn a repository from embedded templates, with a receipt
//! (BLAKE3 + Merkle root) of what was generated, a hash-chained ledger, and
//! signed callbacks.
//!
//! Data flows one way: [`cli`] parses, [`commands`] resolves options, calls
//! the engine and prints; the engine modules below never look at the
//! command line.
//!
//! - [`spawn`]: one spawn, from resolved options to a repository on disk.
//! - [`templates`]: the embedded template set and its repository types.
//! - [`update`]: bring a spawned repository up to the current templates.
//! - [`receipt`]: walking and hashing a tree, the Merkle tree, receipts, proofs.
//! - [`chain`] and [`ledger`]: the hash-chained JSONL log, and the spawn ledger on it.
//! - [`callback`]: signed delivery of a receipt, its outbox, keys, RFC 9421.
//! - [`receive`]: the receiver that verifies callbacks and logs receipts.
//! - [`registry`]: the fleet as the receiver's log tells it: index, API answers, page.
//! - [`doctor`]: the host's tools.
//! - [`durable`], [`error`], [`fsutil`], [`interrupt`], [`output`], [`paths`]: shared plumbing.

pub mod callback;
pub mod chain;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod doctor;
pub mod durable;
pub mod error;
pub mod fsutil;
pub mod interrupt;
pub mod ledger;
pub mod ops;
pub mod output;
pub mod paths;
pub mod provenance;
pub mod receipt;
pub mod receive;
pub mod registry;
pub mod spawn;
pub mod templates;
pub mod update;

use anyhow::Result;

use crate::error::ExitCode;

/// Run one parsed command line; the `Ok` value is the exit code of an
/// outcome that is not an error (drift, a pending callback).
pub fn run(cli: cli::Cli) -> Result<ExitCode> {
    commands::run(cli)
}
