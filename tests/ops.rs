//! The operations plugins over real sockets on loopback: `health`, `ready` and `prometheus`
//! answer HTTP GETs (a hand-written HTTP/1.1 client over TcpStream), `/metrics` is parsed with a
//! Prometheus text parser and its counters follow real queries, `loadbalance` rotates answers.

mod common;

use std::collections::HashSet;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use common::{
    Opts, TIMEOUT, build, demo_cluster_path, http_get, start_with_files, tcp_raw, udp_raw,
};

fn demo() -> String {
    std::fs::read_to_string(demo_cluster_path()).expect("demo cluster manifests")
}

const ENDPOINTS: &str = "\
.:0 {
    health 127.0.0.1:0
    ready 127.0.0.1:0
    prometheus 127.0.0.1:0
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        manifests demo.yaml
    }
}
";

#[tokio::test]
async fn health_answers_ok() {
    let s = start_with_files(ENDPOINTS, &[("demo.yaml", &demo())]).await;
    assert_eq!(
        http_get(s.http_addr("/health"), "/health").await,
        (200, "OK".into())
    );
    // Another path on the same listener is not found.
    assert_eq!(http_get(s.http_addr("/health"), "/nope").await.0, 404);
    s.shutdown().await;
}

/// Everything that reads the process-wide "shutting down" flag is in this one test, so that no
/// other test sees it set.
#[tokio::test]
async fn ready_names_unready_plugins_then_ok_then_shutting_down() {
    // With an API server that never answers, the kubernetes plugin starts unsynced once
    // `startup_timeout` has passed: /ready names it.
    let unsynced = common::start(
        ".:0 {\n    ready 127.0.0.1:0\n    kubernetes cluster.local {\n        endpoint http://127.0.0.1:1\n        startup_timeout 200ms\n    }\n}\n",
    )
    .await;
    let addr = unsynced.http_addr("/ready");
    assert_eq!(http_get(addr, "/ready").await, (503, "kubernetes".into()));
    unsynced.shutdown().await;

    // With manifests it has synced once start-up returns.
    let s = start_with_files(ENDPOINTS, &[("demo.yaml", &demo())]).await;
    let ready = s.http_addr("/ready");
    let health = s.http_addr("/health");
    assert_eq!(http_get(ready, "/ready").await, (200, "OK".into()));

    clusterdns::http::set_shutting_down(true);
    let during = (
        http_get(ready, "/ready").await,
        http_get(health, "/health").await,
    );
    clusterdns::http::set_shutting_down(false);
    assert_eq!(during.0, (503, "Shutting down".into()));
    assert_eq!(during.1, (200, "OK".into()));
    assert_eq!(http_get(ready, "/ready").await, (200, "OK".into()));
    s.shutdown().await;
}

#[tokio::test]
async fn a_taken_http_port_fails_start_up_naming_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let corefile = format!(".:0 {{\n    health 127.0.0.1:{port}\n    whoami\n}}\n");
    let err = common::try_start_with_files(&corefile, &[])
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
}

/// The samples of `text` whose `server` label is `server` (the registry is process-wide; each
/// test's server has its own port), as (name, labels, value); histograms as `_count`/`_sum`.
/// One sample: metric name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

fn samples(text: &str, server: &str) -> Vec<Sample> {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("/metrics parses as Prometheus text");
    let mut out = Vec::new();
    for s in scrape.samples {
        if s.labels.get("server").is_some_and(|v| v != server) {
            continue;
        }
        let labels: Vec<(String, String)> = s
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => out.push((s.metric, labels, v)),
            // A histogram's `_count` and `_sum` also come as samples of their own.
            prometheus_parse::Value::Histogram(_) | prometheus_parse::Value::Summary(_) => {}
        }
    }
    out
}

