//! The tracker fed with watch events directly: relists, moves, pods, sync state, serial.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::*;
use crate::plugin::kubernetes::model::{
    Endpoint, EndpointSlice, Namespace, Object, Pod, Port, Service, ServiceKind,
};

const ALL: [Kind; 4] = [
    Kind::Service,
    Kind::EndpointSlice,
    Kind::Namespace,
    Kind::Pod,
];

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn key(ns: &str, name: &str) -> Key {
    (ns.into(), name.into())
}

fn svc(ns: &str, name: &str, cluster_ip: &str) -> Msg {
    object(
        Kind::Service,
        key(ns, name),
        Some(Object::Service(Service {
            namespace: ns.into(),
            name: name.into(),
            kind: ServiceKind::ClusterIp(vec![ip(cluster_ip)]),
            ports: vec![Port {
                name: "http".into(),
                protocol: "tcp".into(),
                port: 80,
            }],
        })),
    )
}

fn slice(ns: &str, name: &str, service: &str, ips: &[&str]) -> Msg {
    object(
        Kind::EndpointSlice,
        key(ns, name),
        Some(Object::EndpointSlice(EndpointSlice {
            namespace: ns.into(),
            name: name.into(),
            service: service.into(),
            ports: vec![],
            endpoints: ips
                .iter()
                .map(|a| Endpoint {
                    addresses: vec![ip(a)],
                    hostname: None,
                    target_ref_name: None,
                })
                .collect(),
        })),
    )
}

fn pod(ns: &str, name: &str, addr: Option<&str>) -> Msg {
    object(
        Kind::Pod,
        key(ns, name),
        addr.map(|a| {
            Object::Pod(Pod {
                namespace: ns.into(),
                name: name.into(),
                ip: ip(a),
            })
        }),
    )
}

fn ns(name: &str) -> Msg {
    object(
        Kind::Namespace,
        key("", name),
        Some(Object::Namespace(Namespace { name: name.into() })),
    )
}

fn object(kind: Kind, key: Key, object: Option<Object>) -> Msg {
    Msg::Object {
        kind,
        init: false,
        key,
        object,
        trigger: None,
    }
}

/// `msg` as part of a list.
fn init(msg: Msg) -> Msg {
    match msg {
        Msg::Object {
            kind, key, object, ..
        } => Msg::Object {
            kind,
            init: true,
            key,
            object,
            trigger: None,
        },
        other => other,
    }
}

/// A full list of `kind`.
fn list(t: &mut Tracker, kind: Kind, items: Vec<Msg>, now: u32) {
    t.handle(Msg::Init(kind), now, SystemTime::now());
    for item in items {
        t.handle(init(item), now, SystemTime::now());
    }
    t.handle(Msg::InitDone(kind), now, SystemTime::now());
}

fn handle(t: &mut Tracker, msg: Msg, now: u32) {
    t.handle(msg, now, SystemTime::now());
}

fn tracker() -> Tracker {
    Tracker::new(&ALL, 1, "test".into())
}

fn cluster_ips(t: &Tracker, ns: &str, name: &str) -> Option<Vec<IpAddr>> {
    match &t.index().group(ns, name)?.service.as_ref()?.kind {
        ServiceKind::ClusterIp(ips) => Some(ips.clone()),
        _ => None,
    }
}

fn ready(t: &Tracker, ns: &str, name: &str) -> Vec<IpAddr> {
    t.index()
        .group(ns, name)
        .map(|g| g.ready_addrs.to_vec())
        .unwrap_or_default()
}

#[test]
fn synced_only_when_every_used_kind_listed_once() {
    let mut t = Tracker::new(&[Kind::Service, Kind::Namespace], 1, "test".into());
    assert!(!t.all_synced());
    list(&mut t, Kind::Service, vec![svc("ns", "a", "10.0.0.1")], 10);
    assert!(!t.all_synced());
    // A list in progress is not applied until InitDone.
    handle(&mut t, Msg::Init(Kind::Namespace), 10);
    handle(&mut t, init(ns("ns")), 10);
    assert!(!t.index().namespace_exists("ns"));
    assert!(!t.all_synced());
    handle(&mut t, Msg::InitDone(Kind::Namespace), 10);
    assert!(t.all_synced());
    assert!(t.index().namespace_exists("ns"));
    // Unused kinds never hold sync back.
    assert!(Tracker::new(&[], 1, "test".into()).all_synced());
}

