//! Queries drawn from a generated cluster and its near misses: every record kind, many qtypes,
//! random letter case, a label too many or too few, over UDP without EDNS, with EDNS
//! 512/1232/4096, and over TCP. The same seed gives the same queries.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom as _;
use rand::{RngExt as _, SeedableRng as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpStream, UdpSocket};

use crate::model::{Cluster, Kind};

const ZONE: &str = "cluster.local.";
const WAIT: Duration = Duration::from_secs(3);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    Udp,
    Edns(u16),
    Tcp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::Udp => write!(f, "udp"),
            Transport::Edns(n) => write!(f, "udp+edns{n}"),
            Transport::Tcp => write!(f, "tcp"),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Q {
    pub(crate) name: String,
    pub(crate) qtype: RecordType,
    pub(crate) transport: Transport,
    /// What the name is (for the difference classes): `svc`, `endpoint`, `srv`, `pod`, ...
    pub(crate) kind: &'static str,
}

impl fmt::Display for Q {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} over {} ({})",
            self.name, self.qtype, self.transport, self.kind
        )
    }
}

const COMMON: &[RecordType] = &[
    RecordType::A,
    RecordType::A,
    RecordType::AAAA,
    RecordType::AAAA,
    RecordType::SRV,
    RecordType::SRV,
    RecordType::TXT,
    RecordType::CNAME,
    RecordType::ANY,
    RecordType::NS,
    RecordType::SOA,
    RecordType::PTR,
    RecordType::MX,
    RecordType::HINFO,
    RecordType::CAA,
    RecordType::NULL,
    RecordType::HTTPS,
    RecordType::Unknown(65280),
];

fn random_case(rng: &mut StdRng, name: &str) -> String {
    if !rng.random_bool(0.2) {
        return name.to_owned();
    }
    name.chars()
        .map(|c| {
            if rng.random_bool(0.5) {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

fn dashed(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string().replace('.', "-"),
        IpAddr::V6(v6) => v6.to_string().replace(':', "-"),
    }
}

fn reverse(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut out = String::new();
            for byte in v6.octets().iter().rev() {
                out.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
            }
            out.push_str("ip6.arpa.");
            out
        }
    }
}

/// The queries of one seed (a fixed number drawn from a pool of names).
pub(crate) fn generate(seed: u64, cluster: &Cluster, count: usize) -> Vec<Q> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x005e_ed0f_d1ff);
    // (name, kind, qtypes to prefer)
    let mut pool: Vec<(String, &'static str, &'static [RecordType])> = Vec::new();
    const ADDR: &[RecordType] = &[RecordType::A, RecordType::AAAA];
    const SRV: &[RecordType] = &[RecordType::SRV];
    const PTR: &[RecordType] = &[RecordType::PTR];
    let any: &'static [RecordType] = COMMON;
    pool.push((ZONE.to_owned(), "apex", any));
    pool.push((ZONE.to_owned(), "apex", &[RecordType::NS, RecordType::SOA]));
    pool.push((format!("ns.dns.{ZONE}"), "ns.dns", ADDR));
    pool.push((format!("ns.dns.{ZONE}"), "ns.dns", any));
    pool.push((
        format!("dns-version.{ZONE}"),
        "dns-version",
        &[RecordType::TXT],
    ));
    pool.push((format!("dns.{ZONE}"), "near-apex", any));
    pool.push((format!("svc.{ZONE}"), "svc-node", any));
    pool.push((format!("pod.{ZONE}"), "pod-node", any));
    pool.push((format!("x.{ZONE}"), "near-apex", any));
    pool.push(("in-addr.arpa.".to_owned(), "reverse-apex", any));
    pool.push(("ip6.arpa.".to_owned(), "reverse-apex", any));
    pool.push(("10.in-addr.arpa.".to_owned(), "reverse-partial", PTR));
    pool.push(("96.10.in-addr.arpa.".to_owned(), "reverse-partial", PTR));
    pool.push(("example.org.".to_owned(), "outside", ADDR));
    pool.push(("external.test.".to_owned(), "outside", ADDR));
    for ns in &cluster.namespaces {
        pool.push((format!("{}.svc.{ZONE}", ns.name), "ns-node", any));
        pool.push((format!("{}.pod.{ZONE}", ns.name), "ns-node", any));
        pool.push((format!("{}x.svc.{ZONE}", ns.name), "near-ns", any));
    }
    for svc in &cluster.services {
        let base = format!("{}.{}.svc.{ZONE}", svc.name, svc.ns);
        let kind = match svc.kind {
            Kind::ExternalName => "externalname",
            Kind::Headless => "headless",
            _ => "svc",
        };
        pool.push((base.clone(), kind, ADDR));
        pool.push((base.clone(), kind, any));
        pool.push((base.clone(), kind, SRV));
        pool.push((
            format!("{}x.{}.svc.{ZONE}", svc.name, svc.ns),
            "near-svc",
            any,
        ));
        let below = if svc.kind == Kind::ExternalName {
            "below-externalname"
        } else {
            "below-svc"
        };
        pool.push((format!("a.b.{base}"), below, any));
        pool.push((format!("zz.{base}"), below, any));
        pool.push((format!("{}.svc.{ZONE}", svc.name), "too-short", any));
        for p in &svc.ports {
            let pname = if p.name.is_empty() { "x" } else { &p.name };
            let proto = p.protocol.to_ascii_lowercase();
            let srv = if svc.kind == Kind::ExternalName {
                "srv-externalname"
            } else {
                "srv"
            };
            pool.push((format!("_{pname}._{proto}.{base}"), srv, SRV));
            pool.push((format!("_{pname}._{proto}.{base}"), srv, any));
            pool.push((format!("_{proto}.{base}"), "srv-short", SRV));
            pool.push((format!("x._{pname}._{proto}.{base}"), "srv-long", SRV));
            pool.push((format!("_{pname}._udp.{base}"), "srv-miss", SRV));
        }
        pool.push((format!("_nope._tcp.{base}"), "srv-miss", SRV));
        if svc.kind == Kind::ExternalName {
            pool.push((format!("_http._tcp.{base}"), "srv-externalname", SRV));
        }
        for ip in &svc.cluster_ips {
            pool.push((reverse(*ip), "ptr-svc", PTR));
        }
        for slice in &svc.slices {
            for ep in &slice.endpoints {
                let label = ep.hostname.clone().unwrap_or_else(|| dashed(ep.addr));
                pool.push((format!("{label}.{base}"), "endpoint", ADDR));
                pool.push((format!("{label}.{base}"), "endpoint", any));
                if let Some(p) = &ep.pod {
                    pool.push((format!("{p}.{base}"), "endpoint-pod", ADDR));
                }
                pool.push((reverse(ep.addr), "ptr-endpoint", PTR));
            }
        }
    }
    for pod in &cluster.pods {
        for ip in &pod.ips {
            pool.push((
                format!("{}.{}.pod.{ZONE}", dashed(*ip), pod.ns),
                "pod",
                ADDR,
            ));
            pool.push((format!("{}.{}.pod.{ZONE}", dashed(*ip), pod.ns), "pod", any));
            pool.push((
                format!("x.{}.{}.pod.{ZONE}", dashed(*ip), pod.ns),
                "pod-long",
                ADDR,
            ));
            pool.push((reverse(*ip), "ptr-pod", PTR));
        }
    }
    let ns0 = cluster
        .namespaces
        .first()
        .map(|n| n.name.clone())
        .unwrap_or_default();
    pool.push((format!("10-1-2-3.{ns0}.pod.{ZONE}"), "pod-unknown", ADDR));
    pool.push((format!("not-an-ip.{ns0}.pod.{ZONE}"), "pod-bad", ADDR));
    pool.push(("9.9.9.10.in-addr.arpa.".to_owned(), "ptr-unknown", PTR));

    // Near misses of 63-character labels can exceed the limit: such names are not queries.
    pool.retain(|(name, _, _)| Name::from_ascii(name).is_ok_and(|n| n.len() <= 255));
    // Draw a kind of name first, then a name of that kind: rare kinds (the apex, ExternalName)
    // get as many queries as the numerous ones (endpoints).
    let mut kinds: Vec<&'static str> = pool.iter().map(|(_, k, _)| *k).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let Some(kind) = kinds.choose(&mut rng).copied() else {
            break;
        };
        let of_kind: Vec<&(String, &'static str, &'static [RecordType])> =
            pool.iter().filter(|(_, k, _)| *k == kind).collect();
        let Some((name, kind, prefer)) = of_kind.choose(&mut rng).copied() else {
            break;
        };
        let qtype = if rng.random_bool(0.7) {
            *prefer.choose(&mut rng).unwrap_or(&RecordType::A)
        } else {
            *COMMON.choose(&mut rng).unwrap_or(&RecordType::A)
        };
        let transport = match rng.random_range(0..10) {
            0..=3 => Transport::Udp,
            4 => Transport::Edns(512),
            5 | 6 => Transport::Edns(1232),
            7 => Transport::Edns(4096),
            _ => Transport::Tcp,
        };
        out.push(Q {
            name: random_case(&mut rng, name),
            qtype,
            transport,
            kind,
        });
    }
    out
}

