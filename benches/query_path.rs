//! Whole request path in-process (decode -> route -> kubernetes lookup -> encode), no sockets,
//! over a generated cluster of 10,000 services (and 100,000 with CLUSTERDNS_BENCH_LARGE=1).
//! Run: `cargo bench --bench query_path`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};

/// A cluster of `services` ClusterIP services in 100 namespaces, every tenth one headless with
/// three ready endpoints; every ClusterIP service has one endpoint too.
fn cluster_yaml(services: usize) -> String {
    let mut y = String::with_capacity(services * 700);
    for ns in 0..100 {
        let _ = write!(
            y,
            "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns{ns}\n"
        );
    }
    for i in 0..services {
        let ns = i % 100;
        let (a, b) = (i / 250, i % 250);
        let headless = i % 10 == 0;
        let cluster_ip = if headless {
            "None".to_owned()
        } else {
            format!("10.96.{a}.{b}")
        };
        let _ = write!(
            y,
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc{i}\n  namespace: ns{ns}\n\
             spec:\n  clusterIP: {cluster_ip}\n  ports:\n  - name: http\n    port: 80\n    protocol: TCP\n"
        );
        let _ = write!(
            y,
            "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: svc{i}-x\n  \
             namespace: ns{ns}\n  labels:\n    kubernetes.io/service-name: svc{i}\naddressType: IPv4\n\
             ports:\n- name: http\n  port: 8080\n  protocol: TCP\nendpoints:\n"
        );
        let count = if headless { 3 } else { 1 };
        for e in 0..count {
            let _ = write!(
                y,
                "- addresses: [\"10.{}.{}.{}\"]\n  conditions: {{ready: true}}\n",
                100 + e,
                a,
                b
            );
        }
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

fn bench_cluster(c: &mut Criterion, services: usize) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cluster.yaml"), cluster_yaml(services)).unwrap();
    let corefile = "cluster.local:53 in-addr.arpa:53 {\n    kubernetes cluster.local in-addr.arpa {\n        manifests cluster.yaml\n        pods insecure\n    }\n}\n";
    let config = clusterdns::config_from_str(corefile, "Corefile", dir.path(), 53).unwrap();
    let harness = clusterdns::Harness::new(&config).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let src: SocketAddr = "10.244.0.9:40000".parse().unwrap();
    let mid = services / 2 + 1; // not a multiple of 10: a ClusterIP service
    let cases = [
        (
            "clusterip_a",
            query(
                &format!("svc{mid}.ns{}.svc.cluster.local.", mid % 100),
                RecordType::A,
            ),
        ),
        (
            "headless_a",
            query(
                &format!("svc{}.ns{}.svc.cluster.local.", mid - 1, (mid - 1) % 100),
                RecordType::A,
            ),
        ),
        (
            "srv_named_port",
            query(
                &format!("_http._tcp.svc{mid}.ns{}.svc.cluster.local.", mid % 100),
                RecordType::SRV,
            ),
        ),
        (
            "nxdomain",
            query("nosuch.ns1.svc.cluster.local.", RecordType::A),
        ),
        (
            "ptr_service_ip",
            query(
                &format!("{}.{}.96.10.in-addr.arpa.", mid % 250, mid / 250),
                RecordType::PTR,
            ),
        ),
        (
            "pod_insecure",
            query("10-244-1-2.ns1.pod.cluster.local.", RecordType::A),
        ),
    ];
    let mut group = c.benchmark_group(format!("query_path_{services}_services"));
    for (label, bytes) in &cases {
        // Sanity: every case gets a reply, so the bench measures real work.
        let reply = rt.block_on(harness.handle(bytes, src, false)).unwrap();
        let reply = Message::from_vec(&reply).unwrap();
        assert_eq!(reply.metadata.id, 7, "{label}");
        group.bench_function(*label, |b| {
            b.iter(|| rt.block_on(harness.handle(std::hint::black_box(bytes), src, false)))
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_cluster(c, 10_000);
    if std::env::var_os("CLUSTERDNS_BENCH_LARGE").is_some() {
        bench_cluster(c, 100_000);
    }
}

fn corefile_parse(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("corefile/Corefile.local");
    let text = std::fs::read_to_string(&path).unwrap();
    c.bench_function("corefile_parse_local", |b| {
        b.iter(|| {
            clusterdns::corefile::parse_str(std::hint::black_box(&text), "Corefile", Path::new("."))
        })
    });
}

criterion_group!(query_path, benches, corefile_parse);
criterion_main!(query_path);
