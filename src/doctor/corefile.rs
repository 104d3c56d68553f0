//! The `corefile` checks: the Corefile parses and builds, what this build does with each
//! directive, `forward` targets that loop back to this server or to a local stub resolver, and
//! ndots advice for the cluster zone. Pure except for reading the Corefile (and the files it
//! names) and listing the machine's interface addresses.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use hickory_proto::rr::Name;

use super::Check;
use crate::config::Config;
use crate::corefile::{self, Directive, Dispenser, Location, Token};
use crate::plugin::forward::setup::ForwardConfig;
use crate::plugin::kubernetes::config::Config as KubeConfig;
use crate::plugin::{self, Status};

const GROUP: &str = "corefile";

/// systemd-resolved's stub listener, the address most node resolv.conf files name.
const SYSTEMD_STUB: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 53));

/// One upstream of one `forward` directive.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    /// The resolv.conf-format file it was read from, when the Corefile named a file.
    pub file: Option<String>,
    pub location: Location,
}

/// One `forward` directive.
#[derive(Clone, Debug)]
pub struct Forward {
    /// Index of its server block.
    pub block: usize,
    pub location: Location,
    pub(crate) config: ForwardConfig,
    pub targets: Vec<Target>,
}

/// The `kubernetes` directive (the first one; CoreDNS setups have one).
#[derive(Clone, Debug)]
pub struct Kubernetes {
    pub block: usize,
    pub(crate) config: KubeConfig,
}

impl Kubernetes {
    /// The plugin's authoritative zones.
    pub fn zones(&self) -> &[Name] {
        &self.config.opts.zones
    }
}

/// A loaded Corefile: its syntax tree, its configuration and the directives the other checks
/// read.
pub struct Setup {
    pub path: PathBuf,
    pub base_dir: PathBuf,
    pub dns_port: u16,
    pub(crate) tree: corefile::Corefile,
    pub config: Config,
    pub forwards: Vec<Forward>,
    pub kubernetes: Option<Kubernetes>,
}

/// Reads and builds the Corefile; a failure is the `corefile.parse` check.
pub fn load(path: &Path, dns_port: u16) -> Result<Setup, Box<Check>> {
    let fail = |message: String| {
        Box::new(Check::fail(
            GROUP,
            "corefile.parse",
            message,
            "fix the Corefile at the location shown (`clusterdns -conf FILE` prints the same \
             error); every directive and option is described in the plugin READMEs",
        ))
    };
    let tree = corefile::parse_file(path).map_err(|e| fail(e.to_string()))?;
    let base_dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file = path.display().to_string();
    let config =
        Config::build(&tree, &file, &base_dir, dns_port).map_err(|e| fail(e.to_string()))?;
    let mut forwards = Vec::new();
    let mut kubernetes = None;
    for (block, server) in tree.blocks.iter().enumerate() {
        for directive in &server.directives {
            match directive.name.text.as_str() {
                "forward" => forwards.push(forward(block, directive, &base_dir).map_err(&fail)?),
                "kubernetes" if kubernetes.is_none() => {
                    let zones = config
                        .servers
                        .get(block)
                        .map(|s| s.keys.iter().map(|k| k.zone.clone()).collect::<Vec<_>>())
                        .unwrap_or_default();
                    let parsed = plugin::kubernetes::config::parse(
                        &mut Dispenser::new(directive),
                        &zones,
                        &base_dir,
                    )
                    .map_err(|e| fail(e.to_string()))?;
                    kubernetes = Some(Kubernetes {
                        block,
                        config: parsed,
                    });
                }
                _ => {}
            }
        }
    }
    Ok(Setup {
        path: path.to_path_buf(),
        base_dir,
        dns_port,
        tree,
        config,
        forwards,
        kubernetes,
    })
}

/// Parses one `forward` directive, and each of its TO arguments on its own to learn which
/// upstream came from which argument (a resolv.conf file expands to several).
fn forward(block: usize, directive: &Directive, base_dir: &Path) -> Result<Forward, String> {
    let parse = |d: &Directive| {
        plugin::forward::setup::parse(&mut Dispenser::new(d), base_dir).map_err(|e| e.to_string())
    };
    let config = parse(directive)?;
    let mut targets = Vec::new();
    if let Some((from, to)) = directive.args.split_first() {
        for tok in to {
            let single = Directive {
                name: directive.name.clone(),
                args: vec![from.clone(), tok.clone()],
                block: None,
            };
            let file =
                is_file_argument(tok).then(|| base_dir.join(&tok.text).display().to_string());
            for addr in parse(&single)?.upstreams {
                targets.push(Target {
                    addr,
                    file: file.clone(),
                    location: tok.location.clone(),
                });
            }
        }
    }
    Ok(Forward {
        block,
        location: directive.name.location.clone(),
        config,
        targets,
    })
}

