//! Sockets and the request path: one UDP socket and one TCP listener per distinct listen address
//! (bind IP x port) of all server blocks, each served by our loops (`udp`, `tcp`) with one
//! `Handler`. Wire concerns only: knows `plugin::Chain`, never a concrete plugin.

mod handler;
mod harness;
mod reply;
mod router;
mod tcp;
mod udp;
mod wire;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use socket2::{Domain, Protocol, Socket, Type};
use tracing::debug;

use crate::config::Config;
use handler::Handler;
use router::Router;

pub use harness::Harness;

/// How long a TCP connection may stay idle between queries.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts at finding a port free for both UDP and TCP when the key asks for port 0.
const EPHEMERAL_ATTEMPTS: usize = 10;

/// Where to listen: an IP (`None` = all addresses) and a port (0 = any free one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ListenAddr {
    pub(crate) ip: Option<IpAddr>,
    pub(crate) port: u16,
}

/// Failure to open a listener.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub(crate) struct BindError {
    pub(crate) addr: String,
    #[source]
    pub(crate) source: io::Error,
}

/// Counts queries being answered, so shutdown can wait for them.
#[derive(Debug, Default)]
pub(crate) struct Inflight {
    count: AtomicUsize,
    draining: AtomicBool,
}

/// Held while one query is answered.
pub(crate) struct InflightGuard<'a>(&'a Inflight);

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Inflight {
    /// Registers a query, or `None` when draining.
    pub(crate) fn enter(&self) -> Option<InflightGuard<'_>> {
        self.count.fetch_add(1, Ordering::AcqRel);
        let guard = InflightGuard(self);
        if self.draining.load(Ordering::Acquire) {
            return None;
        }
        Some(guard)
    }

    /// Stops taking queries and waits (up to `grace`) for those in flight.
    #[cfg(test)]
    async fn drain(&self, grace: Duration) {
        self.drain_until(Instant::now() + grace).await;
    }

    /// Stops taking queries and waits (until `deadline`) for those in flight.
    async fn drain_until(&self, deadline: Instant) {
        self.draining.store(true, Ordering::Release);
        while self.count.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Zones and their chains, in Corefile order.
type Routes = Vec<(hickory_proto::rr::Name, Arc<crate::plugin::Chain>)>;

/// The distinct listen addresses of `config`, each with the router of the blocks on it.
pub(crate) fn plan(config: &Config) -> Vec<(ListenAddr, Router)> {
    let mut plan: Vec<(ListenAddr, Routes)> = Vec::new();
    for server in &config.servers {
        let ips: Vec<Option<IpAddr>> = if server.bind.is_empty() {
            vec![None]
        } else {
            server.bind.iter().copied().map(Some).collect()
        };
        for key in &server.keys {
            for ip in &ips {
                let addr = ListenAddr {
                    ip: *ip,
                    port: key.port,
                };
                let route = (key.zone.clone(), server.chain.clone());
                match plan.iter_mut().find(|(a, _)| *a == addr) {
                    Some((_, routes)) => routes.push(route),
                    None => plan.push((addr, vec![route])),
                }
            }
        }
    }
    plan.into_iter()
        .map(|(addr, routes)| (addr, Router::new(routes)))
        .collect()
}

/// One listen address being served: its UDP loops and TCP server, the router they read (swapped
/// by a reload without touching the sockets) and its own in-flight counter.
pub(crate) struct Listener {
    listen: ListenAddr,
    local: SocketAddr,
    router: Arc<ArcSwap<Router>>,
    inflight: Arc<Inflight>,
    /// Our TCP accept loop (see `tcp`); aborting it closes its connections.
    tcp: tokio::task::JoinHandle<()>,
    /// Our UDP receive loops (see `udp`), one per socket.
    udp_loops: Vec<tokio::task::JoinHandle<()>>,
}

impl Listener {
    /// Binds `listen` (no task yet): the sockets, or the error naming the address.
    fn bind(listen: ListenAddr) -> Result<Bound, BindError> {
        let (udp, tcp, local) = bind_pair(listen).map_err(|source| BindError {
            addr: match listen.ip {
                Some(ip) => SocketAddr::new(ip, listen.port).to_string(),
                None => format!(":{}", listen.port),
            },
            source,
        })?;
        Ok(Bound {
            listen,
            udp,
            tcp,
            local,
        })
    }

    /// Starts serving bound sockets with `router`.
    fn serve(bound: Bound, mut router: Router) -> Listener {
        let Bound {
            listen,
            udp,
            tcp,
            local,
        } = bound;
        debug!(%local, sockets = udp.len(), "listening on UDP and TCP");
        router.set_local(local);
        let router = Arc::new(ArcSwap::from_pointee(router));
        let inflight = Arc::new(Inflight::default());
        let handler = Arc::new(Handler::swappable(
            Arc::clone(&router),
            Arc::clone(&inflight),
        ));
        let udp_loops = udp
            .into_iter()
            .map(|socket| tokio::spawn(udp::serve(Arc::new(socket), Arc::clone(&handler))))
            .collect();
        let tcp = tokio::spawn(tcp::serve(tcp, Arc::clone(&handler), TCP_IDLE_TIMEOUT));
        Listener {
            listen,
            local,
            router,
            inflight,
            tcp,
            udp_loops,
        }
    }

    /// Stops taking queries, lets those in flight finish (up to `deadline`), closes the sockets.
    async fn stop(self, deadline: Instant) {
        self.inflight.drain_until(deadline).await;
        for task in self.udp_loops.iter().chain([&self.tcp]) {
            task.abort();
        }
        // Wait until the tasks have dropped their sockets, so the address is free again.
        for task in self.udp_loops.into_iter().chain([self.tcp]) {
            let _ = task.await;
        }
    }
}

/// Sockets bound for a listen address, not served yet.
struct Bound {
    listen: ListenAddr,
    udp: Vec<tokio::net::UdpSocket>,
    tcp: tokio::net::TcpListener,
    local: SocketAddr,
}

/// Listeners a reload took out of service; [`Retired::stop`] drains and closes them.
#[must_use = "retired listeners keep their sockets until stopped"]
pub(crate) struct Retired(Vec<Listener>);

impl Retired {
    /// The addresses being retired.
    pub(crate) fn addrs(&self) -> Vec<SocketAddr> {
        self.0.iter().map(|l| l.local).collect()
    }

    /// Drains (up to `grace`) and closes every retired listener.
    pub(crate) async fn stop(self, grace: Duration) {
        stop_all(self.0, grace).await;
    }
}

/// Sets every listener draining at once, then waits for each (one shared deadline) and closes it.
async fn stop_all(listeners: Vec<Listener>, grace: Duration) {
    let deadline = Instant::now() + grace;
    for listener in &listeners {
        listener.inflight.draining.store(true, Ordering::Release);
    }
    for listener in listeners {
        listener.stop(deadline).await;
    }
}

/// Running listeners.
pub(crate) struct Servers {
    listeners: Vec<Listener>,
}

impl Servers {
    /// Binds every listen address of `config` and starts serving.
    pub(crate) async fn start(config: &Config) -> Result<Servers, BindError> {
        let mut listeners = Vec::new();
        for (listen, router) in plan(config) {
            let bound = Listener::bind(listen)?;
            listeners.push(Listener::serve(bound, router));
        }
        Ok(Servers { listeners })
    }

    /// Moves the servers to `config`: binds the listen addresses that are new (if one cannot be
    /// bound, nothing changes and the error is returned), swaps the router of every address that
    /// stays (queries in flight finish on the old chains), and hands back the listeners whose
    /// address is gone, still open, for the caller to drain and close.
    pub(crate) fn apply(&mut self, config: &Config) -> Result<Retired, BindError> {
        let plan = plan(config);
        // Bind first: a failure leaves the running listeners untouched.
        let mut fresh = Vec::new();
        for (listen, _) in &plan {
            if !self.listeners.iter().any(|l| l.listen == *listen) {
                fresh.push(Listener::bind(*listen)?);
            }
        }
        let (kept, gone): (Vec<Listener>, Vec<Listener>) = std::mem::take(&mut self.listeners)
            .into_iter()
            .partition(|l| plan.iter().any(|(listen, _)| *listen == l.listen));
        let mut kept = kept;
        let mut fresh = fresh.into_iter();
        for (listen, mut router) in plan {
            match kept.iter().position(|l| l.listen == listen) {
                Some(i) => {
                    let listener = kept.swap_remove(i);
                    router.set_local(listener.local);
                    listener.router.store(Arc::new(router));
                    self.listeners.push(listener);
                }
                None => {
                    if let Some(bound) = fresh.next() {
                        self.listeners.push(Listener::serve(bound, router));
                    }
                }
            }
        }
        Ok(Retired(gone))
    }

    /// Bound addresses, one per listen address (UDP and TCP share it).
    pub(crate) fn addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.listeners.iter().map(|l| l.local)
    }

    /// The port a key's listen address got (differs from the key's for port 0).
    pub(crate) fn bound_port(&self, port: u16, bind: &[IpAddr]) -> u16 {
        let ip = bind.first().copied();
        self.listeners
            .iter()
            .find(|l| l.listen.port == port && l.listen.ip == ip)
            .map_or(port, |l| l.local.port())
    }

    /// Stops accepting, lets queries in flight finish (up to `grace`), closes the sockets.
    pub(crate) async fn shutdown(self, grace: Duration) {
        stop_all(self.listeners, grace).await;
    }
}

