//! The command line, and nothing else.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "spawn-elite", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a tree against its receipt; exit 1 and list every difference if it drifted
    Verify {
        /// The tree to check [default: the current directory]
        #[arg(value_name = "DIR", default_value = ".")]
        dir: PathBuf,
        /// The receipt to check against [default: DIR/.spawn-elite/receipt.json]
        #[arg(long, value_name = "FILE")]
        receipt: Option<PathBuf>,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Write a receipt (file hashes and Merkle root) for any existing tree
    Receipt {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Write it to FILE instead of standard output
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Print an inclusion proof that one file belongs to a tree's receipt
    Prove {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// The file, relative to DIR
        #[arg(value_name = "PATH")]
        path: PathBuf,
        /// The receipt to prove against [default: DIR/.spawn-elite/receipt.json, else the tree as it is]
        #[arg(long, value_name = "FILE")]
        receipt: Option<PathBuf>,
    },
    /// Check a file against an inclusion proof, offline and without the other files
    VerifyProof {
        #[arg(value_name = "PROOF")]
        proof: PathBuf,
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Also require the proof to be for this Merkle root (from a receipt or the ledger)
        #[arg(long, value_name = "HEX")]
        root: Option<String>,
    },
    /// Inspect the local ledger of past spawns
    Ledger {
        #[command(subcommand)]
        action: LedgerAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum LedgerAction {
    /// Check the ledger's hash chain and report the first broken line
    Verify,
    /// Show past spawns
    List,
}
