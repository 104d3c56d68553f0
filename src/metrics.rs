//! The process-wide Prometheus registry: every metric family clusterdns exports is registered here,
//! under CoreDNS's names, by the module that owns it (server, cache, forward, kubernetes, reload).
//!
//! The `prometheus` plugin only renders this registry over HTTP; plugins never import each other,
//! they each register and update their own families through the helpers below.

use std::sync::LazyLock;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

/// Namespace prefix of every CoreDNS metric.
pub const NAMESPACE: &str = "coredns";

static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

/// The registry the `prometheus` plugin renders.
pub fn registry() -> &'static Registry {
    &REGISTRY
}

/// Registers `collector`; a family registered twice (a second server block, a test) keeps the first.
fn register<C: prometheus::core::Collector + Clone + 'static>(collector: C) -> C {
    match REGISTRY.register(Box::new(collector.clone())) {
        Ok(()) => collector,
        // Each family lives in one `LazyLock` static, so this only happens if two statics use
        // one name: a bug, logged rather than fatal.
        Err(error) => {
            tracing::debug!(%error, "metric registered twice");
            collector
        }
    }
}

fn opts(subsystem: &str, name: &str, help: &str) -> Opts {
    Opts::new(name, help)
        .namespace(NAMESPACE)
        .subsystem(subsystem)
}

/// `coredns_<subsystem>_<name>` counter with labels. Call from a `LazyLock` static.
pub fn counter_vec(subsystem: &str, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    // The names and labels are compile-time constants of this crate: an error here is a bug
    // that the registry test below catches.
    register(
        IntCounterVec::new(opts(subsystem, name, help), labels)
            .unwrap_or_else(|e| panic!("metric {subsystem}_{name}: {e}")),
    )
}

/// `coredns_<subsystem>_<name>` counter without labels.
pub fn counter(subsystem: &str, name: &str, help: &str) -> IntCounter {
    register(
        IntCounter::with_opts(opts(subsystem, name, help))
            .unwrap_or_else(|e| panic!("metric {subsystem}_{name}: {e}")),
    )
}

/// `coredns_<subsystem>_<name>` gauge with labels.
pub fn gauge_vec(subsystem: &str, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    register(
        IntGaugeVec::new(opts(subsystem, name, help), labels)
            .unwrap_or_else(|e| panic!("metric {subsystem}_{name}: {e}")),
    )
}

/// `coredns_<subsystem>_<name>` gauge without labels.
pub fn gauge(subsystem: &str, name: &str, help: &str) -> IntGauge {
    register(
        IntGauge::with_opts(opts(subsystem, name, help))
            .unwrap_or_else(|e| panic!("metric {subsystem}_{name}: {e}")),
    )
}

/// `coredns_<subsystem>_<name>` histogram with labels and explicit buckets.
pub fn histogram_vec(
    subsystem: &str,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: Vec<f64>,
) -> HistogramVec {
    let opts = HistogramOpts::new(name, help)
        .namespace(NAMESPACE)
        .subsystem(subsystem)
        .buckets(buckets);
    register(
        HistogramVec::new(opts, labels)
            .unwrap_or_else(|e| panic!("metric {subsystem}_{name}: {e}")),
    )
}

/// `coredns_<subsystem>_<name>` histogram without labels.
pub fn histogram(subsystem: &str, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let opts = HistogramOpts::new(name, help)
        .namespace(NAMESPACE)
        .subsystem(subsystem)
        .buckets(buckets);
    register(
        Histogram::with_opts(opts).unwrap_or_else(|e| panic!("metric {subsystem}_{name}: {e}")),
    )
}

/// Go's `prometheus.ExponentialBuckets(start, factor, count)`.
pub fn exponential_buckets(start: f64, factor: f64, count: usize) -> Vec<f64> {
    let mut buckets = Vec::with_capacity(count);
    let mut next = start;
    for _ in 0..count {
        buckets.push(next);
        next *= factor;
    }
    buckets
}

/// The request and response size buckets of CoreDNS (`plugin/metrics/vars`).
pub fn size_buckets() -> Vec<f64> {
    vec![
        0.0, 100.0, 200.0, 300.0, 400.0, 511.0, 1023.0, 2047.0, 4095.0, 8291.0, 16e3, 32e3, 48e3,
        64e3,
    ]
}

/// The duration buckets of CoreDNS's request and upstream durations: 0.25 ms doubling 16 times.
pub fn duration_buckets() -> Vec<f64> {
    exponential_buckets(0.00025, 2.0, 16)
}

/// `coredns_panics_total`: panics seen by the process (counted by a panic hook).
pub static PANICS: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "",
        "panics_total",
        "A metrics that counts the number of panics.",
    )
});

/// Registers the process-wide families of the `prometheus` plugin once: the process collector
/// (`process_*`), `coredns_build_info` and `coredns_panics_total` (with its panic hook).
pub fn init_core() {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        #[cfg(target_os = "linux")]
        if let Err(error) = REGISTRY.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        )) {
            tracing::debug!(%error, "process collector registered twice");
        }
        let build = gauge_vec(
            "",
            "build_info",
            "A metric with a constant '1' value labeled by version, revision, and goversion from which CoreDNS was built.",
            &["version", "revision", "goversion"],
        );
        build
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                option_env!("CLUSTERDNS_REVISION").unwrap_or(""),
                concat!("rustc", env!("CLUSTERDNS_RUSTC_VERSION")),
            ])
            .set(1);
        LazyLock::force(&PANICS);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.inc();
            previous(info);
        }));
    });
}

/// Renders every registered family in the Prometheus text format (version 0.0.4).
pub fn render() -> String {
    use prometheus::Encoder;
    let mut out = Vec::new();
    let encoder = prometheus::TextEncoder::new();
    if let Err(error) = encoder.encode(&REGISTRY.gather(), &mut out) {
        tracing::warn!(%error, "cannot encode metrics");
    }
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_buckets_match_go() {
        let b = duration_buckets();
        assert_eq!(b.len(), 16);
        assert_eq!(b[0], 0.00025);
        assert_eq!(b[15], 0.00025 * 32768.0);
    }

    #[test]
    fn families_render_with_the_coredns_prefix() {
        static C: LazyLock<IntCounterVec> =
            LazyLock::new(|| counter_vec("test", "things_total", "Things.", &["server"]));
        C.with_label_values(&["dns://:53"]).inc();
        let text = render();
        assert!(
            text.contains("coredns_test_things_total{server=\"dns://:53\"} 1"),
            "{text}"
        );
    }
}
