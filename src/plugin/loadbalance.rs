//! The `loadbalance` plugin: shuffles address records in answers so clients spread their load.
//! This build validates the directive and registers it as inactive.

use crate::corefile::{ArgError, Dispenser, Location};
use crate::plugin::{BlockSetup, SetupError};

const PLUGIN: &str = "loadbalance";

/// How answers are reordered. `weighted` (CoreDNS's other policy) is not supported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Policy {
    /// Random permutation of A, AAAA and MX records (CoreDNS's default).
    #[default]
    RoundRobin,
}

/// `loadbalance [round_robin]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LoadbalanceConfig {
    pub(crate) policy: Policy,
}

fn err(location: &Location, message: impl Into<String>) -> SetupError {
    SetupError::new(PLUGIN, location, message)
}

fn arg_err(e: ArgError) -> SetupError {
    SetupError::from_arg(PLUGIN, e)
}

/// Parses a `loadbalance` directive.
pub(crate) fn parse(d: &mut Dispenser<'_>) -> Result<LoadbalanceConfig, SetupError> {
    let policy = match d.next_arg() {
        None => Policy::RoundRobin,
        Some(tok) => match tok.text.as_str() {
            "round_robin" => Policy::RoundRobin,
            "weighted" => {
                return Err(err(
                    &tok.location,
                    "policy 'weighted' is not supported in this build, expected round_robin",
                ));
            }
            other => {
                return Err(err(
                    &tok.location,
                    format!("unknown policy '{other}', expected round_robin"),
                ));
            }
        },
    };
    d.expect_end().map_err(arg_err)?;
    d.expect_no_block().map_err(arg_err)?;
    Ok(LoadbalanceConfig { policy })
}

/// Parses and validates a `loadbalance` directive, then records it as not active yet.
pub(crate) fn setup(d: &mut Dispenser<'_>, block: &mut BlockSetup) -> Result<(), SetupError> {
    let config = parse(d)?;
    block.inactive.push((
        d.name().location.clone(),
        PLUGIN,
        format!(
            "shuffle A, AAAA and MX records in answers ({:?})",
            config.policy
        ),
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Result<LoadbalanceConfig, String> {
        crate::plugin::test_support::parse_first(text, parse)
    }

    #[test]
    fn loadbalance_setup_cases() {
        let rr = Ok(LoadbalanceConfig {
            policy: Policy::RoundRobin,
        });
        let cases: Vec<(&str, Result<LoadbalanceConfig, &str>)> = vec![
            ("loadbalance", rr),
            ("loadbalance round_robin", rr),
            (
                "loadbalance weighted /etc/weights",
                Err(
                    "Corefile:2:13: plugin/loadbalance: policy 'weighted' is not supported in this build, expected round_robin",
                ),
            ),
            (
                "loadbalance random",
                Err("unknown policy 'random', expected round_robin"),
            ),
            (
                "loadbalance round_robin x",
                Err("unexpected argument 'x' after 'loadbalance'"),
            ),
            (
                "loadbalance {\n  prefer 10.0.0.0/8\n}",
                Err("unexpected option block, 'loadbalance' takes none"),
            ),
        ];
        for (text, want) in cases {
            let got = run(text);
            match (&got, &want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "case {text:?}"),
                (Err(g), Err(w)) => assert!(g.contains(w), "case {text:?}: {g}"),
                _ => panic!("case {text:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
