//! The `forward` plugin: relays queries for a zone to upstream resolvers. This build has its
//! setup only (a typed [`setup::ForwardConfig`]); the relay itself arrives with a later issue, so the
//! directive registers as inactive.

pub(crate) mod setup;

use setup::parse;

use crate::corefile::Dispenser;
use crate::plugin::{BlockSetup, SetupError};

/// Parses and validates a `forward` directive, then records it as not active yet.
pub(crate) fn setup(d: &mut Dispenser<'_>, block: &mut BlockSetup) -> Result<(), SetupError> {
    let config = parse(d, &block.base_dir)?;
    block
        .inactive
        .push((d.name().location.clone(), "forward", config.describe()));
    Ok(())
}
