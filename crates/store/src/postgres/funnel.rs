//! PostgreSQL queries of the funnel report (see [`crate::funnel`] for SQLite's, whose answers
//! these are): leads per tier and per stage now, leads entering MQL per week, the way of a
//! period's MQLs through the funnel, the share of leads in a tier at the end of each week, and
//! the outcomes of leads by the tier they had when they became MQL.
//!
//! # The kept counts
//! As in SQLite, the report reads small tables the writer keeps (`0002_funnel_counts.sql`, the
//! same tables as SQLite's `0015_funnel_counts.sql` and `0016_funnel_cohorts.sql`; the counters
//! made appended changes by `0004_funnel_counts_appended.sql`, see "Several writers"), changed by
//! triggers in the statement that changes what they count, so that they cannot drift from the
//! rows: `tier_counts` (leads per model version, score and tier), `stage_counts` (leads per
//! workspace and stage, merged ones left out), `tier_changes_by_week` and `first_scores_by_week`
//! (per week, the score history entries entering and leaving a tier, and the scores first
//! given), `mql_move_tiers` (a lead's tiers when it moved to MQL), `mql_cohorts` (per MQL move,
//! the MQL move before it and the first later moves to each stage) and `outcome_moves` (per move
//! to an outcome, whether it is the lead's stage now, its next move to that stage and its latest
//! MQL move). The triggers are PL/pgSQL functions written as SQLite's: `IS` is
//! `IS NOT DISTINCT FROM`, a counter's change is a row appended (see below), and the null tier of
//! `tier_counts` is one key when summed (`GROUP BY` groups nulls). An
//! erasure deletes the erased leads' rows of `mql_cohorts` and `outcome_moves` itself, with their
//! stage moves, as SQLite's does; the other tables follow the deleted rows by triggers.
//!
//! # Several writers
//! Every transaction that creates a lead, changes a tier or stage, or first gives a score changes
//! a count that many others change too (the `lead` stage's, the active version's tiers', the
//! current week's). Kept as one row per key updated in place (as SQLite keeps them, with its one
//! writer), those rows would be held locked by each writing transaction until it commits: the
//! requests of every instance would queue on them, and two taking two of them in opposite orders
//! would deadlock. So the counters here hold *changes* (`0004_funnel_counts_appended.sql`): a
//! trigger appends a row (`+1` in the tier entered, `-1` in the tier left), an insert waits for
//! no one, and a count is the sum of its key's rows, which every read here takes.
//!
//! [`fold_counts`] keeps the reads short: every second or so (the store's folder,
//! [`super::FOLD_COUNTS_EVERY`]) it replaces the rows of each key that has several by one row
//! holding their sum, in one statement per table. It deletes only rows its snapshot sees
//! (committed ones) and inserts their sum in the same transaction, so a reader sees either the
//! rows or their sum, never both nor neither; rows committed meanwhile are left for the next
//! fold. Nothing else updates or deletes a counter row, and folds take turns (an advisory lock),
//! so a fold waits for no writer and no writer for it.
//!
//! The cohort rows (`mql_cohorts`, `outcome_moves`) are a lead's own, never shared: a move's
//! triggers lock the lead's row first (the lock the move's update of the stage takes anyway), so
//! that two moves of one lead stored at once see each other.
//!
//! # What differs from SQLite
//! - Tiers and stages are ordered by byte (`COLLATE "C"`) and a null tier first, as SQLite orders
//!   them, whatever the database's collation.
//! - Counts grouped in the database where SQLite counts them in Rust (SQLite would sort the rows
//!   to group them; PostgreSQL hashes them), and one statement per read sent without a separate
//!   round trip to prepare it.
//! - A counter is the sum of the changes appended to it, folded in the background, where SQLite
//!   updates one row per key (see "Several writers").
//! - Counts are `BIGINT`s, and PostgreSQL's `sum` of them a `NUMERIC`: cast back.

use postgres::types::{ToSql, Type};

use crate::StoreError;
use crate::funnel::*;
use crate::postgres::tx::Tx;

/// A query parameter with its type, for [`postgres::Transaction::query_typed`], which sends the
/// statement with its parameters in one round trip instead of preparing it first.
type Typed<'a> = (&'a (dyn ToSql + Sync), Type);

/// How many leads of the workspace (merged ones left out) are in each tier of a score now;
/// `None` counts leads whose value is in no tier.
pub(crate) fn tier_counts(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    score: &str,
) -> Result<Vec<(Option<String>, i64)>, StoreError> {
    let rows = connection.query_typed(
        "SELECT tier, sum(leads)::BIGINT FROM tier_counts
         WHERE score = $2 AND model_id IN (SELECT id FROM models WHERE workspace_id = $1)
         GROUP BY tier HAVING sum(leads) > 0 ORDER BY tier COLLATE \"C\" NULLS FIRST",
        &[(&workspace_id, Type::INT8), (&score, Type::TEXT)],
    )?;
    rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect()
}

/// How many leads of the workspace (merged ones left out) are in each stage now.
pub(crate) fn stage_counts(connection: &mut Tx<'_>, workspace_id: i64) -> Result<Vec<(String, i64)>, StoreError> {
    let rows = connection.query_typed(
        "SELECT stage, sum(leads)::BIGINT FROM stage_counts WHERE workspace_id = $1
         GROUP BY stage HAVING sum(leads) > 0 ORDER BY stage COLLATE \"C\"",
        &[(&workspace_id, Type::INT8)],
    )?;
    rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect()
}

/// The counters, each with the columns of its key and the column of its change.
const COUNTERS: &[(&str, &str, &str)] = &[
    ("tier_counts", "model_id, score, tier", "leads"),
    ("stage_counts", "workspace_id, stage", "leads"),
    ("tier_changes_by_week", "model_id, score, week, tier", "change"),
    ("first_scores_by_week", "model_id, score, week", "scores"),
];

/// Any number that no other application takes advisory locks with on the same database.
const FOLD_LOCK: i64 = 7_305_683_311_020_551;

/// Replaces the rows of each counted key that has several by one row holding their sum (a key
/// summing to zero keeps none), in every counter: see "Several writers" in the module's doc.
/// Answers how many rows it removed, or `None` when another fold holds the turn.
pub(crate) fn fold_counts(connection: &mut Tx<'_>) -> Result<Option<u64>, StoreError> {
    let granted: bool = connection.query_one("SELECT pg_try_advisory_xact_lock($1)", &[&FOLD_LOCK])?.get(0);
    if !granted {
        return Ok(None);
    }
    let mut removed = 0;
    for (table, key, change) in COUNTERS {
        // By the rows' physical address, which names a row whatever nulls its key holds.
        let sql = format!(
            "WITH folded AS (
                 DELETE FROM {table} WHERE ctid IN (
                     SELECT ctid FROM (SELECT ctid, count(*) OVER (PARTITION BY {key}) AS rows FROM {table}) AS keyed
                     WHERE rows > 1
                 )
                 RETURNING {key}, {change}
             ), summed AS (
                 INSERT INTO {table} ({key}, {change})
                 SELECT {key}, sum({change}) FROM folded GROUP BY {key} HAVING sum({change}) <> 0
             )
             SELECT count(*) FROM folded"
        );
        let rows: i64 = connection.query_one(&sql, &[])?.get(0);
        removed += rows.unsigned_abs();
    }
    Ok(Some(removed))
}

