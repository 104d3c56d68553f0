//! The cache plugin end to end over real sockets on loopback, with the kubernetes plugin
//! (manifests in a tempdir) behind it: TTL decay, AA on cached replies, negative caching with the
//! SOA, cached answers outliving a manifest edit until they expire, stale serving, letter case,
//! and capacity.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Opts, query_tcp, query_udp, start_with_files, write_file};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

/// Namespace `ns` with Services `web` and `probe` at the given cluster IPs.
fn cluster(web: &str, probe: &str, extra: &[(&str, &str)]) -> String {
    let mut s = String::from("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns\n");
    let mut services = vec![("web", web), ("probe", probe)];
    services.extend_from_slice(extra);
    for (name, ip) in services {
        s.push_str(&format!(
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: ns\nspec:\n  clusterIP: {ip}\n  clusterIPs: [{ip}]\n  ports:\n    - name: p\n      port: 80\n"
        ));
    }
    s
}

/// `cluster.local` from `cluster.yaml` with `ttl 30`, behind `cache ARGS { OPTIONS }`; names
/// under `probe.ns.svc.cluster.local` are never cached, so they show when the manifests source
/// has picked up an edit.
fn corefile(cache_args: &str, options: &str) -> String {
    format!(
        "cluster.local {{\n    kubernetes {{\n        manifests cluster.yaml\n        ttl 30\n    }}\n    cache {cache_args} {{\n        disable success probe.ns.svc.cluster.local\n        disable denial probe.ns.svc.cluster.local\n{options}    }}\n}}\n"
    )
}

fn a_addresses(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect()
}

fn ttls(m: &Message) -> Vec<u32> {
    m.answers
        .iter()
        .chain(&m.authorities)
        .map(|r| r.ttl)
        .collect()
}

async fn a(addr: SocketAddr, name: &str) -> Message {
    query_udp(addr, name, RecordType::A, &Opts::default()).await
}

