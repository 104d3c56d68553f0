//! CIDR to reverse zones: a network split on octet (IPv4) or nibble (IPv6) boundaries, as
//! CoreDNS does for server keys and plugin zones written as CIDR.

use std::net::IpAddr;

use hickory_proto::rr::Name;
use ipnet::IpNet;

/// Error for a CIDR that cannot become reverse zones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("'{0}' is not a CIDR")]
    NotCidr(String),
}

/// Parse `text` as a CIDR; `Ok(None)` if it is not written as one (no `/`).
pub fn parse(text: &str) -> Result<Option<IpNet>, CidrError> {
    if !text.contains('/') {
        return Ok(None);
    }
    text.parse::<IpNet>()
        .map(Some)
        .map_err(|_| CidrError::NotCidr(text.to_owned()))
}

/// The reverse zones (`in-addr.arpa.` / `ip6.arpa.`) that exactly cover `net`, lower-case FQDNs,
/// in address order. `10.0.0.0/15` gives `0.10.in-addr.arpa.` and `1.10.in-addr.arpa.`.
/// At most 128 zones (an IPv4 prefix 7 bits short of an octet boundary).
pub fn reverse_zones(net: IpNet) -> Vec<Name> {
    let net = net.trunc();
    let unit = match net {
        IpNet::V4(_) => 8u8,
        IpNet::V6(_) => 4u8,
    };
    let prefix = net.prefix_len();
    // Round the prefix up to the next label boundary; the zones are the subnets of that length.
    let boundary = prefix.div_ceil(unit) * unit;
    let count_bits = boundary - prefix;
    let subnets: Vec<IpNet> = match net.subnets(boundary) {
        Ok(subnets) if count_bits > 0 => subnets.collect(),
        _ => vec![net],
    };
    let labels = usize::from(boundary / unit);
    subnets
        .into_iter()
        .map(|sub| zone_name(sub.network(), labels))
        .collect()
}

/// The reverse name of the first `labels` octets/nibbles of `ip`, e.g. `0.10.in-addr.arpa.`.
fn zone_name(ip: IpAddr, labels: usize) -> Name {
    let mut text = String::with_capacity(labels * 2 + 10);
    match ip {
        IpAddr::V4(v4) => {
            for octet in v4.octets().iter().take(labels).rev() {
                text.push_str(&octet.to_string());
                text.push('.');
            }
            text.push_str("in-addr.arpa.");
        }
        IpAddr::V6(v6) => {
            let nibbles: Vec<u8> = v6
                .octets()
                .iter()
                .flat_map(|b| [b >> 4, b & 0x0f])
                .collect();
            for n in nibbles.iter().take(labels).rev() {
                text.push(char::from_digit(u32::from(*n), 16).unwrap_or('0'));
                text.push('.');
            }
            text.push_str("ip6.arpa.");
        }
    }
    // Built only from digits, hex digits and dots: always a valid name.
    Name::from_ascii(&text).unwrap_or_else(|_| Name::root())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zones(cidr: &str) -> Vec<String> {
        let net = parse(cidr).unwrap().unwrap();
        reverse_zones(net)
            .into_iter()
            .map(|n| n.to_ascii())
            .collect()
    }

    #[test]
    fn coredns_cidr_vectors() {
        assert_eq!(
            zones("10.0.0.0/15"),
            ["0.10.in-addr.arpa.", "1.10.in-addr.arpa."]
        );
        assert_eq!(zones("10.0.0.0/16"), ["0.10.in-addr.arpa."]);
        assert_eq!(
            zones("192.168.1.1/23"),
            ["0.168.192.in-addr.arpa.", "1.168.192.in-addr.arpa."]
        );
        assert_eq!(
            zones("10.129.60.0/22"),
            [
                "60.129.10.in-addr.arpa.",
                "61.129.10.in-addr.arpa.",
                "62.129.10.in-addr.arpa.",
                "63.129.10.in-addr.arpa."
            ]
        );
        assert_eq!(
            zones("2001:db8::/31"),
            ["8.b.d.0.1.0.0.2.ip6.arpa.", "9.b.d.0.1.0.0.2.ip6.arpa."]
        );
        assert_eq!(zones("10.96.0.0/24"), ["0.96.10.in-addr.arpa."]);
        assert_eq!(
            zones("1234:abcd::0/64"),
            ["0.0.0.0.0.0.0.0.d.c.b.a.4.3.2.1.ip6.arpa."]
        );
        assert_eq!(zones("10.0.0.0/27").len(), 32);
        assert_eq!(zones("10.0.0.0/27")[1], "1.0.0.10.in-addr.arpa.");
    }

    #[test]
    fn not_cidr() {
        assert_eq!(parse("cluster.local").unwrap(), None);
        assert!(parse("10.0.0.0/33").is_err());
        assert!(parse("foo/8").is_err());
    }
}
