//! Log lines in CoreDNS's shape, on stdout (where CoreDNS logs):
//!
//! ```text
//! [INFO] plugin/kubernetes: manifests reloaded files=1 objects=12
//! [WARNING] plugin/forward: upstream marked down after 2 failed health checks upstream=10.0.0.1:53
//! [ERROR] plugin/errors: 2 example.org. A: no upstream answered
//! [INFO] Reloading complete
//! ```
//!
//! A line belongs to a plugin when the event has a `plugin` field, when its message already
//! starts with `plugin/NAME:` or `NAME:`, or when it comes from a module under
//! `clusterdns::plugin::NAME`; the query log (`log` plugin) prints its lines bare, as CoreDNS
//! does. Other fields follow the message as `key=value`. Plain text always: no ANSI escapes, so
//! `kubectl logs` and files read the same as a terminal (CoreDNS never colours either).

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Tracing filter unless RUST_LOG says otherwise: hickory logs every request at info.
pub const DEFAULT_FILTER: &str = "info,hickory_server=warn,hickory_proto=warn";

/// Installs the global subscriber: CoreDNS's layout on stdout, `RUST_LOG` or
/// [`DEFAULT_FILTER`]. Does nothing if a subscriber is already set.
pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .event_format(CoreDnsFormat)
        .with_writer(std::io::stdout)
        .try_init();
}

/// CoreDNS's log layout: `[LEVEL] plugin/NAME: message key=value...`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CoreDnsFormat;

/// CoreDNS's level words (`log.Warning` prints `[WARNING]`).
fn level_word(level: Level) -> &'static str {
    match level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        Level::DEBUG => "DEBUG",
        Level::TRACE => "TRACE",
    }
}

/// The plugin a target (module path) belongs to: `clusterdns::plugin::forward::setup` ->
/// `forward`, `clusterdns::plugin::r#loop` -> `loop`.
fn plugin_of_target(target: &str) -> Option<&str> {
    let rest = target.strip_prefix("clusterdns::plugin::")?;
    let name = rest.split("::").next()?;
    let name = name.strip_prefix("r#").unwrap_or(name);
    (!name.is_empty() && name != "test_support").then_some(name)
}

/// The event's message, `plugin` field and other fields, gathered in one pass.
#[derive(Default)]
struct Fields {
    message: String,
    plugin: Option<String>,
    rest: String,
}

impl Fields {
    fn push_key(&mut self, field: &Field) {
        self.rest.push(' ');
        self.rest.push_str(field.name());
        self.rest.push('=');
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            "plugin" => self.plugin = Some(value.to_owned()),
            _ => {
                self.push_key(field);
                if value.is_empty() || value.contains(char::is_whitespace) {
                    let _ = write!(self.rest, "{value:?}");
                } else {
                    self.rest.push_str(value);
                }
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            "plugin" => self.plugin = Some(format!("{value:?}")),
            // `log` crate metadata forwarded by tracing-log; the target carries it already.
            name if name.starts_with("log.") => {}
            _ => {
                self.push_key(field);
                let _ = write!(self.rest, "{value:?}");
            }
        }
    }
}

impl<S, N> FormatEvent<S, N> for CoreDnsFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let metadata = event.metadata();
        write_line(
            &mut writer,
            *metadata.level(),
            metadata.target(),
            &fields.message,
            fields.plugin.as_deref(),
            &fields.rest,
        )
    }
}

/// One line: `[LEVEL] plugin/NAME: message rest` (`rest` starts with a space when not empty).
fn write_line(
    out: &mut impl fmt::Write,
    level: Level,
    target: &str,
    message: &str,
    plugin: Option<&str>,
    rest: &str,
) -> fmt::Result {
    write!(out, "[{}] ", level_word(level))?;
    let plugin = plugin.or_else(|| plugin_of_target(target));
    match plugin {
        // The message names its plugin already (`plugin/ready: ...`).
        _ if message.starts_with("plugin/") => out.write_str(message)?,
        Some(name) => {
            // `forward: CIDR expands ...` from the forward plugin: the name is said once.
            let body = message
                .strip_prefix(name)
                .and_then(|m| m.strip_prefix(": "))
                .unwrap_or(message);
            write!(out, "plugin/{name}: {body}")?;
        }
        None => out.write_str(message)?,
    }
    out.write_str(rest)?;
    out.write_char('\n')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::{Arc, Mutex};

    fn line(level: Level, target: &str, message: &str, plugin: Option<&str>) -> String {
        let mut out = String::new();
        write_line(&mut out, level, target, message, plugin, "").unwrap();
        out
    }

    #[test]
    fn plugin_lines_have_coredns_shape() {
        assert_eq!(
            line(
                Level::INFO,
                "clusterdns::lib",
                "manifests reloaded",
                Some("kubernetes")
            ),
            "[INFO] plugin/kubernetes: manifests reloaded\n"
        );
        assert_eq!(
            line(
                Level::WARN,
                "clusterdns::plugin::forward::setup",
                "forward: CIDR expands to several zones",
                None
            ),
            "[WARNING] plugin/forward: CIDR expands to several zones\n"
        );
        assert_eq!(
            line(
                Level::ERROR,
                "clusterdns::plugin::errors",
                "plugin/errors: 2 example.org. A: timeout",
                None
            ),
            "[ERROR] plugin/errors: 2 example.org. A: timeout\n"
        );
        assert_eq!(
            line(
                Level::ERROR,
                "clusterdns::plugin::r#loop",
                "Loop detected",
                None
            ),
            "[ERROR] plugin/loop: Loop detected\n"
        );
        assert_eq!(
            line(
                Level::INFO,
                "clusterdns::lifecycle",
                "Reloading complete",
                None
            ),
            "[INFO] Reloading complete\n"
        );
        // The query log prints its lines bare.
        assert_eq!(
            line(
                Level::INFO,
                "clusterdns::log",
                "127.0.0.1:5353 - 1 \"A IN a.\"",
                None
            ),
            "[INFO] 127.0.0.1:5353 - 1 \"A IN a.\"\n"
        );
    }

    #[test]
    fn target_names_the_plugin() {
        assert_eq!(plugin_of_target("clusterdns::plugin::cache"), Some("cache"));
        assert_eq!(
            plugin_of_target("clusterdns::plugin::kubernetes::source::api"),
            Some("kubernetes")
        );
        assert_eq!(plugin_of_target("clusterdns::plugin::r#loop"), Some("loop"));
        assert_eq!(plugin_of_target("clusterdns::lifecycle"), None);
        assert_eq!(plugin_of_target("hickory_server::server"), None);
    }

    /// A writer into a shared buffer, for a real subscriber.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn events_through_a_subscriber_are_plain_lines() {
        let buffer = Buffer::default();
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .event_format(CoreDnsFormat)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let location = "Corefile:3:5";
            tracing::warn!(plugin = "kubernetes", %location, "multiple endpoints given");
            tracing::info!(
                target: "clusterdns::plugin::forward",
                upstream = "10.0.0.1:53",
                reason = "timed out",
                "upstream is healthy again"
            );
            tracing::error!("Corefile changed but reload failed: {}", "bad");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "[WARNING] plugin/kubernetes: multiple endpoints given location=Corefile:3:5\n\
             [INFO] plugin/forward: upstream is healthy again upstream=10.0.0.1:53 \
             reason=\"timed out\"\n\
             [ERROR] Corefile changed but reload failed: bad\n"
        );
    }
}
