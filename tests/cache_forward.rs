//! `cache` in front of `forward`, end to end on loopback: the test upstream
//! (tests/common/upstream.rs) counts the queries it receives, so these tests show what the cache
//! saves the upstream, and that cached replies keep the upstream's sections with ageing TTLs.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::upstream::{Mode, Upstream};
use common::{Opts, TestServer, build, start, udp_raw};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

const WAIT: Duration = Duration::from_secs(5);

async fn udp(addr: SocketAddr, name: &str, qtype: RecordType) -> Message {
    let opts = Opts {
        edns: Some(1232),
        ..Opts::default()
    };
    let bytes = udp_raw(addr, &build(name, qtype, &opts), WAIT)
        .await
        .unwrap_or_else(|| panic!("no UDP reply for {name} {qtype}"));
    Message::from_vec(&bytes).expect("decodable reply")
}

async fn cached_forward(up: &Upstream, cache: &str) -> TestServer {
    start(&format!(
        ". {{\n    {cache}\n    forward . {}\n}}\n",
        up.addr
    ))
    .await
}

#[tokio::test]
async fn a_positive_answer_is_fetched_once_and_served_from_cache_with_ageing_ttls() {
    let up = Upstream::start(Mode::Normal).await;
    let s = cached_forward(&up, "cache 30").await;

    let first = udp(s.addr, "external.test.", RecordType::A).await;
    assert_eq!(first.metadata.response_code, ResponseCode::NoError);
    assert_eq!(first.answers.len(), 1, "{first:?}");
    // The upstream's TTL (300) is capped at the cache's maximum (30), in every section.
    for r in first.answers.iter().chain(&first.authorities) {
        assert_eq!(r.ttl, 30, "{r:?}");
    }
    assert_eq!(first.authorities.len(), 1, "NS kept: {first:?}");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = udp(s.addr, "external.test.", RecordType::A).await;
    assert_eq!(second.answers, {
        let mut aged = first.answers.clone();
        for r in &mut aged {
            r.ttl = second.answers[0].ttl;
        }
        aged
    });
    assert!(second.answers[0].ttl < 30, "TTL ages: {second:?}");
    assert!(second.metadata.authoritative, "cached replies are AA");
    assert_eq!(
        up.count("external.test.", RecordType::A),
        1,
        "the second query was a hit: {:?}",
        up.seen()
    );
    s.shutdown().await;
}

#[tokio::test]
async fn nxdomain_is_cached_with_its_soa() {
    let up = Upstream::start(Mode::Normal).await;
    let s = cached_forward(&up, "cache 30").await;
    for _ in 0..3 {
        let m = udp(s.addr, "missing.test.", RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert!(
            m.authorities
                .iter()
                .any(|r| matches!(r.data, RData::SOA(_)) && r.ttl <= 30),
            "SOA kept with a capped TTL: {m:?}"
        );
    }
    assert_eq!(
        up.count("missing.test.", RecordType::A),
        1,
        "{:?}",
        up.seen()
    );
    s.shutdown().await;
}

#[tokio::test]
async fn concurrent_misses_send_one_upstream_query() {
    let up = Upstream::start(Mode::Normal).await;
    let s = cached_forward(&up, "cache 30").await;
    let addr = s.addr;
    let tasks: Vec<_> = (0..32)
        .map(|_| tokio::spawn(async move { udp(addr, "only10.test.", RecordType::A).await }))
        .collect();
    for task in tasks {
        let m = task.await.expect("query task");
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(m.answers.len(), 1, "{m:?}");
    }
    assert_eq!(
        up.count("only10.test.", RecordType::A),
        1,
        "{:?}",
        up.seen()
    );
    s.shutdown().await;
}

#[tokio::test]
async fn a_failing_upstream_is_not_cached_beyond_the_servfail_duration() {
    let up = Upstream::start(Mode::ServFail).await;
    let s = cached_forward(&up, "cache 30 {\n        servfail 0\n    }").await;
    for _ in 0..2 {
        let m = udp(s.addr, "external.test.", RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    }
    // `servfail 0`: SERVFAIL is never cached, so each query reached the upstream.
    assert_eq!(
        up.count("external.test.", RecordType::A),
        2,
        "{:?}",
        up.seen()
    );
    // Once the upstream recovers, the next query gets the real answer.
    up.set_mode(Mode::Normal);
    let m = udp(s.addr, "external.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    s.shutdown().await;
}
