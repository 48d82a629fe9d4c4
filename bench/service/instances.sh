#!/usr/bin/env bash
# Several `leadscore serve` instances on one PostgreSQL database against one, in one run: the
# same load (wrk with segment.lua, the connections split evenly between the instances, as a load
# balancer would) on 1 instance, then on INSTANCES (2) instances, each on a fresh database.
#
#   bash bench/service/instances.sh
#
# Settings (environment): BIN (target/release/leadscore, built unless SKIP_BUILD=1), POSTGRES_SERVER
# (postgres://postgres@127.0.0.1:5432/postgres), INSTANCES (2), USERS (5000), BATCH (100: events
# per request; 0 for /v1/track), CONNS (8, split between the instances), DURATION (20 s), WARMUP
# (3 s, not reported).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BIN=${BIN:-$root/target/release/leadscore}
POSTGRES_SERVER=${POSTGRES_SERVER:-postgres://postgres@127.0.0.1:5432/postgres}
INSTANCES=${INSTANCES:-2}
USERS=${USERS:-5000}
BATCH=${BATCH:-100}
CONNS=${CONNS:-8}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-3}
die() { echo "instances.sh: $*" >&2; exit 1; }
# shellcheck source=lib.sh
. "$here/lib.sh"
command -v wrk >/dev/null || die "wrk is needed (Debian: wrk)"
command -v psql >/dev/null || die "psql is needed (Debian: postgresql-client)"
if [ "${SKIP_BUILD:-0}" != 1 ]; then (cd "$root" && cargo build --release -p leadscore >&2); fi

work=$(mktemp -d /tmp/leadscore-instances.XXXXXX)
pids=()
databases=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    for name in "${databases[@]}"; do
        psql "$POSTGRES_SERVER" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null 2>&1 || true
    done
}
trap cleanup EXIT

# measure N: starts N instances on a fresh database, loads them, prints one table row.
measure() {
    local n=$1 name=leadscore_instances_$$_$1_$RANDOM
    local url="${POSTGRES_SERVER%/*}/$name"
    psql "$POSTGRES_SERVER" -qc "CREATE DATABASE $name"
    databases+=("$name")
    local admin ingest addrs=()
    admin=$("$BIN" keys create --database "$url" --workspace bench --scope admin)
    ingest=$("$BIN" keys create --database "$url" --workspace bench --scope ingest)
    for i in $(seq 1 "$n"); do
        local started=0
        start_server "$work/$n-$i" "$BIN" --database "$url" || started=$?
        pids+=("$server_pid")
        [ "$started" = 0 ] || die "instance $i of $n did not start (see $work/$n-$i.err)"
        addrs+=("$server_addr")
    done
    curl -fsS -X POST -H "Authorization: Bearer $admin" --data-binary @"$root/examples/reference.toml" \
        "http://${addrs[0]}/api/models" >/dev/null || die "model upload failed"
    local stamp
    stamp=$(date -u -d '-1 min' +%Y-%m-%dT%H:%M:%SZ)
    # load SECONDS TAG: wrk on every instance at once, its share of the connections each.
    load() {
        local seconds=$1 tag=$2 i=0
        local per=$(((CONNS + n - 1) / n)) loaders=()
        for addr in "${addrs[@]}"; do
            i=$((i + 1))
            wrk -t1 -c"$per" -d"${seconds}s" --timeout 10s --latency -s "$here/segment.lua" "http://$addr" \
                -- "$ingest" "$tag-$n-$i" "$BATCH" "$USERS" "$stamp" random 0 >"$work/$tag-$n-$i.txt" 2>&1 &
            loaders+=($!)
        done
        wait "${loaders[@]}" || true
    }
    load "$WARMUP" warmup
    local before after busy_before busy_after
    before=$(psql "$url" -Atc "SELECT count(*) FROM events")
    busy_before=$(awk '/^cpu / { print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8 }' /proc/stat)
    load "$DURATION" run
    busy_after=$(awk '/^cpu / { print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8 }' /proc/stat)
    after=$(psql "$url" -Atc "SELECT count(*) FROM events")
    local requests=0 errors=0 p99s=()
    for i in $(seq 1 "$n"); do
        local result
        result=$(sed -n 's/^WRK_RESULT //p' "$work/run-$n-$i.txt")
        [ -n "$result" ] || die "no result from wrk on instance $i (see $work/run-$n-$i.txt)"
        requests=$((requests + $(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$result")))
        errors=$((errors + $(sed -E 's/.*err_status=([0-9]+).*/\1/' <<<"$result")))
        p99s+=("$(sed -E 's/.*p99_us=([0-9]+).*/\1/' <<<"$result")")
    done
    local per_request=$((BATCH > 0 ? BATCH : 1))
    local machine
    machine=$(awk -v a="$busy_before" -v b="$busy_after" -v cores="$(nproc)" 'BEGIN { split(a, x, " ");
        split(b, y, " "); printf "%.0f%%", 100 * cores * (y[1] - x[1]) / (y[2] - x[2]) }')
    printf '| %s | %s | %.0f | %.0f | %s | %s | %s | %s |\n' "$n" "$CONNS" \
        "$(awk -v r="$requests" -v d="$DURATION" 'BEGIN { print r / d }')" \
        "$(awk -v r="$requests" -v p="$per_request" -v d="$DURATION" 'BEGIN { print r * p / d }')" \
        "$(printf '%s ms ' $(for p in "${p99s[@]}"; do echo $((p / 1000)); done))" "$errors" \
        "$((after - before))" "$machine"
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}

echo "leadscore instances on one PostgreSQL, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores;" \
    "$USERS users, $BATCH events per request (0: /v1/track), $CONNS connections, ${DURATION}s"
echo
echo "| instances | connections | requests/s | events/s | p99 per instance | errors | events stored | machine CPU |"
echo "|---|---|---|---|---|---|---|---|"
measure 1
measure "$INSTANCES"
echo
echo "logs: $work"
