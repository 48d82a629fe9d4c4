//! Every example model, on its own leads and events, at the as-of time its comments use and at a
//! later one: the query on DuckDB and PostgreSQL gives `leadscore score`'s rows, and with
//! `--explain` its contributions. The examples the
//! SQL compiler does not cover yet are listed, and must be refused rather than approximated.

use std::path::Path;

use leadscore_core::Timestamp;
use leadscore_sql::{Dialect, SqlOptions};

use crate::engines::{
    Files, Postgres, assert_same_contributions, assert_same_rows, compile, csv_contributions, csv_rows, duckdb_csv,
    engine_contributions, engine_rows, query_with,
};

/// Examples with a construct not compiled to SQL yet (`gibberish`).
pub const NOT_YET: &[&str] = &["email-engagement"];

pub fn examples() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut found: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    found.sort();
    assert!(found.len() >= 5, "the examples were found");
    found
}

#[test]
fn every_example_scores_as_leadscore_score_does_on_duckdb_and_postgres() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut postgres = Postgres::create();
    for (name, text) in examples() {
        if NOT_YET.contains(&name.as_str()) {
            continue;
        }
        let model = compile(&text);
        let files = Files::existing(&dir.join(&name).join("leads.csv"), &dir.join(&name).join("events.csv"));
        for as_of in ["2026-11-01T00:00:00Z", "2026-12-15T12:30:00Z"] {
            let as_of = Timestamp::parse_rfc3339(as_of).unwrap();
            let engine = engine_rows(&model, &files, as_of);
            let explained = engine_contributions(&model, &files, as_of);
            assert!(!engine.is_empty(), "{name} has leads");
            // With `--explain`'s column: the same rows, and the engine's contributions.
            if let Some(csv) = duckdb_csv(&query_with(&model, &text, Dialect::DuckDb, as_of, true), &files) {
                assert_same_rows(&engine, &csv_rows(&csv), &format!("{name} on DuckDB"));
                assert_same_contributions(&explained, &csv_contributions(&csv), &format!("{name} on DuckDB"));
            }
            if let Some(postgres) = &mut postgres {
                let query = query_with(&model, &text, Dialect::Postgres, as_of, true);
                let (rows, contributions) = postgres.rows_explained(&query, &files);
                assert_same_rows(&engine, &rows, &format!("{name} on PostgreSQL"));
                let contributions = contributions.expect("the query has the contributions column");
                assert_same_contributions(&explained, &contributions, &format!("{name} on PostgreSQL"));
            }
        }
    }
}

#[test]
fn the_examples_not_covered_yet_are_refused_in_every_dialect() {
    for (name, text) in examples() {
        let model = compile(&text);
        for dialect in Dialect::ALL {
            let options = SqlOptions {
                dialect,
                leads_table: "leads",
                events_table: "events",
                as_of: Timestamp(1_790_000_000_000),
                explain: false,
            };
            let compiled = leadscore_sql::compile_sql(&model, &text, &options);
            assert_eq!(compiled.is_err(), NOT_YET.contains(&name.as_str()), "{name} in {dialect}: {compiled:?}");
        }
    }
}
