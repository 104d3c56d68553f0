//! A small authoritative DNS server for tests, on 127.0.0.1 (UDP and TCP on one ephemeral port),
//! serving fixed records, with modes that misbehave (silent, SERVFAIL, garbage, wrong id,
//! truncated UDP, TCP closed at once, wrong question). It records every query it receives.
//! [`Scripted`] is the raw one: it sends whatever bytes a test's script returns, when and from
//! where the script says (another port or address, for forgeries).
//!
//! Records (TAG is the number given to `start_tagged`, 10 by default):
//! - `external.test.` A 192.0.2.TAG (TTL 300), AA and RA set, with an NS record in the authority
//!   section and its A glue in the additional section;
//! - `onlyTAG.test.` A 192.0.2.TAG;
//! - `big.test.` 60 A records 198.51.100.1-60 (over 512 bytes: truncated without EDNS over UDP);
//! - `. NS` (the forward health probe) and anything else under `test.`: NXDOMAIN with an SOA.

#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, ResponseCode};
use hickory_proto::rr::rdata::{A, NS, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

/// How the test upstream behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Mode {
    /// Answers from its records.
    Normal = 0,
    /// Never answers (the client times out).
    Silent = 1,
    /// Answers SERVFAIL to everything.
    ServFail = 2,
    /// Answers with the query's id followed by bytes that do not decode.
    Garbage = 3,
    /// Answers correctly but with another id.
    WrongId = 4,
    /// Over UDP answers TC=1 with no records; over TCP answers in full.
    Truncate = 5,
    /// Closes every TCP connection at once; UDP answers normally.
    CloseTcp = 6,
    /// Answers with a different question than asked.
    OtherQuestion = 7,
}

impl Mode {
    fn from_u8(v: u8) -> Mode {
        match v {
            1 => Mode::Silent,
            2 => Mode::ServFail,
            3 => Mode::Garbage,
            4 => Mode::WrongId,
            5 => Mode::Truncate,
            6 => Mode::CloseTcp,
            7 => Mode::OtherQuestion,
            _ => Mode::Normal,
        }
    }
}

/// One query the upstream received.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    /// The name as received (case kept), with the trailing dot.
    pub(crate) name: String,
    pub(crate) qtype: RecordType,
    pub(crate) tcp: bool,
    /// The sender's address (the same for queries over one reused socket or connection).
    pub(crate) peer: SocketAddr,
    pub(crate) id: u16,
    pub(crate) rd: bool,
    pub(crate) cd: bool,
    /// `Some((udp size, DO))` when the query carried EDNS.
    pub(crate) edns: Option<(u16, bool)>,
}

struct State {
    mode: AtomicU8,
    /// Bumped by `close_connections`: connections accepted before close at their next query.
    generation: AtomicU64,
    tag: u8,
    seen: Mutex<Vec<Seen>>,
}

/// A running test upstream; its tasks stop when it is dropped.
pub(crate) struct Upstream {
    pub(crate) addr: SocketAddr,
    state: Arc<State>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Upstream {
    pub(crate) async fn start(mode: Mode) -> Upstream {
        Upstream::start_tagged(mode, 10).await
    }

    /// Binds UDP and TCP on one free loopback port (retrying if TCP's is taken).
    pub(crate) async fn start_tagged(mode: Mode, tag: u8) -> Upstream {
        let (udp, tcp) = bind_pair().await;
        let addr = udp.local_addr().expect("udp addr");
        let state = Arc::new(State {
            mode: AtomicU8::new(mode as u8),
            generation: AtomicU64::new(0),
            tag,
            seen: Mutex::new(Vec::new()),
        });
        let tasks = vec![
            tokio::spawn(serve_udp(udp, state.clone())),
            tokio::spawn(serve_tcp(tcp, state.clone())),
        ];
        Upstream { addr, state, tasks }
    }

    pub(crate) fn set_mode(&self, mode: Mode) {
        self.state.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// Makes every open TCP connection close (unanswered) when its next query arrives, as a
    /// server that dropped idle connections; new connections are served normally.
    pub(crate) fn close_connections(&self) {
        self.state.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Every query received so far.
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("seen").clone()
    }

    /// Queries received for `name` (compared case-insensitively) and `qtype`.
    pub(crate) fn count(&self, name: &str, qtype: RecordType) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.qtype == qtype && s.name.eq_ignore_ascii_case(name))
            .count()
    }

