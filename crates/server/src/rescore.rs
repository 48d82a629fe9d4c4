//! Rescoring whole workspaces in the background in small batches, after a model is activated
//! (recorded, resumed after a crash) or as time passes; each lead is saved by [`crate::saving`].
//!
//! Batches are small writer jobs, so ingestion and reads go on while a workspace is rescored.

use leadscore_core::{Model, Timestamp};
use leadscore_store::leads::LeadRow;
use leadscore_store::rescorings::Rescoring;
use leadscore_store::scores::{History, ScoreRow};
use leadscore_store::stages::StageChange;
use leadscore_store::webhooks::Webhook;
use leadscore_store::{StoreError, Transaction, now_ms};
use serde::Serialize;

use crate::lead_cache::LeadCache;
use crate::lifecycle::{self, Stage};
use crate::notify::{self, LeadChanges};
use crate::saving::{self, SaveContext};
use crate::scoring::{self, Models};
use crate::state::AppState;

/// Leads rescored per writer job.
const BATCH: u32 = 200;

/// Progress of a workspace's rescoring as the API shows it (kept in the store, see
/// [`leadscore_store::rescorings`]).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Progress {
    /// The version the leads are rescored with.
    pub model_version: i64,
    /// What started it: `model vN` (an activation) or `rollback to vN`.
    pub cause: String,
    pub done: u64,
    pub total: u64,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// Why it stopped early, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<Rescoring> for Progress {
    fn from(r: Rescoring) -> Progress {
        Progress {
            model_version: r.model_version,
            cause: r.cause,
            done: r.done.max(0) as u64,
            total: r.total.max(0) as u64,
            started_at: Timestamp(r.started_at).to_string(),
            finished_at: r.finished_at.map(|at| Timestamp(at).to_string()),
            error: r.error,
        }
    }
}

/// The workspace's running or last rescoring.
pub async fn progress(state: &AppState, workspace_id: i64) -> Result<Option<Progress>, StoreError> {
    Ok(state.storage.rescoring(workspace_id).await?.map(Progress::from))
}

/// One batch of a rescoring pass: the workspace, the leads after which it goes on, the time it
/// scores at and what it records.
struct Batch {
    workspace_id: i64,
    after_id: i64,
    now: i64,
    cause: String,
    history: History,
    /// After a rollback: automatic MQL moves made since then, which the restored version does not
    /// support, are moved back.
    revert_automatic_since: Option<i64>,
}

/// Rescores one batch of a workspace's leads; returns the last lead id seen (`None` at the end)
/// and how many notifications were queued. Ingestion's memory forgets the leads it rescores.
fn rescore_batch(
    transaction: &dyn Transaction,
    models: &Models,
    lead_cache: &LeadCache,
    batch: &Batch,
) -> Result<(Option<i64>, u64, usize), StoreError> {
    let Batch { workspace_id, after_id, now, ref cause, history, revert_automatic_since } = *batch;
    let Some(version) = transaction.active_model(workspace_id)? else { return Ok((None, 0, 0)) };
    let model = models.get(transaction, &version)?;
    let ids = transaction.lead_ids_after(workspace_id, after_id, BATCH)?;
    let hooks = transaction.webhooks(workspace_id)?;
    let mut queued = 0;
    for &id in &ids {
        // Ingestion's memory of the lead would be stale: it reads the lead again next time. The
        // other leads it remembers stay valid, so rescoring writes beside that memory.
        lead_cache.lock().forget(id);
        let Some(mut lead) = transaction.lead_by_id(workspace_id, id)? else { continue };
        let (state, _) = scoring::state_for(transaction, &model, version.id, &lead)?;
        let context = SaveContext {
            transaction,
            model: &model,
            model_id: version.id,
            now,
            cause,
            history,
            webhooks: &hooks,
            models,
            overrides: &[],
        };
        let saved = saving::save_scores(&context, &mut lead, &state, &mut None, &saving::Earlier::default())?;
        queued += saved.queued;
        if let Some(since) = revert_automatic_since {
            queued += revert_automatic_mql(transaction, &model, &mut lead, &saved.rows, since, cause, &hooks, now)?;
        }
    }
    Ok((ids.last().copied(), ids.len() as u64, queued))
}

/// After a rollback: moves a lead back from MQL when the move was automatic, made since the
/// rolled-back version was activated, is still the lead's latest, and the restored version does
/// not put the lead at an MQL tier. A person's move is never undone. Returns the notifications
/// queued.
#[allow(clippy::too_many_arguments)]
fn revert_automatic_mql(
    transaction: &dyn Transaction,
    model: &Model,
    lead: &mut LeadRow,
    rows: &[ScoreRow],
    since: i64,
    cause: &str,
    hooks: &[Webhook],
    now: i64,
) -> Result<usize, StoreError> {
    if lead.stage != Stage::Mql.as_str()
        || rows.iter().any(|r| lifecycle::is_mql_level(model, &r.score, r.tier.as_deref()))
    {
        return Ok(0);
    }
    let Some(latest) = transaction.latest_stage(lead.id)? else { return Ok(0) };
    let automatic =
        latest.actor == lifecycle::AUTOMATIC_ACTOR && latest.stage == Stage::Mql.as_str() && latest.at >= since;
    let Some(previous) = latest.previous.filter(|_| automatic) else { return Ok(0) };
    let change = StageChange {
        stage: previous,
        previous: Some(Stage::Mql.to_string()),
        at: now,
        actor: lifecycle::AUTOMATIC_ACTOR.to_string(),
        reason: Some(format!(
            "{cause}: the move to mql was automatic and the restored version does not qualify the lead"
        )),
    };
    transaction.set_stage(lead.id, &change)?;
    lead.stage = change.stage.clone();
    let lead_changes = LeadChanges { scores: Vec::new(), stages: vec![&change] };
    notify::enqueue(transaction, hooks, lead, &lead_changes, now)
}

