#!/usr/bin/env python3
"""The console's funnel page on a large store: its server time at a million leads.

Builds a data directory with `leadscore` itself (a console account, a model uploaded through the
API), fills it with generated leads, their score history and stage moves straight in SQLite (as
the service would have stored them: history entries linked to the previous one of their lead and
score, each with the tier it left), then starts `leadscore serve`, signs in and times
`GET /funnel` for several periods. The figure is the time between sending the request and
reading the whole answer on the loopback interface, which is the server's time plus a
negligible transfer.

    cargo build --release -p leadscore
    python3 bench/funnel/run.py --leads 1000000 --runs 5

Per lead: a creation time spread over 380 days, five score history entries a few days apart
(cold, cold, then mql for half of the leads, then hot for a sixth), the automatic move to MQL
when it reached mql, and for a share of those MQLs moves to SAL, SQL, customer or lost.
"""

import argparse
import http.client
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

DAY = 86_400_000
MODEL = """[scores.engagement]
tiers = [{ label = "cold" }, { label = "mql", min = 20 }, { label = "hot", min = 60 }]
[[scores.engagement.rules]]
name = "visit"
event = "page_view"
points = 5
"""
PASSWORD = "correct horse battery staple"


def say(message):
    print(message, file=sys.stderr, flush=True)


