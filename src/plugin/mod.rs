//! The plugin contract: the `Query` a plugin sees, the `Answer` it returns, the `Chain` that runs
//! plugins in CoreDNS's fixed order, and the registry that maps a Corefile directive to its setup.
//!
//! Plugins never see sockets or wire formats (that is `server`), and never import each other: they
//! meet only through the chain.

pub(crate) mod bind;
pub(crate) mod cache;
pub(crate) mod errors;
pub(crate) mod forward;
pub(crate) mod health;
pub(crate) mod kubernetes;
pub(crate) mod loadbalance;
pub(crate) mod log;
/// The `loop` directive (`loop` is a Rust keyword, hence the raw identifier).
pub(crate) mod r#loop;
pub(crate) mod prometheus;
pub(crate) mod ready;
pub mod reload;
#[cfg(test)]
pub(crate) mod test_support;
pub(crate) mod whoami;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, LowerName, Name, Record, RecordType};

use crate::corefile::{Dispenser, Location};

/// The transport a query arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    /// Lower-case name as CoreDNS prints it in logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// EDNS(0) facts of the request (RFC 6891), if it carried an OPT record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EdnsInfo {
    /// Advertised UDP payload size (never below 512).
    pub udp_size: u16,
    /// The DO bit (RFC 3225).
    pub dnssec_ok: bool,
}

/// One question as plugins see it, built once per request by `server`.
#[derive(Clone)]
pub struct Query<'a> {
    /// The query name exactly as received (letter case preserved, RFC 4343 / 0x20).
    pub name: Name,
    /// The lower-cased name used for matching.
    pub lower: LowerName,
    pub qtype: RecordType,
    pub qclass: DNSClass,
    pub id: u16,
    pub recursion_desired: bool,
    pub checking_disabled: bool,
    pub edns: Option<EdnsInfo>,
    /// Client address (or the server's own address for internal queries).
    pub src: SocketAddr,
    pub transport: Transport,
    /// Size of the request on the wire, in bytes (0 for internal queries).
    pub request_size: usize,
    /// Re-enters the server for a new question (ExternalName targets, loop probes).
    pub resolver: &'a dyn Resolve,
}

impl fmt::Debug for Query<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Query")
            .field("name", &self.name)
            .field("qtype", &self.qtype)
            .field("qclass", &self.qclass)
            .field("id", &self.id)
            .field("src", &self.src)
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

/// What a plugin answers: a value, not a write. `server::reply` alone turns it into wire bytes
/// (EDNS OPT, truncation, compression, id and question echo).
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub rcode: ResponseCode,
    pub authoritative: bool,
    pub recursion_available: bool,
    pub authentic_data: bool,
    /// Set when the answer is already known to be truncated (an upstream's TC bit).
    pub truncated: bool,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
}

impl Answer {
    /// An empty answer with the given rcode and no flags.
    pub fn new(rcode: ResponseCode) -> Self {
        Answer {
            rcode,
            authoritative: false,
            recursion_available: false,
            authentic_data: false,
            truncated: false,
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
        }
    }

    /// An authoritative answer (AA=1), as every answer the kubernetes plugin writes.
    pub fn authoritative(rcode: ResponseCode) -> Self {
        Answer {
            authoritative: true,
            ..Answer::new(rcode)
        }
    }
}

/// Where a query-time error came from; decides the rcode and, later, the metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Client,
    Upstream,
    ClusterApi,
    Internal,
}

/// An error returned through the chain. `server::reply` maps it to its rcode.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The chain ran out of plugins without an answer (CoreDNS: "no next plugin found").
    #[error("no next plugin found")]
    NoNextPlugin,
    /// A plugin failed; `origin` says whose fault it was.
    #[error("plugin/{plugin}: {message}")]
    Failed {
        plugin: &'static str,
        origin: Origin,
        rcode: ResponseCode,
        message: String,
    },
}

