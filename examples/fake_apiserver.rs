//! A fake Kubernetes API server on 127.0.0.1 serving a generated cluster, for measuring the API
//! source (memory, time to sync) with the real binary: `benches/load/memory-api.sh`.
//!
//!   cargo run --release --example fake_apiserver -- [SERVICES] [ENDPOINTS_PER_SERVICE] [PODS]
//!
//! Defaults: 10,000 services in 100 namespaces (every tenth headless), 10 ready endpoints each
//! (100,000 endpoints), 50,000 pods (the first endpoints' IPs). Prints the URL, then serves
//! until killed.

#[path = "../tests/fake_apiserver/mod.rs"]
mod fake_apiserver;

use fake_apiserver::{FakeApi, Res};
use serde_json::json;

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn ip(i: usize) -> String {
    format!(
        "10.{}.{}.{}",
        100 + (i >> 16) % 100,
        (i >> 8) & 255,
        i & 255
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let services = arg(1, 10_000);
    let per_service = arg(2, 10);
    let pods = arg(3, 50_000);
    let api = FakeApi::start().await;
    for ns in 0..100 {
        api.apply_silently(
            Res::Namespaces,
            json!({"metadata": {"name": format!("ns{ns}")}}),
        );
    }
    let mut pods_left = pods;
    for i in 0..services {
        let ns = format!("ns{}", i % 100);
        let name = format!("svc{i}");
        let cluster_ip = if i % 10 == 0 {
            "None".to_owned()
        } else {
            format!("10.96.{}.{}", i / 250, i % 250)
        };
        api.apply_silently(
            Res::Services,
            json!({"metadata": {"namespace": ns, "name": name},
                   "spec": {"clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
                            "ports": [{"name": "http", "protocol": "TCP", "port": 80}]}}),
        );
        let mut endpoints = Vec::with_capacity(per_service);
        for k in 0..per_service {
            let n = i * per_service + k;
            endpoints.push(json!({"addresses": [ip(n)], "conditions": {"ready": true},
                                  "targetRef": {"kind": "Pod", "name": format!("{name}-{k}")}}));
            if pods_left > 0 && k < per_service.div_ceil(2) {
                pods_left -= 1;
                api.apply_silently(
                    Res::Pods,
                    json!({"metadata": {"namespace": ns, "name": format!("{name}-{k}")},
                           "status": {"phase": "Running", "podIP": ip(n)}}),
                );
            }
        }
        api.apply_silently(
            Res::EndpointSlices,
            json!({"metadata": {"namespace": ns, "name": format!("{name}-x"),
                                "labels": {"kubernetes.io/service-name": name}},
                   "addressType": "IPv4",
                   "ports": [{"name": "http", "protocol": "TCP", "port": 8080}],
                   "endpoints": endpoints}),
        );
    }
    println!("{}", api.url());
    std::future::pending::<()>().await;
}
