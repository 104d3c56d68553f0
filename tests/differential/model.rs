//! A seeded random cluster: namespaces, Services of every type, EndpointSlices (several per
//! Service, both families, hostnames, pod names, not-ready and terminating endpoints) and Pods,
//! created through the real kube-apiserver. The same seed gives the same objects (the apiserver
//! allocates the cluster IPs; they are read back after creation).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom as _;
use rand::{RngExt as _, SeedableRng as _};
use serde_json::{Value, json};

/// The label every option set's filters let through (the sync sentinel carries it).
pub(crate) const SVC_LABEL: (&str, &str) = ("tier", "front");
pub(crate) const NS_LABEL: (&str, &str) = ("team", "blue");

#[derive(Clone, Debug)]
pub(crate) struct Ns {
    pub(crate) name: String,
    pub(crate) labelled: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    ClusterIp,
    DualStack,
    V6Only,
    Headless,
    NodePort,
    LoadBalancer,
    ExternalName,
}

#[derive(Clone, Debug)]
pub(crate) struct SvcPort {
    pub(crate) name: String,
    pub(crate) port: u16,
    pub(crate) protocol: &'static str,
}

#[derive(Clone, Debug)]
pub(crate) struct Ep {
    pub(crate) addr: IpAddr,
    pub(crate) hostname: Option<String>,
    pub(crate) pod: Option<String>,
    pub(crate) ready: Option<bool>,
    pub(crate) terminating: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Slice {
    pub(crate) v6: bool,
    pub(crate) ports: Vec<SvcPort>,
    pub(crate) endpoints: Vec<Ep>,
}

#[derive(Clone, Debug)]
pub(crate) struct Svc {
    pub(crate) ns: String,
    pub(crate) name: String,
    pub(crate) kind: Kind,
    pub(crate) labelled: bool,
    pub(crate) ports: Vec<SvcPort>,
    pub(crate) slices: Vec<Slice>,
    pub(crate) external: Option<String>,
    /// Filled in from the apiserver after creation.
    pub(crate) cluster_ips: Vec<IpAddr>,
}

#[derive(Clone, Debug)]
pub(crate) struct PodObj {
    pub(crate) ns: String,
    pub(crate) name: String,
    pub(crate) ips: Vec<IpAddr>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Cluster {
    pub(crate) namespaces: Vec<Ns>,
    pub(crate) services: Vec<Svc>,
    pub(crate) pods: Vec<PodObj>,
}

impl Cluster {
    /// The sync sentinel: a labelled ClusterIP Service in the first (labelled) namespace.
    pub(crate) fn sentinel(&self) -> Option<&Svc> {
        self.services.iter().find(|s| s.name == "sentinel")
    }
}

const WORDS: &[&str] = &[
    "web", "api", "db", "cache", "queue", "auth", "dns", "mail", "front", "back", "x", "a1",
];
const PORT_NAMES: &[&str] = &["http", "https", "dns", "grpc", "metrics", "h2c", "p-9"];
const PROTOCOLS: &[&str] = &["TCP", "TCP", "TCP", "UDP", "SCTP"];
/// Out-of-zone ExternalName targets: the test upstream answers the first three, NXDOMAIN for the
/// rest (or nothing at all without `forward`).
const EXTERNAL_TARGETS: &[&str] = &[
    "external.test",
    "only10.test",
    "big.test",
    "missing.test",
    "nowhere.example",
];

fn word(rng: &mut StdRng) -> String {
    WORDS.choose(rng).copied().unwrap_or("w").to_owned()
}

/// A DNS-1123 label that starts with a letter, sometimes long (up to 63) or odd (digits,
/// dashes).
fn name(rng: &mut StdRng, taken: &mut Vec<String>) -> String {
    loop {
        let candidate = match rng.random_range(0..10) {
            0 => {
                let len = rng.random_range(40..=63);
                let mut s = String::from("l");
                while s.len() < len {
                    s.push(char::from(b'a' + rng.random_range(0..26u8)));
                    if s.len() < len - 1 && rng.random_bool(0.1) {
                        s.push('-');
                    }
                }
                s
            }
            1 => format!("{}-{}-{}", word(rng), rng.random_range(0..100), word(rng)),
            2 => format!("x{}", rng.random_range(0..1000)),
            _ => format!("{}{}", word(rng), rng.random_range(0..50)),
        };
        if !taken.contains(&candidate) {
            taken.push(candidate.clone());
            return candidate;
        }
    }
}

fn ports(rng: &mut StdRng, min: usize) -> Vec<SvcPort> {
    let n = rng.random_range(min..=3);
    let mut out: Vec<SvcPort> = Vec::new();
    let mut names: Vec<&str> = PORT_NAMES.to_vec();
    for _ in 0..n {
        let idx = rng.random_range(0..names.len());
        let pname = names.remove(idx);
        let port = *[53u16, 80, 443, 8080, 9153, 5000]
            .choose(rng)
            .unwrap_or(&80);
        let protocol = PROTOCOLS.choose(rng).copied().unwrap_or("TCP");
        if out.iter().any(|p| p.port == port && p.protocol == protocol) {
            continue;
        }
        out.push(SvcPort {
            // A single port may be unnamed.
            name: if n == 1 && rng.random_bool(0.3) {
                String::new()
            } else {
                pname.to_owned()
            },
            port,
            protocol,
        });
    }
    out
}

/// Generates a cluster for `seed`; names are prefixed by `d<seed>` so seeds never collide.
pub(crate) fn generate(seed: u64) -> Cluster {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut cluster = Cluster::default();
    let mut taken_ns: Vec<String> = Vec::new();
    let ns_count = rng.random_range(3..=5);
    for i in 0..ns_count {
        let base = name(&mut rng, &mut taken_ns);
        let mut nsname = format!("d{seed}-{base}");
        nsname.truncate(63);
        while nsname.ends_with('-') {
            nsname.pop();
        }
        cluster.namespaces.push(Ns {
            name: nsname,
            labelled: i == 0 || rng.random_bool(0.5),
        });
    }
    // Per-seed address block so endpoints and pods of seeds never collide.
    let block = u8::try_from(seed % 200).unwrap_or(0) + 1;
    let block = if block == 96 { 97 } else { block };
    let mut next_host: u16 = 1;
    let mut fresh_ip = |v6: bool| -> IpAddr {
        next_host += 1;
        let [hi, lo] = next_host.to_be_bytes();
        if v6 {
            IpAddr::V6(Ipv6Addr::new(
                0xfd00,
                0x10,
                0x244,
                u16::from(block),
                0,
                0,
                0,
                next_host,
            ))
        } else {
            IpAddr::V4(Ipv4Addr::new(10, block, hi, lo))
        }
    };

    let namespaces: Vec<String> = cluster.namespaces.iter().map(|n| n.name.clone()).collect();
    // The sentinel first: every option set sees it.
    cluster.services.push(Svc {
        ns: namespaces[0].clone(),
        name: "sentinel".to_owned(),
        kind: Kind::ClusterIp,
        labelled: true,
        ports: vec![SvcPort {
            name: "http".to_owned(),
            port: 80,
            protocol: "TCP",
        }],
        // One ready endpoint, so `ignore empty_service` keeps it.
        slices: vec![Slice {
            v6: false,
            ports: vec![SvcPort {
                name: "http".to_owned(),
                port: 80,
                protocol: "TCP",
            }],
            endpoints: vec![Ep {
                addr: IpAddr::V4(Ipv4Addr::new(10, block, 255, 254)),
                hostname: None,
                pod: None,
                ready: Some(true),
                terminating: false,
            }],
        }],
        external: None,
        cluster_ips: Vec::new(),
    });
    let mut in_zone_targets: Vec<String> = Vec::new();
    let mut pod_names: Vec<(String, String)> = Vec::new();
    for ns in &namespaces {
        let mut taken: Vec<String> = vec!["sentinel".to_owned()];
        let count = rng.random_range(3..=7);
        for _ in 0..count {
            let kind = *[
                Kind::ClusterIp,
                Kind::ClusterIp,
                Kind::DualStack,
                Kind::V6Only,
                Kind::Headless,
                Kind::Headless,
                Kind::NodePort,
                Kind::LoadBalancer,
                Kind::ExternalName,
            ]
            .choose(&mut rng)
            .unwrap_or(&Kind::ClusterIp);
            let svc_name = name(&mut rng, &mut taken);
            let fqdn = format!("{svc_name}.{ns}.svc.cluster.local");
            let mut svc = Svc {
                ns: ns.clone(),
                name: svc_name,
                kind,
                labelled: rng.random_bool(0.6),
                ports: Vec::new(),
                slices: Vec::new(),
                external: None,
                cluster_ips: Vec::new(),
            };
            if kind == Kind::ExternalName {
                svc.ports = ports(&mut rng, 0);
                let target = if !in_zone_targets.is_empty() && rng.random_bool(0.4) {
                    in_zone_targets
                        .choose(&mut rng)
                        .cloned()
                        .unwrap_or_default()
                } else {
                    EXTERNAL_TARGETS
                        .choose(&mut rng)
                        .copied()
                        .unwrap_or("external.test")
                        .to_owned()
                };
                svc.external = Some(target);
                cluster.services.push(svc);
                continue;
            }
            svc.ports = ports(&mut rng, if kind == Kind::Headless { 0 } else { 1 });
            let families: &[bool] = match kind {
                Kind::DualStack => &[false, true],
                Kind::V6Only => &[true],
                Kind::Headless if rng.random_bool(0.3) => &[false, true],
                _ => &[false],
            };
            let slices = rng.random_range(0..=3);
            for s in 0..slices {
                let v6 = families[s % families.len()];
                let mut slice = Slice {
                    v6,
                    ports: if rng.random_bool(0.85) {
                        svc.ports.clone()
                    } else {
                        ports(&mut rng, 0)
                    },
                    endpoints: Vec::new(),
                };
                // Now and then a wide headless slice, so replies of every size class (and
                // truncation at 512/1232/4096 bytes) are compared too.
                let wide = kind == Kind::Headless && rng.random_bool(0.25);
                let count = if wide {
                    rng.random_range(15..=90)
                } else {
                    rng.random_range(0..=4)
                };
                for _ in 0..count {
                    let addr = if rng.random_bool(0.1) {
                        // Shared by two services sometimes (PTR with several names).
                        cluster
                            .services
                            .iter()
                            .flat_map(|s| s.slices.iter())
                            .filter(|sl| sl.v6 == v6)
                            .flat_map(|sl| sl.endpoints.iter().map(|e| e.addr))
                            .next()
                            .unwrap_or_else(|| fresh_ip(v6))
                    } else {
                        fresh_ip(v6)
                    };
                    let hostname = rng
                        .random_bool(0.35)
                        .then(|| name(&mut rng, &mut Vec::new()));
                    let pod = rng.random_bool(0.5).then(|| {
                        let mut p = format!("{}-{}", svc.name, rng.random_range(0..10000));
                        p.truncate(60);
                        while p.ends_with('-') {
                            p.pop();
                        }
                        p
                    });
                    if let Some(p) = &pod
                        && !pod_names.iter().any(|(n, pn)| n == ns && pn == p)
                    {
                        pod_names.push((ns.clone(), p.clone()));
                        cluster.pods.push(PodObj {
                            ns: ns.clone(),
                            name: p.clone(),
                            ips: vec![addr],
                        });
                    }
                    let ready = match rng.random_range(0..6) {
                        0 => Some(false),
                        1 => None,
                        _ => Some(true),
                    };
                    slice.endpoints.push(Ep {
                        addr,
                        hostname,
                        pod,
                        ready,
                        terminating: rng.random_bool(0.12),
                    });
                }
                svc.slices.push(slice);
            }
            if kind != Kind::Headless {
                in_zone_targets.push(fqdn);
            }
            cluster.services.push(svc);
        }
    }
    // Every seed has ExternalName Services of each flavour: in the zone, resolvable outside,
    // unresolvable outside.
    let mut forced: Vec<String> = vec!["external.test".to_owned(), "missing.test".to_owned()];
    if let Some(t) = in_zone_targets.first() {
        forced.push(t.clone());
    }
    for (i, target) in forced.into_iter().enumerate() {
        let ns = namespaces[(i + 1) % namespaces.len()].clone();
        cluster.services.push(Svc {
            ns,
            name: format!("ext{i}"),
            kind: Kind::ExternalName,
            labelled: true,
            ports: if i == 0 {
                vec![SvcPort {
                    name: "http".to_owned(),
                    port: 80,
                    protocol: "TCP",
                }]
            } else {
                Vec::new()
            },
            slices: Vec::new(),
            external: Some(target),
            cluster_ips: Vec::new(),
        });
    }
    // Standalone pods, some dual-stack.
    for _ in 0..rng.random_range(2..=5) {
        let ns = namespaces.choose(&mut rng).cloned().unwrap_or_default();
        let mut ips = vec![fresh_ip(false)];
        if rng.random_bool(0.4) {
            ips.push(fresh_ip(true));
        }
        let pname = format!("solo-{}", rng.random_range(0..100000));
        cluster.pods.push(PodObj {
            ns,
            name: pname,
            ips,
        });
    }
    cluster
}

fn obj<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, String> {
    serde_json::from_value(value).map_err(|e| format!("test object: {e}"))
}

fn port_json(p: &SvcPort) -> Value {
    let mut v = json!({"port": p.port, "protocol": p.protocol});
    if !p.name.is_empty() {
        v["name"] = json!(p.name);
    }
    v
}

fn labels(labelled: bool, (k, v): (&str, &str)) -> Value {
    if labelled {
        json!({ k: v })
    } else {
        json!({"other": "x"})
    }
}

/// Creates every object of `cluster` (namespaces, services, slices, pods with IPs) and fills
/// in the cluster IPs the apiserver allocated.
pub(crate) async fn apply(client: &Client, cluster: &mut Cluster) -> Result<(), String> {
    let pp = PostParams::default();
    let nss: Api<Namespace> = Api::all(client.clone());
    for ns in &cluster.namespaces {
        let object: Namespace = obj(json!({"metadata": {
            "name": ns.name, "labels": labels(ns.labelled, NS_LABEL)}}))?;
        nss.create(&pp, &object)
            .await
            .map_err(|e| format!("create namespace {}: {e}", ns.name))?;
    }
    for pod in &cluster.pods {
        let api: Api<Pod> = Api::namespaced(client.clone(), &pod.ns);
        let object: Pod = obj(json!({
            "metadata": {"name": pod.name},
            "spec": {"containers": [{"name": "c", "image": "registry.invalid/none:1"}]},
        }))?;
        api.create(&pp, &object)
            .await
            .map_err(|e| format!("create pod {}/{}: {e}", pod.ns, pod.name))?;
        let ips: Vec<Value> = pod.ips.iter().map(|ip| json!({"ip": ip})).collect();
        let status = json!({"status": {
            "phase": "Running",
            "podIP": pod.ips.first(),
            "podIPs": ips,
        }});
        api.patch_status(&pod.name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .map_err(|e| format!("pod status {}/{}: {e}", pod.ns, pod.name))?;
    }
    for svc in &mut cluster.services {
        let api: Api<Service> = Api::namespaced(client.clone(), &svc.ns);
        let ports: Vec<Value> = svc.ports.iter().map(port_json).collect();
        let mut spec = json!({"ports": ports});
        match svc.kind {
            Kind::ClusterIp => spec["type"] = json!("ClusterIP"),
            Kind::DualStack => {
                spec["ipFamilyPolicy"] = json!("RequireDualStack");
                spec["ipFamilies"] = json!(["IPv4", "IPv6"]);
            }
            Kind::V6Only => spec["ipFamilies"] = json!(["IPv6"]),
            Kind::Headless => {
                spec["clusterIP"] = json!("None");
                if svc.slices.iter().any(|s| s.v6) {
                    spec["ipFamilyPolicy"] = json!("RequireDualStack");
                }
            }
            Kind::NodePort => spec["type"] = json!("NodePort"),
            Kind::LoadBalancer => spec["type"] = json!("LoadBalancer"),
            Kind::ExternalName => {
                spec["type"] = json!("ExternalName");
                spec["externalName"] = json!(svc.external);
            }
        }
        let object: Service = obj(json!({
            "metadata": {"name": svc.name, "labels": labels(svc.labelled, SVC_LABEL)},
            "spec": spec,
        }))?;
        let created = api
            .create(&pp, &object)
            .await
            .map_err(|e| format!("create service {}/{}: {e}", svc.ns, svc.name))?;
        svc.cluster_ips = created
            .spec
            .and_then(|s| s.cluster_ips)
            .unwrap_or_default()
            .iter()
            .filter_map(|ip| ip.parse().ok())
            .collect();
        let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), &svc.ns);
        for (i, slice) in svc.slices.iter().enumerate() {
            let endpoints: Vec<Value> = slice
                .endpoints
                .iter()
                .map(|ep| {
                    let mut conditions = BTreeMap::new();
                    if let Some(ready) = ep.ready {
                        conditions.insert("ready", json!(ready));
                    }
                    if ep.terminating {
                        conditions.insert("terminating", json!(true));
                        conditions.insert("serving", json!(ep.ready.unwrap_or(false)));
                    }
                    let mut v = json!({"addresses": [ep.addr], "conditions": conditions});
                    if let Some(h) = &ep.hostname {
                        v["hostname"] = json!(h);
                    }
                    if let Some(p) = &ep.pod {
                        v["targetRef"] = json!({"kind": "Pod", "name": p, "namespace": svc.ns});
                    }
                    v
                })
                .collect();
            let mut slice_name = format!("{}-{i}", svc.name);
            if slice_name.len() > 63 {
                slice_name = format!("{}-{i}", &svc.name[..55]);
            }
            let object: EndpointSlice = obj(json!({
                "metadata": {"name": slice_name,
                    "labels": {"kubernetes.io/service-name": svc.name}},
                "addressType": if slice.v6 { "IPv6" } else { "IPv4" },
                "endpoints": endpoints,
                "ports": slice.ports.iter().map(port_json).collect::<Vec<_>>(),
            }))?;
            slices
                .create(&pp, &object)
                .await
                .map_err(|e| format!("create slice {}/{slice_name}: {e}", svc.ns))?;
        }
    }
    Ok(())
}

/// Every object of the seed's namespaces as read back from the apiserver, as one multi-document
/// YAML text (the `manifests` run).
pub(crate) async fn export_yaml(client: &Client, cluster: &Cluster) -> Result<String, String> {
    let mut docs: Vec<String> = Vec::new();
    let lp = kube::api::ListParams::default();
    let nss: Api<Namespace> = Api::all(client.clone());
    for ns in &cluster.namespaces {
        let mut object = nss
            .get(&ns.name)
            .await
            .map_err(|e| format!("get namespace {}: {e}", ns.name))?;
        object.metadata.managed_fields = None;
        docs.push(to_yaml("v1", "Namespace", &object)?);
    }
    for ns in &cluster.namespaces {
        let svcs: Api<Service> = Api::namespaced(client.clone(), &ns.name);
        for mut o in svcs.list(&lp).await.map_err(|e| e.to_string())?.items {
            o.metadata.managed_fields = None;
            docs.push(to_yaml("v1", "Service", &o)?);
        }
        let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), &ns.name);
        for mut o in slices.list(&lp).await.map_err(|e| e.to_string())?.items {
            o.metadata.managed_fields = None;
            docs.push(to_yaml("discovery.k8s.io/v1", "EndpointSlice", &o)?);
        }
        let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
        for mut o in pods.list(&lp).await.map_err(|e| e.to_string())?.items {
            o.metadata.managed_fields = None;
            docs.push(to_yaml("v1", "Pod", &o)?);
        }
    }
    Ok(docs.join("---\n"))
}

fn to_yaml<T: serde::Serialize>(
    api_version: &str,
    kind: &str,
    object: &T,
) -> Result<String, String> {
    let mut value = serde_json::to_value(object).map_err(|e| e.to_string())?;
    value["apiVersion"] = json!(api_version);
    value["kind"] = json!(kind);
    serde_yaml_ng::to_string(&value).map_err(|e| e.to_string())
}
