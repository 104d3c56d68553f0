//! The server end to end on loopback: routing, rcodes for bad requests, EDNS, malformed input,
//! UDP and TCP, question echo, plugin order, start-up warnings.

mod common;

use std::time::Duration;

use common::{Opts, capture_logs, query_tcp, query_udp, start, tcp_raw, udp_raw};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};

fn srv_port(msg: &Message) -> Option<u16> {
    msg.additionals.iter().find_map(|r| match &r.data {
        RData::SRV(srv) => Some(srv.port),
        _ => None,
    })
}

#[tokio::test]
async fn routing_picks_the_longest_zone() {
    // `.` and `sub.example.org` answer with whoami; `example.org` has only `log`, so its chain
    // runs out of plugins and answers SERVFAIL.
    let s = start(". {\n whoami\n}\nexample.org {\n log\n}\nsub.example.org {\n whoami\n}\n").await;
    let o = Opts::default();
    let r = query_udp(s.addr, "www.example.org.", RecordType::A, &o).await;
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    let r = query_udp(s.addr, "x.sub.example.org.", RecordType::A, &o).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(srv_port(&r).is_some());
    let r = query_udp(s.addr, "example.com.", RecordType::A, &o).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    let r = query_udp(s.addr, "xexample.org.", RecordType::A, &o).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    s.shutdown().await;
}

#[tokio::test]
async fn uncovered_name_is_refused() {
    let s = start("example.org {\n whoami\n}\n").await;
    let r = query_udp(s.addr, "example.com.", RecordType::A, &Opts::default()).await;
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    assert_eq!(r.metadata.id, 0x1234);
    assert_eq!(r.queries.len(), 1);
    assert!(r.answers.is_empty() && r.additionals.is_empty());
    s.shutdown().await;
}

#[tokio::test]
async fn block_without_plugins_is_refused() {
    let s = start("example.org {\n}\n. {\n whoami\n}\n").await;
    let r = query_udp(s.addr, "a.example.org.", RecordType::A, &Opts::default()).await;
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    s.shutdown().await;
}

fn message_with_questions(n: usize) -> Vec<u8> {
    let mut msg = Message::new(0x4321, MessageType::Query, OpCode::Query);
    for i in 0..n {
        msg.add_query(Query::query(
            Name::from_ascii(format!("q{i}.example.org.")).unwrap(),
            RecordType::A,
        ));
    }
    msg.to_vec().unwrap()
}

#[tokio::test]
async fn question_count_other_than_one_is_formerr() {
    let s = start(". {\n whoami\n}\n").await;
    for n in [0, 2] {
        let bytes = message_with_questions(n);
        for reply in [
            udp_raw(s.addr, &bytes, common::TIMEOUT).await,
            tcp_raw(s.addr, &bytes, common::TIMEOUT).await,
        ] {
            let r = Message::from_vec(&reply.expect("a reply")).unwrap();
            assert_eq!(
                r.metadata.response_code,
                ResponseCode::FormErr,
                "qdcount {n}"
            );
            assert_eq!(r.metadata.id, 0x4321);
            assert_eq!(r.metadata.message_type, MessageType::Response);
        }
    }
    s.shutdown().await;
}

#[tokio::test]
async fn opcode_other_than_query_is_notimp() {
    let s = start(". {\n whoami\n}\n").await;
    let o = Opts {
        op_code: OpCode::Status,
        ..Opts::default()
    };
    let r = query_udp(s.addr, "example.org.", RecordType::A, &o).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NotImp);
    assert_eq!(r.metadata.op_code, OpCode::Status);
    s.shutdown().await;
}

#[tokio::test]
async fn chaos_class_is_refused() {
    let s = start(". {\n whoami\n}\n").await;
    let o = Opts {
        class: DNSClass::CH,
        ..Opts::default()
    };
    let r = query_udp(s.addr, "version.bind.", RecordType::TXT, &o).await;
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    s.shutdown().await;
}

