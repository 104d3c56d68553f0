//! Reply comparison: header flags and rcode, the question, each section as a multiset of
//! records (SOA serial and query id aside; TTLs exact unless the option set caches), EDNS, and
//! the size class (fits / truncated / malformed). A difference gets a class name, so runs can
//! count them per class and an allow-list can name the known open ones.

use std::fmt::Write as _;

use hickory_proto::op::Message;
use hickory_proto::rr::{RData, Record};

use crate::query::{Q, Transport};

/// One reply, decoded for comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Norm {
    /// Opcode, flags and rcode (extended with EDNS's high bits).
    pub(crate) header: String,
    pub(crate) question: Vec<String>,
    pub(crate) answer: Vec<String>,
    pub(crate) authority: Vec<String>,
    pub(crate) additional: Vec<String>,
    pub(crate) edns: String,
    /// TTLs in record order per section, compared with a tolerance when the set caches.
    pub(crate) ttls: Vec<u32>,
    pub(crate) tc: bool,
    pub(crate) rcode: String,
}

/// What came back from one server.
#[derive(Clone, Debug)]
pub(crate) enum Seen {
    Timeout,
    /// The bytes do not parse (header counts more than the packet holds, say).
    Malformed {
        size: usize,
        counts: [u16; 4],
        error: String,
    },
    Reply {
        size: usize,
        norm: Box<Norm>,
        text: String,
    },
}

impl Seen {
    fn brief(&self) -> String {
        match self {
            Seen::Timeout => "timeout".to_owned(),
            Seen::Malformed { .. } => "malformed".to_owned(),
            Seen::Reply { norm, .. } => {
                let mut s = norm.rcode.clone();
                if norm.tc {
                    s.push_str(" TC");
                }
                if norm.rcode == "NOERROR" {
                    s.push_str(if norm.answer.is_empty() {
                        " nodata"
                    } else {
                        " answer"
                    });
                }
                s
            }
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Seen::Timeout => "no reply within the timeout".to_owned(),
            Seen::Malformed {
                size,
                counts,
                error,
            } => format!(
                "MALFORMED {size} bytes, header counts qd={} an={} ns={} ar={}: {error}",
                counts[0], counts[1], counts[2], counts[3]
            ),
            Seen::Reply { size, text, .. } => format!("{size} bytes\n{text}"),
        }
    }
}

fn record_text(r: &Record, with_ttl: bool) -> String {
    let data = match &r.data {
        RData::SOA(soa) => format!(
            "{} {} (serial) {} {} {} {}",
            soa.mname, soa.rname, soa.refresh, soa.retry, soa.expire, soa.minimum
        ),
        other => other.to_string(),
    };
    if with_ttl {
        format!(
            "{} {} {} {} {data}",
            r.name,
            r.ttl,
            r.dns_class,
            r.record_type()
        )
    } else {
        format!("{} {} {} {data}", r.name, r.dns_class, r.record_type())
    }
}

fn section(records: &[Record], with_ttl: bool, ttls: &mut Vec<u32>) -> Vec<String> {
    let mut out: Vec<String> = records.iter().map(|r| record_text(r, with_ttl)).collect();
    let mut t: Vec<u32> = records.iter().map(|r| r.ttl).collect();
    t.sort_unstable();
    ttls.extend(t);
    out.sort();
    out
}

/// Decodes `raw`; `exact_ttl` false leaves TTLs out of the record texts (cache ages them).
pub(crate) fn decode(raw: Option<&[u8]>, exact_ttl: bool) -> Seen {
    let Some(raw) = raw else {
        return Seen::Timeout;
    };
    let counts = |i: usize| {
        raw.get(4 + 2 * i..6 + 2 * i)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
    };
    let counts = [counts(0), counts(1), counts(2), counts(3)];
    let msg = match Message::from_vec(raw) {
        Ok(m) => m,
        Err(e) => {
            return Seen::Malformed {
                size: raw.len(),
                counts,
                error: e.to_string(),
            };
        }
    };
    let flags = raw
        .get(2..4)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    let high = msg.edns.as_ref().map_or(0, |e| e.rcode_high());
    let rcode_value = (u16::from(high) << 4) | (flags & 0xf);
    let rcode = match rcode_value {
        0 => "NOERROR".to_owned(),
        1 => "FORMERR".to_owned(),
        2 => "SERVFAIL".to_owned(),
        3 => "NXDOMAIN".to_owned(),
        4 => "NOTIMP".to_owned(),
        5 => "REFUSED".to_owned(),
        16 => "BADVERS".to_owned(),
        n => format!("RCODE{n}"),
    };
    let mut header = format!("opcode={} ", (flags >> 11) & 0xf);
    for (bit, name) in [
        (15, "qr"),
        (10, "aa"),
        (9, "tc"),
        (8, "rd"),
        (7, "ra"),
        (6, "z"),
        (5, "ad"),
        (4, "cd"),
    ] {
        if flags & (1 << bit) != 0 {
            header.push_str(name);
            header.push(' ');
        }
    }
    let _ = write!(header, "rcode={rcode_value}");
    let mut ttls = Vec::new();
    let norm = Norm {
        header,
        question: msg
            .queries
            .iter()
            .map(|q| format!("{} {} {}", q.name(), q.query_class(), q.query_type()))
            .collect(),
        answer: section(&msg.answers, exact_ttl, &mut ttls),
        authority: section(&msg.authorities, exact_ttl, &mut ttls),
        additional: section(&msg.additionals, exact_ttl, &mut ttls),
        edns: msg.edns.as_ref().map_or_else(
            || "none".to_owned(),
            |e| {
                format!(
                    "version={} payload={} do={} options={}",
                    e.version(),
                    e.max_payload(),
                    e.flags().dnssec_ok,
                    e.options().as_ref().len()
                )
            },
        ),
        ttls,
        tc: flags & (1 << 9) != 0,
        rcode,
    };
    let mut text = String::new();
    let _ = writeln!(text, "  header: {}  edns: {}", norm.header, norm.edns);
    for (label, records) in [
        ("answer", &msg.answers),
        ("authority", &msg.authorities),
        ("additional", &msg.additionals),
    ] {
        for r in records.iter() {
            let _ = writeln!(text, "  {label}: {}", record_text(r, true));
        }
    }
    Seen::Reply {
        size: raw.len(),
        norm: Box::new(norm),
        text,
    }
}

