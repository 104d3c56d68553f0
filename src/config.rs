//! Corefile syntax tree to typed configuration: server keys parsed, each directive handed to its
//! plugin's setup parser, chains built. Pure: no sockets, no tasks, so a reload can validate a new
//! Corefile without touching the running servers.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use hickory_proto::rr::Name;

use crate::corefile::{Corefile, Dispenser, Location, ServerBlock, Token};
use crate::dns::cidr;
use crate::plugin::{self, BlockSetup, Chain, Hook, ProcessSettings, SetupError};

/// The whole configuration: one entry per server block, in Corefile order.
#[derive(Debug)]
pub struct Config {
    pub servers: Vec<ServerConfig>,
}

/// One server block, ready to serve.
#[derive(Debug)]
pub struct ServerConfig {
    /// The block's keys (CIDR keys expanded into one key per reverse zone).
    pub keys: Vec<ServerKey>,
    /// Addresses from `bind`; empty means all addresses.
    pub bind: Vec<IpAddr>,
    /// The plugin chain, in CoreDNS's fixed order.
    pub chain: Arc<Chain>,
    /// Directives (or options) that parsed but are not active in this build, to log at start-up.
    pub inactive: Vec<Inactive>,
    /// Every hook of the block, chain plugins first ([`plugin::block_hooks`]): what starts,
    /// reports readiness and holds shutdown back.
    pub hooks: Vec<Arc<dyn Hook>>,
    /// Process-wide settings of the block's directives (`reload`); the first block that sets
    /// one wins.
    pub process: ProcessSettings,
}

/// A zone and port this block serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerKey {
    /// Lower-case FQDN.
    pub zone: Name,
    pub port: u16,
    pub location: Location,
}

impl fmt::Display for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.zone, self.port)
    }
}

/// Something configured that this build accepts but does not do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inactive {
    pub location: Location,
    pub plugin: &'static str,
    pub what: String,
}

/// A configuration error; every variant names the Corefile location.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{location}: invalid server key '{key}': {message}")]
    Key {
        location: Location,
        key: String,
        message: String,
    },
    #[error("{location}: cannot serve {zone}:{port}, it is already defined at {previous}")]
    DuplicateKey {
        location: Location,
        zone: String,
        port: u16,
        previous: Location,
    },
    #[error("{location}: Unknown directive '{name}'")]
    UnknownDirective { location: Location, name: String },
    #[error("{location}: plugin/{name}: this plugin can only be used once per Server Block")]
    Repeated { location: Location, name: String },
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error("{location}: no server blocks, expected e.g. '.:53 {{ ... }}'")]
    Empty { location: Location },
}

impl ConfigError {
    /// Where in the Corefile the error is.
    pub fn location(&self) -> &Location {
        match self {
            ConfigError::Key { location, .. }
            | ConfigError::DuplicateKey { location, .. }
            | ConfigError::UnknownDirective { location, .. }
            | ConfigError::Repeated { location, .. }
            | ConfigError::Empty { location } => location,
            ConfigError::Setup(e) => &e.location,
        }
    }
}

impl Config {
    /// Builds the configuration of `corefile`, whose directory is `base_dir`; keys without a
    /// port get `dns_port`. `file` names the Corefile for errors that have no token.
    pub fn build(
        corefile: &Corefile,
        file: &str,
        base_dir: &Path,
        dns_port: u16,
    ) -> Result<Config, ConfigError> {
        if corefile.blocks.is_empty() {
            return Err(ConfigError::Empty {
                location: Location {
                    file: file.into(),
                    line: 1,
                    column: 1,
                },
            });
        }
        let mut seen: HashMap<(Name, u16), Location> = HashMap::new();
        let mut servers = Vec::with_capacity(corefile.blocks.len());
        for block in &corefile.blocks {
            let mut keys = Vec::new();
            for tok in &block.keys {
                for key in parse_key(tok, dns_port)? {
                    if let Some(previous) = seen.get(&(key.zone.clone(), key.port)) {
                        return Err(ConfigError::DuplicateKey {
                            location: key.location.clone(),
                            zone: key.zone.to_string(),
                            port: key.port,
                            previous: previous.clone(),
                        });
                    }
                    seen.insert((key.zone.clone(), key.port), key.location.clone());
                    keys.push(key);
                }
            }
            servers.push(build_block(block, keys, base_dir)?);
        }
        Ok(Config { servers })
    }

