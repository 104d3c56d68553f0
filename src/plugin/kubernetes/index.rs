//! The cluster index: an immutable snapshot of the DNS-relevant cluster state with hash lookups by
//! name and by IP, and the `Store` that swaps snapshots atomically for lock-free reads. Knows no
//! DNS wire format and no query rules (that is `lookup`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use hickory_proto::rr::Name;

use super::model::{self, Object, Port, ServiceKind, Str};
use crate::dns::ip::dashed;

/// One `(namespace, name)` of a Service and/or the EndpointSlices labelled for it. Slices whose
/// Service does not exist still count for PTR and NS lookups, as in CoreDNS (endpoints are indexed
/// by their service label, not joined with the Service).
#[derive(Debug, PartialEq)]
pub(crate) struct Group {
    pub(crate) namespace: Str,
    pub(crate) name: Str,
    /// `<name>.<namespace>.svc` (relative), built once here so queries only append the zone.
    /// `None` if the names do not form a valid DNS name.
    pub(crate) rel: Option<Name>,
    pub(crate) service: Option<ServiceData>,
    /// Ports of each slice, indexed by `Endpoint::slice`.
    pub(crate) slice_ports: Vec<Box<[Port]>>,
    /// Every ready (endpoint, address) pair of every slice, in slice-name order then slice order.
    pub(crate) endpoints: Vec<Endpoint>,
    /// Distinct ready addresses across all slices, in first-seen order.
    pub(crate) ready_addrs: Box<[IpAddr]>,
}

#[derive(Debug, PartialEq)]
pub(crate) struct ServiceData {
    pub(crate) kind: ServiceKind,
    /// The Service's ports; a Service without ports holds the single sentinel port -1.
    pub(crate) ports: Box<[Port]>,
}

impl ServiceData {
    pub(crate) fn is_headless(&self) -> bool {
        matches!(self.kind, ServiceKind::Headless)
    }
}

/// One ready address of an EndpointSlice endpoint.
#[derive(Debug, PartialEq)]
pub(crate) struct Endpoint {
    pub(crate) slice: u32,
    pub(crate) addr: IpAddr,
    /// The endpoint name without `endpoint_pod_names`: hostname, else the dashed IP; lower-case.
    pub(crate) name: Str,
    /// The target pod's name (lower-case), kept only when there is no hostname: with
    /// `endpoint_pod_names` it replaces the dashed IP.
    pub(crate) pod_name: Option<Str>,
}

impl Endpoint {
    /// The endpoint's DNS label under the `endpoint_pod_names` setting (spec §2.3).
    pub(crate) fn label(&self, pod_names: bool) -> &str {
        match (&self.pod_name, pod_names) {
            (Some(pod), true) => pod,
            _ => &self.name,
        }
    }
}

#[derive(Debug, Default, PartialEq)]
pub(crate) struct NamespaceEntry {
    /// A Namespace object exists (services may be indexed in a namespace that does not).
    pub(crate) exists: bool,
    /// Service name -> index into `Index::groups`.
    pub(crate) groups: HashMap<Str, u32>,
    /// Primary IPs of the namespace's pods.
    pub(crate) pod_ips: HashSet<IpAddr>,
}

/// An immutable snapshot. Built whole from a list of objects; queries read it through an `Arc`.
#[derive(Debug, Default)]
pub(crate) struct Index {
    namespaces: HashMap<Str, NamespaceEntry>,
    /// Sorted by (namespace, name), so equal inputs in any order build equal indexes.
    groups: Vec<Group>,
    /// Cluster IP -> groups of Services having it, in group order.
    by_cluster_ip: HashMap<IpAddr, Box<[u32]>>,
    /// Ready endpoint IP -> (group, endpoint position).
    by_endpoint_ip: HashMap<IpAddr, Box<[(u32, u32)]>>,
    /// SOA serial: unix seconds of the last DNS-relevant change.
    serial: u32,
}

#[derive(Default)]
struct GroupBuilder {
    service: Option<model::Service>,
    slices: Vec<model::EndpointSlice>,
}

