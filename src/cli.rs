//! The command line, and nothing else: every clap type lives here; what the
//! values mean is decided by `commands/` and the engine modules.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};

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
    for (var, what) in ENVIRONMENT {
        text.push_str(&format!("  {var:<20}{what}\n"));
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
    /// Verify signed callbacks and log their receipts (a small registry)
    Receive(ReceiveArgs),
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
    /// Reports git, python3 (>= 3.12, what the default templates use), make, docker, docker compose, terraform
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
    /// Show past spawns, oldest first, under a header line
    List {
        /// Print one JSON object per spawn, one per line (JSON Lines), as the ledger records it
        #[arg(long)]
        json: bool,
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

impl Cli {
    /// Parse the command line, or print clap's error and exit. Someone who
    /// wants a repository named like a subcommand (`spawn-elite verify -o x`)
    /// gets that subcommand's parse error; they are pointed at `new`.
    pub fn parse_or_exit() -> Cli {
        Cli::try_parse().unwrap_or_else(|err| exit_with_hint(err))
    }
}

fn exit_with_hint(err: clap::Error) -> ! {
    let _ = err.print();
    let first = std::env::args().nth(1).unwrap_or_default();
    let is_subcommand = Cli::command()
        .get_subcommands()
        .any(|sub| sub.get_name() == first && first != "new" && first != "help");
    if is_subcommand && names_clash(&err) {
        eprintln!(
            "hint: to spawn a repository named '{first}', run `spawn-elite new {first} [TYPE] [OPTIONS]`"
        );
    }
    std::process::exit(err.exit_code());
}

/// Words the command line keeps for itself, so that a command added later
/// (or one users expect, like `update`) is never taken as a repository
/// name: `spawn-elite NAME` refuses them, `spawn-elite new NAME` does not.
pub const RESERVED_NAMES: &[&str] = &[
    "add",
    "config",
    "help",
    "info",
    "init",
    "install",
    "list",
    "remove",
    "self-update",
    "show",
    "status",
    "uninstall",
    "upgrade",
    "version",
];

/// Refuse a NAME given without `new` that looks like a mistyped subcommand
/// (within 2 edits of one, 1 for names of up to 4 letters, which are
/// otherwise near every short word) or is a reserved word: the user almost
/// certainly did not mean to create a repository. `new NAME` skips this.
pub fn refuse_command_like(name: &str) -> Result<(), crate::error::Failure> {
    let command = Cli::command();
    let nearest = command
        .get_subcommands()
        .map(|sub| sub.get_name())
        .chain(["help"])
        .map(|sub| (edit_distance(name, sub), sub))
        .filter(|(d, sub)| *d <= if sub.len() <= 4 { 1 } else { 2 })
        .min_by_key(|(d, _)| *d);
    let anyway = format!("To spawn a repository with this name use `spawn-elite new {name}`");
    let message = match nearest {
        Some((_, sub)) => format!("did you mean `{sub}`? {anyway}"),
        None if RESERVED_NAMES.contains(&name) => anyway,
        None => return Ok(()),
    };
    Err(crate::error::Failure {
        code: crate::error::ExitCode::Usage,
        message,
        source: None,
    })
}

/// Edits (insert, delete, substitute, swap two neighbours) from `a` to `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// Whether `err` is what a subcommand says when given what a spawn takes:
/// spawn options or a second positional (an unknown argument or nested
/// subcommand), or a type where the subcommand wanted another value
/// (`spawn-elite completions tool`). Not a subcommand's own bad value
/// (`completions tcsh`), help or a missing argument.
fn names_clash(err: &clap::Error) -> bool {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    match err.kind() {
        ErrorKind::UnknownArgument | ErrorKind::InvalidSubcommand => true,
        ErrorKind::InvalidValue => match err.get(ContextKind::InvalidValue) {
            Some(ContextValue::String(value)) => crate::templates::TemplateSet::embedded()
                .is_ok_and(|set| set.manifest.types.iter().any(|t| &t.name == value)),
            _ => false,
        },
        _ => false,
    }
}

/// `spawn-elite keygen`: create an Ed25519 key pair for signed callbacks.
#[derive(Args, Debug, Clone)]
pub struct KeygenArgs {
    /// Where to write the private key (PKCS#8 PEM, mode 0600); the public
    /// key goes to PATH.pub. Default: $XDG_DATA_HOME/spawn-elite/keys/callback.pem
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    pub output: Option<PathBuf>,
}

/// `spawn-elite receive`: verify signed callbacks and log the receipts.
#[derive(Args, Debug, Clone)]
pub struct ReceiveArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8787")]
    pub listen: String,
    /// Directory of trusted public keys (*.pub, SPKI PEM), looked up by key id
    #[arg(long, value_name = "DIR")]
    pub trust: PathBuf,
    /// Hash-chained JSONL log of accepted receipts
    /// (default: $XDG_DATA_HOME/spawn-elite/received.jsonl)
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// The URL senders sign for, when it is not the listen address (e.g. behind
    /// a proxy): its host[:port] must be the signed authority and, if it has a
    /// path, the signed path [default: this receiver's own addresses, any path]
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Largest accepted body in bytes (413 above it)
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub max_body: usize,
    /// Requests checked and logged at once (signature checks, log writes)
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,
    /// Connections held open at once; more wait until one closes
    #[arg(long, value_name = "N", default_value_t = 512, value_parser = clap::value_parser!(u16).range(1..=16384))]
    pub max_connections: u16,
    /// Seconds a client has to send a request's headers, and again its body
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=300))]
    pub read_timeout: u16,
}

