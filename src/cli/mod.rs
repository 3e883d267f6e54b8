//! The command line, and nothing else: every clap type lives here (the
//! signing, delivery and receiver options in [`callback`]); what the values
//! mean is decided by `commands/` and the engine modules.

mod callback;
mod registry;

pub use callback::{
    CallbackArgs, CallbackCommand, DeliveryArgs, FlushArgs, KeygenArgs, LogFormat, ReceiveArgs,
    RetryArgs, SendArgs, parse_attempts, parse_duration,
};
pub use registry::{RegistryAction, RegistryConn};

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// `--help`'s examples, and the man page's EXAMPLES.
pub const EXAMPLES: &[(&str, &str)] = &[
    (
        "spawn-elite my-svc",
        "a FastAPI service in $VAULTMESH_REPOS or ~/repos",
    ),
    ("spawn-elite my-infra infra", "a Terraform repository"),
    (
        "spawn-elite new verify --type tool",
        "a repository named like a subcommand",
    ),
    (
        "spawn-elite my-svc --dry-run",
        "list the files without writing anything",
    ),
];

/// The environment variables `--help` and the man page's ENVIRONMENT list.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "VAULTMESH_REPOS",
        "where repositories go when --out-dir is not given",
    ),
    (
        "XDG_DATA_HOME",
        "where the ledger and the callback outbox live (default ~/.local/share)",
    ),
    (
        "SOURCE_DATE_EPOCH",
        "fixes the date in generated files, receipts and the commit",
    ),
    (
        "SPAWN_ELITE_TEMPLATES",
        "a template set on disk to spawn from, as --templates DIR",
    ),
];

/// Shown by `-h`.
fn after_help() -> String {
    let mut text = String::from("Examples:\n");
    for (command, what) in EXAMPLES {
        text.push_str(&format!("  {command:<34}  {what}\n"));
    }
    text.pop();
    text
}

/// Shown by `--help`: the examples, the exit codes and the environment.
fn after_long_help() -> String {
    let mut text = after_help();
    text.push_str("\n\n");
    text.push_str(&crate::error::exit_status_text());
    text.push_str("\nEnvironment:\n");
    // The longest name, then two spaces: no name runs into its text.
    let width = ENVIRONMENT
        .iter()
        .map(|(var, _)| var.len())
        .max()
        .unwrap_or(0)
        + 2;
    for (var, what) in ENVIRONMENT {
        text.push_str(&format!("  {var:<width$}{what}\n"));
    }
    text.pop();
    text
}