impl PluginError {
    /// The rcode the client receives for this error.
    pub fn rcode(&self) -> ResponseCode {
        match self {
            PluginError::NoNextPlugin => ResponseCode::ServFail,
            PluginError::Failed { rcode, .. } => *rcode,
        }
    }

    pub fn origin(&self) -> Origin {
        match self {
            PluginError::NoNextPlugin => Origin::Internal,
            PluginError::Failed { origin, .. } => *origin,
        }
    }
}

/// Re-entry into the server: resolve a question as if a client had asked it.
#[async_trait]
pub trait Resolve: Send + Sync {
    async fn resolve(&self, name: Name, qtype: RecordType) -> Result<Answer, PluginError>;
}

/// One link of the chain.
#[async_trait]
pub trait Plugin: Send + Sync + 'static {
    /// The directive name, as in the Corefile.
    fn name(&self) -> &'static str;

    /// Answer the query, or call `next.run(query)` to pass it on (possibly wrapping the result).
    async fn serve(&self, query: &Query<'_>, next: Next<'_>) -> Result<Answer, PluginError>;

    /// Whether the server should report each reply's wire size to [`Plugin::reply_size`]
    /// (`prometheus`); asked once when the chain is built.
    fn wants_reply_size(&self) -> bool {
        false
    }

    /// The size in bytes of the reply the server sent for `query` (only for plugins whose
    /// [`Plugin::wants_reply_size`] is true; the first such plugin of a chain).
    fn reply_size(&self, query: &Query<'_>, size: usize) {
        let _ = (query, size);
    }

    /// `Some(ready)` for plugins that report readiness to the `ready` plugin
    /// (kubernetes: its sources have synced); `None` for the rest.
    fn ready(&self) -> Option<bool> {
        None
    }

    /// Called once when a server starts serving with this chain, inside the tokio runtime:
    /// start background work (watches, pollers) and learn the server's own addresses. The
    /// returned tasks are aborted when the chain is retired (shutdown, or a reload replaced it).
    fn start(&self, ctx: &StartContext) -> Vec<tokio::task::JoinHandle<()>> {
        let _ = ctx;
        Vec::new()
    }

    /// How long the process keeps answering after a shutdown signal before it stops accepting
    /// queries (health's `lameduck`); the longest of all plugins applies.
    fn shutdown_delay(&self) -> Option<std::time::Duration> {
        None
    }

    /// Awaited once after every plugin has started, before the server counts as started: a
    /// plugin that holds start-up back (kubernetes, until its first sync or `startup_timeout`)
    /// waits here. An error aborts the start.
    async fn wait_started(&self) -> Result<(), PluginError> {
        Ok(())
    }
}

/// What a plugin learns when its server starts.
#[derive(Clone, Default)]
pub struct StartContext {
    /// The addresses this server block listens on: its `bind` addresses or, when bound to the
    /// wildcard address, the machine's interface addresses (loopback included; plugins filter).
    pub listen_ips: Vec<IpAddr>,
    /// Where a query sent by the server to itself reaches this block: one address per key, with
    /// the bound port (the loopback address when the block listens on every address).
    pub self_addrs: Vec<SocketAddr>,
    /// Reports an error the process cannot continue after (a forwarding loop): `run` returns it
    /// and the binary exits non-zero. `None` where nobody listens (unit tests).
    pub fatal: Option<tokio::sync::mpsc::UnboundedSender<String>>,
    /// The plugins of the block's chain (`ready` asks each for its readiness).
    pub plugins: Vec<Arc<dyn Plugin>>,
    /// Per key of the block: its zone and CoreDNS's `server` metric label (`dns://:53`,
    /// `dns://127.0.0.1:1053` with `bind`), with the bound port.
    pub servers: Vec<(Name, String)>,
    /// HTTP endpoints opened by the plugins (shared by every block of one start-up).
    pub http: Arc<crate::http::Started>,
}

