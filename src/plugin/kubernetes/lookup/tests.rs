//! One test per behaviour of the cluster DNS checklist (spec §1-§6, §14), over a small index.
//! Expected records are zone-file lines as hickory prints them (`owner ttl IN TYPE rdata`).

use std::collections::HashSet;
use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};

use super::*;
use crate::plugin::kubernetes::index::Store;
use crate::plugin::kubernetes::model::{
    Endpoint as MEndpoint, EndpointSlice, Namespace, Object, Pod, Port, Service, ServiceKind,
};

const SERIAL: u32 = 1_499_347_823;
const SOA: &str = "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1499347823 7200 1800 86400 5";

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn port(name: &str, protocol: &str, number: i32) -> Port {
    Port {
        name: name.into(),
        protocol: protocol.into(),
        port: number,
    }
}

fn service(ns: &str, name: &str, kind: ServiceKind, ports: Vec<Port>) -> Object {
    Object::Service(Service {
        namespace: ns.into(),
        name: name.into(),
        kind,
        ports,
    })
}

fn cluster_ip(ns: &str, name: &str, ips: &[&str], ports: Vec<Port>) -> Object {
    service(
        ns,
        name,
        ServiceKind::ClusterIp(ips.iter().map(|i| ip(i)).collect()),
        ports,
    )
}

fn external(ns: &str, name: &str, target: Option<&str>) -> Object {
    service(
        ns,
        name,
        ServiceKind::ExternalName(target.map(|t| Name::from_ascii(t).unwrap())),
        vec![],
    )
}

/// An endpoint: addresses, hostname, target pod name.
fn ep(addresses: &[&str], hostname: Option<&str>, pod: Option<&str>) -> MEndpoint {
    MEndpoint {
        addresses: addresses.iter().map(|a| ip(a)).collect(),
        hostname: hostname.map(Into::into),
        target_ref_name: pod.map(Into::into),
    }
}

fn slice(ns: &str, name: &str, svc: &str, ports: Vec<Port>, endpoints: Vec<MEndpoint>) -> Object {
    Object::EndpointSlice(EndpointSlice {
        namespace: ns.into(),
        name: name.into(),
        service: svc.into(),
        ports,
        endpoints,
    })
}

fn namespace(name: &str) -> Object {
    Object::Namespace(Namespace { name: name.into() })
}

fn http() -> Vec<Port> {
    vec![port("http", "tcp", 80)]
}

/// The test cluster.
fn cluster() -> Vec<Object> {
    vec![
        namespace("testns"),
        namespace("kube-system"),
        namespace("other"),
        // ClusterIP with one ready endpoint (no hostname, pod `svc1-pod-abcde`).
        cluster_ip("testns", "svc1", &["10.0.0.1"], http()),
        slice(
            "testns",
            "svc1-x",
            "svc1",
            http(),
            vec![ep(&["172.0.0.2"], None, Some("svc1-pod-abcde"))],
        ),
        // Dual-stack, no endpoints.
        cluster_ip("testns", "dual", &["10.0.0.2", "fd00::2"], http()),
        // Two ports.
        cluster_ip(
            "testns",
            "twoports",
            &["10.0.0.3"],
            vec![port("http", "tcp", 80), port("dns", "udp", 53)],
        ),
        // No ports.
        cluster_ip("testns", "noports", &["10.0.0.4"], vec![]),
        // Headless: 172.0.0.10 (ep1) in two slices, 172.0.0.11 unnamed, 172.0.0.12 also ep1, fd00::11.
        service("testns", "hdls", ServiceKind::Headless, http()),
        slice(
            "testns",
            "hdls-a",
            "hdls",
            http(),
            vec![
                ep(&["172.0.0.10"], Some("ep1"), None),
                ep(&["172.0.0.11"], None, Some("hdls-pod")),
            ],
        ),
        slice(
            "testns",
            "hdls-b",
            "hdls",
            http(),
            vec![
                ep(&["172.0.0.10"], Some("ep1"), None),
                ep(&["172.0.0.12"], Some("ep1"), None),
            ],
        ),
        slice(
            "testns",
            "hdls-c",
            "hdls",
            http(),
            vec![ep(&["fd00::11"], None, None)],
        ),
        // Headless without ready endpoints.
        service("testns", "hdls-empty", ServiceKind::Headless, http()),
        // ExternalName variants.
        external("testns", "ext", Some("example.org.")),
        external("testns", "ext-in", Some("svc1.testns.svc.cluster.local.")),
        external(
            "testns",
            "ext-missing",
            Some("missing.testns.svc.cluster.local."),
        ),
        external(
            "testns",
            "ext-loop",
            Some("ext-loop.testns.svc.cluster.local."),
        ),
        external("testns", "ext-chain", Some("ext.testns.svc.cluster.local.")),
        external("testns", "ext-ip", None),
        // The DNS service itself, with the server's address as endpoint.
        cluster_ip(
            "kube-system",
            "kube-dns",
            &["10.96.0.10"],
            vec![port("dns", "udp", 53)],
        ),
        slice(
            "kube-system",
            "kube-dns-x",
            "kube-dns",
            vec![port("dns", "udp", 53)],
            vec![ep(&["10.244.0.5"], None, None)],
        ),
        // A service in a namespace that has no Namespace object.
        cluster_ip("ghostns", "ghost", &["10.0.0.99"], http()),
        // Two services selecting the same pod.
        cluster_ip("other", "a", &["10.0.1.1"], http()),
        slice(
            "other",
            "a-x",
            "a",
            http(),
            vec![ep(&["172.0.1.1"], None, None)],
        ),
        cluster_ip("other", "b", &["10.0.1.2"], http()),
        slice(
            "other",
            "b-x",
            "b",
            http(),
            vec![ep(&["172.0.1.1"], None, None)],
        ),
        Object::Pod(Pod {
            namespace: "testns".into(),
            name: "pod1".into(),
            ip: ip("10.244.1.1"),
        }),
    ]
}

fn zones(names: &[&str]) -> Vec<Name> {
    names.iter().map(|n| Name::from_ascii(n).unwrap()).collect()
}

fn default_opts() -> Options {
    Options::new(zones(&["cluster.local.", "in-addr.arpa.", "ip6.arpa."]))
}

/// A test world: index, options, own addresses.
struct World {
    store: Store,
    opts: Options,
    self_ips: Vec<IpAddr>,
}

fn world() -> World {
    world_with(default_opts(), cluster())
}

fn world_with(opts: Options, objects: Vec<Object>) -> World {
    let store = Store::new();
    store.replace_at(objects, SERIAL);
    World {
        store,
        opts,
        self_ips: vec![ip("10.244.0.5")],
    }
}

/// A reply as lines, the way the plugin would write it (synced: a name error is NXDOMAIN).
#[derive(Debug, PartialEq)]
struct Reply {
    rcode: ResponseCode,
    answer: Vec<String>,
    authority: Vec<String>,
    additional: Vec<String>,
}

impl World {
    fn outcome(&self, name: &str, qtype: RecordType) -> Outcome {
        let name = Name::from_ascii(name).unwrap();
        let lower = name.to_lowercase();
        let index = self.store.guard();
        let ctx = Ctx {
            index: &index,
            opts: &self.opts,
            self_ips: &self.self_ips,
        };
        let zone = self.opts.match_zone(&lower).expect("name in a zone");
        lookup(
            &ctx,
            &Question {
                name: &name,
                lower: &lower,
                qtype,
            },
            zone,
        )
    }

