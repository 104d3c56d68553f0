//! Kubernetes label selectors (`labels`, `namespace_labels` options): parse the text form, match a
//! label map, and print the canonical form. Same grammar as `k8s.io/apimachinery/pkg/labels`.

use std::collections::BTreeMap;
use std::fmt;

/// A selector: every requirement must hold. Requirements are kept sorted by key (then by
/// operator text), so the canonical form does not depend on the order they were written in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Selector {
    requirements: Vec<Requirement>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
    /// Sorted and de-duplicated.
    values: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unable to parse label selector '{text}': {reason}")]
pub(crate) struct SelectorError {
    text: String,
    reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Word(String),
    Bang,
    Eq,
    DoubleEq,
    NotEq,
    Gt,
    Lt,
    Open,
    Close,
    Comma,
}

fn lex(text: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '!' => {
                chars.next();
                if chars.peek() == Some(&'=') {
                    chars.next();
                    out.push(Tok::NotEq);
                } else {
                    out.push(Tok::Bang);
                }
            }
            '=' => {
                chars.next();
                if chars.peek() == Some(&'=') {
                    chars.next();
                    out.push(Tok::DoubleEq);
                } else {
                    out.push(Tok::Eq);
                }
            }
            '>' => {
                chars.next();
                out.push(Tok::Gt);
            }
            '<' => {
                chars.next();
                out.push(Tok::Lt);
            }
            '(' => {
                chars.next();
                out.push(Tok::Open);
            }
            ')' => {
                chars.next();
                out.push(Tok::Close);
            }
            ',' => {
                chars.next();
                out.push(Tok::Comma);
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || "!=<>(),".contains(c) {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                out.push(Tok::Word(word));
            }
        }
    }
    Ok(out)
}

/// `[prefix/]name`: name 1-63 chars of alphanumerics, `-`, `_`, `.`, starting and ending
/// alphanumeric; prefix a DNS subdomain.
fn valid_key(key: &str) -> bool {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix
        && (p.is_empty()
            || p.len() > 253
            || !p.split('.').all(|l| {
                !l.is_empty()
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            }))
    {
        return false;
    }
    !name.is_empty() && valid_value(name)
}

/// Empty, or up to 63 chars of alphanumerics, `-`, `_`, `.`, starting and ending alphanumeric.
fn valid_value(value: &str) -> bool {
    if value.is_empty() {
        return true;
    }
    let bytes = value.as_bytes();
    value.len() <= 63
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Selector {
    /// Parse the text form, e.g. `environment in (production, qa),application=nginx`.
    pub(crate) fn parse(text: &str) -> Result<Selector, SelectorError> {
        Self::parse_inner(text).map_err(|reason| SelectorError {
            text: text.to_owned(),
            reason,
        })
    }

    fn parse_inner(text: &str) -> Result<Selector, String> {
        let toks = lex(text)?;
        let mut pos = 0;
        let mut requirements = Vec::new();
        if toks.is_empty() {
            return Ok(Selector { requirements });
        }
        loop {
            requirements.push(parse_requirement(&toks, &mut pos)?);
            match toks.get(pos) {
                None => break,
                Some(Tok::Comma) => pos += 1,
                Some(t) => return Err(format!("unexpected {t:?}")),
            }
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key).then_with(|| a.op.text().cmp(b.op.text())));
        Ok(Selector { requirements })
    }

    /// Whether `labels` satisfy every requirement.
    pub(crate) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

fn word(toks: &[Tok], pos: &mut usize, what: &str) -> Result<String, String> {
    match toks.get(*pos) {
        Some(Tok::Word(w)) => {
            *pos += 1;
            Ok(w.clone())
        }
        other => Err(format!("expected {what}, found {other:?}")),
    }
}

fn parse_requirement(toks: &[Tok], pos: &mut usize) -> Result<Requirement, String> {
    let negated = toks.get(*pos) == Some(&Tok::Bang);
    if negated {
        *pos += 1;
    }
    let key = word(toks, pos, "a key")?;
    if !valid_key(&key) {
        return Err(format!("invalid label key '{key}'"));
    }
    if negated {
        return Ok(Requirement {
            key,
            op: Op::DoesNotExist,
            values: Vec::new(),
        });
    }
    let op = match toks.get(*pos) {
        None | Some(Tok::Comma) => {
            return Ok(Requirement {
                key,
                op: Op::Exists,
                values: Vec::new(),
            });
        }
        Some(Tok::Eq) => Op::Equals,
        Some(Tok::DoubleEq) => Op::DoubleEquals,
        Some(Tok::NotEq) => Op::NotEquals,
        Some(Tok::Gt) => Op::GreaterThan,
        Some(Tok::Lt) => Op::LessThan,
        Some(Tok::Word(w)) if w == "in" => Op::In,
        Some(Tok::Word(w)) if w == "notin" => Op::NotIn,
        Some(t) => return Err(format!("expected an operator after '{key}', found {t:?}")),
    };
    *pos += 1;
    let mut values = Vec::new();
    match op {
        Op::In | Op::NotIn => {
            if toks.get(*pos) != Some(&Tok::Open) {
                return Err(format!("expected '(' after '{}'", op.text().trim()));
            }
            *pos += 1;
            loop {
                match toks.get(*pos) {
                    Some(Tok::Word(w)) => {
                        values.push(w.clone());
                        *pos += 1;
                    }
                    // An empty value: `in (a,,b)` or `in ()`.
                    Some(Tok::Comma | Tok::Close) => values.push(String::new()),
                    other => return Err(format!("expected a value, found {other:?}")),
                }
                match toks.get(*pos) {
                    Some(Tok::Comma) => *pos += 1,
                    Some(Tok::Close) => {
                        *pos += 1;
                        break;
                    }
                    other => return Err(format!("expected ',' or ')', found {other:?}")),
                }
            }
        }
        Op::GreaterThan | Op::LessThan => {
            let v = word(toks, pos, "an integer")?;
            if v.parse::<i64>().is_err() {
                return Err(format!("'{v}' is not an integer"));
            }
            values.push(v);
        }
        _ => {
            // `a=` (empty value) is allowed.
            match toks.get(*pos) {
                Some(Tok::Word(w)) => {
                    values.push(w.clone());
                    *pos += 1;
                }
                _ => values.push(String::new()),
            }
        }
    }
    if let Some(bad) = values.iter().find(|v| !valid_value(v)) {
        return Err(format!("invalid label value '{bad}'"));
    }
    values.sort();
    values.dedup();
    Ok(Requirement { key, op, values })
}

impl Op {
    fn text(self) -> &'static str {
        match self {
            Op::Equals => "=",
            Op::DoubleEquals => "==",
            Op::NotEquals => "!=",
            Op::In => " in ",
            Op::NotIn => " notin ",
            Op::Exists => "",
            Op::DoesNotExist => "!",
            Op::GreaterThan => ">",
            Op::LessThan => "<",
        }
    }
}

