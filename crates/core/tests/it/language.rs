//! The model language's second edition, through the public API: segments (`applies_to`,
//! `segments`, lead conditions on event rules), named conditions, conditions on other scores and
//! sequences, each scored on leads whose results were worked out by hand.

use crate::common::*;

/// Two markets scored by their own rules, read under one name.
const MARKETS: &str = r#"
[conditions.emea]
field = "region"
one_of = ["EMEA", "Europe"]
ignore_case = true

[conditions.junk]
any = [
  { field = "email", email_domain = ["example.com", "test.com"] },
  { field = "name", regex = "(?i)^(test|asdf)" },
]

[scores.fit_emea]
applies_to = { condition = "emea" }
tiers = [{ label = "C" }, { label = "B", min = 10 }, { label = "A", min = 20 }]
[[scores.fit_emea.rules]]
name = "gdpr consent"
when = { field = "consent", equals = true }
points = 15
[[scores.fit_emea.rules]]
name = "size"
when = { field = "employees", min = 250 }
points = 10

[scores.fit_us]
applies_to = { not = { condition = "emea" } }
tiers = [{ label = "C" }, { label = "B", min = 10 }, { label = "A", min = 30 }]
[[scores.fit_us.rules]]
name = "size"
when = { field = "employees", min = 1000 }
points = 30

[scores.fit]
segments = [
  { when = { condition = "emea" }, score = "fit_emea" },
  { otherwise = true, score = "fit_us" },
]

[scores.engagement]
tiers = [{ label = "cold" }, { label = "mql", min = 20 }]
[[scores.engagement.rules]]
name = "webinar"
event = "webinar"
points = 5
[[scores.engagement.rules]]
name = "pricing after webinar"
event = "page_view"
where = { field = "url", contains = "/pricing" }
after = { event = "webinar", within = "7d" }
points = 10
max_count = 2
[[scores.engagement.rules]]
name = "emea event attendance"
event = "event_attended"
when = { condition = "emea" }
points = 8
[[scores.engagement.qualifiers]]
name = "A fit asked for a demo"
tier = "mql"
when = { all = [{ score = "fit", tier = "A" }, { score = "engagement_base", min = 1 }] }

[scores.engagement_base]
from = { engagement_raw = 1 }

[scores.engagement_raw]
[[scores.engagement_raw.rules]]
name = "demo"
event = "demo_request"
points = 1

[scores.total]
from = { fit = 1, engagement = 1 }
tiers = [{ label = "cold" }, { label = "sql", min = 50 }]
[[scores.total.disqualifiers]]
name = "junk"
when = { condition = "junk" }
[[scores.total.disqualifiers]]
name = "implausible size"
when = { all = [{ score = "fit_us", rule = "size" }, { field = "employees", above = 10000000 }] }
[[scores.total.rules]]
name = "A fit bonus"
when = { score = "fit_emea", tier = "A" }
points = 5
"#;

fn get<'a>(outcomes: &'a [Outcome], model: &leadscore_core::Model, name: &str) -> &'a Outcome {
    let index = model.score_names().position(|n| n == name).unwrap();
    &outcomes[index]
}

#[test]
fn a_score_applies_only_to_the_leads_its_condition_matches() {
    let m = model(MARKETS);
    let emea = score(&m, &[("region", "europe"), ("consent", "yes"), ("employees", "300")], &[]);
    assert_eq!(get(&emea, &m, "fit_emea").value, 25.0);
    assert_eq!(get(&emea, &m, "fit_emea").tier.as_deref(), Some("A"));
    let us_score = get(&emea, &m, "fit_us");
    assert_eq!((us_score.value, us_score.tier.as_deref()), (0.0, None));
    assert_eq!(us_score.contributions, vec![("not_applicable".to_string(), 0, 0.0)]);
}

#[test]
fn segments_give_each_lead_the_score_of_its_market_under_one_name() {
    let m = model(MARKETS);
    let emea = score(&m, &[("region", "EMEA"), ("consent", "true"), ("employees", "300")], &[]);
    let fit = get(&emea, &m, "fit");
    assert_eq!((fit.value, fit.tier.as_deref()), (25.0, Some("A")));
    assert_eq!(fit.contributions, vec![("segment".to_string(), 0, 25.0)]);
    // The same company size is worth nothing in the US scheme below 1000 employees.
    let us = score(&m, &[("region", "US"), ("consent", "true"), ("employees", "300")], &[]);
    let fit = get(&us, &m, "fit");
    assert_eq!((fit.value, fit.tier.as_deref()), (0.0, Some("C")));
    let big = score(&m, &[("region", "US"), ("employees", "5000")], &[]);
    assert_eq!(get(&big, &m, "fit").tier.as_deref(), Some("A"));
    // The total adds the routed value.
    assert_eq!(get(&big, &m, "total").value, 30.0);
}

