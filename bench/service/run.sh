#!/usr/bin/env bash
# Load benchmark of the leadscore HTTP service's ingestion: events/s through POST /v1/batch and
# single-event POST /v1/track requests/s with latency percentiles, measured with wrk on loopback.
#
#   bash bench/service/run.sh
#
# It builds the release binary, creates a fresh data directory under /tmp with an ingest and an
# admin key, starts `leadscore serve` on a free loopback port, uploads examples/reference.toml,
# runs wrk (bench/service/segment.lua gives every message a unique messageId), checks the stored
# event count against what wrk says was accepted, prints a results table and the exact commands,
# and stops the server.
#
# Knobs (environment):
#   BATCH_SIZES="100 500"   messages per /v1/batch request (one wrk run each)
#   BATCH_CONNS=8           connections for the batch runs
#   BATCH_DURATION=15       seconds per batch run
#   TRACK_CONNS="10 50"     connections for the /v1/track runs (one run each)
#   TRACK_DURATION=20       seconds per track run
#   USERS=5000              distinct userIds
#   ZIPF=0                  0: userIds drawn uniformly; S > 0: by Zipf's law of exponent S (real traffic)
#   IDS=sequential          messageIds: sequential (RUN-thread-counter-index) or random (UUID-like, as
#                           Segment's libraries send; every insert then lands at a random place in
#                           the message id index)
#   THREADS=2               wrk threads
#   WARMUP=3                seconds of unreported warm-up (batch of 100) first; 0 skips it
#   PROFILE=0               1: `perf record --call-graph dwarf` the server in each run (perf-*.txt in the work dir)
#   SKIP_BUILD=0            1: use the existing binary (BIN=... to choose another)
#   KEEP=0                  1: keep the data directory (it can reach a few hundred MB)
#   SERVE_ARGS=             more arguments for `leadscore serve` (e.g. "--rescore-every 1")
#   POSTGRES=0              1: the service stores in a fresh PostgreSQL database on POSTGRES_SERVER
#                           (default postgres://postgres@127.0.0.1:5432/postgres), dropped at the end
#                           unless KEEP=1; the server's CPU then leaves out PostgreSQL's own (in "other")
#
# Caveat: the load generator runs on the same machine and competes with the server for its cores;
# the table shows the server's and the machine's CPU use for each run so that this can be judged.
# On the 2-core VM this was written on, the same binary varied by about +-25% from run to run over
# an hour: compare two builds with alternating runs (BIN=... SKIP_BUILD=1), not against old numbers.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

BATCH_SIZES=${BATCH_SIZES:-"100 500"}
BATCH_CONNS=${BATCH_CONNS:-8}
BATCH_DURATION=${BATCH_DURATION:-15}
TRACK_CONNS=${TRACK_CONNS:-"10 50"}
TRACK_DURATION=${TRACK_DURATION:-20}
USERS=${USERS:-5000}
ZIPF=${ZIPF:-0}
IDS=${IDS:-sequential}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-3}
PROFILE=${PROFILE:-0}
SKIP_BUILD=${SKIP_BUILD:-0}
KEEP=${KEEP:-0}
SERVE_ARGS=${SERVE_ARGS:-}
# PROFILE=1 builds the `profiling` profile: the release build with debug information, which
# `perf record --call-graph dwarf` needs (the release profile ships without it).
if [ "$PROFILE" = 1 ]; then cargo_profile=profiling; else cargo_profile=release; fi
BIN=${BIN:-$root/target/$cargo_profile/leadscore}

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# --- tools ------------------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing wrk (Debian package)"
        apt-get install -y wrk >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y wrk >/dev/null; }
    fi
    command -v wrk >/dev/null || die "wrk is needed: apt-get install -y wrk"
