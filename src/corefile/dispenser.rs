//! A cursor over one directive, in the manner of caddy's dispenser: plugins' setup parsers read
//! their arguments and option block through it and build errors that point at the right token.

use super::{Directive, Location, Token};

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
}
