//! From a checked spawn to the files it will write, in memory: the values
//! the templates see, and the template set rendered with them.

use anyhow::Result;

use super::config::SpawnConfig;
use crate::templates::{self, PlannedFile};

/// Every file of the spawn, rendered, sorted by path.
pub fn plan(config: &SpawnConfig) -> Result<Vec<PlannedFile>> {
    let ctx = templates::context(
        &config.name,
        &config.kind,
        config.elite,
        config.now,
        &config.values,
    );
    config
        .set
        .render(&config.kind, config.elite, &config.name, &ctx)
}
