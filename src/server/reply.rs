//! Turns a plugin chain's result into the wire reply: header flags, question echo, EDNS OPT
//! mirroring (which also sets hickory's UDP size limit and so truncation), rcode for errors.
//! The only place that knows the reply's wire shape.

use std::future::Future;
use std::io;

use hickory_proto::ProtoError;
use hickory_proto::op::{Edns, Header, HeaderCounts, MessageType, Metadata, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinDecoder, BinEncodable, BinEncoder};
use hickory_server::server::Request;
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder, Queries};
use tracing::debug;

use crate::plugin::{Answer, PluginError, Transport};

/// Largest UDP payload we answer with. Clients may advertise up to 65535, but hickory receives
/// UDP into 4096-byte buffers and large datagrams fragment; 4096 is also what CoreDNS's own
/// clients (and most resolvers) advertise. Below 512 counts as 512 (RFC 6891 §6.2.5).
pub(crate) const MAX_UDP_PAYLOAD: u16 = 4096;

/// The OPT record of the reply: present iff the request had one; same UDP size clamped to
/// [512, MAX_UDP_PAYLOAD], DO copied, version 0, other flags and options cleared.
pub(crate) fn mirror_edns(request: Option<&Edns>) -> Option<Edns> {
    request.map(|req| {
        let mut edns = Edns::new();
        edns.set_max_payload(req.max_payload().clamp(512, MAX_UDP_PAYLOAD));
        edns.set_dnssec_ok(req.flags().dnssec_ok);
        edns.set_version(0);
        edns
    })
}

/// Where an encoded reply goes: a UDP socket, a TCP connection, memory (the harness).
pub(crate) trait Transmit: Send {
    /// The transport, which sets the size limit: UDP replies fit the client's OPT size (512
    /// without EDNS) and are truncated with TC set; TCP replies may take 64 KiB.
    fn transport(&self) -> Transport;

    /// Sends one encoded reply.
    fn transmit(&mut self, wire: &[u8]) -> impl Future<Output = io::Result<()>> + Send;
}

/// Sends the chain's result. `Err` becomes its rcode (SERVFAIL by default) with no records.
/// Returns the reply's size on the wire, or `None` when it was not sent.
pub(crate) async fn send_result<T: Transmit>(
    request: &Request,
    out: &mut T,
    result: &Result<Answer, PluginError>,
    edns: Option<&Edns>,
) -> Option<usize> {
    let answer = match result {
        Ok(answer) => answer,
        Err(e) => return send_rcode(request, out, e.rcode(), edns, true).await,
    };
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = answer.rcode;
    metadata.authoritative = answer.authoritative;
    metadata.recursion_available = answer.recursion_available;
    metadata.authentic_data = answer.authentic_data;
    metadata.truncation = answer.truncated;
    let mut builder = MessageResponseBuilder::new(&request.queries, None);
    if let Some(edns) = edns {
        builder.edns(edns);
    }
    let response = builder.build(
        metadata,
        answer.answers.iter(),
        answer.authorities.iter(),
        std::iter::empty(),
        answer.additionals.iter(),
    );
    send(out, response, metadata).await
}

/// Sends an empty reply with `rcode`; the question is echoed only when `echo_question`.
/// Returns the reply's size on the wire, or `None` when it was not sent.
pub(crate) async fn send_rcode<T: Transmit>(
    request: &Request,
    out: &mut T,
    rcode: ResponseCode,
    edns: Option<&Edns>,
    echo_question: bool,
) -> Option<usize> {
    // Reading zero questions from an empty buffer cannot fail; were it to, the question is echoed.
    let empty = (!echo_question)
        .then(|| Queries::read(&mut BinDecoder::new(&[]), 0).ok())
        .flatten();
    let queries = empty.as_ref().unwrap_or(&request.queries);
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = rcode;
    let mut builder = MessageResponseBuilder::new(queries, None);
    if let Some(edns) = edns {
        builder.edns(edns);
    }
    let response = builder.build_no_records(metadata);
    send(out, response, metadata).await
}

/// Encodes `response` once, with the size limit of `out`'s transport, and sends it.
async fn send<'a, T: Transmit>(
    out: &mut T,
    response: MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
    metadata: Metadata,
) -> Option<usize> {
    let wire = match encode(out.transport(), response, metadata) {
        Ok(wire) => wire,
        Err(error) => {
            debug!(%error, id = metadata.id, "failed to encode reply");
            return None;
        }
    };
    match out.transmit(&wire).await {
        Ok(()) => Some(wire.len()),
        Err(error) => {
            // The client is gone or the socket failed; nothing else to do for this query.
            debug!(%error, id = metadata.id, "failed to send reply");
            None
        }
    }
}

/// The reply's wire form. UDP: within the client's size (hickory's encoder truncates and sets
/// TC). TCP: up to 64 KiB; a reply that cannot be encoded becomes a bare SERVFAIL, as hickory's
/// TCP server answers.
fn encode<'a>(
    transport: Transport,
    response: MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
    metadata: Metadata,
) -> Result<Vec<u8>, ProtoError> {
    let max = match transport {
        Transport::Udp => response.edns().map_or(512, |edns| edns.max_payload()),
        Transport::Tcp => u16::MAX,
    };
    let mut wire = Vec::with_capacity(512);
    let mut encoder = BinEncoder::new(&mut wire);
    encoder.set_max_size(max);
    match (response.destructive_emit(&mut encoder), transport) {
        (Ok(_), _) => Ok(wire),
        (Err(error), Transport::Udp) => Err(error),
        (Err(error), Transport::Tcp) => {
            debug!(%error, id = metadata.id, "TCP reply too large, sending SERVFAIL");
            let mut failed = Metadata::new(metadata.id, MessageType::Response, metadata.op_code);
            failed.response_code = ResponseCode::ServFail;
            wire.clear();
            Header {
                metadata: failed,
                counts: HeaderCounts::default(),
            }
            .emit(&mut BinEncoder::new(&mut wire))?;
            Ok(wire)
        }
    }
}

/// FORMERR to a request whose header could be read but not its body (no question echoed).
pub(crate) async fn send_formerr<T: Transmit>(out: &mut T, header: &Header) -> Option<usize> {
    // Reading zero questions from an empty buffer cannot fail.
    let empty = Queries::read(&mut BinDecoder::new(&[]), 0).ok()?;
    let response = MessageResponseBuilder::new(&empty, None)
        .error_msg(&header.metadata, ResponseCode::FormErr);
    send(out, response, header.metadata).await
}
