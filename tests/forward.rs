//! The `forward` plugin end to end on loopback: clusterdns started in-process relays to test
//! upstreams (tests/common/upstream.rs) that answer, time out, fail, send garbage, truncate or
//! close TCP; failover, health checks, policies, rcodes and metrics are asserted on real replies.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::upstream::{Datagram, Mode, Script, Scripted, Source, Upstream, first_label, reply_to};
use common::{Opts, TestServer, build, start, tcp_raw, udp_raw};
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};

/// Long enough for a failover after one silent upstream (2 s read timeout) plus slack.
const WAIT: Duration = Duration::from_secs(8);

async fn udp(addr: SocketAddr, name: &str, qtype: RecordType, opts: &Opts) -> Message {
    let bytes = udp_raw(addr, &build(name, qtype, opts), WAIT)
        .await
        .unwrap_or_else(|| panic!("no UDP reply for {name} {qtype}"));
    Message::from_vec(&bytes).expect("decodable reply")
}

async fn tcp(addr: SocketAddr, name: &str, qtype: RecordType, opts: &Opts) -> Message {
    let bytes = tcp_raw(addr, &build(name, qtype, opts), WAIT)
        .await
        .unwrap_or_else(|| panic!("no TCP reply for {name} {qtype}"));
    Message::from_vec(&bytes).expect("decodable reply")
}

