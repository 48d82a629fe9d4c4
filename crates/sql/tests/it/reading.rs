//! Small cases of how the query reads its tables as `leadscore score` reads its files, each run
//! three ways (the random models reach them too, but rarely).

use leadscore_core::Timestamp;
use leadscore_sql::Dialect;

use crate::engines::{Files, Postgres, assert_same_rows, compile, duckdb_rows, engine_rows, query};

#[track_caller]
fn check(model_text: &str, leads: &str, events: &str) {
    let as_of = Timestamp::parse_rfc3339("2026-11-01T00:00:00Z").unwrap();
    let model = compile(model_text);
    let files = Files::written(leads, events);
    let engine = engine_rows(&model, &files, as_of);
    if let Some(rows) = duckdb_rows(&query(&model, model_text, Dialect::DuckDb, as_of), &files) {
        assert_same_rows(&engine, &rows, "DuckDB");
    }
    if let Some(mut postgres) = Postgres::create() {
        let rows = postgres.rows(&query(&model, model_text, Dialect::Postgres, as_of), &files);
        assert_same_rows(&engine, &rows, "PostgreSQL");
    }
}

#[test]
fn a_model_reading_user_id_gets_the_lead_id_when_the_lead_has_none() {
    let model = r#"
[scores.s]
[[scores.s.rules]]
name = "no user id"
when = { field = "user_id", present = false }
points = 1
[[scores.s.rules]]
name = "a lead id"
when = { field = "user_id", starts_with = "L" }
points = 10
"#;
    check(model, "lead_id,user_id\nL1,\nL2,U7\nL3,\" \"\n", "lead_id,type,ts\n");
}

#[test]
fn rows_without_a_type_or_a_time_are_left_out() {
    let model = r#"
[scores.s]
[[scores.s.rules]]
name = "any event lately"
inactive_for = "30d"
points = -10
[[scores.s.rules]]
name = "a"
event = "a"
points = 1
"#;
    let events = "lead_id,type,ts\nL1,,2026-10-30T00:00:00Z\nL2,a,yesterday\nL3,a,2026-10-31 12:00\nL4,b,2026-10-31\n";
    check(model, "lead_id\nL1\nL2\nL3\nL4\n", events);
}

#[test]
fn times_are_read_to_the_millisecond_whichever_reading_takes_them() {
    // DuckDB reads RFC 3339 in UTC with an upper-case `T` and `Z` with its own parser of dates,
    // and every other spelling, and every time in the other dialects, by splitting the text:
    // both must keep the same times, to the millisecond, and skip the same ones.
    let model = r#"
[scores.s]
[[scores.s.rules]]
name = "recent"
event = "a"
points = 1000000
decay = { half_life = "1d" }
[[scores.s.rules]]
name = "counted"
event = "a"
points = 1
"#;
    let times = [
        "2026-10-31T23:59:59Z",
        "2026-10-31T23:59:59.5Z",
        "2026-10-31T23:59:59.123456Z",
        "2026-10-31T12:00:00.1Z",
        "2024-02-29T12:00:00Z",
        "0000-03-01T00:00:00Z",
        "2026-10-31T23:59:60Z",
        "2026-10-31T23:59:60.250Z",
        "2026-10-31T23:59:60.250+00:00",
        "2026-10-31T23:59:59.999Z",
        "1969-12-31T23:59:59.999Z",
        "2026-10-31t23:00:00z",
        "2026-10-31 23:00:00Z",
        "2026-10-31T10:00:00+00:00",
        "2026-10-31T10:00:00.001-01:00",
        // Not instants: skipped.
        "2026-02-29T12:00:00Z",
        "2026-10-01T24:00:00Z",
        "2026-10-31T23:60:00Z",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-10-31T23:59:59.Z",
        "2026-10-31T23:59:59.12Z",
        "2026-10-31T23:59:59.1234Z",
        "2026-04-31T12:00:00.000Z",
        "20261-01-1T00:00:00Z",
        "2026-1-011T00:00:00Z",
        "2026-10-31T0:00:00.1234Z",
        "2026-10-31T00:00:00.12ZZ",
        "2026-10-31T00:00:0 .12Z",
        "2026-10-31T00:00:00.1 Z",
        // White space around a time, which the engine trims: DuckDB's parser, which skips white
        // space and reads fields of one digit, reads the column's text only when it starts with
        // a digit and ends with `Z`.
        " 2026-10-31T23:59:59Z",
        "2026-10-31T23:59:59.250Z\t",
        "\u{3000}2026-10-31T23:59:59Z",
        " 2026-1-31T23:59:59Z",
        "2026-1-31T23:59:59Z ",
        " 2026-10-31T23:59:59.25Z",
        "2026-10-31T3:59:59 Z",
        "2026-10-31T23:59:5 Z",
    ];
    let leads: String = std::iter::once("lead_id".to_string())
        .chain((0..times.len()).map(|i| format!("L{i}")))
        .collect::<Vec<_>>()
        .join("\n");
    let mut events = String::from("lead_id,type,ts\n");
    for (i, time) in times.iter().enumerate() {
        events.push_str(&format!("L{i},a,\"{time}\"\n"));
    }
    check(model, &format!("{leads}\n"), &events);
}

