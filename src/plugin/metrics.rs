//! The `prometheus` plugin: Prometheus metrics over HTTP at `/metrics`. This build validates
//! the directive and registers it as inactive.

use crate::corefile::{ArgError, Dispenser, HostPort, Location, parse_host_port};
use crate::plugin::{BlockSetup, SetupError};

const PLUGIN: &str = "prometheus";

/// `prometheus [ADDR]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MetricsConfig {
    /// Listen address (default `localhost:9153`).
    pub(crate) addr: HostPort,
}

fn err(location: &Location, message: impl Into<String>) -> SetupError {
    SetupError::new(PLUGIN, location, message)
}

fn arg_err(e: ArgError) -> SetupError {
    SetupError::from_arg(PLUGIN, e)
}

/// Parses a `prometheus` directive.
pub(crate) fn parse(d: &mut Dispenser<'_>) -> Result<MetricsConfig, SetupError> {
    let addr = match d.next_arg() {
        Some(tok) => parse_host_port(&tok.text).map_err(|e| err(&tok.location, e.to_string()))?,
        None => HostPort {
            host: "localhost".to_owned(),
            port: 9153,
        },
    };
    d.expect_end().map_err(arg_err)?;
    d.expect_no_block().map_err(arg_err)?;
    Ok(MetricsConfig { addr })
}

/// Parses and validates a `prometheus` directive, then records it as not active yet.
pub(crate) fn setup(d: &mut Dispenser<'_>, block: &mut BlockSetup) -> Result<(), SetupError> {
    let config = parse(d)?;
    block.inactive.push((
        d.name().location.clone(),
        PLUGIN,
        format!("serve GET /metrics on {}", config.addr),
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Result<MetricsConfig, String> {
        crate::plugin::test_support::parse_first(text, parse)
    }

    fn config(host: &str, port: u16) -> Result<MetricsConfig, &'static str> {
        Ok(MetricsConfig {
            addr: HostPort {
                host: host.to_owned(),
                port,
            },
        })
    }

    #[test]
    fn prometheus_setup_cases() {
        let cases: Vec<(&str, Result<MetricsConfig, &str>)> = vec![
            ("prometheus", config("localhost", 9153)),
            ("prometheus :9153", config("", 9153)),
            ("prometheus 0.0.0.0:9253", config("0.0.0.0", 9253)),
            (
                "prometheus 9153",
                Err("Corefile:2:12: plugin/prometheus: invalid address '9153'"),
            ),
            (
                "prometheus :9153 :9154",
                Err("unexpected argument ':9154' after 'prometheus'"),
            ),
            (
                "prometheus {\n  path /m\n}",
                Err("Corefile:3:3: plugin/prometheus: unexpected option block"),
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
