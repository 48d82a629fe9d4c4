//! PostgreSQL queries of the rescorings family (see [`crate::rescorings`] for SQLite's).
#![allow(unused_imports, unused_variables)]

use crate::postgres::Tx;
use crate::rescorings::*;
use crate::StoreError;

/// The workspace's running or last rescoring.
pub(crate) fn get(connection: &mut Tx<'_>, workspace_id: i64) -> Result<Option<Rescoring>, StoreError> {
    todo!()
}

/// Records the start of a rescoring of every lead of the workspace with `model_id`.
pub(crate) fn begin(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    model_id: i64,
    cause: &str,
    revert_automatic_since: Option<i64>,
    if_running: IfRunning,
    now: i64,
) -> Result<(), StoreError> {
    todo!()
}

/// Records that the leads up to `after_lead_id` are done, `done` in all.
pub(crate) fn advance(connection: &mut Tx<'_>, workspace_id: i64, after_lead_id: i64, done: i64) -> Result<(), StoreError> {
    todo!()
}

/// Records the end of the workspace's rescoring, with the error that stopped it, if any.
pub(crate) fn finish(connection: &mut Tx<'_>, workspace_id: i64, error: Option<&str>, now: i64) -> Result<(), StoreError> {
    todo!()
}

/// Every rescoring that has not finished (to resume at start).
pub(crate) fn unfinished(connection: &mut Tx<'_>) -> Result<Vec<Rescoring>, StoreError> {
    todo!()
}
