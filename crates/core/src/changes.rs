//! Why a score moved: the signed change of each score between two moments of a lead, split into
//! terms that add up to it (within 1e-9, so exactly at the 6 decimals values are written with).
//!
//! Between two instants under one model, the change is taken in three steps, each a full
//! evaluation of the model, so that every term is what the engine itself computes:
//! 1. **time**: the earlier fields and events, read at the later instant: decay, windows
//!    expiring, inactivity setting in, and qualifier windows (tiers only);
//! 2. **events**: the later events (new ones, and any deleted since);
//! 3. **attributes**: the later fields.
//!
//! In each step a score's change is split by the contributions that moved: a rule's points
//! (an event rule's change over time is split again into the points of the occurrences that left
//! its window and the decay of the rest, by one more evaluation of that rule with the window
//! taken at the later instant and the decay at the earlier one), group and score limits
//! becoming binding or lifting, and normalisation. A component's or a segment's change is
//! replaced by that score's own terms (times its weight), so that a total says which rule of
//! which score moved it. What the rounding of values to their precision leaves is one last
//! `rounding` term, so the terms add up to the change of the written values.
//!
//! Between two models (two versions, at one instant), every moved contribution is a `model`
//! term. Tiers are not additive: each change carries the tier before and after.

use serde::Serialize;

use crate::engine::{Done, LeadScores, LeadState, ScoreResult, Source, serialize_rounded};
use crate::model::Model;
use crate::rules::RuleKind;
use crate::time::Timestamp;
use crate::value::Value;

/// A lead at one instant: its fields (one value per [`Model::lead_fields`] entry of the model it
/// is read with), its state and the instant.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    pub lead: &'a [Value],
    pub state: &'a LeadState,
    pub as_of: Timestamp,
}

/// How one score moved, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ScoreMove))]
pub struct ScoreChange<'m> {
    pub score: &'m str,
    /// The value before and after (0 for a score one of the models does not have).
    #[serde(serialize_with = "serialize_rounded")]
    pub before: f64,
    #[serde(serialize_with = "serialize_rounded")]
    pub after: f64,
    /// `after − before`, which the terms add up to.
    #[serde(serialize_with = "serialize_rounded")]
    pub change: f64,
    pub tier_before: Option<&'m str>,
    pub tier_after: Option<&'m str>,
    /// Largest first; terms of the same cause, score and rule are one term.
    pub terms: Vec<Term<'m>>,
}

/// One share of a change.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ChangeTerm))]
pub struct Term<'m> {
    pub cause: Cause,
    /// The score the points belong to: the score itself, or the component or segment score a
    /// total's change comes from.
    pub score: &'m str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<&'m str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<&'m str>,
    /// A predictive score's field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'m str>,
    /// For `events`: how many more occurrences the rule counts (fewer when negative).
    #[serde(skip_serializing_if = "is_zero")]
    pub occurrences: i64,
    #[serde(serialize_with = "serialize_rounded")]
    pub points: f64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// What made a term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ChangeCause))]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// Events the lead did (or events deleted), by the rule that counts them.
    Events,
    /// Time passing: an event rule's points decaying.
    Decay,
    /// Time passing: occurrences leaving an event rule's `window`.
    WindowExpired,
    /// Time passing: an inactivity rule starting (or stopping) to apply.
    Inactivity,
    /// Time passing, otherwise (a rule testing a score that moved with time).
    Time,
    /// The lead's fields changed.
    Attributes,
    /// A group's or the score's `min`/`max`, or normalisation, cut or lifted the points.
    Limit,
    /// The lead moved to another segment.
    Segment,
    /// Another model version.
    Model,
    /// What rounding the values to their precision leaves.
    Rounding,
}

/// Terms smaller than this are float noise: they go into the `rounding` term.
const NOISE: f64 = 1e-9;

/// The step of a change over time a set of terms comes from.
#[derive(Clone, Copy)]
enum Step<'a> {
    Time { before: Snapshot<'a>, to: Timestamp },
    Events,
    Attributes,
}

impl Step<'_> {
    fn cause(&self) -> Cause {
        match self {
            Step::Time { .. } => Cause::Time,
            Step::Events => Cause::Events,
            Step::Attributes => Cause::Attributes,
        }
    }
}

