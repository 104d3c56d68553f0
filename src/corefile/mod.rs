//! Corefile text to syntax tree: lexer, nom parser, `{$ENV}` substitution, snippets and `import`.
//! Every token carries `file:line:column`. Knows no plugin: what a directive means is decided by
//! the plugin's setup parser, which reads it through a [`Dispenser`].

mod dispenser;

use std::fmt;
use std::sync::Arc;

pub use dispenser::Dispenser;

/// Where a token starts: file, 1-based line and 1-based column (in characters).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Location {
    pub file: Arc<str>,
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One word of the Corefile after quote removal and environment substitution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub location: Location,
}

/// A directive line, `name arg arg... [{ sub-directives }]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    pub name: Token,
    pub args: Vec<Token>,
    /// Lines of the `{ ... }` block that follows the arguments, if any.
    pub block: Option<Vec<Directive>>,
}

/// A server block: its keys (`.:53`, `dns://cluster.local`, `10.0.0.0/24`) and its directives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerBlock {
    pub keys: Vec<Token>,
    pub directives: Vec<Directive>,
}

/// A whole Corefile with imports and snippets expanded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Corefile {
    pub blocks: Vec<ServerBlock>,
}
