//! Where a NAME and a subcommand meet: a NAME given without `new` that
//! looks like a subcommand (`spawn-elite verfy` must not create a
//! repository called "verfy"), and the parse error of a subcommand that
//! was meant as a NAME, which points at `new`.

use clap::{CommandFactory as _, Parser as _};

use crate::cli::Cli;
use crate::error::{ExitCode, Failure};

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
pub fn refuse_command_like(name: &str) -> Result<(), Failure> {
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
    Err(Failure {
        code: ExitCode::Usage,
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

/// Parse the command line, or print clap's error and exit. Someone who
/// wants a repository named like a subcommand (`spawn-elite verify -o x`)
/// gets that subcommand's parse error; they are pointed at `new`.
pub fn parse_or_exit() -> Cli {
    Cli::try_parse().unwrap_or_else(|err| exit_with_hint(err))
}

fn exit_with_hint(err: clap::Error) -> ! {
    let _ = err.print();
    // Asked for JSON: the usage error too (help and --version are not errors).
    if err.use_stderr() && asked_for_json() {
        let text = err.render().to_string();
        let first = text.lines().next().unwrap_or_default();
        let message = first.strip_prefix("error: ").unwrap_or(first);
        let _ = crate::output::stdout_line(&crate::error::json_error(ExitCode::Usage, message));
    }
    let first = std::env::args().nth(1).unwrap_or_default();
    let is_subcommand = Cli::command()
        .get_subcommands()
        .any(|sub| sub.get_name() == first && first != "new" && first != "help");
    if is_subcommand && names_clash(&err) && parses_as_spawn() {
        eprintln!(
            "hint: to spawn a repository named '{first}', run `spawn-elite new {first} [TYPE] [OPTIONS]`"
        );
    }
    std::process::exit(err.exit_code());
}

/// Whether `--json` is among the words typed, before any `--`: the line did
/// not parse, so this is all there is to go by.
fn asked_for_json() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|arg| arg != "--")
        .any(|arg| arg == "--json")
}

/// Whether the words typed, read as `spawn-elite new WORDS...`, are a spawn:
/// they parse, and a TYPE among them is a type (of the embedded set, unless
/// a set is named). `ledger verify --json` is not (`verify` is no type), nor
/// `ledger verify --bogus`, so neither is pointed at `new`.
fn parses_as_spawn() -> bool {
    let mut args: Vec<_> = std::env::args_os().collect();
    if args.is_empty() {
        return false;
    }
    args.insert(1, "new".into());
    let Ok(cli) = Cli::try_parse_from(args) else {
        return false;
    };
    let Some(crate::cli::Command::New { kind, spawn, .. }) = cli.command else {
        return false;
    };
    let Some(kind) = kind.or(spawn.type_option) else {
        return true;
    };
    spawn.templates.is_some()
        || crate::templates::TemplateSet::embedded()
            .is_ok_and(|set| set.manifest.types.iter().any(|t| t.name == kind))
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

#[cfg(test)]
mod tests {
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
}