    /// Health probes (`. NS`) received.
    pub(crate) fn probes(&self) -> usize {
        self.count(".", RecordType::NS)
    }

    /// Polls until `cond` holds on what was seen, or panics after `limit`.
    pub(crate) async fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        cond: impl Fn(&[Seen]) -> bool,
    ) {
        let deadline = Instant::now() + limit;
        loop {
            if cond(&self.seen()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "test upstream {}: {what} did not happen within {limit:?}; seen {:?}",
                self.addr,
                self.seen()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn bind_pair() -> (UdpSocket, TcpListener) {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
        let addr = udp.local_addr().expect("udp addr");
        if let Ok(tcp) = TcpListener::bind(addr).await {
            return (udp, tcp);
        }
    }
    panic!("no loopback port free for both UDP and TCP");
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("fixed name")
}

fn a(owner: &Name, ip: [u8; 4]) -> Record {
    Record::from_rdata(owner.clone(), 300, RData::A(A(Ipv4Addr::from(ip))))
}

fn soa() -> Record {
    Record::from_rdata(
        name("test."),
        60,
        RData::SOA(SOA::new(
            name("ns.test."),
            name("hostmaster.test."),
            1,
            7200,
            1800,
            86400,
            60,
        )),
    )
}

/// The reply to `query` in `mode`, or `None` for no reply; `tcp` says how it arrived.
fn respond(request: &[u8], state: &State, tcp: bool, peer: SocketAddr) -> Option<Vec<u8>> {
    if request.len() < 12 {
        return None;
    }
    let query = Message::from_vec(request).ok()?;
    let q = query.queries.first()?.clone();
    state.seen.lock().ok()?.push(Seen {
        name: q.name().to_string(),
        qtype: q.query_type(),
        tcp,
        peer,
        id: query.metadata.id,
        rd: query.metadata.recursion_desired,
        cd: query.metadata.checking_disabled,
        edns: query
            .edns
            .as_ref()
            .map(|e| (e.max_payload(), e.flags().dnssec_ok)),
    });
    let mode = Mode::from_u8(state.mode.load(Ordering::SeqCst));
    let mut reply = query.clone().into_response();
    reply.metadata.recursion_available = true;
    if query.edns.is_some() {
        reply.set_edns(Edns::new());
    }
    let limit = match (&query.edns, tcp) {
        (_, true) => usize::from(u16::MAX),
        (Some(e), false) => usize::from(e.max_payload().max(512)),
        (None, false) => 512,
    };
    match mode {
        Mode::Silent => return None,
        Mode::Garbage => {
            let mut bytes = request[..2].to_vec();
            bytes.extend_from_slice(&[0xff; 20]);
            return Some(bytes);
        }
        Mode::ServFail => {
            reply.metadata.response_code = ResponseCode::ServFail;
            return reply.to_vec().ok();
        }
        Mode::Truncate if !tcp => {
            reply.metadata.truncation = true;
            return reply.to_vec().ok();
        }
        Mode::OtherQuestion => {
            let mut other = query.clone();
            other.queries[0].set_name(name("other.test."));
            let mut r = other.into_response();
            r.metadata.authoritative = true;
            return r.to_vec().ok();
        }
        _ => {}
    }
    let qname = q.name().to_lowercase();
    let tag = state.tag;
    let external = name("external.test.");
    if qname == external && q.query_type() == RecordType::A {
        reply.metadata.authoritative = true;
        reply.add_answer(a(q.name(), [192, 0, 2, tag]));
        reply.add_authority(Record::from_rdata(
            name("test."),
            300,
            RData::NS(NS(name("ns.test."))),
        ));
        reply.add_additional(a(&name("ns.test."), [192, 0, 2, 53]));
    } else if qname == name(&format!("only{tag}.test.")) && q.query_type() == RecordType::A {
        reply.metadata.authoritative = true;
        reply.add_answer(a(q.name(), [192, 0, 2, tag]));
    } else if qname == name("big.test.") && q.query_type() == RecordType::A {
        reply.metadata.authoritative = true;
        for i in 1..=60 {
            reply.add_answer(a(q.name(), [198, 51, 100, i]));
        }
    } else if qname.is_root() && q.query_type() == RecordType::NS {
        reply.add_answer(Record::from_rdata(
            Name::root(),
            300,
            RData::NS(NS(name("a.root.test."))),
        ));
    } else {
        reply.metadata.authoritative = true;
        reply.metadata.response_code = ResponseCode::NXDomain;
        reply.add_authority(soa());
    }
    let mut bytes = reply.to_vec().ok()?;
    if bytes.len() > limit {
        // As a real server: too big for the client's buffer, so TC=1 and no records.
        let mut short = query.into_response();
        short.metadata.truncation = true;
        short.metadata.authoritative = true;
        bytes = short.to_vec().ok()?;
    }
    if mode == Mode::WrongId {
        let id = u16::from_be_bytes([bytes[0], bytes[1]]) ^ 0xffff;
        bytes[..2].copy_from_slice(&id.to_be_bytes());
    }
    Some(bytes)
}

async fn serve_udp(sock: UdpSocket, state: Arc<State>) {
    let mut buf = vec![0u8; 65535];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        if let Some(reply) = respond(&buf[..n], &state, false, from) {
            let _ = sock.send_to(&reply, from).await;
        }
    }
}

async fn serve_tcp(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        if Mode::from_u8(state.mode.load(Ordering::SeqCst)) == Mode::CloseTcp {
            drop(stream);
            continue;
        }
        tokio::spawn(serve_conn(stream, state.clone(), peer));
    }
}

