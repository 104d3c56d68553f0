//! The pure core of the kubernetes plugin: one question, a snapshot of the cluster index and the
//! plugin options in; the answer (or "name error", or "resolve this ExternalName target
//! elsewhere") out. Every rule of the cluster DNS spec lives here; no I/O, no locks, no clock.

use std::cell::OnceCell;
use std::collections::HashSet;
use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{CNAME, PTR, SRV, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::index::{Endpoint, Group, Index, ServiceData};
use super::model::{Port, ServiceKind, Str};
use crate::dns::ip::{from_dashed, from_reverse, is_reverse};
use crate::dns::synth;
use crate::plugin::Answer;

/// The schema version served at `dns-version.<zone>` (k8s DNS spec §2.2).
pub(crate) const DNS_SCHEMA_VERSION: &str = "1.1.0";
/// TTL of the `dns-version` TXT record, whatever the `ttl` option says.
pub(crate) const DNS_VERSION_TTL: u32 = 28800;
/// CoreDNS stops following ExternalName CNAMEs after this many.
const MAX_CNAME_CHAIN: usize = 8;

/// `pods` option (spec §2.7).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum PodMode {
    #[default]
    Disabled,
    Insecure,
    Verified,
}

/// What `lookup` needs from the plugin's configuration.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Options {
    /// Authoritative zones, lower-case FQDNs, as listed.
    pub(crate) zones: Vec<Name>,
    /// First non-reverse zone: PTR targets use it.
    pub(crate) primary: Name,
    /// `namespaces`: only these are served; `None` = all.
    pub(crate) namespaces: Option<HashSet<Str>>,
    pub(crate) pods: PodMode,
    pub(crate) endpoint_pod_names: bool,
    pub(crate) ttl: u32,
    pub(crate) noendpoints: bool,
    pub(crate) ignore_empty_service: bool,
}

impl Options {
    /// Defaults for `zones` (the first non-reverse one becomes primary).
    pub(crate) fn new(zones: Vec<Name>) -> Options {
        let primary = zones
            .iter()
            .find(|z| !is_reverse(z))
            .cloned()
            .unwrap_or_else(Name::root);
        Options {
            zones,
            primary,
            namespaces: None,
            pods: PodMode::Disabled,
            endpoint_pod_names: false,
            ttl: 5,
            noendpoints: false,
            ignore_empty_service: false,
        }
    }

    /// Index of the longest zone containing `lower` (a lower-cased name), if any.
    pub(crate) fn match_zone(&self, lower: &Name) -> Option<usize> {
        self.zones
            .iter()
            .enumerate()
            .filter(|(_, z)| z.zone_of(lower))
            .max_by_key(|(_, z)| z.iter().len())
            .map(|(i, _)| i)
    }
}

/// Everything a lookup reads.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) index: &'a Index,
    pub(crate) opts: &'a Options,
    /// The server's own non-loopback addresses (NS and `ns.dns.<zone>`, spec §2.9).
    pub(crate) self_ips: &'a [IpAddr],
}

/// One question: the name as received, its lower-case form, and the type.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Question<'a> {
    pub(crate) name: &'a Name,
    pub(crate) lower: &'a Name,
    pub(crate) qtype: RecordType,
}

/// The result of a lookup.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Outcome {
    /// A complete answer (records, NODATA with SOA, or REFUSED).
    Answer(Answer),
    /// The name does not exist here. The plugin applies fallthrough, then the not-synced rule,
    /// and otherwise answers NXDOMAIN with `soa` in authority.
    NameError { soa: Record },
    /// An ExternalName chain leads outside the plugin's zones: resolve `target` (same qtype)
    /// through the server and answer `cnames` followed by its records (spec §2.5).
    External {
        cnames: Vec<Record>,
        target: Name,
        soa: Record,
    },
}

/// A name error while looking up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct NameError;

type Found<T> = Result<T, NameError>;