#[derive(Debug, Parser)]
#[command(
    name = "spawn-elite",
    version,
    about = "Spawn a production-shaped repository in one command, with a receipt of what was generated.",
    after_help = after_help(),
    after_long_help = after_long_help(),
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
    Keygen(KeygenArgs),
    /// Send a receipt by hand, or resend the callbacks queued in the outbox
    Callback {
        #[command(subcommand)]
        action: CallbackCommand,
    },
    /// Verify signed callbacks, log their receipts, and serve the fleet registry (API, page, metrics)
    Receive(ReceiveArgs),
    /// Ask a registry (`spawn-elite receive`) what has been spawned, from which template set, and what is behind
    Registry {
        #[command(subcommand)]
        action: RegistryAction,
    },
    /// List, export and check template sets (the embedded one, or your own)
    Templates {
        #[command(subcommand)]
        action: TemplatesAction,
    },
    /// Bring a spawned repository up to the current templates, keeping your changes (git merge)
    Update(UpdateArgs),
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
        /// Skip paths the receipt does not list that match GLOB (repeatable), e.g. '.venv/**'
        #[arg(long, value_name = "GLOB")]
        exclude: Vec<String>,
        /// Also report added files that .gitignore, .git/info/exclude or your global git excludes ignore
        #[arg(long)]
        no_ignore: bool,
        /// Also check the signed attestation: signed by a key in DIR (*.pub), binding this receipt and these files
        #[arg(long, value_name = "DIR")]
        trust: Option<PathBuf>,
        /// With --trust: check the attestation's RFC 3161 timestamp against FILE, the TSA's CA certificate or its own (PEM)
        #[arg(long, value_name = "FILE", requires = "trust")]
        tsa_cert: Option<PathBuf>,
    },
    /// Sign a tree that has a receipt: an in-toto attestation in a DSSE envelope
    ///
    /// Written to DIR/.spawn-elite/attestation.intoto.json (docs/PROVENANCE.md).
    /// The tree must match its receipt; `verify --trust` checks the result.
    Attest {
        /// The tree to sign (it must have .spawn-elite/receipt.json)
        #[arg(value_name = "DIR", default_value = ".")]
        dir: PathBuf,
        /// Ed25519 private key (PKCS#8 PEM from `spawn-elite keygen`)
        /// [default: $XDG_DATA_HOME/spawn-elite/keys/callback.pem]
        #[arg(long, value_name = "PATH")]
        key: Option<PathBuf>,
        /// Also get an RFC 3161 timestamp of the attestation from the TSA at URL (queued in the outbox if it cannot be reached) [env: SPAWN_ELITE_TSA]
        #[arg(long, value_name = "URL")]
        tsa: Option<String>,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Write a receipt (file hashes and Merkle root) for any existing tree
    Receipt {
        /// The tree to record (its top-level .git is skipped)
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Write it to FILE instead of standard output
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
        /// Replace FILE if it already exists
        #[arg(long)]
        force: bool,
    },
    /// Print an inclusion proof that one file belongs to a tree's receipt
    Prove {
        /// The tree whose receipt lists the file
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// The file: relative to DIR, or to the current directory, or absolute (inside DIR)
        #[arg(value_name = "PATH")]
        path: PathBuf,
        /// The receipt to prove against [default: DIR/.spawn-elite/receipt.json if present, else the tree as it is]
        #[arg(long, value_name = "FILE")]
        receipt: Option<PathBuf>,
    },
    /// Check one file against an inclusion proof, offline and without the other files
    VerifyProof {
        /// The proof, as `spawn-elite prove` printed it
        #[arg(value_name = "PROOF")]
        proof: PathBuf,
        /// The file to check against the proof (a symlink is checked as a link)
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Also require the proof to be for this Merkle root, 64 hex digits (from a receipt or the ledger)
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
    /// Reports git, python3.12 (what `make venv` runs for the default
    /// python_version), make, docker, docker compose, terraform (>= 1.6),
    /// bash (>= 4), bats, shellcheck, shfmt and yamllint: version, or missing,
    /// too old or broken, and what each is for. spawn-elite itself needs none
    /// of them, so doctor exits 0 even when some are missing; scripts can read
    /// --json (its missing, too_old and broken lists).
    Doctor {
        /// Print one JSON object on stdout instead of text
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum LedgerAction {
    /// Check the ledger's hash chain and report the first broken line
    Verify {
        /// Check this chain file instead: a copied ledger, or the `--log` of `spawn-elite receive`
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// Check the anchors (`ledger anchor`) too, against this TSA CA certificate (PEM)
        #[arg(long = "tsa-cert", value_name = "FILE")]
        tsa_cert: Option<PathBuf>,
    },
    /// Time-stamp the chain's head with an RFC 3161 TSA: proof that every entry up to it existed then
    ///
    /// The token is appended to FILE.anchors.jsonl beside the log (the
    /// ledger's: ledger.jsonl.anchors.jsonl); `ledger verify --tsa-cert`
    /// checks it (docs/PROVENANCE.md, "Anchoring the ledger").
    Anchor {
        /// The TSA's RFC 3161 URL [env: SPAWN_ELITE_TSA]
        #[arg(long = "tsa", value_name = "URL")]
        tsa: Option<String>,
        /// Anchor this chain file instead: a copied ledger, or the `--log` of `spawn-elite receive`
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Show past spawns and updates, oldest first, under a header line
    List {
        /// Print one JSON object per line (JSON Lines), as the file records it
        #[arg(long)]
        json: bool,
        /// List this chain file instead: a copied ledger, or the `--log` of `spawn-elite receive`
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Set aside a last line cut off while written (a crash), keeping every complete entry
    ///
    /// The cut-off bytes are saved to FILE.torn-TIME beside it, then the file
    /// is cut back to its last complete line, under the writers' lock. A
    /// chain broken anywhere else is left unchanged (exit 1).
    Repair {
        /// Repair this hash-chained log instead, e.g. the `--log` of `spawn-elite receive`
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Record an already spawned repository from its receipt (after a crash left it out)
    ///
    /// DIR is first checked against DIR/.spawn-elite/receipt.json, as
    /// `spawn-elite verify DIR` does; a repository already recorded with the
    /// same path and merkle root is refused.
    Add {
        /// The spawned repository
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum TemplatesAction {
    /// Show a set's types, keys and every template with the type(s) it belongs to
    List {
        /// The set to list [default: the embedded set]
        #[arg(long, value_name = "DIR", env = "SPAWN_ELITE_TEMPLATES")]
        templates: Option<PathBuf>,
        /// Print one JSON object instead of text
        #[arg(long)]
        json: bool,
        /// Show the set file(s) behind each output path (the paths `remove` takes)
        #[arg(long)]
        sources: bool,
    },
    /// Write the embedded set, manifest included, as plain files: the start of your own
    Export {
        /// Where to write it; must be empty or new unless --force
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Write into a non-empty DIR, replacing files of the same name
        #[arg(long)]
        force: bool,
    },
    /// Check a set: its manifest, and every type rendered with and without elite
    Check {
        /// The set's folder (holding spawn-elite.toml)
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

/// `spawn-elite update [DIR]`.
#[derive(Debug, Args, Clone, Default)]
pub struct UpdateArgs {
    /// The spawned repository (holding .spawn-elite/receipt.json)
    #[arg(value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,

    /// Update to the template set in DIR instead of the embedded one (required for a repository spawned from a set on disk)
    #[arg(long, value_name = "DIR", env = "SPAWN_ELITE_TEMPLATES")]
    pub templates: Option<PathBuf>,

    /// Change a recorded template value as part of the update (repeatable), checked by the set's rules
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,

    /// Print every path and what would happen to it; change nothing
    #[arg(long, short = 'n', conflicts_with = "check")]
    pub dry_run: bool,

    /// Change nothing; exit 1 if the current set renders something other than the receipt records
    #[arg(long)]
    pub check: bool,

    /// Print one JSON object on stdout instead of text
    #[arg(long)]
    pub json: bool,

    /// Print nothing but errors, warnings and conflicts
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Do not record the update in the local ledger
    #[arg(long)]
    pub no_ledger: bool,

    /// Finish an update that left conflicts, once they are resolved: check that none is left, commit the merge (with git), then record it in the ledger and send its callback
    #[arg(long = "continue", conflicts_with_all = ["dry_run", "check", "set"])]
    pub resume: bool,

    #[command(flatten)]
    pub callback: CallbackArgs,
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

    /// Set a template value (repeatable): description, org, python_version, port, version, or a key of --templates
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,

    /// Do not record the spawn in the local ledger ($XDG_DATA_HOME/spawn-elite/ledger.jsonl)
    #[arg(long)]
    pub no_ledger: bool,

    /// Spawn from the template set in DIR instead of the embedded one
    #[arg(long, value_name = "DIR", env = "SPAWN_ELITE_TEMPLATES")]
    pub templates: Option<PathBuf>,

    /// Refuse to spawn unless the template set's digest is HEX (`templates list --json` prints it)
    #[arg(long, value_name = "HEX")]
    pub templates_digest: Option<String>,

    /// Read template values from FILE (TOML or JSON, KEY = VALUE); --set wins over it
    #[arg(long, value_name = "FILE")]
    pub values: Option<PathBuf>,

    /// Replay the type, elite flag, template set and values a receipt records, with a new NAME
    #[arg(long, value_name = "RECEIPT")]
    pub from_receipt: Option<PathBuf>,

    /// On a terminal, ask for each key of the type that --set and --values did not give
    #[arg(long, short = 'i')]
    pub interactive: bool,

    #[command(flatten)]
    pub callback: CallbackArgs,
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
