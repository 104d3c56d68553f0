//! Tokens to syntax tree: server blocks, directives and nested option blocks, with snippets and
//! `import` spliced into the token stream as it is read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use super::lexer::{Brace, Tok, lex};
use super::{Corefile, CorefileError, Directive, Location, ServerBlock, Token};

/// Most `{` levels inside one another (server block included).
pub(crate) const MAX_NESTING: usize = 100;
/// Most snippet or file expansions by `import` in one Corefile.
pub(crate) const MAX_EXPANSIONS: usize = 10_000;
/// Most tokens read from one Corefile after expansion.
pub(crate) const MAX_TOKENS: usize = 1_000_000;

/// What a run of tokens was read from, for cycle detection and messages.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Source {
    /// The Corefile given as text; it has no path to be imported by.
    Text,
    File(PathBuf),
    Snippet(String),
}

impl Source {
    fn describe(&self, root: &str) -> String {
        match self {
            Source::Text => root.to_owned(),
            Source::File(path) => path.display().to_string(),
            Source::Snippet(name) => format!("snippet '{name}'"),
        }
    }
}

/// One expansion: the root file, an imported file, or one use of a snippet. Two tokens are on
/// the same line only when they share an expansion, so consecutive imports never merge lines.
struct Segment {
    source: Source,
    parent: Option<usize>,
    /// Directory that relative imports in this segment resolve against.
    base_dir: Rc<Path>,
}

/// A stream of tokens being read.
struct Frame {
    toks: Rc<[Tok]>,
    pos: usize,
    segment: usize,
}

struct Snippet {
    toks: Rc<[Tok]>,
    base_dir: Rc<Path>,
    location: Location,
}

/// A token taken from the stream, with the expansion it belongs to.
struct Taken {
    tok: Tok,
    segment: usize,
}

impl Taken {
    /// Whether `next` (in `segment`) continues the line this token ends on.
    fn same_line(&self, next: &Tok, segment: usize) -> bool {
        self.segment == segment && self.tok.end_line == next.location.line
    }
}

struct Parser<'e> {
    env: &'e dyn Fn(&str) -> Option<String>,
    root_name: String,
    frames: Vec<Frame>,
    segments: Vec<Segment>,
    snippets: HashMap<String, Snippet>,
    expansions: usize,
    tokens_read: usize,
}

