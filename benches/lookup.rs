//! The per-query cost of one large answer through the whole request path (decode -> route ->
//! kubernetes lookup -> encode), in-process, as the endpoint count of one Service grows:
//! 10, 1,000, 5,000 and 10,000 ready endpoints. Every case must grow linearly (issue 13: the
//! duplicate checks used to make SRV quadratic, 3,000 endpoints costing half a second of CPU).
//!
//! - `srv`: SRV for a headless Service with N endpoints (N SRV records and N glue records).
//! - `a`: A for the same Service (N addresses).
//! - `ptr`: PTR for one address shared by N endpoints (distinct hostnames) of a headless Service.
//!
//! Run: `cargo bench --bench lookup` (add `-- --quick` for a short run).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};

const SIZES: [usize; 4] = [10, 1_000, 5_000, 10_000];
/// Endpoints per EndpointSlice (the Kubernetes EndpointSlice controller's maximum).
const PER_SLICE: usize = 1_000;

fn ip(i: usize) -> String {
    format!("10.{}.{}.{}", 1 + i / 65536, (i / 256) % 256, i % 256)
}

/// Namespace `bench` with two headless Services of `n` ready endpoints each: `big` (distinct
/// addresses, no hostnames) and `shared` (one address, hostnames `h0`..), in slices of
/// [`PER_SLICE`].
fn cluster_yaml(n: usize) -> String {
    let mut y = String::with_capacity(n * 200);
    y.push_str("---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: bench\n");
    for svc in ["big", "shared"] {
        let _ = write!(
            y,
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {svc}\n  namespace: bench\n\
             spec:\n  clusterIP: None\n  ports:\n  - name: http\n    port: 80\n    protocol: TCP\n"
        );
        for (s, start) in (0..n).step_by(PER_SLICE).enumerate() {
            let _ = write!(
                y,
                "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  \
                 name: {svc}-{s}\n  namespace: bench\n  labels:\n    \
                 kubernetes.io/service-name: {svc}\naddressType: IPv4\n\
                 ports:\n- name: http\n  port: 8080\n  protocol: TCP\nendpoints:\n"
            );
            for i in start..n.min(start + PER_SLICE) {
                if svc == "big" {
                    let _ = writeln!(
                        y,
                        "- addresses: [\"{}\"]\n  conditions: {{ready: true}}",
                        ip(i)
                    );
                } else {
                    let _ = writeln!(
                        y,
                        "- addresses: [\"10.200.0.1\"]\n  hostname: h{i}\n  conditions: {{ready: true}}"
                    );
                }
            }
        }
    }
    y
}

/// A query with EDNS (4096-byte buffer), as a stub resolver sends it.
fn query(name: &str, qtype: RecordType) -> Vec<u8> {
    let mut msg = Message::query();
    msg.metadata.id = 7;
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    msg.set_edns(edns);
    msg.to_vec().unwrap()
}

fn lookup(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let src: SocketAddr = "10.244.0.9:40000".parse().unwrap();
    let cases = [
        (
            "srv",
            query("_http._tcp.big.bench.svc.cluster.local.", RecordType::SRV),
        ),
        ("a", query("big.bench.svc.cluster.local.", RecordType::A)),
        ("ptr", query("1.0.200.10.in-addr.arpa.", RecordType::PTR)),
    ];
    let mut group = c.benchmark_group("lookup");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    for n in SIZES {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cluster.yaml"), cluster_yaml(n)).unwrap();
        let corefile = "cluster.local:53 in-addr.arpa:53 {\n    kubernetes cluster.local in-addr.arpa {\n        manifests cluster.yaml\n    }\n}\n";
        let config = clusterdns::config_from_str(corefile, "Corefile", dir.path(), 53).unwrap();
        let harness = clusterdns::Harness::new(&config).unwrap();
        for (label, bytes) in &cases {
            // Sanity: a NOERROR answer with records (truncated to the UDP buffer), so the
            // bench measures the real work and not an error path.
            let reply = rt.block_on(harness.handle(bytes, src, false)).unwrap();
            let reply = Message::from_vec(&reply).unwrap();
            assert_eq!(reply.metadata.id, 7, "{label} {n}");
            assert_eq!(
                reply.metadata.response_code,
                hickory_proto::op::ResponseCode::NoError,
                "{label} {n}"
            );
            assert!(
                !reply.answers.is_empty() || reply.metadata.truncation,
                "{label} {n}: no records"
            );
            group.bench_with_input(BenchmarkId::new(*label, n), bytes, |b, bytes| {
                b.iter(|| rt.block_on(harness.handle(std::hint::black_box(bytes), src, false)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, lookup);
criterion_main!(benches);