/// What a contribution is, without its points: contributions of the same key in two
/// evaluations of a score are the same share of it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Key<'m> {
    Rule(&'m str, Option<&'m str>),
    GroupLimit(&'m str),
    Component(&'m str),
    ScoreLimit,
    Normalization,
    Factor(&'m str),
    OtherFactors,
    NotApplicable,
    Segment(&'m str),
}

fn key<'m>(source: &Source<'m>) -> Key<'m> {
    match *source {
        Source::Rule { rule, group } => Key::Rule(rule, group),
        Source::GroupLimit { group } => Key::GroupLimit(group),
        Source::Component { score, .. } => Key::Component(score),
        Source::ScoreLimit => Key::ScoreLimit,
        Source::Normalization => Key::Normalization,
        Source::Factor { field, .. } => Key::Factor(field),
        Source::OtherFactors => Key::OtherFactors,
        Source::NotApplicable => Key::NotApplicable,
        Source::Segment { score } => Key::Segment(score),
    }
}

/// Each key of either evaluation with its points and occurrences before and after, in the order
/// they are listed (after's first).
fn paired<'m>(before: &ScoreResult<'m>, after: &ScoreResult<'m>) -> Vec<(Key<'m>, f64, f64, i64)> {
    let mut pairs: Vec<(Key<'m>, f64, f64, i64)> = Vec::new();
    for c in &after.contributions {
        let k = key(&c.source);
        match pairs.iter_mut().find(|p| p.0 == k) {
            Some(p) => {
                p.2 += c.points;
                p.3 += i64::from(c.occurrences);
            }
            None => pairs.push((k, 0.0, c.points, i64::from(c.occurrences))),
        }
    }
    for c in &before.contributions {
        let k = key(&c.source);
        match pairs.iter_mut().find(|p| p.0 == k) {
            Some(p) => {
                p.1 += c.points;
                p.3 -= i64::from(c.occurrences);
            }
            None => pairs.push((k, c.points, 0.0, -i64::from(c.occurrences))),
        }
    }
    pairs
}

impl Model {
    /// Why each score of a lead moved from `before` to `after` under this model: time, events
    /// and fields in turn (see the module's documentation). The scores come in the model's order.
    pub fn changes<'m>(&'m self, before: Snapshot<'_>, after: Snapshot<'_>) -> Vec<ScoreChange<'m>> {
        self.changes_ending(before, after, None)
    }

    /// [`Model::changes`], given the evaluation of `after` when the caller has it (the service,
    /// which has just scored the lead): one evaluation fewer.
    pub fn changes_ending<'m>(
        &'m self,
        before: Snapshot<'_>,
        after: Snapshot<'_>,
        at_end: Option<&LeadScores<'m>>,
    ) -> Vec<ScoreChange<'m>> {
        let evaluated_end;
        let at_end = match at_end {
            Some(at_end) => at_end,
            None => {
                evaluated_end = self.evaluate(after.lead, after.state, after.as_of);
                &evaluated_end
            }
        };
        let at_start = self.evaluate(before.lead, before.state, before.as_of);
        let later = self.evaluate(before.lead, before.state, after.as_of);
        let time = self.step_terms(&at_start, &later, Step::Time { before, to: after.as_of });
        // With the same fields (most events), the fields step moves nothing: not evaluated.
        let (events, attributes) = if before.lead == after.lead {
            (self.step_terms(&later, at_end, Step::Events), Vec::new())
        } else {
            let with_events = self.evaluate(before.lead, after.state, after.as_of);
            (
                self.step_terms(&later, &with_events, Step::Events),
                self.step_terms(&with_events, at_end, Step::Attributes),
            )
        };
        (0..self.scores.len())
            .map(|i| {
                let terms = [&time, &events, &attributes]
                    .iter()
                    .flat_map(|step| step.get(i).into_iter().flatten().cloned())
                    .collect();
                finish(&at_start.scores[i], &at_end.scores[i], terms)
            })
            .collect()
    }

    /// The terms of one step for every score, in the model's score order.
    fn step_terms<'m>(&'m self, before: &LeadScores<'m>, after: &LeadScores<'m>, step: Step<'_>) -> Vec<Vec<Term<'m>>> {
        let mut terms: Vec<Vec<Term<'m>>> = vec![Vec::new(); self.scores.len()];
        for &i in &self.evaluation_order {
            let score = &self.scores[i];
            let (b, a) = (&before.scores[i], &after.scores[i]);
            let scale = match (score.normalize, score.min, score.max) {
                (true, Some(min), Some(max)) => 100.0 / (max - min),
                _ => 1.0,
            };
            let mut own: Vec<Term<'m>> = Vec::new();
            for (k, points_before, points_after, occurrences) in paired(b, a) {
                let diff = points_after - points_before;
                let term = |cause: Cause, rule: Option<&'m str>, group: Option<&'m str>, points: f64| Term {
                    cause,
                    score: score.name.as_str(),
                    rule,
                    group,
                    field: None,
                    occurrences: if cause == Cause::Events { occurrences } else { 0 },
                    points,
                };
                match k {
                    Key::Rule(rule, group) => {
                        let kind = score.rules.iter().find(|r| r.name == rule).map(|r| &r.kind);
                        match (step, kind) {
                            (Step::Time { before: snapshot, to }, Some(kind @ RuleKind::Event(_))) => {
                                // The same occurrences counted at the later instant, decayed as at
                                // the earlier one: what left the window, then what decayed.
                                let counted_later = kind
                                    .outcome_between(
                                        snapshot.lead,
                                        snapshot.state.occurrences(),
                                        self.created_at_field,
                                        to,
                                        snapshot.as_of,
                                        &Done { results: &after.scores },
                                    )
                                    .points
                                    * scale;
                                own.push(term(Cause::WindowExpired, Some(rule), group, counted_later - points_before));
                                own.push(term(Cause::Decay, Some(rule), group, points_after - counted_later));
                            }
                            (Step::Time { .. }, Some(RuleKind::Inactivity(_))) => {
                                own.push(term(Cause::Inactivity, Some(rule), group, diff))
                            }
                            _ => own.push(term(step.cause(), Some(rule), group, diff)),
                        }
                    }
                    Key::GroupLimit(group) => own.push(term(Cause::Limit, None, Some(group), diff)),
                    Key::ScoreLimit | Key::Normalization => own.push(term(Cause::Limit, None, None, diff)),
                    Key::Factor(field) => own.push(Term { field: Some(field), ..term(step.cause(), None, None, diff) }),
                    Key::OtherFactors => own.push(term(step.cause(), None, None, diff)),
                    Key::NotApplicable => {}
                    Key::Component(component) => {
                        let weight = score
                            .components
                            .iter()
                            .find(|(c, _)| self.scores[*c].name == component)
                            .map(|&(c, weight)| (c, weight));
                        match weight {
                            Some((c, weight)) => own.extend(
                                terms[c].iter().map(|t| Term { points: t.points * weight * scale, ..t.clone() }),
                            ),
                            None => own.push(term(step.cause(), None, None, diff)),
                        }
                    }
                    Key::Segment(segment) => {
                        let routed_both = matches!(
                            (a.contributions.first(), b.contributions.first()),
                            (Some(x), Some(y)) if x.source == y.source
                        );
                        let index = self.scores.iter().position(|s| s.name == segment);
                        match index {
                            Some(r) if routed_both => own.extend(terms[r].iter().cloned()),
                            _ => own.push(Term { cause: Cause::Segment, ..term(step.cause(), None, None, diff) }),
                        }
                    }
                }
            }
            let change = a.value - b.value;
            let rest = change - own.iter().map(|t| t.points).sum::<f64>();
            if rest != 0.0 {
                own.push(Term {
                    cause: Cause::Rounding,
                    score: score.name.as_str(),
                    rule: None,
                    group: None,
                    field: None,
                    occurrences: 0,
                    points: rest,
                });
            }
            terms[i] = own;
        }
        terms
    }
}

