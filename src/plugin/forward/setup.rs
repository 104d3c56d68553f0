//! `forward FROM TO... [{ options }]` to a [`ForwardConfig`], with CoreDNS's defaults and checks.
//! Reads resolv.conf-format files named as upstreams; touches no socket.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::Name;

use crate::corefile::{Dispenser, Token};
use crate::dns::zone;
use crate::plugin::SetupError;

/// CoreDNS's limit on upstreams per `forward`.
const MAX_UPSTREAMS: usize = 15;
const DEFAULT_PORT: u16 = 53;

/// How an upstream is picked for each query.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Policy {
    #[default]
    Random,
    RoundRobin,
    Sequential,
}

/// Files of the `tls [CERT KEY [CA]]` option, resolved against the Corefile's directory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    pub(crate) cert: Option<PathBuf>,
    pub(crate) key: Option<PathBuf>,
    pub(crate) ca: Option<PathBuf>,
}

/// One `forward` directive, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ForwardConfig {
    /// The zone whose queries are forwarded (lower-case FQDN).
    pub(crate) from: Name,
    /// Subdomains of `from` not forwarded.
    pub(crate) except: Vec<Name>,
    /// Upstreams in the order given (resolv.conf files expanded), at most 15.
    pub(crate) upstreams: Vec<SocketAddr>,
    pub(crate) force_tcp: bool,
    pub(crate) prefer_udp: bool,
    /// Idle upstream connections are closed after this long (default 10s).
    pub(crate) expire: Duration,
    /// Failed queries before an upstream is marked down; 0 never marks it down (default 2).
    pub(crate) max_fails: u32,
    /// Interval of health probes for an upstream that failed (default 0.5s).
    pub(crate) health_check: Duration,
    /// Whether health probes set RD (default true; `no_rec` clears it).
    pub(crate) health_check_recursion: bool,
    /// Name the health probe asks NS for (default `.`).
    pub(crate) health_check_domain: Name,
    pub(crate) policy: Policy,
    /// Most queries in flight; beyond it queries are REFUSED. 0 is no limit (default).
    pub(crate) max_concurrent: u32,
    pub(crate) tls: Option<TlsFiles>,
    pub(crate) tls_servername: Option<String>,
    /// Rcodes on which the query goes on to the next plugin.
    pub(crate) next: Vec<ResponseCode>,
    /// Rcodes on which another upstream is tried.
    pub(crate) failover: Vec<ResponseCode>,
    /// Most idle connections kept per upstream; 0 is no limit (default).
    pub(crate) max_idle_conns: u32,
    /// With every upstream down, answer SERVFAIL instead of trying one anyway.
    pub(crate) failfast_all_unhealthy_upstreams: bool,
}

impl ForwardConfig {
    fn new(from: Name) -> Self {
        ForwardConfig {
            from,
            except: Vec::new(),
            upstreams: Vec::new(),
            force_tcp: false,
            prefer_udp: false,
            expire: Duration::from_secs(10),
            max_fails: 2,
            health_check: Duration::from_millis(500),
            health_check_recursion: true,
            health_check_domain: Name::root(),
            policy: Policy::Random,
            max_concurrent: 0,
            tls: None,
            tls_servername: None,
            next: Vec::new(),
            failover: Vec::new(),
            max_idle_conns: 0,
            failfast_all_unhealthy_upstreams: false,
        }
    }
}

/// Parses one `forward` directive; relative file names resolve against `base_dir`.
pub(crate) fn parse(d: &mut Dispenser<'_>, base_dir: &Path) -> Result<ForwardConfig, SetupError> {
    let from_tok = d.arg("the zone to forward (FROM)")?;
    let mut config = ForwardConfig::new(first_zone(d, from_tok)?);
    for tok in d.at_least_one("at least one upstream (TO)")? {
        config.upstreams.extend(upstreams(d, tok, base_dir)?);
        if config.upstreams.len() > MAX_UPSTREAMS {
            return Err(d.error_at(
                tok,
                format!("more than {MAX_UPSTREAMS} upstreams, expected at most {MAX_UPSTREAMS}"),
            ));
        }
    }
    d.options(|line| option(line, &mut config, base_dir))?;
    Ok(config)
}

