//! A score's outlook: what would move it next. For each score of a lead at an as-of instant, the
//! next tier points can reach and how many points it lacks, the smallest sets of events that
//! would get the lead there, and when the lead falls a tier if it does nothing.
//!
//! Nothing here approximates the engine's arithmetic: every answer comes from evaluating the
//! whole model ([`Model::evaluate`]) on a changed state or at a later instant.
//!
//! - Actions: every event rule, inactivity rule and qualifier with an `event` test has a tracker
//!   of its own. One occurrence added to it at the as-of instant (and, for a sequence, to its
//!   preceding event's tracker too) is an event that this rule or qualifier alone counts; the
//!   model evaluated on that state says exactly what the event does, through caps, schedules,
//!   bands, groups, limits, components, segments, normalisation, rounding and qualifiers. Sets of
//!   1, 2 and then 3 such events are tried, among the actions that raise the score's value or
//!   tier on their own and those that count towards a threshold (bands, a qualifier's
//!   `min_count`), and the first size that reaches the next tier is the answer. A real event may count for other rules too: the answer names the rule it is
//!   credited through, and reality can only add to it (or, through a negative rule or a
//!   disqualifier on the same event type, take away).
//! - The fall: the state without occurrences after the as-of instant is evaluated at the
//!   instants where something changes stepwise (an occurrence leaving a window or a qualifier's
//!   `within`, an inactivity starting, a step or a period of a decay ending) and daily when a
//!   decay is continuous, within [`HORIZON`]; the first interval where the tier is lower is
//!   bisected down to the millisecond and the answer is the first whole second at which the tier
//!   is lower (or that millisecond, when the tier is lower for less than that second).

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::engine::{LeadScores, LeadState, ScoreResult, round_score};
use crate::model::{Model, Score};
use crate::rules::RuleKind;
use crate::rules::event::{Decay, EventPoints};
use crate::time::{DAY_MS, Duration, Timestamp, YEAR_MS};
use crate::value::Value;

/// How far ahead a fall is looked for: two years.
pub const HORIZON: Duration = Duration(2 * YEAR_MS);

/// The most events a set of actions holds.
pub const MAX_EVENTS: usize = 3;

/// How many sets of actions are listed.
pub const MAX_OPTIONS: usize = 3;

/// Sets of three events are looked for among this many actions, those that do most on their
/// own: sets of one and two events among every action that does something.
const MAX_ACTIONS_FOR_THREE: usize = 12;

/// What would move one score next.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScoreOutlook<'m> {
    /// The first tier above the current one (in the order of the score's `tiers`) that points
    /// can reach, `qualifier_only` tiers skipped. `null` for a disqualified lead, a lead in the
    /// top tier and a score without tiers of its own.
    pub next_tier: Option<&'m str>,
    /// The next tier's `min` minus the value (0 when the value is there already but a
    /// qualifier or a `max` keeps the tier lower); `null` without a next tier.
    #[serde(serialize_with = "serialize_rounded_option")]
    pub points_missing: Option<f64>,
    /// Up to 3 sets of events that reach the next tier, each as few events as possible (1, 2 or
    /// 3) and those of fewer distinct actions first; empty when 3 events do not reach it.
    pub actions: Vec<Vec<Action<'m>>>,
    /// When the score falls to a lower tier without new activity, within 2 years; `null` when it
    /// does not.
    pub falls: Option<Fall<'m>>,
}

/// Events one rule or qualifier would count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Action<'m> {
    pub kind: ActionKind,
    /// The score the rule or qualifier belongs to (a component's rule moves the total too).
    pub score: &'m str,
    /// The rule's or qualifier's name, which stands for its event types and its `where` filter.
    pub name: &'m str,
    /// How many such events.
    pub count: u32,
}

/// What an action is credited through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// An event the event rule `name` counts.
    Rule,
    /// An event the qualifier `name` counts (its `event`, `where`).
    Qualifier,
    /// Any activity the inactivity rule `name` looks at, which ends the inactivity.
    Activity,
}

/// The first instant a score's tier is lower than at the as-of instant, without new activity.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Fall<'m> {
    /// RFC 3339, UTC.
    #[serde(serialize_with = "serialize_timestamp")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Timestamp,
    /// The tier it falls to; `null` when the value falls in no tier.
    pub tier: Option<&'m str>,
}