/// The value of `name` with (at least) `want` labels, 0 if absent.
fn value(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(n, labels, _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

#[tokio::test]
async fn metrics_follow_real_queries() {
    let s = start_with_files(ENDPOINTS, &[("demo.yaml", &demo())]).await;
    let metrics = s.http_addr("/metrics");
    let server = format!("dns://127.0.0.1:{}", s.addr.port());
    let opts = Opts::default();

    let before = http_get(metrics, "/metrics").await.1;
    assert_eq!(
        value(
            &samples(&before, &server),
            "coredns_dns_requests_total",
            &[]
        ),
        0.0
    );

    let mut udp_bytes = 0usize;
    let mut udp_request_bytes = 0usize;
    for _ in 0..3 {
        let wire = build("api.demo.svc.cluster.local.", RecordType::A, &opts);
        udp_request_bytes += wire.len();
        let reply = udp_raw(s.addr, &wire, TIMEOUT).await.expect("UDP reply");
        udp_bytes += reply.len();
    }
    let wire = build("nope.demo.svc.cluster.local.", RecordType::A, &opts);
    udp_request_bytes += wire.len();
    let reply = udp_raw(s.addr, &wire, TIMEOUT).await.expect("UDP reply");
    udp_bytes += reply.len();
    let nx = Message::from_vec(&reply).expect("decodable");
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    let wire = build("api.demo.svc.cluster.local.", RecordType::AAAA, &opts);
    let tcp = tcp_raw(s.addr, &wire, TIMEOUT).await.expect("TCP reply");

    let (status, text) = http_get(metrics, "/metrics").await;
    assert_eq!(status, 200);
    let m = samples(&text, &server);
    let base = [("server", server.as_str()), ("zone", "."), ("view", "")];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut v: Vec<(&str, &str)> = base.to_vec();
        v.extend_from_slice(extra);
        v
    };
    let requests = "coredns_dns_requests_total";
    assert_eq!(
        value(
            &m,
            requests,
            &with(&[("proto", "udp"), ("family", "1"), ("type", "A")])
        ),
        4.0
    );
    assert_eq!(
        value(
            &m,
            requests,
            &with(&[("proto", "tcp"), ("family", "1"), ("type", "AAAA")])
        ),
        1.0
    );
    let responses = "coredns_dns_responses_total";
    assert_eq!(
        value(
            &m,
            responses,
            &with(&[("rcode", "NOERROR"), ("plugin", "kubernetes")])
        ),
        4.0
    );
    assert_eq!(
        value(
            &m,
            responses,
            &with(&[("rcode", "NXDOMAIN"), ("plugin", "kubernetes")])
        ),
        1.0
    );
    assert_eq!(
        value(&m, "coredns_dns_request_duration_seconds_count", &with(&[])),
        5.0
    );
    assert_eq!(
        value(
            &m,
            "coredns_dns_request_size_bytes_count",
            &with(&[("proto", "udp")])
        ),
        4.0
    );
    assert_eq!(
        value(
            &m,
            "coredns_dns_response_size_bytes_count",
            &with(&[("proto", "udp")])
        ),
        4.0
    );
    // The recorded reply sizes are the sizes of the replies the client received.
    let sizes = "coredns_dns_response_size_bytes_sum";
    assert_eq!(
        value(&m, sizes, &with(&[("proto", "udp")])),
        udp_bytes as f64
    );
    assert_eq!(
        value(&m, sizes, &with(&[("proto", "tcp")])),
        tcp.len() as f64
    );
    // Request sizes are the queries' lengths on the wire.
    assert_eq!(
        value(
            &m,
            "coredns_dns_request_size_bytes_sum",
            &with(&[("proto", "udp")])
        ),
        udp_request_bytes as f64
    );
    for plugin in ["kubernetes", "health", "ready", "prometheus"] {
        assert_eq!(
            value(&m, "coredns_plugin_enabled", &with(&[("name", plugin)])),
            1.0,
            "{plugin}"
        );
    }
    // Process-wide families.
    for family in [
        "coredns_build_info{",
        "coredns_panics_total ",
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(family)),
            "{family} missing"
        );
    }
    s.shutdown().await;
}

