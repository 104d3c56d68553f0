//! A fake Kubernetes API server on loopback for the API source's tests and the memory benchmark:
//! list (one page, with a resourceVersion) and streamed watch (newline-delimited JSON events,
//! replayed from the requested resourceVersion) of services, endpointslices, namespaces
//! (PartialObjectMetadata) and pods; plus the failures a real one shows: 410 Gone in the stream,
//! going away and coming back on the same port, garbage JSON, slow responses. [`Fault`]s set per
//! resource make every list or every watch misbehave until cleared: hang after the headers,
//! answer garbage, 410 Gone, or a 502 with an HTML page; open watches can be closed or stalled
//! mid-line.

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

/// How every list or every watch of a resource misbehaves while the fault is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// 200 and the start of the body (a list's opening, a watch's half event line), then nothing
    /// until [`FakeApi::release_hangs`] ends the response there.
    Hang,
    /// 200 with a body that is not JSON (a list), or one garbage line and the end (a watch).
    Garbage,
    /// 410 Gone: a list answers HTTP 410 with a Status; a watch answers 200, an ERROR 410 event
    /// and the end of the stream (history compacted), so the client must relist.
    Gone,
    /// 502 with an HTML page, as a proxy in front of a dead apiserver answers.
    BadGateway,
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
    /// Faults of every list / every watch of a resource.
    list_faults: BTreeMap<Res, Fault>,
    watch_faults: BTreeMap<Res, Fault>,
    /// Responses held open by [`Fault::Hang`] or [`FakeApi::stall_watches`]: dropping a sender
    /// ends its body where it stopped.
    hung: Vec<mpsc::UnboundedSender<Bytes>>,
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

    /// From now on every list of each of `res` misbehaves as `fault` (`None`: answers again).
    pub(crate) fn fault_lists(&self, res: &[Res], fault: Option<Fault>) {
        let mut state = self.state.lock().unwrap();
        for r in res {
            match fault {
                Some(f) => state.list_faults.insert(*r, f),
                None => state.list_faults.remove(r),
            };
        }
    }

    /// From now on every new watch of each of `res` misbehaves as `fault` (`None`: works again).
    /// Watches already open are not affected.
    pub(crate) fn fault_watches(&self, res: &[Res], fault: Option<Fault>) {
        let mut state = self.state.lock().unwrap();
        for r in res {
            match fault {
                Some(f) => state.watch_faults.insert(*r, f),
                None => state.watch_faults.remove(r),
            };
        }
    }

    /// Every open watch of every resource ends cleanly (end of the body, the connection stays):
    /// the client resumes from its last resourceVersion.
    pub(crate) fn close_watches(&self) {
        self.state.lock().unwrap().watchers.clear();
    }

    /// Every open watch of `res` receives half an event line and then nothing: the stream hangs
    /// mid-line. Events of `res` from now on are kept for replay but not sent to those watches.
    /// [`FakeApi::release_hangs`] ends them.
    pub(crate) fn stall_watches(&self, res: Res) {
        let mut guard = self.state.lock().unwrap();
        let state = &mut *guard;
        let mut kept = Vec::new();
        for (r, tx) in state.watchers.drain(..) {
            if r == res {
                let _ = tx.send(Bytes::from_static(HALF_EVENT));
                state.hung.push(tx);
            } else {
                kept.push((r, tx));
            }
        }
        state.watchers = kept;
    }

    /// Ends every hung list and stalled watch response where it stopped (a truncated body).
    pub(crate) fn release_hangs(&self) {
        self.state.lock().unwrap().hung.clear();
    }

    /// Responses hanging now (hung by a fault or stalled), still held by a client.
    pub(crate) fn hanging(&self) -> usize {
        let mut state = self.state.lock().unwrap();
        state.hung.retain(|tx| !tx.is_closed());
        state.hung.len()
    }

    /// Lists of `res` begun so far: list requests (not watches) for a first page.
    pub(crate) fn lists(&self, res: Res) -> usize {
        let prefix = format!("{}?", res.path());
        self.state
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|r| {
                r.starts_with(&prefix) && !r.contains("watch=true") && !r.contains("continue=")
            })
            .count()
    }

    /// Watch requests of `res` received so far.
    pub(crate) fn watches(&self, res: Res) -> usize {
        let prefix = format!("{}?", res.path());
        self.state
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|r| r.starts_with(&prefix) && r.contains("watch=true"))
            .count()
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
            let fault = self.state.lock().unwrap().watch_faults.get(&res).copied();
            return match fault {
                Some(fault) => self.faulty_watch(fault),
                None => self.watch(res, from),
            };
        }
        let delay = self.state.lock().unwrap().slow_lists.get(&res).copied();
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let mut state = self.state.lock().unwrap();
        if let Some(fault) = state.list_faults.get(&res).copied() {
            return match fault {
                Fault::Hang => {
                    let (api_version, kind) = res.list_kind();
                    let head = format!(
                        "{{\"apiVersion\":\"{api_version}\",\"kind\":\"{kind}\",\"metadata\":{{\"resourceVersion\":\"{}\"}},\"items\":[",
                        state.rv.max(1)
                    );
                    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
                    let _ = tx.send(Bytes::from(head));
                    state.hung.push(tx);
                    stream_response(rx)
                }
                Fault::Garbage => full(
                    StatusCode::OK,
                    Bytes::from_static(b"\x00\xffnot json at all"),
                ),
                Fault::Gone => status(StatusCode::GONE, "too old resource version"),
                Fault::BadGateway => bad_gateway(),
            };
        }
        if let Some(n) = state.garbage_lists.get_mut(&res)
            && *n > 0
        {
            *n -= 1;
            return full(StatusCode::OK, Bytes::from_static(b"{\"items\": [ garbage"));
        }
        let (api_version, kind) = res.list_kind();
        // Pages of `limit` items; the continue token is the offset of the next page.
        let offset: usize = params
            .get("continue")
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let limit: usize = params
            .get("limit")
            .and_then(|l| l.parse().ok())
            .filter(|l| *l > 0)
            .unwrap_or(usize::MAX);
        let mut items: Vec<Value> = state
            .objects
            .iter()
            .filter(|((r, _), _)| *r == res)
            .skip(offset)
            .take(limit.saturating_add(1))
            .map(|(_, v)| v.clone())
            .collect();
        let more = items.len() > limit;
        items.truncate(limit);
        let mut metadata = json!({"resourceVersion": state.rv.max(1).to_string()});
        if more {
            metadata["continue"] = json!((offset + limit).to_string());
        }
        let body = json!({
            "apiVersion": api_version,
            "kind": kind,
            "metadata": metadata,
            "items": items,
        });
        full(StatusCode::OK, Bytes::from(body.to_string()))
    }

    /// A new watch under `fault`.
    fn faulty_watch(&self, fault: Fault) -> Response<BoxBody<Bytes, Infallible>> {
        let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
        match fault {
            Fault::Hang => {
                let _ = tx.send(Bytes::from_static(HALF_EVENT));
                self.state.lock().unwrap().hung.push(tx);
            }
            Fault::Garbage => {
                let _ = tx.send(Bytes::from_static(b"}}not json{{\n"));
            }
            Fault::Gone => {
                let _ = tx.send(gone_line());
            }
            Fault::BadGateway => return bad_gateway(),
        }
        stream_response(rx)
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

/// The first half of an event line: a stream cut or stalled here is mid-object.
const HALF_EVENT: &[u8] = b"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":";

fn bad_gateway() -> Response<BoxBody<Bytes, Infallible>> {
    Response::builder()
        .status(StatusCode::BAD_GATEWAY)
        .header("content-type", "text/html")
        .body(BodyExt::boxed(Full::new(Bytes::from_static(
            b"<html><body><h1>502 Bad Gateway</h1></body></html>\n",
        ))))
        .expect("response")
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