fn serialize_rounded_option<S: serde::Serializer>(value: &Option<f64>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => serializer.serialize_f64(round_score(*value)),
        None => serializer.serialize_none(),
    }
}

fn serialize_timestamp<S: serde::Serializer>(at: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(at)
}

/// One thing a lead could do: an occurrence for a rule's or qualifier's own tracker(s).
struct Candidate<'m> {
    kind: ActionKind,
    /// The score that holds the rule or qualifier.
    score: usize,
    name: &'m str,
    /// The trackers an occurrence goes to: the rule's or qualifier's, and a sequence's preceding
    /// event's.
    trackers: Vec<usize>,
    /// Whether it counts towards a threshold (bands, a qualifier's `min_count` above 1), so that
    /// several may do what one does not.
    threshold: bool,
}

/// A tier's place in the order of a score's tiers, lowest first; a value in no tier is below
/// every tier and a disqualified lead lower still. `None` for a score without tiers of its own.
fn rank(score: &Score, result: &ScoreResult<'_>) -> Option<i64> {
    if score.tiers.is_empty() {
        return None;
    }
    if result.disqualified_by.is_some() {
        return Some(-2);
    }
    Some(result.tier.and_then(|label| score.tiers.iter().position(|t| t.label == label)).map_or(-1, |i| i as i64))
}

