//! Webhook subscriptions, their outbox and the delivery log.
//!
//! Notifications are written to the outbox in the same transaction as the change that caused
//! them, so none is lost and none is sent for a change that was rolled back. A dispatcher claims
//! the notifications it sends until a lease ends ([`claim`]), so that several instances do not
//! send the same one; it takes for each (webhook, lead) only the oldest pending notification,
//! which keeps a lead's notifications in order, and looks at each webhook's separately.

use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;

/// What a webhook can subscribe to.
pub const EVENT_KINDS: &[&str] = &["tier_changed", "became_mql", "stage_changed", "score_crossed"];

#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub id: i64,
    pub workspace_id: i64,
    pub url: String,
    pub secret: String,
    pub events: Vec<String>,
    pub score: Option<String>,
    pub threshold: Option<f64>,
    pub created_at: i64,
}

/// A subscription to create.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    pub events: Vec<String>,
    pub score: Option<String>,
    pub threshold: Option<f64>,
}

/// A new webhook's signing secret.
pub(crate) fn new_secret() -> Result<String, StoreError> {
    let mut random = [0u8; 24];
    getrandom::fill(&mut random).map_err(|e| StoreError::Corrupt(format!("no randomness for a secret: {e}")))?;
    Ok(format!("whsec_{}", hex::encode(random)))
}

pub fn create(connection: &Connection, workspace_id: i64, new: &NewWebhook, now: i64) -> Result<Webhook, StoreError> {
    let secret = new_secret()?;
    connection.execute(
        "INSERT INTO webhooks (workspace_id, url, secret, events, score, threshold, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            workspace_id,
            new.url,
            secret,
            serde_json::to_string(&new.events).unwrap_or_default(),
            new.score,
            new.threshold,
            now
        ],
    )?;
    Ok(Webhook {
        id: connection.last_insert_rowid(),
        workspace_id,
        url: new.url.clone(),
        secret,
        events: new.events.clone(),
        score: new.score.clone(),
        threshold: new.threshold,
        created_at: now,
    })
}

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Webhook> {
    let events: String = row.get(4)?;
    Ok(Webhook {
        id: row.get(0)?,
        workspace_id: row.get(1)?,
        url: row.get(2)?,
        secret: row.get(3)?,
        events: serde_json::from_str(&events).unwrap_or_default(),
        score: row.get(5)?,
        threshold: row.get(6)?,
        created_at: row.get(7)?,
    })
}

const COLUMNS: &str = "id, workspace_id, url, secret, events, score, threshold, created_at";

/// The workspace's live webhooks.
pub fn list(connection: &Connection, workspace_id: i64) -> Result<Vec<Webhook>, StoreError> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM webhooks WHERE workspace_id = ?1 AND deleted_at IS NULL ORDER BY id"
    ))?;
    let rows = statement.query_map([workspace_id], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn by_id(connection: &Connection, workspace_id: i64, id: i64) -> Result<Option<Webhook>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM webhooks WHERE workspace_id = ?1 AND id = ?2 AND deleted_at IS NULL");
    Ok(connection.query_row(&sql, params![workspace_id, id], from_row).optional()?)
}

/// Stops one of the workspace's webhooks; its pending notifications are not sent. Another
/// workspace's webhook of that id is left alone, its notifications too.
pub fn delete(connection: &Connection, workspace_id: i64, id: i64, now: i64) -> Result<bool, StoreError> {
    let changed = connection.execute(
        "UPDATE webhooks SET deleted_at = ?1 WHERE workspace_id = ?2 AND id = ?3 AND deleted_at IS NULL",
        params![now, workspace_id, id],
    )?;
    connection.execute(
        "UPDATE outbox SET failed_at = ?1, last_error = 'webhook deleted'
         WHERE webhook_id = (SELECT id FROM webhooks WHERE workspace_id = ?2 AND id = ?3)
           AND delivered_at IS NULL AND failed_at IS NULL",
        params![now, workspace_id, id],
    )?;
    Ok(changed == 1)
}