/// How every score moved from `before` under `before_model` to `after` under `after_model`: a
/// new model version read on the same lead at the same instant. Each moved contribution is a
/// `model` term; scores of one model only count from or to 0. The after model's scores come
/// first, in its order, then the scores it no longer has.
pub fn model_changes<'m>(
    before_model: &'m Model,
    before: Snapshot<'_>,
    after_model: &'m Model,
    after: Snapshot<'_>,
) -> Vec<ScoreChange<'m>> {
    let old = before_model.evaluate(before.lead, before.state, before.as_of);
    let new = after_model.evaluate(after.lead, after.state, after.as_of);
    let absent = ScoreResult::default();
    let mut changes = Vec::new();
    for a in &new.scores {
        let b = old.scores.iter().find(|s| s.name == a.name).unwrap_or(&absent);
        changes.push(finish(b, a, model_terms(a.name, b, a)));
    }
    for b in old.scores.iter().filter(|b| new.get(b.name).is_none()) {
        let gone = ScoreResult { name: b.name, ..ScoreResult::default() };
        changes.push(finish(b, &gone, model_terms(b.name, b, &gone)));
    }
    changes
}

/// How every score moved from `before` under `before_model` to `after` under `after_model`,
/// whatever differs: under one model (the same `Model`), [`Model::changes`]; across two, time
/// passing under the earlier model first (its state and fields read at the later instant), then
/// everything else as `model` terms (a new version's rescoring, or events applied together with
/// it). The after model's scores come first, then the scores it no longer has.
pub fn changes_between<'m>(
    before_model: &'m Model,
    before: Snapshot<'_>,
    after_model: &'m Model,
    after: Snapshot<'_>,
) -> Vec<ScoreChange<'m>> {
    changes_between_ending(before_model, before, after_model, after, None)
}

