//! The `ready` plugin: an HTTP `/ready` endpoint that answers 200 once every plugin of the block
//! that reports readiness is ready, 503 with their names before (and while shutting down).
#![doc = include_str!("README.md")]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tracing::info;

use crate::corefile::{Dispenser, HostPort};
use crate::http::{self, Reply};
use crate::plugin::{BlockSetup, Hook, SetupError, StartContext};

const PLUGIN: &str = "ready";

/// Whether readiness is asked again after it was first reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Monitor {
    /// Once ready, stay ready (CoreDNS's default).
    #[default]
    UntilReady,
    Continuously,
}

/// `ready [ADDR] [{ monitor until-ready|continuously }]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ReadyConfig {
    /// Listen address (default `:8181`).
    pub(crate) addr: HostPort,
    pub(crate) monitor: Monitor,
}

/// Parses a `ready` directive.
pub(crate) fn parse(d: &mut Dispenser<'_>) -> Result<ReadyConfig, SetupError> {
    let addr = match d.next_arg() {
        Some(tok) => d.host_port(tok)?,
        None => HostPort {
            host: String::new(),
            port: 8181,
        },
    };
    d.end()?;
    let mut config = ReadyConfig {
        addr,
        monitor: Monitor::UntilReady,
    };
    d.options(|line| {
        if line.name().text != "monitor" {
            return Err(line.unknown_property());
        }
        let tok = line.arg("until-ready or continuously")?;
        config.monitor = match tok.text.as_str() {
            "until-ready" => Monitor::UntilReady,
            "continuously" => Monitor::Continuously,
            other => {
                return Err(line.error_at(
                    tok,
                    format!("unknown monitor mode '{other}', expected until-ready or continuously"),
                ));
            }
        };
        Ok(())
    })?;
    Ok(config)
}

/// Parses a `ready` directive and registers its hook (no chain link: it answers no query).
pub(crate) fn setup(d: &mut Dispenser<'_>, block: &mut BlockSetup) -> Result<(), SetupError> {
    let config = parse(d)?;
    block.hooks.push(Arc::new(Ready { config }));
    Ok(())
}

/// The hook: serves `/ready`; not in the query path.
#[derive(Debug)]
pub(crate) struct Ready {
    config: ReadyConfig,
}

impl Hook for Ready {
    fn name(&self) -> &'static str {
        PLUGIN
    }

    fn start(&self, ctx: &StartContext) -> Vec<tokio::task::JoinHandle<()>> {
        let state = Arc::new(State {
            hooks: ctx
                .hooks
                .iter()
                .filter(|h| h.name() != PLUGIN && h.ready().is_some())
                .cloned()
                .collect(),
            monitor: self.config.monitor,
            reached: AtomicBool::new(false),
            logged: Mutex::new(String::new()),
        });
        match http::serve(
            &self.config.addr,
            "/ready",
            Arc::new(move || state.reply(http::shutting_down())),
        ) {
            Ok(route) => {
                ctx.opened("/ready", route.local_addr());
                vec![route.hold()]
            }
            Err(error) => {
                ctx.failed(error.addr, error.source);
                Vec::new()
            }
        }
    }
}

/// What `/ready` looks at.
struct State {
    /// The block's hooks (chain plugins included) that report readiness.
    hooks: Vec<Arc<dyn Hook>>,
    monitor: Monitor,
    /// Readiness was reached once (with `until-ready`, it is not asked again).
    reached: AtomicBool,
    /// The last list of not-ready plugins logged, so a state is logged once.
    logged: Mutex<String>,
}

