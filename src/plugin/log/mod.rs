//! The `log` plugin: one query-log line per query, in CoreDNS's Common Log Format by default.
#![doc = include_str!("README.md")]

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use hickory_proto::op::{
    Edns, MessageType, Metadata, OpCode, Query as WireQuery, ResponseCode, emit_message_parts,
};
use hickory_proto::rr::{LowerName, Name, RecordType};
use hickory_proto::serialize::binary::BinEncoder;
use tracing::info;

use crate::corefile::{Dispenser, Token};
use crate::plugin::{Answer, BlockSetup, Next, Plugin, PluginError, Query, SetupError, Transport};

/// Directive name.
pub(crate) const NAME: &str = "log";

/// CoreDNS's Common Log Format.
const COMMON: &str = "{remote}:{port} - {>id} \"{type} {class} {name} {proto} {size} {>do} {>bufsize}\" {rcode} {>rflags} {rsize} {duration}";

/// Largest UDP reply clusterdns sends (`server::reply` clamps to the same value).
const MAX_UDP_REPLY: u16 = 4096;

/// One piece of a format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Type,
    Name,
    Class,
    Proto,
    Remote,
    Port,
    Size,
    Duration,
    Rcode,
    Rsize,
    Rflags,
    Bufsize,
    Do,
    Id,
    Opcode,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Text(String),
    Field(Field),
}

/// Answer classes for the `class` option (bit set).
const SUCCESS: u8 = 1;
const DENIAL: u8 = 2;
const ERROR: u8 = 4;
const ALL: u8 = SUCCESS | DENIAL | ERROR;

/// Parses one `log` directive.
pub(crate) fn setup(d: &mut Dispenser<'_>, block: &mut BlockSetup) -> Result<(), SetupError> {
    block.plugins.push(Arc::new(parse(d)?));
    Ok(())
}

/// The plugin one `log` directive describes.
fn parse(d: &mut Dispenser<'_>) -> Result<Log, SetupError> {
    let args: &[Token] = d.remaining_args();
    let (names, format) = match args {
        [] => (&[][..], None),
        [only] if only.text.contains('{') => (&[][..], Some(only)),
        [.., last] if args.len() >= 2 && last.text.contains('{') => {
            (&args[..args.len() - 1], Some(last))
        }
        _ => (args, None),
    };
    let format = match format {
        Some(tok) => d.value(tok, parse_format)?,
        None => parse_format(COMMON).map_err(|m| d.error_at_name(m))?,
    };
    let mut scopes = Vec::with_capacity(names.len().max(1));
    for tok in names {
        let name = Name::from_ascii(&tok.text)
            .map_err(|e| d.error_at(tok, format!("invalid name '{}': {e}", tok.text)))?;
        let mut name = name.to_lowercase();
        name.set_fqdn(true);
        scopes.push(LowerName::new(&name));
    }
    if scopes.is_empty() {
        scopes.push(LowerName::new(&Name::root()));
    }
    let mut classes = 0u8;
    d.options(|line| {
        if line.name().text != "class" {
            return Err(line.unknown_property());
        }
        for v in line.at_least_one("one or more of success, denial, error, all")? {
            classes |= match v.text.as_str() {
                "success" => SUCCESS,
                "denial" => DENIAL,
                "error" => ERROR,
                "all" => ALL,
                other => {
                    return Err(line.error_at(
                        v,
                        format!("unknown class '{other}', expected success, denial, error or all"),
                    ));
                }
            };
        }
        Ok(())
    })?;
    if classes == 0 {
        classes = ALL;
    }
    Ok(Log {
        scopes,
        format,
        classes,
    })
}

