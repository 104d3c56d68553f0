//! The `reload` plugin: the directive, the check schedule (interval ± jitter) and the reload
//! metrics. The reload itself (read, compare, rebuild, swap) is `crate::lifecycle`'s: a plugin
//! never sees the servers.
#![doc = include_str!("README.md")]

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{IntCounter, IntGaugeVec};

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

impl ReloadConfig {
    /// The wait before the next check: `interval` shifted by `draw` (uniform in `[0, 1)`) across
    /// `[-jitter, +jitter]`. The caller supplies the random draw, so tests choose it.
    pub fn next_delay(&self, draw: f64) -> Duration {
        let draw = if draw.is_finite() {
            draw.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let spread = self.jitter.mul_f64(2.0 * draw);
        // jitter <= interval / 2, so the result is never below interval / 2.
        (self.interval + spread).saturating_sub(self.jitter)
    }
}

/// `coredns_reload_failed_total`: Corefile changes that could not be applied.
static FAILED: LazyLock<IntCounter> = LazyLock::new(|| {
    crate::metrics::counter(
        "reload",
        "failed_total",
        "Counter of the number of failed reload attempts.",
    )
});

/// `coredns_reload_version_info{hash="sha512",value}`: the hash of the Corefile in use.
static VERSION: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    crate::metrics::gauge_vec(
        "reload",
        "version_info",
        "A metric with a constant '1' value labeled by hash, and value which type of hash generated.",
        &["hash", "value"],
    )
});

/// Counts one failed reload.
pub(crate) fn record_failure() {
    FAILED.inc();
}

/// Publishes the SHA-512 (hex) of the Corefile now serving, replacing the previous one.
pub(crate) fn record_version(sha512_hex: &str) {
    VERSION.reset();
    VERSION.with_label_values(&["sha512", sha512_hex]).set(1);
}

/// Registers the families (so they are exported, at 0, before the first reload).
pub(crate) fn register_metrics() {
    LazyLock::force(&FAILED);
    LazyLock::force(&VERSION);
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

/// Parses and validates a `reload` directive and records it on the block.
pub(crate) fn setup(d: &mut Dispenser<'_>, block: &mut BlockSetup) -> Result<(), SetupError> {
    block.reload = Some(parse(d)?);
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
    fn next_delay_spreads_interval_by_jitter() {
        let c = ReloadConfig {
            interval: Duration::from_secs(30),
            jitter: Duration::from_secs(15),
        };
        assert_eq!(c.next_delay(0.0), Duration::from_secs(15));
        assert_eq!(c.next_delay(0.5), Duration::from_secs(30));
        assert_eq!(c.next_delay(0.75), Duration::from_millis(37_500));
        // Out-of-range draws stay within interval ± jitter.
        assert_eq!(c.next_delay(7.0), Duration::from_secs(45));
        assert_eq!(c.next_delay(-1.0), Duration::from_secs(15));
        assert_eq!(c.next_delay(f64::NAN), Duration::from_secs(30));
        let min = ReloadConfig {
            interval: Duration::from_secs(2),
            jitter: Duration::from_secs(1),
        };
        for i in 0..100 {
            let d = min.next_delay(f64::from(i) / 100.0);
            assert!(
                d >= Duration::from_secs(1) && d < Duration::from_secs(3),
                "{d:?}"
            );
        }
    }

    #[test]
    fn metrics_render_with_coredns_names() {
        record_failure();
        record_version("abc");
        record_version("def");
        let text = crate::metrics::render();
        assert!(text.contains("coredns_reload_failed_total "), "{text}");
        assert!(
            text.contains(r#"coredns_reload_version_info{hash="sha512",value="def"} 1"#),
            "{text}"
        );
        assert!(!text.contains(r#"value="abc""#), "{text}");
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
