//! `spawn-elite templates list`: every embedded template and the spawns
//! that include it.

use anyhow::Result;

use crate::error::ExitCode;
use crate::templates;

pub fn list() -> Result<ExitCode> {
    let rows = templates::catalogue();
    let width = rows.iter().map(|(path, _)| path.len()).max().unwrap_or(0);
    for (path, kinds) in &rows {
        println!("{path:width$}  {}", kinds.join(", "));
    }
    Ok(ExitCode::Success)
}
