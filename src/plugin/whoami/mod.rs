//! The `whoami` plugin: answers every query with the client's own address and port.
#![doc = include_str!("README.md")]

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, SRV};
use hickory_proto::rr::{Name, RData, Record};

use crate::corefile::Dispenser;
use crate::plugin::{Answer, BlockSetup, Next, Plugin, PluginError, Query, SetupError};

/// Directive name.
pub(crate) const NAME: &str = "whoami";

/// Parses `whoami` (no arguments).
pub(crate) fn setup(d: &mut Dispenser<'_>, block: &mut BlockSetup) -> Result<(), SetupError> {
    d.end()?;
    d.no_block()?;
    block.plugins.push(Arc::new(Whoami));
    Ok(())
}

/// The plugin itself; stateless.
#[derive(Debug)]
pub(crate) struct Whoami;

#[async_trait]
impl Plugin for Whoami {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn serve(&self, query: &Query<'_>, _next: Next<'_>) -> Result<Answer, PluginError> {
        Ok(reply(query))
    }
}

/// The whoami reply for one query.
fn reply(query: &Query<'_>) -> Answer {
    let mut answer = Answer::authoritative(ResponseCode::NoError);
    let address = match query.src.ip() {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => RData::A(A(v4)),
            None => RData::AAAA(AAAA(v6)),
        },
    };
    answer
        .additionals
        .push(Record::from_rdata(query.name.clone(), 0, address));
    let label = match query.transport {
        crate::plugin::Transport::Udp => "_udp",
        crate::plugin::Transport::Tcp => "_tcp",
    };
    // A name at the length limit cannot take one more label; then the SRV record is left out.
    if let Ok(srv_name) = query.name.prepend_label(label) {
        let srv = SRV::new(0, 0, query.src.port(), Name::root());
        answer
            .additionals
            .push(Record::from_rdata(srv_name, 0, RData::SRV(srv)));
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corefile::{Directive, Location, Token};
    use crate::plugin::test_support::{NoResolve, query_for};
    use crate::plugin::{Chain, Transport};

    fn directive(args: &[&str]) -> Directive {
        let loc = Location {
            file: "Corefile".into(),
            line: 2,
            column: 5,
        };
        Directive {
            name: Token {
                text: NAME.into(),
                location: loc.clone(),
            },
            args: args
                .iter()
                .map(|a| Token {
                    text: (*a).into(),
                    location: Location {
                        column: 12,
                        ..loc.clone()
                    },
                })
                .collect(),
            block: None,
        }
    }

    #[test]
    fn setup_rejects_arguments() {
        let d = directive(&["foo"]);
        let mut block = BlockSetup::default();
        let err = setup(&mut Dispenser::new(&d), &mut block).unwrap_err();
        assert_eq!(err.location.column, 12);
        assert!(err.message.contains("unexpected argument 'foo'"));
        let d = directive(&[]);
        setup(&mut Dispenser::new(&d), &mut block).unwrap();
        assert_eq!(block.plugins.len(), 1);
    }

    #[tokio::test]
    async fn v4_udp_client() {
        let resolver = NoResolve;
        let q = query_for("Example.ORG.", "10.1.2.3:5353", Transport::Udp, &resolver);
        let chain = Chain::new(vec![Arc::new(Whoami)]);
        let a = chain.run(&q).await.unwrap();
        assert!(a.authoritative);
        assert!(a.answers.is_empty());
        assert_eq!(a.additionals.len(), 2);
        assert_eq!(a.additionals[0].name.to_ascii(), "Example.ORG.");
        assert_eq!(a.additionals[0].data, RData::A(A::new(10, 1, 2, 3)));
        assert_eq!(a.additionals[1].name.to_ascii(), "_udp.Example.ORG.");
        match &a.additionals[1].data {
            RData::SRV(srv) => {
                assert_eq!(srv.port, 5353);
                assert!(srv.target.is_root());
            }
            other => panic!("expected SRV, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn v6_tcp_client_and_root_name() {
        let resolver = NoResolve;
        let q = query_for(".", "[2001:db8::1]:40000", Transport::Tcp, &resolver);
        let a = reply(&q);
        assert!(matches!(a.additionals[0].data, RData::AAAA(_)));
        assert_eq!(a.additionals[1].name.to_ascii(), "_tcp.");
        let q = query_for(".", "[::ffff:10.0.0.1]:40000", Transport::Tcp, &resolver);
        assert_eq!(reply(&q).additionals[0].data, RData::A(A::new(10, 0, 0, 1)));
    }
}
