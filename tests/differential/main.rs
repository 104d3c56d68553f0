//! The differential tier: real CoreDNS v1.14.7 (built once by
//! `bash tests/e2e/build-coredns.sh`, cached outside the repository) and clusterdns
//! (this build's binary), both watching the same real kube-apiserver of the e2e tier, each with
//! the same Corefile on its own loopback port. For every seed a random cluster is created
//! through the API; for every option set both servers start, sync, and answer the same queries;
//! the replies are compared (see compare.rs). Differences print the query, both replies and the
//! seed; the known open classes are allowed by `ALLOWED` (each with its issue) and counted in the
//! summary; any other difference fails the test.
//!
//! Seeds: `DIFF_SEEDS` (`1..20`, `3`, `1,4,9`; default the CI set), queries per seed and option
//! set: `DIFF_QUERIES` (default 250). One seed also runs clusterdns from `manifests` (the same
//! objects written as YAML) against CoreDNS on the API.

#[path = "../e2e/cluster.rs"]
#[allow(dead_code)]
mod cluster;
mod compare;
mod model;
#[path = "../support/peers.rs"]
mod peers;
mod query;
#[path = "../common/upstream.rs"]
mod upstream;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use compare::Seen;
use query::{Q, Transport};

/// The seeds CI runs (the tier stays within a few minutes on two cores).
const CI_SEEDS: &[u64] = &[1, 2];
/// The seed that also runs clusterdns from manifests.
const MANIFESTS_SEED: u64 = 1;
const QUERIES: usize = 250;
const SYNC: Duration = Duration::from_secs(20);

/// Known open difference classes: (parts that must all occur in the class, issue, why). Keep it
/// tight; the summary prints the count of each.
const ALLOWED: &[(&[&str], &str, &str)] = &[(
    &["[kubeadm", "letter case"],
    "issue 12 (cache plugin, not lookup)",
    "a cache hit in CoreDNS keeps the owner-name letter case of the query that filled the \
         entry; ours rewrites owner names to the current query's case (only with cache)",
)];

fn coredns_binary() -> PathBuf {
    // Built on first use, once, under a lock shared with every other tier (tests/support/peers.rs).
    peers::ensure(peers::Peer::CoreDns).unwrap_or_else(|e| panic!("{e}"))
}

/// A DNS server child under a `sh` guard that kills it when the guard's stdin closes.
struct Server {
    name: String,
    guard: Child,
    stdin: Option<ChildStdin>,
    log: PathBuf,
    addr: SocketAddr,
}

impl Server {
    fn spawn(name: &str, bin: &Path, dir: &Path, addr: SocketAddr) -> Server {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap_or_else(|e| panic!("create log: {e}"));
        let err = out.try_clone().unwrap_or_else(|e| panic!("clone log: {e}"));
        let mut guard = Command::new("sh")
            .arg("-c")
            .arg(r#""$@" & pid=$!; read _ignored; kill -KILL "$pid" 2>/dev/null; wait "$pid""#)
            .arg("sh")
            .arg(bin)
            .args(["-conf", "Corefile"])
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let stdin = guard.stdin.take();
        Server {
            name: name.to_owned(),
            guard,
            stdin,
            log,
            addr,
        }
    }

    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(20);
        format!(
            "--- last lines of {} ({}) ---\n{}",
            self.name,
            self.log.display(),
            lines[start..].join("\n")
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"\n");
        }
        let _ = self.guard.wait();
    }
}

/// One option set: the kubernetes block's lines and what follows the block.
struct OptionSet {
    name: String,
    kubernetes: Vec<String>,
    tail: Vec<String>,
    /// TTLs are aged by `cache`: allow one second of skew.
    caches: bool,
}

