//! Running a model on the same files with the engine (`leadscore score`'s batch scoring) and
//! with the compiled query on DuckDB, PostgreSQL and Spark SQL; and comparing their rows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use leadscore_batch::{BatchOptions, OutputFormat, ReadOptions};
use leadscore_core::{Model, Timestamp};
use leadscore_sql::{Dialect, SqlOptions};

/// Rows by lead id: each score's value and tier ("" for none), in the model's order.
pub type Rows = BTreeMap<String, Vec<(f64, String)>>;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|ci| ci == "true")
}

/// A leads file and an events file.
pub struct Files {
    pub leads: PathBuf,
    pub events: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Files {
    pub fn existing(leads: &Path, events: &Path) -> Files {
        Files { leads: leads.to_path_buf(), events: events.to_path_buf(), _dir: None }
    }

    pub fn written(leads_csv: &str, events_csv: &str) -> Files {
        let dir = tempfile::tempdir().unwrap();
        let leads = dir.path().join("leads.csv");
        let events = dir.path().join("events.csv");
        std::fs::write(&leads, leads_csv).unwrap();
        std::fs::write(&events, events_csv).unwrap();
        Files { leads, events, _dir: Some(dir) }
    }
}

pub fn compile(model_text: &str) -> Model {
    match leadscore_core::compile(model_text) {
        Ok(compiled) => compiled.model,
        Err(error) => panic!("the model does not compile:\n{}\n{model_text}", error.render("model.toml")),
    }
}

pub fn query(model: &Model, model_text: &str, dialect: Dialect, as_of: Timestamp) -> String {
    query_with(model, model_text, dialect, as_of, false)
}

/// The query, with `--explain`'s `contributions` column when `explain`.
pub fn query_with(model: &Model, model_text: &str, dialect: Dialect, as_of: Timestamp, explain: bool) -> String {
    let options = SqlOptions { dialect, leads_table: "leads", events_table: "events", as_of, explain };
    leadscore_sql::compile_sql(model, model_text, &options)
        .unwrap_or_else(|error| panic!("not compiled to SQL: {error}\n{model_text}"))
}

/// What `leadscore score` writes for the files.
pub fn engine_rows(model: &Model, files: &Files, as_of: Timestamp) -> Rows {
    let options = BatchOptions {
        leads: &files.leads,
        events: Some(&files.events),
        as_of,
        output: OutputFormat::Csv,
        strict: false,
        read: ReadOptions::default(),
    };
    let mut out = Vec::new();
    leadscore_batch::score_files(model, &options, &mut out, &|_, _, _| {}).unwrap();
    let mut reader = csv::Reader::from_reader(out.as_slice());
    let mut rows = Rows::new();
    for record in reader.records() {
        let record = record.unwrap();
        let scores = (1..record.len())
            .step_by(2)
            .map(|i| (record[i].parse::<f64>().unwrap(), record[i + 1].to_string()))
            .collect();
        rows.insert(record[0].to_string(), scores);
    }
    rows
}

/// The Python of `LEADSCORE_DUCKDB_PYTHON` if it can import `module`, or `None` (outside CI,
/// where a test then says it skipped; under CI it fails).
pub fn python_with(module: &str) -> Option<String> {
    python_of(
        "LEADSCORE_DUCKDB_PYTHON",
        module,
        "set LEADSCORE_DUCKDB_PYTHON to a Python with the duckdb and sqlglot packages (python3 -m venv \
         /tmp/leadscore-duckdb-venv && /tmp/leadscore-duckdb-venv/bin/pip install duckdb sqlglot; .ci/run \
         installs them)",
    )
}

/// The Python of `LEADSCORE_SPARK_PYTHON` if it can import PySpark (which brings Spark itself;
/// it needs a Java runtime), or `None` outside CI.
pub fn spark_python() -> Option<String> {
    python_of(
        "LEADSCORE_SPARK_PYTHON",
        "pyspark",
        "set LEADSCORE_SPARK_PYTHON to a Python with the pyspark package and Java 17 on the PATH (python3 -m venv \
         /tmp/leadscore-spark-venv && /tmp/leadscore-spark-venv/bin/pip install pyspark==4.0.5; .ci/run installs it)",
    )
}

/// The Python named by the environment variable `variable` if it can import `module`.
fn python_of(variable: &str, module: &str, how: &str) -> Option<String> {
    let python = std::env::var(variable).ok().filter(|p| !p.is_empty());
    let imports = python.as_ref().is_some_and(|python| {
        std::process::Command::new(python)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|output| output.status.success())
    });
    if imports {
        return python;
    }
    assert!(!in_ci(), "the SQL tests need Python's {module} under CI: {how}");
    eprintln!("skipped {module}: {how}");
    None
}

/// The query's rows on DuckDB, or `None` when no DuckDB is available (outside CI).
pub fn duckdb_rows(query: &str, files: &Files) -> Option<Rows> {
    duckdb_csv(query, files).map(|csv| csv_rows(&csv))
}