impl Model {
    /// Each score's outlook for a lead at `as_of`, in the model's order of scores. `lead` has one
    /// value per [`Model::lead_fields`] entry; occurrences in `state` after `as_of` are ignored.
    pub fn outlook(&self, lead: &[Value], state: &LeadState, as_of: Timestamp) -> Vec<ScoreOutlook<'_>> {
        let base = state.counted_until(as_of);
        let now = self.evaluate(lead, &base, as_of);
        let mut falls = self.falls(lead, &base, as_of, &now);
        let mut simulation = Simulation::new(self, lead, &base, as_of);
        self.scores
            .iter()
            .enumerate()
            .map(|(index, score)| {
                let result = &now.scores[index];
                let next = next_tier(score, result);
                let actions = match next {
                    Some(target) => simulation.actions(index, target as i64, &now),
                    None => Vec::new(),
                };
                ScoreOutlook {
                    next_tier: next.map(|t| score.tiers[t].label.as_str()),
                    points_missing: next.and_then(|t| score.tiers[t].min).map(|min| (min - result.value).max(0.0)),
                    actions,
                    falls: falls[index].take(),
                }
            })
            .collect()
    }

    /// When each score falls a tier without new activity (see the module's documentation).
    fn falls<'m>(
        &'m self,
        lead: &[Value],
        state: &LeadState,
        as_of: Timestamp,
        now: &LeadScores<'m>,
    ) -> Vec<Option<Fall<'m>>> {
        let mut falls: Vec<Option<Fall<'m>>> = vec![None; self.scores.len()];
        let ranks_now: Vec<Option<i64>> =
            self.scores.iter().zip(&now.scores).map(|(score, result)| rank(score, result)).collect();
        // A disqualified lead has nowhere lower to fall, nor has a lead in a lowest tier that
        // takes every value, where nothing can take the tier away (no disqualifier, no
        // `applies_to`, no segments): most cold leads, which are then not evaluated again.
        let floor = |score: &Score| {
            score.tiers.first().is_some_and(|t| t.min.is_none() && t.max.is_none() && !t.qualifier_only)
                && score.disqualifiers.is_empty()
                && score.applies_to.is_none()
                && score.segments.is_empty()
        };
        let mut pending: Vec<usize> = (0..self.scores.len())
            .filter(|&i| ranks_now[i].is_some_and(|r| r > -2 && !(r == 0 && floor(&self.scores[i]))))
            .collect();
        if pending.is_empty() {
            return falls;
        }
        let lower = |scores: &LeadScores<'m>, i: usize| rank(&self.scores[i], &scores.scores[i]) < ranks_now[i];
        let mut previous = as_of;
        let mut scores = LeadScores::default();
        for at in self.breakpoints(lead, state, as_of) {
            self.evaluate_into(lead, state, at, &mut scores);
            pending.retain(|&i| {
                if !lower(&scores, i) {
                    return true;
                }
                // The tier is not lower at `previous` and lower at `at`: find the first instant.
                let (mut not_yet, mut fallen) = (previous.0, at.0);
                let mut probe = LeadScores::default();
                while fallen - not_yet > 1 {
                    let middle = not_yet + (fallen - not_yet) / 2;
                    self.evaluate_into(lead, state, Timestamp(middle), &mut probe);
                    if lower(&probe, i) {
                        fallen = middle;
                    } else {
                        not_yet = middle;
                    }
                }
                // The first whole second, unless the tier is lower for less than that second.
                let whole = fallen.div_euclid(1000) * 1000;
                let second = Timestamp(if whole == fallen { whole } else { whole.saturating_add(1000) });
                self.evaluate_into(lead, state, second, &mut probe);
                let at = if lower(&probe, i) {
                    second
                } else {
                    self.evaluate_into(lead, state, Timestamp(fallen), &mut probe);
                    Timestamp(fallen)
                };
                falls[i] = Some(Fall { at, tier: probe.scores[i].tier });
                false
            });
            if pending.is_empty() {
                break;
            }
            previous = at;
        }
        falls
    }

    /// The instants after `as_of` (within [`HORIZON`], which ends the list) at which a score of
    /// the unchanged state may change stepwise, ascending; a point a day too when a decay changes
    /// points continuously.
    fn breakpoints(&self, lead: &[Value], state: &LeadState, as_of: Timestamp) -> Vec<Timestamp> {
        let end = as_of.0.saturating_add(HORIZON.0);
        let mut points = vec![end];
        // A change at `t + d` shows at `t + d` (decay periods) or one millisecond later (a window,
        // `within`, `inactive_for` or a decay step is passed once an age is *more* than it).
        let mut add = |at: i64| {
            for at in [at, at.saturating_add(1)] {
                if at > as_of.0 && at <= end {
                    points.push(at);
                }
            }
        };
        let mut continuous = false;
        let times = state.occurrences();
        for score in &self.scores {
            for rule in &score.rules {
                match &rule.kind {
                    RuleKind::Event(event) => {
                        for &at in &times[event.tracker] {
                            let at = at.0;
                            if let Some(window) = event.window {
                                add(at.saturating_add(window.0));
                            }
                            match &event.decay {
                                None => {}
                                Some(Decay::HalfLife { .. }) => continuous = true,
                                // Shorter periods than a day are as good as continuous.
                                Some(Decay::Linear { every, .. }) if every.0 < DAY_MS => continuous = true,
                                Some(Decay::Linear { percent, every }) => {
                                    let periods = (100.0 / percent).ceil().min(1e6) as i64;
                                    for k in 1..=periods {
                                        let change = at.saturating_add(every.0.saturating_mul(k));
                                        if change > end {
                                            break;
                                        }
                                        add(change);
                                    }
                                }
                                Some(Decay::Steps(steps)) => {
                                    for (older_than, _) in steps {
                                        add(at.saturating_add(older_than.0));
                                    }
                                }
                            }
                        }
                    }
                    RuleKind::Inactivity(inactivity) => {
                        // Without occurrences, inactivity counts from the lead's creation time,
                        // once it is past (a creation time after the as-of time starts counting
                        // when it comes).
                        let last = times[inactivity.tracker].last().copied().or_else(|| {
                            let text = lead.get(self.created_at_field?)?.as_text()?;
                            Timestamp::parse_rfc3339(text.trim()).ok()
                        });
                        if let Some(last) = last {
                            add(last.0);
                            add(last.0.saturating_add(inactivity.after.0));
                        }
                    }
                    RuleKind::Attribute(_) | RuleKind::Cases(_) => {}
                }
            }
            for qualifier in score.qualifiers.iter().chain(&score.disqualifiers) {
                if let Some(test) = &qualifier.event
                    && let Some(within) = test.within
                {
                    for &at in &times[test.tracker] {
                        add(at.0.saturating_add(within.0));
                    }
                }
            }
        }
        if continuous {
            points.extend((1..).map(|day| as_of.0.saturating_add(day * DAY_MS)).take_while(|at| *at < end));
        }
        points.sort_unstable();
        points.dedup();
        points.into_iter().map(Timestamp).collect()
    }
}

