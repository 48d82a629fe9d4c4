#!/usr/bin/env python3
"""`leadscore score` against DuckDB on the reference model, side by side in one run.

Usage (from the repository root, after `bash bench/reference/setup.sh /tmp/benchenv`):
    /tmp/benchenv/bin/python bench/score_vs_duckdb.py [--sizes S,L] [-n 3] [--data /tmp/lsbench]

For each size (S: 100,000 leads / 2,000,000 events; L: 1,000,000 leads / 20,000,000 events,
seed 42) it generates the data once with bench/reference/gen_events.py, checks that leadscore and
DuckDB (bench/reference/duckdb_fast.sql, 2 threads) give every lead the same score (to 1e-6)
and tier, then times both as whole processes, alternating, n times each, after waiting for an
idle machine. It prints min / median wall time, CPU time, peak RSS and the ratio of medians.
"""
import argparse
import csv
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
REF = os.path.join(HERE, "reference")
sys.path.insert(0, REF)
import time_runs  # noqa: E402  (whole-process timing and idle wait)

SIZES = {"S": (100_000, 2_000_000), "L": (1_000_000, 20_000_000)}
AS_OF = "2026-11-01T00:00:00Z"


def generate(data, size):
    leads, events = SIZES[size]
    out = os.path.join(data, size)
    if not os.path.exists(os.path.join(out, "events.csv")):
        subprocess.run([sys.executable, os.path.join(REF, "gen_events.py"), "--leads", str(leads), "--events",
                        str(events), "--seed", "42", "--out", out], check=True, stdout=subprocess.DEVNULL)
    return out


def commands(binary, data_dir, ours_out, duck_out):
    leadscore = [binary, "score", "--model", os.path.join(ROOT, "examples", "reference.toml"),
                 "--leads", os.path.join(data_dir, "leads.csv"), "--events", os.path.join(data_dir, "events.csv"),
                 "--as-of", AS_OF, "--out", ours_out]
    duckdb = [sys.executable, os.path.join(REF, "duckdb_score.py"), data_dir, duck_out,
              "--sql", os.path.join(REF, "duckdb_fast.sql"), "--threads", "2"]
    return leadscore, duckdb


def same_results(ours, theirs):
    with open(ours, newline="") as a, open(theirs, newline="") as b:
        ra, rb = csv.reader(a), csv.reader(b)
        assert next(ra) == ["lead_id", "score", "score_tier"] and next(rb) == ["lead_id", "score", "tier"]
        n = 0
        for x, y in zip(ra, rb, strict=True):
            if x[0] != y[0] or abs(float(x[1]) - float(y[1])) > 1e-6 or x[2] != y[2]:
                raise SystemExit(f"results differ: leadscore {x} vs DuckDB {y}")
            n += 1
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="S,L")
    ap.add_argument("-n", type=int, default=3)
    ap.add_argument("--data", default="/tmp/lsbench")
    ap.add_argument("--no-wait", action="store_true", help="do not wait for an idle machine")
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "leadscore"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "leadscore")
    for size in a.sizes.split(","):
        data_dir = generate(a.data, size)
        ours_out, duck_out = os.path.join(data_dir, "leadscore.csv"), os.path.join(data_dir, "duckdb.csv")
        ours, duck = commands(binary, data_dir, ours_out, duck_out)
        # Warm-up (page cache) and the correctness check.
        subprocess.run(ours, check=True, stderr=subprocess.DEVNULL)
        subprocess.run(duck, check=True)
        n_leads = same_results(ours_out, duck_out)
        if not a.no_wait:
            time_runs.wait_idle()
        runs = {"leadscore": [], "duckdb": []}
        for _ in range(a.n):
            runs["leadscore"].append(time_runs.run_once(ours))
            runs["duckdb"].append(time_runs.run_once(duck))
        print(f"\n{size}: {n_leads:,} leads, {SIZES[size][1]:,} events; identical scores and tiers")
        print(f"{'':10s} {'wall min':>9s} {'wall median':>12s} {'cpu median':>11s} {'peak RSS':>10s}")
        for name, r in runs.items():
            walls = [x[0] for x in r]
            print(f"{name:10s} {min(walls):8.2f}s {statistics.median(walls):11.2f}s "
                  f"{statistics.median(x[1] for x in r):10.2f}s {max(x[2] for x in r):8.0f}MiB")
        ratio = statistics.median(x[0] for x in runs["duckdb"]) / statistics.median(x[0] for x in runs["leadscore"])
        print(f"DuckDB / leadscore wall time (medians): {ratio:.2f}x")


if __name__ == "__main__":
    main()