impl fmt::Debug for StartContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartContext")
            .field("listen_ips", &self.listen_ips)
            .field("self_addrs", &self.self_addrs)
            .field(
                "plugins",
                &self.plugins.iter().map(|p| p.name()).collect::<Vec<_>>(),
            )
            .field("servers", &self.servers)
            .finish_non_exhaustive()
    }
}

/// Which plugin of the chain produced an answer: the innermost one that returned `Ok` (for the
/// `plugin` label of `coredns_dns_responses_total`).
#[derive(Debug, Default)]
pub struct Writer(std::sync::OnceLock<&'static str>);

impl Writer {
    /// The plugin's name, or `None` when no plugin answered (an error).
    pub fn get(&self) -> Option<&'static str> {
        self.0.get().copied()
    }
}

/// The rest of the chain after the current plugin.
#[derive(Clone, Copy)]
pub struct Next<'a> {
    rest: &'a [Arc<dyn Plugin>],
    writer: Option<&'a Writer>,
}

impl<'a> Next<'a> {
    /// Run the remaining plugins; with none left, fail as CoreDNS does (SERVFAIL).
    pub async fn run(self, query: &Query<'_>) -> Result<Answer, PluginError> {
        match self.rest.split_first() {
            Some((first, rest)) => {
                let next = Next {
                    rest,
                    writer: self.writer,
                };
                let result = first.serve(query, next).await;
                if let (Some(writer), Ok(_)) = (self.writer, &result) {
                    // Inner plugins finish first, so the first name set is the innermost.
                    let _ = writer.0.set(first.name());
                }
                result
            }
            None => Err(PluginError::NoNextPlugin),
        }
    }

    /// Like [`Next::run`], recording in `writer` which plugin produced the answer.
    pub async fn run_tracked(
        self,
        query: &Query<'_>,
        writer: &Writer,
    ) -> Result<Answer, PluginError> {
        Next {
            rest: self.rest,
            writer: Some(writer),
        }
        .run(query)
        .await
    }

    /// The name of the plugin that would run next, if any.
    pub fn peek(&self) -> Option<&'static str> {
        self.rest.first().map(|p| p.name())
    }
}

/// The plugins of one server block, already sorted by [`ORDER`].
#[derive(Clone, Default)]
pub struct Chain {
    plugins: Vec<Arc<dyn Plugin>>,
    /// The first plugin that wants each reply's size (`prometheus`), if any.
    size_observer: Option<Arc<dyn Plugin>>,
}

impl fmt::Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.plugins.iter().map(|p| p.name()))
            .finish()
    }
}

impl Chain {
    /// Build a chain from plugins in any order; they are sorted by their place in [`ORDER`].
    pub fn new(mut plugins: Vec<Arc<dyn Plugin>>) -> Self {
        plugins.sort_by_key(|p| order_of(p.name()).unwrap_or(usize::MAX));
        let size_observer = plugins.iter().find(|p| p.wants_reply_size()).cloned();
        Chain {
            plugins,
            size_observer,
        }
    }

    /// The plugin the server reports reply sizes to, if any.
    pub fn size_observer(&self) -> Option<&dyn Plugin> {
        self.size_observer.as_deref()
    }

    pub async fn run(&self, query: &Query<'_>) -> Result<Answer, PluginError> {
        Next {
            rest: &self.plugins,
            writer: None,
        }
        .run(query)
        .await
    }

    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.plugins.iter().map(|p| p.name())
    }

    pub fn plugins(&self) -> &[Arc<dyn Plugin>] {
        &self.plugins
    }
}

/// CoreDNS's plugin.cfg order (first runs first), restricted to the plugins this build knows.
/// Corefile order does not matter.
pub const ORDER: &[&str] = &[
    "reload",
    "bind",
    "ready",
    "health",
    "prometheus",
    "errors",
    "log",
    "loadbalance",
    "cache",
    "kubernetes",
    "loop",
    "forward",
    "whoami",
];

/// Position of a plugin in [`ORDER`].
pub fn order_of(name: &str) -> Option<usize> {
    ORDER.iter().position(|n| *n == name)
}