/// Starts rescoring the workspace in the background, from where its stored rescoring stopped,
/// unless that already runs in this process. The rescoring itself was recorded by
/// [`leadscore_store::rescorings::begin`] in the transaction that activated the version.
pub fn start(state: &AppState, workspace_id: i64) {
    if !state.rescoring.claim(workspace_id) {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        loop {
            run_job(&state, workspace_id).await;
            state.rescoring.release(workspace_id);
            // An activation that committed while this job ended found it still claimed and left
            // its rescoring to it: look once more, and run it if it is there.
            let unfinished = state.storage.rescoring(workspace_id).await;
            let waiting = unfinished.is_ok_and(|r| r.is_some_and(|r| r.finished_at.is_none()));
            if !waiting || !state.rescoring.claim(workspace_id) {
                break;
            }
        }
    });
}

/// Resumes every rescoring that a stop (or a crash) cut short.
pub async fn resume(state: &AppState) -> Result<usize, StoreError> {
    let unfinished = state.storage.unfinished_rescorings().await?;
    for rescoring in &unfinished {
        tracing::info!(
            workspace_id = rescoring.workspace_id,
            done = rescoring.done,
            total = rescoring.total,
            "resuming a rescoring"
        );
        start(state, rescoring.workspace_id);
    }
    Ok(unfinished.len())
}

/// Failures in a row after which a rescoring gives up (with the error recorded).
const ATTEMPTS: u32 = 5;

/// Runs the workspace's stored rescoring to its end, one batch per transaction, each recording
/// its progress. A batch that storage fails is tried again until storage is back; one that fails
/// otherwise (a model that no longer compiles) is tried [`ATTEMPTS`] times, then the rescoring
/// stops with its error.
async fn run_job(state: &AppState, workspace_id: i64) {
    let mut failures = 0;
    loop {
        let (models, lead_cache) = (state.models.clone(), state.leads.clone());
        let step = state
            .storage
            .write_beside_caches(move |transaction| {
                // Read when the batch runs, not when it was queued: an event committed while it
                // waited for the writer must not be after the time its lead is evaluated at.
                let now = now_ms();
                let Some(rescoring) = transaction.rescoring(workspace_id)?.filter(|r| r.finished_at.is_none()) else {
                    return Ok(None);
                };
                let batch = Batch {
                    workspace_id,
                    after_id: rescoring.after_lead_id,
                    now,
                    cause: rescoring.cause.clone(),
                    history: History::EveryChange,
                    revert_automatic_since: rescoring.revert_automatic_since,
                };
                let (last, n, queued) = rescore_batch(transaction, &models, &lead_cache, &batch)?;
                let done = rescoring.done + n as i64;
                match last {
                    Some(last) => transaction.record_rescoring_progress(workspace_id, last, done)?,
                    None => transaction.finish_rescoring(workspace_id, None, now)?,
                }
                Ok(Some((last.is_some(), done, rescoring.total, queued)))
            })
            .await;
        match step {
            Ok(Some((more, done, total, queued))) => {
                failures = 0;
                state.metrics.rescoring_done.set(done);
                state.metrics.rescoring_planned.set(total);
                if queued > 0 {
                    state.deliveries.notify_one();
                }
                if !more {
                    return;
                }
            }
            Ok(None) => return,
            Err(error) => {
                failures += 1;
                tracing::error!(%error, workspace_id, failures, "a rescoring batch failed");
                // Storage that fails (a full disk) comes back: the rescoring waits for it, at most
                // a minute between tries, rather than leave leads on the old model's scores.
                if error.is_storage_failure() {
                    tokio::time::sleep(std::time::Duration::from_secs((2u64 << failures.min(5)).min(60))).await;
                    continue;
                }
                if failures >= ATTEMPTS {
                    let recorded =
                        state.storage.finish_rescoring(workspace_id, Some(error.to_string()), now_ms()).await;
                    if let Err(error) = recorded {
                        tracing::error!(%error, workspace_id, "cannot record the rescoring's failure; it resumes at the next start");
                    }
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_secs(2 << failures)).await;
            }
        }
    }
}