impl Score {
    /// The next tier above `tier` (this score's tier for `value`, or its `disqualified_tier`) that
    /// points reach, with the points missing to it: what a score history entry says of its
    /// moment, from its value and tier alone. `None` in the top tier, when disqualified, or for a
    /// score without tiers of its own.
    pub fn next_tier_after(&self, value: f64, tier: Option<&str>) -> Option<(&str, f64)> {
        let disqualified = tier == Some(self.disqualified_tier.as_str());
        let result = ScoreResult {
            value,
            tier: tier.filter(|_| !disqualified),
            disqualified_by: disqualified.then_some(""),
            ..ScoreResult::default()
        };
        let next = &self.tiers[next_tier(self, &result)?];
        Some((next.label.as_str(), next.min.map_or(0.0, |min| (min - value).max(0.0))))
    }
}

/// The next tier above a score's current one that points can reach, as an index into its tiers.
fn next_tier(score: &Score, result: &ScoreResult<'_>) -> Option<usize> {
    let current = rank(score, result)?;
    match current {
        -2 => None,
        -1 => score.tiers.iter().position(|t| !t.qualifier_only && t.min.is_some_and(|min| min > result.value)),
        _ => {
            let above = current as usize + 1;
            score.tiers[above..].iter().position(|t| !t.qualifier_only).map(|i| above + i)
        }
    }
}

/// The states with added events, evaluated once each and shared by every score.
struct Simulation<'a, 'm> {
    model: &'m Model,
    lead: &'a [Value],
    state: &'a LeadState,
    as_of: Timestamp,
    candidates: Vec<Candidate<'m>>,
    /// Evaluations by the ascending candidate indexes of the events added.
    evaluated: FxHashMap<Vec<usize>, LeadScores<'m>>,
}

impl<'a, 'm> Simulation<'a, 'm> {
    fn new(model: &'m Model, lead: &'a [Value], state: &'a LeadState, as_of: Timestamp) -> Simulation<'a, 'm> {
        let mut candidates = Vec::new();
        for (score_index, score) in model.scores.iter().enumerate() {
            for rule in &score.rules {
                let (kind, trackers, threshold) = match &rule.kind {
                    RuleKind::Event(event) => {
                        let mut trackers = vec![event.tracker];
                        trackers.extend(event.after.as_ref().map(|precedent| precedent.tracker));
                        (ActionKind::Rule, trackers, matches!(event.points, EventPoints::Bands(_)))
                    }
                    RuleKind::Inactivity(inactivity) => (ActionKind::Activity, vec![inactivity.tracker], false),
                    RuleKind::Attribute(_) | RuleKind::Cases(_) => continue,
                };
                candidates.push(Candidate { kind, score: score_index, name: &rule.name, trackers, threshold });
            }
            for qualifier in &score.qualifiers {
                if let Some(test) = &qualifier.event {
                    candidates.push(Candidate {
                        kind: ActionKind::Qualifier,
                        score: score_index,
                        name: &qualifier.name,
                        trackers: vec![test.tracker],
                        threshold: test.min_count > 1,
                    });
                }
            }
        }
        Simulation { model, lead, state, as_of, candidates, evaluated: FxHashMap::default() }
    }

