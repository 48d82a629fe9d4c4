#!/usr/bin/env bash
# The console's leads pages at a million leads: the server's own time (its `Server-Timing`
# header, `app;dur=` in ms) and the time curl waits over loopback, several runs of each page.
#
#     bash bench/console/leads_pages.sh [DIR] [RUNS]
#
# DIR (default /tmp/leadscore-console-bench) keeps the data between runs: built once by the
# `console_leads_data` example (1,000,000 scored leads; see its doc). Prints, per page, the
# median and the maximum of both times over RUNS runs (default 7), after one warm-up request.
# Figures and the machine are in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR=${1:-/tmp/leadscore-console-bench}
RUNS=${2:-7}
PORT=${PORT:-8677}
BASE="http://127.0.0.1:$PORT"
EMAIL=bench-viewer@example.com
export LEADSCORE_PASSWORD=bench-password-1234

# NO_BUILD=1 measures the binaries already built.
if [ -z "${NO_BUILD:-}" ]; then
    cargo build --release -q -p leadscore-server --example console_leads_data
    cargo build --release -q -p leadscore
fi
if [ ! -f "$DIR/built" ]; then
    mkdir -p "$DIR"
    target/release/examples/console_leads_data "$DIR"
    target/release/leadscore users create --data "$DIR" --workspace bench --email "$EMAIL" --role viewer
    touch "$DIR/built"
fi

# No periodic rescoring pass during the measurement.
target/release/leadscore serve --data "$DIR" --listen "127.0.0.1:$PORT" --rescore-every 86400 >"$DIR/serve.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER' EXIT
for _ in $(seq 100); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.2; done

JAR="$DIR/cookies"
curl -s -o /dev/null -c "$JAR" -H "Origin: $BASE" --data-urlencode "email=$EMAIL" \
    --data-urlencode "password=$LEADSCORE_PASSWORD" "$BASE/sign-in"

SINCE_MONTH=$(date -u -d '30 days ago' +%Y-%m-%dT%H:%M)
SINCE_HOUR=$(date -u -d '1 hour ago' +%Y-%m-%dT%H:%M)
# A far page: after the leads with value 5 (of 0 to 100), about 95% of the way down.
FAR="n$(python3 -c 'import struct; print(struct.pack(">d", 5.0).hex())').500000"

# shellcheck source=bench/console/measure.sh
source "$(dirname "$0")/measure.sh"

echo "| page | server median (ms) | server max | curl median (ms) | curl max |"
echo "|---|---:|---:|---:|---:|"
measure "first page" "/leads"
measure "a far page by cursor" "/leads?cursor=$FAR"
measure "previous page by cursor" "/leads?cursor=p${FAR:1}"
measure "lowest first" "/leads?order=asc"
measure "tier cold" "/leads?tier=cold"
measure "stage customer" "/leads?stage=customer"
measure "score 40 to 45" "/leads?min=40&max=45"
measure "search wójcik (1 in 12)" "/leads?q=W%C3%B3jcik"
measure "search lead123456@ (1 lead)" "/leads?q=lead123456%40"
measure "search 美咲, 2 characters (1 in 12)" "/leads?q=%E7%BE%8E%E5%92%B2"
measure "search zq, 2 characters, no match" "/leads?q=zq"
measure "updated since 30 days" "/leads?since=$SINCE_MONTH"
measure "updated since 1 hour" "/leads?since=$SINCE_HOUR"
measure "CSV, tier mql and stage customer" "/leads.csv?tier=mql&stage=customer"
measure "CSV, every lead (1,000,000 rows)" "/leads.csv"