/// Whether a TO argument names a resolv.conf file rather than an address.
fn is_file_argument(tok: &Token) -> bool {
    let text = tok.text.strip_prefix("dns://").unwrap_or(&tok.text);
    let host = text
        .rsplit_once(':')
        .filter(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
        .map_or(text, |(h, _)| h);
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    text.parse::<IpAddr>().is_err() && host.parse::<IpAddr>().is_err()
}

/// How an upstream address relates to this server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loop {
    /// One of this server's own listen addresses.
    OwnAddress,
    /// A local stub resolver: 127.0.0.53, or a loopback address on port 53. Inside a pod,
    /// loopback is the pod itself: clusterdns.
    LocalStub,
    /// A loopback address on another port: a local resolver that is not this server.
    LocalOther,
    /// Not a local address.
    Remote,
}

impl Setup {
    /// The kubernetes directive when it reads the Kubernetes API (not `manifests`).
    pub fn kubernetes_api(&self) -> Option<&Kubernetes> {
        self.kubernetes
            .as_ref()
            .filter(|k| k.config.manifests.is_none())
    }

    /// Every address this configuration listens on, as (IP or `None` for all addresses, port).
    fn listen(&self) -> Vec<(Option<IpAddr>, u16)> {
        let mut out = Vec::new();
        for server in &self.config.servers {
            for key in &server.keys {
                if server.bind.is_empty() {
                    out.push((None, key.port));
                }
                for ip in &server.bind {
                    out.push((Some(*ip), key.port));
                }
            }
        }
        out
    }

    /// Classifies one upstream address (`interfaces`: the machine's own addresses).
    pub fn classify(&self, addr: SocketAddr, interfaces: &[IpAddr]) -> Loop {
        let ip = canonical(addr.ip());
        let own = self.listen().iter().any(|(bound, port)| {
            *port == addr.port()
                && match bound {
                    Some(b) => {
                        canonical(*b) == ip || (b.is_unspecified() && is_local(ip, interfaces))
                    }
                    None => is_local(ip, interfaces),
                }
        });
        if own {
            Loop::OwnAddress
        } else if ip == SYSTEMD_STUB || (ip.is_loopback() && addr.port() == 53) {
            Loop::LocalStub
        } else if ip.is_loopback() || ip.is_unspecified() {
            Loop::LocalOther
        } else {
            Loop::Remote
        }
    }

