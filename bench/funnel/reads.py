#!/usr/bin/env python3
"""The funnel report's store reads, one by one, on a data directory kept by `run.py --keep`.

Runs the statements of crates/store/src/funnel.rs (copies: keep them in step with it) with Python's SQLite and prints each one's time and query
plan, so that the report's cost can be told apart from rendering and the slowest read found.

    DAYS=364 python3 bench/funnel/reads.py /tmp/leadscore-funnel-XXXX/data/leadscore.db
"""
import os, re, sqlite3, sys, time
db = sys.argv[1]
c = sqlite3.connect(db)
src = open(os.path.join(os.path.dirname(__file__), '../../crates/store/src/funnel.rs')).read()
DAY=86400000; WEEK=7*DAY; FM=4*DAY
now = int(time.time()*1000)
span=int(os.environ.get('DAYS','364')); frm = now - span*DAY; to = now + DAY
def wk(col): return f"({FM} + (({col} - {FM}) / {WEEK}) * {WEEK})"
qs = {
 'tier_counts': ("SELECT tier, sum(leads) FROM tier_counts WHERE score = ?2 AND model_id IN (SELECT id FROM models WHERE workspace_id = ?1) GROUP BY tier HAVING sum(leads) > 0 ORDER BY tier", (1,'engagement')),
 'stage_counts': ("SELECT stage, leads FROM stage_counts WHERE workspace_id = ?1 AND leads > 0 ORDER BY stage", (1,)),
 'mql_weeks': (f"SELECT {wk('h.at')} AS week, count(DISTINCT h.lead_id) FROM stage_history h WHERE h.workspace_id = ?1 AND h.stage = 'mql' AND h.at >= ?2 AND h.at < ?3 GROUP BY week ORDER BY week", (1,frm,to)),
 'share_weeks': ("""SELECT week, sum(change), sum(scores) FROM (
     SELECT week, change, 0 AS scores FROM tier_changes_by_week WHERE score = ?2 AND tier = ?3 AND week >= ?4 AND model_id IN (SELECT id FROM models WHERE workspace_id = ?1)
     UNION ALL
     SELECT week, 0, scores FROM first_scores_by_week WHERE score = ?2 AND week >= ?4 AND model_id IN (SELECT id FROM models WHERE workspace_id = ?1)
   ) GROUP BY week HAVING sum(change) <> 0 OR sum(scores) <> 0 ORDER BY week DESC""", (1,'engagement','hot',frm)),
}
first = lambda st: f"min(CASE WHEN s.stage = '{st}' THEN s.at END)"
qs['journeys'] = (f"""WITH cohort AS (SELECT h.lead_id, min(h.at) AS mql FROM stage_history h WHERE h.workspace_id = ?1 AND h.stage = 'mql' AND h.at >= ?2 AND h.at < ?3 AND h.at <= ?4 GROUP BY h.lead_id)
 SELECT c.lead_id, c.mql, {first('sal')}, {first('sql')}, {first('opportunity')}, {first('customer')} FROM cohort c LEFT JOIN stage_history s ON s.lead_id = c.lead_id AND s.at >= c.mql AND s.at <= ?4 GROUP BY c.lead_id ORDER BY c.lead_id""", (1,frm,to,now))
qs['outcomes'] = ("""WITH RECURSIVE
    outcome(lead_id, won, at) AS (
        SELECT h.lead_id, h.stage = 'customer', max(h.at) FROM stage_history h JOIN leads l ON l.id = h.lead_id
        WHERE h.workspace_id = ?1 AND h.stage IN ('customer', 'lost', 'disqualified') AND h.at >= ?3 AND h.at < ?4
          AND l.stage = h.stage AND l.merged_into IS NULL
        GROUP BY h.lead_id
    ),
    marked(lead_id, won, move) AS (
        SELECT o.lead_id, o.won,
               (SELECT s.id FROM stage_history s WHERE s.lead_id = o.lead_id AND s.stage = 'mql' AND s.at <= o.at
                ORDER BY s.at DESC, s.id DESC LIMIT 1)
        FROM outcome o
    ),
    known(lead_id, won, tier) AS (
        SELECT m.lead_id, m.won, t.tier FROM marked m
        JOIN mql_move_tiers t ON t.stage_history_id = m.move AND t.score = ?2
    )
    SELECT tier, 1, sum(won), sum(NOT won) FROM known GROUP BY tier
    UNION ALL
    SELECT ls.tier, 0, sum(m.won), sum(NOT m.won) FROM marked m
    LEFT JOIN lead_scores ls ON ls.lead_id = m.lead_id AND ls.score = ?2
    WHERE m.lead_id NOT IN (SELECT lead_id FROM known)
    GROUP BY ls.tier""", (1,'engagement',frm,to))

total=0
for name,(sql,p) in qs.items():
    t=time.perf_counter(); rows=c.execute(sql,p).fetchall(); dt=time.perf_counter()-t
    total+=dt
    print(f"{name}: {dt*1000:.0f} ms, {len(rows)} rows")
    for r in c.execute("EXPLAIN QUERY PLAN "+sql,p).fetchall(): print("   ", r[3])

print(f"total: {total*1000:.0f} ms")
