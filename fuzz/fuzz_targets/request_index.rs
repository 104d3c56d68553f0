//! Fuzz target `request_index`: a fuzzed cluster and a fuzzed request. The input is
//! `[len: u16 BE][len bytes: DNS request][rest: manifests YAML]`; the YAML is loaded as the
//! kubernetes plugin's `manifests` file (the seeds hold the demo cluster and variations), then
//! the request and a fixed set of questions about the demo names (SRV, A, AAAA, PTR, NS, TXT)
//! go through the whole request path. Must never panic; every reply must decode, echo the id and
//! fit the UDP size limit.
#![no_main]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};
use libfuzzer_sys::fuzz_target;

const COREFILE: &str = "cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {\n    \
                        kubernetes cluster.local in-addr.arpa ip6.arpa {\n        \
                        manifests cluster.yaml\n        pods verified\n        \
                        fallthrough in-addr.arpa ip6.arpa\n    }\n}\n";

struct Target {
    rt: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
    /// Fixed questions, encoded once.
    questions: Vec<Vec<u8>>,
}

fn question(name: &str, qtype: RecordType, id: u16) -> Option<Vec<u8>> {
    let mut msg = Message::query();
    msg.metadata.id = id;
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from_ascii(name).ok()?, qtype));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    msg.set_edns(edns);
    msg.to_vec().ok()
}

fn target() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(|| {
        let asks = [
            ("_http._tcp.api.demo.svc.cluster.local.", RecordType::SRV),
            ("api.demo.svc.cluster.local.", RecordType::A),
            ("cache-headless.demo.svc.cluster.local.", RecordType::SRV),
            ("cache-headless.demo.svc.cluster.local.", RecordType::AAAA),
            ("external.demo.svc.cluster.local.", RecordType::A),
            ("internal-alias.demo.svc.cluster.local.", RecordType::CNAME),
            ("10.0.96.10.in-addr.arpa.", RecordType::PTR),
            ("5.1.244.10.in-addr.arpa.", RecordType::PTR),
            ("10-244-1-5.demo.pod.cluster.local.", RecordType::A),
            ("cluster.local.", RecordType::NS),
            ("dns-version.cluster.local.", RecordType::TXT),
        ];
        let questions = asks
            .iter()
            .enumerate()
            .filter_map(|(i, (name, qtype))| question(name, *qtype, 0x4000 + i as u16))
            .collect();
        Target {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            dir: tempfile::tempdir().expect("tempdir"),
            questions,
        }
    })
}

fn check(t: &Target, harness: &clusterdns::Harness, request: &[u8]) {
    let src: SocketAddr = "10.244.1.5:33000".parse().expect("address");
    for tcp in [false, true] {
        if let Some(reply) = t.rt.block_on(harness.handle(request, src, tcp)) {
            let msg = Message::from_vec(&reply).expect("every reply the server writes must decode");
            assert_eq!(msg.metadata.id, u16::from_be_bytes([request[0], request[1]]));
            if !tcp {
                assert!(reply.len() <= 4096, "UDP reply larger than any client buffer");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let len = usize::from(u16::from_be_bytes(*head));
    let (request, yaml) = rest.split_at(len.min(rest.len()));
    let t = target();
    let path: PathBuf = t.dir.path().join("cluster.yaml");
    if std::fs::write(&path, yaml).is_err() {
        return;
    }
    // A cluster the loader rejects is a configuration error, not a crash.
    let Ok(config) = clusterdns::config_from_str(COREFILE, "Corefile", t.dir.path(), 53) else {
        return;
    };
    let harness = clusterdns::Harness::new(&config).expect("one listener");
    if request.len() >= 2 {
        check(t, &harness, request);
    }
    for q in &t.questions {
        check(t, &harness, q);
    }
});
