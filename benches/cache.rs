//! The cache hit path against the uncached kubernetes lookup, whole request path in-process
//! (decode -> route -> chain -> encode), no sockets, over 1,000 generated services.
//! Run: `cargo bench --bench cache`.

use std::fmt::Write as _;
use std::net::SocketAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};

/// `services` ClusterIP services in 10 namespaces, each with one ready endpoint.
fn cluster_yaml(services: usize) -> String {
    let mut y = String::new();
    for ns in 0..10 {
        let _ = write!(
            y,
            "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns{ns}\n"
        );
    }
    for i in 0..services {
        let (ns, a, b) = (i % 10, i / 250, i % 250);
        let _ = write!(
            y,
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc{i}\n  namespace: ns{ns}\n\
             spec:\n  clusterIP: 10.96.{a}.{b}\n  ports:\n  - name: http\n    port: 80\n    protocol: TCP\n\
             ---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: svc{i}-x\n  \
             namespace: ns{ns}\n  labels:\n    kubernetes.io/service-name: svc{i}\naddressType: IPv4\n\
             ports:\n- name: http\n  port: 8080\n  protocol: TCP\nendpoints:\n\
             - addresses: [\"10.100.{a}.{b}\"]\n  conditions: {{ready: true}}\n"
        );
    }
    y
}

fn query(name: &str, qtype: RecordType) -> Vec<u8> {
    let mut msg = Message::query();
    msg.metadata.id = 7;
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    msg.to_vec().unwrap()
}

fn bench_cache(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cluster.yaml"), cluster_yaml(1000)).unwrap();
    let kubernetes = "    kubernetes cluster.local {\n        manifests cluster.yaml\n    }\n";
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let src: SocketAddr = "10.244.0.9:40000".parse().unwrap();
    let cases = [
        (
            "clusterip_a",
            query("svc501.ns1.svc.cluster.local.", RecordType::A),
        ),
        (
            "srv",
            query("_http._tcp.svc501.ns1.svc.cluster.local.", RecordType::SRV),
        ),
        (
            "nxdomain",
            query("nosuch.ns1.svc.cluster.local.", RecordType::A),
        ),
    ];
    let mut group = c.benchmark_group("cache");
    for (setup, cache) in [("uncached", ""), ("cache_hit", "    cache\n")] {
        let corefile = format!("cluster.local:53 {{\n{kubernetes}{cache}}}\n");
        let config = clusterdns::config_from_str(&corefile, "Corefile", dir.path(), 53).unwrap();
        let harness = clusterdns::Harness::new(&config).unwrap();
        for (label, bytes) in &cases {
            // Sanity (and the miss that fills the cache): every case gets its reply.
            let reply = rt.block_on(harness.handle(bytes, src, false)).unwrap();
            let reply = Message::from_vec(&reply).unwrap();
            assert_eq!(reply.metadata.id, 7, "{label}");
            if !cache.is_empty() {
                assert!(reply.metadata.authoritative, "{label}");
            }
            group.bench_function(format!("{setup}/{label}"), |b| {
                b.iter(|| rt.block_on(harness.handle(std::hint::black_box(bytes), src, false)))
            });
        }
    }
    group.finish();
}

criterion_group!(cache, bench_cache);
criterion_main!(cache);
