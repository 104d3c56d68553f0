//! Unit tests of the forward plugin's pure parts; behaviour over sockets is in tests/forward.rs.

use std::net::SocketAddr;

use hickory_proto::op::MessageType;
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record};

use super::*;
use crate::corefile::parse_str_with_env;

fn config(text: &str) -> ForwardConfig {
    let corefile = format!(".:53 {{\n{text}\n}}\n");
    let cf = parse_str_with_env(&corefile, "Corefile", std::path::Path::new("."), &|_| None)
        .expect("Corefile parses");
    parse(
        &mut Dispenser::new(&cf.blocks[0].directives[0]),
        std::path::Path::new("."),
    )
    .expect("forward parses")
}

#[test]
fn except_and_from_decide_which_names_are_forwarded() {
    let f = Forward::new(config(
        "forward example.org 127.0.0.1:1 {\n  except internal.example.org\n}",
    ));
    let lower = |s: &str| LowerName::new(&Name::from_ascii(s).unwrap());
    assert!(f.handles(&lower("example.org.")));
    assert!(f.handles(&lower("WWW.Example.org.")));
    assert!(!f.handles(&lower("internal.example.org.")));
    assert!(!f.handles(&lower("a.internal.example.org.")));
    assert!(!f.handles(&lower("example.com.")));
}

#[test]
fn max_concurrent_admits_up_to_the_limit() {
    let f = Forward::new(config("forward . 127.0.0.1:1 {\n  max_concurrent 2\n}"));
    let a = f.admit();
    let b = f.admit();
    assert!(a.is_some() && b.is_some());
    assert!(f.admit().is_none(), "third is over the limit");
    drop(a);
    assert!(f.admit().is_some(), "a slot freed");
    drop(b);
    let unlimited = Forward::new(config("forward . 127.0.0.1:1"));
    let slots: Vec<_> = (0..100).map(|_| unlimited.admit()).collect();
    assert!(slots.iter().all(Option::is_some));
}

#[test]
fn transport_follows_the_client_unless_forced() {
    let plain = Forward::new(config("forward . 127.0.0.1:1"));
    assert_eq!(plain.proto(Transport::Udp), Proto::Udp);
    assert_eq!(plain.proto(Transport::Tcp), Proto::Tcp);
    let tcp = Forward::new(config(
        "forward . 127.0.0.1:1 {\n  force_tcp\n  prefer_udp\n}",
    ));
    assert_eq!(tcp.proto(Transport::Udp), Proto::Tcp);
    let udp = Forward::new(config("forward . 127.0.0.1:1 {\n  prefer_udp\n}"));
    assert_eq!(udp.proto(Transport::Tcp), Proto::Udp);
}

#[test]
fn upstream_reply_keeps_rcode_flags_and_sections() {
    let name = Name::from_ascii("a.example.").unwrap();
    let rec = |ip: [u8; 4]| Record::from_rdata(name.clone(), 60, RData::A(A(ip.into())));
    let mut msg = Message::new(7, MessageType::Response, OpCode::Query);
    msg.metadata.response_code = ResponseCode::NXDomain;
    msg.metadata.authoritative = true;
    msg.metadata.recursion_available = true;
    msg.metadata.authentic_data = true;
    msg.metadata.truncation = true;
    msg.add_answer(rec([192, 0, 2, 1]));
    msg.add_authority(rec([192, 0, 2, 2]));
    msg.add_additional(rec([192, 0, 2, 3]));
    msg.set_edns(Edns::new());
    let bytes = msg.to_vec().unwrap();
    let answer = into_answer(Message::from_vec(&bytes).unwrap());
    assert_eq!(answer.rcode, ResponseCode::NXDomain);
    assert!(answer.authoritative && answer.recursion_available);
    assert!(answer.authentic_data && answer.truncated);
    assert_eq!(answer.answers, vec![rec([192, 0, 2, 1])]);
    assert_eq!(answer.authorities, vec![rec([192, 0, 2, 2])]);
    assert_eq!(answer.additionals, vec![rec([192, 0, 2, 3])], "no OPT");
}

#[test]
fn rcode_labels_are_coredns_mnemonics() {
    assert_eq!(rcode_name(ResponseCode::NoError), "NOERROR");
    assert_eq!(rcode_name(ResponseCode::ServFail), "SERVFAIL");
    assert_eq!(rcode_name(ResponseCode::NXDomain), "NXDOMAIN");
    assert_eq!(rcode_name(ResponseCode::BADCOOKIE), "BADCOOKIE");
    assert_eq!(rcode_name(<ResponseCode as From<u16>>::from(4000)), "OTHER");
}

#[tokio::test]
async fn udp_exchange_skips_wrong_ids_and_matches_the_question() {
    let server = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = server.local_addr().unwrap();
    let conns = Connections::new(addr, Duration::from_secs(10), 0, 16);
    let question = WireQuery::query(Name::from_ascii("Q.example.").unwrap(), RecordType::A);
    let mut msg = Message::new(0, MessageType::Query, OpCode::Query);
    msg.add_query(question.clone());
    let bytes = msg.to_vec().unwrap();
    let serve = async {
        let mut buf = [0u8; 512];
        let (n, from) = server.recv_from(&mut buf).await.unwrap();
        let req = Message::from_vec(&buf[..n]).unwrap();
        assert_eq!(
            req.metadata.id, 0xbeef,
            "the id given to exchange is on the wire"
        );
        // First a reply with another id (ignored), then the real one.
        let mut wrong = req.clone().into_response();
        wrong.metadata.id = 1;
        server
            .send_to(&wrong.to_vec().unwrap(), from)
            .await
            .unwrap();
        let mut right = req.into_response();
        right.metadata.response_code = ResponseCode::Refused;
        server
            .send_to(&right.to_vec().unwrap(), from)
            .await
            .unwrap();
    };
    let request = Request {
        bytes: &bytes,
        question: &question,
        udp_size: 512,
    };
    let (reply, ()) = tokio::join!(
        conns.exchange(
            &request,
            0xbeef,
            Proto::Udp,
            Duration::from_secs(2),
            Instant::now()
        ),
        serve
    );
    match reply.unwrap() {
        Reply::Message(m) => assert_eq!(m.metadata.response_code, ResponseCode::Refused),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(conns.idle(), (1, 0), "the socket went back to the pool");
}