impl Requirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        let in_set = |v: &String| self.values.binary_search(v).is_ok();
        match self.op {
            Op::Equals | Op::DoubleEquals | Op::In => value.is_some_and(in_set),
            Op::NotEquals | Op::NotIn => !value.is_some_and(in_set),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
            Op::GreaterThan | Op::LessThan => {
                let (Some(have), Some(want)) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values.first().and_then(|v| v.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.op == Op::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.op {
            Op::DoesNotExist => write!(f, "!{}", self.key),
            Op::Exists => write!(f, "{}", self.key),
            Op::In | Op::NotIn => write!(
                f,
                "{}{}({})",
                self.key,
                self.op.text(),
                self.values.join(",")
            ),
            _ => write!(
                f,
                "{}{}{}",
                self.key,
                self.op.text(),
                self.values.first().map_or("", String::as_str)
            ),
        }
    }
}

impl fmt::Display for Selector {
    /// The canonical form: requirements sorted by key, set values sorted, no spaces except
    /// around `in`/`notin`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn canonical_form_of_the_coredns_setup_vector() {
        let s =
            Selector::parse("environment in (production, staging, qa),application=nginx").unwrap();
        assert_eq!(
            s.to_string(),
            "application=nginx,environment in (production,qa,staging)"
        );
    }

    #[test]
    fn canonical_forms() {
        for (text, want) in [
            ("a=b", "a=b"),
            ("a==b", "a==b"),
            ("a != b", "a!=b"),
            ("a notin (x)", "a notin (x)"),
            ("b, !a", "!a,b"),
            ("example.com/tier=web", "example.com/tier=web"),
            ("a=", "a="),
            ("n>5", "n>5"),
            ("", ""),
        ] {
            assert_eq!(Selector::parse(text).unwrap().to_string(), want, "{text}");
        }
    }

    #[test]
    fn rejects_bad_selectors() {
        for text in [
            "a in b",
            "a in (b",
            "=b",
            "a=b c",
            "a=b,",
            "-a=b",
            "a=b!",
            "a=-b",
            "a>x",
            "a in (b c)",
            "Bad_Prefix/a=b",
        ] {
            assert!(Selector::parse(text).is_err(), "{text} should fail");
        }
    }

    #[test]
    fn matching() {
        let l = labels(&[("app", "nginx"), ("env", "qa"), ("n", "7")]);
        for (text, want) in [
            ("app=nginx", true),
            ("app==nginx", true),
            ("app=other", false),
            ("app!=other", true),
            ("missing!=x", true),
            ("env in (prod, qa)", true),
            ("env in (prod)", false),
            ("env notin (prod)", true),
            ("missing notin (prod)", true),
            ("env notin (qa)", false),
            ("app", true),
            ("missing", false),
            ("!missing", true),
            ("!app", false),
            ("n>5", true),
            ("n<5", false),
            ("missing>1", false),
            ("app=nginx,env in (qa)", true),
            ("app=nginx,env in (prod)", false),
            ("", true),
        ] {
            assert_eq!(Selector::parse(text).unwrap().matches(&l), want, "{text}");
        }
    }
}
