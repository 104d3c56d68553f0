//! Corefile text to tokens (nom 8): whitespace splitting, quotes, comments, `{$ENV}` substitution.
//! Knows nothing of blocks or directives; the parser groups tokens by line.

use std::sync::Arc;

use nom::branch::alt;
use nom::bytes::complete::{is_not, tag, take_till, take_till1, take_until1, take_while1};
use nom::character::complete::{anychar, char};
use nom::combinator::{cut, map, recognize, value};
use nom::multi::{fold_many0, many0, many1};
use nom::sequence::{delimited, preceded, terminated};
use nom::{IResult, Parser};

use super::{CorefileError, Location};

/// An unquoted `{` or `}`: the only tokens with structural meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Brace {
    Open,
    Close,
}

/// One lexed token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Tok {
    /// The text after quote removal and environment substitution.
    pub(super) text: String,
    /// `Some` only for a bare `{` / `}` as written (never from a quote or a substitution).
    pub(super) brace: Option<Brace>,
    /// Where the token starts.
    pub(super) location: Location,
    /// The line the token ends on (differs from the start for quoted tokens holding newlines).
    pub(super) end_line: u32,
}

/// What one step of the lexer recognised.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Lexeme {
    /// Whitespace or a comment.
    Skip,
    Quoted(String),
    Word(String),
}

/// Characters that end a bare word.
fn ends_word(c: char) -> bool {
    c.is_whitespace() || c == '#'
}

/// A bare word: runs to whitespace or `#`. A carriage return inside it is dropped, not a split
/// (CoreDNS's lexer ignores CR wherever it stands outside quotes).
fn word(input: &str) -> IResult<&str, String> {
    let (rest, first) = take_till1(ends_word).parse(input)?;
    let (rest, more) = many0(preceded(many1(char('\r')), take_till1(ends_word))).parse(rest)?;
    let mut text = first.to_owned();
    for piece in more {
        text.push_str(piece);
    }
    Ok((rest, text))
}

/// A quoted token: `"` ... `"`; only `\"` is an escape, other backslashes are kept; may span
/// lines. Once the opening quote is seen, a missing closing quote is a failure, not a backtrack.
fn quoted(input: &str) -> IResult<&str, String> {
    let body = fold_many0(
        alt((
            value("\"", tag("\\\"")),
            recognize((char('\\'), anychar)),
            is_not("\\\""),
        )),
        String::new,
        |mut acc, piece: &str| {
            acc.extend(piece.chars().filter(|c| *c != '\r'));
            acc
        },
    );
    preceded(char('"'), cut(terminated(body, char('"')))).parse(input)
}

fn lexeme(input: &str) -> IResult<&str, Lexeme> {
    alt((
        value(Lexeme::Skip, take_while1(char::is_whitespace)),
        value(Lexeme::Skip, (char('#'), take_till(|c| c == '\n'))),
        map(quoted, Lexeme::Quoted),
        map(word, Lexeme::Word),
    ))
    .parse(input)
}

/// A `{$NAME}` reference; yields NAME.
fn dollar_ref(input: &str) -> IResult<&str, &str> {
    delimited(tag("{$"), take_till1(|c| c == '}'), char('}')).parse(input)
}

/// A `{%NAME%}` reference; yields NAME.
fn percent_ref(input: &str) -> IResult<&str, &str> {
    delimited(tag("{%"), take_until1("%}"), tag("%}")).parse(input)
}

