//! The process-wide HTTP endpoints of `health`, `ready` and `prometheus`: one listener per
//! address (HTTP/1.1, hyper), shared by every plugin that serves a path on it, with handlers
//! that a reload swaps without rebinding.
//!
//! Also holds the process-wide "shutting down" flag: once set (by the SIGTERM path, before the
//! lame-duck wait), `/ready` answers 503 `Shutting down` while `/health` keeps answering 200.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdTcpListener, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, RwLock};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tracing::debug;

use crate::corefile::HostPort;

static SHUTTING_DOWN: AtomicBool = AtomicBool::new(false);

/// Marks the process as shutting down (`/ready` then answers 503 `Shutting down`), or not.
pub fn set_shutting_down(value: bool) {
    SHUTTING_DOWN.store(value, Ordering::Release);
}

/// Whether [`set_shutting_down`] was called with `true`.
pub fn shutting_down() -> bool {
    SHUTTING_DOWN.load(Ordering::Acquire)
}

/// What a handler answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Reply {
    /// A `text/plain` reply.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }
}

/// Answers a GET of one path. Called on the listener's task; must not block for long.
pub type Handler = Arc<dyn Fn() -> Reply + Send + Sync>;

/// Failure to open an HTTP listener.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    pub addr: String,
    #[source]
    pub source: std::io::Error,
}

/// One route: its handler and a generation number, so that retiring an old chain never removes
/// the handler a reload put in its place.
type Routes = RwLock<HashMap<String, (u64, Handler)>>;

struct Listener {
    local: SocketAddr,
    routes: Arc<Routes>,
}

/// Listeners by the address as configured (`:8080`, `127.0.0.1:9153`). Port-0 addresses are
/// never shared: each asks for a fresh ephemeral port.
static LISTENERS: LazyLock<Mutex<HashMap<String, Listener>>> = LazyLock::new(Default::default);
static GENERATION: AtomicU64 = AtomicU64::new(1);

/// The socket address a configured `HOST:PORT` binds to (empty host: all addresses).
fn resolve(addr: &HostPort) -> std::io::Result<SocketAddr> {
    let host = if addr.host.is_empty() {
        "::"
    } else {
        addr.host.as_str()
    };
    (host, addr.port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other("the host name has no address"))
}

fn bind(addr: &HostPort) -> std::io::Result<StdTcpListener> {
    let resolved = resolve(addr)?;
    let listener = match StdTcpListener::bind(resolved) {
        // No IPv6 on this machine: the wildcard address falls back to IPv4.
        Err(e) if addr.host.is_empty() && e.kind() != std::io::ErrorKind::AddrInUse => {
            debug!(error = %e, "no IPv6 wildcard, HTTP listens on IPv4 only");
            StdTcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, addr.port))?
        }
        other => other?,
    };
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// A path served on a listener; dropping it removes the route (unless a newer `serve` of the
/// same address and path replaced it meanwhile).
pub struct Route {
    routes: Arc<Routes>,
    path: String,
    generation: u64,
    local: SocketAddr,
}

impl Route {
    /// The listener's bound address (the real port when the configured one was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// A task that holds the route until it is aborted (when the chain is retired).
    pub fn hold(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let _route = self;
            std::future::pending::<()>().await
        })
    }
}

impl Drop for Route {
    fn drop(&mut self) {
        let mut routes = self.routes.write().unwrap_or_else(|p| p.into_inner());
        if routes
            .get(&self.path)
            .is_some_and(|(g, _)| *g == self.generation)
        {
            routes.remove(&self.path);
        }
    }
}

