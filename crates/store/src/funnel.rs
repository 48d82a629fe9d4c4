//! The funnel report's reads: leads per tier and per stage now, leads entering MQL per week, the
//! way of the leads that became MQL in a period through SAL, SQL and customer, the share of
//! leads in a tier at the end of each week, and the outcomes of leads by the tier they had when
//! they became MQL.
//!
//! The counts *now* and the weekly changes are read from small tables the writer keeps
//! (`0015_funnel_counts.sql`): SQLite triggers change them in the statement that changes a
//! score, a stage or the score history, so that they cannot drift from the rows, and the report
//! reads a few rows per model version instead of every lead (1-3 s at a million leads). What
//! they hold:
//! - `tier_counts`: leads per model version, score and tier (`lead_scores`; a merged lead's
//!   scores are deleted).
//! - `stage_counts`: leads per workspace and stage, merged leads left out.
//! - `tier_changes_by_week`: per model version, score, week and tier, the history entries of
//!   the week that entered the tier less those that left it (an entry's `tier` and
//!   `previous_tier`, the tier the lead's score had before; null for its first entry), and
//!   `first_scores_by_week`: the entries of the week that were a score's first (`previous_id`
//!   null). The count in a tier at a week's end is the count now less the changes of the weeks
//!   after it.
//! - `mql_move_tiers`: the lead's tier of each score when it moved
//!   to MQL, copied from its current scores as the move is inserted, which the outcomes are
//!   counted by (instead of walking each lead's score history back to its MQL time).
//!
//! The cohort walk is kept the same way (`0016_funnel_cohorts.sql`), by triggers on stage move
//! inserts (moves are rare beside events, whose statements run none of them) and on a lead's
//! stage or merge, so that a period's MQLs and outcomes are one range of rows by workspace and
//! time rather than each MQL entry joined with its lead's later moves (3.5 s at a million
//! leads) and each outcome's latest MQL move looked up (2.4 s):
//! - `mql_cohorts`: per MQL move, its lead and time, the time of the lead's MQL move before it
//!   (by time, then id), and the lead's first move to SAL, SQL, opportunity and customer at or
//!   after it. A lead's first entry in a period is the one whose previous entry is before the
//!   period (for [`mql_entries_by_week`]: before the period or the week).
//! - `outcome_moves`: per move to `customer`, `lost` or `disqualified`, whether the lead is in
//!   that stage now and unmerged, the time of its next move to the same stage, and its latest
//!   MQL move at or before it. A lead's latest move to its stage in a period is the one whose
//!   next move is after the period.
//!
//! Weeks start on Monday, 00:00 UTC. Score history and the
//! score counts have no workspace column: their rows are the workspace's by their model version
//! (`model_id`), which needs no join with the leads. The queries that count the rows
//! themselves are kept for the tests, which check that the kept counts equal them after every
//! kind of write (`recount`, in the tests).

use rusqlite::{Connection, params};

use crate::StoreError;

/// A week, in milliseconds.
pub const WEEK: i64 = 7 * 86_400_000;

/// Monday 1970-01-05 00:00 UTC, the first Monday of the epoch: weeks are counted from it.
const FIRST_MONDAY: i64 = 4 * 86_400_000;

/// The start (Monday, 00:00 UTC) of the week holding `at`.
pub fn week_start(at: i64) -> i64 {
    FIRST_MONDAY + (at - FIRST_MONDAY).div_euclid(WEEK) * WEEK
}

/// The SQL expression of [`week_start`] for a column (times after the epoch's first Monday), the
/// same in SQLite and PostgreSQL (both divide integers toward zero).
pub(crate) fn week_of(column: &str) -> String {
    format!("({FIRST_MONDAY} + (({column} - {FIRST_MONDAY}) / {WEEK}) * {WEEK})")
}

