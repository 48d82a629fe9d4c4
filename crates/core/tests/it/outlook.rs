//! Invariants of `Model::outlook` over generated histories: every listed set of actions, applied
//! as real events, reaches the next tier; the tier is not lower until the fall and lower at it.

use crate::common::*;
use leadscore_core::{ActionKind, Event, LeadState, Model, ScoreResult, Timestamp, Value};
use proptest::prelude::*;

/// Every event type is counted by one rule or qualifier only, and no rule has a `where` filter,
/// so that an action applied as a real event is the occurrence the outlook simulated (plus the
/// activity the inactivity rule sees, which only lifts a penalty). Points only fall with time.
const MODEL: &str = r#"
[scores.total]
from = { engagement = 1, fit = 1 }
min = -50
max = 150
tiers = [
  { label = "cold" },
  { label = "warm", min = 25 },
  { label = "mql", min = 50 },
  { label = "sql", qualifier_only = true },
]
[[scores.total.qualifiers]]
name = "contact sales"
tier = "sql"
event = "contact"
within = "14d"
[[scores.total.qualifiers]]
name = "two demos"
tier = "mql"
event = "demo"
within = "30d"
min_count = 2
[[scores.total.disqualifiers]]
name = "unsubscribed"
event = "unsubscribe"

[scores.fit]
[[scores.fit.rules]]
name = "title"
when = { field = "title", contains = "vp" }
points = 20

[scores.engagement]
tiers = [{ label = "cold" }, { label = "warm", min = 10 }, { label = "hot", min = 30 }]
[scores.engagement.groups.email]
max = 15
[[scores.engagement.rules]]
name = "capped"
event = "a"
points = 6
max_count = 4
decay = { half_life = "20d" }
[[scores.engagement.rules]]
name = "windowed"
event = "b"
points = 4
window = "30d"
[[scores.engagement.rules]]
name = "progressive"
group = "email"
event = "c"
progressive = [1, 2, 3, 4, 5]
decay = { lose_percent = 10, every = "7d" }
[[scores.engagement.rules]]
name = "stepped"
event = "d"
points = 8
max_count = 3
decay = { steps = [{ older_than = "10d", factor = 0.5 }, { older_than = "40d", factor = 0 }] }
[[scores.engagement.rules]]
name = "banded"
event = "e"
bands = [{ min = 1, max = 2, points = 2 }, { min = 3, points = 12 }]
window = "60d"
[[scores.engagement.rules]]
name = "inactive"
inactive_for = "20d"
points = -5
[[scores.engagement.rules]]
name = "sequence"
event = "f"
after = { event = "g", within = "7d" }
points = 9
max_count = 2
"#;

const TYPES: &[&str] = &["a", "b", "c", "d", "e", "f", "g", "contact", "demo", "unsubscribe", "other"];

/// The real events one action stands for, in the order they happen.
fn events_of(kind: ActionKind, name: &str) -> &'static [&'static str] {
    match (kind, name) {
        (ActionKind::Rule, "capped") => &["a"],
        (ActionKind::Rule, "windowed") => &["b"],
        (ActionKind::Rule, "progressive") => &["c"],
        (ActionKind::Rule, "stepped") => &["d"],
        (ActionKind::Rule, "banded") => &["e"],
        (ActionKind::Rule, "sequence") => &["g", "f"],
        (ActionKind::Activity, "inactive") => &["other"],
        (ActionKind::Qualifier, "contact sales") => &["contact"],
        (ActionKind::Qualifier, "two demos") => &["demo"],
        other => panic!("no events for {other:?}"),
    }
}

/// A tier's place, lowest first; no tier below every tier, disqualified lower still.
fn rank(model: &Model, index: usize, result: &ScoreResult<'_>) -> i64 {
    if result.disqualified_by.is_some() {
        return -2;
    }
    let tiers = model.scores()[index].tiers();
    result.tier.and_then(|label| tiers.iter().position(|t| t.label() == label)).map_or(-1, |i| i as i64)
}

fn history() -> impl Strategy<Value = Vec<(usize, i64)>> {
    // (event type, seconds before the as-of time; negative: after it)
    prop::collection::vec((0..TYPES.len(), -86_400i64 * 5..86_400 * 90), 0..25)
}

fn lead(model: &Model, vp: bool) -> Vec<Value> {
    model.lead_fields().iter().map(|_| Value::text(if vp { "vp sales" } else { "analyst" })).collect()
}

