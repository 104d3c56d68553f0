//! Body of the `forward_reply` fuzz target, shared with `tests/fuzz_regressions.rs`: fuzzed bytes
//! are what an upstream resolver sends back to `forward`, through the whole request path
//! (`cache` in front of `forward`, as in the kubeadm Corefile).
//!
//! One process-wide fake upstream on 127.0.0.1 (UDP and TCP on one port) and one tokio runtime
//! serve every execution; each execution builds a fresh server (fresh cache, fresh upstream
//! sockets) so executions do not see each other's state. The input is
//!
//! ```text
//! [flags][question][split][reply bytes ...]
//! ```
//!
//! * `flags`: [`PATCH_ID`] writes the id of the query received over the reply's first two bytes
//!   (so the reply passes the id check and reaches the deeper rules), [`OTHER_ID`] another id,
//!   [`CLIENT_TCP`] asks over TCP (forward then asks the upstream over TCP), [`SPLIT`] sends the
//!   reply as two datagrams/frames cut at `split`, [`RAW_TCP`] writes the bytes on the TCP
//!   connection unframed (the id patched after the first length) and closes it; bits 4-5 pick
//!   the client's EDNS size (none, 512, 1232, 4096) and [`DNSSEC_OK`] sets DO.
//! * `question`: one of [`NAMES`] x [`TYPES`] (the question forward relays, name case kept).
//!
//! After the fuzzed bytes (unless `RAW_TCP`) the upstream sends a well-formed "marker" reply
//! to the question, so forward never waits for a timeout: it must serve the first message that
//! passes its rules. A model of those rules (`clusterdns::forward_reply_fuzz::believed` on each
//! message as forward reads it) says which one that is; when no fuzzed message passes, the
//! client must get the marker (or, when the exchange itself failed, SERVFAIL/FORMERR). Then the
//! upstream answers only markers and the question is asked again over the other transport: unless
//! a fuzzed reply was believed, the answer must be the marker, so a reply that failed the rules
//! can never have been cached.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// Flag: the reply carries the id of the query the upstream received.
pub const PATCH_ID: u8 = 0x01;
/// Flag: the client asks over TCP.
pub const CLIENT_TCP: u8 = 0x02;
/// Flag: the reply goes out as two messages, cut at the `split` byte.
pub const SPLIT: u8 = 0x04;
/// Flag: over TCP, the bytes are written unframed and the connection is closed.
pub const RAW_TCP: u8 = 0x08;
/// Flag: the client sets the DO bit (with EDNS).
pub const DNSSEC_OK: u8 = 0x40;
/// Flag: the reply carries an id other than the query's (its bits flipped; wins over
/// [`PATCH_ID`]): a late or forged reply.
pub const OTHER_ID: u8 = 0x80;
/// The client's EDNS payload size, by bits 4-5 of the flags.
const EDNS_SIZES: [Option<u16>; 4] = [None, Some(512), Some(1232), Some(4096)];

/// Question names (case kept on the way upstream).
pub const NAMES: [&str; 3] = [
    "www.example.org.",
    "Mixed.Example.ORG.",
    "a.deep.chain.example.org.",
];
/// Question types.
pub const TYPES: [RecordType; 4] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::MX,
    RecordType::TXT,
];

const CLIENT_ID: u16 = 0xbeef;
/// Larger than any datagram or frame the upstream can send.
const MAX_MESSAGE: usize = 65_000;

/// The question of selector byte `q`.
pub fn question(q: u8) -> (Name, RecordType) {
    let i = usize::from(q);
    let name = Name::from_ascii(NAMES[(i / TYPES.len()) % NAMES.len()]).expect("fixed name");
    (name, TYPES[i % TYPES.len()])
}

/// What the fake upstream does with the next queries.
#[derive(Default)]
struct Script {
    /// Answer markers only (the second query of an execution).
    marker_only: bool,
    flags: u8,
    split: usize,
    reply: Vec<u8>,
    /// Every query received and what was sent back, in order.
    log: Vec<Exchange>,
}

/// One query received by the fake upstream and its answer.
#[derive(Clone, Debug)]
struct Exchange {
    query: Vec<u8>,
    tcp: bool,
    sent: Sent,
}

