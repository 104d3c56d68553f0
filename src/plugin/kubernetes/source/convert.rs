//! Converts k8s-openapi objects into the compact model: the one place where bad API objects are
//! rejected (no name or namespace) or trimmed (invalid IPs, unready endpoints). Shared by every
//! source; knows nothing about files, watches or DNS answers. Never panics on any field combination.

use std::collections::BTreeMap;
use std::net::IpAddr;

use hickory_proto::rr::Name;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tracing::debug;

use crate::plugin::kubernetes::model::{
    Endpoint, EndpointSlice, Namespace, Pod, Port, Service, ServiceKind, Str,
};

/// The label naming the Service an EndpointSlice belongs to.
pub(crate) const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// `targetRef.name` is kept only below this length (a DNS label has at most 63 octets).
const MAX_TARGET_REF_NAME: usize = 64;

/// Why an API object cannot be converted at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ConvertError {
    #[error("{kind} has no metadata.name")]
    MissingName { kind: &'static str },
    #[error("{kind} {name:?} has no metadata.namespace")]
    MissingNamespace { kind: &'static str, name: String },
}

/// Lower-cased `metadata.name`, required.
fn name_of(kind: &'static str, meta: &ObjectMeta) -> Result<Str, ConvertError> {
    match meta.name.as_deref() {
        Some(name) if !name.is_empty() => Ok(name.to_ascii_lowercase().into()),
        _ => Err(ConvertError::MissingName { kind }),
    }
}

/// Lower-cased `(metadata.namespace, metadata.name)`, both required.
fn namespaced_name_of(kind: &'static str, meta: &ObjectMeta) -> Result<(Str, Str), ConvertError> {
    let name = name_of(kind, meta)?;
    match meta.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => Ok((ns.to_ascii_lowercase().into(), name)),
        _ => Err(ConvertError::MissingNamespace {
            kind,
            name: name.into(),
        }),
    }
}

/// The object's labels (an absent map is an empty one).
pub(crate) fn labels_of(meta: &ObjectMeta) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    meta.labels.as_ref().unwrap_or(&EMPTY)
}

fn lower(s: Option<&str>) -> Str {
    s.unwrap_or_default().to_ascii_lowercase().into()
}

/// Parses an address; invalid ones are dropped with a debug log naming the object.
fn parse_ip(kind: &str, namespace: &str, name: &str, text: &str) -> Option<IpAddr> {
    match text.trim().parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => {
            debug!(
                kind,
                namespace,
                name,
                address = text,
                "invalid IP address dropped"
            );
            None
        }
    }
}

/// The port list CoreDNS uses for an object without ports: one entry with port -1, so the object
/// still answers address queries but never SRV.
fn sentinel_ports() -> Vec<Port> {
    vec![Port {
        name: "".into(),
        protocol: "".into(),
        port: -1,
    }]
}

