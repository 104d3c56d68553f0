//! The packer against hand-computed sizes (miekg/dns's arithmetic) and hickory's strict decoder.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use hickory_proto::op::{Edns, Message as Decoded, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, SRV};
use hickory_proto::rr::{DNSClass, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::*;

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn question(s: &str, qtype: RecordType) -> Vec<LowerQuery> {
    vec![LowerQuery::from(Query::query(name(s), qtype))]
}

fn metadata() -> Metadata {
    let mut m = Metadata::new(0x1234, MessageType::Response, OpCode::Query);
    m.authoritative = true;
    m.recursion_desired = true;
    m
}

fn a(owner: &str, i: u32) -> Record {
    Record::from_rdata(
        name(owner),
        30,
        RData::A(A(Ipv4Addr::from(0x0a00_0000 + i))),
    )
}

fn srv(owner: &str, target: &str) -> Record {
    Record::from_rdata(
        name(owner),
        30,
        RData::SRV(SRV::new(0, 100, 80, name(target))),
    )
}

struct Case<'a> {
    q: Vec<LowerQuery>,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    additionals: Vec<Record>,
    opt: Option<ReplyOpt<'a>>,
}

impl<'a> Case<'a> {
    fn new(q: &str, qtype: RecordType) -> Self {
        Case {
            q: question(q, qtype),
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
            opt: None,
        }
    }

    fn pack(&self, limit: usize) -> (Packed, Vec<u8>, Decoded) {
        let message = Message {
            metadata: metadata(),
            questions: &self.q,
            answers: &self.answers,
            authorities: &self.authorities,
            additionals: &self.additionals,
            opt: self.opt,
        };
        let mut out = Vec::new();
        let packed = pack(&message, limit, &mut out).unwrap();
        assert!(
            out.len() <= limit,
            "{} bytes over the limit {limit}",
            out.len()
        );
        // Strict decode: the header counts must match what the packet holds.
        let decoded = Decoded::read(&mut BinDecoder::new(&out)).unwrap();
        (packed, out, decoded)
    }
}

/// Uncompressed wire length of a name.
fn wire_len(s: &str) -> usize {
    name(s).len() + 1
}

#[test]
fn a_small_reply_round_trips_with_everything_in_place() {
    let q = "api.demo.svc.cluster.local.";
    let mut case = Case::new(q, RecordType::A);
    case.answers.push(a(q, 1));
    let (packed, out, msg) = case.pack(512);
    assert_eq!(
        packed,
        Packed {
            answers: 1,
            authorities: 0,
            additionals: 0,
            truncated: false
        }
    );
    // header + question + (pointer to the question name + type/class/ttl/len + 4).
    assert_eq!(out.len(), 12 + wire_len(q) + 4 + 2 + 10 + 4);
    assert_eq!(msg.metadata.id, 0x1234);
    assert!(msg.metadata.authoritative && !msg.metadata.truncation);
    assert_eq!(msg.answers, case.answers);
    assert_eq!(msg.queries[0].name().to_string(), q);
}

#[test]
fn three_thousand_a_records_fit_one_tcp_reply_compressed() {
    let q = "big.demo.svc.cluster.local.";
    let mut case = Case::new(q, RecordType::A);
    case.answers = (0..3000).map(|i| a(q, i)).collect();
    let (packed, out, msg) = case.pack(usize::from(u16::MAX));
    assert_eq!(packed.answers, 3000);
    assert!(!packed.truncated && !msg.metadata.truncation);
    // Every owner name is a 2-byte pointer: 16 bytes a record.
    assert_eq!(out.len(), 12 + wire_len(q) + 4 + 3000 * 16);
    assert_eq!(msg.answers.len(), 3000);
    assert_eq!(addresses(&msg.answers), addresses(&case.answers));
}

