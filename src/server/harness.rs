//! The request path without sockets: raw request bytes in, encoded reply bytes out, through the
//! same handler, router and chains a listener uses. For fuzz targets and in-process benchmarks;
//! the network listeners never use it.

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;

use super::handler::Handler;
use super::reply::Transmit;
use super::{Inflight, plan};
use crate::config::Config;
use crate::plugin::Transport;

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
        let mut capture = Capture {
            transport: if tcp { Transport::Tcp } else { Transport::Udp },
            out: None,
        };
        self.handler.handle(&request, &mut capture).await;
        capture.out
    }
}

/// Keeps the encoded reply in memory (encoded with the size limit a socket of its transport
/// would use).
struct Capture {
    transport: Transport,
    out: Option<Vec<u8>>,
}

impl Transmit for Capture {
    fn transport(&self) -> Transport {
        self.transport
    }

    async fn transmit(&mut self, wire: &[u8]) -> std::io::Result<()> {
        self.out = Some(wire.to_vec());
        Ok(())
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