/// Adds a notification for one webhook.
pub fn enqueue(
    connection: &Connection,
    webhook_id: i64,
    lead_id: i64,
    event: &str,
    data: &str,
    now: i64,
) -> Result<i64, StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO outbox (webhook_id, lead_id, event, data, created_at, next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        )?
        .execute(params![webhook_id, lead_id, event, data, now])?;
    Ok(connection.last_insert_rowid())
}

/// A notification about a lead, as an export lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadNotification {
    pub id: i64,
    pub webhook_id: i64,
    pub lead_id: i64,
    pub event: String,
    /// The notification's data (JSON), as sent.
    pub data: String,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

/// Every notification about a lead and the leads merged into it, oldest first.
pub fn of_lead(connection: &Connection, workspace_id: i64, lead_id: i64) -> Result<Vec<LeadNotification>, StoreError> {
    let mut statement = connection.prepare(
        "WITH RECURSIVE grouped(id) AS (
             SELECT ?2 UNION SELECT l.id FROM leads l JOIN grouped g ON l.merged_into = g.id
         )
         SELECT o.id, o.webhook_id, o.lead_id, o.event, o.data, o.created_at, o.delivered_at FROM outbox o
         WHERE o.webhook_id IN (SELECT id FROM webhooks WHERE workspace_id = ?1) AND o.lead_id IN grouped
         ORDER BY o.id",
    )?;
    let rows = statement.query_map(params![workspace_id, lead_id], |row| {
        Ok(LeadNotification {
            id: row.get(0)?,
            webhook_id: row.get(1)?,
            lead_id: row.get(2)?,
            event: row.get(3)?,
            data: row.get(4)?,
            created_at: row.get(5)?,
            delivered_at: row.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A notification to deliver.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub id: i64,
    pub webhook_id: i64,
    pub url: String,
    pub secret: String,
    pub lead_id: i64,
    pub event: String,
    pub data: String,
    pub created_at: i64,
    pub attempts: i64,
    pub next_attempt_at: i64,
}

/// What a dispatcher asks of [`claim`].
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimRequest {
    /// The most notifications of one webhook the claimant sends at once.
    pub per_webhook: u32,
    /// How many of each webhook's notifications the claimant is sending now (webhook, count): they
    /// count against its `per_webhook`. Other claimants' sendings do not: one that stopped keeps
    /// its claims until their leases end, and counted, they would hold back every lead of the
    /// webhook that long instead of only its own. A webhook with `per_webhook` of them is not
    /// looked at.
    pub sending: Vec<(i64, u32)>,
    /// The most notifications this claim takes, in all.
    pub limit: u32,
    pub now: i64,
    /// How long the claim holds: its lease ends at `now + lease_ms`.
    pub lease_ms: i64,
}

impl ClaimRequest {
    /// How many of `webhook`'s notifications the claimant may still claim.
    pub(crate) fn room(&self, webhook: i64) -> i64 {
        let sending: i64 = self.sending.iter().filter(|(id, _)| *id == webhook).map(|(_, n)| i64::from(*n)).sum();
        (i64::from(self.per_webhook) - sending).max(0)
    }

    /// The webhooks not looked at: those the claimant sends `per_webhook` notifications of.
    pub(crate) fn full(&self) -> Vec<i64> {
        let mut full: Vec<i64> = self.sending.iter().map(|(id, _)| *id).filter(|id| self.room(*id) == 0).collect();
        full.sort_unstable();
        full.dedup();
        full
    }
}

/// What [`claim`] answers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Claimed {
    /// The notifications claimed, soonest due first: the claimant sends them and records each
    /// attempt ([`record_attempt`] ends the claim).
    pub notifications: Vec<Pending>,
    /// When to claim again, if ever: the soonest of when a notification not due yet (each the
    /// oldest pending of its lead) is due and when a claim's lease ends (its claimant may have
    /// stopped, leaving the notification and its lead's next ones to be claimed then).
    pub next_due: Option<i64>,
}

/// Claims the notifications to send now, until `now + lease_ms`: no other claim answers them
/// before their attempt is recorded or the lease ends (the claimant stopped: they are claimable
/// again).
///
/// A notification is claimable when it is pending, due and not claimed (or its claim's lease has
/// ended), and no earlier notification of its (webhook, lead) is pending, claimed or not: a
/// lead's notifications go one at a time, in order. Each live webhook has its share: at most
/// `per_webhook` of its notifications sent at once by the claimant, counting those it is
/// `sending`; the claim takes the soonest due of the shares (then the oldest), at most `limit` in
/// all.
///
/// Each webhook is looked up on its own (`outbox_pending` is by webhook, then due time), so a
/// receiver with a long backlog neither costs the others a scan nor takes their place.
pub fn claim(connection: &Connection, request: &ClaimRequest) -> Result<Claimed, StoreError> {
    let now = request.now;
    let hooks: Vec<i64> = connection
        .prepare_cached("SELECT id FROM webhooks WHERE deleted_at IS NULL ORDER BY id")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let mut lease_ends = connection.prepare_cached(
        "SELECT min(claimed_until) FROM outbox
         WHERE webhook_id = ?1 AND claimed_until > ?2 AND delivered_at IS NULL AND failed_at IS NULL",
    )?;
    let mut claimable = connection.prepare_cached(
        "SELECT o.id, o.webhook_id, w.url, w.secret, o.lead_id, o.event, o.data, o.created_at, o.attempts,
                o.next_attempt_at
         FROM outbox o JOIN webhooks w ON w.id = o.webhook_id
         WHERE o.webhook_id = ?1 AND o.delivered_at IS NULL AND o.failed_at IS NULL AND o.next_attempt_at <= ?2
           AND (o.claimed_until IS NULL OR o.claimed_until <= ?2)
           AND NOT EXISTS (
             SELECT 1 FROM outbox p WHERE p.webhook_id = o.webhook_id AND p.lead_id = o.lead_id AND p.id < o.id
               AND p.delivered_at IS NULL AND p.failed_at IS NULL)
         ORDER BY o.next_attempt_at, o.id LIMIT ?3",
    )?;
    let mut soonest = connection.prepare_cached(
        "SELECT o.next_attempt_at FROM outbox o
         WHERE o.webhook_id = ?1 AND o.delivered_at IS NULL AND o.failed_at IS NULL AND o.next_attempt_at > ?2
           AND NOT EXISTS (
             SELECT 1 FROM outbox p WHERE p.webhook_id = o.webhook_id AND p.lead_id = o.lead_id AND p.id < o.id
               AND p.delivered_at IS NULL AND p.failed_at IS NULL)
         ORDER BY o.next_attempt_at LIMIT 1",
    )?;
    let mut notifications = Vec::new();
    let mut next_due: Option<i64> = None;
    let full = request.full();
    for hook in hooks.into_iter().filter(|h| !full.contains(h)) {
        let lease_end: Option<i64> = lease_ends.query_row(params![hook, now], |row| row.get(0))?;
        if let Some(end) = lease_end {
            next_due = Some(next_due.map_or(end, |known| known.min(end)));
        }
        let room = request.room(hook);
        if room > 0 {
            let rows = claimable.query_map(params![hook, now, room], |row| {
                Ok(Pending {
                    id: row.get(0)?,
                    webhook_id: row.get(1)?,
                    url: row.get(2)?,
                    secret: row.get(3)?,
                    lead_id: row.get(4)?,
                    event: row.get(5)?,
                    data: row.get(6)?,
                    created_at: row.get(7)?,
                    attempts: row.get(8)?,
                    next_attempt_at: row.get(9)?,
                })
            })?;
            for row in rows {
                notifications.push(row?);
            }
        }
        if let Some(due) = soonest.query_row(params![hook, now], |row| row.get::<_, i64>(0)).optional()? {
            next_due = Some(next_due.map_or(due, |known| known.min(due)));
        }
    }
    notifications.sort_by_key(|p| (p.next_attempt_at, p.id));
    notifications.truncate(usize::try_from(request.limit).unwrap_or(usize::MAX));
    let until = now.saturating_add(request.lease_ms);
    let mut mark = connection.prepare_cached("UPDATE outbox SET claimed_until = ?1 WHERE id = ?2")?;
    for pending in &notifications {
        mark.execute(params![until, pending.id])?;
    }
    Ok(Claimed { notifications, next_due })
}

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub at: i64,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// Records an attempt and ends the notification's claim; `next_attempt_at` None with a failure
/// means the notification gave up.
pub fn record_attempt(
    connection: &Connection,
    outbox_id: i64,
    attempt: &Attempt,
    delivered: bool,
    next_attempt_at: Option<i64>,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO deliveries (outbox_id, at, status, error, duration_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![outbox_id, attempt.at, attempt.status, attempt.error, attempt.duration_ms])?;
    let (delivered_at, failed_at) = match (delivered, next_attempt_at) {
        (true, _) => (Some(attempt.at), None),
        (false, None) => (None, Some(attempt.at)),
        (false, Some(_)) => (None, None),
    };
    connection
        .prepare_cached(
            "UPDATE outbox SET attempts = attempts + 1, last_status = ?1, last_error = ?2, delivered_at = ?3,
                 failed_at = ?4, next_attempt_at = coalesce(?5, next_attempt_at), claimed_until = NULL
             WHERE id = ?6",
        )?
        .execute(params![attempt.status, attempt.error, delivered_at, failed_at, next_attempt_at, outbox_id])?;
    Ok(())
}

/// One notification with its state, for the delivery log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub id: i64,
    pub lead_id: i64,
    pub event: String,
    pub created_at: i64,
    pub attempts: i64,
    pub delivered_at: Option<i64>,
    pub failed_at: Option<i64>,
    pub next_attempt_at: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
}

/// A webhook's newest `limit` notifications older than the notification `before` (all of them
/// with `None`), newest first: a page of its delivery log.
pub fn log(
    connection: &Connection,
    webhook_id: i64,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<LogEntry>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT id, lead_id, event, created_at, attempts, delivered_at, failed_at, next_attempt_at, last_status, last_error
         FROM outbox WHERE webhook_id = ?1 AND id < ?3 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = statement.query_map(params![webhook_id, limit, before.unwrap_or(i64::MAX)], |row| {
        Ok(LogEntry {
            id: row.get(0)?,
            lead_id: row.get(1)?,
            event: row.get(2)?,
            created_at: row.get(3)?,
            attempts: row.get(4)?,
            delivered_at: row.get(5)?,
            failed_at: row.get(6)?,
            next_attempt_at: row.get(7)?,
            last_status: row.get(8)?,
            last_error: row.get(9)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Queues a notification again (as a new one, after the lead's pending ones). Returns its id.
pub fn redeliver(connection: &Connection, workspace_id: i64, outbox_id: i64, now: i64) -> Result<i64, StoreError> {
    let found: Option<(i64, i64, String, String)> = connection
        .query_row(
            "SELECT o.webhook_id, o.lead_id, o.event, o.data FROM outbox o JOIN webhooks w ON w.id = o.webhook_id
             WHERE o.id = ?1 AND w.workspace_id = ?2 AND w.deleted_at IS NULL",
            params![outbox_id, workspace_id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .optional()?;
    let (webhook_id, lead_id, event, data) = found
        .ok_or_else(|| StoreError::NotFound(format!("no delivery {outbox_id} of a live webhook in this workspace")))?;
    enqueue(connection, webhook_id, lead_id, &event, &data, now)
}

/// Pending notifications (for metrics).
pub fn depth(connection: &Connection) -> Result<i64, StoreError> {
    Ok(connection.query_row(
        "SELECT count(*) FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL",
        [],
        |row| row.get(0),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, workspaces};

    fn hook(c: &Connection, workspace_id: i64) -> Result<i64, StoreError> {
        let new = NewWebhook { url: "http://example.com".into(), events: vec![], score: None, threshold: None };
        Ok(create(c, workspace_id, &new, crate::now_ms())?.id)
    }

    /// Claims at `now` for a minute, at most 8 of a webhook's notifications at once, while
    /// `sending` those of each webhook.
    fn claim_at(c: &Connection, now: i64, sending: &[(i64, u32)]) -> Result<Claimed, StoreError> {
        let request =
            ClaimRequest { per_webhook: 8, sending: sending.to_vec(), limit: u32::MAX, now, lease_ms: 60_000 };
        claim(c, &request)
    }

    fn ids(claimed: &Claimed) -> Vec<i64> {
        claimed.notifications.iter().map(|p| p.id).collect()
    }

    #[test]
    fn a_leads_next_notification_waits_until_the_one_before_is_settled() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (first, second, other, before, after, again, retried) = store
            .write_blocking(|c| {
                let workspace = workspaces::find_or_create(c, "w", crate::now_ms())?;
                let hook = hook(c, workspace.id)?;
                let first = enqueue(c, hook, 1, "tier_changed", "{}", 10)?;
                let second = enqueue(c, hook, 1, "tier_changed", "{}", 20)?;
                let other = enqueue(c, hook, 2, "tier_changed", "{}", 30)?;
                let before = claim_at(c, 40, &[])?;
                // While both are claimed, the next claim is due when their lease ends (their
                // claimant may have stopped).
                assert_eq!(claim_at(c, 41, &[])?.next_due, Some(60_040));
                let failed = Attempt { at: 40, status: Some(500), error: None, duration_ms: 1 };
                record_attempt(c, first, &failed, false, Some(100))?;
                let after = claim_at(c, 50, &[])?;
                let delivered = Attempt { at: 100, status: Some(200), error: None, duration_ms: 1 };
                let again = claim_at(c, 100, &[])?;
                record_attempt(c, first, &delivered, true, None)?;
                Ok((first, second, other, before, after, again, claim_at(c, 100, &[])?))
            })
            .unwrap();
        assert_eq!(ids(&before), [first, other], "the lead's second waits for its first");
        assert_eq!(ids(&after), [] as [i64; 0], "the first waits for its retry, the second for the first");
        assert_eq!(after.next_due, Some(100));
        assert_eq!(ids(&again), [first], "due again");
        assert_eq!(ids(&retried), [second], "the other lead's is still claimed");
    }

    #[test]
    fn another_workspace_cannot_stop_a_webhooks_notifications() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (pending, stopped, claimed) = store
            .write_blocking(|c| {
                let acme = workspaces::find_or_create(c, "acme", crate::now_ms())?;
                let other = workspaces::find_or_create(c, "other", crate::now_ms())?;
                let hook = hook(c, acme.id)?;
                let pending = enqueue(c, hook, 1, "tier_changed", "{}", 10)?;
                let stopped = delete(c, other.id, hook, 20)?;
                Ok((pending, stopped, claim_at(c, 30, &[])?))
            })
            .unwrap();
        assert!(!stopped);
        assert_eq!(ids(&claimed), [pending], "still to be sent");
    }

    #[test]
    fn every_webhook_gets_its_own_share_soonest_due_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (busy, quiet, without_busy, all, later) = store
            .write_blocking(|c| {
                let workspace = workspaces::find_or_create(c, "w", crate::now_ms())?;
                let busy = hook(c, workspace.id)?;
                let quiet = hook(c, workspace.id)?;
                // The busy webhook's backlog is older than the quiet one's notification.
                for lead in 0..20 {
                    enqueue(c, busy, lead, "tier_changed", "{}", 100 - lead)?;
                }
                enqueue(c, quiet, 1, "tier_changed", "{}", 500)?;
                let without_busy = claim_at(c, 1_000, &[(busy, 8)])?;
                let all = claim_at(c, 1_000, &[])?;
                let sending = [(busy, 8), (quiet, 1)];
                Ok((busy, quiet, without_busy, all, claim_at(c, 1_000, &sending)?))
            })
            .unwrap();
        let hooks = |claimed: &Claimed| claimed.notifications.iter().map(|p| p.webhook_id).collect::<Vec<_>>();
        assert_eq!(hooks(&without_busy), [quiet]);
        let due = all.notifications.iter().map(|p| p.next_attempt_at).collect::<Vec<_>>();
        assert_eq!(due, [81, 82, 83, 84, 85, 86, 87, 88]);
        assert_eq!(hooks(&all), [busy; 8]);
        assert!(later.notifications.is_empty(), "the busy webhook's share is taken until its sendings end");
    }
}
