//! The cluster index: the DNS-relevant cluster state with hash lookups by name and by IP, updated
//! per object in place (copy-on-write shards), and the `Store` that publishes snapshots atomically
//! for lock-free reads. Knows no DNS wire format and no query rules (that is `lookup`).
//!
//! Every map is split into [`SHARDS`] shards behind `Arc`s. Cloning an `Index` (to publish a
//! snapshot) copies only the shard pointers; changing one object afterwards copies only the shards
//! it touches (`Arc::make_mut`). So an event costs the size of the object plus a few shards, never
//! a rebuild of the whole cluster, and queries read an immutable snapshot without locks.

use std::borrow::Borrow;
use std::cmp::Ordering as CmpOrdering;
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use hickory_proto::rr::Name;

use super::model::{self, Object, Port, ServiceKind, Str};
use crate::dns::ip::dashed;

/// Shards per map: a copy-on-write touches 1/SHARDS of a map.
const SHARDS: usize = 64;

/// A hash map split into shards that are shared between snapshots and copied on first write.
#[derive(Clone)]
struct CowMap<K, V> {
    shards: Box<[Arc<HashMap<K, V>>]>,
}

impl<K, V> fmt::Debug for CowMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CowMap({} entries)", self.len())
    }
}

impl<K, V> Default for CowMap<K, V> {
    fn default() -> Self {
        CowMap {
            shards: (0..SHARDS).map(|_| Arc::new(HashMap::new())).collect(),
        }
    }
}

/// Fixed (unkeyed) hash, so a key picks the same shard in every snapshot.
fn fixed_hash<Q: Hash + ?Sized>(key: &Q) -> u64 {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

fn shard_of<Q: Hash + ?Sized>(key: &Q) -> usize {
    // SHARDS fits in u64 and the remainder fits in usize.
    (fixed_hash(key) % SHARDS as u64) as usize
}

impl<K, V> CowMap<K, V> {
    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.len()).sum()
    }

    fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.shards.iter().flat_map(|s| s.iter())
    }
}

impl<K: Hash + Eq + Clone, V: Clone> CowMap<K, V> {
    fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shards.get(shard_of(key))?.get(key)
    }

    fn insert(&mut self, key: K, value: V) {
        if let Some(shard) = self.shards.get_mut(shard_of(&key)) {
            Arc::make_mut(shard).insert(key, value);
        }
    }

    fn remove<Q>(&mut self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(shard) = self.shards.get_mut(shard_of(key)) {
            // Copy the shard only when there is something to remove.
            if shard.contains_key(key) {
                Arc::make_mut(shard).remove(key);
            }
        }
    }
}

/// One value or a few, cheap to clone (a shard copy clones every value of the shard).
#[derive(Clone, Debug, PartialEq)]
enum Few<T> {
    One(T),
    Many(Arc<[T]>),
}

impl<T: Clone> Few<T> {
    fn as_slice(&self) -> &[T] {
        match self {
            Few::One(t) => std::slice::from_ref(t),
            Few::Many(all) => all,
        }
    }

    fn from_vec(mut v: Vec<T>) -> Option<Few<T>> {
        match v.len() {
            0 => None,
            1 => v.pop().map(Few::One),
            _ => Some(Few::Many(v.into())),
        }
    }
}

/// Replace the list under `key` with `f(list)`; an empty result removes the key.
fn edit_few<K: Hash + Eq + Clone, T: Clone>(
    map: &mut CowMap<K, Few<T>>,
    key: K,
    f: impl FnOnce(&mut Vec<T>),
) {
    let mut list = map
        .get(&key)
        .map(|few| few.as_slice().to_vec())
        .unwrap_or_default();
    f(&mut list);
    match Few::from_vec(list) {
        Some(few) => map.insert(key, few),
        None => map.remove(&key),
    }
}

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
    /// Names of the group's slices, sorted; `slice_ports` and `Endpoint::slice` follow this order.
    pub(crate) slice_names: Box<[Str]>,
    /// Ports of each slice, indexed by `Endpoint::slice`.
    pub(crate) slice_ports: Vec<Box<[Port]>>,
    /// Every ready (endpoint, address) pair of every slice, in slice-name order then slice order.
    pub(crate) endpoints: Vec<Endpoint>,
    /// Distinct ready addresses across all slices, in first-seen order.
    pub(crate) ready_addrs: Box<[IpAddr]>,
}

#[derive(Clone, Debug, PartialEq)]
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
#[derive(Clone, Debug, PartialEq)]
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

