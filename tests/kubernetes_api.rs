//! The kubernetes plugin fed by the Kubernetes API: clusterdns started in-process against a fake
//! apiserver on loopback (`endpoint http://127.0.0.1:PORT`), answers checked over real sockets.
//! Covers the initial list, watch events, the server going away and coming back, 410 Gone,
//! garbage responses, start-up blocking and `startup_timeout`, and the client options.

mod common;
mod fake_apiserver;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use serde_json::json;

use common::{Opts, TestServer};
use fake_apiserver::{FakeApi, Res, headless, namespace, pod, service, slice};

/// How long a test waits for the server to reflect a change (backoff after an outage included).
const DEADLINE: Duration = Duration::from_secs(20);

async fn query(addr: SocketAddr, name: &str, qtype: RecordType) -> Message {
    common::query_udp(addr, name, qtype, &Opts::default()).await
}

/// The addresses (A/AAAA) and PTR targets of an answer, as text, sorted.
fn answers(msg: &Message) -> Vec<String> {
    let mut out: Vec<String> = msg
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            RData::PTR(p) => Some(p.0.to_string()),
            RData::SRV(s) => Some(format!("{} {}", s.port, s.target)),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

/// Polls until `name` answers `want` (rcode NOERROR) or the deadline passes.
async fn wait_for(addr: SocketAddr, name: &str, qtype: RecordType, want: &[&str]) {
    let deadline = Instant::now() + DEADLINE;
    let mut last = None;
    while Instant::now() < deadline {
        let msg = query(addr, name, qtype).await;
        let got = answers(&msg);
        if msg.metadata.response_code == ResponseCode::NoError && got == want {
            return;
        }
        last = Some((msg.metadata.response_code, got));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} {qtype}: wanted {want:?}, last got {last:?}");
}

/// Polls until `name` gets `rcode`.
async fn wait_rcode(addr: SocketAddr, name: &str, qtype: RecordType, rcode: ResponseCode) {
    let deadline = Instant::now() + DEADLINE;
    let mut last = None;
    while Instant::now() < deadline {
        let msg = query(addr, name, qtype).await;
        if msg.metadata.response_code == rcode {
            return;
        }
        last = Some(msg.metadata.response_code);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} {qtype}: wanted {rcode}, last got {last:?}");
}

/// A small cluster: namespace ns, ClusterIP svc a (10.96.0.1) with one endpoint, headless h
/// with two.
fn populate(api: &FakeApi) {
    api.apply(Res::Namespaces, namespace("ns"));
    api.apply(
        Res::Services,
        service("ns", "a", "10.96.0.1", &[("http", "TCP", 80)]),
    );
    api.apply(Res::EndpointSlices, slice("ns", "a-1", "a", &["10.1.0.1"]));
    api.apply(Res::Services, headless("ns", "h"));
    api.apply(
        Res::EndpointSlices,
        slice("ns", "h-1", "h", &["10.1.1.1", "10.1.1.2"]),
    );
}

/// The log lines of the source talking to `api` (the global capture is shared by all tests).
fn logs_of(logs: &common::Logs, api: &FakeApi) -> String {
    let needle = api.url();
    logs.text()
        .lines()
        .filter(|l| l.contains(&needle))
        .collect::<Vec<_>>()
        .join("\n")
}

fn corefile(api: &FakeApi, options: &str) -> String {
    format!(
        ". {{\n    kubernetes cluster.local in-addr.arpa {{\n        endpoint {}\n{options}    }}\n}}\n",
        api.url()
    )
}

async fn start(api: &FakeApi, options: &str) -> TestServer {
    common::start(&corefile(api, options)).await
}

#[tokio::test]
async fn api_initial_list_is_served() {
    let api = FakeApi::start().await;
    populate(&api);
    let server = start(&api, "").await;
    // Start-up blocked until the first lists arrived: answers right away.
    let msg = query(server.addr, "a.ns.svc.cluster.local.", RecordType::A).await;
    assert_eq!(answers(&msg), ["10.96.0.1"]);
    assert!(msg.metadata.authoritative);
    let msg = query(server.addr, "h.ns.svc.cluster.local.", RecordType::A).await;
    assert_eq!(answers(&msg), ["10.1.1.1", "10.1.1.2"]);
    let msg = query(server.addr, "1.0.96.10.in-addr.arpa.", RecordType::PTR).await;
    assert_eq!(answers(&msg), ["a.ns.svc.cluster.local."]);
    let msg = query(
        server.addr,
        "_http._tcp.a.ns.svc.cluster.local.",
        RecordType::SRV,
    )
    .await;
    assert_eq!(answers(&msg), ["80 a.ns.svc.cluster.local."]);
    // Synced: a missing name is NXDOMAIN, not SERVFAIL.
    let msg = query(server.addr, "nope.ns.svc.cluster.local.", RecordType::A).await;
    assert_eq!(msg.metadata.response_code, ResponseCode::NXDomain);
    // The namespace watch is metadata-only, all watches list first.
    let requests = api.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("/api/v1/namespaces?")),
        "{requests:?}"
    );
    assert!(
        !requests.iter().any(|r| r.starts_with("/api/v1/pods")),
        "pods are watched only for `pods verified`: {requests:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn api_watch_events_are_reflected() {
    let api = FakeApi::start().await;
    populate(&api);
    let server = start(&api, "").await;
    let addr = server.addr;

    // ADDED
    api.apply(
        Res::Services,
        service("ns", "b", "10.96.0.2", &[("http", "TCP", 80)]),
    );
    wait_for(
        addr,
        "b.ns.svc.cluster.local.",
        RecordType::A,
        &["10.96.0.2"],
    )
    .await;
    // MODIFIED
    api.apply(
        Res::Services,
        service("ns", "b", "10.96.0.3", &[("http", "TCP", 80)]),
    );
    wait_for(
        addr,
        "b.ns.svc.cluster.local.",
        RecordType::A,
        &["10.96.0.3"],
    )
    .await;
    let msg = query(addr, "2.0.96.10.in-addr.arpa.", RecordType::PTR).await;
    assert_eq!(msg.metadata.response_code, ResponseCode::NXDomain);
    // Endpoints of a headless service change.
    api.apply(Res::EndpointSlices, slice("ns", "h-1", "h", &["10.1.1.3"]));
    wait_for(
        addr,
        "h.ns.svc.cluster.local.",
        RecordType::A,
        &["10.1.1.3"],
    )
    .await;
    api.apply(Res::EndpointSlices, slice("ns", "h-2", "h", &["10.1.1.4"]));
    wait_for(
        addr,
        "h.ns.svc.cluster.local.",
        RecordType::A,
        &["10.1.1.3", "10.1.1.4"],
    )
    .await;
    // DELETED
    api.delete(Res::Services, "ns", "b");
    wait_rcode(
        addr,
        "b.ns.svc.cluster.local.",
        RecordType::A,
        ResponseCode::NXDomain,
    )
    .await;
    api.delete(Res::EndpointSlices, "ns", "h-1");
    wait_for(
        addr,
        "h.ns.svc.cluster.local.",
        RecordType::A,
        &["10.1.1.4"],
    )
    .await;
    // A namespace going away hides its services.
    api.delete(Res::Namespaces, "", "ns");
    wait_rcode(
        addr,
        "a.ns.svc.cluster.local.",
        RecordType::A,
        ResponseCode::NXDomain,
    )
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn api_answers_are_kept_while_the_server_is_down_and_resync_after_restart() {
    let api = FakeApi::start().await;
    populate(&api);
    let logs = common::global_logs();
    let server = start(&api, "").await;
    let addr = server.addr;

    api.stop();
    // The watches notice the outage; answers stay those of the last good index meanwhile.
    for _ in 0..10 {
        let msg = query(addr, "a.ns.svc.cluster.local.", RecordType::A).await;
        assert_eq!(answers(&msg), ["10.96.0.1"]);
        let msg = query(addr, "nope.ns.svc.cluster.local.", RecordType::A).await;
        assert_eq!(msg.metadata.response_code, ResponseCode::NXDomain);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Changes made while down reach the watches when they resume (from their resourceVersion).
    api.apply(
        Res::Services,
        service("ns", "a", "10.96.0.9", &[("http", "TCP", 80)]),
    );
    api.delete(Res::Services, "ns", "h");
    api.restart().await;
    wait_for(
        addr,
        "a.ns.svc.cluster.local.",
        RecordType::A,
        &["10.96.0.9"],
    )
    .await;
    wait_rcode(
        addr,
        "h.ns.svc.cluster.local.",
        RecordType::A,
        ResponseCode::NXDomain,
    )
    .await;
    // Down again, and this time the history is gone when it returns: the watches get 410 and
    // relist, which is the only way they can learn of this change.
    api.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    api.apply_silently(
        Res::Services,
        service("ns", "a", "10.96.0.10", &[("http", "TCP", 80)]),
    );
    api.compact();
    let msg = query(addr, "a.ns.svc.cluster.local.", RecordType::A).await;
    assert_eq!(answers(&msg), ["10.96.0.9"]);
    api.restart().await;
    wait_for(
        addr,
        "a.ns.svc.cluster.local.",
        RecordType::A,
        &["10.96.0.10"],
    )
    .await;
    // And the watch works again afterwards.
    api.apply(
        Res::Services,
        service("ns", "c", "10.96.0.4", &[("http", "TCP", 80)]),
    );
    wait_for(
        addr,
        "c.ns.svc.cluster.local.",
        RecordType::A,
        &["10.96.0.4"],
    )
    .await;

    let text = logs_of(&logs, &api);
    let failed = text.matches("Kubernetes API watch failed").count();
    assert!(failed >= 1, "outage not logged:\n{text}");
    // Two outages, three watched kinds: at most six, however many retries the backoff made.
    assert!(
        failed <= 6,
        "outage logged more than once per kind:\n{text}"
    );
    if std::env::var_os("SHOW_LOGS").is_some() {
        eprintln!("{text}");
    }
    assert!(text.contains("Kubernetes API watch restored"), "{text}");
    server.shutdown().await;
}

#[tokio::test]
async fn api_relists_after_410_gone() {
    let api = FakeApi::start().await;
    populate(&api);
    let server = start(&api, "").await;
    let addr = server.addr;
    // Wait for the watches to be open so the 410 reaches them.
    let deadline = Instant::now() + DEADLINE;
    while api.watchers(Res::Services) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Changes no watch is told about: only a relist can see them.
    api.apply_silently(
        Res::Services,
        service("ns", "new", "10.96.0.5", &[("http", "TCP", 80)]),
    );
    api.delete_silently(Res::EndpointSlices, "ns", "h-1");
    api.expire_watches();
    wait_for(
        addr,
        "new.ns.svc.cluster.local.",
        RecordType::A,
        &["10.96.0.5"],
    )
    .await;
    // The headless service lost its only slice: no endpoints, NXDOMAIN (CoreDNS).
    wait_rcode(
        addr,
        "h.ns.svc.cluster.local.",
        RecordType::A,
        ResponseCode::NXDomain,
    )
    .await;
    let msg = query(addr, "a.ns.svc.cluster.local.", RecordType::A).await;
    assert_eq!(answers(&msg), ["10.96.0.1"]);
    server.shutdown().await;
}

#[tokio::test]
async fn api_garbage_is_survived() {
    let api = FakeApi::start().await;
    populate(&api);
    // The first two service lists are garbage: the watcher retries with backoff.
    api.garbage_lists(Res::Services, 2);
    let server = start(&api, "        startup_timeout 10s\n").await;
    let addr = server.addr;
    wait_for(
        addr,
        "a.ns.svc.cluster.local.",
        RecordType::A,
        &["10.96.0.1"],
    )
    .await;
    // A garbage line in an open watch: answers kept, the watch recovers, later events apply.
    let deadline = Instant::now() + DEADLINE;
    while api.watchers(Res::Services) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    api.garbage_in_watch(Res::Services);
    let msg = query(addr, "a.ns.svc.cluster.local.", RecordType::A).await;
    assert_eq!(answers(&msg), ["10.96.0.1"]);
    api.apply(
        Res::Services,
        service("ns", "d", "10.96.0.6", &[("http", "TCP", 80)]),
    );
    wait_for(
        addr,
        "d.ns.svc.cluster.local.",
        RecordType::A,
        &["10.96.0.6"],
    )
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn api_start_waits_for_the_first_list() {
    let api = FakeApi::start().await;
    populate(&api);
    api.slow_lists(Res::EndpointSlices, Duration::from_millis(800));
    let logs = common::global_logs();
    let server = start(&api, "").await;
    // start() returned only after every kind had listed: endpoints answer immediately.
    let msg = query(server.addr, "h.ns.svc.cluster.local.", RecordType::A).await;
    assert_eq!(answers(&msg), ["10.1.1.1", "10.1.1.2"]);
    let text = logs_of(&logs, &api);
    assert!(
        text.contains("waiting for Kubernetes API before starting server"),
        "{text}"
    );
    assert!(
        !text.contains("starting server with unsynced Kubernetes API"),
        "{text}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn api_startup_timeout_serves_unsynced_with_servfail_for_name_errors() {
    let api = FakeApi::start().await;
    populate(&api);
    // Services list only after 2.5 s: longer than the start-up timeout.
    api.slow_lists(Res::Services, Duration::from_millis(2500));
    let logs = common::global_logs();
    let server = start(&api, "        startup_timeout 300ms\n").await;
    let text = logs_of(&logs, &api);
    assert!(
        text.contains("starting server with unsynced Kubernetes API"),
        "{text}"
    );
    // Not synced: a name error is SERVFAIL (spec §3), not NXDOMAIN.
    let msg = query(server.addr, "a.ns.svc.cluster.local.", RecordType::A).await;
    assert_eq!(msg.metadata.response_code, ResponseCode::ServFail);
    // Once the list arrives, answers and NXDOMAIN.
    wait_for(
        server.addr,
        "a.ns.svc.cluster.local.",
        RecordType::A,
        &["10.96.0.1"],
    )
    .await;
    let msg = query(server.addr, "nope.ns.svc.cluster.local.", RecordType::A).await;
    assert_eq!(msg.metadata.response_code, ResponseCode::NXDomain);
    server.shutdown().await;
}

#[tokio::test]
async fn api_odd_objects_are_handled_like_coredns() {
    let api = FakeApi::start().await;
    api.apply(Res::Namespaces, namespace("ns"));
    // No clusterIP at all (and no ports): nothing to answer, but no crash.
    api.apply(
        Res::Services,
        json!({"metadata": {"namespace": "ns", "name": "noip"}, "spec": {}}),
    );
    // Empty ports: A works, SRV has nothing.
    api.apply(Res::Services, service("ns", "noports", "10.96.1.1", &[]));
    // Invalid cluster IP next to a valid one.
    api.apply(
        Res::Services,
        json!({"metadata": {"namespace": "ns", "name": "badip"},
               "spec": {"clusterIP": "10.96.1.2", "clusterIPs": ["10.96.1.2", "not-an-ip"]}}),
    );
    // Headless with unready, IPv6 and invalid endpoints.
    api.apply(Res::Services, headless("ns", "mixed"));
    api.apply(
        Res::EndpointSlices,
        json!({"metadata": {"namespace": "ns", "name": "mixed-1",
                     "labels": {"kubernetes.io/service-name": "mixed"}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": ["10.2.0.1"], "conditions": {"ready": false}},
            {"addresses": ["10.2.0.2"]},
            {"addresses": ["bogus"], "conditions": {"ready": true}}
        ]}),
    );
    api.apply(
        Res::EndpointSlices,
        json!({"metadata": {"namespace": "ns", "name": "mixed-2",
                            "labels": {"kubernetes.io/service-name": "mixed"}},
               "addressType": "IPv6",
               "ports": [{"port": 80}],
               "endpoints": [{"addresses": ["fd00::1"], "conditions": {"ready": true}}]}),
    );
    // An object without a name is ignored.
    api.apply(Res::Services, json!({"metadata": {"namespace": "ns"}}));
    let server = start(&api, "").await;
    let addr = server.addr;

    let msg = query(addr, "noip.ns.svc.cluster.local.", RecordType::A).await;
    assert!(msg.answers.is_empty(), "{msg:?}");
    let msg = query(addr, "noports.ns.svc.cluster.local.", RecordType::A).await;
    assert_eq!(answers(&msg), ["10.96.1.1"]);
    let msg = query(addr, "noports.ns.svc.cluster.local.", RecordType::SRV).await;
    assert!(answers(&msg).is_empty(), "{msg:?}");
    let msg = query(addr, "badip.ns.svc.cluster.local.", RecordType::A).await;
    assert_eq!(answers(&msg), ["10.96.1.2"]);
    // Unready (ready: false) is dropped, absent conditions count as ready, bad IPs dropped.
    let msg = query(addr, "mixed.ns.svc.cluster.local.", RecordType::A).await;
    assert_eq!(answers(&msg), ["10.2.0.2"]);
    let msg = query(addr, "mixed.ns.svc.cluster.local.", RecordType::AAAA).await;
    assert_eq!(answers(&msg), ["fd00::1"]);
    server.shutdown().await;
}

#[tokio::test]
async fn api_pods_verified_watches_running_pods_only() {
    let api = FakeApi::start().await;
    populate(&api);
    api.apply(Res::Pods, pod("ns", "p1", "10.1.2.1"));
    api.apply(
        Res::Pods,
        json!({"metadata": {"namespace": "ns", "name": "dying", "deletionTimestamp": "2026-01-01T00:00:00Z"},
               "status": {"phase": "Running", "podIP": "10.1.2.2"}}),
    );
    let server = start(&api, "        pods verified\n").await;
    let addr = server.addr;
    let msg = query(addr, "10-1-2-1.ns.pod.cluster.local.", RecordType::A).await;
    assert_eq!(answers(&msg), ["10.1.2.1"]);
    // Terminating pods are not indexed.
    let msg = query(addr, "10-1-2-2.ns.pod.cluster.local.", RecordType::A).await;
    assert_eq!(msg.metadata.response_code, ResponseCode::NXDomain);
    // CoreDNS's field selector is sent.
    let requests = api.requests();
    let pods = requests
        .iter()
        .find(|r| r.starts_with("/api/v1/pods?"))
        .expect("pods listed");
    assert!(
        pods.contains("fieldSelector=status.phase%21%3DSucceeded"),
        "{pods}"
    );
    // A pod gets its IP later (MODIFIED), another is deleted.
    api.apply(Res::Pods, pod("ns", "p3", "10.1.2.3"));
    wait_for(
        addr,
        "10-1-2-3.ns.pod.cluster.local.",
        RecordType::A,
        &["10.1.2.3"],
    )
    .await;
    api.delete(Res::Pods, "ns", "p1");
    wait_rcode(
        addr,
        "10-1-2-1.ns.pod.cluster.local.",
        RecordType::A,
        ResponseCode::NXDomain,
    )
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn api_labels_and_noendpoints_shape_the_watches() {
    let api = FakeApi::start().await;
    populate(&api);
    let server = start(
        &api,
        "        labels app=web\n        namespace_labels team=a\n        noendpoints\n",
    )
    .await;
    let requests = api.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("/api/v1/services?") && r.contains("labelSelector=app%3Dweb")),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("/api/v1/namespaces?") && r.contains("labelSelector=team%3Da")),
        "{requests:?}"
    );
    assert!(
        !requests.iter().any(|r| r.contains("endpointslices")),
        "noendpoints watches no EndpointSlices: {requests:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn api_kubeconfig_option_reaches_the_server() {
    let api = FakeApi::start().await;
    populate(&api);
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n\
         users:\n- name: u\n  user:\n    token: abc\ncontexts:\n- name: other\n  context:\n    cluster: fake\n    user: u\n\
         current-context: missing\n",
        api.url()
    );
    let corefile =
        ". {\n    kubernetes cluster.local {\n        kubeconfig kubeconfig.yaml other\n    }\n}\n";
    let server = common::start_with_files(corefile, &[("kubeconfig.yaml", &kubeconfig)]).await;
    let msg = query(server.addr, "a.ns.svc.cluster.local.", RecordType::A).await;
    assert_eq!(answers(&msg), ["10.96.0.1"]);
    server.shutdown().await;
}

#[tokio::test]
async fn api_client_errors_name_the_option() {
    // A kubeconfig that does not exist: a configuration error at its line.
    let error = common::try_start_with_files(
        ". {\n    kubernetes cluster.local {\n        kubeconfig /nonexistent/kubeconfig\n    }\n}\n",
        &[],
    )
    .await
    .err()
    .expect("missing kubeconfig must fail");
    let text = error.to_string();
    assert!(text.contains("kubeconfig"), "{text}");
    assert!(text.contains("Corefile:2"), "{text}");
    // A bad endpoint URL.
    let error = common::try_start_with_files(
        ". {\n    kubernetes cluster.local {\n        endpoint not a url\n    }\n}\n",
        &[],
    )
    .await
    .err()
    .expect("bad endpoint must fail");
    assert!(error.to_string().contains("endpoint"), "{error}");
    // tls files that do not exist.
    let error = common::try_start_with_files(
        ". {\n    kubernetes cluster.local {\n        endpoint https://127.0.0.1:1\n        tls a.crt a.key ca.crt\n    }\n}\n",
        &[],
    )
    .await
    .err()
    .expect("missing tls files must fail");
    assert!(error.to_string().contains("tls"), "{error}");
}

#[tokio::test]
async fn api_in_cluster_without_service_account_fails_to_start() {
    if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        panic!("this test needs to run outside a cluster: unset KUBERNETES_SERVICE_HOST");
    }
    let error = common::try_start_with_files(". {\n    kubernetes cluster.local\n}\n", &[])
        .await
        .err()
        .expect("in-cluster config outside a cluster must fail");
    assert!(error.to_string().contains("in-cluster"), "{error}");
}

#[tokio::test]
async fn api_dns_programming_duration_is_observed_for_stamped_slices() {
    let api = FakeApi::start().await;
    populate(&api);
    let server = start(&api, "").await;
    let mut stamped = slice("ns", "h-1", "h", &["10.1.1.7"]);
    stamped["metadata"]["annotations"] = json!({
        "endpoints.kubernetes.io/last-change-trigger-time": "2026-01-01T00:00:00Z"
    });
    api.apply(Res::EndpointSlices, stamped);
    wait_for(
        server.addr,
        "h.ns.svc.cluster.local.",
        RecordType::A,
        &["10.1.1.7"],
    )
    .await;
    let text = clusterdns::metrics::render();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with(
                "coredns_kubernetes_dns_programming_duration_seconds_count{service_kind=\"headless_with_selector\"}",
            )
        })
        .unwrap_or_else(|| panic!("no programming-duration sample:\n{text}"));
    let count: u64 = line
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("count");
    assert!(count >= 1, "{line}");
    server.shutdown().await;
}