/// Answer one question for the zone `zone` (an index into `opts.zones`, from `match_zone`).
pub(crate) fn lookup(ctx: &Ctx<'_>, q: &Question<'_>, zone: usize) -> Outcome {
    let Some(zone_lower) = ctx.opts.zones.get(zone) else {
        return Outcome::Answer(Answer::new(ResponseCode::ServFail));
    };
    let zone_labels = zone_lower.iter().len();
    let apex = q.lower.iter().len() == zone_labels;
    let l = Lookup {
        ctx: *ctx,
        q: *q,
        zone: OnceCell::new(),
        zone_labels,
    };
    // Built only when a reply needs it: positive answers never do.
    let soa = || synth::soa(l.zone(), ctx.opts.ttl, ctx.index.serial());

    let result: Found<(Vec<Record>, Vec<Record>)> = match q.qtype {
        RecordType::AXFR | RecordType::IXFR => {
            // Zone transfers need the `transfer` plugin, which this build does not have.
            return Outcome::Answer(Answer::new(ResponseCode::Refused));
        }
        RecordType::A | RecordType::AAAA => match l.address(q.qtype, &mut Vec::new()) {
            Ok(Addresses::Records(records)) => Ok((records, Vec::new())),
            Ok(Addresses::External { cnames, target }) => {
                return Outcome::External {
                    cnames,
                    target,
                    soa: soa(),
                };
            }
            Err(e) => Err(e),
        },
        RecordType::TXT => l.txt().map(|r| (r, Vec::new())),
        RecordType::CNAME => l.cname().map(|r| (r, Vec::new())),
        RecordType::PTR => l.ptr().map(|r| (r, Vec::new())),
        RecordType::SRV => l.srv(),
        // MX: no Kubernetes object carries mail data; existing names are NODATA.
        RecordType::MX => l.services(RecordType::MX).map(|_| (Vec::new(), Vec::new())),
        RecordType::SOA if apex => Ok((vec![soa()], Vec::new())),
        // QUIRK: SOA below the apex is NODATA, whether the name exists or not.
        RecordType::SOA => Ok((Vec::new(), Vec::new())),
        RecordType::NS if apex => Ok(l.ns()),
        // Every other type (and NS below the apex): an A lookup decides NODATA vs NXDOMAIN;
        // no records are returned (ANY is never expanded).
        _ => l
            .address(RecordType::A, &mut Vec::new())
            .map(|_| (Vec::new(), Vec::new())),
    };

    match result {
        Err(NameError) => Outcome::NameError { soa: soa() },
        Ok((answers, additionals)) => {
            let mut answer = Answer::authoritative(ResponseCode::NoError);
            if answers.is_empty() {
                answer.authorities.push(soa());
            } else {
                answer.answers = answers;
                answer.additionals = additionals;
            }
            Outcome::Answer(answer)
        }
    }
}

/// The answer for a name error, with the SOA of the matched zone.
pub(crate) fn name_error(rcode: ResponseCode, soa: Record) -> Answer {
    let mut answer = Answer::authoritative(rcode);
    answer.authorities.push(soa);
    answer
}

/// Compose an ExternalName answer from the upstream's result (spec §2.5): the CNAMEs first, then
/// the upstream's answer records (its NXDOMAIN still gives NOERROR with the CNAMEs), TC carried
/// over; an upstream failure (no `forward`, SERVFAIL, timeout) gives the CNAMEs alone, as
/// CoreDNS does.
pub(crate) fn compose_external<E>(
    cnames: Vec<Record>,
    _soa: Record,
    upstream: Result<Answer, E>,
) -> Answer {
    let mut answer = Answer::authoritative(ResponseCode::NoError);
    match upstream {
        Ok(up) => {
            answer.truncated = up.truncated;
            // Record equality ignores the TTL: (name, class, data). One set, so a large
            // upstream answer costs linear time.
            let mut seen: HashSet<(Name, DNSClass, RData)> = cnames
                .iter()
                .map(|r| (r.name.clone(), r.dns_class, r.data.clone()))
                .collect();
            answer.answers = cnames;
            for record in up.answers {
                if seen.insert((record.name.clone(), record.dns_class, record.data.clone())) {
                    answer.answers.push(record);
                }
            }
        }
        Err(_) => answer.answers = cnames,
    }
    answer
}