const POOL: &str = "\
apiVersion: v1
kind: Namespace
metadata: {name: lb}
---
apiVersion: v1
kind: Service
metadata: {name: pool, namespace: lb}
spec:
  clusterIP: None
  clusterIPs: [None]
  ports:
    - {name: http, port: 80, protocol: TCP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: pool-x1
  namespace: lb
  labels: {kubernetes.io/service-name: pool}
addressType: IPv4
endpoints:
  - {addresses: [10.9.0.1], conditions: {ready: true}}
  - {addresses: [10.9.0.2], conditions: {ready: true}}
  - {addresses: [10.9.0.3], conditions: {ready: true}}
  - {addresses: [10.9.0.4], conditions: {ready: true}}
  - {addresses: [10.9.0.5], conditions: {ready: true}}
ports:
  - {name: http, port: 80, protocol: TCP}
";

/// The A records of the answer section, in order.
fn addresses(reply: &Message) -> Vec<String> {
    reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.to_string()),
            _ => None,
        })
        .collect()
}

async fn orders(corefile: &str, n: usize) -> (HashSet<Vec<String>>, HashSet<String>) {
    let s = start_with_files(corefile, &[("pool.yaml", POOL)]).await;
    let mut orders = HashSet::new();
    let mut all = HashSet::new();
    for _ in 0..n {
        let reply = common::query_udp(
            s.addr,
            "pool.lb.svc.cluster.local.",
            RecordType::A,
            &Opts::default(),
        )
        .await;
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        let got = addresses(&reply);
        assert_eq!(got.len(), 5, "{got:?}");
        all.extend(got.iter().cloned());
        orders.insert(got);
    }
    s.shutdown().await;
    (orders, all)
}

#[tokio::test]
async fn loadbalance_rotates_a_records_of_a_headless_service() {
    let with = ".:0 {\n    loadbalance\n    kubernetes cluster.local {\n        manifests pool.yaml\n    }\n}\n";
    let (seen, all) = orders(with, 20).await;
    // 5 records have 120 orders; 20 answers in one order would be chance of 120^-19.
    assert!(seen.len() > 1, "always the same order: {seen:?}");
    assert_eq!(all.len(), 5);
    // Without loadbalance the order is stable.
    let without = ".:0 {\n    kubernetes cluster.local {\n        manifests pool.yaml\n    }\n}\n";
    let (seen, _) = orders(without, 5).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
}

#[tokio::test]
async fn blocks_without_prometheus_record_no_dns_metrics() {
    // A block without `prometheus` records nothing: no family carries its server label.
    let s = start_with_files(
        ".:0 {\n    kubernetes cluster.local {\n        manifests demo.yaml\n    }\n}\n",
        &[("demo.yaml", &demo())],
    )
    .await;
    common::query_udp(
        s.addr,
        "api.demo.svc.cluster.local.",
        RecordType::A,
        &Opts::default(),
    )
    .await;
    let server = format!("dns://127.0.0.1:{}", s.addr.port());
    let text = clusterdns::metrics::render();
    assert!(!text.contains(&server), "{server} in\n{text}");
    s.shutdown().await;
}

#[tokio::test]
async fn errors_consolidate_reports_a_count_per_period() {
    let (_guard, logs) = common::capture_logs();
    // A chain of `errors` alone ends in "no next plugin found" (SERVFAIL) for every query.
    let s = common::start(
        "example.org:0 {\n    errors {\n        consolidate 1s \"^no next\" warning\n    }\n}\nexample.net:0 {\n    errors\n}\n",
    )
    .await;
    for _ in 0..3 {
        let reply =
            common::query_udp(s.addr, "a.example.org.", RecordType::A, &Opts::default()).await;
        assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    }
    // Without consolidate (the other block, same listener), each error is logged at once.
    common::query_udp(s.addr, "b.example.net.", RecordType::A, &Opts::default()).await;
    let summary = "plugin/errors: 3 errors like '^no next' occurred in last 1s";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(4);
    while !logs.text().contains(summary) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let text = logs.text();
    assert!(text.contains(summary), "{text}");
    assert!(text.contains("WARN"), "{text}");
    assert!(
        !text.contains("a.example.org."),
        "consolidated errors are not logged one by one: {text}"
    );
    assert!(
        text.contains("plugin/errors: 2 b.example.net. A: no next plugin found"),
        "{text}"
    );
    s.shutdown().await;
}

