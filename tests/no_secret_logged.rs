//! No credential is ever logged (issue 13): the real binary, at `RUST_LOG=trace`, talks to a
//! (fake) Kubernetes API server through a kubeconfig whose bearer token and basic-auth password
//! are known strings. The API server first answers garbage, later goes away, so the client logs
//! its errors and retries, besides the normal list/watch traffic; the token must never appear in
//! stdout or stderr, while a recording proxy on the way proves it was sent on every request.

mod common;
mod fake_apiserver;

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use common::Opts;
use fake_apiserver::{FakeApi, Res, namespace, service};

const TOKEN: &str = "tok-7f3a9c2e5b1d4086-clusterdns-never-log-me";
const PASSWORD: &str = "pw-0c8e1f2a7b6d-clusterdns-never-log-me";
const LIMIT: Duration = Duration::from_secs(20);

/// A TCP proxy to `upstream` that keeps every byte clients send through it.
async fn recording_proxy(upstream: std::net::SocketAddr) -> (String, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let url = format!("http://{}", listener.local_addr().expect("proxy addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let record = Arc::clone(&record);
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut from_server, mut to_server) = server.into_split();
                let (mut from_client, mut to_client) = client.split();
                let up = async {
                    let mut buf = vec![0u8; 16384];
                    loop {
                        match from_client.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                record.lock().expect("record").extend_from_slice(&buf[..n]);
                                if to_server.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = to_server.shutdown().await;
                };
                let down = tokio::io::copy(&mut from_server, &mut to_client);
                let _ = tokio::join!(up, down);
            });
        }
    });
    (url, seen)
}

/// Collects a child's pipe into a shared string on a thread.
fn collect(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let out = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&out);
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .expect("output")
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubeconfig_credentials_never_appear_in_logs() {
    let api = FakeApi::start().await;
    api.apply(Res::Namespaces, namespace("ns"));
    api.apply(
        Res::Services,
        service("ns", "web", "10.96.0.7", &[("http", "TCP", 80)]),
    );
    // The first lists fail (invalid JSON): error logs and retries before the first sync.
    api.garbage_lists(Res::Services, 2);
    let upstream: std::net::SocketAddr = api
        .url()
        .trim_start_matches("http://")
        .parse()
        .expect("fake apiserver address");
    let (url, sent) = recording_proxy(upstream).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {url}\n\
         users:\n- name: u\n  user:\n    token: {TOKEN}\n- name: basic\n  user:\n    \
         username: admin\n    password: {PASSWORD}\n\
         contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n\
         - name: b\n  context:\n    cluster: c\n    user: basic\ncurrent-context: c\n"
    );
    std::fs::write(dir.path().join("kubeconfig.yaml"), kubeconfig).expect("write kubeconfig");
    std::fs::write(
        dir.path().join("Corefile"),
        ".:0 {\n    log\n    errors\n    kubernetes cluster.local {\n        \
         kubeconfig kubeconfig.yaml c\n    }\n}\n",
    )
    .expect("write Corefile");

    let mut child = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .args(["-conf", "Corefile"])
        .current_dir(dir.path())
        .env("RUST_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn clusterdns");
    let stdout = collect(child.stdout.take().expect("stdout"));
    let stderr = collect(child.stderr.take().expect("stderr"));
    let all = || {
        format!(
            "{}\n{}",
            stdout.lock().expect("stdout"),
            stderr.lock().expect("stderr")
        )
    };

    // The bound port from the `.:PORT` banner line (printed once the first sync is done).
    let start = Instant::now();
    let port = loop {
        let text = stdout.lock().expect("stdout").clone();
        if let Some(port) = text
            .lines()
            .find_map(|l| l.strip_prefix(".:"))
            .and_then(|p| p.trim().parse::<u16>().ok())
        {
            break port;
        }
        if start.elapsed() > LIMIT || child.try_wait().ok().flatten().is_some() {
            let _ = child.kill();
            panic!("no `.:PORT` banner within {LIMIT:?}; output:\n{}", all());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let reply = common::query_udp(
        addr,
        "web.ns.svc.cluster.local.",
        RecordType::A,
        &Opts::default(),
    )
    .await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(reply.answers.len(), 1, "{reply:?}");

    // The API server goes away: the watches fail and the client logs its reconnect attempts.
    api.stop();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _ = child.kill();
    let _ = child.wait();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let sent = String::from_utf8_lossy(&sent.lock().expect("sent")).into_owned();
    let requests = sent.matches("HTTP/1.1\r\n").count();
    assert!(
        requests >= 3,
        "too few API requests went through the proxy:\n{sent}"
    );
    assert_eq!(
        sent.matches(&format!("Bearer {TOKEN}")).count(),
        requests,
        "every API request carries the token (or the test proves nothing)"
    );
    let output = all();
    // The run really logged at trace level: the client's own request tracing is there.
    assert!(
        output.matches("TRACE").count() >= 10,
        "RUST_LOG=trace produced almost no trace output:\n{output}"
    );
    assert!(
        output.contains("ERROR") || output.contains("WARN"),
        "the garbage lists and the outage logged nothing:\n{output}"
    );
    for secret in [TOKEN, PASSWORD] {
        assert!(
            !output.contains(secret),
            "a credential appears in the logs:\n{}",
            output
                .lines()
                .filter(|l| l.contains(secret))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    // Nor a recognisable part of one (a truncated or split print).
    assert!(!output.contains(&TOKEN[..20]), "a token prefix is logged");
}
