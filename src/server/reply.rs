//! Turns a plugin chain's result into the wire reply: header flags, question echo, the EDNS OPT
//! record (mirrored from the request as CoreDNS does), rcode for errors, and the size limit of
//! the transport. The only place that knows the reply's wire shape; `wire` packs it.

use std::future::Future;
use std::io;

use hickory_proto::op::{Edns, Header, Metadata, ResponseCode};
use hickory_proto::rr::Record;
use hickory_server::server::Request;
use tracing::debug;

use super::wire::{self, Message, ReplyOpt};
use crate::plugin::{Answer, PluginError, Transport};

/// Largest UDP payload a reply may take, whatever the client advertises: the most an IPv4 UDP
/// datagram can carry (65535 - 20 - 8). CoreDNS uses the advertised size as it is, and fails to
/// send a larger reply at all.
pub(crate) const MAX_UDP_PAYLOAD: u16 = 65_507;
/// Smallest UDP limit: a client without EDNS, or one advertising less (RFC 6891 §6.2.5).
const MIN_UDP_PAYLOAD: u16 = 512;

/// The OPT record of the reply, as CoreDNS's `SizeAndDo` makes it: present iff the request had
/// one; the request's UDP size, DO copied, version 0, and the request's NSID, EXPIRE, COOKIE,
/// TCP-KEEPALIVE and PADDING options echoed.
pub(crate) fn mirror_edns(request: Option<&Edns>) -> Option<ReplyOpt<'_>> {
    request.map(|req| ReplyOpt {
        udp_size: req.max_payload(),
        dnssec_ok: req.flags().dnssec_ok,
        echo: Some(req.options()),
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
    edns: Option<ReplyOpt<'_>>,
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
    let message = Message {
        metadata,
        questions: request.queries.queries(),
        answers: &answer.answers,
        authorities: &answer.authorities,
        additionals: &answer.additionals,
        opt: edns,
    };
    send(out, &message).await
}

/// Sends an empty reply with `rcode`; the question is echoed only when `echo_question`.
/// Returns the reply's size on the wire, or `None` when it was not sent.
pub(crate) async fn send_rcode<T: Transmit>(
    request: &Request,
    out: &mut T,
    rcode: ResponseCode,
    edns: Option<ReplyOpt<'_>>,
    echo_question: bool,
) -> Option<usize> {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = rcode;
    let questions = if echo_question {
        request.queries.queries()
    } else {
        &[]
    };
    let message = Message {
        metadata,
        questions,
        answers: NO_RECORDS,
        authorities: NO_RECORDS,
        additionals: NO_RECORDS,
        opt: edns,
    };
    send(out, &message).await
}

const NO_RECORDS: &[Record] = &[];

/// FORMERR to a request whose header could be read but not its body (no question echoed).
pub(crate) async fn send_formerr<T: Transmit>(out: &mut T, header: &Header) -> Option<usize> {
    let mut metadata = Metadata::response_from_request(&header.metadata);
    metadata.response_code = ResponseCode::FormErr;
    let message = Message {
        metadata,
        questions: &[],
        answers: NO_RECORDS,
        authorities: NO_RECORDS,
        additionals: NO_RECORDS,
        opt: None,
    };
    send(out, &message).await
}

/// The size limit of a reply: TCP 65535; UDP the client's OPT size (at least 512, at most
/// `MAX_UDP_PAYLOAD`), 512 without EDNS.
fn limit(transport: Transport, opt: Option<&ReplyOpt<'_>>) -> usize {
    match transport {
        Transport::Tcp => usize::from(u16::MAX),
        Transport::Udp => usize::from(
            opt.map_or(MIN_UDP_PAYLOAD, |o| o.udp_size)
                .clamp(MIN_UDP_PAYLOAD, MAX_UDP_PAYLOAD),
        ),
    }
}

/// Packs `message` once, within the size limit of `out`'s transport, and sends it.
async fn send<T: Transmit>(out: &mut T, message: &Message<'_>) -> Option<usize> {
    let mut bytes = Vec::with_capacity(512);
    let limit = limit(out.transport(), message.opt.as_ref());
    if let Err(error) = wire::pack(message, limit, &mut bytes) {
        // A record that cannot be written at all: SERVFAIL, question and OPT kept.
        debug!(%error, id = message.metadata.id, "failed to encode reply, sending SERVFAIL");
        let mut metadata = message.metadata;
        metadata.response_code = ResponseCode::ServFail;
        metadata.truncation = false;
        let failed = Message {
            metadata,
            answers: NO_RECORDS,
            authorities: NO_RECORDS,
            additionals: NO_RECORDS,
            ..*message
        };
        if let Err(error) = wire::pack(&failed, limit, &mut bytes) {
            debug!(%error, id = message.metadata.id, "failed to encode SERVFAIL");
            return None;
        }
    }
    match out.transmit(&bytes).await {
        Ok(()) => Some(bytes.len()),
        Err(error) => {
            // The client is gone or the socket failed; nothing else to do for this query.
            debug!(%error, id = message.metadata.id, "failed to send reply");
            None
        }
    }
}
