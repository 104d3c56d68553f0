//! The `errors` plugin: logs every error the rest of the chain returns, once, at error level.
#![doc = include_str!("README.md")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tracing::{Level, debug, error, info, warn};

use crate::corefile::Dispenser;
use crate::plugin::{
    Answer, BlockSetup, Next, Plugin, PluginError, Query, SetupError, StartContext,
};

/// Directive name.
pub(crate) const NAME: &str = "errors";

/// Parses `errors [{ stacktrace | consolidate ... }]`.
pub(crate) fn setup(d: &mut Dispenser<'_>, block: &mut BlockSetup) -> Result<(), SetupError> {
    d.end()?;
    let mut patterns = Vec::new();
    d.options(|line| {
        match line.name().text.as_str() {
            "stacktrace" => block.inactive.push((
                line.name().location.clone(),
                NAME,
                "stacktrace: no stack traces are logged".to_owned(),
            )),
            "consolidate" => patterns.push(Arc::new(parse_consolidate(line)?)),
            _ => return Err(line.unknown_property()),
        }
        Ok(())
    })?;
    block.plugins.push(Arc::new(Errors { patterns }));
    Ok(())
}

/// `consolidate DURATION REGEXP [LEVEL] [show_first]`.
fn parse_consolidate(line: &mut Dispenser<'_>) -> Result<Pattern, SetupError> {
    let duration = line.arg("a DURATION and a REGEXP")?;
    let period = match crate::corefile::parse_duration(&duration.text) {
        Ok(d) if !d.is_zero() => d,
        _ => {
            return Err(line.error_at(
                duration,
                format!("invalid duration '{}', expected e.g. 5m", duration.text),
            ));
        }
    };
    let pattern = line.arg("a REGEXP")?;
    let regex = line.value(pattern, |text| {
        regex::Regex::new(text).map_err(|e| format!("invalid regular expression '{text}': {e}"))
    })?;
    let mut level = Level::ERROR;
    if let Some(tok) = line.peek_arg() {
        let parsed = match tok.text.as_str() {
            "warning" => Some(Level::WARN),
            "error" => Some(Level::ERROR),
            "info" => Some(Level::INFO),
            "debug" => Some(Level::DEBUG),
            _ => None,
        };
        if let Some(parsed) = parsed {
            level = parsed;
            line.next_arg();
        }
    }
    let mut show_first = false;
    if line
        .peek_arg()
        .is_some_and(|flag| flag.text == "show_first")
    {
        show_first = true;
        line.next_arg();
    }
    if let Some(extra) = line.peek_arg() {
        return Err(line.error_at(
            extra,
            format!(
                "unexpected argument '{}', expected a level (warning, error, info, debug) or show_first",
                extra.text
            ),
        ));
    }
    Ok(Pattern {
        regex,
        period,
        level,
        show_first,
        count: AtomicU64::new(0),
    })
}

/// One `consolidate` line: errors matching `regex` are counted and reported once per `period`.
#[derive(Debug)]
struct Pattern {
    regex: regex::Regex,
    period: Duration,
    level: Level,
    show_first: bool,
    /// Matching errors since the last report.
    count: AtomicU64,
}

impl Pattern {
    /// Counts a matching error; true when it should still be logged on its own (the first of
    /// a period with `show_first`).
    fn record(&self) -> bool {
        let before = self.count.fetch_add(1, Ordering::AcqRel);
        self.show_first && before == 0
    }

    /// The summary line of the period that just ended, if it had errors; starts a new period.
    fn flush(&self) -> Option<String> {
        match self.count.swap(0, Ordering::AcqRel) {
            0 => None,
            n => Some(format!(
                "plugin/errors: {n} errors like '{}' occurred in last {}",
                self.regex.as_str(),
                go_duration(self.period)
            )),
        }
    }
}

/// A duration as Go prints it: `5m0s`, `1h30m0s`, `30s`, `1.5s`, `250ms`.
fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let frac = d.subsec_millis();
    let s = if frac == 0 {
        format!("{s}s")
    } else {
        format!("{s}.{}s", format!("{frac:03}").trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) => s,
        (0, m) => format!("{m}m{s}"),
        (h, m) => format!("{h}h{m}m{s}"),
    }
}

fn log_at(level: Level, line: &str) {
    match level {
        Level::WARN => warn!("{line}"),
        Level::INFO => info!("{line}"),
        Level::DEBUG => debug!("{line}"),
        _ => error!("{line}"),
    }
}

/// The plugin: wraps the rest of the chain.
#[derive(Debug)]
pub(crate) struct Errors {
    patterns: Vec<Arc<Pattern>>,
}

#[async_trait]
impl Plugin for Errors {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn serve(&self, query: &Query<'_>, next: Next<'_>) -> Result<Answer, PluginError> {
        let result = next.run(query).await;
        if let Err(e) = &result {
            let line = format!(
                "plugin/errors: {} {} {}: {}",
                u16::from(e.rcode()),
                query.lower,
                query.qtype,
                e
            );
            let message = e.to_string();
            match self.patterns.iter().find(|p| p.regex.is_match(&message)) {
                None => error!("{line}"),
                Some(pattern) => {
                    if pattern.record() {
                        log_at(pattern.level, &line);
                    }
                }
            }
        }
        result
    }