/// Splits a format into text and placeholders; `{common}`/`{combined}` expand in place.
fn parse_format(format: &str) -> Result<Vec<Segment>, String> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut rest = format;
    while let Some(open) = rest.find('{') {
        text.push_str(&rest[..open]);
        let after = &rest[open..];
        let Some(close) = after.find('}') else {
            return Err(format!("unclosed placeholder in format '{format}'"));
        };
        let placeholder = &after[..=close];
        rest = &after[close + 1..];
        let field = match placeholder {
            "{common}" | "{combined}" => {
                let mut expanded = COMMON.to_owned();
                if placeholder == "{combined}" {
                    expanded.push_str(" \"{>opcode}\"");
                }
                if !text.is_empty() {
                    out.push(Segment::Text(std::mem::take(&mut text)));
                }
                out.extend(parse_format(&expanded)?);
                continue;
            }
            "{type}" => Field::Type,
            "{name}" => Field::Name,
            "{class}" => Field::Class,
            "{proto}" => Field::Proto,
            "{remote}" => Field::Remote,
            "{port}" => Field::Port,
            "{size}" => Field::Size,
            "{duration}" => Field::Duration,
            "{rcode}" => Field::Rcode,
            "{rsize}" => Field::Rsize,
            "{>rflags}" => Field::Rflags,
            "{>bufsize}" => Field::Bufsize,
            "{>do}" => Field::Do,
            "{>id}" => Field::Id,
            "{>opcode}" => Field::Opcode,
            other => return Err(format!("unknown placeholder '{other}' in format")),
        };
        if !text.is_empty() {
            out.push(Segment::Text(std::mem::take(&mut text)));
        }
        out.push(Segment::Field(field));
    }
    text.push_str(rest);
    if !text.is_empty() {
        out.push(Segment::Text(text));
    }
    Ok(out)
}

/// The plugin: the names it logs, the line layout and the answer classes.
#[derive(Debug)]
pub(crate) struct Log {
    scopes: Vec<LowerName>,
    format: Vec<Segment>,
    classes: u8,
}

#[async_trait]
impl Plugin for Log {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn serve(&self, query: &Query<'_>, next: Next<'_>) -> Result<Answer, PluginError> {
        if !self.scopes.iter().any(|s| s.zone_of(query.lower)) {
            return next.run(query).await;
        }
        let start = Instant::now();
        let result = next.run(query).await;
        if self.classes & classify(&result) != 0 {
            let line = self.render(query, &result, start.elapsed().as_secs_f64());
            info!(target: "clusterdns::log", "{line}");
        }
        result
    }
}

/// CoreDNS's answer classes (`response.Classify`).
fn classify(result: &Result<Answer, PluginError>) -> u8 {
    match result {
        Err(_) => ERROR,
        Ok(a) => match a.rcode {
            ResponseCode::NXDomain => DENIAL,
            ResponseCode::NoError if !a.answers.is_empty() => SUCCESS,
            ResponseCode::NoError
                if a.authorities
                    .iter()
                    .any(|r| r.record_type() == RecordType::NS) =>
            {
                SUCCESS
            }
            ResponseCode::NoError => DENIAL,
            _ => ERROR,
        },
    }
}

/// Rcode as CoreDNS prints it (the number when it has no mnemonic).
fn rcode_str(rcode: ResponseCode) -> String {
    match crate::dns::rcode::rcode_name(rcode) {
        Some(name) => name.to_owned(),
        None => u16::from(rcode).to_string(),
    }
}

/// Record type as CoreDNS prints it (`TYPE65280` for unknown ones).
fn type_str(qtype: RecordType) -> String {
    match qtype {
        RecordType::Unknown(n) => format!("TYPE{n}"),
        other => other.to_string(),
    }
}

impl Log {
    fn render(&self, q: &Query<'_>, result: &Result<Answer, PluginError>, secs: f64) -> String {
        let mut line = String::with_capacity(160);
        // Encoding the reply is the costly part; done at most once per line.
        let mut wire: Option<(usize, bool)> = None;
        let mut wire_of = |a: &Answer| *wire.get_or_insert_with(|| encoded(q, a));
        for seg in &self.format {
            let field = match seg {
                Segment::Text(t) => {
                    line.push_str(t);
                    continue;
                }
                Segment::Field(f) => *f,
            };
            // Writing to a String cannot fail.
            let _ = match field {
                Field::Type => write!(line, "{}", type_str(q.qtype)),
                Field::Name => write!(line, "{}", q.lower),
                Field::Class => write!(line, "{}", q.qclass),
                Field::Proto => write!(line, "{}", q.transport.as_str()),
                Field::Remote => match q.src {
                    std::net::SocketAddr::V4(a) => write!(line, "{}", a.ip()),
                    std::net::SocketAddr::V6(a) => write!(line, "[{}]", a.ip()),
                },
                Field::Port => write!(line, "{}", q.src.port()),
                Field::Size => write!(line, "{}", q.request_size),
                Field::Duration => write!(line, "{secs}s"),
                Field::Rcode => match result {
                    Ok(a) => write!(line, "{}", rcode_str(a.rcode)),
                    Err(e) => write!(line, "{}", rcode_str(e.rcode())),
                },
                Field::Rsize => match result {
                    Ok(a) => write!(line, "{}", wire_of(a).0),
                    Err(_) => write!(line, "0"),
                },
                Field::Rflags => match result {
                    Ok(a) => write!(line, "{}", flags(q, a, wire_of(a).1)),
                    Err(_) => write!(line, "-"),
                },
                Field::Bufsize => write!(line, "{}", q.edns.map_or(512, |e| e.udp_size.max(512))),
                Field::Do => write!(line, "{}", q.edns.is_some_and(|e| e.dnssec_ok)),
                Field::Id => write!(line, "{}", q.id),
                Field::Opcode => write!(line, "QUERY"),
            };
        }
        line
    }
}