/// A headless service with `n` ready endpoints in namespace `big`: its A reply outgrows 512 bytes.
fn big_pool(n: u8) -> String {
    let mut text = String::from(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: big}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: pool, namespace: big}\n\
         spec:\n  clusterIP: None\n  clusterIPs: [None]\n  ports:\n    - {name: http, port: 80, protocol: TCP}\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: pool-x1\n  namespace: big\n\
         \x20 labels: {kubernetes.io/service-name: pool}\naddressType: IPv4\nendpoints:\n",
    );
    for i in 1..=n {
        text.push_str(&format!(
            "  - {{addresses: [10.8.0.{i}], conditions: {{ready: true}}}}\n"
        ));
    }
    text.push_str("ports:\n  - {name: http, port: 80, protocol: TCP}\n");
    text
}

/// Sends two length-prefixed queries on one TCP connection and reads both replies.
async fn tcp_two(addr: std::net::SocketAddr, first: &[u8], second: &[u8]) -> Vec<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let talk = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        for wire in [first, second] {
            let len = u16::try_from(wire.len()).expect("small query");
            s.write_all(&len.to_be_bytes()).await.expect("write");
            s.write_all(wire).await.expect("write");
        }
        let mut replies = Vec::new();
        for _ in 0..2 {
            let mut len = [0u8; 2];
            s.read_exact(&mut len).await.expect("reply length");
            let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
            s.read_exact(&mut buf).await.expect("reply body");
            replies.push(buf);
        }
        replies
    };
    tokio::time::timeout(TIMEOUT, talk)
        .await
        .expect("two TCP replies within the timeout")
}

#[tokio::test]
async fn response_size_metric_is_what_the_client_received_over_udp_and_tcp() {
    let s = start_with_files(ENDPOINTS, &[("demo.yaml", &big_pool(60))]).await;
    let metrics = s.http_addr("/metrics");
    let server = format!("dns://127.0.0.1:{}", s.addr.port());
    let name = "pool.big.svc.cluster.local.";

    // UDP without EDNS: cut to 512 bytes with TC set; with a 4096-byte OPT: whole.
    let plain = build(name, RecordType::A, &Opts::default());
    let truncated = udp_raw(s.addr, &plain, TIMEOUT).await.expect("UDP reply");
    let tc = Message::from_vec(&truncated).expect("decodable");
    assert!(tc.metadata.truncation, "60 A records do not fit 512 bytes");
    assert!(truncated.len() <= 512, "{}", truncated.len());
    let edns = Opts {
        edns: Some(4096),
        ..Opts::default()
    };
    let whole = udp_raw(s.addr, &build(name, RecordType::A, &edns), TIMEOUT)
        .await
        .expect("UDP reply");
    assert!(whole.len() > 512, "{}", whole.len());
    assert_eq!(
        Message::from_vec(&whole).expect("decodable").answers.len(),
        60
    );

    // TCP: two queries on one connection, the second an NXDOMAIN.
    let nx = build(
        "nope.big.svc.cluster.local.",
        RecordType::A,
        &Opts::default(),
    );
    let tcp = tcp_two(s.addr, &plain, &nx).await;
    assert!(tcp[0].len() > 512, "{}", tcp[0].len());
    assert_eq!(
        Message::from_vec(&tcp[0]).expect("decodable").answers.len(),
        60
    );
    assert_eq!(
        Message::from_vec(&tcp[1])
            .expect("decodable")
            .metadata
            .response_code,
        ResponseCode::NXDomain
    );

    let (status, text) = http_get(metrics, "/metrics").await;
    assert_eq!(status, 200);
    let m = samples(&text, &server);
    let at = |proto: &'static str| [("server", server.as_str()), ("zone", "."), ("proto", proto)];
    let sum = "coredns_dns_response_size_bytes_sum";
    let count = "coredns_dns_response_size_bytes_count";
    assert_eq!(value(&m, count, &at("udp")), 2.0);
    assert_eq!(
        value(&m, sum, &at("udp")),
        (truncated.len() + whole.len()) as f64
    );
    assert_eq!(value(&m, count, &at("tcp")), 2.0);
    assert_eq!(
        value(&m, sum, &at("tcp")),
        (tcp[0].len() + tcp[1].len()) as f64
    );
    s.shutdown().await;
}
