//! PostgreSQL queries of the webhooks family (see [`crate::webhooks`] for SQLite's): webhook
//! subscriptions, their outbox (notifications written in the transaction of the change that
//! caused them) and the delivery log.
//!
//! How it differs from SQLite:
//! - [`claim`] picks, locks (`FOR UPDATE SKIP LOCKED`, so that instances claiming at once take
//!   different notifications without waiting for each other) and marks every webhook's share in
//!   one statement (a lateral subquery per webhook) rather than one query per webhook: each
//!   webhook's share is still read on its own from `outbox_pending`, and a lead's earlier pending
//!   notification is found in `outbox_pending_lead`, so neither a long backlog nor a long
//!   delivered history is scanned.
//! - [`redeliver`] copies the notification in one statement, holding a share lock on its webhook
//!   until the transaction ends, and [`delete`] fails the pending notifications in a statement
//!   after the one that marks the webhook deleted: a redelivery and a deletion that meet then go
//!   one after the other, and no notification of a deleted webhook is left pending.
//! - [`depth`] counts the pending notifications of live webhooks only (see there why).

use crate::StoreError;
use crate::postgres::tx::{Tx, Unanswered, database_now_ms_sql};
use crate::webhooks::{
    Attempt, ClaimRequest, Claimed, LeadNotification, LogEntry, NewWebhook, Pending, Webhook, new_secret,
};

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
pub(crate) fn of_lead(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    lead_id: i64,
) -> Result<Vec<LeadNotification>, StoreError> {
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
    let row = connection.query_one(ENQUEUE, &[&webhook_id, &lead_id, &event, &data, &now])?;
    Ok(row.try_get(0)?)
}

/// Due at once on the database's clock, which claims read (`claim`): an instance whose own clock
/// is ahead would otherwise queue a notification that waits for the database's clock to reach
/// the instance's. `created_at` stays the instance's instant, as every other time it stores.
const ENQUEUE: &str = concat!(
    "INSERT INTO outbox (webhook_id, lead_id, event, data, created_at, next_attempt_at) \
     VALUES ($1, $2, $3, $4, $5, least($5, ",
    database_now_ms_sql!(),
    ")) RETURNING id"
);

/// The statement of [`enqueue`], to be sent with others (see
/// [`Tx::query_and_commit`](crate::postgres::tx::Tx::query_and_commit)).
pub(crate) fn enqueue_statement<'a>(
    webhook_id: i64,
    lead_id: i64,
    event: &'a str,
    data: &'a str,
    now: i64,
) -> Unanswered<'a> {
    Unanswered {
        sql: ENQUEUE,
        params: vec![Box::new(webhook_id), Box::new(lead_id), Box::new(event), Box::new(data), Box::new(now)],
    }
}