/// One slice while a group is being rebuilt.
struct SliceParts {
    name: Str,
    ports: Box<[Port]>,
    endpoints: Vec<Endpoint>,
}

fn sentinel_ports() -> Box<[Port]> {
    Box::new([Port {
        name: "".into(),
        protocol: "".into(),
        port: -1,
    }])
}

fn service_data(svc: model::Service) -> ServiceData {
    let ports: Box<[Port]> = if svc.ports.is_empty() {
        sentinel_ports()
    } else {
        svc.ports.into_boxed_slice()
    };
    ServiceData {
        kind: svc.kind,
        ports,
    }
}

fn slice_parts(slice: model::EndpointSlice) -> SliceParts {
    let ports: Box<[Port]> = if slice.ports.is_empty() {
        sentinel_ports()
    } else {
        slice.ports.into_boxed_slice()
    };
    let mut endpoints = Vec::new();
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
                slice: 0,
                addr,
                name,
                pod_name: pod_name.clone(),
            });
        }
    }
    SliceParts {
        name: slice.name,
        ports,
        endpoints,
    }
}

impl Group {
    /// Take a group apart into its service and slices (the inverse of `assemble`).
    fn parts(&self) -> (Option<ServiceData>, Vec<SliceParts>) {
        let mut slices: Vec<SliceParts> = self
            .slice_names
            .iter()
            .zip(&self.slice_ports)
            .map(|(name, ports)| SliceParts {
                name: name.clone(),
                ports: ports.clone(),
                endpoints: Vec::new(),
            })
            .collect();
        for ep in &self.endpoints {
            if let Some(slice) = slices.get_mut(ep.slice as usize) {
                slice.endpoints.push(ep.clone());
            }
        }
        (self.service.clone(), slices)
    }

    /// Build a group; `None` when it has neither a Service nor a slice.
    fn assemble(
        namespace: Str,
        name: Str,
        service: Option<ServiceData>,
        mut slices: Vec<SliceParts>,
    ) -> Option<Group> {
        if service.is_none() && slices.is_empty() {
            return None;
        }
        slices.sort_by(|a, b| a.name.cmp(&b.name));
        let rel =
            Name::from_labels([name.as_bytes(), namespace.as_bytes(), b"svc".as_slice()]).ok();
        let mut slice_names = Vec::with_capacity(slices.len());
        let mut slice_ports = Vec::with_capacity(slices.len());
        let mut endpoints = Vec::new();
        let mut ready: Vec<IpAddr> = Vec::new();
        let mut seen: HashSet<IpAddr> = HashSet::new();
        for (slice_id, slice) in slices.into_iter().enumerate() {
            let slice_id = u32::try_from(slice_id).unwrap_or(u32::MAX);
            slice_names.push(slice.name);
            slice_ports.push(slice.ports);
            for mut ep in slice.endpoints {
                ep.slice = slice_id;
                if seen.insert(ep.addr) {
                    ready.push(ep.addr);
                }
                endpoints.push(ep);
            }
        }
        endpoints.shrink_to_fit();
        Some(Group {
            namespace,
            name,
            rel,
            service,
            slice_names: slice_names.into_boxed_slice(),
            slice_ports,
            endpoints,
            ready_addrs: ready.into_boxed_slice(),
        })
    }
}

/// The index. A published snapshot is immutable; the source that owns the working copy changes
/// it per object and publishes a clone (cheap: shard pointers only).
#[derive(Clone, Debug, Default)]
pub(crate) struct Index {
    /// Names of existing Namespace objects.
    namespaces: CowMap<Str, ()>,
    /// Group id -> group.
    groups: CowMap<u32, Arc<Group>>,
    /// `fixed_hash((namespace, name))` -> ids of groups with that hash.
    by_name: CowMap<u64, Few<u32>>,
    /// Cluster IP -> groups of Services having it, ordered by (namespace, name).
    by_cluster_ip: CowMap<IpAddr, Few<u32>>,
    /// Ready endpoint IP -> (group, endpoint position), ordered by (namespace, name, position).
    by_endpoint_ip: CowMap<IpAddr, Few<(u32, u32)>>,
    /// Pod IP -> (namespace, number of pods with that IP there).
    pods: CowMap<IpAddr, Few<(Arc<str>, u32)>>,
    /// Group ids free for reuse.
    free_ids: Vec<u32>,
    next_id: u32,
    /// SOA serial: unix seconds of the last DNS-relevant change.
    serial: u32,
}

