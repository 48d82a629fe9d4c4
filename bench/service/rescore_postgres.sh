#!/usr/bin/env bash
# Rescoring every lead after an activation on PostgreSQL, by one instance and by two sharing the
# database (each takes ranges of the leads), in one run.
#
#     bash bench/service/rescore_postgres.sh [DIR]
#
# DIR (default /tmp/leadscore-rescore-pg-bench) holds a data directory made by the rescore_data
# example (LEADS leads, default 100,000, with 10.5 events each on average and the reference model
# active), copied once into a fresh PostgreSQL database (DATABASE, default
# postgres://postgres@127.0.0.1:5432/leadscore_rescore_bench) with `leadscore migrate-store`.
# Versions 2 and 3 are the reference model with 20 and 25 points for the pricing page instead of
# 15 (as bench/service/rescore.sh); version 2 is activated once to compute every lead's scores
# (not reported). Then for each count of INSTANCES (default "1 2"), that many `serve` processes run
# on the database and ROUNDS (default 2) activations of versions 3 and 2 in turn are made through
# the first one, each timed from the rescoring's `started_at` to its `finished_at`
# (`GET /api/models`, polled every 0.2 s), with the leads each instance went through
# (`leadscore_rescoring_leads_rescored_here_total`). No other load runs. BIN (default
# target/release/leadscore) is the binary measured. Figures are in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR=${1:-/tmp/leadscore-rescore-pg-bench}
LEADS=${LEADS:-100000}
DATABASE=${DATABASE:-postgres://postgres@127.0.0.1:5432/leadscore_rescore_bench}
INSTANCES=${INSTANCES:-1 2}
ROUNDS=${ROUNDS:-2}
BIN=${BIN:-target/release/leadscore}
PORT=${PORT:-8690}
ADMIN_URL=${DATABASE%/*}/postgres
NAME=${DATABASE##*/}

if [ -z "${NO_BUILD:-}" ]; then
    cargo build --release -q -p leadscore-server --example rescore_data
    cargo build --release -q -p leadscore
fi
if [ ! -f "$DIR/built" ]; then
    rm -rf "$DIR/data"
    mkdir -p "$DIR/data"
    target/release/examples/rescore_data "$DIR/data" "$LEADS"
    psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $NAME" -c "CREATE DATABASE $NAME"
    "$BIN" migrate-store --from "$DIR/data" --to "$DATABASE" | tail -3
    "$BIN" keys create --database "$DATABASE" --workspace bench --scope admin | grep -o 'lsk_[^[:space:]]*' | head -1 >"$DIR/admin-key"
    touch "$DIR/built"
fi
ADMIN=$(cat "$DIR/admin-key")

SERVERS=()
stop() { for pid in "${SERVERS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; SERVERS=(); }
trap stop EXIT
start() {
    local n
    for n in $(seq "$1"); do
        "$BIN" serve --database "$DATABASE" --listen "127.0.0.1:$((PORT + n))" >"$DIR/serve-$n.out" 2>"$DIR/serve-$n.err" &
        SERVERS+=($!)
        for _ in $(seq 300); do curl -sf "http://127.0.0.1:$((PORT + n))/healthz" >/dev/null && break; sleep 0.2; done
    done
}
BASE="http://127.0.0.1:$((PORT + 1))"
# shellcheck source=lib.sh
. bench/service/lib.sh
rescored_here() { curl -sf "http://127.0.0.1:$((PORT + $1))/metrics" | awk '/^leadscore_rescoring_leads_rescored_here_total /{print $2}'; }

start 1
upload_variants
if [ "$(rescoring | cut -d' ' -f1)" = None ]; then
    api -o /dev/null -X POST "$BASE/api/models/2/activate"
fi
wait_for_end >/dev/null
stop

for count in $INSTANCES; do
    start "$count"
    for round in $(seq "$ROUNDS"); do
        if [ "$(active)" = 3 ]; then version=2; else version=3; fi
        before=()
        for n in $(seq "$count"); do before+=("$(rescored_here "$n")"); done
        api -o /dev/null -X POST "$BASE/api/models/$version/activate"
        read -r done total started finished < <(wait_for_end)
        shares=""
        for n in $(seq "$count"); do shares+=" instance $n: $(( $(rescored_here "$n") - ${before[$((n - 1))]} ))"; done
        python3 - "$count" "$round" "$version" "$done" "$total" "$started" "$finished" "$shares" "$(cut -d' ' -f1 /proc/loadavg)" <<'PY'
import sys
from datetime import datetime
count, round_, version, done, total, started, finished, shares, load = sys.argv[1:]
parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
seconds = parse(finished) - parse(started)
print(f"{count} instance(s), round {round_} (v{version}): {done}/{total} leads in {seconds:.1f} s, "
      f"{seconds * 1e6 / max(int(done), 1):.0f} µs per lead;{shares}; load average {load}")
PY
    done
    stop
done
