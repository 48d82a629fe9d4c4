//! The dialects no test runs the query on (Spark SQL, Trino, Snowflake, BigQuery), and the two it
//! runs on, parse the query of every example and of random models: sqlglot reads each in its
//! dialect (through the Python of `LEADSCORE_DUCKDB_PYTHON`, where sqlglot is installed too). It
//! checks the syntax only, with and without `--explain`'s column; the meaning is checked on
//! DuckDB, PostgreSQL and Spark SQL.

use std::path::Path;

use leadscore_core::Timestamp;
use leadscore_sql::{Dialect, SqlOptions};

use crate::engines::compile;

fn sqlglot_name(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::DuckDb => "duckdb",
        Dialect::Postgres => "postgres",
        Dialect::Spark => "spark",
        Dialect::Trino => "trino",
        Dialect::Snowflake => "snowflake",
        Dialect::BigQuery => "bigquery",
    }
}

#[test]
fn every_dialect_parses_the_query_of_every_example() {
    let Some(python) = crate::engines::python_with("sqlglot") else { return };
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let dir = tempfile::tempdir().unwrap();
    let mut arguments = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(&examples).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    for path in paths.iter().filter(|p| p.extension().is_some_and(|e| e == "toml")) {
        let text = std::fs::read_to_string(path).unwrap();
        let model = compile(&text);
        for (dialect, explain) in Dialect::ALL.into_iter().flat_map(|d| [(d, false), (d, true)]) {
            let options = SqlOptions {
                dialect,
                leads_table: "crm.leads",
                events_table: "crm.events",
                as_of: Timestamp::parse_rfc3339("2026-11-01T00:00:00Z").unwrap(),
                explain,
            };
            let Ok(query) = leadscore_sql::compile_sql(&model, &text, &options) else { continue };
            let explained = if explain { "-explain" } else { "" };
            let name = format!("{}-{}{explained}.sql", path.file_stem().unwrap().to_string_lossy(), dialect.name());
            std::fs::write(dir.path().join(&name), query).unwrap();
            arguments.push(format!("{}={}", sqlglot_name(dialect), dir.path().join(&name).display()));
        }
    }
    assert!(
        arguments.len() >= 8 * Dialect::ALL.len(),
        "the examples' queries were written, with and without --explain"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/sqlglot_parse.py");
    let output = std::process::Command::new(python).arg(script).args(&arguments).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let failures = String::from_utf8_lossy(&output.stdout);
    assert!(failures.trim().is_empty(), "queries that do not parse:\n{failures}");
}