/// Sizes of an index, for logs and the memory benchmark.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct IndexStats {
    pub(crate) groups: usize,
    pub(crate) endpoint_ips: usize,
    pub(crate) cluster_ips: usize,
    pub(crate) pod_ips: usize,
    pub(crate) namespaces: usize,
}

fn name_key(namespace: &str, name: &str) -> u64 {
    fixed_hash(&(namespace, name))
}

impl Index {
    /// Build an index from a list of objects. Later duplicates of the same (kind, namespace,
    /// name) replace earlier ones.
    pub(crate) fn build(objects: Vec<Object>) -> Index {
        let mut index = Index::default();
        let mut slice_owner: HashMap<(Str, Str), Str> = HashMap::new();
        let mut pods: HashMap<(Str, Str), (Str, IpAddr)> = HashMap::new();
        for object in objects {
            match object {
                Object::Service(svc) => {
                    index.upsert_service(svc);
                }
                Object::EndpointSlice(slice) => {
                    let id = (slice.namespace.clone(), slice.name.clone());
                    if let Some(old) = slice_owner.insert(id, slice.service.clone())
                        && old != slice.service
                    {
                        index.remove_slice(&slice.namespace, &old, &slice.name);
                    }
                    index.upsert_slice(slice);
                }
                Object::Pod(pod) => {
                    let id = (pod.namespace.clone(), pod.name.clone());
                    if let Some((ns, ip)) = pods.insert(id, (pod.namespace.clone(), pod.ip)) {
                        index.remove_pod(&ns, ip);
                    }
                    index.add_pod(&pod.namespace, pod.ip);
                }
                Object::Namespace(ns) => index.set_namespace(&ns.name, true),
            }
        }
        index
    }

    /// The SOA serial of this snapshot.
    pub(crate) fn serial(&self) -> u32 {
        self.serial
    }

    pub(crate) fn set_serial(&mut self, serial: u32) {
        self.serial = serial;
    }

    pub(crate) fn stats(&self) -> IndexStats {
        IndexStats {
            groups: self.groups.len(),
            endpoint_ips: self.by_endpoint_ip.len(),
            cluster_ips: self.by_cluster_ip.len(),
            pod_ips: self.pods.len(),
            namespaces: self.namespaces.len(),
        }
    }

    /// Whether a Namespace object of this name exists.
    pub(crate) fn namespace_exists(&self, name: &str) -> bool {
        self.namespaces.get(name).is_some()
    }

    /// Whether a (non-terminating, running or pending) pod in `namespace` has primary IP `ip`.
    /// How many Pods with primary IP `ip` live in `namespace` (hostNetwork Pods share their
    /// node's IP).
    pub(crate) fn pod_count(&self, namespace: &str, ip: IpAddr) -> u32 {
        self.pods.get(&ip).map_or(0, |few| {
            few.as_slice()
                .iter()
                .filter(|(ns, _)| &**ns == namespace)
                .map(|(_, n)| *n)
                .sum()
        })
    }

    pub(crate) fn has_pod(&self, namespace: &str, ip: IpAddr) -> bool {
        self.pods
            .get(&ip)
            .is_some_and(|few| few.as_slice().iter().any(|(ns, _)| &**ns == namespace))
    }

    fn group_id(&self, namespace: &str, name: &str) -> Option<u32> {
        self.by_name
            .get(&name_key(namespace, name))?
            .as_slice()
            .iter()
            .copied()
            .find(|id| {
                self.groups
                    .get(id)
                    .is_some_and(|g| &*g.namespace == namespace && &*g.name == name)
            })
    }

    /// The group of `(namespace, name)`.
    pub(crate) fn group(&self, namespace: &str, name: &str) -> Option<&Group> {
        let id = self.group_id(namespace, name)?;
        self.group_by_id(id)
    }

    fn group_by_id(&self, id: u32) -> Option<&Group> {
        self.groups.get(&id).map(|g| &**g)
    }

    /// Groups whose Service has `ip` among its cluster IPs, ordered by (namespace, name).
    pub(crate) fn services_by_cluster_ip(&self, ip: IpAddr) -> impl Iterator<Item = &Group> {
        self.by_cluster_ip
            .get(&ip)
            .into_iter()
            .flat_map(|ids| ids.as_slice().iter())
            .filter_map(|id| self.group_by_id(*id))
    }

