//! Response code mnemonics as CoreDNS prints them (miekg/dns `RcodeToString`), for logs and
//! metric labels.

use hickory_proto::op::ResponseCode;

/// The mnemonic of `code` (`NOERROR`, `NXDOMAIN`, ...; 16 is `BADSIG`, which RFC 6891 also
/// calls BADVERS), or `None` for a code without one: each caller applies CoreDNS's fallback
/// (the number in logs, `RCODE<n>` in metric labels).
pub fn rcode_name(code: ResponseCode) -> Option<&'static str> {
    Some(match u16::from(code) {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        16 => "BADSIG",
        17 => "BADKEY",
        18 => "BADTIME",
        19 => "BADMODE",
        20 => "BADNAME",
        21 => "BADALG",
        22 => "BADTRUNC",
        23 => "BADCOOKIE",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_miekg_dns() {
        assert_eq!(rcode_name(ResponseCode::NoError), Some("NOERROR"));
        assert_eq!(rcode_name(ResponseCode::NXDomain), Some("NXDOMAIN"));
        assert_eq!(rcode_name(ResponseCode::BADVERS), Some("BADSIG"));
        assert_eq!(rcode_name(ResponseCode::Unknown(3841)), None);
    }
}