#[tokio::test]
async fn edns_version_above_zero_is_badvers_with_opt() {
    let s = start(". {\n whoami\n}\n").await;
    let o = Opts {
        edns: Some(1232),
        edns_version: 1,
        ..Opts::default()
    };
    let r = query_udp(s.addr, "example.org.", RecordType::A, &o).await;
    // BADVERS and BADSIG share the value 16; hickory decodes it as BADSIG.
    assert_eq!(u16::from(r.metadata.response_code), 16);
    let edns = r.edns.expect("OPT in a BADVERS reply");
    assert_eq!(edns.version(), 0);
    s.shutdown().await;
}

#[tokio::test]
async fn edns_is_mirrored() {
    let s = start(". {\n whoami\n}\n").await;
    let cases = [
        (Some(1232), true, Some(1232)),
        (Some(4096), false, Some(4096)),
        (Some(8192), false, Some(8192)),
        (Some(100), false, Some(512)),
        (None, false, None),
    ];
    for (size, dnssec_ok, want) in cases {
        let o = Opts {
            edns: size,
            dnssec_ok,
            ..Opts::default()
        };
        let r = query_udp(s.addr, "example.org.", RecordType::A, &o).await;
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert_eq!(r.edns.as_ref().map(|e| e.max_payload()), want, "{size:?}");
        if let Some(e) = &r.edns {
            assert_eq!(e.flags().dnssec_ok, dnssec_ok);
            assert_eq!(e.version(), 0);
        }
    }
    s.shutdown().await;
}

#[tokio::test]
async fn malformed_packets_never_crash_the_server() {
    let s = start(". {\n whoami\n}\n").await;
    let good = common::build("example.org.", RecordType::A, &Opts::default());
    // Header says one question, the name stops half way.
    let mut truncated_question = good.clone();
    truncated_question.truncate(good.len() - 6);
    let garbage: Vec<u8> = (0..200u32)
        .map(|i| (i.wrapping_mul(197) ^ 0x5a) as u8)
        .collect();
    let mut pointer_loop = good[..12].to_vec();
    pointer_loop.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
    let bad: [&[u8]; 6] = [
        &[],
        &[0x12, 0x34, 0x01],
        &truncated_question,
        &garbage,
        &pointer_loop,
        &[0xff; 12],
    ];
    for bytes in bad {
        // A reply (FORMERR) or none at all are both fine; the server must stay up.
        if let Some(reply) = udp_raw(s.addr, bytes, Duration::from_millis(300)).await
            && let Ok(m) = Message::from_vec(&reply)
        {
            assert_ne!(m.metadata.response_code, ResponseCode::NoError, "{bytes:?}");
        }
        let _ = tcp_raw(s.addr, bytes, Duration::from_millis(300)).await;
    }
    let r = query_udp(s.addr, "example.org.", RecordType::A, &Opts::default()).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    let r = query_tcp(s.addr, "example.org.", RecordType::A, &Opts::default()).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    s.shutdown().await;
}

#[tokio::test]
async fn truncated_question_gets_formerr_with_same_id() {
    let s = start(". {\n whoami\n}\n").await;
    let good = common::build("example.org.", RecordType::A, &Opts::default());
    let bytes = &good[..good.len() - 6];
    let reply = udp_raw(s.addr, bytes, common::TIMEOUT)
        .await
        .expect("a reply");
    let m = Message::from_vec(&reply).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    assert_eq!(m.metadata.id, 0x1234);
    s.shutdown().await;
}

#[tokio::test]
async fn udp_and_tcp_both_answer() {
    let s = start(". {\n whoami\n}\n").await;
    let o = Opts::default();
    let u = query_udp(s.addr, "example.org.", RecordType::A, &o).await;
    let t = query_tcp(s.addr, "example.org.", RecordType::A, &o).await;
    let name = |m: &Message| {
        m.additionals
            .iter()
            .find(|r| r.record_type() == RecordType::SRV)
            .map(|r| r.name.to_ascii())
    };
    assert_eq!(name(&u).as_deref(), Some("_udp.example.org."));
    assert_eq!(name(&t).as_deref(), Some("_tcp.example.org."));
    assert!(u.metadata.authoritative && t.metadata.authoritative);
    assert!(u.metadata.recursion_desired, "RD copied");
    s.shutdown().await;
}

