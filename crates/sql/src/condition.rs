//! Conditions (`when`, `where`, `applies_to`, qualifiers, cases) as SQL boolean expressions that
//! are never NULL: a missing value matches nothing but `present = false` and negations, as in
//! the engine ([`leadscore_core::rules::condition`]).

use leadscore_core::rules::condition::{Condition, OneOf, ScoreTest, Test};
use leadscore_core::{Model, rules::lists::ListName};

use crate::columns;
use crate::dialect::Dialect;
use crate::error::{Place, SqlError};
use crate::regex::{self, Node};
use crate::values;

/// Which record a condition's fields are columns of.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Record {
    Lead,
    Event,
}

/// What a condition is rendered with.
pub(crate) struct Conditions<'a, 't> {
    pub(crate) model: &'a Model,
    pub(crate) dialect: Dialect,
    pub(crate) place: &'a Place<'t>,
    pub(crate) record: Record,
}

impl Conditions<'_, '_> {
    pub(crate) fn render(&self, condition: &Condition) -> Result<String, SqlError> {
        Ok(match condition {
            Condition::Always => "TRUE".into(),
            Condition::All(parts) => self.join(parts, "AND", "TRUE")?,
            Condition::Any(parts) => self.join(parts, "OR", "FALSE")?,
            Condition::Not(inner) => format!("(NOT {})", self.render(inner)?),
            Condition::Field { slot, tests } => {
                if matches!(self.record, Record::Lead)
                    && columns::time_field_slots(self.model).contains(slot)
                    && tests.iter().any(|test| !matches!(test, Test::Present(_)))
                {
                    // `leadscore score` rewrites a time field's text as RFC 3339 before tests
                    // read it.
                    let field = &self.model.lead_fields()[*slot];
                    return Err(self
                        .place
                        .not_yet(field, format!("a test other than `present` on the time field `{field}`")));
                }
                let column = self.dialect.ident(&match self.record {
                    Record::Lead => columns::lead_field(*slot),
                    Record::Event => columns::event_property(*slot),
                });
                let rendered: Vec<String> =
                    tests.iter().map(|test| self.test(&column, test)).collect::<Result<_, _>>()?;
                and(rendered)
            }
            Condition::Score { score, tests } => {
                let rendered: Vec<String> =
                    tests.iter().map(|test| self.score_test(*score, test)).collect::<Result<_, _>>()?;
                and(rendered)
            }
        })
    }

    fn join(&self, parts: &[Condition], operator: &str, empty: &str) -> Result<String, SqlError> {
        let rendered: Vec<String> = parts.iter().map(|c| self.render(c)).collect::<Result<_, _>>()?;
        Ok(if rendered.is_empty() { empty.into() } else { format!("({})", rendered.join(&format!(" {operator} "))) })
    }

    /// One test on a cell (trimmed text, NULL when missing).
    fn test(&self, cell: &str, test: &Test) -> Result<String, SqlError> {
        let dialect = self.dialect;
        let known = |expression: String| format!("({cell} IS NOT NULL AND COALESCE({expression}, FALSE))");
        Ok(match test {
            Test::Present(true) => format!("({cell} IS NOT NULL)"),
            Test::Present(false) => format!("({cell} IS NULL)"),
            Test::OneOf(one_of) => known(self.one_of(cell, one_of)?),
            Test::Matches(pattern) => known(self.matches(cell, pattern.as_str(), "regex")?),
            Test::AtLeast(min) => known(format!("{} >= {}", values::number(dialect, cell), dialect.double(*min))),
            Test::AtMost(max) => known(format!("{} <= {}", values::number(dialect, cell), dialect.double(*max))),
            Test::Above(min) => known(format!("{} > {}", values::number(dialect, cell), dialect.double(*min))),
            Test::Below(max) => known(format!("{} < {}", values::number(dialect, cell), dialect.double(*max))),
            Test::EmailDomainIn(domains) => known(self.email_domain_in(cell, domains)?),
            Test::Listed { list, entries, expected } => known(self.listed(cell, *list, entries, *expected)?),
            Test::Gibberish(_) => return Err(self.place.not_yet("gibberish", "`gibberish`")),
        })
    }

