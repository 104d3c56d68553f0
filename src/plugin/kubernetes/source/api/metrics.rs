//! The source's metric families.

use std::sync::LazyLock;

use prometheus::HistogramVec;

use crate::metrics;

/// `coredns_kubernetes_dns_programming_duration_seconds{service_kind}`.
pub(super) static DNS_PROGRAMMING: LazyLock<HistogramVec> = LazyLock::new(|| {
    metrics::histogram_vec(
        "kubernetes",
        "dns_programming_duration_seconds",
        "Histogram of the time (in seconds) it took to program a dns instance.",
        &["service_kind"],
        metrics::exponential_buckets(0.001, 2.0, 20),
    )
});
