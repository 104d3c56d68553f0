//! The cache key: lower-cased question name, type, class, and the DO and CD bits (spec §11.8).
//! A hit looks the key up by reference ([`KeyRef`]) so the hot path copies no name.

use std::hash::{Hash, Hasher};

use hickory_proto::rr::{DNSClass, LowerName, RecordType};

use crate::plugin::Query;

const DO_BIT: u8 = 1;
const CD_BIT: u8 = 2;

/// The owned key stored in the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Key {
    pub(crate) name: LowerName,
    pub(crate) qtype: RecordType,
    pub(crate) qclass: DNSClass,
    /// DO (bit 0) and CD (bit 1).
    pub(crate) flags: u8,
}

/// A key borrowed from a query, for look-ups without copying the name.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyRef<'a> {
    pub(crate) name: &'a LowerName,
    pub(crate) qtype: RecordType,
    pub(crate) qclass: DNSClass,
    pub(crate) flags: u8,
}

/// DO and CD of a query, packed as the key stores them.
fn flags_of(query: &Query<'_>) -> u8 {
    let dnssec_ok = query.edns.is_some_and(|e| e.dnssec_ok);
    (if dnssec_ok { DO_BIT } else { 0 }) | (if query.checking_disabled { CD_BIT } else { 0 })
}

impl<'a> KeyRef<'a> {
    pub(crate) fn of(query: &'a Query<'_>) -> Self {
        KeyRef {
            name: query.lower,
            qtype: query.qtype,
            qclass: query.qclass,
            flags: flags_of(query),
        }
    }

    pub(crate) fn dnssec_ok(&self) -> bool {
        self.flags & DO_BIT != 0
    }

    pub(crate) fn to_key(self) -> Key {
        Key {
            name: self.name.clone(),
            qtype: self.qtype,
            qclass: self.qclass,
            flags: self.flags,
        }
    }
}

impl Key {
    /// Whether the key was made for a query with the DO bit.
    pub(crate) fn dnssec_ok(&self) -> bool {
        self.flags & DO_BIT != 0
    }
}

// `Key` and `KeyRef` must hash identically: the same fields, in the same order.
fn hash_parts<H: Hasher>(
    name: &LowerName,
    qtype: RecordType,
    qclass: DNSClass,
    flags: u8,
    state: &mut H,
) {
    name.hash(state);
    u16::from(qtype).hash(state);
    u16::from(qclass).hash(state);
    flags.hash(state);
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_parts(&self.name, self.qtype, self.qclass, self.flags, state);
    }
}

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_parts(self.name, self.qtype, self.qclass, self.flags, state);
    }
}

impl moka::Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        self.qtype == key.qtype
            && self.qclass == key.qclass
            && self.flags == key.flags
            && *self.name == key.name
    }
}

#[cfg(test)]
mod tests {
    use std::collections::hash_map::RandomState;
    use std::hash::BuildHasher;

    use super::*;
    use crate::plugin::test_support::{NoResolve, query_for};
    use crate::plugin::{EdnsInfo, Transport};

    fn key_of(name: &str, dnssec_ok: bool, cd: bool) -> Key {
        let mut q = query_for(name, "127.0.0.1:5300", Transport::Udp, &NoResolve);
        q.checking_disabled = cd;
        q.edns = Some(EdnsInfo {
            udp_size: 1232,
            dnssec_ok,
        });
        KeyRef::of(&q).to_key()
    }

    #[test]
    fn key_is_case_insensitive_and_keeps_do_and_cd_apart() {
        let plain = key_of("Svc.Default.svc.cluster.local.", false, false);
        assert_eq!(
            plain,
            key_of("svc.default.svc.cluster.local.", false, false)
        );
        assert_ne!(plain, key_of("svc.default.svc.cluster.local.", true, false));
        assert_ne!(plain, key_of("svc.default.svc.cluster.local.", false, true));
        assert_ne!(
            key_of("svc.default.svc.cluster.local.", true, false),
            key_of("svc.default.svc.cluster.local.", false, true)
        );
        assert!(key_of("a.", true, true).dnssec_ok());
        assert_eq!(key_of("a.", true, true).flags, DO_BIT | CD_BIT);
        assert!(!plain.dnssec_ok());
    }

    #[test]
    fn borrowed_key_hashes_and_compares_like_the_owned_one() {
        let q = query_for(
            "Web.NS.svc.cluster.local.",
            "127.0.0.1:1",
            Transport::Udp,
            &NoResolve,
        );
        let borrowed = KeyRef::of(&q);
        let owned = borrowed.to_key();
        let s = RandomState::new();
        assert_eq!(s.hash_one(borrowed), s.hash_one(&owned));
        assert!(moka::Equivalent::equivalent(&borrowed, &owned));
        let other = key_of("web.ns.svc.cluster.local.", true, false);
        assert!(!moka::Equivalent::equivalent(&borrowed, &other));
    }
}
