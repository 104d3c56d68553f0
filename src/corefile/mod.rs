//! Corefile text to syntax tree: lexer, nom parser, `{$ENV}` substitution, snippets and `import`.
//! Every token carries `file:line:column`. Knows no plugin: what a directive means is decided by
//! the plugin's setup parser, which reads it through a [`Dispenser`].

mod dispenser;
mod lexer;
mod parser;
mod value;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use dispenser::{Dispenser, SetupError};
use parser::{MAX_EXPANSIONS, MAX_NESTING, MAX_TOKENS};
pub use value::{HostPort, ValueError, parse_duration, parse_host_port};

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

/// Why a Corefile could not be turned into a syntax tree. Every variant with a location displays
/// as `FILE:LINE:COL: what was wrong, what was expected`.
#[derive(Debug, thiserror::Error)]
pub enum CorefileError {
    /// The Corefile itself could not be read.
    #[error("cannot read Corefile '{}': {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The Corefile is not UTF-8.
    #[error("Corefile '{}' is not valid UTF-8, expected UTF-8 text", path.display())]
    NotUtf8 { path: PathBuf },
    #[error("{location}: unterminated quoted string, expected a closing '\"'")]
    UnterminatedQuote { location: Location },
    #[error("{location}: unexpected '}}' with no block open, expected a matching '{{' before it")]
    UnexpectedClose { location: Location },
    #[error("{location}: unexpected '{{', expected {expected}")]
    UnexpectedOpen {
        location: Location,
        expected: &'static str,
    },
    /// `location` is the `{` that is never closed.
    #[error("{location}: '{{' is never closed, expected a matching '}}'")]
    Unclosed { location: Location },
    #[error("{location}: unexpected '{text}' after '}}', expected a new line")]
    AfterClose { location: Location, text: String },
    #[error("{location}: expected '{{' to open the server block of '{keys}'")]
    MissingOpen { location: Location, keys: String },
    #[error("{location}: server block has no keys, expected at least one address")]
    NoKeys { location: Location },
    #[error("{location}: blocks nested more than {MAX_NESTING} deep, expected fewer levels")]
    TooDeep { location: Location },
    #[error("{location}: a snippet definition must be the only key on its line")]
    SnippetWithKeys { location: Location },
    #[error("{location}: expected '{{' to open snippet '{name}'")]
    SnippetMissingOpen { location: Location, name: String },
    #[error("{location}: snippet '{name}' is already defined at {previous}")]
    SnippetRedefined {
        location: Location,
        name: String,
        previous: Location,
    },
    #[error(
        "{location}: import takes exactly one argument, expected a snippet name, a file or a glob"
    )]
    ImportArgs { location: Location },
    /// An imported file (or a glob's directory) could not be read.
    #[error("{location}: import: cannot read '{}': {source}", path.display())]
    ImportRead {
        location: Location,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{location}: import: '{}' is not a regular file, expected a file", path.display())]
    ImportNotFile { location: Location, path: PathBuf },
    #[error("{location}: import: '{}' is not valid UTF-8, expected UTF-8 text", path.display())]
    ImportNotUtf8 { location: Location, path: PathBuf },
    #[error(
        "{location}: import: '*' only in the last path component is supported, got '{pattern}'"
    )]
    ImportGlob { location: Location, pattern: String },
    #[error("{location}: import cycle: {chain}, expected imports that end")]
    ImportCycle { location: Location, chain: String },
    #[error("{location}: more than {MAX_EXPANSIONS} imports expanded, expected fewer")]
    TooManyImports { location: Location },
    #[error("{location}: Corefile expands to more than {MAX_TOKENS} tokens, expected fewer")]
    TooManyTokens { location: Location },
}

impl CorefileError {
    /// Where the error is, if it has a place in a file.
    pub fn location(&self) -> Option<&Location> {
        match self {
            CorefileError::Read { .. } | CorefileError::NotUtf8 { .. } => None,
            CorefileError::UnterminatedQuote { location }
            | CorefileError::UnexpectedClose { location }
            | CorefileError::UnexpectedOpen { location, .. }
            | CorefileError::Unclosed { location }
            | CorefileError::AfterClose { location, .. }
            | CorefileError::MissingOpen { location, .. }
            | CorefileError::NoKeys { location }
            | CorefileError::TooDeep { location }
            | CorefileError::SnippetWithKeys { location }
            | CorefileError::SnippetMissingOpen { location, .. }
            | CorefileError::SnippetRedefined { location, .. }
            | CorefileError::ImportArgs { location }
            | CorefileError::ImportRead { location, .. }
            | CorefileError::ImportNotFile { location, .. }
            | CorefileError::ImportNotUtf8 { location, .. }
            | CorefileError::ImportGlob { location, .. }
            | CorefileError::ImportCycle { location, .. }
            | CorefileError::TooManyImports { location }
            | CorefileError::TooManyTokens { location } => Some(location),
        }
    }
}

/// Reads and parses the Corefile at `path`; `{$NAME}` references read the process environment,
/// relative imports resolve against the file's directory.
pub fn parse_file(path: &Path) -> Result<Corefile, CorefileError> {
    let bytes = std::fs::read(path).map_err(|source| CorefileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|_| CorefileError::NotUtf8 {
        path: path.to_path_buf(),
    })?;
    parse_file_text(path, &text)
}

/// As [`parse_file`], for `text` already read from `path` (reload parses exactly the text it
/// hashed).
pub fn parse_file_text(path: &Path, text: &str) -> Result<Corefile, CorefileError> {
    let base_dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let env = |name: &str| std::env::var(name).ok();
    parser::parse(
        text,
        &path.display().to_string(),
        &base_dir,
        Some(path),
        &env,
    )
}

/// Parses Corefile `text` named `file` (for locations); relative imports resolve against
/// `base_dir`; `{$NAME}` references read the process environment.
pub fn parse_str(text: &str, file: &str, base_dir: &Path) -> Result<Corefile, CorefileError> {
    let env = |name: &str| std::env::var(name).ok();
    parser::parse(text, file, base_dir, None, &env)
}

/// As [`parse_str`], with `{$NAME}` / `{%NAME%}` looked up through `env` (tests, reload).
pub fn parse_str_with_env(
    text: &str,
    file: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Corefile, CorefileError> {
    parser::parse(text, file, base_dir, None, env)
}
