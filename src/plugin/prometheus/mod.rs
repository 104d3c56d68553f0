//! The `prometheus` plugin: Prometheus metrics over HTTP at `/metrics`, and CoreDNS's
//! `coredns_dns_*` families for the server blocks that use it.
#![doc = include_str!("README.md")]

use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Instant;

use async_trait::async_trait;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{LowerName, RecordType};
use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec};

use crate::corefile::{Dispenser, HostPort};
use crate::http::{self, Reply};
use crate::metrics;
use crate::plugin::{
    Answer, BlockSetup, Next, Plugin, PluginError, Query, SetupError, StartContext, Transport,
    Writer,
};

const PLUGIN: &str = "prometheus";

/// `prometheus [ADDR]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MetricsConfig {
    /// Listen address (default `localhost:9153`).
    pub(crate) addr: HostPort,
}

/// Parses a `prometheus` directive.
pub(crate) fn parse(d: &mut Dispenser<'_>) -> Result<MetricsConfig, SetupError> {
    let addr = match d.next_arg() {
        Some(tok) => d.host_port(tok)?,
        None => HostPort {
            host: "localhost".to_owned(),
            port: 9153,
        },
    };
    d.end()?;
    d.no_block()?;
    Ok(MetricsConfig { addr })
}

/// Parses a `prometheus` directive and adds the plugin to the block.
pub(crate) fn setup(d: &mut Dispenser<'_>, block: &mut BlockSetup) -> Result<(), SetupError> {
    let config = parse(d)?;
    let mut zones: Vec<LowerName> = block.zones.iter().map(LowerName::new).collect();
    // Longest zone first, so the first that contains a name is the block zone that matched.
    zones.sort_by_key(|z| std::cmp::Reverse(z.num_labels()));
    block.plugins.push(Arc::new(Prometheus {
        config,
        zones,
        handles: OnceLock::new(),
    }));
    Ok(())
}

static REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "dns",
        "requests_total",
        "Counter of DNS requests made per zone, protocol and family.",
        &["server", "zone", "view", "proto", "family", "type"],
    )
});
static DO_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "dns",
        "do_requests_total",
        "Counter of DNS requests with DO bit set per zone.",
        &["server", "zone", "view"],
    )
});
static RESPONSES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    metrics::counter_vec(
        "dns",
        "responses_total",
        "Counter of response status codes.",
        &["server", "zone", "view", "rcode", "plugin"],
    )
});
static DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    metrics::histogram_vec(
        "dns",
        "request_duration_seconds",
        "Histogram of the time (in seconds) each request took per zone.",
        &["server", "zone", "view"],
        metrics::duration_buckets(),
    )
});
static REQUEST_SIZE: LazyLock<HistogramVec> = LazyLock::new(|| {
    metrics::histogram_vec(
        "dns",
        "request_size_bytes",
        "Size of the EDNS0 UDP buffer in bytes (64K for TCP) per zone and protocol.",
        &["server", "zone", "view", "proto"],
        metrics::size_buckets(),
    )
});
static RESPONSE_SIZE: LazyLock<HistogramVec> = LazyLock::new(|| {
    metrics::histogram_vec(
        "dns",
        "response_size_bytes",
        "Size of the returned response in bytes.",
        &["server", "zone", "view", "proto"],
        metrics::size_buckets(),
    )
});
static PLUGIN_ENABLED: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    metrics::gauge_vec(
        "",
        "plugin_enabled",
        "A metric that indicates whether a plugin is enabled on per server and zone basis.",
        &["server", "zone", "view", "name"],
    )
});

/// The `type` label values CoreDNS keeps; every other type counts as `other`.
const TYPES: [RecordType; 18] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::MX,
    RecordType::SOA,
    RecordType::CNAME,
    RecordType::PTR,
    RecordType::TXT,
    RecordType::NS,
    RecordType::SRV,
    RecordType::DS,
    RecordType::DNSKEY,
    RecordType::RRSIG,
    RecordType::NSEC,
    RecordType::NSEC3,
    RecordType::HTTPS,
    RecordType::IXFR,
    RecordType::AXFR,
    RecordType::ANY,
];
const OTHER_TYPE: usize = TYPES.len();

fn type_index(qtype: RecordType) -> usize {
    TYPES.iter().position(|t| *t == qtype).unwrap_or(OTHER_TYPE)
}

