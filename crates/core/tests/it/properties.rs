//! Invariants of the engine over generated event histories: order independence, incremental
//! application, caps, windows, decay, and contributions adding up to the value.

use crate::common::*;
use leadscore_core::{Event, LeadState, Model, Timestamp, Value};
use proptest::prelude::*;

/// A model exercising every event rule shape, groups, limits, components and qualifiers.
const MODEL: &str = r#"
[scores.total]
from = { engagement = 1, fit = 1 }
min = -50
max = 150
tiers = [{ label = "cold" }, { label = "warm", min = 25 }, { label = "mql", min = 50 }]
[[scores.total.qualifiers]]
name = "demo"
tier = "mql"
event = "demo"
within = "30d"
min_count = 2

[scores.fit]
[[scores.fit.rules]]
name = "title"
when = { field = "title", contains = "vp" }
points = 20

[scores.engagement]
[scores.engagement.groups.email]
max = 15
[[scores.engagement.rules]]
name = "capped"
event = "a"
points = 3
max_count = 4
decay = { half_life = "20d" }
[[scores.engagement.rules]]
name = "windowed"
event = "b"
points = 2
window = "30d"
[[scores.engagement.rules]]
name = "progressive"
group = "email"
event = ["a", "c"]
progressive = [1, 2, 3, 4, 5]
decay = { lose_percent = 10, every = "7d" }
[[scores.engagement.rules]]
name = "bands"
group = "email"
event = "c"
bands = [{ min = 1, max = 2, points = 2 }, { min = 3, points = 6 }]
window = "60d"
[[scores.engagement.rules]]
name = "stepped"
event = "d"
points = -4
max_count = 3
decay = { steps = [{ older_than = "10d", factor = 0.5 }, { older_than = "40d", factor = 0 }] }
[[scores.engagement.rules]]
name = "filtered"
event = "b"
where = { field = "url", contains = "/pricing" }
points = 7
max_count = 2
[[scores.engagement.rules]]
name = "inactive"
inactive_for = "20d"
points = -5
[[scores.engagement.rules]]
name = "sequence"
event = "b"
after = { event = "a", within = "7d" }
when = { field = "title", present = true }
points = 4
max_count = 3
decay = { half_life = "15d" }
"#;

const TYPES: &[&str] = &["a", "b", "c", "d", "demo", "other"];

#[derive(Debug, Clone)]
struct GenEvent {
    kind: usize,
    /// Seconds before the as-of time (negative: after it).
    age_seconds: i64,
    pricing: bool,
}

fn events_strategy() -> impl Strategy<Value = Vec<GenEvent>> {
    prop::collection::vec(
        (0..TYPES.len(), -86_400i64 * 3..86_400 * 120, any::<bool>())
            .prop_map(|(kind, age_seconds, pricing)| GenEvent { kind, age_seconds, pricing }),
        0..40,
    )
}

fn as_of() -> Timestamp {
    at(AS_OF)
}

fn props(model: &Model, event: &GenEvent) -> Vec<Value> {
    model
        .event_properties()
        .iter()
        .map(|p| if p == "url" && event.pricing { Value::text("/pricing") } else { Value::text("/") })
        .collect()
}

