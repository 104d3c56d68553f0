//! Synthesized authority records: the SOA and NS records an authoritative plugin writes for its
//! zone, and address records for glue. Builders only; which values to use is the caller's.

use std::net::IpAddr;

use hickory_proto::rr::rdata::{A, AAAA, NS, SOA};
use hickory_proto::rr::{Name, RData, Record};

/// SOA timers CoreDNS uses for synthesized zones: refresh, retry, expire (seconds).
pub const SOA_REFRESH: i32 = 7200;
pub const SOA_RETRY: i32 = 1800;
pub const SOA_EXPIRE: i32 = 86400;
/// The SOA record's own TTL never exceeds this (CoreDNS `plugin.SOA`).
pub const SOA_MAX_TTL: u32 = 300;

/// The SOA of `zone` (owner exactly as given, so the caller decides the letter case):
/// MNAME `ns.dns.<zone>`, RNAME `hostmaster.<zone>`, TTL min(ttl, 300), MINIMUM `ttl`.
pub fn soa(zone: &Name, ttl: u32, serial: u32) -> Record {
    let mname = prefixed(&["ns", "dns"], zone);
    let rname = prefixed(&["hostmaster"], zone);
    let data = SOA::new(
        mname,
        rname,
        serial,
        SOA_REFRESH,
        SOA_RETRY,
        SOA_EXPIRE,
        ttl,
    );
    Record::from_rdata(zone.clone(), ttl.min(SOA_MAX_TTL), RData::SOA(data))
}

/// `labels` prepended to `zone`. Falls back to `zone` itself if the result would be too long
/// (a name of more than 255 octets); the labels used here are short, so only a zone already at
/// the length limit could hit that.
pub fn prefixed(labels: &[&str], zone: &Name) -> Name {
    Name::from_labels(labels.iter().map(|l| l.as_bytes()))
        .and_then(|rel| rel.append_domain(zone))
        .unwrap_or_else(|_| zone.clone())
}

/// An NS record `owner NS target`.
pub fn ns(owner: Name, ttl: u32, target: Name) -> Record {
    Record::from_rdata(owner, ttl, RData::NS(NS(target)))
}

/// An A or AAAA record, by the address family.
pub fn address(owner: Name, ttl: u32, ip: IpAddr) -> Record {
    let data = match ip {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    };
    Record::from_rdata(owner, ttl, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soa_fields_follow_coredns() {
        let zone = Name::from_ascii("Cluster.Local.").unwrap();
        let record = soa(&zone, 30, 1_499_347_823);
        assert_eq!(
            record.to_string(),
            "Cluster.Local. 30 IN SOA ns.dns.Cluster.Local. hostmaster.Cluster.Local. 1499347823 7200 1800 86400 30"
        );
        let capped = soa(&zone, 3600, 1);
        assert_eq!(capped.ttl, 300);
        assert!(capped.to_string().ends_with(" 3600"));
    }

    #[test]
    fn address_picks_family() {
        let owner = Name::from_ascii("a.b.").unwrap();
        assert_eq!(
            address(owner.clone(), 5, "10.0.0.1".parse().unwrap()).to_string(),
            "a.b. 5 IN A 10.0.0.1"
        );
        assert_eq!(
            address(owner, 5, "2001:db8::1".parse().unwrap()).to_string(),
            "a.b. 5 IN AAAA 2001:db8::1"
        );
    }
}
