//! The TCP listener: accepts connections and answers the queries of each connection in turn
//! (RFC 1035 §4.2.2 framing: a two-byte length before each message), through the same `Handler`
//! as UDP. `reply` encodes each reply once; this module frames and writes it, so the size the
//! metrics see is the size the client reads.
//!
//! Why not hickory's TCP server: its response handle encodes the reply itself and tells nobody
//! its size, so measuring the reply meant encoding it a second time.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Header, MessageType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::timeout;
use tracing::debug;

use super::handler::Handler;
use super::reply::{self, Transmit};
use super::udp::acceptable_source;
use crate::plugin::Transport;

/// Pause after a failed `accept` (out of file descriptors and the like) before the next one.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// Serves `listener` until the task is aborted; aborting it closes every connection too.
/// A connection idle for `idle` (between or within messages) is closed.
pub(crate) async fn serve(listener: TcpListener, handler: Arc<Handler>, idle: Duration) {
    let mut connections = JoinSet::new();
    loop {
        let (stream, src) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                debug!(%error, "TCP accept error");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        if !acceptable_source(src) {
            continue;
        }
        connections.spawn(connection(stream, src, Arc::clone(&handler), idle));
        // Reap the finished ones without waiting.
        while connections.try_join_next().is_some() {}
    }
}

/// Answers the messages of one connection, one after the other, until the client closes it,
/// sends something unframeable or stays idle for `idle`.
async fn connection(stream: TcpStream, src: SocketAddr, handler: Arc<Handler>, idle: Duration) {
    let (mut read, write) = stream.into_split();
    let mut out = TcpReply {
        write,
        frame: Vec::with_capacity(514),
    };
    loop {
        let len = match timeout(idle, read.read_u16()).await {
            Ok(Ok(len)) => len,
            _ => return,
        };
        let mut message = vec![0; usize::from(len)];
        if !matches!(
            timeout(idle, read.read_exact(&mut message)).await,
            Ok(Ok(_))
        ) {
            return;
        }
        // Shorter than a header: no reply. A response (QR=1): no reply (no reflection).
        let Ok(header) = Header::read(&mut BinDecoder::new(&message)) else {
            continue;
        };
        if header.metadata.message_type == MessageType::Response {
            continue;
        }
        match Request::from_bytes(message, src, Protocol::Tcp) {
            Ok(request) => handler.handle(&request, &mut out).await,
            Err(error) => {
                debug!(%src, %error, "undecodable request");
                reply::send_formerr(&mut out, &header).await;
            }
        }
    }
}

/// Writes each reply to the connection with its length in front.
struct TcpReply {
    write: OwnedWriteHalf,
    /// The framed reply, reused from one reply to the next.
    frame: Vec<u8>,
}

impl Transmit for TcpReply {
    fn transport(&self) -> Transport {
        Transport::Tcp
    }

    async fn transmit(&mut self, wire: &[u8]) -> io::Result<()> {
        let len = u16::try_from(wire.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "reply over 64 KiB"))?;
        self.frame.clear();
        self.frame.extend_from_slice(&len.to_be_bytes());
        self.frame.extend_from_slice(wire);
        self.write.write_all(&self.frame).await
    }
}