#[derive(Clone, Debug)]
enum Sent {
    /// Datagrams or frames in order; the first `fuzzed` come from the input, the rest are the
    /// marker.
    Messages {
        messages: Vec<Vec<u8>>,
        fuzzed: usize,
    },
    /// Unframed bytes on a TCP connection, then close.
    Raw(Vec<u8>),
}

struct World {
    /// Held for a whole execution: the fake upstream serves one at a time (the regression tests
    /// run on several threads).
    one: Mutex<()>,
    rt: tokio::runtime::Runtime,
    upstream: SocketAddr,
    script: Arc<Mutex<Script>>,
}

fn lock(script: &Mutex<Script>) -> MutexGuard<'_, Script> {
    script.lock().unwrap_or_else(PoisonError::into_inner)
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let script = Arc::new(Mutex::new(Script::default()));
        let upstream = rt.block_on(start_upstream(Arc::clone(&script)));
        World {
            one: Mutex::new(()),
            rt,
            upstream,
            script,
        }
    })
}

/// Binds UDP and TCP on one loopback port and serves both on the runtime.
async fn start_upstream(script: Arc<Mutex<Script>>) -> SocketAddr {
    for _ in 0..100 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind the fake upstream's UDP socket");
        let addr = udp.local_addr().expect("local address");
        let Ok(tcp) = TcpListener::bind(addr).await else {
            continue;
        };
        tokio::spawn(serve_udp(udp, Arc::clone(&script)));
        tokio::spawn(serve_tcp(tcp, script));
        return addr;
    }
    panic!("no loopback port free for UDP and TCP at once");
}

async fn serve_udp(sock: UdpSocket, script: Arc<Mutex<Script>>) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        let Some(query) = buf.get(..n) else { continue };
        if let Sent::Messages { messages, .. } = respond(&script, query, false) {
            for m in messages {
                let _ = sock.send_to(&m, peer).await;
            }
        }
    }
}

async fn serve_tcp(listener: TcpListener, script: Arc<Mutex<Script>>) {
    loop {
        if let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_connection(stream, Arc::clone(&script)));
        }
    }
}

async fn serve_connection(mut stream: TcpStream, script: Arc<Mutex<Script>>) {
    loop {
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).await.is_err() {
            return;
        }
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if stream.read_exact(&mut query).await.is_err() {
            return;
        }
        match respond(&script, &query, true) {
            Sent::Messages { messages, .. } => {
                let mut out = Vec::new();
                for m in messages {
                    let len = u16::try_from(m.len()).unwrap_or(u16::MAX);
                    out.extend_from_slice(&len.to_be_bytes());
                    out.extend_from_slice(&m);
                }
                if stream.write_all(&out).await.is_err() {
                    return;
                }
            }
            Sent::Raw(bytes) => {
                let _ = stream.write_all(&bytes).await;
                let _ = stream.shutdown().await;
                return;
            }
        }
    }
}

/// The fake upstream's answer to `query`, logged.
fn respond(script: &Mutex<Script>, query: &[u8], tcp: bool) -> Sent {
    let mut s = lock(script);
    let marker = marker(query);
    let sent = if s.marker_only {
        Sent::Messages {
            messages: marker.into_iter().collect(),
            fuzzed: 0,
        }
    } else {
        let reply = &s.reply[..s.reply.len().min(MAX_MESSAGE)];
        let id = match query.get(..2) {
            Some(&[a, b]) if s.flags & OTHER_ID != 0 => Some([!a, !b]),
            Some(&[a, b]) if s.flags & PATCH_ID != 0 => Some([a, b]),
            _ => None,
        };
        // Writes the id at `at` (the message's first two bytes; after the length when raw).
        let patch = |mut m: Vec<u8>, at: usize| {
            if let (Some(id), Some(head)) = (id, m.get_mut(at..at + 2)) {
                head.copy_from_slice(&id);
            }
            m
        };
        if tcp && s.flags & RAW_TCP != 0 {
            Sent::Raw(patch(reply.to_vec(), 2))
        } else {
            let mut messages = if s.flags & SPLIT != 0 {
                let (a, b) = reply.split_at(s.split.min(reply.len()));
                vec![patch(a.to_vec(), 0), patch(b.to_vec(), 0)]
            } else {
                vec![patch(reply.to_vec(), 0)]
            };
            let fuzzed = messages.len();
            messages.extend(marker);
            Sent::Messages { messages, fuzzed }
        }
    };
    s.log.push(Exchange {
        query: query.to_vec(),
        tcp,
        sent: sent.clone(),
    });
    sent
}

