//! A cursor over one directive, in the manner of caddy's dispenser: plugins' setup parsers read
//! their arguments and option block through it, and every setup error is built here, naming the
//! plugin (the directive) and the `file:line:column` of the token at fault.
//!
//! The helpers cover what every setup needs: arity (none, exactly one, at least one, the rest),
//! value parsers (durations, `HOST:PORT`, ports, addresses, CIDRs, numbers), the option block
//! (each line checked for leftover arguments and for a block where none is allowed) and the
//! unknown-property error.

use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;

use super::value::{HostPort, parse_duration, parse_host_port};
use super::{Directive, Location, Token};

/// A configuration error raised by a plugin's setup parser, with the Corefile location.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: plugin/{plugin}: {message}")]
pub struct SetupError {
    pub location: Location,
    pub plugin: String,
    pub message: String,
}

impl SetupError {
    /// An error of `plugin`'s setup at `location`: the one constructor every setup error uses.
    pub fn new(plugin: &str, location: &Location, message: impl Into<String>) -> Self {
        SetupError {
            location: location.clone(),
            plugin: plugin.to_owned(),
            message: message.into(),
        }
    }
}

/// Reads one directive's arguments in order, and its option block.
#[derive(Clone, Debug)]
pub struct Dispenser<'a> {
    directive: &'a Directive,
    /// The plugin the directive belongs to (the top-level directive's name), for errors.
    plugin: &'a str,
    pos: usize,
}

impl<'a> Dispenser<'a> {
    /// A dispenser over a top-level directive: the plugin is the directive's name.
    pub fn new(directive: &'a Directive) -> Self {
        Dispenser {
            directive,
            plugin: &directive.name.text,
            pos: 0,
        }
    }

