#!/usr/bin/env python3
"""The funnel report's store reads, one by one, on a data directory kept by `run.py --keep`.

Runs the statements of crates/store/src/funnel.rs (copies: keep them in step with it) with Python's SQLite and prints each one's time and query
plan, so that the report's cost can be told apart from rendering and the slowest read found.
With BEFORE=1, also the statements that walked the moves themselves before migration 16 kept
the cohorts (the same figures), for a comparison on the same data.

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
 'mql_weeks': (f"""WITH RECURSIVE
     span(first, last) AS (
         SELECT (SELECT min(at) FROM mql_cohorts WHERE workspace_id = ?1 AND at >= ?2 AND at < ?3),
                (SELECT max(at) FROM mql_cohorts WHERE workspace_id = ?1 AND at >= ?2 AND at < ?3)
     ),
     weeks(week, last) AS (
         SELECT {wk('first')}, last FROM span WHERE first IS NOT NULL
         UNION ALL
         SELECT week + {WEEK}, last FROM weeks WHERE week + {WEEK} <= last
     )
     SELECT week, (SELECT count(*) FROM mql_cohorts
                   WHERE workspace_id = ?1 AND at >= max(week, ?2) AND at < min(week + {WEEK}, ?3)
                     AND (previous_at IS NULL OR previous_at < max(week, ?2)))
     FROM weeks""", (1,frm,to)),
 'share_weeks': ("""SELECT week, sum(change), sum(scores) FROM (
     SELECT week, change, 0 AS scores FROM tier_changes_by_week WHERE score = ?2 AND tier = ?3 AND week >= ?4 AND model_id IN (SELECT id FROM models WHERE workspace_id = ?1)
     UNION ALL
     SELECT week, 0, scores FROM first_scores_by_week WHERE score = ?2 AND week >= ?4 AND model_id IN (SELECT id FROM models WHERE workspace_id = ?1)
   ) GROUP BY week HAVING sum(change) <> 0 OR sum(scores) <> 0 ORDER BY week DESC""", (1,'engagement','hot',frm)),
}
qs['journeys'] = ("""SELECT lead_id, at, sal, sql, opportunity, customer FROM mql_cohorts
 WHERE workspace_id = ?1 AND at >= ?2 AND at < ?3 AND at <= ?4 AND (previous_at IS NULL OR previous_at < ?2)""", (1,frm,to,now))
qs['outcomes'] = ("""SELECT t.stage_history_id IS NOT NULL,
        CASE WHEN t.stage_history_id IS NULL
             THEN (SELECT ls.tier FROM lead_scores ls WHERE ls.lead_id = o.lead_id AND ls.score = ?2)
             ELSE t.tier END,
        o.stage = 'customer'
 FROM outcome_moves o
 LEFT JOIN mql_move_tiers t ON t.stage_history_id = o.mql_move_id AND t.score = ?2
 WHERE o.workspace_id = ?1 AND o.at >= ?3 AND o.at < ?4 AND o.current AND (o.next_at IS NULL OR o.next_at >= ?4)""", (1,'engagement',frm,to))

if os.environ.get('BEFORE'):
    qs['mql_weeks (before)'] = (f"SELECT {wk('h.at')} AS week, count(DISTINCT h.lead_id) FROM stage_history h WHERE h.workspace_id = ?1 AND h.stage = 'mql' AND h.at >= ?2 AND h.at < ?3 GROUP BY week ORDER BY week", (1,frm,to))
    first = lambda st: f"min(CASE WHEN s.stage = '{st}' THEN s.at END)"
    qs['journeys (before)'] = (f"""WITH cohort AS (SELECT h.lead_id, min(h.at) AS mql FROM stage_history h WHERE h.workspace_id = ?1 AND h.stage = 'mql' AND h.at >= ?2 AND h.at < ?3 AND h.at <= ?4 GROUP BY h.lead_id)
     SELECT c.lead_id, c.mql, {first('sal')}, {first('sql')}, {first('opportunity')}, {first('customer')} FROM cohort c LEFT JOIN stage_history s ON s.lead_id = c.lead_id AND s.at >= c.mql AND s.at <= ?4 GROUP BY c.lead_id ORDER BY c.lead_id""", (1,frm,to,now))
    qs['outcomes (before)'] = ("""WITH RECURSIVE
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

totals={'': 0, ' (before)': 0}
results={}
for name,(sql,p) in qs.items():
    t=time.perf_counter(); rows=c.execute(sql,p).fetchall(); dt=time.perf_counter()-t
    totals[' (before)' if name.endswith(' (before)') else '']+=dt
    if name == 'mql_weeks':
        rows = [r for r in rows if r[1] > 0]
    if name == 'outcomes':
        # Counted by tier as the store counts them (it steps through the rows rather than sorting them).
        counts = {}
        for at_mql, tier, won in rows:
            counted = counts.setdefault((tier, at_mql), [0, 0])
            counted[0 if won else 1] += 1
        rows = [(tier, at_mql, won, lost) for (tier, at_mql), (won, lost) in counts.items()]
    if name == 'journeys':
        rows = [r[:2] + tuple(a if a is not None and a <= now else None for a in r[2:]) for r in rows]
    results[name]=sorted(rows, key=repr)
    print(f"{name}: {dt*1000:.0f} ms, {len(rows)} rows")
    for r in c.execute("EXPLAIN QUERY PLAN "+sql,p).fetchall(): print("   ", r[3])

print(f"total: {totals['']*1000:.0f} ms")
if os.environ.get('BEFORE'):
    print(f"total of the statements before: {totals[' (before)']*1000:.0f} ms")
    for name in ['mql_weeks', 'journeys', 'outcomes']:
        same = results[name] == results[name + ' (before)']
        print(f"{name}: {'the same rows' if same else 'DIFFERENT ROWS'} as before")