#[test]
fn relist_deletes_what_is_missing_and_keeps_the_rest() {
    let mut t = tracker();
    list(
        &mut t,
        Kind::Service,
        vec![svc("ns", "a", "10.0.0.1"), svc("ns", "b", "10.0.0.2")],
        10,
    );
    list(
        &mut t,
        Kind::EndpointSlice,
        vec![
            slice("ns", "a-1", "a", &["10.1.0.1"]),
            slice("ns", "b-1", "b", &["10.1.0.2"]),
        ],
        10,
    );
    assert_eq!(t.index().serial(), 10);
    // Relist (after 410): b is gone, a changed, c is new.
    list(
        &mut t,
        Kind::Service,
        vec![svc("ns", "a", "10.0.0.9"), svc("ns", "c", "10.0.0.3")],
        20,
    );
    assert_eq!(cluster_ips(&t, "ns", "a"), Some(vec![ip("10.0.0.9")]));
    assert_eq!(cluster_ips(&t, "ns", "b"), None);
    assert_eq!(cluster_ips(&t, "ns", "c"), Some(vec![ip("10.0.0.3")]));
    // b's slice still counts (endpoints are indexed by their label, not joined to the Service).
    assert_eq!(ready(&t, "ns", "b"), [ip("10.1.0.2")]);
    assert_eq!(t.index().serial(), 20);
    // The IP index follows: the old cluster IP no longer points anywhere.
    assert_eq!(t.index().services_by_cluster_ip(ip("10.0.0.1")).count(), 0);
    assert_eq!(t.index().services_by_cluster_ip(ip("10.0.0.9")).count(), 1);
    // The same list again changes nothing, not even the serial.
    list(
        &mut t,
        Kind::Service,
        vec![svc("ns", "a", "10.0.0.9"), svc("ns", "c", "10.0.0.3")],
        30,
    );
    assert_eq!(t.index().serial(), 20);
}

#[test]
fn slice_moving_to_another_service_leaves_the_old_one() {
    let mut t = tracker();
    handle(&mut t, slice("ns", "s", "a", &["10.1.0.1"]), 10);
    assert_eq!(ready(&t, "ns", "a"), [ip("10.1.0.1")]);
    handle(&mut t, slice("ns", "s", "b", &["10.1.0.1"]), 11);
    assert!(t.index().group("ns", "a").is_none());
    assert_eq!(ready(&t, "ns", "b"), [ip("10.1.0.1")]);
    let by_ip: Vec<&str> = t
        .index()
        .endpoints_by_ip(ip("10.1.0.1"))
        .map(|(g, _)| &*g.name)
        .collect();
    assert_eq!(by_ip, ["b"]);
    handle(
        &mut t,
        Msg::Delete {
            kind: Kind::EndpointSlice,
            key: key("ns", "s"),
        },
        12,
    );
    assert!(t.index().group("ns", "b").is_none());
    assert_eq!(t.index().endpoints_by_ip(ip("10.1.0.1")).count(), 0);
}

#[test]
fn slices_of_a_service_merge_and_deduplicate() {
    let mut t = tracker();
    handle(&mut t, svc("ns", "a", "10.0.0.1"), 10);
    handle(
        &mut t,
        slice("ns", "a-2", "a", &["10.1.0.2", "10.1.0.1"]),
        10,
    );
    handle(&mut t, slice("ns", "a-1", "a", &["10.1.0.1"]), 10);
    // Slice-name order, duplicates once.
    assert_eq!(ready(&t, "ns", "a"), [ip("10.1.0.1"), ip("10.1.0.2")]);
    assert_eq!(t.index().endpoints_by_ip(ip("10.1.0.1")).count(), 2);
    handle(&mut t, slice("ns", "a-2", "a", &[]), 11);
    assert_eq!(ready(&t, "ns", "a"), [ip("10.1.0.1")]);
    assert_eq!(t.index().endpoints_by_ip(ip("10.1.0.2")).count(), 0);
    // A slice without a service label is never served.
    handle(&mut t, slice("ns", "orphan", "", &["10.9.0.1"]), 12);
    assert_eq!(t.index().endpoints_by_ip(ip("10.9.0.1")).count(), 0);
}

#[test]
fn pods_follow_ip_changes_terminations_and_deletes() {
    let mut t = tracker();
    handle(&mut t, pod("ns", "p", None), 10);
    assert!(!t.index().has_pod("ns", ip("10.2.0.1")));
    handle(&mut t, pod("ns", "p", Some("10.2.0.1")), 11);
    assert!(t.index().has_pod("ns", ip("10.2.0.1")));
    assert_eq!(t.index().serial(), 11);
    // Two pods share a host-network IP: one leaving keeps the other.
    handle(&mut t, pod("ns", "q", Some("10.2.0.1")), 12);
    handle(&mut t, pod("ns", "p", Some("10.2.0.2")), 13);
    assert!(t.index().has_pod("ns", ip("10.2.0.1")));
    assert!(t.index().has_pod("ns", ip("10.2.0.2")));
    // Terminating (converted to None) = gone.
    handle(&mut t, pod("ns", "q", None), 14);
    assert!(!t.index().has_pod("ns", ip("10.2.0.1")));
    handle(
        &mut t,
        Msg::Delete {
            kind: Kind::Pod,
            key: key("ns", "p"),
        },
        15,
    );
    assert!(!t.index().has_pod("ns", ip("10.2.0.2")));
    assert!(!t.index().has_pod("other", ip("10.2.0.2")));
}

