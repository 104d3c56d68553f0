//! The process's life after start-up: Corefile reloads (polled by `reload`, or on SIGUSR1), the
//! "shutting down" flag, and the shutdown sequence on SIGTERM/SIGINT (lame duck, stop accepting,
//! drain, stop plugins).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing::{error, info};

use crate::config::Config;
use crate::corefile::{self, CorefileError};
use crate::plugin::reload;
use crate::{Error, Running};

/// Marks the process as shutting down, from the shutdown signal on (lame-duck period included):
/// `/ready` answers 503 `Shutting down` from then on, `/health` keeps answering 200.
pub fn set_shutting_down() {
    crate::http::set_shutting_down(true);
}

/// What identifies the Corefile's content: its text plus everything it imports.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Version {
    /// SHA-512 of the Corefile text, hex (`coredns_reload_version_info`'s value).
    text_hex: String,
    /// SHA-512 of the text and of the parsed result (imported files' tokens, or the parse
    /// error): changes when an imported file changes.
    full: Vec<u8>,
}

impl Version {
    fn of(text: &[u8], parsed: &str) -> Version {
        let text_hex = hex(ring::digest::digest(&ring::digest::SHA512, text).as_ref());
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA512);
        ctx.update(text);
        ctx.update(&[0]);
        ctx.update(parsed.as_bytes());
        Version {
            text_hex,
            full: ctx.finish().as_ref().to_vec(),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The Corefile as read once: its version, and its syntax tree or why it has none.
struct Snapshot {
    version: Version,
    parsed: Result<corefile::Corefile, Error>,
}

/// What one reload check did.
#[derive(Debug)]
pub enum ReloadOutcome {
    /// The Corefile (and its imports) did not change.
    Unchanged,
    /// The new configuration is serving.
    Reloaded,
    /// The Corefile changed but cannot be applied; the old configuration keeps serving.
    Failed(Error),
}

/// Where the Corefile is and how to build it.
#[derive(Clone, Debug)]
struct Source {
    path: PathBuf,
    dns_port: u16,
    /// Addresses for blocks without `bind` (tests keep servers on loopback).
    bind_unbound: Vec<IpAddr>,
}

/// Reads the Corefile and applies it to a running server when it changed.
pub struct Reloader {
    source: Arc<Source>,
    /// The version last acted on (applied, or failed: a failure is reported once per change).
    current: Option<Version>,
}

impl Reloader {
    /// A reloader of the Corefile at `path`; keys without a port get `dns_port`.
    pub fn new(path: impl Into<PathBuf>, dns_port: u16) -> Reloader {
        Reloader {
            source: Arc::new(Source {
                path: path.into(),
                dns_port,
                bind_unbound: Vec::new(),
            }),
            current: None,
        }
    }

    /// Makes blocks without `bind` listen on `ips` (see [`Config::bind_unbound_to`]).
    pub fn bind_unbound_to(mut self, ips: &[IpAddr]) -> Reloader {
        Arc::make_mut(&mut self.source).bind_unbound = ips.to_vec();
        self
    }

    /// The first load: the configuration to start with (its version becomes the current one).
    pub fn load(&mut self) -> Result<Config, Error> {
        let snapshot = self.source.read();
        let config = self.source.build(snapshot.parsed?)?;
        reload::register_metrics();
        reload::record_version(&snapshot.version.text_hex);
        self.current = Some(snapshot.version);
        Ok(config)
    }

    /// Checks the Corefile once. When it changed (or `force`, as SIGUSR1 does), builds and
    /// applies the new configuration; on failure logs the error (with its file:line:column) and
    /// counts it, and the running configuration stays.
    pub async fn check(&mut self, running: &mut Running, force: bool) -> ReloadOutcome {
        // Reading, parsing and building (which may load manifests) block: not on a worker.
        let source = Arc::clone(&self.source);
        let Ok(snapshot) = tokio::task::spawn_blocking(move || source.read()).await else {
            error!("Corefile check failed unexpectedly; the running configuration stays");
            return ReloadOutcome::Unchanged;
        };
        if !force && self.current.as_ref() == Some(&snapshot.version) {
            return ReloadOutcome::Unchanged;
        }
        self.current = Some(snapshot.version.clone());
        info!("Reloading");
        let built = match snapshot.parsed {
            Ok(cf) => {
                let source = Arc::clone(&self.source);
                match tokio::task::spawn_blocking(move || source.build(cf)).await {
                    Ok(built) => built,
                    Err(_) => {
                        error!(
                            "Corefile changed but reload failed: the configuration build panicked"
                        );
                        reload::record_failure();
                        return ReloadOutcome::Unchanged;
                    }
                }
            }
            Err(error) => Err(error),
        };
        let result = match built {
            Ok(config) => running.reload(config).await,
            Err(error) => Err(error),
        };
        match result {
            Ok(()) => {
                reload::record_version(&snapshot.version.text_hex);
                info!("Reloading complete");
                ReloadOutcome::Reloaded
            }
            Err(e) => {
                error!("Corefile changed but reload failed: {e}");
                reload::record_failure();
                ReloadOutcome::Failed(e)
            }
        }
    }
}

impl Source {
    fn read(&self) -> Snapshot {
        let failed = |text: &[u8], e: CorefileError| Snapshot {
            version: Version::of(text, &e.to_string()),
            parsed: Err(e.into()),
        };
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(source) => {
                let path = self.path.clone();
                return failed(&[], CorefileError::Read { path, source });
            }
        };
        let Ok(text) = std::str::from_utf8(&bytes) else {
            let path = self.path.clone();
            return failed(&bytes, CorefileError::NotUtf8 { path });
        };
        match corefile::parse_file_text(&self.path, text) {
            Ok(cf) => Snapshot {
                version: Version::of(&bytes, &format!("{cf:?}")),
                parsed: Ok(cf),
            },
            Err(e) => failed(&bytes, e),
        }
    }

    fn build(&self, cf: corefile::Corefile) -> Result<Config, Error> {
        let base_dir = base_dir(&self.path);
        let file = self.path.display().to_string();
        let mut config = Config::build(&cf, &file, &base_dir, self.dns_port)?;
        if !self.bind_unbound.is_empty() {
            config.bind_unbound_to(&self.bind_unbound);
        }
        Ok(config)
    }
}

fn base_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The signals the process reacts to, installed before the banner is printed (from then on a
/// signal is never the default action, which would end the process without a drain).
pub(crate) struct Signals {
    term: Signal,
    int: Signal,
    usr1: Signal,
}

impl Signals {
    pub(crate) fn install() -> Result<Signals, Error> {
        Ok(Signals {
            term: signal(SignalKind::terminate()).map_err(Error::Signal)?,
            int: signal(SignalKind::interrupt()).map_err(Error::Signal)?,
            usr1: signal(SignalKind::user_defined1()).map_err(Error::Signal)?,
        })
    }
}

/// Serves until SIGTERM or SIGINT: reloads every `reload` interval (± jitter) when the Corefile
/// changed and on every SIGUSR1; on the shutdown signal sets the "shutting down" flag, keeps
/// answering for the lame-duck delay (a second signal cuts it short), then stops accepting,
/// lets queries in flight finish and stops the plugins.
pub(crate) async fn serve(
    mut running: Running,
    mut reloader: Reloader,
    signals: Signals,
) -> Result<(), Error> {
    let Signals {
        mut term,
        mut int,
        mut usr1,
    } = signals;
    let signal_name = loop {
        let next_check = running
            .reload_config()
            .map(|r| r.next_delay(rand::random::<f64>()));
        let tick = async {
            match next_check {
                Some(delay) => tokio::time::sleep(delay).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = term.recv() => break "SIGTERM",
            _ = int.recv() => break "SIGINT",
            message = running.fatal() => {
                // As CoreDNS's log.Fatal: no lame duck, no drain; the queries in flight are
                // part of the fault.
                return Err(Error::Fatal(message));
            }
            _ = usr1.recv() => {
                reloader.check(&mut running, true).await;
            }
            () = tick => {
                reloader.check(&mut running, false).await;
            }
        }
    };
    set_shutting_down();
    let lameduck = running.shutdown_delay();
    if !lameduck.is_zero() {
        info!("{signal_name}: lameduck, still answering for {lameduck:?}");
        tokio::select! {
            () = tokio::time::sleep(lameduck) => {}
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    info!("{signal_name}: shutting down");
    running.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn version_follows_text_and_imports() {
        let a = Version::of(b"text", "tokens");
        assert_eq!(a, Version::of(b"text", "tokens"));
        assert_ne!(a, Version::of(b"text", "other tokens"));
        assert_ne!(a.full, Version::of(b"other", "tokens").full);
        // The exported hash is the text's alone, as CoreDNS's.
        assert_eq!(a.text_hex, Version::of(b"text", "other tokens").text_hex);
        assert_eq!(a.text_hex.len(), 128);
        assert!(a.text_hex.starts_with("eaf2c127"), "{}", a.text_hex);
    }

    fn config(text: &str) -> Config {
        crate::config_from_str(text, "Corefile", Path::new("."), 53).unwrap()
    }

    #[test]
    fn reload_setting_comes_from_the_first_block_that_has_one() {
        assert_eq!(config(".:53 {\n    whoami\n}\n").reload(), None);
        let c = config(
            "a.:53 {\n    whoami\n}\nb.:53 {\n    reload 10s 2s\n    whoami\n}\nc.:53 {\n    reload 20s\n    whoami\n}\n",
        );
        let r = c.reload().unwrap();
        assert_eq!(
            (r.interval, r.jitter),
            (Duration::from_secs(10), Duration::from_secs(2))
        );
    }

    #[test]
    fn shutdown_delay_is_the_longest_lameduck() {
        assert_eq!(
            config(".:53 {\n    whoami\n}\n").shutdown_delay(),
            Duration::ZERO
        );
        assert_eq!(
            config(".:53 {\n    health :8080\n    whoami\n}\n").shutdown_delay(),
            Duration::ZERO
        );
        let c = config(
            "a.:53 {\n    health :8080 {\n        lameduck 3s\n    }\n    whoami\n}\nb.:53 {\n    health :8081 {\n        lameduck 5s\n    }\n}\n",
        );
        assert_eq!(c.shutdown_delay(), Duration::from_secs(5));
    }
}