fi
POSTGRES=${POSTGRES:-0}
POSTGRES_SERVER=${POSTGRES_SERVER:-postgres://postgres@127.0.0.1:5432/postgres}
if [ "$POSTGRES" = 1 ]; then
    command -v psql >/dev/null || die "POSTGRES=1 needs psql"
    count_events() { psql "$pg_url" -Atc 'SELECT count(*) FROM events'; }
elif command -v sqlite3 >/dev/null; then
    count_events() { sqlite3 "file:$data/leadscore.db?mode=ro" 'SELECT count(*) FROM events'; }
else
    count_events() {
        python3 -c 'import sqlite3,sys; print(sqlite3.connect("file:"+sys.argv[1]+"?mode=ro", uri=True).execute("SELECT count(*) FROM events").fetchone()[0])' \
            "$data/leadscore.db"
    }
fi
if [ "$PROFILE" = 1 ]; then command -v perf >/dev/null || die "PROFILE=1 needs perf (apt-get install -y linux-perf)"; fi

# --- build ------------------------------------------------------------------------------------
if [ "$SKIP_BUILD" != 1 ]; then
    say "cargo build --profile $cargo_profile -p leadscore"
    (cd "$root" && cargo build --profile "$cargo_profile" -p leadscore)
fi
[ -x "$BIN" ] || die "no binary at $BIN"

# --- fresh data directory, keys, server ---------------------------------------------------------
work=$(mktemp -d /tmp/leadscore-bench.XXXXXX)
data=$work/data
# A private copy, so that a concurrent rebuild of target/release cannot change what is measured.
cp "$BIN" "$work/leadscore"
revision=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')
if [ -n "$(git -C "$root" status --porcelain -- crates 2>/dev/null)" ]; then revision="$revision+dirty"; fi
BIN=$work/leadscore
server_pid=
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [ "$KEEP" != 1 ]; then
        rm -rf "$data"
        if [ "$POSTGRES" = 1 ]; then psql "$POSTGRES_SERVER" -qc "DROP DATABASE IF EXISTS $pg_name WITH (FORCE)" || true; fi
    fi
}
trap cleanup EXIT
# Where the service stores: the data directory, or a database of this run's own.
store_args=(--data "$data")
if [ "$POSTGRES" = 1 ]; then
    pg_name=leadscore_bench_$$
    pg_url="${POSTGRES_SERVER%/*}/$pg_name"
    psql "$POSTGRES_SERVER" -qc "CREATE DATABASE $pg_name" || die "cannot create a database on $POSTGRES_SERVER"
    store_args=(--database "$pg_url")
fi

# The disk's cost of a durable write, on the data directory's file system: 4 KiB writes with O_DSYNC.
fsync_cost=$(cd "$work" && dd if=/dev/zero of=fsync-probe bs=4k count=500 oflag=dsync 2>&1 | awk '
    /copied/ { for (i = 1; i <= NF; i++) if ($i == "s,") printf "%.0f µs per 4 KiB O_DSYNC write (dd, 500 writes)", 1e6 * $(i - 1) / 500 }')
rm -f "$work/fsync-probe"
say "fsync cost: $fsync_cost"
say "data directory $data"
admin=$("$BIN" keys create "${store_args[@]}" --workspace bench --scope admin)
ingest=$("$BIN" keys create "${store_args[@]}" --workspace bench --scope ingest)

# shellcheck disable=SC2086 # SERVE_ARGS is a list of arguments
"$BIN" serve "${store_args[@]}" --listen 127.0.0.1:0 $SERVE_ARGS >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
addr=
for _ in $(seq 300); do
    addr=$(sed -n 's|^leadscore listening on http://||p' "$work/server.out" | head -1)
    [ -n "$addr" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.err" >&2; die "the server exited"; }
    sleep 0.1
done
[ -n "$addr" ] || die "the server did not start (see $work/server.err)"
url=http://$addr
say "server pid $server_pid listening on $url"

curl -fsS -X POST -H "Authorization: Bearer $admin" --data-binary @"$root/examples/reference.toml" \
    "$url/api/models" >"$work/model.json" || die "model upload failed"
echo "model uploaded: $(head -c 200 "$work/model.json")" >&2

# --- sanity: a repeated messageId is a no-op, so the event count is a valid check ------------------
stamp=$(date -u -d '-1 min' +%Y-%m-%dT%H:%M:%SZ)
probe='{"userId":"probe","event":"page_view","messageId":"probe-1","timestamp":"'"$stamp"'","properties":{}}'
first=$(curl -fsS -H "Authorization: Bearer $ingest" -H 'Content-Type: application/json' -d "$probe" "$url/v1/track")
second=$(curl -fsS -H "Authorization: Bearer $ingest" -H 'Content-Type: application/json' -d "$probe" "$url/v1/track")
[[ $first == *'"duplicate":false'* && $second == *'"duplicate":true'* ]] \
    || die "duplicate probe: unexpected answers: $first / $second"
[ "$(count_events)" = 1 ] || die "duplicate probe: expected 1 stored event, found $(count_events)"
echo "duplicate check: the same messageId twice stores 1 event (second answer duplicate:true)" >&2

# --- measurement ------------------------------------------------------------------------------
hz=$(getconf CLK_TCK)
ncpu=$(nproc)
writer_tid=
for task in /proc/"$server_pid"/task/*; do
    if [ "$(cat "$task/comm" 2>/dev/null)" = store-writer ]; then writer_tid=${task##*/}; fi
done
ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "$1"; }   # utime + stime of a /proc stat file
# The SQLite writer thread's ticks (0 on PostgreSQL, whose store has no writer thread).
writer_ticks() { if [ -n "$writer_tid" ]; then ticks /proc/"$server_pid"/task/"$writer_tid"/stat; else echo 0; fi; }
machine() { awk '/^cpu / { print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8 }' /proc/stat; }  # busy total

