//! `reload` end to end: the real binary re-reads its Corefile while a client keeps querying; a
//! valid edit takes effect, an invalid one is logged with its location and the old configuration
//! keeps answering, a changed port is rebound; no query fails. In-process: the failure counter,
//! the kubernetes index kept across a reload, SIGUSR1.

#[path = "support/binary.rs"]
mod binary;
mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use binary::{LIMIT, Proc, free_port, write_corefile};
use clusterdns::lifecycle::{ReloadOutcome, Reloader};
use common::{Opts, build, udp_raw};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

const NAME: &str = "web.ns.svc.cluster.local.";

fn cluster(ip: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: ns\nspec:\n  clusterIP: {ip}\n  clusterIPs: [{ip}]\n  ports:\n    - name: p\n      port: 80\n"
    )
}

/// A kubernetes block on `port` (0: any) with answer TTL `ttl`, plus `extra` lines.
fn corefile(port: u16, ttl: u32, extra: &str) -> String {
    format!(
        "cluster.local:{port} {{\n    bind 127.0.0.1\n    reload 2s 1s\n{extra}    kubernetes cluster.local {{\n        manifests cluster.yaml\n        ttl {ttl}\n    }}\n}}\n"
    )
}

/// The TTL and address of the answer for [`NAME`], or `None` if no NOERROR answer came.
async fn answer(addr: SocketAddr, wait: Duration) -> Option<(u32, String)> {
    let bytes = udp_raw(addr, &build(NAME, RecordType::A, &Opts::default()), wait).await?;
    let msg = Message::from_vec(&bytes).ok()?;
    if msg.metadata.response_code != ResponseCode::NoError {
        return None;
    }
    msg.answers.iter().find_map(|r| match &r.data {
        RData::A(a) => Some((r.ttl, a.0.to_string())),
        _ => None,
    })
}