/// Parses `text`. `root_path` is the Corefile's own path when it came from a file, so that a
/// file importing it is seen as a cycle.
pub(super) fn parse(
    text: &str,
    file: &str,
    base_dir: &Path,
    root_path: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Corefile, CorefileError> {
    let name: Arc<str> = Arc::from(file);
    let toks = lex(text, &name, env)?;
    let source = match root_path {
        Some(path) => Source::File(canonical(path)),
        None => Source::Text,
    };
    let mut parser = Parser {
        env,
        root_name: file.to_owned(),
        frames: Vec::new(),
        segments: vec![Segment {
            source,
            parent: None,
            base_dir: Rc::from(base_dir),
        }],
        snippets: HashMap::new(),
        expansions: 0,
        tokens_read: 0,
    };
    parser.frames.push(Frame {
        toks: Rc::from(toks),
        pos: 0,
        segment: 0,
    });
    parser.corefile()
}

/// The absolute, symlink-free form of `path` when it exists, for comparing imports.
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn token(tok: Tok) -> Token {
    Token {
        text: tok.text,
        location: tok.location,
    }
}

fn is_snippet_name(tok: &Tok) -> bool {
    tok.brace.is_none()
        && tok.text.len() > 2
        && tok.text.starts_with('(')
        && tok.text.ends_with(')')
}

impl Parser<'_> {
    /// The next token without consuming it (exhausted imports are left behind).
    fn peek(&mut self) -> Option<(&Tok, usize)> {
        while let Some(frame) = self.frames.last() {
            if frame.pos < frame.toks.len() {
                break;
            }
            self.frames.pop();
        }
        let frame = self.frames.last()?;
        frame.toks.get(frame.pos).map(|tok| (tok, frame.segment))
    }

    fn next(&mut self) -> Result<Option<Taken>, CorefileError> {
        let Some((tok, segment)) = self.peek() else {
            return Ok(None);
        };
        let taken = Taken {
            tok: tok.clone(),
            segment,
        };
        if let Some(frame) = self.frames.last_mut() {
            frame.pos += 1;
        }
        self.tokens_read += 1;
        if self.tokens_read > MAX_TOKENS {
            return Err(CorefileError::TooManyTokens {
                location: taken.tok.location,
            });
        }
        Ok(Some(taken))
    }

    /// Whether the next token continues the line `prev` ends on and is not a brace.
    fn next_on_line(&mut self, prev: &Taken) -> bool {
        match self.peek() {
            Some((tok, segment)) => tok.brace.is_none() && prev.same_line(tok, segment),
            None => false,
        }
    }

    /// The whole file: snippets, imports and server blocks.
    fn corefile(&mut self) -> Result<Corefile, CorefileError> {
        let mut blocks = Vec::new();
        while let Some(first) = self.next()? {
            match first.tok.brace {
                Some(Brace::Close) => {
                    return Err(CorefileError::UnexpectedClose {
                        location: first.tok.location,
                    });
                }
                Some(Brace::Open) => {
                    return Err(CorefileError::UnexpectedOpen {
                        location: first.tok.location,
                        expected: "server block keys",
                    });
                }
                None => {}
            }
            if first.tok.text == "import" {
                self.import(first)?;
                continue;
            }
            if is_snippet_name(&first.tok) {
                self.define_snippet(first)?;
                continue;
            }
            let first_location = first.tok.location.clone();
            let (keys, open) = self.keys(first)?;
            if keys.is_empty() {
                return Err(CorefileError::NoKeys {
                    location: first_location,
                });
            }
            let directives = match open {
                Some(open) => self.body(Some(open), 1)?.0,
                // Braces may be omitted only when the Corefile is this one block.
                None if blocks.is_empty() => self.body(None, 1)?.0,
                None => {
                    let location = match self.peek() {
                        Some((tok, _)) => tok.location.clone(),
                        None => keys
                            .last()
                            .map_or(first_location, |k: &Token| k.location.clone()),
                    };
                    let keys = keys.iter().map(|k| k.text.as_str()).collect::<Vec<_>>();
                    return Err(CorefileError::MissingOpen {
                        location,
                        keys: keys.join(" "),
                    });
                }
            };
            blocks.push(ServerBlock { keys, directives });
        }
        Ok(Corefile { blocks })
    }

    /// The keys of a server block, starting at `first`; returns them and the location of the
    /// `{` that opened the block, if one followed (on the key line or any later one).
    fn keys(&mut self, first: Taken) -> Result<(Vec<Token>, Option<Location>), CorefileError> {
        let mut keys = Vec::new();
        let mut prev = first;
        split_keys(&prev.tok, &mut keys);
        loop {
            let continues = prev.tok.text.ends_with(',');
            let Some((tok, segment)) = self.peek() else {
                return Ok((keys, None));
            };
            match tok.brace {
                Some(Brace::Open) => {
                    let location = tok.location.clone();
                    self.next()?;
                    return Ok((keys, Some(location)));
                }
                Some(Brace::Close) => return Ok((keys, None)),
                None if continues || prev.same_line(tok, segment) => {
                    if let Some(taken) = self.next()? {
                        split_keys(&taken.tok, &mut keys);
                        prev = taken;
                    }
                }
                None => return Ok((keys, None)),
            }
        }
    }

    /// Directive lines until the `}` matching `open` (or the end of input when `open` is
    /// `None`). Returns them and the `}` that ended the body, if any.
    fn body(
        &mut self,
        open: Option<Location>,
        depth: usize,
    ) -> Result<(Vec<Directive>, Option<Taken>), CorefileError> {
        if depth > MAX_NESTING {
            let location = open.unwrap_or_else(|| Location {
                file: Arc::from(self.root_name.as_str()),
                line: 1,
                column: 1,
            });
            return Err(CorefileError::TooDeep { location });
        }
        let mut directives = Vec::new();
        loop {
            let Some(first) = self.next()? else {
                return match open {
                    Some(location) => Err(CorefileError::Unclosed { location }),
                    None => Ok((directives, None)),
                };
            };
            match first.tok.brace {
                Some(Brace::Close) if open.is_some() => return Ok((directives, Some(first))),
                Some(Brace::Close) => {
                    return Err(CorefileError::UnexpectedClose {
                        location: first.tok.location,
                    });
                }
                Some(Brace::Open) => {
                    return Err(CorefileError::UnexpectedOpen {
                        location: first.tok.location,
                        expected: "a directive name; an option block's '{' ends its directive's line",
                    });
                }
                None => {}
            }
            if first.tok.text == "import" {
                self.import(first)?;
                continue;
            }
            directives.push(self.directive(first, depth)?);
        }
    }

    /// One directive: its name, the arguments on its line, and an option block if a `{` follows
    /// on that line.
    fn directive(&mut self, name: Taken, depth: usize) -> Result<Directive, CorefileError> {
        let mut args = Vec::new();
        let mut last = name;
        let name = token(last.tok.clone());
        while self.next_on_line(&last) {
            let Some(taken) = self.next()? else { break };
            args.push(token(taken.tok.clone()));
            last = taken;
        }
        let mut block = None;
        let opens = matches!(
            self.peek(),
            Some((tok, segment)) if tok.brace == Some(Brace::Open) && last.same_line(tok, segment)
        );
        if opens && let Some(open) = self.next()? {
            let (inner, close) = self.body(Some(open.tok.location), depth + 1)?;
            block = Some(inner);
            // Another directive may not follow a `}` on its line (a further `}` may).
            if let Some(close) = close
                && self.next_on_line(&close)
                && let Some((tok, _)) = self.peek()
            {
                return Err(CorefileError::AfterClose {
                    location: tok.location.clone(),
                    text: tok.text.clone(),
                });
            }
        }
        Ok(Directive { name, args, block })
    }

    /// `(name) { ... }` at top level: keeps the body's tokens, unparsed, for later imports.
    fn define_snippet(&mut self, head: Taken) -> Result<(), CorefileError> {
        let name = head.tok.text[1..head.tok.text.len() - 1].to_owned();
        let open = match self.peek() {
            Some((tok, _)) if tok.brace == Some(Brace::Open) => tok.location.clone(),
            Some((tok, segment)) if head.same_line(tok, segment) => {
                return Err(CorefileError::SnippetWithKeys {
                    location: tok.location.clone(),
                });
            }
            _ => {
                return Err(CorefileError::SnippetMissingOpen {
                    location: head.tok.location,
                    name,
                });
            }
        };
        self.next()?;
        let mut depth = 1usize;
        let mut toks = Vec::new();
        loop {
            let Some(taken) = self.next()? else {
                return Err(CorefileError::Unclosed { location: open });
            };
            match taken.tok.brace {
                Some(Brace::Open) => depth += 1,
                Some(Brace::Close) => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                None => {}
            }
            toks.push(taken.tok);
        }
        if let Some(previous) = self.snippets.get(&name) {
            return Err(CorefileError::SnippetRedefined {
                location: head.tok.location,
                name,
                previous: previous.location.clone(),
            });
        }
        let base_dir = self.segments[head.segment].base_dir.clone();
        self.snippets.insert(
            name,
            Snippet {
                toks: Rc::from(toks),
                base_dir,
                location: head.tok.location,
            },
        );
        Ok(())
    }

    /// `import PATTERN`: pushes the snippet's or the files' tokens onto the stream.
    fn import(&mut self, head: Taken) -> Result<(), CorefileError> {
        let mut args = Vec::new();
        let mut last_line = head.tok.end_line;
        while let Some((tok, segment)) = self.peek() {
            if segment != head.segment || tok.location.line != last_line || tok.brace.is_some() {
                break;
            }
            last_line = tok.end_line;
            if let Some(taken) = self.next()? {
                args.push(taken.tok);
            }
        }
        let [pattern] = args.as_slice() else {
            return Err(CorefileError::ImportArgs {
                location: head.tok.location,
            });
        };
        let pattern = pattern.text.clone();
        let location = head.tok.location.clone();
        if let Some(snippet) = self.snippets.get(&pattern) {
            let toks = snippet.toks.clone();
            let base_dir = snippet.base_dir.clone();
            let source = Source::Snippet(pattern);
            return self.push(&head, source, base_dir, toks);
        }
        let base_dir = self.segments[head.segment].base_dir.clone();
        let path = base_dir.join(&pattern);
        let files = if pattern.contains('*') {
            let matches = glob(&path, &pattern, &location)?;
            if matches.is_empty() {
                tracing::warn!(%location, %pattern, "import: no files match the glob");
            }
            matches
        } else {
            vec![path]
        };
        // Pushed last first, so the first match is read first.
        for file in files.into_iter().rev() {
            // Only regular files: a device or a pipe (`/dev/zero`, `/dev/stdin`) never ends.
            if std::fs::metadata(&file).is_ok_and(|m| !m.is_file()) {
                return Err(CorefileError::ImportNotFile {
                    location: location.clone(),
                    path: file,
                });
            }
            let bytes = std::fs::read(&file).map_err(|source| CorefileError::ImportRead {
                location: location.clone(),
                path: file.clone(),
                source,
            })?;
            let text = String::from_utf8(bytes).map_err(|_| CorefileError::ImportNotUtf8 {
                location: location.clone(),
                path: file.clone(),
            })?;
            let name: Arc<str> = Arc::from(file.display().to_string());
            let toks = lex(&text, &name, self.env)?;
            let dir: Rc<Path> = Rc::from(file.parent().unwrap_or(Path::new(".")));
            self.push(&head, Source::File(canonical(&file)), dir, Rc::from(toks))?;
        }
        Ok(())
    }

    /// Starts reading `toks` as a new expansion imported by `head`, refusing cycles.
    fn push(
        &mut self,
        head: &Taken,
        source: Source,
        base_dir: Rc<Path>,
        toks: Rc<[Tok]>,
    ) -> Result<(), CorefileError> {
        self.expansions += 1;
        if self.expansions > MAX_EXPANSIONS {
            return Err(CorefileError::TooManyImports {
                location: head.tok.location.clone(),
            });
        }
        let mut chain = Vec::new();
        let mut at = Some(head.segment);
        while let Some(index) = at {
            let segment = &self.segments[index];
            chain.push(segment.source.describe(&self.root_name));
            if segment.source == source {
                chain.reverse();
                chain.push(source.describe(&self.root_name));
                return Err(CorefileError::ImportCycle {
                    location: head.tok.location.clone(),
                    chain: chain.join(" -> "),
                });
            }
            at = segment.parent;
        }
        self.segments.push(Segment {
            source,
            parent: Some(head.segment),
            base_dir,
        });
        self.frames.push(Frame {
            toks,
            pos: 0,
            segment: self.segments.len() - 1,
        });
        Ok(())
    }
}

