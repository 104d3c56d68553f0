//! What the cache does with an answer from the rest of the chain: which cache it belongs to, the
//! one TTL all its records get, and whether it may be stored (spec §11.8, RFC 2308). Pure.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, RecordType};

use super::setup::CacheConfig;
use crate::plugin::Answer;

/// TTL of an answer without records (CoreDNS's fail-safe TTL).
const EMPTY_TTL: u32 = 5;

/// The two caches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// NOERROR with data, NOERROR without data or SOA, delegations.
    Success,
    /// NXDOMAIN and NODATA with an SOA, and SERVFAIL.
    Denial,
}

impl Kind {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Kind::Success => "success",
            Kind::Denial => "denial",
        }
    }
}

/// The verdict on one answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Decision {
    /// The cache it would go to; `None` for answers never cached (other errors).
    pub(crate) kind: Option<Kind>,
    /// The TTL every record of the answer is rewritten to (0: leave the records alone).
    pub(crate) ttl: u32,
    /// Whether it is stored (cacheable type, TTL above zero, not disabled, not truncated).
    pub(crate) store: bool,
}

/// Classifies `answer` to a question of `qtype` for `qname`.
pub(crate) fn decide(
    config: &CacheConfig,
    qname: &Name,
    qtype: RecordType,
    answer: &Answer,
) -> Decision {
    let soa = answer
        .authorities
        .iter()
        .any(|r| r.record_type() == RecordType::SOA);
    let kind = match answer.rcode {
        ResponseCode::NoError if !answer.answers.is_empty() => Some(Kind::Success),
        ResponseCode::NoError if soa => Some(Kind::Denial),
        ResponseCode::NXDomain if soa => Some(Kind::Denial),
        ResponseCode::ServFail => Some(Kind::Denial),
        // Delegations and empty NOERROR without SOA count as success, as in CoreDNS.
        ResponseCode::NoError => Some(Kind::Success),
        _ => None,
    };
    let Some(kind) = kind else {
        return Decision {
            kind: None,
            ttl: 0,
            store: false,
        };
    };
    let ttl = if answer.rcode == ResponseCode::ServFail {
        u32::try_from(config.servfail.as_secs()).unwrap_or(u32::MAX)
    } else {
        let tier = match kind {
            Kind::Success => &config.success,
            Kind::Denial => &config.denial,
        };
        clamp(min_ttl(answer), tier.min_ttl, tier.max_ttl)
    };
    let disabled = match kind {
        Kind::Success => &config.disable_success,
        Kind::Denial => &config.disable_denial,
    };
    let store = ttl > 0
        && !answer.truncated
        && !matches!(qtype, RecordType::AXFR | RecordType::IXFR)
        && !disabled.iter().any(|z| z.zone_of(qname))
        && !dangling_cname(qtype, answer, soa);
    Decision {
        kind: Some(kind),
        ttl,
        store,
    }
}

/// CoreDNS's clamp: below the minimum gives the minimum, then above the maximum the maximum.
fn clamp(ttl: u32, min: u32, max: u32) -> u32 {
    ttl.max(min).min(max)
}

/// The smallest TTL among all records; an SOA counts as min(its TTL, its MINIMUM) (RFC 2308 §5).
fn min_ttl(answer: &Answer) -> u32 {
    answer
        .answers
        .iter()
        .chain(&answer.authorities)
        .chain(&answer.additionals)
        .filter(|r| r.record_type() != RecordType::OPT)
        .map(|r| match &r.data {
            RData::SOA(soa) => r.ttl.min(soa.minimum),
            _ => r.ttl,
        })
        .min()
        .unwrap_or(EMPTY_TTL)
}