    /// `equals` / `one_of`: texts exactly (or as one case-insensitive pattern), numbers and
    /// booleans by meaning.
    fn one_of(&self, cell: &str, one_of: &OneOf) -> Result<String, SqlError> {
        let dialect = self.dialect;
        let mut alternatives = Vec::new();
        if !one_of.texts.is_empty() {
            let mut texts: Vec<&String> = one_of.texts.iter().collect();
            texts.sort();
            let list: Vec<String> = texts.iter().map(|t| dialect.text(t)).collect();
            alternatives.push(format!("{cell} IN ({})", list.join(", ")));
        }
        if let Some(folded) = &one_of.folded {
            alternatives.push(self.matches(cell, folded.as_str(), "ignore_case")?);
        }
        if !one_of.numbers.is_empty() {
            let list: Vec<String> = one_of.numbers.iter().map(|n| dialect.double(*n)).collect();
            alternatives.push(format!("{} IN ({})", values::number(dialect, cell), list.join(", ")));
        }
        if !one_of.bools.is_empty() {
            let list: Vec<&str> = one_of.bools.iter().map(|b| if *b { "TRUE" } else { "FALSE" }).collect();
            alternatives.push(format!("{} IN ({})", values::boolean(dialect, cell), list.join(", ")));
        }
        Ok(or(alternatives))
    }

    /// A cell against one of the engine's compiled patterns.
    fn matches(&self, cell: &str, pattern: &str, key: &str) -> Result<String, SqlError> {
        let key_in_text = if pattern.starts_with("(?i)(?:") && key == "regex" { "contains" } else { key };
        let node = regex::parse(pattern).map_err(|unsupported| {
            self.place.not_yet(key_in_text, format!("{} in the pattern `{pattern}`", unsupported.0))
        })?;
        if regex::largest_repeat(&node) > self.dialect.max_regex_repeat() {
            return Err(self.place.inexact(
                key_in_text,
                format!("the pattern `{pattern}`"),
                self.dialect,
                &format!("its regular expressions repeat at most {} times", self.dialect.max_regex_repeat()),
            ));
        }
        Ok(self.dialect.regex_matches(cell, &regex::render(self.dialect, &node)))
    }

    /// `email_domain`: the part after the last `@`, lower-cased, is one of the domains. Written
    /// as a pattern anchored at the end of the address, each domain character spelled as the
    /// characters that lower-case to it.
    fn email_domain_in(&self, cell: &str, domains: &std::collections::HashSet<String>) -> Result<String, SqlError> {
        let mut sorted: Vec<&String> = domains.iter().filter(|d| !d.contains('@')).collect();
        sorted.sort();
        if let Some(domain) = sorted.iter().find(|d| values::lower_case_is_contextual(d)) {
            return Err(self.place.inexact(
                "email_domain",
                format!("`email_domain` \"{domain}\""),
                self.dialect,
                "its lower case depends on the letters around it",
            ));
        }
        if sorted.is_empty() {
            return Ok("FALSE".into());
        }
        let alternatives = sorted.iter().map(|d| values::lower_case_insensitive(d)).collect();
        let node = Node::Concat(vec![
            Node::Class { negated: false, chars: vec!['@'] },
            Node::Alternation(alternatives),
            Node::End,
        ]);
        Ok(self.dialect.regex_matches(cell, &regex::render(self.dialect, &node)))
    }

