//! The compiled model: what [`crate::compile()`] makes of a model file and the engine runs.
//!
//! Everything here has been checked once. Names are resolved to indexes: lead fields and event
//! properties to slots of a record (`&[Value]`), event types to [`EventTypeId`]s, rules to the
//! event trackers that keep the occurrences they need. Each rule kind's compiled form lives with
//! its evaluation in [`crate::rules`].

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::predictor::Predictor;
use crate::rules::RuleKind;
use crate::rules::condition::Condition;
use crate::time::Duration;

/// An event type the model knows, as an index into [`Model::event_types`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventTypeId(pub u32);

/// A compiled, valid scoring model.
#[derive(Debug)]
pub struct Model {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) lead_fields: Vec<String>,
    pub(crate) event_properties: Vec<String>,
    pub(crate) event_types: Vec<String>,
    pub(crate) event_type_index: FxHashMap<String, EventTypeId>,
    pub(crate) trackers: Vec<Tracker>,
    /// For each event type, the trackers its events go to.
    pub(crate) trackers_by_type: Vec<Vec<usize>>,
    /// Trackers that take events of every type (inactivity rules without `event`).
    pub(crate) trackers_for_any_type: Vec<usize>,
    pub(crate) scores: Vec<Score>,
    /// Score indexes in an order where every score comes after the scores it is made from.
    pub(crate) evaluation_order: Vec<usize>,
    pub(crate) created_at_field: Option<usize>,
    /// The file's `[[tests]]` (`model_tests.rs` runs them).
    pub(crate) tests: Vec<TestCase>,
}

impl Model {
    /// The file's `[[tests]]`, in the order they are written.
    pub fn tests(&self) -> &[TestCase] {
        &self.tests
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The lead fields the model reads; a lead is passed to the engine as one value per field,
    /// in this order.
    pub fn lead_fields(&self) -> &[String] {
        &self.lead_fields
    }

    /// The lead field `[lead] created_at` names, if the model names one.
    pub fn created_at_field(&self) -> Option<&str> {
        self.created_at_field.map(|i| self.lead_fields[i].as_str())
    }

    /// The event properties the model's filters read; an event carries one value per property,
    /// in this order.
    pub fn event_properties(&self) -> &[String] {
        &self.event_properties
    }

    /// The event types some rule or qualifier looks at.
    pub fn event_types(&self) -> &[String] {
        &self.event_types
    }

    /// The id of an event type, or `None` when no rule looks at it.
    pub fn event_type(&self, name: &str) -> Option<EventTypeId> {
        self.event_type_index.get(name).copied()
    }

    /// Whether events of types no rule names still matter (an inactivity rule counts any event).
    pub fn needs_every_event_type(&self) -> bool {
        !self.trackers_for_any_type.is_empty()
    }

    pub fn score_names(&self) -> impl Iterator<Item = &str> {
        self.scores.iter().map(|score| score.name.as_str())
    }

    pub fn scores(&self) -> &[Score] {
        &self.scores
    }

    /// The event trackers the rules and qualifiers read ([`crate::rules`] names them by index).
    pub fn trackers(&self) -> &[Tracker] {
        &self.trackers
    }

    /// The event types whose events tracker `tracker` keeps (if they pass its filter), or `None`
    /// when it keeps events of every type (an inactivity rule without `event`).
    pub fn tracker_event_types(&self, tracker: usize) -> Option<Vec<&str>> {
        if self.trackers_for_any_type.contains(&tracker) {
            return None;
        }
        let types = self.trackers_by_type.iter().enumerate().filter(|(_, trackers)| trackers.contains(&tracker));
        Some(types.map(|(type_index, _)| self.event_types[type_index].as_str()).collect())
    }

    /// Score indexes in the order the engine evaluates them: every score after the scores it is
    /// made from or tests.
    pub fn evaluation_order(&self) -> &[usize] {
        &self.evaluation_order
    }

    /// The lead record slot of `[lead] created_at`, if the model names one.
    pub fn created_at_slot(&self) -> Option<usize> {
        self.created_at_field
    }

    /// Every tier label score `score` can have: its tiers and its `disqualified_tier`, and for a
    /// score of segments without tiers of its own, its segments' labels.
    pub(crate) fn tier_labels(&self, score: usize) -> Vec<&str> {
        let mut labels = Vec::new();
        let mut pending = vec![score];
        let mut seen = vec![score];
        while let Some(i) = pending.pop() {
            let s = &self.scores[i];
            for label in s.tiers.iter().map(|t| t.label.as_str()).chain([s.disqualified_tier.as_str()]) {
                if !labels.contains(&label) {
                    labels.push(label);
                }
            }
            if s.tiers.is_empty() {
                for segment in &s.segments {
                    if !seen.contains(&segment.score) {
                        seen.push(segment.score);
                        pending.push(segment.score);
                    }
                }
            }
        }
        labels
    }
}

/// Keeps, per lead, the timestamps of the events one or more rules look at.
#[derive(Debug)]
pub struct Tracker {
    /// `None`: every event type.
    pub filter: Option<Condition>,
    /// How many of the most recent occurrences to keep; `None` keeps them all.
    pub keep_most_recent: Option<usize>,
}

/// One score of the model.
#[derive(Debug)]
pub struct Score {
    pub name: String,
    pub description: Option<String>,
    pub rules: Vec<Rule>,
    pub groups: Vec<Group>,
    /// Scores this one is made from, with their weights.
    pub components: Vec<(usize, f64)>,
    /// `applies_to`: leads that do not match get 0 and no tier.
    pub applies_to: Option<Condition>,
    /// `segments`: the score is the first of these the lead matches (no rules of its own).
    pub segments: Vec<Segment>,
    /// Every score that must be evaluated before this one: components, segments and the scores
    /// its conditions test.
    pub depends_on: Vec<usize>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub normalize: bool,
    /// Decimals the value is rounded to before its tier is found (0 to 6).
    pub precision: u8,
    pub tiers: Vec<Tier>,
    pub qualifiers: Vec<Qualifier>,
    pub disqualifiers: Vec<Qualifier>,
    pub disqualified_tier: String,
    /// Set for a predictive score, which has no rules, components or limits.
    pub predictive: Option<PredictiveScore>,
}

/// A score whose value is a trained model's probability, times 100.
#[derive(Debug)]
pub struct PredictiveScore {
    /// What the model file named (a path, or a stored model's name).
    pub reference: String,
    pub predictor: Arc<dyn Predictor>,
    /// The lead record slot of each of the predictor's fields.
    pub slots: Vec<usize>,
    /// How many fields the explanation names.
    pub factors: usize,
}

impl Score {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    pub fn tiers(&self) -> &[Tier] {
        &self.tiers
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The predictive model a predictive score uses, as the model file named it.
    pub fn predictive_reference(&self) -> Option<&str> {
        self.predictive.as_ref().map(|p| p.reference.as_str())
    }