/// How many leads of the workspace (merged ones left out) are in each tier of a score now;
/// `None` counts leads whose value is in no tier.
pub fn tier_counts(
    connection: &Connection,
    workspace_id: i64,
    score: &str,
) -> Result<Vec<(Option<String>, i64)>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT tier, sum(leads) FROM tier_counts
         WHERE score = ?2 AND model_id IN (SELECT id FROM models WHERE workspace_id = ?1)
         GROUP BY tier HAVING sum(leads) > 0 ORDER BY tier",
    )?;
    let rows = statement.query_map(params![workspace_id, score], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// How many leads of the workspace (merged ones left out) are in each stage now.
pub fn stage_counts(connection: &Connection, workspace_id: i64) -> Result<Vec<(String, i64)>, StoreError> {
    let mut statement = connection
        .prepare_cached("SELECT stage, leads FROM stage_counts WHERE workspace_id = ?1 AND leads > 0 ORDER BY stage")?;
    let rows = statement.query_map([workspace_id], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Leads of the workspace entering stage `mql` in `[from, to)`, by the week (its Monday) of
/// their entry, weeks without any left out; a lead entering twice in a week counts once.
///
/// An entry counts when the lead's MQL entry before it is before the period or the week: it is
/// the lead's first of the week in the period. Counted week by week over the cohort rows' range
/// (in time order), rather than grouped by an expression SQLite would sort the rows by.
pub fn mql_entries_by_week(
    connection: &Connection,
    workspace_id: i64,
    from: i64,
    to: i64,
) -> Result<Vec<(i64, i64)>, StoreError> {
    let mut statement = connection.prepare_cached(&format!(
        "WITH RECURSIVE
         span(first, last) AS (
             SELECT (SELECT min(at) FROM mql_cohorts WHERE workspace_id = ?1 AND at >= ?2 AND at < ?3),
                    (SELECT max(at) FROM mql_cohorts WHERE workspace_id = ?1 AND at >= ?2 AND at < ?3)
         ),
         weeks(week, last) AS (
             SELECT {first}, last FROM span WHERE first IS NOT NULL
             UNION ALL
             SELECT week + {WEEK}, last FROM weeks WHERE week + {WEEK} <= last
         )
         SELECT week, (SELECT count(*) FROM mql_cohorts
                       WHERE workspace_id = ?1 AND at >= max(week, ?2) AND at < min(week + {WEEK}, ?3)
                         AND (previous_at IS NULL OR previous_at < max(week, ?2)))
         FROM weeks",
        first = week_of("first")
    ))?;
    let rows = statement.query_map(params![workspace_id, from, to], |row| Ok((row.get(0)?, row.get(1)?)))?;
    let weeks: Vec<(i64, i64)> = rows.collect::<Result<_, _>>()?;
    // Weeks without entries are left out here: a condition on the count in SQL would count twice.
    Ok(weeks.into_iter().filter(|&(_, entries)| entries > 0).collect())
}

/// The way of one lead that became an MQL in a period: when it first entered MQL in the period,
/// and when it first entered each later stage of the funnel after that (up to now).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Journey {
    pub lead_id: i64,
    pub mql: i64,
    pub sal: Option<i64>,
    pub sql: Option<i64>,
    pub opportunity: Option<i64>,
    pub customer: Option<i64>,
}

/// The leads of the workspace that entered MQL in `[from, to)` (the cohort) and their way
/// further, through the moves recorded up to `now`. One row per lead of the cohort, by lead id.
///
/// One range of the kept cohort rows (see the module's doc): each lead's first entry in the
/// period is the one whose previous MQL entry is before the period, and it holds the lead's
/// first move to each later stage at or after it, which counts if it was made by `now`.
pub fn mql_journeys(
    connection: &Connection,
    workspace_id: i64,
    from: i64,
    to: i64,
    now: i64,
) -> Result<Vec<Journey>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT lead_id, at, sal, sql, opportunity, customer FROM mql_cohorts
         WHERE workspace_id = ?1 AND at >= ?2 AND at < ?3 AND at <= ?4 AND (previous_at IS NULL OR previous_at < ?2)",
    )?;
    // A move counts if it was made by `now` (a test's or a past instant; the moves are usually
    // all older), which is compared here rather than by four expressions per row.
    let by_now = |at: Option<i64>| at.filter(|&at| at <= now);
    let rows = statement.query_map(params![workspace_id, from, to, now], |row| {
        Ok(Journey {
            lead_id: row.get(0)?,
            mql: row.get(1)?,
            sal: by_now(row.get(2)?),
            sql: by_now(row.get(3)?),
            opportunity: by_now(row.get(4)?),
            customer: by_now(row.get(5)?),
        })
    })?;
    let mut journeys: Vec<Journey> = rows.collect::<Result<_, _>>()?;
    // Sorted here rather than by SQLite, which would sort the whole cohort in a temporary tree.
    journeys.sort_unstable_by_key(|journey| journey.lead_id);
    Ok(journeys)
}

/// How many leads held a tier at the end of a week, of how many that had the score then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeekShare {
    /// The week's Monday.
    pub week: i64,
    pub in_tier: i64,
    pub scored: i64,
}

/// For each week from the one holding `from` to the one holding `now`: how many of the
/// workspace's leads were in `tier` of `score` at the week's end (at `now` for the current
/// week), a lead's tier then being that of its latest score history entry before it.
///
/// Counted backwards from the current scores, `counts_now` ([`tier_counts`] of the same score,
/// read in the same snapshot): the count at a week's end is today's minus the changes of the
/// weeks after it, read from the weekly changes the writer keeps (see the module's doc).
pub fn tier_share_by_week(
    connection: &Connection,
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

/// A week's changes: the week, the change of the count in a tier, the scores first given.
pub(crate) type WeekChange = (i64, i64, i64);

/// The changes of each week from `first` (a Monday) on, newest first, weeks without any left
/// out.
fn weekly_changes(
    connection: &Connection,
    workspace_id: i64,
    score: &str,
    tier: &str,
    first: i64,
) -> Result<Vec<WeekChange>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT week, sum(change), sum(scores) FROM (
             SELECT week, change, 0 AS scores FROM tier_changes_by_week
             WHERE score = ?2 AND tier = ?3 AND week >= ?4 AND model_id IN (SELECT id FROM models WHERE workspace_id = ?1)
             UNION ALL
             SELECT week, 0, scores FROM first_scores_by_week
             WHERE score = ?2 AND week >= ?4 AND model_id IN (SELECT id FROM models WHERE workspace_id = ?1)
         )
         GROUP BY week HAVING sum(change) <> 0 OR sum(scores) <> 0 ORDER BY week DESC",
    )?;
    let rows = statement
        .query_map(params![workspace_id, score, tier, first], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The share of each week from `first` to the one holding `now`, from the counts now and the
/// weeks' changes (newest first); PostgreSQL's store counts back the same way.
pub(crate) fn count_back(
    tier: &str,
    counts_now: &[(Option<String>, i64)],
    changes: Vec<WeekChange>,
    first: i64,
    now: i64,
) -> Vec<WeekShare> {
    let mut in_tier: i64 = counts_now.iter().filter(|(t, _)| t.as_deref() == Some(tier)).map(|(_, n)| n).sum();
    let mut scored: i64 = counts_now.iter().map(|(_, n)| n).sum();
    let mut weeks = Vec::new();
    let mut week = week_start(now);
    let mut changes = changes.into_iter().peekable();
    while week >= first {
        // The changes of the weeks after this one are undone; this week's still count.
        while let Some(&(changed, tier_change, new)) = changes.peek() {
            if changed <= week {
                break;
            }
            in_tier -= tier_change;
            scored -= new;
            changes.next();
        }
        weeks.push(WeekShare { week, in_tier, scored });
        week -= WEEK;
    }
    weeks.reverse();
    weeks
}

/// Leads that reached an outcome, by a tier: how many won (`customer`) and lost (`lost` or
/// `disqualified`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomesByTier {
    pub tier: Option<String>,
    /// Whether `tier` is the one the leads had when they became MQL (else their tier now: they
    /// never became MQL, or no score history reaches back to it).
    pub at_mql: bool,
    pub won: i64,
    pub lost: i64,
}

