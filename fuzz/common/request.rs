//! Body of the `request` fuzz target, shared with `tests/fuzz_regressions.rs`: arbitrary bytes as
//! a DNS request through the whole request path (decode, checks, routing, the kubernetes plugin
//! over the demo cluster, whoami, reply encoding): must never panic, and any reply must decode
//! and echo the request id.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

struct Target {
    /// Held for a whole execution (the regression tests run on several threads).
    one: Mutex<()>,
    rt: tokio::runtime::Runtime,
    harness: clusterdns::Harness,
}

/// The repository root: this file is built from `fuzz/` (the fuzz crate) and from the root (the
/// regression tests).
fn repo() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    if here.join("corefile").is_dir() {
        here.to_path_buf()
    } else {
        here.join("..")
    }
}

fn target() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(|| {
        let corefile_dir = repo().join("corefile");
        let text = "cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {\n    \
                    kubernetes cluster.local in-addr.arpa ip6.arpa {\n        \
                    manifests demo-cluster.yaml\n        pods insecure\n        \
                    fallthrough in-addr.arpa ip6.arpa\n    }\n}\n\
                    example.org:53 {\n    whoami\n}\n";
        let config = clusterdns::config_from_str(text, "Corefile", &corefile_dir, 53)
            .expect("fuzz Corefile must load");
        let harness = clusterdns::Harness::new(&config).expect("one listener");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        Target {
            one: Mutex::new(()),
            rt,
            harness,
        }
    })
}

/// One execution.
pub fn run(data: &[u8]) {
    let t = target();
    let _one = t.one.lock().unwrap_or_else(PoisonError::into_inner);
    let src: SocketAddr = "10.244.1.5:33000".parse().expect("address");
    for tcp in [false, true] {
        if let Some(reply) = t.rt.block_on(t.harness.handle(data, src, tcp)) {
            let msg = hickory_proto::op::Message::from_vec(&reply)
                .expect("every reply the server writes must decode");
            assert_eq!(msg.metadata.id, u16::from_be_bytes([data[0], data[1]]));
            if !tcp {
                assert!(
                    reply.len() <= 4096,
                    "UDP reply larger than any client buffer"
                );
            }
        }
    }
}
