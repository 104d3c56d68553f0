//! IP addresses in DNS names: dashed labels (`10-0-0-1`, `2001-db8--0`) both ways, and complete
//! reverse names (`in-addr.arpa.`, `ip6.arpa.`) to addresses. Pure string work, no lookups.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::Name;

/// The dashed-IP endpoint name of an address (k8s DNS spec, CoreDNS endpoint names): IPv4 `.` ->
/// `-`; IPv6 `:` -> `-`, and a result ending in `-` gets a trailing `0` so the label does not end
/// in a hyphen (`2001:db8::` -> `2001-db8--0`). The address is written in its canonical text form.
pub fn dashed(ip: IpAddr) -> String {
    let mut text = ip.to_string();
    match ip {
        IpAddr::V4(_) => text = text.replace('.', "-"),
        IpAddr::V6(_) => {
            // An IPv4-embedded form (`::ffff:1.2.3.4`) has dots too; a label must not.
            text = text.replace([':', '.'], "-");
            if text.ends_with('-') {
                text.push('0');
            }
        }
    }
    text
}

/// The address a dashed label names (pod names `1-2-3-4.ns.pod.<zone>`): exactly three `-` and no
/// `--` is IPv4 (`-` -> `.`), anything else is read as IPv6 (`-` -> `:`). `None` if the result is
/// not an address.
pub fn from_dashed(label: &str) -> Option<IpAddr> {
    let dashes = label.bytes().filter(|b| *b == b'-').count();
    if dashes == 3 && !label.contains("--") {
        label
            .replace('-', ".")
            .parse::<Ipv4Addr>()
            .ok()
            .map(IpAddr::V4)
    } else {
        label
            .replace('-', ":")
            .parse::<Ipv6Addr>()
            .ok()
            .map(IpAddr::V6)
    }
}

/// The address of a complete reverse name: four decimal octets under `in-addr.arpa.` or 32 hex
/// nibbles under `ip6.arpa.` (any letter case). Partial or malformed names give `None`.
pub fn from_reverse(name: &Name) -> Option<IpAddr> {
    let labels: Vec<&[u8]> = name.iter().collect();
    let n = labels.len();
    let is = |i: usize, want: &str| {
        labels
            .get(i)
            .is_some_and(|l| l.eq_ignore_ascii_case(want.as_bytes()))
    };
    if n >= 2 && is(n - 1, "arpa") && is(n - 2, "in-addr") {
        if n != 6 {
            return None;
        }
        let mut octets = [0u8; 4];
        for (i, label) in labels.iter().take(4).enumerate() {
            let text = std::str::from_utf8(label).ok()?;
            // Decimal without leading zeros, as Go's net.ParseIP demands.
            if text.is_empty()
                || (text.len() > 1 && text.starts_with('0'))
                || !text.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            octets[3 - i] = text.parse().ok()?;
        }
        return Some(IpAddr::V4(Ipv4Addr::from(octets)));
    }
    if n >= 2 && is(n - 1, "arpa") && is(n - 2, "ip6") {
        if n != 34 {
            return None;
        }
        let mut value: u128 = 0;
        for label in labels.iter().take(32).rev() {
            let [digit] = label else { return None };
            let nibble = char::from(*digit).to_digit(16)?;
            value = (value << 4) | u128::from(nibble);
        }
        return Some(IpAddr::V6(Ipv6Addr::from(value)));
    }
    None
}

/// Whether `name` lies under `in-addr.arpa.` or `ip6.arpa.` (the name itself included).
pub fn is_reverse(name: &Name) -> bool {
    let mut labels = name.iter().rev();
    let (Some(top), Some(second)) = (labels.next(), labels.next()) else {
        return false;
    };
    top.eq_ignore_ascii_case(b"arpa")
        && (second.eq_ignore_ascii_case(b"in-addr") || second.eq_ignore_ascii_case(b"ip6"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn dashed_matches_coredns_endpoint_hostname_vectors() {
        assert_eq!(dashed(ip("10.11.12.13")), "10-11-12-13");
        assert_eq!(
            dashed(ip("2001:db8:3333:4444:5555:6666:7777:8888")),
            "2001-db8-3333-4444-5555-6666-7777-8888"
        );
        assert_eq!(
            dashed(ip("2001:db8:3333:4444:5555:6666::")),
            "2001-db8-3333-4444-5555-6666--0"
        );
        assert_eq!(dashed(ip("2001:db8::")), "2001-db8--0");
        assert_eq!(dashed(ip("5678:abcd::1")), "5678-abcd--1");
    }

    #[test]
    fn from_dashed_reads_v4_and_v6() {
        assert_eq!(from_dashed("1-2-3-4"), Some(ip("1.2.3.4")));
        assert_eq!(from_dashed("1234-abcd--1"), Some(ip("1234:abcd::1")));
        assert_eq!(from_dashed("2001-db8--0"), Some(ip("2001:db8::0")));
        assert_eq!(from_dashed("1-2-3"), None);
        assert_eq!(from_dashed("a-b-c-d"), None);
        assert_eq!(from_dashed("300-2-3-4"), None);
        assert_eq!(from_dashed(""), None);
        assert_eq!(from_dashed("foo"), None);
    }

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    #[test]
    fn from_reverse_needs_complete_names() {
        assert_eq!(
            from_reverse(&name("4.3.2.1.in-addr.arpa.")),
            Some(ip("1.2.3.4"))
        );
        assert_eq!(
            from_reverse(&name("4.3.2.1.IN-ADDR.ARPA.")),
            Some(ip("1.2.3.4"))
        );
        assert_eq!(from_reverse(&name("3.2.1.in-addr.arpa.")), None);
        assert_eq!(from_reverse(&name("5.4.3.2.1.in-addr.arpa.")), None);
        assert_eq!(from_reverse(&name("04.3.2.1.in-addr.arpa.")), None);
        assert_eq!(from_reverse(&name("256.3.2.1.in-addr.arpa.")), None);
        assert_eq!(from_reverse(&name("x.3.2.1.in-addr.arpa.")), None);
        assert_eq!(from_reverse(&name("in-addr.arpa.")), None);
        assert_eq!(
            from_reverse(&name(
                "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
            )),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(
            from_reverse(&name(
                "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
            )),
            None
        );
        assert_eq!(
            from_reverse(&name(
                "g.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
            )),
            None
        );
        assert_eq!(from_reverse(&name("cluster.local.")), None);
    }

    #[test]
    fn reverse_detection() {
        assert!(is_reverse(&name("in-addr.arpa.")));
        assert!(is_reverse(&name("0.10.IN-ADDR.arpa.")));
        assert!(is_reverse(&name("ip6.arpa.")));
        assert!(!is_reverse(&name("arpa.")));
        assert!(!is_reverse(&name("cluster.local.")));
    }
}