impl Index {
    /// Build a snapshot. Later duplicates of the same (kind, namespace, name) replace earlier ones.
    pub(crate) fn build(objects: Vec<Object>) -> Index {
        let mut builders: BTreeMap<(Str, Str), GroupBuilder> = BTreeMap::new();
        let mut namespaces: HashMap<Str, NamespaceEntry> = HashMap::new();
        let mut slice_names: HashMap<(Str, Str), (Str, usize)> = HashMap::new();
        for object in objects {
            match object {
                Object::Service(svc) => {
                    let key = (svc.namespace.clone(), svc.name.clone());
                    builders.entry(key).or_default().service = Some(svc);
                }
                Object::EndpointSlice(slice) => {
                    let key = (slice.namespace.clone(), slice.service.clone());
                    let slices = &mut builders.entry(key.clone()).or_default().slices;
                    // A re-sent slice (same namespace/name) replaces the earlier copy.
                    let id = (slice.namespace.clone(), slice.name.clone());
                    match slice_names.get(&id) {
                        Some((svc, pos)) if *svc == slice.service => {
                            if let Some(old) = slices.get_mut(*pos) {
                                *old = slice;
                            }
                        }
                        _ => {
                            slice_names.insert(id, (slice.service.clone(), slices.len()));
                            slices.push(slice);
                        }
                    }
                }
                Object::Pod(pod) => {
                    namespaces
                        .entry(pod.namespace)
                        .or_default()
                        .pod_ips
                        .insert(pod.ip);
                }
                Object::Namespace(ns) => {
                    namespaces.entry(ns.name).or_default().exists = true;
                }
            }
        }

        let mut groups = Vec::with_capacity(builders.len());
        let mut by_cluster_ip: HashMap<IpAddr, Vec<u32>> = HashMap::new();
        let mut by_endpoint_ip: HashMap<IpAddr, Vec<(u32, u32)>> = HashMap::new();
        for ((namespace, name), mut builder) in builders {
            // Slices without a service label are never served (CoreDNS indexes them under an
            // empty service name, which no query can reach).
            if name.is_empty() {
                continue;
            }
            let Ok(id) = u32::try_from(groups.len()) else {
                break;
            };
            builder.slices.sort_by(|a, b| a.name.cmp(&b.name));
            let group = build_group(namespace, name, builder);
            if let Some(ServiceData {
                kind: ServiceKind::ClusterIp(ips),
                ..
            }) = &group.service
            {
                for ip in ips {
                    by_cluster_ip.entry(*ip).or_default().push(id);
                }
            }
            for (pos, ep) in group.endpoints.iter().enumerate() {
                let pos = u32::try_from(pos).unwrap_or(u32::MAX);
                by_endpoint_ip.entry(ep.addr).or_default().push((id, pos));
            }
            namespaces
                .entry(group.namespace.clone())
                .or_default()
                .groups
                .insert(group.name.clone(), id);
            groups.push(group);
        }
        Index {
            namespaces,
            groups,
            by_cluster_ip: by_cluster_ip
                .into_iter()
                .map(|(k, v)| (k, v.into_boxed_slice()))
                .collect(),
            by_endpoint_ip: by_endpoint_ip
                .into_iter()
                .map(|(k, v)| (k, v.into_boxed_slice()))
                .collect(),
            serial: 0,
        }
    }

    /// The SOA serial of this snapshot.
    pub(crate) fn serial(&self) -> u32 {
        self.serial
    }

    /// The namespace entry, if anything (a Namespace object, a service, a pod) names it.
    pub(crate) fn namespace(&self, name: &str) -> Option<&NamespaceEntry> {
        self.namespaces.get(name)
    }

    /// The group of `(namespace, name)`.
    pub(crate) fn group(&self, namespace: &str, name: &str) -> Option<&Group> {
        let id = *self.namespaces.get(namespace)?.groups.get(name)?;
        self.group_by_id(id)
    }

    pub(crate) fn group_by_id(&self, id: u32) -> Option<&Group> {
        self.groups.get(usize::try_from(id).ok()?)
    }

    /// Groups whose Service has `ip` among its cluster IPs.
    pub(crate) fn services_by_cluster_ip(&self, ip: IpAddr) -> impl Iterator<Item = &Group> {
        self.by_cluster_ip
            .get(&ip)
            .into_iter()
            .flat_map(|ids| ids.iter())
            .filter_map(|id| self.group_by_id(*id))
    }

    /// Ready endpoints with address `ip`, with their group.
    pub(crate) fn endpoints_by_ip(&self, ip: IpAddr) -> impl Iterator<Item = (&Group, &Endpoint)> {
        self.by_endpoint_ip
            .get(&ip)
            .into_iter()
            .flat_map(|refs| refs.iter())
            .filter_map(|(g, e)| {
                let group = self.group_by_id(*g)?;
                let ep = group.endpoints.get(usize::try_from(*e).ok()?)?;
                Some((group, ep))
            })
    }

