//! The `forward` plugin: relays queries for a zone to upstream resolvers over pooled UDP and
//! TCP connections, with failover, in-band health checks and CoreDNS's metrics.
#![doc = include_str!("README.md")]

pub(crate) mod health;
pub(crate) mod policy;
pub(crate) mod setup;
pub(crate) mod upstream;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, OnceLock, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query as WireQuery, ResponseCode};
use hickory_proto::rr::{LowerName, RecordType};
use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec};
use rand::seq::IndexedRandom;
use tracing::{info, warn};

use self::health::{Change, Health};
use self::policy::Picker;
use self::setup::{ForwardConfig, parse};
use self::upstream::{Budget, Connections, ExchangeError, Proto, Reply, Request};
use crate::corefile::Dispenser;
use crate::metrics;
use crate::plugin::{
    Answer, BlockSetup, Next, Origin, Plugin, PluginError, Query, SetupError, StartContext,
    Transport,
};

const NAME: &str = "forward";
/// Time one exchange with one upstream may take (CoreDNS's default `read_timeout`).
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// Time a query may spend over all its upstream attempts.
const QUERY_BUDGET: Duration = Duration::from_secs(5);
/// Time a health probe waits for its reply.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Bounds on the sockets one upstream may hold open (in use and idle). Between them, each
/// upstream of a `forward` gets an equal share of half the process's open-file limit, so a
/// silent upstream under a flood cannot exhaust the process's descriptors.
const MIN_SOCKETS: usize = 8;
const MAX_SOCKETS: usize = 4096;
/// The open-file limit assumed when /proc/self/limits cannot be read.
const DEFAULT_FD_LIMIT: usize = 1024;

/// Half the process's open-file limit, for the sockets of every upstream of every `forward`
/// together: the per-upstream shares assume one `forward`, and several (or a reload's old and new
/// configuration side by side) would otherwise add up to the whole limit.
static PROCESS_BUDGET: LazyLock<Arc<Budget>> = LazyLock::new(|| {
    Arc::new(Budget::new(
        (fd_limit().unwrap_or(DEFAULT_FD_LIMIT) / 2).max(MIN_SOCKETS),
    ))
});

static REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "forward",
        "requests_total",
        "Counter of requests made per upstream.",
        &["to"],
    )
});
static RESPONSES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "forward",
        "responses_total",
        "Counter of responses received per upstream.",
        &["to", "rcode"],
    )
});
static DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    metrics::histogram_vec(
        "forward",
        "request_duration_seconds",
        "Histogram of the time each request took.",
        &["to", "rcode"],
        metrics::duration_buckets(),
    )
});
static PROXY_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    metrics::histogram_vec(
        "proxy",
        "request_duration_seconds",
        "Histogram of the time each request took.",
        &["proxy_name", "to", "rcode"],
        metrics::duration_buckets(),
    )
});
static HEALTHCHECK_FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "forward",
        "healthcheck_failures_total",
        "Counter of the number of failed healthchecks.",
        &["to"],
    )
});
static PROXY_HEALTHCHECK_FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "proxy",
        "healthcheck_failures_total",
        "Count of failed health checks per upstream.",
        &["proxy_name", "to", "rcode"],
    )
});
static HEALTHCHECK_BROKEN: LazyLock<IntCounter> = LazyLock::new(|| {
    metrics::counter(
        "forward",
        "healthcheck_broken_total",
        "Counter of the number of complete failures of the healthchecks.",
    )
});
static SOCKET_LIMIT_REJECTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "forward",
        "socket_limit_rejects_total",
        "Counter of upstream attempts skipped because every socket of the upstream was in use.",
        &["to"],
    )
});
static MAX_CONCURRENT_REJECTS: LazyLock<IntCounter> = LazyLock::new(|| {
    metrics::counter(
        "forward",
        "max_concurrent_rejects_total",
        "Counter of the number of queries rejected because the concurrent queries were at maximum.",
    )
});

/// Parses a `forward` directive and adds the plugin to the block's chain.
pub(crate) fn setup(d: &mut Dispenser<'_>, block: &mut BlockSetup) -> Result<(), SetupError> {
    let config = parse(d, &block.base_dir)?;
    block.plugins.push(Arc::new(Forward::new(config)));
    Ok(())
}

