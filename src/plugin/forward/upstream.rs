//! One upstream resolver: pooled connected UDP sockets and TCP connections (idle ones closed
//! after `expire`), a random query id per exchange, replies read until id and question match.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// Transport of one exchange with an upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Proto {
    Udp,
    Tcp,
}

/// Why an exchange with an upstream produced no usable reply.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    #[error("upstream {addr} over {proto:?}: no reply within {timeout:?}")]
    Timeout {
        addr: SocketAddr,
        proto: Proto,
        timeout: Duration,
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
    #[error("upstream {addr} over {proto:?}: undecodable reply: {message}")]
    Malformed {
        addr: SocketAddr,
        proto: Proto,
        message: String,
    },
}

/// The reply of an exchange.
#[derive(Debug)]
pub(crate) enum Reply {
    /// A decoded reply whose id (already restored by the caller) and question match.
    Message(Box<Message>),
    /// The reply's id matched but its question did not (CoreDNS answers FORMERR).
    QuestionMismatch,
    /// A UDP reply larger than our receive buffer: passed on as an empty truncated answer.
    Overflow,
}

/// Idle connections of one kind, newest last. `now` is a parameter so tests control time.
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
    /// The most recently used connection not idle longer than `expire`; expired ones are closed.
    pub(crate) fn take(&self, now: Instant, expire: Duration) -> Option<T> {
        let mut idle = self.idle.lock().ok()?;
        idle.retain(|(_, since)| now.saturating_duration_since(*since) < expire);
        idle.pop().map(|(conn, _)| conn)
    }

    /// Returns a connection after a successful exchange; beyond `max_idle` (0 = no limit) the
    /// oldest one is closed.
    pub(crate) fn put(&self, conn: T, now: Instant, max_idle: usize) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push((conn, now));
            if max_idle > 0 && idle.len() > max_idle {
                let excess = idle.len() - max_idle;
                idle.drain(..excess);
            }
        }
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
    udp: Pool<UdpSocket>,
    tcp: Pool<TcpStream>,
}

/// The request to send: encoded once per query, the id patched per exchange.
pub(crate) struct Request<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) question: &'a Query,
    /// Bytes a UDP reply may have (the advertised EDNS size, or 512).
    pub(crate) udp_size: u16,
}

impl Connections {
    pub(crate) fn new(addr: SocketAddr, expire: Duration, max_idle: u32) -> Self {
        Connections {
            addr,
            expire,
            max_idle: usize::try_from(max_idle).unwrap_or(usize::MAX),
            udp: Pool::default(),
            tcp: Pool::default(),
        }
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
        let fut = async {
            match proto {
                Proto::Udp => self.udp_exchange(&bytes, request, id, now).await,
                Proto::Tcp => match self.tcp_exchange(&bytes, request, id, now, true).await {
                    Err(ExchangeError::CachedClosed { .. }) => {
                        self.tcp_exchange(&bytes, request, id, now, false).await
                    }
                    other => other,
                },
            }
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(result) => result,
            Err(_) => Err(ExchangeError::Timeout {
                addr: self.addr,
                proto,
                timeout,
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

    async fn udp_socket(&self, now: Instant) -> Result<UdpSocket, ExchangeError> {
        if let Some(sock) = self.udp.take(now, self.expire) {
            return Ok(sock);
        }
        let local: SocketAddr = if self.addr.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let sock = UdpSocket::bind(local).await.map_err(self.io(Proto::Udp))?;
        sock.connect(self.addr).await.map_err(self.io(Proto::Udp))?;
        Ok(sock)
    }

    async fn udp_exchange(
        &self,
        bytes: &[u8],
        request: &Request<'_>,
        id: u16,
        now: Instant,
    ) -> Result<Reply, ExchangeError> {
        let sock = self.udp_socket(now).await?;
        sock.send(bytes).await.map_err(self.io(Proto::Udp))?;
        // One byte more than allowed tells an oversized reply from one that just fits.
        let limit = usize::from(request.udp_size.max(512));
        let mut buf = vec![0u8; limit + 1];
        loop {
            let n = sock.recv(&mut buf).await.map_err(self.io(Proto::Udp))?;
            let Some(reply) = buf.get(..n) else { continue };
            if reply.len() < 12 || reply[..2] != id.to_be_bytes() {
                // A late reply to an earlier query on this socket, or noise: keep waiting.
                continue;
            }
            if n > limit {
                return Ok(Reply::Overflow);
            }
            let reply = self.decode(reply, request, Proto::Udp)?;
            self.udp.put(sock, now, self.max_idle);
            return Ok(reply);
        }
    }

    async fn tcp_exchange(
        &self,
        bytes: &[u8],
        request: &Request<'_>,
        id: u16,
        now: Instant,
        may_reuse: bool,
    ) -> Result<Reply, ExchangeError> {
        let pooled = if may_reuse {
            self.tcp.take(now, self.expire)
        } else {
            None
        };
        let reused = pooled.is_some();
        let mut stream = match pooled {
            Some(stream) => stream,
            None => {
                let stream = TcpStream::connect(self.addr)
                    .await
                    .map_err(self.io(Proto::Tcp))?;
                let _ = stream.set_nodelay(true);
                stream
            }
        };
        let closed = |e: io::Error| {
            if reused {
                ExchangeError::CachedClosed { addr: self.addr }
            } else {
                self.io(Proto::Tcp)(e)
            }
        };
        let len = u16::try_from(bytes.len()).map_err(|_| ExchangeError::Malformed {
            addr: self.addr,
            proto: Proto::Tcp,
            message: "request longer than 65535 bytes".to_owned(),
        })?;
        let mut framed = Vec::with_capacity(bytes.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(bytes);
        stream.write_all(&framed).await.map_err(closed)?;
        let mut first = true;
        loop {
            let mut len = [0u8; 2];
            let read = stream.read_exact(&mut len).await;
            if let Err(e) = read {
                return Err(if first {
                    closed(e)
                } else {
                    self.io(Proto::Tcp)(e)
                });
            }
            first = false;
            let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
            stream
                .read_exact(&mut reply)
                .await
                .map_err(self.io(Proto::Tcp))?;
            if reply.len() < 12 || reply[..2] != id.to_be_bytes() {
                continue;
            }
            let reply = self.decode(&reply, request, Proto::Tcp)?;
            self.tcp.put(stream, now, self.max_idle);
            return Ok(reply);
        }
    }

    fn decode(
        &self,
        bytes: &[u8],
        request: &Request<'_>,
        proto: Proto,
    ) -> Result<Reply, ExchangeError> {
        let message = Message::from_vec(bytes).map_err(|e| ExchangeError::Malformed {
            addr: self.addr,
            proto,
            message: e.to_string(),
        })?;
        let matches = match message.queries.as_slice() {
            // Name equality ignores case. Some servers drop the question from error replies (FORMERR, NOTIMP).
            [] => true,
            [q] => {
                q.query_type() == request.question.query_type()
                    && q.query_class() == request.question.query_class()
                    && q.name() == request.question.name()
            }
            _ => false,
        };
        if matches {
            Ok(Reply::Message(Box::new(message)))
        } else {
            Ok(Reply::QuestionMismatch)
        }
    }

    /// Idle connections (UDP, TCP), for tests.
    #[cfg(test)]
    pub(crate) fn idle(&self) -> (usize, usize) {
        (self.udp.len(), self.tcp.len())
    }
}

#[cfg(test)]
mod tests {
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
}
