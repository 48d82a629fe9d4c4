//! The webhook dispatcher: sends due outbox notifications, signed, and retries failures with
//! exponential backoff for more than a day before giving up.
//!
//! Signing: each request carries `Leadscore-Signature: t=UNIX_SECONDS,v1=HEX` where HEX is the
//! HMAC-SHA256, keyed with the webhook's secret, of `UNIX_SECONDS` + `.` + the raw body. A
//! receiver recomputes it, compares in constant time and rejects old timestamps (replays).

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use leadscore_core::Timestamp;
use leadscore_store::webhooks::{self, Attempt, Pending};
use leadscore_store::{Store, now_ms};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::task::JoinSet;

use crate::state::AppState;

/// Waits before each retry, in units of the configured base (5 s by default: 5 s, 30 s, 2 min,
/// 10 min, 30 min, 1 h, 2 h, 4 h, 8 h, then every 8 h).
pub const RETRY_STEPS: &[i64] = &[1, 6, 24, 120, 360, 720, 1440, 2880, 5760];
/// Give up once a notification is older than this many base units (24 h at 5 s).
const GIVE_UP_AFTER: i64 = 17_280;
/// Notifications sent at once.
const CONCURRENT: usize = 16;
/// A receiver gets this long to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

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

/// Runs until the process ends: delivers due notifications, sleeping until the next is due or
/// a new one is queued.
pub async fn run(state: AppState) {
    let client = match reqwest::Client::builder().timeout(TIMEOUT).user_agent("leadscore-webhooks").build() {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot build the webhook client; webhooks are not delivered");
            return;
        }
    };
    loop {
        let delivered = deliver_due(&state, &client).await;
        let next = state.store.read(webhooks::next_due).await.ok().flatten();
        let wait = match (delivered, next) {
            (Ok(n), _) if n > 0 => Duration::ZERO,
            (_, Some(at)) => Duration::from_millis((at - now_ms()).clamp(10, 60_000) as u64),
            (_, None) => Duration::from_secs(60),
        };
        if !wait.is_zero() {
            let _ = tokio::time::timeout(wait, state.deliveries.notified()).await;
        }
    }
}

/// Sends every notification due now (one per webhook and lead); returns how many were tried.
async fn deliver_due(state: &AppState, client: &reqwest::Client) -> Result<usize, leadscore_store::StoreError> {
    let due = state.store.read(|c| webhooks::due(c, now_ms(), 256)).await?;
    let n = due.len();
    let mut tasks = JoinSet::new();
    for pending in due {
        while tasks.len() >= CONCURRENT {
            tasks.join_next().await;
        }
        let client = client.clone();
        let state = state.clone();
        tasks.spawn(async move {
            let outcome = deliver(&state.store, &client, pending, state.config.webhook_retry_base_ms).await;
            state.metrics.webhook_attempt(outcome);
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(n)
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

/// Sends one notification and records the attempt; returns its outcome for the metrics.
async fn deliver(store: &Store, client: &reqwest::Client, pending: Pending, base_ms: i64) -> &'static str {
    let body = body(&pending);
    let started = Instant::now();
    let sent_at = now_ms();
    let request = client
        .post(&pending.url)
        .header("Content-Type", "application/json")
        .header("Leadscore-Event", &pending.event)
        .header("Leadscore-Delivery", format!("evt_{}", pending.id))
        .header("Leadscore-Signature", signature(&pending.secret, sent_at / 1000, &body))
        .body(body);
    let (status, error) = match request.send().await {
        Ok(response) if response.status().is_success() => (Some(response.status().as_u16()), None),
        Ok(response) => {
            (Some(response.status().as_u16()), Some(format!("the receiver answered {}", response.status())))
        }
        Err(error) => (None, Some(error.to_string())),
    };
    let delivered = error.is_none();
    let now = now_ms();
    let attempt = Attempt { at: now, status, error, duration_ms: started.elapsed().as_millis() as i64 };
    let next = if delivered { None } else { next_attempt(pending.created_at, pending.attempts + 1, now, base_ms) };
    if !delivered {
        tracing::warn!(webhook = pending.webhook_id, delivery = pending.id, status, "webhook delivery failed");
    }
    let id = pending.id;
    let gave_up = !delivered && next.is_none();
    // Delivery bookkeeping touches no lead: the writer's cache of leads stays valid.
    let recorded = store.write_beside_caches(move |c| webhooks::record_attempt(c, id, &attempt, delivered, next)).await;
    if let Err(error) = recorded {
        tracing::error!(%error, delivery = id, "cannot record a webhook attempt");
    }
    match (delivered, gave_up) {
        (true, _) => "delivered",
        (false, true) => "gave_up",
        (false, false) => "failed",
    }
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
