//! The kubernetes plugin end to end: the real server started from a Corefile, cluster data from
//! manifests, queried over UDP and TCP; one test per behaviour of the cluster DNS spec (§1-§6,
//! §14), asserting rcode, AA/RA/TC and every section.

mod common;

use std::net::SocketAddr;

use common::{Opts, TestServer, demo_cluster_path, query_tcp, query_udp, start, start_with_files};
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};

// ------------------------------------------------------------------------------------------
// Harness

/// A reply reduced to what the tests compare: rcode, flags, and each section as sorted
/// zone-file-like lines (SOA serials masked: they are a clock value).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Reply {
    rcode: ResponseCode,
    aa: bool,
    ra: bool,
    tc: bool,
    answer: Vec<String>,
    authority: Vec<String>,
    additional: Vec<String>,
}

fn line(r: &Record) -> String {
    match &r.data {
        RData::SOA(soa) => format!(
            "{} {} IN SOA {} {} SERIAL {} {} {} {}",
            r.name, r.ttl, soa.mname, soa.rname, soa.refresh, soa.retry, soa.expire, soa.minimum
        ),
        _ => r.to_string(),
    }
}

fn lines(records: &[Record]) -> Vec<String> {
    let mut out: Vec<String> = records.iter().map(line).collect();
    out.sort();
    out
}

fn reduce(m: &Message) -> Reply {
    Reply {
        rcode: m.metadata.response_code,
        aa: m.metadata.authoritative,
        ra: m.metadata.recursion_available,
        tc: m.metadata.truncation,
        answer: lines(&m.answers),
        authority: lines(&m.authorities),
        additional: lines(&m.additionals),
    }
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = v.iter().map(|s| (*s).to_owned()).collect();
    out.sort();
    out
}

/// NOERROR with these answer and additional records (AA=1, RA=0, TC=0, no authority).
fn ok(answer: &[&str], additional: &[&str]) -> Reply {
    Reply {
        rcode: ResponseCode::NoError,
        aa: true,
        ra: false,
        tc: false,
        answer: sorted(answer),
        authority: Vec::new(),
        additional: sorted(additional),
    }
}

/// A negative reply: `rcode` with exactly the zone's SOA in authority.
fn negative(rcode: ResponseCode, soa: &str) -> Reply {
    Reply {
        rcode,
        aa: true,
        ra: false,
        tc: false,
        answer: Vec::new(),
        authority: vec![soa.to_owned()],
        additional: Vec::new(),
    }
}

fn nodata(soa: &str) -> Reply {
    negative(ResponseCode::NoError, soa)
}

fn nxdomain(soa: &str) -> Reply {
    negative(ResponseCode::NXDomain, soa)
}

/// The SOA line of `zone` for the `ttl` option. Owner, MNAME and RNAME all use the zone as the
/// query spelt it (CoreDNS cuts the zone from the query name).
fn soa_of(zone: &str, ttl: u32) -> String {
    format!(
        "{zone} {} IN SOA ns.dns.{zone} hostmaster.{zone} SERIAL 7200 1800 86400 {ttl}",
        ttl.min(300)
    )
}

/// The SOA of cluster.local. with the default ttl.
fn soa() -> String {
    soa_of("cluster.local.", 5)
}

/// Asks over UDP and over TCP (no EDNS, RD=1), checks the header basics of both and that both
/// transports give the same reply, and returns it.
async fn ask(addr: SocketAddr, name: &str, qtype: RecordType) -> Reply {
    let o = Opts::default();
    let udp = query_udp(addr, name, qtype, &o).await;
    let tcp = query_tcp(addr, name, qtype, &o).await;
    for (proto, m) in [("udp", &udp), ("tcp", &tcp)] {
        assert_eq!(m.metadata.id, o.id, "{proto} {name} {qtype}: id");
        assert_eq!(m.metadata.message_type, MessageType::Response);
        assert!(m.metadata.recursion_desired, "{proto} {name}: RD copied");
        assert_eq!(m.queries.len(), 1, "{proto} {name}: question echoed");
        assert_eq!(m.queries[0].name().to_string(), name, "question case kept");
        assert_eq!(m.queries[0].query_type(), qtype);
        assert!(
            m.edns.is_none(),
            "{proto} {name}: no OPT without EDNS in the query"
        );
    }
    let (u, t) = (reduce(&udp), reduce(&tcp));
    assert_eq!(u, t, "{name} {qtype}: UDP and TCP replies differ");
    u
}

/// A name the kubernetes plugin passes on to `whoami` (which answers with the client's address
/// and port in the additional section only, so UDP and TCP differ): checked over both.
async fn assert_passed_to_whoami(addr: SocketAddr, name: &str, qtype: RecordType) {
    for (proto, m) in [
        ("udp", query_udp(addr, name, qtype, &Opts::default()).await),
        ("tcp", query_tcp(addr, name, qtype, &Opts::default()).await),
    ] {
        let r = reduce(&m);
        assert_eq!(r.rcode, ResponseCode::NoError, "{proto} {name}");
        assert!(
            r.answer.is_empty() && r.authority.is_empty(),
            "{proto} {r:?}"
        );
        assert!(
            r.additional.contains(&format!("{name} 0 IN A 127.0.0.1"))
                && r.additional
                    .iter()
                    .any(|l| l.starts_with(&format!("_{proto}.{name} 0 IN SRV"))),
            "{proto} {r:?}"
        );
    }
}

/// Asserts the reply for each (name, type) in `cases`.
async fn expect(addr: SocketAddr, cases: &[(&str, RecordType, Reply)]) {
    for (name, qtype, want) in cases {
        let got = ask(addr, name, *qtype).await;
        assert_eq!(&got, want, "{name} {qtype}");
    }
}

/// The demo cluster under `cluster.local in-addr.arpa ip6.arpa` with `options` added.
async fn demo(options: &str) -> TestServer {
    start(&format!(
        ". {{\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        manifests {}\n{options}\n    }}\n}}\n",
        demo_cluster_path()
    ))
    .await
}

/// A server for `corefile` with `cluster.yaml` written next to it.
async fn with_cluster(corefile: &str, yaml: &str) -> TestServer {
    start_with_files(corefile, &[("cluster.yaml", yaml)]).await
}

/// The kubernetes block for cluster.yaml with `options`.
fn cluster_corefile(options: &str) -> String {
    format!(
        ". {{\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        manifests cluster.yaml\n{options}\n    }}\n}}\n"
    )
}

const NS: &str = "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns\n";

/// A headless Service `name` in namespace `ns` with one TCP port `p` 80.
fn headless_service(name: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: ns\nspec:\n  clusterIP: None\n  clusterIPs: [None]\n  ports:\n    - name: p\n      port: 80\n      protocol: TCP\n"
    )
}

/// An EndpointSlice of Service `service` with ready endpoints (address, hostname or "").
fn slice(name: &str, service: &str, endpoints: &[(&str, &str)]) -> String {
    let mut s = format!(
        "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {name}\n  namespace: ns\n  labels:\n    kubernetes.io/service-name: {service}\naddressType: IPv4\nendpoints:\n"
    );
    for (addr, host) in endpoints {
        s.push_str(&format!(
            "  - addresses: [\"{addr}\"]\n    conditions:\n      ready: true\n"
        ));
        if !host.is_empty() {
            s.push_str(&format!("    hostname: {host}\n"));
        }
    }
    s.push_str("ports:\n  - name: p\n    port: 80\n    protocol: TCP\n");
    s
}

