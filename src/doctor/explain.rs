//! Why the kubernetes plugin answers a question the way it does: which object of the index and
//! which rule of the cluster DNS specification (tests/../shared spec, "k8s DNS behaviour"). A
//! pure function of (index, options, question), written beside the lookup rather than inside
//! it, so the lookup stays free of explanation code.

use std::net::IpAddr;

use hickory_proto::rr::{Name, RecordType};

use crate::dns::ip::{from_dashed, from_reverse, is_reverse};
use crate::plugin::kubernetes::index::{Group, Index};
use crate::plugin::kubernetes::lookup::{Options, PodMode};
use crate::plugin::kubernetes::model::ServiceKind;

fn ips(list: &[IpAddr]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Explains the answer for `name qtype` (lower-cased inside).
pub(crate) fn explain(
    index: &Index,
    opts: &Options,
    name: &Name,
    qtype: RecordType,
) -> Vec<String> {
    let lower = name.to_lowercase();
    let Some(zone_at) = opts.match_zone(&lower) else {
        return vec![format!(
            "{name} is in none of the kubernetes zones ({}): the plugin passes it on",
            opts.zones
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        )];
    };
    let Some(zone) = opts.zones.get(zone_at) else {
        return Vec::new();
    };
    let mut why = vec![format!("kubernetes zone {zone} holds the name")];
    let labels: Vec<String> = lower
        .iter()
        .take(lower.num_labels() as usize - zone.num_labels() as usize)
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    if is_reverse(&lower) {
        why.extend(reverse(index, &lower, qtype));
        return why;
    }
    // Rightmost label first: [kind, namespace, service, ...].
    let rev: Vec<&str> = labels.iter().rev().map(String::as_str).collect();
    match rev.as_slice() {
        [] => why.push(format!(
            "the zone apex: SOA and NS are synthesized (spec §2.9); {qtype} at the apex is NODATA unless SOA/NS"
        )),
        ["dns-version"] => why.push(
            "dns-version.<zone>: TXT with the DNS schema version (spec §2.2)".to_owned(),
        ),
        ["dns", "ns"] => why.push(
            "ns.dns.<zone>: the server's own addresses (spec §2.9)".to_owned(),
        ),
        ["svc"] | ["pod"] => why.push(format!(
            "{}.<zone> exists and holds no records: NODATA",
            rev[0]
        )),
        ["svc", ns, rest @ ..] => why.extend(service(index, opts, ns, rest, qtype)),
        ["pod", ns, rest @ ..] => why.extend(pod(index, opts, ns, rest)),
        [first, ..] => why.push(format!(
            "'{first}' is neither `svc` nor `pod`: no such name in the schema (NXDOMAIN, spec §1)"
        )),
    }
    why
}

fn namespace_rule(index: &Index, opts: &Options, ns: &str) -> Result<(), String> {
    if opts
        .namespaces
        .as_ref()
        .is_some_and(|set| !set.contains(ns))
    {
        return Err(format!(
            "namespace {ns} is not in the plugin's `namespaces` list: NXDOMAIN (spec §7.4)"
        ));
    }
    if !index.namespace_exists(ns) {
        return Err(format!(
            "namespace {ns} does not exist (or is filtered out by `namespace_labels`): NXDOMAIN"
        ));
    }
    Ok(())
}

fn service(
    index: &Index,
    opts: &Options,
    ns: &str,
    rest: &[&str],
    qtype: RecordType,
) -> Vec<String> {
    let mut why = Vec::new();
    if let Err(e) = namespace_rule(index, opts, ns) {
        return vec![e];
    }
    let Some(svc_name) = rest.first() else {
        return vec![format!(
            "{ns}.svc.<zone> is the namespace {ns} (it exists): NODATA"
        )];
    };
    // [service] | [service, endpoint] | [service, _proto, _port]
    let (endpoint, port) = match rest {
        [_, endpoint] => (Some(*endpoint), None),
        [_, proto, port] => (
            None,
            Some((port.trim_start_matches('_'), proto.trim_start_matches('_'))),
        ),
        [_] => (None, None),
        _ => {
            return vec![
                "more labels than _port._proto.service.namespace.svc: NXDOMAIN".to_owned(),
            ];
        }
    };
    let Some(group) = index.group(ns, svc_name) else {
        return vec![format!(
            "no Service {ns}/{svc_name} (and no EndpointSlice labelled for it): NXDOMAIN"
        )];
    };
    let Some(data) = &group.service else {
        return vec![format!(
            "EndpointSlices {} name a Service {ns}/{svc_name} that does not exist: NXDOMAIN",
            group.slice_names.join(", ")
        )];
    };
    if let Some((port, proto)) = port {
        let matched: Vec<String> = data
            .ports
            .iter()
            .filter(|p| {
                (port.is_empty() || p.name.eq_ignore_ascii_case(port))
                    && (proto.is_empty() || p.protocol.eq_ignore_ascii_case(proto))
            })
            .map(|p| format!("{}/{} {}", p.name, p.protocol, p.port))
            .collect();
        if matched.is_empty() {
            why.push(format!(
                "no port of Service {ns}/{svc_name} is named `{port}` with protocol `{proto}`: NXDOMAIN (spec §2.4.1)"
            ));
            return why;
        }
        why.push(format!(
            "port `_{port}._{proto}` matches the Service's port(s) {} (spec §2.4.1)",
            matched.join(", ")
        ));
    }
    match &data.kind {
        ServiceKind::ClusterIp(cluster_ips) if endpoint.is_none() => {
            why.push(format!(
                "Service {ns}/{svc_name} has ClusterIP {}: A/AAAA answer the ClusterIP(s) (spec §2.3.1){}",
                ips(cluster_ips),
                if qtype == RecordType::SRV {
                    "; SRV targets the service name itself (spec §2.3.1)"
                } else {
                    ""
                }
            ));
        }
        ServiceKind::ExternalName(Some(target)) => why.push(format!(
            "Service {ns}/{svc_name} is type ExternalName: CNAME to {target}, whose records the server resolves in turn (spec §2.5)"
        )),
        ServiceKind::ExternalName(None) => why.push(format!(
            "Service {ns}/{svc_name} is type ExternalName with an IP or invalid externalName: no records (NXDOMAIN)"
        )),
        _ => why.extend(endpoints(opts, group, ns, svc_name, endpoint)),
    }
    why
}

fn endpoints(
    opts: &Options,
    group: &Group,
    ns: &str,
    svc: &str,
    endpoint: Option<&str>,
) -> Vec<String> {
    let headless = group.service.as_ref().is_some_and(|s| s.is_headless());
    let kind = if headless { "headless" } else { "ClusterIP" };
    if opts.noendpoints {
        return vec![format!(
            "Service {ns}/{svc} is {kind} and `noendpoints` is set: endpoint names do not exist (NXDOMAIN)"
        )];
    }
    let slices = group.slice_names.join(", ");
    let matching: Vec<String> = group
        .endpoints
        .iter()
        .filter(|e| {
            endpoint.is_none_or(|want| e.label(opts.endpoint_pod_names).eq_ignore_ascii_case(want))
        })
        .map(|e| format!("{} ({})", e.addr, e.label(opts.endpoint_pod_names)))
        .collect();
    match endpoint {
        None if matching.is_empty() => vec![format!(
            "Service {ns}/{svc} is headless and has no ready endpoint (EndpointSlices: {}): NXDOMAIN (spec §2.4.2)",
            if slices.is_empty() { "none" } else { &slices }
        )],
        None => vec![format!(
            "Service {ns}/{svc} is headless: A/AAAA are its ready endpoints {} from EndpointSlice(s) {slices} (spec §2.4.2)",
            matching.join(", ")
        )],
        Some(want) if matching.is_empty() => vec![format!(
            "Service {ns}/{svc} has no ready endpoint named {want}{}: NXDOMAIN (spec §2.4.2)",
            if opts.endpoint_pod_names {
                " (endpoint_pod_names: pod name labels)"
            } else {
                " (hostname, else the dashed IP)"
            }
        )],
        Some(want) => vec![format!(
            "endpoint {want} of {kind} Service {ns}/{svc}: {} from EndpointSlice(s) {slices}",
            matching.join(", ")
        )],
    }
}

fn pod(index: &Index, opts: &Options, ns: &str, rest: &[&str]) -> Vec<String> {
    if opts.pods == PodMode::Disabled {
        return vec![
            "`pods disabled` (the default): pod names do not exist (NXDOMAIN, spec §2.7)"
                .to_owned(),
        ];
    }
    if let Err(e) = namespace_rule(index, opts, ns) {
        return vec![e];
    }
    let Some(label) = rest.first() else {
        return vec![format!(
            "{ns}.pod.<zone> exists and holds no records: NODATA"
        )];
    };
    let Some(ip) = from_dashed(label) else {
        return vec![format!("'{label}' is not a dashed IP address: NXDOMAIN")];
    };
    match opts.pods {
        PodMode::Insecure => vec![format!(
            "`pods insecure`: the address {ip} is read from the name, whether such a pod exists or not (spec §2.7)"
        )],
        _ if index.has_pod(ns, ip) => vec![format!(
            "`pods verified`: a running pod in {ns} has IP {ip} (spec §2.7)"
        )],
        _ => vec![format!(
            "`pods verified`: no running pod in {ns} has IP {ip}: NXDOMAIN (spec §2.7)"
        )],
    }
}

fn reverse(index: &Index, lower: &Name, qtype: RecordType) -> Vec<String> {
    let Some(ip) = from_reverse(lower) else {
        return vec![
            "a reverse name that is not a whole address: NXDOMAIN unless fallthrough".to_owned(),
        ];
    };
    if qtype != RecordType::PTR {
        return vec![format!("{qtype} of a reverse name: only PTR has records")];
    }
    let mut why = Vec::new();
    for group in index.services_by_cluster_ip(ip) {
        why.push(format!(
            "{ip} is the ClusterIP of Service {}/{}: PTR to its service name (spec §2.8)",
            group.namespace, group.name
        ));
    }
    for (group, ep) in index.endpoints_by_ip(ip) {
        why.push(format!(
            "{ip} is a ready endpoint ({}) of {}/{}: PTR to its endpoint name (spec §2.8)",
            ep.name, group.namespace, group.name
        ));
    }
    if why.is_empty() {
        why.push(format!(
            "no Service ClusterIP and no ready endpoint has {ip}: NXDOMAIN (unless `fallthrough` passes it on)"
        ));
    }
    why
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::kubernetes::model::{
        Endpoint, EndpointSlice, Namespace, Object, Port, Service,
    };

    fn opts() -> Options {
        Options::new(vec![
            Name::from_ascii("cluster.local.").unwrap(),
            Name::from_ascii("in-addr.arpa.").unwrap(),
        ])
    }

    fn index() -> Index {
        let port = Port {
            name: "http".into(),
            protocol: "tcp".into(),
            port: 80,
        };
        Index::build(vec![
            Object::Namespace(Namespace {
                name: "default".into(),
            }),
            Object::Service(Service {
                namespace: "default".into(),
                name: "web".into(),
                kind: ServiceKind::ClusterIp(vec!["10.96.0.5".parse().unwrap()]),
                ports: vec![port.clone()],
            }),
            Object::Service(Service {
                namespace: "default".into(),
                name: "db".into(),
                kind: ServiceKind::Headless,
                ports: vec![port.clone()],
            }),
            Object::EndpointSlice(EndpointSlice {
                namespace: "default".into(),
                name: "db-abc".into(),
                service: "db".into(),
                ports: vec![port],
                endpoints: vec![Endpoint {
                    addresses: vec!["10.1.0.7".parse().unwrap()],
                    hostname: None,
                    target_ref_name: None,
                }],
            }),
        ])
    }

    fn why(name: &str, qtype: RecordType) -> String {
        explain(&index(), &opts(), &Name::from_ascii(name).unwrap(), qtype).join("\n")
    }

    /// The explanation agrees with the lookup itself on whether the name exists, so the two
    /// cannot drift apart unnoticed.
    #[test]
    fn agrees_with_the_lookup_on_name_errors() {
        use crate::plugin::kubernetes::lookup::{self, Ctx, Outcome, Question};
        let (index, opts) = (index(), opts());
        for (name, qtype) in [
            ("web.default.svc.cluster.local.", RecordType::A),
            ("db.default.svc.cluster.local.", RecordType::A),
            ("10-1-0-7.db.default.svc.cluster.local.", RecordType::A),
            ("nope.db.default.svc.cluster.local.", RecordType::A),
            ("nope.default.svc.cluster.local.", RecordType::A),
            ("web.other.svc.cluster.local.", RecordType::A),
            ("default.svc.cluster.local.", RecordType::A),
            ("_http._tcp.web.default.svc.cluster.local.", RecordType::SRV),
            (
                "_https._tcp.web.default.svc.cluster.local.",
                RecordType::SRV,
            ),
            ("10-1-0-7.default.pod.cluster.local.", RecordType::A),
            ("x.cluster.local.", RecordType::A),
            ("5.0.96.10.in-addr.arpa.", RecordType::PTR),
            ("7.0.1.10.in-addr.arpa.", RecordType::PTR),
            ("9.9.9.10.in-addr.arpa.", RecordType::PTR),
        ] {
            let n = Name::from_ascii(name).unwrap();
            let lower = n.to_lowercase();
            let ctx = Ctx {
                index: &index,
                opts: &opts,
                self_ips: &[],
            };
            let q = Question {
                name: &n,
                lower: &lower,
                qtype,
            };
            let zone = opts.match_zone(&lower).unwrap();
            let name_error = matches!(lookup::lookup(&ctx, &q, zone), Outcome::NameError { .. });
            let why = explain(&index, &opts, &n, qtype).join("\n");
            assert_eq!(
                why.contains("NXDOMAIN"),
                name_error,
                "{name} {qtype}: {why}"
            );
        }
    }

    #[test]
    fn explains_objects_and_rules() {
        let w = why("web.default.svc.cluster.local.", RecordType::A);
        assert!(
            w.contains("Service default/web has ClusterIP 10.96.0.5"),
            "{w}"
        );
        let w = why("db.default.svc.cluster.local.", RecordType::A);
        assert!(w.contains("headless: A/AAAA are its ready endpoints 10.1.0.7 (10-1-0-7) from EndpointSlice(s) db-abc"), "{w}");
        let w = why("nope.default.svc.cluster.local.", RecordType::A);
        assert!(w.contains("no Service default/nope"), "{w}");
        let w = why("web.other.svc.cluster.local.", RecordType::A);
        assert!(w.contains("namespace other does not exist"), "{w}");
        let w = why(
            "_https._tcp.web.default.svc.cluster.local.",
            RecordType::SRV,
        );
        assert!(
            w.contains("no port of Service default/web is named `https`"),
            "{w}"
        );
        let w = why("5.0.96.10.in-addr.arpa.", RecordType::PTR);
        assert!(w.contains("ClusterIP of Service default/web"), "{w}");
        let w = why("10-1-0-7.default.pod.cluster.local.", RecordType::A);
        assert!(w.contains("`pods disabled`"), "{w}");
        let w = why("example.com.", RecordType::A);
        assert!(w.contains("none of the kubernetes zones"), "{w}");
    }
}
