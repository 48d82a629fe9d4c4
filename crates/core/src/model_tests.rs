//! Tests written inside a model (`[[tests]]`): a lead, its events, an as-of time and what some
//! scores should be. They are checked when the model compiles (unknown scores and tiers, bad
//! times) and run by [`run`], which scores each lead with [`Model::score`], the same fold and
//! evaluation batch scoring uses, so that a test says what a leads file would get.

use std::ops::Range;

use crate::diagnostic::Diagnostic;
use crate::engine::ScoreResult;
use crate::format::{TestDef, TestEventDef};
use crate::model::{Expectation, Model, TestCase, TestEvent};
use crate::time::Timestamp;
use crate::value::Value;

/// How far a value may be from the expected one and still pass: scores are written with 6
/// decimals, so an expectation copied from an output passes.
pub const VALUE_TOLERANCE: f64 = 1e-6;

/// One score that did not come out as expected.
#[derive(Debug, Clone)]
pub struct Mismatch<'m> {
    pub expected_value: Option<f64>,
    pub expected_tier: Option<Option<String>>,
    /// The score as computed, with its contributions.
    pub actual: ScoreResult<'m>,
}

/// The result of one test: passed when `mismatches` is empty.
#[derive(Debug, Clone)]
pub struct TestOutcome<'m> {
    pub name: &'m str,
    pub span: Range<usize>,
    pub mismatches: Vec<Mismatch<'m>>,
}

impl TestOutcome<'_> {
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }

    /// An error at the test's name saying which scores differ, for `check` and model uploads.
    pub fn diagnostic(&self) -> Option<Diagnostic> {
        if self.passed() {
            return None;
        }
        let what: Vec<String> = self.mismatches.iter().map(Mismatch::describe).collect();
        Some(Diagnostic::error(format!("test `{}` fails: {}", self.name, what.join("; ")), Some(self.span.clone())))
    }
}

impl Mismatch<'_> {
    /// `fit: expected 30 (tier warm), got 25 (tier cold)`.
    pub fn describe(&self) -> String {
        let expected = describe(self.expected_value, self.expected_tier.as_ref().map(|t| t.as_deref()));
        let actual = describe(
            self.expected_value.map(|_| crate::engine::round_score(self.actual.value)),
            self.expected_tier.as_ref().map(|_| self.actual.tier),
        );
        format!("{}: expected {expected}, got {actual}", self.actual.name)
    }
}

fn describe(value: Option<f64>, tier: Option<Option<&str>>) -> String {
    let tier = tier.map(|t| match t {
        Some(label) => format!("tier {label}"),
        None => "no tier".to_string(),
    });
    match (value, tier) {
        (Some(v), Some(t)) => format!("{} ({t})", crate::value::format_number(v)),
        (Some(v), None) => crate::value::format_number(v),
        (None, Some(t)) => t,
        (None, None) => String::new(),
    }
}

/// Runs every test of the model, in the order they are written.
pub fn run(model: &Model) -> Vec<TestOutcome<'_>> {
    model.tests.iter().map(|test| run_one(model, test)).collect()
}

fn run_one<'m>(model: &'m Model, test: &'m TestCase) -> TestOutcome<'m> {
    let events = test.events.iter().map(|e| crate::engine::Event {
        event_type: e.event_type,
        at: e.at,
        properties: &e.properties,
    });
    let scores = model.score(&test.lead, events, test.as_of);
    let mismatches = test
        .expectations
        .iter()
        .filter_map(|expected| {
            let actual = &scores.scores[expected.score];
            let value_differs = expected.value.is_some_and(|v| !close_enough(actual.value, v));
            let tier_differs = expected.tier.as_ref().is_some_and(|t| t.as_deref() != actual.tier);
            (value_differs || tier_differs).then(|| Mismatch {
                expected_value: expected.value,
                expected_tier: expected.tier.clone(),
                actual: actual.clone(),
            })
        })
        .collect();
    TestOutcome { name: &test.name, span: test.span.clone(), mismatches }
}

/// Within [`VALUE_TOLERANCE`]; a NaN is never close to anything, so it fails a test.
fn close_enough(actual: f64, expected: f64) -> bool {
    (actual - expected).abs() <= VALUE_TOLERANCE
}