def start(binary, data):
    server = subprocess.Popen(
        [binary, "serve", "--data", data, "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    for line in server.stdout:
        found = re.search(r"listening on http://(\S+)", line)
        if found:
            return server, found.group(1)
    raise SystemExit("the server did not start")


def stop(server):
    server.terminate()
    server.wait()


def request(address, method, path, headers=None, body=None):
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=600)
    connection.request(method, path, body=body, headers=headers or {})
    answer = connection.getresponse()
    content = answer.read()
    connection.close()
    return answer.status, dict(answer.getheaders()), content


def fill(database, leads, now):
    connection = sqlite3.connect(database)
    connection.execute("PRAGMA synchronous = OFF")
    (workspace,) = connection.execute("SELECT id FROM workspaces WHERE name = 'bench'").fetchone()
    (model,) = connection.execute("SELECT model_id FROM active_models WHERE workspace_id = ?", (workspace,)).fetchone()
    base = now - 420 * DAY
    # n: the lead's number; t0: when it was created; step: days between its history entries;
    # level: its highest tier (0 cold, 1 mql, 2 hot).
    numbers = f"""WITH RECURSIVE c(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM c WHERE n < {leads - 1}),
        l AS (SELECT n, {base} + (n % 380) * {DAY} + (n % 86400) * 1000 AS t0, 1 + n % 5 AS step,
                     CASE WHEN n % 6 = 0 THEN 2 WHEN n % 2 = 0 THEN 1 ELSE 0 END AS level FROM c)"""
    tier = "CASE {} WHEN 0 THEN 'cold' WHEN 1 THEN 'mql' ELSE 'hot' END"
    level_at = "min(level, {j} / 2)"
    say("leads...")
    state = "x" * 300
    connection.execute(
        f"""{numbers}
        INSERT INTO leads (id, workspace_id, user_id, email, attributes, created_at, updated_at, stage, state, state_model_id)
        SELECT n + 1, {workspace}, 'u' || n, 'lead' || n || '@example.com',
               '{{"name": "Lead ' || n || '", "company": "Company ' || (n % 5000) || '"}}', t0, t0,
               CASE WHEN level = 0 THEN 'lead'
                    WHEN n % 16 = 0 THEN 'customer' WHEN n % 12 = 2 THEN 'lost'
                    WHEN n % 8 = 0 THEN 'sql' WHEN n % 4 = 0 THEN 'sal' ELSE 'mql' END,
               '{state}', {model}
        FROM l"""
    )
    # History and moves are appended in time order, as the service appends them, then linked.
    say("score history...")
    entries = " UNION ALL ".join(
        f"""SELECT n, t0 + {j} * step * {DAY} AS at, 5.0 * {j} + 20 * {level_at.format(j=j)} AS value,
                   {tier.format(level_at.format(j=j))} AS tier,
                   {"NULL" if j == 0 else tier.format(level_at.format(j=j - 1))} AS previous_tier FROM l"""
        for j in range(5)
    )
    connection.execute(
        f"""{numbers}
        INSERT INTO score_history (lead_id, score, value, tier, previous_tier, model_id, at, cause)
        SELECT n + 1, 'engagement', value, tier, previous_tier, {model}, at, 'event' FROM ({entries}) ORDER BY at"""
    )
    connection.executescript(
        """CREATE TEMP TABLE links AS SELECT id, lag(id) OVER (PARTITION BY lead_id ORDER BY id) AS previous_id,
               lead_id, row_number() OVER (PARTITION BY lead_id ORDER BY id DESC) AS newest FROM score_history;
           UPDATE score_history SET previous_id = l.previous_id FROM links l WHERE l.id = score_history.id;"""
    )
    say("current scores...")
    connection.execute("CREATE INDEX temp.newest_links ON links (lead_id) WHERE newest = 1")
    connection.execute(
        f"""{numbers}
        INSERT INTO lead_scores (lead_id, score, value, tier, model_id, evaluated_at, history_id)
        SELECT n + 1, 'engagement', 20.0 + 20 * {level_at.format(j=4)}, {tier.format(level_at.format(j=4))}, {model},
               t0 + 4 * step * {DAY}, links.id
        FROM l JOIN links ON links.lead_id = n + 1 AND links.newest = 1"""
    )
    connection.execute("DROP TABLE links")
    say("stage moves...")
    moves = [
        ("mql", "'lead'", "level >= 1", 0),
        ("sal", "'mql'", "level >= 1 AND n % 4 = 0", 2),
        ("sql", "'sal'", "level >= 1 AND n % 8 = 0", 5),
        ("customer", "'sql'", "level >= 1 AND n % 16 = 0", 20),
        ("lost", "'mql'", "level >= 1 AND n % 12 = 2", 10),
    ]
    selects = " UNION ALL ".join(
        f"""SELECT n + 1 AS lead_id, '{stage}' AS stage, {previous} AS previous,
                   t0 + 2 * step * {DAY} + {days} * {DAY} AS at,
                   {"'leadscore'" if stage == "mql" else "'rep@example.com'"} AS actor FROM l WHERE {which}"""
        for stage, previous, which, days in moves
    )
    connection.execute(
        f"""{numbers}
        INSERT INTO stage_history (lead_id, workspace_id, stage, previous, at, actor, reason)
        SELECT lead_id, {workspace}, stage, previous, at, actor, NULL FROM ({selects}) ORDER BY at"""
    )
    connection.commit()
    say("kept counts...")
    recount_kept_counts(connection)
    counts = {
        table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in ["leads", "score_history", "stage_history"]
    }
    connection.execute("ANALYZE")
    connection.commit()
    connection.close()
    return counts


MIGRATIONS = [
    os.path.join(os.path.dirname(__file__), f"../../crates/store/src/migrations/{name}.sql")
    for name in ["0015_funnel_counts", "0016_funnel_cohorts"]
]


def recount_kept_counts(connection):
    """Fills the counts the writer keeps again from the rows, with the migration's own statements.

    The rows above were written straight in SQLite, history entries before their links and
    current scores before the moves: the triggers saw every entry as a score's first and each
    MQL move with the lead's final tiers. The statements that fill the counts from stored rows
    are those at the top level of the migration (not indented in a trigger)."""
    fills = []
    for path in MIGRATIONS:
        with open(path) as migration:
            text = "\n".join(line for line in migration.read().splitlines() if not line.startswith("--"))
        fills += [s.lstrip("\n") for s in text.split(";\n") if s.lstrip("\n").startswith("INSERT INTO")]
    assert len(fills) == 7, fills
    for table in ["tier_counts", "stage_counts", "tier_changes_by_week", "first_scores_by_week", "mql_move_tiers",
                  "mql_cohorts", "outcome_moves"]:
        connection.execute(f"DELETE FROM {table}")
    for fill_statement in fills:
        connection.execute(fill_statement)
    connection.commit()


def main():
    arguments = argparse.ArgumentParser()
    arguments.add_argument("--bin", default="target/release/leadscore")
    arguments.add_argument("--leads", type=int, default=1_000_000)
    arguments.add_argument("--runs", type=int, default=5)
    arguments.add_argument("--keep", action="store_true", help="keep the data directory")
    arguments.add_argument("--reuse", help="a data directory kept by an earlier run (--keep): time it again")
    options = arguments.parse_args()
    binary = os.path.abspath(options.bin)
    if options.reuse:
        timed(binary, options.reuse, options.runs, counted(os.path.join(options.reuse, "leadscore.db")))
        return
    work = tempfile.mkdtemp(prefix="leadscore-funnel-")
    data = os.path.join(work, "data")
    environment = dict(os.environ, LEADSCORE_PASSWORD=PASSWORD)
    subprocess.run(
        [binary, "users", "create", "--data", data, "--workspace", "bench", "--email", "bench@example.com", "--role", "viewer"],
        check=True,
        env=environment,
        stdout=subprocess.DEVNULL,
    )
    admin = subprocess.run(
        [binary, "keys", "create", "--data", data, "--workspace", "bench", "--scope", "admin"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    server, address = start(binary, data)
    status, _, body = request(address, "POST", "/api/models", {"Authorization": f"Bearer {admin}"}, MODEL)
    assert status == 201, body
    stop(server)

    now = int(time.time() * 1000)
    began = time.time()
    counts = fill(os.path.join(data, "leadscore.db"), options.leads, now)
    say(f"filled in {time.time() - began:.0f} s: {counts}")
    timed(binary, data, options.runs, counts)
    if not options.keep:
        subprocess.run(["rm", "-rf", work], check=True)
    else:
        say(f"kept {data}")


def counted(database):
    connection = sqlite3.connect(database)
    counts = {
        table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in ["leads", "score_history", "stage_history"]
    }
    connection.close()
    return counts


def timed(binary, data, runs, counts):
    """Signs in and times the funnel page for several periods."""
    now = int(time.time() * 1000)
    server, address = start(binary, data)
    form = urllib.parse.urlencode({"email": "bench@example.com", "password": PASSWORD})
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Origin": f"http://{address}"}
    status, answer_headers, _ = request(address, "POST", "/sign-in", headers, form)
    assert status == 303, status
    cookie = answer_headers["set-cookie"].split(";")[0]
    today = time.strftime("%Y-%m-%d", time.gmtime(now / 1000))
    periods = {
        "last 4 weeks (default)": "/funnel",
        "last 12 months": f"/funnel?from={time.strftime('%Y-%m-%d', time.gmtime(now / 1000 - 364 * 86400))}&to={today}",
        "a month a year ago": f"/funnel?from={time.strftime('%Y-%m-%d', time.gmtime(now / 1000 - 365 * 86400))}"
        f"&to={time.strftime('%Y-%m-%d', time.gmtime(now / 1000 - 335 * 86400))}",
    }
    print(f"| period | median | min | max | ({runs} runs, {counts['leads']:,} leads, "
          f"{counts['score_history']:,} history entries, {counts['stage_history']:,} stage moves) |")
    print("|---|---:|---:|---:|---|")
    for name, path in periods.items():
        status, _, body = request(address, "GET", path, {"Cookie": cookie})
        assert status == 200, body[:2000]
        times = []
        for _ in range(runs):
            began = time.perf_counter()
            status, _, body = request(address, "GET", path, {"Cookie": cookie})
            times.append(time.perf_counter() - began)
            assert status == 200
        print(f"| {name} | {statistics.median(times) * 1000:.0f} ms | {min(times) * 1000:.0f} ms | "
              f"{max(times) * 1000:.0f} ms | |")
    stop(server)


if __name__ == "__main__":
    main()
