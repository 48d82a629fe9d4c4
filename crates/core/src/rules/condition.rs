//! Conditions on a record's fields (a lead's attributes or an event's properties) and on the
//! lead's other scores, and their evaluation.
//!
//! A condition on scores reads them through [`Scores`], which the engine implements over the
//! scores it has already evaluated (the compiler orders scores so that the ones tested come
//! first); event filters, which see no scores, pass [`NoScores`].
//!
//! Text tests are Unicode-aware: `contains` and `ignore_case` fold case with the `regex` crate's
//! simple case folding ("DIRECTOR", "Директор") rather than ASCII-only lowering.

use std::collections::HashSet;

use regex::Regex;

use super::gibberish::looks_like_gibberish;
use super::lists::{ListEntries, ListName, domain_or_parent_listed, email_domain, email_local_part};
use crate::value::Value;

/// A compiled condition.
#[derive(Debug)]
pub enum Condition {
    /// Always true (a rule case written `otherwise = true`).
    Always,
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    /// Every test holds on the value in slot `slot` of the record.
    Field {
        slot: usize,
        tests: Vec<Test>,
    },
    /// Every test holds on score `score` of the same lead.
    Score {
        score: usize,
        tests: Vec<ScoreTest>,
    },
}

/// One test on another score of the lead.
#[derive(Debug)]
pub enum ScoreTest {
    /// A test on the score's value (ranges, `equals`, `one_of`).
    Value(Test),
    /// The score's tier is one of these labels.
    Tier(Vec<String>),
    /// The score's rule of this name applied.
    Rule(String),
}

/// The scores of the lead a condition may test, already evaluated.
pub trait Scores {
    fn value(&self, score: usize) -> f64;
    fn tier(&self, score: usize) -> Option<&str>;
    fn rule_applied(&self, score: usize, rule: &str) -> bool;
}

/// For conditions that cannot test scores (event filters): the compiler rejects score tests
/// there, so these answers are never read.
pub struct NoScores;

impl Scores for NoScores {
    fn value(&self, _: usize) -> f64 {
        0.0
    }
    fn tier(&self, _: usize) -> Option<&str> {
        None
    }
    fn rule_applied(&self, _: usize, _: &str) -> bool {
        false
    }
}

/// One test on one field's value.
#[derive(Debug)]
pub enum Test {
    Present(bool),
    /// `equals` (one value) and `one_of`.
    OneOf(Box<OneOf>),
    /// `contains`, `starts_with` and `regex` all become one regex.
    Matches(Regex),
    AtLeast(f64),
    AtMost(f64),
    Above(f64),
    Below(f64),
    EmailDomainIn(HashSet<String>),
    /// `free_email`, `disposable_email`, `role_email`: whether the address is on the model's
    /// list (`expected`), for an address; never true for a value without `@`.
    Listed {
        list: ListName,
        entries: ListEntries,
        expected: bool,
    },
    /// `gibberish`: whether the text looks like keyboard mashing (`expected`).
    Gibberish(bool),
}

/// The values `equals` / `one_of` accept: a value matches if any of them does.
#[derive(Debug)]
pub struct OneOf {
    /// Compared exactly.
    pub texts: HashSet<String>,
    /// With `ignore_case`: the texts as one whole-value, case-folding regex.
    pub folded: Option<Regex>,
    /// Compared as numbers: `200` matches the text `"200.0"`.
    pub numbers: Vec<f64>,
    pub bools: Vec<bool>,
}

impl OneOf {
    fn matches(&self, value: &Value) -> bool {
        if let Some(text) = value.as_text()
            && (self.texts.contains(text.as_ref()) || self.folded.as_ref().is_some_and(|r| r.is_match(&text)))
        {
            return true;
        }
        (!self.numbers.is_empty() && value.as_number().is_some_and(|n| self.numbers.contains(&n)))
            || (!self.bools.is_empty() && value.as_bool().is_some_and(|b| self.bools.contains(&b)))
    }
}

impl Condition {
    /// Whether a record without scores (an event's properties, or a lead where no score is
    /// tested) matches.
    pub(crate) fn matches(&self, record: &[Value]) -> bool {
        self.matches_with(record, &NoScores)
    }