/// Serves GET `path` on `addr` with `handler`, binding the address on first use (must be called
/// inside the tokio runtime). A path already served there gets the new handler.
pub fn serve(addr: &HostPort, path: &str, handler: Handler) -> Result<Route, BindError> {
    let key = addr.to_string();
    let mut listeners = LISTENERS.lock().unwrap_or_else(|p| p.into_inner());
    let shared = addr.port != 0;
    let existing = if shared { listeners.get(&key) } else { None };
    let (local, routes) = match existing {
        Some(l) => (l.local, Arc::clone(&l.routes)),
        None => {
            let std_listener = bind(addr).map_err(|source| BindError {
                addr: key.clone(),
                source,
            })?;
            let local = std_listener.local_addr().map_err(|source| BindError {
                addr: key.clone(),
                source,
            })?;
            let listener =
                tokio::net::TcpListener::from_std(std_listener).map_err(|source| BindError {
                    addr: key.clone(),
                    source,
                })?;
            let routes: Arc<Routes> = Arc::default();
            tokio::spawn(accept_loop(listener, Arc::clone(&routes)));
            let key = if shared {
                key.clone()
            } else {
                format!("{key}#{local}")
            };
            listeners.insert(
                key,
                Listener {
                    local,
                    routes: Arc::clone(&routes),
                },
            );
            (local, routes)
        }
    };
    let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
    routes
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .insert(path.to_owned(), (generation, handler));
    Ok(Route {
        routes,
        path: path.to_owned(),
        generation,
        local,
    })
}

async fn accept_loop(listener: tokio::net::TcpListener, routes: Arc<Routes>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                debug!(%error, "HTTP accept failed");
                // Out of file descriptors and the like: do not spin.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let routes = Arc::clone(&routes);
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let routes = Arc::clone(&routes);
                async move { Ok::<_, Infallible>(respond(&routes, &req)) }
            });
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                debug!(%error, "HTTP connection ended with an error");
            }
        });
    }
}

fn respond(routes: &Routes, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let handler = routes
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(req.uri().path())
        .map(|(_, h)| Arc::clone(h));
    let reply = match handler {
        Some(handler) => handler(),
        None => Reply::text(404, "404 page not found\n"),
    };
    let mut response = Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(value) = hyper::header::HeaderValue::from_str(reply.content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

/// A minimal HTTP/1.1 GET (health's self-check, tests): status and body.
pub(crate) async fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await?;
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lo0() -> HostPort {
        HostPort {
            host: "127.0.0.1".into(),
            port: 0,
        }
    }

    #[tokio::test]
    async fn routes_share_a_listener_and_are_swapped_and_removed() {
        let first = serve(&lo0(), "/a", Arc::new(|| Reply::text(200, "A1"))).unwrap();
        let addr = first.local_addr();
        assert_eq!(get(addr, "/a").await.unwrap(), (200, "A1".into()));
        assert_eq!(get(addr, "/b").await.unwrap().0, 404);
        // A second port-0 address gets a listener of its own.
        let other = serve(&lo0(), "/a", Arc::new(|| Reply::text(200, "other"))).unwrap();
        assert_ne!(other.local_addr(), addr);
        // A newer handler for the same path replaces the first; dropping the old route then
        // leaves the new one in place.
        let fixed = HostPort {
            host: "127.0.0.1".into(),
            port: free_port(),
        };
        let old = serve(&fixed, "/x", Arc::new(|| Reply::text(200, "old"))).unwrap();
        let new = serve(&fixed, "/x", Arc::new(|| Reply::text(503, "new"))).unwrap();
        let fixed_addr = new.local_addr();
        assert_eq!(old.local_addr(), fixed_addr);
        assert_eq!(get(fixed_addr, "/x").await.unwrap(), (503, "new".into()));
        drop(old);
        assert_eq!(get(fixed_addr, "/x").await.unwrap(), (503, "new".into()));
        drop(new);
        assert_eq!(get(fixed_addr, "/x").await.unwrap().0, 404);
        drop(first);
        assert_eq!(get(addr, "/a").await.unwrap().0, 404);
    }

    #[tokio::test]
    async fn a_taken_address_is_an_error_naming_it() {
        let taken = StdTcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let addr = HostPort {
            host: "127.0.0.1".into(),
            port,
        };
        let err = serve(&addr, "/health", Arc::new(|| Reply::text(200, "OK")))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
            "{err}"
        );
    }

    fn free_port() -> u16 {
        StdTcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap()
    }
}