/// Converts a core/v1 Service.
///
/// * `type: ExternalName` → [`ServiceKind::ExternalName`] with the target made fully qualified
///   and lower-cased, or `None` if it is an IP address, empty or not a valid name.
/// * `clusterIPs[0] == "None"` (falling back to `clusterIP` when `clusterIPs` is empty) →
///   [`ServiceKind::Headless`].
/// * otherwise [`ServiceKind::ClusterIp`] with the valid addresses of `clusterIPs`, in order,
///   duplicates removed (empty when the object has none).
/// * ports: names and protocols lower-cased (absent → ""); no ports → the sentinel port -1.
pub(crate) fn service(svc: &core::Service) -> Result<Service, ConvertError> {
    const KIND: &str = "Service";
    let (namespace, name) = namespaced_name_of(KIND, &svc.metadata)?;
    let spec = svc.spec.as_ref();

    let is_external = spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName");
    let kind = if is_external {
        let target = spec.and_then(|s| s.external_name.as_deref()).unwrap_or("");
        let target = external_target(target);
        if target.is_none() {
            debug!(
                kind = KIND,
                %namespace,
                %name,
                "externalName is empty, an IP address or not a valid name; the service answers nothing"
            );
        }
        ServiceKind::ExternalName(target)
    } else {
        let empty = Vec::new();
        let ips = spec.and_then(|s| s.cluster_ips.as_ref()).unwrap_or(&empty);
        let fallback = spec.and_then(|s| s.cluster_ip.as_deref());
        // The API keeps `clusterIP` equal to `clusterIPs[0]`; older objects may carry only the
        // former.
        let ips: Vec<&str> = if ips.is_empty() {
            fallback.into_iter().filter(|ip| !ip.is_empty()).collect()
        } else {
            ips.iter().map(String::as_str).collect()
        };
        if ips.first() == Some(&"None") {
            ServiceKind::Headless
        } else {
            let mut parsed: Vec<IpAddr> = Vec::with_capacity(ips.len());
            for ip in ips {
                if let Some(ip) = parse_ip(KIND, &namespace, &name, ip)
                    && !parsed.contains(&ip)
                {
                    parsed.push(ip);
                }
            }
            ServiceKind::ClusterIp(parsed)
        }
    };

    let ports: Vec<Port> = spec
        .and_then(|s| s.ports.as_ref())
        .map(|ports| {
            ports
                .iter()
                .map(|p| Port {
                    name: lower(p.name.as_deref()),
                    protocol: lower(p.protocol.as_deref()),
                    port: p.port,
                })
                .collect()
        })
        .unwrap_or_default();
    let ports = if ports.is_empty() {
        sentinel_ports()
    } else {
        ports
    };

    Ok(Service {
        namespace,
        name,
        kind,
        ports,
    })
}

/// An ExternalName target as a lower-case FQDN; `None` for an IP address, an empty string or a
/// string that is not a host name (only letters, digits, `-`, `_` and `.` are accepted).
fn external_target(target: &str) -> Option<Name> {
    let target = target.trim();
    if target.is_empty() || target == "." || target.parse::<IpAddr>().is_ok() {
        return None;
    }
    let host_chars = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if !target.chars().all(host_chars) {
        return None;
    }
    let mut name = Name::from_ascii(target).ok()?;
    name.set_fqdn(true);
    Some(name.to_lowercase())
}

/// Converts a discovery/v1 EndpointSlice.
///
/// * owning service: the `kubernetes.io/service-name` label (empty if absent);
/// * ports: nil port → -1, nil name → "", nil protocol → "", lower-cased; no ports → sentinel -1;
/// * endpoints: only ready ones (`conditions.ready` true or absent); invalid addresses are dropped
///   (so FQDN slices end up empty), and an endpoint left without addresses is dropped;
///   `hostname` kept lower-cased; `targetRef.name` kept only when shorter than 64 characters.
///   `addressType` is not checked, as in CoreDNS.
pub(crate) fn endpoint_slice(
    slice: &discovery::EndpointSlice,
) -> Result<EndpointSlice, ConvertError> {
    const KIND: &str = "EndpointSlice";
    let (namespace, name) = namespaced_name_of(KIND, &slice.metadata)?;
    let service = lower(
        labels_of(&slice.metadata)
            .get(SERVICE_NAME_LABEL)
            .map(String::as_str),
    );

    let ports: Vec<Port> = slice
        .ports
        .as_ref()
        .map(|ports| {
            ports
                .iter()
                .map(|p| Port {
                    name: lower(p.name.as_deref()),
                    protocol: lower(p.protocol.as_deref()),
                    port: p.port.unwrap_or(-1),
                })
                .collect()
        })
        .unwrap_or_default();
    let ports = if ports.is_empty() {
        sentinel_ports()
    } else {
        ports
    };

    let mut endpoints = Vec::with_capacity(slice.endpoints.len());
    for ep in &slice.endpoints {
        let ready = ep.conditions.as_ref().and_then(|c| c.ready) != Some(false);
        if !ready {
            continue;
        }
        let addresses: Vec<IpAddr> = ep
            .addresses
            .iter()
            .filter_map(|a| parse_ip(KIND, &namespace, &name, a))
            .collect();
        if addresses.is_empty() {
            continue;
        }
        let hostname = ep
            .hostname
            .as_deref()
            .filter(|h| !h.is_empty())
            .map(|h| h.to_ascii_lowercase().into());
        let target_ref_name = ep
            .target_ref
            .as_ref()
            .and_then(|r| r.name.as_deref())
            .filter(|n| !n.is_empty() && n.len() < MAX_TARGET_REF_NAME)
            .map(|n| n.to_ascii_lowercase().into());
        endpoints.push(Endpoint {
            addresses,
            hostname,
            target_ref_name,
        });
    }

    Ok(EndpointSlice {
        namespace,
        name,
        service,
        ports,
        endpoints,
    })
}

