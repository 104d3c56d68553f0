//! One upstream resolver: pooled connected UDP sockets and TCP connections, a random query id per
//! exchange, and the rules a reply must meet before it is believed ([`judge`]). Idle sockets are
//! closed after `expire`, by [`Connections::reap`] (a timer in `mod.rs`) and when the pool is
//! used; the sockets one upstream holds open, in use or idle, are capped, and so are those all
//! upstreams sharing a [`Budget`] hold together (the process's, across every `forward`).
//!
//! Replies are judged, not trusted: a UDP datagram that is not a reply to the query sent (too
//! short, another id, undecodable, QR=0, another opcode, another question) is dropped and the
//! exchange keeps waiting for the real reply until its timeout, so a forged or reflected datagram
//! can neither end the exchange nor be answered. The socket is connected, so the kernel delivers
//! only datagrams from the upstream's own address and port. Over TCP (no off-path forgery) a bad
//! reply fails the exchange at once.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Header, Message, MessageType, Metadata, OpCode, Query};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// Transport of one exchange with an upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Proto {
    Udp,
    Tcp,
}

/// Why a datagram or frame from the upstream is not the reply to the query sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// Shorter than a DNS header.
    Short,
    /// Another id: a late reply to an earlier query on this socket, or a forgery.
    OtherId,
    /// Our id but not a DNS message.
    Undecodable,
    /// QR=0: a query, e.g. our own reflected back.
    NotResponse,
    /// An opcode other than the query's.
    OtherOpcode,
    /// Not exactly our question (name, ignoring case; type; class), or none.
    OtherQuestion,
}

impl Rejection {
    /// A decodable message with our id that is not a matching reply. CoreDNS answers such a
    /// reply with FORMERR, so when nothing better arrives, so do we.
    pub(crate) fn is_mismatch(self) -> bool {
        matches!(
            self,
            Rejection::NotResponse | Rejection::OtherOpcode | Rejection::OtherQuestion
        )
    }

    pub(crate) fn describe(self) -> &'static str {
        match self {
            Rejection::Short => "shorter than a header",
            Rejection::OtherId => "another id",
            Rejection::Undecodable => "undecodable",
            Rejection::NotResponse => "not a response (QR=0)",
            Rejection::OtherOpcode => "another opcode",
            Rejection::OtherQuestion => "another question",
        }
    }

    /// Of two rejections seen in one exchange, the one worth reporting: a mismatch decides the
    /// rcode, so it is kept over noise.
    fn worse(current: Option<Rejection>, new: Rejection) -> Rejection {
        match current {
            Some(old) if old.is_mismatch() && !new.is_mismatch() => old,
            _ => new,
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

/// Why an exchange with an upstream produced no usable reply.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    #[error("upstream {addr} over {proto:?}: no reply within {timeout:?}{}", ignored(*rejected))]
    Timeout {
        addr: SocketAddr,
        proto: Proto,
        timeout: Duration,
        /// The most telling of the datagrams dropped while waiting, if any.
        rejected: Option<Rejection>,
    },
    #[error("upstream {addr} over {proto:?}: {source}")]
    Io {
        addr: SocketAddr,
        proto: Proto,
        #[source]
        source: io::Error,
    },
    /// A pooled TCP connection turned out to be closed by the upstream; retry on a new one.
    #[error("upstream {addr}: cached TCP connection was closed")]
    CachedClosed { addr: SocketAddr },
    #[error("upstream {addr} over {proto:?}: reply rejected: {rejection}")]
    Rejected {
        addr: SocketAddr,
        proto: Proto,
        rejection: Rejection,
    },
    #[error("upstream {addr}: request of {len} bytes does not fit a TCP frame")]
    RequestTooLong { addr: SocketAddr, len: usize },
    /// Every socket this upstream may hold, or all the process's forward sockets, are in use:
    /// not tried (not a failure of the upstream).
    #[error("upstream {addr}: all {limit} sockets in use")]
    Busy { addr: SocketAddr, limit: usize },
}

fn ignored(rejected: Option<Rejection>) -> String {
    rejected
        .map(|r| format!(" (ignored a reply: {r})"))
        .unwrap_or_default()
}

impl ExchangeError {
    /// Whether the exchange saw a reply CoreDNS would answer with FORMERR.
    pub(crate) fn is_mismatch(&self) -> bool {
        match self {
            ExchangeError::Timeout { rejected, .. } => rejected.is_some_and(Rejection::is_mismatch),
            ExchangeError::Rejected { rejection, .. } => rejection.is_mismatch(),
            _ => false,
        }
    }
}

/// The reply of an exchange.
#[derive(Debug)]
pub(crate) enum Reply {
    /// A decoded reply to the question asked.
    Message(Box<Message>),
    /// A UDP reply to the question asked, larger than our receive buffer: passed on as an empty
    /// truncated answer.
    Overflow,
}

/// What was sent: the id on the wire and the question.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Expected<'a> {
    pub(crate) id: u16,
    pub(crate) question: &'a Query,
}

