//! Turning score and stage changes into outbox notifications for the workspace's webhooks.
//! Runs inside the transaction that made the changes.

use leadscore_store::leads::LeadRow;
use leadscore_store::scores::Change;
use leadscore_store::stages::StageChange;
use leadscore_store::storage::Notification;
use leadscore_store::webhooks::Webhook;
use leadscore_store::{StoreError, Transaction};
use serde_json::{Value, json};

/// Everything that changed for one lead in one transaction.
#[derive(Debug, Default)]
pub struct LeadChanges<'a> {
    pub scores: Vec<&'a Change>,
    pub stages: Vec<&'a StageChange>,
}

fn lead_json(lead: &LeadRow) -> Value {
    json!({ "id": lead.id, "user_id": lead.user_id, "email": lead.email })
}

/// Notifications (event kind, data) that `changes` cause for one webhook.
fn notifications(webhook: &Webhook, lead: &LeadRow, changes: &LeadChanges<'_>) -> Vec<(&'static str, Value)> {
    let wants = |kind: &str| webhook.events.iter().any(|e| e == kind);
    let mut out = Vec::new();
    for change in &changes.scores {
        if wants("tier_changed") && change.tier != change.previous_tier {
            out.push((
                "tier_changed",
                json!({
                    "lead": lead_json(lead), "score": change.score, "tier": change.tier,
                    "previous_tier": change.previous_tier, "value": change.value,
                }),
            ));
        }
        if wants("score_crossed")
            && let (Some(score), Some(threshold)) = (&webhook.score, webhook.threshold)
            && *score == change.score
        {
            let before = change.previous_value.unwrap_or(0.0);
            let direction = match (before >= threshold, change.value >= threshold) {
                (false, true) => Some("up"),
                (true, false) => Some("down"),
                _ => None,
            };
            if let Some(direction) = direction {
                out.push((
                    "score_crossed",
                    json!({
                        "lead": lead_json(lead), "score": score, "threshold": threshold, "direction": direction,
                        "value": change.value, "previous_value": change.previous_value,
                    }),
                ));
            }
        }
    }
    for stage in &changes.stages {
        if wants("stage_changed") {
            out.push((
                "stage_changed",
                json!({
                    "lead": lead_json(lead), "stage": stage.stage, "previous": stage.previous,
                    "actor": stage.actor, "reason": stage.reason,
                }),
            ));
        }
        if wants("became_mql") && stage.stage == "mql" {
            out.push(("became_mql", json!({ "lead": lead_json(lead), "actor": stage.actor, "reason": stage.reason })));
        }
    }
    out
}

/// How many notifications of each kind `changes` would queue for `hooks` (a preview's count).
pub fn count(
    hooks: &[Webhook],
    lead: &LeadRow,
    changes: &LeadChanges<'_>,
    counts: &mut std::collections::BTreeMap<&'static str, u64>,
) {
    for webhook in hooks {
        for (event, _) in notifications(webhook, lead, changes) {
            *counts.entry(event).or_default() += 1;
        }
    }
}

/// The notifications one lead's changes cause for the workspace's webhooks `hooks` (loaded once
/// per transaction by the caller).
pub fn for_changes(hooks: &[Webhook], lead: &LeadRow, changes: &LeadChanges<'_>) -> Vec<Notification> {
    if changes.scores.is_empty() && changes.stages.is_empty() {
        return Vec::new();
    }
    let mut queued = Vec::new();
    for webhook in hooks {
        for (event, data) in notifications(webhook, lead, changes) {
            queued.push(Notification { webhook_id: webhook.id, event, data: data.to_string() });
        }
    }
    queued
}

/// Writes the outbox rows for one lead's changes (see [`for_changes`]). Returns how many were
/// queued.
pub fn enqueue(
    transaction: &dyn Transaction,
    hooks: &[Webhook],
    lead: &LeadRow,
    changes: &LeadChanges<'_>,
    now: i64,
) -> Result<usize, StoreError> {
    let queued = for_changes(hooks, lead, changes);
    if !queued.is_empty() {
        transaction.queue_notifications(lead.id, &queued, now)?;
    }
    Ok(queued.len())
}
