//! The one shared helper of the integration tests: start clusterdns in-process from Corefile text
//! on 127.0.0.1 with ephemeral ports, query it over UDP and TCP with bounded timeouts, send raw
//! bytes, capture its logs, and run the real binary.

#![allow(dead_code)]

use std::io::{Read, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long a test waits for any reply.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(3);

/// A server started from a Corefile written into its own temporary directory.
pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    running: Option<clusterdns::Running>,
    pub(crate) dir: tempfile::TempDir,
}

impl TestServer {
    pub(crate) async fn shutdown(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }

    pub(crate) fn all_addrs(&self) -> Vec<SocketAddr> {
        self.running.as_ref().map(|r| r.addrs()).unwrap_or_default()
    }

    /// The bound address of the HTTP endpoint serving `path` (`/health`, `/ready`, `/metrics`).
    pub(crate) fn http_addr(&self, path: &str) -> SocketAddr {
        self.running
            .as_ref()
            .and_then(|r| r.http_addr(path))
            .unwrap_or_else(|| panic!("no HTTP endpoint serves {path}"))
    }
}

/// Starts `corefile` (keys without a port get port 0, blocks without `bind` are bound to
/// 127.0.0.1) and returns its first listen address.
pub(crate) async fn start(corefile: &str) -> TestServer {
    start_with_files(corefile, &[]).await
}

/// Like [`start`], with `files` (name relative to the tempdir, content) written next to the
/// Corefile first, e.g. manifests the Corefile names.
pub(crate) async fn start_with_files(corefile: &str, files: &[(&str, &str)]) -> TestServer {
    match try_start_with_files(corefile, files).await {
        Ok(server) => server,
        Err(error) => panic!("server does not start: {error}"),
    }
}

/// Like [`start_with_files`], but a configuration or start-up error is returned.
pub(crate) async fn try_start_with_files(
    corefile: &str,
    files: &[(&str, &str)],
) -> Result<TestServer, clusterdns::Error> {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, content) in files {
        write_file(dir.path(), name, content);
    }
    let path = dir.path().join("Corefile");
    std::fs::write(&path, corefile).expect("write Corefile");
    let mut config = clusterdns::load_config(&path, 0)?;
    config.bind_unbound_to(&[IpAddr::V4(Ipv4Addr::LOCALHOST)]);
    let running = clusterdns::start(config).await?;
    let addr = running.addrs()[0];
    Ok(TestServer {
        addr,
        running: Some(running),
        dir,
    })
}

/// Writes `content` to `dir/name` (parent directories created), replacing it atomically so a
/// concurrent reader never sees a half-written file.
pub(crate) fn write_file(dir: &std::path::Path, name: &str, content: &str) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create parent directory");
    }
    let tmp = dir.join(format!(".{}.tmp", name.replace('/', "_")));
    std::fs::write(&tmp, content).expect("write temporary file");
    std::fs::rename(&tmp, &path).expect("rename into place");
}

/// Absolute path of the demo cluster's manifests (`corefile/demo-cluster.yaml`).
pub(crate) fn demo_cluster_path() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/corefile/demo-cluster.yaml").to_owned()
}

/// Knobs of a test query.
#[derive(Clone, Debug)]
pub(crate) struct Opts {
    pub(crate) id: u16,
    pub(crate) rd: bool,
    pub(crate) cd: bool,
    pub(crate) class: DNSClass,
    pub(crate) op_code: OpCode,
    /// `Some(size)` adds an OPT record advertising `size`.
    pub(crate) edns: Option<u16>,
    pub(crate) dnssec_ok: bool,
    pub(crate) edns_version: u8,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            id: 0x1234,
            rd: true,
            cd: false,
            class: DNSClass::IN,
            op_code: OpCode::Query,
            edns: None,
            dnssec_ok: false,
            edns_version: 0,
        }
    }
}

/// The wire bytes of a query.
pub(crate) fn build(name: &str, qtype: RecordType, opts: &Opts) -> Vec<u8> {
    let mut msg = Message::new(opts.id, MessageType::Query, opts.op_code);
    msg.metadata.recursion_desired = opts.rd;
    msg.metadata.checking_disabled = opts.cd;
    let mut q = Query::query(Name::from_ascii(name).expect("test name"), qtype);
    q.set_query_class(opts.class);
    msg.add_query(q);
    if let Some(size) = opts.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(size);
        edns.set_dnssec_ok(opts.dnssec_ok);
        edns.set_version(opts.edns_version);
        msg.set_edns(edns);
    }
    msg.to_vec().expect("encode query")
}