    /// Whether the record matches, reading the lead's other scores from `scores`.
    pub(crate) fn matches_with(&self, record: &[Value], scores: &dyn Scores) -> bool {
        match self {
            Condition::Always => true,
            Condition::All(all) => all.iter().all(|c| c.matches_with(record, scores)),
            Condition::Any(any) => any.iter().any(|c| c.matches_with(record, scores)),
            Condition::Not(inner) => !inner.matches_with(record, scores),
            Condition::Field { slot, tests } => {
                let value = record.get(*slot).unwrap_or(&Value::Missing);
                tests.iter().all(|test| test.holds(value))
            }
            Condition::Score { score, tests } => tests.iter().all(|test| match test {
                ScoreTest::Value(test) => test.holds(&Value::Number(scores.value(*score))),
                ScoreTest::Tier(labels) => scores.tier(*score).is_some_and(|tier| labels.iter().any(|l| l == tier)),
                ScoreTest::Rule(rule) => scores.rule_applied(*score, rule),
            }),
        }
    }
}

impl Test {
    fn holds(&self, value: &Value) -> bool {
        if let Test::Present(expected) = self {
            return value.is_missing() != *expected;
        }
        if value.is_missing() {
            return false;
        }
        match self {
            Test::Present(_) => unreachable!("handled above"),
            Test::OneOf(one_of) => one_of.matches(value),
            Test::Matches(regex) => value.as_text().is_some_and(|v| regex.is_match(&v)),
            Test::AtLeast(min) => value.as_number().is_some_and(|v| v >= *min),
            Test::AtMost(max) => value.as_number().is_some_and(|v| v <= *max),
            Test::Above(min) => value.as_number().is_some_and(|v| v > *min),
            Test::Below(max) => value.as_number().is_some_and(|v| v < *max),
            Test::EmailDomainIn(domains) => {
                value.as_text().and_then(|v| email_domain(&v)).is_some_and(|d| domains.contains(&d))
            }
            Test::Listed { list, entries, expected } => {
                value.as_text().and_then(|address| listed(*list, entries, &address)).is_some_and(|l| l == *expected)
            }
            Test::Gibberish(expected) => value.as_text().is_some_and(|v| looks_like_gibberish(&v) == *expected),
        }
    }
}

/// The characters a case-insensitive test (`contains`, `ignore_case`, `(?i)` in a `regex`) takes
/// for `c`, `c` first: its simple case folding class as the `regex` crate matches it (`k`, `K`
/// and the Kelvin sign `K`; `s`, `S` and the long `ſ`). A reader that compiles conditions for
/// another engine (`leadscore sql`) spells each character as this class, so that matching needs
/// no case folding of its own.
pub fn case_insensitive_variants(c: char) -> Vec<char> {
    let mut variants = vec![c];
    let Ok(pattern) = regex::RegexBuilder::new(&format!("^{}$", regex::escape(c.encode_utf8(&mut [0; 4]))))
        .case_insensitive(true)
        .build()
    else {
        return variants;
    };
    let mut buffer = [0; 4];
    // Only characters with a case mapping fold to another one (checked over every character by
    // this module's tests), so the others need not be tried.
    for candidate in cased_characters() {
        if candidate != c && pattern.is_match(candidate.encode_utf8(&mut buffer)) {
            variants.push(candidate);
        }
    }
    variants
}

/// The characters a pattern of one character (a class such as `\w`, `\d`, `\s` or `\p{L}`)
/// matches, as the engine's regexes read it, in ascending order; `None` when the pattern is not
/// a valid one-character pattern. A reader that compiles conditions for another engine spells
/// such classes out with it, as their meaning (Unicode here) differs between engines.
pub fn class_characters(pattern: &str) -> Option<Vec<char>> {
    let class = regex::Regex::new(pattern).ok()?;
    let every_character: String = (0..=char::MAX as u32).filter_map(char::from_u32).collect();
    let mut characters = Vec::new();
    for found in class.find_iter(&every_character) {
        let mut chars = found.as_str().chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => characters.push(c),
            _ => return None,
        }
    }
    Some(characters)
}

/// Every character whose lower or upper case differs from it (a few thousand), found once.
fn cased_characters() -> impl Iterator<Item = char> {
    static CASED: std::sync::OnceLock<Vec<char>> = std::sync::OnceLock::new();
    let cased = CASED.get_or_init(|| {
        (0..=char::MAX as u32)
            .filter_map(char::from_u32)
            .filter(|&c| {
                let mut lower = c.to_lowercase();
                let mut upper = c.to_uppercase();
                !(lower.len() == 1 && lower.next() == Some(c) && upper.len() == 1 && upper.next() == Some(c))
            })
            .collect()
    });
    cased.iter().copied()
}

