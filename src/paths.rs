//! Where spawn-elite keeps its own state (ledger, outbox) on this host.

use std::path::PathBuf;

use anyhow::Result;

use crate::error::{ExitCode, fail};

/// `$XDG_DATA_HOME/spawn-elite`, else `$HOME/.local/share/spawn-elite`.
///
/// Only absolute values of `XDG_DATA_HOME` count, as the XDG base directory
/// specification says; a relative one is ignored rather than resolved against
/// whatever directory the user happens to be in.
pub fn data_dir() -> Result<PathBuf> {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").map(PathBuf::from)
        && xdg.is_absolute()
    {
        return Ok(xdg.join("spawn-elite"));
    }
    match std::env::var_os("HOME").map(PathBuf::from) {
        Some(home) if home.is_absolute() => Ok(home.join(".local/share/spawn-elite")),
        // Like a missing HOME everywhere else: the environment is the
        // user's to fix, so it is a usage error.
        _ => Err(fail(
            ExitCode::Usage,
            "cannot find a data directory: neither XDG_DATA_HOME nor HOME is set to an absolute path; set one of them",
        )),
    }
}
