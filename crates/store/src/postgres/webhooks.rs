//! PostgreSQL queries of the webhooks family (see [`crate::webhooks`] for SQLite's).
#![allow(unused_imports, unused_variables)]

use crate::postgres::Tx;
use crate::webhooks::*;
use crate::StoreError;

/// The workspace's live webhooks.
pub(crate) fn list(connection: &mut Tx<'_>, workspace_id: i64) -> Result<Vec<Webhook>, StoreError> {
    todo!()
}

/// Every notification about a lead and the leads merged into it, oldest first.
pub(crate) fn of_lead(connection: &mut Tx<'_>, workspace_id: i64, lead_id: i64) -> Result<Vec<LeadNotification>, StoreError> {
    todo!()
}

/// Adds a notification for one webhook.
pub(crate) fn enqueue(
    connection: &mut Tx<'_>,
    webhook_id: i64,
    lead_id: i64,
    event: &str,
    data: &str,
    now: i64,
) -> Result<i64, StoreError> {
    todo!()
}

/// For each live webhook but those in `skip`, the first `per_webhook` notifications that may be
/// sent next, soonest due first, due now or later (the later ones tell the dispatcher when to
/// look again). Only the oldest pending notification of each (webhook, lead) is a candidate: a
/// lead's notifications go one at a time, in order. One that is being sent is still pending
/// until its attempt is recorded, so it comes back here and its lead's next one does not.
///
/// Each webhook is looked up on its own (`outbox_pending` is by webhook, then due time), so a
/// receiver with a long backlog neither costs the others a scan nor takes their place.
pub(crate) fn upcoming(connection: &mut Tx<'_>, per_webhook: u32, skip: &[i64]) -> Result<Vec<Pending>, StoreError> {
    todo!()
}

/// Records an attempt; `next_attempt_at` None with a failure means the notification gave up.
pub(crate) fn record_attempt(
    connection: &mut Tx<'_>,
    outbox_id: i64,
    attempt: &Attempt,
    delivered: bool,
    next_attempt_at: Option<i64>,
) -> Result<(), StoreError> {
    todo!()
}

/// Pending notifications (for metrics).
pub(crate) fn depth(connection: &mut Tx<'_>) -> Result<i64, StoreError> {
    todo!()
}

pub(crate) fn create(connection: &mut Tx<'_>, workspace_id: i64, new: &NewWebhook, now: i64) -> Result<Webhook, StoreError> {
    todo!()
}

/// Stops a webhook; its pending notifications are not sent.
pub(crate) fn delete(connection: &mut Tx<'_>, workspace_id: i64, id: i64, now: i64) -> Result<bool, StoreError> {
    todo!()
}

pub(crate) fn by_id(connection: &mut Tx<'_>, workspace_id: i64, id: i64) -> Result<Option<Webhook>, StoreError> {
    todo!()
}

/// A webhook's newest `limit` notifications older than the notification `before` (all of them
/// with `None`), newest first: a page of its delivery log.
pub(crate) fn log(
    connection: &mut Tx<'_>,
    webhook_id: i64,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<LogEntry>, StoreError> {
    todo!()
}

/// Queues a notification again (as a new one, after the lead's pending ones). Returns its id.
pub(crate) fn redeliver(connection: &mut Tx<'_>, workspace_id: i64, outbox_id: i64, now: i64) -> Result<i64, StoreError> {
    todo!()
}
