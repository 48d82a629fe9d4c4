#!/usr/bin/env python3
"""`leadscore sql --dialect duckdb` against the hand-written DuckDB query of the reference model
(bench/reference/duckdb_fast.sql), side by side in one run, on the same files.

Usage (from the repository root, after `bash bench/reference/setup.sh /tmp/benchenv`):
    /tmp/benchenv/bin/python bench/sql_vs_duckdb.py [--sizes S,L] [--ids hex16] [-n 3]
        [--data /tmp/lsbench] [--binary PATH] [--compare BINARY ...] [--no-wait] [--load]

The data are bench/score_vs_duckdb.py's (generated once, then kept in --data): S is 100,000 leads
and 2,000,000 events, L 1,000,000 leads and 20,000,000 events; `--ids` picks the kind of lead
ids (`hex16` by default: string ids in random order, as real exports have them).

Both sides are whole DuckDB processes (Python's duckdb package, 2 threads) that read the two CSV
files from disk, score every lead and write a CSV file:
- hand-written: bench/reference/duckdb_score.py with duckdb_fast.sql, which reads the files with
  their column types declared;
- compiled: the query `leadscore sql --dialect duckdb examples/reference.toml` prints (compiled
  once, before timing), over two views that read the same files with every column as text (as
  a warehouse table loaded from CSV holds them; the query casts what it reads). Each side reads
  the files once, within its query. `--load` loads them into two tables first instead, and
  times the load with the query.
Before timing, the two outputs must give every lead the same score (to 1e-6) and tier. Then
each is timed n times, alternating, and the ratio of median wall times is printed, with each
round's own ratio and their median: the target is compiled / hand-written <= 1.2.

`--compare BINARY` (repeatable) adds the DuckDB query another build of leadscore prints (`git
worktree add`, then `cargo build --release` there), checked and timed in the same rounds, so that
two builds are compared side by side.

`--postgres` also runs `leadscore sql --dialect postgres`'s query on PostgreSQL (psql, a fresh
database on --postgres-url's server, dropped afterwards): the files copied into text tables
(timed apart), then the query timed n times; its scores are checked against the hand-written
query's as well.

`--spark-python PATH` also runs `leadscore sql --dialect spark`'s query on Spark in local mode
(PATH is a Python with PySpark, e.g. .ci/run's /tmp/leadscore-spark-venv/bin/python), in one
session with 2 cores and Spark's defaults but ANSI mode and UTC (docs/warehouse.md): the files
read as string columns, the query run n times, each time written to one CSV file; the session's
start is timed apart, and the scores are checked against the hand-written query's.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
REF = os.path.join(HERE, "reference")
sys.path.insert(0, REF)
sys.path.insert(0, HERE)
import time_runs  # noqa: E402
from score_vs_duckdb import AS_OF, KINDS, INTEGER_KINDS, SIZES, generate, same_results  # noqa: E402

RUN_COMPILED = """
import sys
import duckdb
leads, events, query, out = sys.argv[1:5]
connection = duckdb.connect(config={"threads": 2})
kind = "TABLE" if len(sys.argv) > 5 and sys.argv[5] == "load" else "VIEW"
for table, path in (("leads", leads), ("events", events)):
    connection.execute(
        f"CREATE {kind} {table} AS SELECT * FROM read_csv('{path}', header = true, all_varchar = true, "
        "auto_detect = true)")
with open(query, encoding="utf-8") as file:
    text = file.read().strip().rstrip(";")