    /// Ready endpoints with address `ip`, with their group.
    pub(crate) fn endpoints_by_ip(&self, ip: IpAddr) -> impl Iterator<Item = (&Group, &Endpoint)> {
        self.by_endpoint_ip
            .get(&ip)
            .into_iter()
            .flat_map(|refs| refs.as_slice().iter())
            .filter_map(|(g, e)| {
                let group = self.group_by_id(*g)?;
                let ep = group.endpoints.get(usize::try_from(*e).ok()?)?;
                Some((group, ep))
            })
    }

    /// Order of two groups by (namespace, name).
    fn order(&self, a: u32, b: u32) -> CmpOrdering {
        match (self.group_by_id(a), self.group_by_id(b)) {
            (Some(a), Some(b)) => (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)),
            _ => a.cmp(&b),
        }
    }

    /// Change the group `(namespace, name)` with `f` on its parts; returns whether it changed.
    fn modify_group(
        &mut self,
        namespace: &str,
        name: &str,
        f: impl FnOnce(&mut Option<ServiceData>, &mut Vec<SliceParts>),
    ) -> bool {
        let id = self.group_id(namespace, name);
        let old = id.and_then(|id| self.groups.get(&id).cloned());
        let (mut service, mut slices) = match &old {
            Some(group) => group.parts(),
            None => (None, Vec::new()),
        };
        f(&mut service, &mut slices);
        let new = Group::assemble(namespace.into(), name.into(), service, slices);
        if old.as_deref() == new.as_ref() {
            return false;
        }
        if let (Some(id), Some(old)) = (id, &old) {
            self.unindex(id, old);
        }
        match new {
            Some(group) => {
                let id = match id {
                    Some(id) => id,
                    None => self.new_id(namespace, name),
                };
                self.groups.insert(id, Arc::new(group));
                self.reindex(id);
            }
            None => {
                if let Some(id) = id {
                    self.groups.remove(&id);
                    edit_few(&mut self.by_name, name_key(namespace, name), |ids| {
                        ids.retain(|x| *x != id)
                    });
                    self.free_ids.push(id);
                }
            }
        }
        true
    }

    fn new_id(&mut self, namespace: &str, name: &str) -> u32 {
        let id = self.free_ids.pop().unwrap_or_else(|| {
            let id = self.next_id;
            self.next_id = self.next_id.saturating_add(1);
            id
        });
        edit_few(&mut self.by_name, name_key(namespace, name), |ids| {
            ids.push(id)
        });
        id
    }

    /// Remove the IP entries of group `id` (whose content was `old`).
    fn unindex(&mut self, id: u32, old: &Group) {
        if let Some(ServiceData {
            kind: ServiceKind::ClusterIp(ips),
            ..
        }) = &old.service
        {
            for ip in ips {
                edit_few(&mut self.by_cluster_ip, *ip, |ids| ids.retain(|x| *x != id));
            }
        }
        for ip in old.ready_addrs.iter() {
            edit_few(&mut self.by_endpoint_ip, *ip, |refs| {
                refs.retain(|(g, _)| *g != id)
            });
        }
    }

    /// Add the IP entries of group `id` (already in `groups`).
    fn reindex(&mut self, id: u32) {
        let Some(group) = self.groups.get(&id).cloned() else {
            return;
        };
        if let Some(ServiceData {
            kind: ServiceKind::ClusterIp(ips),
            ..
        }) = &group.service
        {
            for ip in ips {
                let mut list: Vec<u32> = self
                    .by_cluster_ip
                    .get(ip)
                    .map(|f| f.as_slice().to_vec())
                    .unwrap_or_default();
                if !list.contains(&id) {
                    list.push(id);
                }
                list.sort_by(|a, b| self.order(*a, *b));
                edit_few(&mut self.by_cluster_ip, *ip, |l| *l = list);
            }
        }
        let mut positions: HashMap<IpAddr, Vec<u32>> = HashMap::new();
        for (pos, ep) in group.endpoints.iter().enumerate() {
            let pos = u32::try_from(pos).unwrap_or(u32::MAX);
            positions.entry(ep.addr).or_default().push(pos);
        }
        for (ip, pos) in positions {
            let mut list: Vec<(u32, u32)> = self
                .by_endpoint_ip
                .get(&ip)
                .map(|f| f.as_slice().to_vec())
                .unwrap_or_default();
            list.extend(pos.into_iter().map(|p| (id, p)));
            list.sort_by(|a, b| self.order(a.0, b.0).then(a.1.cmp(&b.1)));
            edit_few(&mut self.by_endpoint_ip, ip, |l| *l = list);
        }
    }

    /// Add or replace a Service. Returns whether answers may have changed.
    pub(crate) fn upsert_service(&mut self, svc: model::Service) -> bool {
        let namespace = svc.namespace.clone();
        let name = svc.name.clone();
        let data = service_data(svc);
        self.modify_group(&namespace, &name, |service, _| *service = Some(data))
    }

    pub(crate) fn remove_service(&mut self, namespace: &str, name: &str) -> bool {
        self.modify_group(namespace, name, |service, _| *service = None)
    }

    /// Add or replace a slice in the group of its service label. A slice without the label is
    /// never served (CoreDNS indexes it under an empty service name no query reaches).
    pub(crate) fn upsert_slice(&mut self, slice: model::EndpointSlice) -> bool {
        if slice.service.is_empty() {
            return false;
        }
        let namespace = slice.namespace.clone();
        let service = slice.service.clone();
        let parts = slice_parts(slice);
        self.modify_group(&namespace, &service, |_, slices| {
            match slices.iter_mut().find(|s| s.name == parts.name) {
                Some(old) => *old = parts,
                None => slices.push(parts),
            }
        })
    }

    pub(crate) fn remove_slice(&mut self, namespace: &str, service: &str, name: &str) -> bool {
        if service.is_empty() || self.group_id(namespace, service).is_none() {
            return false;
        }
        self.modify_group(namespace, service, |_, slices| {
            slices.retain(|s| &*s.name != name)
        })
    }

    /// Count one more pod with primary IP `ip` in `namespace`.
    pub(crate) fn add_pod(&mut self, namespace: &str, ip: IpAddr) -> bool {
        let mut added = false;
        edit_few(&mut self.pods, ip, |list| {
            match list.iter_mut().find(|(ns, _)| &**ns == namespace) {
                Some((_, n)) => *n = n.saturating_add(1),
                None => {
                    list.push((namespace.into(), 1));
                    added = true;
                }
            }
        });
        added
    }

    /// Count one pod less with primary IP `ip` in `namespace`.
    pub(crate) fn remove_pod(&mut self, namespace: &str, ip: IpAddr) -> bool {
        if !self.has_pod(namespace, ip) {
            return false;
        }
        let mut removed = false;
        edit_few(&mut self.pods, ip, |list| {
            for (ns, n) in list.iter_mut() {
                if &**ns == namespace {
                    *n = n.saturating_sub(1);
                    removed = *n == 0;
                }
            }
            list.retain(|(_, n)| *n > 0);
        });
        removed
    }

    /// A Namespace object appeared or went away (no effect on the serial, as in CoreDNS).
    pub(crate) fn set_namespace(&mut self, name: &str, exists: bool) {
        if exists {
            if !self.namespace_exists(name) {
                self.namespaces.insert(name.into(), ());
            }
        } else {
            self.namespaces.remove(name);
        }
    }

    /// Whether two indexes answer the same (namespace existence excluded: CoreDNS does not
    /// bump the serial on namespace events).
    fn same_dns_content(&self, other: &Index) -> bool {
        let pod_set = |few: &Few<(Arc<str>, u32)>| -> Vec<Arc<str>> {
            let mut v: Vec<Arc<str>> = few.as_slice().iter().map(|(ns, _)| ns.clone()).collect();
            v.sort();
            v
        };
        self.groups.len() == other.groups.len()
            && self.groups.iter().all(|(_, g)| {
                other
                    .group(&g.namespace, &g.name)
                    .is_some_and(|o| o == g.as_ref())
            })
            && self.pods.len() == other.pods.len()
            && self.pods.iter().all(|(ip, few)| {
                other
                    .pods
                    .get(ip)
                    .is_some_and(|o| pod_set(o) == pod_set(few))
            })
    }
}

/// The current snapshot for queries (lock-free loads), whether the sources have synced, and the
/// serial bookkeeping. Sources call `replace` (whole lists) or `publish` (their own working
/// index), and `set_synced`.
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

    /// Swap in a snapshot a source built (its serial already set).
    pub(crate) fn publish(&self, index: Index) {
        self.index.store(Arc::new(index));
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

/// Seconds since the Unix epoch (the SOA serial clock).
pub(crate) fn unix_now() -> u32 {
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
        assert!(index.namespace_exists("ns"));
        assert!(index.has_pod("ns", "10.1.0.1".parse().unwrap()));
        assert!(!index.has_pod("other", "10.1.0.1".parse().unwrap()));
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
        assert!(store.guard().namespace_exists("ns"));
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
