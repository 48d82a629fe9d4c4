//! PostgreSQL queries of the events family (see [`crate::events`] for SQLite's).
#![allow(unused_imports, unused_variables)]

use crate::postgres::Tx;
use crate::events::*;
use crate::StoreError;
use crate::leads::LeadRow;

/// Every event of each of `leads`, oldest first, in the leads' order, in one query: the walks of
/// all their links at once (for rebuilding the states of a batch of leads). `UNION` keeps each
/// walk finite as in [`CHAIN`].
pub(crate) fn of_leads(connection: &mut Tx<'_>, leads: &[&LeadRow]) -> Result<Vec<Vec<StoredEvent>>, StoreError> {
    todo!()
}

/// Whether the workspace already has this message id.
pub(crate) fn exists(connection: &mut Tx<'_>, workspace_id: i64, message_id: &str) -> Result<bool, StoreError> {
    todo!()
}

/// Every event of a lead, oldest first (for rebuilding its state): the events linked back from
/// `lead.last_event_id`, which is current in the given row even before the row is saved.
pub(crate) fn of_lead(connection: &mut Tx<'_>, lead: &LeadRow) -> Result<Vec<StoredEvent>, StoreError> {
    todo!()
}

/// A lead's `limit` most recently stored events (newest first, by the order they were stored,
/// which is their links' order) and how many it has in all: what a lead's page lists, without
/// reading every event of a lead that has thousands.
pub(crate) fn newest_of_lead(
    connection: &mut Tx<'_>,
    lead: &LeadRow,
    limit: u32,
) -> Result<(Vec<StoredEvent>, u64), StoreError> {
    todo!()
}

/// Stores an event of the lead `lead_id` after its newest event `newest`, which becomes the new
/// event (the caller saves it as the lead's `last_event_id` before its transaction ends). For a
/// caller that appends several events to a lead before saving its row once.
/// Nothing is written for a message id the workspace already has.
pub(crate) fn append(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    lead_id: i64,
    newest: &mut Option<i64>,
    event: &NewEvent<'_>,
) -> Result<Inserted, StoreError> {
    todo!()
}