    /// Whether two snapshots answer the same (namespace existence excluded: CoreDNS does not
    /// bump the serial on namespace events).
    fn same_dns_content(&self, other: &Index) -> bool {
        let pods = |index: &Index| {
            index
                .namespaces
                .iter()
                .filter(|(_, entry)| !entry.pod_ips.is_empty())
                .count()
        };
        self.groups == other.groups
            && pods(self) == pods(other)
            && self
                .namespaces
                .iter()
                .filter(|(_, entry)| !entry.pod_ips.is_empty())
                .all(|(name, entry)| {
                    other
                        .namespaces
                        .get(name)
                        .is_some_and(|o| o.pod_ips == entry.pod_ips)
                })
    }
}

fn build_group(namespace: Str, name: Str, builder: GroupBuilder) -> Group {
    let rel = Name::from_labels([name.as_bytes(), namespace.as_bytes(), b"svc".as_slice()]).ok();
    let service = builder.service.map(|svc| {
        let ports: Box<[Port]> = if svc.ports.is_empty() {
            Box::new([Port {
                name: "".into(),
                protocol: "".into(),
                port: -1,
            }])
        } else {
            svc.ports.into_boxed_slice()
        };
        ServiceData {
            kind: svc.kind,
            ports,
        }
    });
    let mut slice_ports = Vec::with_capacity(builder.slices.len());
    let mut endpoints = Vec::new();
    let mut ready: Vec<IpAddr> = Vec::new();
    let mut seen: HashSet<IpAddr> = HashSet::new();
    for (slice_id, slice) in builder.slices.into_iter().enumerate() {
        let slice_id = u32::try_from(slice_id).unwrap_or(u32::MAX);
        let ports: Box<[Port]> = if slice.ports.is_empty() {
            Box::new([Port {
                name: "".into(),
                protocol: "".into(),
                port: -1,
            }])
        } else {
            slice.ports.into_boxed_slice()
        };
        slice_ports.push(ports);
        for ep in slice.endpoints {
            let hostname = ep
                .hostname
                .filter(|h| !h.is_empty())
                .map(|h| Str::from(h.to_ascii_lowercase()));
            let pod_name = match hostname {
                Some(_) => None,
                None => ep
                    .target_ref_name
                    .filter(|n| !n.is_empty() && n.len() < 64)
                    .map(|n| Str::from(n.to_ascii_lowercase())),
            };
            for addr in ep.addresses {
                let name = hostname.clone().unwrap_or_else(|| dashed(addr).into());
                endpoints.push(Endpoint {
                    slice: slice_id,
                    addr,
                    name,
                    pod_name: pod_name.clone(),
                });
                if seen.insert(addr) {
                    ready.push(addr);
                }
            }
        }
    }
    Group {
        namespace,
        name,
        rel,
        service,
        slice_ports,
        endpoints,
        ready_addrs: ready.into_boxed_slice(),
    }
}

/// The current snapshot for queries (lock-free loads), whether the sources have synced, and the
/// serial bookkeeping. Sources call `replace` and `set_synced`.
#[derive(Debug)]
pub(crate) struct Store {
    index: ArcSwap<Index>,
    synced: AtomicBool,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    /// An empty, never-synced store.
    pub(crate) fn new() -> Store {
        let index = Index {
            serial: unix_now(),
            ..Index::default()
        };
        Store {
            index: ArcSwap::from_pointee(index),
            synced: AtomicBool::new(false),
        }
    }

    /// Build a snapshot from `objects` and swap it in; the serial moves to now if answers changed.
    pub(crate) fn replace(&self, objects: Vec<Object>) {
        self.replace_at(objects, unix_now());
    }

    /// `replace` with the clock given (seconds since the Unix epoch).
    pub(crate) fn replace_at(&self, objects: Vec<Object>, now: u32) {
        let mut next = Index::build(objects);
        let current = self.index.load();
        next.serial = if next.same_dns_content(&current) {
            current.serial
        } else {
            now
        };
        tracing::debug!(
            plugin = "kubernetes",
            serial = next.serial,
            groups = next.groups.len(),
            "index replaced"
        );
        self.index.store(Arc::new(next));
    }