/// Spawn flags for the callback; the spawn command flattens this in.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Signed callback")]
pub struct CallbackArgs {
    /// After a successful spawn, POST the signed receipt to URL
    #[arg(long = "callback", value_name = "URL")]
    pub callback: Option<String>,
    /// Ed25519 private key (PKCS#8 PEM from `spawn-elite keygen`) that signs the callback
    #[arg(long = "key", value_name = "PATH", requires = "callback")]
    pub key: Option<PathBuf>,
    /// Key id to put in the signature (default: the key's fingerprint)
    #[arg(long = "key-id", value_name = "ID", requires = "callback")]
    pub key_id: Option<String>,
    #[command(flatten)]
    pub delivery: DeliveryArgs,
}

/// Timeout and retry flags, as given. The environment overrides
/// (`SPAWN_ELITE_CALLBACK_*`) are read when the flags are resolved, not by
/// clap: clap counts a set variable as a given flag and prints it in every
/// usage line. `callback flush` takes only these; everything else comes
/// from the queued entry.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Delivery")]
pub struct RetryArgs {
    /// Time allowed to connect, per attempt [default: 5s] [env: SPAWN_ELITE_CALLBACK_CONNECT_TIMEOUT]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub connect_timeout: Option<Duration>,
    /// Time allowed for a whole attempt, connect to response [default: 30s] [env: SPAWN_ELITE_CALLBACK_TIMEOUT]
    #[arg(long = "callback-timeout", value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Attempts before the callback is queued in the outbox (1-100) [default: 4] [env: SPAWN_ELITE_CALLBACK_ATTEMPTS]
    #[arg(long, value_name = "N", value_parser = parse_attempts)]
    pub attempts: Option<u32>,
    /// Wait before the first retry; doubles each retry, with jitter [default: 500ms] [env: SPAWN_ELITE_CALLBACK_BACKOFF]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub backoff: Option<Duration>,
    /// Longest wait between attempts; a longer Retry-After queues the callback instead [default: 60s] [env: SPAWN_ELITE_CALLBACK_MAX_BACKOFF]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_backoff: Option<Duration>,
}

