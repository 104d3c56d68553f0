//! The request path without sockets: raw request bytes in, encoded reply bytes out, through the
//! same handler, router and chains a listener uses. For fuzz targets and in-process benchmarks;
//! the network listeners never use it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use hickory_proto::serialize::binary::BinEncoder;
use hickory_server::net::NetError;
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::proto::rr::Record;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;

use super::handler::Handler;
use super::{Inflight, plan};
use crate::config::Config;

/// The first listen address of a configuration, served in-process.
pub struct Harness {
    handler: Handler,
}

impl Harness {
    /// The request path of the first listen address of `config`; `None` if it has none.
    /// Plugins are not started (no background tasks), which is what a fuzz target wants.
    pub fn new(config: &Config) -> Option<Harness> {
        let (_, mut router) = plan(config).into_iter().next()?;
        router.set_local(SocketAddr::from(([127, 0, 0, 1], 53)));
        Some(Harness {
            handler: Handler::new(Arc::new(router), Arc::new(Inflight::default())),
        })
    }

    /// Handles one request as if it came from `src` over UDP (`tcp` false) or TCP. Returns the
    /// encoded reply, or `None` when the server would drop the message (undecodable, or no
    /// reply sent).
    pub async fn handle(&self, bytes: &[u8], src: SocketAddr, tcp: bool) -> Option<Vec<u8>> {
        let protocol = if tcp { Protocol::Tcp } else { Protocol::Udp };
        let request = Request::from_bytes(bytes.to_vec(), src, protocol).ok()?;
        let capture = Capture {
            protocol,
            out: Arc::new(Mutex::new(None)),
        };
        self.handler
            .handle_request::<Capture, TokioTime>(&request, capture.clone())
            .await;
        capture.out.lock().ok()?.take()
    }
}

/// A response handle that encodes the reply into memory with the size limit a socket would use.
#[derive(Clone)]
struct Capture {
    protocol: Protocol,
    out: Arc<Mutex<Option<Vec<u8>>>>,
}

#[async_trait]
impl ResponseHandler for Capture {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let max = match (self.protocol, response.edns()) {
            (Protocol::Udp, Some(edns)) => edns.max_payload(),
            (Protocol::Udp, None) => 512,
            _ => u16::MAX,
        };
        let mut bytes = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut bytes);
        encoder.set_max_size(max);
        let info = response.destructive_emit(&mut encoder)?;
        if let Ok(mut slot) = self.out.lock() {
            *slot = Some(bytes);
        }
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RecordType};

    use super::*;

    #[tokio::test]
    async fn whoami_through_the_harness() {
        let config =
            crate::config_from_str(".:53 {\n    whoami\n}\n", "Corefile", Path::new("."), 53)
                .unwrap();
        let harness = Harness::new(&config).unwrap();
        let mut msg = Message::query();
        msg.metadata.id = 4242;
        msg.add_query(Query::query(
            Name::from_ascii("example.org.").unwrap(),
            RecordType::A,
        ));
        let src = SocketAddr::from(([127, 0, 0, 9], 5353));
        let reply = harness
            .handle(&msg.to_vec().unwrap(), src, false)
            .await
            .unwrap();
        let reply = Message::from_vec(&reply).unwrap();
        assert_eq!(reply.metadata.id, 4242);
        let extra: Vec<String> = reply.additionals.iter().map(|r| r.to_string()).collect();
        assert!(extra.iter().any(|r| r.contains("127.0.0.9")), "{extra:?}");
        // Garbage is dropped, never a panic.
        assert!(harness.handle(&[1, 2, 3], src, false).await.is_none());
    }
}
