//! The UDP receive loop: one task per socket receives a datagram, runs the request through the
//! same `Handler` the TCP listener uses, and sends the reply from that task. A request whose
//! chain finishes without waiting (every kubernetes answer) costs no task spawn and no channel
//! hop; one that must wait (a plugin's own query, later an upstream) continues as its own task.
//!
//! Why not hickory's UDP loop: it spawns a task per datagram and hands every reply to a sender
//! task through a channel, so each query paid two cross-thread wake-ups. With `dnsperf` on this
//! 2-core machine that was 8.6 µs of server CPU per query, most of it in the scheduler
//! (`benches/load/dnsperf.sh`; the closing note of the change has the before/after figures).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Waker};

use hickory_proto::op::{Header, HeaderCounts, MessageType, Metadata, ResponseCode};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use tokio::net::UdpSocket;
use tracing::debug;

use super::handler::Handler;
use super::reply::Transmit;
use crate::plugin::Transport;

/// Largest datagram read. Queries are small; this also bounds what a client can make us copy.
const RECV_BUFFER: usize = 4096;
/// Length of a DNS header (RFC 1035 §4.1.1).
const HEADER_LEN: usize = 12;

/// Serves `socket` until the task is aborted.
pub(crate) async fn serve(socket: Arc<UdpSocket>, handler: Arc<Handler>) {
    let mut buf = vec![0u8; RECV_BUFFER];
    loop {
        let (len, src) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(error) => {
                // ICMP errors from earlier sends (connection refused) and the like surface here;
                // the socket itself stays usable.
                debug!(%error, "UDP receive error");
                continue;
            }
        };
        let Some(bytes) = buf.get(..len) else {
            continue;
        };
        if !acceptable_source(src) {
            continue;
        }
        let Some(request) = decode(&socket, bytes, src) else {
            continue;
        };
        let mut reply = UdpReply {
            socket: Arc::clone(&socket),
            dst: src,
        };
        let handler = Arc::clone(&handler);
        let mut task: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
            handler.handle(&request, &mut reply).await;
        });
        // Poll once here: a chain that does not wait completes now, on this task. One that
        // waits is moved to a task of its own (it re-registers its waker when polled there).
        let mut cx = Context::from_waker(Waker::noop());
        if task.as_mut().poll(&mut cx).is_pending() {
            tokio::spawn(task);
        }
    }
}

/// Replies to port 0 or to unspecified/broadcast addresses would go nowhere or to everyone.
pub(super) fn acceptable_source(src: SocketAddr) -> bool {
    if src.port() == 0 {
        return false;
    }
    match src {
        SocketAddr::V4(v4) => !(v4.ip().is_unspecified() || v4.ip().is_broadcast()),
        SocketAddr::V6(v6) => !v6.ip().is_unspecified(),
    }
}

/// Decodes a datagram into a request, reading it once. Shorter than a header, or a response
/// (QR=1): dropped (no reflection). A readable header with an undecodable body: FORMERR, sent
/// here. The datagram is copied once, into the request (hickory's `Request` owns its bytes).
fn decode(socket: &UdpSocket, bytes: &[u8], src: SocketAddr) -> Option<Request> {
    // QR is the top bit of the third byte; checking it needs no decoding.
    match bytes.get(2) {
        Some(flags) if bytes.len() >= HEADER_LEN && flags & 0x80 == 0 => {}
        _ => return None,
    }
    match Request::from_bytes(bytes.to_vec(), src, Protocol::Udp) {
        Ok(request) => Some(request),
        Err(error) => {
            debug!(%src, %error, "undecodable request");
            // Only this rare path reads the header on its own, for the id and opcode.
            let header = Header::read(&mut BinDecoder::new(bytes)).ok()?;
            let mut metadata = Metadata::new(
                header.metadata.id,
                MessageType::Response,
                header.metadata.op_code,
            );
            metadata.response_code = ResponseCode::FormErr;
            let reply = Header {
                metadata,
                counts: HeaderCounts::default(),
            };
            if let Ok(wire) = reply.to_bytes() {
                let _ = socket.try_send_to(&wire, src);
            }
            None
        }
    }
}

/// Sends each reply from the receiving socket (the size limit is `reply`'s: the client's).
struct UdpReply {
    socket: Arc<UdpSocket>,
    dst: SocketAddr,
}

impl Transmit for UdpReply {
    fn transport(&self) -> Transport {
        Transport::Udp
    }

    async fn transmit(&mut self, wire: &[u8]) -> io::Result<()> {
        match self.socket.try_send_to(wire, self.dst) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.socket.send_to(wire, self.dst).await.map(drop)
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hickory_proto::op::{Message, Query as Question};
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{Name, RData, RecordType};

    use async_trait::async_trait;
    use hickory_proto::rr::Record;

    use super::*;
    use crate::plugin::{Answer, Chain, Next, Plugin, PluginError, Query};
    use crate::server::Inflight;
    use crate::server::router::Router;

    /// Answers at once, except for names starting with `slow`, which wait first: the loop must
    /// keep serving while one request waits.
    struct MaybeSlow;

    #[async_trait]
    impl Plugin for MaybeSlow {
        fn name(&self) -> &'static str {
            "whoami"
        }

        async fn serve(&self, query: &Query<'_>, _next: Next<'_>) -> Result<Answer, PluginError> {
            if query.lower.to_string().starts_with("slow") {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            let mut answer = Answer::authoritative(ResponseCode::NoError);
            answer.answers.push(Record::from_rdata(
                query.name.clone(),
                5,
                RData::A(A::new(192, 0, 2, 1)),
            ));
            Ok(answer)
        }
    }

    async fn ask(client: &UdpSocket, server: SocketAddr, id: u16, name: &str) {
        let mut msg = Message::query();
        msg.metadata.id = id;
        msg.add_query(Question::query(
            Name::from_ascii(name).unwrap(),
            RecordType::A,
        ));
        client
            .send_to(&msg.to_vec().unwrap(), server)
            .await
            .unwrap();
    }

    async fn reply_id(client: &UdpSocket) -> u16 {
        let mut buf = [0u8; 512];
        let (len, _) = tokio::time::timeout(Duration::from_secs(3), client.recv_from(&mut buf))
            .await
            .expect("a reply within 3s")
            .unwrap();
        let reply = Message::from_vec(&buf[..len]).unwrap();
        assert_eq!(reply.answers.len(), 1);
        reply.metadata.id
    }

    #[tokio::test]
    async fn a_waiting_request_does_not_hold_up_the_loop() {
        let chain = Arc::new(Chain::new(vec![Arc::new(MaybeSlow) as Arc<dyn Plugin>]));
        let router = Router::new([(Name::root(), chain)]);
        let handler = Arc::new(Handler::new(
            Arc::new(router),
            Arc::new(Inflight::default()),
        ));
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let server = socket.local_addr().unwrap();
        let task = tokio::spawn(serve(socket, handler));
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();

        ask(&client, server, 1, "slow.example.").await;
        ask(&client, server, 2, "fast.example.").await;
        // The fast one is answered first; the slow one still gets its answer (from its task).
        assert_eq!(reply_id(&client).await, 2);
        assert_eq!(reply_id(&client).await, 1);

        // A response (QR=1) is never answered: no reflection.
        let mut msg = Message::query();
        msg.metadata.id = 3;
        msg.metadata.message_type = MessageType::Response;
        client
            .send_to(&msg.to_vec().unwrap(), server)
            .await
            .unwrap();
        ask(&client, server, 4, "fast.example.").await;
        assert_eq!(reply_id(&client).await, 4);
        task.abort();
    }
}
