//! The reply packer: writes a whole DNS message with name compression across every section, and
//! makes it fit a size limit the way CoreDNS does.
//!
//! CoreDNS sizes replies with its DNS library's `Msg.Truncate` (miekg/dns 1.1.72, called by
//! `request.Scrub` for every reply): the question goes in, then records are taken in order,
//! answer section first, then authority, then additional, each at its compressed size, until the
//! first one that does not fit; that record and everything after it are dropped, the OPT record's
//! own size is reserved beforehand, and TC is set when anything was dropped (or was already set).
//! Compression follows the same rules as that library, so the sizes it estimates are the sizes
//! written here, and the same records survive for every limit:
//! - a name is compressed by pointing to the longest earlier suffix with exactly the same bytes
//!   (letter case included), in the question, in owner names and in the RDATA names of the types
//!   RFC 1035 defined (CNAME, MB, MD, MF, MG, MINFO, MR, MX, NS, PTR, SOA);
//! - the SRV target is written in full (RFC 2782) but later names may point into it;
//! - only suffixes starting before offset 16384 are remembered (14-bit pointers).
//!
//! Unlike CoreDNS, a reply that fits without compression is compressed all the same (it only
//! gets smaller; CoreDNS sends it uncompressed up to 1480 bytes over UDP).
//!
//! The table of suffixes is kept per thread and reused, so packing allocates nothing once warm.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use hickory_proto::op::LowerQuery;
use hickory_proto::op::{Header, HeaderCounts, Metadata};
use hickory_proto::rr::rdata::opt::{EdnsOption, OPT};
use hickory_proto::rr::{Name, RData, Record};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

/// Length of a DNS header (RFC 1035 §4.1.1).
const HEADER_LEN: usize = 12;
/// A suffix is remembered only when it starts below this offset (pointers have 14 bits).
const POINTER_LIMIT: usize = 1 << 14;
/// The most labels a wire name can have (255 bytes, one length byte per label at least).
const MAX_LABELS: usize = 128;
/// Fixed part of an OPT record: root name, type, class, TTL, RDLENGTH.
const OPT_FIXED_LEN: usize = 11;

/// EDNS options CoreDNS copies from the request's OPT into a reply that has none of its own
/// (`request.supportedOptions`): NSID, EXPIRE, COOKIE, TCP-KEEPALIVE, PADDING.
const ECHOED_OPTIONS: [u16; 5] = [3, 9, 10, 11, 12];

/// The OPT record of a reply.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReplyOpt<'r> {
    /// The UDP payload size the reply advertises.
    pub(crate) udp_size: u16,
    /// The DO bit.
    pub(crate) dnssec_ok: bool,
    /// The request's options; the ones in `ECHOED_OPTIONS` are copied into the reply.
    pub(crate) echo: Option<&'r OPT>,
}

impl ReplyOpt<'_> {
    fn echoed(&self) -> impl Iterator<Item = (u16, &EdnsOption)> {
        self.echo
            .into_iter()
            .flat_map(|opt| opt.as_ref().iter())
            .map(|(code, option)| (u16::from(*code), option))
            .filter(|(code, _)| ECHOED_OPTIONS.contains(code))
    }

    /// Its size on the wire.
    fn wire_len(&self) -> usize {
        OPT_FIXED_LEN
            + self
                .echoed()
                .map(|(_, option)| 4 + usize::from(option.len()))
                .sum::<usize>()
    }
}

/// One message to pack.
pub(crate) struct Message<'m> {
    pub(crate) metadata: Metadata,
    pub(crate) questions: &'m [LowerQuery],
    pub(crate) answers: &'m [Record],
    pub(crate) authorities: &'m [Record],
    pub(crate) additionals: &'m [Record],
    pub(crate) opt: Option<ReplyOpt<'m>>,
}

/// What `pack` kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Packed {
    pub(crate) answers: usize,
    pub(crate) authorities: usize,
    pub(crate) additionals: usize,
    /// TC as written: set by the caller or because records were dropped.
    pub(crate) truncated: bool,
}

/// A record or name that cannot be written at all (a label over 63 bytes in a name built by
/// hand, RDATA over 64 KiB).
#[derive(Debug, thiserror::Error)]
pub(crate) enum PackError {
    #[error(
        "name {0} cannot be written: a label is longer than 63 bytes or the name longer than 255"
    )]
    Name(String),
    #[error("RDATA of a {0} record cannot be written: {1}")]
    RData(String, String),
}

