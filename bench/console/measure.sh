# Sourced by the console benchmarks: `measure NAME PATH` asks for a console page once to warm
# up, then RUNS times with the session in $JAR at $BASE, and prints a table row of the server's
# time (its Server-Timing header) and curl's total, medians and maxima, in milliseconds.
measure() {
    local name=$1 path=$2 servers=() totals=()
    curl -s -o /dev/null -b "$JAR" "$BASE$path"
    for _ in $(seq "$RUNS"); do
        local out
        out=$(curl -s -o /dev/null -b "$JAR" -D - -w 'total=%{time_total}\n' "$BASE$path")
        servers+=("$(grep -i '^server-timing:' <<<"$out" | sed 's/.*dur=\([0-9.]*\).*/\1/')")
        totals+=("$(grep '^total=' <<<"$out" | cut -d= -f2)")
    done
    python3 - "$name" "${servers[*]}" "${totals[*]}" <<'PY'
import statistics, sys
name, servers, totals = sys.argv[1], [float(x) for x in sys.argv[2].split()], [float(x) * 1000 for x in sys.argv[3].split()]
print(f"| {name} | {statistics.median(servers):.1f} | {max(servers):.1f} | {statistics.median(totals):.1f} | {max(totals):.1f} |")
PY
}
