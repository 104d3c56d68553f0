//! clusterdns: a cluster DNS server for Kubernetes, a drop-in replacement for CoreDNS.
//!
//! ```text
//! UDP/TCP socket -> server::handler -> server::router -> plugin chain -> server::reply -> socket
//! ```
//! `run` is the only composition root: Corefile -> config -> servers.

pub mod config;
pub mod corefile;
pub mod dns;
pub mod http;
pub mod lifecycle;
pub mod metrics;
pub mod plugin;
mod server;

/// Index figures for `benches/index_update.rs` (feature `bench-internals`; not a stable API).
#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub use plugin::kubernetes::source::api::bench as kubernetes_index_bench;
pub use server::Harness;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use crate::config::{Config, ConfigError};
use crate::corefile::{CorefileError, Location};
use crate::plugin::StartContext;

/// How long shutdown waits for queries in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The version banner's first line, `clusterdns-VERSION` (CoreDNS: `CoreDNS-1.14.7`).
pub fn version_line() -> String {
    format!("clusterdns-{}", env!("CARGO_PKG_VERSION"))
}

/// The version banner's second line, `linux/amd64, rustc 1.95.0` (CoreDNS: OS/arch, Go version).
pub fn platform_line() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    format!(
        "{}/{arch}, rustc {}",
        std::env::consts::OS,
        env!("CLUSTERDNS_RUSTC_VERSION")
    )
}

/// What `run` needs from the command line.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The Corefile (`-conf`, default `Corefile` in the working directory). A missing file is an
    /// error: unlike CoreDNS we never fall back to a built-in `whoami` server, because a DNS
    /// server that silently starts with another configuration than the operator's hides mistakes.
    pub conf: PathBuf,
    /// Port for server keys without one (`-dns.port`, default 53).
    pub dns_port: u16,
    /// No start-up banner (`-quiet`).
    pub quiet: bool,
}

/// Why clusterdns could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Corefile(#[from] CorefileError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot wait for signals: {0}")]
    Signal(#[source] std::io::Error),
    /// A plugin found a condition the server must not run on (a forwarding loop).
    #[error("{0}")]
    Fatal(String),
    /// A plugin could not start (for example the Kubernetes API client).
    #[error(transparent)]
    PluginStart(plugin::PluginError),
}

impl Error {
    /// The Corefile location of the error, if it has one.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Error::Corefile(e) => e.location(),
            Error::Config(e) => Some(e.location()),
            Error::Listen { .. } | Error::Signal(_) | Error::Fatal(_) | Error::PluginStart(_) => {
                None
            }
        }
    }
}

/// Reads, parses and builds the configuration at `path` (pure: no sockets).
pub fn load_config(path: &Path, dns_port: u16) -> Result<Config, Error> {
    let corefile = corefile::parse_file(path)?;
    let base_dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok(Config::build(
        &corefile,
        &path.display().to_string(),
        &base_dir,
        dns_port,
    )?)
}

/// Parses and builds a configuration from Corefile text named `file` (pure: no sockets).
pub fn config_from_str(
    text: &str,
    file: &str,
    base_dir: &Path,
    dns_port: u16,
) -> Result<Config, Error> {
    let corefile = corefile::parse_str(text, file, base_dir)?;
    Ok(Config::build(&corefile, file, base_dir, dns_port)?)
}

/// A started server: its listeners, the configuration they serve and the plugins' background
/// tasks.
pub struct Running {
    servers: server::Servers,
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

    /// The `reload` setting of the configuration serving now.
    pub fn reload_config(&self) -> Option<plugin::reload::ReloadConfig> {
        self.config.reload()
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
        let (tasks, http) = start_plugins(&config, &self.servers, &self.fatal_tx);
        if let Some(error) = http.take_error() {
            // DNS already serves the new configuration; an HTTP endpoint (health, ready,
            // metrics) on a new address could not be bound. Say so once, loudly.
            tracing::error!(addr = %error.addr, error = %error.source, "reload: cannot listen on {}: {}", error.addr, error.source);
        }
        self.http = http.endpoints();
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
async fn retire(config: Config, tasks: Vec<tokio::task::JoinHandle<()>>, retired: server::Retired) {
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
    let servers = server::Servers::start(&config)
        .await
        .map_err(|e| Error::Listen {
            addr: e.addr,
            source: e.source,
        })?;
    let (fatal_tx, fatal) = tokio::sync::mpsc::unbounded_channel();
    let (tasks, http) = start_plugins(&config, &servers, &fatal_tx);
    if let Some(error) = http.take_error() {
        for task in tasks {
            task.abort();
        }
        servers.shutdown(Duration::ZERO).await;
        return Err(Error::Listen {
            addr: error.addr,
            source: error.source,
        });
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
        http: http.endpoints(),
        config,
        fatal,
        fatal_tx,
    })
}

/// Awaits every plugin's `wait_started` (kubernetes: its first sync or `startup_timeout`),
/// concurrently; the first error.
async fn wait_started(config: &Config) -> Result<(), plugin::PluginError> {
    let waits = config
        .servers
        .iter()
        .flat_map(|server| server.chain.plugins())
        .map(|plugin| plugin.wait_started());
    match futures_util::future::join_all(waits)
        .await
        .into_iter()
        .find_map(Result::err)
    {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// Starts every plugin of `config` (logging what is configured but not active); returns their
/// background tasks and what their HTTP endpoints bound (or failed to bind).
fn start_plugins(
    config: &Config,
    servers: &server::Servers,
    fatal_tx: &tokio::sync::mpsc::UnboundedSender<String>,
) -> (Vec<tokio::task::JoinHandle<()>>, Arc<http::Started>) {
    let mut interfaces: Option<Vec<IpAddr>> = None;
    let mut tasks = Vec::new();
    let http = Arc::new(http::Started::default());
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
            plugins: server.chain.plugins().to_vec(),
            servers: labels,
            http: Arc::clone(&http),
            fatal: Some(fatal_tx.clone()),
        };
        for plugin in server.chain.plugins() {
            tasks.extend(plugin.start(&ctx));
        }
    }
    (tasks, http)
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

/// Loads the Corefile and serves it until SIGTERM or SIGINT, then shuts down gracefully (after
/// health's lame-duck delay). Reloads the Corefile when `reload` sees it change, and on SIGUSR1.
pub async fn run(opts: RunOptions) -> Result<(), Error> {
    let signals = lifecycle::Signals::install()?;
    let mut reloader = lifecycle::Reloader::new(&opts.conf, opts.dns_port);
    let config = reloader.load()?;
    let running = start(config).await?;
    if !opts.quiet {
        // CoreDNS prints these on stdout, undecorated; scripts and humans look for them.
        for line in running.server_lines() {
            println!("{line}");
        }
        println!("{}", version_line());
        println!("{}", platform_line());
    }
    lifecycle::serve(running, reloader, signals).await
}

/// One plugin this build knows, for `-plugins`.
/// Every directive of the registry, alphabetically, with what this build does with it.
pub fn plugins() -> Vec<(&'static str, plugin::Status)> {
    let mut list: Vec<_> = plugin::registry()
        .iter()
        .map(|r| (r.name, r.status))
        .collect();
    list.sort_by_key(|(name, _)| *name);
    list
}
