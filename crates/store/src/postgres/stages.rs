//! PostgreSQL queries of the stages family (see [`crate::stages`] for SQLite's).
#![allow(unused_imports, unused_variables)]

use crate::postgres::Tx;
use crate::stages::*;
use crate::StoreError;

/// A lead's latest stage change, if it ever moved.
pub(crate) fn latest(connection: &mut Tx<'_>, lead_id: i64) -> Result<Option<StageChange>, StoreError> {
    todo!()
}

/// A lead's stage changes, newest first.
pub(crate) fn history(connection: &mut Tx<'_>, lead_id: i64) -> Result<Vec<StageChange>, StoreError> {
    todo!()
}

/// Sets a lead's stage and records the change (with the lead's workspace, which reports read
/// moves by).
pub(crate) fn set(connection: &mut Tx<'_>, lead_id: i64, change: &StageChange) -> Result<(), StoreError> {
    todo!()
}