/// A setup parser's error (built by the [`Dispenser`]): plugin, location, message.
pub use crate::corefile::SetupError;

/// What one server block's setup collects from its directives.
#[derive(Default)]
pub struct BlockSetup {
    /// Zones of the block's keys, lower-case FQDNs (CIDR keys already expanded).
    pub zones: Vec<Name>,
    /// Directory of the Corefile, for relative paths (manifests, import).
    pub base_dir: PathBuf,
    /// Addresses from `bind`; empty means all addresses.
    pub bind: Vec<IpAddr>,
    /// Plugins for the chain, in any order.
    pub plugins: Vec<Arc<dyn Plugin>>,
    /// `reload`: how often the process re-reads its Corefile (acts process-wide).
    pub reload: Option<reload::ReloadConfig>,
    /// Directives that parsed and validated but whose behaviour this build does not have yet,
    /// with what they would do; `run` logs each one at start-up.
    pub inactive: Vec<(Location, &'static str, String)>,
}

/// A plugin's setup parser: reads its directive and adds to the block.
pub type SetupFn = fn(&mut Dispenser<'_>, &mut BlockSetup) -> Result<(), SetupError>;

/// One entry of the registry.
pub struct Registration {
    pub name: &'static str,
    pub setup: SetupFn,
    /// Whether the directive may appear more than once per server block.
    pub repeatable: bool,
    /// What this build does with the directive (shown by `-plugins`).
    pub status: Status,
}

/// How much of a plugin this build has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Fully working.
    Active,
    /// Working, with the named part not in this build yet.
    Partial(&'static str),
    /// Its Corefile syntax is parsed and validated, but it does nothing yet.
    ParseOnly,
}

/// Every directive this build understands, in [`ORDER`].
pub fn registry() -> &'static [Registration] {
    REGISTRY
}

static REGISTRY: &[Registration] = &[
    // One entry per directive; each plugin's module adds its own.
    Registration {
        name: "reload",
        setup: reload::setup,
        repeatable: false,
        status: Status::Active,
    },
    Registration {
        name: "ready",
        setup: ready::setup,
        repeatable: false,
        status: Status::Active,
    },
    Registration {
        name: "health",
        setup: health::setup,
        repeatable: false,
        status: Status::Active,
    },
    Registration {
        name: "prometheus",
        setup: prometheus::setup,
        repeatable: false,
        status: Status::Partial("`view` label is always empty; DoH/DoQ families"),
    },
    Registration {
        name: "loadbalance",
        setup: loadbalance::setup,
        repeatable: false,
        status: Status::Partial("the `weighted` policy and `prefer`"),
    },
    Registration {
        name: "cache",
        setup: cache::setup,
        repeatable: false,
        status: Status::Active,
    },
    Registration {
        name: "loop",
        setup: r#loop::setup,
        repeatable: false,
        status: Status::Active,
    },
    Registration {
        name: "forward",
        setup: forward::setup,
        repeatable: true,
        status: Status::Partial("DNS over TLS and HTTPS upstreams"),
    },
    Registration {
        name: bind::NAME,
        setup: bind::setup,
        repeatable: true,
        status: Status::Active,
    },
    Registration {
        name: errors::NAME,
        setup: errors::setup,
        repeatable: false,
        status: Status::Partial("`stacktrace` (no panics to trace)"),
    },
    Registration {
        name: log::NAME,
        setup: log::setup,
        repeatable: true,
        status: Status::Active,
    },
    Registration {
        name: whoami::NAME,
        setup: whoami::setup,
        repeatable: false,
        status: Status::Active,
    },
    Registration {
        name: "kubernetes",
        setup: kubernetes::setup::setup,
        repeatable: false,
        status: Status::Active,
    },
];

/// Look up a directive's registration.
pub fn lookup_registration(name: &str) -> Option<&'static Registration> {
    REGISTRY.iter().find(|r| r.name == name)
}
