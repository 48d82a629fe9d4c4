//! PostgreSQL queries of the models family (see [`crate::models`] for SQLite's).
#![allow(unused_imports, unused_variables)]

use crate::postgres::Tx;
use crate::models::*;
use std::collections::BTreeMap;
use crate::StoreError;

pub(crate) fn by_id(connection: &mut Tx<'_>, model_id: i64) -> Result<Option<ModelVersion>, StoreError> {
    todo!()
}

/// The id of the workspace's version numbered `version`, if there is one.
pub(crate) fn id_of_version(connection: &mut Tx<'_>, workspace_id: i64, version: i64) -> Result<Option<i64>, StoreError> {
    todo!()
}

/// Every version of the workspace, oldest first.
pub(crate) fn list_versions(connection: &mut Tx<'_>, workspace_id: i64) -> Result<Vec<ListedVersion>, StoreError> {
    todo!()
}

/// A workspace's activations, oldest first (rolled back ones included, with `undone_at`).
pub(crate) fn stack(connection: &mut Tx<'_>, workspace_id: i64) -> Result<Vec<Activation>, StoreError> {
    todo!()
}

pub(crate) fn active(connection: &mut Tx<'_>, workspace_id: i64) -> Result<Option<ModelVersion>, StoreError> {
    todo!()
}

/// Stores a new version (the caller has compiled it, resolving its predictive references to
/// `predictors`) and returns it, with who uploaded it (an API key, a console account; `None`
/// when no one did, as for tests and versions stored before it was recorded). A pinned
/// predictive model must belong to the workspace.
pub(crate) fn add(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    source: &str,
    predictors: &BTreeMap<String, i64>,
    uploaded_by: Option<&str>,
    now: i64,
) -> Result<ModelVersion, StoreError> {
    todo!()
}

/// Makes a version the active one, on top of the workspace's version stack.
pub(crate) fn activate(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    model_id: i64,
    origin: Origin,
    now: i64,
) -> Result<(), StoreError> {
    todo!()
}

/// Undoes the newest activation still standing: the version activated before it is active
/// again. A second rollback goes one further down the stack; it never goes forward again.
pub(crate) fn rollback(connection: &mut Tx<'_>, workspace_id: i64, now: i64) -> Result<RolledBack, StoreError> {
    todo!()
}

/// The workspaces that have an active version, in id order: those the scheduler rescores.
pub(crate) fn workspaces_with_active_model(connection: &mut Tx<'_>) -> Result<Vec<i64>, StoreError> {
    todo!()
}
