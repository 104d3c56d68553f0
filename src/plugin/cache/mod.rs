#![doc = include_str!("README.md")]
//! The `cache` plugin: keeps answers for their TTL, within bounds, in front of the rest of the
//! chain, with one upstream query per key however many clients miss at once.

mod key;
mod policy;
pub(crate) mod setup;
mod store;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};

use async_trait::async_trait;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, LowerName, Name, RecordType};
use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec};

use self::key::{Key, KeyRef};
use self::policy::{Kind, decide};
use self::setup::{CacheConfig, parse};
use self::store::{Clock, Entry, OnRemove, Store, SystemClock};
use crate::corefile::Dispenser;
use crate::metrics;
use crate::plugin::{
    Answer, BlockSetup, EdnsInfo, Next, Origin, Plugin, PluginError, Query, ReplySize, Resolve,
    SetupError, StartContext, Transport,
};

const NAME: &str = "cache";

/// Parses a `cache` directive and adds the cache to the block's chain.
pub(crate) fn setup(d: &mut Dispenser<'_>, block: &mut BlockSetup) -> Result<(), SetupError> {
    let config = parse(d, &block.zones)?;
    block.plugins.push(Arc::new(CachePlugin::new(
        config,
        Arc::new(SystemClock::new()),
    )));
    Ok(())
}

static ENTRIES: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    metrics::gauge_vec(
        "cache",
        "entries",
        "The number of elements in the cache.",
        &["server", "type", "zones", "view"],
    )
});
static HITS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "cache",
        "hits_total",
        "The count of cache hits.",
        &["server", "type", "zones", "view"],
    )
});
static MISSES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "cache",
        "misses_total",
        "The count of cache misses. Deprecated, derive misses from cache hits/requests counters.",
        &["server", "zones", "view"],
    )
});
static REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "cache",
        "requests_total",
        "The count of cache requests.",
        &["server", "zones", "view"],
    )
});
static PREFETCH: LazyLock<IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "cache",
        "prefetch_total",
        "The number of times the cache has prefetched a cached item.",
        &["server", "zones", "view"],
    )
});
static DROPS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "cache",
        "drops_total",
        "The number responses that are not cached, because the reply is malformed.",
        &["server", "zones", "view"],
    )
});
static SERVED_STALE: LazyLock<IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "cache",
        "served_stale_total",
        "The number of requests served from stale cache entries.",
        &["server", "zones", "view"],
    )
});
static EVICTIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "cache",
        "evictions_total",
        "The count of cache evictions.",
        &["server", "type", "zones", "view"],
    )
});

/// The metric series of one cache, resolved once (when its server starts).
struct Handles {
    requests: IntCounter,
    misses: IntCounter,
    prefetch: IntCounter,
    served_stale: IntCounter,
    /// Indexed by [`slot`]: success, denial.
    hits: [IntCounter; 2],
    entries: [IntGauge; 2],
    evictions: [IntCounter; 2],
}

fn slot(kind: Kind) -> usize {
    match kind {
        Kind::Success => 0,
        Kind::Denial => 1,
    }
}

impl Handles {
    fn new(server: &str, zones: &str) -> Self {
        let by_kind = |vec: &IntCounterVec| {
            [Kind::Success, Kind::Denial]
                .map(|k| vec.with_label_values(&[server, k.label(), zones, ""]))
        };
        let plain = |vec: &IntCounterVec| vec.with_label_values(&[server, zones, ""]);
        // Registered (with a zero) so the family is visible before the first drop.
        let _ = plain(&DROPS);
        Handles {
            requests: plain(&REQUESTS),
            misses: plain(&MISSES),
            prefetch: plain(&PREFETCH),
            served_stale: plain(&SERVED_STALE),
            hits: by_kind(&HITS),
            entries: [Kind::Success, Kind::Denial]
                .map(|k| ENTRIES.with_label_values(&[server, k.label(), zones, ""])),
            evictions: by_kind(&EVICTIONS),
        }
    }
}

/// Metric handles, set when the server starts (its address is the `server` label); a cache used
/// before that (the in-process harness) reports as `dns://:53`.
struct Metrics {
    handles: OnceLock<Handles>,
    zones: String,
    /// This cache's share of the entries gauges (a reload may run two caches with one label set).
    held: [AtomicI64; 2],
    /// Set when the cache is dropped: its entries have left the gauges.
    retired: AtomicBool,
}

