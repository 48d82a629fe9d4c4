//! PostgreSQL queries of the webhooks family (see [`crate::webhooks`] for SQLite's): webhook
//! subscriptions, their outbox (notifications written in the transaction of the change that
//! caused them) and the delivery log.
//!
//! How it differs from SQLite:
//! - [`upcoming`] asks for every webhook's share in one query (a lateral subquery per webhook)
//!   rather than one query per webhook: each webhook's share is still read on its own from
//!   `outbox_pending`, and a lead's earlier pending notification is found in
//!   `outbox_pending_lead`, so neither a long backlog nor a long delivered history is scanned.
//! - [`redeliver`] copies the notification in one statement, holding a share lock on its webhook
//!   until the transaction ends, and [`delete`] fails the pending notifications in a statement
//!   after the one that marks the webhook deleted: a redelivery and a deletion that meet then go
//!   one after the other, and no notification of a deleted webhook is left pending.
//! - [`delete`] fails the pending notifications of a webhook of the workspace only (SQLite's
//!   fails those of the webhook with that id whichever workspace asks).

use crate::StoreError;
use crate::postgres::Tx;
use crate::webhooks::{Attempt, LeadNotification, LogEntry, NewWebhook, Pending, Webhook, new_secret};

const COLUMNS: &str = "id, workspace_id, url, secret, events, score, threshold, created_at";

fn from_row(row: &postgres::Row) -> Result<Webhook, StoreError> {
    let events: &str = row.try_get(4)?;
    Ok(Webhook {
        id: row.try_get(0)?,
        workspace_id: row.try_get(1)?,
        url: row.try_get(2)?,
        secret: row.try_get(3)?,
        // As SQLite's store reads them: a list that is not one subscribes to nothing.
        events: serde_json::from_str(events).unwrap_or_default(),
        score: row.try_get(5)?,
        threshold: row.try_get(6)?,
        created_at: row.try_get(7)?,
    })
}

/// The workspace's live webhooks.
pub(crate) fn list(connection: &mut Tx<'_>, workspace_id: i64) -> Result<Vec<Webhook>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM webhooks WHERE workspace_id = $1 AND deleted_at IS NULL ORDER BY id");
    connection.query(&sql, &[&workspace_id])?.iter().map(from_row).collect()
}

/// Every notification about a lead and the leads merged into it, oldest first.
pub(crate) fn of_lead(connection: &mut Tx<'_>, workspace_id: i64, lead_id: i64) -> Result<Vec<LeadNotification>, StoreError> {
    let rows = connection.query(
        "WITH RECURSIVE grouped(id) AS (
             SELECT $2::BIGINT UNION SELECT l.id FROM leads l JOIN grouped g ON l.merged_into = g.id
         )
         SELECT o.id, o.webhook_id, o.lead_id, o.event, o.data, o.created_at, o.delivered_at FROM outbox o
         WHERE o.webhook_id IN (SELECT id FROM webhooks WHERE workspace_id = $1)
           AND o.lead_id IN (SELECT id FROM grouped)
         ORDER BY o.id",
        &[&workspace_id, &lead_id],
    )?;
    rows.iter()
        .map(|row| {
            Ok(LeadNotification {
                id: row.try_get(0)?,
                webhook_id: row.try_get(1)?,
                lead_id: row.try_get(2)?,
                event: row.try_get(3)?,
                data: row.try_get(4)?,
                created_at: row.try_get(5)?,
                delivered_at: row.try_get(6)?,
            })
        })
        .collect()
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
    let row = connection.query_one(
        "INSERT INTO outbox (webhook_id, lead_id, event, data, created_at, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
        &[&webhook_id, &lead_id, &event, &data, &now],
    )?;
    Ok(row.try_get(0)?)
}