#[test]
fn an_event_rule_with_a_lead_condition_counts_only_for_matching_leads() {
    let m = model(MARKETS);
    let events = [ev("event_attended", days_ago(3.0))];
    let emea = score(&m, &[("region", "EMEA")], &events);
    assert_eq!(get(&emea, &m, "engagement").value, 8.0);
    let us = score(&m, &[("region", "US")], &events);
    assert_eq!(get(&us, &m, "engagement").value, 0.0);
}

#[test]
fn a_sequence_counts_what_follows_the_preceding_event_within_its_time() {
    let m = model(MARKETS);
    let pricing = |days| ev_with("page_view", days_ago(days), &[("url", "/pricing")]);
    let events = [
        pricing(40.0), // before any webinar
        ev("webinar", days_ago(30.0)),
        pricing(29.0),                                         // 1 day after: counts
        ev_with("page_view", days_ago(28.0), &[("url", "/")]), // not a pricing page
        pricing(22.5),                                         // 7.5 days after: too late
        ev("webinar", days_ago(5.0)),
        pricing(5.0), // the same instant as the webinar: counts
        pricing(1.0), // counts, but max_count keeps the 2 most recent
    ];
    let out = score(&m, &[("region", "US")], &events);
    let engagement = get(&out, &m, "engagement");
    assert_eq!(
        engagement.contributions,
        vec![("webinar".to_string(), 2, 10.0), ("pricing after webinar".to_string(), 2, 20.0)]
    );
    assert_eq!(engagement.tier.as_deref(), Some("mql"));
    // The order events arrive in does not matter.
    let mut reversed: Vec<E> = events.into_iter().rev().collect();
    reversed.swap(0, 3);
    assert_eq!(score(&m, &[("region", "US")], &reversed), out);
}

#[test]
fn qualifiers_and_rules_test_other_scores_values_tiers_and_rules() {
    let m = model(MARKETS);
    let lead = [("region", "EMEA"), ("consent", "yes"), ("employees", "300")];
    // An A fit without a demo request stays cold; with one, the qualifier raises it to mql.
    let quiet = score(&m, &lead, &[]);
    assert_eq!(get(&quiet, &m, "engagement").tier.as_deref(), Some("cold"));
    let asked = score(&m, &lead, &[ev("demo_request", days_ago(1.0))]);
    let engagement = get(&asked, &m, "engagement");
    assert_eq!((engagement.value, engagement.tier.as_deref()), (0.0, Some("mql")));
    // The total's rule testing fit_emea's tier adds 5.
    let total = get(&quiet, &m, "total");
    assert!(total.contributions.contains(&("A fit bonus".to_string(), 0, 5.0)), "{:?}", total.contributions);
    assert_eq!(total.value, 30.0);
}

#[test]
fn a_named_condition_is_written_once_and_used_anywhere() {
    let m = model(MARKETS);
    let junk = score(&m, &[("region", "US"), ("email", "a@TEST.com"), ("employees", "5000")], &[]);
    assert_eq!(get(&junk, &m, "total").tier.as_deref(), Some("disqualified"));
    let named = score(&m, &[("region", "US"), ("name", "asdf qwer")], &[]);
    assert_eq!(get(&named, &m, "total").tier.as_deref(), Some("disqualified"));
    let fine = score(&m, &[("region", "US"), ("name", "Ada"), ("email", "ada@acme.io")], &[]);
    assert_eq!(get(&fine, &m, "total").tier.as_deref(), Some("cold"));
    // A rule of another score that applied, with a field of the lead.
    let implausible = score(&m, &[("region", "US"), ("employees", "50000000")], &[]);
    let total = get(&implausible, &m, "total");
    assert_eq!(total.tier.as_deref(), Some("disqualified"));
    assert_eq!(
        get(&score(&m, &[("region", "US"), ("employees", "5000")], &[]), &m, "total").tier.as_deref(),
        Some("cold")
    );
}

#[test]
fn scores_are_evaluated_after_the_scores_they_test_whatever_the_file_order() {
    // `engagement` (written first) tests `engagement_base`, written after it, which is made from
    // `engagement_raw`, written last: the qualifier still sees this lead's values.
    let m = model(MARKETS);
    let names: Vec<&str> = m.score_names().collect();
    assert!(names.iter().position(|n| *n == "engagement") < names.iter().position(|n| *n == "engagement_raw"));
    let lead = [("region", "EMEA"), ("consent", "yes"), ("employees", "300")];
    let once = score(&m, &lead, &[ev("demo_request", days_ago(1.0))]);
    assert_eq!(get(&once, &m, "engagement_base").value, 1.0);
    assert_eq!(get(&once, &m, "engagement").tier.as_deref(), Some("mql"));
}
