#!/usr/bin/env python3
"""The funnel report's store reads, one by one, on a data directory kept by `run.py --keep`.

Runs the statements of crates/store/src/funnel.rs (the outcomes statement is read from the source;
keep the others in step with it) with Python's SQLite and prints each one's time and query
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
 'tier_counts': ("SELECT s.tier, count(*) FROM lead_scores s NOT INDEXED WHERE s.score = ?2 AND s.model_id IN (SELECT id FROM models WHERE workspace_id = ?1) GROUP BY s.tier ORDER BY s.tier", (1,'engagement')),
 'stage_counts': ("SELECT stage, count(*) FROM leads WHERE workspace_id = ?1 AND merged_into IS NULL GROUP BY stage ORDER BY stage", (1,)),
 'mql_weeks': (f"SELECT {wk('h.at')} AS week, count(DISTINCT h.lead_id) FROM stage_history h WHERE h.workspace_id = ?1 AND h.stage = 'mql' AND h.at >= ?2 AND h.at < ?3 GROUP BY week ORDER BY week", (1,frm,to)),
 'share_weeks': (f"SELECT {wk('at')} AS week, coalesce(sum(tier IS ?3), 0) - coalesce(sum(previous_tier IS ?3), 0), coalesce(sum(previous_id IS NULL), 0) FROM score_history WHERE score = ?2 AND at >= ?4 AND model_id IN (SELECT id FROM models WHERE workspace_id = ?1) GROUP BY week ORDER BY week DESC", (1,'engagement','hot',frm)),
}
first = lambda st: f"min(CASE WHEN s.stage = '{st}' THEN s.at END)"
qs['journeys'] = (f"""WITH cohort AS (SELECT h.lead_id, min(h.at) AS mql FROM stage_history h WHERE h.workspace_id = ?1 AND h.stage = 'mql' AND h.at >= ?2 AND h.at < ?3 AND h.at <= ?4 GROUP BY h.lead_id)
 SELECT c.lead_id, c.mql, {first('sal')}, {first('sql')}, {first('opportunity')}, {first('customer')} FROM cohort c LEFT JOIN stage_history s ON s.lead_id = c.lead_id AND s.at >= c.mql AND s.at <= ?4 GROUP BY c.lead_id ORDER BY c.lead_id""", (1,frm,to,now))
m = re.search(r'prepare_cached\(\n        "(WITH RECURSIVE.*?)",\n    \)\?;', src, re.S)
qs['outcomes'] = (m.group(1), (1,'engagement',frm,to))

total=0
for name,(sql,p) in qs.items():
    t=time.perf_counter(); rows=c.execute(sql,p).fetchall(); dt=time.perf_counter()-t
    total+=dt
    print(f"{name}: {dt*1000:.0f} ms, {len(rows)} rows")
    for r in c.execute("EXPLAIN QUERY PLAN "+sql,p).fetchall(): print("   ", r[3])

print(f"total: {total*1000:.0f} ms")
