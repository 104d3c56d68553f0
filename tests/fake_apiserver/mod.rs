//! A fake Kubernetes API server on loopback for the API source's tests and the memory benchmark:
//! list (one page, with a resourceVersion) and streamed watch (newline-delimited JSON events,
//! replayed from the requested resourceVersion) of services, endpointslices, namespaces
//! (PartialObjectMetadata) and pods; plus the failures a real one shows: 410 Gone in the stream,
//! going away and coming back on the same port, garbage JSON, slow responses.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// The resources served, by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Res {
    Services,
    EndpointSlices,
    Namespaces,
    Pods,
}

impl Res {
    const ALL: [Res; 4] = [
        Res::Services,
        Res::EndpointSlices,
        Res::Namespaces,
        Res::Pods,
    ];

    fn path(self) -> &'static str {
        match self {
            Res::Services => "/api/v1/services",
            Res::EndpointSlices => "/apis/discovery.k8s.io/v1/endpointslices",
            Res::Namespaces => "/api/v1/namespaces",
            Res::Pods => "/api/v1/pods",
        }
    }

    fn list_kind(self) -> (&'static str, &'static str) {
        match self {
            Res::Services => ("v1", "ServiceList"),
            Res::EndpointSlices => ("discovery.k8s.io/v1", "EndpointSliceList"),
            Res::Namespaces => ("meta.k8s.io/v1", "PartialObjectMetadataList"),
            Res::Pods => ("v1", "PodList"),
        }
    }

    fn item_kind(self) -> (&'static str, &'static str) {
        match self {
            Res::Services => ("v1", "Service"),
            Res::EndpointSlices => ("discovery.k8s.io/v1", "EndpointSlice"),
            Res::Namespaces => ("meta.k8s.io/v1", "PartialObjectMetadata"),
            Res::Pods => ("v1", "Pod"),
        }
    }
}

#[derive(Default)]
struct State {
    rv: u64,
    objects: BTreeMap<(Res, String), Value>,
    /// (resourceVersion, resource, event line) of every change, for watch replay.
    log: Vec<(u64, Res, Bytes)>,
    watchers: Vec<(Res, mpsc::UnboundedSender<Bytes>)>,
    /// Number of next list responses of a resource that are garbage.
    garbage_lists: BTreeMap<Res, usize>,
    /// Delay before answering a list of this resource.
    slow_lists: BTreeMap<Res, Duration>,
    /// Every request's path and query, in order.
    requests: Vec<String>,
    /// Watches from a resourceVersion below this get an in-stream 410 Gone (history compacted).
    compacted: u64,
}

/// The fake server. Cloning shares it.
#[derive(Clone)]
pub(crate) struct FakeApi {
    state: Arc<Mutex<State>>,
    addr: SocketAddr,
    /// Sending `true` stops the listener and drops every open connection.
    stop: Arc<Mutex<watch::Sender<bool>>>,
}

fn key_of(obj: &Value) -> String {
    let meta = &obj["metadata"];
    format!(
        "{}/{}",
        meta["namespace"].as_str().unwrap_or(""),
        meta["name"].as_str().unwrap_or("")
    )
}

