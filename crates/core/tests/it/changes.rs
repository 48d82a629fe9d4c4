//! Why a score moved: the terms of a change between two instants or two models, worked out by
//! hand, and the invariant that they add up to the change over generated histories.

use crate::common::*;
use leadscore_core::{Event, LeadState, Model, ScoreChange, Snapshot, Timestamp, model_changes};
use proptest::prelude::*;

const MODEL: &str = r#"
[scores.fit]
tiers = [{ label = "C" }, { label = "A", min = 20 }]
[[scores.fit.rules]]
name = "vp"
when = { field = "title", contains = "vp" }
points = 20

[scores.engagement]
[scores.engagement.groups.email]
max = 15
[[scores.engagement.rules]]
name = "webinar"
event = "webinar"
points = 20
decay = { half_life = "30d" }
[[scores.engagement.rules]]
name = "pricing"
event = "pricing"
points = 10
window = "30d"
[[scores.engagement.rules]]
name = "clicks"
group = "email"
event = "click"
points = 5
[[scores.engagement.rules]]
name = "inactive"
inactive_for = "60d"
points = -10

[scores.total]
from = { fit = 1, engagement = 1 }
tiers = [{ label = "cold" }, { label = "mql", min = 50 }]
"#;

fn state(model: &Model, events: &[E<'_>]) -> LeadState {
    state_of(model, events)
}

fn terms(change: &ScoreChange<'_>) -> Vec<(String, String, f64)> {
    change
        .terms
        .iter()
        .map(|t| {
            let cause = serde_json::to_value(t.cause).unwrap().as_str().unwrap().to_string();
            let what = match (t.rule, t.group) {
                (Some(rule), _) => format!("{}/{rule}", t.score),
                (None, Some(group)) => format!("{}/{group}", t.score),
                (None, None) => t.score.to_string(),
            };
            (cause, what, (t.points * 1e6).round() / 1e6)
        })
        .collect()
}

fn adds_up(change: &ScoreChange<'_>) {
    let sum: f64 = change.terms.iter().map(|t| t.points).sum();
    assert!((sum - change.change).abs() < 1e-9, "{}: terms add up to {sum}, not {}", change.score, change.change);
    assert!((change.after - change.before - change.change).abs() < 1e-12);
}

#[test]
fn a_change_over_a_month_splits_into_decay_windows_new_events_limits_and_fields() {
    let m = model(MODEL);
    let t1 = at("2026-10-01T00:00:00Z");
    let t2 = at("2026-10-31T00:00:00Z");
    let day = |d: i64| Timestamp(t1.0 + d * 86_400_000);
    let before_events = [ev("webinar", t1), ev("pricing", day(-5)), ev("click", day(-1)), ev("click", day(-1))];
    let mut after_events = before_events.iter().map(|e| ev(e.kind, e.at)).collect::<Vec<_>>();
    after_events.extend([ev("click", day(20)), ev("click", day(21)), ev("pricing", day(25))]);
    let before_state = state(&m, &before_events);
    let after_state = state(&m, &after_events);
    let before_lead = lead_values(&m, &[("title", "Engineer")]);
    let after_lead = lead_values(&m, &[("title", "VP Engineering")]);
    let changes = m.changes(
        Snapshot { lead: &before_lead, state: &before_state, as_of: t1 },
        Snapshot { lead: &after_lead, state: &after_state, as_of: t2 },
    );
    let engagement = &changes[1];
    // Before: webinar 20 + pricing 10 + clicks 10 = 40. After 30 days: the webinar is halved
    // (-10), the first pricing visit left its 30-day window (-10); 2 more clicks reach the group's
    // cap of 15 (+10, cut by 5), one new pricing visit (+10): 40 - 10 - 10 + 10 - 5 + 10 = 35.
    assert_eq!((engagement.before, engagement.after, engagement.change), (40.0, 35.0, -5.0));
    assert_eq!(
        terms(engagement),
        vec![
            ("decay".to_string(), "engagement/webinar".to_string(), -10.0),
            ("window_expired".to_string(), "engagement/pricing".to_string(), -10.0),
            ("events".to_string(), "engagement/pricing".to_string(), 10.0),
            ("events".to_string(), "engagement/clicks".to_string(), 10.0),
            ("limit".to_string(), "engagement/email".to_string(), -5.0),
        ]
    );
    let events_on_clicks = engagement.terms.iter().find(|t| t.rule == Some("clicks")).unwrap();
    assert_eq!(events_on_clicks.occurrences, 2);
    // The total says which rule of which score moved it; the new title is an attribute change.
    let total = &changes[2];
    assert_eq!(
        (total.before, total.after, total.tier_before, total.tier_after),
        (40.0, 55.0, Some("cold"), Some("mql"))
    );
    assert_eq!(terms(total)[0], ("attributes".to_string(), "fit/vp".to_string(), 20.0));
    assert!(terms(total).contains(&("decay".to_string(), "engagement/webinar".to_string(), -10.0)));
    for change in &changes {
        adds_up(change);
    }
}

#[test]
fn inactivity_setting_in_is_a_term_of_its_own() {
    let m = model(MODEL);
    let t1 = at("2026-10-01T00:00:00Z");
    let t2 = at("2026-12-15T00:00:00Z");
    let s = state(&m, &[ev("click", t1)]);
    let lead = lead_values(&m, &[]);
    let changes =
        m.changes(Snapshot { lead: &lead, state: &s, as_of: t1 }, Snapshot { lead: &lead, state: &s, as_of: t2 });
    assert_eq!(terms(&changes[1]), vec![("inactivity".to_string(), "engagement/inactive".to_string(), -10.0)]);
}

#[test]
fn a_new_model_version_is_a_model_term_per_rule() {
    let old = model(MODEL);
    let new = model(&MODEL.replace("points = 20\ndecay", "points = 30\ndecay"));
    let t = at("2026-10-01T00:00:00Z");
    let events = [ev("webinar", t)];
    let (old_state, new_state) = (state(&old, &events), state(&new, &events));
    let (old_lead, new_lead) = (lead_values(&old, &[]), lead_values(&new, &[]));
    let changes = model_changes(
        &old,
        Snapshot { lead: &old_lead, state: &old_state, as_of: t },
        &new,
        Snapshot { lead: &new_lead, state: &new_state, as_of: t },
    );
    assert_eq!(terms(&changes[1]), vec![("model".to_string(), "engagement/webinar".to_string(), 10.0)]);
    assert_eq!(terms(&changes[2]), vec![("model".to_string(), "engagement".to_string(), 10.0)]);
}

/// A model with every source of change: decay of each shape, windows, caps, progressive points,
/// bands, groups, score limits, normalisation, components, segments, a predictive-free total.
const EVERYTHING: &str = r#"
[scores.fit]
[[scores.fit.rules]]
name = "vp"
when = { field = "title", equals = "vp" }
points = 12.5

[scores.engagement]
min = -20
max = 80
normalize = true
precision = 2
[scores.engagement.groups.email]
max = 9
[[scores.engagement.rules]]
name = "a"
event = "a"
points = 3
max_count = 4
decay = { half_life = "20d" }
[[scores.engagement.rules]]
name = "b"
event = "b"
points = 2
window = "30d"
group = "email"
[[scores.engagement.rules]]
name = "c"
event = "c"
progressive = [1, 2, 3, 4, 5]
decay = { lose_percent = 10, every = "7d" }
group = "email"
[[scores.engagement.rules]]
name = "d"
event = "d"
bands = [{ min = 1, max = 2, points = 2 }, { min = 3, points = 6 }]
window = "60d"
[[scores.engagement.rules]]
name = "stepped"
event = "d"
points = -4
decay = { steps = [{ older_than = "10d", factor = 0.5 }, { older_than = "40d", factor = 0 }] }
[[scores.engagement.rules]]
name = "sequence"
event = "b"
after = { event = "a", within = "7d" }
points = 6
[[scores.engagement.rules]]
name = "inactive"
inactive_for = "20d"
points = -5

[scores.fit_small]
applies_to = { field = "title", missing = true }
[[scores.fit_small.rules]]
name = "c"
event = "c"
points = 1

[scores.routed]
segments = [{ when = { field = "title", equals = "vp" }, score = "fit" }, { otherwise = true, score = "fit_small" }]

[scores.total]
from = { engagement = 0.7, routed = 2 }
max = 60
precision = 1
"#;

const TYPES: &[&str] = &["a", "b", "c", "d", "other"];

fn events_strategy() -> impl Strategy<Value = Vec<(usize, i64)>> {
    prop::collection::vec((0..TYPES.len(), -86_400i64 * 120..86_400 * 10), 0..30)
}

fn engine_events(m: &Model, events: &[(usize, i64)], base: Timestamp) -> Vec<Event<'static>> {
    events
        .iter()
        .map(|&(kind, seconds)| Event {
            event_type: m.event_type(TYPES[kind]),
            at: Timestamp(base.0 + seconds * 1000),
            properties: &[],
        })
        .collect()
}

