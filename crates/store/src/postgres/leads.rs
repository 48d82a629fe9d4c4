//! PostgreSQL queries of the leads family (see [`crate::leads`] for SQLite's).
#![allow(unused_imports, unused_variables)]

use crate::postgres::Tx;
use crate::leads::*;
use serde_json::{Map, Value};
use crate::StoreError;

/// The fields of `fields` that no lead of the workspace has (merged-away leads aside), in their
/// order. A lead has a field when an attribute of that name holds a value (not `null`, not blank
/// text); `email` and `user_id` count the lead's own columns too, and every lead has `created_at`
/// (what the service's scoring reads, `scoring::lead_values`).
///
/// Attributes are JSON text, read one lead at a time: the newest leads are looked at first, where
/// most fields turn up, and the fields still missing then cost one pass over the workspace's
/// leads together (about 2 s per million leads with ten attributes each), however many they are.
pub(crate) fn fields_no_lead_has(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    fields: &[String],
) -> Result<Vec<String>, StoreError> {
    todo!()
}

/// How many leads the workspace has, merged ones included.
pub(crate) fn count(connection: &mut Tx<'_>, workspace_id: i64) -> Result<i64, StoreError> {
    todo!()
}

/// The ids of the workspace's first `limit` leads (merged ones left out), in id order: the sample
/// a model preview compares.
pub(crate) fn first_ids(connection: &mut Tx<'_>, workspace_id: i64, limit: u32) -> Result<Vec<i64>, StoreError> {
    todo!()
}

/// The ids of up to `limit` of the workspace's leads (merged ones left out) after `after_id`, in
/// id order: how rescoring walks a workspace in batches.
pub(crate) fn ids_after(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    after_id: i64,
    limit: u32,
) -> Result<Vec<i64>, StoreError> {
    todo!()
}

/// The workspace's next `limit` leads in id order after `after_id` (merged ones left out), whole
/// rows in one query: a batch of a pass over every lead (a model preview).
pub(crate) fn rows_after(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    after_id: i64,
    limit: u32,
) -> Result<Vec<LeadRow>, StoreError> {
    todo!()
}

/// A lead of the workspace by its own id (not a merged one).
pub(crate) fn by_id(connection: &mut Tx<'_>, workspace_id: i64, id: i64) -> Result<Option<LeadRow>, StoreError> {
    todo!()
}

pub(crate) fn by_user_id(connection: &mut Tx<'_>, workspace_id: i64, user_id: &str) -> Result<Option<LeadRow>, StoreError> {
    todo!()
}

pub(crate) fn by_anonymous_id(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    anonymous_id: &str,
) -> Result<Option<LeadRow>, StoreError> {
    todo!()
}

pub(crate) fn links(connection: &mut Tx<'_>, workspace_id: i64, lead_id: i64) -> Result<LeadLinks, StoreError> {
    todo!()
}

/// A page of the workspace's leads with one score, filtered and sorted by it (ties by lead id, in
/// the same direction). Listed by a score, a lead without a value for it is not listed (only
/// while a rescoring gives a new score its first values); without a score (no active model),
/// leads are listed newest first. `Page::After` and `Page::Before` seek the score's index, so
/// that a far page costs what the first does; `Order::LastActivity` lists by offset only, leads
/// without the score included.
pub(crate) fn list(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    filter: &Filter,
    order: Order,
    limit: u32,
    page: Page,
) -> Result<Vec<ListedLead>, StoreError> {
    todo!()
}

/// Stores a new lead with the id it was handed (see [`new_row`]).
pub(crate) fn insert_new(
    connection: &mut Tx<'_>,
    id: i64,
    workspace_id: i64,
    user_id: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    todo!()
}

pub(crate) fn link_anonymous_id(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    anonymous_id: &str,
    lead_id: i64,
) -> Result<(), StoreError> {
    todo!()
}

/// Gives an anonymous lead its user id.
pub(crate) fn set_user_id(connection: &mut Tx<'_>, lead_id: i64, user_id: &str) -> Result<(), StoreError> {
    todo!()
}

/// Same as [`save`], with `last_event_id` as the lead's newest event instead of the row's: for a
/// caller that appended events after the row was built (see [`crate::events::append`]). The
/// stage is left as stored: [`crate::stages::set`] moves it, with its record. Left out of the
/// statement, which every event's lead runs, so is the trigger that counts leads per stage
/// (`0015_funnel_counts.sql`).
pub(crate) fn save_with_newest_event(
    connection: &mut Tx<'_>,
    lead: &LeadRow,
    last_event_id: Option<i64>,
) -> Result<(), StoreError> {
    todo!()
}

/// Reserves `count` consecutive lead ids and answers the first (0 when `count` is 0: no lead
/// may be created then), see `reserve_lead_ids` in the schema.
pub(crate) fn reserve_ids(c: &mut Tx<'_>, count: i64) -> Result<i64, StoreError> {
    todo!()
}
