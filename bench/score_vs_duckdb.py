#!/usr/bin/env python3
"""`leadscore score` against DuckDB on the reference model, side by side in one run, for every
kind of lead id.

Usage (from the repository root, after `bash bench/reference/setup.sh /tmp/benchenv`):
    /tmp/benchenv/bin/python bench/score_vs_duckdb.py [--sizes S,L] [--ids seq,hex16,...] [-n 3]
        [--data /tmp/lsbench] [--binary PATH] [--no-wait]

For each size (S: 100,000 leads / 2,000,000 events; L: 1,000,000 leads / 20,000,000 events,
seed 42) it generates the data once with bench/reference/gen_events.py (lead ids 1..N in file
order: `seq`), then makes each other kind of id with bench/reference/remap_ids.py (seed 11):
`int-shuffled`, `hex16`, `sfid18`, `email`, `uuid` (all with the leads file shuffled). For each
(size, kind) it checks that leadscore and DuckDB (bench/reference/duckdb_fast.sql, 2 threads, the
lead id read as BIGINT for integer ids and VARCHAR for the others, the only difference) give every
lead the same score (to 1e-6) and tier, matching rows by lead id; then it times both as whole
processes, alternating, n times each, and prints min / median wall time, median CPU time, peak
RSS and the ratio of medians.
"""
import argparse
import csv
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
REF = os.path.join(HERE, "reference")
sys.path.insert(0, REF)
import time_runs  # noqa: E402  (whole-process timing and idle wait)

SIZES = {"S": (100_000, 2_000_000), "L": (1_000_000, 20_000_000)}
KINDS = ["seq", "int-shuffled", "hex16", "sfid18", "email", "uuid"]
INTEGER_KINDS = {"seq", "int-shuffled"}
AS_OF = "2026-11-01T00:00:00Z"


def generate(data, size, kind):
    leads, events = SIZES[size]
    seq = os.path.join(data, size, "seq")
    if not os.path.exists(os.path.join(seq, "events.csv")):
        subprocess.run([sys.executable, os.path.join(REF, "gen_events.py"), "--leads", str(leads), "--events",
                        str(events), "--seed", "42", "--out", seq], check=True, stdout=subprocess.DEVNULL)
    if kind == "seq":
        return seq
    out = os.path.join(data, size, kind)
    if not os.path.exists(os.path.join(out, "events.csv")):
        subprocess.run([sys.executable, os.path.join(REF, "remap_ids.py"), seq, out, "--kind", kind, "--seed", "11"],
                       check=True, stdout=subprocess.DEVNULL)
    return out


def commands(binary, data_dir, kind, ours_out, duck_out):
    leadscore = [binary, "score", "--model", os.path.join(ROOT, "examples", "reference.toml"),
                 "--leads", os.path.join(data_dir, "leads.csv"), "--events", os.path.join(data_dir, "events.csv"),
                 "--as-of", AS_OF, "--out", ours_out]
    duckdb = [sys.executable, os.path.join(REF, "duckdb_score.py"), data_dir, duck_out,
              "--sql", os.path.join(REF, "duckdb_fast.sql"), "--threads", "2",
              "--id-type", "BIGINT" if kind in INTEGER_KINDS else "VARCHAR"]
    return leadscore, duckdb


def read_scores(path, header):
    with open(path, newline="") as f:
        rows = csv.reader(f)
        found = next(rows)
        if found != header:
            raise SystemExit(f"{path}: header {found}, expected {header}")
        scores = {}
        for row in rows:
            if row[0] in scores:
                raise SystemExit(f"{path}: lead {row[0]} appears twice")
            scores[row[0]] = (float(row[1]), row[2])
    return scores


def same_results(ours, theirs):
    """Every lead in both outputs, with the same score (to 1e-6) and tier; rows matched by id."""
    a = read_scores(ours, ["lead_id", "score", "score_tier"])
    b = read_scores(theirs, ["lead_id", "score", "tier"])
    if a.keys() != b.keys():
        only_a, only_b = sorted(a.keys() - b.keys())[:3], sorted(b.keys() - a.keys())[:3]
        raise SystemExit(f"different leads: only leadscore has {only_a}, only DuckDB has {only_b}")
    for lead, (score, tier) in a.items():
        their_score, their_tier = b[lead]
        if abs(score - their_score) > 1e-6 or tier != their_tier:
            raise SystemExit(f"results differ for lead {lead}: leadscore {score} {tier} vs DuckDB "
                             f"{their_score} {their_tier}")
    return len(a)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="S,L")
    ap.add_argument("--ids", default=",".join(KINDS), help="kinds of lead ids, comma-separated")
    ap.add_argument("-n", type=int, default=3)
    ap.add_argument("--data", default="/tmp/lsbench")
    ap.add_argument("--binary", help="a leadscore binary to time instead of building this checkout's")
    ap.add_argument("--no-wait", action="store_true", help="do not wait for an idle machine")
    a = ap.parse_args()
    kinds = a.ids.split(",")
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise SystemExit(f"unknown id kinds {unknown}; known: {','.join(KINDS)}")
    binary = a.binary
    if binary is None:
        subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "leadscore"], cwd=ROOT, check=True)
        binary = os.path.join(ROOT, "target", "release", "leadscore")
    table = []
    for size in a.sizes.split(","):
        for kind in kinds:
            data_dir = generate(a.data, size, kind)
            ours_out, duck_out = os.path.join(data_dir, "leadscore.csv"), os.path.join(data_dir, "duckdb.csv")
            ours, duck = commands(binary, data_dir, kind, ours_out, duck_out)
            # Warm-up (page cache) and the correctness check.
            subprocess.run(ours, check=True, stderr=subprocess.DEVNULL)
            subprocess.run(duck, check=True)
            n_leads = same_results(ours_out, duck_out)
            if not a.no_wait:
                time_runs.wait_idle()
            runs = time_runs.alternating({"leadscore": ours, "duckdb": duck}, a.n)
            print(f"\n{size} {kind}: {n_leads:,} leads, {SIZES[size][1]:,} events; identical scores and tiers",
                  flush=True)
            medians = time_runs.print_runs(runs)
            ratio = medians["duckdb"] / medians["leadscore"]
            print(f"DuckDB / leadscore wall time (medians): {ratio:.2f}x", flush=True)
            table.append((size, kind, medians["leadscore"], medians["duckdb"], ratio,
                          max(x[2] for x in runs["leadscore"]), max(x[2] for x in runs["duckdb"])))
    print("\n| size | lead ids | leadscore (median) | DuckDB (median) | DuckDB / leadscore | peak RSS leadscore "
          "| peak RSS DuckDB |")
    print("|---|---|---|---|---|---|---|")
    for size, kind, ours, theirs, ratio, rss_ours, rss_theirs in table:
        print(f"| {size} | {kind} | {ours:.2f} s | {theirs:.2f} s | {ratio:.1f}x | {rss_ours:.0f} MiB "
              f"| {rss_theirs:.0f} MiB |")


if __name__ == "__main__":
    main()
