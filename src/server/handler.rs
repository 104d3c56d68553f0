//! The request handler of one listen address: checks the request (opcode, question count, EDNS
//! version, class), builds the `plugin::Query`, routes it to a chain, hands the result to `reply`
//! and reports the reply's size through the query's `ReplySize`. Never panics on any input.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use hickory_proto::op::{OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, LowerName, Name, RecordType};
use hickory_server::server::Request;

use super::Inflight;
use super::reply::{self, Transmit};
use super::router::Router;
use crate::plugin::{Answer, EdnsInfo, Origin, PluginError, Query, ReplySize, Resolve, Transport};

/// How deep internal queries may nest (an ExternalName pointing at another, ...).
const MAX_INTERNAL_DEPTH: u8 = 8;

/// Serves the requests of one listen address.
#[derive(Clone)]
pub(crate) struct Handler {
    /// Swapped whole by a reload; read per request without a lock.
    router: Arc<ArcSwap<Router>>,
    inflight: Arc<Inflight>,
}

impl Handler {
    /// A handler whose router never changes.
    pub(crate) fn new(router: Arc<Router>, inflight: Arc<Inflight>) -> Self {
        Handler::swappable(Arc::new(ArcSwap::new(router)), inflight)
    }

    /// A handler reading whatever router `router` holds when a request arrives; a request keeps
    /// the router (and its chains) it started with until it is answered.
    pub(crate) fn swappable(router: Arc<ArcSwap<Router>>, inflight: Arc<Inflight>) -> Self {
        Handler { router, inflight }
    }
}

impl Handler {
    /// Answers `request` through `out` (nothing is sent while draining for shutdown: new
    /// requests are dropped as if the socket were closed).
    pub(crate) async fn handle<T: Transmit>(&self, request: &Request, out: &mut T) {
        let Some(_guard) = self.inflight.enter() else {
            return;
        };
        let router = self.router.load();
        handle(&router, request, out).await;
    }
}

/// Maps `::ffff:a.b.c.d` (IPv4 clients of a dual-stack socket) back to `a.b.c.d`.
fn canonical(src: SocketAddr) -> SocketAddr {
    match src {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => src,
        },
        v4 => v4,
    }
}

async fn handle<T: Transmit>(router: &Router, request: &Request, out: &mut T) {
    let edns = reply::mirror_edns(request.edns.as_ref());

    if request.metadata.op_code != OpCode::Query {
        reply::send_rcode(request, out, ResponseCode::NotImp, edns, true).await;
        return;
    }
    let [question] = request.queries.queries() else {
        reply::send_rcode(request, out, ResponseCode::FormErr, edns, false).await;
        return;
    };
    if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
        reply::send_rcode(request, out, ResponseCode::BADVERS, edns, true).await;
        return;
    }
    if question.query_class() != DNSClass::IN {
        reply::send_rcode(request, out, ResponseCode::Refused, edns, true).await;
        return;
    }
    let chain = match router.route(question.name()) {
        Some(chain) if !chain.is_empty() => chain,
        _ => {
            reply::send_rcode(request, out, ResponseCode::Refused, edns, true).await;
            return;
        }
    };
    let resolver = Internal { router, depth: 1 };
    let reply_size = ReplySize::default();
    let query = Query {
        name: question.original().name(),
        lower: question.name(),
        qtype: question.query_type(),
        qclass: question.query_class(),
        id: request.metadata.id,
        recursion_desired: request.metadata.recursion_desired,
        checking_disabled: request.metadata.checking_disabled,
        edns: request.edns.as_ref().map(|e| EdnsInfo {
            udp_size: e.max_payload().max(512),
            dnssec_ok: e.flags().dnssec_ok,
        }),
        src: canonical(request.src()),
        transport: out.transport(),
        request_size: request.as_slice().len(),
        reply_size: &reply_size,
        resolver: &resolver,
    };
    let result = chain.run(&query).await;
    if let Some(size) = reply::send_result(request, out, &result, edns).await {
        reply_size.report(size);
    }
}

/// Re-enters the router for queries a plugin asks on its own behalf.
struct Internal<'r> {
    router: &'r Router,
    depth: u8,
}

#[async_trait]
impl Resolve for Internal<'_> {
    async fn resolve(&self, name: Name, qtype: RecordType) -> Result<Answer, PluginError> {
        if self.depth >= MAX_INTERNAL_DEPTH {
            return Err(PluginError::Failed {
                plugin: "server",
                origin: Origin::Internal,
                rcode: ResponseCode::ServFail,
                message: format!("internal queries nested more than {MAX_INTERNAL_DEPTH} deep"),
            });
        }
        let lower = LowerName::new(&name);
        let chain = match self.router.route(&lower) {
            Some(chain) if !chain.is_empty() => chain,
            _ => return Ok(Answer::new(ResponseCode::Refused)),
        };
        let nested = Internal {
            router: self.router,
            depth: self.depth + 1,
        };
        let reply_size = ReplySize::default();
        let query = Query {
            name: &name,
            lower: &lower,
            qtype,
            qclass: DNSClass::IN,
            id: 0,
            recursion_desired: true,
            checking_disabled: false,
            edns: None,
            src: self.router.local(),
            transport: Transport::Udp,
            request_size: 0,
            reply_size: &reply_size,
            resolver: &nested,
        };
        chain.run(&query).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::{Chain, Next, Plugin};

    /// Answers by asking the same name again through the resolver: an endless loop.
    struct Recurse;

    #[async_trait]
    impl Plugin for Recurse {
        fn name(&self) -> &'static str {
            "kubernetes"
        }
        async fn serve(&self, q: &Query<'_>, _next: Next<'_>) -> Result<Answer, PluginError> {
            q.resolver.resolve(q.name.clone(), q.qtype).await
        }
    }

    #[tokio::test]
    async fn internal_queries_are_depth_limited() {
        let chain = Arc::new(Chain::new(vec![Arc::new(Recurse)]));
        let router = Router::new([(Name::root(), chain)]);
        let internal = Internal {
            router: &router,
            depth: 1,
        };
        let err = internal
            .resolve(Name::from_ascii("a.b.").unwrap(), RecordType::A)
            .await
            .unwrap_err();
        assert_eq!(err.rcode(), ResponseCode::ServFail);
        assert!(err.to_string().contains("nested more than 8"), "{err}");
    }

    #[tokio::test]
    async fn internal_query_outside_every_zone_is_refused() {
        let chain = Arc::new(Chain::new(vec![Arc::new(Recurse)]));
        let router = Router::new([(Name::from_ascii("example.org.").unwrap(), chain)]);
        let internal = Internal {
            router: &router,
            depth: 1,
        };
        let answer = internal
            .resolve(Name::from_ascii("example.com.").unwrap(), RecordType::A)
            .await
            .unwrap();
        assert_eq!(answer.rcode, ResponseCode::Refused);
    }

    #[test]
    fn mapped_addresses_become_v4() {
        let src: SocketAddr = "[::ffff:10.0.0.1]:53".parse().unwrap();
        assert_eq!(canonical(src), "10.0.0.1:53".parse::<SocketAddr>().unwrap());
        let src: SocketAddr = "[::1]:53".parse().unwrap();
        assert_eq!(canonical(src), src);
    }
}
