//! The query on Spark SQL (local mode, through PySpark: `LEADSCORE_SPARK_PYTHON`) gives
//! `leadscore score`'s rows, for every example the compiler covers, at two as-of times, for
//! random models from the generator of `random.rs`, and for a few cases of Spark's own types;
//! and with `--explain`, the rows and `leadscore score --explain`'s contributions, for every
//! example at one as-of time and every other random model.
//!
//! A Spark session takes seconds and most of a gigabyte to start, so every case is written to a
//! directory first and `spark_run.py` runs them all in one session; each case's rows are then
//! compared with the engine's. A query Spark refuses fails its case, as a wrong row does.

use std::path::{Path, PathBuf};
use std::time::Instant;

use leadscore_core::Timestamp;
use leadscore_sql::Dialect;

use crate::engines::{
    Contributions, Files, Rows, assert_same_contributions, assert_same_rows, compile, csv_contributions, csv_rows,
    engine_contributions, engine_rows, query_with, spark_python,
};
use crate::examples::{NOT_YET, examples};
use crate::random;

/// How many random models run, each on its own leads and events.
const RANDOM_CASES: u64 = 40;

/// Models whose values Spark would compute differently if the query used its defaults: a score
/// beyond 2^63 once scaled to its precision (Spark's `FLOOR` of a double is a 64-bit integer),
/// and literals that Spark reads as decimals unless they are typed as doubles.
fn spark_types() -> Vec<(&'static str, String)> {
    // Twelve rules at the largest points a rule may have, and a half: 1.2e13 at six decimals.
    let mut huge = String::from("[scores.huge]\nprecision = 6\n");
    for i in 0..12 {
        huge.push_str(&format!(
            "[[scores.huge.rules]]\nname = \"big {i}\"\nwhen = {{ field = \"size\", present = true }}\npoints = 1e12\n"
        ));
    }
    huge.push_str("[[scores.huge.rules]]\nname = \"a half\"\nwhen = { field = \"size\", min = 10 }\npoints = 0.5\n");
    let decimals = r#"
[scores.decay]
precision = 6
[[scores.decay.rules]]
name = "seen"
event = "visit"
points = 0.1
decay = { half_life = "3d" }
[[scores.decay.rules]]
name = "thirds"
event = "visit"
points = 0.3
decay = { lose_percent = 33.3, every = "1d" }

# 0.3 + 0.3000005 is 0.6000004999999999 in doubles, which rounds to 0.6; in decimals it is
# 0.6000005, which rounds to 0.600001.
[scores.sum]
precision = 6
[[scores.sum.rules]]
name = "three tenths"
when = { field = "size", present = true }
points = 0.3
[[scores.sum.rules]]
name = "and a little more"
when = { field = "size", present = true }
points = 0.3000005
"#;
    vec![("huge", huge), ("decimals", decimals.to_string())]
}
const SPARK_TYPES_LEADS: &str = "lead_id,size\nA,5\nB,50\nC,\n";
const SPARK_TYPES_EVENTS: &str =
    "lead_id,type,ts\nA,visit,2026-10-30T07:13:00Z\nA,visit,2026-10-02T00:00:00.123Z\nB,visit,2026-10-31 23:59:59\n";

/// One case: its directory (leads.csv, events.csv, query.sql), what the engine gives (with its
/// contributions when the query explains), and what to print if Spark disagrees.
struct Case {
    dir: PathBuf,
    engine: Rows,
    explained: Option<Contributions>,
    context: String,
}

/// Whether a case's query has `--explain`'s column.
#[derive(Clone, Copy, PartialEq)]
enum Explain {
    No,
    Yes,
}

fn write_case(root: &Path, name: &str, model_text: &str, files: &Files, as_of: Timestamp, explain: Explain) -> Case {
    let model = compile(model_text);
    let name = if explain == Explain::Yes { format!("{name}-explained") } else { name.to_string() };
    let dir = root.join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&files.leads, dir.join("leads.csv")).unwrap();
    std::fs::copy(&files.events, dir.join("events.csv")).unwrap();
    let query = query_with(&model, model_text, Dialect::Spark, as_of, explain == Explain::Yes);
    std::fs::write(dir.join("query.sql"), query).unwrap();
    let engine = engine_rows(&model, files, as_of);
    assert!(!engine.is_empty(), "{name} has leads");
    let explained = (explain == Explain::Yes).then(|| engine_contributions(&model, files, as_of));
    Case { dir, engine, explained, context: name }
}