/// Whether an address is on a list (`None` when the text is not an address): free-mail domains
/// exactly, disposable domains with their subdomains, role addresses by local part.
fn listed(list: ListName, entries: &ListEntries, address: &str) -> Option<bool> {
    match list {
        ListName::FreeEmail => email_domain(address).map(|d| entries.contains(&d)),
        ListName::DisposableEmail => email_domain(address).map(|d| domain_or_parent_listed(&d, entries)),
        ListName::RoleEmail => email_local_part(address).map(|local| entries.contains(&local)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(tests: Vec<Test>) -> Condition {
        Condition::Field { slot: 0, tests }
    }

    fn contains(words: &[&str]) -> Test {
        let pattern = words.iter().map(|w| regex::escape(w)).collect::<Vec<_>>().join("|");
        Test::Matches(Regex::new(&format!("(?i){pattern}")).unwrap())
    }

    #[test]
    fn contains_folds_case_beyond_ascii() {
        let condition = field(vec![contains(&["director", "директор"])]);
        assert!(condition.matches(&[Value::text("Managing DIRECTOR")]));
        assert!(condition.matches(&[Value::text("Коммерческий ДИРЕКТОР")]));
        assert!(!condition.matches(&[Value::text("Manager")]));
        assert!(!condition.matches(&[Value::Missing]));
    }

    #[test]
    fn japanese_titles_match_exactly() {
        let condition = field(vec![contains(&["部長", "マネージャー"])]);
        assert!(condition.matches(&[Value::text("営業部長")]));
        assert!(!condition.matches(&[Value::text("担当者")]));
    }

    #[test]
    fn numeric_tests_read_text_numbers() {
        let range = field(vec![Test::AtLeast(50.0), Test::AtMost(500.0)]);
        assert!(range.matches(&[Value::text("50")]));
        assert!(range.matches(&[Value::Number(500.0)]));
        assert!(!range.matches(&[Value::text("501")]));
        assert!(!range.matches(&[Value::text("many")]));
        assert!(!range.matches(&[Value::Missing]));
    }

    #[test]
    fn missing_values_match_only_missing_and_negations() {
        let missing = field(vec![Test::Present(false)]);
        assert!(missing.matches(&[Value::Missing]));
        assert!(missing.matches(&[]));
        assert!(!missing.matches(&[Value::text("x")]));
        let not_student = Condition::Not(Box::new(field(vec![contains(&["student"])])));
        assert!(not_student.matches(&[Value::Missing]));
    }

    fn listed(list: ListName, expected: bool) -> Test {
        Test::Listed { list, entries: list.built_in().clone(), expected }
    }

    #[test]
    fn email_domains() {
        let free = field(vec![listed(ListName::FreeEmail, true)]);
        assert!(free.matches(&[Value::text("Bob@GMail.com")]));
        assert!(!free.matches(&[Value::text("bob@acme.com")]));
        assert!(!free.matches(&[Value::text("not an address")]));
        assert!(!free.matches(&[Value::text("bob@eu.gmail.com")]), "free-mail domains match exactly");
        let business = field(vec![listed(ListName::FreeEmail, false)]);
        assert!(business.matches(&[Value::text("bob@acme.com")]));
        assert!(!business.matches(&[Value::text("not an address")]), "`false` needs an address too");
        let competitor = field(vec![Test::EmailDomainIn(HashSet::from(["rival.io".to_string()]))]);
        assert!(competitor.matches(&[Value::text("x@a@Rival.IO")]));
    }

    #[test]
    fn disposable_addresses_match_on_subdomains() {
        let disposable = field(vec![listed(ListName::DisposableEmail, true)]);
        assert!(disposable.matches(&[Value::text("x@Mailinator.com")]));
        assert!(disposable.matches(&[Value::text("x@mail.mailinator.com")]));
        assert!(!disposable.matches(&[Value::text("x@mailinator.com.acme.io")]));
        assert!(!disposable.matches(&[Value::text("x@gmail.com")]));
        assert!(field(vec![listed(ListName::DisposableEmail, false)]).matches(&[Value::text("x@acme.com")]));
    }

    #[test]
    fn role_addresses_match_on_the_local_part_without_its_tag() {
        let role = field(vec![listed(ListName::RoleEmail, true)]);
        for address in ["info@acme.com", "Sales+EMEA@acme.com", "no-reply@acme.com", "NOREPLY@x.io"] {
            assert!(role.matches(&[Value::text(address)]), "{address}");
        }
        for address in ["jane.doe@acme.com", "alexa@acme.com", "info", "info.jane@acme.com"] {
            assert!(!role.matches(&[Value::text(address)]), "{address}");
        }
        let entries = std::sync::Arc::new(HashSet::from(["ventas".to_string()]));
        let own = field(vec![Test::Listed { list: ListName::RoleEmail, entries, expected: true }]);
        assert!(own.matches(&[Value::text("Ventas@acme.es")]));
        assert!(!own.matches(&[Value::text("info@acme.es")]));
    }

    #[test]
    fn gibberish_names() {
        let junk = field(vec![Test::Gibberish(true)]);
        assert!(junk.matches(&[Value::text("asdfgh")]));
        assert!(!junk.matches(&[Value::text("Llwyd")]));
        assert!(!junk.matches(&[Value::Missing]));
        let real = field(vec![Test::Gibberish(false)]);
        assert!(real.matches(&[Value::text("Ó Súilleabháin")]));
        assert!(!real.matches(&[Value::text("qwqwqw")]));
        assert!(!real.matches(&[Value::Missing]));
    }

    #[test]
    fn classes_are_spelled_out_as_the_regexes_read_them() {
        let digits = class_characters(r"\d").unwrap();
        assert!(digits.contains(&'7') && digits.contains(&'٣') && !digits.contains(&'a'));
        let word = class_characters(r"\w").unwrap();
        assert!(word.contains(&'é') && word.contains(&'_') && word.contains(&'部') && !word.contains(&'-'));
        assert_eq!(class_characters("ab"), None);
        assert_eq!(class_characters("("), None);
    }

    #[test]
    fn case_variants_are_the_characters_case_insensitive_matching_takes() {
        let sorted = |c| {
            let mut v = case_insensitive_variants(c);
            v.sort_unstable();
            v
        };
        assert_eq!(sorted('k'), vec!['K', 'k', '\u{212a}']);
        assert_eq!(sorted('s'), vec!['S', 's', '\u{17f}']);
        assert_eq!(sorted('部'), vec!['部']);
        assert_eq!(case_insensitive_variants('σ').len(), 3);
        // Characters without a case mapping fold to nothing else: checked over every character
        // for a few letters whose classes hold uncased-looking members.
        for c in ['k', 's', 'ω', 'ι', 'θ', 'µ'] {
            let pattern = regex::RegexBuilder::new(&format!("^{c}$")).case_insensitive(true).build().unwrap();
            let everywhere: Vec<char> = (0..=char::MAX as u32)
                .filter_map(char::from_u32)
                .filter(|d| pattern.is_match(d.encode_utf8(&mut [0; 4])))
                .collect();
            let mut expected = case_insensitive_variants(c);
            expected.sort_unstable();
            assert_eq!(everywhere, expected, "{c}");
        }
    }

    fn one_of(texts: &[&str], folded: Option<&str>, numbers: &[f64], bools: &[bool]) -> Test {
        Test::OneOf(Box::new(OneOf {
            texts: texts.iter().map(|t| t.to_string()).collect(),
            folded: folded.map(|r| Regex::new(r).unwrap()),
            numbers: numbers.to_vec(),
            bools: bools.to_vec(),
        }))
    }

    #[test]
    fn equality_by_meaning() {
        assert!(field(vec![one_of(&[], None, &[200.0], &[])]).matches(&[Value::text("200.0")]));
        assert!(field(vec![one_of(&[], None, &[], &[true])]).matches(&[Value::text("yes")]));
        assert!(field(vec![one_of(&["Technology"], None, &[], &[])]).matches(&[Value::text("Technology")]));
        assert!(!field(vec![one_of(&["Technology"], None, &[], &[])]).matches(&[Value::text("technology")]));
        let folded = field(vec![one_of(&[], Some("(?i)^(?:οδοσ|technology)$"), &[], &[])]);
        assert!(folded.matches(&[Value::text("TECHNOLOGY")]));
        assert!(folded.matches(&[Value::text("ΟΔΟΣ")]));
        assert!(!folded.matches(&[Value::text("technology x")]));
    }
}