connection.execute(f"COPY ({text}) TO '{out}' (HEADER, DELIMITER ',')")
"""


RUN_SPARK = """
import glob, os, shutil, sys, time
from pyspark.sql import SparkSession
leads, events, query, out, n = sys.argv[1:6]
started = time.perf_counter()
spark = (SparkSession.builder.master("local[2]")
         .config("spark.sql.ansi.enabled", "true").config("spark.sql.session.timeZone", "UTC")
         .config("spark.driver.memory", "4g").config("spark.ui.enabled", "false")
         .config("spark.ui.showConsoleProgress", "false").getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
print(f"start {time.perf_counter() - started:.3f}", flush=True)
for table, path in (("leads", leads), ("events", events)):
    (spark.read.csv(path, header=True, inferSchema=False, multiLine=True, quote='"', escape='"')
     .createOrReplaceTempView(table))
text = open(query, encoding="utf-8").read().strip().rstrip(";")
for _ in range(int(n)):
    started = time.perf_counter()
    shutil.rmtree(out, ignore_errors=True)
    spark.sql(text).coalesce(1).write.csv(out, header=True)
    print(f"run {time.perf_counter() - started:.3f}", flush=True)
shutil.copy(glob.glob(os.path.join(out, "part-*.csv"))[0], out + ".csv")
"""


def compiled_query(binary, dialect, work, name=""):
    """The file holding `leadscore sql --dialect DIALECT examples/reference.toml` at AS_OF."""
    path = os.path.join(work, f"reference-{dialect}{name}.sql")
    with open(path, "w", encoding="utf-8") as out:
        subprocess.run([binary, "sql", "--dialect", dialect, os.path.join(ROOT, "examples", "reference.toml"),
                        "--as-of", AS_OF], check=True, stdout=out)
    return path


def spark_runs(binary, python, data_dir, expected, work, n):
    """Seconds to start the session, then of each of n runs of the query."""
    query = compiled_query(binary, "spark", work)
    runner = os.path.join(work, "run_spark.py")
    with open(runner, "w", encoding="utf-8") as out:
        out.write(RUN_SPARK)
    out = os.path.join(work, "spark-out")
    lines = subprocess.run([python, runner, os.path.join(data_dir, "leads.csv"), os.path.join(data_dir, "events.csv"),
                            query, out, str(n)], check=True, capture_output=True, text=True).stdout.split("\n")
    start = [float(line.split()[1]) for line in lines if line.startswith("start ")][0]
    runs = [float(line.split()[1]) for line in lines if line.startswith("run ")]
    same_results(out + ".csv", expected)
    return start, runs


def psql(url, *args, **kwargs):
    return subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url, *args], check=True, **kwargs)


def postgres_runs(binary, server, data_dir, expected, work, n):
    """Seconds to copy the files into a fresh database, then of each of n runs of the query."""
    database = f"leadscore_sql_bench_{os.getpid()}"
    with open(compiled_query(binary, "postgres", work), encoding="utf-8") as f:
        query = f.read().strip().rstrip(";")
    psql(server, "-c", f"CREATE DATABASE {database}")
    url = server.rsplit("/", 1)[0] + "/" + database
    try:
        started = time.perf_counter()
        for table, path in (("leads", "leads.csv"), ("events", "events.csv")):
            with open(os.path.join(data_dir, path), encoding="utf-8") as f:
                header = f.readline().strip().split(",")
            columns = ", ".join(f'"{c}" text' for c in header)
            psql(url, "-c", f"CREATE TABLE {table} ({columns})")
            psql(url, "-c", f"\\copy {table} FROM '{os.path.join(data_dir, path)}' WITH (FORMAT csv, HEADER true)")
        psql(url, "-c", "ANALYZE")
        load = time.perf_counter() - started
        out = os.path.join(work, "postgres.csv")
        runs = []
        for _ in range(n):
            started = time.perf_counter()
            with open(out, "w", encoding="utf-8") as f:
                psql(url, "-c", f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER true)", stdout=f)
            runs.append(time.perf_counter() - started)
        same_results(out, expected)
        return load, runs
    finally:
        psql(server, "-c", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="S,L")
    ap.add_argument("--ids", default="hex16", help="kinds of lead ids, comma-separated")
    ap.add_argument("-n", type=int, default=3)
    ap.add_argument("--data", default="/tmp/lsbench")
    ap.add_argument("--binary", help="a leadscore binary instead of building this checkout's")
    ap.add_argument("--no-wait", action="store_true", help="do not wait for an idle machine")
    ap.add_argument("--load", action="store_true", help="load the files into text tables, timed with the query")
    ap.add_argument("--postgres", action="store_true", help="also run the PostgreSQL query")
    ap.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--spark-python", help="a Python with PySpark: also run the Spark SQL query")
    ap.add_argument("--compare", action="append", default=[], metavar="BINARY",
                    help="another build's leadscore binary: its DuckDB query is timed in the same rounds")
    a = ap.parse_args()
    binary = a.binary
    if binary is None:
        subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "leadscore"], cwd=ROOT, check=True)
        binary = os.path.join(ROOT, "target", "release", "leadscore")
    work = tempfile.mkdtemp(prefix="leadscore-sql-bench.")
    query = compiled_query(binary, "duckdb", work)
    others = {f"compared {i + 1}": compiled_query(other, "duckdb", work, f"-{i + 1}")
              for i, other in enumerate(a.compare)}
    runner = os.path.join(work, "run_compiled.py")
    with open(runner, "w", encoding="utf-8") as out:
        out.write(RUN_COMPILED)
    table = []
    for size in a.sizes.split(","):
        for kind in a.ids.split(","):
            if kind not in KINDS:
                raise SystemExit(f"unknown id kind {kind}; known: {','.join(KINDS)}")
            data_dir = generate(a.data, size, kind)
            hand_out, compiled_out = os.path.join(work, "hand.csv"), os.path.join(work, "compiled.csv")
            hand = [sys.executable, os.path.join(REF, "duckdb_score.py"), data_dir, hand_out,
                    "--sql", os.path.join(REF, "duckdb_fast.sql"), "--threads", "2",
                    "--id-type", "BIGINT" if kind in INTEGER_KINDS else "VARCHAR"]
            def compiled_command(query, out):
                return [sys.executable, runner, os.path.join(data_dir, "leads.csv"),
                        os.path.join(data_dir, "events.csv"), query, out, "load" if a.load else "view"]
            commands = {"hand-written": hand, "compiled": compiled_command(query, compiled_out)}
            for name, other in others.items():
                commands[name] = compiled_command(other, os.path.join(work, f"{name.replace(' ', '-')}.csv"))
            # Warm-up (page cache) and the correctness check: rows matched by lead id, the same
            # score (to 1e-6) and tier for every lead.
            for name, command in commands.items():
                subprocess.run(command, check=True)
                if name != "hand-written":
                    n_leads = same_results(command[5], hand_out)
            if not a.no_wait:
                time_runs.wait_idle()
            runs = time_runs.alternating(commands, a.n)
            print(f"\n{size} {kind}: {n_leads:,} leads, {SIZES[size][1]:,} events; identical scores and tiers",
                  flush=True)
            medians = time_runs.print_runs(runs, width=13)
            ratio = medians["compiled"] / medians["hand-written"]
            print(f"compiled / hand-written wall time (medians): {ratio:.2f}x", flush=True)
            # Each round's own ratio: on a machine whose speed drifts between rounds, the two
            # queries of one round ran under the nearest conditions.
            for name in commands:
                if name == "hand-written":
                    continue
                rounds = [c[0] / h[0] for c, h in zip(runs[name], runs["hand-written"])]
                print(f"{name}, each round's ratio: {', '.join(f'{r:.2f}' for r in rounds)} "
                      f"(median {statistics.median(rounds):.2f}x)", flush=True)
            table.append((size, kind, medians["hand-written"], medians["compiled"], ratio))
            def report(engine, setup, runs):
                median = sorted(runs)[len(runs) // 2]
                print(f"{engine}: {setup}; query {', '.join(f'{r:.2f}' for r in runs)} s "
                      f"(median {median:.2f} s, {median / medians['hand-written']:.1f}x the hand-written DuckDB query); "
                      "identical scores and tiers", flush=True)

            if a.postgres:
                load, runs = postgres_runs(binary, a.postgres_url, data_dir, hand_out, work, a.n)
                report("PostgreSQL", f"copy into text tables {load:.2f} s", runs)
            if a.spark_python:
                start, runs = spark_runs(binary, a.spark_python, data_dir, hand_out, work, a.n)
                report("Spark local[2]", f"session start {start:.2f} s", runs)
    print("\n| size | lead ids | hand-written duckdb_fast.sql (median) | leadscore sql (median) | compiled / hand-written |")
    print("|---|---|---|---|---|")
    for size, kind, hand, compiled, ratio in table:
        print(f"| {size} | {kind} | {hand:.2f} s | {compiled:.2f} s | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
