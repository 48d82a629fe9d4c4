//! The scoring engine: a lead's stored state, how one event updates it, and how scores, tiers and
//! their explanations are assembled from it at an "as of" instant. Each rule is evaluated by its
//! kind's module under [`crate::rules`]; here its outcome is added up with the others (groups,
//! components, limits, normalisation), predictive scores are explained, and tiers and qualifiers
//! are decided.
//!
//! State holds, per tracker, the timestamps of the occurrences the model may still count, in
//! ascending order and bounded where the rules allow it (a rule that counts the 5 most recent
//! occurrences keeps 5). Applying an event is therefore cheap and needs no history; everything
//! that depends on time (decay, windows, inactivity, qualifier windows) is computed at evaluation.
//!
//! Invariants:
//! - The result does not depend on the order events were applied in: state is a sorted multiset
//!   and ties in time earn equal points, so sums add the same numbers in the same order.
//! - A score's value is the sum, in order, of its contributions.
//! - Occurrences after `as_of` never count. With bounded trackers, fold only events up to `as_of`
//!   (what [`Model::score`] does) for exact results at an `as_of` in the past.

use serde::Serialize;

use crate::model::{EventTypeId, Model, PredictiveScore, Qualifier, Score};
use crate::rules::condition::Scores;
use crate::rules::{RuleOutcome, counted_until};
use crate::time::Timestamp;
use crate::value::Value;

/// One event as the engine sees it.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// `None` for a type no rule names (only inactivity rules without `event` see it).
    pub event_type: Option<EventTypeId>,
    pub at: Timestamp,
    /// One value per [`Model::event_properties`] entry (may be shorter: the rest are missing).
    pub properties: &'a [Value],
}

/// What the engine keeps of one lead's events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeadState {
    /// Per tracker, ascending occurrence times (at least the `keep_most_recent` newest).
    occurrences: Vec<Vec<Timestamp>>,
}

impl LeadState {
    pub fn new(model: &Model) -> LeadState {
        LeadState { occurrences: vec![Vec::new(); model.trackers.len()] }
    }

    /// Empties the state for reuse with another lead of the same model.
    pub fn clear(&mut self) {
        self.occurrences.iter_mut().for_each(Vec::clear);
    }

    /// Per tracker, the occurrence times kept (for storage).
    pub fn occurrences(&self) -> &[Vec<Timestamp>] {
        &self.occurrences
    }

    /// Rebuilds a state from stored occurrences. Returns `None` if they do not fit the model
    /// (another model version): replay the events instead.
    pub fn from_occurrences(model: &Model, mut occurrences: Vec<Vec<Timestamp>>) -> Option<LeadState> {
        if occurrences.len() != model.trackers.len() {
            return None;
        }
        occurrences.iter_mut().for_each(|o| o.sort_unstable());
        Some(LeadState { occurrences })
    }

    /// Records one event. Cost is bounded by the largest `max_count` the model keeps, except for
    /// rules that count every occurrence, where it is an append for events arriving in time order.
    pub fn apply(&mut self, model: &Model, event: &Event<'_>) {
        if let Some(event_type) = event.event_type {
            for &tracker in &model.trackers_by_type[event_type.0 as usize] {
                self.record(model, tracker, event);
            }
        }
        for &tracker in &model.trackers_for_any_type {
            self.record(model, tracker, event);
        }
    }

    /// The same state without the occurrences after `as_of`: what a lead with no new activity
    /// holds when it is evaluated at later instants (`outlook.rs`).
    pub(crate) fn counted_until(&self, as_of: Timestamp) -> LeadState {
        LeadState { occurrences: self.occurrences.iter().map(|times| counted_until(times, as_of).to_vec()).collect() }
    }

    /// Adds one occurrence at `at` to one tracker alone: an event that only the rule or qualifier
    /// owning that tracker counts (`outlook.rs` simulates actions with it). Nothing is dropped,
    /// which changes no result: every reader takes the most recent times it needs.
    pub(crate) fn add_occurrence(&mut self, tracker: usize, at: Timestamp) {
        let times = &mut self.occurrences[tracker];
        let position = times.partition_point(|t| *t <= at);
        times.insert(position, at);
    }