/// Claims the notifications to send now, until `now + lease_ms` (see [`crate::webhooks::claim`]):
/// each live webhook's share, at most `per_webhook` sent at once by the claimant counting those it
/// is `sending`, only the oldest pending notification of each (webhook, lead), soonest due first,
/// at most `limit` in all.
///
/// One statement picks, locks and marks them. The rows are locked `FOR UPDATE SKIP LOCKED`, so
/// two instances claiming at once take different notifications without waiting for each other: a
/// row another claim holds is passed over, and one it claimed and committed meanwhile is checked
/// again once locked (READ COMMITTED) and left out as claimed. A webhook's share is cut before
/// its rows are locked: a claim holds no row it does not take.
pub(crate) fn claim(connection: &mut Tx<'_>, request: &ClaimRequest) -> Result<Claimed, StoreError> {
    let until = request.now.saturating_add(request.lease_ms);
    let (webhooks, counts): (Vec<i64>, Vec<i64>) = request.sending.iter().map(|(id, n)| (*id, i64::from(*n))).unzip();
    let rows = connection.query(
        "WITH shares AS (
             SELECT o.id
             FROM webhooks w
             CROSS JOIN LATERAL (
                 SELECT coalesce(sum(s.count), 0)::bigint AS running
                 FROM unnest($6::bigint[], $7::bigint[]) AS s (webhook_id, count)
                 WHERE s.webhook_id = w.id
             ) r
             CROSS JOIN LATERAL (
                 SELECT o.id FROM outbox o
                 WHERE o.webhook_id = w.id AND o.delivered_at IS NULL AND o.failed_at IS NULL
                   AND o.next_attempt_at <= $1 AND (o.claimed_until IS NULL OR o.claimed_until <= $1)
                   AND NOT EXISTS (
                     SELECT 1 FROM outbox p
                     WHERE p.webhook_id = o.webhook_id AND p.lead_id = o.lead_id AND p.id < o.id
                       AND p.delivered_at IS NULL AND p.failed_at IS NULL)
                 ORDER BY o.next_attempt_at, o.id
                 LIMIT greatest($2 - r.running, 0)
             ) o
             WHERE w.deleted_at IS NULL AND w.id <> ALL($3)
         ),
         -- Locked here, after the shares are cut to `limit`, so that a claim holds no row it
         -- does not take; a row found claimed once locked (by a claim committed meanwhile) fails
         -- the conditions checked again on its new version and is left out.
         picked AS (
             SELECT o.id FROM outbox o
             WHERE o.id IN (SELECT id FROM shares)
               AND o.delivered_at IS NULL AND o.failed_at IS NULL
               AND (o.claimed_until IS NULL OR o.claimed_until <= $1)
             ORDER BY o.next_attempt_at, o.id
             LIMIT $4
             FOR UPDATE SKIP LOCKED
         ),
         claimed AS (
             UPDATE outbox SET claimed_until = $5 FROM picked, webhooks w
             WHERE outbox.id = picked.id AND w.id = outbox.webhook_id
             RETURNING outbox.id, outbox.webhook_id, w.url, w.secret, outbox.lead_id, outbox.event,
                 outbox.data, outbox.created_at, outbox.attempts, outbox.next_attempt_at
         ),
         soonest AS (
             SELECT min(s.next_attempt_at) AS due
             FROM webhooks w
             CROSS JOIN LATERAL (
                 SELECT o.next_attempt_at FROM outbox o
                 WHERE o.webhook_id = w.id AND o.delivered_at IS NULL AND o.failed_at IS NULL
                   AND o.next_attempt_at > $1
                   AND NOT EXISTS (
                     SELECT 1 FROM outbox p
                     WHERE p.webhook_id = o.webhook_id AND p.lead_id = o.lead_id AND p.id < o.id
                       AND p.delivered_at IS NULL AND p.failed_at IS NULL)
                 ORDER BY o.next_attempt_at LIMIT 1
             ) s
             WHERE w.deleted_at IS NULL AND w.id <> ALL($3)
         ),
         -- The soonest end of a claim's lease: a claimant that stopped leaves its notifications
         -- (and their leads' next ones) to be claimed then.
         lease_ends AS (
             SELECT min(o.claimed_until) AS due FROM outbox o JOIN webhooks w ON w.id = o.webhook_id
             WHERE o.claimed_until > $1 AND o.delivered_at IS NULL AND o.failed_at IS NULL
               AND w.deleted_at IS NULL AND w.id <> ALL($3)
         )
         -- One row even when nothing is claimed, to carry when to claim again.
         SELECT c.id, c.webhook_id, c.url, c.secret, c.lead_id, c.event, c.data, c.created_at, c.attempts,
                c.next_attempt_at, least(soonest.due, lease_ends.due)
         FROM soonest CROSS JOIN lease_ends LEFT JOIN claimed c ON true",
        &[
            &request.now,
            &i64::from(request.per_webhook),
            &request.full(),
            &i64::from(request.limit),
            &until,
            &webhooks,
            &counts,
        ],
    )?;
    let mut claimed = Claimed::default();
    for row in &rows {
        claimed.next_due = row.try_get(10)?;
        let Some(id) = row.try_get::<_, Option<i64>>(0)? else { continue };
        claimed.notifications.push(Pending {
            id,
            webhook_id: row.try_get(1)?,
            url: row.try_get(2)?,
            secret: row.try_get(3)?,
            lead_id: row.try_get(4)?,
            event: row.try_get(5)?,
            data: row.try_get(6)?,
            created_at: row.try_get(7)?,
            attempts: row.try_get(8)?,
            next_attempt_at: row.try_get(9)?,
        });
    }
    // An UPDATE's RETURNING has no order.
    claimed.notifications.sort_by_key(|p| (p.next_attempt_at, p.id));
    Ok(claimed)
}

