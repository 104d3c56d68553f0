//! Test helpers shared by the plugins' unit tests: a `Query` from text and a `Resolve` that
//! answers nothing.

use std::net::SocketAddr;

use async_trait::async_trait;
use hickory_proto::rr::{DNSClass, LowerName, Name, RecordType};

use crate::plugin::{Answer, PluginError, Query, Resolve, Transport};

/// A resolver for tests that never re-enters anything.
pub(crate) struct NoResolve;

#[async_trait]
impl Resolve for NoResolve {
    async fn resolve(&self, _name: Name, _qtype: RecordType) -> Result<Answer, PluginError> {
        Err(PluginError::NoNextPlugin)
    }
}

/// An A/IN query for `name` from `src`.
pub(crate) fn query_for<'a>(
    name: &str,
    src: &str,
    transport: Transport,
    resolver: &'a dyn Resolve,
) -> Query<'a> {
    let name = Name::from_ascii(name).unwrap();
    let src: SocketAddr = src.parse().unwrap();
    Query {
        lower: LowerName::new(&name),
        name,
        qtype: RecordType::A,
        qclass: DNSClass::IN,
        id: 4242,
        recursion_desired: true,
        checking_disabled: false,
        edns: None,
        src,
        transport,
        request_size: 40,
        resolver,
    }
}
