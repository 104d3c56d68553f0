//! Parsers for argument values that many setup parsers share: Go-style durations and
//! `HOST:PORT` listen addresses (nom 8). Text in, typed value out; no plugin knowledge.

use std::fmt;
use std::time::Duration;

use nom::branch::alt;
use nom::bytes::complete::{is_not, tag, take_till, take_while};
use nom::character::complete::{char, digit1};
use nom::combinator::{all_consuming, opt, recognize};
use nom::multi::many1;
use nom::sequence::delimited;
use nom::{IResult, Parser};

/// A value that did not parse; displays what was given and what was expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("invalid duration '{0}', expected a duration such as 500ms, 5s, 1m30s or 2h")]
    Duration(String),
    #[error(
        "invalid address '{0}', expected HOST:PORT such as :8080, 127.0.0.1:8080 or [::1]:8080"
    )]
    HostPort(String),
}

/// One `NUMBER UNIT` piece of a duration: integer digits, fraction digits, nanoseconds per unit.
fn duration_piece(input: &str) -> IResult<&str, (&str, &str, u128)> {
    let (rest, whole) = take_while(|c: char| c.is_ascii_digit()).parse(input)?;
    let (rest, frac) = opt((char('.'), take_while(|c: char| c.is_ascii_digit()))).parse(rest)?;
    let frac = frac.map_or("", |(_, digits)| digits);
    if whole.is_empty() && frac.is_empty() {
        return Err(nom::Err::Error(nom::error::Error::new(
            input,
            nom::error::ErrorKind::Digit,
        )));
    }
    let (rest, unit) = alt((
        tag("ns"),
        tag("us"),
        tag("µs"),
        tag("μs"),
        tag("ms"),
        tag("s"),
        tag("m"),
        tag("h"),
    ))
    .parse(rest)?;
    let nanos_per_unit: u128 = match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        _ => 3_600_000_000_000,
    };
    Ok((rest, (whole, frac, nanos_per_unit)))
}

/// Parses a Go-style duration: `0`, or one or more `NUMBER UNIT` pieces (`1h30m`, `1.5s`,
/// `500ms`); units `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`. Signs are not accepted: no option
/// takes a negative duration.
pub fn parse_duration(text: &str) -> Result<Duration, ValueError> {
    let bad = || ValueError::Duration(text.to_owned());
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let (_, pieces) = all_consuming(many1(duration_piece))
        .parse(text)
        .map_err(|_| bad())?;
    let mut total: u128 = 0;
    for (whole, frac, unit) in pieces {
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        let mut nanos = whole.checked_mul(unit).ok_or_else(bad)?;
        // Fraction digits beyond nanosecond precision cannot matter; ignore them.
        let mut scale = unit;
        for digit in frac.bytes().take(20) {
            scale /= 10;
            nanos = nanos
                .checked_add(u128::from(digit - b'0') * scale)
                .ok_or_else(bad)?;
        }
        total = total.checked_add(nanos).ok_or_else(bad)?;
    }
    let total = u64::try_from(total).map_err(|_| bad())?;
    Ok(Duration::from_nanos(total))
}

/// A listen address as written: `host` may be empty (all addresses), an IP or a host name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

fn host_port(input: &str) -> IResult<&str, (&str, bool, &str)> {
    let bracketed = delimited(char('['), is_not("]"), char(']')).map(|h| (h, true));
    let plain = take_till(|c| c == ':').map(|h| (h, false));
    let (rest, (host, v6)) = alt((bracketed, plain)).parse(input)?;
    let (rest, port) = recognize((char(':'), digit1)).parse(rest)?;
    Ok((rest, (host, v6, &port[1..])))
}

/// Parses `HOST:PORT`, `:PORT` or `[IPV6]:PORT`, as Go's `net.SplitHostPort` accepts them.
pub fn parse_host_port(text: &str) -> Result<HostPort, ValueError> {
    let bad = || ValueError::HostPort(text.to_owned());
    let (_, (host, bracketed, port)) = all_consuming(host_port).parse(text).map_err(|_| bad())?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host_ok = if bracketed {
        host.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        host.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    };
    if !host_ok {
        return Err(bad());
    }
    Ok(HostPort {
        host: host.to_owned(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        let cases: &[(&str, Option<Duration>)] = &[
            ("0", Some(Duration::ZERO)),
            ("5s", Some(ms(5_000))),
            ("500ms", Some(ms(500))),
            ("1m30s", Some(ms(90_000))),
            ("2h", Some(ms(7_200_000))),
            ("1h1m1s", Some(ms(3_661_000))),
            ("0.5s", Some(ms(500))),
            (".5s", Some(ms(500))),
            ("1.5h", Some(ms(5_400_000))),
            ("10us", Some(Duration::from_micros(10))),
            ("10µs", Some(Duration::from_micros(10))),
            ("7ns", Some(Duration::from_nanos(7))),
            ("0s", Some(Duration::ZERO)),
            ("", None),
            ("5", None),
            ("s", None),
            (".s", None),
            ("5x", None),
            ("-5s", None),
            ("+5s", None),
            ("5 s", None),
            ("5s ", None),
            ("1d", None),
            ("99999999999999999999h", None),
            ("6000000h", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text).ok(), *want, "duration {text:?}");
        }
        assert_eq!(
            parse_duration("5x").map_err(|e| e.to_string()),
            Err(
                "invalid duration '5x', expected a duration such as 500ms, 5s, 1m30s or 2h"
                    .to_owned()
            )
        );
    }

    #[test]
    fn host_ports() {
        let hp = |host: &str, port| {
            Some(HostPort {
                host: host.to_owned(),
                port,
            })
        };
        let cases: &[(&str, Option<HostPort>)] = &[
            (":8080", hp("", 8080)),
            ("127.0.0.1:8181", hp("127.0.0.1", 8181)),
            ("localhost:9153", hp("localhost", 9153)),
            ("[::1]:53", hp("::1", 53)),
            ("[::]:0", hp("::", 0)),
            ("8080", None),
            ("localhost", None),
            (":", None),
            (":80a", None),
            (":65536", None),
            ("::1:53", None),
            ("[::1]", None),
            ("[nothost]:53", None),
            ("a b:53", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_host_port(text).ok(), *want, "address {text:?}");
        }
        let v6 = HostPort {
            host: "::1".to_owned(),
            port: 53,
        };
        assert_eq!(v6.to_string(), "[::1]:53");
        assert_eq!(
            parse_host_port("x").map_err(|e| e.to_string()),
            Err("invalid address 'x', expected HOST:PORT such as :8080, 127.0.0.1:8080 or [::1]:8080".to_owned())
        );
    }
}