/// Replaces every `{$NAME}` and `{%NAME%}` in `text` (unset -> empty). Substituted values are
/// not scanned again, so a value that mentions itself cannot loop.
pub(super) fn substitute_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    if !text.contains('{') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // Once no closing `}` (or `%}`) is left, no later reference of that form can match:
    // remembering it keeps a long run of openers linear instead of quadratic.
    let mut dollar_closable = true;
    let mut percent_closable = true;
    while let Some(c) = rest.chars().next() {
        if c == '{' {
            let found = if rest.starts_with("{$") && dollar_closable {
                let found = dollar_ref(rest).ok();
                dollar_closable = found.is_some() || rest[2..].contains('}');
                found
            } else if rest.starts_with("{%") && percent_closable {
                let found = percent_ref(rest).ok();
                percent_closable = found.is_some() || rest[2..].contains("%}");
                found
            } else {
                None
            };
            if let Some((next, name)) = found {
                out.push_str(&env(name).unwrap_or_default());
                rest = next;
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Splits `text` (the contents of `file`) into tokens with their locations, substituting
/// environment references. A leading UTF-8 BOM is skipped.
pub(super) fn lex(
    text: &str,
    file: &Arc<str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Tok>, CorefileError> {
    let mut rest = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut line: u32 = 1;
    let mut column: u32 = 1;
    let mut toks = Vec::new();
    while !rest.is_empty() {
        let start = Location {
            file: file.clone(),
            line,
            column,
        };
        let (next, lexeme) = lexeme(rest).map_err(|_| CorefileError::UnterminatedQuote {
            location: start.clone(),
        })?;
        let consumed = &rest[..rest.len() - next.len()];
        for c in consumed.chars() {
            match c {
                '\n' => {
                    line = line.saturating_add(1);
                    column = 1;
                }
                '\r' => {}
                _ => column = column.saturating_add(1),
            }
        }
        rest = next;
        match lexeme {
            Lexeme::Skip => {}
            Lexeme::Quoted(raw) => toks.push(Tok {
                text: substitute_env(&raw, env),
                brace: None,
                location: start,
                end_line: line,
            }),
            Lexeme::Word(raw) if raw == "{}" => {
                // `{}` is an empty block, not a word.
                let close = Location {
                    column: start.column.saturating_add(1),
                    ..start.clone()
                };
                toks.push(brace_tok(Brace::Open, start, line));
                toks.push(brace_tok(Brace::Close, close, line));
            }
            Lexeme::Word(raw) => {
                let brace = match raw.as_str() {
                    "{" => Some(Brace::Open),
                    "}" => Some(Brace::Close),
                    _ => None,
                };
                toks.push(Tok {
                    text: substitute_env(&raw, env),
                    brace,
                    location: start,
                    end_line: line,
                });
            }
        }
    }
    Ok(toks)
}

fn brace_tok(brace: Brace, location: Location, line: u32) -> Tok {
    let text = match brace {
        Brace::Open => "{",
        Brace::Close => "}",
    };
    Tok {
        text: text.to_owned(),
        brace: Some(brace),
        location,
        end_line: line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    /// Renders tokens as `text@line:col` (`text` in brackets when it is a brace).
    fn render(text: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
        let file: Arc<str> = Arc::from("F");
        match lex(text, &file, env) {
            Ok(toks) => toks
                .iter()
                .map(|t| {
                    let shown = if t.brace.is_some() {
                        format!("[{}]", t.text)
                    } else {
                        t.text.clone()
                    };
                    if t.end_line == t.location.line {
                        format!("{shown}@{}:{}", t.location.line, t.location.column)
                    } else {
                        format!(
                            "{shown}@{}:{}-{}",
                            t.location.line, t.location.column, t.end_line
                        )
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn lexer_cases() {
        let cases: &[(&str, &str, &str)] = &[
            ("empty", "", ""),
            ("whitespace only", " \t\n\r\n ", ""),
            ("words", "a bb\tccc", "a@1:1 bb@1:3 ccc@1:6"),
            ("lines", "a\n  b\n\nc", "a@1:1 b@2:3 c@4:1"),
            ("bom skipped", "\u{feff}a b", "a@1:1 b@1:3"),
            ("crlf", "a\r\nb c\r\n", "a@1:1 b@2:1 c@2:3"),
            ("cr inside a word is dropped", "ab\rcd e", "abcd@1:1 e@1:6"),
            ("comment", "a # b c\nd", "a@1:1 d@2:1"),
            ("comment mid-word", "foo#bar baz\nx", "foo@1:1 x@2:1"),
            ("comment at start", "# only\n#two\nz", "z@3:1"),
            ("quoted with spaces", "a \"b c\" d", "a@1:1 b c@1:3 d@1:9"),
            ("empty quoted", "a \"\" b", "a@1:1 @1:3 b@1:6"),
            ("escaped quote", r#""say \"hi\"""#, "say \"hi\"@1:1"),
            ("other backslashes kept", r#""a\b\\c\n""#, r"a\b\\c\n@1:1"),
            ("quoted newline", "\"a\nb\" c\nd", "a\nb@1:1-2 c@2:4 d@3:1"),
            ("quoted cr dropped", "\"a\r\nb\"", "a\nb@1:1-2"),
            ("hash in quotes", "\"a#b\" c", "a#b@1:1 c@1:7"),
            ("quote mid-word is literal", "a\"b\" c", "a\"b\"@1:1 c@1:6"),
            ("closing quote ends token", "\"a\"b", "a@1:1 b@1:4"),
            ("braces", "a {\n}", "a@1:1 [{]@1:3 [}]@2:1"),
            ("empty braces pair", "a {}", "a@1:1 [{]@1:3 [}]@1:4"),
            ("brace in word is text", "{a} b{", "{a}@1:1 b{@1:5"),
            ("quoted brace is text", "\"{\" \"}\"", "{@1:1 }@1:5"),
            ("unicode columns", "é ü x", "é@1:1 ü@1:3 x@1:5"),
            ("unicode space splits", "a\u{a0}b", "a@1:1 b@1:3"),
            (
                "unterminated quote",
                "a\n  \"bc",
                "error: F:2:3: unterminated quoted string, expected a closing '\"'",
            ),
            (
                "backslash at end of quote",
                "\"a\\",
                "error: F:1:1: unterminated quoted string, expected a closing '\"'",
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(render(input, &no_env), *want, "case {name}");
        }
    }

    #[test]
    fn env_substitution_cases() {
        let env = |name: &str| match name {
            "A" => Some("alpha".to_owned()),
            "B" => Some("{$A}".to_owned()),
            "SP" => Some("x y".to_owned()),
            "OPEN" => Some("{".to_owned()),
            _ => None,
        };
        let cases: &[(&str, &str, &str)] = &[
            ("dollar form", "{$A}", "alpha@1:1"),
            ("percent form", "{%A%}", "alpha@1:1"),
            ("inside a word", "x{$A}y{%A%}z", "xalphayalphaz@1:1"),
            ("unset is empty", "a{$NOPE}b", "ab@1:1"),
            ("unset whole token stays a token", "{$NOPE} x", "@1:1 x@1:9"),
            ("no rescan of values", "{$B}", "{$A}@1:1"),
            ("value with space stays one token", "{$SP}", "x y@1:1"),
            ("value brace is not structural", "{$OPEN}", "{@1:1"),
            ("in quotes", "\"{$A} b\"", "alpha b@1:1"),
            ("empty name left alone", "{$} {%%}", "{$}@1:1 {%%}@1:5"),
            ("unclosed left alone", "{$A {%A", "{$A@1:1 {%A@1:5"),
        ];
        for (name, input, want) in cases {
            assert_eq!(render(input, &env), *want, "case {name}");
        }
    }
}