    /// All `corefile` checks.
    pub fn checks(&self) -> Vec<Check> {
        let mut checks = vec![Check::ok(
            GROUP,
            "corefile.parse",
            format!(
                "{} parses: {} server block(s): {}",
                self.path.display(),
                self.config.servers.len(),
                self.config
                    .servers
                    .iter()
                    .flat_map(|s| s.keys.iter().map(ToString::to_string))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        )];
        checks.extend(self.directive_checks());
        let interfaces = interface_ips();
        checks.extend(self.loop_checks(&interfaces));
        checks.extend(self.ndots_checks());
        checks.extend(self.companion_checks());
        checks
    }

    /// One check per directive: what this build does with it.
    fn directive_checks(&self) -> Vec<Check> {
        let mut checks = Vec::new();
        for (block, server) in self.tree.blocks.iter().enumerate() {
            let inactive = self
                .config
                .servers
                .get(block)
                .map(|s| s.inactive.as_slice())
                .unwrap_or_default();
            for directive in &server.directives {
                let name = directive.name.text.as_str();
                let at = &directive.name.location;
                let id = format!("corefile.directive.{name}");
                let Some(registration) = plugin::lookup_registration(name) else {
                    continue;
                };
                let options: Vec<&str> = inactive
                    .iter()
                    .filter(|i| i.plugin == name)
                    .map(|i| i.what.as_str())
                    .collect();
                checks.push(match registration.status {
                    Status::ParseOnly => Check::warn(
                        GROUP,
                        id,
                        format!("{name} ({at}): parses, but does nothing in this build"),
                        format!("remove `{name}` or do not rely on it (see `clusterdns -plugins`)"),
                    ),
                    _ if !options.is_empty() => Check::warn(
                        GROUP,
                        id,
                        format!(
                            "{name} ({at}): active, but configured parts are not: {}",
                            options.join("; ")
                        ),
                        "remove the options this build does not have, or do not rely on them",
                    ),
                    Status::Partial(missing) => Check::ok(
                        GROUP,
                        id,
                        format!("{name} ({at}): active (not in this build: {missing})"),
                    ),
                    Status::Active => Check::ok(GROUP, id, format!("{name} ({at}): active")),
                });
            }
        }
        checks
    }

    /// `forward` targets that loop back.
    pub fn loop_checks(&self, interfaces: &[IpAddr]) -> Vec<Check> {
        let mut checks = Vec::new();
        for forward in &self.forwards {
            let mut fine = Vec::new();
            for target in &forward.targets {
                let from = target
                    .file
                    .as_ref()
                    .map(|f| format!(" (nameserver in {f})"))
                    .unwrap_or_default();
                let what = format!(
                    "forward {} ({}): upstream {}{from}",
                    forward.config.from, target.location, target.addr
                );
                match self.classify(target.addr, interfaces) {
                    Loop::OwnAddress => checks.push(Check::fail(
                        GROUP,
                        "corefile.forward.loop",
                        format!("{what} is this server's own address: every forwarded query comes back (a forwarding loop)"),
                        "forward to a resolver outside the cluster DNS (the node's upstream, e.g. `forward . 10.0.0.2`), never to clusterdns itself",
                    )),
                    Loop::LocalStub => checks.push(Check::fail(
                        GROUP,
                        "corefile.forward.loop",
                        format!("{what} is a local stub resolver: inside the pod, loopback is the pod itself, so queries loop back to clusterdns (or go nowhere)"),
                        if target.file.is_some() {
                            "point the kubelet at the real upstreams (`--resolv-conf=/run/systemd/resolve/resolv.conf` on systemd-resolved nodes) or name them in the Corefile (`forward . 10.0.0.2 10.0.0.3`)"
                        } else {
                            "name the real upstream resolvers (`forward . 10.0.0.2`) instead of a loopback address"
                        },
                    )),
                    Loop::LocalOther => fine.push(format!("{} (loopback, another port: not this server)", target.addr)),
                    Loop::Remote => fine.push(target.addr.to_string()),
                }
            }
            if !fine.is_empty() {
                checks.push(Check::ok(
                    GROUP,
                    "corefile.forward.targets",
                    format!(
                        "forward {} ({}): no loop through {}",
                        forward.config.from,
                        forward.location,
                        fine.join(", ")
                    ),
                ));
            }
        }
        checks
    }

    /// `forward` targets that are the kube-dns Service's ClusterIP or one of its endpoints (a
    /// clusterdns pod), known from the API.
    pub fn kube_dns_loops(&self, kube_dns_ips: &[IpAddr], endpoints: &[IpAddr]) -> Vec<Check> {
        let mut checks = Vec::new();
        for forward in &self.forwards {
            for target in &forward.targets {
                let ip = canonical(target.addr.ip());
                let what = if kube_dns_ips.contains(&ip) {
                    "the kube-dns Service's ClusterIP"
                } else if endpoints.contains(&ip) {
                    "a clusterdns pod (an endpoint of the kube-dns Service)"
                } else {
                    continue;
                };
                if target.addr.port() == 53 {
                    checks.push(Check::fail(
                        "kube-dns",
                        "kube-dns.forward.loop",
                        format!(
                            "forward {} ({}): upstream {} is {what}: queries come back to clusterdns (a forwarding loop)",
                            forward.config.from, target.location, target.addr
                        ),
                        "forward to the resolvers outside the cluster (the nodes' upstreams), never to the cluster DNS Service",
                    ));
                }
            }
        }
        checks
    }

    /// Plugins a cluster deployment relies on: `loop` beside `forward`, and the `health` and
    /// `ready` endpoints deploy/'s probes call.
    fn companion_checks(&self) -> Vec<Check> {
        let mut checks = Vec::new();
        let has = |block: usize, name: &str| {
            self.config
                .servers
                .get(block)
                .is_some_and(|s| s.hooks.iter().any(|h| h.name() == name))
        };
        for forward in &self.forwards {
            if !has(forward.block, "loop") {
                checks.push(Check::warn(
                    GROUP,
                    "corefile.loop",
                    format!(
                        "forward {} ({}) has no `loop` beside it: a forwarding loop is not detected at start-up, it only shows as timeouts",
                        forward.config.from, forward.location
                    ),
                    "add `loop` to the block (it stops the server with a clear error when queries come back)",
                ));
            }
        }
        if self.kubernetes.is_some() {
            let anywhere = |name: &str| (0..self.config.servers.len()).any(|b| has(b, name));
            for (name, probe, port) in [("health", "liveness", 8080), ("ready", "readiness", 8181)]
            {
                if !anywhere(name) {
                    checks.push(Check::warn(
                        GROUP,
                        format!("corefile.{name}"),
                        format!(
                            "no `{name}` directive: the Deployment's {probe} probe (:{port}) fails"
                        ),
                        format!("add `{name}` to the `.:53` block (deploy/clusterdns.yaml probes :{port})"),
                    ));
                }
            }
        }
        checks
    }

    /// Advice on the search-path amplification of ndots:5.
    fn ndots_checks(&self) -> Vec<Check> {
        let Some(k8s) = &self.kubernetes else {
            return vec![Check::warn(
                GROUP,
                "corefile.kubernetes",
                "no kubernetes directive: cluster names (SERVICE.NAMESPACE.svc.cluster.local) do not resolve",
                "add `kubernetes cluster.local in-addr.arpa ip6.arpa` to the `.:53` block",
            )];
        };
        let mut checks = Vec::new();
        let forward_zones: Vec<String> = k8s
            .zones()
            .iter()
            .filter(|z| !crate::dns::ip::is_reverse(z))
            .map(ToString::to_string)
            .collect();
        let cached = self
            .config
            .servers
            .get(k8s.block)
            .is_some_and(|s| s.chain.names().any(|n| n == "cache"));
        let search = forward_zones.first().cloned().unwrap_or_default();
        let advice = format!(
            "pods use `ndots:5` with search `<ns>.svc.{search} svc.{search} {search}`: a name with fewer than 5 dots (`example.com`) is first tried with each search suffix: 3 NXDOMAINs from the cluster zone per lookup, plus one upstream query per node search domain; clusterdns has no `autopath`, so advise workloads to query FQDNs with a trailing dot or set `dnsConfig.options: [{{name: ndots, value: \"2\"}}]`"
        );
        if cached {
            checks.push(Check::ok(
                GROUP,
                "corefile.ndots",
                format!(
                    "{advice}; `cache` keeps the upstream misses (NAME.<node search domain>) cheap"
                ),
            ));
        } else {
            checks.push(Check::warn(
                GROUP,
                "corefile.ndots",
                format!("{advice}; the kubernetes block has no `cache`, so every search-path miss outside the cluster zone goes upstream"),
                "add `cache 30` to the block with `kubernetes`",
            ));
        }
        if !forward_zones.iter().any(|z| z == "cluster.local.") {
            checks.push(Check::warn(
                GROUP,
                "corefile.cluster-domain",
                format!(
                    "the kubernetes zone is {} (not cluster.local.)",
                    forward_zones.join(" ")
                ),
                "make sure the kubelets' `--cluster-domain` (clusterDomain) is the same zone, or pods' search paths miss it",
            ));
        }
        checks
    }
}

/// `::ffff:a.b.c.d` as `a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether a server listening on every address receives what is sent to `ip`.
fn is_local(ip: IpAddr, interfaces: &[IpAddr]) -> bool {
    ip.is_loopback() || ip.is_unspecified() || interfaces.iter().any(|i| canonical(*i) == ip)
}

/// The machine's interface addresses (none if they cannot be listed).
fn interface_ips() -> Vec<IpAddr> {
    if_addrs::get_if_addrs()
        .map(|list| list.iter().map(|i| i.ip()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(text: &str, dir: &Path) -> Setup {
        let path = dir.join("Corefile");
        std::fs::write(&path, text).unwrap();
        match load(&path, 53) {
            Ok(s) => s,
            Err(check) => panic!("{check:?}"),
        }
    }

    fn loops(checks: &[Check]) -> Vec<String> {
        checks
            .iter()
            .filter(|c| c.id == "corefile.forward.loop")
            .map(|c| c.message.clone())
            .collect()
    }

    #[test]
    fn forward_loops_are_found() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("resolv.conf"),
            "search example\nnameserver 127.0.0.53\nnameserver 192.0.2.1\n",
        )
        .unwrap();
        let s = setup(
            ".:1053 {\n    bind 127.0.0.1\n    forward . 127.0.0.1:1053 8.8.8.8 127.0.0.1:5300\n}\n\
             example.org:1054 {\n    forward . resolv.conf\n}\n\
             example.net:1055 {\n    forward . [::1]:53\n}\n",
            dir.path(),
        );
        let checks = s.loop_checks(&[]);
        let no_loop = s.companion_checks();
        assert_eq!(
            no_loop.iter().filter(|c| c.id == "corefile.loop").count(),
            3
        );
        let found = loops(&checks);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(
            found[0].contains("127.0.0.1:1053 is this server's own address"),
            "{}",
            found[0]
        );
        assert!(
            found[1].contains("127.0.0.53:53 (nameserver in"),
            "{}",
            found[1]
        );
        assert!(found[1].contains("local stub resolver"), "{}", found[1]);
        assert!(
            found[2].contains("[::1]:53 is a local stub"),
            "{}",
            found[2]
        );
        let ok: Vec<&Check> = checks
            .iter()
            .filter(|c| c.id == "corefile.forward.targets")
            .collect();
        assert!(
            ok[0]
                .message
                .contains("8.8.8.8:53, 127.0.0.1:5300 (loopback, another port"),
            "{}",
            ok[0].message
        );
        assert!(ok[1].message.contains("192.0.2.1:53"), "{}", ok[1].message);
    }

    #[test]
    fn unbound_server_owns_every_local_address() {
        let dir = tempfile::tempdir().unwrap();
        let s = setup(".:53 {\n    forward . 10.1.2.3 10.9.9.9\n}\n", dir.path());
        let me: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(
            s.classify("10.1.2.3:53".parse().unwrap(), &[me]),
            Loop::OwnAddress
        );
        assert_eq!(
            s.classify("10.9.9.9:53".parse().unwrap(), &[me]),
            Loop::Remote
        );
        assert_eq!(
            s.classify("127.0.0.1:53".parse().unwrap(), &[me]),
            Loop::OwnAddress
        );
        let kube_dns = s.kube_dns_loops(&["10.9.9.9".parse().unwrap()], &[]);
        assert_eq!(kube_dns.len(), 1);
        assert!(
            kube_dns[0].message.contains("ClusterIP"),
            "{}",
            kube_dns[0].message
        );
        let pod = s.kube_dns_loops(&[], &["10.9.9.9".parse().unwrap()]);
        assert!(
            pod[0].message.contains("a clusterdns pod"),
            "{}",
            pod[0].message
        );
        assert_eq!(kube_dns[0].status, super::super::Status::Fail);
    }

    #[test]
    fn directive_status_and_ndots_advice() {
        let dir = tempfile::tempdir().unwrap();
        let s = setup(
            ".:53 {\n    errors\n    prometheus :9153\n    kubernetes cluster.local in-addr.arpa {\n        pods insecure\n    }\n}\n",
            dir.path(),
        );
        let checks = s.checks();
        let by_id = |id: &str| checks.iter().find(|c| c.id == id).unwrap();
        assert_eq!(
            by_id("corefile.directive.errors").status,
            super::super::Status::Ok
        );
        assert!(
            by_id("corefile.directive.prometheus")
                .message
                .contains("not in this build")
        );
        let ndots = by_id("corefile.ndots");
        assert_eq!(ndots.status, super::super::Status::Warn, "{ndots:?}");
        assert!(
            ndots.message.contains("svc.cluster.local."),
            "{}",
            ndots.message
        );
        assert!(checks.iter().all(|c| c.id != "corefile.cluster-domain"));
        // A cluster deployment's probes call health and ready.
        assert_eq!(by_id("corefile.health").status, super::super::Status::Warn);
        assert_eq!(by_id("corefile.ready").status, super::super::Status::Warn);
    }

    #[test]
    fn parse_errors_name_the_location() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Corefile");
        std::fs::write(&path, ".:53 {\n    nosuchplugin\n}\n").unwrap();
        let Err(check) = load(&path, 53) else {
            panic!("an unknown directive must fail")
        };
        assert_eq!(check.status, super::super::Status::Fail);
        assert!(check.message.contains("Corefile:2:5"), "{}", check.message);
    }
}
