//! The command line, and nothing else: parsing lives here, meaning lives in
//! `config.rs`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

macro_rules! examples {
    () => {
        "\
Examples:
  spawn-elite my-svc                  a FastAPI service in $VAULTMESH_REPOS or ~/repos
  spawn-elite my-infra infra          a Terraform repository
  spawn-elite new verify --type tool  a repository named like a subcommand
  spawn-elite my-svc --dry-run        list the files without writing anything"
    };
}

const AFTER_HELP: &str = examples!();

/// Shown by `--help` (not `-h`) and in the man page.
const AFTER_LONG_HELP: &str = concat!(
    examples!(),
    "\n\n\
Exit status:
  0    success
  1    verify: the tree differs from its receipt; ledger verify: the chain is broken
  2    bad command line or value (name, type, --set, URL)
  3    the target directory already exists (left untouched)
  4    reading or writing files failed (nothing was left half-written)
  5    a git command failed (the spawn was undone)
  6    a receipt or proof file is malformed, foreign or inconsistent
  7    spawned, but the callback waits in the outbox (spawn-elite callback flush)
  8    the tree holds something a receipt cannot record (non-UTF-8 name, FIFO, device)
  9    a signing key is missing, malformed or unusable
  10   an inclusion proof does not verify
  130  interrupted by Ctrl-C (nothing was left behind)

Environment:
  VAULTMESH_REPOS     where repositories go when --out-dir is not given
  XDG_DATA_HOME       where the ledger and the callback outbox live (default ~/.local/share)
  SOURCE_DATE_EPOCH   fixes the date in generated files, receipts and the commit"
);

#[derive(Debug, Parser)]
#[command(
    name = "spawn-elite",
    version,
    about = "Spawn a production-shaped repository in one command, with a receipt of what was generated.",
    after_help = AFTER_HELP,
    after_long_help = AFTER_LONG_HELP,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Repository name: a DNS-1123 label (lowercase letters, digits and '-', starting with a letter)
    #[arg(value_name = "NAME", allow_hyphen_values = true)]
    pub name: Option<String>,

    /// Kind of repository: service (Python FastAPI), infra (Terraform) or tool (Bash CLI)
    #[arg(value_name = "TYPE")]
    pub kind: Option<String>,

    #[command(flatten)]
    pub spawn: SpawnArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Spawn a repository (same as `spawn-elite NAME [TYPE]`, for names that clash with a subcommand)
    New {
        /// Repository name: a DNS-1123 label
        #[arg(value_name = "NAME", allow_hyphen_values = true)]
        name: String,

        /// Kind of repository: service (default), infra or tool; `--type TYPE` works too
        #[arg(value_name = "TYPE")]
        kind: Option<String>,

        #[command(flatten)]
        spawn: SpawnArgs,
    },
    /// Create an Ed25519 key pair for signed callbacks and print its key id
    Keygen(crate::keys::KeygenArgs),
    /// Send a receipt by hand, or resend the callbacks queued in the outbox
    Callback {
        #[command(subcommand)]
        action: crate::callback::CallbackCommand,
    },
    /// Verify signed callbacks and log their receipts (a small registry)
    Receive(crate::receive::ReceiveArgs),
    /// Inspect the templates embedded in this binary
    Templates {
        #[command(subcommand)]
        action: TemplatesAction,
    },
    /// Check a tree against its receipt; exit 1 and list every difference if it drifted
    Verify {
        /// The tree to check
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
        /// The receipt to prove against [default: DIR/.spawn-elite/receipt.json if present, else the tree as it is]
        #[arg(long, value_name = "FILE")]
        receipt: Option<PathBuf>,
    },
    /// Check one file against an inclusion proof, offline and without the other files
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
    /// Print a shell completion script
    ///
    /// For example:
    ///   spawn-elite completions bash > ~/.local/share/bash-completion/completions/spawn-elite
    ///   spawn-elite completions zsh > ~/.zfunc/_spawn-elite
    ///   spawn-elite completions fish > ~/.config/fish/completions/spawn-elite.fish
    #[command(verbatim_doc_comment)]
    Completions {
        /// Shell to complete for
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff)
    ///
    /// For example: spawn-elite man > ~/.local/share/man/man1/spawn-elite.1
    Man,
    /// Check this host for the tools spawned repositories use
    ///
    /// Reports git, python3 (>= 3.10), make, docker, docker compose, terraform
    /// (>= 1.6), bats and shellcheck: version, or missing, too old or broken,
    /// and what each is for. spawn-elite itself needs none of them, so doctor
    /// exits 0 even when some are missing; scripts can read --json.
    Doctor {
        /// Print one JSON object on stdout instead of text
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum LedgerAction {
    /// Check the ledger's hash chain and report the first broken line
    Verify,
    /// Show past spawns
    List,
}

#[derive(Debug, Subcommand)]
pub enum TemplatesAction {
    /// List every embedded template with the type(s) it belongs to
    List,
}

/// Options shared by `spawn-elite NAME` and `spawn-elite new NAME`.
#[derive(Debug, Args, Clone, Default)]
pub struct SpawnArgs {
    /// Kind of repository, as an option: service (default), infra or tool
    #[arg(long = "type", short = 't', value_name = "TYPE")]
    pub type_option: Option<String>,

    /// Parent directory of the new repository [default: $VAULTMESH_REPOS, else ~/repos]
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out_dir: Option<PathBuf>,

    /// Only the base files: no CI workflow, containers, Kubernetes or monitoring
    #[arg(long)]
    pub no_elite: bool,

    /// Do not create a git repository or commit
    #[arg(long)]
    pub no_git: bool,

    /// Print every file that would be written, with its size, and write nothing
    #[arg(long, short = 'n')]
    pub dry_run: bool,

    /// Print one JSON summary object on stdout instead of text
    #[arg(long)]
    pub json: bool,

    /// Print nothing but errors and warnings
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Set a template value (repeatable): description, org, python_version, port, version
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,

    /// Do not record the spawn in the local ledger ($XDG_DATA_HOME/spawn-elite/ledger.jsonl)
    #[arg(long)]
    pub no_ledger: bool,

    #[command(flatten)]
    pub callback: crate::callback::CallbackArgs,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap checks the definition (unique ids, sane defaults) only when a
    /// command is built; this builds every one of them in a test.
    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
