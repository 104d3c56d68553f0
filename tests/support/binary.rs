//! The real `clusterdns` binary as a child process, for the reload and shutdown tests: its
//! stdout (banner and logs) collected line by line, signals sent with `kill`, its exit awaited
//! with a deadline. Included with `#[path]` by the tests that need it.

#![allow(dead_code)]

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a test waits for the process to print, reload or exit.
pub(crate) const LIMIT: Duration = Duration::from_secs(15);

/// A running clusterdns.
pub(crate) struct Proc {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    /// Starts `clusterdns -conf Corefile` in `dir` and waits for its banner.
    pub(crate) fn start(dir: &Path) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
            .args(["-conf", "Corefile"])
            .current_dir(dir)
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
        let proc = Proc { child, lines };
        proc.wait_for(|l| l.starts_with("linux/"), "the banner");
        proc
    }

    /// Everything printed so far.
    pub(crate) fn output(&self) -> String {
        self.lines.lock().expect("lines").join("\n")
    }

    /// Waits until a line satisfies `pred`; panics (with the output) after [`LIMIT`].
    pub(crate) fn wait_for(&self, pred: impl Fn(&str) -> bool, what: &str) -> String {
        let start = Instant::now();
        loop {
            if let Some(line) = self.lines.lock().expect("lines").iter().find(|l| pred(l)) {
                return line.clone();
            }
            assert!(
                start.elapsed() < LIMIT,
                "no {what} within {LIMIT:?}; output:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// How many lines satisfy `pred` so far.
    pub(crate) fn count(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.lines
            .lock()
            .expect("lines")
            .iter()
            .filter(|l| pred(l))
            .count()
    }

    /// The port of the first `ZONE:PORT` banner line.
    pub(crate) fn first_port(&self) -> u16 {
        let line = self.wait_for(|l| l.contains(".:"), "a ZONE:PORT banner line");
        line.rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port in the banner")
    }

    /// Sends `signal` (`TERM`, `INT`, `USR1`) with `kill`.
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("kill(1) is needed (procps or util-linux: apt-get install procps)");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Whether the process has exited (its code, `None` if killed by a signal).
    pub(crate) fn exited(&mut self) -> Option<Option<i32>> {
        self.child.try_wait().expect("wait").map(|s| s.code())
    }

    /// Waits for the exit; its code (panics after [`LIMIT`]).
    pub(crate) fn wait_exit(&mut self) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Some(code) = self.exited() {
                return code;
            }
            assert!(
                start.elapsed() < LIMIT,
                "still running {LIMIT:?} after the signal; output:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A loopback port free for both UDP and TCP right now (the test binds it moments later).
pub(crate) fn free_port() -> u16 {
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
        let port = udp.local_addr().expect("local addr").port();
        if std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).is_ok() {
            return port;
        }
    }
    panic!("no loopback port free for both UDP and TCP");
}

/// Writes `text` as `dir/Corefile`, atomically (a reload never reads half a file).
pub(crate) fn write_corefile(dir: &Path, text: &str) {
    let tmp = dir.join(".Corefile.tmp");
    std::fs::write(&tmp, text).expect("write Corefile");
    std::fs::rename(&tmp, dir.join("Corefile")).expect("rename Corefile");
}