/// The verdict on bytes received from the upstream.
#[derive(Debug)]
pub(crate) enum Verdict {
    Accept(Box<Message>),
    /// Header and question match, the rest did not fit the buffer (`oversized`).
    Overflow,
    Reject(Rejection),
}

/// Judges `bytes` as the reply to `expected`. `oversized` says the datagram was cut at the
/// buffer size: then only its header and question are read. Pure; the fuzz target calls it.
pub(crate) fn judge(expected: Expected<'_>, bytes: &[u8], oversized: bool) -> Verdict {
    if bytes.len() < 12 {
        return Verdict::Reject(Rejection::Short);
    }
    if bytes[..2] != expected.id.to_be_bytes() {
        return Verdict::Reject(Rejection::OtherId);
    }
    if oversized {
        let mut decoder = BinDecoder::new(bytes);
        let Ok(header) = Header::read(&mut decoder) else {
            return Verdict::Reject(Rejection::Undecodable);
        };
        // Only a single question can match; more are not read (nor allocated for).
        let question = if header.counts.queries == 1 {
            match Query::read(&mut decoder) {
                Ok(q) => Some(q),
                Err(_) => return Verdict::Reject(Rejection::Undecodable),
            }
        } else {
            None
        };
        return match check(expected, &header.metadata, question.as_slice()) {
            Ok(()) => Verdict::Overflow,
            Err(r) => Verdict::Reject(r),
        };
    }
    let Ok(message) = Message::from_vec(bytes) else {
        return Verdict::Reject(Rejection::Undecodable);
    };
    match check(expected, &message.metadata, &message.queries) {
        Ok(()) => Verdict::Accept(Box::new(message)),
        Err(r) => Verdict::Reject(r),
    }
}

/// The rules past the id: a response (QR=1), to a standard query (the only opcode we send),
/// carrying exactly the question asked (RFC 1035 §7.3; RFC 5452 §9.1). Name case is ignored
/// (RFC 4343): an upstream may echo it in another case.
fn check(expected: Expected<'_>, meta: &Metadata, questions: &[Query]) -> Result<(), Rejection> {
    if meta.message_type != MessageType::Response {
        return Err(Rejection::NotResponse);
    }
    if meta.op_code != OpCode::Query {
        return Err(Rejection::OtherOpcode);
    }
    let want = expected.question;
    match questions {
        [q] if q.query_type() == want.query_type()
            && q.query_class() == want.query_class()
            && q.name() == want.name() =>
        {
            Ok(())
        }
        _ => Err(Rejection::OtherQuestion),
    }
}

/// Sockets that several upstreams may hold open together, in use or idle: the process's one
/// is shared by every upstream of every `forward` (and of a configuration being replaced by a
/// reload), so their per-upstream shares cannot add up past the open-file limit.
#[derive(Debug)]
pub(crate) struct Budget {
    open: AtomicUsize,
    max: usize,
}

impl Budget {
    pub(crate) fn new(max: usize) -> Budget {
        Budget {
            open: AtomicUsize::new(0),
            max,
        }
    }
}