/// The wire bytes of `q` with id `id` (RD set, EDNS as the transport says).
pub(crate) fn wire(q: &Q, id: u16) -> Option<Vec<u8>> {
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from_ascii(&q.name).ok()?, q.qtype));
    if let Transport::Edns(size) = q.transport {
        let mut edns = Edns::new();
        edns.set_max_payload(size);
        msg.set_edns(edns);
    }
    msg.to_vec().ok()
}

/// Sends `q` to `addr`; the raw reply, or `None` after a timeout.
pub(crate) async fn ask(addr: SocketAddr, q: &Q, id: u16) -> Option<Vec<u8>> {
    let bytes = wire(q, id)?;
    match q.transport {
        Transport::Tcp => {
            let fut = async {
                let mut s = TcpStream::connect(addr).await.ok()?;
                let len = u16::try_from(bytes.len()).ok()?;
                let mut framed = len.to_be_bytes().to_vec();
                framed.extend_from_slice(&bytes);
                s.write_all(&framed).await.ok()?;
                let mut len = [0u8; 2];
                s.read_exact(&mut len).await.ok()?;
                let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
                s.read_exact(&mut buf).await.ok()?;
                Some(buf)
            };
            tokio::time::timeout(WAIT, fut).await.ok().flatten()
        }
        _ => {
            let sock = UdpSocket::bind("127.0.0.1:0").await.ok()?;
            sock.send_to(&bytes, addr).await.ok()?;
            let mut buf = vec![0u8; 65535];
            let (n, _) = tokio::time::timeout(WAIT, sock.recv_from(&mut buf))
                .await
                .ok()?
                .ok()?;
            buf.truncate(n);
            Some(buf)
        }
    }
}