    fn record(&mut self, model: &Model, tracker_index: usize, event: &Event<'_>) {
        let tracker = &model.trackers[tracker_index];
        if let Some(filter) = &tracker.filter
            && !filter.matches(event.properties)
        {
            return;
        }
        let times = &mut self.occurrences[tracker_index];
        let at = event.at;
        if let Some(keep) = tracker.keep_most_recent
            && times.len() >= keep
            && (keep == 0 || at <= times[times.len() - keep])
        {
            // Not among the `keep` most recent: it can never count.
            return;
        }
        if times.last().is_none_or(|last| *last <= at) {
            times.push(at);
        } else {
            let position = times.partition_point(|t| *t <= at);
            times.insert(position, at);
        }
        // Older occurrences are dropped in bulk once they are as many as the kept ones, so that
        // a stream of newer events costs amortised O(1) each. Keeping a few extra older ones
        // changes no result: every reader takes the most recent ones it needs.
        if let Some(keep) = tracker.keep_most_recent
            && times.len() >= 2 * keep.max(8)
        {
            times.drain(..times.len() - keep);
        }
    }
}

/// The scores of one lead.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LeadScores<'m> {
    pub scores: Vec<ScoreResult<'m>>,
}

impl<'m> LeadScores<'m> {
    pub fn get(&self, name: &str) -> Option<&ScoreResult<'m>> {
        self.scores.iter().find(|s| s.name == name)
    }
}

/// One score of one lead, explained.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScoreResult<'m> {
    pub name: &'m str,
    /// The score, rounded to the score's `precision` (6 decimals unless the model says
    /// otherwise); its tier is the tier of this rounded value.
    #[serde(serialize_with = "serialize_rounded")]
    pub value: f64,
    /// The tier the value falls in; none when it falls outside every tier (see `leadscore check`).
    pub tier: Option<&'m str>,
    /// The qualifier that set the tier, if one raised it above the points tier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qualified_by: Option<&'m str>,
    /// The disqualifier that applied, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disqualified_by: Option<&'m str>,
    /// Adds up, in order, to `value` before its rounding: within half a unit of the precision.
    pub contributions: Vec<Contribution<'m>>,
}

/// A share of a score's value and where it comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Contribution<'m> {
    #[serde(flatten)]
    pub source: Source<'m>,
    /// For an event rule: the events it counted. For other sources 0, left out when written.
    #[serde(skip_serializing_if = "is_zero")]
    pub occurrences: u32,
    /// Written rounded to 6 decimals (`round_score`), kept exact in memory.
    #[serde(serialize_with = "serialize_rounded")]
    pub points: f64,
}

/// A score or a share of one as people read it, in files, answers and webhooks alike: rounded to
/// 6 decimals the way `{:.6}` rounds, without a negative zero. Decay and normalisation leave
/// values such as `19.999994154245698`, whose last digits mean nothing to anyone.
pub fn round_score(value: f64) -> f64 {
    if !value.is_finite() {
        return value;
    }
    let rounded: f64 = format!("{value:.6}").parse().unwrap_or(value);
    if rounded == 0.0 { 0.0 } else { rounded }
}

/// The most decimals a score's `precision` keeps: as many as every value is written with.
pub(crate) const MAX_PRECISION: u8 = 6;

/// `value` rounded to `decimals` decimals (half away from zero, without a negative zero): the
/// one rounding of a score's value, after limits and normalisation and before its tier is
/// found. The result is the double nearest to a number with at most `decimals` decimals, so
/// `round_score` (6 decimals) leaves it as it is and every output writes the same value.
pub(crate) fn round_to_precision(value: f64, decimals: u8) -> f64 {
    let scale = 10f64.powi(i32::from(decimals.min(MAX_PRECISION)));
    let scaled = value * scale;
    if !scaled.is_finite() {
        return value;
    }
    let rounded = scaled.round() / scale;
    if rounded == 0.0 { 0.0 } else { rounded }
}

pub(crate) fn serialize_rounded<S: serde::Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(round_score(*value))
}

#[cfg(test)]
mod rounding_tests {
    use super::{round_score, round_to_precision};

