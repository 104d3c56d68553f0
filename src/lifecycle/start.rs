//! Start-up: bind every listener, start every block's hooks (chain plugins included) with what
//! they need to know, wait until they are started; and the `Running` server that reloads swap
//! and shutdown stops.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::{info, warn};

use crate::Error;
use crate::config::Config;
use crate::plugin::{Endpoints, PluginError, StartContext};
use crate::server::{Retired, Servers};

/// How long shutdown waits for queries in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A started server: its listeners, the configuration they serve and the plugins' background
/// tasks.
pub struct Running {
    servers: Servers,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// HTTP paths served by the plugins, with their bound addresses.
    http: Vec<(String, SocketAddr)>,
    config: Config,
    /// Fatal errors reported by plugins (a forwarding loop); the sender is handed to every
    /// plugin started, at start-up and on each reload.
    fatal: tokio::sync::mpsc::UnboundedReceiver<String>,
    fatal_tx: tokio::sync::mpsc::UnboundedSender<String>,
}

impl Running {
    /// The bound addresses, one per listen address; UDP and TCP share each.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.servers.addrs().collect()
    }

    /// The bound address of the HTTP endpoint serving `path` (`/health`, `/ready`, `/metrics`).
    pub fn http_addr(&self, path: &str) -> Option<SocketAddr> {
        self.http.iter().find(|(p, _)| p == path).map(|(_, a)| *a)
    }

    /// CoreDNS's start-up lines: `ZONE:PORT` for every key (with the bound port).
    pub fn server_lines(&self) -> Vec<String> {
        self.config
            .servers
            .iter()
            .flat_map(|s| {
                s.keys
                    .iter()
                    .map(|k| format!("{}:{}", k.zone, self.servers.bound_port(k.port, &s.bind)))
            })
            .collect()
    }

    /// The configuration serving now (its `reload` schedule is read by the shutdown loop).
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// The lame-duck delay of the configuration serving now (zero without one).
    pub fn shutdown_delay(&self) -> Duration {
        self.config.shutdown_delay()
    }

    /// Replaces the configuration without dropping queries: binds the new listen addresses
    /// (failing, with nothing changed, if one cannot be bound), swaps the chains on the addresses
    /// that stay, starts the new plugins, and in the background closes the addresses that went
    /// away and stops the old plugins' tasks once their queries in flight are answered.
    pub async fn reload(&mut self, config: Config) -> Result<(), Error> {
        let retired = self.servers.apply(&config).map_err(|e| Error::Listen {
            addr: e.addr,
            source: e.source,
        })?;
        let (tasks, opened) = start_hooks(&config, &self.servers, &self.fatal_tx);
        if let Some((addr, error)) = opened.take_error() {
            // DNS already serves the new configuration; an HTTP endpoint (health, ready,
            // metrics) on a new address could not be bound. Say so once, loudly.
            tracing::error!(%addr, %error, "reload: cannot listen on {addr}: {error}");
        }
        self.http = opened.endpoints();
        if let Err(error) = wait_started(&config).await {
            // The new chain serves already (an index it reuses stays as it was); a source that
            // cannot start is logged, as at start-up, and the process keeps serving.
            tracing::error!(%error, "reload: a plugin could not start");
        }
        let old_config = std::mem::replace(&mut self.config, config);
        let old_tasks = std::mem::replace(&mut self.tasks, tasks);
        tokio::spawn(retire(old_config, old_tasks, retired));
        Ok(())
    }

    /// Resolves with the first fatal error a plugin reports (e.g. `loop` found a forwarding loop);
    /// never resolves if there is none.
    pub async fn fatal(&mut self) -> String {
        match self.fatal.recv().await {
            Some(message) => message,
            None => std::future::pending().await,
        }
    }

    /// Stops accepting queries, lets those in flight finish, stops plugins' tasks.
    pub async fn shutdown(self) {
        self.servers.shutdown(SHUTDOWN_GRACE).await;
        for task in self.tasks {
            task.abort();
        }
    }
}

/// After a reload: closes the listeners that went away (once drained), then waits until no
/// query runs on the old chains any more (bounded) and stops their background tasks.
async fn retire(config: Config, tasks: Vec<tokio::task::JoinHandle<()>>, retired: Retired) {
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    let chains: Vec<_> = config
        .servers
        .iter()
        .map(|s| std::sync::Arc::downgrade(&s.chain))
        .collect();
    drop(config);
    let addrs = retired.addrs();
    retired.stop(SHUTDOWN_GRACE).await;
    if !addrs.is_empty() {
        info!(
            ?addrs,
            "stopped listening on addresses no longer configured"
        );
    }
    while chains.iter().any(|c| c.strong_count() > 0) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for task in tasks {
        task.abort();
    }
}

