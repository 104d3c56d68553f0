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
pub(crate) mod reload;
#[cfg(test)]
pub(crate) mod test_support;
pub(crate) mod whoami;

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

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
    /// The query name exactly as received (letter case preserved, RFC 4343 / 0x20); borrowed
    /// from the request, never copied per query.
    pub name: &'a Name,
    /// The lower-cased name used for matching.
    pub lower: &'a LowerName,
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
    /// Where the size of the reply goes once the server has encoded and sent it.
    pub reply_size: &'a ReplySize,
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

/// The size of the reply to one request, reported after the chain has run: the server encodes
/// the answer once, sends it, and observes its byte count into the histogram a plugin left here
/// while serving (`prometheus`, per zone and transport). Nothing is observed when no plugin left
/// one, for internal queries (never sent) and for replies that could not be sent.
#[derive(Debug, Default)]
pub struct ReplySize(OnceLock<::prometheus::Histogram>);

impl ReplySize {
    /// A cell for queries whose reply is never sent (background refreshes, tests): whatever a
    /// plugin leaves here is never observed.
    pub fn unsent() -> &'static ReplySize {
        static UNSENT: ReplySize = ReplySize(OnceLock::new());
        &UNSENT
    }

    /// Asks for the reply's size in `histogram`; the first plugin to ask wins.
    pub fn observe_into(&self, histogram: &::prometheus::Histogram) {
        let _ = self.0.set(histogram.clone());
    }

    /// The server's report: the reply took `bytes` on the wire.
    pub(crate) fn report(&self, bytes: usize) {
        if let Some(histogram) = self.0.get() {
            // Replies are at most 64 KiB: exact in an f64.
            histogram.observe(bytes as f64);
        }
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

/// Work a directive does around the life of its server block rather than per query (CoreDNS's
/// `OnStartup`/`OnShutdown` and `ReadinessChecker`): start background work, open endpoints,
/// report readiness, hold start-up or shutdown back. A setup registers one with
/// [`BlockSetup::hooks`]; it is never a link of the query chain, so it costs nothing per query.
/// Chain plugins take part through their own [`Plugin`] methods of the same names.
#[async_trait]
pub trait Hook: Send + Sync + 'static {
    /// The directive name, as in the Corefile.
    fn name(&self) -> &'static str;

    /// Called once when the block starts serving, inside the tokio runtime; the returned tasks
    /// are aborted when the block's configuration is retired (shutdown, or a reload).
    fn start(&self, ctx: &StartContext) -> Vec<tokio::task::JoinHandle<()>> {
        let _ = ctx;
        Vec::new()
    }

    /// `Some(ready)` for hooks that report readiness to `ready`; `None` for the rest.
    fn ready(&self) -> Option<bool> {
        None
    }

    /// How long the process keeps answering after a shutdown signal (health's `lameduck`); the
    /// longest of all applies.
    fn shutdown_delay(&self) -> Option<std::time::Duration> {
        None
    }

    /// Awaited once after every hook has started, before the server counts as started; an
    /// error aborts the start.
    async fn wait_started(&self) -> Result<(), PluginError> {
        Ok(())
    }
}

impl fmt::Debug for dyn Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A chain plugin seen as a hook: its [`Plugin`] start, ready and shutdown methods.
struct ChainLink(Arc<dyn Plugin>);

#[async_trait]
impl Hook for ChainLink {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn start(&self, ctx: &StartContext) -> Vec<tokio::task::JoinHandle<()>> {
        self.0.start(ctx)
    }

    fn ready(&self) -> Option<bool> {
        self.0.ready()
    }

    fn shutdown_delay(&self) -> Option<std::time::Duration> {
        self.0.shutdown_delay()
    }

    async fn wait_started(&self) -> Result<(), PluginError> {
        self.0.wait_started().await
    }
}

