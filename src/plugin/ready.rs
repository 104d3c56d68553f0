//! The `ready` plugin: an HTTP `/ready` endpoint that answers 200 once every plugin that reports
//! readiness is ready, 503 with their names before. This build validates the directive and
//! registers it as inactive.

use crate::corefile::{ArgError, Dispenser, HostPort, Location, parse_host_port};
use crate::plugin::{BlockSetup, SetupError};

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

fn err(location: &Location, message: impl Into<String>) -> SetupError {
    SetupError::new(PLUGIN, location, message)
}

fn arg_err(e: ArgError) -> SetupError {
    SetupError::from_arg(PLUGIN, e)
}

/// Parses a `ready` directive.
pub(crate) fn parse(d: &mut Dispenser<'_>) -> Result<ReadyConfig, SetupError> {
    let addr = match d.next_arg() {
        Some(tok) => parse_host_port(&tok.text).map_err(|e| err(&tok.location, e.to_string()))?,
        None => HostPort {
            host: String::new(),
            port: 8181,
        },
    };
    d.expect_end().map_err(arg_err)?;
    let mut config = ReadyConfig {
        addr,
        monitor: Monitor::UntilReady,
    };
    for mut line in d.block() {
        line.expect_no_block().map_err(arg_err)?;
        let name = line.name();
        match name.text.as_str() {
            "monitor" => {
                let tok = line
                    .expect_arg("until-ready or continuously")
                    .map_err(arg_err)?;
                config.monitor = match tok.text.as_str() {
                    "until-ready" => Monitor::UntilReady,
                    "continuously" => Monitor::Continuously,
                    other => {
                        return Err(err(
                            &tok.location,
                            format!(
                                "unknown monitor mode '{other}', expected until-ready or continuously"
                            ),
                        ));
                    }
                };
            }
            other => {
                return Err(err(&name.location, format!("unknown property '{other}'")));
            }
        }
        line.expect_end().map_err(arg_err)?;
    }
    Ok(config)
}

/// Parses and validates a `ready` directive, then records it as not active yet.
pub(crate) fn setup(d: &mut Dispenser<'_>, block: &mut BlockSetup) -> Result<(), SetupError> {
    let config = parse(d)?;
    block.inactive.push((
        d.name().location.clone(),
        PLUGIN,
        format!("serve GET /ready on {} ({:?})", config.addr, config.monitor),
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