/// The record a marker reply answers with.
fn marker_record(name: &Name, qtype: RecordType) -> Option<Record> {
    let data = match qtype {
        RecordType::A => RData::A(A(Ipv4Addr::new(192, 0, 2, 53))),
        RecordType::AAAA => RData::AAAA(AAAA(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x53))),
        RecordType::MX => RData::MX(MX::new(10, Name::from_ascii("marker.invalid.").ok()?)),
        RecordType::TXT => RData::TXT(TXT::new(vec!["clusterdns-fuzz-marker".to_owned()])),
        _ => return None,
    };
    Some(Record::from_rdata(name.clone(), 300, data))
}

/// A well-formed reply to `query` (its id and question), answering with the marker record.
fn marker(query: &[u8]) -> Option<Vec<u8>> {
    let query = Message::from_vec(query).ok()?;
    let q = query.queries.first()?;
    let mut reply = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.add_query(q.clone());
    if let Some(record) = marker_record(q.name(), q.query_type()) {
        reply.add_answer(record);
    }
    if query.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        reply.set_edns(edns);
    }
    reply.to_vec().ok()
}

/// What forward served for one exchange, by the model of its rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A message from the input passed the rules.
    Fuzzed,
    /// Every message from the input was dropped; the marker passed.
    Marker,
    /// The exchange failed (a TCP reply broke the connection's rules, or it closed).
    Failed,
}

/// Whether forward believes `reply` to `query` (its own rules, `judge`), checked against the
/// rules as written here from RFC 1035 §7.3 and RFC 5452 §9.1.
fn believed(query: &[u8], reply: &[u8], oversized: bool) -> bool {
    let judged = clusterdns::forward_reply_fuzz::believed(query, reply, oversized) == Some(true);
    let written = rules_hold(query, reply, oversized);
    assert_eq!(
        judged, written,
        "forward's verdict on a reply (oversized: {oversized}) differs from the rules: {reply:02x?}"
    );
    judged
}

/// A reply is the answer to `query` when it has its id, QR=1, opcode QUERY and exactly its
/// question (name in any case, type, class); when `oversized` only the header and question
/// need to decode, else the whole message.
fn rules_hold(query: &[u8], reply: &[u8], oversized: bool) -> bool {
    let Ok(asked) = Message::from_vec(query) else {
        return false;
    };
    let [want] = asked.queries.as_slice() else {
        return false;
    };
    let Some(&[id0, id1, flags, _, qd0, qd1]) = reply.get(..6) else {
        return false;
    };
    if reply.len() < 12 || [id0, id1] != asked.metadata.id.to_be_bytes() {
        return false;
    }
    let response = flags & 0x80 != 0;
    let opcode = (flags >> 3) & 0x0f;
    if !response || opcode != 0 || u16::from_be_bytes([qd0, qd1]) != 1 {
        return false;
    }
    let question = if oversized {
        let mut decoder = BinDecoder::new(&reply[12..]);
        match Query::read(&mut decoder) {
            Ok(q) => q,
            Err(_) => return false,
        }
    } else {
        match Message::from_vec(reply) {
            Ok(m) => match m.queries.into_iter().next() {
                Some(q) => q,
                None => return false,
            },
            Err(_) => return false,
        }
    };
    question.query_type() == want.query_type()
        && question.query_class() == want.query_class()
        && question
            .name()
            .to_ascii()
            .eq_ignore_ascii_case(&want.name().to_ascii())
}

/// The verdict on one TCP frame: served, skipped (another id: a stale frame), or the end of the
/// exchange.
fn tcp_frame(query: &[u8], frame: &[u8]) -> Option<bool> {
    if believed(query, frame, false) {
        Some(true)
    } else if frame.len() >= 12 && frame.get(..2) != query.get(..2) {
        None
    } else {
        Some(false)
    }
}

