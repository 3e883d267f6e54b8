//! From a checked spawn to the files it will write, in memory: the values
//! the templates see, and the template set rendered with them.

use anyhow::Result;
use minijinja::context;

use super::config::SpawnConfig;
use crate::templates::{self, PlannedFile};

/// Every file of the spawn, rendered, sorted by path.
pub fn plan(config: &SpawnConfig) -> Result<Vec<PlannedFile>> {
    let ctx = context! {
        name => &config.name,
        type => config.kind.as_str(),
        elite => config.elite,
        year => config.now.strftime("%Y").to_string(),
        date => config.now.strftime("%Y-%m-%d").to_string(),
        tool_version => env!("CARGO_PKG_VERSION"),
        ..minijinja::Value::from(config.values.clone())
    };
    templates::render(config.kind, config.elite, &config.name, &ctx)
}