    /// One task per `consolidate` line reports its count every period (tokio's clock, so tests
    /// can pause and advance it).
    fn start(&self, _ctx: &StartContext) -> Vec<tokio::task::JoinHandle<()>> {
        self.patterns
            .iter()
            .map(|pattern| {
                let pattern = Arc::clone(pattern);
                tokio::spawn(async move {
                    let mut ticks = tokio::time::interval(pattern.period);
                    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    ticks.tick().await;
                    loop {
                        ticks.tick().await;
                        if let Some(line) = pattern.flush() {
                            log_at(pattern.level, &line);
                        }
                    }
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corefile::{Directive, Location, Token};

    fn tok(text: &str, line: u32, column: u32) -> Token {
        Token {
            text: text.into(),
            location: Location {
                file: "Corefile".into(),
                line,
                column,
            },
        }
    }

    fn line(words: &[&str], line_no: u32) -> Directive {
        Directive {
            name: tok(words[0], line_no, 9),
            args: words[1..]
                .iter()
                .enumerate()
                .map(|(i, w)| tok(w, line_no, 20 + i as u32 * 10))
                .collect(),
            block: None,
        }
    }

    fn run(args: &[&str], block: Option<Vec<Directive>>) -> Result<BlockSetup, SetupError> {
        let mut d = line(&[&[NAME][..], args].concat(), 1);
        d.block = block;
        let mut setup_block = BlockSetup::default();
        setup(&mut Dispenser::new(&d), &mut setup_block)?;
        Ok(setup_block)
    }

    #[test]
    fn plain() {
        let b = run(&[], None).unwrap();
        assert_eq!(b.plugins.len(), 1);
        assert!(b.inactive.is_empty());
    }

    #[test]
    fn consolidate_counts_per_period() {
        let b = run(
            &[],
            Some(vec![line(
                &["consolidate", "5m", "timeout$", "warning", "show_first"],
                2,
            )]),
        )
        .unwrap();
        assert!(b.inactive.is_empty());
        let mut d = line(&[NAME], 1);
        d.block = Some(vec![line(&["consolidate", "90s", "^x"], 2)]);
        let mut blk = BlockSetup::default();
        setup(&mut Dispenser::new(&d), &mut blk).unwrap();
        let p = Pattern {
            regex: regex::Regex::new("timeout$").unwrap(),
            period: Duration::from_secs(300),
            level: Level::WARN,
            show_first: true,
            count: AtomicU64::new(0),
        };
        assert_eq!(p.flush(), None);
        assert!(p.record(), "show_first logs the first of a period");
        assert!(!p.record());
        assert!(!p.record());
        assert_eq!(
            p.flush().as_deref(),
            Some("plugin/errors: 3 errors like 'timeout$' occurred in last 5m0s")
        );
        assert_eq!(p.flush(), None);
        assert!(p.record(), "a new period shows its first again");
    }

    #[test]
    fn go_durations() {
        for (d, want) in [
            (Duration::from_secs(300), "5m0s"),
            (Duration::from_secs(5400), "1h30m0s"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_millis(250), "250ms"),
        ] {
            assert_eq!(go_duration(d), want);
        }
    }

    #[test]
    fn options_parse_and_are_inactive() {
        let b = run(
            &[],
            Some(vec![
                line(&["stacktrace"], 2),
                line(
                    &["consolidate", "5m", ".* timeout$", "warning", "show_first"],
                    3,
                ),
                line(&["consolidate", "1h30m", "^x"], 4),
            ]),
        )
        .unwrap();
        // Only stacktrace stays inactive.
        assert_eq!(b.inactive.len(), 1);
        assert_eq!(b.inactive[0].0.line, 2);
    }

    #[test]
    fn bad_input() {
        let cases: &[(&[&str], Vec<Directive>, &str, u32)] = &[
            (&["foo"], vec![], "unexpected argument 'foo'", 20),
            (
                &[],
                vec![line(&["bogus"], 2)],
                "unknown property 'bogus'",
                9,
            ),
            (
                &[],
                vec![line(&["consolidate", "5x", "a"], 2)],
                "invalid duration '5x'",
                20,
            ),
            (
                &[],
                vec![line(&["consolidate", "5m", "(a"], 2)],
                "invalid regular expression",
                30,
            ),
            (
                &[],
                vec![line(&["consolidate", "5m"], 2)],
                "missing argument, expected a REGEXP",
                23,
            ),
            (
                &[],
                vec![line(&["consolidate", "5m", "a", "loud"], 2)],
                "unexpected argument 'loud'",
                40,
            ),
            (
                &[],
                vec![line(&["stacktrace", "x"], 2)],
                "unexpected argument 'x'",
                20,
            ),
            (
                &[],
                vec![Directive {
                    block: Some(vec![line(&["bogus"], 3)]),
                    ..line(&["stacktrace"], 2)
                }],
                "unexpected option block, 'stacktrace' takes none",
                9,
            ),
            (
                &[],
                vec![Directive {
                    block: Some(vec![]),
                    ..line(&["consolidate", "5m", "a"], 2)
                }],
                "unexpected option block, 'consolidate' takes none",
                9,
            ),
        ];
        for (args, block, want, column) in cases {
            let block = if block.is_empty() {
                None
            } else {
                Some(block.clone())
            };
            let e = run(args, block)
                .err()
                .unwrap_or_else(|| panic!("{want}: no error"));
            assert!(e.message.contains(want), "{want}: got {}", e.message);
            assert_eq!(e.location.column, *column, "{want}");
        }
    }
}