    /// A cheap guard on the current snapshot for one query (no refcount traffic in the common case).
    pub(crate) fn guard(&self) -> arc_swap::Guard<Arc<Index>> {
        self.index.load()
    }

    pub(crate) fn set_synced(&self, synced: bool) {
        self.synced.store(synced, Ordering::Release);
    }

    pub(crate) fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }
}

fn unix_now() -> u32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    u32::try_from(secs).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::kubernetes::model::{
        Endpoint as MEndpoint, EndpointSlice, Namespace, Pod, Service,
    };

    fn svc(ns: &str, name: &str, ip: &str) -> Object {
        Object::Service(Service {
            namespace: ns.into(),
            name: name.into(),
            kind: ServiceKind::ClusterIp(vec![ip.parse().unwrap()]),
            ports: vec![],
        })
    }

    fn slice(ns: &str, name: &str, svc: &str, ips: &[&str]) -> Object {
        Object::EndpointSlice(EndpointSlice {
            namespace: ns.into(),
            name: name.into(),
            service: svc.into(),
            ports: vec![],
            endpoints: ips
                .iter()
                .map(|ip| MEndpoint {
                    addresses: vec![ip.parse().unwrap()],
                    hostname: None,
                    target_ref_name: None,
                })
                .collect(),
        })
    }

    #[test]
    fn lookups_by_name_and_ip() {
        let index = Index::build(vec![
            Object::Namespace(Namespace { name: "ns".into() }),
            svc("ns", "a", "10.0.0.1"),
            slice("ns", "a-1", "a", &["10.1.0.1", "10.1.0.2"]),
            slice("ns", "a-2", "a", &["10.1.0.2"]),
            Object::Pod(Pod {
                namespace: "ns".into(),
                name: "p".into(),
                ip: "10.1.0.1".parse().unwrap(),
            }),
        ]);
        let group = index.group("ns", "a").unwrap();
        assert!(group.service.is_some());
        assert_eq!(group.endpoints.len(), 3);
        assert_eq!(group.ready_addrs.len(), 2);
        assert_eq!(group.service.as_ref().unwrap().ports[0].port, -1);
        assert_eq!(group.rel.as_ref().unwrap().to_ascii(), "a.ns.svc.");
        assert_eq!(
            index
                .services_by_cluster_ip("10.0.0.1".parse().unwrap())
                .count(),
            1
        );
        assert_eq!(
            index.endpoints_by_ip("10.1.0.2".parse().unwrap()).count(),
            2
        );
        assert!(index.namespace("ns").unwrap().exists);
        assert!(
            index
                .namespace("ns")
                .unwrap()
                .pod_ips
                .contains(&"10.1.0.1".parse().unwrap())
        );
        assert!(index.group("ns", "b").is_none());
    }

    #[test]
    fn serial_moves_only_on_dns_relevant_change() {
        let store = Store::new();
        store.replace_at(
            vec![svc("ns", "a", "10.0.0.1"), svc("ns", "b", "10.0.0.2")],
            100,
        );
        assert_eq!(store.guard().serial(), 100);
        // Same content, other order: serial kept.
        store.replace_at(
            vec![svc("ns", "b", "10.0.0.2"), svc("ns", "a", "10.0.0.1")],
            200,
        );
        assert_eq!(store.guard().serial(), 100);
        // A namespace appearing is not a serial change, but the snapshot still has it.
        store.replace_at(
            vec![
                svc("ns", "b", "10.0.0.2"),
                svc("ns", "a", "10.0.0.1"),
                Object::Namespace(Namespace { name: "ns".into() }),
            ],
            300,
        );
        assert_eq!(store.guard().serial(), 100);
        assert!(store.guard().namespace("ns").unwrap().exists);
        store.replace_at(vec![svc("ns", "a", "10.0.0.9")], 400);
        assert_eq!(store.guard().serial(), 400);
    }

    #[test]
    fn synced_flag() {
        let store = Store::new();
        assert!(!store.synced());
        store.set_synced(true);
        assert!(store.synced());
    }

    #[test]
    fn resent_slice_replaces_the_old_copy() {
        let index = Index::build(vec![
            slice("ns", "a-1", "a", &["10.1.0.1"]),
            slice("ns", "a-1", "a", &["10.1.0.9"]),
        ]);
        let group = index.group("ns", "a").unwrap();
        assert_eq!(
            group.ready_addrs.as_ref(),
            &["10.1.0.9".parse::<IpAddr>().unwrap()]
        );
    }
}