fn type_label(index: usize) -> String {
    TYPES
        .get(index)
        .map_or_else(|| "other".to_owned(), |t| t.to_string())
}

/// Rcodes with a pre-resolved counter slot; others resolve their label per response.
const RCODES: [ResponseCode; 6] = [
    ResponseCode::NoError,
    ResponseCode::FormErr,
    ResponseCode::ServFail,
    ResponseCode::NXDomain,
    ResponseCode::NotImp,
    ResponseCode::Refused,
];

/// Rcode as CoreDNS names it in labels (`RCODE<n>` when it has no mnemonic).
fn rcode_label(rcode: ResponseCode) -> String {
    match crate::dns::rcode::rcode_name(rcode) {
        Some(name) => name.to_owned(),
        None => format!("RCODE{}", u16::from(rcode)),
    }
}

/// A metric child created on first use (so label sets never used do not show up, as in
/// CoreDNS), then reached with one atomic load.
type Lazy<T> = OnceLock<T>;

/// The metric handles of one zone of the block, resolved once (no label lookup per query).
struct ZoneHandles {
    server: String,
    zone: String,
    /// By transport (udp, tcp), family (1, 2) and type index.
    requests: Vec<Lazy<IntCounter>>,
    do_requests: IntCounter,
    duration: Histogram,
    request_size: [Histogram; 2],
    response_size: [Histogram; 2],
    /// By rcode index and writer plugin (index in the chain's plugin names, last = "").
    responses: Vec<Lazy<IntCounter>>,
}

/// The handles of every zone of the block, and the chain's plugin names.
struct Handles {
    zones: Vec<ZoneHandles>,
    writers: Vec<&'static str>,
}

fn proto_index(t: Transport) -> usize {
    match t {
        Transport::Udp => 0,
        Transport::Tcp => 1,
    }
}

impl ZoneHandles {
    fn new(server: &str, zone: &str, writers: usize) -> Self {
        let labels = [server, zone, ""];
        let per_proto = |vec: &HistogramVec| {
            ["udp", "tcp"].map(|p| vec.with_label_values(&[server, zone, "", p]))
        };
        ZoneHandles {
            server: server.to_owned(),
            zone: zone.to_owned(),
            requests: (0..2 * 2 * (OTHER_TYPE + 1)).map(|_| Lazy::new()).collect(),
            do_requests: DO_REQUESTS.with_label_values(&labels),
            duration: DURATION.with_label_values(&labels),
            request_size: per_proto(&REQUEST_SIZE),
            response_size: per_proto(&RESPONSE_SIZE),
            responses: (0..RCODES.len() * (writers + 1))
                .map(|_| Lazy::new())
                .collect(),
        }
    }

    fn request(&self, q: &Query<'_>) {
        let proto = proto_index(q.transport);
        let family = usize::from(q.src.is_ipv6());
        let ty = type_index(q.qtype);
        let slot = (proto * 2 + family) * (OTHER_TYPE + 1) + ty;
        if let Some(counter) = self.requests.get(slot) {
            counter
                .get_or_init(|| {
                    REQUESTS.with_label_values(&[
                        self.server.as_str(),
                        &self.zone,
                        "",
                        q.transport.as_str(),
                        if family == 0 { "1" } else { "2" },
                        &type_label(ty),
                    ])
                })
                .inc();
        }
        if q.edns.is_some_and(|e| e.dnssec_ok) {
            self.do_requests.inc();
        }
        // The request's length on the wire, as CoreDNS observes it (its help text still speaks
        // of the EDNS0 buffer size; the help is kept for compatibility).
        self.request_size[proto].observe(q.request_size as f64);
    }

    fn response(&self, rcode: ResponseCode, writer: Option<&'static str>, writers: &[&str]) {
        let w = writer
            .and_then(|name| writers.iter().position(|n| *n == name))
            .unwrap_or(writers.len());
        let plugin = writers.get(w).copied().unwrap_or("");
        let resolve = || {
            RESPONSES.with_label_values(&[
                self.server.as_str(),
                &self.zone,
                "",
                &rcode_label(rcode),
                plugin,
            ])
        };
        let slot = RCODES
            .iter()
            .position(|r| *r == rcode)
            .and_then(|r| self.responses.get(r * (writers.len() + 1) + w));
        match slot {
            Some(counter) => counter.get_or_init(resolve).inc(),
            None => resolve().inc(),
        }
    }
}