    /// The model evaluated with one more occurrence, at the as-of instant, of each candidate in
    /// `set` (ascending, repeats allowed).
    fn evaluate(&mut self, set: &[usize]) -> &LeadScores<'m> {
        if !self.evaluated.contains_key(set) {
            let mut state = self.state.clone();
            for &candidate in set {
                for &tracker in &self.candidates[candidate].trackers {
                    state.add_occurrence(tracker, self.as_of);
                }
            }
            let scores = self.model.evaluate(self.lead, &state, self.as_of);
            self.evaluated.insert(set.to_vec(), scores);
        }
        &self.evaluated[set]
    }

    /// Up to [`MAX_OPTIONS`] smallest sets of events that bring score `index` to tier `target`.
    fn actions(&mut self, index: usize, target: i64, now: &LeadScores<'m>) -> Vec<Vec<Action<'m>>> {
        let model = self.model;
        let score = &model.scores[index];
        let (value_now, rank_now) = (now.scores[index].value, rank(score, &now.scores[index]));
        let in_reach = dependencies(model, index);
        // The actions that do something on their own (raise the value or the tier), and those
        // that count towards a threshold, which may take more than one.
        let mut useful: Vec<(usize, f64)> = Vec::new();
        for candidate in 0..self.candidates.len() {
            if !in_reach[self.candidates[candidate].score] {
                continue;
            }
            let threshold = self.candidates[candidate].threshold;
            let result = &self.evaluate(&[candidate]).scores[index];
            if result.value > value_now || rank(score, result) > rank_now || threshold {
                useful.push((candidate, result.value));
            }
        }
        for size in 1..=MAX_EVENTS {
            let mut pool: Vec<(usize, f64)> = useful.clone();
            if size == MAX_EVENTS && pool.len() > MAX_ACTIONS_FOR_THREE {
                pool.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                pool.truncate(MAX_ACTIONS_FOR_THREE);
                pool.sort_by_key(|(candidate, _)| *candidate);
            }
            let pool: Vec<usize> = pool.into_iter().map(|(candidate, _)| candidate).collect();
            // (distinct actions, value reached, the set)
            let mut reached: Vec<(usize, f64, Vec<usize>)> = Vec::new();
            for set in multisets(pool.len(), size) {
                let set: Vec<usize> = set.into_iter().map(|i| pool[i]).collect();
                let result = &self.evaluate(&set).scores[index];
                if rank(score, result).is_some_and(|r| r >= target) {
                    let mut distinct = set.clone();
                    distinct.dedup();
                    reached.push((distinct.len(), result.value, set));
                }
            }
            if !reached.is_empty() {
                reached.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)).then(a.2.cmp(&b.2)));
                return reached.into_iter().take(MAX_OPTIONS).map(|(_, _, set)| self.describe(&set)).collect();
            }
        }
        Vec::new()
    }

    /// A set of candidate indexes (ascending) as actions with their counts.
    fn describe(&self, set: &[usize]) -> Vec<Action<'m>> {
        let mut actions: Vec<Action<'m>> = Vec::new();
        let mut previous = None;
        for &candidate in set {
            match actions.last_mut() {
                Some(action) if previous == Some(candidate) => action.count += 1,
                _ => {
                    let c = &self.candidates[candidate];
                    actions.push(Action {
                        kind: c.kind,
                        score: &self.model.scores[c.score].name,
                        name: c.name,
                        count: 1,
                    });
                }
            }
            previous = Some(candidate);
        }
        actions
    }
}

/// Which scores score `index` depends on, itself included, directly or not: the scores whose
/// rules and qualifiers can move it.
fn dependencies(model: &Model, index: usize) -> Vec<bool> {
    let mut reached = vec![false; model.scores.len()];
    let mut pending = vec![index];
    while let Some(i) = pending.pop() {
        if !reached[i] {
            reached[i] = true;
            pending.extend(&model.scores[i].depends_on);
        }
    }
    reached
}

