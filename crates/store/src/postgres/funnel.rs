//! PostgreSQL queries of the funnel report (see [`crate::funnel`] for SQLite's, whose answers
//! these are): leads per tier and per stage now, leads entering MQL per week, the way of a
//! period's MQLs through the funnel, the share of leads in a tier at the end of each week, and
//! the outcomes of leads by the tier they had when they became MQL.
//!
//! # The kept counts
//! As in SQLite, the report reads small tables the writer keeps (`0002_funnel_counts.sql`, the
//! same tables as SQLite's `0015_funnel_counts.sql` and `0016_funnel_cohorts.sql`), changed by
//! triggers in the statement that changes what they count, so that they cannot drift from the
//! rows: `tier_counts` (leads per model version, score and tier), `stage_counts` (leads per
//! workspace and stage, merged ones left out), `tier_changes_by_week` and `first_scores_by_week`
//! (per week, the score history entries entering and leaving a tier, and the scores first
//! given), `mql_move_tiers` (a lead's tiers when it moved to MQL), `mql_cohorts` (per MQL move,
//! the MQL move before it and the first later moves to each stage) and `outcome_moves` (per move
//! to an outcome, whether it is the lead's stage now, its next move to that stage and its latest
//! MQL move). The triggers are PL/pgSQL functions written as SQLite's: `IS` is
//! `IS NOT DISTINCT FROM`, a counter row missing is made by `ON CONFLICT ... DO UPDATE`, and the
//! null tier of `tier_counts` is one key by a unique constraint with `NULLS NOT DISTINCT`. An
//! erasure deletes the erased leads' rows of `mql_cohorts` and `outcome_moves` itself, with their
//! stage moves, as SQLite's does; the other tables follow the deleted rows by triggers.
//!
//! # Several writers
//! The counter rows are shared by every transaction that changes what they count, which holds
//! them locked until it commits, so that writes changing the same count run one after another:
//! - `tier_counts`: the row of a model version's score and tier, changed by every new score and
//!   every change of tier (a few rows per active version: the hottest, under ingestion of new
//!   leads);
//! - `stage_counts`: the row of a workspace's stage, changed by every new lead (`lead`), every
//!   stage move and merge;
//! - `tier_changes_by_week` and `first_scores_by_week`: the current week's rows of a version's
//!   score, changed by every history entry that changes a tier or gives a score first.
//!
//! The cohort rows are a lead's own (its moves lock its row first), never shared. A trigger
//! changing two counter rows changes them in the order of their keys, so that two single-lead
//! writes in opposite directions wait for each other rather than deadlock; a transaction writing
//! several leads (an ingestion batch, a rescoring) takes its counter rows in the order of its
//! leads, and may still deadlock with another such transaction: PostgreSQL then fails one of them,
//! which the store reports as unavailable and whose retry is safe. If measurements show these
//! waits matter, what removes them is to stop updating shared rows in the writing transaction:
//! split each counter into a few rows by a shard (the lead id modulo a small number), which the
//! report sums, or append each change as a row of its own and fold them into the counts in the
//! background, the report adding the changes not folded yet.
//!
//! # What differs from SQLite
//! - Tiers and stages are ordered by byte (`COLLATE "C"`) and a null tier first, as SQLite orders
//!   them, whatever the database's collation.
//! - Counts grouped in the database where SQLite counts them in Rust (SQLite would sort the rows
//!   to group them; PostgreSQL hashes them), and one statement per read sent without a separate
//!   round trip to prepare it.
//! - Counts are `BIGINT`s, and PostgreSQL's `sum` of them a `NUMERIC`: cast back.

use postgres::types::{ToSql, Type};

use crate::StoreError;
use crate::funnel::*;
use crate::postgres::Tx;

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
        "SELECT stage, leads FROM stage_counts WHERE workspace_id = $1 AND leads > 0 ORDER BY stage COLLATE \"C\"",
        &[(&workspace_id, Type::INT8)],
    )?;
    rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect()
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