async fn serve_conn(mut stream: TcpStream, state: Arc<State>, peer: SocketAddr) {
    let generation = state.generation.load(Ordering::SeqCst);
    loop {
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).await.is_err() {
            return;
        }
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if stream.read_exact(&mut msg).await.is_err() {
            return;
        }
        if Mode::from_u8(state.mode.load(Ordering::SeqCst)) == Mode::CloseTcp
            || state.generation.load(Ordering::SeqCst) != generation
        {
            return;
        }
        if let Some(reply) = respond(&msg, &state, true, peer) {
            let Ok(len) = u16::try_from(reply.len()) else {
                return;
            };
            let mut framed = len.to_be_bytes().to_vec();
            framed.extend_from_slice(&reply);
            if stream.write_all(&framed).await.is_err() {
                return;
            }
        }
    }
}

/// Where a scripted datagram is sent from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// The upstream's own socket (over TCP: the connection).
    Upstream,
    /// Another port of the upstream's address (UDP only).
    OtherPort,
    /// Another loopback address, 127.0.0.2 (UDP only).
    OtherAddr,
}

/// One datagram (or TCP frame) a scripted upstream sends in reply to a query.
#[derive(Clone, Debug)]
pub(crate) struct Datagram {
    pub(crate) after: Duration,
    pub(crate) source: Source,
    pub(crate) bytes: Vec<u8>,
}

impl Datagram {
    /// `bytes` from the upstream's socket, `after` the query arrived.
    pub(crate) fn at(after: Duration, bytes: Vec<u8>) -> Datagram {
        Datagram {
            after,
            source: Source::Upstream,
            bytes,
        }
    }
}