impl Metrics {
    fn new(zones: String) -> Self {
        Metrics {
            handles: OnceLock::new(),
            zones,
            held: [AtomicI64::new(0), AtomicI64::new(0)],
            retired: AtomicBool::new(false),
        }
    }

    fn get(&self) -> &Handles {
        self.handles
            .get_or_init(|| Handles::new("dns://:53", &self.zones))
    }

    fn added(&self, kind: Kind) {
        self.held[slot(kind)].fetch_add(1, Ordering::Relaxed);
        self.get().entries[slot(kind)].inc();
    }

    fn removed(&self, kind: Kind, evicted: bool) {
        if self.retired.load(Ordering::Acquire) {
            return;
        }
        self.held[slot(kind)].fetch_sub(1, Ordering::Relaxed);
        let h = self.get();
        h.entries[slot(kind)].dec();
        if evicted {
            h.evictions[slot(kind)].inc();
        }
    }

    /// Takes this cache's entries out of the gauges.
    fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        for kind in [Kind::Success, Kind::Denial] {
            let held = self.held[slot(kind)].swap(0, Ordering::Relaxed);
            self.get().entries[slot(kind)].sub(held);
        }
    }
}

/// The `cache` plugin of one server block.
pub(crate) struct CachePlugin {
    inner: Arc<Inner>,
}

struct Inner {
    config: CacheConfig,
    store: Store,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
}

impl CachePlugin {
    pub(crate) fn new(config: CacheConfig, clock: Arc<dyn Clock>) -> Self {
        let zones: Vec<String> = config.zones.iter().map(ToString::to_string).collect();
        let metrics = Arc::new(Metrics::new(zones.join(",")));
        let m = Arc::clone(&metrics);
        let on_remove: OnRemove = Arc::new(move |kind, evicted| m.removed(kind, evicted));
        let stale = config.serve_stale.map(|s| s.up_to).unwrap_or_default();
        let store = Store::new(
            config.success.capacity,
            config.denial.capacity,
            stale,
            on_remove,
        );
        CachePlugin {
            inner: Arc::new(Inner {
                config,
                store,
                clock,
                metrics,
            }),
        }
    }
}

#[async_trait]
impl Plugin for CachePlugin {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn serve(&self, query: &Query<'_>, next: Next<'_>) -> Result<Answer, PluginError> {
        self.inner.serve(query, next).await
    }

    fn start(&self, ctx: &StartContext) -> Vec<tokio::task::JoinHandle<()>> {
        // CoreDNS's `server` label of the block's first key (`dns://:53`, or with the `bind`
        // address); the port from the bound address when no label was given (unit tests).
        let server = match (ctx.servers.first(), ctx.self_addrs.first()) {
            (Some((_, label)), _) => label.clone(),
            (None, Some(addr)) => format!("dns://:{}", addr.port()),
            (None, None) => "dns://:53".to_owned(),
        };
        let _ = self
            .inner
            .metrics
            .handles
            .set(Handles::new(&server, &self.inner.metrics.zones));
        Vec::new()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.metrics.retire();
    }
}

impl Inner {
    fn in_zones(&self, name: &LowerName) -> bool {
        self.config.zones.iter().any(|z| z.zone_of(name))
    }

    /// Whether no answer for `name` is ever stored: both kinds are disabled for it.
    fn never_stored(&self, name: &Name) -> bool {
        let covers = |zones: &[Name]| zones.iter().any(|z| z.zone_of(name));
        covers(&self.config.disable_success) && covers(&self.config.disable_denial)
    }