/// Leads of the workspace entering stage `mql` in `[from, to)`, by the week (its Monday) of
/// their entry, weeks without any left out; a lead entering twice in a week counts once.
///
/// An entry counts when the lead's MQL entry before it is before the period or the week: it is
/// the lead's first of the week in the period. Counted week by week over the cohort rows' range,
/// each week one range of the cohort rows' key, as SQLite's.
pub(crate) fn mql_entries_by_week(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    from: i64,
    to: i64,
) -> Result<Vec<(i64, i64)>, StoreError> {
    let sql = format!(
        "WITH span AS (
             SELECT min(at) AS first, max(at) AS last FROM mql_cohorts
             WHERE workspace_id = $1 AND at >= $2 AND at < $3
         )
         SELECT w.week, (SELECT count(*) FROM mql_cohorts c
                         WHERE c.workspace_id = $1 AND c.at >= greatest(w.week, $2) AND c.at < least(w.week + {WEEK}, $3)
                           AND (c.previous_at IS NULL OR c.previous_at < greatest(w.week, $2)))
         FROM span, generate_series({first}, span.last, {WEEK}) AS w (week)
         WHERE span.first IS NOT NULL
         ORDER BY w.week",
        first = week_of("span.first")
    );
    let params: [Typed<'_>; 3] = [(&workspace_id, Type::INT8), (&from, Type::INT8), (&to, Type::INT8)];
    let weeks = connection.query_typed(&sql, &params)?;
    let mut counted = Vec::with_capacity(weeks.len());
    for week in &weeks {
        let (monday, entries): (i64, i64) = (week.try_get(0)?, week.try_get(1)?);
        // Weeks without entries are left out here rather than by a condition on the count, which
        // would count each week twice.
        if entries > 0 {
            counted.push((monday, entries));
        }
    }
    Ok(counted)
}

/// The leads of the workspace that entered MQL in `[from, to)` (the cohort) and their way
/// further, through the moves recorded up to `now`. One row per lead of the cohort, by lead id.
///
/// One range of the kept cohort rows (see the module's doc): each lead's first entry in the
/// period is the one whose previous MQL entry is before the period, and it holds the lead's
/// first move to each later stage at or after it, which counts if it was made by `now`.
pub(crate) fn mql_journeys(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    from: i64,
    to: i64,
    now: i64,
) -> Result<Vec<Journey>, StoreError> {
    let params: [Typed<'_>; 4] =
        [(&workspace_id, Type::INT8), (&from, Type::INT8), (&to, Type::INT8), (&now, Type::INT8)];
    let rows = connection.query_typed(
        "SELECT lead_id, at, sal, sql, opportunity, customer FROM mql_cohorts
         WHERE workspace_id = $1 AND at >= $2 AND at < $3 AND at <= $4 AND (previous_at IS NULL OR previous_at < $2)
         ORDER BY lead_id",
        &params,
    )?;
    // A move counts if it was made by `now` (a test's or a past instant; the moves are usually
    // all older), which is compared here rather than by four expressions per row.
    let by_now = |at: Option<i64>| at.filter(|&at| at <= now);
    rows.iter()
        .map(|row| {
            Ok(Journey {
                lead_id: row.try_get(0)?,
                mql: row.try_get(1)?,
                sal: by_now(row.try_get(2)?),
                sql: by_now(row.try_get(3)?),
                opportunity: by_now(row.try_get(4)?),
                customer: by_now(row.try_get(5)?),
            })
        })
        .collect()
}

/// For each week from the one holding `from` to the one holding `now`: how many of the
/// workspace's leads were in `tier` of `score` at the week's end (at `now` for the current
/// week), a lead's tier then being that of its latest score history entry before it.
///
/// Counted backwards from the current scores, `counts_now` ([`tier_counts`] of the same score,
/// read in the same snapshot): the count at a week's end is today's minus the changes of the
/// weeks after it, read from the weekly changes the writer keeps (see the module's doc).
pub(crate) fn tier_share_by_week(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    score: &str,
    tier: &str,
    counts_now: &[(Option<String>, i64)],
    from: i64,
    now: i64,
) -> Result<Vec<WeekShare>, StoreError> {
    let first = week_start(from);
    let changes = weekly_changes(connection, workspace_id, score, tier, first)?;
    Ok(count_back(tier, counts_now, changes, first, now))
}

/// The changes of each week from `first` (a Monday) on, newest first, weeks without any left
/// out: the change of the count in `tier`, and the scores first given.
fn weekly_changes(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    score: &str,
    tier: &str,
    first: i64,
) -> Result<Vec<WeekChange>, StoreError> {
    let params: [Typed<'_>; 4] =
        [(&workspace_id, Type::INT8), (&score, Type::TEXT), (&tier, Type::TEXT), (&first, Type::INT8)];
    let rows = connection.query_typed(
        "SELECT week, sum(change)::BIGINT, sum(scores)::BIGINT FROM (
             SELECT week, change, 0 AS scores FROM tier_changes_by_week
             WHERE score = $2 AND tier = $3 AND week >= $4 AND model_id IN (SELECT id FROM models WHERE workspace_id = $1)
             UNION ALL
             SELECT week, 0, scores FROM first_scores_by_week
             WHERE score = $2 AND week >= $4 AND model_id IN (SELECT id FROM models WHERE workspace_id = $1)
         ) AS changes
         GROUP BY week HAVING sum(change) <> 0 OR sum(scores) <> 0 ORDER BY week DESC",
        &params,
    )?;
    rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))).collect()
}