/// What a scripted upstream sends for the raw query it received (nothing: silence).
pub(crate) type Script = Arc<dyn Fn(&[u8]) -> Vec<Datagram> + Send + Sync>;

/// A test upstream that answers with whatever raw bytes its script returns, from its own socket
/// or from another port or address, after a delay: for replies a real server would never send.
pub(crate) struct Scripted {
    pub(crate) addr: SocketAddr,
    queries: Arc<AtomicU64>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Scripted {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Scripted {
    pub(crate) async fn start(script: Script) -> Scripted {
        let (udp, tcp) = bind_pair().await;
        let addr = udp.local_addr().expect("udp addr");
        let queries = Arc::new(AtomicU64::new(0));
        let udp = Arc::new(udp);
        let tasks = vec![
            tokio::spawn(scripted_udp(udp, script.clone(), queries.clone())),
            tokio::spawn(scripted_tcp(tcp, script, queries.clone())),
        ];
        Scripted {
            addr,
            queries,
            tasks,
        }
    }

    /// Queries received so far (health probes included).
    pub(crate) fn queries(&self) -> u64 {
        self.queries.load(Ordering::SeqCst)
    }
}

async fn scripted_udp(sock: Arc<UdpSocket>, script: Script, queries: Arc<AtomicU64>) {
    let mut buf = vec![0u8; 65535];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        queries.fetch_add(1, Ordering::SeqCst);
        let plan = script(&buf[..n]);
        let sock = sock.clone();
        tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            for d in plan {
                tokio::time::sleep_until(start + d.after).await;
                let _ = match d.source {
                    Source::Upstream => sock.send_to(&d.bytes, from).await,
                    Source::OtherPort | Source::OtherAddr => {
                        let ip = if d.source == Source::OtherPort {
                            Ipv4Addr::LOCALHOST
                        } else {
                            Ipv4Addr::new(127, 0, 0, 2)
                        };
                        let other = UdpSocket::bind((ip, 0))
                            .await
                            .expect("bind a spoofing socket");
                        other.send_to(&d.bytes, from).await
                    }
                };
            }
        });
    }
}

async fn scripted_tcp(listener: TcpListener, script: Script, queries: Arc<AtomicU64>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let script = script.clone();
        let queries = queries.clone();
        tokio::spawn(async move {
            loop {
                let mut len = [0u8; 2];
                if stream.read_exact(&mut len).await.is_err() {
                    return;
                }
                let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if stream.read_exact(&mut msg).await.is_err() {
                    return;
                }
                queries.fetch_add(1, Ordering::SeqCst);
                let start = tokio::time::Instant::now();
                for d in script(&msg) {
                    tokio::time::sleep_until(start + d.after).await;
                    let Ok(len) = u16::try_from(d.bytes.len()) else {
                        return;
                    };
                    let mut framed = len.to_be_bytes().to_vec();
                    framed.extend_from_slice(&d.bytes);
                    if stream.write_all(&framed).await.is_err() {
                        return;
                    }
                }
            }
        });
    }
}

/// A well-formed reply to the raw `query`: its id and question, QR=1, RA, one A record `ip`
/// (TTL 300) for the question's name. `None` if `query` does not decode.
pub(crate) fn reply_to(query: &[u8], ip: [u8; 4]) -> Option<Message> {
    let query = Message::from_vec(query).ok()?;
    let q = query.queries.first()?.clone();
    let mut reply = query.into_response();
    reply.metadata.recursion_available = true;
    reply.add_answer(a(q.name(), ip));
    Some(reply)
}

/// The first label of the question of the raw `query`, lower-cased ("" for the root or junk).
pub(crate) fn first_label(query: &[u8]) -> String {
    Message::from_vec(query)
        .ok()
        .and_then(|m| m.queries.first().cloned())
        .and_then(|q| q.name().iter().next().map(|l| l.to_ascii_lowercase()))
        .map(|l| String::from_utf8_lossy(&l).into_owned())
        .unwrap_or_default()
}