/// Every hook of a block: its chain plugins (in chain order) followed by the hooks its setup
/// registered, each group in CoreDNS's order.
pub fn block_hooks(chain: &Chain, hooks: &[Arc<dyn Hook>]) -> Vec<Arc<dyn Hook>> {
    let mut registered = hooks.to_vec();
    registered.sort_by_key(|h| order_of(h.name()).unwrap_or(usize::MAX));
    chain
        .plugins()
        .iter()
        .map(|p| Arc::new(ChainLink(Arc::clone(p))) as Arc<dyn Hook>)
        .chain(registered)
        .collect()
}

/// Where hooks report the endpoints they open (HTTP `/health`, `/ready`, `/metrics`). The
/// process's start-up implements it: an endpoint that cannot be opened fails the start.
pub trait Endpoints: Send + Sync {
    /// `path` is served on `local`.
    fn opened(&self, path: &str, local: SocketAddr);
    /// The address `addr` (as configured) could not be listened on.
    fn failed(&self, addr: String, error: std::io::Error);
}

/// What a plugin or hook learns when its server block starts.
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
    /// Every hook of the block, chain plugins included ([`block_hooks`]): `ready` asks each
    /// for its readiness, `prometheus` lists their names.
    pub hooks: Vec<Arc<dyn Hook>>,
    /// Per key of the block: its zone and CoreDNS's `server` metric label (`dns://:53`,
    /// `dns://127.0.0.1:1053` with `bind`), with the bound port.
    pub servers: Vec<(Name, String)>,
    /// Where opened endpoints are reported; `None` where nobody listens (unit tests).
    pub endpoints: Option<Arc<dyn Endpoints>>,
}

impl StartContext {
    /// Reports that `path` is served on `local`.
    pub fn opened(&self, path: &str, local: SocketAddr) {
        if let Some(endpoints) = &self.endpoints {
            endpoints.opened(path, local);
        }
    }

    /// Reports that `addr` could not be listened on (the start fails with it).
    pub fn failed(&self, addr: String, error: std::io::Error) {
        if let Some(endpoints) = &self.endpoints {
            endpoints.failed(addr, error);
        }
    }
}

impl fmt::Debug for StartContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartContext")
            .field("listen_ips", &self.listen_ips)
            .field("self_addrs", &self.self_addrs)
            .field(
                "hooks",
                &self.hooks.iter().map(|h| h.name()).collect::<Vec<_>>(),
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

/// The plugins of one server block, already sorted by [`order_of`].
#[derive(Clone, Default)]
pub struct Chain {
    plugins: Vec<Arc<dyn Plugin>>,
}

impl fmt::Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.plugins.iter().map(|p| p.name()))
            .finish()
    }
}

impl Chain {
    /// Build a chain from plugins in any order; they are sorted by their place in [`registry`].
    pub fn new(mut plugins: Vec<Arc<dyn Plugin>>) -> Self {
        plugins.sort_by_key(|p| order_of(p.name()).unwrap_or(usize::MAX));
        Chain { plugins }
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

/// Position of a plugin in CoreDNS's order: its index in [`registry`].
pub fn order_of(name: &str) -> Option<usize> {
    REGISTRY.iter().position(|r| r.name == name)
}

/// A setup parser's error (built by the [`Dispenser`]): plugin, location, message.
pub use crate::corefile::SetupError;

/// Settings that act on the whole process rather than on one block (`reload`'s schedule), by
/// type: the plugin that parses a directive defines the type and inserts a value; the process
/// reads it back by the same type. The plugin contract names no such setting itself.
#[derive(Clone, Default)]
pub struct ProcessSettings(HashMap<TypeId, Arc<dyn Any + Send + Sync>>);

impl ProcessSettings {
    /// Sets the value of type `T`, replacing an earlier one.
    pub fn insert<T: Any + Send + Sync>(&mut self, value: T) {
        self.0.insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// The value of type `T`, if a directive set one.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.0.get(&TypeId::of::<T>())?.downcast_ref()
    }
}

impl fmt::Debug for ProcessSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProcessSettings({} set)", self.0.len())
    }
}

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
    /// Start, ready and shutdown work that answers no query (`health`, `ready`): never in the
    /// chain.
    pub hooks: Vec<Arc<dyn Hook>>,
    /// Process-wide settings (`reload`).
    pub process: ProcessSettings,
    /// Directives that parsed and validated but whose behaviour this build does not have yet,
    /// with what they would do; `run` logs each one at start-up.
    pub inactive: Vec<(Location, &'static str, String)>,
}