/// CoreDNS's rcode mnemonics, for metric labels.
fn rcode_name(code: ResponseCode) -> &'static str {
    crate::dns::rcode::rcode_name(code).unwrap_or("OTHER")
}

/// Metric handles of one upstream and one rcode, fetched once.
struct RcodeMetrics {
    responses: IntCounter,
    duration: Histogram,
    proxy_duration: Histogram,
}

/// Metric handles of one upstream.
struct UpstreamMetrics {
    to: String,
    requests: IntCounter,
    healthcheck_failures: IntCounter,
    socket_limit_rejects: IntCounter,
    /// Handles per rcode 0..=23, made on first use.
    by_rcode: [OnceLock<RcodeMetrics>; 24],
}

impl UpstreamMetrics {
    fn new(to: String) -> Self {
        UpstreamMetrics {
            requests: REQUESTS.with_label_values(&[to.as_str()]),
            healthcheck_failures: HEALTHCHECK_FAILURES.with_label_values(&[to.as_str()]),
            socket_limit_rejects: SOCKET_LIMIT_REJECTS.with_label_values(&[to.as_str()]),
            by_rcode: std::array::from_fn(|_| OnceLock::new()),
            to,
        }
    }

    fn response(&self, rcode: ResponseCode, took: Duration) {
        let make = || {
            let name = rcode_name(rcode);
            RcodeMetrics {
                responses: RESPONSES.with_label_values(&[self.to.as_str(), name]),
                duration: DURATION.with_label_values(&[self.to.as_str(), name]),
                proxy_duration: PROXY_DURATION.with_label_values(&[NAME, self.to.as_str(), name]),
            }
        };
        let secs = took.as_secs_f64();
        match self.by_rcode.get(usize::from(u16::from(rcode))) {
            Some(slot) => {
                let m = slot.get_or_init(make);
                m.responses.inc();
                m.duration.observe(secs);
                m.proxy_duration.observe(secs);
            }
            None => {
                let m = make();
                m.responses.inc();
                m.duration.observe(secs);
                m.proxy_duration.observe(secs);
            }
        }
    }

    fn healthcheck_failed(&self, error: &ExchangeError) {
        self.healthcheck_failures.inc();
        let kind = match error {
            ExchangeError::Timeout { .. } => "timeout",
            ExchangeError::Rejected { .. } | ExchangeError::RequestTooLong { .. } => "malformed",
            ExchangeError::Io { .. }
            | ExchangeError::CachedClosed { .. }
            | ExchangeError::Busy { .. } => "network",
        };
        PROXY_HEALTHCHECK_FAILURES
            .with_label_values(&[NAME, self.to.as_str(), kind])
            .inc();
    }
}

/// How an upstream is probed after a failure.
#[derive(Clone)]
struct ProbeConfig {
    interval: Duration,
    max_fails: u32,
    proto: Proto,
    bytes: Vec<u8>,
    question: WireQuery,
}

/// One upstream: its sockets, health and metrics.
pub(crate) struct Upstream {
    conns: Connections,
    health: Health,
    metrics: UpstreamMetrics,
    probe: ProbeConfig,
}

impl Upstream {
    /// A query to this upstream failed: start probing it, unless a probe loop already runs.
    fn failed(self: &Arc<Self>) {
        if self.probe.max_fails == 0 || !self.health.begin_check() {
            return;
        }
        let weak = Arc::downgrade(self);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(probe_loop(weak));
        } else {
            self.health.end_check();
        }
    }

    async fn probe_once(&self) -> Result<(), ExchangeError> {
        let request = Request {
            bytes: &self.probe.bytes,
            question: &self.probe.question,
            udp_size: 512,
        };
        self.conns
            .exchange(
                &request,
                rand::random(),
                self.probe.proto,
                PROBE_TIMEOUT,
                Instant::now(),
            )
            .await
            .map(|_| ())
    }
}