#[tokio::test]
async fn api_paged_lists_are_followed_to_the_end() {
    let api = FakeApi::start().await;
    api.apply(Res::Namespaces, namespace("ns"));
    // More than two pages of 500 (the watcher's page size).
    for i in 0..1200 {
        api.apply_silently(
            Res::Services,
            service(
                "ns",
                &format!("s{i}"),
                &format!("10.97.{}.{}", i / 250, i % 250),
                &[("http", "TCP", 80)],
            ),
        );
    }
    let server = start(&api, "").await;
    let msg = query(server.addr, "s1199.ns.svc.cluster.local.", RecordType::A).await;
    assert_eq!(answers(&msg), ["10.97.4.199"]);
    let msg = query(server.addr, "s0.ns.svc.cluster.local.", RecordType::A).await;
    assert_eq!(answers(&msg), ["10.97.0.0"]);
    let pages = api
        .requests()
        .iter()
        .filter(|r| r.starts_with("/api/v1/services?") && r.contains("continue="))
        .count();
    assert_eq!(pages, 2, "{:?}", api.requests());
    server.shutdown().await;
}

#[tokio::test]
async fn api_ready_is_503_until_every_kind_listed_then_200() {
    let api = FakeApi::start().await;
    populate(&api);
    // Services list only after 2 s, well past the start-up timeout: the server starts unsynced.
    api.slow_lists(Res::Services, Duration::from_millis(2000));
    let corefile = format!(
        ".:0 {{\n    ready 127.0.0.1:0\n    kubernetes cluster.local {{\n        endpoint {}\n        startup_timeout 200ms\n    }}\n}}\n",
        api.url()
    );
    let server = common::start(&corefile).await;
    let ready = server.http_addr("/ready");
    assert_eq!(
        common::http_get(ready, "/ready").await,
        (503, "kubernetes".into())
    );
    // Once the list has arrived, /ready turns 200 (polled: the list is 2 s late).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let reply = common::http_get(ready, "/ready").await;
        if reply == (200, "OK".into()) {
            break;
        }
        assert_eq!(reply, (503, "kubernetes".into()), "only these two states");
        assert!(
            std::time::Instant::now() < deadline,
            "never ready after the list arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let msg = query(server.addr, "a.ns.svc.cluster.local.", RecordType::A).await;
    assert_eq!(answers(&msg), ["10.96.0.1"]);
    server.shutdown().await;
}