fn engine_events<'a>(model: &Model, events: &'a [GenEvent], props: &'a [Vec<Value>]) -> Vec<Event<'a>> {
    events
        .iter()
        .zip(props)
        .map(|(e, p)| Event {
            event_type: model.event_type(TYPES[e.kind]),
            at: Timestamp(as_of().0 - e.age_seconds * 1000),
            properties: p,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn order_of_events_does_not_matter(events in events_strategy(), seed in any::<u64>()) {
        let m = model(MODEL);
        let lead = lead_values(&m, &[("title", "VP Sales")]);
        let all_props: Vec<Vec<Value>> = events.iter().map(|e| props(&m, e)).collect();
        let forward = engine_events(&m, &events, &all_props);
        let mut shuffled = forward.clone();
        // A deterministic shuffle from the seed.
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let a = m.score(&lead, forward.iter().copied(), as_of());
        let b = m.score(&lead, shuffled.iter().copied(), as_of());
        prop_assert_eq!(a, b);
    }

    #[test]
    fn applying_events_one_by_one_equals_scoring_them_at_once(events in events_strategy()) {
        let m = model(MODEL);
        let lead = lead_values(&m, &[]);
        let all_props: Vec<Vec<Value>> = events.iter().map(|e| props(&m, e)).collect();
        let list = engine_events(&m, &events, &all_props);
        let mut state = LeadState::new(&m);
        for event in list.iter().filter(|e| e.at <= as_of()) {
            state.apply(&m, event);
        }
        prop_assert_eq!(m.evaluate(&lead, &state, as_of()), m.score(&lead, list.iter().copied(), as_of()));
    }

    #[test]
    fn contributions_add_up_to_the_value(events in events_strategy(), vp in any::<bool>()) {
        let m = model(MODEL);
        let lead = lead_values(&m, if vp { &[("title", "vp")] } else { &[] });
        let all_props: Vec<Vec<Value>> = events.iter().map(|e| props(&m, e)).collect();
        let scores = m.score(&lead, engine_events(&m, &events, &all_props), as_of());
        for score in &scores.scores {
            // The value is the sum rounded once to the precision (6 decimals here), so the exact
            // contributions add up to it within half a millionth.
            let sum = score.contributions.iter().fold(0.0, |acc, c| acc + c.points);
            prop_assert!((sum - score.value).abs() <= 0.5e-6 + 1e-12 * sum.abs().max(1.0), "{}: {} vs {}", score.name, sum, score.value);
        }
        let total = scores.get("total").unwrap().value;
        prop_assert!((-50.0..=150.0).contains(&total));
    }

    /// A person's override of a value takes the tier the model would give that value by points:
    /// whenever no qualifier set a score's tier, it is `tier_of_value` of its value.
    #[test]
    fn the_tier_of_a_value_is_the_tier_the_engine_gives_it(events in events_strategy(), vp in any::<bool>()) {
        let m = model(MODEL);
        let lead = lead_values(&m, if vp { &[("title", "vp")] } else { &[] });
        let all_props: Vec<Vec<Value>> = events.iter().map(|e| props(&m, e)).collect();
        let scores = m.score(&lead, engine_events(&m, &events, &all_props), as_of());
        for (result, score) in scores.scores.iter().zip(m.scores()) {
            if result.qualified_by.is_none() && result.disqualified_by.is_none() {
                prop_assert_eq!(result.tier, score.tier_of_value(result.value), "{}", score.name());
            }
        }
    }

    #[test]
    fn caps_windows_and_group_limits_hold(events in events_strategy()) {
        let m = model(MODEL);
        let lead = lead_values(&m, &[]);
        let all_props: Vec<Vec<Value>> = events.iter().map(|e| props(&m, e)).collect();
        let scores = m.score(&lead, engine_events(&m, &events, &all_props), as_of());
        let engagement = scores.get("engagement").unwrap();
        let mut email = 0.0;
        for c in &engagement.contributions {
            match &c.source {
                leadscore_core::Source::Rule { rule: "capped", .. } => {
                    prop_assert!(c.occurrences <= 4);
                    prop_assert!(c.points <= 12.0 + 1e-9 && c.points >= 0.0);
                }
                leadscore_core::Source::Rule { rule: "windowed", .. } => {
                    let in_window = events.iter().filter(|e| TYPES[e.kind] == "b" && (0..=30 * 86_400).contains(&e.age_seconds)).count();
                    prop_assert_eq!(c.occurrences as usize, in_window);
                }
                leadscore_core::Source::Rule { rule: "stepped", .. } => prop_assert!(c.points >= -12.0 && c.points <= 0.0),
                leadscore_core::Source::Rule { group: Some("email"), .. } | leadscore_core::Source::GroupLimit { .. } => email += c.points,
                _ => {}
            }
        }
        prop_assert!(email <= 15.0 + 1e-9);
    }

    /// Decay, windows, inactivity and qualifier windows are computed when a score is evaluated,
    /// never when an event is applied: a state kept from the past evaluates at any later instant
    /// as a fresh scoring of the same events at that instant.
    #[test]
    fn a_kept_state_evaluates_later_as_a_fresh_scoring_then(events in events_strategy(), later_seconds in 0i64..86_400 * 150) {
        let m = model(MODEL);
        let lead = lead_values(&m, &[("title", "VP Sales")]);
        let past: Vec<GenEvent> = events.into_iter().filter(|e| e.age_seconds >= 0).collect();
        let all_props: Vec<Vec<Value>> = past.iter().map(|e| props(&m, e)).collect();
        let list = engine_events(&m, &past, &all_props);
        let mut state = LeadState::new(&m);
        for event in &list {
            state.apply(&m, event);
        }
        let later = Timestamp(as_of().0 + later_seconds * 1000);
        prop_assert_eq!(m.evaluate(&lead, &state, later), m.score(&lead, list.iter().copied(), later));
    }

    #[test]
    fn decayed_points_never_grow_with_time(events in events_strategy(), later_days in 0i64..200) {
        let m = model(
            "[scores.s]\n[[scores.s.rules]]\nname = \"r\"\nevent = [\"a\", \"b\", \"c\", \"d\", \"demo\", \"other\"]\npoints = 5\nmax_count = 6\ndecay = { half_life = \"9d\" }\n",
        );
        let past: Vec<GenEvent> = events.into_iter().filter(|e| e.age_seconds >= 0).collect();
        let all_props: Vec<Vec<Value>> = past.iter().map(|e| props(&m, e)).collect();
        let list = engine_events(&m, &past, &all_props);
        let now = m.score(&[], list.iter().copied(), as_of()).scores[0].value;
        let later = m.score(&[], list.iter().copied(), Timestamp(as_of().0 + later_days * 86_400_000)).scores[0].value;
        prop_assert!(later <= now + 1e-12);
        prop_assert!((0.0..=30.0 + 1e-9).contains(&now));
    }

    #[test]
    fn the_compiler_never_panics(text in "\\PC{0,200}") {
        let _ = leadscore_core::compile(&text);
    }

    #[test]
    fn the_compiler_never_panics_on_model_like_text(
        lines in prop::collection::vec(prop::sample::select(vec![
            "[scores.s]", "[scores.t]", "[[scores.s.rules]]", "[[scores.s.qualifiers]]", "name = \"r\"", "points = 5",
            "event = \"a\"", "when = { field = \"x\", min = 3 }", "from = { t = 2 }", "from = { s = 1 }",
            "tiers = [{ label = \"a\" }, { label = \"b\", min = 1 }]", "max_count = 0", "window = \"0d\"",
            "progressive = []", "bands = [{ min = 0, points = 1 }]", "decay = { steps = [] }", "inactive_for = \"1w\"",
            "cases = [{ otherwise = true, points = 1 }]", "rules = [\"r\"]", "tier = \"b\"", "group = \"g\"",
            "[scores.s.groups.g]", "max = -1", "normalize = true", "points = nan", "points = inf",
        ]), 0..25)
    ) {
        let text = lines.join("\n");
        if let Ok(compiled) = leadscore_core::compile(&text) {
            let m = compiled.model;
            let lead = vec![Value::text("5"); m.lead_fields().len()];
            let events = [Event { event_type: m.event_type("a"), at: as_of(), properties: &[] }];
            let scores = m.score(&lead, events, as_of());
            for score in scores.scores {
                prop_assert!(score.value.is_finite());
            }
            let _ = leadscore_core::check::report(&m);
        }
    }
}
