//! Helpers shared by the core's integration tests: compile a model from text and score one lead
//! given as field/value pairs with events as (type, time, properties).

#![allow(dead_code)]

use leadscore_core::{Event, LeadState, Model, Timestamp, Value, compile};

pub const AS_OF: &str = "2026-11-01T00:00:00Z";

pub fn model(text: &str) -> Model {
    match compile(text) {
        Ok(compiled) => compiled.model,
        Err(error) => panic!("model does not compile:\n{}", error.render("test.toml")),
    }
}

pub fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

/// `days` days before the as-of time.
pub fn days_ago(days: f64) -> Timestamp {
    Timestamp(at(AS_OF).0 - (days * 86_400_000.0) as i64)
}

/// One event: its type, time and properties.
pub struct E<'a> {
    pub kind: &'a str,
    pub at: Timestamp,
    pub props: Vec<(&'a str, &'a str)>,
}

pub fn ev(kind: &str, at: Timestamp) -> E<'_> {
    E { kind, at, props: Vec::new() }
}

pub fn ev_with<'a>(kind: &'a str, at: Timestamp, props: &[(&'a str, &'a str)]) -> E<'a> {
    E { kind, at, props: props.to_vec() }
}

pub fn lead_values(model: &Model, lead: &[(&str, &str)]) -> Vec<Value> {
    model
        .lead_fields()
        .iter()
        .map(|f| lead.iter().find(|(k, _)| k == f).map_or(Value::Missing, |(_, v)| Value::text(*v)))
        .collect()
}

pub fn event_properties(model: &Model, event: &E<'_>) -> Vec<Value> {
    model
        .event_properties()
        .iter()
        .map(|p| event.props.iter().find(|(k, _)| k == p).map_or(Value::Missing, |(_, v)| Value::text(*v)))
        .collect()
}

/// One score's outcome, owned.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub value: f64,
    pub tier: Option<String>,
    /// (rule or kind, occurrences, points)
    pub contributions: Vec<(String, u32, f64)>,
}

pub fn score_at(model: &Model, lead: &[(&str, &str)], events: &[E<'_>], as_of: Timestamp) -> Vec<Outcome> {
    let values = lead_values(model, lead);
    let props: Vec<Vec<Value>> = events.iter().map(|e| event_properties(model, e)).collect();
    let engine_events =
        events.iter().zip(&props).map(|(e, p)| Event { event_type: model.event_type(e.kind), at: e.at, properties: p });
    let scores = model.score(&values, engine_events, as_of);
    scores
        .scores
        .iter()
        .map(|s| Outcome {
            value: s.value,
            tier: s.tier.map(str::to_string),
            contributions: s
                .contributions
                .iter()
                .map(|c| {
                    let source = match &c.source {
                        leadscore_core::Source::Rule { rule, .. } => rule.to_string(),
                        other => serde_json::to_value(other).unwrap()["kind"].as_str().unwrap().to_string(),
                    };
                    (source, c.occurrences, c.points)
                })
                .collect(),
        })
        .collect()
}

pub fn score(model: &Model, lead: &[(&str, &str)], events: &[E<'_>]) -> Vec<Outcome> {
    score_at(model, lead, events, at(AS_OF))
}

/// The first score's value and tier.
pub fn first(model: &Model, lead: &[(&str, &str)], events: &[E<'_>]) -> (f64, Option<String>) {
    let outcome = score(model, lead, events).remove(0);
    (outcome.value, outcome.tier)
}

pub fn assert_close(actual: f64, expected: f64) {
    assert!((actual - expected).abs() < 1e-9, "expected {expected}, got {actual}");
}

/// Applies events one at a time to a state (the service's path).
pub fn state_of(model: &Model, events: &[E<'_>]) -> LeadState {
    let mut state = LeadState::new(model);
    for e in events {
        let props = event_properties(model, e);
        state.apply(model, &Event { event_type: model.event_type(e.kind), at: e.at, properties: &props });
    }
    state
}