/// The reply's flags, `qr,aa,tc,rd,ra,ad,cd` order as CoreDNS prints them.
fn flags(q: &Query<'_>, a: &Answer, truncated: bool) -> String {
    let mut out = String::from("qr");
    for (set, name) in [
        (a.authoritative, "aa"),
        (a.truncated || truncated, "tc"),
        (q.recursion_desired, "rd"),
        (a.recursion_available, "ra"),
        (a.authentic_data, "ad"),
        (q.checking_disabled, "cd"),
    ] {
        if set {
            out.push(',');
            out.push_str(name);
        }
    }
    out
}

/// Size of the reply on the wire and whether it was truncated, encoded as the server would.
fn encoded(q: &Query<'_>, a: &Answer) -> (usize, bool) {
    let mut metadata = Metadata::new(q.id, MessageType::Response, OpCode::Query);
    metadata.response_code = a.rcode;
    let mut question = WireQuery::query(q.name.clone(), q.qtype);
    question.set_query_class(q.qclass);
    let edns = q.edns.map(|info| {
        let mut edns = Edns::new();
        edns.set_max_payload(info.udp_size.clamp(512, MAX_UDP_REPLY));
        edns.set_dnssec_ok(info.dnssec_ok);
        edns
    });
    let limit = match (q.transport, &edns) {
        (Transport::Tcp, _) => u16::MAX,
        (Transport::Udp, Some(e)) => e.max_payload(),
        (Transport::Udp, None) => 512,
    };
    let mut buf = Vec::with_capacity(512);
    let mut encoder = BinEncoder::new(&mut buf);
    encoder.set_max_size(limit);
    let header = emit_message_parts(
        &metadata,
        &mut std::iter::once(&question),
        &mut a.answers.iter(),
        &mut a.authorities.iter(),
        &mut a.additionals.iter(),
        edns.as_ref(),
        None,
        &mut encoder,
    );
    match header {
        Ok(h) => (buf.len(), h.metadata.truncation),
        Err(_) => (0, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corefile::{Directive, Location};
    use crate::plugin::test_support::{NoResolve, query_for};
    use crate::plugin::{EdnsInfo, Transport};
    use hickory_proto::rr::{RData, Record, rdata::A};

    fn tok(text: &str, column: u32) -> Token {
        Token {
            text: text.into(),
            location: Location {
                file: "Corefile".into(),
                line: 3,
                column,
            },
        }
    }

    fn directive(args: &[&str], class_lines: &[&[&str]]) -> Directive {
        Directive {
            name: tok(NAME, 5),
            args: args
                .iter()
                .enumerate()
                .map(|(i, a)| tok(a, 9 + 10 * i as u32))
                .collect(),
            block: (!class_lines.is_empty()).then(|| {
                class_lines
                    .iter()
                    .map(|l| Directive {
                        name: tok(l[0], 9),
                        args: l[1..].iter().map(|a| tok(a, 20)).collect(),
                        block: None,
                    })
                    .collect()
            }),
        }
    }

    fn parse_args(args: &[&str], class_lines: &[&[&str]]) -> Result<Log, SetupError> {
        let d = directive(args, class_lines);
        let mut b = BlockSetup::default();
        setup(&mut Dispenser::new(&d), &mut b)?;
        assert_eq!(b.plugins.len(), 1);
        parse(&mut Dispenser::new(&d))
    }

    fn build(args: &[&str], class_lines: &[&[&str]]) -> Log {
        parse_args(args, class_lines).unwrap()
    }

    #[test]
    fn setup_accepts_coredns_forms() {
        for (args, lines) in [
            (vec![], vec![]),
            (vec!["example.org"], vec![]),
            (vec!["a.org", "b.org"], vec![]),
            (vec!["a.org", "{common}"], vec![]),
            (vec![".", "{combined}"], vec![]),
            (vec![".", "{proto} Request: {name} {type} {>id}"], vec![]),
            (vec![], vec![&["class", "denial", "error"][..]]),
            (vec![], vec![&["class", "all"][..]]),
        ] {
            parse_args(&args, &lines).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
    }

    #[test]
    fn class_option_sets_the_filter() {
        assert_eq!(build(&[], &[]).classes, ALL);
        assert_eq!(
            build(&[], &[&["class", "denial", "error"]]).classes,
            DENIAL | ERROR
        );
        assert_eq!(
            build(&[], &[&["class", "success"], &["class", "all"]]).classes,
            ALL
        );
    }

    #[test]
    fn setup_errors_point_at_the_token() {
        let e = parse_args(&[".", "{remote} {nonsense}"], &[])
            .err()
            .unwrap();
        assert!(
            e.message.contains("unknown placeholder '{nonsense}'"),
            "{}",
            e.message
        );
        assert_eq!(e.location.column, 19);
        let e = parse_args(&[], &[&["class", "bogus"]]).err().unwrap();
        assert!(e.message.contains("unknown class 'bogus'"));
        assert_eq!(e.location.column, 20);
        let e = parse_args(&[], &[&["level", "x"]]).err().unwrap();
        assert!(e.message.contains("unknown property 'level'"));
        let e = parse_args(&[], &[&["class"]]).err().unwrap();
        assert_eq!(
            e.message,
            "missing argument, expected one or more of success, denial, error, all"
        );
        let e = parse_args(&[".", "{name"], &[]).err().unwrap();
        assert!(e.message.contains("unclosed"));
    }

    #[test]
    fn common_log_format_line() {
        let log = build(&[], &[]);
        let r = NoResolve;
        let mut q = query_for("Example.ORG.", "10.0.0.9:50759", Transport::Udp, &r);
        q.edns = Some(EdnsInfo {
            udp_size: 4096,
            dnssec_ok: false,
        });
        q.request_size = 41;
        let mut a = Answer::authoritative(ResponseCode::NoError);
        a.answers.push(Record::from_rdata(
            q.name.clone(),
            30,
            RData::A(A::new(10, 0, 0, 1)),
        ));
        // 12 header + 17 question + 16 answer (name compressed) + 11 OPT.
        let line = log.render(&q, &Ok(a), 0.0012);
        assert_eq!(
            line,
            "10.0.0.9:50759 - 4242 \"A IN example.org. udp 41 false 4096\" NOERROR qr,aa,rd 56 0.0012s"
        );
        let line = log.render(&q, &Err(PluginError::NoNextPlugin), 0.5);
        assert!(line.ends_with("\" SERVFAIL - 0 0.5s"), "{line}");
    }

    #[test]
    fn ipv6_remote_in_brackets_and_combined() {
        let log = build(&[".", "{combined}"], &[]);
        let r = NoResolve;
        let q = query_for("a.b.", "[::1]:53000", Transport::Tcp, &r);
        let line = log.render(&q, &Ok(Answer::new(ResponseCode::NXDomain)), 0.0);
        assert!(
            line.starts_with("[::1]:53000 - 4242 \"A IN a.b. tcp 40 false 512\" NXDOMAIN qr,rd "),
            "{line}"
        );
        assert!(line.ends_with(" \"QUERY\""), "{line}");
    }

    #[test]
    fn classes() {
        let ok = Answer {
            answers: vec![Record::from_rdata(
                Name::root(),
                1,
                RData::A(A::new(1, 2, 3, 4)),
            )],
            ..Answer::new(ResponseCode::NoError)
        };
        assert_eq!(classify(&Ok(ok)), SUCCESS);
        assert_eq!(classify(&Ok(Answer::new(ResponseCode::NoError))), DENIAL);
        assert_eq!(classify(&Ok(Answer::new(ResponseCode::NXDomain))), DENIAL);
        assert_eq!(classify(&Ok(Answer::new(ResponseCode::Refused))), ERROR);
        assert_eq!(classify(&Err(PluginError::NoNextPlugin)), ERROR);
    }

    #[test]
    fn scopes_limit_logging() {
        let log = build(&["example.org"], &[]);
        let r = NoResolve;
        let inside = query_for("www.EXAMPLE.org.", "10.0.0.1:1000", Transport::Udp, &r);
        let outside = query_for("example.com.", "10.0.0.1:1000", Transport::Udp, &r);
        assert!(log.scopes.iter().any(|s| s.zone_of(inside.lower)));
        assert!(!log.scopes.iter().any(|s| s.zone_of(outside.lower)));
    }
}
