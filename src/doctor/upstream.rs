//! The `upstream` checks: every `forward` upstream answers its health-check question (`. NS`, or
//! the `health_check ... domain` name) over UDP and over TCP within forward's read timeout.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::Check;
use super::corefile::Setup;

const GROUP: &str = "upstream";

/// How long one exchange may take: forward's `read_timeout` (CoreDNS's default, 2 s).
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// Why an upstream did not answer.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the reply does not decode: {0}")]
    Decode(String),
    #[error("the reply has id {got}, expected {want}")]
    WrongId { got: u16, want: u16 },
    #[error("cannot encode the question: {0}")]
    Encode(String),
}

/// What one successful exchange returned.
#[derive(Clone, Debug)]
pub struct Probe {
    pub rcode: String,
    pub elapsed: Duration,
}

fn question(name: &Name, recursion: bool) -> Result<(u16, Vec<u8>), ProbeError> {
    let id: u16 = rand::random();
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = recursion;
    msg.add_query(Query::query(name.clone(), RecordType::NS));
    let bytes = msg
        .to_vec()
        .map_err(|e| ProbeError::Encode(e.to_string()))?;
    Ok((id, bytes))
}

fn decode(bytes: &[u8], id: u16, started: Instant) -> Result<Probe, ProbeError> {
    let reply = Message::from_vec(bytes).map_err(|e| ProbeError::Decode(e.to_string()))?;
    if reply.metadata.id != id {
        return Err(ProbeError::WrongId {
            got: reply.metadata.id,
            want: id,
        });
    }
    Ok(Probe {
        rcode: crate::dns::rcode::rcode_name(reply.metadata.response_code).map_or_else(
            || format!("{:?}", reply.metadata.response_code),
            str::to_owned,
        ),
        elapsed: started.elapsed(),
    })
}

/// One question over UDP.
pub async fn udp(addr: SocketAddr, name: &Name, recursion: bool) -> Result<Probe, ProbeError> {
    let (id, bytes) = question(name, recursion)?;
    let started = Instant::now();
    let exchange = async {
        let local: SocketAddr = if addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let socket = UdpSocket::bind(local).await?;
        socket.connect(addr).await?;
        socket.send(&bytes).await?;
        let mut buf = vec![0u8; 65535];
        loop {
            let n = socket.recv(&mut buf).await?;
            // A stray datagram with another id is not the reply; keep waiting.
            match decode(buf.get(..n).unwrap_or_default(), id, started) {
                Err(ProbeError::WrongId { .. }) => continue,
                other => return other,
            }
        }
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| ProbeError::Timeout(TIMEOUT))?
}

/// One question over TCP (RFC 1035 §4.2.2 length prefix).
pub async fn tcp(addr: SocketAddr, name: &Name, recursion: bool) -> Result<Probe, ProbeError> {
    let (id, bytes) = question(name, recursion)?;
    let started = Instant::now();
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        let len = u16::try_from(bytes.len()).map_err(|e| ProbeError::Encode(e.to_string()))?;
        let mut frame = Vec::with_capacity(bytes.len() + 2);
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(&bytes);
        stream.write_all(&frame).await?;
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await?;
        let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut reply).await?;
        decode(&reply, id, started)
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| ProbeError::Timeout(TIMEOUT))?
}

/// Probes every distinct upstream of every `forward`, UDP and TCP concurrently.
pub async fn check(setup: &Setup) -> Vec<Check> {
    let mut probes = Vec::new();
    let mut seen = Vec::new();
    for forward in &setup.forwards {
        let name = forward.config.health_check_domain.clone();
        let recursion = forward.config.health_check_recursion;
        let force_tcp = forward.config.force_tcp;
        for target in &forward.targets {
            if seen.contains(&(target.addr, name.clone())) {
                continue;
            }
            seen.push((target.addr, name.clone()));
            let from = forward.config.from.clone();
            let (addr, name) = (target.addr, name.clone());
            probes.push(async move {
                let (u, t) = tokio::join!(udp(addr, &name, recursion), tcp(addr, &name, recursion));
                vec![
                    verdict(&from, addr, &name, "udp", u, force_tcp),
                    verdict(&from, addr, &name, "tcp", t, false),
                ]
            });
        }
    }
    futures_util::future::join_all(probes)
        .await
        .into_iter()
        .flatten()
        .collect()
}

fn verdict(
    from: &Name,
    addr: SocketAddr,
    name: &Name,
    transport: &str,
    result: Result<Probe, ProbeError>,
    unused: bool,
) -> Check {
    let id = format!("upstream.{transport}.{addr}");
    match result {
        Ok(probe) => Check::ok(
            GROUP,
            id,
            format!(
                "{addr} ({transport}, forward {from}): answers `{name} NS` with {} in {} ms",
                probe.rcode,
                probe.elapsed.as_millis()
            ),
        ),
        Err(error) if unused => Check::warn(
            GROUP,
            id,
            format!(
                "{addr} ({transport}, forward {from}): `{name} NS`: {error} (not used: `force_tcp`)"
            ),
            "nothing to do while `force_tcp` is set; without it most queries go over UDP",
        ),
        Err(error) => Check::fail(
            GROUP,
            id,
            format!("{addr} ({transport}, forward {from}): `{name} NS`: {error}"),
            format!(
                "check that {addr} runs a resolver reachable from here over {transport} (firewalls, \
                 NetworkPolicy egress to port {}), or forward to another upstream",
                addr.port()
            ),
        ),
    }
}
