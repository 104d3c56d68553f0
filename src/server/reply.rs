//! Turns a plugin chain's result into the wire reply: header flags, question echo, EDNS OPT
//! mirroring (which also sets hickory's UDP size limit and so truncation), rcode for errors.
//! The only place that knows the reply's wire shape.

use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, ResponseCode};
use hickory_proto::serialize::binary::{BinDecoder, BinEncoder};
use hickory_server::server::{Request, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponseBuilder, Queries};
use tracing::debug;

use crate::plugin::{Answer, PluginError};

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

/// Sends the chain's result. `Err` becomes its rcode (SERVFAIL by default) with no records.
pub(crate) async fn send_result<R: ResponseHandler>(
    request: &Request,
    mut response_handle: R,
    result: &Result<Answer, PluginError>,
    edns: Option<&Edns>,
) -> ResponseInfo {
    send_result_to(request, &mut response_handle, result, edns).await
}

/// Like [`send_result`], also returning the size of the reply on the wire (0 if it could not be
/// encoded): UDP replies report what they sent; for TCP the reply is encoded once more.
pub(crate) async fn send_result_sized<R: ResponseHandler>(
    request: &Request,
    mut response_handle: R,
    result: &Result<Answer, PluginError>,
    edns: Option<&Edns>,
) -> (ResponseInfo, usize) {
    let info = send_result_to(request, &mut response_handle, result, edns).await;
    let size = match super::udp::sent_size(&response_handle) {
        Some(size) => size,
        None => encoded_size(request, result, edns),
    };
    (info, size)
}

/// Size of the TCP reply to `request` (no size limit but 64 KiB).
fn encoded_size(
    request: &Request,
    result: &Result<Answer, PluginError>,
    edns: Option<&Edns>,
) -> usize {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    let mut builder = MessageResponseBuilder::new(&request.queries, None);
    if let Some(edns) = edns {
        builder.edns(edns);
    }
    let mut wire = Vec::with_capacity(512);
    let mut encoder = BinEncoder::new(&mut wire);
    let emitted = match result {
        Ok(answer) => {
            metadata.response_code = answer.rcode;
            builder
                .build(
                    metadata,
                    answer.answers.iter(),
                    answer.authorities.iter(),
                    std::iter::empty(),
                    answer.additionals.iter(),
                )
                .destructive_emit(&mut encoder)
        }
        Err(e) => {
            metadata.response_code = e.rcode();
            builder
                .build_no_records(metadata)
                .destructive_emit(&mut encoder)
        }
    };
    emitted.map_or(0, |_| wire.len())
}

async fn send_result_to<R: ResponseHandler>(
    request: &Request,
    response_handle: &mut R,
    result: &Result<Answer, PluginError>,
    edns: Option<&Edns>,
) -> ResponseInfo {
    let answer = match result {
        Ok(answer) => answer,
        Err(e) => return send_rcode_to(request, response_handle, e.rcode(), edns, true).await,
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
    send(response_handle, response, metadata).await
}

/// Sends an empty reply with `rcode`; the question is echoed only when `echo_question`.
pub(crate) async fn send_rcode<R: ResponseHandler>(
    request: &Request,
    mut response_handle: R,
    rcode: ResponseCode,
    edns: Option<&Edns>,
    echo_question: bool,
) -> ResponseInfo {
    send_rcode_to(request, &mut response_handle, rcode, edns, echo_question).await
}

async fn send_rcode_to<R: ResponseHandler>(
    request: &Request,
    response_handle: &mut R,
    rcode: ResponseCode,
    edns: Option<&Edns>,
    echo_question: bool,
) -> ResponseInfo {
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
    send(response_handle, response, metadata).await
}

async fn send<'a, R: ResponseHandler>(
    response_handle: &mut R,
    response: hickory_server::zone_handler::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
        impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
        impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
        impl Iterator<Item = &'a hickory_proto::rr::Record> + Send + 'a,
    >,
    metadata: Metadata,
) -> ResponseInfo {
    match response_handle.send_response(response).await {
        Ok(info) => info,
        Err(error) => {
            // The client is gone or the socket failed; nothing else to do for this query.
            debug!(%error, id = metadata.id, "failed to send reply");
            not_sent(metadata)
        }
    }
}

/// The `ResponseInfo` of a reply that was not sent.
pub(crate) fn not_sent(metadata: Metadata) -> ResponseInfo {
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}
