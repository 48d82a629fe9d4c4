#!/usr/bin/env bash
# CSV import into a workspace of a million leads: leads/s through POST /api/import/leads, then
# events/s through POST /api/import/events into those leads, over loopback with curl.
#
#   bash bench/reference/setup.sh /tmp/benchenv   # numpy and pandas, for the data generator
#   bash bench/service/import.sh
#
# It builds the release binary, generates the reference data set (bench/reference/gen_events.py,
# seed 42; LEADS leads, EVENTS events with a Zipf-like activity over them), splits both files into
# parts under the 64 MB an import takes, starts `leadscore serve` on a fresh data directory with
# the reference model active, imports every leads part, then every events part, one request at
# a time, and prints rows/s of each kind with the stored counts checked against the answers.
#
# Knobs (environment):
#   LEADS=1000000 EVENTS=2000000   the data set's size
#   PART_ROWS=400000               rows per request (each part stays under 64 MB)
#   PYTHON=/tmp/benchenv/bin/python
#   BIN=target/release/leadscore   SKIP_BUILD=1 uses it as it is
#   DATA=/tmp/lsimport             where the generated files are kept (reused when present)
#   KEEP=0                         1: keep the server's data directory
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
LEADS=${LEADS:-1000000}
EVENTS=${EVENTS:-2000000}
PART_ROWS=${PART_ROWS:-400000}
PYTHON=${PYTHON:-/tmp/benchenv/bin/python}
BIN=${BIN:-$root/target/release/leadscore}
SKIP_BUILD=${SKIP_BUILD:-0}
DATA=${DATA:-/tmp/lsimport}
KEEP=${KEEP:-0}

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

if [ "$SKIP_BUILD" != 1 ]; then
    say "cargo build --release -p leadscore"
    (cd "$root" && cargo build --release -p leadscore)
fi
[ -x "$BIN" ] || die "no binary at $BIN"

# --- data --------------------------------------------------------------------------------------
set_dir=$DATA/$LEADS-$EVENTS
if [ ! -f "$set_dir/events.csv" ]; then
    say "generating $LEADS leads and $EVENTS events in $set_dir"
    "$PYTHON" "$root/bench/reference/gen_events.py" --leads "$LEADS" --events "$EVENTS" --seed 42 --out "$set_dir" >/dev/null
fi
split_parts() { # FILE PREFIX: header + PART_ROWS rows per part
    rm -f "$2".*.csv
    awk -v rows="$PART_ROWS" -v prefix="$2" 'NR == 1 { header = $0; next }
        (NR - 2) % rows == 0 { if (out) close(out); out = sprintf("%s.%03d.csv", prefix, (NR - 2) / rows); print header > out }
        { print > out }' "$1"
}
split_parts "$set_dir/leads.csv" "$set_dir/leads-part"
split_parts "$set_dir/events.csv" "$set_dir/events-part"

# --- server ------------------------------------------------------------------------------------
work=$(mktemp -d /tmp/leadscore-import.XXXXXX)
data=$work/data
cp "$BIN" "$work/leadscore"
BIN=$work/leadscore
server_pid=
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [ "$KEEP" != 1 ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
admin=$("$BIN" keys create --data "$data" --workspace bench --scope admin)
"$BIN" serve --data "$data" --listen 127.0.0.1:0 >"$work/server.out" 2>"$work/server.err" &
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
curl -fsS -X POST -H "Authorization: Bearer $admin" --data-binary @"$root/examples/reference.toml" \
    "$url/api/models" >/dev/null || die "model upload failed"

# --- import ------------------------------------------------------------------------------------
import_parts() { # KIND PREFIX: prints "rows seconds"
    local kind=$1 total=0 seconds=0 part answer took imported
    for part in "$2".*.csv; do
        answer=$(curl -fsS -X POST -H "Authorization: Bearer $admin" -H 'Content-Type: text/csv' \
            --data-binary @"$part" -w '\n%{time_total}' "$url/api/import/$kind") || die "import of $part failed"
        took=$(tail -1 <<<"$answer")
        imported=$(head -1 <<<"$answer" | sed -n 's/^{"imported":\([0-9]*\).*/\1/p')
        [ -n "$imported" ] || die "unexpected answer for $part: $(head -c 300 <<<"$answer")"
        printf '  %s: %s rows in %s s\n' "$(basename "$part")" "$imported" "$took" >&2
        total=$((total + imported))
        seconds=$(awk -v a="$seconds" -v b="$took" 'BEGIN { print a + b }')
    done
    echo "$total $seconds"
}
say "importing leads ($(ls "$set_dir"/leads-part.*.csv | wc -l) parts)"
read -r leads_done leads_seconds < <(import_parts leads "$set_dir/leads-part")
say "importing events ($(ls "$set_dir"/events-part.*.csv | wc -l) parts)"
read -r events_done events_seconds < <(import_parts events "$set_dir/events-part")

count() { python3 -c 'import sqlite3,sys; print(sqlite3.connect("file:"+sys.argv[1]+"?mode=ro", uri=True).execute(sys.argv[2]).fetchone()[0])' "$data/leadscore.db" "$1"; }
stored_leads=$(count 'SELECT count(*) FROM leads WHERE merged_into IS NULL')
stored_events=$(count "SELECT count(*) FROM events WHERE type NOT IN ('identify', 'group', 'alias')")
[ "$stored_leads" -ge "$leads_done" ] || die "$leads_done leads imported but $stored_leads stored"
[ "$stored_events" = "$events_done" ] || die "$events_done events imported but $stored_events stored"

revision=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')
echo
echo "leadscore import, $revision, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores"
printf '| what | rows | seconds | rows/s |\n|---|---:|---:|---:|\n'
awk -v n="$leads_done" -v s="$leads_seconds" 'BEGIN { printf "| leads (`POST /api/import/leads`) | %d | %.1f | %.0f |\n", n, s, n / s }'
awk -v n="$events_done" -v s="$events_seconds" 'BEGIN { printf "| events into those leads (`POST /api/import/events`) | %d | %.1f | %.0f |\n", n, s, n / s }'
echo "stored: $stored_leads leads, $stored_events events; data directory $(du -sh "$data" | cut -f1)"
