//! The `reload` directive: parsed here into a [`ReloadConfig`] the block records as a process-wide
//! setting. The reload itself (schedule, read, compare, rebuild, swap, metrics) is
//! `crate::lifecycle::reload`'s: a plugin never sees the servers.
#![doc = include_str!("README.md")]

use std::time::Duration;

use crate::corefile::Dispenser;
use crate::plugin::{BlockSetup, SetupError};

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_JITTER: Duration = Duration::from_secs(15);
const MIN_INTERVAL: Duration = Duration::from_secs(2);
const MIN_JITTER: Duration = Duration::from_secs(1);

/// `reload [INTERVAL [JITTER]]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReloadConfig {
    /// Time between checks (default 30s, at least 2s).
    pub interval: Duration,
    /// Random spread around each interval (default 15s, at least 1s, at most interval/2).
    pub jitter: Duration,
}

/// The next argument as a duration of at least `min`, or `default` when there is none.
fn at_least(
    d: &mut Dispenser<'_>,
    default: Duration,
    min: Duration,
    what: &str,
) -> Result<Duration, SetupError> {
    let Some(tok) = d.next_arg() else {
        return Ok(default);
    };
    let value = d.duration(tok)?;
    if value < min {
        return Err(d.error_at(
            tok,
            format!(
                "{what} '{}' is too short, expected at least {min:?}",
                tok.text
            ),
        ));
    }
    Ok(value)
}

/// Parses a `reload` directive.
pub(crate) fn parse(d: &mut Dispenser<'_>) -> Result<ReloadConfig, SetupError> {
    let interval = at_least(d, DEFAULT_INTERVAL, MIN_INTERVAL, "interval")?;
    let jitter = at_least(d, DEFAULT_JITTER, MIN_JITTER, "jitter")?;
    d.end()?;
    d.no_block()?;
    Ok(ReloadConfig {
        interval,
        jitter: jitter.min(interval / 2),
    })
}

/// Parses and validates a `reload` directive and records it as the block's process setting.
pub(crate) fn setup(d: &mut Dispenser<'_>, block: &mut BlockSetup) -> Result<(), SetupError> {
    block.process.insert(parse(d)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Result<ReloadConfig, String> {
        crate::plugin::test_support::parse_first(text, parse)
    }

    fn config(interval: u64, jitter_ms: u64) -> Result<ReloadConfig, &'static str> {
        Ok(ReloadConfig {
            interval: Duration::from_secs(interval),
            jitter: Duration::from_millis(jitter_ms),
        })
    }

    #[test]
    fn reload_setup_cases() {
        let cases: Vec<(&str, Result<ReloadConfig, &str>)> = vec![
            ("reload", config(30, 15_000)),
            ("reload 10s", config(10, 5_000)),
            ("reload 2s", config(2, 1_000)),
            ("reload 1m 20s", config(60, 20_000)),
            ("reload 1m 40s", config(60, 30_000)),
            ("reload 5s 1s", config(5, 1_000)),
            (
                "reload 1s",
                Err(
                    "Corefile:2:8: plugin/reload: interval '1s' is too short, expected at least 2s",
                ),
            ),
            (
                "reload 10s 500ms",
                Err(
                    "Corefile:2:12: plugin/reload: jitter '500ms' is too short, expected at least 1s",
                ),
            ),
            ("reload often", Err("invalid duration 'often'")),
            ("reload 10s x", Err("invalid duration 'x'")),
            (
                "reload 10s 2s 3s",
                Err("unexpected argument '3s' after 'reload'"),
            ),
            (
                "reload {\n  x\n}",
                Err("unexpected option block, 'reload' takes none"),
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