#[tokio::test]
async fn question_case_is_preserved() {
    let s = start("example.org {\n whoami\n}\n").await;
    let r = query_udp(s.addr, "WwW.ExAmPlE.oRg.", RecordType::A, &Opts::default()).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(r.queries[0].name().to_ascii(), "WwW.ExAmPlE.oRg.");
    assert_eq!(r.additionals[0].name.to_ascii(), "WwW.ExAmPlE.oRg.");
    s.shutdown().await;
}

#[tokio::test]
async fn id_and_cd_are_copied() {
    let s = start(". {\n whoami\n}\n").await;
    let o = Opts {
        id: 0xbeef,
        rd: false,
        cd: true,
        ..Opts::default()
    };
    let r = query_tcp(s.addr, "example.org.", RecordType::A, &o).await;
    assert_eq!(r.metadata.id, 0xbeef);
    assert!(r.metadata.checking_disabled);
    assert!(!r.metadata.recursion_desired);
    s.shutdown().await;
}

#[tokio::test]
async fn plugin_order_does_not_follow_corefile_order() {
    let (_guard, logs) = capture_logs();
    // whoami is written first but log still runs before it (CoreDNS's fixed order).
    let s = start(". {\n whoami\n log\n}\n").await;
    let r = query_udp(s.addr, "Order.Example.", RecordType::AAAA, &Opts::default()).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    s.shutdown().await;
    let text = logs.text();
    assert!(
        text.contains("\"AAAA IN order.example. udp ") && text.contains("NOERROR qr,aa,rd "),
        "{text}"
    );
}

#[tokio::test]
async fn log_class_filter() {
    let (_guard, logs) = capture_logs();
    let s = start(
        "example.org {\n whoami\n}\nexample.net {\n log {\n  class denial\n }\n}\n. {\n log . \"{name} {rcode}\" {\n  class error\n }\n}\n",
    )
    .await;
    let o = Opts::default();
    // SERVFAIL (chain runs out) in the root block: logged as an error.
    query_udp(s.addr, "x.example.com.", RecordType::A, &o).await;
    // SERVFAIL in example.net: class denial only, not logged.
    query_udp(s.addr, "y.example.net.", RecordType::A, &o).await;
    s.shutdown().await;
    let text = logs.text();
    assert!(text.contains("x.example.com. SERVFAIL"), "{text}");
    assert!(!text.contains("y.example.net."), "{text}");
}

#[tokio::test]
async fn errors_plugin_logs_chain_errors() {
    let (_guard, logs) = capture_logs();
    let s = start(". {\n errors\n}\n").await;
    let r = query_udp(s.addr, "Fail.Example.", RecordType::MX, &Opts::default()).await;
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    s.shutdown().await;
    let text = logs.text();
    assert!(
        text.contains("ERROR")
            && text.contains("plugin/errors: 2 fail.example. MX: no next plugin found"),
        "{text}"
    );
}

#[tokio::test]
async fn inactive_options_are_logged_at_start_up() {
    let (_guard, logs) = capture_logs();
    let s = start(". {\n whoami\n errors {\n  stacktrace\n }\n}\n").await;
    s.shutdown().await;
    let text = logs.text();
    let line = text
        .lines()
        .find(|l| l.contains("WARN"))
        .unwrap_or_else(|| panic!("no warning in {text}"));
    assert!(line.contains("plugin/errors"), "{line}");
    assert!(line.contains("stacktrace"), "{line}");
    assert!(line.contains("Corefile:4:3"), "{line}");
}

#[tokio::test]
async fn several_ports_and_blocks() {
    let s = start("example.org:0 {\n whoami\n}\n").await;
    let addrs = s.all_addrs();
    assert_eq!(addrs.len(), 1);
    let r = query_udp(addrs[0], "example.org.", RecordType::A, &Opts::default()).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    s.shutdown().await;
}

#[tokio::test]
async fn shutdown_stops_answering() {
    let s = start(". {\n whoami\n}\n").await;
    let addr = s.addr;
    let r = query_udp(addr, "example.org.", RecordType::A, &Opts::default()).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    s.shutdown().await;
    let bytes = common::build("example.org.", RecordType::A, &Opts::default());
    assert!(
        udp_raw(addr, &bytes, Duration::from_millis(300))
            .await
            .is_none()
    );
    assert!(
        tcp_raw(addr, &bytes, Duration::from_millis(300))
            .await
            .is_none()
    );
}