impl State {
    fn reply(&self, shutting_down: bool) -> Reply {
        if shutting_down {
            return Reply::text(503, "Shutting down");
        }
        if self.monitor == Monitor::UntilReady && self.reached.load(Ordering::Acquire) {
            return Reply::text(200, "OK");
        }
        let mut not_ready: Vec<&'static str> = self
            .hooks
            .iter()
            .filter(|h| h.ready() != Some(true))
            .map(|h| h.name())
            .collect();
        not_ready.sort_unstable();
        not_ready.dedup();
        let names = not_ready.join(",");
        let mut logged = self.logged.lock().unwrap_or_else(|p| p.into_inner());
        if *logged != names {
            if names.is_empty() {
                info!("plugin/ready: all plugins ready");
            } else {
                info!("plugin/ready: Plugins not ready: {names:?}");
            }
            logged.clone_from(&names);
        }
        if names.is_empty() {
            self.reached.store(true, Ordering::Release);
            Reply::text(200, "OK")
        } else {
            Reply::text(503, names)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// A hook whose readiness the test sets.
    struct Flag(&'static str, Arc<AtomicBool>);

    impl Hook for Flag {
        fn name(&self) -> &'static str {
            self.0
        }
        fn ready(&self) -> Option<bool> {
            Some(self.1.load(Ordering::Acquire))
        }
    }

    fn state(monitor: Monitor) -> (State, Arc<AtomicBool>, Arc<AtomicBool>) {
        let k = Arc::new(AtomicBool::new(false));
        let f = Arc::new(AtomicBool::new(false));
        let hooks: Vec<Arc<dyn Hook>> = vec![
            Arc::new(Flag("kubernetes", k.clone())),
            Arc::new(Flag("forward", f.clone())),
        ];
        let s = State {
            hooks,
            monitor,
            reached: AtomicBool::new(false),
            logged: Mutex::new(String::new()),
        };
        (s, k, f)
    }

    #[test]
    fn not_ready_names_sorted_then_ok() {
        let (s, k, f) = state(Monitor::UntilReady);
        assert_eq!(s.reply(false), Reply::text(503, "forward,kubernetes"));
        f.store(true, Ordering::Release);
        assert_eq!(s.reply(false), Reply::text(503, "kubernetes"));
        k.store(true, Ordering::Release);
        assert_eq!(s.reply(false), Reply::text(200, "OK"));
        // until-ready: once ready, stays ready.
        k.store(false, Ordering::Release);
        assert_eq!(s.reply(false), Reply::text(200, "OK"));
        assert_eq!(s.reply(true), Reply::text(503, "Shutting down"));
    }

    #[test]
    fn continuously_asks_again() {
        let (s, k, f) = state(Monitor::Continuously);
        k.store(true, Ordering::Release);
        f.store(true, Ordering::Release);
        assert_eq!(s.reply(false), Reply::text(200, "OK"));
        k.store(false, Ordering::Release);
        assert_eq!(s.reply(false), Reply::text(503, "kubernetes"));
    }

    fn run(text: &str) -> Result<ReadyConfig, String> {
        crate::plugin::test_support::parse_first(text, parse)
    }

    fn config(host: &str, port: u16, monitor: Monitor) -> Result<ReadyConfig, &'static str> {
        Ok(ReadyConfig {
            addr: HostPort {
                host: host.to_owned(),
                port,
            },
            monitor,
        })
    }

    #[test]
    fn ready_setup_cases() {
        let cases: Vec<(&str, Result<ReadyConfig, &str>)> = vec![
            ("ready", config("", 8181, Monitor::UntilReady)),
            (
                "ready 127.0.0.1:18181",
                config("127.0.0.1", 18181, Monitor::UntilReady),
            ),
            (
                "ready {\n  monitor continuously\n}",
                config("", 8181, Monitor::Continuously),
            ),
            (
                "ready :1 {\n  monitor until-ready\n}",
                config("", 1, Monitor::UntilReady),
            ),
            (
                "ready localhost",
                Err("Corefile:2:7: plugin/ready: invalid address 'localhost'"),
            ),
            (
                "ready :8181 :8182",
                Err("unexpected argument ':8182' after 'ready'"),
            ),
            (
                "ready {\n  monitor\n}",
                Err("missing argument, expected until-ready or continuously"),
            ),
            (
                "ready {\n  monitor sometimes\n}",
                Err("unknown monitor mode 'sometimes'"),
            ),
            (
                "ready {\n  bogus\n}",
                Err("Corefile:3:3: plugin/ready: unknown property 'bogus'"),
            ),
            (
                "ready {\n  monitor continuously {\n    bogus\n  }\n}",
                Err("Corefile:4:5: plugin/ready: unexpected option block, 'monitor' takes none"),
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
