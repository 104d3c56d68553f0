//! Fault injection: the real clusterdns binary (a child process, so its descriptors and resident
//! memory are its own, read from /proc) against a fake Kubernetes API that stops, closes and
//! stalls its watches, hangs after the headers, answers garbage, 502s and 410 Gone in a loop; and
//! against upstreams flooded with unique names. In each: the process survives, answers what it
//! knew (the last good index) without a wrong rcode, recovers when the fault ends, and its
//! descriptor count and RSS stay under fixed bounds over repeated faults.
//!
//! The upstream faults that need no flood (every upstream silent, garbage, wrong id, flapping)
//! are in tests/forward.rs; a Corefile replaced by garbage during reload in tests/reload.rs.

#[path = "support/binary.rs"]
mod binary;
mod common;
mod fake_apiserver;

use std::collections::HashMap;
use std::io::BufRead as _;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::net::UdpSocket;

use binary::free_port;
use common::upstream::{Datagram, Mode, Scripted, Upstream, reply_to};
use fake_apiserver::{FakeApi, Fault, Res, headless, namespace, service, slice};

/// How long a test waits for the server to start or to reflect a change: the watcher's backoff
/// grows to 30 s (plus jitter) over repeated failures.
const DEADLINE: Duration = Duration::from_secs(60);
/// Descriptors the process may gain over its settled count across repeated faults: a few
/// connections in flight to the API, never one per fault.
const FD_SLACK: usize = 12;
/// Resident memory it may gain over its settled size across repeated faults (KiB). Far less than
/// what one leaked copy of the index or of a response per fault would add up to.
const RSS_SLACK_KIB: u64 = 48 * 1024;
const ALL: [Res; 3] = [Res::Services, Res::EndpointSlices, Res::Namespaces];

// ----- the server process -----

