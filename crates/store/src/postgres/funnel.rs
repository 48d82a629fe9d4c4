//! PostgreSQL queries of the funnel family (see [`crate::funnel`] for SQLite's).
#![allow(unused_imports, unused_variables)]

use crate::postgres::Tx;
use crate::funnel::*;
use crate::StoreError;

/// How many leads of the workspace (merged ones left out) are in each tier of a score now;
/// `None` counts leads whose value is in no tier.
pub(crate) fn tier_counts(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    score: &str,
) -> Result<Vec<(Option<String>, i64)>, StoreError> {
    todo!()
}

/// How many leads of the workspace (merged ones left out) are in each stage now.
pub(crate) fn stage_counts(connection: &mut Tx<'_>, workspace_id: i64) -> Result<Vec<(String, i64)>, StoreError> {
    todo!()
}

/// Leads of the workspace entering stage `mql` in `[from, to)`, by the week (its Monday) of
/// their entry, weeks without any left out; a lead entering twice in a week counts once.
///
/// An entry counts when the lead's MQL entry before it is before the period or the week: it is
/// the lead's first of the week in the period. Counted week by week over the cohort rows' range
/// (in time order), rather than grouped by an expression SQLite would sort the rows by.
pub(crate) fn mql_entries_by_week(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    from: i64,
    to: i64,
) -> Result<Vec<(i64, i64)>, StoreError> {
    todo!()
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
    todo!()
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
    todo!()
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
    todo!()
}
