//! Retention: deleting the events a workspace keeps no longer, in the background, and rescoring
//! their leads from what is left, so that a lead's scores are always what the model computes
//! from its stored events.
//!
//! A pass walks the events by id, a slice per writer transaction: the slice's leads with expired
//! events have them deleted (`Transaction::prune_events`, which keeps their chain linked), their
//! state rebuilt from the events left and their scores saved with the cause `retention` (a tier
//! that drops notifies webhooks as any change does). Ingestion's memory forgets the leads a slice
//! touches. Passes run at start, at the interval the operator sets (`serve
//! --retention-every`), and when an admin sets a retention.

use leadscore_store::StoreError;
use leadscore_store::now_ms;
use leadscore_store::retention::Retention;
use leadscore_store::scores::History;

use crate::saving::{self, SaveContext};
use crate::scoring;
use crate::state::AppState;

/// Event ids a transaction of a pass looks at.
const SLICE: i64 = 5_000;
const DAY_MS: i64 = 86_400_000;

/// What a pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    pub events_deleted: u64,
    pub leads_rescored: u64,
}

/// Deletes the workspace's expired events and rescores their leads; nothing without a retention.
pub async fn run_pass(state: &AppState, workspace_id: i64) -> Result<Pass, StoreError> {
    let last = state.storage.read(|reads| reads.last_event_id()).await?;
    let mut pass = Pass::default();
    let mut after = 0;
    while after < last {
        let through = after + SLICE;
        let (models, lead_cache) = (state.models.clone(), state.leads.clone());
        let step = state
            .storage
            .write_beside_caches(move |transaction| {
                let Some(retention) = transaction.retention(workspace_id)? else { return Ok(None) };
                // Read when the slice runs, as a rescoring does: an event committed meanwhile is
                // at or before it.
                let now = now_ms();
                let cutoff = now - retention.events_days * DAY_MS;
                let leads = transaction.leads_with_expired_events(workspace_id, cutoff, after, through)?;
                if leads.is_empty() {
                    return Ok(Some((Pass::default(), 0)));
                }
                let version = transaction.active_model(workspace_id)?;
                let model = version.as_ref().map(|v| models.get(transaction, v)).transpose()?;
                let hooks = transaction.webhooks(workspace_id)?;
                let (mut done, mut queued) = (Pass::default(), 0);
                for id in leads {
                    lead_cache.lock().forget(id);
                    let Some(mut lead) = transaction.lead_by_id(workspace_id, id)? else { continue };
                    // Pruning clears the state to be rebuilt: the earlier one explains the change.
                    let earlier = saving::Earlier {
                        state: Some((lead.state.clone(), lead.state_model_id)),
                        ..saving::Earlier::default()
                    };
                    done.events_deleted += transaction.prune_events(&mut lead, cutoff)? as u64;
                    let (Some(model), Some(version)) = (&model, &version) else { continue };
                    let (lead_state, _) = scoring::state_for(transaction, model, version.id, &lead)?;
                    let context = SaveContext {
                        reads: transaction,
                        model,
                        model_id: version.id,
                        now,
                        cause: "retention",
                        history: History::EveryChange,
                        webhooks: &hooks,
                        models: &models,
                        overrides: &[],
                    };
                    queued +=
                        saving::save_scores(transaction, &context, &mut lead, &lead_state, &mut None, &earlier)?.queued;
                    done.leads_rescored += 1;
                }
                Ok(Some((done, queued)))
            })
            .await?;
        let Some((done, queued)) = step else { break };
        pass.events_deleted += done.events_deleted;
        pass.leads_rescored += done.leads_rescored;
        state.metrics.events_expired.inc_by(done.events_deleted);
        if queued > 0 {
            state.deliveries.notify_one();
        }
        after = through;
    }
    Ok(pass)
}

/// Runs a pass over every workspace that has a retention, at start and then every `interval`;
/// in one instance of those sharing a database (the first to ask holds the right while it runs).
pub async fn schedule(state: AppState, interval: std::time::Duration) {
    let mut elected: Option<leadscore_store::storage::Exclusive> = None;
    loop {
        if !elected.as_ref().is_some_and(|e| e.is_held()) {
            elected = state.storage.try_exclusive("retention".to_string()).await.unwrap_or_else(|error| {
                tracing::error!(%error, "cannot tell whether another instance deletes expired events");
                None
            });
        }
        if elected.is_none() {
            tokio::time::sleep(interval).await;
            continue;
        }
        let retentions: Result<Vec<Retention>, StoreError> = state.storage.read(|reads| reads.retentions()).await;
        for retention in retentions.unwrap_or_default() {
            match run_pass(&state, retention.workspace_id).await {
                Ok(pass) if pass.events_deleted > 0 => tracing::info!(
                    workspace_id = retention.workspace_id,
                    events_deleted = pass.events_deleted,
                    leads_rescored = pass.leads_rescored,
                    "deleted events past the workspace's retention"
                ),
                Ok(_) => {}
                Err(error) => tracing::error!(%error, workspace_id = retention.workspace_id, "a retention pass failed"),
            }
        }
        tokio::time::sleep(interval).await;
    }
}