use RecordType::{A, AAAA, ANY, AXFR, CNAME, HINFO, MX, NS as NS_, PTR, SOA, SRV, TXT};

// ------------------------------------------------------------------------------------------
// §1 Name model and query parsing

#[tokio::test]
async fn unknown_label_below_zone_is_nxdomain() {
    let s = demo("").await;
    expect(
        s.addr,
        &[
            ("foo.cluster.local.", A, nxdomain(&soa())),
            ("api.demo.foo.cluster.local.", A, nxdomain(&soa())),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn svc_and_pod_nodes_are_nodata() {
    let s = demo("").await;
    expect(
        s.addr,
        &[
            ("svc.cluster.local.", A, nodata(&soa())),
            ("pod.cluster.local.", A, nodata(&soa())),
            ("svc.cluster.local.", SRV, nodata(&soa())),
            ("pod.cluster.local.", AAAA, nodata(&soa())),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn namespace_node_nodata_if_exposed_else_nxdomain() {
    let s = demo("").await;
    expect(
        s.addr,
        &[
            ("demo.svc.cluster.local.", A, nodata(&soa())),
            ("demo.svc.cluster.local.", SRV, nodata(&soa())),
            ("nosuch.svc.cluster.local.", A, nxdomain(&soa())),
            ("api.nosuch.svc.cluster.local.", A, nxdomain(&soa())),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn too_many_labels_is_nxdomain() {
    let s = demo("").await;
    expect(
        s.addr,
        &[("a.b.c.api.demo.svc.cluster.local.", A, nxdomain(&soa()))],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn case_of_query_name_preserved() {
    let s = demo("").await;
    // Owner names are the query name as received; synthesized targets and the SOA use the zone
    // in the query's case, object names as stored.
    expect(
        s.addr,
        &[
            (
                "Kubernetes.DEFAULT.svc.Cluster.Local.",
                A,
                ok(&["Kubernetes.DEFAULT.svc.Cluster.Local. 5 IN A 10.96.0.1"], &[]),
            ),
            (
                "_HTTPS._TCP.Kubernetes.Default.SVC.Cluster.Local.",
                SRV,
                ok(
                    &["_HTTPS._TCP.Kubernetes.Default.SVC.Cluster.Local. 5 IN SRV 0 100 443 kubernetes.default.svc.Cluster.Local."],
                    &["kubernetes.default.svc.Cluster.Local. 5 IN A 10.96.0.1"],
                ),
            ),
            (
                "NoSuch.Default.svc.CLUSTER.local.",
                A,
                nxdomain(&soa_of("CLUSTER.local.", 5)),
            ),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn port_and_protocol_match_case_insensitively() {
    let s = demo("").await;
    expect(
        s.addr,
        &[(
            "_DNS._UDP.kube-dns.kube-system.svc.cluster.local.",
            SRV,
            ok(
                &["_DNS._UDP.kube-dns.kube-system.svc.cluster.local. 5 IN SRV 0 100 53 kube-dns.kube-system.svc.cluster.local."],
                &["kube-dns.kube-system.svc.cluster.local. 5 IN A 10.96.0.10"],
            ),
        )],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn non_ptr_in_reverse_zone_is_nxdomain() {
    let s = demo("").await;
    let rev = soa_of("in-addr.arpa.", 5);
    expect(
        s.addr,
        &[
            ("10.0.96.10.in-addr.arpa.", A, nxdomain(&rev)),
            ("api.demo.svc.in-addr.arpa.", A, nxdomain(&rev)),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn pod_name_extra_labels_are_ignored() {
    let s = demo("        pods insecure").await;
    let want = |name: &str| ok(&[&format!("{name} 5 IN A 1.2.3.4")], &[]);
    expect(
        s.addr,
        &[
            (
                "x.1-2-3-4.demo.pod.cluster.local.",
                A,
                want("x.1-2-3-4.demo.pod.cluster.local."),
            ),
            (
                "x.y.1-2-3-4.demo.pod.cluster.local.",
                A,
                want("x.y.1-2-3-4.demo.pod.cluster.local."),
            ),
            ("x.y.z.1-2-3-4.demo.pod.cluster.local.", A, nxdomain(&soa())),
        ],
    )
    .await;
    s.shutdown().await;
}

// ------------------------------------------------------------------------------------------
// §2.1 ClusterIP services

#[tokio::test]
async fn clusterip_service_answers_a_and_aaaa() {
    let s = demo("").await;
    let name = "api.demo.svc.cluster.local.";
    expect(
        s.addr,
        &[
            (name, A, ok(&[&format!("{name} 5 IN A 10.96.100.10")], &[])),
            (
                name,
                AAAA,
                ok(&[&format!("{name} 5 IN AAAA fd00:10:96::100a")], &[]),
            ),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn clusterip_service_without_endpoints_answers() {
    let s = demo("").await;
    let name = "empty.demo.svc.cluster.local.";
    expect(
        s.addr,
        &[(name, A, ok(&[&format!("{name} 5 IN A 10.96.100.20")], &[]))],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn existing_name_other_type_is_nodata() {
    let s = demo("").await;
    let name = "kubernetes.default.svc.cluster.local.";
    expect(
        s.addr,
        &[
            (name, AAAA, nodata(&soa())),
            (name, TXT, nodata(&soa())),
            (name, MX, nodata(&soa())),
            (name, CNAME, nodata(&soa())),
            (
                "10-244-1-5.api.demo.svc.cluster.local.",
                AAAA,
                nodata(&soa()),
            ),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn endpoint_name_under_clusterip_service_answers_endpoint_ip() {
    let s = demo("").await;
    let name = "10-244-1-5.api.demo.svc.cluster.local.";
    let v6 = "fd00-10-244-1--5.api.demo.svc.cluster.local.";
    expect(
        s.addr,
        &[
            (name, A, ok(&[&format!("{name} 5 IN A 10.244.1.5")], &[])),
            (
                v6,
                AAAA,
                ok(&[&format!("{v6} 5 IN AAAA fd00:10:244:1::5")], &[]),
            ),
            // Not ready: not an endpoint name.
            (
                "10-244-1-7.api.demo.svc.cluster.local.",
                A,
                nxdomain(&soa()),
            ),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn service_in_missing_namespace_or_missing_service_is_nxdomain() {
    let s = demo("").await;
    expect(
        s.addr,
        &[
            ("nosuch.demo.svc.cluster.local.", A, nxdomain(&soa())),
            ("api.web.svc.cluster.local.", A, nxdomain(&soa())),
            ("nosuch.api.demo.svc.cluster.local.", A, nxdomain(&soa())),
        ],
    )
    .await;
    s.shutdown().await;
}

// ------------------------------------------------------------------------------------------
// §2.2, §2.3 Headless services and endpoint names

#[tokio::test]
async fn headless_service_answers_ready_endpoints_only() {
    let s = demo("").await;
    let name = "db.demo.svc.cluster.local.";
    expect(
        s.addr,
        &[
            (
                name,
                A,
                ok(
                    &[
                        &format!("{name} 5 IN A 10.244.1.10"),
                        &format!("{name} 5 IN A 10.244.2.11"),
                    ],
                    &[],
                ),
            ),
            (name, AAAA, nodata(&soa())),
            (
                "db-0.db.demo.svc.cluster.local.",
                A,
                ok(&["db-0.db.demo.svc.cluster.local. 5 IN A 10.244.1.10"], &[]),
            ),
            // db-2 is not ready.
            ("db-2.db.demo.svc.cluster.local.", A, nxdomain(&soa())),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn headless_without_ready_endpoints_is_nxdomain_clusterip_is_not() {
    let s = demo("").await;
    let empty = "empty.demo.svc.cluster.local.";
    expect(
        s.addr,
        &[
            ("unready.demo.svc.cluster.local.", A, nxdomain(&soa())),
            ("unready.demo.svc.cluster.local.", SRV, nxdomain(&soa())),
            (
                empty,
                A,
                ok(&[&format!("{empty} 5 IN A 10.96.100.20")], &[]),
            ),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn endpoint_without_hostname_is_named_by_dashed_ip() {
    let s = demo("").await;
    let name = "10-244-1-20.cache-headless.demo.svc.cluster.local.";
    expect(
        s.addr,
        &[
            (name, A, ok(&[&format!("{name} 5 IN A 10.244.1.20")], &[])),
            (
                "cache-5f7b9c8d4-qwert.cache-headless.demo.svc.cluster.local.",
                A,
                nxdomain(&soa()),
            ),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn endpoint_pod_names_names_endpoints_after_pods() {
    let s = demo("        endpoint_pod_names").await;
    let name = "cache-5f7b9c8d4-qwert.cache-headless.demo.svc.cluster.local.";
    expect(
        s.addr,
        &[
            (name, A, ok(&[&format!("{name} 5 IN A 10.244.1.20")], &[])),
            // The hostname still wins over the pod name.
            (
                "db-1.db.demo.svc.cluster.local.",
                A,
                ok(&["db-1.db.demo.svc.cluster.local. 5 IN A 10.244.2.11"], &[]),
            ),
            (
                "10-244-1-20.cache-headless.demo.svc.cluster.local.",
                A,
                nxdomain(&soa()),
            ),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn same_ip_in_two_slices_is_answered_once() {
    let yaml = format!(
        "{NS}{}{}{}",
        headless_service("h"),
        slice("h-1", "h", &[("10.0.0.1", ""), ("10.0.0.2", "")]),
        slice("h-2", "h", &[("10.0.0.1", "")]),
    );
    let s = with_cluster(&cluster_corefile(""), &yaml).await;
    let name = "h.ns.svc.cluster.local.";
    expect(
        s.addr,
        &[
            (
                name,
                A,
                ok(
                    &[
                        &format!("{name} 5 IN A 10.0.0.1"),
                        &format!("{name} 5 IN A 10.0.0.2"),
                    ],
                    &[],
                ),
            ),
            (
                "1.0.0.10.in-addr.arpa.",
                PTR,
                ok(
                    &["1.0.0.10.in-addr.arpa. 5 IN PTR 10-0-0-1.h.ns.svc.cluster.local."],
                    &[],
                ),
            ),
        ],
    )
    .await;
    s.shutdown().await;
}

// ------------------------------------------------------------------------------------------
// §2.4 SRV

#[tokio::test]
async fn srv_clusterip_dual_stack_weight_and_glue() {
    let s = demo("").await;
    let target = "api.demo.svc.cluster.local.";
    expect(
        s.addr,
        &[(
            "_http._tcp.api.demo.svc.cluster.local.",
            SRV,
            ok(
                &[&format!(
                    "_http._tcp.api.demo.svc.cluster.local. 5 IN SRV 0 50 80 {target}"
                )],
                &[
                    &format!("{target} 5 IN A 10.96.100.10"),
                    &format!("{target} 5 IN AAAA fd00:10:96::100a"),
                ],
            ),
        )],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn srv_bare_service_name_lists_all_ports() {
    let s = demo("").await;
    let name = "kube-dns.kube-system.svc.cluster.local.";
    // Three ports, two of them 53: three entries (weight 33), two records after de-duplication.
    expect(
        s.addr,
        &[(
            name,
            SRV,
            ok(
                &[
                    &format!("{name} 5 IN SRV 0 33 53 {name}"),
                    &format!("{name} 5 IN SRV 0 33 9153 {name}"),
                ],
                &[&format!("{name} 5 IN A 10.96.0.10")],
            ),
        )],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn srv_headless_targets_endpoint_names() {
    let s = demo("").await;
    let q = "_postgres._tcp.db.demo.svc.cluster.local.";
    expect(
        s.addr,
        &[(
            q,
            SRV,
            ok(
                &[
                    &format!("{q} 5 IN SRV 0 50 5432 db-0.db.demo.svc.cluster.local."),
                    &format!("{q} 5 IN SRV 0 50 5432 db-1.db.demo.svc.cluster.local."),
                ],
                &[
                    "db-0.db.demo.svc.cluster.local. 5 IN A 10.244.1.10",
                    "db-1.db.demo.svc.cluster.local. 5 IN A 10.244.2.11",
                ],
            ),
        )],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn srv_weights_computed_before_dedup() {
    // Six addresses, two sharing the hostname `e4`: six entries (weight 16), five SRV records,
    // six glue records.
    let yaml = format!(
        "{NS}{}{}",
        headless_service("h"),
        slice(
            "h-1",
            "h",
            &[
                ("10.0.0.1", "e0"),
                ("10.0.0.2", "e1"),
                ("10.0.0.3", "e2"),
                ("10.0.0.4", "e3"),
                ("10.0.0.5", "e4"),
                ("10.0.0.6", "e4"),
            ],
        ),
    );
    let s = with_cluster(&cluster_corefile(""), &yaml).await;
    let q = "_p._tcp.h.ns.svc.cluster.local.";
    let srv: Vec<String> = (0..5)
        .map(|i| format!("{q} 5 IN SRV 0 16 80 e{i}.h.ns.svc.cluster.local."))
        .collect();
    let glue: Vec<String> = (0..6)
        .map(|i| {
            format!(
                "e{}.h.ns.svc.cluster.local. 5 IN A 10.0.0.{}",
                i.min(4),
                i + 1
            )
        })
        .collect();
    let srv: Vec<&str> = srv.iter().map(String::as_str).collect();
    let glue: Vec<&str> = glue.iter().map(String::as_str).collect();
    let e4 = "e4.h.ns.svc.cluster.local.";
    expect(
        s.addr,
        &[
            (q, SRV, ok(&srv, &glue)),
            // Two endpoints sharing a hostname: two addresses for the name.
            (
                e4,
                A,
                ok(
                    &[
                        &format!("{e4} 5 IN A 10.0.0.5"),
                        &format!("{e4} 5 IN A 10.0.0.6"),
                    ],
                    &[],
                ),
            ),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn srv_underscores_optional_and_a_on_srv_name() {
    let s = demo("").await;
    let q = "http.tcp.api.demo.svc.cluster.local.";
    let qa = "_http._tcp.api.demo.svc.cluster.local.";
    expect(
        s.addr,
        &[
            (
                q,
                SRV,
                ok(
                    &[&format!("{q} 5 IN SRV 0 50 80 api.demo.svc.cluster.local.")],
                    &[
                        "api.demo.svc.cluster.local. 5 IN A 10.96.100.10",
                        "api.demo.svc.cluster.local. 5 IN AAAA fd00:10:96::100a",
                    ],
                ),
            ),
            (qa, A, ok(&[&format!("{qa} 5 IN A 10.96.100.10")], &[])),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn srv_without_ports_or_on_externalname_is_nodata() {
    let s = demo("").await;
    expect(
        s.addr,
        &[
            ("portless.demo.svc.cluster.local.", SRV, nodata(&soa())),
            ("external.demo.svc.cluster.local.", SRV, nodata(&soa())),
        ],
    )
    .await;
    let name = "portless.demo.svc.cluster.local.";
    expect(
        s.addr,
        &[(name, A, ok(&[&format!("{name} 5 IN A 10.244.1.50")], &[]))],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn srv_port_or_protocol_mismatch_is_nxdomain() {
    let s = demo("").await;
    expect(
        s.addr,
        &[
            (
                "_nope._tcp.api.demo.svc.cluster.local.",
                SRV,
                nxdomain(&soa()),
            ),
            (
                "_http._udp.api.demo.svc.cluster.local.",
                SRV,
                nxdomain(&soa()),
            ),
        ],
    )
    .await;
    s.shutdown().await;
}

// ------------------------------------------------------------------------------------------
// §2.5 ExternalName

#[tokio::test]
async fn externalname_cname_query() {
    let s = demo("").await;
    let name = "external.demo.svc.cluster.local.";
    expect(
        s.addr,
        &[(
            name,
            CNAME,
            ok(&[&format!("{name} 5 IN CNAME example.com.")], &[]),
        )],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn externalname_in_zone_target_chased() {
    let s = demo("").await;
    let name = "internal-alias.demo.svc.cluster.local.";
    let cname = format!("{name} 5 IN CNAME api.demo.svc.cluster.local.");
    expect(
        s.addr,
        &[
            (
                name,
                A,
                ok(
                    &[&cname, "api.demo.svc.cluster.local. 5 IN A 10.96.100.10"],
                    &[],
                ),
            ),
            (
                name,
                AAAA,
                ok(
                    &[
                        &cname,
                        "api.demo.svc.cluster.local. 5 IN AAAA fd00:10:96::100a",
                    ],
                    &[],
                ),
            ),
        ],
    )
    .await;
    // The CNAME comes before the record it points to.
    let m = query_udp(s.addr, name, A, &Opts::default()).await;
    assert!(matches!(
        m.answers.first().map(|r| &r.data),
        Some(RData::CNAME(_))
    ));
    s.shutdown().await;
}

const ALIASES: &str = "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: to-v4\n  namespace: ns\nspec:\n  type: ExternalName\n  externalName: v4.ns.svc.cluster.local\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: v4\n  namespace: ns\nspec:\n  clusterIP: 10.96.5.5\n  clusterIPs: [10.96.5.5]\n  ports:\n    - name: p\n      port: 80\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: out\n  namespace: ns\nspec:\n  type: ExternalName\n  externalName: web.ns.svc.example.org\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: out-missing\n  namespace: ns\nspec:\n  type: ExternalName\n  externalName: missing.ns.svc.example.org\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: out-failing\n  namespace: ns\nspec:\n  type: ExternalName\n  externalName: www.failing.test\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: ns\nspec:\n  clusterIP: 10.1.2.3\n  clusterIPs: [10.1.2.3]\n  ports:\n    - name: p\n      port: 80\n";

#[tokio::test]
async fn externalname_in_zone_target_without_type_is_nodata() {
    let yaml = format!("{NS}{ALIASES}");
    let s = with_cluster(&cluster_corefile(""), &yaml).await;
    let name = "to-v4.ns.svc.cluster.local.";
    expect(
        s.addr,
        &[
            (
                name,
                A,
                ok(
                    &[
                        &format!("{name} 5 IN CNAME v4.ns.svc.cluster.local."),
                        "v4.ns.svc.cluster.local. 5 IN A 10.96.5.5",
                    ],
                    &[],
                ),
            ),
            // QUIRK: no AAAA at the target drops the CNAME too.
            (name, AAAA, nodata(&soa())),
            (name, TXT, nodata(&soa())),
            (name, MX, nodata(&soa())),
            // Nothing below an ExternalName service.
            ("x.to-v4.ns.svc.cluster.local.", A, nxdomain(&soa())),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn externalname_outside_zones_resolved_through_server() {
    // example.org is served by another block of the same server (another kubernetes plugin);
    // failing.test by a block whose chain has no plugin that answers.
    let corefile = ". {\n    kubernetes cluster.local {\n        manifests cluster.yaml\n    }\n}\nexample.org {\n    kubernetes {\n        manifests cluster.yaml\n        ttl 77\n    }\n}\nfailing.test {\n    errors\n}\n";
    let yaml = format!("{NS}{ALIASES}");
    let s = with_cluster(corefile, &yaml).await;
    let out = "out.ns.svc.cluster.local.";
    let missing = "out-missing.ns.svc.cluster.local.";
    expect(
        s.addr,
        &[
            // Upstream records keep their TTL.
            (
                out,
                A,
                ok(
                    &[
                        &format!("{out} 5 IN CNAME web.ns.svc.example.org."),
                        "web.ns.svc.example.org. 77 IN A 10.1.2.3",
                    ],
                    &[],
                ),
            ),
            // QUIRK: upstream NXDOMAIN gives NOERROR with just the CNAME.
            (
                missing,
                A,
                ok(
                    &[&format!("{missing} 5 IN CNAME missing.ns.svc.example.org.")],
                    &[],
                ),
            ),
            // Upstream failure: the CNAME alone, no SOA (as CoreDNS 1.14.7 answers; issue 12).
            (
                "out-failing.ns.svc.cluster.local.",
                A,
                ok(
                    &["out-failing.ns.svc.cluster.local. 5 IN CNAME www.failing.test."],
                    &[],
                ),
            ),
        ],
    )
    .await;
    s.shutdown().await;
}

// ------------------------------------------------------------------------------------------
// §2.6 PTR

#[tokio::test]
async fn ptr_for_service_ip_names_primary_zone() {
    // Primary zone = first non-reverse zone listed, whatever zone the query is in.
    let s = start(&format!(
        ". {{\n    kubernetes in-addr.arpa corp.example cluster.local ip6.arpa {{\n        manifests {}\n    }}\n}}\n",
        demo_cluster_path()
    ))
    .await;
    let v4 = "10.100.96.10.in-addr.arpa.";
    let v6 = "a.0.0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa.";
    expect(
        s.addr,
        &[
            (
                v4,
                PTR,
                ok(&[&format!("{v4} 5 IN PTR api.demo.svc.corp.example.")], &[]),
            ),
            (
                v6,
                PTR,
                ok(&[&format!("{v6} 5 IN PTR api.demo.svc.corp.example.")], &[]),
            ),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn ptr_for_endpoint_ip_names_endpoint() {
    let s = demo("").await;
    let db0 = "10.1.244.10.in-addr.arpa.";
    let cache = "20.1.244.10.in-addr.arpa.";
    expect(
        s.addr,
        &[
            (
                db0,
                PTR,
                ok(
                    &[&format!("{db0} 5 IN PTR db-0.db.demo.svc.cluster.local.")],
                    &[],
                ),
            ),
            (
                cache,
                PTR,
                ok(
                    &[&format!(
                        "{cache} 5 IN PTR 10-244-1-20.cache-headless.demo.svc.cluster.local."
                    )],
                    &[],
                ),
            ),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn ptr_miss_is_nxdomain_with_reverse_zone_soa() {
    let s = demo("").await;
    let rev = soa_of("in-addr.arpa.", 5);
    expect(
        s.addr,
        &[
            // An unready endpoint, a pod IP that is no endpoint, an unknown IP.
            ("7.1.244.10.in-addr.arpa.", PTR, nxdomain(&rev)),
            ("4.3.2.1.in-addr.arpa.", PTR, nxdomain(&rev)),
            // Partial reverse names are kubernetes names: NXDOMAIN; the apex is NODATA.
            ("96.10.in-addr.arpa.", PTR, nxdomain(&rev)),
            ("in-addr.arpa.", PTR, nodata(&rev)),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn ptr_on_forward_name_follows_forward_rules() {
    let s = demo("").await;
    expect(
        s.addr,
        &[
            ("api.demo.svc.cluster.local.", PTR, nodata(&soa())),
            ("nosuch.demo.svc.cluster.local.", PTR, nxdomain(&soa())),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn fallthrough_passes_ptr_misses_to_next() {
    // whoami runs after kubernetes: a fallen-through query gets its (additional-only) answer.
    let s = start(&format!(
        ". {{\n    whoami\n    kubernetes cluster.local in-addr.arpa {{\n        manifests {}\n        fallthrough in-addr.arpa\n    }}\n}}\n",
        demo_cluster_path()
    ))
    .await;
    assert_passed_to_whoami(s.addr, "4.3.2.1.in-addr.arpa.", PTR).await;
    // Hits are still answered by kubernetes; forward name errors are not passed on.
    let hit = "1.0.96.10.in-addr.arpa.";
    expect(
        s.addr,
        &[
            (
                hit,
                PTR,
                ok(
                    &[&format!(
                        "{hit} 5 IN PTR kubernetes.default.svc.cluster.local."
                    )],
                    &[],
                ),
            ),
            ("nosuch.demo.svc.cluster.local.", A, nxdomain(&soa())),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn ptr_ignores_namespace_labels_but_honours_namespaces() {
    let hit = "1.0.96.10.in-addr.arpa.";
    let want = ok(
        &[&format!(
            "{hit} 5 IN PTR kubernetes.default.svc.cluster.local."
        )],
        &[],
    );
    // `default` has no `team` label: its names are hidden, its PTRs are not.
    let s = demo("        namespace_labels team").await;
    expect(
        s.addr,
        &[
            (hit, PTR, want),
            ("kubernetes.default.svc.cluster.local.", A, nxdomain(&soa())),
            (
                "api.demo.svc.cluster.local.",
                A,
                ok(&["api.demo.svc.cluster.local. 5 IN A 10.96.100.10"], &[]),
            ),
        ],
    )
    .await;
    s.shutdown().await;
    let s = demo("        namespaces demo").await;
    expect(s.addr, &[(hit, PTR, nxdomain(&soa_of("in-addr.arpa.", 5)))]).await;
    s.shutdown().await;
}

// ------------------------------------------------------------------------------------------
// §2.7 Pods

#[tokio::test]
async fn pods_disabled_is_nxdomain() {
    let s = demo("").await;
    expect(
        s.addr,
        &[
            ("10-244-1-5.demo.pod.cluster.local.", A, nxdomain(&soa())),
            ("demo.pod.cluster.local.", A, nxdomain(&soa())),
            ("pod.cluster.local.", A, nodata(&soa())),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn pods_insecure_answers_any_ip_in_exposed_namespace() {
    let s = demo("        pods insecure").await;
    let v4 = "1-2-3-4.demo.pod.cluster.local.";
    let v6 = "1234-abcd--1.demo.pod.cluster.local.";
    expect(
        s.addr,
        &[
            (v4, A, ok(&[&format!("{v4} 5 IN A 1.2.3.4")], &[])),
            (v4, AAAA, nodata(&soa())),
            (
                v6,
                AAAA,
                ok(&[&format!("{v6} 5 IN AAAA 1234:abcd::1")], &[]),
            ),
            (v6, A, nodata(&soa())),
            ("demo.pod.cluster.local.", A, nodata(&soa())),
            ("1-2-3-4.nosuch.pod.cluster.local.", A, nxdomain(&soa())),
            ("not-an-ip.demo.pod.cluster.local.", A, nxdomain(&soa())),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn pods_verified_requires_pod_ip() {
    let s = demo("        pods verified").await;
    let pod = "10-244-1-5.demo.pod.cluster.local.";
    expect(
        s.addr,
        &[
            (pod, A, ok(&[&format!("{pod} 5 IN A 10.244.1.5")], &[])),
            // Same IP, other namespace; an IP no pod has.
            ("10-244-1-5.web.pod.cluster.local.", A, nxdomain(&soa())),
            ("1-2-3-4.demo.pod.cluster.local.", A, nxdomain(&soa())),
            // QUIRK: only the primary IP of a dual-stack pod is known.
            (
                "fd00-10-244-1--5.demo.pod.cluster.local.",
                AAAA,
                nxdomain(&soa()),
            ),
        ],
    )
    .await;
    s.shutdown().await;
}

// ------------------------------------------------------------------------------------------
// §2.8, §2.9 dns-version, apex

#[tokio::test]
async fn dns_version_txt() {
    let s = demo("        ttl 30").await;
    let name = "dns-version.cluster.local.";
    expect(
        s.addr,
        &[
            (name, TXT, ok(&[&format!("{name} 28800 IN TXT 1.1.0")], &[])),
            // QUIRK: any other type is NXDOMAIN.
            (name, A, nxdomain(&soa_of("cluster.local.", 30))),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn soa_at_apex_only() {
    let s = demo("").await;
    let apex = "Cluster.Local.";
    expect(s.addr, &[(apex, SOA, ok(&[&soa_of(apex, 5)], &[]))]).await;
    s.shutdown().await;
}

#[tokio::test]
async fn soa_below_apex_is_nodata() {
    let s = demo("").await;
    expect(
        s.addr,
        &[
            ("api.demo.svc.cluster.local.", SOA, nodata(&soa())),
            ("nosuch.demo.svc.cluster.local.", SOA, nodata(&soa())),
            ("foo.cluster.local.", SOA, nodata(&soa())),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn txt_at_apex_is_nxdomain() {
    let s = demo("").await;
    expect(
        s.addr,
        &[
            ("cluster.local.", TXT, nxdomain(&soa())),
            ("svc.cluster.local.", TXT, nxdomain(&soa())),
            ("demo.svc.cluster.local.", TXT, nxdomain(&soa())),
            ("cluster.local.", A, nodata(&soa())),
            ("cluster.local.", AAAA, nodata(&soa())),
            ("cluster.local.", SRV, nodata(&soa())),
            ("cluster.local.", HINFO, nodata(&soa())),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn ns_at_apex_without_own_non_loopback_address_is_nodata() {
    // The test server listens on 127.0.0.1 only; CoreDNS ignores loopback addresses when it
    // looks for itself, so it has no NS to give (and `ns.dns.<zone>` has no address).
    let s = demo("").await;
    expect(
        s.addr,
        &[
            ("cluster.local.", NS_, nodata(&soa())),
            ("ns.dns.cluster.local.", A, nodata(&soa())),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn ns_below_apex_decided_like_a() {
    let s = demo("").await;
    expect(
        s.addr,
        &[
            ("api.demo.svc.cluster.local.", NS_, nodata(&soa())),
            ("nosuch.demo.svc.cluster.local.", NS_, nxdomain(&soa())),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn wildcards_are_ordinary_labels() {
    let s = demo("").await;
    expect(
        s.addr,
        &[
            ("*.demo.svc.cluster.local.", A, nxdomain(&soa())),
            ("api.*.svc.cluster.local.", A, nxdomain(&soa())),
            ("any.demo.svc.cluster.local.", A, nxdomain(&soa())),
        ],
    )
    .await;
    s.shutdown().await;
}

// ------------------------------------------------------------------------------------------
// §3 NXDOMAIN vs NODATA vs SERVFAIL

#[tokio::test]
async fn any_is_nodata() {
    let s = demo("").await;
    expect(
        s.addr,
        &[
            ("api.demo.svc.cluster.local.", ANY, nodata(&soa())),
            ("api.demo.svc.cluster.local.", HINFO, nodata(&soa())),
            ("nosuch.demo.svc.cluster.local.", ANY, nxdomain(&soa())),
            ("nosuch.demo.svc.cluster.local.", HINFO, nxdomain(&soa())),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn zone_transfer_is_refused() {
    let s = demo("").await;
    // Over TCP only: AXFR over UDP is not meaningful.
    let m = query_tcp(s.addr, "cluster.local.", AXFR, &Opts::default()).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(m.answers.is_empty() && m.authorities.is_empty());
    s.shutdown().await;
}

#[tokio::test]
async fn namespaces_option_hides_others() {
    let s = demo("        namespaces demo\n        pods insecure").await;
    expect(
        s.addr,
        &[
            (
                "api.demo.svc.cluster.local.",
                A,
                ok(&["api.demo.svc.cluster.local. 5 IN A 10.96.100.10"], &[]),
            ),
            ("kubernetes.default.svc.cluster.local.", A, nxdomain(&soa())),
            ("default.svc.cluster.local.", A, nxdomain(&soa())),
            ("1-2-3-4.default.pod.cluster.local.", A, nxdomain(&soa())),
            ("frontend.web.svc.cluster.local.", SRV, nxdomain(&soa())),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn namespace_labels_hide_unmatched_namespaces() {
    let s = demo("        namespace_labels team=web").await;
    expect(
        s.addr,
        &[
            (
                "frontend.web.svc.cluster.local.",
                A,
                ok(
                    &["frontend.web.svc.cluster.local. 5 IN A 10.96.200.20"],
                    &[],
                ),
            ),
            ("api.demo.svc.cluster.local.", A, nxdomain(&soa())),
            ("demo.svc.cluster.local.", A, nxdomain(&soa())),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn labels_option_filters_services() {
    let s = demo("        labels app in (api, db)").await;
    expect(
        s.addr,
        &[
            (
                "api.demo.svc.cluster.local.",
                A,
                ok(&["api.demo.svc.cluster.local. 5 IN A 10.96.100.10"], &[]),
            ),
            (
                "db.demo.svc.cluster.local.",
                A,
                ok(
                    &[
                        "db.demo.svc.cluster.local. 5 IN A 10.244.1.10",
                        "db.demo.svc.cluster.local. 5 IN A 10.244.2.11",
                    ],
                    &[],
                ),
            ),
            ("frontend.web.svc.cluster.local.", A, nxdomain(&soa())),
            ("kubernetes.default.svc.cluster.local.", A, nxdomain(&soa())),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn ignore_empty_service_is_nxdomain() {
    let s = demo("        ignore empty_service").await;
    expect(
        s.addr,
        &[
            ("empty.demo.svc.cluster.local.", A, nxdomain(&soa())),
            (
                "api.demo.svc.cluster.local.",
                A,
                ok(&["api.demo.svc.cluster.local. 5 IN A 10.96.100.10"], &[]),
            ),
            (
                "external.demo.svc.cluster.local.",
                CNAME,
                ok(
                    &["external.demo.svc.cluster.local. 5 IN CNAME example.com."],
                    &[],
                ),
            ),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn noendpoints_hides_endpoint_names() {
    let s = demo("        noendpoints").await;
    expect(
        s.addr,
        &[
            (
                "api.demo.svc.cluster.local.",
                A,
                ok(&["api.demo.svc.cluster.local. 5 IN A 10.96.100.10"], &[]),
            ),
            ("db.demo.svc.cluster.local.", A, nxdomain(&soa())),
            ("db-0.db.demo.svc.cluster.local.", A, nxdomain(&soa())),
            (
                "10-244-1-5.api.demo.svc.cluster.local.",
                A,
                nxdomain(&soa()),
            ),
            (
                "10.1.244.10.in-addr.arpa.",
                PTR,
                nxdomain(&soa_of("in-addr.arpa.", 5)),
            ),
            (
                "10.100.96.10.in-addr.arpa.",
                PTR,
                ok(
                    &["10.100.96.10.in-addr.arpa. 5 IN PTR api.demo.svc.cluster.local."],
                    &[],
                ),
            ),
        ],
    )
    .await;
    s.shutdown().await;
}

// ------------------------------------------------------------------------------------------
// §4 TTLs

#[tokio::test]
async fn ttl_option_applies() {
    let s = demo("        ttl 3600\n        pods insecure").await;
    let soa = soa_of("cluster.local.", 3600);
    assert!(
        soa.contains(" 300 IN SOA ") && soa.ends_with(" 3600"),
        "{soa}"
    );
    let srv = "_https._tcp.kubernetes.default.svc.cluster.local.";
    let rev = "1.0.96.10.in-addr.arpa.";
    let name = "internal-alias.demo.svc.cluster.local.";
    expect(
        s.addr,
        &[
            (
                srv,
                SRV,
                ok(
                    &[&format!(
                        "{srv} 3600 IN SRV 0 100 443 kubernetes.default.svc.cluster.local."
                    )],
                    &["kubernetes.default.svc.cluster.local. 3600 IN A 10.96.0.1"],
                ),
            ),
            (
                rev,
                PTR,
                ok(
                    &[&format!(
                        "{rev} 3600 IN PTR kubernetes.default.svc.cluster.local."
                    )],
                    &[],
                ),
            ),
            (
                name,
                A,
                ok(
                    &[
                        &format!("{name} 3600 IN CNAME api.demo.svc.cluster.local."),
                        "api.demo.svc.cluster.local. 3600 IN A 10.96.100.10",
                    ],
                    &[],
                ),
            ),
            (
                "1-2-3-4.demo.pod.cluster.local.",
                A,
                ok(&["1-2-3-4.demo.pod.cluster.local. 3600 IN A 1.2.3.4"], &[]),
            ),
            ("cluster.local.", SOA, ok(&[&soa], &[])),
            ("nosuch.demo.svc.cluster.local.", A, nxdomain(&soa)),
            (
                "dns-version.cluster.local.",
                TXT,
                ok(&["dns-version.cluster.local. 28800 IN TXT 1.1.0"], &[]),
            ),
        ],
    )
    .await;
    s.shutdown().await;
    let s = demo("        ttl 0").await;
    expect(
        s.addr,
        &[(
            "kubernetes.default.svc.cluster.local.",
            A,
            ok(
                &["kubernetes.default.svc.cluster.local. 0 IN A 10.96.0.1"],
                &[],
            ),
        )],
    )
    .await;
    s.shutdown().await;
}

// ------------------------------------------------------------------------------------------
// §6 Zones

#[tokio::test]
async fn multiple_forward_zones_serve_same_data() {
    let s = start(&format!(
        ". {{\n    kubernetes cluster.local example.com in-addr.arpa {{\n        manifests {}\n    }}\n}}\n",
        demo_cluster_path()
    ))
    .await;
    let q = "_https._tcp.kubernetes.default.svc.example.com.";
    let rev = "1.0.96.10.in-addr.arpa.";
    expect(
        s.addr,
        &[
            (
                q,
                SRV,
                ok(
                    &[&format!(
                        "{q} 5 IN SRV 0 100 443 kubernetes.default.svc.example.com."
                    )],
                    &["kubernetes.default.svc.example.com. 5 IN A 10.96.0.1"],
                ),
            ),
            (
                "nosuch.example.com.",
                A,
                nxdomain(&soa_of("example.com.", 5)),
            ),
            // PTR targets use the primary zone.
            (
                rev,
                PTR,
                ok(
                    &[&format!(
                        "{rev} 5 IN PTR kubernetes.default.svc.cluster.local."
                    )],
                    &[],
                ),
            ),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn cidr_reverse_zone() {
    let s = start(&format!(
        ". {{\n    whoami\n    kubernetes cluster.local 10.96.0.0/16 {{\n        manifests {}\n    }}\n}}\n",
        demo_cluster_path()
    ))
    .await;
    let hit = "10.0.96.10.in-addr.arpa.";
    let zone_soa = soa_of("96.10.in-addr.arpa.", 5);
    expect(
        s.addr,
        &[
            (
                hit,
                PTR,
                ok(
                    &[&format!(
                        "{hit} 5 IN PTR kube-dns.kube-system.svc.cluster.local."
                    )],
                    &[],
                ),
            ),
            ("99.99.96.10.in-addr.arpa.", PTR, nxdomain(&zone_soa)),
            ("96.10.in-addr.arpa.", PTR, nodata(&zone_soa)),
        ],
    )
    .await;
    // An endpoint IP outside the CIDR is not in the plugin's zones: whoami answers.
    assert_passed_to_whoami(s.addr, "10.1.244.10.in-addr.arpa.", PTR).await;
    s.shutdown().await;
}

// ------------------------------------------------------------------------------------------
// §3 not synced, §4 size and EDNS

#[tokio::test]
async fn unreachable_api_name_errors_are_servfail_until_synced() {
    let (_guard, logs) = common::capture_logs();
    // Nothing listens on port 1: the API source never syncs.
    let corefile = ". {\n    kubernetes cluster.local in-addr.arpa {\n        ttl 30\n        endpoint http://127.0.0.1:1\n        startup_timeout 100ms\n    }\n}\n";
    let dir = common::corefile_dir(corefile);
    let config = clusterdns::load_config(&dir.path().join("Corefile"), 0).expect("valid");
    let readiness: Vec<Option<bool>> = config.servers[0]
        .chain
        .plugins()
        .iter()
        .map(|p| p.ready())
        .collect();
    assert_eq!(readiness, vec![Some(false)]);
    assert!(config.servers[0].inactive.is_empty());
    let s = start(corefile).await;
    let text = logs.text();
    assert!(
        text.contains("WARN") && text.contains("starting server with unsynced Kubernetes API"),
        "{text}"
    );
    let soa30 = soa_of("cluster.local.", 30);
    expect(
        s.addr,
        &[
            // Name errors: SERVFAIL with the SOA, AA set.
            (
                "kubernetes.default.svc.cluster.local.",
                A,
                negative(ResponseCode::ServFail, &soa30),
            ),
            (
                "foo.cluster.local.",
                A,
                negative(ResponseCode::ServFail, &soa30),
            ),
            (
                "1.0.96.10.in-addr.arpa.",
                PTR,
                negative(ResponseCode::ServFail, &soa_of("in-addr.arpa.", 30)),
            ),
            // What exists without any cluster data is still answered; NODATA stays NODATA.
            ("cluster.local.", A, nodata(&soa30)),
            ("svc.cluster.local.", A, nodata(&soa30)),
            ("cluster.local.", SOA, ok(&[&soa30], &[])),
            (
                "dns-version.cluster.local.",
                TXT,
                ok(&["dns-version.cluster.local. 28800 IN TXT 1.1.0"], &[]),
            ),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn not_synced_servfail_but_fallthrough_wins() {
    let s = start(
        ". {\n    whoami\n    kubernetes cluster.local in-addr.arpa {\n        fallthrough in-addr.arpa\n        endpoint http://127.0.0.1:1\n        startup_timeout 100ms\n    }\n}\n",
    )
    .await;
    assert_passed_to_whoami(s.addr, "1.0.96.10.in-addr.arpa.", PTR).await;
    expect(
        s.addr,
        &[(
            "foo.cluster.local.",
            A,
            negative(ResponseCode::ServFail, &soa()),
        )],
    )
    .await;
    s.shutdown().await;
}

/// A headless Service `big` with `n` ready endpoints 10.0.x.y (no hostnames).
fn big_cluster(n: usize) -> String {
    let endpoints: Vec<String> = (0..n)
        .map(|i| format!("10.0.{}.{}", i / 200, i % 200 + 1))
        .collect();
    let refs: Vec<(&str, &str)> = endpoints.iter().map(|a| (a.as_str(), "")).collect();
    format!(
        "{NS}{}{}",
        headless_service("big"),
        slice("big-1", "big", &refs)
    )
}

#[tokio::test]
async fn large_answers_truncated_to_client_udp_size() {
    let s = with_cluster(&cluster_corefile(""), &big_cluster(100)).await;
    let name = "big.ns.svc.cluster.local.";

    // UDP without EDNS: at most 512 bytes, TC=1, no OPT.
    let o = Opts::default();
    let bytes = common::udp_raw(s.addr, &common::build(name, A, &o), common::TIMEOUT)
        .await
        .expect("reply");
    assert!(bytes.len() <= 512, "{} bytes", bytes.len());
    let m = Message::from_vec(&bytes).expect("decodable");
    assert!(m.metadata.truncation);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.len() < 100, "{}", m.answers.len());
    assert!(m.edns.is_none());

    // UDP with EDNS 4096 and DO: all 100 A records fit; OPT mirrors size and DO.
    let o = Opts {
        edns: Some(4096),
        dnssec_ok: true,
        ..Opts::default()
    };
    let bytes = common::udp_raw(s.addr, &common::build(name, A, &o), common::TIMEOUT)
        .await
        .expect("reply");
    assert!(
        bytes.len() > 512 && bytes.len() <= 4096,
        "{} bytes",
        bytes.len()
    );
    let m = Message::from_vec(&bytes).expect("decodable");
    assert!(!m.metadata.truncation && m.metadata.authoritative);
    assert_eq!(m.answers.len(), 100);
    let edns = m.edns.as_ref().expect("OPT mirrored");
    assert_eq!(edns.max_payload(), 4096);
    assert!(edns.flags().dnssec_ok);
    assert_eq!(edns.version(), 0);

    // Without DO in the query, none in the reply.
    let o = Opts {
        edns: Some(1232),
        ..Opts::default()
    };
    let m = query_udp(s.addr, name, A, &o).await;
    let edns = m.edns.as_ref().expect("OPT mirrored");
    assert_eq!(edns.max_payload(), 1232);
    assert!(!edns.flags().dnssec_ok);
    assert!(
        m.metadata.truncation,
        "100 A records do not fit in 1232 bytes"
    );

    // SRV with glue is larger than 4096 bytes: truncated over UDP, complete over TCP.
    let o = Opts {
        edns: Some(4096),
        ..Opts::default()
    };
    let bytes = common::udp_raw(s.addr, &common::build(name, SRV, &o), common::TIMEOUT)
        .await
        .expect("reply");
    assert!(bytes.len() <= 4096, "{} bytes", bytes.len());
    let m = Message::from_vec(&bytes).expect("decodable");
    assert!(m.metadata.truncation);
    let m = query_tcp(s.addr, name, SRV, &o).await;
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 100);
    assert_eq!(m.additionals.len(), 100);
    assert!(
        m.answers
            .iter()
            .all(|r| matches!(&r.data, RData::SRV(srv) if srv.weight == 1))
    );
    assert_eq!(m.edns.as_ref().map(|e| e.max_payload()), Some(4096));

    // TCP without EDNS: complete as well.
    let m = query_tcp(s.addr, name, A, &Opts::default()).await;
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 100);
    s.shutdown().await;
}

// ------------------------------------------------------------------------------------------
// Edge cases of §2 with purpose-built clusters

/// A ClusterIP Service `name` in `ns` with `ports` YAML (may be empty).
fn clusterip_service(name: &str, ip: &str, ports: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: ns\nspec:\n  clusterIP: {ip}\n  clusterIPs: [{ip}]\n{ports}"
    )
}

#[tokio::test]
async fn clusterip_service_without_ports_answers_a_but_no_srv() {
    let yaml = format!("{NS}{}", clusterip_service("noports", "10.96.9.9", ""));
    let s = with_cluster(&cluster_corefile(""), &yaml).await;
    let name = "noports.ns.svc.cluster.local.";
    expect(
        s.addr,
        &[
            (name, A, ok(&[&format!("{name} 5 IN A 10.96.9.9")], &[])),
            (name, SRV, nodata(&soa())),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn externalname_that_is_an_ip_is_nxdomain() {
    let yaml = format!(
        "{NS}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: byip\n  namespace: ns\nspec:\n  type: ExternalName\n  externalName: 192.0.2.1\n"
    );
    let s = with_cluster(&cluster_corefile(""), &yaml).await;
    let name = "byip.ns.svc.cluster.local.";
    expect(
        s.addr,
        &[(name, A, nxdomain(&soa())), (name, CNAME, nxdomain(&soa()))],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn srv_on_endpoint_name_lists_that_endpoints_ports() {
    let s = demo("").await;
    let q = "10-244-1-5.api.demo.svc.cluster.local.";
    expect(
        s.addr,
        &[(
            q,
            SRV,
            ok(
                &[
                    &format!("{q} 5 IN SRV 0 50 8080 {q}"),
                    &format!("{q} 5 IN SRV 0 50 9090 {q}"),
                ],
                &[&format!("{q} 5 IN A 10.244.1.5")],
            ),
        )],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn ptr_for_ipv6_endpoint_uses_dashed_name() {
    let s = demo("").await;
    // fd00:10:244:1::5
    let q = "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.4.4.2.0.0.1.0.0.0.0.d.f.ip6.arpa.";
    expect(
        s.addr,
        &[(
            q,
            PTR,
            ok(
                &[&format!(
                    "{q} 5 IN PTR fd00-10-244-1--5.api.demo.svc.cluster.local."
                )],
                &[],
            ),
        )],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn ptr_for_ip_of_two_services_names_both() {
    let yaml = format!(
        "{NS}{}{}{}{}",
        headless_service("one"),
        headless_service("two"),
        slice("one-1", "one", &[("10.0.0.1", "web")]),
        slice("two-1", "two", &[("10.0.0.1", "")]),
    );
    let s = with_cluster(&cluster_corefile(""), &yaml).await;
    let q = "1.0.0.10.in-addr.arpa.";
    expect(
        s.addr,
        &[(
            q,
            PTR,
            ok(
                &[
                    &format!("{q} 5 IN PTR web.one.ns.svc.cluster.local."),
                    &format!("{q} 5 IN PTR 10-0-0-1.two.ns.svc.cluster.local."),
                ],
                &[],
            ),
        )],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn ignore_empty_service_counts_ready_endpoints_only() {
    let unready = "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: c-1\n  namespace: ns\n  labels:\n    kubernetes.io/service-name: c\naddressType: IPv4\nendpoints:\n  - addresses: [10.0.0.1]\n    conditions:\n      ready: false\nports:\n  - name: p\n    port: 80\n";
    let yaml = format!(
        "{NS}{}{unready}",
        clusterip_service(
            "c",
            "10.96.1.1",
            "  ports:\n    - name: p\n      port: 80\n"
        )
    );
    let s = with_cluster(&cluster_corefile("        ignore empty_service"), &yaml).await;
    expect(s.addr, &[("c.ns.svc.cluster.local.", A, nxdomain(&soa()))]).await;
    s.shutdown().await;
    let s = with_cluster(&cluster_corefile(""), &yaml).await;
    expect(
        s.addr,
        &[(
            "c.ns.svc.cluster.local.",
            A,
            ok(&["c.ns.svc.cluster.local. 5 IN A 10.96.1.1"], &[]),
        )],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn zone_names_in_the_corefile_are_case_insensitive() {
    let s = start(&format!(
        "Cluster.LOCAL {{\n    kubernetes {{\n        manifests {}\n    }}\n}}\n",
        demo_cluster_path()
    ))
    .await;
    let name = "kubernetes.default.svc.cluster.local.";
    expect(
        s.addr,
        &[
            (name, A, ok(&[&format!("{name} 5 IN A 10.96.0.1")], &[])),
            ("nosuch.cluster.local.", A, nxdomain(&soa())),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn pods_verified_host_network_ip_answered_once() {
    let s = demo("        pods verified").await;
    let name = "192-168-49-2.kube-system.pod.cluster.local.";
    expect(
        s.addr,
        &[
            (name, A, ok(&[&format!("{name} 5 IN A 192.168.49.2")], &[])),
            ("kube-system.pod.cluster.local.", A, nodata(&soa())),
            ("pod.cluster.local.", TXT, nxdomain(&soa())),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn externalname_cname_loops_end_in_nodata() {
    let ext = |name: &str, target: &str| {
        format!(
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: ns\nspec:\n  type: ExternalName\n  externalName: {target}\n"
        )
    };
    let yaml = format!(
        "{NS}{}{}{}",
        ext("self", "self.ns.svc.cluster.local"),
        ext("a", "b.ns.svc.cluster.local"),
        ext("b", "a.ns.svc.cluster.local"),
    );
    let s = with_cluster(&cluster_corefile(""), &yaml).await;
    let self_name = "self.ns.svc.cluster.local.";
    expect(
        s.addr,
        &[
            (self_name, A, nodata(&soa())),
            ("a.ns.svc.cluster.local.", A, nodata(&soa())),
            ("b.ns.svc.cluster.local.", AAAA, nodata(&soa())),
            (
                "a.ns.svc.cluster.local.",
                CNAME,
                ok(
                    &["a.ns.svc.cluster.local. 5 IN CNAME b.ns.svc.cluster.local."],
                    &[],
                ),
            ),
        ],
    )
    .await;
    s.shutdown().await;
}