/// One line of the option block.
fn option(
    line: &mut Dispenser<'_>,
    config: &mut ForwardConfig,
    base_dir: &Path,
) -> Result<(), SetupError> {
    match line.name().text.as_str() {
        "except" => {
            for tok in line.at_least_one("one or more zones")? {
                config.except.extend(
                    zone::normalize(&tok.text).map_err(|e| line.error_at(tok, e.to_string()))?,
                );
            }
        }
        "force_tcp" => config.force_tcp = true,
        "prefer_udp" => config.prefer_udp = true,
        "failfast_all_unhealthy_upstreams" => config.failfast_all_unhealthy_upstreams = true,
        "expire" => config.expire = line.duration_arg()?,
        "max_fails" => config.max_fails = number(line)?,
        "max_concurrent" => config.max_concurrent = number(line)?,
        "max_idle_conns" => config.max_idle_conns = number(line)?,
        "health_check" => {
            config.health_check = line.duration_arg()?;
            while let Some(tok) = line.next_arg() {
                match tok.text.as_str() {
                    "no_rec" => config.health_check_recursion = false,
                    "domain" => {
                        let tok = line.arg("a domain name")?;
                        config.health_check_domain = domain(line, tok)?;
                    }
                    other => {
                        return Err(line.error_at(tok,
                            format!(
                                "unknown health_check option '{other}', expected no_rec or domain NAME"
                            ),
                        ));
                    }
                }
            }
        }
        "policy" => {
            let tok = line.arg("random, round_robin or sequential")?;
            config.policy = match tok.text.as_str() {
                "random" => Policy::Random,
                "round_robin" => Policy::RoundRobin,
                "sequential" => Policy::Sequential,
                other => {
                    return Err(line.error_at(
                        tok,
                        format!(
                            "unknown policy '{other}', expected random, round_robin or sequential"
                        ),
                    ));
                }
            };
        }
        "tls" => config.tls = Some(tls(line, base_dir)?),
        "tls_servername" => {
            let tok = line.arg("a server name")?;
            config.tls_servername = Some(tok.text.clone());
        }
        "next" => config.next.extend(rcodes(line, false)?),
        "failover" => config.failover.extend(rcodes(line, true)?),
        _ => return Err(line.unknown_property()),
    }
    Ok(())
}

/// FROM: a zone; a CIDR that is not on an octet boundary uses its first reverse zone, as
/// CoreDNS does.
fn first_zone(d: &Dispenser<'_>, tok: &Token) -> Result<Name, SetupError> {
    let zones = zone::normalize(&tok.text).map_err(|e| d.error_at(tok, e.to_string()))?;
    if zones.len() > 1 {
        tracing::warn!(
            location = %tok.location,
            from = %tok.text,
            using = %zones[0],
            "forward: CIDR expands to several zones, only the first is used"
        );
    }
    zones
        .into_iter()
        .next()
        .ok_or_else(|| d.error_at(tok, format!("'{}' names no zone", tok.text)))
}

fn domain(d: &Dispenser<'_>, tok: &Token) -> Result<Name, SetupError> {
    let invalid = || {
        d.error_at(
            tok,
            format!("invalid domain name '{}', expected a domain name", tok.text),
        )
    };
    let mut name = Name::from_ascii(&tok.text).map_err(|_| invalid())?;
    if tok.text.is_empty() {
        return Err(invalid());
    }
    name.set_fqdn(true);
    Ok(name.to_lowercase())
}

fn number(line: &mut Dispenser<'_>) -> Result<u32, SetupError> {
    let tok = line.arg("a number")?;
    tok.text.parse().map_err(|_| {
        line.error_at(
            tok,
            format!(
                "invalid number '{}' for {}, expected a non-negative integer",
                tok.text,
                line.name().text
            ),
        )
    })
}