/// The plugin: serves `/metrics`, counts the block's queries.
pub(crate) struct Prometheus {
    config: MetricsConfig,
    /// The block's zones, longest first.
    zones: Vec<LowerName>,
    /// Resolved at start (the server label needs the bound port).
    handles: OnceLock<Handles>,
}

impl Prometheus {
    fn zone<'h>(&self, handles: &'h Handles, name: &LowerName) -> Option<&'h ZoneHandles> {
        let i = self.zones.iter().position(|z| z.zone_of(name))?;
        handles.zones.get(i)
    }
}

#[async_trait]
impl Plugin for Prometheus {
    fn name(&self) -> &'static str {
        PLUGIN
    }

    async fn serve(&self, query: &Query<'_>, next: Next<'_>) -> Result<Answer, PluginError> {
        let Some(handles) = self.handles.get() else {
            return next.run(query).await;
        };
        let start = Instant::now();
        let writer = Writer::default();
        let result = next.run_tracked(query, &writer).await;
        if let Some(zone) = self.zone(handles, query.lower) {
            zone.request(query);
            let rcode = match &result {
                Ok(answer) => answer.rcode,
                Err(e) => e.rcode(),
            };
            zone.response(rcode, writer.get(), &handles.writers);
            zone.duration.observe(start.elapsed().as_secs_f64());
            // The server observes the reply's size here once it has sent it.
            query
                .reply_size
                .observe_into(&zone.response_size[proto_index(query.transport)]);
        }
        result
    }

    fn start(&self, ctx: &StartContext) -> Vec<tokio::task::JoinHandle<()>> {
        metrics::init_core();
        let writers: Vec<&'static str> = ctx.hooks.iter().map(|h| h.name()).collect();
        let zones = self
            .zones
            .iter()
            .map(|zone| {
                let server = ctx
                    .servers
                    .iter()
                    .find(|(z, _)| LowerName::new(z) == *zone)
                    .map_or("dns://", |(_, label)| label.as_str());
                let zone_text = zone.to_string();
                for name in &writers {
                    PLUGIN_ENABLED
                        .with_label_values(&[server, &zone_text, "", name])
                        .set(1);
                }
                ZoneHandles::new(server, &zone_text, writers.len())
            })
            .collect();
        // A chain is started once; were it started again, the first handles stay.
        let _ = self.handles.set(Handles { zones, writers });
        match http::serve(&self.config.addr, "/metrics", Arc::new(render)) {
            Ok(route) => {
                ctx.opened("/metrics", route.local_addr());
                vec![route.hold()]
            }
            Err(error) => {
                ctx.failed(error.addr, error.source);
                Vec::new()
            }
        }
    }
}

/// `/metrics`: the whole registry in the Prometheus text format.
fn render() -> Reply {
    Reply {
        status: 200,
        content_type: "text/plain; version=0.0.4; charset=utf-8",
        body: metrics::render(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Result<MetricsConfig, String> {
        crate::plugin::test_support::parse_first(text, parse)
    }

    fn config(host: &str, port: u16) -> Result<MetricsConfig, &'static str> {
        Ok(MetricsConfig {
            addr: HostPort {
                host: host.to_owned(),
                port,
            },
        })
    }

    #[test]
    fn prometheus_setup_cases() {
        let cases: Vec<(&str, Result<MetricsConfig, &str>)> = vec![
            ("prometheus", config("localhost", 9153)),
            ("prometheus :9153", config("", 9153)),
            ("prometheus 0.0.0.0:9253", config("0.0.0.0", 9253)),
            (
                "prometheus 9153",
                Err("Corefile:2:12: plugin/prometheus: invalid address '9153'"),
            ),
            (
                "prometheus :9153 :9154",
                Err("unexpected argument ':9154' after 'prometheus'"),
            ),
            (
                "prometheus {\n  path /m\n}",
                Err("Corefile:3:3: plugin/prometheus: unexpected option block"),
            ),
        ];
        for (text, want) in cases {
            let got = run(text);
            match (&got, &want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "case {text:?}"),
                (Err(g), Err(w)) => assert!(g.contains(w), "case {text:?}: {g}"),
                _ => panic!("case {text:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