/// Rescores every lead of a workspace now, with no record of progress: the periodic pass for
/// tiers that change with time alone. It stops when an activation's rescoring starts.
pub async fn run(state: &AppState, workspace_id: i64, cause: &str, history: History) -> Result<u64, StoreError> {
    let mut after = 0;
    let mut done = 0;
    loop {
        let (models, lead_cache) = (state.models.clone(), state.leads.clone());
        let mut batch = Batch {
            workspace_id,
            after_id: after,
            now: 0,
            cause: cause.to_string(),
            history,
            revert_automatic_since: None,
        };
        let (last, n, queued) = state
            .storage
            .write_beside_caches(move |transaction| {
                // Read when the batch runs, not when it was queued: an event committed while it
                // waited for the writer must not be after the time its lead is evaluated at.
                batch.now = now_ms();
                // An activation since the last batch: its rescoring goes over every lead with the
                // new version and records why; this pass would record it as time passing.
                if transaction.rescoring(batch.workspace_id)?.is_some_and(|r| r.finished_at.is_none()) {
                    return Ok((None, 0, 0));
                }
                rescore_batch(transaction, &models, &lead_cache, &batch)
            })
            .await?;
        done += n;
        if queued > 0 {
            state.deliveries.notify_one();
        }
        match last {
            Some(last) => after = last,
            None => return Ok(done),
        }
    }
}

/// Re-evaluates every workspace's leads every `interval`, so that tiers that change with time
/// alone (decay, windows, inactivity) are recorded and notified. Only tier changes go into the
/// history. Score overrides whose expiry has passed are lifted first, so that the pass sees
/// the model's scores.
pub async fn schedule(state: AppState, interval: std::time::Duration) {
    loop {
        tokio::time::sleep(interval).await;
        if let Err(error) = crate::overrides::lift_expired(&state).await {
            tracing::error!(%error, "lifting expired score overrides failed");
        }
        let workspaces: Result<Vec<i64>, StoreError> = state.storage.workspaces_with_active_model().await;
        for workspace_id in workspaces.unwrap_or_default() {
            // A rescoring after an activation goes over every lead anyway.
            let running = state.storage.rescoring(workspace_id).await;
            if running.is_ok_and(|r| r.is_some_and(|r| r.finished_at.is_none())) {
                continue;
            }
            if let Err(error) = run(&state, workspace_id, "time", History::TierChanges).await {
                tracing::error!(%error, workspace_id, "scheduled rescoring failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rescoring a workspace makes ingestion read its leads again, and only them: the leads of
    /// other workspaces stay remembered, and the rescored lead's next event is scored on what
    /// rescoring stored.
    #[test]
    fn rescoring_forgets_only_the_leads_it_rescores() {
        use crate::ingest::ingest;
        use crate::messages::{Kind, Message};
        use leadscore_store::{Store, models, workspaces};
        use serde_json::Map;

        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_ingesting(dir.path(), leadscore_store::message_ids::DEFAULT_RECENT).unwrap();
        let source = "[scores.activity]\nrules = [{ name = \"visits\", event = \"visit\", points = 1 }]\n";
        let (a, b) = store
            .write_blocking(move |c| {
                let mut ids = Vec::new();
                for name in ["a", "b"] {
                    let workspace = workspaces::find_or_create(c, name, leadscore_store::now_ms())?;
                    let version = models::add(
                        c,
                        workspace.id,
                        source,
                        &std::collections::BTreeMap::new(),
                        None,
                        leadscore_store::now_ms(),
                    )?;
                    models::activate(c, workspace.id, version.id, models::Origin::Api, leadscore_store::now_ms())?;
                    ids.push(workspace.id);
                }
                Ok((ids[0], ids[1]))
            })
            .unwrap();
        let (models, cache) =
            (std::sync::Arc::new(Models::default()), std::sync::Arc::new(LeadCache::new(store.generation())));
        let visit = |workspace_id: i64, id: &str| {
            let (models, cache) = (models.clone(), cache.clone());
            let message = Message {
                kind: Kind::Track("visit".to_string()),
                user_id: Some("u".to_string()),
                anonymous_id: None,
                message_id: id.to_string(),
                at: 1,
                traits: Map::new(),
                properties: Map::new(),
            };
            store
                .write_coherent_blocking(move |c| ingest(c, &models, &cache, workspace_id, vec![Ok(message)], 1))
                .unwrap()
        };
        visit(a, "1");
        visit(b, "1");
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (models_for_rescore, cache_for_rescore) = (models.clone(), cache.clone());
        let (_, rescored, _) = runtime
            .block_on(store.write_beside_caches(move |c| {
                let batch = Batch {
                    workspace_id: a,
                    after_id: 0,
                    now: 2,
                    cause: "time".into(),
                    history: History::TierChanges,
                    revert_automatic_since: None,
                };
                rescore_batch(c, &models_for_rescore, &cache_for_rescore, &batch)
            }))
            .unwrap();
        assert_eq!(rescored, 1);
        let again_a = visit(a, "2");
        assert_eq!((again_a.remembered, again_a.looked_up), (0, 1), "read again");
        assert_eq!(again_a.leads[0].scores["activity"].value, 2.0);
        let again_b = visit(b, "2");
        assert_eq!((again_b.remembered, again_b.looked_up), (1, 0), "still remembered");
    }
}
