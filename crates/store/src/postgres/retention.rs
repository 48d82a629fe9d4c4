//! PostgreSQL queries of the retention family (see [`crate::retention`] for SQLite's).
#![allow(unused_imports, unused_variables)]

use crate::postgres::Tx;
use crate::retention::*;
use crate::StoreError;
use crate::events::CHAIN;
use crate::leads::LeadRow;

pub(crate) fn get(connection: &mut Tx<'_>, workspace_id: i64) -> Result<Option<Retention>, StoreError> {
    todo!()
}

/// Every workspace's retention.
pub(crate) fn all(connection: &mut Tx<'_>) -> Result<Vec<Retention>, StoreError> {
    todo!()
}

/// The highest event id stored (0 without any): where a pass over the events ends.
pub(crate) fn last_event_id(connection: &mut Tx<'_>) -> Result<i64, StoreError> {
    todo!()
}

/// The leads of the workspace with an event older than `cutoff` among the events of ids in
/// `(after, through]`: one slice of a pass, read by the events' primary key.
pub(crate) fn leads_with_expired_events(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    cutoff: i64,
    after: i64,
    through: i64,
) -> Result<Vec<i64>, StoreError> {
    todo!()
}

/// Sets (or, with `None`, removes) the workspace's retention.
pub(crate) fn set(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    events_days: Option<i64>,
    set_by: &str,
    now: i64,
) -> Result<(), StoreError> {
    todo!()
}

/// Deletes the lead's events older than `cutoff` and links each event it keeps to the next
/// older one it keeps; the row's `last_event_id` becomes its newest kept event (the caller saves
/// the row). Returns how many were deleted.
pub(crate) fn prune(connection: &mut Tx<'_>, lead: &mut LeadRow, cutoff: i64) -> Result<usize, StoreError> {
    todo!()
}
