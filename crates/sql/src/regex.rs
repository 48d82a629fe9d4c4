//! The patterns of `contains`, `starts_with`, `regex` and `ignore_case` conditions, read from the
//! engine's compiled regular expressions (Rust `regex` syntax) and written again in a syntax that
//! RE2 (DuckDB, BigQuery), PostgreSQL's advanced expressions and Java (Spark, Trino) read alike.
//!
//! Only a subset is read: literals, classes of literals and ranges, `.`, `^`, `$`, `\A`, `\z`,
//! groups, alternation, repetition and the `i` flag. Case-insensitive matching is written out:
//! each character becomes the class of the characters the engine's regex takes for it
//! ([`leadscore_core::rules::condition::case_insensitive_variants`]), so no dialect's own case
//! folding (which differs between them, and with the locale in PostgreSQL) is ever used. `.` is
//! written as "anything but a newline", which PostgreSQL's `.` is not. Perl classes (`\d`, `\w`,
//! `\s`), word boundaries and Unicode classes are Unicode-aware in the engine and ASCII or
//! locale-bound in the dialects: they are refused until they are written out too.

use std::collections::BTreeSet;

use leadscore_core::rules::condition::case_insensitive_variants;

use crate::dialect::Dialect;

/// A parsed pattern.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    /// One of these characters, or (negated) any other.
    Class {
        negated: bool,
        chars: Vec<char>,
    },
    /// Any character but `\n`.
    AnyButNewline,
    Start,
    End,
    Concat(Vec<Node>),
    Alternation(Vec<Node>),
    Repeat {
        node: Box<Node>,
        min: u32,
        max: Option<u32>,
    },
}

impl Node {
    /// The whole text matches `node`.
    pub(crate) fn whole(node: Node) -> Node {
        Node::Concat(vec![Node::Start, node, Node::End])
    }
}

/// What in a pattern is not read (yet), for the error that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unsupported(pub(crate) String);

/// Parses a pattern of the engine's regex syntax.
pub(crate) fn parse(pattern: &str) -> Result<Node, Unsupported> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut parser = Parser { chars, at: 0 };
    let node = parser.alternation(false)?;
    if parser.at < parser.chars.len() {
        return Err(Unsupported(format!("an unbalanced `{}`", parser.chars[parser.at])));
    }
    Ok(node)
}