/// The query's rows on DuckDB as CSV, or `None` when no DuckDB is available (outside CI).
pub fn duckdb_csv(query: &str, files: &Files) -> Option<Vec<u8>> {
    let python = python_with("duckdb")?;
    let dir = tempfile::tempdir().unwrap();
    let query_file = dir.path().join("query.sql");
    std::fs::write(&query_file, query).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/duckdb_run.py");
    let output = std::process::Command::new(&python)
        .arg(script)
        .arg(&files.leads)
        .arg(&files.events)
        .arg(&query_file)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {python}: {error}"));
    assert!(output.status.success(), "DuckDB failed:\n{}\n{query}", String::from_utf8_lossy(&output.stderr));
    Some(output.stdout)
}

/// Rows written as CSV by a runner script (`lead_id`, then each score's value and tier, and
/// `--explain`'s `contributions`, which is left out; a missing value reads as NaN, which equals
/// nothing).
pub fn csv_rows(csv: &[u8]) -> Rows {
    let mut reader = csv::Reader::from_reader(csv);
    let explained = reader.headers().unwrap().iter().next_back() == Some("contributions");
    let mut rows = Rows::new();
    for record in reader.records() {
        let record = record.unwrap();
        let scores = (1..record.len() - usize::from(explained))
            .step_by(2)
            .map(|i| (record[i].parse::<f64>().unwrap_or(f64::NAN), record[i + 1].to_string()))
            .collect();
        rows.insert(record[0].to_string(), scores);
    }
    rows
}

/// A database of its own on the PostgreSQL server the tests use, dropped at the end.
pub struct Postgres {
    server: String,
    name: String,
    client: postgres::Client,
}

