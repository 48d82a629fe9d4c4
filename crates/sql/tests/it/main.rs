//! leadscore-sql's tests: the compiled query run on DuckDB, PostgreSQL and Spark SQL gives the
//! rows `leadscore score` gives (every example model, and random models over every rule kind the
//! SQL compiler covers), the text it writes for each dialect, and what it refuses.
//!
//! DuckDB runs through its Python package (`LEADSCORE_DUCKDB_PYTHON`: a Python with `duckdb`
//! installed, and `sqlglot`, which parses the other dialects' queries), PostgreSQL at
//! `LEADSCORE_TEST_POSTGRES` (the local server by default), Spark SQL in local mode through
//! PySpark (`LEADSCORE_SPARK_PYTHON`, with Java 17). Without them a test says it skipped that
//! engine, except under `CI=true`, where it fails.

mod dialects;
mod engines;
mod examples;
mod random;
mod reading;
mod refusals;
mod snapshots;
mod spark;
