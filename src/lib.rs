//! clusterdns: a cluster DNS server for Kubernetes, a drop-in replacement for CoreDNS.
//!
//! ```text
//! UDP/TCP socket -> server::handler -> server::router -> plugin chain -> server::reply -> socket
//! ```
//! `run` is the only composition root: Corefile -> config -> servers.

pub mod config;
pub mod corefile;
pub mod dns;
pub mod metrics;
pub mod plugin;
mod server;

/// Index figures for `benches/index_update.rs` (not a stable API).
#[doc(hidden)]
pub use plugin::kubernetes::source::api::bench as kubernetes_index_bench;
pub use server::Harness;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
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
            Error::Listen { .. } | Error::Signal(_) | Error::PluginStart(_) => None,
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

/// A started server: its listeners and the plugins' background tasks.
pub struct Running {
    servers: server::Servers,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    config: Config,
}

impl Running {
    /// The bound addresses, one per listen address; UDP and TCP share each.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.servers.addrs().collect()
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

    /// Stops accepting queries, lets those in flight finish, stops plugins' tasks.
    pub async fn shutdown(self) {
        self.servers.shutdown(SHUTDOWN_GRACE).await;
        for task in self.tasks {
            task.abort();
        }
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
    let mut interfaces: Option<Vec<IpAddr>> = None;
    let mut tasks = Vec::new();
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
        let ctx = StartContext {
            listen_ips,
            self_addrs,
        };
        for plugin in server.chain.plugins() {
            tasks.extend(plugin.start(&ctx));
        }
    }
    let waits = config
        .servers
        .iter()
        .flat_map(|server| server.chain.plugins())
        .map(|plugin| plugin.wait_started());
    if let Some(error) = futures_util::future::join_all(waits)
        .await
        .into_iter()
        .find_map(Result::err)
    {
        for task in &tasks {
            task.abort();
        }
        servers.shutdown(SHUTDOWN_GRACE).await;
        return Err(Error::PluginStart(error));
    }
    Ok(Running {
        servers,
        tasks,
        config,
    })
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

/// Loads the Corefile, serves until SIGTERM or SIGINT, then shuts down gracefully.
pub async fn run(opts: RunOptions) -> Result<(), Error> {
    let config = load_config(&opts.conf, opts.dns_port)?;
    let running = start(config).await?;
    if !opts.quiet {
        // CoreDNS prints these on stdout, undecorated; scripts and humans look for them.
        for line in running.server_lines() {
            println!("{line}");
        }
        println!("{}", version_line());
        println!("{}", platform_line());
    }
    wait_for_signal().await?;
    info!("shutting down");
    running.shutdown().await;
    Ok(())
}

/// Resolves on the first SIGTERM or SIGINT.
async fn wait_for_signal() -> Result<(), Error> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(Error::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(Error::Signal)?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
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
