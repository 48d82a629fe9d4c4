# Helpers shared by the service's benchmarks, sourced: `start_server`, `wrk_field`, `wrk_failed`
# and `group_totals` (instances.sh, builds_side_by_side.sh, pgbench_ceiling.sh), and for the rescoring
# benchmarks (rescore.sh, rescore_postgres.sh),
# which set BASE (the service's address) and ADMIN (an admin key) first, the others.

# start_server OUT BIN ARGS...: starts `BIN serve ARGS... --listen 127.0.0.1:0` in the background,
# its output in OUT.out and OUT.err, and sets server_pid; sets server_addr (HOST:PORT) once it
# listens. Fails when the server exits first or does not listen within 30 s.
start_server() {
    local out=$1 bin=$2
    shift 2
    "$bin" serve "$@" --listen 127.0.0.1:0 >"$out.out" 2>"$out.err" &
    server_pid=$!
    server_addr=
    for _ in $(seq 300); do
        server_addr=$(sed -n 's|^leadscore listening on http://||p' "$out.out" | head -1)
        [ -n "$server_addr" ] && return 0
        kill -0 "$server_pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# wrk_field NAME RESULT: the number NAME= of RESULT, a WRK_RESULT line of segment.lua's done()
# (without its leading word).
wrk_field() { sed -E "s/(^|.* )$1=([0-9]+).*/\\2/" <<<"$2"; }

# wrk_failed RESULT: the requests of RESULT that failed, of every kind (connect, read, write,
# status, timeout).
wrk_failed() {
    echo $(($(wrk_field err_connect "$1") + $(wrk_field err_read "$1") + $(wrk_field err_write "$1") \
        + $(wrk_field err_status "$1") + $(wrk_field err_timeout "$1")))
}

# group_totals ADDR: the service's requests stored in ingestion transactions and those
# transactions, "REQUESTS TRANSACTIONS", from its /metrics (0 0 on SQLite, which does not group
# them there).
group_totals() {
    curl -fsS "http://$1/metrics" | awk '
        $1 == "leadscore_ingestion_group_requests_sum" { sum = $2 }
        $1 == "leadscore_ingestion_group_requests_count" { count = $2 }
        END { printf "%d %d\n", sum, count }'
}

# api CURL-ARGS...: a request to the service with the admin key, failing on an error status.
api() { curl -sf -H "Authorization: Bearer $ADMIN" "$@"; }

# rescoring: the workspace's rescoring as "done total started_at finished_at" (None when absent).
rescoring() {
    api "$BASE/api/models" | python3 -c 'import json,sys; r=json.load(sys.stdin)["rescoring"] or {}; print(r.get("done"), r.get("total"), r.get("started_at"), r.get("finished_at"))'
}

# wait_for_end: waits until the rescoring has finished, then prints it as `rescoring` does.
wait_for_end() {
    while true; do
        read -r done total started finished < <(rescoring)
        [ "$finished" != None ] && break
        sleep 0.2
    done
    echo "$done $total $started $finished"
}

# active: the active model version.
active() { api "$BASE/api/models" | python3 -c 'import json,sys; print([m["version"] for m in json.load(sys.stdin)["models"] if m["active"]][0])'; }

# upload_variants: versions 2 and 3 of examples/reference.toml, whose pricing page is worth 20
# and 25 points instead of 15, uploaded unless they are there already (not activated).
upload_variants() {
    local points version
    for points in 20 25; do
        version=$(( points == 20 ? 2 : 3 ))
        if [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ADMIN" "$BASE/api/models/$version")" != 200 ]; then
            python3 -c 'import sys; t = open("examples/reference.toml").read(); print(t.replace("event = \"pricing_page_view\"\npoints = 15", "event = \"pricing_page_view\"\npoints = '"$points"'"), end="")' \
                | api -o /dev/null -H 'Content-Type: text/plain' --data-binary @- "$BASE/api/models"
        fi
    done
}