impl Postgres {
    /// A fresh database, or `None` when no server answers (outside CI).
    pub fn create() -> Option<Postgres> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let server = std::env::var("LEADSCORE_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
        let mut admin = match postgres::Client::connect(&server, postgres::NoTls) {
            Ok(admin) => admin,
            Err(error) if in_ci() => panic!("the SQL tests need PostgreSQL under CI: {server} refused ({error})"),
            Err(error) => {
                eprintln!("skipped PostgreSQL: no server at {server} ({error}); set LEADSCORE_TEST_POSTGRES");
                return None;
            }
        };
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
        let name = format!(
            "leadscore_sqltest_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        admin.batch_execute(&format!("CREATE DATABASE {name} ENCODING 'UTF8' TEMPLATE template0")).unwrap();
        let base = server.rsplit_once('/').map_or(server.as_str(), |(base, _)| base);
        let client = postgres::Client::connect(&format!("{base}/{name}"), postgres::NoTls).unwrap();
        Some(Postgres { server, name, client })
    }

    /// Loads the files as tables of text columns (`leads`, `events`) and runs the query.
    pub fn rows(&mut self, query: &str, files: &Files) -> Rows {
        self.rows_explained(query, files).0
    }

    /// [`Postgres::rows`], with `--explain`'s `contributions` when the query has that column.
    pub fn rows_explained(&mut self, query: &str, files: &Files) -> (Rows, Option<Contributions>) {
        self.load(files);
        let result = self.query(query);
        let explained =
            result.first().is_some_and(|row| row.columns().last().is_some_and(|c| c.name() == "contributions"));
        let mut rows = Rows::new();
        let mut contributions = Contributions::new();
        for row in result {
            let lead: String = row.get(0);
            let scores = (1..row.len() - usize::from(explained))
                .step_by(2)
                .map(|i| {
                    let value: Option<f64> = row.get(i);
                    let tier: Option<String> = row.get(i + 1);
                    (value.unwrap_or(f64::NAN), tier.unwrap_or_default())
                })
                .collect();
            if explained {
                let json: String = row.get("contributions");
                let parsed: serde_json::Value =
                    serde_json::from_str(&json).unwrap_or_else(|error| panic!("not JSON ({error}): {json}"));
                contributions.insert(lead.clone(), parsed.as_object().unwrap().clone());
            }
            rows.insert(lead, scores);
        }
        (rows, explained.then_some(contributions))
    }

    fn query(&mut self, query: &str) -> Vec<postgres::Row> {
        self.client.query(query, &[]).unwrap_or_else(|error| {
            let detail = error.as_db_error().map_or(String::new(), |e| format!("{} ({:?})", e.message(), e.position()));
            panic!("PostgreSQL failed: {error}: {detail}\n{query}")
        })
    }

    fn load(&mut self, files: &Files) {
        for (table, path) in [("leads", &files.leads), ("events", &files.events)] {
            let bytes = std::fs::read(path).unwrap();
            let mut reader = csv::Reader::from_reader(bytes.as_slice());
            let header: Vec<String> = reader.headers().unwrap().iter().map(|h| format!("\"{h}\" text")).collect();
            self.client
                .batch_execute(&format!("DROP TABLE IF EXISTS {table}; CREATE TABLE {table} ({})", header.join(", ")))
                .unwrap();
            let mut writer =
                self.client.copy_in(&format!("COPY {table} FROM STDIN WITH (FORMAT csv, HEADER true)")).unwrap();
            std::io::Write::write_all(&mut writer, &bytes).unwrap();
            writer.finish().unwrap();
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&self.server, postgres::NoTls) {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

/// The query's rows are the engine's: the same leads, tiers equal, values within 1e-9.
#[track_caller]
pub fn assert_same_rows(engine: &Rows, sql: &Rows, context: &str) {
    let engine_ids: Vec<&String> = engine.keys().collect();
    let sql_ids: Vec<&String> = sql.keys().collect();
    assert_eq!(engine_ids, sql_ids, "the same leads ({context})");
    for (lead, scores) in engine {
        let from_sql = &sql[lead];
        assert_eq!(scores.len(), from_sql.len(), "lead {lead}: the same scores ({context})");
        for (i, ((value, tier), (sql_value, sql_tier))) in scores.iter().zip(from_sql).enumerate() {
            assert!(
                (value - sql_value).abs() <= 1e-9,
                "lead {lead}, score {i}: the engine gives {value}, the query {sql_value} ({context})"
            );
            assert_eq!(tier, sql_tier, "lead {lead}, score {i}: tiers ({context})");
        }
    }
}

/// Each lead's contributions by score name, as JSON arrays.
pub type Contributions = BTreeMap<String, serde_json::Map<String, serde_json::Value>>;

/// The engine's contributions (`leadscore score --explain`'s, without the outlooks).
pub fn engine_contributions(model: &Model, files: &Files, as_of: Timestamp) -> Contributions {
    let options = BatchOptions {
        leads: &files.leads,
        events: Some(&files.events),
        as_of,
        output: OutputFormat::ContributionsJsonLines,
        strict: false,
        read: ReadOptions::default(),
    };
    let mut out = Vec::new();
    leadscore_batch::score_files(model, &options, &mut out, &|_, _, _| {}).unwrap();
    let mut contributions = Contributions::new();
    for line in String::from_utf8(out).unwrap().lines() {
        let lead: serde_json::Value = serde_json::from_str(line).unwrap();
        let scores = lead["scores"].as_object().unwrap();
        let by_score = scores.iter().map(|(name, score)| (name.clone(), score["contributions"].clone())).collect();
        contributions.insert(lead["lead_id"].as_str().unwrap().to_string(), by_score);
    }
    contributions
}

/// The `contributions` column (the last) of a query's rows written as CSV, by lead id.
pub fn csv_contributions(csv: &[u8]) -> Contributions {
    let mut reader = csv::Reader::from_reader(csv);
    let mut contributions = Contributions::new();
    for record in reader.records() {
        let record = record.unwrap();
        let json = &record[record.len() - 1];
        let parsed: serde_json::Value =
            serde_json::from_str(json).unwrap_or_else(|error| panic!("not JSON ({error}): {json}"));
        contributions.insert(record[0].to_string(), parsed.as_object().unwrap().clone());
    }
    contributions
}

/// The query's contributions are the engine's: the same entries in the same order, points
/// within 2e-6 (both are rounded to 6 decimals, the engine to even at an exact half).
#[track_caller]
pub fn assert_same_contributions(engine: &Contributions, sql: &Contributions, context: &str) {
    assert_eq!(engine.keys().collect::<Vec<_>>(), sql.keys().collect::<Vec<_>>(), "the same leads ({context})");
    for (lead, scores) in engine {
        let from_sql = &sql[lead];
        assert_eq!(scores.keys().collect::<Vec<_>>(), from_sql.keys().collect::<Vec<_>>(), "lead {lead} ({context})");
        for (score, contributions) in scores {
            let (expected, found) = (contributions.as_array().unwrap(), from_sql[score].as_array().unwrap());
            let mismatch = || {
                format!("lead {lead}, score {score}:\nengine {contributions}\nquery  {}\n({context})", from_sql[score])
            };
            assert_eq!(expected.len(), found.len(), "{}", mismatch());
            for (expected, found) in expected.iter().zip(found) {
                let (mut expected, mut found) = (expected.clone(), found.clone());
                let points = |value: &mut serde_json::Value| {
                    value.as_object_mut().unwrap().remove("points").and_then(|p| p.as_f64())
                };
                let (expected_points, found_points) = (points(&mut expected), points(&mut found));
                assert_eq!(expected, found, "{}", mismatch());
                let (a, b) = (expected_points.unwrap(), found_points.unwrap());
                assert!((a - b).abs() <= 2e-6 + 1e-12 * a.abs(), "{}", mismatch());
            }
        }
    }
}
