//! The dbt package (`dbt/`): its macro, its sample project's seeds and expected scores are what
//! the binary writes now (so that none drifts from the code), and `dbt build` of the sample
//! project on DuckDB and on a fresh PostgreSQL database gives `leadscore score`'s rows (the
//! project's own test compares them) — and fails when an expected score is wrong.
//!
//! dbt runs from `LEADSCORE_DBT` (the `dbt` of a virtual environment with dbt-core, dbt-duckdb
//! and dbt-postgres; .ci/run installs them). Without it the build test says it skipped, except
//! under `CI=true`, where it fails. PostgreSQL is `LEADSCORE_TEST_POSTGRES` (the local server by
//! default).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The instant the sample's expected scores are written at (its model passes it as `as_of`).
const AS_OF: &str = "2026-11-01T00:00:00Z";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|ci| ci == "true")
}

/// What `leadscore ARGS` writes on standard output.
fn leadscore(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_leadscore")).current_dir(root()).args(args).output().unwrap();
    assert!(output.status.success(), "leadscore {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

fn macro_text() -> String {
    leadscore(&["dbt", "--as-of-run-start", "examples/b2b-saas.toml"])
}

fn expected_scores() -> String {
    leadscore(&[
        "score",
        "--model",
        "examples/b2b-saas.toml",
        "--leads",
        "examples/b2b-saas/leads.csv",
        "--events",
        "examples/b2b-saas/events.csv",
        "--as-of",
        AS_OF,
    ])
}

#[test]
fn the_package_holds_what_the_binary_writes_now() {
    let read = |path: &str| std::fs::read_to_string(root().join(path)).unwrap();
    assert!(
        read("dbt/macros/leadscore_scores.sql") == macro_text(),
        "dbt/macros/leadscore_scores.sql is not what the binary writes: run `leadscore dbt --as-of-run-start \
         examples/b2b-saas.toml --out dbt/macros/leadscore_scores.sql`"
    );
    for table in ["leads", "events"] {
        assert_eq!(
            read(&format!("dbt/sample/seeds/{table}.csv")),
            read(&format!("examples/b2b-saas/{table}.csv")),
            "dbt/sample/seeds/{table}.csv is examples/b2b-saas/{table}.csv"
        );
    }
    assert!(
        read("dbt/sample/seeds/expected_scores.csv") == expected_scores(),
        "dbt/sample/seeds/expected_scores.csv is not what `leadscore score --as-of {AS_OF}` writes for \
         examples/b2b-saas (dbt/macros/README.md says how to write it again)"
    );
}

/// The `dbt` of `LEADSCORE_DBT`, or `None` outside CI.
fn dbt() -> Option<PathBuf> {
    let how = "set LEADSCORE_DBT to the dbt of a virtual environment with dbt-core, dbt-duckdb and dbt-postgres \
               (.ci/run installs them in /tmp/leadscore-dbt-venv)";
    let dbt = std::env::var_os("LEADSCORE_DBT").filter(|p| !p.is_empty()).map(PathBuf::from);
    match dbt {
        Some(dbt) if dbt.is_file() => Some(dbt),
        _ => {
            assert!(!in_ci(), "the dbt test needs dbt under CI: {how}");
            eprintln!("skipped dbt: {how}");
            None
        }
    }
}

/// A copy of `dbt/` to run in (dbt writes target/, logs/ and dbt_packages/ next to the project),
/// with the macro the binary writes now.
fn project_copy(to: &Path) {
    let from = root().join("dbt");
    for entry in walk(&from) {
        let relative = entry.strip_prefix(&from).unwrap();
        if relative.components().any(|c| ["target", "logs", "dbt_packages"].contains(&c.as_os_str().to_str().unwrap()))
        {
            continue;
        }
        let target = to.join(relative);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &target).unwrap();
    }
    std::fs::write(to.join("macros/leadscore_scores.sql"), macro_text()).unwrap();
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}

/// A copy of the package in `dir` (see [`project_copy`]) with `extra` files added to its sample
/// project, whose dependencies `dbt deps` has installed: the sample's directory.
fn sample_with_deps(dbt: &Path, dir: &Path, extra: &[(&str, &str)]) -> PathBuf {
    project_copy(dir);
    let sample = dir.join("sample");
    for (path, text) in extra {
        let path = sample.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let (ok, log) = run_dbt(dbt, &sample, &["deps"], &[]);
    assert!(ok, "dbt deps:\n{log}");
    sample
}

/// `dbt ARGS` in the sample project; its output, and whether it succeeded.
fn run_dbt(dbt: &Path, sample: &Path, args: &[&str], env: &[(&str, String)]) -> (bool, String) {
    let mut command = Command::new(dbt);
    command
        .current_dir(sample)
        .args(args)
        .args(["--profiles-dir", "."])
        .env("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        .env("DBT_USE_COLORS", "false");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap_or_else(|error| panic!("cannot run {}: {error}", dbt.display()));
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

#[test]
fn dbt_build_of_the_sample_gives_leadscore_scores_on_duckdb_and_postgres() {
    let Some(dbt) = dbt() else { return };
    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let sample = sample_with_deps(&dbt, dir.path(), &[]);

    let duckdb = [("LEADSCORE_DBT_DUCKDB_PATH", dir.path().join("sample.duckdb").display().to_string())];
    let (ok, log) = run_dbt(&dbt, &sample, &["build", "--target", "duckdb"], &duckdb);
    assert!(ok && log.contains("PASS lead_scores_are_leadscore_scores"), "dbt build on DuckDB:\n{log}");

    let server = std::env::var("LEADSCORE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    match postgres::Client::connect(&server, postgres::NoTls) {
        Ok(mut admin) => {
            let name = format!("leadscore_dbt_{}", std::process::id());
            admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).unwrap();
            admin.batch_execute(&format!("CREATE DATABASE {name} ENCODING 'UTF8' TEMPLATE template0")).unwrap();
            let config = server.parse::<postgres::Config>().unwrap();
            let host = match config.get_hosts().first() {
                Some(postgres::config::Host::Tcp(host)) => host.clone(),
                _ => "127.0.0.1".to_string(),
            };
            let env = [
                ("LEADSCORE_DBT_POSTGRES_HOST", host),
                ("LEADSCORE_DBT_POSTGRES_PORT", config.get_ports().first().copied().unwrap_or(5432).to_string()),
                ("LEADSCORE_DBT_POSTGRES_USER", config.get_user().unwrap_or("postgres").to_string()),
                (
                    "LEADSCORE_DBT_POSTGRES_PASSWORD",
                    config.get_password().map(|p| String::from_utf8_lossy(p).to_string()).unwrap_or_default(),
                ),
                ("LEADSCORE_DBT_POSTGRES_DB", name.clone()),
            ];
            let (ok, log) = run_dbt(&dbt, &sample, &["build", "--target", "postgres"], &env);
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            assert!(ok && log.contains("PASS lead_scores_are_leadscore_scores"), "dbt build on PostgreSQL:\n{log}");
        }
        Err(error) if in_ci() => panic!("the dbt test needs PostgreSQL under CI: {server} refused ({error})"),
        Err(error) => eprintln!("skipped dbt on PostgreSQL: no server at {server} ({error})"),
    }

    // The project's test fails when a score is wrong: one expected value moved by 0.5.
    let expected = sample.join("seeds/expected_scores.csv");
    let text = std::fs::read_to_string(&expected).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut cells: Vec<String> = lines[1].split(',').map(str::to_string).collect();
    cells[1] = (cells[1].parse::<f64>().unwrap() + 0.5).to_string();
    lines[1] = cells.join(",");
    std::fs::write(&expected, lines.join("\n") + "\n").unwrap();
    let (ok, log) = run_dbt(&dbt, &sample, &["build", "--target", "duckdb"], &duckdb);
    assert!(!ok && log.contains("FAIL 1 lead_scores_are_leadscore_scores"), "a wrong score fails the test:\n{log}");
    eprintln!("dbt build on DuckDB and PostgreSQL, and the failing run, in {:.1}s", started.elapsed().as_secs_f64());
}

/// The macro reads `as_of` as `leadscore score --as-of` does: each RFC 3339 form the engine
/// takes gives the engine's instant, and a text it refuses fails the compilation with the text
/// named. Run through `dbt run-operation` on a macro the test adds to its copy of the sample.
#[test]
fn the_macro_reads_as_of_as_leadscore_does() {
    let Some(dbt) = dbt() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cases = "{% macro as_of_cases(texts) %}{% for text in texts %}\
                 {{ print('as_of ' ~ text ~ ' = ' ~ leadscore.leadscore_scores_parsed_ms(text)) }}\
                 {% endfor %}{% endmacro %}\n";
    let sample = sample_with_deps(&dbt, dir.path(), &[("macros/as_of_cases.sql", cases)]);
    let duckdb = [("LEADSCORE_DBT_DUCKDB_PATH", dir.path().join("sample.duckdb").display().to_string())];
    let read = [
        "2026-11-01T00:00:00Z",
        "2026-11-01t00:00:00z",
        "2026-11-01 09:00:00+09:00",
        "2026-10-31T19:30:00.5-04:30",
        "2026-11-01T00:00:00.123456789Z",
        "2026-11-01T00:00:00.07+00:00",
        "2016-12-31T23:59:60Z",
        "2024-02-29T12:00:00.999Z",
        "0000-03-01T00:00:00Z",
        "2000-02-29T23:59:59+23:59",
        "1969-12-31T23:59:59.001Z",
    ];
    let texts: Vec<String> = read.iter().map(|text| format!("'{text}'")).collect();
    let args = format!("{{texts: [{}]}}", texts.join(", "));
    let (ok, log) =
        run_dbt(&dbt, &sample, &["run-operation", "as_of_cases", "--args", &args, "--target", "duckdb"], &duckdb);
    assert!(ok, "dbt run-operation:\n{log}");
    for text in read {
        let expected = leadscore_core::Timestamp::parse_rfc3339(text).unwrap().0;
        assert!(log.contains(&format!("as_of {text} = {expected}\n")), "{text} is {expected} ms:\n{log}");
    }
    for refused in [
        "2026-11-01T00:00:00",
        "2026-11-01T24:00:00Z",
        "2026-11-01T00:00:00+24:00",
        "2026-02-30T00:00:00Z",
        "2025-02-29T00:00:00Z",
        "2026-13-01T00:00:00Z",
    ] {
        let args = format!("{{texts: ['{refused}']}}");
        let (ok, log) =
            run_dbt(&dbt, &sample, &["run-operation", "as_of_cases", "--args", &args, "--target", "duckdb"], &duckdb);
        assert!(!ok && log.contains(refused), "{refused} is refused, naming it:\n{log}");
    }
}
