//! The webhook dispatcher: sends due outbox notifications, signed, and retries failures with
//! exponential backoff for more than a day before giving up.
//!
//! Each notification is started as soon as it may be sent and ends on its own (the dispatcher
//! never waits for a group of them), so a receiver that never answers holds only its own
//! notifications (at most `PER_WEBHOOK`) and every other webhook's go on.
//!
//! Several instances may share the outbox: each claims the notifications it sends
//! ([`leadscore_store::webhooks::claim`]) until a lease ends (`LEASE`), so that no other instance
//! sends them meanwhile, and recording the attempt ends the claim. A lead's notifications to a
//! webhook still go one at a time, in order: only the oldest pending one of each lead can be
//! claimed, and the one being sent stays pending until its attempt is recorded. If an instance
//! stops while sending, its claims' leases end and another instance sends them again (delivery
//! is at least once). Meanwhile only the leads it was sending wait: each instance counts its own
//! sendings against `PER_WEBHOOK`, not the others' claims, which would count a stopped instance's
//! until their leases end and hold back every lead of the webhook that long. A receiver gets at
//! most `PER_WEBHOOK` notifications at once from each instance.
//!
//! Leases and due times are read on the store's shared clock (`Storage::shared_clock_ms`: the
//! database's, on PostgreSQL), read again at every claim, not on each instance's own: an instance
//! whose clock is a few minutes behind would otherwise write leases that the others find already
//! ended, and send what another is still sending. A notification is queued due at once on the
//! shared clock too (the earlier of the instance's instant and the database's), so that one
//! queued by an instance whose clock is ahead does not wait for the database's to catch up.
//!
//! Signing: each request carries `Leadscore-Signature: t=UNIX_SECONDS,v1=HEX` where HEX is the
//! HMAC-SHA256, keyed with the webhook's secret, of `UNIX_SECONDS` + `.` + the raw body. A
//! receiver recomputes it, compares in constant time and rejects old timestamps (replays).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use leadscore_core::Timestamp;
use leadscore_store::now_ms;
use leadscore_store::webhooks::{Attempt, ClaimRequest, Pending};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::task::JoinSet;

use crate::egress;
use crate::state::AppState;

/// Waits before each retry, in units of the configured base (5 s by default: 5 s, 30 s, 2 min,
/// 10 min, 30 min, 1 h, 2 h, 4 h, 8 h, then every 8 h).
pub const RETRY_STEPS: &[i64] = &[1, 6, 24, 120, 360, 720, 1440, 2880, 5760];
/// Give up once a notification is older than this many base units (24 h at 5 s).
const GIVE_UP_AFTER: i64 = 17_280;
/// Notifications being sent at once, in all.
const CONCURRENT: usize = 64;
/// Notifications one instance sends at once to one webhook: a receiver that never answers holds
/// at most this many of the instance's, and the other webhooks' go on.
const PER_WEBHOOK: usize = 8;
/// A receiver gets this long to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claim keeps a notification from the other instances. A pass over a claimed
/// notification is one attempt (a failed one is recorded with when to retry, and claimed again
/// then): a request of at most `TIMEOUT`, started at once, then the write that records it. The
/// lease must outlast both, or another instance would send the notification again while this one
/// still is; six times the timeout leaves room for a slow write and a busy runtime. It is also
/// how long an instance that stops keeps its notifications (and their leads' next ones) waiting
/// before another sends them: a minute, between the second and the third retry's waits.
const LEASE: Duration = Duration::from_secs(6 * TIMEOUT.as_secs());