/// For each live webhook but those in `skip`, the first `per_webhook` notifications that may be
/// sent next, soonest due first, due now or later (the later ones tell the dispatcher when to
/// look again). Only the oldest pending notification of each (webhook, lead) is a candidate: a
/// lead's notifications go one at a time, in order. One that is being sent is still pending
/// until its attempt is recorded, so it comes back here and its lead's next one does not.
///
/// Each webhook is looked up on its own (`outbox_pending` is by webhook, then due time), so a
/// receiver with a long backlog neither costs the others a scan nor takes their place. Webhooks
/// come in id order; notifications due at the same time in the order they were queued.
pub(crate) fn upcoming(connection: &mut Tx<'_>, per_webhook: u32, skip: &[i64]) -> Result<Vec<Pending>, StoreError> {
    let rows = connection.query(
        "SELECT o.id, w.id, w.url, w.secret, o.lead_id, o.event, o.data, o.created_at, o.attempts, o.next_attempt_at
         FROM webhooks w
         CROSS JOIN LATERAL (
             SELECT o.* FROM outbox o
             WHERE o.webhook_id = w.id AND o.delivered_at IS NULL AND o.failed_at IS NULL
               AND NOT EXISTS (
                 SELECT 1 FROM outbox p
                 WHERE p.webhook_id = o.webhook_id AND p.lead_id = o.lead_id AND p.id < o.id
                   AND p.delivered_at IS NULL AND p.failed_at IS NULL)
             ORDER BY o.next_attempt_at, o.id LIMIT $1
         ) o
         WHERE w.deleted_at IS NULL AND w.id <> ALL($2)
         ORDER BY w.id, o.next_attempt_at, o.id",
        &[&i64::from(per_webhook), &skip],
    )?;
    rows.iter()
        .map(|row| {
            Ok(Pending {
                id: row.try_get(0)?,
                webhook_id: row.try_get(1)?,
                url: row.try_get(2)?,
                secret: row.try_get(3)?,
                lead_id: row.try_get(4)?,
                event: row.try_get(5)?,
                data: row.try_get(6)?,
                created_at: row.try_get(7)?,
                attempts: row.try_get(8)?,
                next_attempt_at: row.try_get(9)?,
            })
        })
        .collect()
}

/// Records an attempt; `next_attempt_at` None with a failure means the notification gave up.
pub(crate) fn record_attempt(
    connection: &mut Tx<'_>,
    outbox_id: i64,
    attempt: &Attempt,
    delivered: bool,
    next_attempt_at: Option<i64>,
) -> Result<(), StoreError> {
    let (delivered_at, failed_at) = match (delivered, next_attempt_at) {
        (true, _) => (Some(attempt.at), None),
        (false, None) => (None, Some(attempt.at)),
        (false, Some(_)) => (None, None),
    };
    let status = attempt.status.map(i64::from);
    // The attempt's log row and the notification's state in one statement (one round trip).
    connection.execute(
        "WITH logged AS (
             INSERT INTO deliveries (outbox_id, at, status, error, duration_ms) VALUES ($6, $7, $1, $2, $8)
         )
         UPDATE outbox SET attempts = attempts + 1, last_status = $1, last_error = $2, delivered_at = $3,
             failed_at = $4, next_attempt_at = coalesce($5, next_attempt_at)
         WHERE id = $6",
        &[&status, &attempt.error, &delivered_at, &failed_at, &next_attempt_at, &outbox_id, &attempt.at, &attempt.duration_ms],
    )?;
    Ok(())
}

/// Pending notifications (for metrics).
pub(crate) fn depth(connection: &mut Tx<'_>) -> Result<i64, StoreError> {
    let row =
        connection.query_one("SELECT count(*) FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL", &[])?;
    Ok(row.try_get(0)?)
}

/// Subscribes the workspace to `new`'s events, with a new signing secret.
pub(crate) fn create(connection: &mut Tx<'_>, workspace_id: i64, new: &NewWebhook, now: i64) -> Result<Webhook, StoreError> {
    let secret = new_secret()?;
    let events = serde_json::to_string(&new.events).unwrap_or_default();
    let row = connection.query_one(
        "INSERT INTO webhooks (workspace_id, url, secret, events, score, threshold, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        &[&workspace_id, &new.url, &secret, &events, &new.score, &new.threshold, &now],
    )?;
    Ok(Webhook {
        id: row.try_get(0)?,
        workspace_id,
        url: new.url.clone(),
        secret,
        events: new.events.clone(),
        score: new.score.clone(),
        threshold: new.threshold,
        created_at: now,
    })
}