fn outcome(ex: &Exchange) -> Outcome {
    match &ex.sent {
        Sent::Messages { messages, fuzzed } if !ex.tcp => {
            // The UDP receive buffer holds the advertised size (at least 512) plus one byte.
            let limit = Message::from_vec(&ex.query)
                .ok()
                .and_then(|m| m.edns.map(|e| e.max_payload()))
                .unwrap_or(512)
                .max(512);
            let limit = usize::from(limit);
            for (i, m) in messages.iter().enumerate() {
                let cut = &m[..m.len().min(limit + 1)];
                if believed(&ex.query, cut, m.len() > limit) {
                    return if i < *fuzzed {
                        Outcome::Fuzzed
                    } else {
                        Outcome::Marker
                    };
                }
            }
            Outcome::Failed
        }
        Sent::Messages { messages, fuzzed } => {
            for (i, m) in messages.iter().enumerate() {
                match tcp_frame(&ex.query, m) {
                    Some(true) if i < *fuzzed => return Outcome::Fuzzed,
                    Some(true) => return Outcome::Marker,
                    Some(false) => return Outcome::Failed,
                    None => {}
                }
            }
            Outcome::Failed
        }
        Sent::Raw(bytes) => {
            let mut rest = bytes.as_slice();
            while let Some((len, tail)) = rest.split_first_chunk::<2>() {
                let len = usize::from(u16::from_be_bytes(*len));
                let Some(frame) = tail.get(..len) else { break };
                match tcp_frame(&ex.query, frame) {
                    Some(true) => return Outcome::Fuzzed,
                    Some(false) => return Outcome::Failed,
                    None => rest = &tail[len..],
                }
            }
            // The connection closed mid-frame or between frames.
            Outcome::Failed
        }
    }
}

/// The first exchange that served something decides what the client got.
fn served(log: &[Exchange]) -> Outcome {
    log.iter()
        .map(outcome)
        .find(|o| *o != Outcome::Failed)
        .unwrap_or(Outcome::Failed)
}

fn client_query(name: &Name, qtype: RecordType, id: u16, flags: u8) -> Vec<u8> {
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(name.clone(), qtype));
    if let Some(size) = EDNS_SIZES[usize::from((flags >> 4) & 3)] {
        let mut edns = Edns::new();
        edns.set_max_payload(size);
        edns.set_dnssec_ok(flags & DNSSEC_OK != 0);
        msg.set_edns(edns);
    }
    msg.to_vec().expect("a fixed question encodes")
}

/// Asks the server; checks what every reply must meet and returns it decoded.
async fn ask(harness: &clusterdns::Harness, request: &[u8], tcp: bool) -> Message {
    let src: SocketAddr = "127.0.0.1:33000".parse().expect("address");
    let reply = harness
        .handle(request, src, tcp)
        .await
        .expect("the server answers a well-formed query");
    let msg = Message::from_vec(&reply).expect("every reply the server writes must decode");
    assert_eq!(
        msg.metadata.id,
        u16::from_be_bytes([request[0], request[1]])
    );
    if !tcp {
        let asked = Message::from_vec(request)
            .ok()
            .and_then(|m| m.edns.map(|e| e.max_payload().clamp(512, 4096)))
            .unwrap_or(512);
        assert!(
            reply.len() <= usize::from(asked),
            "UDP reply of {} bytes to a client of {asked}",
            reply.len()
        );
    }
    msg
}

/// Whether `reply` is the marker answer to the question (TTLs aside: the cache rewrites them).
fn is_marker(reply: &Message, name: &Name, qtype: RecordType) -> bool {
    let Some(want) = marker_record(name, qtype) else {
        return false;
    };
    reply.metadata.response_code == ResponseCode::NoError
        && reply.answers.len() == 1
        && reply.answers[0].name == want.name
        && reply.answers[0].data == want.data
}

fn corefile(upstream: SocketAddr) -> String {
    // `max_fails 0`: no health probes (no background task, no state between executions).
    format!(".:53 {{\n    cache 30\n    forward . {upstream} {{\n        max_fails 0\n    }}\n}}\n")
}

