//! Every rule kind, scored through the public API from a model written in TOML.

use crate::common::*;
use leadscore_core::Timestamp;

fn one_rule(rule: &str) -> leadscore_core::Model {
    model(&format!("[scores.s]\n[[scores.s.rules]]\nname = \"r\"\n{rule}\n"))
}

/// A rule, a lead's fields and the points the rule gives that lead.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

#[test]
fn attribute_tests() {
    let cases: &[Case] = &[
        ("when = { field = \"industry\", equals = \"Technology\" }\npoints = 15", &[("industry", "Technology")], 15.0),
        ("when = { field = \"industry\", equals = \"Technology\" }\npoints = 15", &[("industry", "technology")], 0.0),
        (
            "when = { field = \"industry\", equals = \"technology\", ignore_case = true }\npoints = 15",
            &[("industry", "TECHNOLOGY")],
            15.0,
        ),
        ("when = { field = \"country\", one_of = [\"US\", \"GB\"] }\npoints = 5", &[("country", "GB")], 5.0),
        ("when = { field = \"country\", one_of = [\"US\", \"GB\"] }\npoints = 5", &[("country", "DE")], 0.0),
        (
            "when = { field = \"title\", contains = [\"vp\", \"директор\"] }\npoints = 20",
            &[("title", "ДИРЕКТОР по продажам")],
            20.0,
        ),
        (
            "when = { field = \"title\", starts_with = \"head\", ignore_case = true }\npoints = 7",
            &[("title", "Head of Growth")],
            7.0,
        ),
        ("when = { field = \"title\", regex = \"^(?i)c[etfm]o$\" }\npoints = 9", &[("title", "CFO")], 9.0),
        ("when = { field = \"employees\", min = 50, max = 500 }\npoints = 10", &[("employees", "500")], 10.0),
        ("when = { field = \"employees\", min = 50, max = 500 }\npoints = 10", &[("employees", "49")], 0.0),
        ("when = { field = \"employees\", above = 50, below = 60 }\npoints = 10", &[("employees", "50")], 0.0),
        ("when = { field = \"employees\", above = 50, below = 60 }\npoints = 10", &[("employees", "59.5")], 10.0),
        ("when = { field = \"phone\", present = true }\npoints = 3", &[("phone", "+1 555")], 3.0),
        ("when = { field = \"phone\", missing = true }\npoints = -3", &[], -3.0),
        ("when = { field = \"phone\", missing = true }\npoints = -3", &[("phone", "")], -3.0),
        ("when = { field = \"email\", free_email = true }\npoints = -5", &[("email", "a@GMAIL.com")], -5.0),
        ("when = { field = \"email\", free_email = false }\npoints = 5", &[("email", "a@acme.io")], 5.0),
        (
            "when = { field = \"email\", email_domain = \"rival.com\" }\npoints = -100",
            &[("email", "x@rival.com")],
            -100.0,
        ),
        (
            "when = { all = [{ field = \"a\", equals = \"1\" }, { not = { field = \"b\", present = true } }] }\npoints = 4",
            &[("a", "1")],
            4.0,
        ),
        (
            "when = { any = [{ field = \"a\", equals = \"1\" }, { field = \"b\", equals = \"2\" }] }\npoints = 4",
            &[("b", "2")],
            4.0,
        ),
        ("when = { not = { field = \"title\", contains = \"student\" } }\npoints = 1", &[("title", "Student")], 0.0),
    ];
    for (rule, lead, expected) in cases {
        let m = one_rule(rule);
        let (value, _) = first(&m, lead, &[]);
        assert_close(value, *expected);
    }
}

#[test]
fn cases_take_the_first_match() {
    let m = one_rule(
        r#"cases = [
  { when = { field = "title", contains = ["chief", "vp"] }, points = 20 },
  { when = { field = "title", contains = "manager" }, points = 10 },
  { otherwise = true, points = 1 },
]"#,
    );
    assert_close(first(&m, &[("title", "VP, Product Manager")], &[]).0, 20.0);
    assert_close(first(&m, &[("title", "Sales Manager")], &[]).0, 10.0);
    assert_close(first(&m, &[("title", "Engineer")], &[]).0, 1.0);
    assert_close(first(&m, &[], &[]).0, 1.0);
}

#[test]
fn event_points_per_occurrence_with_a_cap() {
    let m = one_rule("event = \"page_view\"\npoints = 2\nmax_count = 3");
    let events: Vec<_> = (0..5).map(|i| ev("page_view", days_ago(i as f64))).collect();
    let outcome = score(&m, &[], &events).remove(0);
    assert_close(outcome.value, 6.0);
    assert_eq!(outcome.contributions, vec![("r".to_string(), 3, 6.0)]);
}