#[test]
fn namespace_events_do_not_move_the_serial() {
    let mut t = tracker();
    handle(&mut t, svc("ns", "a", "10.0.0.1"), 10);
    handle(&mut t, ns("ns"), 20);
    assert!(t.index().namespace_exists("ns"));
    assert_eq!(t.index().serial(), 10);
    handle(
        &mut t,
        Msg::Delete {
            kind: Kind::Namespace,
            key: key("", "ns"),
        },
        30,
    );
    assert!(!t.index().namespace_exists("ns"));
    assert_eq!(t.index().serial(), 10);
    assert!(t.dirty);
}

#[test]
fn errors_keep_the_index_and_skips_are_ignored() {
    let mut t = tracker();
    list(&mut t, Kind::Service, vec![svc("ns", "a", "10.0.0.1")], 10);
    for _ in 0..5 {
        handle(
            &mut t,
            Msg::Error {
                kind: Kind::Service,
                error: "connection refused".into(),
            },
            11,
        );
        handle(&mut t, Msg::Skip, 11);
    }
    assert_eq!(t.healthy(Kind::Service), Some(false));
    assert_eq!(cluster_ips(&t, "ns", "a"), Some(vec![ip("10.0.0.1")]));
    // A failed relist (Init, then errors, then a new Init) does not lose the data either.
    handle(&mut t, Msg::Init(Kind::Service), 12);
    handle(
        &mut t,
        Msg::Error {
            kind: Kind::Service,
            error: "garbage".into(),
        },
        12,
    );
    assert_eq!(cluster_ips(&t, "ns", "a"), Some(vec![ip("10.0.0.1")]));
    handle(&mut t, svc("ns", "b", "10.0.0.2"), 13);
    assert_eq!(t.healthy(Kind::Service), Some(true));
}

#[test]
fn published_snapshots_are_unaffected_by_later_events() {
    let mut t = tracker();
    handle(&mut t, svc("ns", "a", "10.0.0.1"), 10);
    let snapshot = t.index().clone();
    handle(&mut t, svc("ns", "a", "10.0.0.2"), 11);
    handle(&mut t, svc("ns", "b", "10.0.0.3"), 11);
    assert_eq!(
        snapshot.services_by_cluster_ip(ip("10.0.0.1")).count(),
        1,
        "the old snapshot still answers the old data"
    );
    assert!(snapshot.group("ns", "b").is_none());
    assert_eq!(t.index().services_by_cluster_ip(ip("10.0.0.1")).count(), 0);
}

#[test]
fn programming_duration_is_recorded_for_stamped_slices_of_known_services() {
    let count = |kind: &str| {
        DNS_PROGRAMMING
            .with_label_values(&[kind])
            .get_sample_count()
    };
    let before = count("cluster_ip");
    let mut t = tracker();
    list(&mut t, Kind::Service, vec![svc("ns", "a", "10.0.0.1")], 10);
    list(&mut t, Kind::EndpointSlice, vec![], 10);
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
    let stamped = |service: &str| match slice("ns", "a-1", service, &["10.1.0.1"]) {
        Msg::Object {
            kind, key, object, ..
        } => Msg::Object {
            kind,
            init: false,
            key,
            object,
            trigger: Some(wall - Duration::from_millis(250)),
        },
        other => other,
    };
    t.handle(stamped("a"), 11, wall);
    assert_eq!(count("cluster_ip"), before + 1);
    // Unknown service: nothing recorded.
    t.handle(stamped("unknown"), 12, wall);
    assert_eq!(count("cluster_ip"), before + 1);
}

#[test]
fn client_sources_validate_their_options() {
    assert!(ClientSource::endpoint("http://127.0.0.1:8080", None).is_ok());
    assert!(ClientSource::endpoint("ftp://127.0.0.1", None).is_err());
    assert!(ClientSource::endpoint("not a url", None).is_err());
    let missing = Path::new("/nonexistent/x.pem");
    let err = ClientSource::endpoint("https://127.0.0.1:6443", Some((missing, missing, missing)))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("/nonexistent/x.pem"), "{err}");
    let err = ClientSource::kubeconfig(Path::new("/nonexistent/kubeconfig"), None)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.starts_with("kubeconfig /nonexistent/kubeconfig"),
        "{err}"
    );
    assert_eq!(ClientSource::InCluster.label(), "in-cluster");
}
