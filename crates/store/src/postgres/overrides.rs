//! PostgreSQL queries of the overrides family (see [`crate::overrides`] for SQLite's).
#![allow(unused_imports, unused_variables)]

use crate::postgres::Tx;
use crate::overrides::*;
use crate::StoreError;

/// Every override of a lead, in force or lifted, newest first.
pub(crate) fn of_lead(connection: &mut Tx<'_>, lead_id: i64) -> Result<Vec<ScoreOverride>, StoreError> {
    todo!()
}

/// The override in force on a lead's score, if any.
pub(crate) fn in_force(connection: &mut Tx<'_>, lead_id: i64, score: &str) -> Result<Option<ScoreOverride>, StoreError> {
    todo!()
}

/// Up to `limit` overrides in force whose expiry is at or before `now`, soonest first, each
/// with its workspace: what the periodic pass lifts.
pub(crate) fn expired(connection: &mut Tx<'_>, now: i64, limit: u32) -> Result<Vec<(i64, ScoreOverride)>, StoreError> {
    todo!()
}

/// Stores a new override in force at `now`, lifting the one in force on the same score, if any
/// (by [`REPLACED`]); answers its id.
pub(crate) fn insert(connection: &mut Tx<'_>, new: &NewOverride<'_>, now: i64) -> Result<i64, StoreError> {
    todo!()
}

/// Records that override `id` was lifted at `now` by `by`, with an optional note; an override
/// already lifted keeps its first lifting.
pub(crate) fn lift(connection: &mut Tx<'_>, id: i64, by: &str, note: Option<&str>, now: i64) -> Result<(), StoreError> {
    todo!()
}
