#!/usr/bin/env bash
# What PostgreSQL itself does with the transactions leadscore's ingestion makes, measured with
# pgbench on leadscore's own schema: the ceiling the service on PostgreSQL is compared with.
#
#     bash bench/service/pgbench_ceiling.sh
#
# It creates a database (POSTGRES_SERVER, default the local server; dropped at the end), applies
# leadscore's schema (`leadscore keys create --database`, which migrates), stores USERS (5000)
# leads with two scores each, then runs two pgbench scripts for DURATION (20) seconds each:
# - `single`, CLIENTS (10) clients: one event per transaction, as `POST /v1/track` makes it: the
#   lead locked and its scores read, the event inserted with conflict detection on its message
#   id, the lead's row and its two score rows updated, committed;
# - `batch`, BATCH_CLIENTS (8) clients: BATCH (100) events of random leads per transaction, as
#   `POST /v1/batch` makes it: the leads locked in id order in one statement, their scores read in
#   one, the events inserted in one, the lead rows and the score rows updated in one each.
# Prints transactions/s and events/s of each (pgbench's own report is kept in the work directory).
# BIN is the leadscore binary (default target/release/leadscore). Figures in docs/benchmarks.md.
#
# SERVICE=1 also serves `leadscore serve --database` on a second fresh database, and measures it
# against pgbench side by side: ROUNDS (5) rounds, each of four runs of SECONDS_PER_RUN (10)
# seconds taking turns (pgbench single, the service's `POST /v1/track` at CLIENTS connections,
# pgbench batch, the service's `POST /v1/batch` of BATCH at BATCH_CLIENTS connections; which of
# the two goes first changes every round), so that the machine's drift over minutes falls on both
# alike. The service's load is wrk with segment.lua (2 threads, USERS user ids drawn uniformly,
# random message ids); its leads are all created in a warm-up first. Prints each round's figures,
# the service's share of pgbench in each, and the requests the service stored per ingestion
# transaction during its single events (from its /metrics: the requests that wait for one of
# its `--database-writers` transactions go together into the next).
set -euo pipefail
cd "$(dirname "$0")/../.."
POSTGRES_SERVER=${POSTGRES_SERVER:-postgres://postgres@127.0.0.1:5432/postgres}
BIN=${BIN:-target/release/leadscore}
USERS=${USERS:-5000}
DURATION=${DURATION:-20}
CLIENTS=${CLIENTS:-10}
BATCH_CLIENTS=${BATCH_CLIENTS:-8}
BATCH=${BATCH:-100}
SERVICE=${SERVICE:-0}
ROUNDS=${ROUNDS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}

command -v pgbench >/dev/null || { echo "pgbench is needed (Debian: postgresql-client)" >&2; exit 1; }
[ -x "$BIN" ] || { echo "no binary at $BIN: cargo build --release -p leadscore" >&2; exit 1; }
work=$(mktemp -d /tmp/leadscore-pgbench.XXXXXX)
name=leadscore_pgbench_$$
url="${POSTGRES_SERVER%/*}/$name"
service_name=leadscore_pgbench_service_$$
server_pid=
cleanup() {
    [ -z "$server_pid" ] || { kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; } || true
    for database in "$name" "$service_name"; do
        psql "$POSTGRES_SERVER" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
    done
}
trap cleanup EXIT
psql "$POSTGRES_SERVER" -qc "CREATE DATABASE $name"

"$BIN" keys create --database "$url" --workspace bench --scope ingest >/dev/null
psql "$url" -q -v ON_ERROR_STOP=1 <<SQL
INSERT INTO leads (id, workspace_id, user_id, attributes, created_at, updated_at, state)
    SELECT i, 1, 'u' || i, '{"job_title": "VP Marketing", "industry": "Software"}', 0, 0, repeat('s', 200)
    FROM generate_series(1, $USERS) i;
SELECT setval('lead_ids', $USERS) \g /dev/null
INSERT INTO lead_scores (lead_id, score, value, tier, model_id, evaluated_at)
    SELECT i, s, 10, 'cold', 1, 0 FROM generate_series(1, $USERS) i, unnest(ARRAY['fit', 'intent']) s;
VACUUM ANALYZE;
SQL

cat >"$work/single.sql" <<SQL
\set u random(1, $USERS)
BEGIN;
SELECT id, state, last_event_id FROM leads WHERE workspace_id = 1 AND user_id = 'u' || :u FOR UPDATE;
SELECT score, value, tier FROM lead_scores WHERE lead_id = :u;
INSERT INTO events (workspace_id, lead_id, message_id, type, at, received_at, properties)
    VALUES (1, :u, md5(random()::text || clock_timestamp()::text), 'page_view', 1, 2, '{"url": "/pricing"}')
    ON CONFLICT (workspace_id, message_id) DO NOTHING RETURNING id \gset
UPDATE leads SET state = md5(random()::text) || repeat('s', 168), updated_at = 2, last_event_at = 1, last_event_id = :id
    WHERE id = :u;
UPDATE lead_scores SET value = value + 1, evaluated_at = 2 WHERE lead_id = :u AND score IN ('fit', 'intent');
COMMIT;
SQL

# A batch: BATCH random leads (repeats allowed, as in real traffic), each with one event.
{
    for i in $(seq 1 "$BATCH"); do echo "\\set u$i random(1, $USERS)"; done
    ids=$(for i in $(seq 1 "$BATCH"); do printf ':u%s,' "$i"; done)
    ids=${ids%,}
    echo "BEGIN;"
    echo "SELECT id, state, last_event_id FROM leads WHERE workspace_id = 1 AND id = ANY(ARRAY[$ids]) ORDER BY id FOR UPDATE;"
    echo "SELECT lead_id, score, value, tier FROM lead_scores WHERE lead_id = ANY(ARRAY[$ids]);"
    echo "INSERT INTO events (workspace_id, lead_id, message_id, type, at, received_at, properties)"
    echo "    SELECT 1, u, md5(random()::text || clock_timestamp()::text || n), 'page_view', 1, 2, '{\"url\": \"/pricing\"}'"
    echo "    FROM unnest(ARRAY[$ids]) WITH ORDINALITY AS t(u, n)"
    echo "    ON CONFLICT (workspace_id, message_id) DO NOTHING;"
    echo "UPDATE leads SET state = md5(random()::text) || repeat('s', 168), updated_at = 2, last_event_at = 1"
    echo "    WHERE id IN (SELECT DISTINCT unnest(ARRAY[$ids]));"
    echo "UPDATE lead_scores SET value = value + 1, evaluated_at = 2"
    echo "    WHERE lead_id IN (SELECT DISTINCT unnest(ARRAY[$ids])) AND score IN ('fit', 'intent');"
    echo "COMMIT;"
} >"$work/batch.sql"

run() { # name clients [seconds]
    pgbench -n -f "$work/$1.sql" -c "$2" -j 2 -T "${3:-$DURATION}" "$url" >"$work/$1.txt" 2>&1
    grep -E "^tps" "$work/$1.txt" | sed -E 's/^tps = ([0-9.]+).*/\1/' | head -1
}

if [ "$SERVICE" = 1 ]; then
    here=$(pwd)/bench/service
    # shellcheck source=lib.sh
    . "$here/lib.sh"
    command -v wrk >/dev/null || { echo "wrk is needed (Debian: wrk)" >&2; exit 1; }
    service_url="${POSTGRES_SERVER%/*}/$service_name"
    psql "$POSTGRES_SERVER" -qc "CREATE DATABASE $service_name"
    admin=$("$BIN" keys create --database "$service_url" --workspace bench --scope admin)
    ingest=$("$BIN" keys create --database "$service_url" --workspace bench --scope ingest)
    start_server "$work/service" "$BIN" --database "$service_url" || { echo "the service did not start (see $work/service.err)" >&2; exit 1; }
    curl -fsS -X POST -H "Authorization: Bearer $admin" --data-binary @examples/reference.toml \
        "http://$server_addr/api/models" >/dev/null
    stamp=$(date -u -d '-1 min' +%Y-%m-%dT%H:%M:%SZ)
    # serve BATCH CONNECTIONS SECONDS TAG: the service's requests/s in one wrk run.
    serve() {
        local out result
        out=$(wrk -t2 -c"$2" -d"${3}s" --timeout 10s -s bench/service/segment.lua "http://$server_addr" \
            -- "$ingest" "$4" "$1" "$USERS" "$stamp" random 0)
        result=$(sed -n 's/^WRK_RESULT //p' <<<"$out")
        [ -n "$result" ] || { echo "no result from wrk: $out" >&2; exit 1; }
        local requests duration failed
        requests=$(wrk_field requests "$result")
        duration=$(wrk_field duration_us "$result")
        failed=$(wrk_failed "$result")
        [ $((failed)) = 0 ] || { echo "the service failed $((failed)) of $requests requests" >&2; exit 1; }
        echo $((requests * 1000000 / duration))
    }
    # grouped TAG BATCH CONNECTIONS SECONDS: `serve`, and the requests per ingestion transaction
    # during the run (the service's groups, `--database-writers`) in $work/TAG.grouped.
    grouped() {
        local before after
        before=$(group_totals "$server_addr")
        serve "$2" "$3" "$4" "$1"
        after=$(group_totals "$server_addr")
        awk -v b="$before" -v a="$after" 'BEGIN { split(b, x, " "); split(a, y, " ");
            printf "%.1f\n", (y[2] > x[2]) ? (y[1] - x[1]) / (y[2] - x[2]) : 0 }' >"$work/$1.grouped"
    }
    serve "$BATCH" "$BATCH_CLIENTS" 5 warmup >/dev/null   # every user's lead created
    run single "$CLIENTS" 3 >/dev/null
    echo
    echo "pgbench and the service side by side, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores," \
        "$(psql "$url" -Atc 'SHOW server_version'), $ROUNDS rounds of ${SECONDS_PER_RUN}s runs"
    echo "| round | pgbench single, tx/s | service /v1/track, req/s | share | requests per transaction | pgbench batch of $BATCH, events/s | service /v1/batch, events/s | share |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    for round in $(seq "$ROUNDS"); do
        if [ $((round % 2)) = 1 ]; then
            single=$(run single "$CLIENTS" "$SECONDS_PER_RUN"); grouped "t$round" 0 "$CLIENTS" "$SECONDS_PER_RUN" >"$work/track"
            batched=$(serve "$BATCH" "$BATCH_CLIENTS" "$SECONDS_PER_RUN" "b$round"); batch=$(run batch "$BATCH_CLIENTS" "$SECONDS_PER_RUN")
        else
            grouped "t$round" 0 "$CLIENTS" "$SECONDS_PER_RUN" >"$work/track"; single=$(run single "$CLIENTS" "$SECONDS_PER_RUN")
            batch=$(run batch "$BATCH_CLIENTS" "$SECONDS_PER_RUN"); batched=$(serve "$BATCH" "$BATCH_CLIENTS" "$SECONDS_PER_RUN" "b$round")
        fi
        track=$(cat "$work/track")
        awk -v r="$round" -v s="$single" -v t="$track" -v g="$(cat "$work/t$round.grouped")" -v b="$batch" -v n="$BATCH" -v e="$batched" 'BEGIN {
            printf "| %d | %.0f | %.0f | %.0f%% | %s | %.0f | %.0f | %.0f%% |\n", r, s, t, 100 * t / s, g, b * n, e * n, 100 * e / b }'
    done
    echo "pgbench reports and the service's log: $work"
    exit 0
fi

single=$(run single "$CLIENTS")
batch=$(run batch "$BATCH_CLIENTS")
echo
echo "pgbench on leadscore's schema, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(psql "$url" -Atc 'SHOW server_version')"
echo "| script | clients | transactions/s | events/s |"
echo "|---|---:|---:|---:|"
printf '| single event | %s | %.0f | %.0f |\n' "$CLIENTS" "$single" "$single"
printf '| batch of %s | %s | %.0f | %.0f |\n' "$BATCH" "$BATCH_CLIENTS" "$batch" "$(echo "$batch * $BATCH" | bc -l)"
echo "pgbench reports: $work"
