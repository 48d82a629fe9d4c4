#!/usr/bin/env bash
# Rescoring a million leads after an activation, while wrk drives POST /v1/track: how long the
# rescoring takes to its end, and /v1/track's latency during it, in the same run; then how long
# the periodic time-driven pass (`--rescore-every`) takes over the same leads.
#
#     bash bench/service/rescore.sh [DIR] [ACTIVATIONS]
#
# DIR (default /tmp/leadscore-rescore-bench) holds the data of the rescore_data example (built
# when missing: 1,000,000 leads with 1 to 20 events each, the reference model active, no scores
# yet). Versions 2 and 3 are the reference model with 20 and 25 points for the pricing page
# instead of 15; the first activation (version 2, not reported: it computes every lead's first
# scores) is followed by ACTIVATIONS (default 2) activations of versions 3 and 2 in turn, each
# timed from the rescoring's `started_at` to its `finished_at` (`GET /api/models`, polled every
# 0.2 s) while wrk sends single events at TRACK_CONNS (10) connections in windows of WINDOW (5)
# seconds, one wrk run per window until the rescoring ends (a window's p99 is over that window;
# the last one may run past the end), with the server's CPU time and its writer thread's over it
# (the machine is shared: CPU time per lead moves less with its load than the time does). Then
# the server is started again with `--rescore-every PERIOD` (30 s) and the first periodic pass is
# timed from its log line (PERIODIC=0 skips it). A rescoring left unfinished by a stop is waited
# for first (it resumes at start). BIN (default
# target/release/leadscore) is the binary measured; PROFILE=1 records the server with
# `perf record --call-graph dwarf` for 20 s of the first timed rescoring (perf-rescore.data in DIR;
# the release build's symbols and unwind tables are enough for `perf report --children`).
# Figures and the machine are in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR=${1:-/tmp/leadscore-rescore-bench}
ACTIVATIONS=${2:-2}
PORT=${PORT:-8679}
BASE="http://127.0.0.1:$PORT"
BIN=${BIN:-target/release/leadscore}
TRACK_CONNS=${TRACK_CONNS:-10}
WINDOW=${WINDOW:-5}
PERIOD=${PERIOD:-30}
PROFILE=${PROFILE:-0}
PERIODIC=${PERIODIC:-1}

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }
if [ -z "${NO_BUILD:-}" ]; then
    cargo build --release -q -p leadscore-server --example rescore_data
    cargo build --release -q -p leadscore
fi
if [ ! -f "$DIR/built" ]; then
    mkdir -p "$DIR"
    target/release/examples/rescore_data "$DIR"
    touch "$DIR/built"
fi
if [ ! -f "$DIR/admin-key" ]; then
    "$BIN" keys create --data "$DIR" --workspace bench --scope admin | grep -o 'lsk_[^[:space:]]*' | head -1 >"$DIR/admin-key"
    "$BIN" keys create --data "$DIR" --workspace bench --scope ingest | grep -o 'lsk_[^[:space:]]*' | head -1 >"$DIR/ingest-key"
fi
ADMIN=$(cat "$DIR/admin-key")
INGEST=$(cat "$DIR/ingest-key")

