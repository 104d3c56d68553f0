//! The peers the slower tiers run against, built from source on first use and cached outside the
//! repository: kube-apiserver and etcd for the end-to-end tier (`tests/e2e/build-peers.sh`),
//! CoreDNS for the differential tier (`tests/e2e/build-coredns.sh`).
//!
//! `ensure(peer)` runs the peer's script once per test process and returns the binary's path.
//! The scripts are idempotent and hold a lock (flock) on the cache while they build, so several
//! test binaries starting at once build a peer once: the others wait and then see "up to date".
//! A first build takes minutes (kube-apiserver about 20 on 2 cores); its output goes to a log
//! file under the cache, named on stderr when the build starts. A missing Go or no access to the
//! Go module proxy is an error that names the install step (the script's own words).
//!
//! Included with `#[path]` by the tests that need it.

#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

/// A program built by one of the scripts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Peer {
    KubeApiserver,
    Etcd,
    CoreDns,
}

/// The script that builds a group of peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Script {
    /// kube-apiserver and etcd.
    Kubernetes,
    CoreDns,
}

impl Peer {
    fn script(self) -> Script {
        match self {
            Peer::KubeApiserver | Peer::Etcd => Script::Kubernetes,
            Peer::CoreDns => Script::CoreDns,
        }
    }

    fn file_name(self) -> &'static str {
        match self {
            Peer::KubeApiserver => "kube-apiserver",
            Peer::Etcd => "etcd",
            Peer::CoreDns => "coredns",
        }
    }
}

impl Script {
    fn path(self) -> &'static str {
        match self {
            Script::Kubernetes => concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/build-peers.sh"),
            Script::CoreDns => concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/build-coredns.sh"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Script::Kubernetes => "build-peers",
            Script::CoreDns => "build-coredns",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Script::Kubernetes => {
                "kube-apiserver and etcd for the e2e tier (first time only; about 20 minutes on \
                 2 cores, 700 MB of Go modules)"
            }
            Script::CoreDns => {
                "CoreDNS for the differential tier (first time only; several minutes)"
            }
        }
    }
}

/// Why a peer is not available.
#[derive(Clone, Debug, thiserror::Error)]
pub(crate) enum PeerError {
    #[error(
        "neither CLUSTERDNS_E2E_CACHE nor HOME is set: the test peers' cache directory is unknown"
    )]
    NoCache,
    #[error("cannot prepare the peer log {path}: {reason}")]
    Log { path: PathBuf, reason: String },
    #[error("cannot run `bash {script}`: {reason} (install bash)")]
    Spawn {
        script: &'static str,
        reason: String,
    },
    #[error(
        "`bash {script}` failed ({status}); fix the step it names and run it by hand to see \
         progress (full log: {log}):\n{tail}"
    )]
    Build {
        script: &'static str,
        status: String,
        log: PathBuf,
        tail: String,
    },
    #[error("`bash {script}` succeeded but {path} is not an executable file")]
    Missing { script: &'static str, path: PathBuf },
}

/// `${CLUSTERDNS_E2E_CACHE:-$HOME/.cache/clusterdns-e2e}`, as the scripts compute it.
pub(crate) fn cache_dir() -> Result<PathBuf, PeerError> {
    if let Some(dir) = std::env::var_os("CLUSTERDNS_E2E_CACHE").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or(PeerError::NoCache)?;
    Ok(PathBuf::from(home).join(".cache/clusterdns-e2e"))
}

/// The path of `peer`, built first if it is missing or stale (once per test process).
pub(crate) fn ensure(peer: Peer) -> Result<PathBuf, PeerError> {
    static KUBERNETES: OnceLock<Result<(), PeerError>> = OnceLock::new();
    static COREDNS: OnceLock<Result<(), PeerError>> = OnceLock::new();
    let script = peer.script();
    let once = match script {
        Script::Kubernetes => &KUBERNETES,
        Script::CoreDns => &COREDNS,
    };
    once.get_or_init(|| run(script)).clone()?;
    let path = cache_dir()?.join("bin").join(peer.file_name());
    if !is_executable(&path) {
        return Err(PeerError::Missing {
            script: script.path(),
            path,
        });
    }
    Ok(path)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs `script --check`, then the build itself when needed, its output into a log file.
fn run(script: Script) -> Result<(), PeerError> {
    let check = Command::new("bash")
        .arg(script.path())
        .arg("--check")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| PeerError::Spawn {
            script: script.path(),
            reason: e.to_string(),
        })?;
    if check.success() {
        return Ok(());
    }
    let logs = cache_dir()?.join("logs");
    let log_path = logs.join(format!("{}.{}.log", script.name(), std::process::id()));
    let log_error = |e: std::io::Error| PeerError::Log {
        path: log_path.clone(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(&logs).map_err(log_error)?;
    let log = std::fs::File::create(&log_path).map_err(log_error)?;
    let log_err = log.try_clone().map_err(log_error)?;
    // Straight to stderr, past the test harness's capture: a silent 20-minute wait looks hung.
    let _ = writeln!(
        std::io::stderr(),
        "{}: building {}; log: {}",
        script.name(),
        script.what(),
        log_path.display()
    );
    let start = Instant::now();
    let status = Command::new("bash")
        .arg(script.path())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .status()
        .map_err(|e| PeerError::Spawn {
            script: script.path(),
            reason: e.to_string(),
        })?;
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    if !status.success() {
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(25)..].join("\n");
        return Err(PeerError::Build {
            script: script.path(),
            status: status.to_string(),
            log: log_path,
            tail,
        });
    }
    let last = text.lines().last().unwrap_or_default();
    let _ = writeln!(
        std::io::stderr(),
        "{}: ready after {:.0?} ({last})",
        script.name(),
        start.elapsed()
    );
    Ok(())
}
