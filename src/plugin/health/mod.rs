//! The `health` plugin: an HTTP `/health` endpoint that answers 200 `OK` while the process runs,
//! with an optional lame-duck delay on shutdown (during which `/health` still answers 200).
#![doc = include_str!("README.md")]

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use prometheus::{Histogram, IntCounter};

use crate::corefile::{Dispenser, HostPort};
use crate::http::{self, Reply};
use crate::metrics;
use crate::plugin::{BlockSetup, Hook, SetupError, StartContext};

const PLUGIN: &str = "health";

/// `health [ADDR] [{ lameduck DURATION }]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HealthConfig {
    /// Listen address (default `:8080`).
    pub(crate) addr: HostPort,
    /// How long to keep serving after a shutdown signal (default 0).
    pub(crate) lameduck: Duration,
}

/// Parses a `health` directive.
pub(crate) fn parse(d: &mut Dispenser<'_>) -> Result<HealthConfig, SetupError> {
    let addr = match d.next_arg() {
        Some(tok) => d.host_port(tok)?,
        None => HostPort {
            host: String::new(),
            port: 8080,
        },
    };
    d.end()?;
    let mut config = HealthConfig {
        addr,
        lameduck: Duration::ZERO,
    };
    d.options(|line| {
        match line.name().text.as_str() {
            "lameduck" => config.lameduck = line.duration_arg()?,
            _ => return Err(line.unknown_property()),
        }
        Ok(())
    })?;
    Ok(config)
}

/// Parses a `health` directive and registers its hook (no chain link: it answers no query).
pub(crate) fn setup(d: &mut Dispenser<'_>, block: &mut BlockSetup) -> Result<(), SetupError> {
    let config = parse(d)?;
    block.hooks.push(Arc::new(Health { config }));
    Ok(())
}

/// The hook: serves `/health` and holds shutdown back for `lameduck`; not in the query path.
#[derive(Debug)]
pub(crate) struct Health {
    config: HealthConfig,
}

impl Hook for Health {
    fn name(&self) -> &'static str {
        PLUGIN
    }

    fn shutdown_delay(&self) -> Option<Duration> {
        (!self.config.lameduck.is_zero()).then_some(self.config.lameduck)
    }

    fn start(&self, ctx: &StartContext) -> Vec<tokio::task::JoinHandle<()>> {
        let route = match http::serve(
            &self.config.addr,
            "/health",
            Arc::new(|| Reply::text(200, "OK")),
        ) {
            Ok(route) => route,
            Err(error) => {
                ctx.failed(error.addr, error.source);
                return Vec::new();
            }
        };
        let local = route.local_addr();
        ctx.opened("/health", local);
        vec![
            route.hold(),
            tokio::spawn(self_check(local, SELF_CHECK_INTERVAL)),
        ]
    }
}

/// How often health asks its own endpoint (CoreDNS: once per second).
const SELF_CHECK_INTERVAL: Duration = Duration::from_secs(1);

static CHECK_DURATION: LazyLock<Histogram> = LazyLock::new(|| {
    metrics::histogram(
        "health",
        "request_duration_seconds",
        "Histogram of the time (in seconds) each request took.",
        metrics::exponential_buckets(0.00025, 10.0, 5),
    )
});
static CHECK_FAILURES: LazyLock<IntCounter> = LazyLock::new(|| {
    metrics::counter(
        "health",
        "request_failures_total",
        "The number of times the health check failed.",
    )
});

/// Asks `/health` on `local` every `interval` (tokio's clock), recording the
/// `coredns_health_*` metrics.
async fn self_check(local: std::net::SocketAddr, interval: Duration) {
    LazyLock::force(&CHECK_DURATION);
    LazyLock::force(&CHECK_FAILURES);
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let start = std::time::Instant::now();
        let result = tokio::time::timeout(interval, http::get(local, "/health")).await;
        CHECK_DURATION.observe(start.elapsed().as_secs_f64());
        if !matches!(result, Ok(Ok((200, _)))) {
            CHECK_FAILURES.inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Result<HealthConfig, String> {
        crate::plugin::test_support::parse_first(text, parse)
    }

    fn config(host: &str, port: u16, lameduck: Duration) -> Result<HealthConfig, &'static str> {
        Ok(HealthConfig {
            addr: HostPort {
                host: host.to_owned(),
                port,
            },
            lameduck,
        })
    }

    #[test]
    fn health_setup_cases() {
        let cases: Vec<(&str, Result<HealthConfig, &str>)> = vec![
            ("health", config("", 8080, Duration::ZERO)),
            (
                "health 127.0.0.1:18080",
                config("127.0.0.1", 18080, Duration::ZERO),
            ),
            ("health [::1]:8080", config("::1", 8080, Duration::ZERO)),
            (
                "health {\n  lameduck 5s\n}",
                config("", 8080, Duration::from_secs(5)),
            ),
            ("health :9090 {\n}", config("", 9090, Duration::ZERO)),
            (
                "health 8080",
                Err("Corefile:2:8: plugin/health: invalid address '8080', expected HOST:PORT"),
            ),
            ("health :99999", Err("invalid address ':99999'")),
            (
                "health :8080 :8081",
                Err("unexpected argument ':8081' after 'health'"),
            ),
            (
                "health {\n  lameduck\n}",
                Err("Corefile:3:12: plugin/health: missing argument, expected a duration"),
            ),
            (
                "health {\n  lameduck soon\n}",
                Err("invalid duration 'soon'"),
            ),
            (
                "health {\n  lameduck 5s 6s\n}",
                Err("unexpected argument '6s' after 'lameduck'"),
            ),
            (
                "health {\n  bogus\n}",
                Err("Corefile:3:3: plugin/health: unknown property 'bogus'"),
            ),
            (
                "health {\n  lameduck 5s {\n    bogus\n  }\n}",
                Err("Corefile:4:5: plugin/health: unexpected option block, 'lameduck' takes none"),
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
