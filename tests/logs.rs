//! The real binary's log lines with stdout and stderr piped (as under `kubectl logs`): plain
//! text, no ANSI escapes, CoreDNS's `[LEVEL] plugin/NAME: message` shape for plugin lines.

#[path = "support/binary.rs"]
mod binary;
mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use binary::{free_port, write_corefile};
use common::{Opts, build, udp_raw};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

/// A pipe read to the end on a thread of its own, readable meanwhile.
fn collect(mut pipe: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&buf);
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            sink.lock()
                .expect("pipe buffer")
                .extend_from_slice(&chunk[..n]);
        }
    });
    buf
}

fn text(buf: &Mutex<Vec<u8>>) -> String {
    String::from_utf8_lossy(&buf.lock().expect("pipe buffer")).into_owned()
}

#[tokio::test]
async fn piped_logs_are_plain_coredns_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    // Port 9 (discard) on loopback: nothing listens, so a forwarded query fails at once and the
    // errors plugin logs it; the CIDR in the second block makes forward's setup warn.
    let dead = SocketAddr::from(([127, 0, 0, 1], 9));
    write_corefile(
        dir.path(),
        &format!(
            ".:{port} {{\n    bind 127.0.0.1\n    errors\n    log\n    forward . {dead}\n}}\n\
             10.0.0.0/15:{port} {{\n    bind 127.0.0.1\n    forward 10.0.0.0/15 {dead}\n}}\n"
        ),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .args(["-conf", "Corefile"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn clusterdns");
    let stdout = collect(child.stdout.take().expect("stdout piped"));
    let stderr = collect(child.stderr.take().expect("stderr piped"));

    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let query = build("example.org.", RecordType::A, &Opts::default());
    let deadline = Instant::now() + binary::LIMIT;
    let rcode = loop {
        let reply = udp_raw(addr, &query, Duration::from_millis(500))
            .await
            .and_then(|b| Message::from_vec(&b).ok());
        if let Some(reply) = reply {
            break reply.metadata.response_code;
        }
        assert!(
            Instant::now() < deadline,
            "no reply within {:?}; stdout:\n{}\nstderr:\n{}",
            binary::LIMIT,
            text(&stdout),
            text(&stderr)
        );
    };
    assert_eq!(rcode, ResponseCode::ServFail);
    // The errors plugin logs before the reply leaves; allow the pipe a moment.
    let deadline = Instant::now() + binary::LIMIT;
    while !text(&stdout).contains("[ERROR] plugin/errors: ") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = child.kill();
    let _ = child.wait();

    let out = text(&stdout);
    let err = text(&stderr);
    let both = format!("stdout:\n{out}\nstderr:\n{err}");
    for (name, bytes) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(
            !bytes.lock().expect("pipe buffer").contains(&0x1b),
            "an ESC byte on piped {name}:\n{both}"
        );
    }

    let level = r"\[(INFO|WARNING|ERROR|DEBUG)\] ";
    let any_line = regex::Regex::new(&format!("^{level}")).expect("regex");
    let plugin_line = regex::Regex::new(&format!(r"^{level}plugin/[a-z]+: \S")).expect("regex");
    let banner = |l: &str| {
        l.ends_with(&format!(":{port}")) || l.starts_with("clusterdns-") || l.starts_with("linux/")
    };
    for line in out.lines().filter(|l| !banner(l)) {
        assert!(
            any_line.is_match(line),
            "not a CoreDNS log line: {line:?}\n{both}"
        );
        if line.contains("plugin/") && !line.starts_with("[INFO] 127.0.0.1:") {
            assert!(
                plugin_line.is_match(line),
                "not `[LEVEL] plugin/NAME: `: {line:?}"
            );
        }
    }
    // forward's setup warning, with its fields as plain `key=value`.
    let warning = out
        .lines()
        .find(|l| l.starts_with("[WARNING] plugin/forward: CIDR expands"))
        .unwrap_or_else(|| panic!("no forward setup warning\n{both}"));
    assert!(warning.contains(" location=Corefile:"), "{warning}");
    assert!(!warning.contains("forward: forward:"), "{warning}");
    // The errors plugin, as CoreDNS prints it: `[ERROR] plugin/errors: RCODE NAME TYPE: error`.
    assert!(
        out.lines()
            .any(|l| l.starts_with("[ERROR] plugin/errors: 2 example.org. A: ")),
        "no errors plugin line\n{both}"
    );
    // The query log is bare: `[INFO] CLIENT - ID "TYPE CLASS NAME ..." RCODE ...`.
    assert!(
        out.lines().any(|l| l.starts_with("[INFO] 127.0.0.1:")
            && l.contains("\"A IN example.org. udp ")
            && l.contains("SERVFAIL")),
        "no query log line\n{both}"
    );
}