SERVER=
stop() { if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; SERVER=; fi; }
trap stop EXIT
serve() {
    "$BIN" serve --data "$DIR" --listen "127.0.0.1:$PORT" --rescore-every "$1" >"$DIR/serve.out" 2>"$DIR/serve.err" &
    SERVER=$!
    for _ in $(seq 300); do curl -sf "$BASE/healthz" >/dev/null && return; sleep 0.2; done
    echo "the server did not start (see $DIR/serve.err)" >&2
    exit 1
}
ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "$1"; }   # utime + stime of a /proc stat file
writer_tid() { grep -l '^store-writer$' /proc/"$SERVER"/task/*/comm | head -1 | cut -d/ -f5; }
# shellcheck source=lib.sh
. bench/service/lib.sh

serve 1000000
upload_variants


# activate VERSION LABEL [timed]
activate() {
    local version=$1 label=$2 timed=${3:-}
    local t0 t1 perf_pid= windows=() cpu0 cpu1 w0 w1
    cpu0=$(ticks /proc/"$SERVER"/stat)
    w0=$(ticks /proc/"$SERVER"/task/"$(writer_tid)"/stat)
    t0=$(date +%s.%N)
    api -o /dev/null -X POST "$BASE/api/models/$version/activate"
    if [ -n "$timed" ] && [ "$PROFILE" = 1 ] && [ "$label" = first ]; then
        perf record -e cpu-clock -F 499 --call-graph dwarf,16384 -p "$SERVER" -o "$DIR/perf-rescore.data" -- sleep 20 \
            >/dev/null 2>"$DIR/perf-rescore.log" &
        perf_pid=$!
    fi
    if [ -n "$timed" ]; then
        local n=0 run_id
        run_id=r$(date +%s)
        while true; do
            read -r _ _ _ finished < <(rescoring)
            [ "$finished" != None ] && break
            n=$((n + 1))
            wrk -t2 -c"$TRACK_CONNS" -d"${WINDOW}s" --timeout 10s --latency -s bench/service/segment.lua "$BASE" \
                -- "$INGEST" "$run_id-$n" 0 1000000 "$(date -u -d '-1 min' +%Y-%m-%dT%H:%M:%SZ)" >"$DIR/wrk-$label-$n.txt" 2>&1
            windows+=("$(sed -n 's/^WRK_RESULT requests=\([0-9]*\) duration_us=\([0-9]*\).* p50_us=\([0-9]*\) p90_us=[0-9]* p99_us=\([0-9]*\) max_us=\([0-9]*\).*/\1 requests, p50 \3 µs, p99 \4 µs, max \5 µs/p' "$DIR/wrk-$label-$n.txt")")
        done
    fi
    local result
    result=$(wait_for_end)
    t1=$(date +%s.%N)
    cpu1=$(ticks /proc/"$SERVER"/stat)
    w1=$(ticks /proc/"$SERVER"/task/"$(writer_tid)"/stat)
    [ -n "$perf_pid" ] && wait "$perf_pid" || true
    read -r done total started finished <<<"$result"
    python3 - "$label" "$version" "$done" "$total" "$started" "$finished" "$t0" "$t1" "$((cpu1 - cpu0))" "$((w1 - w0))" "$(getconf CLK_TCK)" "$(cut -d' ' -f1 /proc/loadavg)" <<'PY'
import sys
from datetime import datetime
label, version, done, total, started, finished, t0, t1, cpu, writer, hz, load = sys.argv[1:]
parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
print(f"activation {label} (v{version}): {done}/{total} leads rescored in {parse(finished) - parse(started):.1f} s "
      f"(server's started_at to finished_at; {float(t1) - float(t0):.1f} s from the request to seeing it finished); "
      f"server CPU {int(cpu) / int(hz):.1f} s, of it the writer thread {int(writer) / int(hz):.1f} s; load average {load}")
PY
    local i=1
    for w in "${windows[@]}"; do echo "  /v1/track window $i (${WINDOW} s, $TRACK_CONNS connections): $w"; i=$((i + 1)); done
}

if [ "$(rescoring | cut -d' ' -f1)" = None ]; then
    activate 2 setup
else
    # A rescoring cut short by a stop resumes at start: activations are refused until it ends.
    wait_for_end >/dev/null
fi
for i in $(seq "$ACTIVATIONS"); do
    if [ "$(active)" = 3 ]; then version=2; else version=3; fi
    if [ "$i" = 1 ]; then label=first; else label=$i; fi
    activate "$version" "$label" timed
done
stop

if [ "$PERIODIC" = 1 ]; then
    serve "$PERIOD"
    echo "periodic pass: waiting ${PERIOD} s for it to start"
    for _ in $(seq 1200); do grep -q 'periodic rescoring pass finished' "$DIR/serve.err" && break; sleep 0.5; done
    grep 'periodic rescoring pass finished' "$DIR/serve.err" | head -1 | sed 's/\x1b\[[0-9;]*m//g'
    stop
fi