#[test]
fn events_after_the_as_of_time_never_count() {
    let m = one_rule("event = \"page_view\"\npoints = 2\nmax_count = 1");
    let events = [ev("page_view", days_ago(-1.0)), ev("page_view", days_ago(10.0))];
    assert_close(first(&m, &[], &events).0, 2.0);
    assert_close(first(&m, &[], &[ev("page_view", days_ago(-0.5))]).0, 0.0);
}

#[test]
fn progressive_points_one_to_five() {
    let m = one_rule("event = \"email_click\"\nprogressive = [1, 2, 3, 4, 5]");
    for (n, expected) in [(0, 0.0), (1, 1.0), (3, 6.0), (5, 15.0), (9, 15.0)] {
        let events: Vec<_> = (0..n).map(|i| ev("email_click", days_ago(i as f64))).collect();
        assert_close(first(&m, &[], &events).0, expected);
    }
}

#[test]
fn progressive_points_decay_oldest_earns_the_first_step() {
    let m = one_rule("event = \"email_click\"\nprogressive = [1, 2]\ndecay = { half_life = \"10d\" }");
    // Oldest (20 days: factor 0.25) earns step 1, newest (0 days) earns step 2.
    let events = [ev("email_click", days_ago(0.0)), ev("email_click", days_ago(20.0))];
    assert_close(first(&m, &[], &events).0, 1.0 * 0.25 + 2.0);
}

#[test]
fn frequency_bands() {
    let m = one_rule("event = \"page_view\"\nbands = [{ min = 1, max = 3, points = 2 }, { min = 4, points = 5 }]");
    for (n, expected) in [(0, 0.0), (1, 2.0), (3, 2.0), (4, 5.0), (40, 5.0)] {
        let events: Vec<_> = (0..n).map(|i| ev("page_view", days_ago(i as f64 / 10.0))).collect();
        assert_close(first(&m, &[], &events).0, expected);
    }
    let closed = one_rule("event = \"page_view\"\nbands = [{ min = 2, max = 3, points = 2 }]");
    let four: Vec<_> = (0..4).map(|i| ev("page_view", days_ago(i as f64))).collect();
    assert_close(first(&closed, &[], &four).0, 0.0);
}

#[test]
fn window_includes_its_start() {
    let m = one_rule("event = \"webinar\"\npoints = 10\nwindow = \"30d\"");
    assert_close(first(&m, &[], &[ev("webinar", days_ago(30.0))]).0, 10.0);
    assert_close(first(&m, &[], &[ev("webinar", Timestamp(days_ago(30.0).0 - 1000))]).0, 0.0);
}

#[test]
fn window_with_a_cap_counts_the_most_recent_inside_it() {
    let m = one_rule("event = \"webinar\"\npoints = 10\nwindow = \"30d\"\nmax_count = 2");
    let events = [ev("webinar", days_ago(1.0)), ev("webinar", days_ago(40.0)), ev("webinar", days_ago(50.0))];
    let outcome = score(&m, &[], &events).remove(0);
    assert_eq!(outcome.contributions, vec![("r".to_string(), 1, 10.0)]);
}

#[test]
fn half_life_decay() {
    let m = one_rule("event = \"webinar\"\npoints = 20\ndecay = { half_life = \"30d\" }");
    assert_close(first(&m, &[], &[ev("webinar", days_ago(30.0))]).0, 10.0);
    assert_close(first(&m, &[], &[ev("webinar", days_ago(60.0)), ev("webinar", days_ago(0.0))]).0, 25.0);
    // 20 / sqrt(2) = 14.1421356..., rounded to the default precision of 6 decimals.
    assert_eq!(first(&m, &[], &[ev("webinar", days_ago(15.0))]).0, 14.142136);
}

#[test]
fn linear_decay_loses_a_share_every_period() {
    let m = one_rule("event = \"webinar\"\npoints = 20\ndecay = { lose_percent = 25, every = \"30d\" }");
    for (age, expected) in [(0.0, 20.0), (29.9, 20.0), (30.0, 15.0), (65.0, 10.0), (120.0, 0.0), (400.0, 0.0)] {
        assert_close(first(&m, &[], &[ev("webinar", days_ago(age))]).0, expected);
    }
}