/// clusterdns as a child process, started from Corefile text in a temporary directory.
struct Server {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    dns: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts `corefile` (its DNS block on `port`); with `nofile`, under that open-file limit.
    fn start(corefile: &str, port: u16, nofile: Option<u32>) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        binary::write_corefile(dir.path(), corefile);
        let bin = env!("CARGO_BIN_EXE_clusterdns");
        let mut command = match nofile {
            Some(n) => {
                let mut c = Command::new("bash");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" -conf Corefile"))
                    .arg(bin);
                c
            }
            None => {
                let mut c = Command::new(bin);
                c.args(["-conf", "Corefile"]);
                c
            }
        };
        let mut child = command
            .current_dir(dir.path())
            .env("RUST_LOG", "info,hickory_server=warn,hickory_proto=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn clusterdns");
        let stdout = child.stdout.take().expect("stdout piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                sink.lock().expect("lines").push(line);
            }
        });
        Server {
            child,
            lines,
            dns: SocketAddr::from(([127, 0, 0, 1], port)),
            _dir: dir,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Panics (with the output) if the process has exited.
    fn assert_alive(&mut self) {
        if let Some(status) = self.child.try_wait().expect("wait") {
            panic!("clusterdns exited ({status}); output:\n{}", self.output());
        }
    }

    fn output(&self) -> String {
        self.lines.lock().expect("lines").join("\n")
    }

    fn count(&self, needle: &str) -> usize {
        self.lines
            .lock()
            .expect("lines")
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Open descriptors of the process.
    fn fds(&self) -> usize {
        fds(self.pid())
    }

    /// Resident memory of the process, KiB.
    fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }

    /// Samples descriptors and RSS every 10 ms until the returned sampler is finished.
    fn sampler(&self) -> Sampler {
        Sampler::start(self.pid())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// Peaks of descriptors and RSS of a process, sampled on a thread of its own.
struct Sampler {
    stop: Arc<AtomicBool>,
    max_fds: Arc<AtomicUsize>,
    max_rss: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let max_fds = Arc::new(AtomicUsize::new(0));
        let max_rss = Arc::new(AtomicU64::new(0));
        let (s, f, r) = (stop.clone(), max_fds.clone(), max_rss.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Acquire) {
                f.fetch_max(fds(pid), Ordering::AcqRel);
                r.fetch_max(rss_kib(pid), Ordering::AcqRel);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Sampler {
            stop,
            max_fds,
            max_rss,
            thread,
        }
    }

    /// (peak descriptors, peak RSS KiB).
    fn finish(self) -> (usize, u64) {
        self.stop.store(true, Ordering::Release);
        self.thread.join().expect("sampler thread");
        (
            self.max_fds.load(Ordering::Acquire),
            self.max_rss.load(Ordering::Acquire),
        )
    }
}

/// What the process holds once settled, to compare against after the faults.
#[derive(Clone, Copy, Debug)]
struct Baseline {
    fds: usize,
    rss_kib: u64,
}

impl Baseline {
    fn of(server: &Server) -> Baseline {
        Baseline {
            fds: server.fds(),
            rss_kib: server.rss_kib(),
        }
    }

    /// Panics if `fds`/`rss_kib` exceed the baseline by more than the fixed slack.
    fn check(&self, what: &str, fds: usize, rss_kib: u64) {
        eprintln!(
            "{what}: {fds} descriptors (settled {}), RSS {rss_kib} KiB (settled {} KiB)",
            self.fds, self.rss_kib
        );
        assert!(
            fds <= self.fds + FD_SLACK,
            "{what}: {fds} descriptors open, settled at {} (+{FD_SLACK} allowed)",
            self.fds
        );
        assert!(
            rss_kib <= self.rss_kib + RSS_SLACK_KIB,
            "{what}: RSS {rss_kib} KiB, settled at {} KiB (+{RSS_SLACK_KIB} KiB allowed)",
            self.rss_kib
        );
    }
}

// ----- DNS -----

/// One UDP query; the reply, or `None` after `wait`.
async fn ask(addr: SocketAddr, name: &str, qtype: RecordType, wait: Duration) -> Option<Message> {
    let bytes = common::build(name, qtype, &common::Opts::default());
    let reply = common::udp_raw(addr, &bytes, wait).await?;
    Message::from_vec(&reply).ok()
}

/// The record data of an answer section as sorted text.
fn rdata(msg: &Message) -> Vec<String> {
    let mut out: Vec<String> = msg
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            RData::PTR(p) => Some(p.0.to_string()),
            RData::SRV(s) => Some(format!("{} {}", s.port, s.target)),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

/// A question and the one reply it must get.
#[derive(Clone, Debug)]
struct Expect {
    name: String,
    qtype: RecordType,
    rcode: ResponseCode,
    answers: Vec<String>,
}

fn expect(name: &str, qtype: RecordType, rcode: ResponseCode, answers: &[&str]) -> Expect {
    Expect {
        name: name.to_owned(),
        qtype,
        rcode,
        answers: answers.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// What the reply to `e` was, if not the expected one.
async fn mismatch(addr: SocketAddr, e: &Expect) -> Option<String> {
    match ask(addr, &e.name, e.qtype, common::TIMEOUT).await {
        None => Some(format!("{} {}: no reply", e.name, e.qtype)),
        Some(msg) => {
            let got = rdata(&msg);
            (msg.metadata.response_code != e.rcode || got != e.answers).then(|| {
                format!(
                    "{} {}: {} {got:?}, wanted {} {:?}",
                    e.name, e.qtype, msg.metadata.response_code, e.rcode, e.answers
                )
            })
        }
    }
}

/// Clients asking `expects` over and over until stopped, recording every wrong or missing reply.
struct Prober {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    bad: Arc<Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Prober {
    fn start(addr: SocketAddr, expects: Vec<Expect>, clients: usize) -> Prober {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let bad = Arc::new(Mutex::new(Vec::new()));
        let expects = Arc::new(expects);
        let tasks = (0..clients)
            .map(|c| {
                let (stop, ok, bad, expects) =
                    (stop.clone(), ok.clone(), bad.clone(), expects.clone());
                tokio::spawn(async move {
                    let mut i = c;
                    while !stop.load(Ordering::Acquire) {
                        let e = &expects[i % expects.len()];
                        i += 1;
                        match mismatch(addr, e).await {
                            None => ok.fetch_add(1, Ordering::AcqRel),
                            Some(what) => {
                                bad.lock().expect("bad").push(what);
                                0
                            }
                        };
                        if clients == 1 {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                })
            })
            .collect();
        Prober {
            stop,
            ok,
            bad,
            tasks,
        }
    }

    /// Stops the clients; panics if any reply was wrong or missing; the number of good replies.
    async fn finish(self, what: &str) -> u64 {
        self.stop.store(true, Ordering::Release);
        for task in self.tasks {
            task.await.expect("prober task");
        }
        let ok = self.ok.load(Ordering::Acquire);
        let bad = self.bad.lock().expect("bad").clone();
        assert!(
            bad.is_empty(),
            "{what}: {} wrong or missing replies ({ok} right), first: {:?}",
            bad.len(),
            &bad[..bad.len().min(10)]
        );
        assert!(ok > 0, "{what}: no reply at all");
        ok
    }
}

/// Polls until `e` gets its reply; panics with the last one after [`DEADLINE`].
async fn wait_for(server: &mut Server, e: &Expect) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let Some(why) = mismatch(server.dns, e).await else {
            return;
        };
        server.assert_alive();
        assert!(
            Instant::now() < deadline,
            "not within {DEADLINE:?}: {why}\n{}",
            server.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until `cond` holds; panics naming `what` after [`DEADLINE`].
async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ----- the cluster behind the fake API -----

const A: &str = "a.ns.svc.cluster.local.";
const H: &str = "h.ns.svc.cluster.local.";
const MOVING: &str = "moving.ns.svc.cluster.local.";

/// Namespace ns: ClusterIP a (10.96.0.1, one endpoint), headless h (two endpoints), and
/// `moving` at 10.96.9.`octet`, the service the tests change.
fn populate(api: &FakeApi, octet: u8) {
    api.apply(Res::Namespaces, namespace("ns"));
    api.apply(
        Res::Services,
        service("ns", "a", "10.96.0.1", &[("http", "TCP", 80)]),
    );
    api.apply(Res::EndpointSlices, slice("ns", "a-1", "a", &["10.1.0.1"]));
    api.apply(Res::Services, headless("ns", "h"));
    api.apply(
        Res::EndpointSlices,
        slice("ns", "h-1", "h", &["10.1.1.1", "10.1.1.2"]),
    );
    api.apply(Res::Services, moving(octet));
}

fn moving(octet: u8) -> serde_json::Value {
    service(
        "ns",
        "moving",
        &format!("10.96.9.{octet}"),
        &[("http", "TCP", 80)],
    )
}

fn moving_at(octet: u8) -> Expect {
    let ip = format!("10.96.9.{octet}");
    expect(MOVING, RecordType::A, ResponseCode::NoError, &[&ip])
}

/// The answers that must never change while the API misbehaves: names that exist (A, SRV, PTR,
/// headless endpoints) and names that do not (NXDOMAIN, since the index is synced).
fn steady() -> Vec<Expect> {
    vec![
        expect(A, RecordType::A, ResponseCode::NoError, &["10.96.0.1"]),
        expect(
            H,
            RecordType::A,
            ResponseCode::NoError,
            &["10.1.1.1", "10.1.1.2"],
        ),
        expect(
            "_http._tcp.a.ns.svc.cluster.local.",
            RecordType::SRV,
            ResponseCode::NoError,
            &["80 a.ns.svc.cluster.local."],
        ),
        expect(
            "1.0.96.10.in-addr.arpa.",
            RecordType::PTR,
            ResponseCode::NoError,
            &[A],
        ),
        expect(
            "nope.ns.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NXDomain,
            &[],
        ),
        expect(
            "a.ns.svc.cluster.local.ns.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NXDomain,
            &[],
        ),
    ]
}

/// clusterdns on a free port watching `api`, answering once it has listed.
async fn start_on(api: &FakeApi) -> Server {
    let port = free_port();
    let corefile = format!(
        ".:{port} {{\n    bind 127.0.0.1\n    kubernetes cluster.local in-addr.arpa {{\n        endpoint {}\n    }}\n}}\n",
        api.url()
    );
    let mut server = Server::start(&corefile, port, None);
    wait_for(&mut server, &steady()[0]).await;
    server
}

/// Waits until every watched kind has a watch open.
async fn watches_open(api: &FakeApi) {
    until("every kind watched", || {
        ALL.iter().all(|r| api.watchers(*r) > 0)
    })
    .await;
}

// ----- the API server's faults -----

/// Changes the endpoints of headless service `tick` every 300 ms until stopped, as a live
/// cluster's endpoints keep changing (each event also resets the slice watch's backoff).
fn ticker(api: &FakeApi) -> (Arc<AtomicBool>, tokio::task::JoinHandle<()>) {
    api.apply(Res::Services, headless("ns", "tick"));
    let api = api.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let task = tokio::spawn(async move {
        let mut i = 0u32;
        while !s.load(Ordering::Acquire) {
            i += 1;
            let ip = format!("10.1.9.{}", i % 250 + 1);
            api.apply(Res::EndpointSlices, slice("ns", "tick-1", "tick", &[&ip]));
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    (stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_stopping_again_and_again_keeps_the_last_good_answers() {
    let api = FakeApi::start().await;
    populate(&api, 0);
    api.apply(Res::Services, headless("ns", "hmoving"));
    api.apply(
        Res::EndpointSlices,
        slice("ns", "hmoving-1", "hmoving", &["10.1.8.100"]),
    );
    let mut server = start_on(&api).await;
    watches_open(&api).await;
    let tick = ticker(&api);
    let mut baseline = None;
    for round in 1..=6u8 {
        let prober = Prober::start(server.dns, steady(), 1);
        api.stop();
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Changed while the server is away: no watch can tell, answers stay the last good ones.
        api.apply(Res::Services, moving(round));
        let ip = format!("10.1.8.{round}");
        api.apply(
            Res::EndpointSlices,
            slice("ns", "hmoving-1", "hmoving", &[&ip]),
        );
        let stale = mismatch(server.dns, &moving_at(round - 1)).await;
        assert_eq!(stale, None, "round {round}: while the API is down");
        api.restart().await;
        // Back: the watches resume from their resourceVersion and replay the changes.
        wait_for(&mut server, &moving_at(round)).await;
        let e = expect(
            "hmoving.ns.svc.cluster.local.",
            RecordType::A,
            ResponseCode::NoError,
            &[&ip],
        );
        wait_for(&mut server, &e).await;
        prober.finish(&format!("round {round}")).await;
        server.assert_alive();
        match baseline {
            // Settled after two outages (connection pools, backoff timers allocated).
            None if round == 2 => baseline = Some(Baseline::of(&server)),
            None => {}
            Some(b) => b.check(
                &format!("after outage {round}"),
                server.fds(),
                server.rss_kib(),
            ),
        }
    }
    tick.0.store(true, Ordering::Release);
    tick.1.await.expect("ticker");
    // The quiet namespace watch resumes too (its backoff may have reached its 30 s ceiling,
    // since no event came to reset it).
    api.apply(Res::Namespaces, namespace("late"));
    api.apply(
        Res::Services,
        service("late", "x", "10.96.6.1", &[("http", "TCP", 80)]),
    );
    let e = expect(
        "x.late.svc.cluster.local.",
        RecordType::A,
        ResponseCode::NoError,
        &["10.96.6.1"],
    );
    wait_for(&mut server, &e).await;
    assert!(server.count("Kubernetes API watch failed") >= 1);
    assert!(server.count("Kubernetes API watch restored") >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_watches_closed_mid_stream_lose_no_change() {
    let api = FakeApi::start().await;
    populate(&api, 0);
    let mut server = start_on(&api).await;
    let prober = Prober::start(server.dns, steady(), 1);
    for round in 1..=20u8 {
        watches_open(&api).await;
        // Changes, and every watch ends right behind them: resumed from the last
        // resourceVersion seen, each change arrives, whether it was read before the close or
        // is replayed after it.
        api.apply(Res::Services, moving(round));
        api.apply(
            Res::Services,
            service(
                "ns",
                &format!("c{round}"),
                &format!("10.96.8.{round}"),
                &[("http", "TCP", 80)],
            ),
        );
        api.close_watches();
    }
    wait_for(&mut server, &moving_at(20)).await;
    for round in 1..=20u8 {
        let ip = format!("10.96.8.{round}");
        let e = expect(
            &format!("c{round}.ns.svc.cluster.local."),
            RecordType::A,
            ResponseCode::NoError,
            &[&ip],
        );
        wait_for(&mut server, &e).await;
    }
    prober.finish("watches closed mid-stream").await;
    server.assert_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_hanging_after_the_headers_keeps_answers_and_recovers() {
    let api = FakeApi::start().await;
    populate(&api, 0);
    let mut server = start_on(&api).await;
    watches_open(&api).await;
    let baseline = Baseline::of(&server);
    let prober = Prober::start(server.dns, steady(), 2);
    let sampler = server.sampler();

    // 1. Every open watch stops mid-line and hangs; a change goes unseen meanwhile.
    for res in ALL {
        api.stall_watches(res);
    }
    api.apply(Res::Services, moving(1));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(api.hanging(), 3, "the client holds the stalled watches");
    assert_eq!(mismatch(server.dns, &moving_at(0)).await, None);

    // 2. The stalled watches end there; every new watch says 410, and every relist hangs
    //    after the headers and the start of its list.
    let lists = api.lists(Res::Services);
    api.fault_lists(&ALL, Some(Fault::Hang));
    api.fault_watches(&ALL, Some(Fault::Gone));
    api.release_hangs();
    until("a relist of every kind hanging", || {
        api.lists(Res::Services) > lists && api.hanging() >= 3
    })
    .await;
    api.apply_silently(Res::Services, moving(2));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mismatch(server.dns, &moving_at(0)).await, None);
    server.assert_alive();

    // 3. The API answers again: the hung lists end cut off, the retry lists in full.
    api.fault_lists(&ALL, None);
    api.fault_watches(&ALL, None);
    api.release_hangs();
    wait_for(&mut server, &moving_at(2)).await;
    prober.finish("API hanging").await;
    let (max_fds, max_rss) = sampler.finish();
    baseline.check("while the API hung", max_fds, max_rss);
    watches_open(&api).await;
    api.apply(Res::Services, moving(3));
    wait_for(&mut server, &moving_at(3)).await;
    server.assert_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_garbage_bad_gateway_and_gone_lists_in_a_loop_keep_answers() {
    let api = FakeApi::start().await;
    populate(&api, 0);
    let mut server = start_on(&api).await;
    watches_open(&api).await;
    let baseline = Baseline::of(&server);
    let sampler = server.sampler();
    let mut octet = 0;
    for fault in [Fault::Garbage, Fault::BadGateway, Fault::Gone] {
        let prober = Prober::start(server.dns, steady(), 1);
        // Every list and watch fails so; the open watches are told 410, so every kind relists
        // into the fault, and retries with backoff.
        let lists = api.lists(Res::Services);
        api.fault_lists(&ALL, Some(fault));
        api.fault_watches(&ALL, Some(fault));
        api.expire_watches();
        octet += 1;
        api.apply_silently(Res::Services, moving(octet));
        until(&format!("{fault:?}: three failed relists"), || {
            api.lists(Res::Services) >= lists + 3
        })
        .await;
        assert_eq!(
            mismatch(server.dns, &moving_at(octet - 1)).await,
            None,
            "{fault:?}: the last good answer"
        );
        server.assert_alive();
        // Fixed: the next retry lists the change.
        api.fault_lists(&ALL, None);
        api.fault_watches(&ALL, None);
        wait_for(&mut server, &moving_at(octet)).await;
        prober.finish(&format!("{fault:?}")).await;
        watches_open(&api).await;
    }
    let (max_fds, max_rss) = sampler.finish();
    baseline.check("garbage, 502 and 410 loops", max_fds, max_rss);
    server.assert_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_flood_while_410s_force_relist_after_relist_never_flickers() {
    let api = FakeApi::start().await;
    populate(&api, 0);
    // A cluster big enough that every relist rebuilds real work: 1000 services, 200 headless
    // with two endpoints each, in 10 namespaces.
    let mut expects = steady();
    for n in 0..10 {
        api.apply_silently(Res::Namespaces, namespace(&format!("n{n}")));
    }
    for i in 0..1000u32 {
        let ns = format!("n{}", i % 10);
        let name = format!("s{i}");
        if i % 5 == 0 {
            api.apply_silently(Res::Services, headless(&ns, &name));
            let ips = [
                format!("10.2.{}.{}", i / 250, i % 250),
                format!("10.3.{}.{}", i / 250, i % 250),
            ];
            api.apply_silently(
                Res::EndpointSlices,
                slice(&ns, &format!("{name}-1"), &name, &[&ips[0], &ips[1]]),
            );
            if i % 100 == 0 {
                let mut want = ips.to_vec();
                want.sort();
                expects.push(Expect {
                    name: format!("{name}.{ns}.svc.cluster.local."),
                    qtype: RecordType::A,
                    rcode: ResponseCode::NoError,
                    answers: want,
                });
            }
        } else {
            let ip = format!("10.97.{}.{}", i / 250, i % 250);
            api.apply_silently(
                Res::Services,
                service(&ns, &name, &ip, &[("http", "TCP", 80)]),
            );
            if i % 100 == 1 {
                expects.push(expect(
                    &format!("{name}.{ns}.svc.cluster.local."),
                    RecordType::A,
                    ResponseCode::NoError,
                    &[&ip],
                ));
            }
        }
    }
    let mut server = start_on(&api).await;
    watches_open(&api).await;
    let baseline = Baseline::of(&server);
    let sampler = server.sampler();

    // Every watch of every kind ends in 410 Gone at once: relist, watch, 410, relist...
    // Meanwhile one service keeps changing where only a relist sees it, so each relist
    // publishes a new index.
    api.fault_watches(&ALL, Some(Fault::Gone));
    let churn = {
        let api = api.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let task = tokio::spawn(async move {
            let mut i = 0u32;
            while !s.load(Ordering::Acquire) {
                i += 1;
                api.apply_silently(
                    Res::Services,
                    service(
                        "ns",
                        "churn",
                        &format!("10.96.7.{}", i % 250),
                        &[("http", "TCP", 80)],
                    ),
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        (stop, task)
    };
    let flood = Prober::start(server.dns, expects.clone(), 8);
    let lists = api.lists(Res::Services);
    api.expire_watches();
    until("ten relists of services", || {
        api.lists(Res::Services) >= lists + 10
    })
    .await;
    // The churned service was picked up by the relists.
    {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let msg = ask(
                server.dns,
                "churn.ns.svc.cluster.local.",
                RecordType::A,
                common::TIMEOUT,
            )
            .await;
            if msg.is_some_and(|m| m.metadata.response_code == ResponseCode::NoError) {
                break;
            }
            assert!(Instant::now() < deadline, "churn never listed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let answered = flood.finish("query flood during relists").await;
    churn.0.store(true, Ordering::Release);
    churn.1.await.expect("churn task");
    let (max_fds, max_rss) = sampler.finish();
    baseline.check("relist loop", max_fds, max_rss);
    assert!(
        server.count("Kubernetes API relisted") >= 10,
        "{}",
        server.output()
    );
    eprintln!(
        "{answered} queries answered right across {} relists of services",
        api.lists(Res::Services) - lists
    );
    // The watches work again once the 410s stop.
    api.fault_watches(&ALL, None);
    watches_open(&api).await;
    api.apply(Res::Services, moving(5));
    wait_for(&mut server, &moving_at(5)).await;
    server.assert_alive();
}

// ----- upstreams flooded with unique names -----

/// Sends `names` (type A) from one socket, `window` at most unanswered at a time and at most one
/// per `pace` (so no socket buffer overflows: loss would be the kernel's, not the server's), each
/// waited for at most `wait` after it was sent; the count of each rcode, and of lost queries.
async fn flood(
    addr: SocketAddr,
    names: &[String],
    window: usize,
    pace: Duration,
    wait: Duration,
) -> (HashMap<ResponseCode, usize>, usize) {
    let sock = UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind flood socket");
    sock.connect(addr).await.expect("connect");
    let mut pending: HashMap<u16, Instant> = HashMap::new();
    let mut rcodes: HashMap<ResponseCode, usize> = HashMap::new();
    let mut lost = 0;
    let mut next = 0;
    let mut id: u16 = 0;
    let mut buf = vec![0u8; 4096];
    let mut last_sent = Instant::now() - pace;
    while next < names.len() || !pending.is_empty() {
        while next < names.len() && pending.len() < window && last_sent.elapsed() >= pace {
            id = id.wrapping_add(1);
            if pending.contains_key(&id) {
                break;
            }
            let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
            msg.metadata.recursion_desired = true;
            msg.add_query(Query::query(
                Name::from_ascii(&names[next]).expect("flood name"),
                RecordType::A,
            ));
            sock.send(&msg.to_vec().expect("encode"))
                .await
                .expect("send");
            last_sent = Instant::now();
            pending.insert(id, last_sent);
            next += 1;
        }
        let idle = if next < names.len() && pending.len() < window {
            pace.saturating_sub(last_sent.elapsed())
        } else {
            Duration::from_millis(50)
        };
        match tokio::time::timeout(idle, sock.recv(&mut buf)).await {
            Ok(Ok(n)) => {
                if let Ok(reply) = Message::from_vec(&buf[..n])
                    && pending.remove(&reply.metadata.id).is_some()
                {
                    *rcodes.entry(reply.metadata.response_code).or_default() += 1;
                }
            }
            Ok(Err(e)) => panic!("flood socket: {e}"),
            Err(_) => {}
        }
        let before = pending.len();
        pending.retain(|_, sent| sent.elapsed() < wait);
        lost += before - pending.len();
    }
    (rcodes, lost)
}

/// The value of the first sample of `family` whose labels contain every one of `labels`.
fn metric(text: &str, family: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(family) && !l.starts_with('#'))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_of_unique_forwarded_names_keeps_cache_and_descriptors_bounded() {
    // Three upstreams: one answering every name (success cache), one answering NXDOMAIN with
    // an SOA (denial cache), one silent (every query holds a socket until it times out).
    let answering = Scripted::start(Arc::new(|q: &[u8]| {
        reply_to(q, [192, 0, 2, 99])
            .and_then(|m| m.to_vec().ok())
            .map(|b| vec![Datagram::at(Duration::ZERO, b)])
            .unwrap_or_default()
    }))
    .await;
    let denying = Upstream::start(Mode::Normal).await;
    let silent = Upstream::start(Mode::Silent).await;
    let (port, metrics_port) = (free_port(), free_port());
    // Capacity 1024 each (the minimum); open-file limit 256, so the silent upstream may hold
    // 256 / 2 = 128 sockets.
    let corefile = format!(
        ".:{port} {{\n    bind 127.0.0.1\n    prometheus 127.0.0.1:{metrics_port}\n    cache 300 {{\n        success 1024\n        denial 1024\n    }}\n    \
         forward ok.test {} \n    forward slow.test {} {{\n        expire 1s\n        max_fails 0\n    }}\n    forward . {}\n}}\n",
        answering.addr, silent.addr, denying.addr
    );
    const NOFILE: u32 = 256;
    const SOCKET_CAP: usize = NOFILE as usize / 2;
    let mut server = Server::start(&corefile, port, Some(NOFILE));
    let probe = expect(
        "external.test.",
        RecordType::A,
        ResponseCode::NoError,
        &["192.0.2.10"],
    );
    wait_for(&mut server, &probe).await;
    let metrics_addr = SocketAddr::from(([127, 0, 0, 1], metrics_port));
    let baseline = Baseline::of(&server);

    // 1. 12,000 unique names answered (6,000 NOERROR, 6,000 NXDOMAIN): far more than the
    //    caches hold.
    let sampler = server.sampler();
    let names: Vec<String> = (0..12_000)
        .map(|i| {
            if i % 2 == 0 {
                format!("u{i}.ok.test.")
            } else {
                format!("u{i}.test.")
            }
        })
        .collect();
    let (rcodes, lost) = flood(
        server.dns,
        &names,
        64,
        Duration::ZERO,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(lost, 0, "every answered name gets its reply: {rcodes:?}");
    assert_eq!(
        rcodes.get(&ResponseCode::NoError),
        Some(&6000),
        "{rcodes:?}"
    );
    assert_eq!(
        rcodes.get(&ResponseCode::NXDomain),
        Some(&6000),
        "{rcodes:?}"
    );
    let (max_fds, max_rss) = sampler.finish();
    // One socket per query in flight (at most the window) per upstream, reused from the pool.
    assert!(
        max_fds <= baseline.fds + 2 * 64 + FD_SLACK,
        "{max_fds} descriptors open at the peak, settled at {}",
        baseline.fds
    );
    baseline.check("flood of answered unique names", baseline.fds, max_rss);
    server.assert_alive();
    // The caches hold at most their capacity (moka evicts on its housekeeping: settled after
    // a moment).
    let deadline = Instant::now() + DEADLINE;
    let (success, denial) = loop {
        let (_, text) = common::http_get(metrics_addr, "/metrics").await;
        let get = |t: &str| {
            metric(&text, "coredns_cache_entries", &[&format!("type=\"{t}\"")])
                .expect("coredns_cache_entries is exported")
        };
        let (success, denial) = (get("success"), get("denial"));
        if success <= 1024.0 && denial <= 1024.0 {
            break (success, denial);
        }
        assert!(
            Instant::now() < deadline,
            "cache over capacity: success {success}, denial {denial}"
        );
        // Housekeeping runs on each cache's own activity: a hit in each.
        let _ = ask(server.dns, "u0.ok.test.", RecordType::A, common::TIMEOUT).await;
        let _ = ask(server.dns, "u1.test.", RecordType::A, common::TIMEOUT).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!(
        "answered flood: {rcodes:?}, peak {max_fds} descriptors (settled {}), peak RSS {max_rss} KiB \
         (settled {} KiB), cache entries success {success} denial {denial} (capacity 1024)",
        baseline.fds, baseline.rss_kib
    );
    assert!(
        success >= 512.0 && denial >= 512.0,
        "the flood filled the caches: success {success}, denial {denial}"
    );

    // 2. 3,000 unique names to the silent upstream, 1,000 a second, up to 500 in flight: it may
    //    hold at most its share of the open-file limit; the queries beyond are refused at once,
    //    those it holds time out (SERVFAIL).
    let before = server.fds();
    let sampler = server.sampler();
    let names: Vec<String> = (0..3000).map(|i| format!("u{i}.slow.test.")).collect();
    let (rcodes, lost) = flood(
        server.dns,
        &names,
        500,
        Duration::from_millis(1),
        Duration::from_secs(8),
    )
    .await;
    let (max_fds, _) = sampler.finish();
    server.assert_alive();
    assert_eq!(lost, 0, "every query gets an answer: {rcodes:?}");
    let unexpected: Vec<_> = rcodes
        .iter()
        .filter(|(r, _)| !matches!(r, ResponseCode::ServFail | ResponseCode::Refused))
        .collect();
    assert!(
        unexpected.is_empty(),
        "only SERVFAIL and REFUSED: {rcodes:?}"
    );
    assert!(
        rcodes.get(&ResponseCode::Refused).copied().unwrap_or(0) > 0,
        "the socket cap was reached: {rcodes:?}"
    );
    assert!(
        max_fds <= before + SOCKET_CAP + FD_SLACK,
        "{max_fds} descriptors open at the peak, {before} before (cap {SOCKET_CAP} sockets)"
    );
    let (_, text) = common::http_get(metrics_addr, "/metrics").await;
    eprintln!(
        "silent flood: {rcodes:?}, peak {max_fds} descriptors ({before} before, cap {SOCKET_CAP})"
    );
    let to = format!("to=\"{}\"", silent.addr);
    let rejects = metric(&text, "coredns_forward_socket_limit_rejects_total", &[&to])
        .expect("coredns_forward_socket_limit_rejects_total is exported");
    assert!(rejects > 0.0, "{rejects} socket limit rejects:\n{text}");
    // Everything else still answers, and the idle sockets are closed after `expire`.
    assert_eq!(mismatch(server.dns, &probe).await, None);
    until("the silent upstream's sockets closed", || {
        server.fds() <= baseline.fds + 4
    })
    .await;
    server.assert_alive();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_forwards_flooded_at_once_share_one_descriptor_budget() {
    // Three `forward` directives, each to a silent upstream, and an open-file limit of 128:
    // together they may hold at most half of it, as one forward with one upstream may.
    let silent: Vec<Upstream> = vec![
        Upstream::start(Mode::Silent).await,
        Upstream::start(Mode::Silent).await,
        Upstream::start(Mode::Silent).await,
    ];
    let answering = Upstream::start(Mode::Normal).await;
    let port = free_port();
    let corefile = format!(
        ".:{port} {{\n    bind 127.0.0.1\n    forward a.test {} {{\n        max_fails 0\n    }}\n    \
         forward b.test {} {{\n        max_fails 0\n    }}\n    forward c.test {} {{\n        max_fails 0\n    }}\n    forward . {}\n}}\n",
        silent[0].addr, silent[1].addr, silent[2].addr, answering.addr
    );
    const NOFILE: u32 = 128;
    let mut server = Server::start(&corefile, port, Some(NOFILE));
    let probe = expect(
        "external.test.",
        RecordType::A,
        ResponseCode::NoError,
        &["192.0.2.10"],
    );
    wait_for(&mut server, &probe).await;
    let before = server.fds();
    let sampler = server.sampler();
    let names: Vec<String> = (0..1500)
        .map(|i| format!("u{i}.{}.test.", ["a", "b", "c"][i % 3]))
        .collect();
    let (rcodes, lost) = flood(
        server.dns,
        &names,
        400,
        Duration::from_millis(1),
        Duration::from_secs(8),
    )
    .await;
    let (max_fds, _) = sampler.finish();
    server.assert_alive();
    eprintln!("three silent forwards: {rcodes:?}, peak {max_fds} descriptors ({before} before)");
    assert_eq!(lost, 0, "every query gets an answer: {rcodes:?}");
    assert!(
        rcodes
            .keys()
            .all(|r| matches!(r, ResponseCode::ServFail | ResponseCode::Refused)),
        "{rcodes:?}"
    );
    assert!(
        max_fds <= before + NOFILE as usize / 2 + FD_SLACK,
        "{max_fds} descriptors open at the peak, {before} before, limit {NOFILE}"
    );
    // The descriptors left let the rest of the server work: TCP and the answering upstream.
    assert_eq!(mismatch(server.dns, &probe).await, None);
    let tcp = common::query_tcp(
        server.dns,
        "external.test.",
        RecordType::A,
        &common::Opts::default(),
    )
    .await;
    assert_eq!(rdata(&tcp), ["192.0.2.10"]);
}