/// Binds UDP, then TCP on the same port; for port 0 retries until both get the same port.
fn bind_pair(
    listen: ListenAddr,
) -> io::Result<(
    Vec<tokio::net::UdpSocket>,
    tokio::net::TcpListener,
    SocketAddr,
)> {
    let attempts = if listen.port == 0 {
        EPHEMERAL_ATTEMPTS
    } else {
        1
    };
    let mut last = io::Error::other("no attempt made");
    for _ in 0..attempts {
        let result = match listen.ip {
            Some(ip) => bind_pair_at(SocketAddr::new(ip, listen.port), false),
            None => {
                // Prefer one dual-stack socket; without IPv6, fall back to IPv4 only.
                match bind_pair_at(
                    SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), listen.port),
                    true,
                ) {
                    Err(e)
                        if !matches!(
                            e.kind(),
                            io::ErrorKind::AddrInUse | io::ErrorKind::PermissionDenied
                        ) =>
                    {
                        debug!(error = %e, "no dual-stack socket, listening on IPv4 only");
                        bind_pair_at(
                            SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), listen.port),
                            false,
                        )
                    }
                    other => other,
                }
            }
        };
        match result {
            Ok(pair) => return Ok(pair),
            Err(e) if listen.port == 0 && e.kind() == io::ErrorKind::AddrInUse => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// One UDP socket bound to `addr` with SO_REUSEPORT, so that several can share the port.
fn bind_udp(addr: SocketAddr, dual_stack: bool) -> io::Result<Socket> {
    let udp = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        udp.set_only_v6(!dual_stack)?;
    }
    udp.set_reuse_port(true)?;
    udp.set_nonblocking(true)?;
    udp.bind(&addr.into())?;
    Ok(udp)
}

