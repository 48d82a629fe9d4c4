#!/usr/bin/env bash
# Two or more leadscore builds on PostgreSQL, side by side: each serves on a fresh database of its
# own, all at once, and short wrk runs take turns between them, round after round, so that the
# machine's drift over minutes falls on every build alike. For each build: requests/s, the
# server's CPU per request and its threads' context switches per 10 requests, per round.
#
#   bash bench/service/builds_side_by_side.sh OLD_BINARY NEW_BINARY
#   DELAY_MS=0.5 CONNS=1 bash bench/service/builds_side_by_side.sh OLD_BINARY NEW_BINARY
#
# DELAY_MS > 0 puts the database one network round trip away: the services connect through
# bench/service/delay_proxy.py, which delays what PostgreSQL sends by DELAY_MS (a managed
# PostgreSQL in another zone is 0.3 to 1 ms away); `keys create` and the model upload go direct.
# Settings (environment): POSTGRES_SERVER (postgres://postgres@127.0.0.1:5432/postgres), ROUNDS
# (5), SECONDS_PER_RUN (5), CONNS (10), BATCH (0 for /v1/track, or events per /v1/batch request),
# USERS (5000), PROXY_PORT (6543).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
POSTGRES_SERVER=${POSTGRES_SERVER:-postgres://postgres@127.0.0.1:5432/postgres}
ROUNDS=${ROUNDS:-5}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
CONNS=${CONNS:-10}
BATCH=${BATCH:-0}
USERS=${USERS:-5000}
DELAY_MS=${DELAY_MS:-0}
PROXY_PORT=${PROXY_PORT:-6543}
die() { echo "builds_side_by_side.sh: $*" >&2; exit 1; }
# shellcheck source=lib.sh
. "$here/lib.sh"
[ $# -ge 2 ] || die "give two or more leadscore binaries"
command -v wrk >/dev/null || die "wrk is needed (Debian: wrk)"
command -v psql >/dev/null || die "psql is needed (Debian: postgresql-client)"
for bin in "$@"; do [ -x "$bin" ] || die "no binary at $bin"; done
threads=$((CONNS < 2 ? 1 : 2))
work=$(mktemp -d /tmp/leadscore-side-by-side.XXXXXX)
bins=("$@")
pids=()
databases=()
proxy=
cleanup() {
    for pid in "${pids[@]}" $proxy; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for name in "${databases[@]}"; do psql "$POSTGRES_SERVER" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)" || true; done
}
trap cleanup EXIT

server_for_services=$POSTGRES_SERVER
if [ "$DELAY_MS" != 0 ]; then
    target_port=$(python3 -c "import urllib.parse,sys; print(urllib.parse.urlparse(sys.argv[1]).port or 5432)" "$POSTGRES_SERVER")
    python3 "$here/delay_proxy.py" "$PROXY_PORT" "$target_port" "$(python3 -c "print($DELAY_MS / 1000)")" &
    proxy=$!
    server_for_services=${POSTGRES_SERVER/:$target_port\//:$PROXY_PORT/}
    [ "$server_for_services" != "$POSTGRES_SERVER" ] || die "POSTGRES_SERVER must name its port (host:PORT/db)"
    sleep 0.5
fi

stamp=$(date -u -d '-1 min' +%Y-%m-%dT%H:%M:%SZ)
urls=()
keys=()
for i in "${!bins[@]}"; do
    name=leadscore_side_$$_$i
    databases+=("$name")
    psql "$POSTGRES_SERVER" -qc "CREATE DATABASE $name"
    direct="${POSTGRES_SERVER%/*}/$name"
    admin=$("${bins[$i]}" keys create --database "$direct" --workspace bench --scope admin)
    keys+=("$("${bins[$i]}" keys create --database "$direct" --workspace bench --scope ingest)")
    started=0
    start_server "$work/server-$i" "${bins[$i]}" --database "${server_for_services%/*}/$name" || started=$?
    pids+=("$server_pid")
    [ "$started" = 0 ] || die "${bins[$i]} did not start (see $work/server-$i.err)"
    addr=$server_addr
    urls+=("http://$addr")
    curl -fsS -X POST -H "Authorization: Bearer $admin" --data-binary @"$root/examples/reference.toml" \
        "http://$addr/api/models" >/dev/null || die "model upload failed"
    wrk -t2 -c8 -d3s -s "$here/segment.lua" "http://$addr" -- "${keys[$i]}" "warmup$i" 100 "$USERS" "$stamp" random 0 >/dev/null
done

ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' /proc/"$1"/stat; }   # utime + stime
switches() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ { s += $2 } END { print s }'; }
hz=$(getconf CLK_TCK)
declare -A rates cpu switched
for round in $(seq "$ROUNDS"); do
    for turn in "${!bins[@]}"; do
        i=$(((turn + round) % ${#bins[@]}))   # a different build goes first each round
        pid=${pids[$i]}
        t0=$(ticks "$pid"); s0=$(switches "$pid")
        out=$(wrk -t"$threads" -c"$CONNS" -d"${SECONDS_PER_RUN}s" --timeout 10s -s "$here/segment.lua" "${urls[$i]}" \
            -- "${keys[$i]}" "r$round-$i" "$BATCH" "$USERS" "$stamp" random 0)
        t1=$(ticks "$pid"); s1=$(switches "$pid")
        result=$(sed -n 's/^WRK_RESULT //p' <<<"$out")
        requests=$(wrk_field requests "$result")
        duration_us=$(wrk_field duration_us "$result")
        failed=$(wrk_failed "$result")
        [ "${requests:-0}" -gt 0 ] || die "no request answered by ${bins[$i]}"
        # A refused or failed request is not a stored one: the comparison is void.
        [ $((failed)) = 0 ] || die "${bins[$i]} failed $((failed)) of $requests requests in round $round"
        rates[$i]="${rates[$i]:-} $((requests * 1000000 / duration_us))"
        cpu[$i]="${cpu[$i]:-} $(((t1 - t0) * 1000000 / hz / requests))"
        switched[$i]="${switched[$i]:-} $(((s1 - s0) * 10 / requests))"
    done
done
echo "| build | requests/s per round | mean | server CPU µs/request | context switches per 10 requests |"
echo "|---|---|---|---|---|"
for i in "${!bins[@]}"; do
    mean=$(awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i; printf "%.0f", s / NF }' <<<"${rates[$i]}")
    echo "| ${bins[$i]} |${rates[$i]} | $mean |${cpu[$i]} |${switched[$i]} |"
done
echo
echo "settings: ROUNDS=$ROUNDS SECONDS_PER_RUN=$SECONDS_PER_RUN CONNS=$CONNS BATCH=$BATCH USERS=$USERS DELAY_MS=$DELAY_MS"
