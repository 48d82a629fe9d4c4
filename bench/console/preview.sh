#!/usr/bin/env bash
# The console's model preview at a million leads: how long the background comparison of every
# lead takes, then the preview page's and the activation confirmation's server time (their
# `Server-Timing` header, `app;dur=` in ms) once the result is kept; and the API's synchronous
# preview of the first 100,000 leads.
#
#     bash bench/console/preview.sh [DIR] [RUNS]
#
# DIR (default /tmp/leadscore-console-bench) is the data of bench/console/leads_pages.sh (built
# here as there when missing: 1,000,000 scored leads, the reference model active). Version 2 is
# the reference model with 25 points instead of 15 for the technology industry (every lead's), so
# that tiers change. BIN (default target/release/leadscore) is the binary measured. Figures and
# the machine are in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR=${1:-/tmp/leadscore-console-bench}
RUNS=${2:-7}
PORT=${PORT:-8678}
BASE="http://127.0.0.1:$PORT"
BIN=${BIN:-target/release/leadscore}
EMAIL=bench-admin@example.com
export LEADSCORE_PASSWORD=bench-password-1234

if [ -z "${NO_BUILD:-}" ]; then
    cargo build --release -q -p leadscore-server --example console_leads_data
    cargo build --release -q -p leadscore
fi
if [ ! -f "$DIR/built" ]; then
    mkdir -p "$DIR"
    target/release/examples/console_leads_data "$DIR"
    "$BIN" users create --data "$DIR" --workspace bench --email bench-viewer@example.com --role viewer
    touch "$DIR/built"
fi
if [ ! -f "$DIR/admin-key" ]; then
    "$BIN" users create --data "$DIR" --workspace bench --email "$EMAIL" --role admin
    "$BIN" keys create --data "$DIR" --workspace bench --scope admin | grep -o 'lsk_[^[:space:]]*' | head -1 >"$DIR/admin-key"
fi
KEY=$(cat "$DIR/admin-key")

"$BIN" serve --data "$DIR" --listen "127.0.0.1:$PORT" --rescore-every 86400 >"$DIR/serve-preview.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER' EXIT
for _ in $(seq 100); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.2; done

if [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KEY" "$BASE/api/models/2")" != 200 ]; then
    python3 -c 'import sys; t = open("examples/reference.toml").read(); print(t.replace("equals = \"Technology\" }\npoints = 15", "equals = \"Technology\" }\npoints = 25"), end="")' \
        | curl -sf -o /dev/null -H "Authorization: Bearer $KEY" -H 'Content-Type: text/plain' --data-binary @- "$BASE/api/models"
fi

JAR="$DIR/cookies-admin"
curl -s -o /dev/null -c "$JAR" -H "Origin: $BASE" --data-urlencode "email=$EMAIL" \
    --data-urlencode "password=$LEADSCORE_PASSWORD" "$BASE/sign-in"

# The comparison of every lead: from the request that starts it to the first answer with the
# result (the page is asked every 200 ms, as a person's browser reloads it every second).
START=$(date +%s.%N)
FIRST=$(curl -s -o /dev/null -D - -b "$JAR" "$BASE/models/2/preview" | grep -i '^server-timing:' | sed 's/.*dur=\([0-9.]*\).*/\1/')
RUNNING=()
while ! curl -s -b "$JAR" -D "$DIR/headers" "$BASE/models/2/preview" | grep -q 'leads change tier'; do
    RUNNING+=("$(grep -i '^server-timing:' "$DIR/headers" | sed 's/.*dur=\([0-9.]*\).*/\1/')")
    sleep 0.2
done
END=$(date +%s.%N)
echo "background comparison of every lead: $(python3 -c "print(f'{$END - $START:.1f}')") s"
echo "the page that started it: $FIRST ms (server); while it ran: median $(python3 -c "import statistics, sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "${RUNNING[@]}") ms over ${#RUNNING[@]} loads"
curl -s -b "$JAR" "$BASE/models/2/preview" | grep -o 'Compared [0-9]* leads' | head -1

# shellcheck source=bench/console/measure.sh
source "$(dirname "$0")/measure.sh"

echo "| page | server median (ms) | server max | curl median (ms) | curl max |"
echo "|---|---:|---:|---:|---:|"
measure "preview, result kept" "/models/2/preview"
measure "activation confirmation, result kept" "/models/2/activate"

# The API's synchronous preview (the first 100,000 leads, its default limit), once.
API=$(curl -s -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $KEY" "$BASE/api/models/2/preview?limit=100000")
echo "API preview of 100,000 leads: $(python3 -c "print(f'{$API:.1f}')") s"