/// How many UDP sockets (and receive loops) each listen address gets: one per core, so the
/// kernel spreads datagrams over the runtime's worker threads (CoreDNS's `multisocket` idea).
fn udp_sockets_per_address() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(16))
}

fn bind_pair_at(
    addr: SocketAddr,
    dual_stack: bool,
) -> io::Result<(
    Vec<tokio::net::UdpSocket>,
    tokio::net::TcpListener,
    SocketAddr,
)> {
    let domain = Domain::for_address(addr);
    let first = bind_udp(addr, dual_stack)?;
    let local = first
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("UDP socket has no IP address"))?;
    let mut udp = vec![first];
    for _ in 1..udp_sockets_per_address() {
        udp.push(bind_udp(local, dual_stack)?);
    }
    let tcp = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    tcp.set_reuse_address(true)?;
    if addr.is_ipv6() {
        tcp.set_only_v6(!dual_stack)?;
    }
    tcp.set_nonblocking(true)?;
    tcp.bind(&local.into())?;
    tcp.listen(1024)?;
    let udp = udp
        .into_iter()
        .map(|s| tokio::net::UdpSocket::from_std(s.into()))
        .collect::<io::Result<Vec<_>>>()?;
    let tcp = tokio::net::TcpListener::from_std(tcp.into())?;
    Ok((udp, tcp, local))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corefile::{Corefile, Directive, Location, ServerBlock, Token};
    use std::path::Path;

    fn tok(text: &str) -> Token {
        Token {
            text: text.into(),
            location: Location {
                file: "Corefile".into(),
                line: 1,
                column: 1,
            },
        }
    }

    fn block(keys: &[&str], bind: &[&str]) -> ServerBlock {
        let mut directives = vec![Directive {
            name: tok("whoami"),
            args: vec![],
            block: None,
        }];
        if !bind.is_empty() {
            directives.push(Directive {
                name: tok("bind"),
                args: bind.iter().map(|b| tok(b)).collect(),
                block: None,
            });
        }
        ServerBlock {
            keys: keys.iter().map(|k| tok(k)).collect(),
            directives,
        }
    }

    #[test]
    fn plan_groups_by_address_and_port() {
        let config = Config::build(
            &Corefile {
                blocks: vec![
                    block(&[".", "example.org:1053"], &[]),
                    block(&["example.com"], &[]),
                    block(&["example.net"], &["127.0.0.1", "::1"]),
                ],
            },
            "Corefile",
            Path::new("."),
            53,
        )
        .unwrap();
        let plan = plan(&config);
        let addrs: Vec<ListenAddr> = plan.iter().map(|(a, _)| *a).collect();
        let lo4: IpAddr = "127.0.0.1".parse().unwrap();
        let lo6: IpAddr = "::1".parse().unwrap();
        assert_eq!(
            addrs,
            [
                ListenAddr { ip: None, port: 53 },
                ListenAddr {
                    ip: None,
                    port: 1053
                },
                ListenAddr {
                    ip: Some(lo4),
                    port: 53
                },
                ListenAddr {
                    ip: Some(lo6),
                    port: 53
                },
            ]
        );
        let name = |s: &str| hickory_proto::rr::LowerName::new(&s.parse().unwrap());
        // `.:53` and `example.com:53` share the wildcard listener.
        assert!(plan[0].1.route(&name("www.example.com.")).is_some());
        assert!(plan[0].1.route(&name("example.org.")).is_some());
        // Port 1053 serves only example.org.
        assert!(plan[1].1.route(&name("example.com.")).is_none());
        assert!(plan[2].1.route(&name("example.com.")).is_none());
    }

    #[tokio::test]
    async fn ephemeral_port_is_the_same_for_udp_and_tcp() {
        let listen = ListenAddr {
            ip: Some("127.0.0.1".parse().unwrap()),
            port: 0,
        };
        let (udp, tcp, local) = bind_pair(listen).unwrap();
        assert_ne!(local.port(), 0);
        assert_eq!(udp.len(), udp_sockets_per_address());
        for socket in &udp {
            assert_eq!(socket.local_addr().unwrap(), local);
        }
        assert_eq!(tcp.local_addr().unwrap(), local);
        // A fixed port already taken is an error, not a retry.
        let taken = ListenAddr {
            ip: Some("127.0.0.1".parse().unwrap()),
            port: local.port(),
        };
        assert_eq!(
            bind_pair(taken).unwrap_err().kind(),
            io::ErrorKind::AddrInUse
        );
    }

    /// Answers `addr` for every name; when `gate` is set, first waits for it to be released.
    struct Fixed {
        addr: [u8; 4],
        gate: Option<Arc<(tokio::sync::Notify, AtomicUsize)>>,
    }

    #[async_trait::async_trait]
    impl crate::plugin::Plugin for Fixed {
        fn name(&self) -> &'static str {
            "whoami"
        }

        async fn serve(
            &self,
            query: &crate::plugin::Query<'_>,
            _next: crate::plugin::Next<'_>,
        ) -> Result<crate::plugin::Answer, crate::plugin::PluginError> {
            if let Some(gate) = &self.gate {
                let released = gate.0.notified();
                tokio::pin!(released);
                // Registered before counting, so a release right after the count is not missed.
                released.as_mut().enable();
                gate.1.fetch_add(1, Ordering::AcqRel);
                released.await;
            }
            let mut answer =
                crate::plugin::Answer::authoritative(hickory_proto::op::ResponseCode::NoError);
            answer.answers.push(hickory_proto::rr::Record::from_rdata(
                query.name.clone(),
                5,
                hickory_proto::rr::RData::A(std::net::Ipv4Addr::from(self.addr).into()),
            ));
            Ok(answer)
        }
    }

    fn fixed_config(
        addr: [u8; 4],
        gate: Option<Arc<(tokio::sync::Notify, AtomicUsize)>>,
    ) -> Config {
        let plugin: Arc<dyn crate::plugin::Plugin> = Arc::new(Fixed { addr, gate });
        Config {
            servers: vec![crate::config::ServerConfig {
                keys: vec![crate::config::ServerKey {
                    zone: hickory_proto::rr::Name::root(),
                    port: 0,
                    location: tok(".").location,
                }],
                bind: vec!["127.0.0.1".parse().unwrap()],
                chain: Arc::new(crate::plugin::Chain::new(vec![plugin])),
                inactive: Vec::new(),
                hooks: Vec::new(),
                process: Default::default(),
            }],
        }
    }

    async fn ask(client: &tokio::net::UdpSocket, server: SocketAddr, id: u16) {
        let mut msg = hickory_proto::op::Message::query();
        msg.metadata.id = id;
        msg.add_query(hickory_proto::op::Query::query(
            hickory_proto::rr::Name::from_ascii("example.org.").unwrap(),
            hickory_proto::rr::RecordType::A,
        ));
        client
            .send_to(&msg.to_vec().unwrap(), server)
            .await
            .unwrap();
    }

    /// The next reply: its id and address; `None` after `wait`.
    async fn reply(client: &tokio::net::UdpSocket, wait: Duration) -> Option<(u16, String)> {
        let mut buf = [0u8; 512];
        let (len, _) = tokio::time::timeout(wait, client.recv_from(&mut buf))
            .await
            .ok()?
            .ok()?;
        let msg = hickory_proto::op::Message::from_vec(&buf[..len]).ok()?;
        let addr = msg.answers.first()?.data.to_string();
        Some((msg.metadata.id, addr))
    }

    async fn until_waiting(gate: &(tokio::sync::Notify, AtomicUsize), n: usize) {
        let deadline = Instant::now() + Duration::from_secs(3);
        while gate.1.load(Ordering::Acquire) < n {
            assert!(
                Instant::now() < deadline,
                "the query never reached the plugin"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn query_in_flight_finishes_on_its_chain_across_reload_and_shutdown() {
        let gate = Arc::new((tokio::sync::Notify::new(), AtomicUsize::new(0)));
        let mut servers = Servers::start(&fixed_config([192, 0, 2, 1], Some(gate.clone())))
            .await
            .unwrap();
        let addr = servers.addrs().next().unwrap();
        let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();

        // A query waits in the old chain while the reload swaps in a new one.
        ask(&client, addr, 1).await;
        until_waiting(&gate, 1).await;
        let retired = servers.apply(&fixed_config([192, 0, 2, 2], None)).unwrap();
        assert!(retired.addrs().is_empty());
        retired.stop(Duration::ZERO).await;
        assert_eq!(servers.addrs().collect::<Vec<_>>(), vec![addr]);
        ask(&client, addr, 2).await;
        let wait = Duration::from_secs(3);
        assert_eq!(reply(&client, wait).await, Some((2, "192.0.2.2".into())));
        gate.0.notify_waiters();
        assert_eq!(reply(&client, wait).await, Some((1, "192.0.2.1".into())));

        // Shutdown: the query in flight is answered, a new one is not.
        let gate = Arc::new((tokio::sync::Notify::new(), AtomicUsize::new(0)));
        servers
            .apply(&fixed_config([192, 0, 2, 3], Some(gate.clone())))
            .unwrap()
            .stop(Duration::ZERO)
            .await;
        ask(&client, addr, 3).await;
        until_waiting(&gate, 1).await;
        let inflight = Arc::clone(&servers.listeners[0].inflight);
        let shutdown = tokio::spawn(servers.shutdown(Duration::from_secs(5)));
        let deadline = Instant::now() + Duration::from_secs(3);
        while !inflight.draining.load(Ordering::Acquire) {
            assert!(Instant::now() < deadline, "shutdown never started draining");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        ask(&client, addr, 4).await;
        assert_eq!(reply(&client, Duration::from_millis(200)).await, None);
        gate.0.notify_waiters();
        assert_eq!(reply(&client, wait).await, Some((3, "192.0.2.3".into())));
        shutdown.await.unwrap();
        assert_eq!(
            gate.1.load(Ordering::Acquire),
            1,
            "query 4 never reached the chain"
        );
    }

    #[tokio::test]
    async fn drain_refuses_new_queries() {
        let inflight = Inflight::default();
        let guard = inflight.enter();
        assert!(guard.is_some());
        drop(guard);
        inflight.drain(Duration::from_millis(50)).await;
        assert!(inflight.enter().is_none());
        assert_eq!(inflight.count.load(Ordering::Acquire), 0);
    }
}
