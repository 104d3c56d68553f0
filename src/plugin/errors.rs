//! The `errors` plugin: logs every error the rest of the chain returns, once, at error level.
//!
//! # Name
//! *errors* - logs the errors met while serving a query.
//!
//! # Description
//! Every error returned by the plugins after `errors` in the chain is logged as
//! `[ERROR] plugin/errors: RCODE QNAME QTYPE: ERROR` (RCODE as a number, QNAME lower-cased), and
//! returned unchanged, so the client still gets its rcode (SERVFAIL by default).
//!
//! # Syntax
//! ```text
//! errors {
//!     stacktrace
//!     consolidate DURATION REGEXP [warning|error|info|debug] [show_first]
//! }
//! ```
//! * `stacktrace`: CoreDNS logs a stack trace for panics. Parsed; not active (clusterdns plugins
//!   return errors instead of panicking).
//! * `consolidate`: would aggregate errors matching REGEXP into one line per DURATION. Parsed and
//!   validated (Go duration, regular expression, level); not active yet: each error is logged.
//!
//! # Examples
//! ```corefile
//! . {
//!     errors
//!     whoami
//! }
//! ```
//!
//! # Metrics
//! None.
//!
//! # Ready
//! Always ready.
//!
//! # Differences from CoreDNS
//! `stacktrace` and `consolidate` are accepted but not active; start-up logs a warning for each.

use std::sync::Arc;

use async_trait::async_trait;
use tracing::error;

use crate::corefile::{Dispenser, Token};
use crate::plugin::{Answer, BlockSetup, Next, Plugin, PluginError, Query, SetupError};

/// Directive name.
pub(crate) const NAME: &str = "errors";

fn err(location: &crate::corefile::Location, message: impl Into<String>) -> SetupError {
    SetupError::new(NAME, location, message)
}

/// Parses `errors [{ stacktrace | consolidate ... }]`.
pub(crate) fn setup(d: &mut Dispenser<'_>, block: &mut BlockSetup) -> Result<(), SetupError> {
    if let Some(extra) = d.next_arg() {
        return Err(err(
            &extra.location,
            format!(
                "unexpected argument '{}': errors takes no arguments",
                extra.text
            ),
        ));
    }
    for mut line in d.block() {
        let option = line.name();
        match option.text.as_str() {
            "stacktrace" => {
                if let Some(extra) = line.next_arg() {
                    return Err(err(
                        &extra.location,
                        format!("unexpected argument '{}' to stacktrace", extra.text),
                    ));
                }
                block.inactive.push((
                    option.location.clone(),
                    NAME,
                    "stacktrace: no stack traces are logged".to_owned(),
                ));
            }
            "consolidate" => {
                parse_consolidate(&mut line)?;
                block.inactive.push((
                    option.location.clone(),
                    NAME,
                    "consolidate: errors are logged one by one, not aggregated".to_owned(),
                ));
            }
            other => {
                return Err(err(
                    &option.location,
                    format!("unknown property '{other}', expected stacktrace or consolidate"),
                ));
            }
        }
    }
    block.plugins.push(Arc::new(Errors));
    Ok(())
}

/// `consolidate DURATION REGEXP [LEVEL] [show_first]`.
fn parse_consolidate(line: &mut Dispenser<'_>) -> Result<(), SetupError> {
    let Some(duration) = line.next_arg() else {
        return Err(err(
            &line.location_after(),
            "consolidate needs a DURATION and a REGEXP",
        ));
    };
    match crate::corefile::parse_duration(&duration.text) {
        Ok(d) if !d.is_zero() => {}
        _ => {
            return Err(err(
                &duration.location,
                format!("invalid duration '{}', expected e.g. 5m", duration.text),
            ));
        }
    }
    let Some(pattern) = line.next_arg() else {
        return Err(err(&line.location_after(), "consolidate needs a REGEXP"));
    };
    if let Err(e) = regex::Regex::new(&pattern.text) {
        return Err(err(
            &pattern.location,
            format!("invalid regular expression '{}': {e}", pattern.text),
        ));
    }
    let rest: &[Token] = line.remaining_args();
    let mut rest = rest.iter();
    let mut next = rest.next();
    if let Some(level) = next
        && matches!(level.text.as_str(), "warning" | "error" | "info" | "debug")
    {
        next = rest.next();
    }
    if let Some(flag) = next
        && flag.text == "show_first"
    {
        next = rest.next();
    }
    if let Some(extra) = next {
        return Err(err(
            &extra.location,
            format!(
                "unexpected argument '{}', expected a level (warning, error, info, debug) or show_first",
                extra.text
            ),
        ));
    }
    Ok(())
}

/// The plugin: wraps the rest of the chain.
#[derive(Debug)]
pub(crate) struct Errors;

#[async_trait]
impl Plugin for Errors {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn serve(&self, query: &Query<'_>, next: Next<'_>) -> Result<Answer, PluginError> {
        let result = next.run(query).await;
        if let Err(e) = &result {
            error!(
                "plugin/errors: {} {} {}: {}",
                u16::from(e.rcode()),
                query.lower,
                query.qtype,
                e
            );
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corefile::{Directive, Location};

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
        assert_eq!(b.inactive.len(), 3);
        assert_eq!(b.inactive[1].0.line, 3);
        assert!(b.inactive[1].2.starts_with("consolidate"));
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
                "needs a REGEXP",
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
