//! The `cache` plugin: keeps answers for their TTL, within bounds, in front of the rest of the
//! chain. This build has its setup only (a typed [`setup::CacheConfig`]); the cache itself arrives
//! with a later issue, so the directive registers as inactive.

pub(crate) mod setup;

use setup::parse;

use crate::corefile::Dispenser;
use crate::plugin::{BlockSetup, SetupError};

/// Parses and validates a `cache` directive, then records it as not active yet.
pub(crate) fn setup(d: &mut Dispenser<'_>, block: &mut BlockSetup) -> Result<(), SetupError> {
    let config = parse(d, &block.zones)?;
    block
        .inactive
        .push((d.name().location.clone(), "cache", config.describe()));
    Ok(())
}