/// A NOERROR CNAME chain that never reaches the asked type and carries no SOA: incomplete, so
/// not cached (a later query may find the target resolvable).
fn dangling_cname(qtype: RecordType, answer: &Answer, soa: bool) -> bool {
    if soa
        || answer.rcode != ResponseCode::NoError
        || matches!(qtype, RecordType::CNAME | RecordType::ANY)
    {
        return false;
    }
    let has_cname = answer
        .answers
        .iter()
        .any(|r| r.record_type() == RecordType::CNAME);
    has_cname && !answer.answers.iter().any(|r| r.record_type() == qtype)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use hickory_proto::rr::rdata::{A, CNAME, NS, SOA};
    use hickory_proto::rr::{RData, Record};

    use super::*;
    use crate::plugin::test_support::parse_first;

    fn config(text: &str) -> CacheConfig {
        parse_first(text, |d| super::super::setup::parse(d, &[Name::root()])).expect("valid")
    }

    fn name(s: &str) -> Name {
        Name::from_ascii(s).expect("name")
    }

    fn a(owner: &str, ttl: u32) -> Record {
        Record::from_rdata(name(owner), ttl, RData::A(A(Ipv4Addr::new(10, 0, 0, 1))))
    }

    fn soa(ttl: u32, minimum: u32) -> Record {
        Record::from_rdata(
            name("cluster.local."),
            ttl,
            RData::SOA(SOA::new(
                name("ns.dns.cluster.local."),
                name("hostmaster.cluster.local."),
                1,
                7200,
                1800,
                86400,
                minimum,
            )),
        )
    }

    fn answer(rcode: ResponseCode, answers: Vec<Record>, authorities: Vec<Record>) -> Answer {
        Answer {
            answers,
            authorities,
            ..Answer::authoritative(rcode)
        }
    }

    fn decide_for(config: &CacheConfig, qname: &str, qtype: RecordType, a: &Answer) -> Decision {
        decide(config, &name(qname), qtype, a)
    }

    #[test]
    fn success_ttl_is_the_smallest_record_ttl_clamped() {
        let c = config("cache");
        let q = "a.example.org.";
        let ok = answer(ResponseCode::NoError, vec![a(q, 300), a(q, 60)], vec![]);
        let d = decide_for(&c, q, RecordType::A, &ok);
        assert_eq!(
            d,
            Decision {
                kind: Some(Kind::Success),
                ttl: 60,
                store: true
            }
        );
        // Below the minimum (5 s): raised; above the maximum (`cache 30`): capped.
        let zero = answer(ResponseCode::NoError, vec![a(q, 0)], vec![]);
        assert_eq!(decide_for(&c, q, RecordType::A, &zero).ttl, 5);
        let long = answer(ResponseCode::NoError, vec![a(q, 86400)], vec![]);
        assert_eq!(decide_for(&c, q, RecordType::A, &long).ttl, 3600);
        assert_eq!(
            decide_for(&config("cache 30"), q, RecordType::A, &long).ttl,
            30
        );
        let tiers = config("cache {\n success 2000 100 50\n}");
        assert_eq!(decide_for(&tiers, q, RecordType::A, &zero).ttl, 50);
        assert_eq!(decide_for(&tiers, q, RecordType::A, &long).ttl, 100);
        // No records at all: 5 s.
        let empty = answer(ResponseCode::NoError, vec![], vec![]);
        assert_eq!(
            decide_for(&c, q, RecordType::A, &empty),
            Decision {
                kind: Some(Kind::Success),
                ttl: 5,
                store: true
            }
        );
    }

    #[test]
    fn denial_ttl_is_the_soa_ttl_or_its_minimum_whichever_is_smaller() {
        let c = config("cache");
        let q = "nosuch.cluster.local.";
        let nx = answer(ResponseCode::NXDomain, vec![], vec![soa(30, 600)]);
        assert_eq!(
            decide_for(&c, q, RecordType::A, &nx),
            Decision {
                kind: Some(Kind::Denial),
                ttl: 30,
                store: true
            }
        );
        let nx = answer(ResponseCode::NXDomain, vec![], vec![soa(600, 20)]);
        assert_eq!(decide_for(&c, q, RecordType::A, &nx).ttl, 20);
        let nodata = answer(ResponseCode::NoError, vec![], vec![soa(3600, 3600)]);
        assert_eq!(
            decide_for(&c, q, RecordType::AAAA, &nodata),
            Decision {
                kind: Some(Kind::Denial),
                ttl: 1800,
                store: true
            }
        );
        let capped = config("cache {\n denial 2000 10 2\n}");
        assert_eq!(decide_for(&capped, q, RecordType::A, &nx).ttl, 10);
    }

    #[test]
    fn what_is_not_cached() {
        let c = config("cache");
        let q = "x.example.org.";
        // NXDOMAIN without SOA, REFUSED, FORMERR: other errors.
        for rcode in [
            ResponseCode::NXDomain,
            ResponseCode::Refused,
            ResponseCode::FormErr,
        ] {
            let d = decide_for(&c, q, RecordType::A, &answer(rcode, vec![], vec![]));
            assert_eq!(
                d,
                Decision {
                    kind: None,
                    ttl: 0,
                    store: false
                },
                "{rcode:?}"
            );
        }
        // Truncated.
        let mut tc = answer(ResponseCode::NoError, vec![a(q, 60)], vec![]);
        tc.truncated = true;
        let d = decide_for(&c, q, RecordType::A, &tc);
        assert!(!d.store);
        assert_eq!(d.ttl, 60);
        // Zone transfers.
        let axfr = answer(ResponseCode::NoError, vec![a(q, 60)], vec![]);
        assert!(!decide_for(&c, q, RecordType::AXFR, &axfr).store);
        // A CNAME chain that does not reach the asked type, without SOA.
        let cname = Record::from_rdata(name(q), 60, RData::CNAME(CNAME(name("t.example.net."))));
        let dangling = answer(ResponseCode::NoError, vec![cname.clone()], vec![]);
        assert!(!decide_for(&c, q, RecordType::A, &dangling).store);
        assert!(decide_for(&c, q, RecordType::CNAME, &dangling).store);
        let complete = answer(
            ResponseCode::NoError,
            vec![cname.clone(), a("t.example.net.", 60)],
            vec![],
        );
        assert!(decide_for(&c, q, RecordType::A, &complete).store);
        let with_soa = answer(ResponseCode::NoError, vec![cname], vec![soa(60, 60)]);
        assert!(decide_for(&c, q, RecordType::A, &with_soa).store);
    }

    #[test]
    fn servfail_uses_the_servfail_duration() {
        let q = "x.example.org.";
        let fail = answer(ResponseCode::ServFail, vec![], vec![]);
        let d = decide_for(&config("cache"), q, RecordType::A, &fail);
        assert_eq!(
            d,
            Decision {
                kind: Some(Kind::Denial),
                ttl: 5,
                store: true
            }
        );
        let off = config("cache {\n servfail 0\n}");
        assert!(!decide_for(&off, q, RecordType::A, &fail).store);
        let long = config("cache {\n servfail 1m\n}");
        assert_eq!(long.servfail, Duration::from_secs(60));
        assert_eq!(decide_for(&long, q, RecordType::A, &fail).ttl, 60);
    }

    #[test]
    fn delegations_are_success() {
        let c = config("cache");
        let q = "www.sub.example.org.";
        let ns = Record::from_rdata(
            name("sub.example.org."),
            120,
            RData::NS(NS(name("ns1.sub.example.org."))),
        );
        let d = decide_for(
            &c,
            q,
            RecordType::A,
            &answer(ResponseCode::NoError, vec![], vec![ns]),
        );
        assert_eq!(
            d,
            Decision {
                kind: Some(Kind::Success),
                ttl: 120,
                store: true
            }
        );
    }

    #[test]
    fn disabled_zones_are_not_stored_but_still_rewritten() {
        let c = config("cache {\n disable success cluster.local\n disable denial example.org\n}");
        let ok = answer(
            ResponseCode::NoError,
            vec![a("s.ns.svc.cluster.local.", 0)],
            vec![],
        );
        let d = decide_for(&c, "s.ns.svc.cluster.local.", RecordType::A, &ok);
        assert_eq!(
            d,
            Decision {
                kind: Some(Kind::Success),
                ttl: 5,
                store: false
            }
        );
        assert!(decide_for(&c, "x.example.org.", RecordType::A, &ok).store);
        let nx = answer(ResponseCode::NXDomain, vec![], vec![soa(30, 30)]);
        assert!(!decide_for(&c, "x.example.org.", RecordType::A, &nx).store);
        assert!(decide_for(&c, "x.cluster.local.", RecordType::A, &nx).store);
    }
}
