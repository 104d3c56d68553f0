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
    // A query borrows its names from the request; a test's names live as long as the test
    // process (a few bytes each).
    let name: &'static Name = Box::leak(Box::new(Name::from_ascii(name).unwrap()));
    let src: SocketAddr = src.parse().unwrap();
    Query {
        lower: Box::leak(Box::new(LowerName::new(name))),
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
        reply_size: crate::plugin::ReplySize::unsent(),
        resolver,
    }
}

/// Runs a setup parser on the first directive of `.:53 { TEXT }` (no environment), returning
/// its result or any error as text.
pub(crate) fn parse_first<T>(
    text: &str,
    parse: impl FnOnce(&mut crate::corefile::Dispenser<'_>) -> Result<T, crate::plugin::SetupError>,
) -> Result<T, String> {
    let cf = crate::corefile::parse_str_with_env(
        &format!(".:53 {{\n{text}\n}}\n"),
        "Corefile",
        std::path::Path::new("."),
        &|_| None,
    )
    .map_err(|e| e.to_string())?;
    let directive = cf
        .blocks
        .first()
        .and_then(|b| b.directives.first())
        .ok_or_else(|| "no directive".to_owned())?;
    parse(&mut crate::corefile::Dispenser::new(directive)).map_err(|e| e.to_string())
}