fn option_sets(cluster: &model::Cluster, upstream: SocketAddr) -> Vec<OptionSet> {
    let set = |name: &str, k: &[&str]| OptionSet {
        name: name.to_owned(),
        kubernetes: k.iter().map(|s| (*s).to_owned()).collect(),
        tail: Vec::new(),
        caches: false,
    };
    let ns: Vec<&str> = cluster
        .namespaces
        .iter()
        .take(2)
        .map(|n| n.name.as_str())
        .collect();
    let mut sets = vec![
        set("pods-insecure", &["pods insecure"]),
        set("pods-disabled", &[]),
        set("pods-verified", &["pods verified"]),
        set(
            "endpoint_pod_names",
            &["pods insecure", "endpoint_pod_names"],
        ),
        set("ignore-empty_service", &["ignore empty_service"]),
        OptionSet {
            name: "namespaces".to_owned(),
            kubernetes: vec![format!("namespaces {}", ns.join(" "))],
            tail: Vec::new(),
            caches: false,
        },
        set("labels", &["labels tier=front"]),
        set("namespace_labels", &["namespace_labels team=blue"]),
        set("noendpoints", &["noendpoints"]),
        set("ttl", &["ttl 17"]),
    ];
    sets.push(OptionSet {
        name: "fallthrough+forward".to_owned(),
        kubernetes: vec!["pods insecure".to_owned(), "fallthrough".to_owned()],
        tail: vec![format!("forward . {upstream}")],
        caches: false,
    });
    sets.push(OptionSet {
        name: "kubeadm".to_owned(),
        kubernetes: vec![
            "pods insecure".to_owned(),
            "fallthrough in-addr.arpa ip6.arpa".to_owned(),
            "ttl 30".to_owned(),
        ],
        tail: vec![
            format!("forward . {upstream} {{\n        max_concurrent 1000\n    }}"),
            "cache 30 {\n        disable success cluster.local\n        disable denial cluster.local\n    }"
                .to_owned(),
            "loop".to_owned(),
            "loadbalance".to_owned(),
        ],
        caches: true,
    });
    sets.push(OptionSet {
        name: "kubeadm-cache-all".to_owned(),
        kubernetes: vec![
            "pods insecure".to_owned(),
            "fallthrough in-addr.arpa ip6.arpa".to_owned(),
            "ttl 30".to_owned(),
        ],
        tail: vec![format!("forward . {upstream}"), "cache 30".to_owned()],
        caches: true,
    });
    sets
}

/// The Corefile both servers run (only the port differs); `source` is the kubernetes block's
/// data source line (`kubeconfig PATH` or `manifests PATH`).
fn corefile(port: u16, set: &OptionSet, source: &str) -> String {
    let mut text = format!(".:{port} {{\n    bind 127.0.0.1\n    errors\n");
    text.push_str("    kubernetes cluster.local in-addr.arpa ip6.arpa {\n");
    let _ = writeln!(text, "        {source}");
    for line in &set.kubernetes {
        let _ = writeln!(text, "        {line}");
    }
    text.push_str("    }\n");
    for line in &set.tail {
        let _ = writeln!(text, "    {line}");
    }
    text.push_str("}\n");
    text
}

fn seeds() -> Vec<u64> {
    let Ok(spec) = std::env::var("DIFF_SEEDS") else {
        return CI_SEEDS.to_vec();
    };
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((a, b)) = part.split_once("..") {
            let (a, b): (u64, u64) = match (a.parse(), b.trim_start_matches('=').parse()) {
                (Ok(a), Ok(b)) => (a, b),
                _ => panic!("DIFF_SEEDS: bad range {part:?}"),
            };
            out.extend(a..=b);
        } else {
            out.push(
                part.parse()
                    .unwrap_or_else(|_| panic!("DIFF_SEEDS: bad seed {part:?}")),
            );
        }
    }
    out
}

/// Polls the sentinel on `server` until it answers one A record.
async fn wait_synced(server: &Server, sentinel: &str) -> Result<(), String> {
    let q = Q {
        name: sentinel.to_owned(),
        qtype: hickory_proto::rr::RecordType::A,
        transport: Transport::Udp,
        kind: "sentinel",
    };
    let deadline = Instant::now() + SYNC;
    loop {
        let raw = query::ask(server.addr, &q, 1).await;
        let seen = compare::decode(raw.as_deref(), true);
        if let Seen::Reply { norm, .. } = &seen
            && norm.rcode == "NOERROR"
            && norm.answer.len() == 1
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} does not answer {sentinel} A within {SYNC:?}; last reply: {}\n{}",
                server.name,
                seen.describe(),
                server.tail()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[derive(Default)]
struct Tally {
    compared: usize,
    same: usize,
    allowed: usize,
    failed: usize,
}

struct Run {
    /// (seed, option set) -> tally
    rows: Vec<(u64, String, Tally)>,
    /// class -> (count, first example)
    classes: BTreeMap<String, (usize, String)>,
    failures: Vec<String>,
}

fn allowed(class: &str) -> Option<&'static str> {
    ALLOWED
        .iter()
        .find(|(parts, _, _)| parts.iter().all(|p| class.contains(p)))
        .map(|(_, issue, _)| *issue)
}

