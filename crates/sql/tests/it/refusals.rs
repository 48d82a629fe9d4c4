//! What the SQL compiler refuses, with the construct and its line: never an approximation.

use leadscore_core::Timestamp;
use leadscore_sql::{Dialect, SqlOptions};

use crate::engines::compile;

fn refusal(model_text: &str, dialect: Dialect) -> String {
    let model = compile(model_text);
    let options =
        SqlOptions { dialect, leads_table: "leads", events_table: "events", as_of: Timestamp(0), explain: false };
    match leadscore_sql::compile_sql(&model, model_text, &options) {
        Ok(_) => panic!("compiled:\n{model_text}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn constructs_not_covered_are_refused_at_their_line() {
    let gibberish = r#"
[scores.fit]
[[scores.fit.rules]]
name = "real name"
when = { field = "first_name", gibberish = false }
points = 5
"#;
    insta::assert_snapshot!(refusal(gibberish, Dialect::DuckDb), @"`gibberish` on line 5 is not compiled to SQL yet");
    let word_boundary = r#"
[scores.fit]
[[scores.fit.rules]]
name = "vp"
when = { field = "job_title", regex = 'v\bp' }
points = 5
"#;
    insta::assert_snapshot!(refusal(word_boundary, Dialect::Postgres), @r"`\b` in the pattern `v\bp` on line 5 is not compiled to SQL yet");
    let time_field = r#"
[lead]
created_at = "signed_up"

[scores.fit]
[[scores.fit.rules]]
name = "this year"
when = { field = "signed_up", starts_with = "2026" }
points = 5
"#;
    insta::assert_snapshot!(refusal(time_field, Dialect::DuckDb), @"a test other than `present` on the time field `signed_up` on line 8 is not compiled to SQL yet");
}

#[test]
fn repetitions_beyond_a_dialects_limit_are_refused_for_that_dialect() {
    let long = r#"
[scores.fit]
[[scores.fit.rules]]
name = "long code"
when = { field = "code", regex = '^[0-9]{300}$' }
points = 5
"#;
    insta::assert_snapshot!(refusal(long, Dialect::Postgres), @"the pattern `^[0-9]{300}$` on line 5 cannot be computed exactly in PostgreSQL: its regular expressions repeat at most 255 times");
    let model = compile(long);
    let options = SqlOptions {
        dialect: Dialect::DuckDb,
        leads_table: "leads",
        events_table: "events",
        as_of: Timestamp(0),
        explain: false,
    };
    assert!(leadscore_sql::compile_sql(&model, long, &options).is_ok());
}