fn tls(line: &mut Dispenser<'_>, base_dir: &Path) -> Result<TlsFiles, SetupError> {
    let args = line.remaining_args();
    if let Some(extra) = args.get(3) {
        return Err(line.error_at(
            extra,
            format!(
                "unexpected argument '{}', expected tls [CERT KEY [CA]]",
                extra.text
            ),
        ));
    }
    let mut paths = Vec::with_capacity(args.len());
    for tok in args {
        let path = base_dir.join(&tok.text);
        if let Err(e) = std::fs::metadata(&path) {
            return Err(line.error_at(tok, format!("cannot read '{}': {e}", path.display())));
        }
        paths.push(path);
    }
    let mut paths = paths.into_iter();
    Ok(match args.len() {
        0 => TlsFiles::default(),
        1 => TlsFiles {
            ca: paths.next(),
            ..TlsFiles::default()
        },
        _ => TlsFiles {
            cert: paths.next(),
            key: paths.next(),
            ca: paths.next(),
        },
    })
}

/// Response codes by their mnemonic (RFC 6895 names, any case).
fn rcode(text: &str) -> Option<ResponseCode> {
    let code: u16 = match text.to_ascii_uppercase().as_str() {
        "NOERROR" => 0,
        "FORMERR" => 1,
        "SERVFAIL" => 2,
        "NXDOMAIN" => 3,
        "NOTIMP" => 4,
        "REFUSED" => 5,
        "YXDOMAIN" => 6,
        "YXRRSET" => 7,
        "NXRRSET" => 8,
        "NOTAUTH" => 9,
        "NOTZONE" => 10,
        "BADSIG" | "BADVERS" => 16,
        "BADKEY" => 17,
        "BADTIME" => 18,
        "BADMODE" => 19,
        "BADNAME" => 20,
        "BADALG" => 21,
        "BADTRUNC" => 22,
        "BADCOOKIE" => 23,
        _ => return None,
    };
    Some(<ResponseCode as From<u16>>::from(code))
}

fn rcodes(line: &mut Dispenser<'_>, failover: bool) -> Result<Vec<ResponseCode>, SetupError> {
    let args = line.at_least_one("one or more rcodes such as SERVFAIL")?;
    let mut codes = Vec::with_capacity(args.len());
    for tok in args {
        let Some(code) = rcode(&tok.text) else {
            return Err(line.error_at(
                tok,
                format!(
                    "'{}' is not a valid rcode, expected a name such as SERVFAIL or REFUSED",
                    tok.text
                ),
            ));
        };
        if failover && code == ResponseCode::NoError {
            return Err(line.error_at(
                tok,
                "NOERROR cannot be a failover rcode, expected an error rcode",
            ));
        }
        codes.push(code);
    }
    Ok(codes)
}

/// The addresses one TO argument stands for.
fn upstreams(
    d: &Dispenser<'_>,
    tok: &Token,
    base_dir: &Path,
) -> Result<Vec<SocketAddr>, SetupError> {
    let text = tok.text.as_str();
    let lower = text.to_ascii_lowercase();
    if lower.starts_with("tls://") || lower.starts_with("https://") {
        return Err(d.error_at(
            tok,
            format!(
                "upstream '{text}': DNS over TLS and HTTPS are not supported in this build, \
                 expected IP[:PORT], dns://IP[:PORT] or a resolv.conf file"
            ),
        ));
    }
    let (addr_text, explicit) = match lower.strip_prefix("dns://") {
        Some(_) => (&text["dns://".len()..], true),
        None => (text, false),
    };
    if let Some(addr) = address(addr_text).map_err(|m| d.error_at(tok, m))? {
        return Ok(vec![addr]);
    }
    if explicit {
        return Err(d.error_at(
            tok,
            format!("upstream '{text}' is not an IP address, expected dns://IP[:PORT]"),
        ));
    }
    if text.contains("://") {
        return Err(d.error_at(
            tok,
            format!(
                "upstream '{text}' has an unknown scheme, expected IP[:PORT], dns://IP[:PORT] \
                 or a resolv.conf file"
            ),
        ));
    }
    let path = base_dir.join(text);
    let content = std::fs::read_to_string(&path).map_err(|e| {
        d.error_at(
            tok,
            format!(
                "upstream '{text}' is not an IP address and '{}' cannot be read as a \
                 resolv.conf file: {e}",
                path.display()
            ),
        )
    })?;
    let servers = resolv_conf_nameservers(&content, &path);
    if servers.is_empty() {
        return Err(d.error_at(
            tok,
            format!(
                "no usable nameserver lines in '{}', expected at least one",
                path.display()
            ),
        ));
    }
    Ok(servers)
}