/// Checks and resolves the `[[tests]]` of a model that compiled, adding an error per mistake.
pub(crate) fn compile_tests(
    model: &Model,
    defs: Vec<toml::Spanned<TestDef>>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<TestCase> {
    let mut cases = Vec::with_capacity(defs.len());
    let mut names = std::collections::HashSet::new();
    for def in defs {
        let def = def.into_inner();
        let name_span = def.name.span();
        if !names.insert(def.name.get_ref().clone()) {
            diagnostics.push(Diagnostic::error(
                format!("two tests are named `{}`: give each its own name", def.name.get_ref()),
                Some(name_span.clone()),
            ));
        }
        let mut ok = true;
        let as_of = time(&def.as_of, "as_of", diagnostics);
        ok &= as_of.is_some();
        let lead = model.lead_fields.iter().map(|field| def.lead.get(field).map_or(Value::Missing, value)).collect();
        let mut events = Vec::with_capacity(def.events.len());
        for event in &def.events {
            let event: &TestEventDef = event.get_ref();
            match time(&event.at, "at", diagnostics) {
                Some(at) => events.push(TestEvent {
                    event_type: model.event_type(event.event_type.get_ref()),
                    at,
                    properties: model
                        .event_properties
                        .iter()
                        .map(|p| event.properties.get(p).map_or(Value::Missing, value))
                        .collect(),
                }),
                None => ok = false,
            }
        }
        if def.expect.is_empty() {
            diagnostics.push(Diagnostic::error(
                "a test expects nothing: add `expect.SCORE = { value = ..., tier = \"...\" }`",
                Some(name_span.clone()),
            ));
            ok = false;
        }
        let mut expectations = Vec::with_capacity(def.expect.len());
        for (score_name, expect) in &def.expect {
            let span = expect.span();
            let Some(score) = model.scores.iter().position(|s| &s.name == score_name) else {
                let known: Vec<&str> = model.score_names().collect();
                diagnostics.push(Diagnostic::error(
                    format!(
                        "a test expects the score `{score_name}`, which the model does not have (it has {})",
                        known.join(", ")
                    ),
                    Some(span),
                ));
                ok = false;
                continue;
            };
            let expect = expect.get_ref();
            if expect.value.is_none() && expect.tier.is_none() {
                diagnostics.push(Diagnostic::error(
                    format!("the test expects nothing of `{score_name}`: give `value`, `tier` or both"),
                    Some(span),
                ));
                ok = false;
                continue;
            }
            let tier = match &expect.tier {
                None => None,
                Some(label) if label.get_ref().is_empty() => Some(None),
                Some(label) => {
                    let known_labels = model.tier_labels(score);
                    if !known_labels.contains(&label.get_ref().as_str()) {
                        let s = &model.scores[score];
                        let labels: Vec<&str> =
                            known_labels.iter().copied().filter(|l| *l != s.disqualified_tier).collect();
                        diagnostics.push(Diagnostic::error(
                            format!(
                                "`{score_name}` has no tier `{}` (its tiers: {}; `\"\"` for none)",
                                label.get_ref(),
                                if labels.is_empty() { "none".to_string() } else { labels.join(", ") }
                            ),
                            Some(label.span()),
                        ));
                        ok = false;
                    }
                    Some(Some(label.get_ref().clone()))
                }
            };
            let value = expect.value.as_ref().map(|v| *v.get_ref());
            if let Some(v) = expect.value.as_ref().filter(|v| !v.get_ref().is_finite()) {
                diagnostics.push(Diagnostic::error(
                    format!("`value` must be a finite number, not {}", v.get_ref()),
                    Some(v.span()),
                ));
                ok = false;
            }
            expectations.push(Expectation { score, value, tier });
        }
        if let (true, Some(as_of)) = (ok, as_of) {
            cases.push(TestCase { name: def.name.into_inner(), span: name_span, as_of, lead, events, expectations });
        }
    }
    cases
}

fn time(text: &toml::Spanned<String>, key: &str, diagnostics: &mut Vec<Diagnostic>) -> Option<Timestamp> {
    match Timestamp::parse_rfc3339(text.get_ref()) {
        Ok(at) => Some(at),
        Err(error) => {
            diagnostics.push(Diagnostic::error(
                format!("`{key}` must be an RFC 3339 time such as \"2026-03-01T12:00:00Z\": {}", error.0),
                Some(text.span()),
            ));
            None
        }
    }
}

/// A TOML value as a field value, as JSON would give it.
fn value(toml: &toml::Value) -> Value {
    match toml {
        toml::Value::String(s) => Value::text(s.as_str()),
        toml::Value::Integer(n) => Value::Number(*n as f64),
        toml::Value::Float(n) => Value::Number(*n),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::text(d.to_string()),
        other => Value::Text(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use crate::compile;

    const MODEL: &str = r#"
[scores.fit]
rules = [
  { name = "Large company", when = { field = "employees", min = 200 }, points = 20 },
  { name = "Pricing visit", event = "page_view", where = { field = "path", equals = "/pricing" }, points = 10 },
]
tiers = [{ label = "cold" }, { label = "warm", min = 20 }]
"#;

    fn with_tests(tests: &str) -> String {
        format!("{MODEL}\n{tests}")
    }

    #[test]
    fn a_test_passes_when_the_lead_scores_as_expected_and_fails_otherwise() {
        let source = with_tests(
            r#"
[[tests]]
name = "big and curious"
as_of = "2026-03-01T00:00:00Z"
lead = { employees = 500 }
events = [
  { type = "page_view", at = "2026-02-01T00:00:00Z", properties = { path = "/pricing" } },
  { type = "page_view", at = "2026-02-02T00:00:00Z", properties = { path = "/blog" } },
  { type = "page_view", at = "2026-03-02T00:00:00Z", properties = { path = "/pricing" } },
]
expect.fit = { value = 30, tier = "warm" }

[[tests]]
name = "small"
as_of = "2026-03-01T00:00:00Z"
lead = { employees = 10 }
expect.fit = { value = 5, tier = "" }
"#,
        );
        let model = compile(&source).unwrap().model;
        let outcomes = super::run(&model);
        assert_eq!(outcomes.len(), 2);
        assert!(outcomes[0].passed(), "{:?}", outcomes[0]);
        assert!(!outcomes[1].passed());
        let diagnostic = outcomes[1].diagnostic().unwrap();
        assert_eq!(diagnostic.message, "test `small` fails: fit: expected 5 (no tier), got 0 (tier cold)");
        assert_eq!(&source[diagnostic.span.unwrap()], "\"small\"");
    }

    #[test]
    fn unknown_scores_and_tiers_and_bad_times_are_errors_at_their_place() {
        let source = with_tests(
            r#"
[[tests]]
name = "wrong"
as_of = "yesterday"
events = [{ type = "page_view", at = "2026-13-01T00:00:00Z" }]
expect.fitness = { value = 1 }
expect.fit = { tier = "hot", value = nan }
"#,
        );
        let error = compile(&source).unwrap_err();
        let rendered = error.render("m.toml");
        assert!(rendered.contains("m.toml:12:9: error: `as_of` must be an RFC 3339 time"), "{rendered}");
        assert!(rendered.contains("m.toml:13:38: error: `at` must be an RFC 3339 time"), "{rendered}");
        assert!(rendered.contains("m.toml:14:18: error: a test expects the score `fitness`"), "{rendered}");
        assert!(rendered.contains("m.toml:15:23: error: `fit` has no tier `hot` (its tiers: cold, warm"), "{rendered}");
        assert!(rendered.contains("m.toml:15:38: error: `value` must be a finite number, not NaN"), "{rendered}");
    }

    #[test]
    fn a_test_needs_its_own_name_and_something_to_expect() {
        let source = with_tests(
            r#"
[[tests]]
name = "same"
as_of = "2026-03-01T00:00:00Z"
expect = {}

[[tests]]
name = "same"
as_of = "2026-03-01T00:00:00Z"
expect.fit = {}
"#,
        );
        let rendered = compile(&source).unwrap_err().render("m.toml");
        assert!(rendered.contains("m.toml:11:8: error: a test expects nothing"), "{rendered}");
        assert!(rendered.contains("m.toml:16:8: error: two tests are named `same`"), "{rendered}");
        assert!(rendered.contains("m.toml:18:14: error: the test expects nothing of `fit`"), "{rendered}");
    }
}