/// Where an entry's address came from: decides the SRV target name.
#[derive(Clone, Copy, Debug)]
enum Key<'i> {
    /// `<svc>.<ns>.svc.<zone>`
    Service(&'i Group),
    /// `<ep>.<svc>.<ns>.svc.<zone>`
    Endpoint(&'i Group, &'i str),
    /// `<label>.<ns>.pod.<zone>`
    Pod(&'i str, &'i str),
    /// The query name itself (`ns.dns.<zone>` addresses).
    Owner,
}

#[derive(Clone, Copy, Debug)]
enum Host<'i> {
    Ip(IpAddr),
    /// ExternalName target.
    Cname(&'i Name),
}

/// One (host, port) CoreDNS would produce internally for a name; records are made from these.
#[derive(Clone, Copy, Debug)]
struct Entry<'i> {
    host: Host<'i>,
    port: i32,
    key: Key<'i>,
}

/// A parsed name below the zone (spec §1).
#[derive(Debug)]
enum Parsed<'q> {
    /// Apex, `svc.<zone>`, `pod.<zone>`: exists, holds nothing.
    Bare,
    Invalid,
    Request(Request<'q>),
}

#[derive(Debug)]
struct Request<'q> {
    pod: bool,
    namespace: &'q str,
    /// Service name, or pod label for pod names; empty for the namespace node.
    service: &'q str,
    endpoint: &'q str,
    port: &'q str,
    protocol: &'q str,
}

enum Addresses {
    Records(Vec<Record>),
    External { cnames: Vec<Record>, target: Name },
}

struct Lookup<'a> {
    ctx: Ctx<'a>,
    q: Question<'a>,
    /// The matched zone in the query's letter case, cut from the query name on first use.
    zone: OnceCell<Name>,
    zone_labels: usize,
}

fn label_str(label: &[u8]) -> Option<&str> {
    std::str::from_utf8(label).ok()
}

fn strip_underscore(label: &str) -> &str {
    label.strip_prefix('_').unwrap_or(label)
}

/// An empty query port/protocol matches every port (bare-name SRV); otherwise names and
/// protocols compare case-insensitively.
fn port_matches(port: &str, protocol: &str, p: &Port) -> bool {
    (port.is_empty() || p.name.eq_ignore_ascii_case(port))
        && (protocol.is_empty() || p.protocol.eq_ignore_ascii_case(protocol))
}

impl<'a> Lookup<'a> {
    /// The matched zone, in the query's letter case (SOA owner, synthesized targets).
    fn zone(&self) -> &Name {
        self.zone
            .get_or_init(|| self.q.name.trim_to(self.zone_labels))
    }

    fn ttl(&self) -> u32 {
        self.ctx.opts.ttl
    }

    /// Labels left of the zone, rightmost first.
    fn base_labels(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let n = self.q.lower.iter().len();
        let take = n.saturating_sub(self.zone_labels);
        let lower: &'a Name = self.q.lower;
        lower.iter().take(take).rev()
    }