#[test]
fn step_decay() {
    let m = one_rule(
        "event = \"webinar\"\npoints = 20\ndecay = { steps = [{ older_than = \"90d\", factor = 0.5 }, { older_than = \"180d\", factor = 0 }] }",
    );
    for (age, expected) in [(10.0, 20.0), (90.0, 20.0), (91.0, 10.0), (180.0, 10.0), (181.0, 0.0)] {
        assert_close(first(&m, &[], &[ev("webinar", days_ago(age))]).0, expected);
    }
}

#[test]
fn event_filters_on_properties() {
    let m = one_rule(
        "event = \"page_view\"\nwhere = { field = \"url\", contains = \"/pricing\" }\npoints = 15\nmax_count = 1",
    );
    let pricing = [ev_with("page_view", days_ago(1.0), &[("url", "https://x.io/PRICING?a=1")])];
    assert_close(first(&m, &[], &pricing).0, 15.0);
    let home = [ev_with("page_view", days_ago(1.0), &[("url", "https://x.io/")]), ev("page_view", days_ago(2.0))];
    assert_close(first(&m, &[], &home).0, 0.0);
}

#[test]
fn negative_events() {
    let m = one_rule("event = [\"unsubscribe\", \"careers_page_view\"]\npoints = -5");
    let events = [ev("unsubscribe", days_ago(3.0)), ev("careers_page_view", days_ago(3.0)), ev("other", days_ago(1.0))];
    assert_close(first(&m, &[], &events).0, -10.0);
}

#[test]
fn inactivity() {
    let m = model(
        r#"
[lead]
created_at = "created_at"
[scores.s]
[[scores.s.rules]]
name = "inactive"
inactive_for = "30d"
points = -10
[[scores.s.rules]]
name = "no webinar"
event = "webinar"
inactive_for = "60d"
points = -1
"#,
    );
    // Any event type resets the first rule; only webinars the second.
    assert_close(first(&m, &[], &[ev("page_view", days_ago(30.0))]).0, -1.0);
    assert_close(first(&m, &[], &[ev("page_view", days_ago(31.0))]).0, -11.0);
    assert_close(first(&m, &[], &[ev("webinar", days_ago(59.0))]).0, -10.0);
    assert_close(first(&m, &[], &[ev("webinar", days_ago(29.0))]).0, 0.0);
    // Without events, the lead's creation time counts; without it, the lead is inactive.
    assert_close(first(&m, &[("created_at", "2026-10-20T00:00:00Z")], &[]).0, 0.0);
    assert_close(first(&m, &[("created_at", "2026-01-01T00:00:00+09:00")], &[]).0, -11.0);
    assert_close(first(&m, &[], &[]).0, -11.0);
}

#[test]
fn group_limits_cap_their_rules() {
    let m = model(
        r#"
[scores.s]
[scores.s.groups.email]
max = 15
[[scores.s.rules]]
name = "clicks"
group = "email"
event = "email_click"
progressive = [1, 2, 3, 4, 5]
[[scores.s.rules]]
name = "opens"
group = "email"
event = "email_open"
points = 2
[[scores.s.rules]]
name = "fit"
when = { field = "x", present = true }
points = 1
"#,
    );
    let events: Vec<_> =
        (0..5).flat_map(|i| [ev("email_click", days_ago(i as f64)), ev("email_open", days_ago(i as f64))]).collect();
    let outcome = score(&m, &[("x", "1")], &events).remove(0);
    assert_close(outcome.value, 16.0);
    assert_eq!(
        outcome.contributions,
        vec![
            ("fit".to_string(), 0, 1.0),
            ("clicks".to_string(), 5, 15.0),
            ("opens".to_string(), 5, 10.0),
            ("group_limit".to_string(), 0, -10.0)
        ]
    );
}

#[test]
fn score_limits_and_normalisation() {
    let m = model(
        r#"
[scores.s]
min = 0
max = 50
normalize = true
[[scores.s.rules]]
name = "a"
when = { field = "a", present = true }
points = 40
[[scores.s.rules]]
name = "b"
when = { field = "b", present = true }
points = -60
[[scores.s.rules]]
name = "c"
when = { field = "c", present = true }
points = 30
"#,
    );
    assert_close(first(&m, &[("a", "1")], &[]).0, 80.0);
    assert_close(first(&m, &[("b", "1")], &[]).0, 0.0);
    assert_close(first(&m, &[("a", "1"), ("c", "1")], &[]).0, 100.0);
    let outcome = score(&m, &[("a", "1"), ("c", "1")], &[]).remove(0);
    let total: f64 = outcome.contributions.iter().map(|c| c.2).sum();
    assert_close(total, outcome.value);
}

