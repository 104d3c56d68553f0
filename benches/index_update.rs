//! The kubernetes index fed like the API source feeds it: the time to apply full lists of a
//! generated cluster (10,000 services, 100,000 endpoints, 50,000 pods by default), and the mean
//! cost of one EndpointSlice or Service update including the snapshot publication.
//!
//!   cargo bench --features bench-internals --bench index_update \
//!       [-- SERVICES ENDPOINTS_PER_SERVICE PODS EVENTS]

fn arg(args: &[String], n: usize, default: usize) -> usize {
    args.get(n).and_then(|a| a.parse().ok()).unwrap_or(default)
}

fn main() {
    // cargo bench passes `--bench`; keep only numbers.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a.parse::<usize>().is_ok())
        .collect();
    let services = arg(&args, 0, 10_000);
    let per = arg(&args, 1, 10);
    let pods = arg(&args, 2, 50_000);
    let events = arg(&args, 3, 2_000);
    let before = rss_kb();
    let f = clusterdns::kubernetes_index_bench::run(services, per, pods, events);
    let after = rss_kb();
    println!(
        "cluster: {} services, {} endpoints, {} pods",
        f.services, f.endpoints, f.pods
    );
    println!("full lists applied and published: {:?}", f.list);
    println!(
        "one EndpointSlice update ({} endpoints) + publish: {:?} (mean of {})",
        per, f.event, f.events
    );
    println!(
        "one Service update + publish: {:?} (mean of {})",
        f.service_event, f.events
    );
    let objects = f.services + f.endpoints + f.pods;
    println!(
        "VmRSS {before} kB before, {after} kB with the index: {} kB, {} bytes per object \
         (allocator retention of the generated input included)",
        after.saturating_sub(before),
        after.saturating_sub(before) * 1024 / objects.max(1) as u64
    );
    drop(f);
}

/// This process's resident set (kB), from /proc/self/status.
fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}