/// Probes an upstream every interval until it answers anything; ends early if the plugin is gone.
async fn probe_loop(upstream: Weak<Upstream>) {
    loop {
        let Some(up) = upstream.upgrade() else { return };
        match up.probe_once().await {
            Ok(()) => {
                if up.health.probe_succeeded(up.probe.max_fails) == Change::CameBack {
                    info!(upstream = %up.conns.addr, "plugin/forward: upstream is healthy again");
                }
                up.health.end_check();
                return;
            }
            // No socket free for the probe: the upstream is busy, not known to be broken.
            Err(ExchangeError::Busy { .. }) => {}
            Err(error) => {
                up.metrics.healthcheck_failed(&error);
                if up.health.probe_failed(up.probe.max_fails) == Change::WentDown {
                    warn!(
                        upstream = %up.conns.addr,
                        %error,
                        "plugin/forward: upstream marked down after {} failed health checks",
                        up.probe.max_fails
                    );
                }
            }
        }
        let interval = up.probe.interval;
        drop(up);
        tokio::time::sleep(interval).await;
    }
}

/// How often idle sockets are looked at: twice per `expire`, so none stays open much past it.
fn reap_period(expire: Duration) -> Duration {
    (expire / 2).clamp(Duration::from_millis(50), Duration::from_secs(5))
}

/// Closes the upstream's sockets idle for `expire`, on a timer; ends when the plugin is gone (or
/// when the task is aborted as the chain is retired).
async fn reap_loop(upstream: Weak<Upstream>, expire: Duration) {
    let mut tick = tokio::time::interval(reap_period(expire));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(up) = upstream.upgrade() else { return };
        up.conns.reap(Instant::now());
    }
}

/// The soft limit on open files of this process (Linux's /proc/self/limits), if known.
fn fd_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    match soft {
        "unlimited" => Some(usize::MAX),
        n => n.parse().ok(),
    }
}

/// Sockets each of `upstreams` upstreams may hold open, given the open-file limit `fds`.
fn socket_limit(fds: usize, upstreams: usize) -> usize {
    (fds / 2 / upstreams.max(1)).clamp(MIN_SOCKETS, MAX_SOCKETS)
}

/// The plugin of one `forward` directive.
pub(crate) struct Forward {
    from: LowerName,
    except: Vec<LowerName>,
    config: ForwardConfig,
    upstreams: Vec<Arc<Upstream>>,
    picker: Picker,
    inflight: AtomicU32,
}

/// Releases a `max_concurrent` slot.
struct Slot<'a>(&'a AtomicU32);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn probe_message(config: &ForwardConfig) -> (Vec<u8>, WireQuery) {
    let question = WireQuery::query(config.health_check_domain.clone(), RecordType::NS);
    let mut msg = Message::new(0, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = config.health_check_recursion;
    msg.add_query(question.clone());
    // Encoding a fixed, valid question cannot fail; an empty probe would simply never match.
    (msg.to_vec().unwrap_or_default(), question)
}

impl Forward {
    pub(crate) fn new(config: ForwardConfig) -> Self {
        let (bytes, question) = probe_message(&config);
        let probe = ProbeConfig {
            interval: config.health_check,
            max_fails: config.max_fails,
            proto: if config.force_tcp {
                Proto::Tcp
            } else {
                Proto::Udp
            },
            bytes,
            question,
        };
        let max_open = socket_limit(
            fd_limit().unwrap_or(DEFAULT_FD_LIMIT),
            config.upstreams.len(),
        );
        let budget = Arc::clone(&PROCESS_BUDGET);
        let upstreams = config
            .upstreams
            .iter()
            .map(|addr| {
                Arc::new(Upstream {
                    conns: Connections::new(*addr, config.expire, config.max_idle_conns, max_open)
                        .with_budget(Arc::clone(&budget)),
                    health: Health::default(),
                    metrics: UpstreamMetrics::new(addr.to_string()),
                    probe: probe.clone(),
                })
            })
            .collect();
        Forward {
            from: LowerName::new(&config.from),
            except: config.except.iter().map(LowerName::new).collect(),
            picker: Picker::new(config.policy),
            upstreams,
            inflight: AtomicU32::new(0),
            config,
        }
    }