struct Parser {
    chars: Vec<char>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.at += usize::from(c.is_some());
        c
    }

    fn eat(&mut self, text: &str) -> bool {
        let wanted: Vec<char> = text.chars().collect();
        if self.chars[self.at..].starts_with(&wanted) {
            self.at += wanted.len();
            true
        } else {
            false
        }
    }

    /// Alternatives up to the end or a closing parenthesis, with the `i` flag given.
    fn alternation(&mut self, mut ignore_case: bool) -> Result<Node, Unsupported> {
        let mut alternatives = Vec::new();
        let mut items = Vec::new();
        loop {
            match self.peek() {
                None | Some(')') => break,
                Some('|') => {
                    self.at += 1;
                    alternatives.push(Node::Concat(std::mem::take(&mut items)));
                }
                Some('(') => {
                    self.at += 1;
                    if self.eat("?") {
                        // Flags for the rest of the group, or a group with flags of its own.
                        let mut flags = String::new();
                        while let Some(c) = self.peek().filter(|c| *c != ')' && *c != ':') {
                            flags.push(c);
                            self.at += 1;
                        }
                        let (is_group, is_named) = match self.next() {
                            Some(':') => (true, false),
                            Some(')') => (false, false),
                            _ => (false, true),
                        };
                        if is_named || flags.starts_with('P') || flags.starts_with('<') {
                            return Err(Unsupported("a named group".into()));
                        }
                        let inner_ignore_case = match flags.as_str() {
                            "i" => true,
                            "-i" => false,
                            "" => ignore_case,
                            other => return Err(Unsupported(format!("the flags `(?{other})`"))),
                        };
                        if is_group {
                            let inner = self.alternation(inner_ignore_case)?;
                            self.close()?;
                            items.push(inner);
                        } else {
                            ignore_case = inner_ignore_case;
                        }
                    } else {
                        let inner = self.alternation(ignore_case)?;
                        self.close()?;
                        items.push(inner);
                    }
                }
                Some('*' | '+' | '?' | '{') => {
                    let Some(node) = items.pop() else {
                        return Err(Unsupported("a repetition of nothing".into()));
                    };
                    let repeated = self.repetition(node)?;
                    items.push(repeated);
                }
                Some(_) => {
                    let atom = self.atom(ignore_case)?;
                    items.push(atom);
                }
            }
        }
        alternatives.push(Node::Concat(items));
        Ok(if alternatives.len() == 1 {
            alternatives.pop().unwrap_or(Node::Concat(Vec::new()))
        } else {
            Node::Alternation(alternatives)
        })
    }

    fn close(&mut self) -> Result<(), Unsupported> {
        if self.next() == Some(')') { Ok(()) } else { Err(Unsupported("an unclosed group".into())) }
    }

    fn repetition(&mut self, node: Node) -> Result<Node, Unsupported> {
        let (min, max) = match self.next() {
            Some('*') => (0, None),
            Some('+') => (1, None),
            Some('?') => (0, Some(1)),
            _ => {
                let mut text = String::new();
                while let Some(c) = self.next() {
                    if c == '}' {
                        break;
                    }
                    text.push(c);
                }
                let number =
                    |t: &str| t.trim().parse::<u32>().map_err(|_| Unsupported(format!("the repetition `{{{text}}}`")));
                match text.split_once(',') {
                    None => {
                        let n = number(&text)?;
                        (n, Some(n))
                    }
                    Some((lo, "")) => (number(lo)?, None),
                    Some((lo, hi)) => (number(lo)?, Some(number(hi)?)),
                }
            }
        };
        // Laziness changes which match is found, not whether there is one.
        self.eat("?");
        if matches!(node, Node::Start | Node::End) {
            return Err(Unsupported("a repeated anchor".into()));
        }
        Ok(Node::Repeat { node: Box::new(node), min, max })
    }

    fn atom(&mut self, ignore_case: bool) -> Result<Node, Unsupported> {
        let c = self.next().unwrap_or_default();
        let literal = |c: char| Node::Class { negated: false, chars: folded(c, ignore_case) };
        match c {
            '.' => Ok(Node::AnyButNewline),
            '^' => Ok(Node::Start),
            '$' => Ok(Node::End),
            '[' => self.class(ignore_case),
            '\\' => {
                let escaped = self.next().ok_or_else(|| Unsupported("a trailing `\\`".into()))?;
                match escaped {
                    'A' => Ok(Node::Start),
                    'z' => Ok(Node::End),
                    'n' => Ok(literal('\n')),
                    't' => Ok(literal('\t')),
                    'r' => Ok(literal('\r')),
                    'f' => Ok(literal('\u{c}')),
                    'v' => Ok(literal('\u{b}')),
                    c if c.is_ascii_punctuation() => Ok(literal(c)),
                    other => Err(Unsupported(format!("`\\{other}`"))),
                }
            }
            c => Ok(literal(c)),
        }
    }

    /// A bracketed class: literals and ranges, possibly negated.
    fn class(&mut self, ignore_case: bool) -> Result<Node, Unsupported> {
        let negated = self.eat("^");
        let mut members: BTreeSet<char> = BTreeSet::new();
        let mut first = true;
        loop {
            let c = self.next().ok_or_else(|| Unsupported("an unclosed class".into()))?;
            if c == ']' && !first {
                break;
            }
            first = false;
            let start = match c {
                '[' if self.peek() == Some(':') => return Err(Unsupported("an ASCII class `[:...:]`".into())),
                '[' => return Err(Unsupported("a nested class".into())),
                '&' | '~' | '-' if self.peek() == Some(c) => {
                    return Err(Unsupported(format!("a class operation `{c}{c}`")));
                }
                '\\' => {
                    let escaped = self.next().ok_or_else(|| Unsupported("a trailing `\\`".into()))?;
                    match escaped {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        c if c.is_ascii_punctuation() => c,
                        other => return Err(Unsupported(format!("`\\{other}` in a class"))),
                    }
                }
                c => c,
            };
            if self.peek() == Some('-') && self.chars.get(self.at + 1).is_some_and(|c| *c != ']') {
                self.at += 1;
                let end = match self.next() {
                    Some('\\') => self
                        .next()
                        .filter(|c| c.is_ascii_punctuation())
                        .ok_or_else(|| Unsupported("an escape ending a range".into()))?,
                    Some(end) => end,
                    None => return Err(Unsupported("an unclosed class".into())),
                };
                if end < start {
                    return Err(Unsupported("a reversed range".into()));
                }
                if (end as u32) - (start as u32) > 4096 {
                    return Err(Unsupported(format!("the wide range `{start}-{end}`")));
                }
                for member in (start as u32..=end as u32).filter_map(char::from_u32) {
                    members.extend(folded(member, ignore_case));
                }
            } else {
                members.extend(folded(start, ignore_case));
            }
        }
        Ok(Node::Class { negated, chars: members.into_iter().collect() })
    }
}