/// Whether both are truncated replies that differ only in which records their sections kept.
/// Which records survive truncation depends on their order, and CoreDNS's order is random when
/// a service has several EndpointSlices (its informer index is a Go map) or `loadbalance`
/// shuffles; the tier then checks each against the whole answer over TCP instead
/// ([`within`]); tests/truncation.rs proves which records survive, rule by rule.
pub(crate) fn truncated_subsets(theirs: &Seen, ours: &Seen, fields: &[&str]) -> bool {
    let tc = |s: &Seen| matches!(s, Seen::Reply { norm, .. } if norm.tc);
    tc(theirs)
        && tc(ours)
        && !fields.is_empty()
        && fields
            .iter()
            .all(|f| matches!(*f, "answer" | "authority" | "additional" | "ttl"))
}

/// Whether every record of each section of `part` is in the same section of `whole` (as a
/// multiset).
pub(crate) fn within(part: &Seen, whole: &Seen) -> bool {
    let (Seen::Reply { norm: p, .. }, Seen::Reply { norm: w, .. }) = (part, whole) else {
        return false;
    };
    let contained = |p: &[String], w: &[String]| {
        let mut rest: Vec<&String> = w.iter().collect();
        p.iter().all(|r| match rest.iter().position(|x| *x == r) {
            Some(i) => {
                rest.swap_remove(i);
                true
            }
            None => false,
        })
    };
    contained(&p.answer, &w.answer)
        && contained(&p.authority, &w.authority)
        && contained(&p.additional, &w.additional)
}

/// The fields in which two replies differ (empty: the same).
pub(crate) fn differences(theirs: &Seen, ours: &Seen, ttl_slack: u32) -> Vec<&'static str> {
    match (theirs, ours) {
        (Seen::Reply { norm: a, .. }, Seen::Reply { norm: b, .. }) => {
            let mut out = Vec::new();
            if a.tc != b.tc {
                out.push("tc");
            }
            if a.rcode != b.rcode {
                out.push("rcode");
            }
            if a.header != b.header && a.tc == b.tc && a.rcode == b.rcode {
                out.push("flags");
            }
            if a.question != b.question {
                out.push("question");
            }
            let lower = |v: &[String]| {
                let mut l: Vec<String> = v.iter().map(|s| s.to_ascii_lowercase()).collect();
                l.sort();
                l
            };
            for (name, x, y) in [
                ("answer", &a.answer, &b.answer),
                ("authority", &a.authority, &b.authority),
                ("additional", &a.additional, &b.additional),
            ] {
                if x != y {
                    // Same records but for the letter case of names: its own class.
                    out.push(if lower(x) == lower(y) {
                        match name {
                            "answer" => "answer letter case",
                            "authority" => "authority letter case",
                            _ => "additional letter case",
                        }
                    } else {
                        name
                    });
                }
            }
            if a.edns != b.edns {
                out.push("edns");
            }
            let ttl_ok = a.ttls.len() == b.ttls.len()
                && a.ttls
                    .iter()
                    .zip(&b.ttls)
                    .all(|(x, y)| x.abs_diff(*y) <= ttl_slack);
            if !ttl_ok && out.is_empty() {
                out.push("ttl");
            }
            out
        }
        // Two silent servers prove nothing: the tier counts it as a difference.
        (Seen::Timeout, Seen::Timeout) => vec!["timeout (both)"],
        (Seen::Malformed { .. }, Seen::Malformed { .. }) => Vec::new(),
        (_, Seen::Malformed { .. }) => vec!["malformed (ours)"],
        (Seen::Malformed { .. }, _) => vec!["malformed (coredns)"],
        (_, Seen::Timeout) => vec!["timeout (ours)"],
        (Seen::Timeout, _) => vec!["timeout (coredns)"],
    }
}

/// The class of a difference: what kind of name, which qtype group, which fields, and the two
/// outcomes in brief. Size-related ones (TC, malformed) name the transport instead.
pub(crate) fn class(q: &Q, fields: &[&str], theirs: &Seen, ours: &Seen) -> String {
    let size_related = fields
        .iter()
        .any(|f| *f == "tc" || f.starts_with("malformed"));
    if size_related {
        let transport = match q.transport {
            Transport::Udp => "udp",
            Transport::Edns(_) => "udp+edns",
            Transport::Tcp => "tcp",
        };
        return format!(
            "size: {} over {transport}: coredns {} / ours {}",
            fields.join(","),
            theirs.brief(),
            ours.brief()
        );
    }
    format!(
        "{} {}: {}: coredns {} / ours {}",
        q.kind,
        q.qtype,
        fields.join(","),
        theirs.brief(),
        ours.brief()
    )
}