/// Converts a core/v1 Pod. `Ok(None)` for a pod DNS does not index: phase Succeeded, Failed or
/// Unknown, a deletion timestamp (terminating), or no valid primary IP (`status.podIP`, or
/// `status.podIPs[0]` which the API keeps equal to it). Secondary IPs are never indexed.
pub(crate) fn pod(pod: &core::Pod) -> Result<Option<Pod>, ConvertError> {
    const KIND: &str = "Pod";
    let (namespace, name) = namespaced_name_of(KIND, &pod.metadata)?;
    if pod.metadata.deletion_timestamp.is_some() {
        debug!(kind = KIND, %namespace, %name, "terminating pod skipped");
        return Ok(None);
    }
    let status = pod.status.as_ref();
    if let Some(phase @ ("Succeeded" | "Failed" | "Unknown")) =
        status.and_then(|s| s.phase.as_deref())
    {
        debug!(kind = KIND, %namespace, %name, phase, "pod skipped by phase");
        return Ok(None);
    }
    let primary = status.and_then(|s| {
        s.pod_ip
            .as_deref()
            .filter(|ip| !ip.is_empty())
            .or_else(|| s.pod_ips.as_ref()?.first().map(|p| p.ip.as_str()))
    });
    let Some(ip) = primary.and_then(|ip| parse_ip(KIND, &namespace, &name, ip)) else {
        debug!(kind = KIND, %namespace, %name, "pod without a valid IP skipped");
        return Ok(None);
    };
    Ok(Some(Pod {
        namespace,
        name,
        ip,
    }))
}

/// Converts a core/v1 Namespace (only its name matters: existence).
pub(crate) fn namespace(ns: &core::Namespace) -> Result<Namespace, ConvertError> {
    namespace_meta(&ns.metadata)
}

