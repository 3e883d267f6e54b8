//! `spawn-elite keygen [-o PATH]`: create an Ed25519 key pair for signed
//! callbacks and print where it went and its key id.

use anyhow::Result;

use crate::callback::keys;
use crate::cli::KeygenArgs;
use crate::error::ExitCode;

pub fn run(args: &KeygenArgs) -> Result<ExitCode> {
    let path = match &args.output {
        Some(p) => p.clone(),
        None => keys::default_key_path()?,
    };
    let g = keys::generate(&path)?;
    crate::output::stdout_line(&format!("private key: {}", g.private_path.display()))?;
    crate::output::stdout_line(&format!("public key:  {}", g.public_path.display()))?;
    crate::output::stdout_line(&format!("key id:      {}", g.key_id))?;
    Ok(ExitCode::Success)
}
