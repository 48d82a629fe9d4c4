//! Conditions (the model format's "Conditions"): tests on one field of a record (a lead's fields
//! or an event's properties) and their combinations with `all`, `any` and `not`, checked and
//! compiled to regexes and sets; the fields they name become record slots.

use std::collections::HashSet;
use std::ops::Range;

use regex::{Regex, RegexBuilder};
use toml::Spanned;

use super::compiler::{Compiler, span};
use crate::format::{ConditionDef, OneOrMany, Scalar};
use crate::rules::condition::{Condition, OneOf, Test};
use crate::rules::lists::ListName;

/// Which record a condition reads.
#[derive(Clone, Copy)]
pub(super) enum Record {
    Lead,
    Event,
}

impl Compiler<'_> {
    fn slot(&mut self, record: Record, field: &str) -> usize {
        match record {
            Record::Lead => self.lead_fields.intern(field),
            Record::Event => self.event_properties.intern(field),
        }
    }

    /// A condition on `record`: tests on one field, or `all`, `any` or `not` of conditions.
    pub(super) fn condition(&mut self, def: &Spanned<ConditionDef>, record: Record) -> Option<Condition> {
        let c = def.get_ref();
        let combinators = [c.all.is_some(), c.any.is_some(), c.not.is_some()].iter().filter(|b| **b).count();
        let tests_given = c.equals.is_some()
            || c.one_of.is_some()
            || c.contains.is_some()
            || c.starts_with.is_some()
            || c.regex.is_some()
            || c.min.is_some()
            || c.max.is_some()
            || c.above.is_some()
            || c.below.is_some()
            || c.present.is_some()
            || c.missing.is_some()
            || c.email_domain.is_some()
            || c.free_email.is_some()
            || c.disposable_email.is_some()
            || c.role_email.is_some()
            || c.gibberish.is_some();
        if combinators > 0 {
            if c.ignore_case {
                self.error("`ignore_case` applies to the tests of one `field`: put it inside the conditions of `all`, `any` or `not`", span(def));
            }
            if combinators > 1 || c.field.is_some() || tests_given {
                self.error(
                    "a condition is either tests on one `field` or one of `all`, `any`, `not`: split it with `all = [...]`",
                    span(def),
                );
                return None;
            }
            if let Some(all) = &c.all {
                let parts = self.conditions(all, record)?;
                return Some(Condition::All(parts));
            }
            if let Some(any) = &c.any {
                let parts = self.conditions(any, record)?;
                return Some(Condition::Any(parts));
            }
            let inner = self.condition(c.not.as_ref().expect("counted above"), record)?;
            return Some(Condition::Not(Box::new(inner)));
        }
        let Some(field) = &c.field else {
            self.error("a condition needs a `field` to test (or `all`, `any`, `not`)", span(def));
            return None;
        };
        if !tests_given {
            self.error(
                format!(
                    "the condition on `{}` tests nothing: add `equals`, `one_of`, `contains`, `regex`, `min`/`max`, `present`, `email_domain`, `free_email`, `disposable_email`, `role_email` or `gibberish`",
                    field.get_ref()
                ),
                span(def),
            );
            return None;
        }
        if c.ignore_case && c.equals.is_none() && c.one_of.is_none() && c.starts_with.is_none() {
            self.warning(
                "`ignore_case` changes only `equals`, `one_of` and `starts_with` (`contains` always ignores case; write `(?i)` in a `regex`)",
                span(def),
            );
        }
        let slot = self.slot(record, field.get_ref());
        let mut tests = Vec::new();
        let mut ok = true;
        if let Some(equals) = &c.equals {
            let one = std::slice::from_ref(equals.get_ref());
            match self.one_of_test(one, c.ignore_case, "equals", span(equals)) {
                Some(test) => tests.push(test),
                None => ok = false,
            }
        }
        if let Some(one_of) = &c.one_of {
            if one_of.get_ref().is_empty() {
                self.error("`one_of` is empty, so it never matches", span(one_of));
                ok = false;
            }
            match self.one_of_test(one_of.get_ref(), c.ignore_case, "one_of", span(one_of)) {
                Some(test) => tests.push(test),
                None => ok = false,
            }
        }
        if let Some(contains) = &c.contains {
            ok &= self.literal_regex(contains, "contains", "", true, &mut tests);
        }
        if let Some(starts_with) = &c.starts_with {
            ok &= self.literal_regex(starts_with, "starts_with", "^", c.ignore_case, &mut tests);
        }
        if let Some(pattern) = &c.regex {
            match RegexBuilder::new(pattern.get_ref()).size_limit(1 << 20).build() {
                Ok(regex) => tests.push(Test::Matches(regex)),
                Err(error) => {
                    let text = error.to_string();
                    let last = text.lines().last().unwrap_or_default().trim();
                    let detail = last.strip_prefix("error: ").unwrap_or(last);
                    self.error(format!("`regex` is not a valid regular expression: {detail}"), span(pattern));
                    ok = false;
                }
            }
        }
        for (key, value, make) in [
            ("min", &c.min, Test::AtLeast as fn(f64) -> Test),
            ("max", &c.max, Test::AtMost),
            ("above", &c.above, Test::Above),
            ("below", &c.below, Test::Below),
        ] {
            if let Some(v) = value {
                let number = self.finite(v, &format!("`{key}`"));
                tests.push(make(number));
            }
        }
        if let (Some(lo), Some(hi)) = (&c.min, &c.max)
            && lo.get_ref() > hi.get_ref()
        {
            self.warning("`min` is above `max`, so this condition never matches", span(def));
        }
        if let Some(present) = &c.present {
            tests.push(Test::Present(*present.get_ref()));
        }
        if let Some(missing) = &c.missing {
            tests.push(Test::Present(!*missing.get_ref()));
        }
        if let Some(domains) = &c.email_domain {
            let list = domains.get_ref().clone().into_vec();
            if list.is_empty() {
                self.error("`email_domain` is empty, so it never matches", span(domains));
                ok = false;
            }
            tests.push(Test::EmailDomainIn(
                list.iter().map(|d| d.trim().trim_start_matches('@').to_lowercase()).collect(),
            ));
        }
        for (list, expected) in [
            (ListName::FreeEmail, &c.free_email),
            (ListName::DisposableEmail, &c.disposable_email),
            (ListName::RoleEmail, &c.role_email),
        ] {
            if let Some(expected) = expected {
                tests.push(Test::Listed { list, entries: self.list(list), expected: *expected.get_ref() });
            }
        }
        if let Some(gibberish) = &c.gibberish {
            tests.push(Test::Gibberish(*gibberish.get_ref()));
        }
        ok.then_some(Condition::Field { slot, tests })
    }

    fn conditions(&mut self, defs: &Spanned<Vec<Spanned<ConditionDef>>>, record: Record) -> Option<Vec<Condition>> {
        if defs.get_ref().is_empty() {
            self.error("`all` / `any` needs at least one condition", span(defs));
            return None;
        }
        let compiled: Vec<Option<Condition>> = defs.get_ref().iter().map(|d| self.condition(d, record)).collect();
        compiled.into_iter().collect()
    }

    /// `equals` / `one_of`: texts compared exactly (or with Unicode case folding), numbers and
    /// booleans by meaning.
    fn one_of_test(
        &mut self,
        values: &[Scalar],
        ignore_case: bool,
        key: &str,
        at: Option<Range<usize>>,
    ) -> Option<Test> {
        let mut texts = HashSet::new();
        let mut numbers = Vec::new();
        let mut bools = Vec::new();
        for value in values {
            match value {
                Scalar::Text(t) => {
                    texts.insert(t.clone());
                }
                Scalar::Integer(i) => numbers.push(*i as f64),
                Scalar::Float(f) if f.is_finite() => numbers.push(*f),
                Scalar::Float(f) => {
                    self.error(format!("`{key}` must list finite numbers, not {f}"), at.clone());
                    return None;
                }
                Scalar::Bool(b) => bools.push(*b),
            }
        }
        let folded = if ignore_case && !texts.is_empty() {
            let alternatives: Vec<String> = texts.iter().map(|t| regex::escape(t)).collect();
            match Regex::new(&format!("(?i)^(?:{})$", alternatives.join("|"))) {
                Ok(regex) => {
                    texts.clear();
                    Some(regex)
                }
                Err(error) => {
                    self.error(format!("`{key}` is too large to match: {error}"), at);
                    return None;
                }
            }
        } else {
            None
        };
        Some(Test::OneOf(Box::new(OneOf { texts, folded, numbers, bools })))
    }

    /// `contains` / `starts_with`: literals joined into one regex.
    fn literal_regex(
        &mut self,
        words: &Spanned<OneOrMany>,
        key: &str,
        anchor: &str,
        ignore_case: bool,
        tests: &mut Vec<Test>,
    ) -> bool {
        let list = words.get_ref().clone().into_vec();
        if list.is_empty() || list.iter().any(String::is_empty) {
            self.error(format!("`{key}` needs non-empty text"), span(words));
            return false;
        }
        let alternatives: Vec<String> = list.iter().map(|w| regex::escape(w)).collect();
        let flags = if ignore_case { "(?i)" } else { "" };
        let pattern = format!("{flags}{anchor}(?:{})", alternatives.join("|"));
        match Regex::new(&pattern) {
            Ok(regex) => {
                tests.push(Test::Matches(regex));
                true
            }
            Err(error) => {
                self.error(format!("`{key}` is too large to match: {error}"), span(words));
                false
            }
        }
    }
}
