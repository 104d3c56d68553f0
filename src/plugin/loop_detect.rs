//! The `loop` plugin: at start-up it would query itself for a random name and stop the process
//! if that query comes back through the chain (a forwarding loop). This build validates the
//! directive and registers it as inactive.

use hickory_proto::rr::Name;

use crate::corefile::{ArgError, Dispenser};
use crate::plugin::{BlockSetup, SetupError};

/// `loop` takes no arguments; the zone it probes is the server block's first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LoopConfig {
    /// Zone under which the probe name is made (`.` for `.:53`).
    pub(crate) zone: Name,
}

fn arg_err(e: ArgError) -> SetupError {
    SetupError::from_arg("loop", e)
}

/// Parses a `loop` directive of a block serving `block_zones`.
pub(crate) fn parse(d: &mut Dispenser<'_>, block_zones: &[Name]) -> Result<LoopConfig, SetupError> {
    d.expect_end().map_err(arg_err)?;
    d.expect_no_block().map_err(arg_err)?;
    Ok(LoopConfig {
        zone: block_zones.first().cloned().unwrap_or_else(Name::root),
    })
}

/// Parses and validates a `loop` directive, then records it as not active yet.
pub(crate) fn setup(d: &mut Dispenser<'_>, block: &mut BlockSetup) -> Result<(), SetupError> {
    let config = parse(d, &block.zones)?;
    block.inactive.push((
        d.name().location.clone(),
        "loop",
        format!(
            "probe zone {} for forwarding loops at start-up",
            config.zone
        ),
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::corefile::parse_str_with_env;

    fn run(text: &str, zones: &[Name]) -> Result<LoopConfig, String> {
        let cf = parse_str_with_env(
            &format!(".:53 {{\n{text}\n}}\n"),
            "Corefile",
            Path::new("."),
            &|_| None,
        )
        .map_err(|e| e.to_string())?;
        parse(&mut Dispenser::new(&cf.blocks[0].directives[0]), zones).map_err(|e| e.to_string())
    }

    #[test]
    fn loop_setup_cases() {
        let zone = Name::from_ascii("cluster.local.").expect("name");
        assert_eq!(run("loop", &[]), Ok(LoopConfig { zone: Name::root() }));
        assert_eq!(
            run("loop", std::slice::from_ref(&zone)),
            Ok(LoopConfig { zone: zone.clone() })
        );
        assert_eq!(
            run("loop now", &[]),
            Err("Corefile:2:6: plugin/loop: unexpected argument 'now' after 'loop', expected the end of the line".to_owned())
        );
        assert_eq!(
            run("loop {\n  x\n}", &[]),
            Err("Corefile:3:3: plugin/loop: unexpected option block, 'loop' takes none".to_owned())
        );
    }
}
