//! What a model author sees for mistakes: every error with its line and column.

use leadscore_core::compile;

/// The rendered diagnostics of a model that must not compile.
fn errors(text: &str) -> String {
    match compile(text) {
        Ok(_) => panic!("the model compiled but should not have"),
        Err(error) => error.render("model.toml"),
    }
}

#[test]
fn unknown_key() {
    insta::assert_snapshot!(errors(
        r#"
[scores.s]
[[scores.s.rules]]
name = "pricing"
event = "page_view"
pionts = 5
"#
    ));
}

#[test]
fn bad_regex() {
    insta::assert_snapshot!(errors(
        r#"
[scores.s]
[[scores.s.rules]]
name = "title"
when = { field = "title", regex = "(vp|director" }
points = 5
"#
    ));
}

#[test]
fn overlapping_tiers() {
    insta::assert_snapshot!(errors(
        r#"
[scores.s]
tiers = [
  { label = "nurture", min = 0, max = 10 },
  { label = "engaged", min = 10, max = 35 },
  { label = "mql", min = 30 },
]
"#
    ));
}

#[test]
fn a_score_defined_from_itself() {
    insta::assert_snapshot!(errors("[scores.total]\nfrom = { total = 1 }\n"));
    insta::assert_snapshot!(errors(
        "[scores.a]\nfrom = { b = 1 }\n[scores.b]\nfrom = { c = 1 }\n[scores.c]\nfrom = { a = 1 }\n"
    ));
}

#[test]
fn every_error_at_once() {
    insta::assert_snapshot!(errors(
        r#"
[scores.s]
tiers = [{ label = "cold" }, { label = "hot", min = 50 }]

[[scores.s.qualifiers]]
name = "demo"
tier = "mql"
event = "demo_request"

[[scores.s.rules]]
name = "clicks"
group = "emial"
event = "email_click"
points = 5
window = "3M"

[[scores.s.rules]]
name = "country"
when = { field = "country", one_of = [] }
points = 5
max_count = 3

[[scores.s.rules]]
name = "bands and decay"
event = "page_view"
bands = [{ min = 1, max = 3, points = 2 }, { min = 3, points = 5 }]
decay = { half_life = "0d" }

[[scores.s.rules]]
name = "nothing"
points = 1
"#
    ));
}

#[test]
fn syntax_error() {
    insta::assert_snapshot!(errors("[scores.s]\n[[scores.s.rules]]\nname = \"x\nwhen = 1\n"));
}

#[test]
fn empty_model() {
    insta::assert_snapshot!(errors("# nothing here\n"));
}

#[test]
fn empty_lists_misplaced_options_and_wrong_types() {
    insta::assert_snapshot!(errors(
        r#"
[scores.s]
tiers = [{ label = "cold" }, { label = "hot", min = 10 }]
disqualified_tier = "cold"

[[scores.s.qualifiers]]
name = "bant"
rules = []

[[scores.s.rules]]
name = "decayed"
event = "webinar"
points = 5
decay = { steps = [] }

[[scores.s.rules]]
name = "country"
when = { any = [{ field = "country", equals = "us" }], ignore_case = true }
points = 5
"#
    ));
    insta::assert_snapshot!(errors("[scores.s]\n[[scores.s.rules]]\nname = \"x\"\nevent = 5\npoints = 1\n"));
}

#[test]
fn mistakes_with_named_conditions_and_conditions_on_scores() {
    insta::assert_snapshot!(errors(
        r#"
[conditions.a]
condition = "b"
[conditions.b]
condition = "a"
[conditions.unused]
field = "x"
present = true

[scores.fit]
tiers = [{ label = "C" }, { label = "A", min = 10 }]
[[scores.fit.rules]]
name = "loop"
when = { condition = "a" }
points = 1
[[scores.fit.rules]]
name = "unknown"
when = { condition = "nowhere" }
points = 1
[[scores.fit.rules]]
name = "self"
when = { score = "fit", min = 3 }
points = 1
[[scores.fit.rules]]
name = "mixed"
when = { condition = "a", field = "x", present = true }
points = 1

[scores.total]
[[scores.total.rules]]
name = "tier"
when = { score = "fit", tier = ["A", "Z"] }
points = 1
[[scores.total.rules]]
name = "rule"
when = { score = "fit", rule = "nope", contains = "x" }
points = 1
[[scores.total.rules]]
name = "no score"
when = { tier = "A" }
points = 1
[[scores.total.rules]]
name = "text"
when = { score = "fit", equals = "A" }
points = 1
[[scores.total.rules]]
name = "in an event filter"
event = "page_view"
where = { score = "fit", min = 1 }
points = 1
"#
    ));
}

#[test]
fn scores_that_test_each_other() {
    insta::assert_snapshot!(errors(
        r#"
[scores.a]
[[scores.a.rules]]
name = "b is high"
when = { score = "b", min = 10 }
points = 1

[scores.b]
from = { a = 1 }
"#
    ));
}

#[test]
fn mistakes_with_segments_and_sequences() {
    insta::assert_snapshot!(errors(
        r#"
[scores.fit_eu]
[scores.fit]
min = 0
segments = [
  { otherwise = true, score = "fit_eu" },
  { when = { field = "region", equals = "US" }, score = "fit_us" },
  { score = "fit" },
]

[scores.e]
[[scores.e.rules]]
name = "after"
event = "pricing"
after = { event = "webinar", within = "0d" }
points = 1
[[scores.e.rules]]
name = "attribute"
when = { field = "x", present = true }
after = { event = "webinar", within = "7d" }
points = 1
"#
    ));
}