/// Polls `name` until it answers `ip` (the manifests source re-reads a stable edit within ~2 s).
async fn wait_for(addr: SocketAddr, name: &str, ip: &str) {
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let m = a(addr, name).await;
        if a_addresses(&m) == [ip] {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} still answers {:?}",
            a_addresses(&m)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn cached_ttl_decreases_across_queries_and_cached_replies_are_authoritative() {
    let server = start_with_files(
        &corefile("", ""),
        &[("cluster.yaml", &cluster("10.96.1.1", "10.96.1.2", &[]))],
    )
    .await;
    let first = a(server.addr, "web.ns.svc.cluster.local.").await;
    assert_eq!(first.metadata.response_code, ResponseCode::NoError);
    assert_eq!(a_addresses(&first), ["10.96.1.1"]);
    assert_eq!(ttls(&first), [30]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for m in [
        a(server.addr, "web.ns.svc.cluster.local.").await,
        query_tcp(
            server.addr,
            "web.ns.svc.cluster.local.",
            RecordType::A,
            &Opts::default(),
        )
        .await,
    ] {
        assert!(m.metadata.authoritative, "AA=1 on a cached reply");
        assert_eq!(a_addresses(&m), ["10.96.1.1"]);
        let ttl = ttls(&m)[0];
        assert!((1..30).contains(&ttl), "TTL {ttl} has not decreased");
    }
    // The uncached probe name keeps the plugin's TTL.
    let probe = a(server.addr, "probe.ns.svc.cluster.local.").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(ttls(&probe), [30]);
    assert_eq!(
        ttls(&a(server.addr, "probe.ns.svc.cluster.local.").await),
        [30]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn nxdomain_is_cached_with_its_soa_until_it_expires() {
    let server = start_with_files(
        &corefile("5", ""),
        &[("cluster.yaml", &cluster("10.96.2.1", "10.96.2.2", &[]))],
    )
    .await;
    let name = "later.ns.svc.cluster.local.";
    let nx = a(server.addr, name).await;
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(nx.authorities.len(), 1);
    assert_eq!(nx.authorities[0].record_type(), RecordType::SOA);
    // `cache 5`: the SOA (TTL and MINIMUM 30) is capped to 5 s.
    assert_eq!(ttls(&nx), [5]);
    // The name appears in the manifests; the cached denial still answers until it expires.
    write_file(
        server.dir.path(),
        "cluster.yaml",
        &cluster("10.96.2.1", "10.96.2.3", &[("later", "10.96.2.9")]),
    );
    wait_for(server.addr, "probe.ns.svc.cluster.local.", "10.96.2.3").await;
    let cached = a(server.addr, name).await;
    assert_eq!(cached.metadata.response_code, ResponseCode::NXDomain);
    assert!(cached.metadata.authoritative);
    assert_eq!(cached.authorities[0].record_type(), RecordType::SOA);
    assert!(ttls(&cached)[0] < 5, "{:?}", ttls(&cached));
    wait_for(server.addr, name, "10.96.2.9").await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_cached_answer_outlives_a_manifest_edit_until_it_expires() {
    let server = start_with_files(
        &corefile("5", ""),
        &[("cluster.yaml", &cluster("10.96.3.1", "10.96.3.2", &[]))],
    )
    .await;
    let name = "web.ns.svc.cluster.local.";
    assert_eq!(a_addresses(&a(server.addr, name).await), ["10.96.3.1"]);
    write_file(
        server.dir.path(),
        "cluster.yaml",
        &cluster("10.96.3.11", "10.96.3.12", &[]),
    );
    wait_for(server.addr, "probe.ns.svc.cluster.local.", "10.96.3.12").await;
    // The source has the new address; the cache still answers the old one.
    let cached = a(server.addr, name).await;
    assert_eq!(a_addresses(&cached), ["10.96.3.1"]);
    // After expiry the next query fetches the new answer, with a fresh TTL (no stale serving).
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let m = a(server.addr, name).await;
        if a_addresses(&m) == ["10.96.3.11"] {
            assert_eq!(ttls(&m), [5]);
            break;
        }
        assert!(ttls(&m)[0] > 0, "no stale answers without serve_stale");
        assert!(Instant::now() < deadline, "never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn serve_stale_answers_the_expired_entry_with_ttl_0_then_the_refreshed_one() {
    let server = start_with_files(
        &corefile("5", "        serve_stale 1m\n"),
        &[("cluster.yaml", &cluster("10.96.4.1", "10.96.4.2", &[]))],
    )
    .await;
    let name = "web.ns.svc.cluster.local.";
    assert_eq!(a_addresses(&a(server.addr, name).await), ["10.96.4.1"]);
    write_file(
        server.dir.path(),
        "cluster.yaml",
        &cluster("10.96.4.11", "10.96.4.12", &[]),
    );
    wait_for(server.addr, "probe.ns.svc.cluster.local.", "10.96.4.12").await;
    // Sequential queries: the first one after expiry must get the stale answer (TTL 0) and
    // start the refresh; a later one gets the refreshed answer.
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut stale_seen = false;
    loop {
        let m = a(server.addr, name).await;
        match (a_addresses(&m).as_slice(), ttls(&m)[0]) {
            ([old], 0) if old == "10.96.4.1" => stale_seen = true,
            ([old], _) if old == "10.96.4.1" => assert!(!stale_seen, "fresh old after stale"),
            ([new], ttl) if new == "10.96.4.11" => {
                assert!(stale_seen, "the expired entry was not served stale");
                assert!(ttl > 0);
                break;
            }
            other => panic!("unexpected answer {other:?}"),
        }
        assert!(Instant::now() < deadline, "never refreshed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_hit_answers_in_the_askers_letter_case() {
    let server = start_with_files(
        &corefile("", ""),
        &[("cluster.yaml", &cluster("10.96.5.1", "10.96.5.2", &[]))],
    )
    .await;
    let first = a(server.addr, "Web.NS.svc.Cluster.Local.").await;
    assert_eq!(
        first.answers[0].name.to_string(),
        "Web.NS.svc.Cluster.Local."
    );
    let hit = a(server.addr, "wEB.ns.SVC.cluster.local.").await;
    assert!(ttls(&hit)[0] <= 30);
    assert_eq!(hit.answers[0].name.to_string(), "wEB.ns.SVC.cluster.local.");
    assert_eq!(
        hit.queries[0].name().to_string(),
        "wEB.ns.SVC.cluster.local."
    );
    server.shutdown().await;
}

#[tokio::test]
async fn capacity_bounds_the_denial_cache() {
    let server = start_with_files(
        &corefile("", "        denial 1024\n"),
        &[("cluster.yaml", &cluster("10.96.6.1", "10.96.6.2", &[]))],
    )
    .await;
    let port = server.addr.port();
    for i in 0..1200 {
        let m = a(server.addr, &format!("n{i}.ns.svc.cluster.local.")).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    }
    let series = |name: &str| {
        format!(
            "coredns_cache_{name}{{server=\"dns://127.0.0.1:{port}\",type=\"denial\",view=\"\",zones=\"cluster.local.\"}}"
        )
    };
    let value = |text: &str, name: &str| -> Option<u64> {
        let prefix = series(name);
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
    };
    // moka applies evictions in batches; more queries drive its housekeeping.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = clusterdns::metrics::render();
        let entries = value(&text, "entries").expect("entries gauge");
        let evictions = value(&text, "evictions_total").unwrap_or(0);
        if entries <= 1024 && evictions >= 1200 - 1024 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "entries {entries}, evictions {evictions}"
        );
        a(server.addr, "n0.ns.svc.cluster.local.").await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.shutdown().await;
}