impl FakeApi {
    /// Starts on 127.0.0.1 with an ephemeral port.
    pub(crate) async fn start() -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake apiserver");
        let addr = listener.local_addr().expect("local addr");
        let (tx, _) = watch::channel(false);
        let api = FakeApi {
            state: Arc::new(Mutex::new(State::default())),
            addr,
            stop: Arc::new(Mutex::new(tx)),
        };
        api.serve(listener);
        api
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn serve(&self, listener: TcpListener) {
        let (tx, rx) = watch::channel(false);
        *self.stop.lock().unwrap() = tx;
        let api = self.clone();
        tokio::spawn(async move {
            let mut stop = rx.clone();
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = stop.changed() => return,
                };
                let Ok((stream, _)) = accepted else { continue };
                let api = api.clone();
                let mut stop = rx.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let api = api.clone();
                        async move { Ok::<_, Infallible>(api.handle(req).await) }
                    });
                    let conn =
                        http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = conn => {}
                        _ = stop.changed() => {}
                    }
                });
            }
        });
    }

    /// The server goes away: listener closed, every connection (and watch) dropped.
    pub(crate) fn stop(&self) {
        let _ = self.stop.lock().unwrap().send(true);
        self.state.lock().unwrap().watchers.clear();
    }

    /// The server comes back on the same port.
    pub(crate) async fn restart(&self) {
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        self.serve(listener);
    }

    /// Forget the change history (as etcd compaction does): a watch resuming from an older
    /// resourceVersion gets 410 Gone and must relist.
    pub(crate) fn compact(&self) {
        let mut state = self.state.lock().unwrap();
        state.log.clear();
        state.compacted = state.rv + 1;
    }

    /// Every open watch receives a 410 Gone ERROR event and is closed.
    pub(crate) fn expire_watches(&self) {
        let line = gone_line();
        let mut state = self.state.lock().unwrap();
        state.log.clear();
        for (_, tx) in state.watchers.drain(..) {
            let _ = tx.send(line.clone());
        }
    }

    /// Every open watch of `res` receives a line of garbage (then stays open).
    pub(crate) fn garbage_in_watch(&self, res: Res) {
        let state = self.state.lock().unwrap();
        for (r, tx) in &state.watchers {
            if *r == res {
                let _ = tx.send(Bytes::from_static(
                    b"{\"type\":\"ADDED\",\"object\":{nonsense\n",
                ));
            }
        }
    }

    /// The next `n` lists of `res` answer 200 with invalid JSON.
    pub(crate) fn garbage_lists(&self, res: Res, n: usize) {
        self.state.lock().unwrap().garbage_lists.insert(res, n);
    }

    /// Lists of `res` answer only after `delay`.
    pub(crate) fn slow_lists(&self, res: Res, delay: Duration) {
        self.state.lock().unwrap().slow_lists.insert(res, delay);
    }

    /// Paths and queries of the requests so far.
    pub(crate) fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Number of open watches of `res`.
    pub(crate) fn watchers(&self, res: Res) -> usize {
        let mut state = self.state.lock().unwrap();
        state.watchers.retain(|(_, tx)| !tx.is_closed());
        state.watchers.iter().filter(|(r, _)| *r == res).count()
    }

    /// Add or replace an object and notify watches (ADDED or MODIFIED).
    pub(crate) fn apply(&self, res: Res, obj: Value) {
        self.change(res, obj, true, false);
    }

    /// Delete an object and notify watches.
    pub(crate) fn delete(&self, res: Res, namespace: &str, name: &str) {
        let obj = json!({"metadata": {"namespace": namespace, "name": name}});
        self.change(res, obj, true, true);
    }

    /// Change an object without telling open watches (only a relist sees it).
    pub(crate) fn apply_silently(&self, res: Res, obj: Value) {
        self.change(res, obj, false, false);
    }

    pub(crate) fn delete_silently(&self, res: Res, namespace: &str, name: &str) {
        let obj = json!({"metadata": {"namespace": namespace, "name": name}});
        self.change(res, obj, false, true);
    }

    fn change(&self, res: Res, mut obj: Value, notify: bool, delete: bool) {
        let mut state = self.state.lock().unwrap();
        state.rv += 1;
        let rv = state.rv;
        let key = (res, key_of(&obj));
        let (api_version, kind) = res.item_kind();
        let ty = if delete {
            match state.objects.remove(&key) {
                Some(old) => obj = old,
                None => return,
            }
            "DELETED"
        } else if state.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        obj["apiVersion"] = json!(api_version);
        obj["kind"] = json!(kind);
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        if !delete {
            state.objects.insert(key, obj.clone());
        }
        if notify {
            let line = event_line(ty, &obj);
            state.log.push((rv, res, line.clone()));
            state
                .watchers
                .retain(|(r, tx)| *r != res || tx.send(line.clone()).is_ok());
        }
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<BoxBody<Bytes, Infallible>> {
        let path = req.uri().path().to_owned();
        let query = req.uri().query().unwrap_or("").to_owned();
        self.state
            .lock()
            .unwrap()
            .requests
            .push(format!("{path}?{query}"));
        let Some(res) = Res::ALL.into_iter().find(|r| r.path() == path) else {
            return status(StatusCode::NOT_FOUND, "not found");
        };
        let params: BTreeMap<String, String> = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        if params.get("watch").map(String::as_str) == Some("true") {
            let from: u64 = params
                .get("resourceVersion")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            return self.watch(res, from);
        }
        let delay = self.state.lock().unwrap().slow_lists.get(&res).copied();
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let mut state = self.state.lock().unwrap();
        if let Some(n) = state.garbage_lists.get_mut(&res)
            && *n > 0
        {
            *n -= 1;
            return full(StatusCode::OK, Bytes::from_static(b"{\"items\": [ garbage"));
        }
        let (api_version, kind) = res.list_kind();
        let items: Vec<Value> = state
            .objects
            .iter()
            .filter(|((r, _), _)| *r == res)
            .map(|(_, v)| v.clone())
            .collect();
        let body = json!({
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {"resourceVersion": state.rv.max(1).to_string()},
            "items": items,
        });
        full(StatusCode::OK, Bytes::from(body.to_string()))
    }

    fn watch(&self, res: Res, from: u64) -> Response<BoxBody<Bytes, Infallible>> {
        let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
        {
            let mut state = self.state.lock().unwrap();
            if from < state.compacted {
                // The real apiserver answers 200 and sends the 410 as an ERROR event.
                let _ = tx.send(gone_line());
                drop(tx);
                return stream_response(rx);
            }
            for (rv, r, line) in &state.log {
                if *r == res && *rv > from {
                    let _ = tx.send(line.clone());
                }
            }
            state.watchers.push((res, tx));
        }
        stream_response(rx)
    }
}