/// Records an attempt and ends the notification's claim; `next_attempt_at` None with a failure
/// means the notification gave up.
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
             failed_at = $4, next_attempt_at = coalesce($5, next_attempt_at), claimed_until = NULL
         WHERE id = $6",
        &[
            &status,
            &attempt.error,
            &delivered_at,
            &failed_at,
            &next_attempt_at,
            &outbox_id,
            &attempt.at,
            &attempt.duration_ms,
        ],
    )?;
    Ok(())
}

/// Pending notifications (for metrics).
///
/// Those of live webhooks only: a change that read the webhooks before another instance deleted
/// one may queue a notification for it after the deletion failed its pending ones. It is never
/// sent ([`claim`] skips deleted webhooks), so it does not count as waiting, and the count is
/// SQLite's, whose single writer leaves no such notification.
pub(crate) fn depth(connection: &mut Tx<'_>) -> Result<i64, StoreError> {
    let row = connection.query_one(
        "SELECT count(*) FROM outbox o JOIN webhooks w ON w.id = o.webhook_id
         WHERE w.deleted_at IS NULL AND o.delivered_at IS NULL AND o.failed_at IS NULL",
        &[],
    )?;
    Ok(row.try_get(0)?)
}

/// Subscribes the workspace to `new`'s events, with a new signing secret.
pub(crate) fn create(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    new: &NewWebhook,
    now: i64,
) -> Result<Webhook, StoreError> {
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
pub(crate) fn redeliver(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    outbox_id: i64,
    now: i64,
) -> Result<i64, StoreError> {
    // The share lock on the webhook keeps a deletion from passing between the check that it is
    // live and the commit of the copy; one that committed first makes the check fail.
    let row = connection.query_opt(
        concat!(
            "INSERT INTO outbox (webhook_id, lead_id, event, data, created_at, next_attempt_at)
         SELECT o.webhook_id, o.lead_id, o.event, o.data, $3, least($3, ",
            database_now_ms_sql!(),
            ")
         FROM outbox o JOIN webhooks w ON w.id = o.webhook_id
         WHERE o.id = $1 AND w.workspace_id = $2 AND w.deleted_at IS NULL
         FOR SHARE OF w
         RETURNING id"
        ),
        &[&outbox_id, &workspace_id, &now],
    )?;
    let row = row
        .ok_or_else(|| StoreError::NotFound(format!("no delivery {outbox_id} of a live webhook in this workspace")))?;
    Ok(row.try_get(0)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::testing::TestDatabase;
    use crate::postgres::workspaces::{self, wait_until_one_waits_for_a_lock};

    fn hook(c: &mut Tx<'_>, workspace_id: i64) -> i64 {
        let new = NewWebhook { url: "http://example.com".into(), events: vec![], score: None, threshold: None };
        create(c, workspace_id, &new, 1).unwrap().id
    }

    fn ids(claimed: &Claimed) -> Vec<i64> {
        claimed.notifications.iter().map(|p| p.id).collect()
    }

    /// A claim at `now` for a minute, at most 8 of a webhook's notifications at once.
    fn at(now: i64) -> ClaimRequest {
        ClaimRequest { per_webhook: 8, sending: Vec::new(), limit: u32::MAX, now, lease_ms: 60_000 }
    }

    /// What a claim would answer, without keeping it (its savepoint is rolled back).
    fn peek(c: &mut Tx<'_>, request: ClaimRequest) -> Claimed {
        let mut savepoint = c.transaction().unwrap();
        claim(&mut savepoint, &request).unwrap()
    }

    fn with_workspace(test: impl FnOnce(&mut Tx<'_>, i64)) {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut c = client.transaction();
        let workspace = workspaces::find_or_create(&mut c, "w", 1).unwrap();
        test(&mut c, workspace.id);
    }

    #[test]
    fn a_webhook_is_stored_as_subscribed_and_listed_while_live() {
        with_workspace(|c, workspace| {
            let other = workspaces::find_or_create(c, "other", 1).unwrap().id;
            let new = NewWebhook {
                url: "https://crm.example.com/hook".into(),
                events: vec!["became_mql".into(), "score_crossed".into()],
                score: Some("fit".into()),
                threshold: Some(72.5),
            };
            let created = create(c, workspace, &new, 7).unwrap();
            assert!(created.secret.starts_with("whsec_") && created.secret.len() == 54, "{}", created.secret);
            assert_eq!(list(c, workspace).unwrap(), vec![created.clone()]);
            assert_eq!(by_id(c, workspace, created.id).unwrap(), Some(created.clone()));
            assert_eq!(by_id(c, other, created.id).unwrap(), None);
            assert!(list(c, other).unwrap().is_empty());
            assert!(!delete(c, other, created.id, 8).unwrap(), "not another's webhook");
            assert!(delete(c, workspace, created.id, 9).unwrap());
            assert!(!delete(c, workspace, created.id, 10).unwrap(), "already deleted");
            assert!(list(c, workspace).unwrap().is_empty());
            assert_eq!(by_id(c, workspace, created.id).unwrap(), None);
        });
    }

    #[test]
    fn a_leads_next_notification_waits_until_the_one_before_is_settled() {
        with_workspace(|c, workspace| {
            let hook = hook(c, workspace);
            let first = enqueue(c, hook, 1, "tier_changed", "{}", 10).unwrap();
            let second = enqueue(c, hook, 1, "tier_changed", "{}", 20).unwrap();
            let other = enqueue(c, hook, 2, "tier_changed", "{}", 30).unwrap();
            assert_eq!(ids(&peek(c, at(30))), [first, other], "the lead's second waits for its first");
            // A failed attempt to be retried keeps the lead's order, whenever it is due.
            let failed = Attempt { at: 40, status: Some(500), error: Some("500".into()), duration_ms: 3 };
            record_attempt(c, first, &failed, false, Some(100)).unwrap();
            assert_eq!(ids(&peek(c, at(50))), [other], "the first waits for its retry, the second for the first");
            assert_eq!(peek(c, at(50)).next_due, Some(100));
            assert_eq!(ids(&peek(c, at(100))), [other, first], "soonest due first");
            let delivered = Attempt { at: 100, status: Some(200), error: None, duration_ms: 1 };
            record_attempt(c, first, &delivered, true, None).unwrap();
            assert_eq!(ids(&peek(c, at(100))), [second, other]);
            let gave_up = Attempt { at: 110, status: None, error: Some("timed out".into()), duration_ms: 5000 };
            record_attempt(c, second, &gave_up, false, None).unwrap();
            assert_eq!(ids(&peek(c, at(110))), [other], "a notification that gave up is settled");
        });
    }

    #[test]
    fn every_webhook_gets_its_own_share_soonest_due_first() {
        with_workspace(|c, workspace| {
            let busy = hook(c, workspace);
            let quiet = hook(c, workspace);
            let deleted = hook(c, workspace);
            // The busy webhook's backlog is older than the quiet one's notification.
            for lead in 0..20 {
                enqueue(c, busy, lead, "tier_changed", "{}", 100 - lead).unwrap();
            }
            enqueue(c, quiet, 1, "tier_changed", "{}", 500).unwrap();
            enqueue(c, deleted, 1, "tier_changed", "{}", 1).unwrap();
            delete(c, workspace, deleted, 2).unwrap();
            let all = peek(c, at(1_000)).notifications;
            let of =
                |hook: i64| all.iter().filter(|p| p.webhook_id == hook).map(|p| p.next_attempt_at).collect::<Vec<_>>();
            assert_eq!(of(busy), [81, 82, 83, 84, 85, 86, 87, 88]);
            assert_eq!(of(quiet), [500]);
            assert_eq!(all.iter().map(|p| p.webhook_id).collect::<Vec<_>>()[7..], [busy, quiet], "soonest due first");
            let without_busy = peek(c, ClaimRequest { sending: vec![(busy, 8)], ..at(1_000) }).notifications;
            assert_eq!(without_busy.iter().map(|p| p.webhook_id).collect::<Vec<_>>(), [quiet]);
            assert!(peek(c, ClaimRequest { per_webhook: 0, ..at(1_000) }).notifications.is_empty());
            assert_eq!(ids(&peek(c, ClaimRequest { limit: 2, ..at(1_000) })).len(), 2);
        });
    }

    #[test]
    fn a_pending_notification_carries_what_its_delivery_needs() {
        with_workspace(|c, workspace| {
            let hook = hook(c, workspace);
            let secret = by_id(c, workspace, hook).unwrap().unwrap().secret;
            let id = enqueue(c, hook, 7, "became_mql", r#"{"lead":7}"#, 30).unwrap();
            let expected = Pending {
                id,
                webhook_id: hook,
                url: "http://example.com".into(),
                secret,
                lead_id: 7,
                event: "became_mql".into(),
                data: r#"{"lead":7}"#.into(),
                created_at: 30,
                attempts: 0,
                next_attempt_at: 30,
            };
            assert_eq!(peek(c, at(30)).notifications, vec![expected]);
            assert_eq!(depth(c).unwrap(), 1);
        });
    }

    #[test]
    fn attempts_are_logged_and_the_log_pages_newest_first() {
        with_workspace(|c, workspace| {
            let hook = hook(c, workspace);
            let queued: Vec<i64> =
                (0..5).map(|lead| enqueue(c, hook, lead, "tier_changed", "{}", 10 + lead).unwrap()).collect();
            let failed = Attempt { at: 20, status: Some(503), error: Some("HTTP 503".into()), duration_ms: 4 };
            record_attempt(c, queued[0], &failed, false, Some(80)).unwrap();
            let delivered = Attempt { at: 90, status: Some(204), error: None, duration_ms: 2 };
            record_attempt(c, queued[0], &delivered, true, None).unwrap();
            let gave_up = Attempt { at: 30, status: None, error: Some("refused".into()), duration_ms: 1 };
            record_attempt(c, queued[1], &gave_up, false, None).unwrap();
            assert_eq!(depth(c).unwrap(), 3);

            let page = log(c, hook, None, 2).unwrap();
            assert_eq!(page.iter().map(|e| e.id).collect::<Vec<_>>(), [queued[4], queued[3]]);
            let last = log(c, hook, Some(queued[2]), 10).unwrap();
            assert_eq!(
                last,
                vec![
                    LogEntry {
                        id: queued[1],
                        lead_id: 1,
                        event: "tier_changed".into(),
                        created_at: 11,
                        attempts: 1,
                        delivered_at: None,
                        failed_at: Some(30),
                        next_attempt_at: 11,
                        last_status: None,
                        last_error: Some("refused".into()),
                    },
                    LogEntry {
                        id: queued[0],
                        lead_id: 0,
                        event: "tier_changed".into(),
                        created_at: 10,
                        attempts: 2,
                        delivered_at: Some(90),
                        failed_at: None,
                        next_attempt_at: 80,
                        last_status: Some(204),
                        last_error: None,
                    },
                ]
            );
            let logged: Vec<(i64, Option<i64>, Option<String>, i64)> = c
                .query(
                    "SELECT at, status, error, duration_ms FROM deliveries WHERE outbox_id = $1 ORDER BY id",
                    &[&queued[0]],
                )
                .unwrap()
                .iter()
                .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
                .collect();
            assert_eq!(logged, [(20, Some(503), Some("HTTP 503".to_string()), 4), (90, Some(204), None, 2)]);
        });
    }

    #[test]
    fn deleting_a_webhook_fails_its_pending_notifications_only() {
        with_workspace(|c, workspace| {
            let other = workspaces::find_or_create(c, "other", 1).unwrap().id;
            let kept = hook(c, workspace);
            let stopped = hook(c, workspace);
            let delivered = enqueue(c, stopped, 1, "tier_changed", "{}", 10).unwrap();
            record_attempt(
                c,
                delivered,
                &Attempt { at: 11, status: Some(200), error: None, duration_ms: 1 },
                true,
                None,
            )
            .unwrap();
            let pending = enqueue(c, stopped, 2, "tier_changed", "{}", 12).unwrap();
            let elsewhere = enqueue(c, kept, 2, "tier_changed", "{}", 12).unwrap();

            assert!(!delete(c, other, stopped, 13).unwrap());
            assert_eq!(depth(c).unwrap(), 2, "another workspace's deletion stops nothing");
            assert!(delete(c, workspace, stopped, 14).unwrap());
            let entries = log(c, stopped, None, 10).unwrap();
            let states: Vec<_> =
                entries.iter().map(|e| (e.id, e.delivered_at, e.failed_at, e.last_error.clone())).collect();
            assert_eq!(
                states,
                [(pending, None, Some(14), Some("webhook deleted".to_string())), (delivered, Some(11), None, None)]
            );
            assert_eq!(ids(&peek(c, at(20))), [elsewhere]);

            // A change that read the webhook before its deletion queues for it afterwards: never
            // sent, and not counted as waiting.
            enqueue(c, stopped, 3, "tier_changed", "{}", 15).unwrap();
            assert_eq!(ids(&peek(c, at(20))), [elsewhere]);
            assert_eq!(depth(c).unwrap(), 1);
        });
    }

    #[test]
    fn a_redelivery_is_queued_after_the_leads_pending_ones_for_a_live_webhook_of_the_workspace() {
        with_workspace(|c, workspace| {
            let other = workspaces::find_or_create(c, "other", 1).unwrap().id;
            let hook = hook(c, workspace);
            let sent = enqueue(c, hook, 1, "became_mql", r#"{"n":1}"#, 10).unwrap();
            record_attempt(c, sent, &Attempt { at: 11, status: Some(200), error: None, duration_ms: 1 }, true, None)
                .unwrap();
            let waiting = enqueue(c, hook, 1, "tier_changed", "{}", 12).unwrap();

            let not_theirs = redeliver(c, other, sent, 20);
            assert!(matches!(not_theirs, Err(StoreError::NotFound(_))), "{not_theirs:?}");
            assert!(matches!(redeliver(c, workspace, sent + 100, 20), Err(StoreError::NotFound(_))));
            let again = redeliver(c, workspace, sent, 20).unwrap();
            assert!(again > waiting);
            let copy = log(c, hook, None, 1).unwrap().remove(0);
            assert_eq!((copy.id, copy.lead_id, copy.event.as_str(), copy.created_at), (again, 1, "became_mql", 20));
            assert_eq!((copy.attempts, copy.next_attempt_at, copy.delivered_at), (0, 20, None));
            assert_eq!(ids(&peek(c, at(20))), [waiting], "after the lead's pending one");

            delete(c, workspace, hook, 30).unwrap();
            assert!(matches!(redeliver(c, workspace, sent, 40), Err(StoreError::NotFound(_))), "a deleted webhook");
        });
    }

    #[test]
    fn a_redelivery_that_meets_a_deletion_leaves_nothing_pending() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let (workspace, hook, sent) = {
            let mut c = client.transaction();
            let workspace = workspaces::find_or_create(&mut c, "w", 1).unwrap().id;
            let hook = hook(&mut c, workspace);
            let sent = enqueue(&mut c, hook, 1, "became_mql", "{}", 10).unwrap();
            record_attempt(
                &mut c,
                sent,
                &Attempt { at: 11, status: Some(200), error: None, duration_ms: 1 },
                true,
                None,
            )
            .unwrap();
            c.commit().unwrap();
            (workspace, hook, sent)
        };
        let mut redelivering = client.transaction();
        redeliver(&mut redelivering, workspace, sent, 20).unwrap();
        let url = database.url.clone();
        let deleting = std::thread::spawn(move || {
            let mut other = crate::postgres::Connection::connect_url(&url);
            let mut c = other.transaction();
            let deleted = delete(&mut c, workspace, hook, 30).unwrap();
            c.commit().unwrap();
            deleted
        });
        wait_until_one_waits_for_a_lock(&database, &deleting);
        redelivering.commit().unwrap();
        assert!(deleting.join().unwrap());
        let mut c = client.transaction();
        assert_eq!(depth(&mut c).unwrap(), 0, "the redelivered copy was stopped with its webhook");
    }

    #[test]
    fn a_leads_notifications_include_those_of_the_leads_merged_into_it() {
        with_workspace(|c, workspace| {
            let other = workspaces::find_or_create(c, "other", 1).unwrap().id;
            // Lead 3 was merged into 2, and 2 into 1; lead 4 stands alone.
            for (id, merged_into) in [(1_i64, None), (2, Some(1_i64)), (3, Some(2)), (4, None)] {
                c.execute(
                    "INSERT INTO leads (id, workspace_id, created_at, updated_at, merged_into) VALUES ($1, $2, 0, 0, $3)",
                    &[&id, &workspace, &merged_into],
                )
                .unwrap();
            }
            let ours = hook(c, workspace);
            let theirs = hook(c, other);
            let of_three = enqueue(c, ours, 3, "tier_changed", r#"{"lead":3}"#, 10).unwrap();
            let of_one = enqueue(c, ours, 1, "became_mql", "{}", 20).unwrap();
            enqueue(c, ours, 4, "tier_changed", "{}", 30).unwrap();
            enqueue(c, theirs, 1, "tier_changed", "{}", 40).unwrap();
            let found = of_lead(c, workspace, 1).unwrap();
            assert_eq!(found.iter().map(|n| n.id).collect::<Vec<_>>(), [of_three, of_one]);
            assert_eq!(
                found[0],
                LeadNotification {
                    id: of_three,
                    webhook_id: ours,
                    lead_id: 3,
                    event: "tier_changed".into(),
                    data: r#"{"lead":3}"#.into(),
                    created_at: 10,
                    delivered_at: None,
                }
            );
            assert_eq!(of_lead(c, workspace, 3).unwrap().iter().map(|n| n.id).collect::<Vec<_>>(), [of_three]);
        });
    }

    #[test]
    fn a_claim_holds_until_its_attempt_is_recorded_or_its_lease_ends() {
        with_workspace(|c, workspace| {
            let hook = hook(c, workspace);
            let sent = enqueue(c, hook, 1, "tier_changed", "{}", 10).unwrap();
            let lease = |now| ClaimRequest { lease_ms: 100, ..at(now) };
            assert_eq!(ids(&claim(c, &lease(10)).unwrap()), [sent]);
            let held = claim(c, &lease(109)).unwrap();
            assert_eq!((ids(&held), held.next_due), (vec![], Some(110)), "claimed until 110: claimed again then");
            assert_eq!(ids(&claim(c, &lease(110)).unwrap()), [sent], "the claimant stopped: claimable again");
            // Recording the attempt ends the claim (taken until 210): the retry is claimable when due.
            let failed = Attempt { at: 120, status: Some(503), error: Some("HTTP 503".into()), duration_ms: 1 };
            record_attempt(c, sent, &failed, false, Some(150)).unwrap();
            let retry = claim(c, &lease(140)).unwrap();
            assert_eq!((ids(&retry), retry.next_due), (vec![], Some(150)));
            assert_eq!(ids(&claim(c, &lease(150)).unwrap()), [sent]);
            let delivered = Attempt { at: 160, status: Some(200), error: None, duration_ms: 1 };
            record_attempt(c, sent, &delivered, true, None).unwrap();
            assert_eq!(claim(c, &lease(1_000)).unwrap(), Claimed::default(), "delivered");
        });
    }

    #[test]
    fn instances_claiming_at_once_take_different_notifications_without_waiting() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let queued: Vec<i64> = {
            let mut c = client.transaction();
            let workspace = workspaces::find_or_create(&mut c, "w", 1).unwrap().id;
            let hook = hook(&mut c, workspace);
            let queued = (0..4).map(|lead| enqueue(&mut c, hook, lead, "tier_changed", "{}", 10 + lead).unwrap());
            let queued = queued.collect();
            c.commit().unwrap();
            queued
        };
        let mut first = client.transaction();
        let taken_first = claim(&mut first, &ClaimRequest { limit: 2, ..at(100) }).unwrap();
        assert_eq!(ids(&taken_first), queued[..2]);
        // The first claim is not committed: the second passes over its rows rather than waiting
        // (a wait would end in a lock timeout error).
        let mut other = crate::postgres::Connection::connect_url(&database.url);
        let mut second = other.transaction();
        second.batch_execute("SET LOCAL lock_timeout = '5s'").unwrap();
        let taken_second = claim(&mut second, &at(100)).unwrap();
        assert_eq!(ids(&taken_second), queued[2..], "the rows the first holds are passed over");
        second.commit().unwrap();
        first.commit().unwrap();
        let mut c = client.transaction();
        assert!(claim(&mut c, &at(100)).unwrap().notifications.is_empty(), "every one is claimed once");
    }

    #[test]
    fn a_leads_later_notification_waits_while_its_earlier_one_is_claimed() {
        with_workspace(|c, workspace| {
            let hook = hook(c, workspace);
            let first = enqueue(c, hook, 1, "tier_changed", "{}", 10).unwrap();
            let second = enqueue(c, hook, 1, "became_mql", "{}", 20).unwrap();
            assert_eq!(ids(&claim(c, &at(30)).unwrap()), [first]);
            assert!(claim(c, &at(40)).unwrap().notifications.is_empty(), "the second waits for the claimed first");
            // The first's claimant stopped: the first is claimed again, never the second before it.
            assert_eq!(ids(&claim(c, &at(60_030)).unwrap()), [first]);
            let gave_up = Attempt { at: 60_040, status: None, error: Some("refused".into()), duration_ms: 1 };
            record_attempt(c, first, &gave_up, false, None).unwrap();
            assert_eq!(ids(&claim(c, &at(60_040)).unwrap()), [second]);
        });
    }
}