/// Every multiset of `size` items of `0..n`, as ascending index lists, in lexicographic order.
fn multisets(n: usize, size: usize) -> Vec<Vec<usize>> {
    let mut all = Vec::new();
    if n == 0 || size == 0 {
        return all;
    }
    let mut current = vec![0; size];
    loop {
        all.push(current.clone());
        // The rightmost position that can still grow; the positions after it restart from it.
        let Some(position) = (0..size).rev().find(|&p| current[p] + 1 < n) else {
            return all;
        };
        let next = current[position] + 1;
        current[position..].iter_mut().for_each(|c| *c = next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Event;

    const DAY: i64 = DAY_MS;

    fn model(text: &str) -> Model {
        match crate::compile(text) {
            Ok(compiled) => compiled.model,
            Err(error) => panic!("{error:?}"),
        }
    }

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).expect("a valid time")
    }

    fn state(model: &Model, events: &[(&str, &str)]) -> LeadState {
        let mut state = LeadState::new(model);
        for (event_type, time) in events {
            state.apply(model, &Event { event_type: model.event_type(event_type), at: at(time), properties: &[] });
        }
        state
    }

    const ENGAGEMENT: &str = r#"
[model]
name = "engagement"

[scores.engagement]
tiers = [
  { label = "cold" },
  { label = "warm", min = 20 },
  { label = "mql", min = 50 },
  { label = "sql", qualifier_only = true },
]

[[scores.engagement.rules]]
name = "demo request"
event = "demo_request"
points = 40
max_count = 1

[[scores.engagement.rules]]
name = "pricing page"
event = "pricing_view"
points = 15
window = "30d"

[[scores.engagement.rules]]
name = "webinar"
event = "webinar"
points = 10
max_count = 1
window = "60d"

[[scores.engagement.qualifiers]]
name = "contact sales"
tier = "sql"
event = "contact_sales"
within = "14d"
"#;

    fn names(actions: &[Vec<Action<'_>>]) -> Vec<String> {
        actions
            .iter()
            .map(|set| set.iter().map(|a| format!("{} × {}", a.count, a.name)).collect::<Vec<_>>().join(" + "))
            .collect()
    }

    #[test]
    fn the_next_tier_its_missing_points_and_the_fewest_events_that_reach_it() {
        let model = model(ENGAGEMENT);
        // 15 + 10 = 25 points: warm; mql at 50 lacks 25.
        let state = state(&model, &[("pricing_view", "2026-03-01T00:00:00Z"), ("webinar", "2026-03-10T00:00:00Z")]);
        let as_of = at("2026-03-15T00:00:00Z");
        let outlook = &model.outlook(&[], &state, as_of)[0];
        assert_eq!(outlook.next_tier, Some("mql"));
        assert_eq!(outlook.points_missing, Some(25.0));
        // One demo request (40) reaches it; the contact-sales qualifier gives sql, above mql.
        // The webinar is at its cap and does nothing; two pricing views (30) would too, but one
        // event is fewer.
        assert_eq!(names(&outlook.actions), ["1 × demo request", "1 × contact sales"]);
        assert_eq!(outlook.actions[0][0].kind, ActionKind::Rule);
        assert_eq!(outlook.actions[1][0].kind, ActionKind::Qualifier);
    }

    #[test]
    fn sets_of_two_events_when_one_is_not_enough() {
        let without_qualifier = ENGAGEMENT.split("[[scores.engagement.qualifiers]]").next().unwrap_or_default();
        let model = model(&without_qualifier.replace("points = 40", "points = 20"));
        let state = state(&model, &[("pricing_view", "2026-03-01T00:00:00Z"), ("webinar", "2026-03-10T00:00:00Z")]);
        let outlook = &model.outlook(&[], &state, at("2026-03-15T00:00:00Z"))[0];
        // 25 missing: one pricing view (15) or one demo (20) is not enough.
        assert_eq!(names(&outlook.actions), ["2 × pricing page", "1 × demo request + 1 × pricing page"]);
    }

    #[test]
    fn events_that_count_towards_a_threshold_are_tried_in_numbers() {
        let text = ENGAGEMENT.replace("within = \"14d\"", "within = \"14d\"\nmin_count = 2");
        let model = model(&text);
        let state = state(&model, &[("demo_request", "2026-03-01T00:00:00Z")]);
        let outlook = &model.outlook(&[], &state, at("2026-03-15T00:00:00Z"))[0];
        // 40, warm: one pricing view or webinar reaches mql; one contact-sales event does
        // nothing on its own.
        assert_eq!(outlook.next_tier, Some("mql"));
        assert_eq!(names(&outlook.actions), ["1 × pricing page", "1 × webinar"]);
        let state = super::tests::state(&model, &[]);
        let outlook = &model.outlook(&[], &state, at("2026-03-15T00:00:00Z"))[0];
        assert_eq!(outlook.next_tier, Some("warm"));
        assert_eq!(names(&outlook.actions), ["1 × demo request"]);
        // Without demo requests' points, two events are needed: two contact-sales events give sql.
        let without_demo = text.replace("points = 40", "points = 0");
        let model = super::tests::model(&without_demo);
        let outlook = &model.outlook(&[], &LeadState::new(&model), at("2026-03-15T00:00:00Z"))[0];
        assert_eq!(
            names(&outlook.actions),
            ["2 × pricing page", "2 × contact sales", "1 × pricing page + 1 × webinar"]
        );
    }

    #[test]
    fn a_score_in_its_top_points_tier_reaches_no_further_and_a_fall_follows_the_windows() {
        let model = model(ENGAGEMENT);
        // 40 + 15 = 55: mql, the top tier points reach (sql is qualifier only).
        let state =
            state(&model, &[("demo_request", "2026-01-01T00:00:00Z"), ("pricing_view", "2026-03-01T00:00:00Z")]);
        let as_of = at("2026-03-15T00:00:00Z");
        let outlook = &model.outlook(&[], &state, as_of)[0];
        assert_eq!((outlook.next_tier, outlook.points_missing), (None, None));
        assert!(outlook.actions.is_empty());
        // The pricing view leaves its 30-day window after 2026-03-31T00:00:00Z: 40 points, warm.
        let fall = outlook.falls.as_ref().expect("a fall");
        assert_eq!(fall.tier, Some("warm"));
        assert_eq!(fall.at, at("2026-03-31T00:00:01Z"));
        let tier = |t: Timestamp| model.evaluate(&[], &state, t).scores[0].tier;
        assert_eq!(tier(at("2026-03-31T00:00:00Z")), Some("mql"));
        assert_eq!(tier(at("2026-03-31T00:00:00.001Z")), Some("warm"));
    }

    #[test]
    fn a_qualifier_window_expiring_is_a_fall_and_nothing_falls_without_time_dependence() {
        let model = model(ENGAGEMENT);
        let state = state(&model, &[("contact_sales", "2026-03-10T12:00:00Z")]);
        let outlook = &model.outlook(&[], &state, at("2026-03-15T00:00:00Z"))[0];
        assert_eq!(outlook.next_tier, None, "sql is the top tier");
        let fall = outlook.falls.as_ref().expect("a fall");
        assert_eq!((fall.at, fall.tier), (at("2026-03-24T12:00:01Z"), Some("cold")));
        // A demo request never expires: no fall.
        let state = super::tests::state(&model, &[("demo_request", "2026-03-10T12:00:00Z")]);
        assert_eq!(model.outlook(&[], &state, at("2026-03-15T00:00:00Z"))[0].falls, None);
    }

    #[test]
    fn continuous_decay_falls_at_the_exact_second() {
        let model = model(
            r#"
[model]
name = "decay"
[scores.s]
tiers = [{ label = "low" }, { label = "high", min = 10 }]
[[scores.s.rules]]
name = "visit"
event = "visit"
points = 40
decay = { half_life = "30d" }
"#,
        );
        let state = state(&model, &[("visit", "2026-01-01T00:00:00Z")]);
        let outlook = &model.outlook(&[], &state, at("2026-01-02T00:00:00Z"))[0];
        // 40 halves to 10 in 60 days; below 10 just after.
        let fall = outlook.falls.as_ref().expect("a fall");
        assert_eq!(fall.tier, Some("low"));
        let tier = |t: Timestamp| model.evaluate(&[], &state, t).scores[0].tier;
        assert_eq!(tier(fall.at), Some("low"));
        assert_eq!(tier(Timestamp(fall.at.0 - 1000)), Some("high"));
        assert!((fall.at.0 - at("2026-03-02T00:00:00Z").0).abs() < DAY);
    }

    #[test]
    fn an_inactivity_penalty_is_lifted_by_any_activity_and_starts_a_fall() {
        let model = model(
            r#"
[model]
name = "inactivity"
[scores.s]
tiers = [{ label = "cold" }, { label = "warm", min = 0 }]
[[scores.s.rules]]
name = "quiet for 30 days"
inactive_for = "30d"
points = -10
[[scores.s.rules]]
name = "visit"
event = "visit"
points = 5
max_count = 1
"#,
        );
        let quiet = state(&model, &[("visit", "2026-01-01T00:00:00Z")]);
        let outlook = &model.outlook(&[], &quiet, at("2026-03-01T00:00:00Z"))[0];
        // 5 - 10 = -5, cold: any activity lifts the penalty; another visit is at its cap.
        assert_eq!(outlook.next_tier, Some("warm"));
        assert_eq!(names(&outlook.actions), ["1 × quiet for 30 days"]);
        assert_eq!(outlook.actions[0][0].kind, ActionKind::Activity);
        let active = state(&model, &[("visit", "2026-02-20T00:00:00Z")]);
        let fall = model.outlook(&[], &active, at("2026-03-01T00:00:00Z"))[0].falls.clone().expect("a fall");
        assert_eq!((fall.at, fall.tier), (at("2026-03-22T00:00:01Z"), Some("cold")));
    }

    #[test]
    fn without_events_inactivity_falls_from_the_creation_time() {
        let model = model(
            r#"
[model]
name = "created"
[lead]
created_at = "created_at"
[scores.s]
tiers = [{ label = "cold" }, { label = "warm", min = 0 }]
[[scores.s.rules]]
name = "quiet for 30 days"
inactive_for = "30d"
points = -10
"#,
        );
        let lead = [Value::text("2026-02-20T06:00:00Z")];
        let outlook = &model.outlook(&lead, &LeadState::new(&model), at("2026-03-01T00:00:00Z"))[0];
        let fall = outlook.falls.as_ref().expect("a fall");
        assert_eq!((fall.at, fall.tier), (at("2026-03-22T06:00:01Z"), Some("cold")));
    }

    #[test]
    fn a_component_rule_moves_the_total_and_is_named_with_its_score() {
        let model = model(
            r#"
[model]
name = "total"
[scores.engagement]
[[scores.engagement.rules]]
name = "demo request"
event = "demo_request"
points = 30
[scores.total]
from = { engagement = 1 }
tiers = [{ label = "nurture" }, { label = "mql", min = 25 }]
"#,
        );
        let outlook = model.outlook(&[], &LeadState::new(&model), at("2026-03-01T00:00:00Z"));
        assert_eq!(outlook[0].next_tier, None, "engagement has no tiers");
        assert_eq!(outlook[1].next_tier, Some("mql"));
        assert_eq!(
            outlook[1].actions[0],
            vec![Action { kind: ActionKind::Rule, score: "engagement", name: "demo request", count: 1 }]
        );
    }

    #[test]
    fn a_disqualified_lead_has_no_next_tier_and_nowhere_to_fall() {
        let text = format!(
            "{ENGAGEMENT}\n[[scores.engagement.disqualifiers]]\nname = \"unsubscribed\"\nevent = \"unsubscribe\"\n"
        );
        let model = model(&text);
        let state = state(&model, &[("unsubscribe", "2026-03-01T00:00:00Z"), ("pricing_view", "2026-03-01T00:00:00Z")]);
        let outlook = &model.outlook(&[], &state, at("2026-03-15T00:00:00Z"))[0];
        assert_eq!((outlook.next_tier, outlook.points_missing, outlook.falls.clone()), (None, None, None));
    }

    #[test]
    fn occurrences_after_the_as_of_instant_are_no_activity_to_come() {
        let model = model(ENGAGEMENT);
        let events = [
            ("pricing_view", "2026-03-01T00:00:00Z"),
            ("pricing_view", "2026-03-05T00:00:00Z"),
            ("demo_request", "2026-03-20T00:00:00Z"),
        ];
        let state = state(&model, &events);
        let outlook = &model.outlook(&[], &state, at("2026-03-15T00:00:00Z"))[0];
        // 30 points: the demo request of 2026-03-20 is not there yet, and never comes without
        // new activity, so the pricing views leaving their window bring the lead down to cold.
        assert_eq!((outlook.next_tier, outlook.points_missing), (Some("mql"), Some(20.0)));
        let fall = outlook.falls.as_ref().expect("a fall");
        assert_eq!((fall.at, fall.tier), (at("2026-03-31T00:00:01Z"), Some("cold")));
    }

    #[test]
    fn multisets_in_lexicographic_order() {
        assert_eq!(multisets(3, 2), vec![vec![0, 0], vec![0, 1], vec![0, 2], vec![1, 1], vec![1, 2], vec![2, 2]]);
        assert_eq!(multisets(4, 3).len(), 20);
        assert!(multisets(0, 2).is_empty());
    }
}
