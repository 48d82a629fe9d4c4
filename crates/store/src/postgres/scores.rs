//! PostgreSQL queries of the scores family (see [`crate::scores`] for SQLite's).
#![allow(unused_imports, unused_variables)]

use crate::postgres::Tx;
use crate::scores::*;
use crate::StoreError;

/// The current scores of each of `lead_ids` (ascending), in their order, in one query: the
/// scores are clustered by lead, so the leads' range is read once, and rows of leads in the range
/// that were not asked for (another workspace's, merged ones) are skipped.
pub(crate) fn stored_of(connection: &mut Tx<'_>, lead_ids: &[i64]) -> Result<Vec<StoredScores>, StoreError> {
    todo!()
}

/// A lead's current scores as stored.
pub(crate) fn stored(connection: &mut Tx<'_>, lead_id: i64) -> Result<StoredScores, StoreError> {
    todo!()
}

/// The newest `limit` entries of a lead's score history, newest first: each score's entries are
/// linked back from its current row (`history_id`, then `previous_id`), at most `limit` of each.
pub(crate) fn history(connection: &mut Tx<'_>, lead_id: i64, limit: u32) -> Result<Vec<HistoryEntry>, StoreError> {
    todo!()
}

/// Same as [`save`] given what is stored (from [`stored`] or a previous save in this or an
/// earlier transaction), which it brings up to date; a history entry carries its score's `terms`
/// when given.
pub(crate) fn save_over(
    connection: &mut Tx<'_>,
    lead_id: i64,
    stored: &mut StoredScores,
    rows: &[ScoreRow],
    cause: &str,
    history: History,
    terms: &[HistoryTerms],
) -> Result<Vec<Change>, StoreError> {
    todo!()
}