/// One open socket's share of its upstream's limit and of its budget, given back when dropped.
#[derive(Debug)]
struct Ticket {
    upstream: Arc<AtomicUsize>,
    budget: Option<Arc<Budget>>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.upstream.fetch_sub(1, Ordering::AcqRel);
        if let Some(budget) = &self.budget {
            budget.open.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A socket counted against its upstream's limit.
#[derive(Debug)]
pub(crate) struct Counted<T> {
    conn: T,
    _ticket: Ticket,
}

/// Idle connections of one kind, oldest first. `now` is a parameter so tests control time.
#[derive(Debug)]
pub(crate) struct Pool<T> {
    idle: Mutex<Vec<(T, Instant)>>,
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Pool {
            idle: Mutex::new(Vec::new()),
        }
    }
}

impl<T> Pool<T> {
    /// The most recently returned connection if it has not been idle `expire`; if it has, every
    /// connection has, and all are closed.
    pub(crate) fn take(&self, now: Instant, expire: Duration) -> Option<T> {
        let stale = {
            let mut idle = self.idle.lock().ok()?;
            let (_, since) = idle.last()?;
            if now.saturating_duration_since(*since) < expire {
                return idle.pop().map(|(conn, _)| conn);
            }
            std::mem::take(&mut *idle)
        };
        // Closed outside the lock.
        drop(stale);
        None
    }

    /// Returns a connection (idle from `now`); beyond `max_idle` (0 = no limit) the oldest one
    /// is closed.
    pub(crate) fn put(&self, conn: T, now: Instant, max_idle: usize) {
        let excess = {
            let Ok(mut idle) = self.idle.lock() else {
                return;
            };
            // Kept in order of `since` (threads may call with slightly older `now`s), which
            // `take` and `reap` rely on.
            let since = idle.last().map_or(now, |(_, last)| now.max(*last));
            idle.push((conn, since));
            if max_idle > 0 && idle.len() > max_idle {
                let n = idle.len() - max_idle;
                idle.drain(..n).collect::<Vec<_>>()
            } else {
                Vec::new()
            }
        };
        drop(excess);
    }

    /// Closes every connection idle for `expire` or longer at `now`; returns how many.
    pub(crate) fn reap(&self, now: Instant, expire: Duration) -> usize {
        let stale = {
            let Ok(mut idle) = self.idle.lock() else {
                return 0;
            };
            let n =
                idle.partition_point(|(_, since)| now.saturating_duration_since(*since) >= expire);
            idle.drain(..n).collect::<Vec<_>>()
        };
        stale.len()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.idle.lock().map(|i| i.len()).unwrap_or(0)
    }
}

/// Sockets of one upstream.
#[derive(Debug)]
pub(crate) struct Connections {
    pub(crate) addr: SocketAddr,
    expire: Duration,
    max_idle: usize,
    /// Sockets this upstream may hold open at once, in use or idle.
    max_open: usize,
    open: Arc<AtomicUsize>,
    /// Shared with other upstreams (none: only `max_open` applies).
    budget: Option<Arc<Budget>>,
    udp: Pool<Counted<UdpSocket>>,
    tcp: Pool<Counted<TcpStream>>,
}

/// The request to send: encoded once per query, the id patched per exchange.
pub(crate) struct Request<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) question: &'a Query,
    /// Bytes a UDP reply may have (the advertised EDNS size, or 512).
    pub(crate) udp_size: u16,
}

impl Connections {
    pub(crate) fn new(addr: SocketAddr, expire: Duration, max_idle: u32, max_open: usize) -> Self {
        Connections {
            addr,
            expire,
            max_idle: usize::try_from(max_idle).unwrap_or(usize::MAX),
            max_open,
            open: Arc::new(AtomicUsize::new(0)),
            budget: None,
            udp: Pool::default(),
            tcp: Pool::default(),
        }
    }