    /// The process-wide setting of type `T` of the first block that has one (as CoreDNS's
    /// `reload`, which acts process-wide).
    pub fn process_setting<T: std::any::Any + Send + Sync>(&self) -> Option<&T> {
        self.servers.iter().find_map(|s| s.process.get::<T>())
    }

    /// The longest shutdown delay any hook asks for (health's `lameduck`); zero without one.
    pub fn shutdown_delay(&self) -> std::time::Duration {
        self.servers
            .iter()
            .flat_map(|s| &s.hooks)
            .filter_map(|h| h.shutdown_delay())
            .max()
            .unwrap_or_default()
    }

    /// Makes every server block without `bind` listen on `ips` instead of all addresses
    /// (tests use it to stay on loopback).
    pub fn bind_unbound_to(&mut self, ips: &[IpAddr]) {
        for server in &mut self.servers {
            if server.bind.is_empty() {
                server.bind = ips.to_vec();
            }
        }
    }
}

/// Runs each directive's setup parser and builds the block's chain.
fn build_block(
    block: &ServerBlock,
    keys: Vec<ServerKey>,
    base_dir: &Path,
) -> Result<ServerConfig, ConfigError> {
    let mut setup = BlockSetup {
        zones: keys.iter().map(|k| k.zone.clone()).collect(),
        base_dir: base_dir.to_path_buf(),
        ..BlockSetup::default()
    };
    let mut used: Vec<&str> = Vec::new();
    for directive in &block.directives {
        let name = directive.name.text.as_str();
        let Some(registration) = plugin::lookup_registration(name) else {
            return Err(ConfigError::UnknownDirective {
                location: directive.name.location.clone(),
                name: name.to_owned(),
            });
        };
        if !registration.repeatable && used.contains(&name) {
            return Err(ConfigError::Repeated {
                location: directive.name.location.clone(),
                name: name.to_owned(),
            });
        }
        used.push(name);
        (registration.setup)(&mut Dispenser::new(directive), &mut setup)?;
    }
    let inactive = setup
        .inactive
        .into_iter()
        .map(|(location, plugin, what)| Inactive {
            location,
            plugin,
            what,
        })
        .collect();
    let chain = Arc::new(Chain::new(setup.plugins));
    let hooks = plugin::block_hooks(&chain, &setup.hooks);
    Ok(ServerConfig {
        keys,
        bind: setup.bind,
        chain,
        inactive,
        hooks,
        process: setup.process,
    })
}

/// `[dns://]ZONE[:PORT]`; a CIDR zone gives one key per reverse zone.
fn parse_key(tok: &Token, dns_port: u16) -> Result<Vec<ServerKey>, ConfigError> {
    let key_err = |message: String| ConfigError::Key {
        location: tok.location.clone(),
        key: tok.text.clone(),
        message,
    };
    let mut rest = tok.text.as_str();
    if let Some((scheme, after)) = rest.split_once("://") {
        match scheme.to_ascii_lowercase().as_str() {
            "dns" => {}
            s @ ("tls" | "quic" | "grpc" | "https" | "https3") => {
                return Err(key_err(format!("scheme '{s}' is not supported")));
            }
            s => {
                return Err(key_err(format!(
                    "unknown scheme '{s}', expected dns (or no scheme)"
                )));
            }
        }
        rest = after;
    }
    let (host, port) = split_host_port(rest).map_err(key_err)?;
    let port = match port {
        None => dns_port,
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| key_err(format!("invalid port '{p}', expected 0-65535")))?,
    };
    let zones = match cidr::parse(host) {
        Ok(Some(net)) => cidr::reverse_zones(net),
        Ok(None) => vec![parse_zone(host).map_err(key_err)?],
        Err(e) => return Err(key_err(e.to_string())),
    };
    Ok(zones
        .into_iter()
        .map(|zone| ServerKey {
            zone,
            port,
            location: tok.location.clone(),
        })
        .collect())
}