/// The workspace's leads now in `customer`, `lost` or `disqualified` that moved there in
/// `[from, to)`, counted by the tier of `score` they had when they last became MQL before it
/// (recorded with the move), else by their tier now.
///
/// One range of the kept outcome moves (see the module's doc): a lead's latest move to its
/// current stage in the period is the one whose next move to that stage is after the period,
/// and it names the lead's latest MQL move before it, whose tiers were recorded with it.
pub fn outcomes_by_tier(
    connection: &Connection,
    workspace_id: i64,
    score: &str,
    from: i64,
    to: i64,
) -> Result<Vec<OutcomesByTier>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT t.stage_history_id IS NOT NULL,
                CASE WHEN t.stage_history_id IS NULL
                     THEN (SELECT ls.tier FROM lead_scores ls WHERE ls.lead_id = o.lead_id AND ls.score = ?2)
                     ELSE t.tier END,
                o.stage = 'customer'
         FROM outcome_moves o
         LEFT JOIN mql_move_tiers t ON t.stage_history_id = o.mql_move_id AND t.score = ?2
         WHERE o.workspace_id = ?1 AND o.at >= ?3 AND o.at < ?4 AND o.current AND (o.next_at IS NULL OR o.next_at >= ?4)",
    )?;
    // Counted here, into the few tiers there are, rather than grouped by SQLite, which would sort
    // every outcome of the period.
    let mut counted: Vec<OutcomesByTier> = Vec::new();
    let mut outcomes = statement.query(params![workspace_id, score, from, to])?;
    while let Some(outcome) = outcomes.next()? {
        let (at_mql, tier, won): (bool, Option<String>, bool) = (outcome.get(0)?, outcome.get(1)?, outcome.get(2)?);
        let index = match counted.iter().position(|c| c.at_mql == at_mql && c.tier == tier) {
            Some(index) => index,
            None => {
                counted.push(OutcomesByTier { tier, at_mql, won: 0, lost: 0 });
                counted.len() - 1
            }
        };
        if won {
            counted[index].won += 1;
        } else {
            counted[index].lost += 1;
        }
    }
    counted.sort_by(|a, b| (b.at_mql, &a.tier).cmp(&(a.at_mql, &b.tier)));
    Ok(counted)
}

/// The figures of the kept counts, counted from the rows themselves: the queries the report ran
/// before the counts were kept, which the tests compare them with.
#[cfg(test)]
pub(crate) mod recount {
    use rusqlite::{Connection, params};

    use super::{Journey, OutcomesByTier, WeekChange, week_of};

    /// The outcomes of [`super::outcomes_by_tier`]: each lead now in an outcome stage that moved
    /// there in the period (`lead_id`, whether it won, when), as the start of a `WITH` clause.
    const OUTCOMES: &str = "WITH RECURSIVE
        outcome(lead_id, won, at) AS (
            SELECT h.lead_id, h.stage = 'customer', max(h.at) FROM stage_history h JOIN leads l ON l.id = h.lead_id
            WHERE h.workspace_id = ?1 AND h.stage IN ('customer', 'lost', 'disqualified') AND h.at >= ?3 AND h.at < ?4
              AND l.stage = h.stage AND l.merged_into IS NULL
            GROUP BY h.lead_id
        ),";

    /// The counts of [`super::outcomes_by_tier`] from `known` (the tier at MQL of the leads it is
    /// known of) and `marked` (every outcome), by the tier at MQL, else by the tier now.
    const COUNTED: &str = "SELECT tier, 1, sum(won), sum(NOT won) FROM known GROUP BY tier
        UNION ALL
        SELECT ls.tier, 0, sum(m.won), sum(NOT m.won) FROM marked m
        LEFT JOIN lead_scores ls ON ls.lead_id = m.lead_id AND ls.score = ?2
        WHERE m.lead_id NOT IN (SELECT lead_id FROM known)
        GROUP BY ls.tier";