/// [`changes_between`], given the evaluation of `after` under `after_model` when the caller has
/// it.
pub fn changes_between_ending<'m>(
    before_model: &'m Model,
    before: Snapshot<'_>,
    after_model: &'m Model,
    after: Snapshot<'_>,
    at_end: Option<&LeadScores<'m>>,
) -> Vec<ScoreChange<'m>> {
    if std::ptr::eq(before_model, after_model) {
        return after_model.changes_ending(before, after, at_end);
    }
    let later = Snapshot { as_of: after.as_of, ..before };
    let time = before_model.changes(before, later);
    let mut changes = model_changes(before_model, later, after_model, after);
    for change in &mut changes {
        if let Some(aged) = time.iter().find(|t| t.score == change.score) {
            let mut terms = aged.terms.clone();
            terms.append(&mut change.terms);
            let before_result =
                ScoreResult { name: aged.score, value: aged.before, tier: aged.tier_before, ..ScoreResult::default() };
            let after_result = ScoreResult {
                name: change.score,
                value: change.after,
                tier: change.tier_after,
                ..ScoreResult::default()
            };
            *change = finish(&before_result, &after_result, terms);
        }
    }
    changes
}

fn model_terms<'m>(score: &'m str, before: &ScoreResult<'m>, after: &ScoreResult<'m>) -> Vec<Term<'m>> {
    paired(before, after)
        .into_iter()
        .map(|(k, points_before, points_after, _)| {
            let (rule, group, field) = match k {
                Key::Rule(rule, group) => (Some(rule), group, None),
                Key::GroupLimit(group) => (None, Some(group), None),
                Key::Factor(field) => (None, None, Some(field)),
                _ => (None, None, None),
            };
            let score = match k {
                Key::Component(component) | Key::Segment(component) => component,
                _ => score,
            };
            Term {
                cause: Cause::Model,
                score,
                rule,
                group,
                field,
                occurrences: 0,
                points: points_after - points_before,
            }
        })
        .collect()
}

/// One score's change from its terms: equal terms merged, noise and zeros dropped, the rest of
/// the change (rounding) last, the largest terms first.
fn finish<'m>(before: &ScoreResult<'m>, after: &ScoreResult<'m>, raw: Vec<Term<'m>>) -> ScoreChange<'m> {
    let mut terms: Vec<Term<'m>> = Vec::new();
    for t in raw.into_iter().filter(|t| t.cause != Cause::Rounding) {
        let same = |u: &&mut Term<'m>| {
            u.cause == t.cause && u.score == t.score && u.rule == t.rule && u.group == t.group && u.field == t.field
        };
        match terms.iter_mut().find(same) {
            Some(u) => {
                u.points += t.points;
                u.occurrences += t.occurrences;
            }
            None => terms.push(t),
        }
    }
    terms.retain(|t| t.points.abs() >= NOISE || t.occurrences != 0);
    terms.sort_by(|a, b| b.points.abs().total_cmp(&a.points.abs()));
    let change = after.value - before.value;
    let rest = change - terms.iter().map(|t| t.points).sum::<f64>();
    if rest.abs() >= NOISE {
        terms.push(Term {
            cause: Cause::Rounding,
            score: after.name,
            rule: None,
            group: None,
            field: None,
            occurrences: 0,
            points: rest,
        });
    }
    ScoreChange {
        score: if after.name.is_empty() { before.name } else { after.name },
        before: before.value,
        after: after.value,
        change,
        tier_before: before.tier,
        tier_after: after.tier,
        terms,
    }
}
