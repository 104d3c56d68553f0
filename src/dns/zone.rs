//! Zone arguments to names: a domain becomes a lower-case FQDN, a CIDR becomes the reverse
//! zones that cover it (as CoreDNS's `plugin.Host(..).NormalizeExact()` does for plugin zones).

use hickory_proto::rr::Name;

use super::cidr;

/// A zone argument that is neither a domain name nor a CIDR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZoneError {
    #[error("invalid zone '{0}', expected a domain name or a CIDR")]
    Invalid(String),
}

/// The zones `text` stands for: one lower-case FQDN for a domain (`.` is the root), or the
/// reverse zones of a CIDR (`10.0.0.0/15` gives two).
pub fn normalize(text: &str) -> Result<Vec<Name>, ZoneError> {
    let invalid = || ZoneError::Invalid(text.to_owned());
    if text.is_empty() {
        return Err(invalid());
    }
    if let Some(net) = cidr::parse(text).map_err(|_| invalid())? {
        return Ok(cidr::reverse_zones(net));
    }
    let mut name = Name::from_ascii(text)
        .map_err(|_| invalid())?
        .to_lowercase();
    name.set_fqdn(true);
    Ok(vec![name])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Result<Vec<String>, String> {
        normalize(text)
            .map(|v| v.iter().map(ToString::to_string).collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn normalize_cases() {
        let ok = |v: &[&str]| Ok(v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        assert_eq!(names("."), ok(&["."]));
        assert_eq!(names("Cluster.Local"), ok(&["cluster.local."]));
        assert_eq!(names("example.org."), ok(&["example.org."]));
        assert_eq!(names("10.0.0.0/8"), ok(&["10.in-addr.arpa."]));
        assert_eq!(
            names("10.0.0.0/15"),
            ok(&["0.10.in-addr.arpa.", "1.10.in-addr.arpa."])
        );
        assert_eq!(
            names("10.0.0.0/33"),
            Err("invalid zone '10.0.0.0/33', expected a domain name or a CIDR".to_owned())
        );
        assert_eq!(
            names(""),
            Err("invalid zone '', expected a domain name or a CIDR".to_owned())
        );
        assert!(names("a..b").is_err());
    }
}
