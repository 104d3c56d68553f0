//! The few fields DNS needs from Services, EndpointSlices, Pods and Namespaces. Converting an API
//! object (k8s-openapi type) into this model is where bad objects are rejected; nothing here keeps
//! a whole API object. A field added here is a memory cost per object.

use std::net::IpAddr;

use hickory_proto::rr::Name;

/// Owned compact string (no spare capacity).
pub(crate) type Str = Box<str>;

/// A port of a Service or an EndpointSlice. Names and protocols are stored lower-case because
/// every DNS comparison with them is case-insensitive.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Port {
    /// Port name, lower-case; empty for an unnamed port.
    pub(crate) name: Str,
    /// Protocol, lower-case (`tcp`, `udp`, `sctp`); empty when the object did not say.
    pub(crate) protocol: Str,
    /// Port number; -1 when the object has no port (CoreDNS's sentinel: no SRV).
    pub(crate) port: i32,
}

/// What kind of answer a Service gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ServiceKind {
    /// ClusterIP, NodePort or LoadBalancer: the cluster IPs, de-duplicated, in `clusterIPs` order.
    ClusterIp(Vec<IpAddr>),
    /// `clusterIP: None`: answered from ready endpoints.
    Headless,
    /// `type: ExternalName`: the target, fully qualified and lower-cased. `None` when the
    /// externalName is an IP address or not a valid name (such a service answers nothing).
    ExternalName(Option<Name>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Service {
    pub(crate) namespace: Str,
    pub(crate) name: Str,
    pub(crate) kind: ServiceKind,
    pub(crate) ports: Vec<Port>,
}

/// One ready endpoint of an EndpointSlice (unready endpoints are dropped at conversion).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) addresses: Vec<IpAddr>,
    /// `endpoints[].hostname`.
    pub(crate) hostname: Option<Str>,
    /// `endpoints[].targetRef.name`, kept only when shorter than 64 characters.
    pub(crate) target_ref_name: Option<Str>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EndpointSlice {
    pub(crate) namespace: Str,
    pub(crate) name: Str,
    /// Owning service, from the `kubernetes.io/service-name` label (empty if absent).
    pub(crate) service: Str,
    /// The slice's ports; a slice without ports holds the single sentinel port -1.
    pub(crate) ports: Vec<Port>,
    pub(crate) endpoints: Vec<Endpoint>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pod {
    pub(crate) namespace: Str,
    pub(crate) name: Str,
    /// The primary `status.podIP` only (CoreDNS indexes no other).
    pub(crate) ip: IpAddr,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Namespace {
    pub(crate) name: Str,
}

/// One object of any watched kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Object {
    Service(Service),
    EndpointSlice(EndpointSlice),
    Pod(Pod),
    Namespace(Namespace),
}