#[test]
fn a_score_made_from_others() {
    let m = model(
        r#"
[scores.total]
from = { fit = 1, engagement = 0.5 }
tiers = [{ label = "low" }, { label = "high", min = 20 }]
[scores.fit]
[[scores.fit.rules]]
name = "tech"
when = { field = "industry", equals = "Technology" }
points = 15
[scores.engagement]
[[scores.engagement.rules]]
name = "webinar"
event = "webinar"
points = 20
"#,
    );
    let outcomes = score(&m, &[("industry", "Technology")], &[ev("webinar", days_ago(1.0))]);
    assert_close(outcomes[0].value, 25.0);
    assert_eq!(outcomes[0].tier.as_deref(), Some("high"));
    assert_close(outcomes[1].value, 15.0);
    assert_close(outcomes[2].value, 20.0);
    assert_eq!(m.score_names().collect::<Vec<_>>(), ["total", "fit", "engagement"]);
}

const TIERED: &str = r#"
[scores.s]
tiers = [
  { label = "cold" },
  { label = "warm", min = 25 },
  { label = "mql", min = 50 },
  { label = "sql", qualifier_only = true },
]
[[scores.s.qualifiers]]
name = "demo"
tier = "mql"
event = "demo_request"
within = "30d"
[[scores.s.qualifiers]]
name = "bant"
tier = "sql"
rules = ["budget", "authority"]
[[scores.s.disqualifiers]]
name = "student"
when = { field = "title", contains = "student" }
[[scores.s.rules]]
name = "budget"
when = { field = "budget", min = 10000 }
points = 10
[[scores.s.rules]]
name = "authority"
when = { field = "title", contains = ["director", "vp"] }
points = 20
[[scores.s.rules]]
name = "webinar"
event = "webinar"
points = 30
"#;

#[test]
fn tiers_by_points() {
    let m = model(TIERED);
    assert_eq!(first(&m, &[], &[]).1.as_deref(), Some("cold"));
    assert_eq!(first(&m, &[("title", "VP")], &[ev("webinar", days_ago(1.0))]).1.as_deref(), Some("mql"));
    assert_eq!(first(&m, &[("budget", "20000")], &[ev("webinar", days_ago(1.0))]).1.as_deref(), Some("warm"));
}

#[test]
fn qualifiers_raise_the_tier_but_never_lower_it() {
    let m = model(TIERED);
    assert_eq!(first(&m, &[], &[ev("demo_request", days_ago(30.0))]).1.as_deref(), Some("mql"));
    assert_eq!(first(&m, &[], &[ev("demo_request", days_ago(31.0))]).1.as_deref(), Some("cold"));
    // All BANT rules met: SQL, even with few points.
    assert_eq!(first(&m, &[("title", "Director"), ("budget", "10000")], &[]).1.as_deref(), Some("sql"));
    // One missing: points decide.
    assert_eq!(first(&m, &[("title", "Director")], &[]).1.as_deref(), Some("cold"));
}

#[test]
fn disqualifiers_win() {
    let m = model(TIERED);
    let outcome =
        score(&m, &[("title", "Student director"), ("budget", "99999")], &[ev("demo_request", days_ago(1.0))]);
    assert_eq!(outcome[0].tier.as_deref(), Some("disqualified"));
    assert_close(outcome[0].value, 30.0);
}

#[test]
fn a_value_in_a_gap_has_no_tier() {
    let m = model(
        r#"
[scores.s]
tiers = [{ label = "low", min = 0, max = 10 }, { label = "high", min = 11 }]
[[scores.s.rules]]
name = "half"
event = "x"
points = 10.5
"#,
    );
    assert_eq!(first(&m, &[], &[ev("x", days_ago(0.0))]).1, None);
    assert_eq!(first(&m, &[], &[]).1.as_deref(), Some("low"));
}

