//! Body of the `request_index` fuzz target, shared with `tests/fuzz_regressions.rs`: a fuzzed
//! cluster and a fuzzed request. The input is
//!
//! ```text
//! [len: u16 BE][len bytes: DNS request][rest: manifests YAML]
//! ```
//!
//! The YAML is loaded as the kubernetes plugin's `manifests` file (the seeds hold the demo
//! cluster and pieces of it), then the request and a fixed set of questions about the demo names
//! (SRV, A, AAAA, PTR, NS, TXT) go through the whole request path over UDP and TCP. Must never
//! panic; every reply must decode, echo the id and fit the UDP size limit.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};

const COREFILE: &str = "cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {\n    \
                        kubernetes cluster.local in-addr.arpa ip6.arpa {\n        \
                        manifests cluster.yaml\n        pods verified\n        \
                        fallthrough in-addr.arpa ip6.arpa\n    }\n}\n";

struct Target {
    /// Held for a whole execution (the regression tests run on several threads).
    one: Mutex<()>,
    rt: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
    /// Fixed questions, encoded once.
    questions: Vec<Vec<u8>>,
}

/// A query for `name`/`qtype` as a stub resolver sends it (RD, EDNS 1232 when `edns`).
pub fn question(name: &str, qtype: RecordType, id: u16, edns: bool) -> Option<Vec<u8>> {
    let mut msg = Message::query();
    msg.metadata.id = id;
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from_ascii(name).ok()?, qtype));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        msg.set_edns(e);
    }
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
            .zip(0x4000u16..)
            .filter_map(|((name, qtype), id)| question(name, *qtype, id, true))
            .collect();
        Target {
            one: Mutex::new(()),
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
            assert_eq!(
                msg.metadata.id,
                u16::from_be_bytes([request[0], request[1]])
            );
            if !tcp {
                assert!(
                    reply.len() <= 4096,
                    "UDP reply larger than any client buffer"
                );
            }
        }
    }
}

/// One execution; whether the cluster loaded (a cluster the loader rejects is a configuration
/// error, not a crash).
pub fn run(data: &[u8]) -> bool {
    let Some((head, rest)) = data.split_first_chunk::<2>() else {
        return false;
    };
    let len = usize::from(u16::from_be_bytes(*head));
    let (request, yaml) = rest.split_at(len.min(rest.len()));
    let t = target();
    let _one = t.one.lock().unwrap_or_else(PoisonError::into_inner);
    let path: PathBuf = t.dir.path().join("cluster.yaml");
    if std::fs::write(&path, yaml).is_err() {
        return false;
    }
    let Ok(config) = clusterdns::config_from_str(COREFILE, "Corefile", t.dir.path(), 53) else {
        return false;
    };
    let harness = clusterdns::Harness::new(&config).expect("one listener");
    if request.len() >= 2 {
        check(t, &harness, request);
    }
    for q in &t.questions {
        check(t, &harness, q);
    }
    true
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

fn input(request: &[u8], yaml: &str) -> Vec<u8> {
    let len = u16::try_from(request.len()).expect("a seed request fits");
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(request);
    out.extend_from_slice(yaml.as_bytes());
    out
}

/// The seed corpus, named `seed-*`: the demo cluster (`corefile/demo-cluster.yaml`) whole with
/// assorted questions, and each of its sections (`# ---- ns/name ...`, with the namespaces)
/// with A, SRV and AAAA questions about the services the section's title names.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let demo = std::fs::read_to_string(repo().join("corefile/demo-cluster.yaml"))
        .expect("corefile/demo-cluster.yaml");
    let mut out = Vec::new();
    // (seed tag, question, EDNS)
    let whole = [
        (
            "srv",
            "_http._tcp.api.demo.svc.cluster.local.",
            RecordType::SRV,
            true,
        ),
        ("a", "api.demo.svc.cluster.local.", RecordType::A, false),
        (
            "headless",
            "db-0.db.demo.svc.cluster.local.",
            RecordType::A,
            true,
        ),
        ("ptr", "10.0.96.10.in-addr.arpa.", RecordType::PTR, false),
        (
            "pod",
            "10-244-1-5.demo.pod.cluster.local.",
            RecordType::A,
            false,
        ),
        ("nx", "nope.demo.svc.cluster.local.", RecordType::AAAA, true),
    ];
    for (id, (tag, name, qtype, edns)) in (1u16..).zip(whole) {
        let request = question(name, qtype, id, edns).expect("seed question");
        out.push((format!("seed-demo-{tag}"), input(&request, &demo)));
    }
    let mut parts = demo.split("\n# -----");
    let namespaces = parts.next().unwrap_or_default();
    for (i, part) in parts.enumerate() {
        let title = part.lines().next().unwrap_or_default();
        let services: Vec<(&str, &str)> = title
            .split([' ', ','])
            .filter_map(|word| word.split_once('/'))
            .collect();
        let Some((ns, svc)) = services.first() else {
            continue;
        };
        let yaml = format!("{namespaces}\n# -----{part}");
        let asks = [
            (format!("{svc}.{ns}.svc.cluster.local."), RecordType::A),
            (
                format!("_tcp.{svc}.{ns}.svc.cluster.local."),
                RecordType::SRV,
            ),
            (format!("{svc}.{ns}.svc.cluster.local."), RecordType::AAAA),
        ];
        let (name, qtype) = &asks[i % asks.len()];
        let request = question(name, *qtype, 0x100 + i as u16, i % 2 == 0).expect("seed question");
        out.push((format!("seed-part{i}-{ns}-{svc}"), input(&request, &yaml)));
    }
    // A cluster in JSON (a `List`), as a manifests file may hold it.
    let json = r#"{"apiVersion":"v1","kind":"List","items":[
{"apiVersion":"v1","kind":"Service","metadata":{"name":"svc","namespace":"ns"},
 "spec":{"clusterIP":"10.96.0.20","ports":[{"name":"http","port":80,"protocol":"TCP"}]}},
{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"svc-1","namespace":"ns",
 "labels":{"kubernetes.io/service-name":"svc"}},"addressType":"IPv4",
 "endpoints":[{"addresses":["10.244.0.9"],"hostname":"h","conditions":{"ready":true}}],
 "ports":[{"name":"http","port":8080,"protocol":"TCP"}]}]}"#;
    let request = question(
        "_http._tcp.svc.ns.svc.cluster.local.",
        RecordType::SRV,
        0x200,
        true,
    )
    .expect("seed");
    out.push(("seed-json-list".to_owned(), input(&request, json)));
    out
}