    /// `free_email`, `disposable_email`, `role_email`: whether an address (a text with `@`) is
    /// on the list, as `expected` says. The domain (after the last `@`) or the local part
    /// (before it, up to a `+`) is lower-cased as the engine does for entries in ASCII, which
    /// every built-in entry is: A to Z, and the Kelvin sign, are the only characters whose
    /// lower case is ASCII.
    fn listed(
        &self,
        cell: &str,
        list: ListName,
        entries: &std::collections::HashSet<String>,
        expected: bool,
    ) -> Result<String, SqlError> {
        let dialect = self.dialect;
        let key = list.key();
        if let Some(entry) = entries.iter().find(|e| !e.is_ascii()) {
            return Err(self.place.not_yet(key, format!("`{key}` with the entry \"{entry}\", beyond ASCII,")));
        }
        let mut sorted: Vec<&str> = entries.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        if sorted.is_empty() {
            // An empty list: every address is off it.
            return Ok(format!("({cell} LIKE '%@%' AND {})", if expected { "FALSE" } else { "TRUE" }));
        }
        let table = dialect.text_table(&sorted);
        let lower = |text: String| {
            format!("TRANSLATE({text}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ\u{212a}', 'abcdefghijklmnopqrstuvwxyzk')")
        };
        let on_list = match list {
            ListName::FreeEmail => {
                format!("({} IN {table})", lower(dialect.regex_group(cell, "@([^@]*)$")))
            }
            ListName::DisposableEmail => {
                let domain = lower(dialect.regex_group(cell, "@([^@]*)$"));
                format!(
                    "EXISTS (SELECT 1 FROM {table} listed WHERE listed.entry = {domain} OR (LENGTH({domain}) > LENGTH(listed.entry) AND SUBSTR({domain}, LENGTH({domain}) - LENGTH(listed.entry)) = '.' || listed.entry))"
                )
            }
            ListName::RoleEmail => {
                let local = dialect.regex_group(cell, "(?s)^(.*)@");
                format!("({} IN {table})", lower(dialect.regex_group(&local, "(?s)^([^+]*)")))
            }
        };
        let is_address = format!("({cell} LIKE '%@%')");
        Ok(if expected { format!("({is_address} AND {on_list})") } else { format!("({is_address} AND NOT {on_list})") })
    }

    /// A test on another score of the lead, evaluated before this one.
    fn score_test(&self, score: usize, test: &ScoreTest) -> Result<String, SqlError> {
        let dialect = self.dialect;
        let value = dialect.ident(&columns::score_column(score, "value"));
        Ok(match test {
            ScoreTest::Value(test) => match test {
                Test::AtLeast(min) => format!("({value} >= {})", dialect.double(*min)),
                Test::AtMost(max) => format!("({value} <= {})", dialect.double(*max)),
                Test::Above(min) => format!("({value} > {})", dialect.double(*min)),
                Test::Below(max) => format!("({value} < {})", dialect.double(*max)),
                Test::OneOf(one_of)
                    if one_of.texts.is_empty() && one_of.folded.is_none() && one_of.bools.is_empty() =>
                {
                    let list: Vec<String> = one_of.numbers.iter().map(|n| dialect.double(*n)).collect();
                    format!("({value} IN ({}))", list.join(", "))
                }
                _ => return Err(self.place.not_yet("score", "this test on a score")),
            },
            ScoreTest::Tier(labels) => {
                let tier = dialect.ident(&columns::score_column(score, "tier"));
                let list: Vec<String> = labels.iter().map(|l| dialect.text(l)).collect();
                format!("COALESCE({tier} IN ({}), FALSE)", list.join(", "))
            }
            ScoreTest::Rule(name) => {
                let tested = &self.model.scores()[score];
                let applied: Vec<String> = tested
                    .rules
                    .iter()
                    .enumerate()
                    .filter(|(_, rule)| rule.name == *name)
                    .map(|(i, _)| dialect.ident(&columns::rule_column(score, i, "applied")))
                    .collect();
                let applicable = dialect.ident(&columns::score_column(score, "rules_counted"));
                format!("({applicable} AND {})", or(applied))
            }
        })
    }
}

fn and(parts: Vec<String>) -> String {
    if parts.is_empty() { "TRUE".into() } else { format!("({})", parts.join(" AND ")) }
}

fn or(parts: Vec<String>) -> String {
    if parts.is_empty() { "FALSE".into() } else { format!("({})", parts.join(" OR ")) }
}