fn a_records(msg: &Message) -> Vec<String> {
    let mut v: Vec<String> = msg
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

async fn forward_to(upstreams: &[&Upstream], options: &str) -> TestServer {
    let to: Vec<String> = upstreams.iter().map(|u| u.addr.to_string()).collect();
    start(&format!(
        ". {{\n    forward . {} {{\n{options}\n    }}\n}}\n",
        to.join(" ")
    ))
    .await
}

#[tokio::test]
async fn forward_relays_over_udp_and_tcp_keeping_rcode_flags_sections() {
    let up = Upstream::start(Mode::Normal).await;
    let s = forward_to(&[&up], "").await;
    let opts = Opts {
        id: 0x4242,
        ..Opts::default()
    };
    for tcp_client in [false, true] {
        let r = if tcp_client {
            tcp(s.addr, "External.TEST.", RecordType::A, &opts).await
        } else {
            udp(s.addr, "External.TEST.", RecordType::A, &opts).await
        };
        assert_eq!(r.metadata.id, 0x4242, "client id restored");
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.metadata.authoritative, "AA from the upstream");
        assert!(r.metadata.recursion_available, "RA from the upstream");
        assert_eq!(a_records(&r), ["192.0.2.10"]);
        assert_eq!(r.answers[0].name.to_string(), "External.TEST.", "case kept");
        assert_eq!(r.answers[0].ttl, 300);
        assert_eq!(r.authorities.len(), 1, "authority section kept");
        assert_eq!(r.additionals.len(), 1, "additional section kept");
    }
    let seen = up.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(!seen[0].tcp && seen[1].tcp, "transport follows the client");
    assert!(seen.iter().all(|q| q.rd), "RD passed on");
    assert!(
        seen.iter().any(|q| q.id != 0x4242),
        "upstream ids are random: {seen:?}"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn forward_passes_nxdomain_and_servfail_from_upstream() {
    let up = Upstream::start(Mode::Normal).await;
    let s = forward_to(&[&up], "").await;
    let r = udp(s.addr, "missing.test.", RecordType::A, &Opts::default()).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(r.authorities.len(), 1);
    assert_eq!(r.authorities[0].record_type(), RecordType::SOA);
    up.set_mode(Mode::ServFail);
    let r = udp(s.addr, "external.test.", RecordType::A, &Opts::default()).await;
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    assert!(
        r.metadata.recursion_available,
        "the upstream's reply, not ours"
    );
    assert_eq!(
        up.count("external.test.", RecordType::A),
        1,
        "no retry on SERVFAIL"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn forward_edns_size_and_do_bit_reach_the_upstream() {
    let up = Upstream::start(Mode::Normal).await;
    let s = forward_to(&[&up], "").await;
    // Without EDNS the upstream's 60 records do not fit in 512 bytes: TC passed on to the client.
    let r = udp(s.addr, "big.test.", RecordType::A, &Opts::default()).await;
    assert!(r.metadata.truncation, "TC passed on");
    assert!(r.answers.is_empty());
    // With EDNS 4096 they fit.
    let opts = Opts {
        edns: Some(4096),
        dnssec_ok: true,
        cd: true,
        ..Opts::default()
    };
    let r = udp(s.addr, "big.test.", RecordType::A, &opts).await;
    assert!(!r.metadata.truncation);
    assert_eq!(r.answers.len(), 60);
    assert!(r.edns.is_some(), "our own OPT record");
    let last = up.seen().pop().expect("a query");
    assert_eq!(last.edns, Some((4096, true)));
    assert!(last.cd, "CD passed on");
    // Over TCP the client gets everything.
    let r = tcp(s.addr, "big.test.", RecordType::A, &Opts::default()).await;
    assert_eq!(r.answers.len(), 60);
    s.shutdown().await;
}

#[tokio::test]
async fn forward_truncated_udp_reply_is_passed_to_udp_clients_and_retried_over_tcp_with_prefer_udp()
{
    let up = Upstream::start(Mode::Truncate).await;
    let s = forward_to(&[&up], "").await;
    let r = udp(s.addr, "external.test.", RecordType::A, &Opts::default()).await;
    assert!(
        r.metadata.truncation,
        "a UDP client gets TC and retries itself"
    );
    assert!(r.answers.is_empty());
    s.shutdown().await;

    let s = forward_to(&[&up], "        prefer_udp").await;
    let before = up.seen().len();
    let r = tcp(s.addr, "external.test.", RecordType::A, &Opts::default()).await;
    assert!(!r.metadata.truncation);
    assert_eq!(a_records(&r), ["192.0.2.10"]);
    let seen = &up.seen()[before..];
    let transports: Vec<bool> = seen.iter().map(|q| q.tcp).collect();
    assert_eq!(transports, [false, true], "UDP first, then TCP after TC");
    s.shutdown().await;
}

#[tokio::test]
async fn forward_force_tcp_uses_tcp_and_reuses_the_connection() {
    let up = Upstream::start(Mode::Normal).await;
    let s = forward_to(&[&up], "        force_tcp").await;
    for _ in 0..3 {
        let r = udp(s.addr, "external.test.", RecordType::A, &Opts::default()).await;
        assert_eq!(a_records(&r), ["192.0.2.10"]);
    }
    let seen = up.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|q| q.tcp), "{seen:?}");
    assert!(
        seen.iter().all(|q| q.peer == seen[0].peer),
        "one pooled connection: {seen:?}"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn forward_pooled_tcp_connection_closed_by_the_upstream_is_retried_on_a_new_one() {
    let up = Upstream::start(Mode::Normal).await;
    let s = forward_to(&[&up], "        force_tcp").await;
    let r = udp(s.addr, "external.test.", RecordType::A, &Opts::default()).await;
    assert_eq!(a_records(&r), ["192.0.2.10"]);
    up.close_connections();
    let r = udp(s.addr, "external.test.", RecordType::A, &Opts::default()).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(a_records(&r), ["192.0.2.10"]);
    let seen = up.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_ne!(seen[0].peer, seen[1].peer, "answered on a new connection");
    s.shutdown().await;
}

#[tokio::test]
async fn forward_all_down_still_tries_an_upstream_and_counts_broken_health_checks() {
    let bad = Upstream::start(Mode::Garbage).await;
    let s = forward_to(&[&bad], "        max_fails 1\n        health_check 50ms").await;
    let r = udp(s.addr, "external.test.", RecordType::A, &Opts::default()).await;
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    // A second probe is sent only after the first one's failure was recorded: down by then.
    bad.wait_for("two health probes", Duration::from_secs(3), |seen| {
        seen.iter().filter(|q| q.name == ".").count() >= 2
    })
    .await;
    // Down (every probe fails), and the only one: asked anyway, the health checks may be what
    // is broken.
    let before = bad.count("external.test.", RecordType::A);
    let r = udp(s.addr, "external.test.", RecordType::A, &Opts::default()).await;
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    assert!(
        bad.count("external.test.", RecordType::A) > before,
        "asked while down"
    );
    let metrics = clusterdns::metrics::render();
    assert!(
        metrics.lines().any(
            |l| l.starts_with("coredns_forward_healthcheck_broken_total ") && !l.ends_with(" 0")
        ),
        "{metrics}"
    );
    let to = bad.addr.to_string();
    assert!(
        metrics.lines().any(|l| l.starts_with(&format!(
            "coredns_forward_healthcheck_failures_total{{to=\"{to}\"}}"
        )) && !l.ends_with(" 0")),
        "{metrics}"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn forward_reuses_its_udp_socket_per_upstream() {
    let up = Upstream::start(Mode::Normal).await;
    let s = forward_to(&[&up], "").await;
    for _ in 0..3 {
        let r = udp(s.addr, "external.test.", RecordType::A, &Opts::default()).await;
        assert_eq!(a_records(&r), ["192.0.2.10"]);
    }
    let seen = up.seen();
    assert!(
        seen.iter().all(|q| q.peer == seen[0].peer),
        "one pooled socket: {seen:?}"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn forward_expire_closes_idle_connections() {
    let up = Upstream::start(Mode::Normal).await;
    let s = forward_to(&[&up], "        expire 100ms").await;
    udp(s.addr, "external.test.", RecordType::A, &Opts::default()).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    // Once idle longer than `expire`, the next query opens a new socket (a new source port).
    loop {
        tokio::time::sleep(Duration::from_millis(150)).await;
        udp(s.addr, "external.test.", RecordType::A, &Opts::default()).await;
        let seen = up.seen();
        if seen.last().map(|q| q.peer) != seen.first().map(|q| q.peer) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "idle socket never expired: {seen:?}"
        );
    }
    s.shutdown().await;
}

#[tokio::test]
async fn forward_fails_over_from_garbage_and_closed_tcp_upstreams() {
    let bad = Upstream::start(Mode::Garbage).await;
    let good = Upstream::start_tagged(Mode::Normal, 20).await;
    let s = forward_to(&[&bad, &good], "        policy sequential").await;
    let r = udp(s.addr, "external.test.", RecordType::A, &Opts::default()).await;
    assert_eq!(a_records(&r), ["192.0.2.20"]);
    assert_eq!(bad.count("external.test.", RecordType::A), 1, "tried first");
    s.shutdown().await;

    let closing = Upstream::start(Mode::CloseTcp).await;
    let s = forward_to(
        &[&closing, &good],
        "        policy sequential\n        force_tcp",
    )
    .await;
    let r = udp(s.addr, "external.test.", RecordType::A, &Opts::default()).await;
    assert_eq!(a_records(&r), ["192.0.2.20"]);
    s.shutdown().await;
}

#[tokio::test]
async fn forward_fails_over_from_silent_and_wrong_id_upstreams() {
    let good = Upstream::start_tagged(Mode::Normal, 20).await;
    for mode in [Mode::Silent, Mode::WrongId] {
        let bad = Upstream::start(mode).await;
        let s = forward_to(&[&bad, &good], "        policy sequential").await;
        let r = udp(s.addr, "external.test.", RecordType::A, &Opts::default()).await;
        assert_eq!(a_records(&r), ["192.0.2.20"], "{mode:?}");
        assert_eq!(bad.count("external.test.", RecordType::A), 1, "{mode:?}");
        s.shutdown().await;
    }
}

#[tokio::test]
async fn forward_question_mismatch_is_formerr() {
    let up = Upstream::start(Mode::OtherQuestion).await;
    let s = forward_to(&[&up], "").await;
    let r = udp(s.addr, "external.test.", RecordType::A, &Opts::default()).await;
    assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
    assert!(r.answers.is_empty());
    s.shutdown().await;
}

#[tokio::test]
async fn forward_every_upstream_failing_is_servfail() {
    // Nobody listens on a port we bound and released: the kernel refuses at once.
    let port = {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        sock.local_addr().expect("addr").port()
    };
    let s = start(&format!(". {{\n    forward . 127.0.0.1:{port}\n}}\n")).await;
    let r = udp(s.addr, "external.test.", RecordType::A, &Opts::default()).await;
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    s.shutdown().await;
}

#[tokio::test]
async fn forward_health_checks_start_only_after_a_failure_and_mark_down() {
    let bad = Upstream::start(Mode::Normal).await;
    let good = Upstream::start_tagged(Mode::Normal, 20).await;
    let s = forward_to(
        &[&bad, &good],
        "        policy sequential\n        max_fails 1\n        health_check 50ms",
    )
    .await;
    for _ in 0..3 {
        let r = udp(s.addr, "external.test.", RecordType::A, &Opts::default()).await;
        assert_eq!(a_records(&r), ["192.0.2.10"]);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(bad.probes(), 0, "no health checks while all is well");

    // Garbage fails at once, so does every probe: one failed probe marks it down (max_fails 1).
    bad.set_mode(Mode::Garbage);
    let r = udp(s.addr, "external.test.", RecordType::A, &Opts::default()).await;
    assert_eq!(a_records(&r), ["192.0.2.20"], "failover");
    // Down (a second probe means the first failure was recorded): queries go straight to the
    // second upstream.
    bad.wait_for("two health probes", Duration::from_secs(3), |seen| {
        seen.iter().filter(|q| q.name == ".").count() >= 2
    })
    .await;
    let before = bad.count("external.test.", RecordType::A);
    for _ in 0..3 {
        let r = udp(s.addr, "external.test.", RecordType::A, &Opts::default()).await;
        assert_eq!(a_records(&r), ["192.0.2.20"]);
    }
    assert_eq!(
        bad.count("external.test.", RecordType::A),
        before,
        "a down upstream is skipped"
    );
    // It answers probes again: back in use.
    bad.set_mode(Mode::Normal);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let r = udp(s.addr, "external.test.", RecordType::A, &Opts::default()).await;
        if a_records(&r) == ["192.0.2.10"] {
            break;
        }
        assert!(Instant::now() < deadline, "upstream never came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.shutdown().await;
}

#[tokio::test]
async fn forward_all_down_with_failfast_is_servfail_without_asking() {
    let bad = Upstream::start(Mode::Garbage).await;
    let s = forward_to(
        &[&bad],
        "        max_fails 1\n        health_check 50ms\n        failfast_all_unhealthy_upstreams",
    )
    .await;
    let r = udp(s.addr, "external.test.", RecordType::A, &Opts::default()).await;
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    // A second probe is sent only after the first one's failure was recorded: down by then.
    bad.wait_for("two health probes", Duration::from_secs(3), |seen| {
        seen.iter().filter(|q| q.name == ".").count() >= 2
    })
    .await;
    let before = bad.count("external.test.", RecordType::A);
    let r = udp(s.addr, "external.test.", RecordType::A, &Opts::default()).await;
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(
        bad.count("external.test.", RecordType::A),
        before,
        "not asked while down"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn forward_policies_spread_or_order_queries() {
    let a = Upstream::start_tagged(Mode::Normal, 10).await;
    let b = Upstream::start_tagged(Mode::Normal, 20).await;
    let s = forward_to(&[&a, &b], "        policy round_robin").await;
    for _ in 0..4 {
        udp(s.addr, "external.test.", RecordType::A, &Opts::default()).await;
    }
    assert_eq!(a.seen().len(), 2);
    assert_eq!(b.seen().len(), 2);
    s.shutdown().await;
    let s = forward_to(&[&b, &a], "        policy sequential").await;
    for _ in 0..4 {
        let r = udp(s.addr, "external.test.", RecordType::A, &Opts::default()).await;
        assert_eq!(a_records(&r), ["192.0.2.20"]);
    }
    assert_eq!(a.seen().len(), 2, "sequential always starts with the first");
    s.shutdown().await;
}

#[tokio::test]
async fn forward_max_concurrent_refuses_over_the_limit() {
    let slow = Upstream::start(Mode::Silent).await;
    let s = forward_to(&[&slow], "        max_concurrent 1").await;
    let addr = s.addr;
    let first = tokio::spawn(async move {
        udp_raw(
            addr,
            &build("external.test.", RecordType::A, &Opts::default()),
            WAIT,
        )
        .await
    });
    slow.wait_for("the first query", Duration::from_secs(3), |seen| {
        !seen.is_empty()
    })
    .await;
    let r = udp(s.addr, "other.test.", RecordType::A, &Opts::default()).await;
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    assert_eq!(slow.count("other.test.", RecordType::A), 0);
    let metrics = clusterdns::metrics::render();
    assert!(
        metrics.lines().any(
            |l| l.starts_with("coredns_forward_max_concurrent_rejects_total ")
                && !l.ends_with(" 0")
        ),
        "{metrics}"
    );
    first.abort();
    s.shutdown().await;
}

#[tokio::test]
async fn forward_except_and_next_pass_queries_on() {
    let a = Upstream::start_tagged(Mode::Normal, 10).await;
    let b = Upstream::start_tagged(Mode::Normal, 20).await;
    let s = start(&format!(
        ". {{\n    forward . {} {{\n        except skip.test\n        next NXDOMAIN\n    }}\n    \
         forward . {}\n}}\n",
        a.addr, b.addr
    ))
    .await;
    // `only20.test` is NXDOMAIN at a: `next` hands it to the second forward.
    let r = udp(s.addr, "only20.test.", RecordType::A, &Opts::default()).await;
    assert_eq!(a_records(&r), ["192.0.2.20"]);
    assert_eq!(a.count("only20.test.", RecordType::A), 1);
    // `except`: never sent to a.
    let r = udp(s.addr, "x.skip.test.", RecordType::A, &Opts::default()).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(a.count("x.skip.test.", RecordType::A), 0);
    assert_eq!(b.count("x.skip.test.", RecordType::A), 1);
    s.shutdown().await;
}

#[tokio::test]
async fn forward_metrics_name_the_upstream_and_rcode() {
    let up = Upstream::start(Mode::Normal).await;
    let s = forward_to(&[&up], "").await;
    udp(s.addr, "external.test.", RecordType::A, &Opts::default()).await;
    udp(s.addr, "missing.test.", RecordType::A, &Opts::default()).await;
    let text = clusterdns::metrics::render();
    let to = up.addr.to_string();
    for want in [
        format!("coredns_forward_requests_total{{to=\"{to}\"}} 2"),
        format!("coredns_forward_responses_total{{rcode=\"NOERROR\",to=\"{to}\"}} 1"),
        format!("coredns_forward_responses_total{{rcode=\"NXDOMAIN\",to=\"{to}\"}} 1"),
        format!(
            "coredns_forward_request_duration_seconds_count{{rcode=\"NOERROR\",to=\"{to}\"}} 1"
        ),
        format!(
            "coredns_proxy_request_duration_seconds_count{{proxy_name=\"forward\",rcode=\"NXDOMAIN\",to=\"{to}\"}} 1"
        ),
    ] {
        assert!(text.lines().any(|l| l == want), "missing {want}\n{text}");
    }
    s.shutdown().await;
}

/// The real reply of a scripted upstream: A 192.0.2.1. Forgeries carry 6.6.6.6.
const REAL: [u8; 4] = [192, 0, 2, 1];
const FORGED: [u8; 4] = [6, 6, 6, 6];
/// When the real reply follows a bogus datagram.
const REAL_AFTER: Duration = Duration::from_millis(300);

/// The bogus datagrams a scripted upstream sends first for a query whose first label is `case`;
/// `None` for a label that is not a case (probes, and `case`, which gets only the real reply).
fn bogus(case: &str, query: &[u8]) -> Option<Vec<Datagram>> {
    let forged = reply_to(query, FORGED)?;
    let edit = |f: &dyn Fn(&mut Message)| {
        let mut m = forged.clone();
        f(&mut m);
        m.to_vec().expect("encode a forgery")
    };
    let now = |bytes| vec![Datagram::at(Duration::ZERO, bytes)];
    let name = |s: &str| Name::from_ascii(s).expect("name");
    Some(match case {
        // Our own query reflected back (QR=0), verbatim.
        "echo" => now(query.to_vec()),
        "qr0" => now(edit(&|m| m.metadata.message_type = MessageType::Query)),
        "id" => now(edit(&|m| m.metadata.id = m.metadata.id.wrapping_add(1))),
        "name" => now(edit(&|m| {
            m.queries[0].set_name(name("other.test."));
        })),
        "type" => now(edit(&|m| {
            m.queries[0].set_query_type(RecordType::AAAA);
        })),
        "class" => now(edit(&|m| {
            m.queries[0].set_query_class(DNSClass::CH);
        })),
        "opcode" => now(edit(&|m| m.metadata.op_code = OpCode::Status)),
        "noq" => now(edit(&|m| m.queries.clear())),
        "short" => now(query[..11].to_vec()),
        // The forgery cut inside its answer record: our id, but undecodable.
        "cut" => now(edit(&|_| ())[..30].to_vec()),
        // An echo padded past the 512 bytes the client can take: only its header is read.
        "bigecho" => {
            let mut bytes = query.to_vec();
            bytes.resize(700, 0);
            now(bytes)
        }
        // A perfect forgery, but from another port or address than the upstream's.
        "port" | "addr" => vec![Datagram {
            after: Duration::ZERO,
            source: if case == "port" {
                Source::OtherPort
            } else {
                Source::OtherAddr
            },
            bytes: edit(&|_| ()),
        }],
        _ => return None,
    })
}

const BOGUS_CASES: [&str; 13] = [
    "echo", "qr0", "id", "name", "type", "class", "opcode", "noq", "short", "cut", "bigecho",
    "port", "addr",
];

#[tokio::test]
async fn forward_udp_ignores_every_datagram_but_the_real_reply() {
    let script: Script = Arc::new(|query: &[u8]| {
        let Some(real) = reply_to(query, REAL) else {
            return Vec::new();
        };
        let label = first_label(query);
        if label == "case" {
            // The upstream writes the question in another case: still our reply.
            let mut m = real;
            m.queries[0].set_name(Name::from_ascii("CASE.Test.").expect("name"));
            return vec![Datagram::at(Duration::ZERO, m.to_vec().expect("encode"))];
        }
        let mut plan = bogus(&label, query).unwrap_or_default();
        let after = if plan.is_empty() {
            Duration::ZERO
        } else {
            REAL_AFTER
        };
        plan.push(Datagram::at(after, real.to_vec().expect("encode")));
        plan
    });
    let up = Scripted::start(script).await;
    let s = start(&format!(". {{\n    forward . {}\n}}\n", up.addr)).await;
    let mut tasks = tokio::task::JoinSet::new();
    for case in BOGUS_CASES.iter().chain(&["case"]) {
        let addr = s.addr;
        tasks.spawn(async move {
            let started = Instant::now();
            let r = udp(
                addr,
                &format!("{case}.test."),
                RecordType::A,
                &Opts::default(),
            )
            .await;
            (*case, r, started.elapsed())
        });
    }
    while let Some(done) = tasks.join_next().await {
        let (case, r, took) = done.expect("query task");
        assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{case}");
        assert_eq!(a_records(&r), ["192.0.2.1"], "{case}: only the real reply");
        if case != "case" {
            assert!(
                took >= REAL_AFTER - Duration::from_millis(20),
                "{case}: waited, {took:?}"
            );
        }
    }
    s.shutdown().await;
}

#[tokio::test]
async fn forward_udp_with_only_bogus_replies_is_formerr_or_servfail_and_nothing_is_cached() {
    let healed = Arc::new(AtomicBool::new(false));
    let script: Script = {
        let healed = healed.clone();
        Arc::new(move |query: &[u8]| {
            let Some(real) = reply_to(query, REAL) else {
                return Vec::new();
            };
            let real = vec![Datagram::at(Duration::ZERO, real.to_vec().expect("encode"))];
            if healed.load(Ordering::SeqCst) {
                return real;
            }
            bogus(&first_label(query), query).unwrap_or(real)
        })
    };
    let up = Scripted::start(script).await;
    let s = start(&format!(". {{\n    cache\n    forward . {}\n}}\n", up.addr)).await;
    // CoreDNS answers FORMERR for a reply with our id that does not match (QR=0, another
    // question); we do too, once no real reply came. Noise without our id, or undecodable: as a
    // silent upstream, SERVFAIL.
    let cases = [
        ("echo", ResponseCode::FormErr),
        ("name", ResponseCode::FormErr),
        ("noq", ResponseCode::FormErr),
        ("id", ResponseCode::ServFail),
        ("cut", ResponseCode::ServFail),
    ];
    let mut tasks = tokio::task::JoinSet::new();
    for (case, want) in cases {
        let addr = s.addr;
        tasks.spawn(async move {
            let r = udp(
                addr,
                &format!("{case}.test."),
                RecordType::A,
                &Opts::default(),
            )
            .await;
            (case, want, r)
        });
    }
    while let Some(done) = tasks.join_next().await {
        let (case, want, r) = done.expect("query task");
        assert_eq!(r.metadata.response_code, want, "{case}");
        assert!(r.answers.is_empty(), "{case}: {:?}", r.answers);
    }
    // The upstream answers properly now: nothing of the above was cached.
    healed.store(true, Ordering::SeqCst);
    for case in ["echo", "name"] {
        let r = udp(
            s.addr,
            &format!("{case}.test."),
            RecordType::A,
            &Opts::default(),
        )
        .await;
        assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{case}");
        assert_eq!(a_records(&r), ["192.0.2.1"], "{case}");
    }
    s.shutdown().await;
}

#[tokio::test]
async fn forward_tcp_reply_failing_the_rules_fails_over_at_once() {
    // Over TCP only the upstream can write on the connection: a bad frame means a broken
    // upstream, so the next one is asked without waiting for the timeout.
    let echo: Script = Arc::new(|query: &[u8]| {
        if first_label(query).is_empty() {
            return reply_to(query, REAL)
                .map(|m| vec![Datagram::at(Duration::ZERO, m.to_vec().expect("encode"))])
                .unwrap_or_default();
        }
        vec![Datagram::at(Duration::ZERO, query.to_vec())]
    });
    let bad = Scripted::start(echo).await;
    let good = Upstream::start_tagged(Mode::Normal, 20).await;
    let s = start(&format!(
        ". {{\n    forward . {} {} {{\n        force_tcp\n        policy sequential\n    }}\n}}\n",
        bad.addr, good.addr
    ))
    .await;
    let started = Instant::now();
    let r = udp(s.addr, "external.test.", RecordType::A, &Opts::default()).await;
    assert_eq!(a_records(&r), ["192.0.2.20"]);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(bad.queries() >= 1, "the first upstream was asked");
    s.shutdown().await;
}

/// Every upstream in `mode`: SERVFAIL within the query budget, no crash; then one recovers and
/// answers resume.
async fn every_upstream_failing_then_one_recovering(mode: Mode) {
    let a = Upstream::start_tagged(mode, 10).await;
    let b = Upstream::start_tagged(mode, 20).await;
    let s = forward_to(&[&a, &b], "        health_check 100ms").await;
    let started = Instant::now();
    let r = udp(s.addr, "external.test.", RecordType::A, &Opts::default()).await;
    let took = started.elapsed();
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail, "{mode:?}");
    assert!(
        took < Duration::from_millis(5500),
        "{mode:?}: within the budget, {took:?}"
    );
    b.set_mode(Mode::Normal);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = udp(s.addr, "external.test.", RecordType::A, &Opts::default()).await;
        if a_records(&r) == ["192.0.2.20"] {
            break;
        }
        assert_eq!(r.metadata.response_code, ResponseCode::ServFail, "{mode:?}");
        assert!(Instant::now() < deadline, "{mode:?}: answers never resumed");
    }
    s.shutdown().await;
}

#[tokio::test]
async fn forward_every_upstream_silent_then_one_recovers() {
    every_upstream_failing_then_one_recovering(Mode::Silent).await;
}

#[tokio::test]
async fn forward_every_upstream_garbage_then_one_recovers() {
    every_upstream_failing_then_one_recovering(Mode::Garbage).await;
}

#[tokio::test]
async fn forward_flapping_upstream_never_costs_an_answer() {
    let flappy = Upstream::start_tagged(Mode::Normal, 10).await;
    let good = Upstream::start_tagged(Mode::Normal, 20).await;
    let s = forward_to(
        &[&flappy, &good],
        "        policy sequential\n        health_check 100ms",
    )
    .await;
    let flappy = Arc::new(flappy);
    let flapper = {
        let flappy = flappy.clone();
        tokio::spawn(async move {
            for i in 0..12 {
                let mode = if i % 2 == 0 {
                    Mode::Silent
                } else {
                    Mode::Garbage
                };
                flappy.set_mode(mode);
                tokio::time::sleep(Duration::from_millis(150)).await;
                flappy.set_mode(Mode::Normal);
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        })
    };
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..36 {
        let addr = s.addr;
        tasks.spawn(
            async move { udp(addr, "external.test.", RecordType::A, &Opts::default()).await },
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    while let Some(done) = tasks.join_next().await {
        let r = done.expect("query task");
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        let got = a_records(&r);
        assert!(got == ["192.0.2.10"] || got == ["192.0.2.20"], "{got:?}");
    }
    flapper.await.expect("flapper");
    // Settled: the first upstream answers again.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = udp(s.addr, "external.test.", RecordType::A, &Opts::default()).await;
        if a_records(&r) == ["192.0.2.10"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the flapping upstream never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.shutdown().await;
}
