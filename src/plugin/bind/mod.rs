//! The `bind` plugin: restricts the addresses a server block listens on.
#![doc = include_str!("README.md")]

use std::net::IpAddr;

use crate::corefile::{Dispenser, Token};
use crate::plugin::{BlockSetup, SetupError};

/// Directive name.
pub(crate) const NAME: &str = "bind";

/// Parses `bind ADDR... [{ except ADDR... }]` into `block.bind`.
pub(crate) fn setup(d: &mut Dispenser<'_>, block: &mut BlockSetup) -> Result<(), SetupError> {
    setup_with(d, block, &system_interfaces)
}

/// The machine's interfaces as (name, address) pairs; empty if they cannot be listed.
fn system_interfaces() -> Vec<(String, IpAddr)> {
    if_addrs::get_if_addrs()
        .map(|list| list.into_iter().map(|i| (i.name.clone(), i.ip())).collect())
        .unwrap_or_default()
}

/// `setup` with the interface list injected (tests).
fn setup_with(
    d: &mut Dispenser<'_>,
    block: &mut BlockSetup,
    interfaces: &dyn Fn() -> Vec<(String, IpAddr)>,
) -> Result<(), SetupError> {
    let mut addrs = Vec::new();
    for tok in d.at_least_one("an address or interface")? {
        addrs.extend(resolve(d, tok, interfaces)?);
    }
    let mut except = Vec::new();
    d.options(|line| {
        if line.name().text != "except" {
            return Err(line.unknown_property());
        }
        for tok in line.at_least_one("an address or interface")? {
            except.extend(resolve(line, tok, interfaces)?);
        }
        Ok(())
    })?;
    addrs.retain(|a| !except.contains(a));
    if addrs.is_empty() {
        return Err(d.error_at_name("no address left to bind to after except"));
    }
    for a in addrs {
        if !block.bind.contains(&a) {
            block.bind.push(a);
        }
    }
    Ok(())
}

/// An IP address, or all addresses of the interface of that name.
fn resolve(
    d: &Dispenser<'_>,
    tok: &Token,
    interfaces: &dyn Fn() -> Vec<(String, IpAddr)>,
) -> Result<Vec<IpAddr>, SetupError> {
    if let Ok(ip) = tok.text.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let found: Vec<IpAddr> = interfaces()
        .into_iter()
        .filter(|(name, _)| *name == tok.text)
        .map(|(_, ip)| ip)
        .collect();
    if found.is_empty() {
        return Err(d.error_at(
            tok,
            format!(
                "'{}' is neither an IP address nor a network interface with an address",
                tok.text
            ),
        ));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corefile::{Directive, Location};

    fn tok(text: &str, line: u32, column: u32) -> Token {
        Token {
            text: text.into(),
            location: Location {
                file: "Corefile".into(),
                line,
                column,
            },
        }
    }

    fn directive(args: &[&str], except: Option<&[&str]>) -> Directive {
        Directive {
            name: tok(NAME, 2, 5),
            args: args
                .iter()
                .enumerate()
                .map(|(i, a)| tok(a, 2, 10 + 12 * i as u32))
                .collect(),
            block: except.map(|e| {
                vec![Directive {
                    name: tok("except", 3, 9),
                    args: e.iter().map(|a| tok(a, 3, 16)).collect(),
                    block: None,
                }]
            }),
        }
    }

    fn fake() -> Vec<(String, IpAddr)> {
        vec![
            ("lo".into(), "127.0.0.1".parse().unwrap()),
            ("lo".into(), "::1".parse().unwrap()),
            ("eth0".into(), "10.1.1.1".parse().unwrap()),
        ]
    }

    fn run(args: &[&str], except: Option<&[&str]>) -> Result<Vec<IpAddr>, SetupError> {
        let d = directive(args, except);
        let mut b = BlockSetup::default();
        setup_with(&mut Dispenser::new(&d), &mut b, &fake)?;
        Ok(b.bind)
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn addresses_and_interfaces() {
        assert_eq!(
            run(&["127.0.0.1", "::1"], None).unwrap(),
            ips(&["127.0.0.1", "::1"])
        );
        assert_eq!(run(&["lo"], None).unwrap(), ips(&["127.0.0.1", "::1"]));
        assert_eq!(run(&["lo"], Some(&["::1"])).unwrap(), ips(&["127.0.0.1"]));
        assert_eq!(
            run(&["lo", "127.0.0.1"], None).unwrap(),
            ips(&["127.0.0.1", "::1"])
        );
    }

    #[test]
    fn errors() {
        let e = run(&["127.0.0.1", "nosuchif0"], None).unwrap_err();
        assert!(
            e.message.contains("'nosuchif0' is neither"),
            "{}",
            e.message
        );
        assert_eq!((e.location.line, e.location.column), (2, 22));
        let e = run(&[], None).unwrap_err();
        assert_eq!(
            e.message,
            "missing argument, expected an address or interface"
        );
        assert_eq!(e.location.column, 10);
        let e = run(&["127.0.0.1"], Some(&["127.0.0.1"])).unwrap_err();
        assert!(e.message.contains("no address left"));
        let e = run(&["127.0.0.1"], Some(&[])).unwrap_err();
        assert_eq!(
            e.message,
            "missing argument, expected an address or interface"
        );
        assert_eq!((e.location.line, e.location.column), (3, 16));
    }

    #[test]
    fn repeated_directives_add_up() {
        let mut b = BlockSetup::default();
        for args in [&["127.0.0.1"][..], &["::1", "127.0.0.1"][..]] {
            let d = directive(args, None);
            setup_with(&mut Dispenser::new(&d), &mut b, &fake).unwrap();
        }
        assert_eq!(b.bind, ips(&["127.0.0.1", "::1"]));
    }
}
