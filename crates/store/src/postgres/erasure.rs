//! PostgreSQL queries of the erasure family (see [`crate::erasure`] for SQLite's).
#![allow(unused_imports, unused_variables)]

use crate::postgres::Tx;
use crate::erasure::*;
use std::collections::BTreeSet;
use sha2::{Digest, Sha256};
use crate::StoreError;
use crate::events::CHAIN;

/// Which of `identifiers` are on the workspace's suppression list (by position). One lookup of
/// the list when it is empty, which is the usual case.
pub(crate) fn suppressed(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    identifiers: &[(IdentifierKind, &str)],
) -> Result<Vec<bool>, StoreError> {
    todo!()
}

/// The workspace's erasures, newest first.
pub(crate) fn list(connection: &mut Tx<'_>, workspace_id: i64) -> Result<Vec<Erasure>, StoreError> {
    todo!()
}

/// The latest erasure of a lead number, if it was erased.
pub(crate) fn of_lead(connection: &mut Tx<'_>, workspace_id: i64, lead_id: i64) -> Result<Option<Erasure>, StoreError> {
    todo!()
}

/// Erases the lead `lead_id` of the workspace (and the leads merged into it) and lists its
/// identifiers; `None` when the workspace has no such lead (or it is itself merged into another:
/// erase that one). The caller queues the `lead_erased` notifications after it.
pub(crate) fn erase(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    lead_id: i64,
    erased_by: &str,
    now: i64,
) -> Result<Option<Erasure>, StoreError> {
    todo!()
}

/// Lifts an erasure's suppression: its identifiers are accepted again. `None` when the
/// workspace has no such erasure; lifting twice changes nothing more.
pub(crate) fn lift(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    erasure_id: i64,
    lifted_by: &str,
    now: i64,
) -> Result<Option<Erasure>, StoreError> {
    todo!()
}