fn state_of(model: &Model, events: &[(usize, i64)], until: Timestamp) -> LeadState {
    let mut state = LeadState::new(model);
    for &(kind, age_seconds) in events {
        let at = Timestamp(at(AS_OF).0 - age_seconds * 1000);
        if at <= until {
            state.apply(model, &Event { event_type: model.event_type(TYPES[kind]), at, properties: &[] });
        }
    }
    state
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_listed_set_of_actions_applied_as_real_events_reaches_the_next_tier(events in history(), vp in any::<bool>()) {
        let model = model(MODEL);
        let lead = lead(&model, vp);
        let as_of = at(AS_OF);
        // Events after the as-of time are not applied, as `Model::score` does: a bounded tracker
        // may have dropped an earlier occurrence for a later one.
        let state = state_of(&model, &events, as_of);
        for (index, outlook) in model.outlook(&lead, &state, as_of).iter().enumerate() {
            let Some(next) = outlook.next_tier else {
                prop_assert!(outlook.actions.is_empty());
                continue;
            };
            let target = model.scores()[index].tiers().iter().position(|t| t.label() == next).unwrap() as i64;
            prop_assert!(outlook.actions.len() <= 3);
            for set in &outlook.actions {
                prop_assert!(set.iter().map(|a| a.count).sum::<u32>() <= 3);
                let mut reached = state_of(&model, &events, as_of);
                for action in set {
                    for _ in 0..action.count {
                        for kind in events_of(action.kind, action.name) {
                            reached.apply(&model, &Event { event_type: model.event_type(kind), at: as_of, properties: &[] });
                        }
                    }
                }
                let result = &model.evaluate(&lead, &reached, as_of).scores[index];
                prop_assert!(rank(&model, index, result) >= target, "{} with {:?}: {:?}", model.scores()[index].name(), set, result);
            }
            // The sets are the smallest: every set has the same number of events.
            let sizes: Vec<u32> = outlook.actions.iter().map(|set| set.iter().map(|a| a.count).sum()).collect();
            prop_assert!(sizes.windows(2).all(|w| w[0] == w[1]));
        }
    }

    #[test]
    fn the_tier_is_not_lower_until_the_fall_and_lower_at_it(events in history(), vp in any::<bool>(), share in 0.0f64..1.0) {
        let model = model(MODEL);
        let lead = lead(&model, vp);
        let as_of = at(AS_OF);
        let state = state_of(&model, &events, as_of);
        let now = model.evaluate(&lead, &state, as_of);
        let two_years = Timestamp(as_of.0 + leadscore_core::outlook::HORIZON.0);
        for (index, outlook) in model.outlook(&lead, &state, as_of).iter().enumerate() {
            let rank_now = rank(&model, index, &now.scores[index]);
            let rank_at = |t: Timestamp| rank(&model, index, &model.evaluate(&lead, &state, t).scores[index]);
            match &outlook.falls {
                Some(fall) => {
                    prop_assert!(fall.at > as_of && fall.at <= two_years);
                    prop_assert!(rank_at(fall.at) < rank_now);
                    prop_assert_eq!(model.evaluate(&lead, &state, fall.at).scores[index].tier, fall.tier);
                    prop_assert!(rank_at(Timestamp(fall.at.0 - 1000)) >= rank_now);
                    // Points only fall with time in this model: no earlier instant is lower.
                    let before = Timestamp(as_of.0 + ((fall.at.0 - 1000 - as_of.0) as f64 * share) as i64);
                    prop_assert!(rank_at(before) >= rank_now);
                }
                None => {
                    let later = Timestamp(as_of.0 + ((two_years.0 - as_of.0) as f64 * share) as i64);
                    prop_assert!(rank_at(later) >= rank_now);
                    prop_assert!(rank_at(two_years) >= rank_now);
                }
            }
        }
    }
}

/// A lead at 45 with a component in reach: the outlook lists actions of both scores, by score.
#[test]
fn actions_of_a_component_score_are_listed_by_their_score() {
    let model = model(MODEL);
    let lead = lead(&model, true);
    let as_of = at(AS_OF);
    // 20 (vp) + 4 (b) + 6 (a, today) = 30: warm; mql lacks 20.
    let state = state_of(&model, &[(1, 0), (0, 0)], as_of);
    let outlook = &model.outlook(&lead, &state, as_of)[0];
    assert_eq!((outlook.next_tier, outlook.points_missing), (Some("mql"), Some(20.0)));
    let first = &outlook.actions[0];
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0].kind, first[0].score, first[0].name, first[0].count),
        (ActionKind::Qualifier, "total", "contact sales", 1)
    );
}
