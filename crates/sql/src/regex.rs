//! The patterns of `contains`, `starts_with`, `regex` and `ignore_case` conditions, read from the
//! engine's compiled regular expressions (Rust `regex` syntax) and written again in a syntax that
//! RE2 (DuckDB, BigQuery), PostgreSQL's advanced expressions and Java (Spark, Trino) read alike.
//!
//! Only a subset is read: literals, classes of literals and ranges, `.`, `^`, `$`, `\A`, `\z`,
//! groups, alternation, repetition, the `i` flag, Perl and Unicode classes (`\d`, `\w`, `\s`,
//! `\p{Greek}`) and `\b` at either end of the pattern. Case-insensitive matching is written out:
//! each character becomes the class of the characters the engine's regex takes for it
//! ([`leadscore_core::rules::condition::case_insensitive_variants`]), so no dialect's own case
//! folding (which differs between them, and with the locale in PostgreSQL) is ever used. `.` is
//! written as "anything but a newline", which PostgreSQL's `.` is not. Perl classes and word
//! boundaries are Unicode-aware in the engine and ASCII or locale-bound in the dialects, so
//! classes are written out as the characters the engine's regexes take for them
//! ([`leadscore_core::rules::condition::class_characters`]), and a `\b` as the word or
//! non-word character (or edge of the text) it stands for; one elsewhere is refused.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, OnceLock};

use leadscore_core::rules::condition::{case_insensitive_variants, class_characters};

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
    /// `\b`, until [`parse`] writes it out (only at either end of the pattern).
    WordBoundary,
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
    let node = match node {
        Node::Alternation(alternatives) => {
            Node::Alternation(alternatives.into_iter().map(word_boundaries_at_the_ends).collect())
        }
        node => word_boundaries_at_the_ends(node),
    };
    if contains_word_boundary(&node) {
        return Err(Unsupported("`\\b`".into()));
    }
    Ok(node)
}

/// Unicode word characters (`\w`), as the engine's regexes read them.
fn word_characters() -> Vec<char> {
    spelled_out(r"\w").unwrap_or_default()
}

/// A class the engine's regexes know (`\d`, `\s`, `\w`, `\p{L}`), spelled out, once each.
fn spelled_out(class: &str) -> Result<Vec<char>, Unsupported> {
    static CLASSES: OnceLock<Mutex<HashMap<String, Vec<char>>>> = OnceLock::new();
    let classes = CLASSES.get_or_init(Mutex::default);
    if let Some(found) = classes.lock().ok().and_then(|map| map.get(class).cloned()) {
        return Ok(found);
    }
    let characters = class_characters(class).ok_or_else(|| Unsupported(format!("`{class}`")))?;
    if let Ok(mut map) = classes.lock() {
        map.insert(class.to_string(), characters.clone());
    }
    Ok(characters)
}

/// A `\b` at the start or the end of a sequence, written as what it means there for a match
/// anywhere in the text: next to a word character, the text's edge or a non-word character;
/// next to a non-word character, a word character. Elsewhere, or next to what may be either,
/// it stays, and the pattern is refused.
fn word_boundaries_at_the_ends(node: Node) -> Node {
    let Node::Concat(mut items) = node else { return node };
    let word = word_characters();
    let edge = |chars: Option<BTreeSet<char>>, anchor: Node| match chars {
        Some(chars) if chars.iter().all(|c| word.binary_search(c).is_ok()) => {
            Some(Node::Alternation(vec![anchor, Node::Class { negated: true, chars: word.clone() }]))
        }
        Some(chars) if chars.iter().all(|c| word.binary_search(c).is_err()) => {
            Some(Node::Class { negated: false, chars: word.clone() })
        }
        _ => None,
    };
    if items.len() > 1
        && items[0] == Node::WordBoundary
        && let Some(replacement) = edge(first_characters(&items[1]), Node::Start)
    {
        items[0] = replacement;
    }
    let last = items.len().saturating_sub(1);
    if items.len() > 1
        && items[last] == Node::WordBoundary
        && let Some(replacement) = edge(last_characters(&items[last - 1]), Node::End)
    {
        items[last] = replacement;
    }
    Node::Concat(items)
}