    /// Counts this upstream's sockets against `budget` too.
    pub(crate) fn with_budget(mut self, budget: Arc<Budget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Sockets open now (in use and idle), for tests.
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Closes the sockets idle for `expire`; returns how many.
    pub(crate) fn reap(&self, now: Instant) -> usize {
        self.udp.reap(now, self.expire) + self.tcp.reap(now, self.expire)
    }

    /// One exchange over `proto` within `timeout`. The reply carries the upstream id (`id`).
    pub(crate) async fn exchange(
        &self,
        request: &Request<'_>,
        id: u16,
        proto: Proto,
        timeout: Duration,
        now: Instant,
    ) -> Result<Reply, ExchangeError> {
        let mut bytes = request.bytes.to_vec();
        if let Some(head) = bytes.get_mut(..2) {
            head.copy_from_slice(&id.to_be_bytes());
        }
        let expected = Expected {
            id,
            question: request.question,
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let fut = async {
            match proto {
                Proto::Udp => {
                    self.udp_exchange(&bytes, expected, request.udp_size, deadline, timeout, now)
                        .await
                }
                Proto::Tcp => match self.tcp_exchange(&bytes, expected, now, true).await {
                    Err(ExchangeError::CachedClosed { .. }) => {
                        self.tcp_exchange(&bytes, expected, now, false).await
                    }
                    other => other,
                },
            }
        };
        // The UDP wait ends at the same deadline with what it dropped; tokio polls the inner
        // future before the timer, so that result wins.
        match tokio::time::timeout_at(deadline, fut).await {
            Ok(result) => result,
            Err(_) => Err(ExchangeError::Timeout {
                addr: self.addr,
                proto,
                timeout,
                rejected: None,
            }),
        }
    }

    fn io(&self, proto: Proto) -> impl Fn(io::Error) -> ExchangeError + '_ {
        move |source| ExchangeError::Io {
            addr: self.addr,
            proto,
            source,
        }
    }

    /// A share of the socket limits for a new socket.
    fn ticket(&self) -> Result<Ticket, ExchangeError> {
        let before = self.open.fetch_add(1, Ordering::AcqRel);
        let shared = self
            .budget
            .as_ref()
            .map(|b| (b.open.fetch_add(1, Ordering::AcqRel), b.max));
        // Taken (and so given back on drop) before judging, so a refusal leaves the counts.
        let ticket = Ticket {
            upstream: Arc::clone(&self.open),
            budget: self.budget.clone(),
        };
        if before >= self.max_open {
            return Err(ExchangeError::Busy {
                addr: self.addr,
                limit: self.max_open,
            });
        }
        if let Some((total, max)) = shared
            && total >= max
        {
            return Err(ExchangeError::Busy {
                addr: self.addr,
                limit: max,
            });
        }
        Ok(ticket)
    }

    async fn udp_socket(&self, now: Instant) -> Result<Counted<UdpSocket>, ExchangeError> {
        if let Some(sock) = self.udp.take(now, self.expire) {
            return Ok(sock);
        }
        let ticket = self.ticket()?;
        let local: SocketAddr = if self.addr.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let sock = UdpSocket::bind(local).await.map_err(self.io(Proto::Udp))?;
        // Connected: the kernel drops datagrams from any other address or port.
        sock.connect(self.addr).await.map_err(self.io(Proto::Udp))?;
        Ok(Counted {
            conn: sock,
            _ticket: ticket,
        })
    }

    async fn udp_exchange(
        &self,
        bytes: &[u8],
        expected: Expected<'_>,
        udp_size: u16,
        deadline: tokio::time::Instant,
        timeout: Duration,
        now: Instant,
    ) -> Result<Reply, ExchangeError> {
        let sock = self.udp_socket(now).await?;
        sock.conn.send(bytes).await.map_err(self.io(Proto::Udp))?;
        // One byte more than allowed tells an oversized reply from one that just fits.
        let limit = usize::from(udp_size.max(512));
        let mut buf = vec![0u8; limit + 1];
        let mut rejected: Option<Rejection> = None;
        loop {
            let n = match tokio::time::timeout_at(deadline, sock.conn.recv(&mut buf)).await {
                Ok(result) => result.map_err(self.io(Proto::Udp))?,
                Err(_) => {
                    return Err(ExchangeError::Timeout {
                        addr: self.addr,
                        proto: Proto::Udp,
                        timeout,
                        rejected,
                    });
                }
            };
            let Some(datagram) = buf.get(..n) else {
                continue;
            };
            let reply = match judge(expected, datagram, n > limit) {
                Verdict::Accept(message) => Reply::Message(message),
                Verdict::Overflow => Reply::Overflow,
                Verdict::Reject(r) => {
                    // Not the reply (late, forged, reflected or broken): keep waiting.
                    rejected = Some(Rejection::worse(rejected, r));
                    continue;
                }
            };
            self.udp.put(sock, Instant::now(), self.max_idle);
            return Ok(reply);
        }
    }

    async fn tcp_exchange(
        &self,
        bytes: &[u8],
        expected: Expected<'_>,
        now: Instant,
        may_reuse: bool,
    ) -> Result<Reply, ExchangeError> {
        let len = u16::try_from(bytes.len()).map_err(|_| ExchangeError::RequestTooLong {
            addr: self.addr,
            len: bytes.len(),
        })?;
        let pooled = if may_reuse {
            self.tcp.take(now, self.expire)
        } else {
            None
        };
        let reused = pooled.is_some();
        let mut stream = match pooled {
            Some(stream) => stream,
            None => {
                let ticket = self.ticket()?;
                let stream = TcpStream::connect(self.addr)
                    .await
                    .map_err(self.io(Proto::Tcp))?;
                let _ = stream.set_nodelay(true);
                Counted {
                    conn: stream,
                    _ticket: ticket,
                }
            }
        };
        let closed = |e: io::Error| {
            if reused {
                ExchangeError::CachedClosed { addr: self.addr }
            } else {
                self.io(Proto::Tcp)(e)
            }
        };
        let mut framed = Vec::with_capacity(bytes.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(bytes);
        stream.conn.write_all(&framed).await.map_err(closed)?;
        let mut first = true;
        loop {
            let mut len = [0u8; 2];
            let read = stream.conn.read_exact(&mut len).await;
            if let Err(e) = read {
                return Err(if first {
                    closed(e)
                } else {
                    self.io(Proto::Tcp)(e)
                });
            }
            first = false;
            let mut frame = vec![0u8; usize::from(u16::from_be_bytes(len))];
            stream
                .conn
                .read_exact(&mut frame)
                .await
                .map_err(self.io(Proto::Tcp))?;
            let message = match judge(expected, &frame, false) {
                Verdict::Accept(message) => message,
                // A stale frame: read on.
                Verdict::Reject(Rejection::OtherId) => continue,
                // Only the upstream itself can write on this connection: it is broken.
                Verdict::Reject(rejection) => {
                    return Err(ExchangeError::Rejected {
                        addr: self.addr,
                        proto: Proto::Tcp,
                        rejection,
                    });
                }
                Verdict::Overflow => {
                    return Err(ExchangeError::Rejected {
                        addr: self.addr,
                        proto: Proto::Tcp,
                        rejection: Rejection::Undecodable,
                    });
                }
            };
            self.tcp.put(stream, Instant::now(), self.max_idle);
            return Ok(Reply::Message(message));
        }
    }

    /// Idle connections (UDP, TCP), for tests.
    #[cfg(test)]
    pub(crate) fn idle(&self) -> (usize, usize) {
        (self.udp.len(), self.tcp.len())
    }
}

/// [`judge`] for the `forward_reply` fuzz target (not a stable API).
#[doc(hidden)]
pub mod fuzz {
    use hickory_proto::op::{Message, Query};

    use super::{Expected, Verdict, judge};

    /// Judges `reply` as the answer to the query `query` (wire bytes with one question):
    /// `Some(true)` if it would be believed (as a full reply, or as an oversized one cut at the
    /// buffer when `oversized`), `Some(false)` if dropped, `None` if `query` is not usable.
    pub fn believed(query: &[u8], reply: &[u8], oversized: bool) -> Option<bool> {
        let query = Message::from_vec(query).ok()?;
        let question: &Query = match query.queries.as_slice() {
            [q] => q,
            _ => return None,
        };
        let expected = Expected {
            id: query.metadata.id,
            question,
        };
        Some(match judge(expected, reply, oversized) {
            Verdict::Accept(_) | Verdict::Overflow => true,
            Verdict::Reject(_) => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::{DNSClass, Name, RecordType};

    use super::*;

    #[test]
    fn pool_expires_idle_connections() {
        let pool: Pool<u32> = Pool::default();
        let t0 = Instant::now();
        let expire = Duration::from_secs(10);
        pool.put(1, t0, 0);
        pool.put(2, t0 + Duration::from_secs(5), 0);
        // Newest first.
        assert_eq!(pool.take(t0 + Duration::from_secs(6), expire), Some(2));
        // 1 is 10 s idle at t0+10: closed, not handed out.
        assert_eq!(pool.take(t0 + Duration::from_secs(10), expire), None);
        assert_eq!(pool.len(), 0);
    }

    #[test]
    fn pool_caps_idle_connections() {
        let pool: Pool<u32> = Pool::default();
        let t0 = Instant::now();
        for i in 0..5 {
            pool.put(i, t0, 2);
        }
        assert_eq!(pool.len(), 2);
        assert_eq!(pool.take(t0, Duration::from_secs(1)), Some(4));
        assert_eq!(pool.take(t0, Duration::from_secs(1)), Some(3));
        assert_eq!(pool.take(t0, Duration::from_secs(1)), None);
    }

    #[test]
    fn pool_reap_closes_only_the_expired() {
        let pool: Pool<u32> = Pool::default();
        let t0 = Instant::now();
        let s = Duration::from_secs;
        pool.put(1, t0, 0);
        pool.put(2, t0 + s(4), 0);
        // Out of order (a slow thread): kept in order, idle from the newest time.
        pool.put(3, t0 + s(3), 0);
        pool.put(4, t0 + s(8), 0);
        assert_eq!(pool.reap(t0 + s(9), s(10)), 0);
        assert_eq!(pool.reap(t0 + s(10), s(10)), 1, "1 is 10 s idle");
        assert_eq!(pool.reap(t0 + s(14), s(10)), 2, "2 and 3 idle since +4");
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.take(t0 + s(17), s(10)), Some(4));
    }

    fn question() -> Query {
        Query::query(Name::from_ascii("Www.Example.org.").unwrap(), RecordType::A)
    }

    fn reply_bytes(edit: impl FnOnce(&mut Message)) -> Vec<u8> {
        let mut msg = Message::new(0x1234, MessageType::Response, OpCode::Query);
        msg.add_query(question());
        edit(&mut msg);
        msg.to_vec().unwrap()
    }

    fn verdict(bytes: &[u8], oversized: bool) -> Result<(), Rejection> {
        let q = question();
        let expected = Expected {
            id: 0x1234,
            question: &q,
        };
        match judge(expected, bytes, oversized) {
            Verdict::Accept(_) if !oversized => Ok(()),
            Verdict::Overflow if oversized => Ok(()),
            Verdict::Reject(r) => Err(r),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn judge_accepts_only_the_reply_to_the_question_asked() {
        let ok = reply_bytes(|m| m.metadata.response_code = ResponseCode::NXDomain);
        assert_eq!(verdict(&ok, false), Ok(()));
        let upper = reply_bytes(|m| {
            m.queries[0].set_name(Name::from_ascii("WWW.EXAMPLE.ORG.").unwrap());
        });
        assert_eq!(verdict(&upper, false), Ok(()), "name case is ignored");
        let cases: Vec<(Vec<u8>, Rejection)> = vec![
            (ok[..11].to_vec(), Rejection::Short),
            (reply_bytes(|m| m.metadata.id = 0x1235), Rejection::OtherId),
            (ok[..20].to_vec(), Rejection::Undecodable),
            (
                reply_bytes(|m| m.metadata.message_type = MessageType::Query),
                Rejection::NotResponse,
            ),
            (
                reply_bytes(|m| m.metadata.op_code = OpCode::Status),
                Rejection::OtherOpcode,
            ),
            (
                reply_bytes(|m| {
                    m.queries[0].set_name(Name::from_ascii("www.example.com.").unwrap());
                }),
                Rejection::OtherQuestion,
            ),
            (
                reply_bytes(|m| {
                    m.queries[0].set_query_type(RecordType::AAAA);
                }),
                Rejection::OtherQuestion,
            ),
            (
                reply_bytes(|m| {
                    m.queries[0].set_query_class(DNSClass::CH);
                }),
                Rejection::OtherQuestion,
            ),
            (reply_bytes(|m| m.queries.clear()), Rejection::OtherQuestion),
            (
                reply_bytes(|m| {
                    m.add_query(question());
                }),
                Rejection::OtherQuestion,
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(verdict(&bytes, false), Err(want), "{bytes:02x?}");
            assert_eq!(verdict(&bytes, true), Err(want), "oversized {bytes:02x?}");
        }
    }

    #[test]
    fn judge_reads_only_header_and_question_of_an_oversized_reply() {
        // Cut inside the first answer record: undecodable whole, fine as an oversized reply.
        let full = reply_bytes(|m| {
            for i in 0..40u8 {
                m.add_answer(hickory_proto::rr::Record::from_rdata(
                    Name::from_ascii("www.example.org.").unwrap(),
                    60,
                    hickory_proto::rr::RData::A(hickory_proto::rr::rdata::A([192, 0, 2, i].into())),
                ));
            }
        });
        let cut = &full[..40];
        assert_eq!(verdict(cut, true), Ok(()));
        assert_eq!(verdict(cut, false), Err(Rejection::Undecodable));
    }

    #[test]
    fn mismatches_decide_formerr_and_outrank_noise() {
        assert!(Rejection::NotResponse.is_mismatch());
        assert!(Rejection::OtherQuestion.is_mismatch());
        assert!(!Rejection::Undecodable.is_mismatch());
        assert!(!Rejection::OtherId.is_mismatch());
        let kept = Rejection::worse(Some(Rejection::NotResponse), Rejection::OtherId);
        assert_eq!(kept, Rejection::NotResponse);
        assert_eq!(
            Rejection::worse(Some(Rejection::OtherId), Rejection::OtherQuestion),
            Rejection::OtherQuestion
        );
    }

    #[test]
    fn fuzz_entry_point_agrees_with_judge() {
        let mut query = Message::new(0x1234, MessageType::Query, OpCode::Query);
        query.add_query(question());
        let query = query.to_vec().unwrap();
        assert_eq!(
            fuzz::believed(&query, &reply_bytes(|_| {}), false),
            Some(true)
        );
        assert_eq!(
            fuzz::believed(&query, &query, false),
            Some(false),
            "an echo"
        );
        assert_eq!(fuzz::believed(&[0; 3], &query, false), None);
    }

    #[test]
    fn socket_tickets_count_open_sockets_up_to_the_limit() {
        let conns = Connections::new(
            "127.0.0.1:53".parse().unwrap(),
            Duration::from_secs(1),
            0,
            2,
        );
        let a = conns.ticket().unwrap();
        let b = conns.ticket().unwrap();
        assert!(matches!(
            conns.ticket(),
            Err(ExchangeError::Busy { limit: 2, .. })
        ));
        assert_eq!(conns.open(), 2, "a refused ticket is given back");
        drop(a);
        assert_eq!(conns.open(), 1);
        let _c = conns.ticket().unwrap();
        drop(b);
        assert_eq!(conns.open(), 1);
    }

    #[test]
    fn a_shared_budget_caps_the_sockets_of_upstreams_together() {
        let budget = Arc::new(Budget::new(3));
        let conns = |port: u16| {
            Connections::new(
                SocketAddr::from(([127, 0, 0, 1], port)),
                Duration::from_secs(1),
                0,
                2,
            )
            .with_budget(Arc::clone(&budget))
        };
        let (x, y) = (conns(53), conns(54));
        let x1 = x.ticket().unwrap();
        let _x2 = x.ticket().unwrap();
        let _y1 = y.ticket().unwrap();
        // y's own share (2) has room, the budget (3) has none.
        assert!(matches!(
            y.ticket(),
            Err(ExchangeError::Busy { limit: 3, .. })
        ));
        assert_eq!(
            budget.open.load(Ordering::Acquire),
            3,
            "a refusal gives back"
        );
        assert_eq!(y.open(), 1);
        drop(x1);
        let _y2 = y.ticket().unwrap();
        assert_eq!(budget.open.load(Ordering::Acquire), 3);
    }
}