/// The workspace's leads now in `customer`, `lost` or `disqualified` that moved there in
/// `[from, to)`, counted by the tier of `score` they had when they last became MQL before it
/// (recorded with the move), else by their tier now.
///
/// One range of the kept outcome moves (see the module's doc): a lead's latest move to its
/// current stage in the period is the one whose next move to that stage is after the period,
/// and it names the lead's latest MQL move before it, whose tiers were recorded with it.
pub(crate) fn outcomes_by_tier(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    score: &str,
    from: i64,
    to: i64,
) -> Result<Vec<OutcomesByTier>, StoreError> {
    let params: [Typed<'_>; 4] =
        [(&workspace_id, Type::INT8), (&score, Type::TEXT), (&from, Type::INT8), (&to, Type::INT8)];
    let rows = connection.query_typed(
        "SELECT t.stage_history_id IS NOT NULL,
                CASE WHEN t.stage_history_id IS NULL
                     THEN (SELECT ls.tier FROM lead_scores ls WHERE ls.lead_id = o.lead_id AND ls.score = $2)
                     ELSE t.tier END,
                count(*) FILTER (WHERE o.stage = 'customer'),
                count(*) FILTER (WHERE o.stage <> 'customer')
         FROM outcome_moves o
         LEFT JOIN mql_move_tiers t ON t.stage_history_id = o.mql_move_id AND t.score = $2
         WHERE o.workspace_id = $1 AND o.at >= $3 AND o.at < $4 AND o.current AND (o.next_at IS NULL OR o.next_at >= $4)
         GROUP BY 1, 2",
        &params,
    )?;
    let mut counted = rows
        .iter()
        .map(|row| {
            Ok(OutcomesByTier {
                at_mql: row.try_get(0)?,
                tier: row.try_get(1)?,
                won: row.try_get(2)?,
                lost: row.try_get(3)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    // SQLite's order: the tiers at MQL first, then by tier (a null one first, by byte).
    counted.sort_by(|a, b| (b.at_mql, &a.tier).cmp(&(a.at_mql, &b.tier)));
    Ok(counted)
}

/// The figures of the kept counts, counted from the rows themselves (as SQLite's tests count
/// them): what the tests compare the kept counts with.
#[cfg(test)]
mod recount {
    use crate::funnel::{Journey, OutcomesByTier, WeekChange, week_of};
    use crate::postgres::Tx;

    /// [`super::tier_counts`], counted from every current score.
    fn tier_counts(c: &mut Tx<'_>, workspace_id: i64, score: &str) -> Vec<(Option<String>, i64)> {
        let rows = c
            .query(
                "SELECT s.tier, count(*) FROM lead_scores s
                 WHERE s.score = $2 AND s.model_id IN (SELECT id FROM models WHERE workspace_id = $1)
                 GROUP BY s.tier ORDER BY s.tier COLLATE \"C\" NULLS FIRST",
                &[&workspace_id, &score],
            )
            .unwrap();
        rows.iter().map(|row| (row.get(0), row.get(1))).collect()
    }

    /// [`super::stage_counts`], counted from every lead row.
    fn stage_counts(c: &mut Tx<'_>, workspace_id: i64) -> Vec<(String, i64)> {
        let rows = c
            .query(
                "SELECT stage, count(*) FROM leads WHERE workspace_id = $1 AND merged_into IS NULL
                 GROUP BY stage ORDER BY stage COLLATE \"C\"",
                &[&workspace_id],
            )
            .unwrap();
        rows.iter().map(|row| (row.get(0), row.get(1))).collect()
    }

    /// [`super::weekly_changes`], counted from every history entry since `first`.
    fn weekly_changes(c: &mut Tx<'_>, workspace_id: i64, score: &str, tier: &str, first: i64) -> Vec<WeekChange> {
        let sql = format!(
            "SELECT week, tier_change, new FROM (
                 SELECT {} AS week,
                        count(*) FILTER (WHERE tier = $3) - count(*) FILTER (WHERE previous_tier = $3) AS tier_change,
                        count(*) FILTER (WHERE previous_id IS NULL) AS new
                 FROM score_history
                 WHERE score = $2 AND at >= $4 AND model_id IN (SELECT id FROM models WHERE workspace_id = $1)
                 GROUP BY 1
             ) AS weeks WHERE tier_change <> 0 OR new <> 0 ORDER BY week DESC",
            week_of("at")
        );
        let rows = c.query(&sql, &[&workspace_id, &score, &tier, &first]).unwrap();
        rows.iter().map(|row| (row.get(0), row.get(1), row.get(2))).collect()
    }

    /// [`super::mql_entries_by_week`], counted from every MQL move of the period.
    fn mql_entries_by_week(c: &mut Tx<'_>, workspace_id: i64, from: i64, to: i64) -> Vec<(i64, i64)> {
        let sql = format!(
            "SELECT {} AS week, count(DISTINCT h.lead_id) FROM stage_history h
             WHERE h.workspace_id = $1 AND h.stage = 'mql' AND h.at >= $2 AND h.at < $3
             GROUP BY 1 ORDER BY 1",
            week_of("h.at")
        );
        let rows = c.query(&sql, &[&workspace_id, &from, &to]).unwrap();
        rows.iter().map(|row| (row.get(0), row.get(1))).collect()
    }

    /// [`super::mql_journeys`], joining each MQL entry of the period with its lead's later moves.
    fn mql_journeys(c: &mut Tx<'_>, workspace_id: i64, from: i64, to: i64, now: i64) -> Vec<Journey> {
        let rows = c
            .query(
                "WITH cohort AS (
                     SELECT h.lead_id, min(h.at) AS mql FROM stage_history h
                     WHERE h.workspace_id = $1 AND h.stage = 'mql' AND h.at >= $2 AND h.at < $3 AND h.at <= $4
                     GROUP BY h.lead_id
                 )
                 SELECT c.lead_id, c.mql,
                        min(s.at) FILTER (WHERE s.stage = 'sal'), min(s.at) FILTER (WHERE s.stage = 'sql'),
                        min(s.at) FILTER (WHERE s.stage = 'opportunity'), min(s.at) FILTER (WHERE s.stage = 'customer')
                 FROM cohort c
                 LEFT JOIN stage_history s ON s.lead_id = c.lead_id AND s.at >= c.mql AND s.at <= $4
                 GROUP BY c.lead_id, c.mql ORDER BY c.lead_id",
                &[&workspace_id, &from, &to, &now],
            )
            .unwrap();
        rows.iter()
            .map(|row| Journey {
                lead_id: row.get(0),
                mql: row.get(1),
                sal: row.get(2),
                sql: row.get(3),
                opportunity: row.get(4),
                customer: row.get(5),
            })
            .collect()
    }

    /// [`super::outcomes_by_tier`], walking each lead's score history back to its MQL time.
    fn outcomes_by_tier(c: &mut Tx<'_>, workspace_id: i64, score: &str, from: i64, to: i64) -> Vec<OutcomesByTier> {
        let rows = c
            .query(
                "WITH RECURSIVE
                 outcome(lead_id, won, at) AS (
                     SELECT h.lead_id, bool_and(h.stage = 'customer'), max(h.at)
                     FROM stage_history h JOIN leads l ON l.id = h.lead_id
                     WHERE h.workspace_id = $1 AND h.stage IN ('customer', 'lost', 'disqualified')
                       AND h.at >= $3 AND h.at < $4 AND l.stage = h.stage AND l.merged_into IS NULL
                     GROUP BY h.lead_id
                 ),
                 marked(lead_id, won, mql) AS (
                     SELECT o.lead_id, o.won,
                            (SELECT max(s.at) FROM stage_history s
                             WHERE s.lead_id = o.lead_id AND s.stage = 'mql' AND s.at <= o.at)
                     FROM outcome o
                 ),
                 chain(lead_id, won, id, mql) AS (
                     SELECT m.lead_id, m.won, ls.history_id, m.mql FROM marked m
                     JOIN lead_scores ls ON ls.lead_id = m.lead_id AND ls.score = $2
                     WHERE m.mql IS NOT NULL AND ls.history_id IS NOT NULL
                     UNION ALL
                     SELECT c.lead_id, c.won, h.previous_id, c.mql FROM chain c JOIN score_history h ON h.id = c.id
                     WHERE h.at > c.mql AND h.previous_id IS NOT NULL
                 ),
                 known(lead_id, won, tier) AS (
                     SELECT c.lead_id, c.won, h.tier FROM chain c JOIN score_history h ON h.id = c.id WHERE h.at <= c.mql
                 )
                 SELECT tier, true, count(*) FILTER (WHERE won), count(*) FILTER (WHERE NOT won) FROM known GROUP BY tier
                 UNION ALL
                 SELECT ls.tier, false, count(*) FILTER (WHERE m.won), count(*) FILTER (WHERE NOT m.won) FROM marked m
                 LEFT JOIN lead_scores ls ON ls.lead_id = m.lead_id AND ls.score = $2
                 WHERE m.lead_id NOT IN (SELECT lead_id FROM known)
                 GROUP BY ls.tier",
                &[&workspace_id, &score, &from, &to],
            )
            .unwrap();
        let mut rows: Vec<OutcomesByTier> = rows
            .iter()
            .map(|row| OutcomesByTier { tier: row.get(0), at_mql: row.get(1), won: row.get(2), lost: row.get(3) })
            .collect();
        rows.sort_by(|a, b| (b.at_mql, &a.tier).cmp(&(a.at_mql, &b.tier)));
        rows
    }

    /// Every workspace's kept counts, of every score and tier in the store, equal their recount.
    pub(super) fn assert_kept_counts_equal(c: &mut Tx<'_>) {
        let column = |c: &mut Tx<'_>, sql: &str| -> Vec<String> {
            c.query(sql, &[]).unwrap().iter().map(|row| row.get(0)).collect()
        };
        let workspaces: Vec<i64> =
            c.query("SELECT id FROM workspaces", &[]).unwrap().iter().map(|r| r.get(0)).collect();
        let scores = column(c, "SELECT score FROM score_history UNION SELECT score FROM lead_scores");
        let tiers = column(
            c,
            "SELECT tier FROM score_history WHERE tier IS NOT NULL
             UNION SELECT previous_tier FROM score_history WHERE previous_tier IS NOT NULL",
        );
        // Periods from the earliest to the latest move, and between the moves' quartiles, at
        // their edges: every move is at the edge of some period.
        let times: Vec<i64> =
            c.query("SELECT at FROM stage_history ORDER BY at", &[]).unwrap().iter().map(|r| r.get(0)).collect();
        let mut edges = vec![i64::MIN / 2, i64::MAX / 2];
        edges.extend((1..4).filter_map(|quarter| times.get(times.len() * quarter / 4)));
        let periods: Vec<(i64, i64)> = edges
            .iter()
            .flat_map(|&from| edges.iter().filter(move |&&to| to > from).map(move |&to| (from, to)))
            .collect();
        for &workspace_id in &workspaces {
            assert_eq!(super::stage_counts(c, workspace_id).unwrap(), stage_counts(c, workspace_id));
            for &(from, to) in &periods {
                assert_eq!(
                    super::mql_entries_by_week(c, workspace_id, from, to).unwrap(),
                    mql_entries_by_week(c, workspace_id, from, to),
                    "the MQL entries by week of [{from}, {to}) in workspace {workspace_id}"
                );
                for &now in &edges {
                    assert_eq!(
                        super::mql_journeys(c, workspace_id, from, to, now).unwrap(),
                        mql_journeys(c, workspace_id, from, to, now),
                        "the journeys of [{from}, {to}) at {now} in workspace {workspace_id}"
                    );
                }
            }
            for score in &scores {
                for &(from, to) in &periods {
                    assert_eq!(
                        super::outcomes_by_tier(c, workspace_id, score, from, to).unwrap(),
                        outcomes_by_tier(c, workspace_id, score, from, to),
                        "the outcomes by the tier at MQL of {score} in [{from}, {to}) in workspace {workspace_id}"
                    );
                }
                assert_eq!(
                    super::tier_counts(c, workspace_id, score).unwrap(),
                    tier_counts(c, workspace_id, score),
                    "the tiers of {score} in workspace {workspace_id}"
                );
                for tier in &tiers {
                    // From the earliest week: every week's change is compared.
                    let first = i64::MIN / 2;
                    assert_eq!(
                        super::weekly_changes(c, workspace_id, score, tier, first).unwrap(),
                        weekly_changes(c, workspace_id, score, tier, first),
                        "the weekly changes of {score} in {tier} in workspace {workspace_id}"
                    );
                }
            }
        }
        let negative: i64 = c
            .query_one(
                "SELECT (SELECT count(*) FROM (SELECT 1 FROM tier_counts GROUP BY model_id, score, tier
                                               HAVING sum(leads) < 0) AS t)
                      + (SELECT count(*) FROM (SELECT 1 FROM stage_counts GROUP BY workspace_id, stage
                                               HAVING sum(leads) < 0) AS s)
                      + (SELECT count(*) FROM (SELECT 1 FROM first_scores_by_week GROUP BY model_id, score, week
                                               HAVING sum(scores) < 0) AS f)",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(negative, 0, "a count below zero");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::testing::TestDatabase;

    const DAY: i64 = 86_400_000;
    /// Monday 2026-11-02 00:00 UTC.
    const MONDAY: i64 = 1_793_577_600_000;

    // The rows the other families write, written here as their SQLite functions write them
    // (`leads::create`, `scores::save`, `stages::set`, `merge`, `erasure::erase`): the triggers
    // under test see the same statements.

    fn workspace(c: &mut Tx<'_>, name: &str) -> i64 {
        c.query_one("INSERT INTO workspaces (name, created_at) VALUES ($1, 0) RETURNING id", &[&name]).unwrap().get(0)
    }

    fn model(c: &mut Tx<'_>, workspace_id: i64) -> i64 {
        c.query_one(
            "INSERT INTO models (workspace_id, version, source, created_at)
             SELECT $1, coalesce(max(version), 0) + 1, '', 0 FROM models WHERE workspace_id = $1 RETURNING id",
            &[&workspace_id],
        )
        .unwrap()
        .get(0)
    }

    fn lead(c: &mut Tx<'_>, workspace_id: i64) -> i64 {
        c.query_one(
            "INSERT INTO leads (id, workspace_id, created_at, updated_at) VALUES (nextval('lead_ids'), $1, 0, 0)
             RETURNING id",
            &[&workspace_id],
        )
        .unwrap()
        .get(0)
    }

    /// Saves a score as `scores::save` does: a history entry naming the tier and entry before it
    /// when the score is new, its tier changed, or (`every_change`) its value changed; then the
    /// current score, inserted or updated.
    #[allow(clippy::too_many_arguments)]
    fn save_score(
        c: &mut Tx<'_>,
        lead_id: i64,
        model_id: i64,
        score: &str,
        tier: Option<&str>,
        value: f64,
        at: i64,
        every_change: bool,
    ) {
        let before = c
            .query_opt(
                "SELECT tier, value, history_id FROM lead_scores WHERE lead_id = $1 AND score = $2",
                &[&lead_id, &score],
            )
            .unwrap()
            .map(|row| (row.get::<_, Option<String>>(0), row.get::<_, f64>(1), row.get::<_, Option<i64>>(2)));
        let recorded = match &before {
            None => true,
            Some((previous_tier, previous_value, _)) => {
                previous_tier.as_deref() != tier || (every_change && *previous_value != value)
            }
        };
        let (previous_tier, previous_id) = before.as_ref().map_or((None, None), |(t, _, id)| (t.clone(), *id));
        let mut history_id = previous_id;
        if recorded {
            let id: i64 = c
                .query_one(
                    "INSERT INTO score_history (lead_id, score, value, tier, previous_tier, model_id, at, cause, previous_id)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'event', $8) RETURNING id",
                    &[&lead_id, &score, &value, &tier, &previous_tier, &model_id, &at, &previous_id],
                )
                .unwrap()
                .get(0);
            history_id = Some(id);
        }
        let sql = match before {
            Some(_) => {
                "UPDATE lead_scores SET value = $3, tier = $4, model_id = $5, evaluated_at = $6, history_id = $7
                 WHERE lead_id = $1 AND score = $2"
            }
            None => {
                "INSERT INTO lead_scores (lead_id, score, value, tier, model_id, evaluated_at, history_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)"
            }
        };
        c.execute(sql, &[&lead_id, &score, &value, &tier, &model_id, &at, &history_id]).unwrap();
    }

    fn scored(c: &mut Tx<'_>, lead_id: i64, model_id: i64, tier: &str, value: f64, at: i64) {
        save_score(c, lead_id, model_id, "fit", Some(tier), value, at, true);
    }

    /// Moves a lead as `stages::set` does: its stage, then the move with its workspace.
    fn moved(c: &mut Tx<'_>, lead_id: i64, stage: &str, at: i64) {
        c.execute("UPDATE leads SET stage = $1, updated_at = $2 WHERE id = $3", &[&stage, &at, &lead_id]).unwrap();
        c.execute(
            "INSERT INTO stage_history (lead_id, workspace_id, stage, previous, at, actor)
             SELECT $1, workspace_id, $2, 'lead', $3, 'ana@example.com' FROM leads WHERE id = $1",
            &[&lead_id, &stage, &at],
        )
        .unwrap();
    }

    /// Merges `from` into `into` as `merge` does: `from`'s scores go, its moves stay.
    fn merged(c: &mut Tx<'_>, from: i64, into: i64) {
        c.execute("DELETE FROM lead_scores WHERE lead_id = $1", &[&from]).unwrap();
        c.execute("UPDATE leads SET merged_into = $1, user_id = NULL WHERE id = $2", &[&into, &from]).unwrap();
    }

    /// Erases a lead and the leads merged into it as `erasure::erase` does; answers their ids.
    fn erased(c: &mut Tx<'_>, lead_id: i64) -> Vec<i64> {
        let group: Vec<i64> = c
            .query(
                "WITH RECURSIVE grouped(id) AS (
                     SELECT $1::BIGINT UNION SELECT l.id FROM leads l JOIN grouped g ON l.merged_into = g.id
                 )
                 SELECT id FROM grouped",
                &[&lead_id],
            )
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        for table in ["lead_scores", "score_history", "stage_history", "mql_cohorts", "outcome_moves"] {
            c.execute(&format!("DELETE FROM {table} WHERE lead_id = ANY($1)"), &[&group]).unwrap();
        }
        c.execute("DELETE FROM leads WHERE id = ANY($1) AND id <> $2", &[&group, &lead_id]).unwrap();
        c.execute("DELETE FROM leads WHERE id = $1", &[&lead_id]).unwrap();
        group
    }

    /// Workspaces `acme` (its id and a model version's id) and `globex` (another workspace whose
    /// leads must never count).
    fn two_workspaces(c: &mut Tx<'_>) -> (i64, i64, i64, i64) {
        let (acme, globex) = (workspace(c, "acme"), workspace(c, "globex"));
        let (model, their_model) = (model(c, acme), model(c, globex));
        (acme, model, globex, their_model)
    }

    #[test]
    fn mql_entries_count_each_lead_once_a_week_at_the_week_edges() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let c = &mut client.transaction();
        let (acme, _, globex, _) = two_workspaces(c);
        let (a, b, d, e, theirs) = (lead(c, acme), lead(c, acme), lead(c, acme), lead(c, acme), lead(c, globex));
        moved(c, a, "mql", MONDAY); // the first instant of week 1
        moved(c, b, "mql", MONDAY - 1); // the last instant of week 0
        moved(c, b, "nurture", MONDAY + DAY);
        moved(c, b, "mql", MONDAY + 2 * DAY); // b again, in week 1
        moved(c, d, "mql", MONDAY + WEEK + DAY); // week 2
        moved(c, d, "nurture", MONDAY + WEEK + 2 * DAY);
        moved(c, d, "mql", MONDAY + WEEK + 3 * DAY); // d twice in week 2: once
        moved(c, e, "mql", MONDAY + 2 * WEEK); // at the period's end: left out
        moved(c, theirs, "mql", MONDAY);
        let weeks = mql_entries_by_week(c, acme, MONDAY - WEEK, MONDAY + 2 * WEEK).unwrap();
        assert_eq!(weeks, [(MONDAY - WEEK, 1), (MONDAY, 2), (MONDAY + WEEK, 1)]);
        assert_eq!(mql_entries_by_week(c, acme, MONDAY + 3 * WEEK, MONDAY + 4 * WEEK).unwrap(), []);
    }

    #[test]
    fn journeys_follow_the_cohort_of_the_period_through_the_funnel() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let c = &mut client.transaction();
        let (acme, _, globex, _) = two_workspaces(c);
        let [a, b, skipper, before, theirs] =
            [lead(c, acme), lead(c, acme), lead(c, acme), lead(c, acme), lead(c, globex)];
        // a: MQL, SAL a day later, SQL two days after that, customer later, after the period.
        moved(c, a, "mql", MONDAY + DAY);
        moved(c, a, "sal", MONDAY + 2 * DAY);
        moved(c, a, "sql", MONDAY + 4 * DAY);
        moved(c, a, "customer", MONDAY + 20 * DAY);
        // b: MQL twice in the period (the first counts), then SAL.
        moved(c, b, "mql", MONDAY + 3 * DAY);
        moved(c, b, "nurture", MONDAY + 4 * DAY);
        moved(c, b, "mql", MONDAY + 5 * DAY);
        moved(c, b, "sal", MONDAY + 6 * DAY);
        // The skipper goes from MQL straight to SQL.
        moved(c, skipper, "mql", MONDAY + 2 * DAY);
        moved(c, skipper, "sql", MONDAY + 3 * DAY);
        // An MQL before the period and its SAL inside it: not of the cohort.
        moved(c, before, "mql", MONDAY - DAY);
        moved(c, before, "sal", MONDAY + DAY);
        moved(c, theirs, "mql", MONDAY + DAY);
        // Asked at `now` before a's customer move: it is not known yet.
        let journeys = mql_journeys(c, acme, MONDAY, MONDAY + WEEK, MONDAY + 10 * DAY).unwrap();
        let journey = |lead_id, mql, sal, sql| Journey { lead_id, mql, sal, sql, opportunity: None, customer: None };
        assert_eq!(
            journeys,
            [
                journey(a, MONDAY + DAY, Some(MONDAY + 2 * DAY), Some(MONDAY + 4 * DAY)),
                journey(b, MONDAY + 3 * DAY, Some(MONDAY + 6 * DAY), None),
                journey(skipper, MONDAY + 2 * DAY, None, Some(MONDAY + 3 * DAY)),
            ]
        );
        let later = mql_journeys(c, acme, MONDAY, MONDAY + WEEK, MONDAY + 30 * DAY).unwrap();
        assert_eq!(later[0].customer, Some(MONDAY + 20 * DAY), "known once `now` is past it");
    }

    #[test]
    fn the_tier_share_of_each_week_is_that_of_the_latest_history_before_its_end() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let c = &mut client.transaction();
        let (acme, model, globex, their_model) = two_workspaces(c);
        let (a, b, d, theirs) = (lead(c, acme), lead(c, acme), lead(c, acme), lead(c, globex));
        // Before the weeks asked: a is hot, b cold.
        scored(c, a, model, "hot", 80.0, MONDAY - 3 * WEEK);
        scored(c, b, model, "cold", 10.0, MONDAY - 3 * WEEK);
        // Week 0: b turns hot on its last instant; a changes value, not tier.
        scored(c, b, model, "hot", 70.0, MONDAY + WEEK - 1);
        scored(c, a, model, "hot", 90.0, MONDAY + DAY);
        // Week 1: a new lead d, cold; a cools down.
        scored(c, d, model, "cold", 5.0, MONDAY + WEEK);
        scored(c, a, model, "warm", 40.0, MONDAY + WEEK + DAY);
        // Week 2 (now): nothing changes. Another workspace's lead never counts.
        scored(c, theirs, their_model, "hot", 99.0, MONDAY + WEEK);
        let counts = tier_counts(c, acme, "fit").unwrap();
        let weeks =
            tier_share_by_week(c, acme, "fit", "hot", &counts, MONDAY - WEEK + DAY, MONDAY + 2 * WEEK + DAY).unwrap();
        let shares: Vec<(i64, i64, i64)> = weeks.iter().map(|w| (w.week, w.in_tier, w.scored)).collect();
        assert_eq!(
            shares,
            [
                (MONDAY - WEEK, 1, 2), // a hot, b cold
                (MONDAY, 2, 2),        // b hot on the week's last instant
                (MONDAY + WEEK, 1, 3), // a warm, d new
                (MONDAY + 2 * WEEK, 1, 3),
            ]
        );
    }

    #[test]
    fn outcomes_count_by_the_tier_at_mql_else_the_tier_now() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let c = &mut client.transaction();
        let (acme, model, _, _) = two_workspaces(c);
        let [won_warm, lost_warm, won_hot, never_mql, before] = [(); 5].map(|_| lead(c, acme));
        // Won: warm when it became MQL, hot later.
        scored(c, won_warm, model, "warm", 40.0, MONDAY);
        moved(c, won_warm, "mql", MONDAY);
        scored(c, won_warm, model, "hot", 80.0, MONDAY + DAY);
        moved(c, won_warm, "customer", MONDAY + 2 * DAY);
        // Lost: warm at MQL (a value change since, same tier).
        scored(c, lost_warm, model, "cold", 10.0, MONDAY - WEEK);
        scored(c, lost_warm, model, "warm", 45.0, MONDAY - DAY);
        moved(c, lost_warm, "mql", MONDAY);
        scored(c, lost_warm, model, "warm", 50.0, MONDAY + DAY);
        moved(c, lost_warm, "lost", MONDAY + 3 * DAY);
        // Won: hot at MQL.
        scored(c, won_hot, model, "hot", 90.0, MONDAY);
        moved(c, won_hot, "mql", MONDAY);
        moved(c, won_hot, "customer", MONDAY + DAY);
        // Disqualified without ever being MQL: counted by its tier now.
        scored(c, never_mql, model, "cold", 5.0, MONDAY);
        moved(c, never_mql, "disqualified", MONDAY + DAY);
        // Won before the period: not counted.
        scored(c, before, model, "hot", 90.0, MONDAY - WEEK);
        moved(c, before, "mql", MONDAY - WEEK);
        moved(c, before, "customer", MONDAY - DAY);
        let outcomes = outcomes_by_tier(c, acme, "fit", MONDAY, MONDAY + WEEK).unwrap();
        let row = |tier: &str, at_mql, won, lost| OutcomesByTier { tier: Some(tier.to_string()), at_mql, won, lost };
        assert_eq!(outcomes, [row("hot", true, 1, 0), row("warm", true, 1, 1), row("cold", false, 0, 1)]);
    }

    #[test]
    fn counts_now_are_the_workspaces_own() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let c = &mut client.transaction();
        let (acme, model, globex, their_model) = two_workspaces(c);
        let (a, b, d, theirs) = (lead(c, acme), lead(c, acme), lead(c, acme), lead(c, globex));
        scored(c, a, model, "hot", 80.0, MONDAY);
        scored(c, b, model, "hot", 70.0, MONDAY);
        scored(c, d, model, "cold", 7.0, MONDAY);
        scored(c, theirs, their_model, "cold", 1.0, MONDAY);
        moved(c, a, "mql", MONDAY);
        moved(c, theirs, "mql", MONDAY);
        assert_eq!(tier_counts(c, acme, "fit").unwrap(), [(Some("cold".to_string()), 1), (Some("hot".to_string()), 2)]);
        assert_eq!(stage_counts(c, acme).unwrap(), [("lead".to_string(), 2), ("mql".to_string(), 1)]);
    }

    /// Values in no tier are one count, ordered first as SQLite orders them, and tiers are
    /// ordered by byte whatever the database's collation.
    #[test]
    fn values_in_no_tier_are_one_count_and_tiers_are_ordered_as_sqlite_orders_them() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let c = &mut client.transaction();
        let (acme, model, _, _) = two_workspaces(c);
        let tiers = [None, Some("b"), None, Some("B"), Some("a"), None];
        for (i, tier) in tiers.into_iter().enumerate() {
            let id = lead(c, acme);
            save_score(c, id, model, "fit", tier, i as f64, MONDAY, true);
        }
        let count = |tier: Option<&str>, leads| (tier.map(str::to_string), leads);
        assert_eq!(
            tier_counts(c, acme, "fit").unwrap(),
            [count(None, 3), count(Some("B"), 1), count(Some("a"), 1), count(Some("b"), 1)]
        );
        // Folded, the changes of the values in no tier are one row.
        assert!(fold_counts(c).unwrap().is_some_and(|rows| rows > 0), "the rows of keys changed more than once");
        let rows: i64 = c.query_one("SELECT count(*) FROM tier_counts WHERE tier IS NULL", &[]).unwrap().get(0);
        assert_eq!(rows, 1, "one row counts the values in no tier");
        assert_eq!(
            tier_counts(c, acme, "fit").unwrap(),
            [count(None, 3), count(Some("B"), 1), count(Some("a"), 1), count(Some("b"), 1)]
        );
    }

    /// Moves stored out of time order (past moves recorded late) or at the same instant, MQL
    /// entered again and outcomes reached again keep the cohorts and the outcomes equal to a
    /// walk of the moves.
    #[test]
    fn moves_out_of_time_order_keep_the_cohorts_equal_to_a_recount() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let c = &mut client.transaction();
        let (acme, model, _, _) = two_workspaces(c);
        let (a, b) = (lead(c, acme), lead(c, acme));
        let moves = [
            (a, "customer", 5),
            (a, "mql", 1),
            (a, "sal", 3),
            (b, "lost", 3),
            (a, "mql", 4),
            (a, "customer", 2),
            (b, "mql", 2),
            (a, "mql", 4),
            (b, "lost", 1),
            (a, "opportunity", 4),
            (b, "mql", 3),
            (b, "disqualified", 3),
            (b, "lost", 3),
            (a, "customer", 4),
        ];
        // Scored before every move: the tier recorded with a move stored late is the tier at
        // its time.
        scored(c, a, model, "warm", 40.0, MONDAY);
        scored(c, b, model, "hot", 80.0, MONDAY);
        for (lead, stage, day) in moves {
            moved(c, lead, stage, MONDAY + day * DAY);
            recount::assert_kept_counts_equal(c);
        }
        let journeys = mql_journeys(c, acme, MONDAY, MONDAY + WEEK, MONDAY + WEEK).unwrap();
        assert_eq!(journeys.len(), 2, "both leads entered MQL in the week");
    }

    /// A small deterministic generator (xorshift): the same operations on every run.
    struct Dice(u64);

    impl Dice {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    /// Mixed writes in two workspaces over weeks, as the store's write paths make them: new and
    /// known leads scored (sometimes moved to MQL by it), rescorings recording tier changes only,
    /// stage moves, merges, activations of another version, and (`erasures`) erasures; `check`
    /// runs after each.
    fn mixed_writes(c: &mut Tx<'_>, steps: i64, erasures: bool, mut check: impl FnMut(&mut Tx<'_>)) {
        let (acme, acme_first, globex, globex_first) = two_workspaces(c);
        let (acme_second, globex_second) = (model(c, acme), model(c, globex));
        let models = [(acme, [acme_first, acme_second]), (globex, [globex_first, globex_second])];
        let mut active = [acme_first, globex_first];
        let mut dice = Dice(0x5eed_f00d);
        // (id, workspace, stage) of the leads not merged nor erased.
        let mut leads: Vec<(i64, i64, &str)> = Vec::new();
        let tiers = [None, Some("cold"), Some("warm"), Some("hot")];
        let stages = ["lead", "mql", "sal", "sql", "opportunity", "customer", "lost", "disqualified"];
        for step in 0..steps {
            let now = MONDAY - 4 * WEEK + step * (DAY / 3);
            let side = dice.below(2);
            let workspace_id = models[side].0;
            let ours: Vec<usize> = (0..leads.len()).filter(|&i| leads[i].1 == workspace_id).collect();
            let scores = |dice: &mut Dice| &["fit", "intent"][..1 + dice.below(2)];
            match dice.below(7) {
                0 | 1 => {
                    let known = (!ours.is_empty() && dice.below(2) == 0).then(|| ours[dice.below(ours.len())]);
                    let index = known.unwrap_or_else(|| {
                        leads.push((lead(c, workspace_id), workspace_id, "lead"));
                        leads.len() - 1
                    });
                    for score in scores(&mut dice) {
                        let tier = tiers[dice.below(tiers.len())];
                        let value = (dice.below(4) * 30) as f64;
                        save_score(c, leads[index].0, active[side], score, tier, value, now, true);
                    }
                    if dice.below(3) == 0 && leads[index].2 != "mql" {
                        moved(c, leads[index].0, "mql", now);
                        leads[index].2 = "mql";
                    }
                }
                2 if !ours.is_empty() => {
                    let id = leads[ours[dice.below(ours.len())]].0;
                    for score in scores(&mut dice) {
                        let tier = tiers[dice.below(tiers.len())];
                        let value = (dice.below(4) * 30) as f64;
                        save_score(c, id, active[side], score, tier, value, now, false);
                    }
                }
                3 if !ours.is_empty() => {
                    let index = ours[dice.below(ours.len())];
                    let stage = stages[dice.below(stages.len())];
                    moved(c, leads[index].0, stage, now);
                    leads[index].2 = stage;
                }
                4 if ours.len() >= 2 => {
                    let (from, _, _) = leads.remove(ours[dice.below(ours.len())]);
                    let others: Vec<usize> = (0..leads.len()).filter(|&i| leads[i].1 == workspace_id).collect();
                    merged(c, from, leads[others[dice.below(others.len())]].0);
                }
                5 => {
                    let next = models[side].1.into_iter().find(|&m| m != active[side]).unwrap();
                    active[side] = next;
                }
                6 if erasures && !ours.is_empty() && dice.below(4) == 0 => {
                    let (id, _, _) = leads.remove(ours[dice.below(ours.len())]);
                    erased(c, id);
                }
                _ => continue,
            }
            check(c);
        }
    }

    /// The kept counts equal a recount after every kind of write.
    #[test]
    fn the_kept_counts_equal_a_recount_after_every_write() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let c = &mut client.transaction();
        // Folded now and then: the counts are the same before and after a fold.
        let mut writes = 0;
        mixed_writes(c, 240, true, |c| {
            writes += 1;
            if writes % 7 == 0 {
                assert!(fold_counts(c).unwrap().is_some(), "the only fold has the turn");
            }
            recount::assert_kept_counts_equal(c);
        });
        let reached: (i64, i64, i64) = c
            .query_one(
                "SELECT (SELECT count(*) FROM leads WHERE merged_into IS NOT NULL),
                        (SELECT count(*) FROM score_history WHERE previous_tier IS NOT NULL AND tier IS DISTINCT FROM previous_tier),
                        (SELECT count(*) FROM outcome_moves)",
                &[],
            )
            .map(|row| (row.get(0), row.get(1), row.get(2)))
            .unwrap();
        assert!(
            reached.0 > 3 && reached.1 > 30 && reached.2 > 5,
            "the writes reach merges, tier changes and outcomes: {reached:?}"
        );
    }

    /// The same through the store's own write paths (ingestion of new and known leads with their
    /// scores and automatic moves, rescoring, stage moves, merges, activations, erasures), as
    /// SQLite's test of its counts: the statements of the other families keep the counts equal to
    /// a recount.
    #[test]
    fn the_kept_counts_equal_a_recount_after_every_write_of_the_store() {
        use crate::leads::LeadRow;
        use crate::models::Origin;
        use crate::scores::{History, ScoreRow};
        use crate::stages::StageChange;
        use crate::storage::postgres::PgTransaction;
        use crate::storage::{
            IngestedLead, IngestionLookup, IngestionWrite, LeadSave, NewIdentities, Reads, ScoredLeadWrite, Transaction,
        };

        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut setup = client.transaction();
        let c = &mut setup;
        let (acme, acme_first, globex, globex_first) = two_workspaces(c);
        let (acme_second, globex_second) = (model(c, acme), model(c, globex));
        setup.commit().unwrap();
        let models = [(acme, [acme_first, acme_second]), (globex, [globex_first, globex_second])];
        let mut active = [acme_first, globex_first];
        let mut dice = Dice(0x5eed_f00d);
        let mut leads: Vec<LeadRow> = Vec::new();
        let tiers = [None, Some("cold"), Some("warm"), Some("hot")];
        let stages = ["lead", "mql", "sal", "sql", "opportunity", "customer", "lost", "disqualified"];
        let properties = serde_json::Map::new();
        let mut message = 0;
        let (mut merges, mut erasures) = (0, 0);
        for step in 0..300 {
            let now = MONDAY - 4 * WEEK + step * (DAY / 3);
            let side = dice.below(2);
            let workspace_id = models[side].0;
            let ours: Vec<usize> = (0..leads.len()).filter(|&i| leads[i].workspace_id == workspace_id).collect();
            let rows = |dice: &mut Dice, model_id| -> Vec<ScoreRow> {
                ["fit", "intent"][..1 + dice.below(2)]
                    .iter()
                    .map(|score| ScoreRow {
                        score: score.to_string(),
                        value: (dice.below(4) * 30) as f64,
                        tier: tiers[dice.below(tiers.len())].map(str::to_string),
                        model_id,
                        evaluated_at: now,
                        overridden: None,
                    })
                    .collect()
            };
            // A transaction per write, as the service makes them: an ingestion's ends with its
            // write.
            let mut write_tx = client.transaction();
            let t = PgTransaction::writing(&mut write_tx);
            match dice.below(7) {
                // An event of a new or a known lead, scored, sometimes moved to MQL by it.
                0 | 1 => {
                    let known = (!ours.is_empty() && dice.below(2) == 0).then(|| ours[dice.below(ours.len())]);
                    let user_id = format!("u{step}");
                    let lookup = IngestionLookup {
                        workspace_id,
                        message_ids: vec![],
                        user_ids: if known.is_none() { vec![user_id.as_str()] } else { vec![] },
                        anonymous_ids: vec![],
                        identifiers: Vec::new(),
                    };
                    let snapshot = t.ingestion_snapshot(&lookup).unwrap();
                    let (mut lead, new) = match known {
                        Some(i) => (leads[i].clone(), vec![]),
                        None => {
                            let id = snapshot.next_lead_id;
                            let row = crate::leads::new_row(id, workspace_id, Some(&user_id), now);
                            (row, vec![(id, Some(user_id.clone()))])
                        }
                    };
                    let mut stored = t.stored_scores(lead.id).unwrap();
                    let rows = rows(&mut dice, active[side]);
                    let change = (dice.below(3) == 0 && lead.stage != "mql").then(|| StageChange {
                        stage: "mql".to_string(),
                        previous: Some(lead.stage.clone()),
                        at: now,
                        actor: "leadscore".to_string(),
                        reason: None,
                    });
                    if let Some(change) = &change {
                        lead.stage = change.stage.clone();
                    }
                    message += 1;
                    let message_id = format!("m{message}");
                    let event = crate::events::NewEvent {
                        message_id: &message_id,
                        event_type: "visit",
                        at: now,
                        received_at: now,
                        properties: &properties,
                    };
                    let scored = ScoredLeadWrite {
                        lead: &lead,
                        rows: &rows,
                        cause: "event",
                        history: History::EveryChange,
                        terms: &[],
                        stage: change.as_ref(),
                        notifications: &[],
                        lifted_overrides: &[],
                        now,
                    };
                    let mut write = IngestionWrite {
                        identities: NewIdentities { workspace_id, now, leads: new, links: vec![] },
                        leads: vec![IngestedLead { events: vec![event], save: LeadSave::Scored(scored, &mut stored) }],
                    };
                    lead.last_event_id = t.write_ingested(&mut write).unwrap()[0];
                    match known {
                        Some(i) => leads[i] = lead,
                        None => leads.push(lead),
                    }
                }
                // A rescoring by the active version (after an activation, the other one).
                2 if !ours.is_empty() => {
                    let lead = &leads[ours[dice.below(ours.len())]];
                    let mut stored = t.stored_scores(lead.id).unwrap();
                    let rows = rows(&mut dice, active[side]);
                    let write = ScoredLeadWrite {
                        lead,
                        rows: &rows,
                        cause: "model v2",
                        history: History::TierChanges,
                        terms: &[],
                        stage: None,
                        notifications: &[],
                        lifted_overrides: &[],
                        now,
                    };
                    t.save_scored_lead(&write, &mut stored).unwrap();
                }
                // A stage move by a person.
                3 if !ours.is_empty() => {
                    let i = ours[dice.below(ours.len())];
                    let stage = stages[dice.below(stages.len())];
                    let change = StageChange {
                        stage: stage.to_string(),
                        previous: Some(leads[i].stage.clone()),
                        at: now,
                        actor: "ana@example.com".to_string(),
                        reason: Some("called".to_string()),
                    };
                    t.set_stage(leads[i].id, &change).unwrap();
                    leads[i].stage = stage.to_string();
                }
                // Two leads found to be one.
                4 if ours.len() >= 2 => {
                    let from = leads.remove(ours[dice.below(ours.len())]);
                    let others: Vec<usize> =
                        (0..leads.len()).filter(|&i| leads[i].workspace_id == workspace_id).collect();
                    let into = &mut leads[others[dice.below(others.len())]];
                    t.merge_leads(&from, into).unwrap();
                    let mut write = IngestionWrite {
                        identities: NewIdentities { workspace_id, now, leads: vec![], links: vec![] },
                        leads: vec![IngestedLead { events: vec![], save: LeadSave::Row(into) }],
                    };
                    t.write_ingested(&mut write).unwrap();
                    merges += 1;
                }
                // The other version activated: the leads are rescored by it from now on.
                5 => {
                    let next = models[side].1.into_iter().find(|&m| m != active[side]).unwrap();
                    t.activate_model(workspace_id, next, Origin::Api, now).unwrap();
                    active[side] = next;
                }
                // A person's right to be forgotten.
                6 if !ours.is_empty() && dice.below(6) == 0 => {
                    let lead = leads.remove(ours[dice.below(ours.len())]);
                    t.erase_lead(workspace_id, lead.id, "command line", now).unwrap();
                    erasures += 1;
                }
                _ => continue,
            }
            write_tx.commit().unwrap();
            recount::assert_kept_counts_equal(&mut client.transaction());
        }
        let tiers_changed: i64 = client
            .transaction()
            .query_one(
                "SELECT count(*) FROM score_history WHERE previous_tier IS NOT NULL AND tier IS DISTINCT FROM previous_tier",
                &[],
            )
            .unwrap()
            .get(0);
        assert!(
            merges > 3 && erasures > 1 && tiers_changed > 30,
            "the writes reach merges ({merges}), erasures ({erasures}) and tier changes ({tiers_changed})"
        );
    }

    /// A database with rows from before the counts were kept gets them counted by the migration.
    #[test]
    fn the_migration_counts_the_rows_stored_before_it() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = crate::postgres::Connection::connect_url(&database.url);
        client.batch_execute(include_str!("migrations/0001_init.sql")).unwrap();
        let c = &mut client.transaction();
        mixed_writes(c, 150, false, |_| {});
        c.batch_execute(include_str!("migrations/0002_funnel_counts.sql")).unwrap();
        c.batch_execute(include_str!("migrations/0004_funnel_counts_appended.sql")).unwrap();
        let moves: i64 = c.query_one("SELECT count(*) FROM mql_cohorts", &[]).unwrap().get(0);
        assert!(moves > 5, "the cohorts of the moves stored before: {moves}");
        recount::assert_kept_counts_equal(c);
    }

    /// Writers changing the same counts (new leads of one workspace, scores entering one tier)
    /// and a fold, all at once, wait for none of the others, and the counts then hold every
    /// change once. Each statement runs under a lock timeout, which a wait would exceed.
    #[test]
    fn writers_of_one_count_and_a_fold_wait_for_none_of_the_others() {
        let Some(database) = TestDatabase::create() else { return };
        let mut setup = database.migrated_client();
        let (acme, model) = {
            let mut c = setup.transaction();
            let (acme, model, _, _) = two_workspaces(&mut c);
            let first = lead(&mut c, acme);
            scored(&mut c, first, model, "hot", 80.0, MONDAY);
            c.commit().unwrap();
            (acme, model)
        };
        let mut clients: Vec<crate::postgres::Connection> = (0..3).map(|_| database.migrated_client()).collect();
        let mut open: Vec<Tx<'_>> = clients.iter_mut().map(|client| client.transaction()).collect();
        for c in &mut open {
            c.batch_execute("SET LOCAL lock_timeout = '2s'").unwrap();
            let id = lead(c, acme);
            scored(c, id, model, "hot", 90.0, MONDAY + DAY);
        }
        let mut folding = database.migrated_client();
        let mut fold = folding.transaction();
        fold.batch_execute("SET LOCAL lock_timeout = '2s'").unwrap();
        assert!(fold_counts(&mut fold).unwrap().is_some(), "no other fold runs");
        fold.commit().unwrap();
        for c in open {
            c.commit().unwrap();
        }
        let c = &mut setup.transaction();
        assert_eq!(stage_counts(c, acme).unwrap(), [("lead".to_string(), 4)]);
        assert_eq!(tier_counts(c, acme, "fit").unwrap(), [(Some("hot".to_string()), 4)]);
        recount::assert_kept_counts_equal(c);
        assert!(fold_counts(c).unwrap().is_some_and(|rows| rows > 0), "the writers' changes are folded next");
        recount::assert_kept_counts_equal(c);
    }

    /// A second fold while one runs leaves the turn to it.
    #[test]
    fn one_fold_runs_at_a_time() {
        let Some(database) = TestDatabase::create() else { return };
        let (mut one, mut two) = (database.migrated_client(), database.migrated_client());
        let mut first = one.transaction();
        assert!(fold_counts(&mut first).unwrap().is_some());
        let mut second = two.transaction();
        assert_eq!(fold_counts(&mut second).unwrap(), None);
        first.commit().unwrap();
        second.rollback().unwrap();
        assert!(fold_counts(&mut two.transaction()).unwrap().is_some(), "the turn is free again");
    }

    /// Two writers storing moves of one lead at once: the second waits for the first (its
    /// triggers lock the lead), so that each sees the other's cohort row and move.
    #[test]
    fn moves_of_one_lead_stored_at_once_are_kept_one_after_the_other() {
        let Some(database) = TestDatabase::create() else { return };
        let mut first = database.migrated_client();
        let (acme, id) = {
            let mut setup = first.transaction();
            let acme = workspace(&mut setup, "acme");
            let id = lead(&mut setup, acme);
            setup.commit().unwrap();
            (acme, id)
        };
        let insert_move = "INSERT INTO stage_history (lead_id, workspace_id, stage, previous, at, actor)
                           VALUES ($1, $2, $3, 'lead', $4, 'ana@example.com')";
        let mut mql = first.transaction();
        mql.execute(insert_move, &[&id, &acme, &"mql", &MONDAY]).unwrap();
        let url = database.url.clone();
        let (done, finished) = std::sync::mpsc::channel();
        let second = std::thread::spawn(move || {
            let mut client = crate::postgres::Connection::connect_url(&url);
            let mut sal = client.transaction();
            let stored = sal.execute(insert_move, &[&id, &acme, &"sal", &(MONDAY + DAY)]).and_then(|_| sal.commit());
            let _ = done.send(());
            stored
        });
        // The second writer is waiting for a lock, or has stored its move without waiting.
        let mut observer = postgres::Client::connect(&database.url, postgres::NoTls).unwrap();
        let mut waited = false;
        while !waited && finished.try_recv().is_err() {
            waited = observer
                .query_one(
                    "SELECT count(*) > 0 FROM pg_stat_activity
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                    &[],
                )
                .unwrap()
                .get(0);
            std::thread::yield_now();
        }
        assert!(waited, "the second move waits for the first");
        mql.commit().unwrap();
        second.join().unwrap().unwrap();
        let c = &mut first.transaction();
        let journeys = mql_journeys(c, acme, MONDAY, MONDAY + WEEK, MONDAY + WEEK).unwrap();
        assert_eq!(journeys.iter().map(|j| (j.mql, j.sal)).collect::<Vec<_>>(), [(MONDAY, Some(MONDAY + DAY))]);
    }
}