    fn parse(&self) -> Parsed<'a> {
        let mut labels = self.base_labels();
        let Some(kind) = labels.next() else {
            return Parsed::Bare;
        };
        let pod = match kind {
            b"svc" => false,
            b"pod" => true,
            _ => return Parsed::Invalid,
        };
        let mut request = Request {
            pod,
            namespace: "",
            service: "",
            endpoint: "",
            port: "",
            protocol: "",
        };
        let Some(ns) = labels.next() else {
            return Parsed::Bare;
        };
        let Some(ns) = label_str(ns) else {
            return Parsed::Invalid;
        };
        request.namespace = ns;
        // Up to three more labels (service, then endpoint or protocol+port); a fourth is too many.
        let mut rest: [&str; 3] = [""; 3];
        let mut count = 0;
        for label in labels {
            let Some(slot) = rest.get_mut(count) else {
                return Parsed::Invalid;
            };
            let Some(text) = label_str(label) else {
                return Parsed::Invalid;
            };
            *slot = text;
            count += 1;
        }
        match (count, rest) {
            (0, _) => {}
            (1, [service, _, _]) => request.service = service,
            (2, [service, endpoint, _]) => {
                request.service = service;
                request.endpoint = endpoint;
            }
            (_, [service, protocol, port]) => {
                request.service = service;
                request.protocol = strip_underscore(protocol);
                request.port = strip_underscore(port);
            }
        }
        Parsed::Request(request)
    }

    /// Whether the query name is `<one label>.<zone>` equal to `label`.
    fn is_single(&self, label: &[u8]) -> bool {
        let mut labels = self.base_labels();
        labels.next() == Some(label) && labels.next().is_none()
    }

    /// QUIRK: CoreDNS compares the query name with `ns.dns.<zone>` case-sensitively, so
    /// `NS.dns.<zone>` is an ordinary (non-existent) name.
    fn is_default_ns(&self) -> bool {
        let mut labels = self.base_labels();
        labels.next() == Some(b"dns".as_slice())
            && labels.next() == Some(b"ns".as_slice())
            && labels.next().is_none()
            && self
                .q
                .name
                .iter()
                .all(|label| !label.iter().any(u8::is_ascii_uppercase))
    }

    /// "Exposed" namespace (spec §7.4): allowed by `namespaces` and present in the cache.
    fn exposed(&self, namespace: &str) -> bool {
        self.ctx
            .opts
            .namespaces
            .as_ref()
            .is_none_or(|set| set.contains(namespace))
            && self.ctx.index.namespace_exists(namespace)
    }

    /// The group's endpoints, none with `noendpoints` (EndpointSlices not watched).
    fn endpoints(&self, group: &'a Group) -> &'a [Endpoint] {
        if self.ctx.opts.noendpoints {
            &[]
        } else {
            &group.endpoints
        }
    }

    /// CoreDNS `Records`: the entries a forward name stands for.
    fn records(&self) -> Found<Vec<Entry<'a>>> {
        let request = match self.parse() {
            Parsed::Bare => return Ok(Vec::new()),
            Parsed::Invalid => return Err(NameError),
            Parsed::Request(r) => r,
        };
        // A name in a reverse zone is never a service or pod name.
        if is_reverse(self.q.lower) {
            return Err(NameError);
        }
        if !self.exposed(request.namespace) {
            return Err(NameError);
        }
        if request.pod {
            self.find_pods(&request)
        } else {
            self.find_services(&request)
        }
    }

    /// CoreDNS `Services`: `records`, plus the self addresses at `ns.dns.<zone>` and no
    /// ExternalName entries for SRV.
    fn services(&self, qtype: RecordType) -> Found<Vec<Entry<'a>>> {
        if self.is_default_ns() {
            return Ok(self
                .self_addresses()
                .into_iter()
                .filter(|(_, ip)| {
                    matches!(
                        (qtype, ip),
                        (RecordType::A, IpAddr::V4(_)) | (RecordType::AAAA, IpAddr::V6(_))
                    )
                })
                .map(|(_, ip)| Entry {
                    host: Host::Ip(ip),
                    port: 0,
                    key: Key::Owner,
                })
                .collect());
        }
        let mut entries = self.records()?;
        if qtype == RecordType::SRV {
            entries.retain(|e| !matches!(e.host, Host::Cname(_)));
        }
        Ok(entries)
    }

    fn find_services(&self, r: &Request<'a>) -> Found<Vec<Entry<'a>>> {
        if r.service.is_empty() {
            // The namespace node: exists (checked by the caller), holds nothing.
            return Ok(Vec::new());
        }
        let group = self
            .ctx
            .index
            .group(r.namespace, r.service)
            .ok_or(NameError)?;
        let svc: &'a ServiceData = group.service.as_ref().ok_or(NameError)?;
        let external = matches!(svc.kind, ServiceKind::ExternalName(_));
        if self.ctx.opts.ignore_empty_service
            && !external
            && !svc.is_headless()
            && self.endpoints(group).is_empty()
        {
            return Err(NameError);
        }
        let mut entries = Vec::new();
        match &svc.kind {
            ServiceKind::ExternalName(target) => {
                // An ExternalName has no endpoints; port labels are not checked (CoreDNS).
                let Some(target) = target else {
                    return Err(NameError);
                };
                // Nothing exists below an ExternalName: `a.<svc>`, `a.b.<svc>` and
                // `_port._proto.<svc>` are NXDOMAIN for every qtype (CoreDNS 1.14.7,
                // differential tier).
                if !r.endpoint.is_empty() || !r.port.is_empty() || !r.protocol.is_empty() {
                    return Err(NameError);
                }
                entries.push(Entry {
                    host: Host::Cname(target),
                    port: -1,
                    key: Key::Service(group),
                });
            }
            kind if svc.is_headless() || !r.endpoint.is_empty() => {
                let _ = kind;
                let pod_names = self.ctx.opts.endpoint_pod_names;
                for ep in self.endpoints(group) {
                    let label = ep.label(pod_names);
                    if !r.endpoint.is_empty() && !label.eq_ignore_ascii_case(r.endpoint) {
                        continue;
                    }
                    let ports = group
                        .slice_ports
                        .get(ep.slice as usize)
                        .map_or(&[][..], |p| &p[..]);
                    for p in ports.iter().filter(|p| port_matches(r.port, r.protocol, p)) {
                        entries.push(Entry {
                            host: Host::Ip(ep.addr),
                            port: p.port,
                            key: Key::Endpoint(group, label),
                        });
                    }
                }
                if entries.is_empty() {
                    return Err(NameError);
                }
            }
            ServiceKind::ClusterIp(ips) => {
                let mut matched = false;
                for p in svc
                    .ports
                    .iter()
                    .filter(|p| port_matches(r.port, r.protocol, p))
                {
                    matched = true;
                    entries.extend(ips.iter().map(|ip| Entry {
                        host: Host::Ip(*ip),
                        port: p.port,
                        key: Key::Service(group),
                    }));
                }
                if !matched {
                    return Err(NameError);
                }
            }
            ServiceKind::Headless => return Err(NameError),
        }
        Ok(entries)
    }

    fn find_pods(&self, r: &Request<'a>) -> Found<Vec<Entry<'a>>> {
        let mode = self.ctx.opts.pods;
        if mode == PodMode::Disabled {
            return Err(NameError);
        }
        if r.service.is_empty() {
            return Ok(Vec::new());
        }
        // Extra labels left of the pod label (endpoint or port/protocol) are ignored (QUIRK).
        let ip = from_dashed(r.service).ok_or(NameError)?;
        // Verified: one entry per Pod with that IP in the namespace, as CoreDNS lists them; the
        // records are deduplicated later, but an SRV weight counts them all (100 / n).
        let count = match mode {
            PodMode::Verified => self.ctx.index.pod_count(r.namespace, ip),
            _ => 1,
        };
        if count == 0 {
            return Err(NameError);
        }
        let entry = Entry {
            host: Host::Ip(ip),
            port: 0,
            key: Key::Pod(r.service, r.namespace),
        };
        Ok(vec![entry; count as usize])
    }

    /// The NS targets and their addresses (spec §2.9): the Services whose endpoints carry one of
    /// the server's own addresses, else `ns.dns.<zone>` with the own addresses.
    fn self_addresses(&self) -> Vec<(Name, IpAddr)> {
        let mut out = Vec::new();
        let mut found = false;
        let pod_names = self.ctx.opts.endpoint_pod_names;
        if !self.ctx.opts.noendpoints {
            for ip in self.ctx.self_ips {
                for (group, _) in self.ctx.index.endpoints_by_ip(*ip) {
                    found = true;
                    let (Some(svc), Some(rel)) = (&group.service, &group.rel) else {
                        continue;
                    };
                    let Ok(name) = rel.clone().append_domain(self.zone()) else {
                        continue;
                    };
                    match &svc.kind {
                        ServiceKind::ClusterIp(ips) => {
                            out.extend(ips.iter().map(|ip| (name.clone(), *ip)))
                        }
                        ServiceKind::Headless => {
                            for ep in &group.endpoints {
                                if let Ok(target) =
                                    name.prepend_label(ep.label(pod_names).as_bytes())
                                {
                                    out.push((target, ep.addr));
                                }
                            }
                        }
                        ServiceKind::ExternalName(_) => {}
                    }
                }
            }
        }
        if !found {
            let name = synth::prefixed(&["ns", "dns"], self.zone());
            out.extend(self.ctx.self_ips.iter().map(|ip| (name.clone(), *ip)));
        }
        out
    }

    fn ns(&self) -> (Vec<Record>, Vec<Record>) {
        let mut records: Vec<Record> = Vec::new();
        let mut extra: Vec<Record> = Vec::new();
        // Glue records are equal when (owner, address) are; NS records when their targets are.
        let mut seen_glue: HashSet<(Name, IpAddr)> = HashSet::new();
        let mut seen_ns: HashSet<Name> = HashSet::new();
        for (target, ip) in self.self_addresses() {
            if seen_glue.insert((target.clone(), ip)) {
                extra.push(synth::address(target.clone(), self.ttl(), ip));
            }
            if seen_ns.insert(target.clone()) {
                records.push(synth::ns(self.q.name.clone(), self.ttl(), target));
            }
        }
        (records, extra)
    }

    /// The SRV target (and glue owner) of an entry.
    fn target_name(&self, key: Key<'a>) -> Option<Name> {
        match key {
            Key::Service(group) => group.rel.clone()?.append_domain(self.zone()).ok(),
            Key::Endpoint(group, label) => group
                .rel
                .as_ref()?
                .prepend_label(label.as_bytes())
                .ok()?
                .append_domain(self.zone())
                .ok(),
            Key::Pod(label, ns) => {
                Name::from_labels([label.as_bytes(), ns.as_bytes(), b"pod".as_slice()])
                    .ok()?
                    .append_domain(self.zone())
                    .ok()
            }
            Key::Owner => Some(self.q.name.clone()),
        }
    }

    /// A/AAAA (CoreDNS `plugin.A`/`AAAA`), following ExternalName CNAMEs. `chain` holds the
    /// CNAMEs already followed (loop and length guard).
    fn address(&self, qtype: RecordType, chain: &mut Vec<Record>) -> Found<Addresses> {
        let entries = self.services(qtype)?;
        let mut records: Vec<Record> = Vec::new();
        let mut seen: HashSet<IpAddr> = HashSet::new();
        for entry in entries {
            match entry.host {
                Host::Ip(ip) => {
                    let family_ok = matches!(
                        (qtype, ip),
                        (RecordType::A, IpAddr::V4(_)) | (RecordType::AAAA, IpAddr::V6(_))
                    );
                    if family_ok && seen.insert(ip) {
                        records.push(synth::address(self.q.name.clone(), self.ttl(), ip));
                    }
                }
                Host::Cname(target) => {
                    // `x CNAME x` is a direct loop: skip it.
                    if target == self.q.lower {
                        continue;
                    }
                    if chain.len() >= MAX_CNAME_CHAIN {
                        continue;
                    }
                    let cname = Record::from_rdata(
                        self.q.name.clone(),
                        self.ttl(),
                        RData::CNAME(CNAME(target.clone())),
                    );
                    if chain.iter().any(|c| c == &cname) {
                        continue;
                    }
                    let Some(zone) =
                        self.ctx.opts.match_zone(target).filter(|z| {
                            self.ctx.opts.zones.get(*z).is_some_and(|z| !is_reverse(z))
                        })
                    else {
                        // Outside our zones: the plugin resolves it through the server.
                        return Ok(Addresses::External {
                            cnames: vec![cname],
                            target: target.clone(),
                        });
                    };
                    let zone_labels = self.ctx.opts.zones.get(zone).map_or(0, |z| z.iter().len());
                    let inner = Lookup {
                        ctx: self.ctx,
                        q: Question {
                            name: target,
                            lower: target,
                            qtype,
                        },
                        zone: OnceCell::new(),
                        zone_labels,
                    };
                    chain.push(cname.clone());
                    let next = inner.address(qtype, chain);
                    chain.pop();
                    match next {
                        Ok(Addresses::Records(next)) if !next.is_empty() => {
                            records.push(cname);
                            records.extend(next);
                        }
                        // QUIRK: a target without records of the type drops the CNAME too.
                        Ok(Addresses::Records(_)) | Err(NameError) => {}
                        Ok(Addresses::External { mut cnames, target }) => {
                            cnames.insert(0, cname);
                            return Ok(Addresses::External { cnames, target });
                        }
                    }
                }
            }
        }
        Ok(Addresses::Records(records))
    }

    fn srv(&self) -> Found<(Vec<Record>, Vec<Record>)> {
        let entries = self.services(RecordType::SRV)?;
        // Weight from the number of internal entries, before any de-duplication (QUIRK).
        let count = u16::try_from(entries.len()).unwrap_or(u16::MAX).max(1);
        let weight = (100 / count).max(1);
        let mut records: Vec<Record> = Vec::new();
        let mut extra: Vec<Record> = Vec::new();
        // Sets, not list scans: a Service with thousands of endpoints stays linear (issue 13).
        let mut seen_srv: HashSet<(Name, u16)> = HashSet::new();
        let mut seen_glue: HashSet<(Name, IpAddr)> = HashSet::new();
        for entry in entries {
            let (Host::Ip(ip), Ok(port)) = (entry.host, u16::try_from(entry.port)) else {
                continue;
            };
            let Some(target) = self.target_name(entry.key) else {
                continue;
            };
            if seen_srv.insert((target.clone(), port)) {
                records.push(Record::from_rdata(
                    self.q.name.clone(),
                    self.ttl(),
                    RData::SRV(SRV::new(0, weight, port, target.clone())),
                ));
            }
            if seen_glue.insert((target.clone(), ip)) {
                extra.push(synth::address(target, self.ttl(), ip));
            }
        }
        Ok((records, extra))
    }

    fn txt(&self) -> Found<Vec<Record>> {
        if self.is_single(b"dns-version") {
            let data = TXT::new(vec![DNS_SCHEMA_VERSION.to_owned()]);
            return Ok(vec![Record::from_rdata(
                self.q.name.clone(),
                DNS_VERSION_TTL,
                RData::TXT(data),
            )]);
        }
        // QUIRK: a name is NODATA for TXT only if it has records of some other type, so the apex,
        // `svc.<zone>` and namespace nodes are NXDOMAIN for TXT.
        match self.records() {
            Ok(entries) if !entries.is_empty() => Ok(Vec::new()),
            _ => Err(NameError),
        }
    }

    fn cname(&self) -> Found<Vec<Record>> {
        let entries = self.services(RecordType::CNAME)?;
        Ok(match entries.first() {
            Some(Entry {
                host: Host::Cname(target),
                ..
            }) => vec![Record::from_rdata(
                self.q.name.clone(),
                self.ttl(),
                RData::CNAME(CNAME((*target).clone())),
            )],
            _ => Vec::new(),
        })
    }

    fn ptr(&self) -> Found<Vec<Record>> {
        let Some(ip) = from_reverse(self.q.lower) else {
            // Not a complete reverse name: the forward rules decide NODATA vs NXDOMAIN.
            return self.records().map(|_| Vec::new());
        };
        let opts = self.ctx.opts;
        // Only the `namespaces` option filters PTRs (QUIRK: not namespace_labels/existence).
        let allowed = |ns: &str| opts.namespaces.is_none() || self.exposed(ns);
        for group in self.ctx.index.services_by_cluster_ip(ip) {
            if !allowed(&group.namespace) {
                continue;
            }
            if let Some(target) = group
                .rel
                .clone()
                .and_then(|rel| rel.append_domain(&opts.primary).ok())
            {
                return Ok(vec![self.ptr_record(target)]);
            }
        }
        let mut records: Vec<Record> = Vec::new();
        let mut seen: HashSet<Name> = HashSet::new();
        if !opts.noendpoints {
            for (group, ep) in self.ctx.index.endpoints_by_ip(ip) {
                if !allowed(&group.namespace) {
                    continue;
                }
                let Some(target) = group
                    .rel
                    .as_ref()
                    .and_then(|rel| {
                        rel.prepend_label(ep.label(opts.endpoint_pod_names).as_bytes())
                            .ok()
                    })
                    .and_then(|n| n.append_domain(&opts.primary).ok())
                else {
                    continue;
                };
                if seen.insert(target.clone()) {
                    records.push(self.ptr_record(target));
                }
            }
        }
        if records.is_empty() {
            return Err(NameError);
        }
        Ok(records)
    }

    fn ptr_record(&self, target: Name) -> Record {
        Record::from_rdata(self.q.name.clone(), self.ttl(), RData::PTR(PTR(target)))
    }
}

#[cfg(test)]
mod tests;