/// A character and, when case is ignored, every character the engine takes for it.
fn folded(c: char, ignore_case: bool) -> Vec<char> {
    let mut variants = if ignore_case { case_insensitive_variants(c) } else { vec![c] };
    variants.sort_unstable();
    variants
}

/// The largest repetition count a pattern uses, so that dialects with lower limits refuse it.
pub(crate) fn largest_repeat(node: &Node) -> u32 {
    match node {
        Node::Repeat { node, min, max } => (*min).max(max.unwrap_or(0)).max(largest_repeat(node)),
        Node::Concat(items) | Node::Alternation(items) => items.iter().map(largest_repeat).max().unwrap_or(0),
        _ => 0,
    }
}

/// A parsed pattern in the dialect's syntax. Groups are capturing (every dialect has them), which
/// changes nothing to whether a text matches, and neither does the order of alternatives.
pub(crate) fn render(dialect: Dialect, node: &Node) -> String {
    match node {
        Node::Class { negated: false, chars } if chars.len() == 1 => dialect.regex_char(chars[0]),
        Node::Class { negated, chars } => {
            let mut out = String::from(if *negated { "[^" } else { "[" });
            let mut i = 0;
            while i < chars.len() {
                let mut j = i;
                while j + 1 < chars.len() && chars[j + 1] as u32 == chars[j] as u32 + 1 {
                    j += 1;
                }
                out.push_str(&dialect.regex_char(chars[i]));
                if j > i {
                    if j > i + 1 {
                        out.push('-');
                    }
                    out.push_str(&dialect.regex_char(chars[j]));
                }
                i = j + 1;
            }
            if chars.is_empty() {
                // Never made by the parser; written so that it still means what it says.
                let everything = format!("{}-{}", dialect.regex_char('\0'), dialect.regex_char(char::MAX));
                return if *negated { format!("[{everything}]") } else { format!("[^{everything}]") };
            }
            out.push(']');
            out
        }
        Node::AnyButNewline => format!("[^{}]", dialect.regex_char('\n')),
        Node::Start => "^".into(),
        Node::End => "$".into(),
        Node::Concat(items) => items.iter().map(|item| render_in_sequence(dialect, item)).collect(),
        Node::Alternation(alternatives) => {
            // Sorted, so that the query's text does not depend on the order the compiler
            // listed a set's texts in (alternatives match the same texts in any order).
            let mut rendered: Vec<String> = alternatives.iter().map(|a| render(dialect, a)).collect();
            rendered.sort();
            rendered.join("|")
        }
        Node::Repeat { node, min, max } => {
            let inner = match node.as_ref() {
                Node::Class { .. } | Node::AnyButNewline => render(dialect, node),
                other => format!("({})", render(dialect, other)),
            };
            let count = match (min, max) {
                (0, None) => "*".to_string(),
                (1, None) => "+".to_string(),
                (0, Some(1)) => "?".to_string(),
                (n, Some(m)) if n == m => format!("{{{n}}}"),
                (n, None) => format!("{{{n},}}"),
                (n, Some(m)) => format!("{{{n},{m}}}"),
            };
            format!("{inner}{count}")
        }
    }
}

fn render_in_sequence(dialect: Dialect, node: &Node) -> String {
    match node {
        Node::Alternation(_) => format!("({})", render(dialect, node)),
        Node::Concat(items) if items.len() != 1 => format!("({})", render(dialect, node)),
        _ => render(dialect, node),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duckdb(pattern: &str) -> String {
        render(Dialect::DuckDb, &parse(pattern).unwrap())
    }

    #[test]
    fn contains_becomes_classes_of_case_variants() {
        assert_eq!(duckdb("(?i)(?:vp|ceo)"), "([Cc][Ee][Oo]|[Vv][Pp])");
        assert_eq!(duckdb("(?i)^(?:sk)"), "^([Ssſ][KkK])");
        assert_eq!(duckdb("(?:/pricing)"), "(\\x{2F}pricing)");
        assert_eq!(render(Dialect::Postgres, &parse("a.b").unwrap()), "a[^\\u000A]b");
        assert_eq!(duckdb("部長|マネージャー"), "マネージャー|部長");
    }

    #[test]
    fn repetitions_groups_and_classes() {
        assert_eq!(duckdb("a{2,3}(bc)+[x-z0]?"), "a{2,3}(bc)+[0x-z]?");
        assert_eq!(duckdb("[^a-c]*"), "[^a-c]*");
        assert_eq!(largest_repeat(&parse("a{2,300}").unwrap()), 300);
    }

    #[test]
    fn unicode_aware_classes_are_refused() {
        for pattern in [r"\bvp\b", r"\d+", r"\w", r"\p{L}", "(?m)^a", "[[:alpha:]]"] {
            assert!(parse(pattern).is_err(), "{pattern}");
        }
    }
}