    fn handles(&self, name: &LowerName) -> bool {
        self.from.zone_of(name) && !self.except.iter().any(|e| e.zone_of(name))
    }

    /// A `max_concurrent` slot, or `None` when the limit is reached.
    fn admit(&self) -> Option<Slot<'_>> {
        let max = self.config.max_concurrent;
        let before = self.inflight.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(&self.inflight);
        if max != 0 && before >= max {
            return None;
        }
        Some(slot)
    }

    fn proto(&self, transport: Transport) -> Proto {
        if self.config.force_tcp {
            Proto::Tcp
        } else if self.config.prefer_udp {
            Proto::Udp
        } else {
            match transport {
                Transport::Udp => Proto::Udp,
                Transport::Tcp => Proto::Tcp,
            }
        }
    }

    /// The upstream query for the client's question: same name (case kept), type, class, RD,
    /// CD, and the client's EDNS size and DO bit.
    fn request(query: &Query<'_>) -> Result<(Vec<u8>, WireQuery), PluginError> {
        let mut question = WireQuery::query(query.name.clone(), query.qtype);
        question.set_query_class(query.qclass);
        let mut msg = Message::new(0, MessageType::Query, OpCode::Query);
        msg.metadata.recursion_desired = query.recursion_desired;
        msg.metadata.checking_disabled = query.checking_disabled;
        msg.add_query(question.clone());
        if let Some(info) = query.edns {
            let mut edns = Edns::new();
            edns.set_max_payload(info.udp_size);
            edns.set_dnssec_ok(info.dnssec_ok);
            msg.set_edns(edns);
        }
        let bytes = msg.to_vec().map_err(|e| PluginError::Failed {
            plugin: NAME,
            origin: Origin::Client,
            rcode: ResponseCode::ServFail,
            message: format!("cannot encode the upstream query: {e}"),
        })?;
        Ok((bytes, question))
    }

    fn failure(message: String) -> PluginError {
        PluginError::Failed {
            plugin: NAME,
            origin: Origin::Upstream,
            rcode: ResponseCode::ServFail,
            message,
        }
    }