/// Sends raw bytes over UDP; the reply, or `None` after `wait`.
pub(crate) async fn udp_raw(addr: SocketAddr, bytes: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind client");
    sock.send_to(bytes, addr).await.expect("send");
    let mut buf = vec![0u8; 65535];
    match tokio::time::timeout(wait, sock.recv_from(&mut buf)).await {
        Ok(Ok((n, _))) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

/// Sends one length-prefixed message over a new TCP connection; the reply, or `None`.
pub(crate) async fn tcp_raw(addr: SocketAddr, bytes: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let fut = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        let len = u16::try_from(bytes.len()).ok()?;
        s.write_all(&len.to_be_bytes()).await.ok()?;
        s.write_all(bytes).await.ok()?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.ok()?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut buf).await.ok()?;
        Some(buf)
    };
    tokio::time::timeout(wait, fut).await.ok().flatten()
}

fn decode(bytes: Option<Vec<u8>>) -> Message {
    let bytes = bytes.expect("a reply within the timeout");
    Message::from_vec(&bytes).expect("a decodable reply")
}

pub(crate) async fn query_udp(
    addr: SocketAddr,
    name: &str,
    qtype: RecordType,
    opts: &Opts,
) -> Message {
    decode(udp_raw(addr, &build(name, qtype, opts), TIMEOUT).await)
}

pub(crate) async fn query_tcp(
    addr: SocketAddr,
    name: &str,
    qtype: RecordType,
    opts: &Opts,
) -> Message {
    decode(tcp_raw(addr, &build(name, qtype, opts), TIMEOUT).await)
}

/// Logs captured from the current thread (use with a current-thread tokio runtime, the
/// `#[tokio::test]` default, so the server's tasks log on the test's thread).
#[derive(Clone, Default)]
pub(crate) struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures this thread's tracing output (info and above, hickory at warn) until the guard drops.
pub(crate) fn capture_logs() -> (tracing::subscriber::DefaultGuard, Logs) {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "info,hickory_server=warn,hickory_proto=warn",
        ))
        .with_ansi(false)
        .without_time()
        .with_writer(move || writer.clone())
        .finish();
    (tracing::subscriber::set_default(subscriber), logs)
}

/// Logs of every thread, for output of tasks outside the test's thread (`spawn_blocking`). The
/// process-wide subscriber is installed once per test binary; each test should look only for lines
/// naming something of its own (e.g. its tempdir).
pub(crate) fn global_logs() -> Logs {
    static GLOBAL: std::sync::OnceLock<Logs> = std::sync::OnceLock::new();
    GLOBAL
        .get_or_init(|| {
            let logs = Logs::default();
            let writer = logs.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(
                    "info,hickory_server=warn,hickory_proto=warn",
                ))
                .with_ansi(false)
                .without_time()
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber in this test binary");
            logs
        })
        .clone()
}

/// What a run of the binary produced.
#[derive(Debug)]
pub(crate) struct Output {
    /// `None` if it was killed at the timeout.
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs the real binary with `args` in `dir`; kills it after `limit`.
pub(crate) fn run_binary(args: &[&str], dir: &std::path::Path, limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn clusterdns");
    let start = Instant::now();
    let code = loop {
        match child.try_wait().expect("wait") {
            Some(status) => break status.code(),
            None if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut stdout);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    Output {
        code,
        stdout,
        stderr,
    }
}

/// Writes `text` as `Corefile` in a new temporary directory.
pub(crate) fn corefile_dir(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut f = std::fs::File::create(dir.path().join("Corefile")).expect("create Corefile");
    f.write_all(text.as_bytes()).expect("write Corefile");
    dir
}
pub(crate) mod upstream;

/// GET `path`: status and body (HTTP/1.1, `Connection: close`).
pub(crate) async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let fut = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.expect("read");
        raw
    };
    let raw = tokio::time::timeout(TIMEOUT, fut)
        .await
        .expect("HTTP reply within the timeout");
    let (head, body) = raw.split_once("\r\n\r\n").expect("HTTP head and body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    (status, body.to_owned())
}