/// How hard to try (timeouts, retries) and whom to trust (TLS).
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Delivery")]
pub struct DeliveryArgs {
    #[command(flatten)]
    pub retry: RetryArgs,
    /// PEM file of CA certificates to trust instead of the platform's [env: SSL_CERT_FILE]
    // SSL_CERT_FILE is read by the callback engine, not by clap: clap would
    // count a set variable as a given flag and print it in usage lines.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Allow plain http:// to hosts other than loopback (the receipt and signature travel in clear)
    #[arg(long)]
    pub allow_insecure_http: bool,
}

/// `spawn-elite callback …`
// Parsed once per run: boxing `Send` would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug, Clone)]
pub enum CallbackCommand {
    /// Send one receipt by hand (queued in the outbox if it cannot be delivered)
    Send(SendArgs),
    /// Resend every callback queued in the outbox; delivered ones are removed
    Flush(FlushArgs),
    /// Show what is queued in the outbox: file, URL, root, attempts, last error
    List,
    /// Remove one entry from the outbox (it is not sent); says where its receipt is
    Drop {
        /// The entry: a path or file name shown by `spawn-elite callback list`
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(Args, Debug, Clone)]
pub struct SendArgs {
    /// Receipt file (.spawn-elite/receipt.json, or from `spawn-elite receipt`)
    #[arg(long, value_name = "FILE")]
    pub receipt: PathBuf,
    /// Where to POST it
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// Ed25519 private key (PKCS#8 PEM)
    #[arg(long, value_name = "PATH")]
    pub key: PathBuf,
    /// Key id to put in the signature (default: the key's fingerprint)
    #[arg(long = "key-id", value_name = "ID")]
    pub key_id: Option<String>,
    /// Print the exact request and signature base instead of sending
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub delivery: DeliveryArgs,
}

/// The URL, key, key id, CA file and `--allow-insecure-http` of each entry
/// are those it was queued with; only timeouts and retries are set here.
#[derive(Args, Debug, Clone)]
pub struct FlushArgs {
    #[command(flatten)]
    pub retry: RetryArgs,
}

/// `10s`, `500ms`, `2m`, or a bare number of seconds (may be fractional).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration; write e.g. 10s, 500ms or 2m"))?;
    if !v.is_finite() || v < 0.0 || v * scale > 86_400.0 {
        return Err(format!("{s:?} is out of range (0 to 24h)"));
    }
    Ok(Duration::from_secs_f64(v * scale))
}

/// A number of callback attempts, 1 to 100.
pub fn parse_attempts(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if (1..=100).contains(&n) => Ok(n),
        _ => Err(format!("{s:?} is not a number of attempts from 1 to 100")),
    }
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

    #[test]
    fn edit_distance_counts_a_swap_as_one() {
        use super::edit_distance;
        assert_eq!(edit_distance("verfy", "verify"), 1);
        assert_eq!(edit_distance("nwe", "new"), 1);
        assert_eq!(edit_distance("web", "new"), 2);
        assert_eq!(edit_distance("", "man"), 3);
        assert_eq!(edit_distance("doctor", "doctor"), 0);
    }

    #[test]
    fn command_like_names_are_refused_and_others_pass() {
        use super::refuse_command_like;
        let refused = |n: &str| refuse_command_like(n).err().map(|f| f.message);
        assert_eq!(
            refused("verfy").as_deref(),
            Some(
                "did you mean `verify`? To spawn a repository with this name use `spawn-elite new verfy`"
            )
        );
        assert_eq!(
            refused("ledgr").as_deref(),
            Some(
                "did you mean `ledger`? To spawn a repository with this name use `spawn-elite new ledgr`"
            )
        );
        assert!(refused("status").is_some_and(|m| m.starts_with("To spawn")));
        assert!(refused("updte").is_some_and(|m| m.starts_with("did you mean `update`?")));
        assert!(refused("helo").is_some_and(|m| m.starts_with("did you mean `help`?")));
        for name in ["my-svc", "web", "api", "billing", "payments", "a", "svc2"] {
            assert_eq!(refused(name), None, "{name}");
        }
    }

    #[test]
    fn durations_accept_units_and_reject_nonsense() {
        use super::parse_duration;
        use std::time::Duration;
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("2d").is_err());
    }
}