/// Splits `host[:port]`, `[v6-host]:port`; a host with several colons and no brackets (an IPv6
/// CIDR) has no port.
fn split_host_port(text: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(inner) = text.strip_prefix('[') {
        let Some((host, after)) = inner.split_once(']') else {
            return Err("missing ']'".to_owned());
        };
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(format!("unexpected '{after}' after ']'")),
            },
        };
    }
    match text.matches(':').count() {
        0 => Ok((text, None)),
        1 => match text.split_once(':') {
            Some((host, port)) => Ok((host, Some(port))),
            None => Ok((text, None)),
        },
        _ => Ok((text, None)),
    }
}

/// A zone as a lower-case FQDN; empty means the root.
fn parse_zone(host: &str) -> Result<Name, String> {
    if host.is_empty() || host == "." {
        return Ok(Name::root());
    }
    let mut name =
        Name::from_ascii(host).map_err(|e| format!("'{host}' is not a domain name: {e}"))?;
    name.set_fqdn(true);
    Ok(name.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corefile::Directive;

    fn tok(text: &str, line: u32, column: u32) -> Token {
        Token {
            text: text.into(),
            location: Location {
                file: "/etc/coredns/Corefile".into(),
                line,
                column,
            },
        }
    }

    /// A block from `keys` on line `line`, directives one per following line.
    fn block(keys: &[&str], line: u32, directives: &[&[&str]]) -> ServerBlock {
        let mut column = 1;
        let keys = keys
            .iter()
            .map(|k| {
                let t = tok(k, line, column);
                column += k.len() as u32 + 1;
                t
            })
            .collect();
        let directives = directives
            .iter()
            .enumerate()
            .map(|(i, words)| Directive {
                name: tok(words[0], line + 1 + i as u32, 5),
                args: words[1..]
                    .iter()
                    .enumerate()
                    .map(|(j, w)| tok(w, line + 1 + i as u32, 12 + 10 * j as u32))
                    .collect(),
                block: None,
            })
            .collect();
        ServerBlock { keys, directives }
    }

    fn build(blocks: Vec<ServerBlock>) -> Result<Config, ConfigError> {
        Config::build(
            &Corefile { blocks },
            "/etc/coredns/Corefile",
            Path::new("/etc/coredns"),
            53,
        )
    }

    fn keys(c: &Config) -> Vec<String> {
        c.servers
            .iter()
            .flat_map(|s| s.keys.iter().map(|k| k.to_string()))
            .collect()
    }

    #[test]
    fn key_forms() {
        let c = build(vec![
            block(
                &[".:53", "dns://Cluster.Local", "example.org:1053"],
                1,
                &[&["whoami"]],
            ),
            block(
                &["10.0.0.0/15:5300", "dns://[fd00::/64]:54", "fd01::/16"],
                5,
                &[&["whoami"]],
            ),
            block(&[":8053"], 9, &[&["whoami"]]),
        ])
        .unwrap();
        assert_eq!(
            keys(&c),
            [
                ".:53",
                "cluster.local.:53",
                "example.org.:1053",
                "0.10.in-addr.arpa.:5300",
                "1.10.in-addr.arpa.:5300",
                "0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.:54",
                "1.0.d.f.ip6.arpa.:53",
                ".:8053",
            ]
        );
    }

    #[test]
    fn default_port_from_flag() {
        let c = Config::build(
            &Corefile {
                blocks: vec![block(&["."], 1, &[&["whoami"]])],
            },
            "Corefile",
            Path::new("."),
            1053,
        )
        .unwrap();
        assert_eq!(keys(&c), [".:1053"]);
    }

    #[test]
    fn key_errors() {
        let cases = [
            ("tls://.:853", "scheme 'tls' is not supported"),
            ("https://.", "scheme 'https' is not supported"),
            ("grpc://.", "scheme 'grpc' is not supported"),
            ("foo://.", "unknown scheme 'foo'"),
            (".:99999", "invalid port '99999'"),
            (".:dns", "invalid port 'dns'"),
            ("10.0.0.0/40", "is not a CIDR"),
            ("[::1", "missing ']'"),
        ];
        for (key, want) in cases {
            let e = build(vec![block(&["example.org", key], 3, &[&["whoami"]])]).unwrap_err();
            assert!(e.to_string().contains(want), "{key}: {e}");
            assert_eq!(e.location().line, 3, "{key}");
            assert_eq!(e.location().column, 13, "{key}");
            assert!(
                e.to_string().starts_with("/etc/coredns/Corefile:3:13: "),
                "{e}"
            );
        }
    }

    #[test]
    fn duplicate_zone_and_port() {
        let e = build(vec![
            block(&["example.org"], 1, &[&["whoami"]]),
            block(&["EXAMPLE.org.:53"], 4, &[&["whoami"]]),
        ])
        .unwrap_err();
        assert!(
            matches!(e, ConfigError::DuplicateKey { port: 53, .. }),
            "{e}"
        );
        assert_eq!(e.location().line, 4);
        assert!(
            e.to_string()
                .contains("already defined at /etc/coredns/Corefile:1:1")
        );
        // Same zone on another port is fine.
        build(vec![
            block(&["example.org"], 1, &[&["whoami"]]),
            block(&["example.org:1053"], 4, &[&["whoami"]]),
        ])
        .unwrap();
    }

    #[test]
    fn unknown_and_repeated_directives() {
        let e = build(vec![block(&["."], 1, &[&["whoami"], &["nosuch", "x"]])]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/etc/coredns/Corefile:3:5: Unknown directive 'nosuch'"
        );
        let e = build(vec![block(
            &["."],
            1,
            &[&["whoami"], &["errors"], &["errors"]],
        )])
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "/etc/coredns/Corefile:4:5: plugin/errors: this plugin can only be used once per Server Block"
        );
        // bind and log may repeat.
        build(vec![block(
            &["."],
            1,
            &[
                &["log"],
                &["log", "a.org"],
                &["bind", "127.0.0.1"],
                &["bind", "::1"],
            ],
        )])
        .unwrap();
    }

    #[test]
    fn setup_errors_carry_location() {
        let e = build(vec![block(&["."], 1, &[&["whoami", "extra"]])]).unwrap_err();
        assert!(matches!(e, ConfigError::Setup(_)));
        assert_eq!(e.location().line, 2);
        assert_eq!(e.location().column, 12);
        assert!(
            e.to_string()
                .starts_with("/etc/coredns/Corefile:2:12: plugin/whoami: "),
            "{e}"
        );
    }

    #[test]
    fn chain_order_and_block_setup() {
        let c = build(vec![block(
            &["example.org", "10.0.0.0/24"],
            1,
            &[&["whoami"], &["log"], &["bind", "127.0.0.1"], &["errors"]],
        )])
        .unwrap();
        let s = &c.servers[0];
        assert_eq!(
            s.chain.names().collect::<Vec<_>>(),
            ["errors", "log", "whoami"]
        );
        assert_eq!(s.bind, ["127.0.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(s.keys.len(), 2);
        assert_eq!(s.keys[1].zone.to_ascii(), "0.0.10.in-addr.arpa.");
    }

    #[test]
    fn inactive_collected() {
        let mut b = block(&["."], 1, &[&["errors"]]);
        b.directives[0].block = Some(vec![Directive {
            name: tok("stacktrace", 3, 9),
            args: vec![],
            block: None,
        }]);
        let c = build(vec![b]).unwrap();
        assert_eq!(c.servers[0].inactive.len(), 1);
        assert_eq!(c.servers[0].inactive[0].plugin, "errors");
        assert_eq!(c.servers[0].inactive[0].location.line, 3);
    }

    #[test]
    fn empty_corefile_and_empty_block() {
        let e = build(vec![]).unwrap_err();
        assert_eq!(e.location().line, 1);
        let c = build(vec![block(&["."], 1, &[])]).unwrap();
        assert!(c.servers[0].chain.is_empty());
    }

    #[test]
    fn bind_unbound() {
        let mut c = build(vec![
            block(&["a.org"], 1, &[&["whoami"]]),
            block(&["b.org"], 4, &[&["whoami"], &["bind", "::1"]]),
        ])
        .unwrap();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        c.bind_unbound_to(&[lo]);
        assert_eq!(c.servers[0].bind, [lo]);
        assert_eq!(c.servers[1].bind, ["::1".parse::<IpAddr>().unwrap()]);
    }
}