/// What a person's override of a value reads: the points' tier of the value, never a
/// qualifier-only tier, none in a gap; and the tiers an override may name.
#[test]
fn a_value_alone_finds_its_tier_by_points_and_tiers_are_known_by_label() {
    let m = model(TIERED);
    let s = &m.scores()[0];
    assert_eq!(s.tier_of_value(0.0), Some("cold"));
    assert_eq!(s.tier_of_value(25.0), Some("warm"));
    assert_eq!(s.tier_of_value(1000.0), Some("mql"));
    assert!(s.has_tier("sql") && s.has_tier("disqualified") && s.has_tier("cold"));
    assert!(!s.has_tier("hot") && !s.has_tier("Cold"));
    let gap = model(
        r#"
[scores.s]
tiers = [{ label = "low", min = 0, max = 10 }, { label = "high", min = 11 }]
[[scores.s.rules]]
name = "half"
event = "x"
points = 10.5
"#,
    );
    let s = &gap.scores()[0];
    assert_eq!(s.tier_of_value(10.5), None);
    assert_eq!(s.tier_of_value(-1.0), None);
    assert_eq!(s.tier_of_value(11.0), Some("high"));
    // Without disqualifiers, no lead is ever in the disqualified tier.
    assert!(!s.has_tier("disqualified"));
}

#[test]
fn incremental_state_matches_a_full_replay() {
    let m = model(TIERED);
    let events = [ev("webinar", days_ago(3.0)), ev("demo_request", days_ago(2.0)), ev("webinar", days_ago(40.0))];
    let state = state_of(&m, &events);
    let lead = lead_values(&m, &[("title", "VP")]);
    let incremental = m.evaluate(&lead, &state, at(AS_OF));
    let replayed = m.score(
        &lead,
        events.iter().map(|e| leadscore_core::Event { event_type: m.event_type(e.kind), at: e.at, properties: &[] }),
        at(AS_OF),
    );
    assert_eq!(incremental, replayed);
}

#[test]
fn an_event_type_listed_twice_counts_once() {
    let compiled = leadscore_core::compile(
        "[scores.s]\ntiers = [{ label = \"a\" }, { label = \"b\", qualifier_only = true }]\n[[scores.s.qualifiers]]\nname = \"q\"\ntier = \"b\"\nevent = [\"demo\", \"demo\"]\nmin_count = 2\n[[scores.s.rules]]\nname = \"r\"\nevent = [\"click\", \"click\"]\npoints = 5\n",
    )
    .unwrap();
    assert_eq!(compiled.warnings.len(), 2);
    let m = compiled.model;
    let (value, tier) = first(&m, &[], &[ev("click", days_ago(1.0)), ev("demo", days_ago(1.0))]);
    assert_close(value, 5.0);
    assert_eq!(tier.as_deref(), Some("a"));
}

#[test]
fn normalised_values_land_on_the_documented_side_of_a_tier() {
    let m = model(
        r#"
[scores.s]
min = 0
max = 45
normalize = true
tiers = [{ label = "low" }, { label = "good", min = 40 }]
[[scores.s.rules]]
name = "a"
when = { field = "a", present = true }
points = 5
[[scores.s.rules]]
name = "b"
when = { field = "a", present = true }
points = 10
[[scores.s.rules]]
name = "c"
when = { field = "a", present = true }
points = 3
"#,
    );
    let outcome = score(&m, &[("a", "1")], &[]).remove(0);
    assert_eq!(outcome.value, 40.0);
    assert_eq!(outcome.tier.as_deref(), Some("good"));
    let total = outcome.contributions.iter().fold(0.0, |acc, c| acc + c.2);
    assert_eq!(total, outcome.value);
}

#[test]
fn numbers_beyond_a_trillion_are_refused() {
    let error = leadscore_core::compile(
        "[scores.s]\nmax = 100\n[[scores.s.rules]]\nname = \"r\"\nevent = \"x\"\npoints = 1e308\n",
    )
    .unwrap_err();
    assert!(
        error.render("m.toml").contains("m.toml:6:10: error: `points` must be between -1e12 and 1e12"),
        "{}",
        error.render("m.toml")
    );
}

#[test]
fn a_created_at_with_spaces_still_counts() {
    let m = model(
        "[lead]\ncreated_at = \"created_at\"\n[scores.s]\n[[scores.s.rules]]\nname = \"idle\"\ninactive_for = \"60d\"\npoints = -15\n",
    );
    assert_close(first(&m, &[("created_at", " 2026-10-20T00:00:00Z ")], &[]).0, 0.0);
}

#[test]
fn a_stream_of_newer_events_keeps_a_bounded_state() {
    let m = one_rule("event = \"view\"\npoints = 1\nmax_count = 3");
    let events: Vec<_> = (0..1000).map(|i| ev("view", Timestamp(days_ago(100.0).0 + i * 60_000))).collect();
    let state = state_of(&m, &events);
    assert!(state.occurrences()[0].len() < 16, "{}", state.occurrences()[0].len());
    assert_close(m.evaluate(&[], &state, at(AS_OF)).scores[0].value, 3.0);
}