/// Packs `message` into `out` (cleared first) so that it fits in `limit` bytes: everything when
/// it fits, otherwise the longest prefix of its records (answer, authority, additional, in that
/// order) that fits, with TC set. The question and the OPT record are always written.
pub(crate) fn pack(
    message: &Message<'_>,
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<Packed, PackError> {
    TABLE.with_borrow_mut(|table| {
        table.clear();
        let mut packer = Packer {
            out,
            table,
            scratch: Vec::new(),
        };
        packer.message(message, limit)
    })
}

thread_local! {
    static TABLE: RefCell<Suffixes> = RefCell::new(Suffixes::default());
}

/// Hash of a name suffix -> offset where it was written.
type Suffixes = HashMap<u64, u16, BuildHasherDefault<Prehashed>>;

/// The keys are hashes already; pass them through.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed here; fold anything else in for completeness.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

struct Packer<'a> {
    out: &'a mut Vec<u8>,
    table: &'a mut Suffixes,
    /// RDATA of the types written through hickory's encoder.
    scratch: Vec<u8>,
}

impl Packer<'_> {
    fn message(&mut self, m: &Message<'_>, limit: usize) -> Result<Packed, PackError> {
        self.out.clear();
        self.out.resize(HEADER_LEN, 0);
        for q in m.questions {
            // The question as the client wrote it (letter case included).
            let q = q.original();
            self.name(&q.name, true)?;
            self.u16(u16::from(q.query_type));
            self.u16(u16::from(q.query_class));
        }
        // The OPT record is written whatever happens; its room is kept aside.
        let opt_len = m.opt.map_or(0, |o| o.wire_len());
        let budget = limit.saturating_sub(opt_len);
        let mut full = self.out.len() >= budget;
        let mut kept = [0usize; 3];
        for (section, records) in [m.answers, m.authorities, m.additionals]
            .into_iter()
            .enumerate()
        {
            if full {
                break;
            }
            for record in records {
                let start = self.out.len();
                self.record(record)?;
                if self.out.len() > budget {
                    // This one does not fit: drop it and everything after it. The suffixes it
                    // added are never used, since nothing else is written but the OPT record.
                    self.out.truncate(start);
                    full = true;
                    break;
                }
                kept[section] += 1;
                if self.out.len() == budget {
                    full = true;
                    break;
                }
            }
        }
        let [answers, authorities, additionals] = kept;
        let dropped = answers < m.answers.len()
            || authorities < m.authorities.len()
            || additionals < m.additionals.len();
        let truncated = m.metadata.truncation || dropped;
        if let Some(opt) = &m.opt {
            self.opt(opt, m.metadata.response_code.high())?;
        }
        let mut metadata = m.metadata;
        metadata.truncation = truncated;
        let header = Header {
            metadata,
            counts: HeaderCounts {
                queries: count(m.questions.len()),
                answers: count(answers),
                authorities: count(authorities),
                additionals: count(additionals + usize::from(m.opt.is_some())),
            },
        };
        let mut head = Vec::with_capacity(HEADER_LEN);
        header
            .emit(&mut BinEncoder::new(&mut head))
            .map_err(|e| PackError::RData("header".into(), e.to_string()))?;
        self.out[..HEADER_LEN].copy_from_slice(&head[..HEADER_LEN]);
        Ok(Packed {
            answers,
            authorities,
            additionals,
            truncated,
        })
    }

    fn u16(&mut self, v: u16) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    fn record(&mut self, r: &Record) -> Result<(), PackError> {
        self.name(&r.name, true)?;
        self.u16(u16::from(r.record_type()));
        self.u16(u16::from(r.dns_class));
        self.u32(r.ttl);
        let len_at = self.out.len();
        self.u16(0);
        self.rdata(r)?;
        let rdlen = self.out.len() - len_at - 2;
        let rdlen = u16::try_from(rdlen)
            .map_err(|_| PackError::RData(r.record_type().to_string(), format!("{rdlen} bytes")))?;
        self.out[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
        Ok(())
    }

    fn rdata(&mut self, r: &Record) -> Result<(), PackError> {
        match &r.data {
            RData::A(a) => self.out.extend_from_slice(&a.0.octets()),
            RData::AAAA(a) => self.out.extend_from_slice(&a.0.octets()),
            RData::CNAME(n) => self.name(&n.0, true)?,
            RData::NS(n) => self.name(&n.0, true)?,
            RData::PTR(n) => self.name(&n.0, true)?,
            RData::MX(mx) => {
                self.u16(mx.preference);
                self.name(&mx.exchange, true)?;
            }
            RData::SOA(soa) => {
                self.name(&soa.mname, true)?;
                self.name(&soa.rname, true)?;
                self.u32(soa.serial);
                self.out.extend_from_slice(&soa.refresh.to_be_bytes());
                self.out.extend_from_slice(&soa.retry.to_be_bytes());
                self.out.extend_from_slice(&soa.expire.to_be_bytes());
                self.u32(soa.minimum);
            }
            RData::SRV(srv) => {
                self.u16(srv.priority);
                self.u16(srv.weight);
                self.u16(srv.port);
                self.name(&srv.target, false)?;
            }
            other => {
                // Every other type is written as it is, names uncompressed (RFC 3597 §4).
                self.scratch.clear();
                let mut encoder = BinEncoder::new(&mut self.scratch);
                encoder.set_name_encoding(NameEncoding::Uncompressed);
                other
                    .emit(&mut encoder)
                    .map_err(|e| PackError::RData(r.record_type().to_string(), e.to_string()))?;
                self.out.extend_from_slice(&self.scratch);
            }
        }
        Ok(())
    }

    fn opt(&mut self, opt: &ReplyOpt<'_>, rcode_high: u8) -> Result<(), PackError> {
        self.out.push(0); // root
        self.u16(41);
        self.u16(opt.udp_size);
        let flags: u32 = if opt.dnssec_ok { 0x8000 } else { 0 };
        self.u32((u32::from(rcode_high) << 24) | flags); // version 0
        let len_at = self.out.len();
        self.u16(0);
        for (code, option) in opt.echoed() {
            self.u16(code);
            self.u16(option.len());
            self.scratch.clear();
            option
                .emit(&mut BinEncoder::new(&mut self.scratch))
                .map_err(|e| PackError::RData("OPT".into(), e.to_string()))?;
            self.out.extend_from_slice(&self.scratch);
        }
        let rdlen = self.out.len() - len_at - 2;
        let rdlen = u16::try_from(rdlen)
            .map_err(|_| PackError::RData("OPT".into(), format!("{rdlen} bytes")))?;
        self.out[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
        Ok(())
    }

    /// Writes `name`: as a pointer to the longest suffix already written when `compress`, in
    /// full otherwise. Suffixes not seen before are remembered either way.
    fn name(&mut self, name: &Name, compress: bool) -> Result<(), PackError> {
        let mut labels: [&[u8]; MAX_LABELS] = [&[]; MAX_LABELS];
        let mut n = 0;
        for label in name.iter() {
            if n == MAX_LABELS || label.is_empty() || label.len() > 63 {
                return Err(PackError::Name(name.to_string()));
            }
            labels[n] = label;
            n += 1;
        }
        let labels = &labels[..n];
        // hashes[i]: hash of the suffix labels[i..], exact bytes (case included).
        let mut hashes = [0u64; MAX_LABELS];
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for i in (0..n).rev() {
            h = mix(h, labels[i]);
            hashes[i] = h;
        }
        for (i, label) in labels.iter().enumerate() {
            let here = self.out.len();
            match self.table.get(&hashes[i]) {
                Some(&at) if self.same_suffix(usize::from(at), &labels[i..]) => {
                    if compress {
                        self.u16(0xC000 | at);
                        return Ok(());
                    }
                }
                Some(_) => {} // a hash collision: write it out, remember nothing
                None => {
                    if here < POINTER_LIMIT {
                        // `here` < 16384 fits the 14 bits of a pointer.
                        self.table.insert(hashes[i], here as u16);
                    }
                }
            }
            // labels are at most 63 bytes (checked above)
            self.out.push(label.len() as u8);
            self.out.extend_from_slice(label);
        }
        self.out.push(0);
        Ok(())
    }

    /// Whether the name written at `at` is exactly `labels` (following pointers).
    fn same_suffix(&self, mut at: usize, labels: &[&[u8]]) -> bool {
        let mut rest = labels.iter();
        // Pointers only go backwards, so this ends; the bound makes that obvious.
        for _ in 0..(MAX_LABELS * 2) {
            let Some(&len) = self.out.get(at) else {
                return false;
            };
            if len & 0xC0 == 0xC0 {
                let Some(&low) = self.out.get(at + 1) else {
                    return false;
                };
                at = (usize::from(len & 0x3F) << 8) | usize::from(low);
                continue;
            }
            if len == 0 {
                return rest.next().is_none();
            }
            let Some(label) = rest.next() else {
                return false;
            };
            let end = at + 1 + usize::from(len);
            if self.out.get(at + 1..end) != Some(*label) {
                return false;
            }
            at = end;
        }
        false
    }
}

/// FNV-1a over a label and its length, chained onto the hash of the suffix after it.
fn mix(mut h: u64, label: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    h ^= label.len() as u64;
    h = h.wrapping_mul(PRIME);
    for b in label {
        h ^= u64::from(*b);
        h = h.wrapping_mul(PRIME);
    }
    h
}

fn count(n: usize) -> u16 {
    // Every section holds fewer than 65536 records: each takes at least 11 bytes of a 64 KiB
    // message.
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// For tests: the address records of a message, in order.
#[cfg(test)]
fn addresses(records: &[Record]) -> Vec<std::net::IpAddr> {
    records
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(std::net::IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(std::net::IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests;