/// Queries `addr` in a loop until stopped; counts answers and failures.
struct Client {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Client {
    fn start(addr: SocketAddr) -> Client {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let (s, o, f) = (stop.clone(), ok.clone(), failed.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Acquire) {
                match answer(addr, common::TIMEOUT).await {
                    Some(_) => o.fetch_add(1, Ordering::AcqRel),
                    None => f.fetch_add(1, Ordering::AcqRel),
                };
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        Client {
            stop,
            ok,
            failed,
            task,
        }
    }

    /// Stops the client; (answered, failed).
    async fn finish(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Release);
        self.task.await.expect("client task");
        (
            self.ok.load(Ordering::Acquire),
            self.failed.load(Ordering::Acquire),
        )
    }
}

/// Polls until the answer at `addr` satisfies `pred`.
async fn until_answer(addr: SocketAddr, pred: impl Fn(Option<(u32, String)>) -> bool, what: &str) {
    let start = Instant::now();
    loop {
        if pred(answer(addr, Duration::from_millis(500)).await) {
            return;
        }
        assert!(start.elapsed() < LIMIT, "no {what} within {LIMIT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_edits_keeps_old_config_on_error_and_drops_no_query() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::write_file(dir.path(), "cluster.yaml", &cluster("10.0.0.1"));
    write_corefile(dir.path(), &corefile(0, 5, ""));
    let mut proc = Proc::start(dir.path());
    let addr = SocketAddr::from(([127, 0, 0, 1], proc.first_port()));
    assert_eq!(
        answer(addr, common::TIMEOUT).await,
        Some((5, "10.0.0.1".to_owned()))
    );
    let client = Client::start(addr);

    // A valid edit, written in place: the new TTL is served, from the same listener.
    std::fs::write(dir.path().join("Corefile"), corefile(0, 7, "")).expect("edit Corefile");
    until_answer(addr, |a| a.is_some_and(|(ttl, _)| ttl == 7), "TTL 7").await;
    proc.wait_for(
        |l| l.contains("[INFO] Reloading complete"),
        "Reloading complete",
    );
    // TCP reads the same swapped configuration.
    let tcp = common::query_tcp(addr, NAME, RecordType::A, &Opts::default()).await;
    assert_eq!(tcp.answers.first().map(|r| r.ttl), Some(7));

    // An invalid edit: logged with file:line:column, the old configuration keeps answering.
    std::fs::write(dir.path().join("Corefile"), corefile(0, 9, "    bogus\n"))
        .expect("edit Corefile");
    let line = proc.wait_for(
        |l| l.contains("Unknown directive 'bogus'"),
        "the reload error",
    );
    assert!(
        line.starts_with("[ERROR] Corefile changed but reload failed: Corefile:4:5: "),
        "{line}"
    );
    for _ in 0..20 {
        assert_eq!(
            answer(addr, common::TIMEOUT).await,
            Some((7, "10.0.0.1".to_owned()))
        );
    }

    // Fixed again: reloads.
    std::fs::write(dir.path().join("Corefile"), corefile(0, 11, "")).expect("edit Corefile");
    until_answer(addr, |a| a.is_some_and(|(ttl, _)| ttl == 11), "TTL 11").await;

    let (ok, failed) = client.finish().await;
    assert_eq!(failed, 0, "{failed} queries failed, {ok} answered");
    assert!(ok > 0);
    // The bad Corefile was reported once, not once per check.
    assert_eq!(proc.count(|l| l.contains("Unknown directive 'bogus'")), 1);
    proc.signal("TERM");
    assert_eq!(proc.wait_exit(), Some(0), "{}", proc.output());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_rebinds_a_changed_port() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::write_file(dir.path(), "cluster.yaml", &cluster("10.0.0.1"));
    let (first, second) = (free_port(), free_port());
    write_corefile(dir.path(), &corefile(first, 5, ""));
    let mut proc = Proc::start(dir.path());
    let old = SocketAddr::from(([127, 0, 0, 1], first));
    let new = SocketAddr::from(([127, 0, 0, 1], second));
    assert!(answer(old, common::TIMEOUT).await.is_some());
    let client = Client::start(old);

    // The same block on another port: the new port answers, the old one stops.
    write_corefile(dir.path(), &corefile(second, 5, ""));
    until_answer(new, |a| a.is_some(), "answer on the new port").await;
    until_answer(old, |a| a.is_none(), "silence on the old port").await;
    let (ok, _) = client.finish().await;
    assert!(ok > 0);
    assert!(
        common::tcp_raw(
            old,
            &build(NAME, RecordType::A, &Opts::default()),
            Duration::from_millis(500)
        )
        .await
        .is_none(),
        "the old TCP listener is closed"
    );
    proc.wait_for(
        |l| l.contains("stopped listening on addresses no longer configured"),
        "the retired listener log",
    );
    proc.signal("TERM");
    assert_eq!(proc.wait_exit(), Some(0), "{}", proc.output());
}

fn failed_total() -> u64 {
    clusterdns::metrics::render()
        .lines()
        .find_map(|l| l.strip_prefix("coredns_reload_failed_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("coredns_reload_failed_total is exported")
}

#[tokio::test]
async fn failed_reload_counts_and_kubernetes_index_survives_a_reload() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::write_file(dir.path(), "cluster.yaml", &cluster("10.0.0.1"));
    write_corefile(dir.path(), &corefile(0, 5, ""));
    let mut reloader = Reloader::new(dir.path().join("Corefile"), 0)
        .bind_unbound_to(&[IpAddr::V4(Ipv4Addr::LOCALHOST)]);
    let config = reloader.load().expect("valid Corefile");
    let mut running = clusterdns::start(config).await.expect("start");
    let addr = running.addrs()[0];
    assert!(answer(addr, common::TIMEOUT).await.is_some());
    let text = clusterdns::metrics::render();
    assert!(
        text.contains("coredns_reload_version_info{hash=\"sha512\",value=\""),
        "{text}"
    );

    // Unchanged: nothing happens.
    assert!(matches!(
        reloader.check(&mut running, false).await,
        ReloadOutcome::Unchanged
    ));

    // Invalid: counted once, old configuration kept.
    let before = failed_total();
    write_corefile(dir.path(), &corefile(0, 5, "    reload 1s\n"));
    match reloader.check(&mut running, false).await {
        ReloadOutcome::Failed(e) => {
            let msg = e.to_string();
            assert!(
                msg.ends_with(
                    "/Corefile:4:5: plugin/reload: this plugin can only be used once per Server Block"
                ),
                "{msg}"
            );
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(failed_total(), before + 1);
    assert!(matches!(
        reloader.check(&mut running, false).await,
        ReloadOutcome::Unchanged
    ));
    assert_eq!(failed_total(), before + 1);
    assert_eq!(
        answer(addr, common::TIMEOUT).await,
        Some((5, "10.0.0.1".to_owned()))
    );

    // The manifests turn invalid: a new kubernetes block could not load them, but the
    // unchanged block of the reloaded Corefile keeps its index and its answers.
    common::write_file(dir.path(), "cluster.yaml", "kind: Service\nmetadata: [\n");
    write_corefile(dir.path(), &corefile(0, 8, ""));
    assert!(matches!(
        reloader.check(&mut running, false).await,
        ReloadOutcome::Reloaded
    ));
    assert_eq!(
        answer(addr, common::TIMEOUT).await,
        Some((8, "10.0.0.1".to_owned()))
    );

    // A changed data source is a new index: here it cannot load, so the reload fails.
    write_corefile(
        dir.path(),
        &corefile(0, 8, "").replace("cluster.yaml", "other.yaml"),
    );
    assert!(matches!(
        reloader.check(&mut running, false).await,
        ReloadOutcome::Failed(_)
    ));
    assert_eq!(
        answer(addr, common::TIMEOUT).await,
        Some((8, "10.0.0.1".to_owned()))
    );

    // Forced (SIGUSR1) with an unchanged file: reapplied.
    common::write_file(dir.path(), "cluster.yaml", &cluster("10.0.0.1"));
    write_corefile(dir.path(), &corefile(0, 8, ""));
    assert!(matches!(
        reloader.check(&mut running, true).await,
        ReloadOutcome::Reloaded
    ));
    assert!(matches!(
        reloader.check(&mut running, true).await,
        ReloadOutcome::Reloaded
    ));
    assert_eq!(running.addrs(), vec![addr], "the listener is kept");
    assert_eq!(
        answer(addr, common::TIMEOUT).await,
        Some((8, "10.0.0.1".to_owned()))
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigusr1_reloads_without_the_reload_directive() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::write_file(dir.path(), "cluster.yaml", &cluster("10.0.0.1"));
    let text = |ttl| corefile(0, ttl, "").replace("    reload 2s 1s\n", "");
    write_corefile(dir.path(), &text(5));
    let mut proc = Proc::start(dir.path());
    let addr = SocketAddr::from(([127, 0, 0, 1], proc.first_port()));
    write_corefile(dir.path(), &text(6));
    proc.signal("USR1");
    until_answer(
        addr,
        |a| a.is_some_and(|(ttl, _)| ttl == 6),
        "TTL 6 after SIGUSR1",
    )
    .await;
    proc.signal("INT");
    assert_eq!(proc.wait_exit(), Some(0), "{}", proc.output());
}

/// `coredns_reload_failed_total` as the running binary's /metrics shows it.
async fn failed_total_of(metrics: SocketAddr) -> u64 {
    let (status, text) = common::http_get(metrics, "/metrics").await;
    assert_eq!(status, 200, "{text}");
    text.lines()
        .find_map(|l| l.strip_prefix("coredns_reload_failed_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no coredns_reload_failed_total in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_of_a_corefile_replaced_by_garbage_keeps_serving_and_counts_each_failure() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::write_file(dir.path(), "cluster.yaml", &cluster("10.0.0.1"));
    let metrics_port = free_port();
    let extra = format!("    prometheus 127.0.0.1:{metrics_port}\n");
    let good = corefile(0, 5, &extra);
    write_corefile(dir.path(), &good);
    let mut proc = Proc::start(dir.path());
    let addr = SocketAddr::from(([127, 0, 0, 1], proc.first_port()));
    let metrics = SocketAddr::from(([127, 0, 0, 1], metrics_port));
    assert_eq!(
        answer(addr, common::TIMEOUT).await,
        Some((5, "10.0.0.1".to_owned()))
    );
    assert_eq!(failed_total_of(metrics).await, 0);
    let client = Client::start(addr);

    let mut binary: Vec<u8> = (0..4096u32)
        .map(|i| u8::try_from(i.wrapping_mul(2_654_435_761) >> 24).unwrap_or(0))
        .collect();
    binary[100] = 0;
    binary[101] = 0xff;
    let garbage: Vec<(&str, Vec<u8>)> = vec![
        ("bytes that are not UTF-8", binary),
        (
            "unbalanced braces",
            b"}}} cluster.local:0 {{ {\n    bind 127.0.0.1\n    kubernetes {\n".to_vec(),
        ),
        (
            "half a Corefile (written without rename)",
            good.as_bytes()[..good.len() / 2].to_vec(),
        ),
        ("100,000 nested blocks", {
            let mut text = b". {\n    errors ".to_vec();
            text.extend(std::iter::repeat_n(b'{', 100_000));
            text.extend(std::iter::repeat_n(b'}', 100_000));
            text.extend_from_slice(b"\n}\n");
            text
        }),
        ("a 3 MB line", {
            let mut text = b". {\n    errors ".to_vec();
            text.extend(std::iter::repeat_n(b'x', 3 << 20));
            text.extend_from_slice(b"\n}\n");
            text
        }),
    ];
    for (round, (what, bytes)) in garbage.iter().enumerate() {
        std::fs::write(dir.path().join("Corefile"), bytes).expect("write garbage");
        let failures = round + 1;
        let start = Instant::now();
        while proc.count(|l| l.contains("Corefile changed but reload failed")) < failures {
            assert!(
                proc.exited().is_none(),
                "{what}: clusterdns exited; output:\n{}",
                proc.output()
            );
            assert!(
                start.elapsed() < LIMIT,
                "{what}: no reload failure logged within {LIMIT:?}; output:\n{}",
                proc.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The old configuration keeps answering, and the metric counts this failure once.
        assert_eq!(
            answer(addr, common::TIMEOUT).await,
            Some((5, "10.0.0.1".to_owned())),
            "{what}"
        );
        assert_eq!(failed_total_of(metrics).await, failures as u64, "{what}");
    }
    // Left in place, the garbage is not retried (nor counted) at every check.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(failed_total_of(metrics).await, garbage.len() as u64);

    // A good Corefile again: reloaded.
    write_corefile(dir.path(), &corefile(0, 9, &extra));
    until_answer(addr, |a| a.is_some_and(|(ttl, _)| ttl == 9), "TTL 9").await;
    assert_eq!(failed_total_of(metrics).await, garbage.len() as u64);
    let (ok, failed) = client.finish().await;
    assert_eq!(failed, 0, "{failed} queries failed, {ok} answered");
    proc.signal("TERM");
    assert_eq!(proc.wait_exit(), Some(0), "{}", proc.output());
}