/// One execution; what the first query was served (`None`: input too short).
pub fn run(data: &[u8]) -> Option<Outcome> {
    let [flags, q, split, reply @ ..] = data else {
        return None;
    };
    let (flags, split) = (*flags, usize::from(*split));
    let w = world();
    let _one = w.one.lock().unwrap_or_else(PoisonError::into_inner);
    let config = clusterdns::config_from_str(&corefile(w.upstream), "Corefile", Path::new("/"), 53)
        .expect("the fuzz Corefile loads");
    let harness = clusterdns::Harness::new(&config).expect("one listener");
    let (name, qtype) = question(*q);
    let tcp = flags & CLIENT_TCP != 0;
    {
        let mut s = lock(&w.script);
        s.marker_only = false;
        s.flags = flags;
        s.split = split;
        s.reply = reply.to_vec();
        s.log.clear();
    }
    w.rt.block_on(async {
        let first = ask(&harness, &client_query(&name, qtype, CLIENT_ID, flags), tcp).await;
        let log = std::mem::take(&mut lock(&w.script).log);
        assert!(!log.is_empty(), "forward never asked the upstream");
        let got = served(&log);
        match got {
            Outcome::Fuzzed => {}
            Outcome::Marker => assert!(
                is_marker(&first, &name, qtype),
                "every fuzzed reply failed the rules, so the marker must be served: {first:?}"
            ),
            Outcome::Failed => {
                assert!(
                    matches!(
                        first.metadata.response_code,
                        ResponseCode::ServFail | ResponseCode::FormErr
                    ) && first.answers.is_empty()
                        && first.authorities.is_empty(),
                    "a failed exchange must answer SERVFAIL or FORMERR alone: {first:?}"
                );
            }
        }
        // The same question again, over the other transport (no stale datagram or frame left
        // on a pooled socket can reach it), the upstream now answering markers only.
        lock(&w.script).marker_only = true;
        let second = ask(
            &harness,
            &client_query(&name, qtype, CLIENT_ID.wrapping_add(1), flags),
            !tcp,
        )
        .await;
        if got != Outcome::Fuzzed {
            assert!(
                is_marker(&second, &name, qtype),
                "no fuzzed reply passed the rules, yet the second answer is not the marker (a \
                 rejected reply was cached?): {second:?}"
            );
        }
        Some(got)
    })
}

