//! A cursor over one directive, in the manner of caddy's dispenser: plugins' setup parsers read
//! their arguments and option block through it and build errors that point at the right token.

use super::{Directive, Location, Token};

/// An argument problem found by the dispenser's checks: where it is and what was expected.
/// Setup parsers wrap it in their own error with the plugin's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgError {
    pub location: Location,
    pub message: String,
}

/// Reads one directive's arguments in order, and its option block.
#[derive(Clone, Debug)]
pub struct Dispenser<'a> {
    directive: &'a Directive,
    pos: usize,
}

impl<'a> Dispenser<'a> {
    pub fn new(directive: &'a Directive) -> Self {
        Dispenser { directive, pos: 0 }
    }

    /// The directive's name token.
    pub fn name(&self) -> &'a Token {
        &self.directive.name
    }

    /// The directive this dispenser reads.
    pub fn directive(&self) -> &'a Directive {
        self.directive
    }

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

    /// All arguments not read yet.
    pub fn remaining_args(&mut self) -> &'a [Token] {
        let rest = self.directive.args.get(self.pos..).unwrap_or(&[]);
        self.pos = self.directive.args.len();
        rest
    }

    /// All arguments of the directive, read or not.
    pub fn args(&self) -> &'a [Token] {
        &self.directive.args
    }

    /// The lines of the option block (empty if there is none).
    pub fn block(&self) -> impl Iterator<Item = Dispenser<'a>> + 'a {
        self.directive
            .block
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .map(Dispenser::new)
    }

    /// Whether the directive has an option block (possibly empty).
    pub fn has_block(&self) -> bool {
        self.directive.block.is_some()
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

    /// The next argument, or an error at the end of the line saying `what` was expected.
    pub fn expect_arg(&mut self, what: &str) -> Result<&'a Token, ArgError> {
        match self.next_arg() {
            Some(tok) => Ok(tok),
            None => Err(ArgError {
                location: self.location_after(),
                message: format!("missing argument, expected {what}"),
            }),
        }
    }

    /// An error at the first argument not read yet, if any.
    pub fn expect_end(&self) -> Result<(), ArgError> {
        match self.peek_arg() {
            Some(tok) => Err(ArgError {
                location: tok.location.clone(),
                message: format!(
                    "unexpected argument '{}' after '{}', expected the end of the line",
                    tok.text, self.directive.name.text
                ),
            }),
            None => Ok(()),
        }
    }

    /// An error if the directive has an option block.
    pub fn expect_no_block(&self) -> Result<(), ArgError> {
        if !self.has_block() {
            return Ok(());
        }
        let location = self
            .directive
            .block
            .as_deref()
            .and_then(|b| b.first())
            .map_or_else(
                || self.directive.name.location.clone(),
                |d| d.name.location.clone(),
            );
        Err(ArgError {
            location,
            message: format!(
                "unexpected option block, '{}' takes none",
                self.directive.name.text
            ),
        })
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
        assert_eq!(disp.location().to_string(), "F:2:3");
        assert_eq!(disp.expect_arg("one").map(|t| t.text.as_str()), Ok("one"));
        let err = disp.expect_end().expect_err("two is left");
        assert_eq!(err.location.to_string(), "F:2:9");
        assert_eq!(
            err.message,
            "unexpected argument 'two' after 'x', expected the end of the line"
        );
        assert_eq!(disp.remaining_args().len(), 1);
        let err = disp.expect_arg("a third").expect_err("none left");
        assert_eq!(err.location.to_string(), "F:2:13");
        assert_eq!(err.message, "missing argument, expected a third");
        assert!(disp.expect_end().is_ok());
        let err = disp.expect_no_block().expect_err("has a block");
        assert_eq!(err.location.to_string(), "F:3:5");
        assert_eq!(err.message, "unexpected option block, 'x' takes none");
        let lines: Vec<String> = disp.block().map(|l| l.name().text.clone()).collect();
        assert_eq!(lines, ["y"]);
    }
}