    async fn serve(
        self: &Arc<Self>,
        query: &Query<'_>,
        next: Next<'_>,
    ) -> Result<Answer, PluginError> {
        if !self.in_zones(query.lower) {
            return next.run(query).await;
        }
        let m = self.metrics.get();
        m.requests.inc();
        if self.never_stored(query.name) {
            // `disable success` and `disable denial` both cover the name (the kubeadm Corefile's
            // cluster zone): no entry can exist, so the store is not consulted. Still a miss,
            // and the answer's TTLs are still capped as for any miss.
            m.misses.inc();
            let answer = next.run(query).await?;
            return Ok(self.prepare(query, answer).0);
        }
        let now = self.clock.now_ms();
        let key = KeyRef::of(query);
        let dnssec_ok = key.dnssec_ok();
        if let Some(entry) = self.store.get(&key).await {
            let remaining = entry.remaining(now);
            if remaining > 0 {
                m.hits[slot(entry.kind)].inc();
                self.maybe_prefetch(&entry, remaining, now, query, next);
                let ttl = if self.config.keepttl {
                    entry.ttl
                } else {
                    u32::try_from(remaining).unwrap_or(entry.ttl)
                };
                return Ok(entry.answer(query.name, ttl, dnssec_ok));
            }
            if let Some(stale) = self.config.serve_stale
                && remaining.unsigned_abs() < stale.up_to.as_secs()
            {
                if stale.verify {
                    // Ask first; the stale entry answers only if that fails.
                    if let Ok(answer) = next.run(query).await
                        && answer.rcode != ResponseCode::ServFail
                    {
                        m.misses.inc();
                        return Ok(self.finish(query, key.to_key(), answer).await);
                    }
                } else {
                    self.spawn_refresh(&entry, query, next);
                }
                m.hits[slot(entry.kind)].inc();
                m.served_stale.inc();
                return Ok(entry.answer(query.name, 0, dnssec_ok));
            }
            self.store.remove_if_same(&key.to_key(), &entry).await;
        }
        m.misses.inc();
        if query.request_size == 0 {
            // An internal query (the server re-entering itself, e.g. for an ExternalName target)
            // may be nested inside a miss on the same key: waiting for that miss would wait for
            // itself, so internal queries never join or start a shared miss.
            let answer = next.run(query).await?;
            return Ok(self.finish(query, key.to_key(), answer).await);
        }
        self.fetch(query, key, next).await
    }

    /// A miss: one call down the chain per key, shared with every concurrent miss on that key
    /// (moka's `try_get_with` on the success cache coalesces them; answers that are not
    /// success entries reach the waiters through its error value).
    async fn fetch(
        self: &Arc<Self>,
        query: &Query<'_>,
        key: KeyRef<'_>,
        next: Next<'_>,
    ) -> Result<Answer, PluginError> {
        let owned = key.to_key();
        let dnssec_ok = owned.dnssec_ok();
        // The caller whose call went down the chain gets the answer as it came back (its own
        // flags); callers that waited for it get the stored entry.
        let mut fresh = None;
        let flight = self
            .store
            .success
            .try_get_with(owned.clone(), async {
                match next.run(query).await {
                    Err(error) => Err(Flight::Failed(error)),
                    Ok(answer) => {
                        let (answer, entry) = self.prepare(query, answer);
                        match entry {
                            Some(entry) if entry.kind == Kind::Success => {
                                self.metrics.added(Kind::Success);
                                self.store.denial.invalidate(&owned).await;
                                fresh = Some(answer);
                                Ok(entry)
                            }
                            Some(entry) => {
                                self.metrics.added(Kind::Denial);
                                self.store.insert(owned.clone(), entry).await;
                                Err(Flight::Answer(answer))
                            }
                            None => Err(Flight::Answer(answer)),
                        }
                    }
                }
            })
            .await;
        match (flight, fresh) {
            (Ok(_), Some(answer)) => Ok(answer),
            (Ok(entry), None) => {
                let now = self.clock.now_ms();
                let ttl = if self.config.keepttl {
                    entry.ttl
                } else {
                    u32::try_from(entry.remaining(now).max(0)).unwrap_or(entry.ttl)
                };
                Ok(entry.answer(query.name, ttl, dnssec_ok))
            }
            (Err(shared), _) => match &*shared {
                Flight::Answer(answer) => Ok(Answer {
                    answers: store::copy(&answer.answers, query.name, None),
                    authorities: store::copy(&answer.authorities, query.name, None),
                    additionals: store::copy(&answer.additionals, query.name, None),
                    ..answer.clone()
                }),
                Flight::Failed(error) => Err(copy_error(error)),
            },
        }
    }

    /// Rewrites a fresh answer's TTLs to its single cache TTL and builds its entry if it is to
    /// be stored.
    fn prepare(&self, query: &Query<'_>, mut answer: Answer) -> (Answer, Option<Arc<Entry>>) {
        let decision = decide(&self.config, query.name, query.qtype, &answer);
        if decision.ttl > 0 {
            for r in answer
                .answers
                .iter_mut()
                .chain(answer.authorities.iter_mut())
                .chain(answer.additionals.iter_mut())
            {
                r.ttl = decision.ttl;
            }
        }
        let entry = match decision.kind {
            Some(kind) if decision.store => Some(Arc::new(Entry::new(
                kind,
                &answer,
                decision.ttl,
                self.clock.now_ms(),
            ))),
            _ => None,
        };
        (answer, entry)
    }

