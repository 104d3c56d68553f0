//! Conversion glue: API objects and watcher events to tracker messages (through `convert`), and
//! the watcher configuration.

use std::time::SystemTime;

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::api::PartialObjectMeta;
use kube::runtime::watcher::{self, Event};
use tracing::debug;

use super::tracker::{Key, Kind, Msg, PLUGIN};
use crate::plugin::kubernetes::model::Object;
use crate::plugin::kubernetes::source::convert;

/// The EndpointSlice annotation the controller sets to the time of the change it reflects.
const LAST_CHANGE_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// `(namespace, name)` of an object, lower-case; `None` without a name.
pub(super) fn key_of(meta: &ObjectMeta) -> Option<Key> {
    let name = meta.name.as_deref().filter(|n| !n.is_empty())?;
    let namespace = meta.namespace.as_deref().unwrap_or_default();
    Some((
        namespace.to_ascii_lowercase().into(),
        name.to_ascii_lowercase().into(),
    ))
}

/// Converts one object: its key and model (`None` = not indexed), or `None` to skip it.
pub(super) type Converter<K> = fn(&K) -> Option<(Option<Object>, Option<SystemTime>)>;

pub(super) fn convert_service(svc: &core::Service) -> Option<(Option<Object>, Option<SystemTime>)> {
    match convert::service(svc) {
        Ok(s) => Some((Some(Object::Service(s)), None)),
        Err(error) => {
            debug!(plugin = PLUGIN, %error, "service ignored");
            None
        }
    }
}

pub(super) fn convert_slice(
    slice: &discovery::EndpointSlice,
) -> Option<(Option<Object>, Option<SystemTime>)> {
    let trigger = slice
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(LAST_CHANGE_TRIGGER_TIME))
        .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
        .map(SystemTime::from);
    match convert::endpoint_slice(slice) {
        Ok(s) => Some((Some(Object::EndpointSlice(s)), trigger)),
        Err(error) => {
            debug!(plugin = PLUGIN, %error, "endpointslice ignored");
            None
        }
    }
}

pub(super) fn convert_pod(pod: &core::Pod) -> Option<(Option<Object>, Option<SystemTime>)> {
    match convert::pod(pod) {
        Ok(p) => Some((p.map(Object::Pod), None)),
        Err(error) => {
            debug!(plugin = PLUGIN, %error, "pod ignored");
            None
        }
    }
}

pub(super) fn convert_namespace(
    ns: &PartialObjectMeta<core::Namespace>,
) -> Option<(Option<Object>, Option<SystemTime>)> {
    match convert::namespace_meta(&ns.metadata) {
        Ok(n) => Some((Some(Object::Namespace(n)), None)),
        Err(error) => {
            debug!(plugin = PLUGIN, %error, "namespace ignored");
            None
        }
    }
}

/// A watcher event of `kind` as a `Msg`.
pub(super) fn to_msg<K: Resource<DynamicType = ()>>(
    kind: Kind,
    event: Result<Event<K>, watcher::Error>,
    convert: Converter<K>,
) -> Msg {
    let object = |obj: &K, init: bool| match (key_of(obj.meta()), convert(obj)) {
        (Some(key), Some((object, trigger))) => Msg::Object {
            kind,
            init,
            key,
            object,
            trigger,
        },
        _ => Msg::Skip,
    };
    match event {
        Ok(Event::Init) => Msg::Init(kind),
        Ok(Event::InitApply(obj)) => object(&obj, true),
        Ok(Event::InitDone) => Msg::InitDone(kind),
        Ok(Event::Apply(obj)) => object(&obj, false),
        Ok(Event::Delete(obj)) => match key_of(obj.meta()) {
            Some(key) => Msg::Delete { kind, key },
            None => Msg::Skip,
        },
        Err(error) => Msg::Error {
            kind,
            error: error.to_string(),
        },
    }
}

pub(super) fn watch_config(labels: Option<&str>) -> watcher::Config {
    let config = watcher::Config::default();
    match labels {
        Some(selector) => config.labels(selector),
        None => config,
    }
}