/// `IP`, `IP:PORT` or `[IPv6]:PORT`; `Ok(None)` when `text` is not written as an address.
fn address(text: &str) -> Result<Option<SocketAddr>, String> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(Some(SocketAddr::new(ip, DEFAULT_PORT)));
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Ok(None);
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let Ok(ip) = host.parse::<IpAddr>() else {
        return Ok(None);
    };
    if ip.is_ipv6() && !text.starts_with('[') {
        return Ok(None);
    }
    match port.parse::<u16>() {
        Ok(port) if port > 0 => Ok(Some(SocketAddr::new(ip, port))),
        _ => Err(format!(
            "invalid port '{port}' in upstream '{text}', expected 1-65535"
        )),
    }
}

/// The `nameserver` addresses of a resolv.conf file, port 53. Scoped IPv6 addresses
/// (`fe80::1%eth0`) and unparsable lines are skipped with a warning.
fn resolv_conf_nameservers(content: &str, path: &Path) -> Vec<SocketAddr> {
    let mut servers = Vec::new();
    for line in content.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let Some(value) = words.next() else { continue };
        match value.parse::<IpAddr>() {
            Ok(ip) => servers.push(SocketAddr::new(ip, DEFAULT_PORT)),
            Err(_) => tracing::warn!(
                file = %path.display(),
                nameserver = value,
                "forward: skipping a nameserver that is not a plain IP address"
            ),
        }
    }
    servers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corefile::parse_str_with_env;

    fn run(text: &str, base: &Path) -> Result<ForwardConfig, String> {
        let corefile = format!(".:53 {{\n{text}\n}}\n");
        let cf = parse_str_with_env(&corefile, "Corefile", base, &|_| None)
            .map_err(|e| e.to_string())?;
        let d = &cf.blocks[0].directives[0];
        parse(&mut Dispenser::new(d), base).map_err(|e| e.to_string())
    }

    fn name(text: &str) -> Name {
        Name::from_ascii(text).expect("test name")
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("test address")
    }

    fn base_config(upstreams: &[&str]) -> ForwardConfig {
        ForwardConfig {
            upstreams: upstreams.iter().map(|a| addr(a)).collect(),
            ..ForwardConfig::new(Name::root())
        }
    }

    #[test]
    fn forward_setup_cases() {
        let dir = tempfile::tempdir().expect("temp dir");
        let base = dir.path();
        std::fs::write(
            base.join("resolv.conf"),
            "# comment\nsearch example.org\nnameserver 10.0.0.10\nnameserver fe80::1%eth0\n\
             nameserver 2001:db8::53\noptions ndots:5\n",
        )
        .expect("write resolv.conf");
        std::fs::write(base.join("empty.conf"), "search x\n").expect("write");
        std::fs::write(base.join("ca.pem"), "").expect("write");
        std::fs::write(base.join("cert.pem"), "").expect("write");
        std::fs::write(base.join("key.pem"), "").expect("write");

        let ok = |c: ForwardConfig| Ok::<_, &str>(c);
        let cases: Vec<(&str, Result<ForwardConfig, &str>)> = vec![
            ("forward . 1.1.1.1", ok(base_config(&["1.1.1.1:53"]))),
            (
                "forward . 1.1.1.1:5353 dns://8.8.8.8 dns://9.9.9.9:54 ::1 [2001:db8::1]:5300",
                ok(base_config(&[
                    "1.1.1.1:5353",
                    "8.8.8.8:53",
                    "9.9.9.9:54",
                    "[::1]:53",
                    "[2001:db8::1]:5300",
                ])),
            ),
            (
                "forward . resolv.conf",
                ok(base_config(&["10.0.0.10:53", "[2001:db8::53]:53"])),
            ),
            (
                "forward Example.ORG 1.1.1.1",
                ok(ForwardConfig {
                    from: name("example.org."),
                    ..base_config(&["1.1.1.1:53"])
                }),
            ),
            (
                "forward 10.0.0.0/8 1.1.1.1",
                ok(ForwardConfig {
                    from: name("10.in-addr.arpa."),
                    ..base_config(&["1.1.1.1:53"])
                }),
            ),
            (
                "forward . 1.1.1.1 {\n  except Cluster.local 10.0.0.0/15\n  force_tcp\n  prefer_udp\n  \
                 expire 1m30s\n  max_fails 0\n  health_check 2s no_rec domain Example.com\n  \
                 policy sequential\n  max_concurrent 1000\n  tls_servername dns.example\n  \
                 next NXDOMAIN servfail\n  failover REFUSED\n  max_idle_conns 8\n  \
                 failfast_all_unhealthy_upstreams\n}",
                ok(ForwardConfig {
                    except: vec![
                        name("cluster.local."),
                        name("0.10.in-addr.arpa."),
                        name("1.10.in-addr.arpa."),
                    ],
                    force_tcp: true,
                    prefer_udp: true,
                    expire: Duration::from_secs(90),
                    max_fails: 0,
                    health_check: Duration::from_secs(2),
                    health_check_recursion: false,
                    health_check_domain: name("example.com."),
                    policy: Policy::Sequential,
                    max_concurrent: 1000,
                    tls_servername: Some("dns.example".to_owned()),
                    next: vec![ResponseCode::NXDomain, ResponseCode::ServFail],
                    failover: vec![ResponseCode::Refused],
                    max_idle_conns: 8,
                    failfast_all_unhealthy_upstreams: true,
                    ..base_config(&["1.1.1.1:53"])
                }),
            ),
            (
                "forward . 1.1.1.1 {\n  policy round_robin\n  tls\n}",
                ok(ForwardConfig {
                    policy: Policy::RoundRobin,
                    tls: Some(TlsFiles::default()),
                    ..base_config(&["1.1.1.1:53"])
                }),
            ),
            (
                "forward . 1.1.1.1 {\n  tls ca.pem\n}",
                ok(ForwardConfig {
                    tls: Some(TlsFiles {
                        ca: Some(base.join("ca.pem")),
                        ..TlsFiles::default()
                    }),
                    ..base_config(&["1.1.1.1:53"])
                }),
            ),
            (
                "forward . 1.1.1.1 {\n  tls cert.pem key.pem ca.pem\n}",
                ok(ForwardConfig {
                    tls: Some(TlsFiles {
                        cert: Some(base.join("cert.pem")),
                        key: Some(base.join("key.pem")),
                        ca: Some(base.join("ca.pem")),
                    }),
                    ..base_config(&["1.1.1.1:53"])
                }),
            ),
            ("forward . 1.1.1.1 {\n}", ok(base_config(&["1.1.1.1:53"]))),
            // Negatives.
            (
                "forward",
                Err(
                    "Corefile:2:9: plugin/forward: missing argument, expected the zone to forward (FROM)",
                ),
            ),
            (
                "forward .",
                Err(
                    "Corefile:2:11: plugin/forward: missing argument, expected at least one upstream (TO)",
                ),
            ),
            (
                "forward a..b 1.1.1.1",
                Err("Corefile:2:9: plugin/forward: invalid zone 'a..b'"),
            ),
            (
                "forward . tls://1.1.1.1",
                Err(
                    "Corefile:2:11: plugin/forward: upstream 'tls://1.1.1.1': DNS over TLS and HTTPS are not supported",
                ),
            ),
            (
                "forward . https://dns.google/dns-query",
                Err("are not supported in this build"),
            ),
            (
                "forward . dns://resolver",
                Err("upstream 'dns://resolver' is not an IP address"),
            ),
            ("forward . grpc://1.1.1.1", Err("has an unknown scheme")),
            (
                "forward . 1.1.1.1:0",
                Err("invalid port '0' in upstream '1.1.1.1:0', expected 1-65535"),
            ),
            ("forward . 1.1.1.1:70000", Err("invalid port '70000'")),
            ("forward . [::1]:x", Err("invalid port 'x'")),
            (
                "forward . 1.1.1.1 missing.conf",
                Err(
                    "Corefile:2:19: plugin/forward: upstream 'missing.conf' is not an IP address and",
                ),
            ),
            ("forward . empty.conf", Err("no usable nameserver lines in")),
            (
                "forward . 1.1.1.1 1.1.1.2 1.1.1.3 1.1.1.4 1.1.1.5 1.1.1.6 1.1.1.7 1.1.1.8 \
                 1.1.1.9 1.1.1.10 1.1.1.11 1.1.1.12 1.1.1.13 1.1.1.14 1.1.1.15 1.1.1.16",
                Err("more than 15 upstreams, expected at most 15"),
            ),
            (
                "forward . 1.1.1.1 {\n  bogus\n}",
                Err("Corefile:3:3: plugin/forward: unknown property 'bogus'"),
            ),
            (
                "forward . 1.1.1.1 {\n  force_tcp yes\n}",
                Err("Corefile:3:13: plugin/forward: unexpected argument 'yes' after 'force_tcp'"),
            ),
            (
                "forward . 1.1.1.1 {\n  except\n}",
                Err("Corefile:3:10: plugin/forward: missing argument, expected one or more zones"),
            ),
            (
                "forward . 1.1.1.1 {\n  expire\n}",
                Err("missing argument, expected a duration"),
            ),
            (
                "forward . 1.1.1.1 {\n  expire 10\n}",
                Err("Corefile:3:10: plugin/forward: invalid duration '10'"),
            ),
            (
                "forward . 1.1.1.1 {\n  expire 1s 2s\n}",
                Err("unexpected argument '2s'"),
            ),
            (
                "forward . 1.1.1.1 {\n  max_fails -1\n}",
                Err("invalid number '-1' for max_fails, expected a non-negative integer"),
            ),
            (
                "forward . 1.1.1.1 {\n  max_concurrent lots\n}",
                Err("invalid number 'lots' for max_concurrent"),
            ),
            (
                "forward . 1.1.1.1 {\n  max_idle_conns\n}",
                Err("missing argument, expected a number"),
            ),
            (
                "forward . 1.1.1.1 {\n  health_check\n}",
                Err("missing argument, expected a duration"),
            ),
            (
                "forward . 1.1.1.1 {\n  health_check 1s bogus\n}",
                Err("unknown health_check option 'bogus'"),
            ),
            (
                "forward . 1.1.1.1 {\n  health_check 1s domain\n}",
                Err("missing argument, expected a domain name"),
            ),
            (
                "forward . 1.1.1.1 {\n  health_check 1s domain a..b\n}",
                Err("invalid domain name 'a..b'"),
            ),
            (
                "forward . 1.1.1.1 {\n  policy fastest\n}",
                Err("unknown policy 'fastest'"),
            ),
            (
                "forward . 1.1.1.1 {\n  policy\n}",
                Err("missing argument, expected random, round_robin or sequential"),
            ),
            (
                "forward . 1.1.1.1 {\n  tls a b c d\n}",
                Err("unexpected argument 'd', expected tls [CERT KEY [CA]]"),
            ),
            (
                "forward . 1.1.1.1 {\n  tls nothere.pem\n}",
                Err("cannot read '"),
            ),
            (
                "forward . 1.1.1.1 {\n  tls_servername\n}",
                Err("missing argument, expected a server name"),
            ),
            (
                "forward . 1.1.1.1 {\n  next\n}",
                Err("expected one or more rcodes"),
            ),
            (
                "forward . 1.1.1.1 {\n  next BOGUS\n}",
                Err("'BOGUS' is not a valid rcode"),
            ),
            (
                "forward . 1.1.1.1 {\n  failover NOERROR\n}",
                Err("NOERROR cannot be a failover rcode"),
            ),
            (
                "forward . 1.1.1.1 {\n  force_tcp {\n  }\n}",
                Err("unexpected option block, 'force_tcp' takes none"),
            ),
        ];
        for (text, want) in cases {
            let got = run(text, base);
            match (&got, &want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "case {text:?}"),
                (Err(g), Err(w)) => assert!(g.contains(w), "case {text:?}: {g}"),
                _ => panic!("case {text:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn setup_adds_the_plugin() {
        let cf = parse_str_with_env(
            ".:53 {\n  forward . 1.1.1.1 {\n    max_concurrent 1000\n  }\n}",
            "Corefile",
            Path::new("."),
            &|_| None,
        )
        .expect("parses");
        let mut block = crate::plugin::BlockSetup::default();
        let d = &cf.blocks[0].directives[0];
        super::super::setup(&mut Dispenser::new(d), &mut block).expect("valid");
        assert!(block.inactive.is_empty());
        let names: Vec<_> = block.plugins.iter().map(|p| p.name()).collect();
        assert_eq!(names, ["forward"]);
    }
}
