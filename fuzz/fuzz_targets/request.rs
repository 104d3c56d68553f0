//! Arbitrary bytes as a DNS request through the whole request path (decode, checks, routing,
//! the kubernetes plugin over the demo cluster, whoami, reply encoding): must never panic, and
//! any reply must decode and echo the request id.
#![no_main]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

struct Target {
    rt: tokio::runtime::Runtime,
    harness: clusterdns::Harness,
}

fn target() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(|| {
        let corefile_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corefile");
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
        Target { rt, harness }
    })
}

fuzz_target!(|data: &[u8]| {
    let t = target();
    let src: SocketAddr = "10.244.1.5:33000".parse().unwrap();
    for tcp in [false, true] {
        if let Some(reply) = t.rt.block_on(t.harness.handle(data, src, tcp)) {
            let msg = hickory_proto::op::Message::from_vec(&reply)
                .expect("every reply the server writes must decode");
            assert_eq!(msg.metadata.id, u16::from_be_bytes([data[0], data[1]]));
            if !tcp {
                assert!(reply.len() <= 4096, "UDP reply larger than any client buffer");
            }
        }
    }
});