/// A reply to `name`/`qtype` as a real upstream would send it; `edit` shapes it.
fn reply_to(name: &Name, qtype: RecordType, edit: impl FnOnce(&mut Message)) -> Vec<u8> {
    let mut msg = Message::new(0, MessageType::Response, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.metadata.recursion_available = true;
    msg.add_query(Query::query(name.clone(), qtype));
    edit(&mut msg);
    msg.to_vec().expect("seed encodes")
}

fn n(s: &str) -> Name {
    Name::from_ascii(s).expect("seed name")
}

fn soa() -> Record {
    Record::from_rdata(
        n("example.org."),
        3600,
        RData::SOA(SOA::new(
            n("ns.icann.org."),
            n("noc.dns.icann.org."),
            2_024_010_100,
            7200,
            3600,
            1_209_600,
            3600,
        )),
    )
}

fn input(flags: u8, q: u8, split: u8, reply: &[u8]) -> Vec<u8> {
    let mut out = vec![flags, q, split];
    out.extend_from_slice(reply);
    out
}

/// One seed: its file name, its bytes and what forward must serve for it.
pub struct Seed {
    pub name: String,
    pub bytes: Vec<u8>,
    pub expect: Outcome,
}

/// The seed corpus, named `seed-*`: real replies (A, AAAA, MX, TXT, CNAME chains, NXDOMAIN,
/// NODATA, SERVFAIL, REFUSED, truncated, EDNS and DO, oversized for the buffer) and the replies
/// forward must drop (another id, another question, QR=0, another opcode, no question, short,
/// cut), over UDP and TCP, framed, split in two and unframed.
pub fn seeds() -> Vec<Seed> {
    use Outcome::{Failed, Fuzzed, Marker};
    let www = n("www.example.org.");
    let mixed = n("Mixed.Example.ORG.");
    let deep = n("a.deep.chain.example.org.");
    let a = |name: &Name, ip: [u8; 4]| {
        Record::from_rdata(name.clone(), 300, RData::A(A(Ipv4Addr::from(ip))))
    };
    let cname = |from: &Name, to: &Name| {
        Record::from_rdata(from.clone(), 300, RData::CNAME(CNAME(to.clone())))
    };
    let edns = |m: &mut Message, size: u16, dnssec_ok: bool| {
        let mut e = Edns::new();
        e.set_max_payload(size);
        e.set_dnssec_ok(dnssec_ok);
        m.set_edns(e);
    };
    let mut out = Vec::new();
    let mut add = |name: &str, flags: u8, q: u8, split: u8, reply: &[u8], expect: Outcome| {
        out.push(Seed {
            name: format!("seed-{name}"),
            bytes: input(flags, q, split, reply),
            expect,
        });
    };
    // Question selectors: name index * 4 + type index (A, AAAA, MX, TXT).
    let (q_a, q_aaaa, q_mx, q_txt, q_mixed_a, q_deep_a) = (0u8, 1u8, 2u8, 3u8, 4u8, 8u8);
    let (e512, e1232, e4096) = (1u8 << 4, 2u8 << 4, 3u8 << 4);
    let (udp, tcp) = (PATCH_ID, PATCH_ID | CLIENT_TCP);

    let a_reply = reply_to(&www, RecordType::A, |m| {
        m.add_answer(a(&www, [93, 184, 215, 14]));
    });
    add("a", udp, q_a, 0, &a_reply, Fuzzed);
    add("a-tcp", tcp, q_a, 0, &a_reply, Fuzzed);
    add("a-other-id", OTHER_ID, q_a, 0, &a_reply, Marker);
    add(
        "a-other-id-tcp",
        OTHER_ID | CLIENT_TCP,
        q_a,
        0,
        &a_reply,
        Marker,
    );
    let mut framed = u16::try_from(a_reply.len())
        .expect("small")
        .to_be_bytes()
        .to_vec();
    framed.extend_from_slice(&a_reply);
    add("a-raw-tcp", tcp | RAW_TCP, q_a, 0, &framed, Fuzzed);
    add(
        "a-raw-tcp-cut",
        tcp | RAW_TCP,
        q_a,
        0,
        &framed[..framed.len() - 3],
        Failed,
    );
    add(
        "a-edns-do",
        udp | e1232 | DNSSEC_OK,
        q_a,
        0,
        &reply_to(&www, RecordType::A, |m| {
            m.add_answer(a(&www, [93, 184, 215, 14]));
            m.metadata.authentic_data = true;
            edns(m, 1232, true);
        }),
        Fuzzed,
    );
    // Two replies in one input: a near miss, then the real one.
    let miss = reply_to(&n("www.example.com."), RecordType::A, |m| {
        m.add_answer(a(&n("www.example.com."), [192, 0, 2, 1]));
    });
    let split = u8::try_from(miss.len()).expect("small");
    let two = [miss.as_slice(), a_reply.as_slice()].concat();
    add("two-replies", udp | SPLIT, q_a, split, &two, Fuzzed);
    add("two-replies-tcp", tcp | SPLIT, q_a, split, &two, Failed);
    add(
        "aaaa-multi",
        udp | e4096,
        q_aaaa,
        0,
        &reply_to(&www, RecordType::AAAA, |m| {
            for i in 1..=4u16 {
                m.add_answer(Record::from_rdata(
                    www.clone(),
                    60,
                    RData::AAAA(AAAA(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i))),
                ));
            }
            edns(m, 4096, false);
        }),
        Fuzzed,
    );
    add(
        "mx",
        udp,
        q_mx,
        0,
        &reply_to(&www, RecordType::MX, |m| {
            m.add_answer(Record::from_rdata(
                www.clone(),
                3600,
                RData::MX(MX::new(10, n("mail.example.org."))),
            ));
            m.add_additional(a(&n("mail.example.org."), [192, 0, 2, 25]));
        }),
        Fuzzed,
    );
    add(
        "txt-tcp",
        tcp,
        q_txt,
        0,
        &reply_to(&www, RecordType::TXT, |m| {
            m.add_answer(Record::from_rdata(
                www.clone(),
                300,
                RData::TXT(TXT::new(vec!["v=spf1 -all".to_owned(), "x".repeat(200)])),
            ));
        }),
        Fuzzed,
    );
    add(
        "mixed-case",
        udp,
        q_mixed_a,
        0,
        &reply_to(&mixed, RecordType::A, |m| {
            m.add_answer(a(&mixed, [192, 0, 2, 7]));
        }),
        Fuzzed,
    );
    let lower = n("mixed.example.org.");
    add(
        "mixed-case-lowered",
        udp,
        q_mixed_a,
        0,
        &reply_to(&lower, RecordType::A, |m| {
            m.add_answer(a(&lower, [192, 0, 2, 7]));
        }),
        Fuzzed,
    );
    let chain = reply_to(&deep, RecordType::A, |m| {
        let hops = [
            n("a.deep.chain.example.org."),
            n("b.deep.chain.example.org."),
            n("c.cdn.example.net."),
            n("edge.cdn.example.net."),
        ];
        for pair in hops.windows(2) {
            m.add_answer(cname(&pair[0], &pair[1]));
        }
        m.add_answer(a(&hops[3], [198, 51, 100, 1]));
        m.add_answer(a(&hops[3], [198, 51, 100, 2]));
    });
    add("cname-chain", udp, q_deep_a, 0, &chain, Fuzzed);
    add("cname-chain-tcp", tcp, q_deep_a, 0, &chain, Fuzzed);
    add(
        "cname-dangling",
        udp,
        q_deep_a,
        0,
        &reply_to(&deep, RecordType::A, |m| {
            m.add_answer(cname(&deep, &n("gone.example.net.")));
        }),
        Fuzzed,
    );
    add(
        "nxdomain",
        udp | e1232,
        q_a,
        0,
        &reply_to(&www, RecordType::A, |m| {
            m.metadata.response_code = ResponseCode::NXDomain;
            m.add_authority(soa());
            edns(m, 1232, false);
        }),
        Fuzzed,
    );
    add(
        "nodata",
        udp,
        q_aaaa,
        0,
        &reply_to(&www, RecordType::AAAA, |m| {
            m.add_authority(soa());
        }),
        Fuzzed,
    );
    add(
        "servfail",
        udp,
        q_a,
        0,
        &reply_to(&www, RecordType::A, |m| {
            m.metadata.response_code = ResponseCode::ServFail;
        }),
        Fuzzed,
    );
    add(
        "refused-tcp",
        tcp,
        q_a,
        0,
        &reply_to(&www, RecordType::A, |m| {
            m.metadata.response_code = ResponseCode::Refused;
        }),
        Fuzzed,
    );
    add(
        "truncated",
        udp,
        q_txt,
        0,
        &reply_to(&www, RecordType::TXT, |m| {
            m.metadata.truncation = true;
        }),
        Fuzzed,
    );
    // Larger than the 512-byte buffer of a client without EDNS: cut, read as oversized.
    let big = reply_to(&www, RecordType::A, |m| {
        for i in 0..40u8 {
            m.add_answer(a(&www, [10, 0, 0, i]));
        }
    });
    add("oversized", udp, q_a, 0, &big, Fuzzed);
    add("oversized-edns", udp | e512, q_a, 0, &big, Fuzzed);
    add("oversized-tcp", tcp, q_a, 0, &big, Fuzzed);
    add("other-question", udp, q_a, 0, &miss, Marker);
    add(
        "other-type-tcp",
        tcp,
        q_a,
        0,
        &reply_to(&www, RecordType::AAAA, |_| {}),
        Failed,
    );
    let query_back = reply_to(&www, RecordType::A, |m| {
        m.metadata.message_type = MessageType::Query;
    });
    add("not-response", udp, q_a, 0, &query_back, Marker);
    add("not-response-tcp", tcp, q_a, 0, &query_back, Failed);
    add(
        "other-opcode",
        udp,
        q_a,
        0,
        &reply_to(&www, RecordType::A, |m| {
            m.metadata.op_code = OpCode::Status;
        }),
        Marker,
    );
    add(
        "no-question",
        udp,
        q_a,
        0,
        &reply_to(&www, RecordType::A, |m| {
            m.queries.clear();
        }),
        Marker,
    );
    add("short", udp, q_a, 0, &a_reply[..11], Marker);
    add(
        "cut-in-answer-tcp",
        tcp,
        q_a,
        0,
        &a_reply[..a_reply.len() - 2],
        Failed,
    );
    out
}