/// Binds every listener of `config`, starts the plugins and logs what is configured but not
/// active. Returns once the server is answering.
pub async fn start(config: Config) -> Result<Running, Error> {
    let servers = Servers::start(&config).await.map_err(|e| Error::Listen {
        addr: e.addr,
        source: e.source,
    })?;
    let (fatal_tx, fatal) = tokio::sync::mpsc::unbounded_channel();
    let (tasks, opened) = start_hooks(&config, &servers, &fatal_tx);
    if let Some((addr, source)) = opened.take_error() {
        for task in tasks {
            task.abort();
        }
        servers.shutdown(Duration::ZERO).await;
        return Err(Error::Listen { addr, source });
    }
    if let Err(error) = wait_started(&config).await {
        for task in &tasks {
            task.abort();
        }
        servers.shutdown(SHUTDOWN_GRACE).await;
        return Err(Error::PluginStart(error));
    }
    Ok(Running {
        servers,
        tasks,
        http: opened.endpoints(),
        config,
        fatal,
        fatal_tx,
    })
}

/// Awaits every hook's `wait_started` (kubernetes: its first sync or `startup_timeout`),
/// concurrently; the first error.
async fn wait_started(config: &Config) -> Result<(), PluginError> {
    let waits = config
        .servers
        .iter()
        .flat_map(|server| &server.hooks)
        .map(|hook| hook.wait_started());
    match futures_util::future::join_all(waits)
        .await
        .into_iter()
        .find_map(Result::err)
    {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// Starts every hook of `config` (chain plugins included, logging what is configured but not
/// active); returns their background tasks and what their endpoints opened (or failed to).
fn start_hooks(
    config: &Config,
    servers: &Servers,
    fatal_tx: &tokio::sync::mpsc::UnboundedSender<String>,
) -> (Vec<tokio::task::JoinHandle<()>>, Arc<Opened>) {
    let mut interfaces: Option<Vec<IpAddr>> = None;
    let mut tasks = Vec::new();
    let opened = Arc::new(Opened::default());
    for server in &config.servers {
        for inactive in &server.inactive {
            warn!(
                plugin = inactive.plugin,
                location = %inactive.location,
                "plugin/{}: not active in this build: {}",
                inactive.plugin,
                inactive.what
            );
        }
        let listen_ips = if server.bind.is_empty() {
            interfaces.get_or_insert_with(interface_ips).clone()
        } else {
            server.bind.clone()
        };
        let self_addrs = server
            .keys
            .iter()
            .map(|key| {
                let ip = server
                    .bind
                    .first()
                    .copied()
                    .unwrap_or(IpAddr::from([127, 0, 0, 1]));
                SocketAddr::new(ip, servers.bound_port(key.port, &server.bind))
            })
            .collect();
        let labels = server
            .keys
            .iter()
            .map(|key| {
                let host = server.bind.first().map_or(String::new(), |ip| match ip {
                    IpAddr::V4(v4) => v4.to_string(),
                    IpAddr::V6(v6) => format!("[{v6}]"),
                });
                let port = servers.bound_port(key.port, &server.bind);
                (key.zone.clone(), format!("dns://{host}:{port}"))
            })
            .collect();
        let ctx = StartContext {
            listen_ips,
            self_addrs,
            hooks: server.hooks.clone(),
            servers: labels,
            endpoints: Some(Arc::clone(&opened) as Arc<dyn Endpoints>),
            fatal: Some(fatal_tx.clone()),
        };
        for hook in &server.hooks {
            tasks.extend(hook.start(&ctx));
        }
    }
    (tasks, opened)
}

/// What the hooks of one start-up opened: each path with its bound address, and the addresses
/// that could not be listened on (start-up fails on the first one, naming the address).
#[derive(Debug, Default)]
struct Opened {
    endpoints: Mutex<Vec<(String, SocketAddr)>>,
    errors: Mutex<Vec<(String, std::io::Error)>>,
}

impl Endpoints for Opened {
    fn opened(&self, path: &str, local: SocketAddr) {
        self.endpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((path.to_owned(), local));
    }

    fn failed(&self, addr: String, error: std::io::Error) {
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((addr, error));
    }
}

impl Opened {
    /// The paths served, with their listeners' addresses.
    fn endpoints(&self) -> Vec<(String, SocketAddr)> {
        self.endpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The first address that could not be listened on, if any.
    fn take_error(&self) -> Option<(String, std::io::Error)> {
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        (!errors.is_empty()).then(|| errors.remove(0))
    }
}

/// The machine's interface addresses (empty if they cannot be listed).
fn interface_ips() -> Vec<IpAddr> {
    match if_addrs::get_if_addrs() {
        Ok(list) => list.iter().map(|i| i.ip()).collect(),
        Err(error) => {
            warn!(%error, "cannot list network interfaces");
            Vec::new()
        }
    }
}