/// Converts a Namespace from its metadata alone (the API source watches metadata only).
pub(crate) fn namespace_meta(meta: &ObjectMeta) -> Result<Namespace, ConvertError> {
    Ok(Namespace {
        name: name_of("Namespace", meta)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deserializes a k8s object from YAML (test input only).
    fn obj<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn port(name: &str, protocol: &str, port: i32) -> Port {
        Port {
            name: name.into(),
            protocol: protocol.into(),
            port,
        }
    }

    #[test]
    fn service_cluster_ip_dual_stack_keeps_order() {
        let svc = service(&obj("metadata: {name: API, namespace: Demo}
spec:
  clusterIP: 10.96.100.10
  clusterIPs: [10.96.100.10, 'fd00:10:96::100a']
  ports:
  - {name: HTTP, port: 80, protocol: TCP}
  - {port: 9090}"))
        .unwrap();
        assert_eq!(&*svc.namespace, "demo");
        assert_eq!(&*svc.name, "api");
        assert_eq!(
            svc.kind,
            ServiceKind::ClusterIp(vec![ip("10.96.100.10"), ip("fd00:10:96::100a")])
        );
        assert_eq!(svc.ports, vec![port("http", "tcp", 80), port("", "", 9090)]);
    }

    #[test]
    fn service_cluster_ips_falls_back_to_cluster_ip() {
        let svc = service(&obj("metadata: {name: a, namespace: b}
spec: {clusterIP: 10.0.0.1, clusterIPs: []}"))
        .unwrap();
        assert_eq!(svc.kind, ServiceKind::ClusterIp(vec![ip("10.0.0.1")]));
    }

    #[test]
    fn service_duplicate_and_invalid_cluster_ips_dropped() {
        let svc = service(&obj("metadata: {name: a, namespace: b}
spec: {clusterIPs: [10.0.0.1, not-an-ip, 10.0.0.1, '::1', '0:0::1', 300.1.1.1]}"))
        .unwrap();
        assert_eq!(
            svc.kind,
            ServiceKind::ClusterIp(vec![ip("10.0.0.1"), ip("::1")])
        );
    }

    #[test]
    fn service_without_cluster_ip_or_spec() {
        let svc = service(&obj("metadata: {name: a, namespace: b}\nspec: {}")).unwrap();
        assert_eq!(svc.kind, ServiceKind::ClusterIp(vec![]));
        let svc = service(&obj("metadata: {name: a, namespace: b}")).unwrap();
        assert_eq!(svc.kind, ServiceKind::ClusterIp(vec![]));
        assert_eq!(svc.ports, vec![port("", "", -1)]);
        let svc = service(&obj(
            "metadata: {name: a, namespace: b}\nspec: {clusterIP: ''}",
        ))
        .unwrap();
        assert_eq!(svc.kind, ServiceKind::ClusterIp(vec![]));
    }

    #[test]
    fn service_headless_from_cluster_ips_or_cluster_ip() {
        let svc = service(&obj(
            "metadata: {name: a, namespace: b}\nspec: {clusterIPs: [None]}",
        ))
        .unwrap();
        assert_eq!(svc.kind, ServiceKind::Headless);
        let svc = service(&obj(
            "metadata: {name: a, namespace: b}\nspec: {clusterIP: None}",
        ))
        .unwrap();
        assert_eq!(svc.kind, ServiceKind::Headless);
        // Only the first entry decides.
        let svc = service(&obj(
            "metadata: {name: a, namespace: b}\nspec: {clusterIPs: [10.0.0.1, None]}",
        ))
        .unwrap();
        assert_eq!(svc.kind, ServiceKind::ClusterIp(vec![ip("10.0.0.1")]));
    }

    #[test]
    fn service_empty_ports_get_sentinel() {
        let svc = service(&obj(
            "metadata: {name: a, namespace: b}\nspec: {clusterIP: 10.0.0.1, ports: []}",
        ))
        .unwrap();
        assert_eq!(svc.ports, vec![port("", "", -1)]);
    }

    #[test]
    fn service_external_name_becomes_lower_case_fqdn() {
        let svc = service(&obj("metadata: {name: ext, namespace: b}
spec: {type: ExternalName, externalName: Example.COM}"))
        .unwrap();
        assert_eq!(
            svc.kind,
            ServiceKind::ExternalName(Some(Name::from_ascii("example.com.").unwrap()))
        );
        let ServiceKind::ExternalName(Some(target)) = svc.kind else {
            panic!("not an ExternalName");
        };
        assert!(target.is_fqdn());
        assert_eq!(target.to_string(), "example.com.");
    }

    #[test]
    fn service_external_name_already_fqdn() {
        let svc = service(&obj("metadata: {name: ext, namespace: b}
spec: {type: ExternalName, externalName: api.demo.svc.cluster.local.}"))
        .unwrap();
        let ServiceKind::ExternalName(Some(target)) = svc.kind else {
            panic!("not an ExternalName");
        };
        assert_eq!(target.to_string(), "api.demo.svc.cluster.local.");
    }

    #[test]
    fn service_external_name_ip_or_invalid_is_none() {
        for target in [
            "1.2.3.4",
            "2001:db8::1",
            "",
            "  ",
            ".",
            "bad name.com",
            "a..b",
            "x/y",
        ] {
            let svc = service(&obj(&format!(
                "metadata: {{name: ext, namespace: b}}
spec: {{type: ExternalName, externalName: '{target}'}}"
            )))
            .unwrap();
            assert_eq!(svc.kind, ServiceKind::ExternalName(None), "{target:?}");
        }
        let svc = service(&obj(
            "metadata: {name: e, namespace: b}\nspec: {type: ExternalName}",
        ))
        .unwrap();
        assert_eq!(svc.kind, ServiceKind::ExternalName(None));
    }

    #[test]
    fn service_external_name_type_wins_over_cluster_ip() {
        let svc = service(&obj("metadata: {name: e, namespace: b}
spec: {type: ExternalName, externalName: example.org, clusterIP: 10.0.0.1}"))
        .unwrap();
        assert!(matches!(svc.kind, ServiceKind::ExternalName(Some(_))));
    }

    #[test]
    fn missing_name_or_namespace_is_an_error() {
        let err = service(&obj("metadata: {namespace: b}")).unwrap_err();
        assert_eq!(err, ConvertError::MissingName { kind: "Service" });
        let err = service(&obj("metadata: {name: '', namespace: b}")).unwrap_err();
        assert_eq!(err, ConvertError::MissingName { kind: "Service" });
        let err = endpoint_slice(&obj("metadata: {name: s}\naddressType: IPv4")).unwrap_err();
        assert_eq!(
            err,
            ConvertError::MissingNamespace {
                kind: "EndpointSlice",
                name: "s".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "EndpointSlice \"s\" has no metadata.namespace"
        );
        let err = pod(&obj("metadata: {name: p, namespace: ''}")).unwrap_err();
        assert!(matches!(
            err,
            ConvertError::MissingNamespace { kind: "Pod", .. }
        ));
        let err = namespace(&obj("metadata: {}")).unwrap_err();
        assert_eq!(err, ConvertError::MissingName { kind: "Namespace" });
    }

    #[test]
    fn namespace_name_lower_cased() {
        let ns = namespace(&obj("metadata: {name: Demo}")).unwrap();
        assert_eq!(&*ns.name, "demo");
    }

    const SLICE: &str = "metadata:
  name: db-abcde
  namespace: demo
  labels: {kubernetes.io/service-name: DB}
addressType: IPv4
ports:
- {name: Postgres, port: 5432, protocol: TCP}
endpoints:
- addresses: [10.244.1.10]
  hostname: DB-0
  conditions: {ready: true}
  targetRef: {kind: Pod, name: db-0, namespace: demo}
- addresses: [10.244.1.11]
  targetRef: {kind: Pod, name: db-1}
- addresses: [10.244.1.12]
  hostname: db-2
  conditions: {ready: false}
- addresses: [10.244.1.13, bogus]
  conditions: {serving: true}
- addresses: [bogus]
- addresses: []
";

    #[test]
    fn slice_keeps_only_ready_endpoints() {
        let s = endpoint_slice(&obj(SLICE)).unwrap();
        assert_eq!(&*s.service, "db");
        assert_eq!(&*s.name, "db-abcde");
        assert_eq!(s.ports, vec![port("postgres", "tcp", 5432)]);
        assert_eq!(
            s.endpoints,
            vec![
                Endpoint {
                    addresses: vec![ip("10.244.1.10")],
                    hostname: Some("db-0".into()),
                    target_ref_name: Some("db-0".into()),
                },
                // ready absent = ready
                Endpoint {
                    addresses: vec![ip("10.244.1.11")],
                    hostname: None,
                    target_ref_name: Some("db-1".into()),
                },
                // ready absent in a conditions object = ready; the invalid address is dropped
                Endpoint {
                    addresses: vec![ip("10.244.1.13")],
                    hostname: None,
                    target_ref_name: None,
                },
            ]
        );
    }

    #[test]
    fn slice_nil_port_fields_and_no_ports() {
        let s = endpoint_slice(&obj("metadata: {name: s, namespace: n}
addressType: IPv4
ports: [{}, {name: DNS, protocol: UDP, port: 53}]
endpoints: []"))
        .unwrap();
        assert_eq!(s.ports, vec![port("", "", -1), port("dns", "udp", 53)]);
        assert_eq!(&*s.service, "", "no service label");
        assert!(s.endpoints.is_empty());

        for yaml in [
            "metadata: {name: s, namespace: n}\naddressType: IPv4",
            "metadata: {name: s, namespace: n}\naddressType: IPv4\nports: []",
        ] {
            let s = endpoint_slice(&obj(yaml)).unwrap();
            assert_eq!(s.ports, vec![port("", "", -1)]);
        }
    }

    #[test]
    fn slice_target_ref_name_only_below_64_chars() {
        let long = "p".repeat(64);
        let just_fits = "q".repeat(63);
        let s = endpoint_slice(&obj(&format!(
            "metadata: {{name: s, namespace: n}}
addressType: IPv4
endpoints:
- addresses: [10.0.0.1]
  targetRef: {{name: {long}}}
- addresses: [10.0.0.2]
  targetRef: {{name: {just_fits}}}
- addresses: [10.0.0.3]
  targetRef: {{kind: Pod}}"
        )))
        .unwrap();
        let names: Vec<Option<&str>> = s
            .endpoints
            .iter()
            .map(|e| e.target_ref_name.as_deref())
            .collect();
        assert_eq!(names, vec![None, Some(just_fits.as_str()), None]);
    }

    #[test]
    fn slice_ipv6_addresses() {
        let s = endpoint_slice(&obj(
            "metadata: {name: s6, namespace: n, labels: {kubernetes.io/service-name: api}}
addressType: IPv6
endpoints:
- addresses: ['fd00:10:244::1', 'FD00:10:244::2']",
        ))
        .unwrap();
        assert_eq!(
            s.endpoints[0].addresses,
            vec![ip("fd00:10:244::1"), ip("fd00:10:244::2")]
        );
    }

    #[test]
    fn slice_fqdn_addresses_are_dropped() {
        let s = endpoint_slice(&obj(
            "metadata: {name: f, namespace: n, labels: {kubernetes.io/service-name: x}}
addressType: FQDN
endpoints:
- addresses: [host.example.com]
  hostname: h",
        ))
        .unwrap();
        assert!(s.endpoints.is_empty());
    }

    #[test]
    fn pod_primary_ip_only() {
        let p = pod(&obj("metadata: {name: Web-1, namespace: demo}
status:
  phase: Running
  podIP: 10.244.0.5
  podIPs: [{ip: 10.244.0.5}, {ip: 'fd00::5'}]"))
        .unwrap()
        .unwrap();
        assert_eq!(&*p.name, "web-1");
        assert_eq!(&*p.namespace, "demo");
        assert_eq!(p.ip, ip("10.244.0.5"));
    }

    #[test]
    fn pod_falls_back_to_first_pod_ips_entry() {
        let p = pod(&obj(
            "metadata: {name: a, namespace: b}\nstatus: {podIPs: [{ip: 'fd00::7'}]}",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(p.ip, ip("fd00::7"));
    }

    #[test]
    fn pod_skipped_by_phase_deletion_or_missing_ip() {
        for phase in ["Succeeded", "Failed", "Unknown"] {
            let p = pod(&obj(&format!(
                "metadata: {{name: a, namespace: b}}\nstatus: {{phase: {phase}, podIP: 10.0.0.1}}"
            )))
            .unwrap();
            assert_eq!(p, None, "{phase}");
        }
        let terminating = pod(&obj(
            "metadata: {name: a, namespace: b, deletionTimestamp: '2025-01-01T00:00:00Z'}
status: {phase: Running, podIP: 10.0.0.1}",
        ))
        .unwrap();
        assert_eq!(terminating, None);
        let pending = pod(&obj(
            "metadata: {name: a, namespace: b}\nstatus: {phase: Pending}",
        ))
        .unwrap();
        assert_eq!(pending, None);
        let no_status = pod(&obj("metadata: {name: a, namespace: b}")).unwrap();
        assert_eq!(no_status, None);
        let bad_ip = pod(&obj(
            "metadata: {name: a, namespace: b}\nstatus: {podIP: nope}",
        ))
        .unwrap();
        assert_eq!(bad_ip, None);
    }

    #[test]
    fn pod_host_network_uses_the_node_ip() {
        let p = pod(&obj(
            "metadata: {name: kube-proxy-x, namespace: kube-system}
spec: {hostNetwork: true, containers: []}
status: {phase: Running, hostIP: 192.168.49.2, podIP: 192.168.49.2}",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(p.ip, ip("192.168.49.2"));
    }
}
