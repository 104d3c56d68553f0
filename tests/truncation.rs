//! Reply size and truncation on the wire, for every size class CoreDNS distinguishes: UDP without
//! EDNS (512), EDNS 512/1232/4096, TCP (65535). The rule is CoreDNS's (miekg/dns `Truncate`):
//! keep the question and the OPT record, then the records in order (answer, authority,
//! additional) at their compressed size until the first one that does not fit; set TC when
//! anything was left out. Expected counts are computed here from the reply's own records, so a
//! reply that counts more records than it holds, drops too many or too few, or compresses less
//! than CoreDNS fails.

mod common;

use common::{Opts, start_with_files, tcp_raw, udp_raw};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

const COREFILE: &str =
    ". {\n    kubernetes cluster.local {\n        manifests cluster.yaml\n    }\n}\n";

/// Headless services `big` (ready endpoints 10.1.x.y, `n` of them, in slices of at most 1,000)
/// and `small` (3 endpoints), both with port `http`.
fn cluster(n: usize) -> String {
    let mut s = String::from("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns\n");
    for svc in ["big", "small"] {
        s.push_str(&format!(
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {svc}\n  namespace: ns\nspec:\n  clusterIP: None\n  clusterIPs: [None]\n  ports:\n    - name: http\n      port: 80\n"
        ));
    }
    let endpoints: Vec<String> = (0..n)
        .map(|i| format!("10.1.{}.{}", i / 250, i % 250 + 1))
        .collect();
    for (k, chunk) in endpoints.chunks(1000).enumerate() {
        s.push_str(&slice("big", k, chunk));
    }
    s.push_str(&slice(
        "small",
        0,
        &["10.2.0.1".into(), "10.2.0.2".into(), "10.2.0.3".into()],
    ));
    s
}

fn slice(svc: &str, k: usize, addrs: &[String]) -> String {
    let mut s = format!(
        "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {svc}-{k}\n  namespace: ns\n  labels:\n    kubernetes.io/service-name: {svc}\naddressType: IPv4\nports:\n  - name: http\n    port: 80\n    protocol: TCP\nendpoints:\n"
    );
    for a in addrs {
        s.push_str(&format!(
            "  - addresses: [{a}]\n    conditions:\n      ready: true\n"
        ));
    }
    s
}

#[derive(Clone, Copy, Debug)]
enum Size {
    Plain,
    Edns(u16),
    Tcp,
}

impl Size {
    fn limit(self) -> usize {
        match self {
            Size::Plain => 512,
            Size::Edns(n) => usize::from(n.max(512)),
            Size::Tcp => 65535,
        }
    }

    fn opt_len(self) -> usize {
        match self {
            Size::Edns(_) => 11,
            _ => 0,
        }
    }
}

const SIZES: [Size; 5] = [
    Size::Plain,
    Size::Edns(512),
    Size::Edns(1232),
    Size::Edns(4096),
    Size::Tcp,
];

async fn ask(addr: std::net::SocketAddr, name: &str, qtype: RecordType, size: Size) -> Vec<u8> {
    let opts = Opts {
        edns: match size {
            Size::Edns(n) => Some(n),
            _ => None,
        },
        ..Opts::default()
    };
    let query = common::build(name, qtype, &opts);
    let reply = match size {
        Size::Tcp => tcp_raw(addr, &query, WAIT).await,
        _ => udp_raw(addr, &query, WAIT).await,
    };
    reply.unwrap_or_else(|| panic!("no reply to {name} {qtype} over {size:?}"))
}

/// Decodes strictly and checks what every reply must satisfy: within the limit, header counts
/// equal to what the packet holds (the decoder rejects more), the OPT record iff EDNS.
fn check(raw: &[u8], size: Size) -> Message {
    assert!(
        raw.len() <= size.limit(),
        "{} bytes over {size:?}",
        raw.len()
    );
    let msg = Message::from_vec(raw).unwrap_or_else(|e| panic!("malformed reply ({size:?}): {e}"));
    let counts = |at: usize| usize::from(u16::from_be_bytes([raw[at], raw[at + 1]]));
    assert_eq!(counts(6), msg.answers.len());
    assert_eq!(counts(8), msg.authorities.len());
    assert_eq!(
        counts(10),
        msg.additionals.len() + usize::from(msg.edns.is_some())
    );
    assert_eq!(msg.edns.is_some(), matches!(size, Size::Edns(_)));
    assert_eq!(msg.metadata.response_code, ResponseCode::NoError);
    msg
}

/// Uncompressed wire length of a name.
fn wire_len(name: &str) -> usize {
    name.trim_end_matches('.').len() + 2
}

#[tokio::test]
async fn headless_a_keeps_the_longest_prefix_that_fits_each_size() {
    let s = start_with_files(COREFILE, &[("cluster.yaml", &cluster(300))]).await;
    let q = "big.ns.svc.cluster.local.";
    let full = check(&ask(s.addr, q, RecordType::A, Size::Tcp).await, Size::Tcp);
    assert_eq!(full.answers.len(), 300);
    assert!(!full.metadata.truncation);
    for size in SIZES {
        let raw = ask(s.addr, q, RecordType::A, size).await;
        let msg = check(&raw, size);
        // Header, question, then 16 bytes an A record (its owner is a pointer to the question).
        let base = 12 + wire_len(q) + 4;
        let fit = ((size.limit() - size.opt_len() - base) / 16).min(300);
        assert_eq!(msg.answers.len(), fit, "{size:?}");
        assert_eq!(msg.metadata.truncation, fit < 300, "{size:?}");
        assert_eq!(raw.len(), base + 16 * fit + size.opt_len(), "{size:?}");
    }
    s.shutdown().await;
}