/// Splits a key token on commas; each non-empty piece is a key with its own column.
fn split_keys(tok: &Tok, keys: &mut Vec<Token>) {
    let mut column = tok.location.column;
    for piece in tok.text.split(',') {
        if !piece.is_empty() {
            keys.push(Token {
                text: piece.to_owned(),
                location: Location {
                    column,
                    ..tok.location.clone()
                },
            });
        }
        let width = u32::try_from(piece.chars().count()).unwrap_or(u32::MAX);
        column = column.saturating_add(width).saturating_add(1);
    }
}

/// The files matching `path`, whose last component may hold `*`s, sorted by name.
fn glob(path: &Path, pattern: &str, location: &Location) -> Result<Vec<PathBuf>, CorefileError> {
    let bad = || CorefileError::ImportGlob {
        location: location.clone(),
        pattern: pattern.to_owned(),
    };
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Err(bad());
    };
    if dir.to_string_lossy().contains('*') {
        return Err(bad());
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CorefileError::ImportRead {
                location: location.clone(),
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut matches: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|entry| std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file()))
        .filter(|entry| {
            entry
                .file_name()
                .to_str()
                .is_some_and(|file| wildcard_match(name, file))
        })
        .map(|entry| entry.path())
        .collect();
    matches.sort();
    Ok(matches)
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(prefix) = parts.next() else {
        return false;
    };
    let Some(mut rest) = text.strip_prefix(prefix) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*` at all: an exact match.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests;