    /// The plugin whose setup reads this directive (or option line).
    pub fn plugin(&self) -> &'a str {
        self.plugin
    }

    /// The directive's (or option line's) name token.
    pub fn name(&self) -> &'a Token {
        &self.directive.name
    }

    /// The directive this dispenser reads.
    pub fn directive(&self) -> &'a Directive {
        self.directive
    }

    /// An error of this plugin at `location`.
    pub fn error(&self, location: &Location, message: impl Into<String>) -> SetupError {
        SetupError::new(self.plugin, location, message)
    }

    /// An error of this plugin at `token`.
    pub fn error_at(&self, token: &Token, message: impl Into<String>) -> SetupError {
        self.error(&token.location, message)
    }

    /// An error of this plugin at the directive's (or line's) name.
    pub fn error_at_name(&self, message: impl Into<String>) -> SetupError {
        self.error(&self.directive.name.location, message)
    }

    // ----- arguments -----

    /// The next argument, or `None` at the end of the line.
    pub fn next_arg(&mut self) -> Option<&'a Token> {
        let tok = self.directive.args.get(self.pos)?;
        self.pos += 1;
        Some(tok)
    }

    /// The next argument without consuming it.
    pub fn peek_arg(&self) -> Option<&'a Token> {
        self.directive.args.get(self.pos)
    }

    /// All arguments not read yet (possibly none).
    pub fn remaining_args(&mut self) -> &'a [Token] {
        let rest = self.directive.args.get(self.pos..).unwrap_or(&[]);
        self.pos = self.directive.args.len();
        rest
    }

    /// All arguments of the directive, read or not.
    pub fn args(&self) -> &'a [Token] {
        &self.directive.args
    }

    /// The next argument, or an error at the end of the line saying `what` was expected.
    pub fn arg(&mut self, what: &str) -> Result<&'a Token, SetupError> {
        match self.next_arg() {
            Some(tok) => Ok(tok),
            None => Err(self.error(
                &self.location_after(),
                format!("missing argument, expected {what}"),
            )),
        }
    }

    /// Exactly one more argument, the last of the line.
    pub fn one_arg(&mut self, what: &str) -> Result<&'a Token, SetupError> {
        let tok = self.arg(what)?;
        self.end()?;
        Ok(tok)
    }

    /// The rest of the line, which must hold at least one argument.
    pub fn at_least_one(&mut self, what: &str) -> Result<&'a [Token], SetupError> {
        if self.peek_arg().is_none() {
            return Err(self.error(
                &self.location_after(),
                format!("missing argument, expected {what}"),
            ));
        }
        Ok(self.remaining_args())
    }

    /// An error at the first argument not read yet, if any.
    pub fn end(&self) -> Result<(), SetupError> {
        match self.peek_arg() {
            Some(tok) => Err(self.error_at(
                tok,
                format!(
                    "unexpected argument '{}' after '{}', expected the end of the line",
                    tok.text, self.directive.name.text
                ),
            )),
            None => Ok(()),
        }
    }

    /// The location of the last token read (the name if none was read), for errors.
    pub fn location(&self) -> &'a Location {
        match self.pos.checked_sub(1) {
            Some(i) => &self.directive.args[i].location,
            None => &self.directive.name.location,
        }
    }

    /// Location just past the last token read: where a missing argument was expected.
    pub fn location_after(&self) -> Location {
        let tok = match self.pos.checked_sub(1) {
            Some(i) => &self.directive.args[i],
            None => &self.directive.name,
        };
        let width = u32::try_from(tok.text.chars().count()).unwrap_or(u32::MAX);
        Location {
            file: tok.location.file.clone(),
            line: tok.location.line,
            column: tok.location.column.saturating_add(width).saturating_add(1),
        }
    }

    // ----- values -----

    /// `token` through `parse`; its error message is reported at the token.
    pub fn value<T>(
        &self,
        token: &Token,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, SetupError> {
        parse(&token.text).map_err(|message| self.error_at(token, message))
    }

    /// A number (any `FromStr` type); `expected` completes "invalid WHAT 'x', expected ...".
    pub fn number<T: FromStr>(
        &self,
        token: &Token,
        what: &str,
        expected: &str,
    ) -> Result<T, SetupError> {
        token.text.parse::<T>().map_err(|_| {
            self.error_at(
                token,
                format!("invalid {what} '{}', expected {expected}", token.text),
            )
        })
    }

    /// A Go-style duration (`500ms`, `5s`, `1m30s`).
    pub fn duration(&self, token: &Token) -> Result<Duration, SetupError> {
        parse_duration(&token.text).map_err(|e| self.error_at(token, e.to_string()))
    }

    /// The next argument, required, as a duration.
    pub fn duration_arg(&mut self) -> Result<Duration, SetupError> {
        let tok = self.arg("a duration")?;
        self.duration(tok)
    }

    /// A `HOST:PORT` listen address (`:8080`, `127.0.0.1:8080`, `[::1]:8080`).
    pub fn host_port(&self, token: &Token) -> Result<HostPort, SetupError> {
        parse_host_port(&token.text).map_err(|e| self.error_at(token, e.to_string()))
    }

    /// A port number, 1 to 65535.
    pub fn port(&self, token: &Token) -> Result<u16, SetupError> {
        match token.text.parse::<u16>() {
            Ok(port) if port > 0 => Ok(port),
            _ => Err(self.error_at(
                token,
                format!("invalid port '{}', expected 1 to 65535", token.text),
            )),
        }
    }

    /// An IPv4 or IPv6 address.
    pub fn ip(&self, token: &Token) -> Result<IpAddr, SetupError> {
        token.text.parse::<IpAddr>().map_err(|_| {
            self.error_at(
                token,
                format!(
                    "invalid address '{}', expected an IPv4 or IPv6 address",
                    token.text
                ),
            )
        })
    }

    /// A network in CIDR notation (`10.0.0.0/8`, `fd00::/64`).
    pub fn cidr(&self, token: &Token) -> Result<IpNet, SetupError> {
        token.text.parse::<IpNet>().map_err(|_| {
            self.error_at(
                token,
                format!(
                    "invalid network '{}', expected CIDR notation such as 10.0.0.0/8",
                    token.text
                ),
            )
        })
    }

    // ----- the option block -----

    /// Whether the directive has an option block (possibly empty).
    pub fn has_block(&self) -> bool {
        self.directive.block.is_some()
    }

    /// An error if the directive (or option line) has a block. CoreDNS's dispenser sees such a
    /// `{` as an unexpected argument; the error points at the block's first line (or at the
    /// name, for an empty block).
    pub fn no_block(&self) -> Result<(), SetupError> {
        let Some(block) = self.directive.block.as_deref() else {
            return Ok(());
        };
        let location = block
            .first()
            .map_or(&self.directive.name.location, |d| &d.name.location);
        Err(self.error(
            location,
            format!(
                "unexpected option block, '{}' takes none",
                self.directive.name.text
            ),
        ))
    }

    /// Runs `option` on every line of the option block, in order. After `option` returns, the
    /// line must have no argument left and no block of its own: every misplaced token is an
    /// error at its location.
    pub fn options(
        &self,
        mut option: impl FnMut(&mut Dispenser<'a>) -> Result<(), SetupError>,
    ) -> Result<(), SetupError> {
        for directive in self.directive.block.as_deref().unwrap_or(&[]) {
            let mut line = Dispenser {
                directive,
                plugin: self.plugin,
                pos: 0,
            };
            option(&mut line)?;
            line.end()?;
            line.no_block()?;
        }
        Ok(())
    }

    /// The error for an option line whose name the plugin does not know.
    pub fn unknown_property(&self) -> SetupError {
        self.error_at_name(format!("unknown property '{}'", self.directive.name.text))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::corefile::parse_str_with_env;

    fn first_directive(text: &str) -> Directive {
        let cf = parse_str_with_env(text, "F", Path::new("."), &|_| None).expect("parses");
        cf.blocks[0].directives[0].clone()
    }

    #[test]
    fn reads_arguments_and_reports_where() {
        let d = first_directive("a {\n  x one two {\n    y\n  }\n}");
        let mut disp = Dispenser::new(&d);
        assert_eq!(disp.plugin(), "x");
        assert_eq!(disp.location().to_string(), "F:2:3");
        assert_eq!(disp.arg("one").map(|t| t.text.as_str()), Ok("one"));
        let err = disp.end().expect_err("two is left");
        assert_eq!(
            err.to_string(),
            "F:2:9: plugin/x: unexpected argument 'two' after 'x', expected the end of the line"
        );
        assert_eq!(disp.remaining_args().len(), 1);
        let err = disp.arg("a third").expect_err("none left");
        assert_eq!(err.location.to_string(), "F:2:13");
        assert_eq!(err.message, "missing argument, expected a third");
        assert!(disp.end().is_ok());
        let err = disp.no_block().expect_err("has a block");
        assert_eq!(err.location.to_string(), "F:3:5");
        assert_eq!(err.message, "unexpected option block, 'x' takes none");
    }

    #[test]
    fn arity_helpers() {
        let d = first_directive("a {\n  x\n  y 1 2\n}");
        let mut x = Dispenser::new(&d);
        let e = x.one_arg("a number").expect_err("none given");
        assert_eq!(
            e.to_string(),
            "F:2:5: plugin/x: missing argument, expected a number"
        );
        let e = x.at_least_one("a zone").expect_err("none given");
        assert_eq!(e.location.to_string(), "F:2:5");
        assert!(x.end().is_ok());

        let d = first_directive("a {\n  y 1 2\n}");
        let mut y = Dispenser::new(&d);
        let e = y.clone().one_arg("a number").expect_err("two given");
        assert_eq!(e.location.to_string(), "F:2:7");
        assert_eq!(y.at_least_one("a zone").map(<[Token]>::len), Ok(2));
    }

    #[test]
    fn option_lines_reject_leftovers_nested_blocks_and_unknown_names() {
        let run = |text: &str| {
            let d = first_directive(text);
            Dispenser::new(&d)
                .options(|line| match line.name().text.as_str() {
                    "flag" => Ok(()),
                    "one" => line.one_arg("a value").map(drop),
                    _ => Err(line.unknown_property()),
                })
                .map_err(|e| e.to_string())
        };
        assert_eq!(run("a {\n p {\n  flag\n  one v\n }\n}"), Ok(()));
        assert_eq!(
            run("a {\n p {\n  flag x\n }\n}"),
            Err("F:3:8: plugin/p: unexpected argument 'x' after 'flag', expected the end of the line".into())
        );
        assert_eq!(
            run("a {\n p {\n  one v {\n   bogus\n  }\n }\n}"),
            Err("F:4:4: plugin/p: unexpected option block, 'one' takes none".into())
        );
        assert_eq!(
            run("a {\n p {\n  flag {\n  }\n }\n}"),
            Err("F:3:3: plugin/p: unexpected option block, 'flag' takes none".into())
        );
        assert_eq!(
            run("a {\n p {\n  bogus\n }\n}"),
            Err("F:3:3: plugin/p: unknown property 'bogus'".into())
        );
    }

    #[test]
    fn value_helpers_point_at_the_token() {
        let d = first_directive("a {\n  x 5q :0x 0 1.2.3 10.0.0.0/33 7s 53\n}");
        let mut x = Dispenser::new(&d);
        let args = x.remaining_args();
        let e = x.duration(&args[0]).expect_err("bad duration");
        assert_eq!(e.location.to_string(), "F:2:5");
        assert!(e.message.contains("invalid duration '5q'"), "{e}");
        assert!(x.host_port(&args[1]).is_err());
        assert!(x.port(&args[2]).is_err());
        let e = x.ip(&args[3]).expect_err("bad ip");
        assert_eq!(e.location.to_string(), "F:2:14");
        assert!(x.cidr(&args[4]).is_err());
        assert_eq!(x.duration(&args[5]), Ok(Duration::from_secs(7)));
        assert_eq!(x.port(&args[6]), Ok(53));
        assert_eq!(x.number::<u8>(&args[6], "count", "0 to 255"), Ok(53));
        let e = x
            .number::<u8>(&args[0], "count", "0 to 255")
            .expect_err("nan");
        assert_eq!(e.message, "invalid count '5q', expected 0 to 255");
    }
}