#[test]
fn udp_without_edns_keeps_the_longest_prefix_that_fits_512_and_sets_tc() {
    let q = "big.demo.svc.cluster.local.";
    let mut case = Case::new(q, RecordType::A);
    case.answers = (0..100).map(|i| a(q, i)).collect();
    let (packed, out, msg) = case.pack(512);
    let room = 512 - (12 + wire_len(q) + 4);
    assert_eq!(packed.answers, room / 16);
    assert!(packed.truncated && msg.metadata.truncation);
    assert_eq!(out.len(), 12 + wire_len(q) + 4 + room / 16 * 16);
    assert_eq!(
        addresses(&msg.answers),
        addresses(&case.answers[..room / 16])
    );
}

#[test]
fn the_opt_record_is_reserved_and_written_last() {
    let q = "big.demo.svc.cluster.local.";
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    edns.set_dnssec_ok(true);
    let mut case = Case::new(q, RecordType::A);
    case.answers = (0..200).map(|i| a(q, i)).collect();
    case.opt = Some(ReplyOpt {
        udp_size: 1232,
        dnssec_ok: true,
        echo: Some(edns.options()),
    });
    let (packed, out, msg) = case.pack(1232);
    let room = 1232 - 11 - (12 + wire_len(q) + 4);
    assert_eq!(packed.answers, room / 16);
    assert!(packed.truncated);
    assert_eq!(out.len(), 12 + wire_len(q) + 4 + room / 16 * 16 + 11);
    let opt = msg.edns.as_ref().expect("OPT record");
    assert_eq!(opt.max_payload(), 1232);
    assert!(opt.flags().dnssec_ok);
}

#[test]
fn a_reply_filling_the_limit_exactly_is_not_truncated() {
    let q = "big.demo.svc.cluster.local.";
    let base = 12 + wire_len(q) + 4;
    let mut case = Case::new(q, RecordType::A);
    case.answers = (0..10).map(|i| a(q, i)).collect();
    let exact = base + 10 * 16;
    let (packed, out, _) = case.pack(exact);
    assert_eq!(
        (packed.answers, packed.truncated, out.len()),
        (10, false, exact)
    );
    let (packed, _, _) = case.pack(exact - 1);
    assert_eq!((packed.answers, packed.truncated), (9, true));
}

#[test]
fn answers_are_kept_before_additionals_and_any_drop_sets_tc() {
    // A headless SRV reply: targets in the answer, their addresses in the additional section.
    let q = "_http._tcp.db.demo.svc.cluster.local.";
    let mut case = Case::new(q, RecordType::SRV);
    for i in 0..8 {
        let target = format!("db-{i}.db.demo.svc.cluster.local.");
        case.answers.push(srv(q, &target));
        case.additionals.push(a(&target, i));
    }
    let (all, full, msg) = case.pack(usize::from(u16::MAX));
    assert_eq!((all.answers, all.additionals, all.truncated), (8, 8, false));
    assert_eq!(msg.additionals.len(), 8);
    // SRV targets are written whole (RFC 2782); each additional owner name points into its
    // target: 16 bytes a record.
    let srv_len = |i: usize| 2 + 10 + 6 + wire_len(&format!("db-{i}.db.demo.svc.cluster.local."));
    let expected = 12 + wire_len(q) + 4 + (0..8).map(srv_len).sum::<usize>() + 8 * 16;
    assert_eq!(full.len(), expected);
    // One byte short: the last additional goes, TC is set although every answer is there.
    let (cut, _, msg) = case.pack(expected - 1);
    assert_eq!((cut.answers, cut.additionals, cut.truncated), (8, 7, true));
    assert!(msg.metadata.truncation);
}

#[test]
fn once_a_record_is_dropped_nothing_after_it_is_written() {
    let q = "x.demo.svc.cluster.local.";
    let mut case = Case::new(q, RecordType::CNAME);
    // A long CNAME that does not fit, then a short record that would.
    let long = format!(
        "{}.{}.{}.example.",
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63)
    );
    case.answers.push(Record::from_rdata(
        name(q),
        30,
        RData::CNAME(CNAME(name(&long))),
    ));
    case.additionals.push(a(q, 1));
    let limit = 12 + wire_len(q) + 4 + 12 + 100;
    let (packed, _, msg) = case.pack(limit);
    assert_eq!((packed.answers, packed.additionals), (0, 0));
    assert!(msg.metadata.truncation);
}