    fn ask(&self, name: &str, qtype: RecordType) -> Reply {
        let answer = match self.outcome(name, qtype) {
            Outcome::Answer(a) => a,
            Outcome::NameError { soa } => name_error(ResponseCode::NXDomain, soa),
            Outcome::External { .. } => panic!("unexpected external lookup for {name}"),
        };
        if answer.rcode != ResponseCode::Refused {
            assert!(answer.authoritative, "AA must be set: {name}");
        }
        assert!(!answer.recursion_available, "RA must be clear: {name}");
        let lines = |records: &Vec<hickory_proto::rr::Record>| {
            let mut v: Vec<String> = records.iter().map(ToString::to_string).collect();
            v.sort();
            v
        };
        Reply {
            rcode: answer.rcode,
            answer: lines(&answer.answers),
            authority: lines(&answer.authorities),
            additional: lines(&answer.additionals),
        }
    }
}

fn sorted(lines: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = lines.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

/// NOERROR with exactly these answers (any order) and no authority.
#[track_caller]
fn assert_answer(reply: &Reply, answers: &[&str]) {
    assert_eq!(reply.rcode, ResponseCode::NoError, "{reply:#?}");
    assert_eq!(reply.answer, sorted(answers), "{reply:#?}");
    assert!(reply.authority.is_empty(), "{reply:#?}");
}

#[track_caller]
fn assert_nodata(reply: &Reply, soa: &str) {
    assert_eq!(
        reply,
        &Reply {
            rcode: ResponseCode::NoError,
            answer: vec![],
            authority: vec![soa.to_owned()],
            additional: vec![],
        }
    );
}

#[track_caller]
fn assert_nxdomain(reply: &Reply, soa: &str) {
    assert_eq!(
        reply,
        &Reply {
            rcode: ResponseCode::NXDomain,
            answer: vec![],
            authority: vec![soa.to_owned()],
            additional: vec![],
        }
    );
}

use RecordType::{
    A, AAAA, ANY, AXFR, CAA, CNAME as QCNAME, HINFO, IXFR, MX, NS, PTR as QPTR, SOA as QSOA,
    SRV as QSRV, TXT as QTXT,
};

// ---------------------------------------------------------------- §1 name model and parsing

#[test]
fn zone_match_is_longest_suffix() {
    let opts = Options::new(zones(&[
        "cluster.local.",
        "sub.cluster.local.",
        "in-addr.arpa.",
    ]));
    let name = |t: &str| Name::from_ascii(t).unwrap();
    assert_eq!(opts.match_zone(&name("a.sub.cluster.local.")), Some(1));
    assert_eq!(opts.match_zone(&name("a.svc.cluster.local.")), Some(0));
    assert_eq!(opts.match_zone(&name("1.0.0.10.in-addr.arpa.")), Some(2));
    assert_eq!(opts.match_zone(&name("example.org.")), None);
    assert_eq!(opts.primary, name("cluster.local."));
}

#[test]
fn owner_name_keeps_query_case() {
    let w = world();
    assert_answer(
        &w.ask("SVC1.TestNS.Svc.Cluster.LOCAL.", A),
        &["SVC1.TestNS.Svc.Cluster.LOCAL. 5 IN A 10.0.0.1"],
    );
}

#[test]
fn negative_soa_uses_zone_in_query_case() {
    let w = world();
    assert_nxdomain(
        &w.ask("missing.testns.svc.Cluster.Local.", A),
        "Cluster.Local. 5 IN SOA ns.dns.Cluster.Local. hostmaster.Cluster.Local. 1499347823 7200 1800 86400 5",
    );
}

#[test]
fn synthesized_targets_use_zone_in_query_case() {
    let w = world();
    let reply = w.ask("_http._tcp.svc1.testns.svc.CLUSTER.local.", QSRV);
    assert_answer(
        &reply,
        &[
            "_http._tcp.svc1.testns.svc.CLUSTER.local. 5 IN SRV 0 100 80 svc1.testns.svc.CLUSTER.local.",
        ],
    );
    assert_eq!(
        reply.additional,
        ["svc1.testns.svc.CLUSTER.local. 5 IN A 10.0.0.1"]
    );
}

#[test]
fn label_other_than_svc_or_pod_is_nxdomain() {
    let w = world();
    assert_nxdomain(&w.ask("foo.cluster.local.", A), SOA);
    assert_nxdomain(&w.ask("svc1.testns.foo.cluster.local.", A), SOA);
}

#[test]
fn bare_svc_and_pod_are_nodata() {
    let w = world();
    assert_nodata(&w.ask("svc.cluster.local.", A), SOA);
    assert_nodata(&w.ask("pod.cluster.local.", A), SOA);
    assert_nodata(&w.ask("svc.cluster.local.", QSRV), SOA);
}

#[test]
fn namespace_node_is_nodata_when_exposed_else_nxdomain() {
    let w = world();
    assert_nodata(&w.ask("testns.svc.cluster.local.", A), SOA);
    assert_nxdomain(&w.ask("nonexistent.svc.cluster.local.", A), SOA);
    // A namespace known only from its services (no Namespace object) does not exist.
    assert_nxdomain(&w.ask("ghostns.svc.cluster.local.", A), SOA);
    assert_nxdomain(&w.ask("ghost.ghostns.svc.cluster.local.", A), SOA);
}

#[test]
fn three_labels_left_of_service_is_nxdomain() {
    let w = world();
    assert_nxdomain(&w.ask("a.b.c.svc1.testns.svc.cluster.local.", A), SOA);
    assert_nxdomain(&w.ask("a.b.c.d.svc1.testns.svc.cluster.local.", QSRV), SOA);
}

#[test]
fn port_and_protocol_labels_match_case_insensitively() {
    let w = world();
    assert_answer(
        &w.ask("_HTTP._TCP.svc1.testns.svc.cluster.local.", QSRV),
        &[
            "_HTTP._TCP.svc1.testns.svc.cluster.local. 5 IN SRV 0 100 80 svc1.testns.svc.cluster.local.",
        ],
    );
    assert_answer(
        &w.ask("_dns._UDP.twoports.testns.svc.cluster.local.", QSRV),
        &[
            "_dns._UDP.twoports.testns.svc.cluster.local. 5 IN SRV 0 100 53 twoports.testns.svc.cluster.local.",
        ],
    );
}

#[test]
fn port_underscores_are_optional_and_a_on_srv_name_answers_cluster_ip() {
    let w = world();
    assert_answer(
        &w.ask("http.tcp.svc1.testns.svc.cluster.local.", QSRV),
        &[
            "http.tcp.svc1.testns.svc.cluster.local. 5 IN SRV 0 100 80 svc1.testns.svc.cluster.local.",
        ],
    );
    assert_answer(
        &w.ask("_http._tcp.svc1.testns.svc.cluster.local.", A),
        &["_http._tcp.svc1.testns.svc.cluster.local. 5 IN A 10.0.0.1"],
    );
    assert_nxdomain(&w.ask("_nope._tcp.svc1.testns.svc.cluster.local.", A), SOA);
}

#[test]
fn non_ptr_in_reverse_zone_is_nxdomain() {
    let w = world();
    let rsoa = "in-addr.arpa. 5 IN SOA ns.dns.in-addr.arpa. hostmaster.in-addr.arpa. 1499347823 7200 1800 86400 5";
    assert_nxdomain(&w.ask("1.0.0.10.in-addr.arpa.", A), rsoa);
    assert_nxdomain(&w.ask("svc1.testns.svc.in-addr.arpa.", A), rsoa);
}

// ---------------------------------------------------------------- §2.1 ClusterIP services

#[test]
fn clusterip_service_a() {
    let w = world();
    assert_answer(
        &w.ask("svc1.testns.svc.cluster.local.", A),
        &["svc1.testns.svc.cluster.local. 5 IN A 10.0.0.1"],
    );
}

#[test]
fn dual_stack_service_answers_a_and_aaaa() {
    let w = world();
    assert_answer(
        &w.ask("dual.testns.svc.cluster.local.", A),
        &["dual.testns.svc.cluster.local. 5 IN A 10.0.0.2"],
    );
    assert_answer(
        &w.ask("dual.testns.svc.cluster.local.", AAAA),
        &["dual.testns.svc.cluster.local. 5 IN AAAA fd00::2"],
    );
}

#[test]
fn clusterip_service_other_family_is_nodata() {
    let w = world();
    assert_nodata(&w.ask("svc1.testns.svc.cluster.local.", AAAA), SOA);
}

#[test]
fn clusterip_without_endpoints_answers_headless_without_is_nxdomain() {
    let w = world();
    assert_answer(
        &w.ask("dual.testns.svc.cluster.local.", A),
        &["dual.testns.svc.cluster.local. 5 IN A 10.0.0.2"],
    );
    assert_nxdomain(&w.ask("hdls-empty.testns.svc.cluster.local.", A), SOA);
}

#[test]
fn service_without_ports_answers_a_but_no_srv() {
    let w = world();
    assert_answer(
        &w.ask("noports.testns.svc.cluster.local.", A),
        &["noports.testns.svc.cluster.local. 5 IN A 10.0.0.4"],
    );
    assert_nodata(&w.ask("noports.testns.svc.cluster.local.", QSRV), SOA);
}

#[test]
fn missing_service_is_nxdomain() {
    let w = world();
    assert_nxdomain(&w.ask("nope.testns.svc.cluster.local.", A), SOA);
}

#[test]
fn endpoint_name_under_clusterip_service_gives_endpoint_address() {
    let w = world();
    assert_answer(
        &w.ask("172-0-0-2.svc1.testns.svc.cluster.local.", A),
        &["172-0-0-2.svc1.testns.svc.cluster.local. 5 IN A 172.0.0.2"],
    );
    assert_nxdomain(&w.ask("172-0-0-9.svc1.testns.svc.cluster.local.", A), SOA);
}

// ---------------------------------------------------------------- §2.2 headless services

#[test]
fn headless_a_lists_ready_endpoints_deduplicated() {
    let w = world();
    assert_answer(
        &w.ask("hdls.testns.svc.cluster.local.", A),
        &[
            "hdls.testns.svc.cluster.local. 5 IN A 172.0.0.10",
            "hdls.testns.svc.cluster.local. 5 IN A 172.0.0.11",
            "hdls.testns.svc.cluster.local. 5 IN A 172.0.0.12",
        ],
    );
    assert_answer(
        &w.ask("hdls.testns.svc.cluster.local.", AAAA),
        &["hdls.testns.svc.cluster.local. 5 IN AAAA fd00::11"],
    );
}

#[test]
fn headless_without_ready_endpoints_is_nxdomain() {
    let w = world();
    assert_nxdomain(&w.ask("hdls-empty.testns.svc.cluster.local.", A), SOA);
    assert_nxdomain(&w.ask("hdls-empty.testns.svc.cluster.local.", QSRV), SOA);
}

#[test]
fn headless_endpoint_name_with_shared_hostname_gives_all_addresses() {
    let w = world();
    assert_answer(
        &w.ask("ep1.hdls.testns.svc.cluster.local.", A),
        &[
            "ep1.hdls.testns.svc.cluster.local. 5 IN A 172.0.0.10",
            "ep1.hdls.testns.svc.cluster.local. 5 IN A 172.0.0.12",
        ],
    );
    assert_nodata(&w.ask("ep1.hdls.testns.svc.cluster.local.", AAAA), SOA);
}

// ---------------------------------------------------------------- §2.3 endpoint names

#[test]
fn endpoint_without_hostname_is_named_by_dashed_ip() {
    let w = world();
    assert_answer(
        &w.ask("172-0-0-11.hdls.testns.svc.cluster.local.", A),
        &["172-0-0-11.hdls.testns.svc.cluster.local. 5 IN A 172.0.0.11"],
    );
    assert_answer(
        &w.ask("fd00--11.hdls.testns.svc.cluster.local.", AAAA),
        &["fd00--11.hdls.testns.svc.cluster.local. 5 IN AAAA fd00::11"],
    );
    // Without endpoint_pod_names the pod name is not an endpoint name.
    assert_nxdomain(&w.ask("hdls-pod.hdls.testns.svc.cluster.local.", A), SOA);
}

#[test]
fn endpoint_pod_names_uses_pod_name_when_no_hostname() {
    let mut opts = default_opts();
    opts.endpoint_pod_names = true;
    let w = world_with(opts, cluster());
    assert_answer(
        &w.ask("hdls-pod.hdls.testns.svc.cluster.local.", A),
        &["hdls-pod.hdls.testns.svc.cluster.local. 5 IN A 172.0.0.11"],
    );
    assert_nxdomain(&w.ask("172-0-0-11.hdls.testns.svc.cluster.local.", A), SOA);
    // A hostname still wins.
    assert_answer(
        &w.ask("ep1.hdls.testns.svc.cluster.local.", A),
        &[
            "ep1.hdls.testns.svc.cluster.local. 5 IN A 172.0.0.10",
            "ep1.hdls.testns.svc.cluster.local. 5 IN A 172.0.0.12",
        ],
    );
}

#[test]
fn ipv6_dashed_name_ending_in_hyphen_gets_zero() {
    let objects = vec![
        namespace("ns"),
        service("ns", "h", ServiceKind::Headless, http()),
        slice(
            "ns",
            "h-x",
            "h",
            http(),
            vec![ep(&["2001:db8::"], None, None)],
        ),
    ];
    let w = world_with(default_opts(), objects);
    assert_answer(
        &w.ask("2001-db8--0.h.ns.svc.cluster.local.", AAAA),
        &["2001-db8--0.h.ns.svc.cluster.local. 5 IN AAAA 2001:db8::"],
    );
}

// ---------------------------------------------------------------- §2.4 SRV

#[test]
fn srv_for_clusterip_port() {
    let w = world();
    let reply = w.ask("_http._tcp.svc1.testns.svc.cluster.local.", QSRV);
    assert_answer(
        &reply,
        &[
            "_http._tcp.svc1.testns.svc.cluster.local. 5 IN SRV 0 100 80 svc1.testns.svc.cluster.local.",
        ],
    );
    assert_eq!(
        reply.additional,
        ["svc1.testns.svc.cluster.local. 5 IN A 10.0.0.1"]
    );
}

#[test]
fn srv_on_bare_service_name_lists_all_ports() {
    let w = world();
    let reply = w.ask("twoports.testns.svc.cluster.local.", QSRV);
    assert_answer(
        &reply,
        &[
            "twoports.testns.svc.cluster.local. 5 IN SRV 0 50 53 twoports.testns.svc.cluster.local.",
            "twoports.testns.svc.cluster.local. 5 IN SRV 0 50 80 twoports.testns.svc.cluster.local.",
        ],
    );
    assert_eq!(
        reply.additional,
        ["twoports.testns.svc.cluster.local. 5 IN A 10.0.0.3"]
    );
}

#[test]
fn srv_for_headless_targets_endpoints() {
    let w = world();
    let reply = w.ask("_http._tcp.hdls.testns.svc.cluster.local.", QSRV);
    // Entries: 172.0.0.10 (ep1), 172.0.0.11, 172.0.0.10 (ep1 again), 172.0.0.12 (ep1), fd00::11: N=5.
    assert_answer(
        &reply,
        &[
            "_http._tcp.hdls.testns.svc.cluster.local. 5 IN SRV 0 20 80 ep1.hdls.testns.svc.cluster.local.",
            "_http._tcp.hdls.testns.svc.cluster.local. 5 IN SRV 0 20 80 172-0-0-11.hdls.testns.svc.cluster.local.",
            "_http._tcp.hdls.testns.svc.cluster.local. 5 IN SRV 0 20 80 fd00--11.hdls.testns.svc.cluster.local.",
        ],
    );
    assert_eq!(
        reply.additional,
        sorted(&[
            "ep1.hdls.testns.svc.cluster.local. 5 IN A 172.0.0.10",
            "ep1.hdls.testns.svc.cluster.local. 5 IN A 172.0.0.12",
            "172-0-0-11.hdls.testns.svc.cluster.local. 5 IN A 172.0.0.11",
            "fd00--11.hdls.testns.svc.cluster.local. 5 IN AAAA fd00::11",
        ])
    );
}

#[test]
fn srv_weight_computed_before_dedup() {
    // Six addresses, two of them sharing a hostname: N=6 -> weight 16, five distinct SRVs.
    let objects = vec![
        namespace("ns"),
        service("ns", "h", ServiceKind::Headless, http()),
        slice(
            "ns",
            "h-x",
            "h",
            http(),
            vec![
                ep(&["10.1.0.1"], Some("same"), None),
                ep(&["10.1.0.2"], Some("same"), None),
                ep(&["10.1.0.3"], None, None),
                ep(&["10.1.0.4"], None, None),
                ep(&["10.1.0.5"], None, None),
                ep(&["10.1.0.6"], None, None),
            ],
        ),
    ];
    let w = world_with(default_opts(), objects);
    let reply = w.ask("h.ns.svc.cluster.local.", QSRV);
    assert_eq!(reply.answer.len(), 5, "{reply:#?}");
    assert!(
        reply.answer.iter().all(|l| l.contains(" SRV 0 16 80 ")),
        "{reply:#?}"
    );
    // Two glue records for the shared target.
    assert_eq!(reply.additional.len(), 6);
}

#[test]
fn srv_dual_stack_clusterip_weight_50_with_both_glue() {
    let w = world();
    let reply = w.ask("_http._tcp.dual.testns.svc.cluster.local.", QSRV);
    assert_answer(
        &reply,
        &[
            "_http._tcp.dual.testns.svc.cluster.local. 5 IN SRV 0 50 80 dual.testns.svc.cluster.local.",
        ],
    );
    assert_eq!(
        reply.additional,
        sorted(&[
            "dual.testns.svc.cluster.local. 5 IN A 10.0.0.2",
            "dual.testns.svc.cluster.local. 5 IN AAAA fd00::2"
        ])
    );
}

#[test]
fn srv_port_or_protocol_mismatch_is_nxdomain() {
    let w = world();
    assert_nxdomain(
        &w.ask("_https._tcp.svc1.testns.svc.cluster.local.", QSRV),
        SOA,
    );
    assert_nxdomain(
        &w.ask("_http._udp.svc1.testns.svc.cluster.local.", QSRV),
        SOA,
    );
    assert_nxdomain(
        &w.ask("_http._udp.hdls.testns.svc.cluster.local.", QSRV),
        SOA,
    );
}

#[test]
fn srv_for_endpoint_name() {
    let w = world();
    let reply = w.ask("172-0-0-2.svc1.testns.svc.cluster.local.", QSRV);
    assert_answer(
        &reply,
        &[
            "172-0-0-2.svc1.testns.svc.cluster.local. 5 IN SRV 0 100 80 172-0-0-2.svc1.testns.svc.cluster.local.",
        ],
    );
    assert_eq!(
        reply.additional,
        ["172-0-0-2.svc1.testns.svc.cluster.local. 5 IN A 172.0.0.2"]
    );
}

#[test]
fn srv_on_external_name_is_nodata() {
    let w = world();
    assert_nodata(&w.ask("ext.testns.svc.cluster.local.", QSRV), SOA);
}

// ---------------------------------------------------------------- §2.5 ExternalName

#[test]
fn external_name_cname_query_answers_cname() {
    let w = world();
    assert_answer(
        &w.ask("ext.testns.svc.cluster.local.", QCNAME),
        &["ext.testns.svc.cluster.local. 5 IN CNAME example.org."],
    );
    // CNAME on a ClusterIP service: NODATA.
    assert_nodata(&w.ask("svc1.testns.svc.cluster.local.", QCNAME), SOA);
}

#[test]
fn external_name_outside_zones_is_resolved_through_the_server() {
    let w = world();
    match w.outcome("Ext.testns.svc.cluster.local.", A) {
        Outcome::External {
            cnames,
            target,
            soa,
        } => {
            let lines: Vec<String> = cnames.iter().map(ToString::to_string).collect();
            assert_eq!(
                lines,
                ["Ext.testns.svc.cluster.local. 5 IN CNAME example.org."]
            );
            assert_eq!(target, Name::from_ascii("example.org.").unwrap());
            assert_eq!(soa.to_string(), SOA);
        }
        other => panic!("{other:?}"),
    }
    // A chain through an in-zone ExternalName keeps both CNAMEs, in order.
    match w.outcome("ext-chain.testns.svc.cluster.local.", AAAA) {
        Outcome::External { cnames, target, .. } => {
            let lines: Vec<String> = cnames.iter().map(ToString::to_string).collect();
            assert_eq!(
                lines,
                [
                    "ext-chain.testns.svc.cluster.local. 5 IN CNAME ext.testns.svc.cluster.local.",
                    "ext.testns.svc.cluster.local. 5 IN CNAME example.org.",
                ]
            );
            assert_eq!(target.to_ascii(), "example.org.");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn external_name_in_zone_target_is_resolved_internally_cname_first() {
    let w = world();
    let reply = w.ask("ext-in.testns.svc.cluster.local.", A);
    assert_eq!(reply.rcode, ResponseCode::NoError);
    assert_eq!(
        reply.answer,
        // Not sorted: the order matters here.
        sorted(&[
            "ext-in.testns.svc.cluster.local. 5 IN CNAME svc1.testns.svc.cluster.local.",
            "svc1.testns.svc.cluster.local. 5 IN A 10.0.0.1",
        ])
    );
    match w.outcome("ext-in.testns.svc.cluster.local.", A) {
        Outcome::Answer(a) => assert!(matches!(a.answers[0].data, RData::CNAME(_))),
        other => panic!("{other:?}"),
    }
}

#[test]
fn external_name_in_zone_target_without_records_drops_cname() {
    let w = world();
    // svc1 has no AAAA: NODATA without the CNAME.
    assert_nodata(&w.ask("ext-in.testns.svc.cluster.local.", AAAA), SOA);
    // Target does not exist at all: NODATA too (the ExternalName itself exists).
    assert_nodata(&w.ask("ext-missing.testns.svc.cluster.local.", A), SOA);
}

#[test]
fn external_name_compose_follows_upstream_result() {
    let cname = Record::from_rdata(
        Name::from_ascii("ext.testns.svc.cluster.local.").unwrap(),
        5,
        RData::CNAME(CNAME(Name::from_ascii("example.org.").unwrap())),
    );
    let soa = synth::soa(&Name::from_ascii("cluster.local.").unwrap(), 5, SERIAL);
    // Upstream NXDOMAIN: NOERROR with just the CNAME.
    let nx = Answer::new(ResponseCode::NXDomain);
    let composed = compose_external::<()>(vec![cname.clone()], soa.clone(), Ok(nx));
    assert_eq!(composed.rcode, ResponseCode::NoError);
    assert!(composed.authoritative);
    assert_eq!(composed.answers, vec![cname.clone()]);
    // Upstream answer with TC: CNAME first, then the records, TC kept.
    let mut up = Answer::new(ResponseCode::NoError);
    up.truncated = true;
    let a = synth::address(
        Name::from_ascii("example.org.").unwrap(),
        300,
        ip("93.184.216.34"),
    );
    up.answers.push(a.clone());
    let composed = compose_external::<()>(vec![cname.clone()], soa.clone(), Ok(up));
    assert_eq!(composed.answers, vec![cname.clone(), a]);
    assert!(composed.truncated);
    assert_eq!(composed.answers[1].ttl, 300, "upstream TTLs are kept");
    // Upstream error (no forward, SERVFAIL, timeout): the CNAME alone, no SOA (CoreDNS).
    let composed = compose_external(vec![cname.clone()], soa, Err("timeout"));
    assert_eq!(composed.rcode, ResponseCode::NoError);
    assert_eq!(composed.answers, vec![cname]);
    assert!(composed.authorities.is_empty());
}

#[test]
fn srv_and_port_names_below_external_name_are_nxdomain() {
    let w = world();
    assert_nxdomain(
        &w.ask("_http._tcp.ext.testns.svc.cluster.local.", QSRV),
        SOA,
    );
    assert_nxdomain(&w.ask("_http._tcp.ext.testns.svc.cluster.local.", A), SOA);
    assert_nxdomain(&w.ask("a.b.ext.testns.svc.cluster.local.", QTXT), SOA);
    assert_nxdomain(&w.ask("a.b.ext.testns.svc.cluster.local.", A), SOA);
    // The service name itself still exists.
    assert_nodata(&w.ask("ext.testns.svc.cluster.local.", QSRV), SOA);
}

#[test]
fn ns_dns_in_other_letter_case_is_an_ordinary_name() {
    let mut w = world();
    w.self_ips = vec![ip("192.0.2.53")];
    assert_answer(
        &w.ask("ns.dns.cluster.local.", A),
        &["ns.dns.cluster.local. 5 IN A 192.0.2.53"],
    );
    assert_nodata(&w.ask("ns.dns.cluster.local.", AAAA), SOA);
    // CoreDNS matches `ns.dns.<zone>` case-sensitively: other cases are NXDOMAIN.
    assert_eq!(
        w.ask("NS.dns.cluster.local.", AAAA).rcode,
        ResponseCode::NXDomain
    );
    assert_eq!(
        w.ask("Ns.Dns.cluster.local.", A).rcode,
        ResponseCode::NXDomain
    );
}

#[test]
fn name_below_external_name_is_nxdomain() {
    let w = world();
    assert_nxdomain(&w.ask("x.ext.testns.svc.cluster.local.", A), SOA);
    assert_nxdomain(&w.ask("x.ext.testns.svc.cluster.local.", QCNAME), SOA);
}

#[test]
fn external_name_that_is_an_ip_is_nxdomain() {
    let w = world();
    assert_nxdomain(&w.ask("ext-ip.testns.svc.cluster.local.", A), SOA);
    assert_nxdomain(&w.ask("ext-ip.testns.svc.cluster.local.", QCNAME), SOA);
}

#[test]
fn external_name_pointing_at_itself_is_nodata() {
    let w = world();
    assert_nodata(&w.ask("ext-loop.testns.svc.cluster.local.", A), SOA);
}

#[test]
fn external_name_txt_and_mx_are_nodata() {
    let w = world();
    assert_nodata(&w.ask("ext.testns.svc.cluster.local.", QTXT), SOA);
    assert_nodata(&w.ask("ext.testns.svc.cluster.local.", MX), SOA);
}

// ---------------------------------------------------------------- §2.6 PTR

#[test]
fn ptr_for_cluster_ip_names_the_service_in_primary_zone() {
    let w = world();
    assert_answer(
        &w.ask("1.0.0.10.in-addr.arpa.", QPTR),
        &["1.0.0.10.in-addr.arpa. 5 IN PTR svc1.testns.svc.cluster.local."],
    );
    assert_answer(
        &w.ask(
            "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.",
            QPTR,
        ),
        &[
            "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa. 5 IN PTR dual.testns.svc.cluster.local.",
        ],
    );
}

#[test]
fn ptr_for_endpoint_ip_lists_every_owning_service_once() {
    let w = world();
    // Same IP selected by two services: two PTRs.
    assert_answer(
        &w.ask("1.1.0.172.in-addr.arpa.", QPTR),
        &[
            "1.1.0.172.in-addr.arpa. 5 IN PTR 172-0-1-1.a.other.svc.cluster.local.",
            "1.1.0.172.in-addr.arpa. 5 IN PTR 172-0-1-1.b.other.svc.cluster.local.",
        ],
    );
    // Same IP in two slices of one service: one PTR.
    assert_answer(
        &w.ask("10.0.0.172.in-addr.arpa.", QPTR),
        &["10.0.0.172.in-addr.arpa. 5 IN PTR ep1.hdls.testns.svc.cluster.local."],
    );
}

#[test]
fn ptr_is_not_served_for_pod_ips() {
    let w = world();
    let rsoa = "in-addr.arpa. 5 IN SOA ns.dns.in-addr.arpa. hostmaster.in-addr.arpa. 1499347823 7200 1800 86400 5";
    assert_nxdomain(&w.ask("1.1.244.10.in-addr.arpa.", QPTR), rsoa);
}

#[test]
fn ptr_miss_is_nxdomain_with_matched_reverse_zone_soa() {
    let opts = Options::new(zones(&[
        "cluster.local.",
        "0.10.in-addr.arpa.",
        "in-addr.arpa.",
    ]));
    let w = world_with(opts, cluster());
    assert_nxdomain(
        &w.ask("9.9.0.10.in-addr.arpa.", QPTR),
        "0.10.in-addr.arpa. 5 IN SOA ns.dns.0.10.in-addr.arpa. hostmaster.0.10.in-addr.arpa. 1499347823 7200 1800 86400 5",
    );
    assert_nxdomain(
        &w.ask("9.9.9.9.in-addr.arpa.", QPTR),
        "in-addr.arpa. 5 IN SOA ns.dns.in-addr.arpa. hostmaster.in-addr.arpa. 1499347823 7200 1800 86400 5",
    );
}

#[test]
fn ptr_partial_reverse_name_is_nxdomain_and_reverse_apex_is_nodata() {
    let w = world();
    let rsoa = "in-addr.arpa. 5 IN SOA ns.dns.in-addr.arpa. hostmaster.in-addr.arpa. 1499347823 7200 1800 86400 5";
    assert_nxdomain(&w.ask("0.0.10.in-addr.arpa.", QPTR), rsoa);
    assert_nxdomain(&w.ask("x.0.0.10.in-addr.arpa.", QPTR), rsoa);
    assert_nodata(&w.ask("in-addr.arpa.", QPTR), rsoa);
}

#[test]
fn ptr_on_forward_name_follows_forward_rules() {
    let w = world();
    assert_nodata(&w.ask("svc1.testns.svc.cluster.local.", QPTR), SOA);
    assert_nxdomain(&w.ask("nope.testns.svc.cluster.local.", QPTR), SOA);
}

#[test]
fn ptr_honours_only_the_namespaces_option() {
    // Without `namespaces`: a service in a namespace that does not exist still has its PTR.
    let w = world();
    assert_answer(
        &w.ask("99.0.0.10.in-addr.arpa.", QPTR),
        &["99.0.0.10.in-addr.arpa. 5 IN PTR ghost.ghostns.svc.cluster.local."],
    );
    // With `namespaces`: only listed namespaces.
    let mut opts = default_opts();
    opts.namespaces = Some(HashSet::from(["other".into()]));
    let w = world_with(opts, cluster());
    let rsoa = "in-addr.arpa. 5 IN SOA ns.dns.in-addr.arpa. hostmaster.in-addr.arpa. 1499347823 7200 1800 86400 5";
    assert_nxdomain(&w.ask("1.0.0.10.in-addr.arpa.", QPTR), rsoa);
    assert_answer(
        &w.ask("1.1.0.10.in-addr.arpa.", QPTR),
        &["1.1.0.10.in-addr.arpa. 5 IN PTR a.other.svc.cluster.local."],
    );
}

#[test]
fn ptr_targets_use_primary_zone_not_query_zone() {
    let opts = Options::new(zones(&["in-addr.arpa.", "cluster.local.", "example.com."]));
    let w = world_with(opts, cluster());
    assert_answer(
        &w.ask("1.0.0.10.IN-ADDR.ARPA.", QPTR),
        &["1.0.0.10.IN-ADDR.ARPA. 5 IN PTR svc1.testns.svc.cluster.local."],
    );
}

// ---------------------------------------------------------------- §2.7 pods

#[test]
fn pods_disabled_every_pod_name_is_nxdomain() {
    let w = world();
    assert_nxdomain(&w.ask("10-244-1-1.testns.pod.cluster.local.", A), SOA);
    assert_nxdomain(&w.ask("testns.pod.cluster.local.", A), SOA);
    assert_nodata(&w.ask("pod.cluster.local.", A), SOA);
}

#[test]
fn pods_insecure_answers_any_dashed_ip_in_an_existing_namespace() {
    let mut opts = default_opts();
    opts.pods = PodMode::Insecure;
    let w = world_with(opts, cluster());
    assert_answer(
        &w.ask("1-2-3-4.testns.pod.cluster.local.", A),
        &["1-2-3-4.testns.pod.cluster.local. 5 IN A 1.2.3.4"],
    );
    assert_nodata(&w.ask("1-2-3-4.testns.pod.cluster.local.", AAAA), SOA);
    assert_answer(
        &w.ask("1234-abcd--1.testns.pod.cluster.local.", AAAA),
        &["1234-abcd--1.testns.pod.cluster.local. 5 IN AAAA 1234:abcd::1"],
    );
    assert_nodata(&w.ask("1234-abcd--1.testns.pod.cluster.local.", A), SOA);
    assert_nxdomain(&w.ask("not-an-ip.testns.pod.cluster.local.", A), SOA);
    assert_nodata(&w.ask("testns.pod.cluster.local.", A), SOA);
    assert_nxdomain(&w.ask("1-2-3-4.nonexistent.pod.cluster.local.", A), SOA);
}

#[test]
fn pods_verified_needs_a_pod_with_that_ip_in_the_namespace() {
    let mut opts = default_opts();
    opts.pods = PodMode::Verified;
    let w = world_with(opts, cluster());
    assert_answer(
        &w.ask("10-244-1-1.testns.pod.cluster.local.", A),
        &["10-244-1-1.testns.pod.cluster.local. 5 IN A 10.244.1.1"],
    );
    assert_nxdomain(&w.ask("10-244-1-1.other.pod.cluster.local.", A), SOA);
    assert_nxdomain(&w.ask("1-2-3-4.testns.pod.cluster.local.", A), SOA);
}

#[test]
fn pods_verified_knows_only_the_primary_ip() {
    let mut opts = default_opts();
    opts.pods = PodMode::Verified;
    // The model keeps only status.podIP; the pod's second address is unknown.
    let objects = vec![
        namespace("ns"),
        Object::Pod(Pod {
            namespace: "ns".into(),
            name: "p".into(),
            ip: ip("10.1.1.1"),
        }),
    ];
    let w = world_with(opts, objects);
    assert_answer(
        &w.ask("10-1-1-1.ns.pod.cluster.local.", A),
        &["10-1-1-1.ns.pod.cluster.local. 5 IN A 10.1.1.1"],
    );
    assert_nxdomain(&w.ask("fd00--1.ns.pod.cluster.local.", AAAA), SOA);
}

#[test]
fn pod_name_ignores_one_or_two_extra_labels() {
    let mut opts = default_opts();
    opts.pods = PodMode::Insecure;
    let w = world_with(opts, cluster());
    assert_answer(
        &w.ask("x.1-2-3-4.testns.pod.cluster.local.", A),
        &["x.1-2-3-4.testns.pod.cluster.local. 5 IN A 1.2.3.4"],
    );
    assert_answer(
        &w.ask("_x._y.1-2-3-4.testns.pod.cluster.local.", A),
        &["_x._y.1-2-3-4.testns.pod.cluster.local. 5 IN A 1.2.3.4"],
    );
    assert_nxdomain(&w.ask("a.b.c.1-2-3-4.testns.pod.cluster.local.", A), SOA);
}

// ---------------------------------------------------------------- §2.8 dns-version

#[test]
fn dns_version_txt_has_fixed_ttl() {
    let mut opts = default_opts();
    opts.ttl = 30;
    let w = world_with(opts, cluster());
    assert_answer(
        &w.ask("dns-version.cluster.local.", QTXT),
        &["dns-version.cluster.local. 28800 IN TXT 1.1.0"],
    );
}

#[test]
fn dns_version_a_is_nxdomain() {
    let w = world();
    assert_nxdomain(&w.ask("dns-version.cluster.local.", A), SOA);
}

// ---------------------------------------------------------------- §2.9 apex

#[test]
fn soa_at_apex() {
    let w = world();
    assert_answer(
        &w.ask("Cluster.Local.", QSOA),
        &[
            "Cluster.Local. 5 IN SOA ns.dns.Cluster.Local. hostmaster.Cluster.Local. 1499347823 7200 1800 86400 5",
        ],
    );
}

#[test]
fn soa_below_apex_is_nodata_even_for_missing_names() {
    let w = world();
    assert_nodata(&w.ask("svc1.testns.svc.cluster.local.", QSOA), SOA);
    assert_nodata(&w.ask("does.not.exist.cluster.local.", QSOA), SOA);
}

#[test]
fn ns_at_apex_names_the_dns_service_while_soa_mname_is_ns_dns() {
    let w = world();
    let reply = w.ask("cluster.local.", NS);
    assert_answer(
        &reply,
        &["cluster.local. 5 IN NS kube-dns.kube-system.svc.cluster.local."],
    );
    assert_eq!(
        reply.additional,
        ["kube-dns.kube-system.svc.cluster.local. 5 IN A 10.96.0.10"]
    );
    let soa = w.ask("cluster.local.", QSOA);
    assert!(soa.answer[0].contains(" SOA ns.dns.cluster.local. "));
}

#[test]
fn ns_falls_back_to_ns_dns_with_own_addresses() {
    let mut w = world();
    w.self_ips = vec![ip("192.0.2.53"), ip("2001:db8::53")];
    let reply = w.ask("cluster.local.", NS);
    assert_answer(&reply, &["cluster.local. 5 IN NS ns.dns.cluster.local."]);
    assert_eq!(
        reply.additional,
        sorted(&[
            "ns.dns.cluster.local. 5 IN A 192.0.2.53",
            "ns.dns.cluster.local. 5 IN AAAA 2001:db8::53"
        ])
    );
    // No own address at all: NODATA.
    w.self_ips.clear();
    assert_nodata(&w.ask("cluster.local.", NS), SOA);
}

#[test]
fn ns_with_noendpoints_falls_back_to_ns_dns() {
    let mut opts = default_opts();
    opts.noendpoints = true;
    let w = world_with(opts, cluster());
    assert_answer(
        &w.ask("cluster.local.", NS),
        &["cluster.local. 5 IN NS ns.dns.cluster.local."],
    );
}

#[test]
fn ns_dns_name_answers_the_ns_addresses() {
    let w = world();
    assert_answer(
        &w.ask("ns.dns.cluster.local.", A),
        &["ns.dns.cluster.local. 5 IN A 10.96.0.10"],
    );
    assert_nodata(&w.ask("ns.dns.cluster.local.", AAAA), SOA);
    assert_nxdomain(&w.ask("ns.dns.cluster.local.", QTXT), SOA);
}

#[test]
fn apex_a_is_nodata_and_apex_txt_is_nxdomain() {
    let w = world();
    assert_nodata(&w.ask("cluster.local.", A), SOA);
    assert_nodata(&w.ask("cluster.local.", AAAA), SOA);
    assert_nodata(&w.ask("cluster.local.", QSRV), SOA);
    assert_nodata(&w.ask("cluster.local.", HINFO), SOA);
    assert_nxdomain(&w.ask("cluster.local.", QTXT), SOA);
}

#[test]
fn ns_below_apex_is_decided_like_a() {
    let w = world();
    assert_nodata(&w.ask("svc1.testns.svc.cluster.local.", NS), SOA);
    assert_nxdomain(&w.ask("nope.testns.svc.cluster.local.", NS), SOA);
}

// ---------------------------------------------------------------- §2.10 wildcards

#[test]
fn wildcard_labels_are_ordinary_labels() {
    let w = world();
    assert_nxdomain(&w.ask("*.testns.svc.cluster.local.", A), SOA);
    assert_nxdomain(&w.ask("any.testns.svc.cluster.local.", A), SOA);
    assert_nxdomain(&w.ask("svc1.*.svc.cluster.local.", A), SOA);
    assert_nxdomain(&w.ask("*.svc1.testns.svc.cluster.local.", QSRV), SOA);
    assert_nxdomain(
        &w.ask("_http._any.svc1.testns.svc.cluster.local.", QSRV),
        SOA,
    );
}

// ---------------------------------------------------------------- §3 NXDOMAIN vs NODATA

#[test]
fn other_qtypes_are_nodata_for_existing_names_and_nxdomain_otherwise() {
    let w = world();
    for qtype in [HINFO, CAA, RecordType::HTTPS, RecordType::NAPTR] {
        assert_nodata(&w.ask("svc1.testns.svc.cluster.local.", qtype), SOA);
        assert_nxdomain(&w.ask("nope.testns.svc.cluster.local.", qtype), SOA);
    }
}

#[test]
fn any_is_never_expanded() {
    let w = world();
    assert_nodata(&w.ask("svc1.testns.svc.cluster.local.", ANY), SOA);
    assert_nodata(&w.ask("hdls.testns.svc.cluster.local.", ANY), SOA);
    assert_nxdomain(&w.ask("nope.testns.svc.cluster.local.", ANY), SOA);
}

#[test]
fn txt_at_apex_svc_and_namespace_is_nxdomain_while_a_is_nodata() {
    let w = world();
    for name in [
        "cluster.local.",
        "svc.cluster.local.",
        "testns.svc.cluster.local.",
    ] {
        assert_nxdomain(&w.ask(name, QTXT), SOA);
        assert_nodata(&w.ask(name, A), SOA);
    }
    // A name with records of another type is NODATA for TXT.
    assert_nodata(&w.ask("svc1.testns.svc.cluster.local.", QTXT), SOA);
    assert_nxdomain(&w.ask("nope.testns.svc.cluster.local.", QTXT), SOA);
}

#[test]
fn mx_is_nodata_for_existing_names() {
    let w = world();
    assert_nodata(&w.ask("svc1.testns.svc.cluster.local.", MX), SOA);
    assert_nxdomain(&w.ask("nope.testns.svc.cluster.local.", MX), SOA);
}

#[test]
fn zone_transfers_are_refused() {
    let w = world();
    for qtype in [AXFR, IXFR] {
        let reply = w.ask("cluster.local.", qtype);
        assert_eq!(reply.rcode, ResponseCode::Refused);
        assert!(reply.answer.is_empty() && reply.authority.is_empty());
    }
}

#[test]
fn namespace_not_listed_behaves_as_nonexistent() {
    let mut opts = default_opts();
    opts.namespaces = Some(HashSet::from(["other".into()]));
    let w = world_with(opts, cluster());
    assert_nxdomain(&w.ask("svc1.testns.svc.cluster.local.", A), SOA);
    assert_nxdomain(&w.ask("testns.svc.cluster.local.", A), SOA);
    assert_answer(
        &w.ask("a.other.svc.cluster.local.", A),
        &["a.other.svc.cluster.local. 5 IN A 10.0.1.1"],
    );
}

#[test]
fn ignore_empty_service_makes_clusterip_without_endpoints_nxdomain() {
    let mut opts = default_opts();
    opts.ignore_empty_service = true;
    let w = world_with(opts, cluster());
    assert_nxdomain(&w.ask("dual.testns.svc.cluster.local.", A), SOA);
    assert_answer(
        &w.ask("svc1.testns.svc.cluster.local.", A),
        &["svc1.testns.svc.cluster.local. 5 IN A 10.0.0.1"],
    );
    // ExternalName and headless are unaffected.
    assert_answer(
        &w.ask("ext.testns.svc.cluster.local.", QCNAME),
        &["ext.testns.svc.cluster.local. 5 IN CNAME example.org."],
    );
    assert_eq!(w.ask("hdls.testns.svc.cluster.local.", A).answer.len(), 3);
}

#[test]
fn noendpoints_hides_headless_and_endpoint_names_but_not_cluster_ips() {
    let mut opts = default_opts();
    opts.noendpoints = true;
    let w = world_with(opts, cluster());
    assert_nxdomain(&w.ask("hdls.testns.svc.cluster.local.", A), SOA);
    assert_nxdomain(&w.ask("172-0-0-2.svc1.testns.svc.cluster.local.", A), SOA);
    assert_answer(
        &w.ask("svc1.testns.svc.cluster.local.", A),
        &["svc1.testns.svc.cluster.local. 5 IN A 10.0.0.1"],
    );
    let rsoa = "in-addr.arpa. 5 IN SOA ns.dns.in-addr.arpa. hostmaster.in-addr.arpa. 1499347823 7200 1800 86400 5";
    assert_nxdomain(&w.ask("2.0.0.172.in-addr.arpa.", QPTR), rsoa);
}

#[test]
fn negative_answers_carry_exactly_one_soa_and_aa() {
    let w = world();
    // assert_nxdomain/assert_nodata compare the whole reply; `ask` checks AA=1 and RA=0.
    assert_nxdomain(&w.ask("nope.testns.svc.cluster.local.", A), SOA);
    assert_nodata(&w.ask("svc1.testns.svc.cluster.local.", AAAA), SOA);
}

// ---------------------------------------------------------------- §4 TTLs

#[test]
fn ttl_option_applies_to_records_and_soa_ttl_is_capped() {
    let mut opts = default_opts();
    opts.ttl = 3600;
    let w = world_with(opts, cluster());
    assert_answer(
        &w.ask("svc1.testns.svc.cluster.local.", A),
        &["svc1.testns.svc.cluster.local. 3600 IN A 10.0.0.1"],
    );
    assert_nodata(
        &w.ask("svc1.testns.svc.cluster.local.", AAAA),
        "cluster.local. 300 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1499347823 7200 1800 86400 3600",
    );
    let mut opts = default_opts();
    opts.ttl = 0;
    let w = world_with(opts, cluster());
    assert_answer(
        &w.ask("svc1.testns.svc.cluster.local.", A),
        &["svc1.testns.svc.cluster.local. 0 IN A 10.0.0.1"],
    );
}

// ---------------------------------------------------------------- §6 zones

#[test]
fn several_forward_zones_serve_the_same_data_with_their_own_names() {
    let opts = Options::new(zones(&["cluster.local.", "example.com."]));
    let w = world_with(opts, cluster());
    assert_answer(
        &w.ask("svc1.testns.svc.example.com.", A),
        &["svc1.testns.svc.example.com. 5 IN A 10.0.0.1"],
    );
    let reply = w.ask("_http._tcp.svc1.testns.svc.example.com.", QSRV);
    assert_answer(
        &reply,
        &["_http._tcp.svc1.testns.svc.example.com. 5 IN SRV 0 100 80 svc1.testns.svc.example.com."],
    );
}

#[test]
fn cidr_reverse_zone_answers_ptr_inside_it() {
    let opts = Options::new(zones(&["cluster.local.", "0.0.10.in-addr.arpa."]));
    let w = world_with(opts, cluster());
    assert_answer(
        &w.ask("1.0.0.10.in-addr.arpa.", QPTR),
        &["1.0.0.10.in-addr.arpa. 5 IN PTR svc1.testns.svc.cluster.local."],
    );
    assert_nodata(
        &w.ask("0.0.10.in-addr.arpa.", QPTR),
        "0.0.10.in-addr.arpa. 5 IN SOA ns.dns.0.0.10.in-addr.arpa. hostmaster.0.0.10.in-addr.arpa. 1499347823 7200 1800 86400 5",
    );
}

// ---------------------------------------------------------------- robustness

#[test]
fn lookup_never_panics_on_odd_names() {
    let mut opts = default_opts();
    opts.pods = PodMode::Verified;
    let w = world_with(opts, cluster());
    let labels: [&[u8]; 14] = [
        b"svc",
        b"pod",
        b"testns",
        b"svc1",
        b"hdls",
        b"_http",
        b"_tcp",
        b"",
        b"\xff\xfe",
        b"-",
        b"--",
        b"a.b",
        b"1-2-3-4",
        b"dns-version",
    ];
    let qtypes = [
        A, AAAA, QSRV, QTXT, QPTR, QCNAME, NS, QSOA, MX, ANY, HINFO, AXFR,
    ];
    let zone = Name::from_ascii("cluster.local.").unwrap();
    let mut count = 0;
    // Every sequence of up to three labels from the set, then a few long ones, under the zone
    // and under in-addr.arpa.
    let mut stack: Vec<Vec<&[u8]>> = vec![
        vec![],
        vec![b"a", b"b", b"c", b"svc1", b"testns", b"svc"],
        vec![b"x", b"y", b"10-244-1-1", b"testns", b"pod"],
        vec![b"ep1", b"hdls", b"testns", b"svc", b"z", b"1"],
    ];
    while let Some(seq) = stack.pop() {
        if seq.len() < 3 {
            for l in labels.iter().filter(|l| !l.is_empty()) {
                let mut next = seq.clone();
                next.push(l);
                stack.push(next);
            }
        }
        for base in [zone.clone(), Name::from_ascii("in-addr.arpa.").unwrap()] {
            let Ok(name) =
                Name::from_labels(seq.iter().copied()).and_then(|n| n.append_domain(&base))
            else {
                continue;
            };
            let lower = name.to_lowercase();
            let index = w.store.guard();
            let ctx = Ctx {
                index: &index,
                opts: &w.opts,
                self_ips: &w.self_ips,
            };
            let zi = w.opts.match_zone(&lower).unwrap();
            for qtype in qtypes {
                let _ = lookup(
                    &ctx,
                    &Question {
                        name: &name,
                        lower: &lower,
                        qtype,
                    },
                    zi,
                );
                count += 1;
            }
        }
    }
    assert!(count > 40_000, "{count}");
}

#[test]
fn pods_verified_counts_every_pod_sharing_the_ip_in_the_srv_weight() {
    // Three hostNetwork Pods on one node share its IP: CoreDNS lists the name three times, so
    // the SRV weight is 100 / 3 = 33, and the records are deduplicated to one SRV and one A.
    let mut opts = default_opts();
    opts.pods = PodMode::Verified;
    let pod = |name: &str| {
        Object::Pod(Pod {
            namespace: "ns".into(),
            name: name.into(),
            ip: ip("10.1.1.1"),
        })
    };
    let objects = vec![namespace("ns"), pod("a"), pod("b"), pod("c")];
    let w = world_with(opts, objects);
    let reply = w.ask("10-1-1-1.ns.pod.cluster.local.", QSRV);
    assert_eq!(
        reply.answer,
        sorted(&["10-1-1-1.ns.pod.cluster.local. 5 IN SRV 0 33 0 10-1-1-1.ns.pod.cluster.local."]),
        "{reply:#?}"
    );
    assert_eq!(reply.additional.len(), 1, "{reply:#?}");
    assert_answer(
        &w.ask("10-1-1-1.ns.pod.cluster.local.", A),
        &["10-1-1-1.ns.pod.cluster.local. 5 IN A 10.1.1.1"],
    );
}
