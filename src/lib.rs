//! clusterdns: a cluster DNS server for Kubernetes, a drop-in replacement for CoreDNS.
//!
//! ```text
//! UDP/TCP socket -> server::handler -> server::router -> plugin chain -> server::reply -> socket
//! ```
//! `run` is the only composition root: Corefile -> config -> servers; `lifecycle` starts, reloads
//! and stops them.

pub mod config;
pub mod corefile;
pub mod dns;
pub mod doctor;
pub mod http;
pub mod lifecycle;
pub mod logging;
pub mod metrics;
pub mod plugin;
mod server;

pub use lifecycle::{Running, start};
/// Forward's reply rules for `fuzz/fuzz_targets/forward_reply.rs` (not a stable API).
#[doc(hidden)]
pub use plugin::forward::upstream::fuzz as forward_reply_fuzz;
/// Index figures for `benches/index_update.rs` (feature `bench-internals`; not a stable API).
#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub use plugin::kubernetes::source::api::bench as kubernetes_index_bench;
/// The manifests loader for the `manifests` fuzz target (not a stable API).
#[doc(hidden)]
pub use plugin::kubernetes::source::manifests::fuzz as kubernetes_manifests_fuzz;
pub use server::Harness;

use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError};
use crate::corefile::{CorefileError, Location};

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

/// Loads the Corefile and serves it until SIGTERM or SIGINT, then shuts down gracefully (after
/// health's lame-duck delay). Reloads the Corefile when `reload` sees it change, and on SIGUSR1.
pub async fn run(opts: RunOptions) -> Result<(), Error> {
    let signals = lifecycle::shutdown::Signals::install()?;
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
    lifecycle::shutdown::serve(running, reloader, signals).await
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