    /// The tier the score's points put `value` in (qualifiers and disqualifiers aside, as they
    /// read a lead and not a value): the highest tier whose `min` the value reaches, if its
    /// `max` holds it too.
    pub fn tier_of_value(&self, value: f64) -> Option<&str> {
        let reached = self.tiers.iter().rposition(|t| !t.qualifier_only && t.min.is_none_or(|min| value >= min));
        reached.filter(|&i| self.tiers[i].contains(value)).map(|i| self.tiers[i].label.as_str())
    }

    /// Whether a lead can be in tier `label` of this score: one of its tiers, or the tier its
    /// disqualifiers (if it has any) put leads in.
    pub fn has_tier(&self, label: &str) -> bool {
        self.tiers.iter().any(|t| t.label == label)
            || (!self.disqualifiers.is_empty() && self.disqualified_tier == label)
    }
}

/// One entry of a score's `segments`.
#[derive(Debug)]
pub struct Segment {
    /// `Condition::Always` for `otherwise`.
    pub when: Condition,
    pub score: usize,
}

/// A named group of rules whose total is limited.
#[derive(Debug)]
pub struct Group {
    pub name: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// A labelled range of a score, both ends inclusive.
#[derive(Debug)]
pub struct Tier {
    pub(crate) label: String,
    pub(crate) min: Option<f64>,
    pub(crate) max: Option<f64>,
    pub(crate) qualifier_only: bool,
    /// Where the tier is written in the model's text, for what `check` says of it.
    pub(crate) span: std::ops::Range<usize>,
}

impl Tier {
    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn min(&self) -> Option<f64> {
        self.min
    }

    pub fn max(&self) -> Option<f64> {
        self.max
    }

    pub fn qualifier_only(&self) -> bool {
        self.qualifier_only
    }

    pub(crate) fn contains(&self, value: f64) -> bool {
        !self.qualifier_only && self.min.is_none_or(|min| value >= min) && self.max.is_none_or(|max| value <= max)
    }
}

/// A rule of a score.
#[derive(Debug)]
pub struct Rule {
    pub name: String,
    pub group: Option<usize>,
    pub kind: RuleKind,
    /// Where the rule is written in the model's text (its `[[...rules]]` table).
    pub span: std::ops::Range<usize>,
}

impl Rule {
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A direct qualifier or disqualifier: every test it has must hold.
#[derive(Debug)]
pub struct Qualifier {
    pub name: String,
    /// Index into the score's tiers (unused for disqualifiers).
    pub tier: usize,
    pub when: Option<Condition>,
    pub event: Option<EventTest>,
    /// Rules of the same score that must apply.
    pub rules: Vec<usize>,
    /// Where the qualifier is written in the model's text.
    pub span: std::ops::Range<usize>,
}

#[derive(Debug)]
pub struct EventTest {
    pub tracker: usize,
    pub within: Option<Duration>,
    pub min_count: usize,
}

/// One compiled `[[tests]]` entry (`model_tests.rs` runs them).
#[derive(Debug, Clone)]
pub struct TestCase {
    pub name: String,
    /// Where the entry's name is written, for diagnostics.
    pub span: std::ops::Range<usize>,
    pub as_of: crate::time::Timestamp,
    /// One value per [`Model::lead_fields`] entry.
    pub(crate) lead: Vec<crate::value::Value>,
    pub(crate) events: Vec<TestEvent>,
    pub(crate) expectations: Vec<Expectation>,
}

#[derive(Debug, Clone)]
pub(crate) struct TestEvent {
    pub(crate) event_type: Option<EventTypeId>,
    pub(crate) at: crate::time::Timestamp,
    pub(crate) properties: Vec<crate::value::Value>,
}

/// What one score should be.
#[derive(Debug, Clone)]
pub(crate) struct Expectation {
    pub(crate) score: usize,
    pub(crate) value: Option<f64>,
    /// `Some(None)`: the score should fall in no tier (`tier = ""`).
    pub(crate) tier: Option<Option<String>>,
}