alive() { kill -0 "$server_pid" 2>/dev/null && [ -r /proc/"$server_pid"/stat ]; }
gone() {
    local status=0
    wait "$server_pid" || status=$?
    server_pid=
    tail -5 "$work/server.err" >&2
    die "the server stopped $1 (exit status $status; above 128 = killed by signal status-128)"
}
io_written() { awk '/^write_bytes/ { print $2 }' /proc/"$server_pid"/io; }
# fsync counts need perf and the syscall tracepoints; without them the columns say "-".
count_fsyncs=0
if command -v perf >/dev/null \
    && perf stat -e syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync -x, -o /dev/null -- true 2>/dev/null; then
    count_fsyncs=1
fi
run_id=r$(date +%s)
rows=()
details=()
commands=()

# run NAME BATCH CONNS SECONDS [unreported]
run() {
    local name=$1 batch=$2 conns=$3 seconds=$4 unreported=${5:-}
    local per=$((batch > 0 ? batch : 1))
    local cmd=(wrk -t"$THREADS" -c"$conns" -d"${seconds}s" --timeout 10s --latency -s "$here/segment.lua" "$url"
        -- "$ingest" "$run_id-$name" "$batch" "$USERS" "$stamp" "$IDS" "$ZIPF")
    say "$name: ${cmd[*]}"
    alive || gone "before $name"
    local before s0 w0 m0 io0 perf_pid= stat_pid=
    before=$(count_events)
    s0=$(ticks /proc/"$server_pid"/stat)
    w0=$(writer_ticks)
    m0=$(machine)
    io0=$(io_written)
    rm -f "$work/fsync-$name.csv"
    if [ "$count_fsyncs" = 1 ] && [ -z "$unreported" ]; then
        perf stat -e syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync -x, -o "$work/fsync-$name.csv" \
            -p "$server_pid" -- sleep "$seconds" >/dev/null 2>&1 &
        stat_pid=$!
    fi
    if [ "$PROFILE" = 1 ] && [ -z "$unreported" ]; then
        perf record -e cpu-clock -F 499 --call-graph dwarf,8192 -p "$server_pid" -o "$work/perf-$name.data" -- sleep "$seconds" \
            >/dev/null 2>"$work/perf-$name.log" &
        perf_pid=$!
    fi
    local TIMEFORMAT='%U %S'
    { time "${cmd[@]}" >"$work/$name.txt" 2>&1 || { cat "$work/$name.txt" >&2; die "wrk failed"; }; } 2>"$work/$name.time"
    alive || gone "during $name"
    local s1 w1 m1 io1
    s1=$(ticks /proc/"$server_pid"/stat)
    w1=$(writer_ticks)
    m1=$(machine)
    io1=$(io_written)
    if [ -n "$perf_pid" ]; then wait "$perf_pid" || true; fi
    if [ -n "$stat_pid" ]; then wait "$stat_pid" || true; fi
    local fsyncs=-1
    if [ -s "$work/fsync-$name.csv" ]; then
        fsyncs=$(awk -F, '/sys_enter_f/ { n += $1 } END { print n + 0 }' "$work/fsync-$name.csv")
    fi
    sleep 1 # requests wrk abandoned at its deadline still commit
    local after
    after=$(count_events)
    cat "$work/$name.txt" >&2
    local line
    line=$(grep '^WRK_RESULT' "$work/$name.txt") || die "no WRK_RESULT from wrk"
    local -A r
    local kv
    for kv in ${line#WRK_RESULT }; do r[${kv%%=*}]=${kv#*=}; done
    local errors=$((r[err_connect] + r[err_read] + r[err_write] + r[err_status] + r[err_timeout]))
    local ok=$((r[requests] - r[err_status]))
    local expected=$((ok * per)) stored=$((after - before))
    local check=ok
    # wrk stops counting at its deadline; up to one request per connection may land after it.
    if [ "$stored" -lt "$expected" ] || [ "$stored" -gt $((expected + conns * per)) ]; then check=MISMATCH; fi
    if [ -n "$unreported" ]; then return; fi
    read -r mb0 mt0 <<<"$m0"
    read -r mb1 mt1 <<<"$m1"
    local row detail
    row=$(awk -v name="$name" -v conns="$conns" -v req="${r[requests]}" -v us="${r[duration_us]}" \
        -v p50="${r[p50_us]}" -v p99="${r[p99_us]}" -v errors="$errors" -v stored="$stored" \
        -v expected="$expected" -v check="$check" -v threads="$THREADS" 'BEGIN {
            s = us / 1e6
            printf "| %s | wrk -t%d | %d | %.1f s | %.0f | %.0f | %.2f ms | %.2f ms | %d | %d/%d %s |\n",
                name, threads, conns, s, req / s, expected / s, p50 / 1000, p99 / 1000, errors, stored, expected, check
        }')
    detail=$(awk -v name="$name" -v us="${r[duration_us]}" -v expected="$expected" -v ds=$((s1 - s0)) \
        -v dw=$((w1 - w0)) -v hz="$hz" -v mb=$((mb1 - mb0)) -v mt=$((mt1 - mt0)) -v ncpu="$ncpu" \
        -v wrk_cpu="$(awk '{ print $1 + $2 }' "$work/$name.time")" -v fsyncs="$fsyncs" -v io=$((io1 - io0)) \
        -v seconds="$seconds" 'BEGIN {
            s = us / 1e6
            server = 100 * ds / hz / s; machine = ncpu * 100 * mb / mt; load = 100 * wrk_cpu / s
            other = machine - server - load; if (other < 0) other = 0
            if (fsyncs >= 0) { f = sprintf("%.0f", fsyncs / seconds); e = sprintf("%.1f", expected / (fsyncs > 0 ? fsyncs : 1)) }
            else { f = "-"; e = "-" }
            printf "| %s | %.0f%% | %.0f%% | %.0f%% | %.0f%% | %.0f%% of %d%% | %.0f | %s | %s | %.0f |\n",
                name, server, 100 * dw / hz / s, load, other, machine, 100 * ncpu,
                1e6 * ds / hz / (expected > 0 ? expected : 1), f, e, io / (expected > 0 ? expected : 1)
        }')
    details+=("$detail")
    rows+=("$row")
    commands+=("${cmd[*]}")
    if [ -n "$perf_pid" ]; then
        perf report -i "$work/perf-$name.data" --stdio --no-children --sort comm,dso,sym --percent-limit 0.5 -g none \
            >"$work/perf-$name.txt" 2>/dev/null || true
    fi
}

if [ "$WARMUP" -gt 0 ]; then run warmup 100 "$BATCH_CONNS" "$WARMUP" unreported; fi
for size in $BATCH_SIZES; do run "batch$size" "$size" "$BATCH_CONNS" "$BATCH_DURATION"; done
for conns in $TRACK_CONNS; do run "track-c$conns" 0 "$conns" "$TRACK_DURATION"; done

total=$(count_events)
db_size=$(du -sh "$data" 2>/dev/null | cut -f1 || true)

# --- report -----------------------------------------------------------------------------------
{
    echo
    echo "leadscore ingestion benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(uname -r)"
    if [ "$POSTGRES" = 1 ]; then
        echo "server: $BIN (git $revision), PostgreSQL database $pg_name ($(psql "$pg_url" -Atc "SELECT pg_size_pretty(pg_database_size(current_database()))"), $total events)"
    else
        echo "server: $BIN (git $revision), data $data ($db_size, $total events)"
    fi
    echo "model: examples/reference.toml; $USERS distinct userIds (Zipf exponent $ZIPF, 0: uniform); every messageId unique ($IDS)"
    echo "disk: $fsync_cost"
    echo
    echo "| test | tool | conns | duration | requests/s | events/s | p50 | p99 | errors | stored/expected events |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "events/s: events in the answered 2xx requests over wrk's duration. stored/expected: the growth of"
    echo "sqlite3 \"SELECT count(*) FROM events\" against them (ok = no message was a duplicate no-op; stored may exceed"
    echo "expected by what was in flight at wrk's deadline). p50/p99 are wrk's, closed loop (each connection waits for"
    echo "its answer before sending again)."
    echo
    echo "| test | server CPU | writer thread | wrk CPU | other CPU | machine CPU | server CPU µs/event | fsyncs/s | events/fsync | disk bytes/event |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${details[@]}"
    echo
    echo "CPU: 100% = one core; writer = the store-writer thread (all SQLite work); wrk shares the $(nproc) cores;"
    echo "other = anything else on the machine meanwhile (should be ~0%; if not, rerun on a quiet machine)."
    echo "fsyncs (fsync + fdatasync calls of the server, perf tracepoints) ~ commits + checkpoints. disk bytes: the"
    echo "server's write_bytes in /proc/PID/io (WAL + checkpoint writes) per accepted event."
    echo
    echo "commands:"
    printf '  %s\n' "${commands[@]}"
    echo "logs: $work"
    if [ "$PROFILE" = 1 ]; then echo "profiles: $work/perf-*.txt"; fi
} | tee "$work/results.md"

say "stopping the server"
kill -TERM "$server_pid"
wait "$server_pid" || true
server_pid=