    /// Every output writes a value through `round_score`: it must leave the engine's rounding as
    /// it is, so that files, answers, webhooks and history carry the value the tier was found for.
    #[test]
    fn writing_a_value_keeps_the_engines_rounding() {
        let mut value = 0.123_456_789_f64;
        for i in 0..20_000 {
            value = (value * 7_919.0 + i as f64 * 0.000_000_37).rem_euclid(2_000_000.0) - 1_000_000.0;
            for decimals in 0..=6 {
                let rounded = round_to_precision(value, decimals);
                assert_eq!(round_score(rounded), rounded, "{value} to {decimals}");
                assert!((rounded - value).abs() <= 0.5 * 10f64.powi(-i32::from(decimals)) + 1e-9, "{value}");
            }
        }
        assert_eq!(round_to_precision(49.99999966, 6), 50.0);
        assert_eq!(round_to_precision(-0.4, 0).to_string(), "0");
        assert_eq!(round_to_precision(f64::MAX, 6), f64::MAX);
    }

    #[test]
    fn scores_are_rounded_to_six_decimals_without_negative_zero() {
        assert_eq!(round_score(19.999994154245698), 19.999994);
        assert_eq!(round_score(62.5), 62.5);
        assert_eq!(round_score(-22.5000031), -22.500003);
        assert_eq!(round_score(-0.0000001).to_string(), "0");
        assert_eq!(round_score(8.503741234).to_string(), "8.503741");
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What a contribution comes from, by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source<'m> {
    /// A rule that applied.
    Rule {
        rule: &'m str,
        #[serde(skip_serializing_if = "Option::is_none")]
        group: Option<&'m str>,
    },
    /// A group's limit cut its rules' total.
    GroupLimit { group: &'m str },
    /// A weighted component score.
    Component { score: &'m str, weight: f64 },
    /// The score's `min` / `max` clamped the total.
    ScoreLimit,
    /// Mapping [min, max] onto 0-100 (the other contributions are scaled too).
    Normalization,
    /// A field that moved a predictive score: the probability (in points of 0-100) against the
    /// same lead with this field unknown. `value` is `null` when the lead's field is unknown.
    Factor { field: &'m str, value: Option<String> },
    /// The rest of a predictive score: the base rate and the fields the explanation does not name.
    OtherFactors,
    /// The score's `applies_to` does not match the lead (or no segment does): 0 points, no tier.
    NotApplicable,
    /// The segment the lead falls in: the score takes this score's value.
    Segment { score: &'m str },
}

impl Model {
    /// Scores a lead from its events: folds the events up to `as_of` into a fresh state and
    /// evaluates it. `lead` has one value per [`Model::lead_fields`] entry.
    pub fn score<'e>(
        &self,
        lead: &[Value],
        events: impl IntoIterator<Item = Event<'e>>,
        as_of: Timestamp,
    ) -> LeadScores<'_> {
        let mut state = LeadState::new(self);
        for event in events {
            if event.at <= as_of {
                state.apply(self, &event);
            }
        }
        self.evaluate(lead, &state, as_of)
    }

    /// Evaluates every score of a lead at `as_of`.
    pub fn evaluate(&self, lead: &[Value], state: &LeadState, as_of: Timestamp) -> LeadScores<'_> {
        let mut out = LeadScores::default();
        self.evaluate_into(lead, state, as_of, &mut out);
        out
    }

    /// Same as [`Model::evaluate`], reusing `out`'s buffers (batch scoring calls this per lead).
    pub fn evaluate_into<'m>(&'m self, lead: &[Value], state: &LeadState, as_of: Timestamp, out: &mut LeadScores<'m>) {
        out.scores.resize_with(self.scores.len(), ScoreResult::default);
        let mut outcomes = Vec::new();
        for &score_index in &self.evaluation_order {
            let score = &self.scores[score_index];
            let mut result = std::mem::take(&mut out.scores[score_index]);
            self.evaluate_score(score, lead, state, as_of, &out.scores, &mut outcomes, &mut result);
            out.scores[score_index] = result;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn evaluate_score<'m>(
        &'m self,
        score: &'m Score,
        lead: &[Value],
        state: &LeadState,
        as_of: Timestamp,
        done: &[ScoreResult<'m>],
        outcomes: &mut Vec<RuleOutcome>,
        result: &mut ScoreResult<'m>,
    ) {
        result.name = &score.name;
        result.contributions.clear();
        result.qualified_by = None;
        result.disqualified_by = None;
        outcomes.clear();
        let scores = Done { results: done };
        if let Some(applies_to) = &score.applies_to
            && !applies_to.matches_with(lead, &scores)
        {
            not_applicable(result);
            return;
        }
        if !score.segments.is_empty() {
            let Some(segment) = score.segments.iter().find(|s| s.when.matches_with(lead, &scores)) else {
                not_applicable(result);
                return;
            };
            let routed = &done[segment.score];
            result.value = routed.value;
            result.contributions.push(Contribution {
                source: Source::Segment { score: routed.name },
                occurrences: 0,
                points: routed.value,
            });
            if score.tiers.is_empty() {
                // The segment's own tier, qualifiers and disqualifiers decide.
                result.tier = routed.tier;
                result.qualified_by = routed.qualified_by;
                result.disqualified_by = routed.disqualified_by;
            } else {
                self.set_tier(score, lead, state, as_of, outcomes, done, result);
            }
            return;
        }
        if let Some(predictive) = &score.predictive {
            result.value =
                round_to_precision(predict(self, predictive, lead, &mut result.contributions), score.precision);
            self.set_tier(score, lead, state, as_of, outcomes, done, result);
            return;
        }
        outcomes.extend(
            score
                .rules
                .iter()
                .map(|rule| rule.kind.outcome(lead, &state.occurrences, self.created_at_field, as_of, &scores)),
        );

        let contributions = &mut result.contributions;
        for (rule, outcome) in score.rules.iter().zip(outcomes.iter()) {
            if outcome.applied && rule.group.is_none() {
                contributions.push(Contribution {
                    source: Source::Rule { rule: &rule.name, group: None },
                    occurrences: outcome.occurrences,
                    points: outcome.points,
                });
            }
        }
        for (group_index, group) in score.groups.iter().enumerate() {
            let mut total = 0.0;
            for (rule, outcome) in score.rules.iter().zip(outcomes.iter()) {
                if outcome.applied && rule.group == Some(group_index) {
                    total += outcome.points;
                    contributions.push(Contribution {
                        source: Source::Rule { rule: &rule.name, group: Some(&group.name) },
                        occurrences: outcome.occurrences,
                        points: outcome.points,
                    });
                }
            }
            let limited = clamp(total, group.min, group.max);
            if limited != total {
                contributions.push(Contribution {
                    source: Source::GroupLimit { group: &group.name },
                    occurrences: 0,
                    points: limited - total,
                });
            }
        }
        for &(component, weight) in &score.components {
            let component_score = &done[component];
            contributions.push(Contribution {
                source: Source::Component { score: component_score.name, weight },
                occurrences: 0,
                points: weight * component_score.value,
            });
        }
        let total = sum(contributions);
        let limited = clamp(total, score.min, score.max);
        if limited != total {
            contributions.push(Contribution { source: Source::ScoreLimit, occurrences: 0, points: limited - total });
        }
        if score.normalize
            && let (Some(min), Some(max)) = (score.min, score.max)
        {
            let scale = 100.0 / (max - min);
            for contribution in contributions.iter_mut() {
                contribution.points *= scale;
            }
            // The offset -min * scale, plus the rounding of the scaled terms, so that the value
            // is (limited - min) * 100 / (max - min) and lands on the documented side of a tier.
            let offset = (limited - min) * scale - sum(contributions);
            if offset != 0.0 {
                contributions.push(Contribution { source: Source::Normalization, occurrences: 0, points: offset });
            }
        }
        // Rounded once, here: the tier, the components that read this score and every output
        // see this value. The contributions stay exact, so they add up to it within half a unit
        // of the precision.
        result.value = round_to_precision(sum(contributions), score.precision);
        self.set_tier(score, lead, state, as_of, outcomes, done, result);
    }

    /// The tier of a score whose value is set: a disqualifier's, or the points tier raised by
    /// qualifiers.
    #[allow(clippy::too_many_arguments)]
    fn set_tier<'m>(
        &'m self,
        score: &'m Score,
        lead: &[Value],
        state: &LeadState,
        as_of: Timestamp,
        outcomes: &[RuleOutcome],
        done: &[ScoreResult<'m>],
        result: &mut ScoreResult<'m>,
    ) {
        let value = result.value;
        let scores = Done { results: done };
        let qualifies = |q: &Qualifier| self.qualifies(q, lead, state, as_of, outcomes, &scores);
        if let Some(disqualifier) = score.disqualifiers.iter().find(|q| qualifies(q)) {
            result.tier = Some(&score.disqualified_tier);
            result.disqualified_by = Some(&disqualifier.name);
            return;
        }
        let points_tier = score.tiers.iter().rposition(|t| !t.qualifier_only && t.min.is_none_or(|min| value >= min));
        let mut tier = points_tier.filter(|&i| score.tiers[i].contains(value));
        for qualifier in &score.qualifiers {
            if tier.is_none_or(|t| qualifier.tier > t) && qualifies(qualifier) {
                tier = Some(qualifier.tier);
                result.qualified_by = Some(&qualifier.name);
            }
        }
        result.tier = tier.map(|t| score.tiers[t].label.as_str());
    }

    fn qualifies(
        &self,
        qualifier: &Qualifier,
        lead: &[Value],
        state: &LeadState,
        as_of: Timestamp,
        outcomes: &[RuleOutcome],
        scores: &dyn Scores,
    ) -> bool {
        if let Some(when) = &qualifier.when
            && !when.matches_with(lead, scores)
        {
            return false;
        }
        if let Some(test) = &qualifier.event {
            let times = counted_until(&state.occurrences[test.tracker], as_of);
            let in_window = match test.within {
                Some(within) => times.len() - times.partition_point(|t| *t < as_of.saturating_sub(within)),
                None => times.len(),
            };
            if in_window < test.min_count {
                return false;
            }
        }
        qualifier.rules.iter().all(|&r| outcomes[r].applied)
    }
}

/// A score that does not apply to the lead: 0, no tier, and an explanation saying so.
fn not_applicable(result: &mut ScoreResult<'_>) {
    result.value = 0.0;
    result.tier = None;
    result.contributions.push(Contribution { source: Source::NotApplicable, occurrences: 0, points: 0.0 });
}

/// The scores of the lead evaluated so far, as the conditions that test scores read them. The
/// compiler orders scores so that every score a condition tests is among them.
pub(crate) struct Done<'a, 'm> {
    pub(crate) results: &'a [ScoreResult<'m>],
}

impl Scores for Done<'_, '_> {
    fn value(&self, score: usize) -> f64 {
        self.results[score].value
    }

    fn tier(&self, score: usize) -> Option<&str> {
        self.results[score].tier
    }

    /// A rule applied when it contributed to the score: every rule that applies is listed,
    /// with 0 points too.
    fn rule_applied(&self, score: usize, rule: &str) -> bool {
        self.results[score].contributions.iter().any(|c| matches!(c.source, Source::Rule { rule: r, .. } if r == rule))
    }
}

/// A predictive score's value (the probability times 100) and its explanation: the fields with
/// the largest effects, then the rest, adding up to the value.
fn predict<'m>(
    model: &'m Model,
    predictive: &'m PredictiveScore,
    lead: &[Value],
    contributions: &mut Vec<Contribution<'m>>,
) -> f64 {
    static MISSING: Value = Value::Missing;
    let values: Vec<&Value> = predictive.slots.iter().map(|&slot| lead.get(slot).unwrap_or(&MISSING)).collect();
    let mut effects = Vec::new();
    let explain = predictive.factors > 0;
    let probability = predictive.predictor.predict(&values, explain.then_some(&mut effects));
    let value = 100.0 * probability.clamp(0.0, 1.0);
    let mut strongest: Vec<usize> = (0..effects.len().min(values.len())).filter(|&i| effects[i] != 0.0).collect();
    // Largest effect first; equal effects in field order, so that explanations are stable.
    strongest.sort_by(|&a, &b| effects[b].abs().total_cmp(&effects[a].abs()).then(a.cmp(&b)));
    strongest.truncate(predictive.factors);
    for i in strongest {
        let field = model.lead_fields[predictive.slots[i]].as_str();
        contributions.push(Contribution {
            source: Source::Factor { field, value: values[i].as_text().map(|t| t.into_owned()) },
            occurrences: 0,
            points: 100.0 * effects[i],
        });
    }
    let rest = value - sum(contributions);
    contributions.push(Contribution { source: Source::OtherFactors, occurrences: 0, points: rest });
    sum(contributions)
}

fn clamp(value: f64, min: Option<f64>, max: Option<f64>) -> f64 {
    let value = min.map_or(value, |min| value.max(min));
    max.map_or(value, |max| value.min(max))
}

fn sum(contributions: &[Contribution<'_>]) -> f64 {
    contributions.iter().fold(0.0, |total, c| total + c.points)
}