/// The signature header's value for a body sent at `unix_seconds`.
pub fn signature(secret: &str, unix_seconds: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(unix_seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={unix_seconds},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// When to try again after `attempts` failures of a notification created at `created_at`, or
/// `None` to give up.
pub fn next_attempt(created_at: i64, attempts: i64, now: i64, base_ms: i64) -> Option<i64> {
    if now - created_at > GIVE_UP_AFTER * base_ms {
        return None;
    }
    let step = RETRY_STEPS[(attempts.max(1) as usize - 1).min(RETRY_STEPS.len() - 1)];
    Some(now + step * base_ms)
}

/// Runs until the process ends: claims and starts every notification that may be sent (due, the
/// next of its lead, not claimed by another instance, within the limits) as soon as it may, each
/// on its own, and sleeps until one is due, a claim's lease ends (an instance that stopped
/// leaves its notifications then), a sending ends or a new notification is queued, a minute at
/// most (another instance's notifications, whose leads it does not hear of, are looked at again
/// at least that often).
pub async fn run(state: AppState) {
    // Redirects are not followed: a client following one sends a 301, 302 or 303 on as a GET
    // without the body, and the notification would count as delivered without being read.
    let mut builder = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .user_agent("leadscore-webhooks")
        .redirect(reqwest::redirect::Policy::none())
        // Straight to the receiver: through a proxy, the address checked would not be the one
        // the request goes to.
        .no_proxy();
    if !state.config.allow_private_webhooks {
        builder = builder.dns_resolver(egress::CheckedResolver);
    }
    let client = match builder.build() {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot build the webhook client; webhooks are not delivered");
            return;
        }
    };
    let mut sending = Sending::default();
    loop {
        let next = match start_due(&state, &client, &mut sending).await {
            Ok(next) => next,
            Err(error) => {
                tracing::error!(%error, "cannot claim notifications from the webhook outbox");
                Some(sending.shared_now_ms() + 1_000)
            }
        };
        let wait = next.map_or(Duration::from_secs(60), |at| {
            Duration::from_millis((at - sending.shared_now_ms()).clamp(10, 60_000) as u64)
        });
        tokio::select! {
            Some(ended) = sending.tasks.join_next_with_id(), if !sending.tasks.is_empty() => {
                sending.ended(ended.map(|(id, ())| id).unwrap_or_else(|error| error.id()));
                // Others may have ended meanwhile: one look at the outbox for all of them.
                while let Some(ended) = sending.tasks.try_join_next_with_id() {
                    sending.ended(ended.map(|(id, ())| id).unwrap_or_else(|error| error.id()));
                }
            }
            () = state.deliveries.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// The notifications this instance is sending (claimed until their attempts are recorded), so
/// that a webhook with `PER_WEBHOOK` of them is not looked at.
#[derive(Default)]
struct Sending {
    tasks: JoinSet<()>,
    /// Task to (webhook, notification).
    by_task: HashMap<tokio::task::Id, (i64, i64)>,
    /// Webhook to the notifications being sent to it.
    by_webhook: HashMap<i64, Vec<i64>>,
    /// The store's shared clock less this process's, as last read (see the module's doc).
    clock_offset_ms: i64,
}

impl Sending {
    /// The shared clock's time now, from this process's clock and the offset last read.
    fn shared_now_ms(&self) -> i64 {
        now_ms() + self.clock_offset_ms
    }

    fn ended(&mut self, task: tokio::task::Id) {
        let Some((webhook, notification)) = self.by_task.remove(&task) else { return };
        if let Some(ids) = self.by_webhook.get_mut(&webhook) {
            ids.retain(|id| *id != notification);
            if ids.is_empty() {
                self.by_webhook.remove(&webhook);
            }
        }
    }
}

/// Claims and starts every notification that may be sent now, soonest due first, as many as there
/// is room for; returns when the next one not claimed is due, if any is known (`None`: wait for a
/// sending to end or a new notification).
async fn start_due(
    state: &AppState,
    client: &reqwest::Client,
    sending: &mut Sending,
) -> Result<Option<i64>, leadscore_store::StoreError> {
    // Claim no more than can start now: a claimed notification not started would wait for its
    // lease to end.
    let room = CONCURRENT.saturating_sub(sending.tasks.len());
    if room == 0 {
        return Ok(None);
    }
    // This instance's sendings count against each webhook's PER_WEBHOOK, not other instances'.
    let in_flight = sending.by_webhook.iter().map(|(webhook, ids)| (*webhook, ids.len() as u32)).collect();
    let now = state.storage.shared_clock_ms().await?;
    sending.clock_offset_ms = now - now_ms();
    let request = ClaimRequest {
        per_webhook: PER_WEBHOOK as u32,
        sending: in_flight,
        limit: room as u32,
        now,
        lease_ms: LEASE.as_millis() as i64,
    };
    let claimed = state.storage.claim_notifications(request).await?;
    for pending in claimed.notifications {
        sending.by_webhook.entry(pending.webhook_id).or_default().push(pending.id);
        let (webhook, notification) = (pending.webhook_id, pending.id);
        let client = client.clone();
        let state = state.clone();
        let clock_offset_ms = sending.clock_offset_ms;
        let task = sending.tasks.spawn(async move {
            let outcome = deliver(&state, &client, pending, clock_offset_ms).await;
            state.metrics.webhook_attempt(outcome);
        });
        sending.by_task.insert(task.id(), (webhook, notification));
    }
    Ok(claimed.next_due)
}

/// The JSON body of a notification.
fn body(pending: &Pending) -> Vec<u8> {
    let data: Value = serde_json::from_str(&pending.data).unwrap_or(Value::Null);
    let body = json!({
        "id": format!("evt_{}", pending.id),
        "type": pending.event,
        "created_at": Timestamp(pending.created_at).to_string(),
        "attempt": pending.attempts + 1,
        "data": data,
    });
    body.to_string().into_bytes()
}

/// Sends one notification and records the attempt, timed on the shared clock (this process's
/// plus `clock_offset_ms`); returns its outcome for the metrics.
async fn deliver(state: &AppState, client: &reqwest::Client, pending: Pending, clock_offset_ms: i64) -> &'static str {
    let (storage, base_ms) = (&state.storage, state.config.webhook_retry_base_ms);
    let started = Instant::now();
    let (status, error) = match refused(state, &pending.url) {
        Some(refusal) => (None, Some(refusal)),
        None => send(client, &pending).await,
    };
    let delivered = error.is_none();
    let now = now_ms() + clock_offset_ms;
    let attempt = Attempt { at: now, status, error, duration_ms: started.elapsed().as_millis() as i64 };
    let next = if delivered { None } else { next_attempt(pending.created_at, pending.attempts + 1, now, base_ms) };
    if !delivered {
        tracing::warn!(webhook = pending.webhook_id, delivery = pending.id, status, "webhook delivery failed");
    }
    let id = pending.id;
    let gave_up = !delivered && next.is_none();
    // Delivery bookkeeping touches no lead: the writer's cache of leads stays valid.
    let recorded = storage.record_delivery_attempt(id, attempt, delivered, next).await;
    if let Err(error) = recorded {
        // The notification is still due as stored, and claimed: it is sent again once its lease
        // ends, not at once, in a loop, while storage fails.
        tracing::error!(%error, delivery = id, "cannot record a webhook attempt");
    }
    match (delivered, gave_up) {
        (true, _) => "delivered",
        (false, true) => "gave_up",
        (false, false) => "failed",
    }
}

/// Sends one notification; returns the receiver's status, and why the attempt failed if it did.
async fn send(client: &reqwest::Client, pending: &Pending) -> (Option<u16>, Option<String>) {
    let body = body(pending);
    let sent_at = now_ms();
    let request = client
        .post(&pending.url)
        .header("Content-Type", "application/json")
        .header("Leadscore-Event", &pending.event)
        .header("Leadscore-Delivery", format!("evt_{}", pending.id))
        .header("Leadscore-Signature", signature(&pending.secret, sent_at / 1000, &body))
        .body(body);
    match request.send().await {
        Ok(response) if response.status().is_success() => (Some(response.status().as_u16()), None),
        Ok(response) if response.status().is_redirection() => {
            (Some(response.status().as_u16()), Some(redirect_error(&response)))
        }
        Ok(response) => {
            (Some(response.status().as_u16()), Some(format!("the receiver answered {}", response.status())))
        }
        // The client's resolver refused the name's addresses: say so rather than "error sending
        // request", which hides why.
        Err(error) => match egress::refusal_in(&error) {
            Some(refused) => (None, Some(refusal_message(refused))),
            None => (None, Some(error.to_string())),
        },
    }
}

/// Why a notification may not be sent to `url`, if its host is an address that is refused (a
/// name is checked by the client's resolver, when it connects).
fn refused(state: &AppState, url: &str) -> Option<String> {
    if state.config.allow_private_webhooks {
        return None;
    }
    // A stored URL was parsed when it was subscribed; one that no longer parses fails to send.
    let url = reqwest::Url::parse(url).ok()?;
    egress::check_literal(&url).err().map(|refused| refusal_message(&refused))
}

fn refusal_message(refused: &egress::Refused) -> String {
    format!("refused: {refused}; {}", egress::HOW_TO_ALLOW)
}

/// Why a redirect is a failed attempt, with where it pointed (cut short: the receiver wrote it).
fn redirect_error(response: &reqwest::Response) -> String {
    let location = response.headers().get(reqwest::header::LOCATION).and_then(|l| l.to_str().ok());
    let to = match location {
        Some(location) if location.len() > 200 => format!(" to {}...", location.chars().take(200).collect::<String>()),
        Some(location) => format!(" to {location}"),
        None => String::new(),
    };
    format!(
        "the receiver answered {}, a redirect{to}: redirects are not followed; subscribe the URL that receives the notifications",
        response.status()
    )
}

/// Starts the dispatcher on the current runtime.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_of_time_and_body() {
        // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
        assert_eq!(
            signature("whsec_test", 1_700_000_000, br#"{"a":1}"#),
            "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }

    #[test]
    fn retries_back_off_for_more_than_a_day() {
        let base = 5_000;
        let mut now = 0;
        let mut attempts = 0;
        while let Some(next) = next_attempt(0, attempts + 1, now, base) {
            assert!(next > now);
            now = next;
            attempts += 1;
        }
        assert!(now > 24 * 3_600_000, "gave up after {now} ms");
        assert!(attempts < 20, "{attempts} attempts");
        assert_eq!(next_attempt(0, 1, 0, base), Some(5_000));
        assert_eq!(next_attempt(0, 2, 5_000, base), Some(35_000));
    }
}
