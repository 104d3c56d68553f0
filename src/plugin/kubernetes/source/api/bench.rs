//! Figures for `benches/index_update.rs` (feature `bench-internals`): the tracker fed a
//! generated full list, then single EndpointSlice and Service updates each published as a
//! snapshot, as the source does. Not a stable API.

use std::time::{Duration, Instant, SystemTime};

use super::tracker::{Key, Kind, Msg, Tracker};
use crate::plugin::kubernetes::index::Store;
use crate::plugin::kubernetes::model::{
    Endpoint, EndpointSlice, Namespace, Object, Pod, Port, Service, ServiceKind,
};

/// What one run measured.
#[derive(Debug)]
pub struct Figures {
    /// Services, endpoints and pods listed.
    pub services: usize,
    pub endpoints: usize,
    pub pods: usize,
    /// Applying the full lists (InitDone of every kind) to an empty index.
    pub list: Duration,
    /// Mean time of one EndpointSlice update plus the snapshot publication.
    pub event: Duration,
    /// Mean time of one Service update plus the snapshot publication.
    pub service_event: Duration,
    pub events: usize,
    /// The tracker (index and key maps) after the lists, kept for RSS measurement.
    pub tracker: Box<dyn std::any::Any>,
}

fn ip(i: usize) -> std::net::IpAddr {
    std::net::IpAddr::from([10, 100 + ((i >> 16) % 100) as u8, (i >> 8) as u8, i as u8])
}

fn key(ns: &str, name: &str) -> Key {
    (ns.into(), name.into())
}

fn item(kind: Kind, key: Key, object: Object, init: bool) -> Msg {
    Msg::Object {
        kind,
        init,
        key,
        object: Some(object),
        trigger: None,
    }
}

fn service(i: usize, version: usize) -> (Key, Object) {
    let ns = format!("ns{}", i % 100);
    let name = format!("svc{i}");
    let kind = if i.is_multiple_of(10) {
        ServiceKind::Headless
    } else {
        ServiceKind::ClusterIp(vec![std::net::IpAddr::from([
            10,
            96,
            (i / 250) as u8,
            (i % 250) as u8 + version as u8 % 2,
        ])])
    };
    let svc = Service {
        namespace: ns.as_str().into(),
        name: name.as_str().into(),
        kind,
        ports: vec![Port {
            name: "http".into(),
            protocol: "tcp".into(),
            port: 80,
        }],
    };
    (key(&ns, &name), Object::Service(svc))
}

fn slice(i: usize, per: usize, shift: usize) -> (Key, Object) {
    let ns = format!("ns{}", i % 100);
    let name = format!("svc{i}-x");
    let slice = EndpointSlice {
        namespace: ns.as_str().into(),
        name: name.as_str().into(),
        service: format!("svc{i}").into(),
        ports: vec![Port {
            name: "http".into(),
            protocol: "tcp".into(),
            port: 8080,
        }],
        endpoints: (0..per)
            .map(|k| Endpoint {
                addresses: vec![ip(i * per + k + shift)],
                hostname: None,
                target_ref_name: Some(format!("svc{i}-{k}").into()),
            })
            .collect(),
    };
    (key(&ns, &name), Object::EndpointSlice(slice))
}

/// `services` services (100 namespaces, every tenth headless) with `per` endpoints each, and
/// `pods` pods; then `events` slice updates and `events` service updates.
pub fn run(services: usize, per: usize, pods: usize, events: usize) -> Figures {
    let all = [
        Kind::Service,
        Kind::EndpointSlice,
        Kind::Namespace,
        Kind::Pod,
    ];
    let mut msgs = Vec::new();
    for kind in all {
        msgs.push(Msg::Init(kind));
    }
    for n in 0..100 {
        let name = format!("ns{n}");
        let ns = Object::Namespace(Namespace {
            name: name.as_str().into(),
        });
        msgs.push(item(Kind::Namespace, key("", &name), ns, true));
    }
    let mut pods_left = pods;
    for i in 0..services {
        let (k, o) = service(i, 0);
        msgs.push(item(Kind::Service, k, o, true));
        let (k, o) = slice(i, per, 0);
        msgs.push(item(Kind::EndpointSlice, k, o, true));
        for p in 0..per.div_ceil(2) {
            if pods_left == 0 {
                break;
            }
            pods_left -= 1;
            let ns = format!("ns{}", i % 100);
            let name = format!("svc{i}-{p}");
            let pod = Object::Pod(Pod {
                namespace: ns.as_str().into(),
                name: name.as_str().into(),
                ip: ip(i * per + p),
            });
            msgs.push(item(Kind::Pod, key(&ns, &name), pod, true));
        }
    }
    for kind in all {
        msgs.push(Msg::InitDone(kind));
    }
    let mut tracker = Tracker::new(&all, 1, "bench".into());
    let store = Store::new();
    let start = Instant::now();
    for msg in msgs {
        tracker.handle(msg, 2, SystemTime::now());
    }
    store.publish(tracker.index().clone());
    let list = start.elapsed();

    let mut slice_updates = Vec::with_capacity(events);
    let mut service_updates = Vec::with_capacity(events);
    for e in 0..events {
        let i = (e * 7919) % services.max(1);
        let (k, o) = slice(i, per, 1_000_000 + e);
        slice_updates.push(item(Kind::EndpointSlice, k, o, false));
        let (k, o) = service(i, e + 1);
        service_updates.push(item(Kind::Service, k, o, false));
    }
    let timed = |updates: Vec<Msg>, tracker: &mut Tracker| {
        let start = Instant::now();
        for msg in updates {
            tracker.handle(msg, 3, SystemTime::now());
            store.publish(tracker.index().clone());
        }
        start.elapsed() / u32::try_from(events.max(1)).unwrap_or(u32::MAX)
    };
    let event = timed(slice_updates, &mut tracker);
    let service_event = timed(service_updates, &mut tracker);
    Figures {
        services,
        endpoints: services * per,
        pods: pods - pods_left,
        list,
        event,
        service_event,
        events,
        tracker: Box::new(tracker),
    }
}