#[tokio::test]
async fn headless_srv_keeps_answers_first_then_as_many_additionals_as_fit() {
    let s = start_with_files(COREFILE, &[("cluster.yaml", &cluster(40))]).await;
    let q = "_http._tcp.big.ns.svc.cluster.local.";
    let full = check(&ask(s.addr, q, RecordType::SRV, Size::Tcp).await, Size::Tcp);
    assert_eq!((full.answers.len(), full.additionals.len()), (40, 40));
    // Sizes in the reply's own order: each SRV is a pointer owner, fixed fields, its target in
    // full (RFC 2782: never compressed); each additional A owner points into its SRV target.
    let srv_sizes: Vec<usize> = full
        .answers
        .iter()
        .map(|r| match &r.data {
            RData::SRV(srv) => 2 + 10 + 6 + wire_len(&srv.target.to_string()),
            other => panic!("not SRV: {other:?}"),
        })
        .collect();
    for size in SIZES {
        let msg = check(&ask(s.addr, q, RecordType::SRV, size).await, size);
        let mut room = size.limit() - size.opt_len() - (12 + wire_len(q) + 4);
        let mut answers = 0;
        let mut additionals = 0;
        for len in &srv_sizes {
            if *len > room {
                break;
            }
            room -= len;
            answers += 1;
        }
        if answers == 40 {
            additionals = (room / 16).min(40);
        }
        assert_eq!(
            (msg.answers.len(), msg.additionals.len()),
            (answers, additionals),
            "{size:?}"
        );
        assert_eq!(
            msg.answers[..],
            full.answers[..answers],
            "{size:?}: a prefix, in order"
        );
        assert_eq!(
            msg.metadata.truncation,
            answers < 40 || additionals < 40,
            "{size:?}: TC iff a record was left out"
        );
    }
    s.shutdown().await;
}

#[tokio::test]
async fn three_thousand_a_records_fit_one_tcp_reply_and_five_thousand_are_truncated() {
    let s = start_with_files(COREFILE, &[("cluster.yaml", &cluster(5000))]).await;
    let q = "big.ns.svc.cluster.local.";
    let base = 12 + wire_len(q) + 4;
    let raw = ask(s.addr, q, RecordType::A, Size::Tcp).await;
    let msg = check(&raw, Size::Tcp);
    let fit = (65535 - base) / 16;
    assert_eq!(msg.answers.len(), fit);
    assert!(
        msg.metadata.truncation,
        "5,000 A records do not fit 64 KiB even compressed"
    );
    assert_eq!(raw.len(), base + 16 * fit);
    s.shutdown().await;

    let s = start_with_files(COREFILE, &[("cluster.yaml", &cluster(3000))]).await;
    let raw = ask(s.addr, q, RecordType::A, Size::Tcp).await;
    let msg = check(&raw, Size::Tcp);
    assert_eq!(msg.answers.len(), 3000);
    assert!(!msg.metadata.truncation);
    // About 48 KB, as CoreDNS: every owner name compressed to a pointer.
    assert_eq!(raw.len(), base + 16 * 3000);
    s.shutdown().await;
}

#[tokio::test]
async fn small_replies_are_whole_and_echo_the_client_cookie() {
    let s = start_with_files(COREFILE, &[("cluster.yaml", &cluster(3))]).await;
    let q = "small.ns.svc.cluster.local.";
    for size in SIZES {
        let msg = check(&ask(s.addr, q, RecordType::A, size).await, size);
        assert_eq!(msg.answers.len(), 3);
        assert!(!msg.metadata.truncation);
    }
    // dig sends a client COOKIE; CoreDNS copies it (and NSID, EXPIRE, TCP-KEEPALIVE, PADDING)
    // into its reply's OPT record, and other options not.
    let mut query = common::build(
        q,
        RecordType::A,
        &Opts {
            edns: Some(1232),
            ..Opts::default()
        },
    );
    // Append two options to the OPT record (the query's last 11 bytes): COOKIE and ECS.
    let cookie = [0u8, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
    let ecs = [0u8, 8, 0, 7, 0, 1, 24, 0, 10, 0, 0];
    let rdlen_at = query.len() - 2;
    let rdlen = u16::try_from(cookie.len() + ecs.len()).unwrap();
    query[rdlen_at..].copy_from_slice(&rdlen.to_be_bytes());
    query.extend_from_slice(&cookie);
    query.extend_from_slice(&ecs);
    let raw = udp_raw(s.addr, &query, WAIT).await.expect("reply");
    let msg = check(&raw, Size::Edns(1232));
    assert_eq!(msg.answers.len(), 3);
    // The reply ends with the OPT record holding exactly the cookie option.
    let tail = &raw[raw.len() - (11 + cookie.len())..];
    assert_eq!(&tail[..3], &[0, 0, 41], "root name, type OPT");
    assert_eq!(&tail[9..11], &[0, 12], "RDLENGTH: the cookie option only");
    assert_eq!(&tail[11..], &cookie);
    s.shutdown().await;
}