/// Stops a webhook; its pending notifications are not sent.
pub(crate) fn delete(connection: &mut Tx<'_>, workspace_id: i64, id: i64, now: i64) -> Result<bool, StoreError> {
    let changed = connection.execute(
        "UPDATE webhooks SET deleted_at = $1 WHERE workspace_id = $2 AND id = $3 AND deleted_at IS NULL",
        &[&now, &workspace_id, &id],
    )?;
    // A statement of its own: it sees what a redelivery that held the webhook until this one
    // could mark it deleted has queued (see the module's doc).
    connection.execute(
        "UPDATE outbox SET failed_at = $1, last_error = 'webhook deleted'
         WHERE webhook_id = (SELECT id FROM webhooks WHERE workspace_id = $2 AND id = $3)
           AND delivered_at IS NULL AND failed_at IS NULL",
        &[&now, &workspace_id, &id],
    )?;
    Ok(changed == 1)
}

/// One of the workspace's live webhooks; `None` if it has no such webhook or deleted it.
pub(crate) fn by_id(connection: &mut Tx<'_>, workspace_id: i64, id: i64) -> Result<Option<Webhook>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM webhooks WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NULL");
    connection.query_opt(&sql, &[&workspace_id, &id])?.as_ref().map(from_row).transpose()
}

/// A webhook's newest `limit` notifications older than the notification `before` (all of them
/// with `None`), newest first: a page of its delivery log.
pub(crate) fn log(
    connection: &mut Tx<'_>,
    webhook_id: i64,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<LogEntry>, StoreError> {
    let rows = connection.query(
        "SELECT id, lead_id, event, created_at, attempts, delivered_at, failed_at, next_attempt_at, last_status, last_error
         FROM outbox WHERE webhook_id = $1 AND id < $3 ORDER BY id DESC LIMIT $2",
        &[&webhook_id, &i64::from(limit), &before.unwrap_or(i64::MAX)],
    )?;
    rows.iter()
        .map(|row| {
            Ok(LogEntry {
                id: row.try_get(0)?,
                lead_id: row.try_get(1)?,
                event: row.try_get(2)?,
                created_at: row.try_get(3)?,
                attempts: row.try_get(4)?,
                delivered_at: row.try_get(5)?,
                failed_at: row.try_get(6)?,
                next_attempt_at: row.try_get(7)?,
                last_status: row.try_get(8)?,
                last_error: row.try_get(9)?,
            })
        })
        .collect()
}

/// Queues a notification again (as a new one, after the lead's pending ones). Returns its id;
/// `NotFound` unless it is a notification of one of the workspace's live webhooks.
pub(crate) fn redeliver(connection: &mut Tx<'_>, workspace_id: i64, outbox_id: i64, now: i64) -> Result<i64, StoreError> {
    // The share lock on the webhook keeps a deletion from passing between the check that it is
    // live and the commit of the copy; one that committed first makes the check fail.
    let row = connection.query_opt(
        "INSERT INTO outbox (webhook_id, lead_id, event, data, created_at, next_attempt_at)
         SELECT o.webhook_id, o.lead_id, o.event, o.data, $3, $3
         FROM outbox o JOIN webhooks w ON w.id = o.webhook_id
         WHERE o.id = $1 AND w.workspace_id = $2 AND w.deleted_at IS NULL
         FOR SHARE OF w
         RETURNING id",
        &[&outbox_id, &workspace_id, &now],
    )?;
    let row =
        row.ok_or_else(|| StoreError::NotFound(format!("no delivery {outbox_id} of a live webhook in this workspace")))?;
    Ok(row.try_get(0)?)
}