/// The characters a match of `node` may start with, if it always starts with one of a known set.
fn first_characters(node: &Node) -> Option<BTreeSet<char>> {
    match node {
        Node::Class { negated: false, chars } => Some(chars.iter().copied().collect()),
        Node::Concat(items) => items.first().and_then(first_characters),
        Node::Alternation(alternatives) => union(alternatives.iter().map(first_characters)),
        Node::Repeat { node, min, .. } if *min > 0 => first_characters(node),
        _ => None,
    }
}

/// The characters a match of `node` may end with, if it always ends with one of a known set.
fn last_characters(node: &Node) -> Option<BTreeSet<char>> {
    match node {
        Node::Concat(items) => items.last().and_then(last_characters),
        Node::Alternation(alternatives) => union(alternatives.iter().map(last_characters)),
        Node::Repeat { node, min, .. } if *min > 0 => last_characters(node),
        other => first_characters(other),
    }
}

fn union(sets: impl Iterator<Item = Option<BTreeSet<char>>>) -> Option<BTreeSet<char>> {
    let mut all = BTreeSet::new();
    for set in sets {
        all.extend(set?);
    }
    Some(all)
}

fn contains_word_boundary(node: &Node) -> bool {
    match node {
        Node::WordBoundary => true,
        Node::Concat(items) | Node::Alternation(items) => items.iter().any(contains_word_boundary),
        Node::Repeat { node, .. } => contains_word_boundary(node),
        _ => false,
    }
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

    /// The name after `\p`: `{Greek}` or one letter.
    fn property_name(&mut self) -> Result<String, Unsupported> {
        match self.next() {
            Some('{') => {
                let mut name = String::from("{");
                while let Some(c) = self.next() {
                    name.push(c);
                    if c == '}' {
                        break;
                    }
                }
                Ok(name)
            }
            Some(letter) if letter.is_ascii_alphabetic() => Ok(letter.to_string()),
            _ => Err(Unsupported("a `\\p` without a class name".into())),
        }
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
                    'b' => Ok(Node::WordBoundary),
                    'd' | 's' | 'w' => Ok(Node::Class { negated: false, chars: spelled_out(&format!("\\{escaped}"))? }),
                    'D' | 'S' | 'W' => Ok(Node::Class {
                        negated: true,
                        chars: spelled_out(&format!("\\{}", escaped.to_ascii_lowercase()))?,
                    }),
                    'p' | 'P' => {
                        let name = self.property_name()?;
                        Ok(Node::Class { negated: escaped == 'P', chars: spelled_out(&format!("\\p{name}"))? })
                    }
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
                        'd' | 's' | 'w' => {
                            members.extend(spelled_out(&format!("\\{escaped}"))?);
                            continue;
                        }
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
        // Written out by `parse`, which refuses the patterns where it is left.
        Node::WordBoundary => String::new(),
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
    fn unicode_aware_classes_are_spelled_out() {
        let digits = parse(r"\d").unwrap();
        assert!(
            matches!(&digits, Node::Concat(items) if matches!(&items[0], Node::Class { negated: false, chars } if chars.contains(&'٣')))
        );
        let vp = parse(r"(?i)\b(vp|ceo)\b").unwrap();
        let Node::Concat(items) = &vp else { panic!("{vp:?}") };
        assert!(matches!(&items[0], Node::Alternation(a) if a[0] == Node::Start));
        assert!(matches!(&items[2], Node::Alternation(a) if a[0] == Node::End));
        assert!(parse(r"\b-").is_ok(), "a boundary before a non-word character");
    }

    #[test]
    fn boundaries_inside_and_posix_classes_are_refused() {
        for pattern in [r"a\bb", r"\b.", r"\B", "(?m)^a", "[[:alpha:]]", r"[\D]"] {
            assert!(parse(pattern).is_err(), "{pattern}");
        }
    }
}