    /// Stores a fresh answer (refresh, verify) and returns it as the client sees it.
    async fn finish(&self, query: &Query<'_>, key: Key, answer: Answer) -> Answer {
        let (answer, entry) = self.prepare(query, answer);
        if let Some(entry) = entry {
            self.metrics.added(entry.kind);
            self.store.insert(key, entry).await;
        }
        answer
    }

    /// Counts a hit and starts a background refresh when the entry is popular and nearly
    /// expired (`prefetch AMOUNT DURATION PERCENT%`).
    fn maybe_prefetch(
        self: &Arc<Self>,
        entry: &Arc<Entry>,
        remaining: i64,
        now: u64,
        query: &Query<'_>,
        next: Next<'_>,
    ) {
        let Some(p) = self.config.prefetch else {
            return;
        };
        if p.amount == 0 {
            return;
        }
        let hits = entry.hit(now, p.duration);
        let threshold = (u64::from(entry.ttl) * u64::from(p.percentage)).div_ceil(100);
        if hits >= p.amount
            && remaining.unsigned_abs() <= threshold
            && self.spawn_refresh(entry, query, next)
        {
            self.metrics.get().prefetch.inc();
        }
    }

    /// Refreshes `entry` in the background (one refresh per entry at a time). The refresh runs
    /// the rest of the chain with a copy of the question; it cannot re-enter the server, so an
    /// answer that needed to (an ExternalName target) is not stored.
    fn spawn_refresh(
        self: &Arc<Self>,
        entry: &Arc<Entry>,
        query: &Query<'_>,
        next: Next<'_>,
    ) -> bool {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        if !entry.begin_refresh() {
            return false;
        }
        let question = Question::of(query);
        let rest: Vec<Arc<dyn Plugin>> = next.rest.to_vec();
        let inner = Arc::clone(self);
        let entry = Arc::clone(entry);
        runtime.spawn(async move {
            let resolver = Detached::default();
            let query = question.query(&resolver);
            let result = Next {
                rest: &rest,
                writer: None,
            }
            .run(&query)
            .await;
            if !resolver.used.load(Ordering::Relaxed)
                && let Ok(answer) = result
                && answer.rcode != ResponseCode::ServFail
            {
                let key = KeyRef::of(&query).to_key();
                inner.finish(&query, key, answer).await;
            }
            entry.end_refresh();
        });
        true
    }
}

/// What concurrent misses on one key share when the result is not a success entry.
enum Flight {
    Answer(Answer),
    Failed(PluginError),
}

fn copy_error(error: &PluginError) -> PluginError {
    match error {
        PluginError::NoNextPlugin => PluginError::NoNextPlugin,
        PluginError::Failed {
            plugin,
            origin,
            rcode,
            message,
        } => PluginError::Failed {
            plugin,
            origin: *origin,
            rcode: *rcode,
            message: message.clone(),
        },
    }
}

/// The owned parts of a query, for a refresh that outlives the request.
struct Question {
    name: Name,
    lower: LowerName,
    qtype: RecordType,
    qclass: DNSClass,
    checking_disabled: bool,
    edns: Option<EdnsInfo>,
    src: SocketAddr,
    transport: Transport,
}

impl Question {
    fn of(query: &Query<'_>) -> Self {
        Question {
            name: query.name.clone(),
            lower: query.lower.clone(),
            qtype: query.qtype,
            qclass: query.qclass,
            checking_disabled: query.checking_disabled,
            edns: query.edns,
            src: query.src,
            transport: query.transport,
        }
    }

    fn query<'a>(&'a self, resolver: &'a dyn Resolve) -> Query<'a> {
        Query {
            name: &self.name,
            lower: &self.lower,
            qtype: self.qtype,
            qclass: self.qclass,
            id: 0,
            recursion_desired: true,
            checking_disabled: self.checking_disabled,
            edns: self.edns,
            src: self.src,
            transport: self.transport,
            request_size: 0,
            reply_size: ReplySize::unsent(),
            resolver,
        }
    }
}

/// The resolver of a background refresh: re-entering the server is not possible outside a
/// request, so it fails and remembers that it was asked.
#[derive(Default)]
struct Detached {
    used: AtomicBool,
}

#[async_trait]
impl Resolve for Detached {
    async fn resolve(&self, _name: Name, _qtype: RecordType) -> Result<Answer, PluginError> {
        self.used.store(true, Ordering::Relaxed);
        Err(PluginError::Failed {
            plugin: NAME,
            origin: Origin::Internal,
            rcode: ResponseCode::ServFail,
            message: "no re-entry during a background refresh".to_owned(),
        })
    }
}