/// A plugin's setup parser: reads its directive and adds to the block.
pub type SetupFn = fn(&mut Dispenser<'_>, &mut BlockSetup) -> Result<(), SetupError>;

/// One directive this build understands.
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

/// Every directive this build understands, in CoreDNS's order (its `plugin.cfg`, first runs
/// first): an entry's index is its plugin's place in every chain, whatever the Corefile order.
pub fn registry() -> &'static [Registration] {
    REGISTRY
}

/// The one table of directives. Its order is CoreDNS 1.14.7's `plugin.cfg` order, restricted to
/// the plugins this build has; `tests::registry_follows_plugin_cfg` checks it.
static REGISTRY: &[Registration] = &[
    Registration {
        name: "reload",
        setup: reload::setup,
        repeatable: false,
        status: Status::Active,
    },
    Registration {
        name: bind::NAME,
        setup: bind::setup,
        repeatable: true,
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
        name: "kubernetes",
        setup: kubernetes::setup::setup,
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
        name: whoami::NAME,
        setup: whoami::setup,
        repeatable: false,
        status: Status::Active,
    },
];

/// Look up a directive's registration.
pub fn lookup_registration(name: &str) -> Option<&'static Registration> {
    REGISTRY.iter().find(|r| r.name == name)
}

#[cfg(test)]
mod registry_tests {
    use super::*;

    /// CoreDNS 1.14.7's `plugin.cfg`, in order.
    const PLUGIN_CFG: &[&str] = &[
        "metadata",
        "geoip",
        "cancel",
        "tls",
        "timeouts",
        "multisocket",
        "reload",
        "nsid",
        "bufsize",
        "bind",
        "debug",
        "trace",
        "ready",
        "health",
        "pprof",
        "prometheus",
        "errors",
        "log",
        "dnstap",
        "local",
        "dns64",
        "acl",
        "any",
        "chaos",
        "loadbalance",
        "tsig",
        "cache",
        "rewrite",
        "header",
        "dnssec",
        "autopath",
        "minimal",
        "template",
        "transfer",
        "hosts",
        "route53",
        "azure",
        "clouddns",
        "k8s_external",
        "kubernetes",
        "file",
        "auto",
        "secondary",
        "etcd",
        "loop",
        "forward",
        "grpc",
        "erratic",
        "whoami",
        "on",
        "sign",
        "view",
    ];

    #[test]
    fn registry_follows_plugin_cfg() {
        let mut last = None;
        for (index, registration) in registry().iter().enumerate() {
            let Some(cfg) = PLUGIN_CFG.iter().position(|n| *n == registration.name) else {
                panic!("'{}' has no position in plugin.cfg", registration.name);
            };
            assert!(
                last.is_none_or(|l| l < cfg),
                "'{}' is out of plugin.cfg order",
                registration.name
            );
            last = Some(cfg);
            assert_eq!(order_of(registration.name), Some(index));
            assert!(
                std::ptr::eq(
                    lookup_registration(registration.name).unwrap(),
                    registration
                ),
                "'{}' is registered twice",
                registration.name
            );
        }
        assert_eq!(order_of("nosuch"), None);
    }

    #[test]
    fn process_settings_by_type() {
        #[derive(Debug, PartialEq)]
        struct Every(u32);
        let mut settings = ProcessSettings::default();
        assert_eq!(settings.get::<Every>(), None);
        settings.insert(Every(1));
        settings.insert(Every(2));
        settings.insert(7u8);
        assert_eq!(settings.get::<Every>(), Some(&Every(2)));
        assert_eq!(settings.get::<u8>(), Some(&7));
        assert_eq!(settings.get::<u16>(), None);
    }
}