    /// Relays `query`, trying upstreams in policy order until one answers.
    async fn relay(&self, query: &Query<'_>, next: Next<'_>) -> Result<Answer, PluginError> {
        let (bytes, question) = Self::request(query)?;
        let request = Request {
            bytes: &bytes,
            question: &question,
            udp_size: query.edns.map(|e| e.udp_size).unwrap_or(512),
        };
        let n = self.upstreams.len();
        if n == 0 {
            return Err(Self::failure("no upstreams".to_owned()));
        }
        let started = Instant::now();
        let deadline = started + QUERY_BUDGET;
        let order = self.picker.order(n);
        let max_attempts = 2 * n;
        let mut attempts = 0;
        let mut pos = 0;
        let mut skipped = 0;
        let mut last_error: Option<ExchangeError> = None;
        let mut failover_reply: Option<Answer> = None;
        // An upstream sent our id with a reply that did not match (QR=0, another question):
        // CoreDNS answers FORMERR, and so do we if no upstream gives a real reply.
        let mut mismatch = false;
        let mut busy = 0;
        let proto = self.proto(query.transport);
        while attempts < max_attempts {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if pos >= n {
                pos = 0;
                skipped = 0;
            }
            let mut up = &self.upstreams[order[pos]];
            pos += 1;
            if up.health.down(self.config.max_fails) {
                skipped += 1;
                if skipped < n {
                    continue;
                }
                // Every upstream is marked down: the health checks themselves may be what is
                // broken, so try one anyway (CoreDNS), unless told to fail fast.
                if self.config.failfast_all_unhealthy_upstreams {
                    return Err(Self::failure("no healthy upstream".to_owned()));
                }
                HEALTHCHECK_BROKEN.inc();
                skipped = 0;
                if let Some(random) = self.upstreams.choose(&mut rand::rng()) {
                    up = random;
                }
            }
            attempts += 1;
            let timeout = READ_TIMEOUT.min(deadline.saturating_duration_since(now));
            up.metrics.requests.inc();
            let sent = Instant::now();
            let mut result = up
                .conns
                .exchange(&request, rand::random(), proto, timeout, now)
                .await;
            if let Ok(Reply::Message(m)) = &result
                && m.metadata.truncation
                && proto == Proto::Udp
                && self.config.prefer_udp
                && query.transport == Transport::Tcp
            {
                // prefer_udp for a TCP client: a truncated UDP reply is retried over TCP.
                let left = deadline.saturating_duration_since(Instant::now());
                result = up
                    .conns
                    .exchange(
                        &request,
                        rand::random(),
                        Proto::Tcp,
                        READ_TIMEOUT.min(left),
                        now,
                    )
                    .await;
            }
            let message = match result {
                Err(error @ ExchangeError::Busy { .. }) => {
                    // Not a failure of the upstream: no health check, try the next one.
                    up.metrics.socket_limit_rejects.inc();
                    busy += 1;
                    last_error = Some(error);
                    continue;
                }
                Err(error) => {
                    mismatch |= error.is_mismatch();
                    up.failed();
                    last_error = Some(error);
                    continue;
                }
                Ok(Reply::Overflow) => {
                    up.metrics.response(ResponseCode::NoError, sent.elapsed());
                    return Ok(Answer {
                        truncated: true,
                        ..Answer::new(ResponseCode::NoError)
                    });
                }
                Ok(Reply::Message(message)) => message,
            };
            let rcode = message.metadata.response_code;
            up.metrics.response(rcode, sent.elapsed());
            let answer = into_answer(*message);
            if self.config.failover.contains(&rcode) {
                failover_reply = Some(answer);
                continue;
            }
            if self.config.next.contains(&rcode) && next.peek().is_some() {
                return next.run(query).await;
            }
            return Ok(answer);
        }
        if let Some(answer) = failover_reply {
            return Ok(answer);
        }
        if mismatch {
            return Ok(Answer::new(ResponseCode::FormErr));
        }
        if busy > 0 && busy == attempts {
            // Every upstream tried had all its sockets in use: overload, as `max_concurrent`.
            return Err(PluginError::Failed {
                plugin: NAME,
                origin: Origin::Internal,
                rcode: ResponseCode::Refused,
                message: last_error.map(|e| e.to_string()).unwrap_or_default(),
            });
        }
        Err(Self::failure(match last_error {
            Some(error) => error.to_string(),
            None => format!("no upstream answered within {QUERY_BUDGET:?}"),
        }))
    }
}

/// The upstream's reply as a plugin answer: rcode, AA/RA/AD/TC and every section. The OPT record
/// is not carried (the server writes its own).
fn into_answer(message: Message) -> Answer {
    let meta = message.metadata;
    Answer {
        rcode: meta.response_code,
        authoritative: meta.authoritative,
        recursion_available: meta.recursion_available,
        authentic_data: meta.authentic_data,
        truncated: meta.truncation,
        answers: message.answers,
        authorities: message.authorities,
        additionals: message.additionals,
    }
}

#[async_trait]
impl Plugin for Forward {
    fn name(&self) -> &'static str {
        NAME
    }

    /// One task per upstream closing its idle sockets after `expire`.
    fn start(&self, _ctx: &StartContext) -> Vec<tokio::task::JoinHandle<()>> {
        self.upstreams
            .iter()
            .map(|up| tokio::spawn(reap_loop(Arc::downgrade(up), self.config.expire)))
            .collect()
    }

    async fn serve(&self, query: &Query<'_>, next: Next<'_>) -> Result<Answer, PluginError> {
        if !self.handles(query.lower) {
            return next.run(query).await;
        }
        let Some(_slot) = self.admit() else {
            MAX_CONCURRENT_REJECTS.inc();
            return Err(PluginError::Failed {
                plugin: NAME,
                origin: Origin::Internal,
                rcode: ResponseCode::Refused,
                message: format!(
                    "concurrent queries exceeded maximum {}",
                    self.config.max_concurrent
                ),
            });
        };
        self.relay(query, next).await
    }
}

#[cfg(test)]
mod tests;