/// Where the random cases start: `LEADSCORE_SQL_SEED` to run a failure's cases again, else the
/// clock (each run tries other models, as the proptest cases do).
fn first_seed() -> u64 {
    std::env::var("LEADSCORE_SQL_SEED").ok().and_then(|s| s.trim().parse().ok()).unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        (nanos.as_nanos() as u64) | 1
    })
}

#[test]
fn every_example_and_random_models_score_as_leadscore_score_does_on_spark() {
    let Some(python) = spark_python() else { return };
    let started = Instant::now();
    // `LEADSCORE_SPARK_CASES` keeps the cases in a directory of one's choice, to run them again
    // with `spark_run.py` alone.
    let kept = std::env::var_os("LEADSCORE_SPARK_CASES").map(PathBuf::from);
    let temporary = tempfile::tempdir().unwrap();
    let root = kept.as_deref().unwrap_or(temporary.path());
    let mut cases = Vec::new();

    let examples_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for (name, text) in examples().into_iter().filter(|(name, _)| !NOT_YET.contains(&name.as_str())) {
        let files =
            Files::existing(&examples_dir.join(&name).join("leads.csv"), &examples_dir.join(&name).join("events.csv"));
        for as_of in ["2026-11-01T00:00:00Z", "2026-12-15T12:30:00Z"] {
            let at = Timestamp::parse_rfc3339(as_of).unwrap();
            let case = format!("example-{name}-{}", &as_of[..10]);
            cases.push(write_case(root, &case, &text, &files, at, Explain::No));
            if as_of.starts_with("2026-12") {
                cases.push(write_case(root, &case, &text, &files, at, Explain::Yes));
            }
        }
    }
    for (name, text) in spark_types() {
        let files = Files::written(SPARK_TYPES_LEADS, SPARK_TYPES_EVENTS);
        let at = Timestamp::parse_rfc3339("2026-11-01T00:00:00Z").unwrap();
        let mut case = write_case(root, &format!("types-{name}"), &text, &files, at, Explain::No);
        case.context = format!("{}\n{text}", case.context);
        cases.push(case);
    }
    let first = first_seed();
    for i in 0..RANDOM_CASES {
        let seed = first.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1;
        let drawn = random::case(seed);
        let files = Files::written(&drawn.leads, &drawn.events);
        let explain = if i % 2 == 0 { Explain::Yes } else { Explain::No };
        let mut case = write_case(root, &format!("random-{i:02}"), &drawn.model, &files, drawn.as_of, explain);
        case.context = format!(
            "random seed {seed} (LEADSCORE_SQL_SEED={first} runs these cases again)\n{}\n{}\n{}",
            drawn.model, drawn.leads, drawn.events
        );
        cases.push(case);
    }
    let written = started.elapsed();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/spark_run.py");
    let output = std::process::Command::new(&python)
        .arg(script)
        .arg(root)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {python}: {error}"));
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "Spark failed:\n{log}");

    for case in &cases {
        if let Ok(error) = std::fs::read_to_string(case.dir.join("error.txt")) {
            let query = std::fs::read_to_string(case.dir.join("query.sql")).unwrap_or_default();
            panic!("Spark refused the query of {}: {error}\n{query}", case.context);
        }
        let rows = std::fs::read(case.dir.join("rows.csv")).unwrap_or_else(|error| {
            panic!("no rows for {}: {error}\n{log}", case.context);
        });
        assert_same_rows(&case.engine, &csv_rows(&rows), &format!("Spark SQL, {}", case.context));
        if let Some(explained) = &case.explained {
            assert_same_contributions(explained, &csv_contributions(&rows), &format!("Spark SQL, {}", case.context));
        }
    }
    eprintln!(
        "{log}Spark SQL: {} cases in {:.1}s (written in {:.1}s, random seeds from {first})",
        cases.len(),
        started.elapsed().as_secs_f64(),
        written.as_secs_f64()
    );
}
