//! PostgreSQL queries of the predictive family (see [`crate::predictive`] for SQLite's).
#![allow(unused_imports, unused_variables)]

use crate::postgres::Tx;
use crate::predictive::*;
use std::fmt;
use crate::StoreError;

/// The latest version of the workspace's predictive model `name`, if there is one.
pub(crate) fn latest(connection: &mut Tx<'_>, workspace_id: i64, name: &str) -> Result<Option<PredictiveVersion>, StoreError> {
    todo!()
}

/// Every version of the workspace's predictive models, by name then version. The fields and AUC
/// are read from the stored files by SQLite, so that bodies (megabytes for boosted trees) are
/// not copied out.
pub(crate) fn list(connection: &mut Tx<'_>, workspace_id: i64) -> Result<Vec<Summary>, StoreError> {
    todo!()
}

/// The workspace's leads whose current stage is `customer` or `lost` (merged-away leads left out),
/// in the order they were created.
pub(crate) fn outcomes(connection: &mut Tx<'_>, workspace_id: i64) -> Result<Vec<LabelledLead>, StoreError> {
    todo!()
}

/// A version by its id, if it belongs to the workspace.
pub(crate) fn by_id(connection: &mut Tx<'_>, workspace_id: i64, id: i64) -> Result<Option<PredictiveVersion>, StoreError> {
    todo!()
}

/// Stores a new version of the workspace's predictive model `name` (the caller has checked the
/// file) and returns it.
pub(crate) fn add(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    name: &str,
    body: &str,
    algorithm: &str,
    origin: Origin,
    now: i64,
) -> Result<PredictiveVersion, StoreError> {
    todo!()
}
