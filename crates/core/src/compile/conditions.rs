//! Conditions (the model format's "Conditions"): tests on one field of a record (a lead's fields
//! or an event's properties), tests on another score of the lead, named conditions of
//! `[conditions]`, and their combinations with `all`, `any` and `not`, checked and compiled to
//! regexes and sets; the fields they name become record slots, the scores they test become
//! dependencies of the score being compiled.

use std::collections::HashSet;
use std::ops::Range;

use regex::{Regex, RegexBuilder};
use toml::Spanned;

use super::compiler::{Compiler, span};
use crate::format::{ConditionDef, OneOrMany, Scalar};
use crate::rules::condition::{Condition, OneOf, ScoreTest, Test};
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

    /// A condition on `record`: tests on one field, tests on a score, a named condition, or
    /// `all`, `any` or `not` of conditions.
    pub(super) fn condition(&mut self, def: &Spanned<ConditionDef>, record: Record) -> Option<Condition> {
        let c = def.get_ref();
        if let Some(name) = &c.condition {
            let others: Vec<String> =
                c.keys().into_iter().filter(|k| *k != "condition").map(|k| format!("`{k}`")).collect();
            if !others.is_empty() {
                self.error(
                    format!(
                        "`condition` names a condition of `[conditions]` and stands alone, without {}: combine them in `all = [...]`",
                        others.join(", ")
                    ),
                    span(def),
                );
                return None;
            }
            return self.named_condition(name, record);
        }
        if let Some(score) = &c.score {
            return self.score_condition(def, score, record);
        }
        for (key, given) in [("tier", c.tier.as_ref().map(|t| t.span())), ("rule", c.rule.as_ref().map(|r| r.span()))] {
            if let Some(at) = given {
                self.error(format!("`{key}` tests another score: name it with `score = \"...\"`"), Some(at));
                return None;
            }
        }
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

    /// `{ condition = "NAME" }`: the condition of `[conditions.NAME]`, compiled for `record`.
    fn named_condition(&mut self, name: &Spanned<String>, record: Record) -> Option<Condition> {
        let key = name.get_ref();
        let Some(def) = self.named_conditions.get(key).cloned() else {
            let known: Vec<&str> = self.named_conditions.keys().map(String::as_str).collect();
            let hint = if known.is_empty() {
                "the model has no `[conditions]`".to_string()
            } else {
                format!(
                    "the model's conditions are {}",
                    known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                )
            };
            self.error(format!("there is no condition `{key}` in `[conditions]`: {hint}"), span(name));
            return None;
        };
        if let Some(start) = self.expanding.iter().position(|n| n == key) {
            let mut cycle = self.expanding[start..].to_vec();
            cycle.push(key.clone());
            self.error(format!("conditions use each other in a cycle: {}", cycle.join(" -> ")), span(name));
            return None;
        }
        self.used_conditions.insert(key.clone());
        self.expanding.push(key.clone());
        let compiled = self.condition(&def, record);
        self.expanding.pop();
        compiled
    }

    /// `{ score = "fit", tier = "A" }`, `{ score = "data_quality", below = 0 }` or
    /// `{ score = "fit", rule = "technology" }`: tests on another score of the same lead, which is
    /// then evaluated first.
    fn score_condition(
        &mut self,
        def: &Spanned<ConditionDef>,
        score: &Spanned<String>,
        record: Record,
    ) -> Option<Condition> {
        let c = def.get_ref();
        if let Record::Event = record {
            self.error("a condition on an event's properties cannot test a score: test scores in `when`", span(def));
            return None;
        }
        let mut ok = true;
        const SCORE_KEYS: &[&str] = &["score", "tier", "rule", "equals", "one_of", "min", "max", "above", "below"];
        for key in c.keys().into_iter().filter(|k| !SCORE_KEYS.contains(k)) {
            let message = if ["field", "all", "any", "not"].contains(&key) {
                format!("a condition tests either one `score` or uses `{key}`: split it with `all = [...]`")
            } else {
                format!(
                    "`{key}` tests a field; a score is tested with `min`, `max`, `above`, `below`, `equals`, `one_of`, `tier` or `rule`"
                )
            };
            self.error(message, span(def));
            ok = false;
        }
        let name = score.get_ref();
        let Some(&index) = self.score_index.get(name) else {
            self.error(format!("`{name}` is not a score of this model"), span(score));
            return None;
        };
        if self.current_score == Some(index) {
            self.error(
                format!("score `{name}` cannot test itself (its value and tier are what is being computed); a qualifier tests its own score's rules with `rules = [...]`"),
                span(score),
            );
            return None;
        }
        self.depend_on(index, score.span(), false);
        let mut tests = Vec::new();
        if let Some(tier) = &c.tier {
            let labels = tier.get_ref().clone().into_vec();
            let known = &self.score_outline[index].tiers;
            let unknown: Vec<&String> = labels.iter().filter(|l| !known.contains(l)).collect();
            if labels.is_empty() {
                self.error("`tier` needs at least one tier label", span(tier));
                ok = false;
            } else if !unknown.is_empty() {
                let list = |names: &mut dyn Iterator<Item = &String>| {
                    names.map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                };
                let message = format!(
                    "score `{name}` has no tier {}: its tiers are {}",
                    list(&mut unknown.into_iter()),
                    list(&mut known.iter())
                );
                self.error(message, span(tier));
                ok = false;
            }
            tests.push(ScoreTest::Tier(labels));
        }
        if let Some(rule) = &c.rule {
            if !self.score_outline[index].rules.contains(rule.get_ref()) {
                self.error(format!("score `{name}` has no rule `{}`", rule.get_ref()), span(rule));
                ok = false;
            }
            tests.push(ScoreTest::Rule(rule.get_ref().clone()));
        }
        let equals = c.equals.as_ref().map(|e| ("equals", std::slice::from_ref(e.get_ref()), span(e)));
        let one_of = c.one_of.as_ref().map(|o| ("one_of", o.get_ref().as_slice(), span(o)));
        for (key, list, at) in equals.into_iter().chain(one_of) {
            if list.is_empty() || list.iter().any(|v| !matches!(v, Scalar::Integer(_) | Scalar::Float(_))) {
                self.error(format!("`{key}` on a score compares its value: give numbers (use `tier` for tiers)"), at);
                ok = false;
                continue;
            }
            match self.one_of_test(list, false, key, at) {
                Some(test) => tests.push(ScoreTest::Value(test)),
                None => ok = false,
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
                tests.push(ScoreTest::Value(make(number)));
            }
        }
        if tests.is_empty() && ok {
            self.error(
                format!("the condition on score `{name}` tests nothing: add `tier`, `rule`, `min`, `max`, `above`, `below`, `equals` or `one_of`"),
                span(def),
            );
            return None;
        }
        ok.then_some(Condition::Score { score: index, tests })
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
