#!/usr/bin/env bash
# Several `leadscore serve` instances on one PostgreSQL database against one, side by side: one
# instance on a fresh database and INSTANCES (2) instances on another serve at once, and short wrk
# runs take turns between the two set-ups, round after round, so that the machine's drift over
# minutes falls on both alike (on a shared machine, two runs of the same set-up a minute apart
# differ by 30%). Each run is one wrk process with INSTANCES threads, thread k loading instance k
# (round the list: segment.lua's SEGMENT_ADDRS), its connections split evenly between them as a
# load balancer would: the load generator is the same for one instance as for several.
#
#   bash bench/service/instances.sh
#
# Settings (environment): BIN (target/release/leadscore, built unless SKIP_BUILD=1), POSTGRES_SERVER
# (postgres://postgres@127.0.0.1:5432/postgres), INSTANCES (2), USERS (5000), BATCH (100: events
# per request; 0 for /v1/track), CONNS (8), ROUNDS (5), SECONDS_PER_RUN (10), WARMUP (3 s per
# set-up, not reported), WRITERS (unset: each instance's default): the ingestion transactions of a
# set-up, split evenly between its instances (`--database-writers WRITERS/N`, at least 1), as an
# operator keeps instances × writers at what the database does best.
#
# Prints, per set-up: requests/s and events/s of each round and their mean, the p99 latency of
# each round, failed requests, the events stored against the events acknowledged, and the servers'
# CPU per request (all its instances together).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BIN=${BIN:-$root/target/release/leadscore}
POSTGRES_SERVER=${POSTGRES_SERVER:-postgres://postgres@127.0.0.1:5432/postgres}
INSTANCES=${INSTANCES:-2}
USERS=${USERS:-5000}
BATCH=${BATCH:-100}
CONNS=${CONNS:-8}
ROUNDS=${ROUNDS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
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

stamp=$(date -u -d '-1 min' +%Y-%m-%dT%H:%M:%SZ)
setups=(1 "$INSTANCES")
declare -A addrs_of pids_of url_of key_of

# set_up S N: N instances on a fresh database, the reference model active, warmed up.
set_up() {
    local s=$1 n=$2 name=leadscore_instances_$$_$1
    local url="${POSTGRES_SERVER%/*}/$name" admin addrs=() own=()
    psql "$POSTGRES_SERVER" -qc "CREATE DATABASE $name"
    databases+=("$name")
    admin=$("$BIN" keys create --database "$url" --workspace bench --scope admin)
    key_of[$s]=$("$BIN" keys create --database "$url" --workspace bench --scope ingest)
    local writers=()
    [ -z "${WRITERS:-}" ] || writers=(--database-writers "$(( WRITERS / n > 0 ? WRITERS / n : 1 ))")
    for i in $(seq 1 "$n"); do
        local started=0
        start_server "$work/$s-$i" "$BIN" --database "$url" "${writers[@]}" || started=$?
        pids+=("$server_pid")
        own+=("$server_pid")
        [ "$started" = 0 ] || die "instance $i of $n did not start (see $work/$s-$i.err)"
        addrs+=("$server_addr")
    done
    curl -fsS -X POST -H "Authorization: Bearer $admin" --data-binary @"$root/examples/reference.toml" \
        "http://${addrs[0]}/api/models" >/dev/null || die "model upload failed"
    addrs_of[$s]="${addrs[*]}"
    pids_of[$s]="${own[*]}"
    url_of[$s]=$url
    load "$s" "$WARMUP" "warmup" >/dev/null
}

# load S SECONDS TAG: one wrk run on set-up S; prints its WRK_RESULT line.
load() {
    local s=$1 seconds=$2 tag=$3 first
    first=${addrs_of[$s]%% *}
    SEGMENT_ADDRS="${addrs_of[$s]}" wrk -t"$INSTANCES" -c"$CONNS" -d"${seconds}s" --timeout 10s --latency \
        -s "$here/segment.lua" "http://$first" \
        -- "${key_of[$s]}" "$tag-$s" "$BATCH" "$USERS" "$stamp" random 0 >"$work/$tag-$s.txt" 2>&1 || true
    sed -n 's/^WRK_RESULT //p' "$work/$tag-$s.txt"
}

# ticks S: CPU ticks (user + system) of set-up S's instances so far.
ticks() {
    local total=0 pid
    for pid in ${pids_of[$1]}; do
        total=$((total + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' /proc/"$pid"/stat)))
    done
    echo "$total"
}

for s in 0 1; do set_up "$s" "${setups[$s]}"; done
hz=$(getconf CLK_TCK)
per_request=$((BATCH > 0 ? BATCH : 1))
declare -A rates p99s failed acknowledged cpu stored_before
for s in 0 1; do stored_before[$s]=$(psql "${url_of[$s]}" -Atc "SELECT count(*) FROM events"); done
for round in $(seq "$ROUNDS"); do
    for turn in 0 1; do
        s=$(((turn + round) % 2))   # the other set-up goes first each round
        t0=$(ticks "$s")
        result=$(load "$s" "$SECONDS_PER_RUN" "r$round")
        t1=$(ticks "$s")
        [ -n "$result" ] || die "no result from wrk (see $work/r$round-$s.txt)"
        requests=$(wrk_field requests "$result")
        [ "$requests" -gt 0 ] || die "no request answered by the set-up of ${setups[$s]} instance(s)"
        failures=$(wrk_failed "$result")
        rates[$s]="${rates[$s]:-} $((requests * 1000000 / $(wrk_field duration_us "$result")))"
        p99s[$s]="${p99s[$s]:-} $(($(wrk_field p99_us "$result") / 1000))"
        failed[$s]=$((${failed[$s]:-0} + failures))
        acknowledged[$s]=$((${acknowledged[$s]:-0} + (requests - $(wrk_field err_status "$result")) * per_request))
        cpu[$s]="${cpu[$s]:-} $(((t1 - t0) * 1000000 / hz / requests))"
    done
done

echo "leadscore instances on one PostgreSQL, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores; $USERS users," \
    "$BATCH events per request (0: /v1/track), $CONNS connections, $ROUNDS rounds of ${SECONDS_PER_RUN}s, ingestion transactions per set-up: ${WRITERS:-each instance default}"
echo
echo "| instances | requests/s per round | mean requests/s | mean events/s | p99 per round (ms) | failed | events stored / acknowledged | server CPU µs/request |"
echo "|---|---|---|---|---|---|---|---|"
for s in 0 1; do
    mean=$(awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i; printf "%.0f", s / NF }' <<<"${rates[$s]}")
    stored=$(($(psql "${url_of[$s]}" -Atc "SELECT count(*) FROM events") - ${stored_before[$s]}))
    echo "| ${setups[$s]} |${rates[$s]} | $mean | $((mean * per_request)) |${p99s[$s]} | ${failed[$s]} | $stored / ${acknowledged[$s]} |${cpu[$s]} |"
done
echo
echo "logs: $work"