fn fold(m: &Model, events: &[Event<'_>], as_of: Timestamp) -> LeadState {
    let mut s = LeadState::new(m);
    for e in events.iter().filter(|e| e.at <= as_of) {
        s.apply(m, e);
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The terms of a change add up to it, whatever happened between the two instants.
    #[test]
    fn the_terms_of_a_change_add_up_to_it(
        earlier in events_strategy(),
        later in events_strategy(),
        gap_days in 0i64..200,
        title_before in any::<bool>(),
        title_after in any::<bool>(),
    ) {
        let m = model(EVERYTHING);
        let t1 = at("2026-06-01T00:00:00Z");
        let t2 = Timestamp(t1.0 + gap_days * 86_400_000);
        let mut events = engine_events(&m, &earlier, t1);
        events.extend(engine_events(&m, &later, t2));
        let (s1, s2) = (fold(&m, &events, t1), fold(&m, &events, t2));
        let title = |vp: bool| if vp { vec![("title", "vp")] } else { vec![] };
        let (l1, l2) = (lead_values(&m, &title(title_before)), lead_values(&m, &title(title_after)));
        let changes = m.changes(Snapshot { lead: &l1, state: &s1, as_of: t1 }, Snapshot { lead: &l2, state: &s2, as_of: t2 });
        let start = m.evaluate(&l1, &s1, t1);
        let end = m.evaluate(&l2, &s2, t2);
        for (i, change) in changes.iter().enumerate() {
            prop_assert_eq!(change.before, start.scores[i].value);
            prop_assert_eq!(change.after, end.scores[i].value);
            let sum: f64 = change.terms.iter().map(|t| t.points).sum();
            prop_assert!((sum - change.change).abs() < 1e-9, "{}: {} vs {}: {:?}", change.score, sum, change.change, change.terms);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    /// Across a model change (a new version's rescoring, events with it), the terms still add up:
    /// time under the earlier model, then the rest as `model`.
    #[test]
    fn the_terms_of_a_change_across_two_models_add_up_to_it(
        earlier in events_strategy(),
        later in events_strategy(),
        gap_days in 0i64..100,
    ) {
        let old = model(EVERYTHING);
        let new = model(&EVERYTHING.replace("points = 3\nmax_count = 4", "points = 7\nmax_count = 2"));
        let t1 = at("2026-06-01T00:00:00Z");
        let t2 = Timestamp(t1.0 + gap_days * 86_400_000);
        let mut old_events = engine_events(&old, &earlier, t1);
        old_events.extend(engine_events(&old, &later, t2));
        let mut new_events = engine_events(&new, &earlier, t1);
        new_events.extend(engine_events(&new, &later, t2));
        let (s1, s2) = (fold(&old, &old_events, t1), fold(&new, &new_events, t2));
        let (l1, l2) = (lead_values(&old, &[]), lead_values(&new, &[("title", "vp")]));
        let changes = leadscore_core::changes_between(
            &old,
            Snapshot { lead: &l1, state: &s1, as_of: t1 },
            &new,
            Snapshot { lead: &l2, state: &s2, as_of: t2 },
        );
        let start = old.evaluate(&l1, &s1, t1);
        let end = new.evaluate(&l2, &s2, t2);
        for change in &changes {
            let before = start.get(change.score).map_or(0.0, |s| s.value);
            let after = end.get(change.score).map_or(0.0, |s| s.value);
            prop_assert_eq!((change.before, change.after), (before, after));
            let sum: f64 = change.terms.iter().map(|t| t.points).sum();
            prop_assert!((sum - change.change).abs() < 1e-9, "{}: {} vs {}", change.score, sum, change.change);
        }
    }
}