fn stream_response(rx: mpsc::UnboundedReceiver<Bytes>) -> Response<BoxBody<Bytes, Infallible>> {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|line| (Ok::<_, Infallible>(Frame::data(line)), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .expect("watch response")
}

fn gone_line() -> Bytes {
    event_line(
        "ERROR",
        &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "reason": "Expired", "code": 410, "message": "too old resource version"}),
    )
}

fn event_line(ty: &str, obj: &Value) -> Bytes {
    let mut text = json!({"type": ty, "object": obj}).to_string();
    text.push('\n');
    Bytes::from(text)
}

fn full(code: StatusCode, body: Bytes) -> Response<BoxBody<Bytes, Infallible>> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(BodyExt::boxed(Full::new(body)))
        .expect("response")
}

fn status(code: StatusCode, message: &str) -> Response<BoxBody<Bytes, Infallible>> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                      "message": message, "code": code.as_u16()});
    full(code, Bytes::from(body.to_string()))
}

// ----- object builders -----

pub(crate) fn namespace(name: &str) -> Value {
    json!({"metadata": {"name": name}})
}

pub(crate) fn service(
    ns: &str,
    name: &str,
    cluster_ip: &str,
    ports: &[(&str, &str, i32)],
) -> Value {
    let ports: Vec<Value> = ports
        .iter()
        .map(|(n, p, port)| json!({"name": n, "protocol": p, "port": port}))
        .collect();
    json!({"metadata": {"namespace": ns, "name": name},
           "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "clusterIPs": [cluster_ip], "ports": ports}})
}

pub(crate) fn headless(ns: &str, name: &str) -> Value {
    json!({"metadata": {"namespace": ns, "name": name},
           "spec": {"clusterIP": "None", "ports": [{"name": "http", "protocol": "TCP", "port": 80}]}})
}

/// A slice of `service` with ready endpoints at `ips` (each with `hostname` if given).
pub(crate) fn slice(ns: &str, name: &str, service: &str, ips: &[&str]) -> Value {
    let endpoints: Vec<Value> = ips
        .iter()
        .map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}}))
        .collect();
    json!({"metadata": {"namespace": ns, "name": name,
                        "labels": {"kubernetes.io/service-name": service}},
           "addressType": "IPv4",
           "ports": [{"name": "http", "protocol": "TCP", "port": 8080}],
           "endpoints": endpoints})
}

pub(crate) fn pod(ns: &str, name: &str, ip: &str) -> Value {
    json!({"metadata": {"namespace": ns, "name": name},
           "status": {"phase": "Running", "podIP": ip}})
}