#[test]
fn names_are_compressed_only_against_the_same_letter_case() {
    let q = "Api.Demo.svc.cluster.local.";
    let mut case = Case::new(q, RecordType::A);
    case.answers.push(a("api.demo.svc.cluster.local.", 1));
    let (_, out, msg) = case.pack(512);
    // "svc.cluster.local." is shared; "api.demo" is written again in its own case.
    assert_eq!(out.len(), 12 + wire_len(q) + 4 + (4 + 5 + 2) + 10 + 4);
    assert_eq!(
        msg.answers[0].name.to_string(),
        "api.demo.svc.cluster.local."
    );
    assert_eq!(msg.queries[0].name().to_string(), q);
}

#[test]
fn request_cookie_and_nsid_are_echoed_and_counted_in_the_budget() {
    let q = "big.demo.svc.cluster.local.";
    let mut edns = Edns::new();
    edns.set_max_payload(512);
    let cookie = vec![1, 2, 3, 4, 5, 6, 7, 8];
    edns.options_mut().insert(EdnsOption::Unknown(
        u16::from(EdnsCode::Cookie),
        cookie.clone(),
    ));
    edns.options_mut().insert(EdnsOption::Unknown(
        u16::from(EdnsCode::Subnet),
        vec![0, 1, 24, 0, 10, 0, 0],
    ));
    let mut case = Case::new(q, RecordType::A);
    case.answers = (0..100).map(|i| a(q, i)).collect();
    case.opt = Some(ReplyOpt {
        udp_size: 512,
        dnssec_ok: false,
        echo: Some(edns.options()),
    });
    let (packed, out, msg) = case.pack(512);
    // OPT: 11 bytes + the cookie option (4 + 8); the subnet option is not echoed.
    let room = 512 - (11 + 12) - (12 + wire_len(q) + 4);
    assert_eq!(packed.answers, room / 16);
    assert_eq!(out.len(), 12 + wire_len(q) + 4 + room / 16 * 16 + 23);
    let opt = msg.edns.as_ref().unwrap();
    assert_eq!(
        opt.option(EdnsCode::Cookie),
        Some(&EdnsOption::Unknown(10, cookie))
    );
    assert!(opt.option(EdnsCode::Subnet).is_none());
}

#[test]
fn extended_rcode_goes_into_the_opt_record() {
    let mut case = Case::new("x.cluster.local.", RecordType::A);
    let edns = Edns::new();
    case.opt = Some(ReplyOpt {
        udp_size: 1232,
        dnssec_ok: false,
        echo: Some(edns.options()),
    });
    let mut metadata = metadata();
    metadata.response_code = ResponseCode::BADVERS;
    let message = Message {
        metadata,
        questions: &case.q,
        answers: &[],
        authorities: &[],
        additionals: &[],
        opt: case.opt,
    };
    let mut out = Vec::new();
    pack(&message, 512, &mut out).unwrap();
    let msg = Decoded::read(&mut BinDecoder::new(&out)).unwrap();
    assert_eq!(u16::from(msg.metadata.response_code), 16);
}

#[test]
fn other_types_are_written_whole_and_decode_back() {
    let q = "v6.demo.svc.cluster.local.";
    let mut case = Case::new(q, RecordType::AAAA);
    case.answers.push(Record::from_rdata(
        name(q),
        30,
        RData::AAAA(AAAA(Ipv6Addr::from_str("fd00::1").unwrap())),
    ));
    case.answers.push(Record::from_rdata(
        name(q),
        30,
        RData::TXT(hickory_proto::rr::rdata::TXT::new(vec!["hello".into()])),
    ));
    let mut unknown = Record::from_rdata(
        name(q),
        30,
        RData::Unknown {
            code: RecordType::Unknown(65_000),
            rdata: hickory_proto::rr::rdata::NULL::with(vec![9, 9, 9]),
        },
    );
    unknown.dns_class = DNSClass::IN;
    case.answers.push(unknown);
    let (packed, _, msg) = case.pack(512);
    assert_eq!(packed.answers, 3);
    assert_eq!(msg.answers, case.answers);
}