#[allow(clippy::too_many_arguments)]
async fn compare_set(
    run: &mut Run,
    seed: u64,
    set: &OptionSet,
    label: &str,
    queries: &[Q],
    coredns: &Path,
    stack_dir: &Path,
    cluster: &model::Cluster,
    manifests: Option<&Path>,
) {
    let dir = stack_dir.join(format!("diff-{seed}-{label}"));
    let _ = std::fs::remove_dir_all(&dir);
    for side in ["coredns", "clusterdns"] {
        std::fs::create_dir_all(dir.join(side)).unwrap_or_else(|e| panic!("mkdir: {e}"));
    }
    let kubeconfig = format!(
        "kubeconfig {}",
        stack_dir.join("coredns.kubeconfig").display()
    );
    let ours_source = manifests.map_or_else(
        || kubeconfig.clone(),
        |p| format!("manifests {}", p.display()),
    );
    let theirs_port = cluster::free_port(true);
    let ours_port = cluster::free_port(true);
    std::fs::write(
        dir.join("coredns/Corefile"),
        corefile(theirs_port, set, &kubeconfig),
    )
    .unwrap_or_else(|e| panic!("write Corefile: {e}"));
    std::fs::write(
        dir.join("clusterdns/Corefile"),
        corefile(ours_port, set, &ours_source),
    )
    .unwrap_or_else(|e| panic!("write Corefile: {e}"));
    let theirs = Server::spawn(
        "coredns",
        coredns,
        &dir.join("coredns"),
        SocketAddr::from((Ipv4Addr::LOCALHOST, theirs_port)),
    );
    let ours = Server::spawn(
        "clusterdns",
        Path::new(env!("CARGO_BIN_EXE_clusterdns")),
        &dir.join("clusterdns"),
        SocketAddr::from((Ipv4Addr::LOCALHOST, ours_port)),
    );
    let sentinel = match cluster.sentinel() {
        Some(s) => format!("{}.{}.svc.cluster.local.", s.name, s.ns),
        None => panic!("seed {seed}: no sentinel"),
    };
    for server in [&theirs, &ours] {
        if let Err(e) = wait_synced(server, &sentinel).await {
            panic!("seed {seed}, option set {label}: {e}");
        }
    }
    // Each list is one snapshot; give the other kinds' first lists a moment too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let slack = if set.caches { 1 } else { 0 };
    let mut tally = Tally::default();
    // DIFF_TRACE=PATH appends every query with CoreDNS's reply (to see what is compared).
    let mut trace = std::env::var_os("DIFF_TRACE").and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    });
    for (i, q) in queries.iter().enumerate() {
        let id = u16::try_from(i % 60000).unwrap_or(0) + 100;
        let (a, b) = tokio::join!(query::ask(theirs.addr, q, id), query::ask(ours.addr, q, id));
        let exact = !set.caches;
        let theirs_seen = compare::decode(a.as_deref(), exact);
        let ours_seen = compare::decode(b.as_deref(), exact);
        tally.compared += 1;
        if let Some(trace) = trace.as_mut() {
            let _ = writeln!(
                trace,
                "=== seed {seed} {label}: {q}\n{}",
                theirs_seen.describe()
            );
        }
        let mut fields = compare::differences(&theirs_seen, &ours_seen, slack);
        if compare::truncated_subsets(&theirs_seen, &ours_seen, &fields) {
            // Both truncated, keeping different records: compare the whole answers over TCP,
            // and each truncated reply against its own server's whole answer.
            let whole = Q {
                transport: Transport::Tcp,
                ..q.clone()
            };
            let (a, b) = tokio::join!(
                query::ask(theirs.addr, &whole, id),
                query::ask(ours.addr, &whole, id)
            );
            let theirs_whole = compare::decode(a.as_deref(), exact);
            let ours_whole = compare::decode(b.as_deref(), exact);
            let mut whole_fields = compare::differences(&theirs_whole, &ours_whole, slack);
            if !compare::within(&theirs_seen, &theirs_whole) {
                whole_fields.push("coredns truncated reply not within its TCP answer");
            }
            if !compare::within(&ours_seen, &ours_whole) {
                whole_fields.push("our truncated reply not within our TCP answer");
            }
            fields = whole_fields;
        }
        if fields.is_empty() {
            tally.same += 1;
            continue;
        }
        let class = format!(
            "[{}] {}",
            set.name,
            compare::class(q, &fields, &theirs_seen, &ours_seen)
        );
        let report = format!(
            "seed {seed}, option set {label}: {q}\n differs in {}\n class: {class}\n coredns: {}\n ours: {}",
            fields.join(", "),
            theirs_seen.describe(),
            ours_seen.describe()
        );
        let entry = run
            .classes
            .entry(class.clone())
            .or_insert((0, report.clone()));
        entry.0 += 1;
        if allowed(&class).is_some() {
            tally.allowed += 1;
        } else {
            tally.failed += 1;
            run.failures.push(report);
        }
    }
    drop(ours);
    drop(theirs);
    run.rows.push((seed, label.to_owned(), tally));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusterdns_answers_like_coredns() {
    let started = Instant::now();
    let coredns = coredns_binary();
    let stack = match cluster::Stack::start("differential").await {
        Ok(s) => s,
        Err(e) => panic!("the e2e stack does not start: {e}"),
    };
    let client = stack.admin().await;
    let up = upstream::Upstream::start(upstream::Mode::Normal).await;
    let count = std::env::var("DIFF_QUERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(QUERIES);
    let mut run = Run {
        rows: Vec::new(),
        classes: BTreeMap::new(),
        failures: Vec::new(),
    };
    for seed in seeds() {
        let mut cluster = model::generate(seed);
        if let Err(e) = model::apply(&client, &mut cluster).await {
            panic!("seed {seed}: {e}");
        }
        let queries = query::generate(seed, &cluster, count);
        for set in option_sets(&cluster, up.addr) {
            let label = set.name.clone();
            compare_set(
                &mut run, seed, &set, &label, &queries, &coredns, &stack.dir, &cluster, None,
            )
            .await;
        }
        if seed == MANIFESTS_SEED {
            let yaml = match model::export_yaml(&client, &cluster).await {
                Ok(y) => y,
                Err(e) => panic!("seed {seed}: export manifests: {e}"),
            };
            let path = stack.dir.join(format!("manifests-{seed}.yaml"));
            std::fs::write(&path, yaml).unwrap_or_else(|e| panic!("write manifests: {e}"));
            for set in option_sets(&cluster, up.addr)
                .into_iter()
                .filter(|s| s.name == "pods-verified" || s.name == "kubeadm")
            {
                let label = format!("{}+manifests", set.name);
                compare_set(
                    &mut run,
                    seed,
                    &set,
                    &label,
                    &queries,
                    &coredns,
                    &stack.dir,
                    &cluster,
                    Some(&path),
                )
                .await;
            }
        }
    }

    let mut summary = String::from("\n=== differential summary ===\n");
    let mut total = Tally::default();
    for (seed, label, t) in &run.rows {
        let _ = writeln!(
            summary,
            "seed {seed:>3} {label:<28} compared {:>5} same {:>5} allowed {:>4} failed {:>4}",
            t.compared, t.same, t.allowed, t.failed
        );
        total.compared += t.compared;
        total.same += t.same;
        total.allowed += t.allowed;
        total.failed += t.failed;
    }
    let _ = writeln!(
        summary,
        "total: compared {} same {} ({:.2} %) allowed {} failed {} in {:.0} s",
        total.compared,
        total.same,
        100.0 * total.same as f64 / total.compared.max(1) as f64,
        total.allowed,
        total.failed,
        started.elapsed().as_secs_f64()
    );
    let _ = writeln!(summary, "difference classes (count, allowed by):");
    for (class, (n, _)) in &run.classes {
        let _ = writeln!(
            summary,
            "  {n:>5}  {class}  [{}]",
            allowed(class).unwrap_or("NOT ALLOWED")
        );
    }
    let _ = writeln!(summary, "first example of each class:");
    for (class, (_, example)) in &run.classes {
        let _ = writeln!(summary, "--- {class}\n{example}");
    }
    println!("{summary}");
    if let Ok(path) = std::env::var("DIFF_REPORT") {
        let _ = std::fs::write(path, &summary);
    }
    drop(up);
    assert!(
        run.failures.is_empty(),
        "{} replies differ from CoreDNS outside the allow-list (summary above); first:\n{}",
        run.failures.len(),
        run.failures.first().map_or("", String::as_str)
    );
}