    /// [`super::tier_counts`], counted from every current score.
    pub(crate) fn tier_counts(connection: &Connection, workspace_id: i64, score: &str) -> Vec<(Option<String>, i64)> {
        let mut statement = connection
            .prepare(
                "SELECT s.tier, count(*) FROM lead_scores s NOT INDEXED
                 WHERE s.score = ?2 AND s.model_id IN (SELECT id FROM models WHERE workspace_id = ?1)
                 GROUP BY s.tier ORDER BY s.tier",
            )
            .unwrap();
        let rows = statement.query_map(params![workspace_id, score], |row| Ok((row.get(0)?, row.get(1)?))).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    /// [`super::stage_counts`], counted from every lead row.
    pub(crate) fn stage_counts(connection: &Connection, workspace_id: i64) -> Vec<(String, i64)> {
        let mut statement = connection
            .prepare(
                "SELECT stage, count(*) FROM leads WHERE workspace_id = ?1 AND merged_into IS NULL
                 GROUP BY stage ORDER BY stage",
            )
            .unwrap();
        let rows = statement.query_map([workspace_id], |row| Ok((row.get(0)?, row.get(1)?))).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    /// [`super::weekly_changes`], counted from every history entry since `first`.
    pub(crate) fn weekly_changes(
        connection: &Connection,
        workspace_id: i64,
        score: &str,
        tier: &str,
        first: i64,
    ) -> Vec<WeekChange> {
        let sql = format!(
            "SELECT week, tier_change, new FROM (
                 SELECT {} AS week,
                        coalesce(sum(tier IS ?3), 0) - coalesce(sum(previous_tier IS ?3), 0) AS tier_change,
                        coalesce(sum(previous_id IS NULL), 0) AS new
                 FROM score_history
                 WHERE score = ?2 AND at >= ?4 AND model_id IN (SELECT id FROM models WHERE workspace_id = ?1)
                 GROUP BY week
             ) WHERE tier_change <> 0 OR new <> 0 ORDER BY week DESC",
            week_of("at")
        );
        let mut statement = connection.prepare(&sql).unwrap();
        let rows = statement
            .query_map(params![workspace_id, score, tier, first], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    /// [`super::mql_entries_by_week`], counted from every MQL move of the period.
    pub(crate) fn mql_entries_by_week(
        connection: &Connection,
        workspace_id: i64,
        from: i64,
        to: i64,
    ) -> Vec<(i64, i64)> {
        let sql = format!(
            "SELECT {} AS week, count(DISTINCT h.lead_id) FROM stage_history h
             WHERE h.workspace_id = ?1 AND h.stage = 'mql' AND h.at >= ?2 AND h.at < ?3
             GROUP BY week ORDER BY week",
            week_of("h.at")
        );
        let mut statement = connection.prepare(&sql).unwrap();
        let rows = statement.query_map(params![workspace_id, from, to], |row| Ok((row.get(0)?, row.get(1)?))).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    /// [`super::mql_journeys`], joining each MQL entry of the period with its lead's later moves.
    pub(crate) fn mql_journeys(
        connection: &Connection,
        workspace_id: i64,
        from: i64,
        to: i64,
        now: i64,
    ) -> Vec<Journey> {
        let first = |stage: &str| format!("min(CASE WHEN s.stage = '{stage}' THEN s.at END)");
        let sql = format!(
            "WITH cohort AS (
                 SELECT h.lead_id, min(h.at) AS mql FROM stage_history h
                 WHERE h.workspace_id = ?1 AND h.stage = 'mql' AND h.at >= ?2 AND h.at < ?3 AND h.at <= ?4
                 GROUP BY h.lead_id
             )
             SELECT c.lead_id, c.mql, {}, {}, {}, {} FROM cohort c
             LEFT JOIN stage_history s ON s.lead_id = c.lead_id AND s.at >= c.mql AND s.at <= ?4
             GROUP BY c.lead_id ORDER BY c.lead_id",
            first("sal"),
            first("sql"),
            first("opportunity"),
            first("customer"),
        );
        let mut statement = connection.prepare(&sql).unwrap();
        let rows = statement
            .query_map(params![workspace_id, from, to, now], |row| {
                Ok(Journey {
                    lead_id: row.get(0)?,
                    mql: row.get(1)?,
                    sal: row.get(2)?,
                    sql: row.get(3)?,
                    opportunity: row.get(4)?,
                    customer: row.get(5)?,
                })
            })
            .unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    /// [`super::outcomes_by_tier`], walking each lead's score history back to its MQL time.
    pub(crate) fn outcomes_by_tier(
        connection: &Connection,
        workspace_id: i64,
        score: &str,
        from: i64,
        to: i64,
    ) -> Vec<OutcomesByTier> {
        let mut statement = connection
            .prepare(&format!(
                "{OUTCOMES}
                 marked(lead_id, won, mql) AS (
                     SELECT o.lead_id, o.won,
                            (SELECT max(s.at) FROM stage_history s WHERE s.lead_id = o.lead_id AND s.stage = 'mql' AND s.at <= o.at)
                     FROM outcome o
                 ),
                 chain(lead_id, won, id, mql) AS (
                     SELECT m.lead_id, m.won, ls.history_id, m.mql FROM marked m
                     JOIN lead_scores ls ON ls.lead_id = m.lead_id AND ls.score = ?2
                     WHERE m.mql IS NOT NULL AND ls.history_id IS NOT NULL
                     UNION ALL
                     SELECT c.lead_id, c.won, h.previous_id, c.mql FROM chain c JOIN score_history h ON h.id = c.id
                     WHERE h.at > c.mql AND h.previous_id IS NOT NULL
                 ),
                 known(lead_id, won, tier) AS (
                     SELECT c.lead_id, c.won, h.tier FROM chain c JOIN score_history h ON h.id = c.id WHERE h.at <= c.mql
                 )
                 {COUNTED}"
            ))
            .unwrap();
        let rows = statement
            .query_map(params![workspace_id, score, from, to], |row| {
                Ok(OutcomesByTier { tier: row.get(0)?, at_mql: row.get(1)?, won: row.get(2)?, lost: row.get(3)? })
            })
            .unwrap();
        let mut rows: Vec<OutcomesByTier> = rows.collect::<Result<_, _>>().unwrap();
        rows.sort_by(|a, b| (b.at_mql, &a.tier).cmp(&(a.at_mql, &b.tier)));
        rows
    }

    /// Every workspace's kept counts, of every score and tier in the store, equal their recount.
    pub(crate) fn assert_kept_counts_equal(connection: &Connection) {
        let strings = |sql: &str| -> Vec<String> {
            let mut statement = connection.prepare(sql).unwrap();
            statement.query_map([], |row| row.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
        };
        let workspaces: Vec<i64> = {
            let mut statement = connection.prepare("SELECT id FROM workspaces").unwrap();
            statement.query_map([], |row| row.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
        };
        let scores = strings("SELECT DISTINCT score FROM score_history UNION SELECT DISTINCT score FROM lead_scores");
        let tiers = strings(
            "SELECT DISTINCT tier FROM score_history WHERE tier IS NOT NULL
             UNION SELECT DISTINCT previous_tier FROM score_history WHERE previous_tier IS NOT NULL",
        );
        // Periods from the earliest to the latest move, and between the moves' quartiles, at
        // their edges: every move is at the edge of some period.
        let times: Vec<i64> = {
            let mut statement = connection.prepare("SELECT at FROM stage_history ORDER BY at").unwrap();
            statement.query_map([], |row| row.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
        };
        let mut edges = vec![i64::MIN / 2, i64::MAX / 2];
        edges.extend((1..4).filter_map(|quarter| times.get(times.len() * quarter / 4)));
        let periods: Vec<(i64, i64)> = edges
            .iter()
            .flat_map(|&from| edges.iter().filter(move |&&to| to > from).map(move |&to| (from, to)))
            .collect();
        for &workspace_id in &workspaces {
            assert_eq!(super::stage_counts(connection, workspace_id).unwrap(), stage_counts(connection, workspace_id));
            for &(from, to) in &periods {
                assert_eq!(
                    super::mql_entries_by_week(connection, workspace_id, from, to).unwrap(),
                    mql_entries_by_week(connection, workspace_id, from, to),
                    "the MQL entries by week of [{from}, {to}) in workspace {workspace_id}"
                );
                for &now in &edges {
                    assert_eq!(
                        super::mql_journeys(connection, workspace_id, from, to, now).unwrap(),
                        mql_journeys(connection, workspace_id, from, to, now),
                        "the journeys of [{from}, {to}) at {now} in workspace {workspace_id}"
                    );
                }
            }
            for score in &scores {
                for &(from, to) in &periods {
                    assert_eq!(
                        super::outcomes_by_tier(connection, workspace_id, score, from, to).unwrap(),
                        outcomes_by_tier(connection, workspace_id, score, from, to),
                        "the outcomes by the tier at MQL of {score} in [{from}, {to}) in workspace {workspace_id}"
                    );
                }
                assert_eq!(
                    super::tier_counts(connection, workspace_id, score).unwrap(),
                    tier_counts(connection, workspace_id, score),
                    "the tiers of {score} in workspace {workspace_id}"
                );
                for tier in &tiers {
                    // From the earliest week: every week's change is compared.
                    let first = i64::MIN / 2;
                    assert_eq!(
                        super::weekly_changes(connection, workspace_id, score, tier, first).unwrap(),
                        weekly_changes(connection, workspace_id, score, tier, first),
                        "the weekly changes of {score} in {tier} in workspace {workspace_id}"
                    );
                }
            }
        }
        let negative: i64 = connection
            .query_row(
                "SELECT (SELECT count(*) FROM tier_counts WHERE leads < 0) + (SELECT count(*) FROM stage_counts WHERE leads < 0)
                      + (SELECT count(*) FROM first_scores_by_week WHERE scores < 0)",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(negative, 0, "a count below zero");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scores::{self, History, ScoreRow};
    use crate::stages::{self, StageChange};
    use crate::{Store, leads, models, workspaces};

    const DAY: i64 = 86_400_000;
    /// Monday 2026-11-02 00:00 UTC.
    const MONDAY: i64 = 1_793_577_600_000;

    fn moved(connection: &Connection, lead: i64, from: &str, to: &str, at: i64) {
        let change = StageChange {
            stage: to.to_string(),
            previous: Some(from.to_string()),
            at,
            actor: "ana@example.com".to_string(),
            reason: None,
        };
        stages::set(connection, lead, &change).unwrap();
    }

    fn scored(connection: &Connection, lead: i64, model_id: i64, tier: &str, value: f64, at: i64) {
        let row = ScoreRow {
            score: "fit".to_string(),
            value,
            tier: Some(tier.to_string()),
            model_id,
            evaluated_at: at,
            overridden: None,
        };
        scores::save(connection, lead, &[row], "event", History::EveryChange).unwrap();
    }

    /// A store with workspaces `acme` (its id and a model version's id) and `globex` (another
    /// workspace whose leads must never count).
    fn store() -> (tempfile::TempDir, Store, i64, i64, i64, i64) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (acme, model, globex, their_model) = store
            .write_blocking(|c| {
                let acme = workspaces::find_or_create(c, "acme", 0)?.id;
                let globex = workspaces::find_or_create(c, "globex", 0)?.id;
                let model = models::add(c, acme, "", &Default::default(), None, 0)?.id;
                let their_model = models::add(c, globex, "", &Default::default(), None, 0)?.id;
                Ok((acme, model, globex, their_model))
            })
            .unwrap();
        (dir, store, acme, model, globex, their_model)
    }

    #[test]
    fn weeks_start_on_monday_at_midnight_utc() {
        assert_eq!(week_start(MONDAY), MONDAY);
        assert_eq!(week_start(MONDAY - 1), MONDAY - WEEK, "Sunday 23:59:59.999 is the week before");
        assert_eq!(week_start(MONDAY + 6 * DAY + 5), MONDAY);
        assert_eq!(week_start(0), -3 * DAY, "1970-01-01 was a Thursday");
    }

    #[test]
    fn mql_entries_count_each_lead_once_a_week_at_the_week_edges() {
        let (_dir, store, acme, _, globex, _) = store();
        let weeks = store
            .write_blocking(move |c| {
                let lead = |w| leads::create(c, w, None, 0).map(|l| l.id);
                let (a, b, d, e, theirs) = (lead(acme)?, lead(acme)?, lead(acme)?, lead(acme)?, lead(globex)?);
                moved(c, a, "lead", "mql", MONDAY); // the first instant of week 1
                moved(c, b, "lead", "mql", MONDAY - 1); // the last instant of week 0
                moved(c, b, "mql", "nurture", MONDAY + DAY);
                moved(c, b, "nurture", "mql", MONDAY + 2 * DAY); // b again, in week 1
                moved(c, d, "lead", "mql", MONDAY + WEEK + DAY); // week 2
                moved(c, d, "mql", "nurture", MONDAY + WEEK + 2 * DAY);
                moved(c, d, "nurture", "mql", MONDAY + WEEK + 3 * DAY); // d twice in week 2: once
                moved(c, e, "lead", "mql", MONDAY + 2 * WEEK); // at the period's end: left out
                moved(c, theirs, "lead", "mql", MONDAY);
                mql_entries_by_week(c, acme, MONDAY - WEEK, MONDAY + 2 * WEEK)
            })
            .unwrap();
        assert_eq!(weeks, [(MONDAY - WEEK, 1), (MONDAY, 2), (MONDAY + WEEK, 1)]);
    }

    #[test]
    fn journeys_follow_the_cohort_of_the_period_through_the_funnel() {
        let (_dir, store, acme, _, globex, _) = store();
        let (ids, journeys) = store
            .write_blocking(move |c| {
                let lead = |w| leads::create(c, w, None, 0).map(|l| l.id);
                let ids = [lead(acme)?, lead(acme)?, lead(acme)?, lead(acme)?, lead(globex)?];
                let [a, b, skipper, before, theirs] = ids;
                // a: MQL, SAL a day later, SQL two days after that, customer later, after the period.
                moved(c, a, "lead", "mql", MONDAY + DAY);
                moved(c, a, "mql", "sal", MONDAY + 2 * DAY);
                moved(c, a, "sal", "sql", MONDAY + 4 * DAY);
                moved(c, a, "sql", "customer", MONDAY + 20 * DAY);
                // b: MQL twice in the period (the first counts), then SAL.
                moved(c, b, "lead", "mql", MONDAY + 3 * DAY);
                moved(c, b, "mql", "nurture", MONDAY + 4 * DAY);
                moved(c, b, "nurture", "mql", MONDAY + 5 * DAY);
                moved(c, b, "mql", "sal", MONDAY + 6 * DAY);
                // The skipper goes from MQL straight to SQL.
                moved(c, skipper, "lead", "mql", MONDAY + 2 * DAY);
                moved(c, skipper, "mql", "sql", MONDAY + 3 * DAY);
                // An MQL before the period and its SAL inside it: not of the cohort.
                moved(c, before, "lead", "mql", MONDAY - DAY);
                moved(c, before, "mql", "sal", MONDAY + DAY);
                moved(c, theirs, "lead", "mql", MONDAY + DAY);
                // Asked at `now` before a's customer move: it is not known yet.
                Ok((ids, mql_journeys(c, acme, MONDAY, MONDAY + WEEK, MONDAY + 10 * DAY)?))
            })
            .unwrap();
        let [a, b, skipper, ..] = ids;
        assert_eq!(
            journeys,
            [
                Journey {
                    lead_id: a,
                    mql: MONDAY + DAY,
                    sal: Some(MONDAY + 2 * DAY),
                    sql: Some(MONDAY + 4 * DAY),
                    opportunity: None,
                    customer: None
                },
                Journey {
                    lead_id: b,
                    mql: MONDAY + 3 * DAY,
                    sal: Some(MONDAY + 6 * DAY),
                    sql: None,
                    opportunity: None,
                    customer: None
                },
                Journey {
                    lead_id: skipper,
                    mql: MONDAY + 2 * DAY,
                    sal: None,
                    sql: Some(MONDAY + 3 * DAY),
                    opportunity: None,
                    customer: None
                },
            ]
        );
    }

    #[test]
    fn the_tier_share_of_each_week_is_that_of_the_latest_history_before_its_end() {
        let (_dir, store, acme, model, globex, their_model) = store();
        let weeks = store
            .write_blocking(move |c| {
                let lead = |w| leads::create(c, w, None, 0).map(|l| l.id);
                let (a, b, d, theirs) = (lead(acme)?, lead(acme)?, lead(acme)?, lead(globex)?);
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
                let counts = tier_counts(c, acme, "fit")?;
                tier_share_by_week(c, acme, "fit", "hot", &counts, MONDAY - WEEK + DAY, MONDAY + 2 * WEEK + DAY)
            })
            .unwrap();
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
        let (_dir, store, acme, model, _, _) = store();
        let outcomes = store
            .write_blocking(move |c| {
                let lead = || leads::create(c, acme, None, 0).map(|l| l.id);
                let (won_warm, lost_warm, won_hot, never_mql, before) = (lead()?, lead()?, lead()?, lead()?, lead()?);
                // Won: warm when it became MQL, hot later.
                scored(c, won_warm, model, "warm", 40.0, MONDAY);
                moved(c, won_warm, "lead", "mql", MONDAY);
                scored(c, won_warm, model, "hot", 80.0, MONDAY + DAY);
                moved(c, won_warm, "mql", "customer", MONDAY + 2 * DAY);
                // Lost: warm at MQL (a value change since, same tier).
                scored(c, lost_warm, model, "cold", 10.0, MONDAY - WEEK);
                scored(c, lost_warm, model, "warm", 45.0, MONDAY - DAY);
                moved(c, lost_warm, "lead", "mql", MONDAY);
                scored(c, lost_warm, model, "warm", 50.0, MONDAY + DAY);
                moved(c, lost_warm, "mql", "lost", MONDAY + 3 * DAY);
                // Won: hot at MQL.
                scored(c, won_hot, model, "hot", 90.0, MONDAY);
                moved(c, won_hot, "lead", "mql", MONDAY);
                moved(c, won_hot, "mql", "customer", MONDAY + DAY);
                // Disqualified without ever being MQL: counted by its tier now.
                scored(c, never_mql, model, "cold", 5.0, MONDAY);
                moved(c, never_mql, "lead", "disqualified", MONDAY + DAY);
                // Won before the period: not counted.
                scored(c, before, model, "hot", 90.0, MONDAY - WEEK);
                moved(c, before, "lead", "mql", MONDAY - WEEK);
                moved(c, before, "mql", "customer", MONDAY - DAY);
                outcomes_by_tier(c, acme, "fit", MONDAY, MONDAY + WEEK)
            })
            .unwrap();
        let row = |tier: &str, at_mql, won, lost| OutcomesByTier { tier: Some(tier.to_string()), at_mql, won, lost };
        assert_eq!(outcomes, [row("hot", true, 1, 0), row("warm", true, 1, 1), row("cold", false, 0, 1)]);
    }

    #[test]
    fn counts_now_are_the_workspaces_own() {
        let (_dir, store, acme, model, globex, their_model) = store();
        let (tiers, stages) = store
            .write_blocking(move |c| {
                let lead = |w| leads::create(c, w, None, 0).map(|l| l.id);
                let (a, b, d, theirs) = (lead(acme)?, lead(acme)?, lead(acme)?, lead(globex)?);
                scored(c, a, model, "hot", 80.0, MONDAY);
                scored(c, b, model, "hot", 70.0, MONDAY);
                scored(c, d, model, "cold", 7.0, MONDAY);
                scored(c, theirs, their_model, "cold", 1.0, MONDAY);
                moved(c, a, "lead", "mql", MONDAY);
                moved(c, theirs, "lead", "mql", MONDAY);
                Ok((tier_counts(c, acme, "fit")?, stage_counts(c, acme)?))
            })
            .unwrap();
        assert_eq!(tiers, [(Some("cold".to_string()), 1), (Some("hot".to_string()), 2)]);
        assert_eq!(stages, [("lead".to_string(), 2), ("mql".to_string(), 1)]);
    }

    /// Moves stored out of time order (past moves recorded late) or at the same instant, MQL
    /// entered again and outcomes reached again keep the cohorts and the outcomes equal to a
    /// walk of the moves.
    #[test]
    fn moves_out_of_time_order_keep_the_cohorts_equal_to_a_recount() {
        let (_dir, store, acme, model, _, _) = store();
        store
            .write_blocking(move |c| {
                let lead = || leads::create(c, acme, None, 0).map(|l| l.id);
                let (a, b) = (lead()?, lead()?);
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
                // Scored before every move: the tier recorded with a move stored late is the
                // tier at its time.
                scored(c, a, model, "warm", 40.0, MONDAY);
                scored(c, b, model, "hot", 80.0, MONDAY);
                for &(lead, stage, day) in &moves {
                    moved(c, lead, "lead", stage, MONDAY + day * DAY);
                    recount::assert_kept_counts_equal(c);
                }
                let journeys = mql_journeys(c, acme, MONDAY, MONDAY + WEEK, MONDAY + WEEK)?;
                assert_eq!(journeys.len(), 2, "both leads entered MQL in the week");
                Ok(())
            })
            .unwrap();
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

    /// Mixed writes through the store's own write paths (ingestion of new and known leads with
    /// their scores and automatic moves, rescoring by another version, stage moves, merges,
    /// activations), in two workspaces over weeks, checked against a recount after each.
    #[test]
    fn the_kept_counts_equal_a_recount_after_every_write() {
        use crate::leads::LeadRow;
        use crate::models::Origin;
        use crate::storage::{
            IngestedLead, IngestionLookup, IngestionWrite, LeadSave, NewIdentities, Reads, ScoredLeadWrite, Transaction,
        };

        let (_dir, _, acme, acme_first, globex, globex_first) = store();
        // Reopened as the service opens it: the process that stores events.
        let store = Store::open_ingesting(_dir.path(), crate::message_ids::DEFAULT_RECENT).unwrap();
        store
            .write_blocking(move |c| {
                let acme_second = c.add_model_version(acme, "", &Default::default(), None, 0)?.id;
                let globex_second = c.add_model_version(globex, "", &Default::default(), None, 0)?.id;
                let models = [(acme, [acme_first, acme_second]), (globex, [globex_first, globex_second])];
                let mut active = [acme_first, globex_first];
                let mut dice = Dice(0x5eed_f00d);
                let mut leads: Vec<LeadRow> = Vec::new();
                let tiers = [None, Some("cold"), Some("warm"), Some("hot")];
                let stages = ["lead", "mql", "sal", "sql", "opportunity", "customer", "lost", "disqualified"];
                let properties = serde_json::Map::new();
                let mut message = 0;
                for step in 0..400 {
                    let now = MONDAY - 4 * WEEK + step * (DAY / 3);
                    let side = dice.below(2);
                    let (workspace_id, _) = models[side];
                    let ours: Vec<usize> =
                        (0..leads.len()).filter(|&i| leads[i].workspace_id == workspace_id).collect();
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
                    match dice.below(6) {
                        // An event of a new or a known lead, scored, sometimes moved to MQL by it.
                        0 | 1 => {
                            let lookup = IngestionLookup {
                                workspace_id,
                                message_ids: vec![],
                                user_ids: vec![],
                                anonymous_ids: vec![],
                                identifiers: Vec::new(),
                            };
                            let snapshot = c.ingestion_snapshot(&lookup)?;
                            let known = (!ours.is_empty() && dice.below(2) == 0).then(|| ours[dice.below(ours.len())]);
                            let (mut lead, new) = match known {
                                Some(i) => (leads[i].clone(), vec![]),
                                None => {
                                    let id = snapshot.next_lead_id;
                                    (crate::leads::new_row(id, workspace_id, None, now), vec![(id, None)])
                                }
                            };
                            let mut stored = c.stored_scores(lead.id)?;
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
                                leads: vec![IngestedLead {
                                    events: vec![event],
                                    save: LeadSave::Scored(scored, &mut stored),
                                }],
                            };
                            lead.last_event_id = c.write_ingested(&mut write)?[0];
                            match known {
                                Some(i) => leads[i] = lead,
                                None => leads.push(lead),
                            }
                        }
                        // A rescoring by the active version (after an activation, the other one).
                        2 if !ours.is_empty() => {
                            let lead = &leads[ours[dice.below(ours.len())]];
                            let mut stored = c.stored_scores(lead.id)?;
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
                            c.save_scored_lead(&write, &mut stored)?;
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
                            c.set_stage(leads[i].id, &change)?;
                            leads[i].stage = stage.to_string();
                        }
                        // Two leads found to be one.
                        4 if ours.len() >= 2 => {
                            let from = leads.remove(ours[dice.below(ours.len())]);
                            let others: Vec<usize> =
                                (0..leads.len()).filter(|&i| leads[i].workspace_id == workspace_id).collect();
                            let into = &mut leads[others[dice.below(others.len())]];
                            c.merge_leads(&from, into)?;
                            let mut write = IngestionWrite {
                                identities: NewIdentities { workspace_id, now, leads: vec![], links: vec![] },
                                leads: vec![IngestedLead { events: vec![], save: LeadSave::Row(into) }],
                            };
                            c.write_ingested(&mut write)?;
                        }
                        // The other version activated: the leads are rescored by it from now on.
                        5 => {
                            let next = models[side].1.into_iter().find(|&m| m != active[side]).unwrap();
                            c.activate_model(workspace_id, next, Origin::Api, now)?;
                            active[side] = next;
                        }
                        _ => continue,
                    }
                    recount::assert_kept_counts_equal(c);
                }
                let merged: i64 =
                    c.query_row("SELECT count(*) FROM leads WHERE merged_into IS NOT NULL", [], |r| r.get(0))?;
                let tiers_changed: i64 = c.query_row(
                    "SELECT count(*) FROM score_history WHERE previous_tier IS NOT NULL AND tier IS NOT previous_tier",
                    [],
                    |r| r.get(0),
                )?;
                assert!(merged > 3 && tiers_changed > 50, "the operations reach merges and tier changes");
                Ok(())
            })
            .unwrap();
    }
}
