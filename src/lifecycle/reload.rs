//! Corefile reloads: the check schedule of the `reload` directive (interval ± jitter), reading
//! and comparing the Corefile (with its imports), building and applying the new configuration,
//! and the `coredns_reload_*` metrics. The directive itself is parsed by `plugin::reload`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use prometheus::{IntCounter, IntGaugeVec};
use tracing::{error, info};

use super::start::Running;
use crate::Error;
use crate::config::Config;
use crate::corefile::{self, CorefileError};
pub use crate::plugin::reload::ReloadConfig;

/// The Corefile check schedule of `config`: the `reload` of its first block that has one (it
/// acts process-wide, as CoreDNS's does). `None`: no polling.
pub fn schedule(config: &Config) -> Option<ReloadConfig> {
    config.process_setting::<ReloadConfig>().copied()
}

/// The wait before the next check: `interval` shifted by `draw` (uniform in `[0, 1)`) across
/// `[-jitter, +jitter]`. The caller supplies the random draw, so tests choose it.
pub fn next_delay(schedule: &ReloadConfig, draw: f64) -> Duration {
    let draw = if draw.is_finite() {
        draw.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let spread = schedule.jitter.mul_f64(2.0 * draw);
    // jitter <= interval / 2, so the result is never below interval / 2.
    (schedule.interval + spread).saturating_sub(schedule.jitter)
}

/// `coredns_reload_failed_total`: Corefile changes that could not be applied.
static FAILED: LazyLock<IntCounter> = LazyLock::new(|| {
    crate::metrics::counter(
        "reload",
        "failed_total",
        "Counter of the number of failed reload attempts.",
    )
});

/// `coredns_reload_version_info{hash="sha512",value}`: the hash of the Corefile in use.
static VERSION: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    crate::metrics::gauge_vec(
        "reload",
        "version_info",
        "A metric with a constant '1' value labeled by hash, and value which type of hash generated.",
        &["hash", "value"],
    )
});

/// Counts one failed reload.
fn record_failure() {
    FAILED.inc();
}

/// Publishes the SHA-512 (hex) of the Corefile now serving, replacing the previous one.
fn record_version(sha512_hex: &str) {
    VERSION.reset();
    VERSION.with_label_values(&["sha512", sha512_hex]).set(1);
}

/// Registers the families (so they are exported, at 0, before the first reload).
fn register_metrics() {
    LazyLock::force(&FAILED);
    LazyLock::force(&VERSION);
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
        register_metrics();
        record_version(&snapshot.version.text_hex);
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
                        record_failure();
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
                record_version(&snapshot.version.text_hex);
                info!("Reloading complete");
                ReloadOutcome::Reloaded
            }
            Err(e) => {
                error!("Corefile changed but reload failed: {e}");
                record_failure();
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

#[cfg(test)]
mod tests {
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
        assert_eq!(schedule(&config(".:53 {\n    whoami\n}\n")), None);
        let c = config(
            "a.:53 {\n    whoami\n}\nb.:53 {\n    reload 10s 2s\n    whoami\n}\nc.:53 {\n    reload 20s\n    whoami\n}\n",
        );
        let r = schedule(&c).unwrap();
        assert_eq!(
            (r.interval, r.jitter),
            (Duration::from_secs(10), Duration::from_secs(2))
        );
    }

    #[test]
    fn next_delay_spreads_interval_by_jitter() {
        let c = ReloadConfig {
            interval: Duration::from_secs(30),
            jitter: Duration::from_secs(15),
        };
        assert_eq!(next_delay(&c, 0.0), Duration::from_secs(15));
        assert_eq!(next_delay(&c, 0.5), Duration::from_secs(30));
        assert_eq!(next_delay(&c, 0.75), Duration::from_millis(37_500));
        // Out-of-range draws stay within interval ± jitter.
        assert_eq!(next_delay(&c, 7.0), Duration::from_secs(45));
        assert_eq!(next_delay(&c, -1.0), Duration::from_secs(15));
        assert_eq!(next_delay(&c, f64::NAN), Duration::from_secs(30));
        let min = ReloadConfig {
            interval: Duration::from_secs(2),
            jitter: Duration::from_secs(1),
        };
        for i in 0..100 {
            let d = next_delay(&min, f64::from(i) / 100.0);
            assert!(
                d >= Duration::from_secs(1) && d < Duration::from_secs(3),
                "{d:?}"
            );
        }
    }

    #[test]
    fn metrics_render_with_coredns_names() {
        record_failure();
        record_version("abc");
        record_version("def");
        let text = crate::metrics::render();
        assert!(text.contains("coredns_reload_failed_total "), "{text}");
        assert!(
            text.contains(r#"coredns_reload_version_info{hash="sha512",value="def"} 1"#),
            "{text}"
        );
        assert!(!text.contains(r#"value="abc""#), "{text}");
    }
}