#[test]
fn cells_are_trimmed_of_white_space_at_either_end_and_of_nothing_else() {
    let model = r#"
[scores.s]
[[scores.s.rules]]
name = "x"
when = { field = "name", equals = "x" }
points = 1
[[scores.s.rules]]
name = "ends with a tilde"
when = { field = "name", regex = "~$" }
points = 10
[[scores.s.rules]]
name = "ends with a control character"
when = { field = "name", regex = "\u007F$" }
points = 100
[[scores.s.rules]]
name = "ends beyond ASCII"
when = { field = "name", regex = "é$" }
points = 1000
[[scores.s.rules]]
name = "missing"
when = { field = "name", present = false }
points = 10000
"#;
    let names = [
        "x",
        " x",
        "x ",
        "\tx\n",
        "x\u{a0}",
        "\u{3000}x\u{3000}",
        "x\u{2028}",
        "\u{85}x",
        "x~",
        "~",
        "x\u{7f}",
        "\u{7f}",
        "é",
        "xé",
        " é\u{a0}",
        "\u{a0}",
        "\u{3000} ",
        "!",
        "x!",
    ];
    let mut leads = String::from("lead_id,name\n");
    for (i, name) in names.iter().enumerate() {
        leads.push_str(&format!("L{i},\"{name}\"\n"));
    }
    check(model, &leads, "lead_id,type,ts\n");
}

#[test]
fn event_types_and_lead_ids_are_read_as_cells_whatever_rule_keeps_them() {
    // Each tracker keeps a list of types: the query compares each event's type with the
    // model's as an index, and a type cell that is exactly one of them is not trimmed.
    let listed = r#"
[scores.s]
[[scores.s.rules]]
name = "a"
event = "a"
points = 1
[[scores.s.rules]]
name = "a b or c"
event = ["a b", "c"]
points = 10
[[scores.s.rules]]
name = "spaced, which no trimmed cell is"
event = [" a", "c "]
points = 100
[[scores.s.rules]]
name = "case"
event = "A"
points = 1000
"#;
    // A tracker keeps every type: types are read as cells.
    let any = format!("{listed}\n[[scores.s.rules]]\nname = \"any\"\ninactive_for = \"30d\"\npoints = 10000\n");
    let cells = [
        ("L1", "a"),
        ("L2", " a"),
        ("L3", "a\u{a0}"),
        ("L4", "\u{3000}a b\t"),
        ("L5", "a  b"),
        ("L6", "c "),
        ("L7", "A"),
        ("L8", "a\u{200b}"),
        ("L9", "d"),
        ("L10", "\u{2028}"),
        (" L11", "a"),
        ("L12\u{a0}", "c"),
        ("\u{3000}", "a"),
        ("", "a"),
    ];
    let mut events = String::from("lead_id,type,ts\n");
    for (lead, event_type) in cells {
        events.push_str(&format!("\"{lead}\",\"{event_type}\",2026-10-30T00:00:00Z\n"));
    }
    let leads = "lead_id\nL1\nL2\nL3\nL4\nL5\nL6\nL7\nL8\nL9\nL10\nL11\nL12\n";
    check(listed, leads, &events);
    check(&any, leads, &events);
}
