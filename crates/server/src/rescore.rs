//! Rescoring: saving a lead's freshly evaluated scores with everything that follows from them
//! (history, automatic MQL, webhook notifications), and rescoring whole workspaces in the
//! background in small batches, after a model is activated or as time passes.
//!
//! Batches are small writer jobs, so ingestion and reads go on while a workspace is rescored.

use std::collections::HashMap;
use std::sync::Mutex;

use leadscore_core::{LeadState, Model, Timestamp};
use leadscore_store::leads::{self, LeadRow};
use leadscore_store::rusqlite::{Connection, params};
use leadscore_store::scores::{Change, History, ScoreRow, StoredScores};
use leadscore_store::stages::StageChange;
use leadscore_store::webhooks::Webhook;
use leadscore_store::{StoreError, now_ms};
use serde::Serialize;

use crate::lead_cache::LeadCache;
use crate::lifecycle::{self, Stage};
use crate::notify::{self, LeadChanges};
use crate::scoring::{self, Models};
use crate::state::AppState;

/// Leads rescored per writer job.
const BATCH: u32 = 200;

/// What saving a lead's scores did.
pub struct Saved {
    pub rows: Vec<ScoreRow>,
    pub changes: Vec<Change>,
    pub stage: Option<StageChange>,
    pub queued: usize,
}

/// Evaluates a lead at `now` from `state`, saves its state and scores, moves it to MQL when its
/// scores say so, and queues the webhook notifications of every change. `stored` is the lead's
/// stored scores when the caller knows them (read here otherwise), and what is stored after.
#[allow(clippy::too_many_arguments)]
pub fn save_scores(
    connection: &Connection,
    model: &Model,
    model_id: i64,
    lead: &mut LeadRow,
    state: &LeadState,
    stored: &mut Option<StoredScores>,
    now: i64,
    cause: &str,
    history: History,
    webhooks: &[Webhook],
) -> Result<Saved, StoreError> {
    lead.state = Some(scoring::state_text(state.occurrences()));
    lead.state_model_id = Some(model_id);
    let (rows, qualified_by) = scoring::evaluate_with_qualifiers(model, model_id, lead, state, now);
    let stored = match stored {
        Some(stored) => stored,
        None => stored.insert(leadscore_store::scores::stored(connection, lead.id)?),
    };
    let changes = leadscore_store::scores::save_over(connection, lead.id, stored, &rows, cause, history)?;
    leads::save(connection, lead)?;
    let stage = automatic_mql(connection, model, lead, &rows, &qualified_by, &changes, now)?;
    if let Some(change) = &stage {
        lead.stage = change.stage.clone();
    }
    let lead_changes = LeadChanges { scores: changes.iter().collect(), stages: stage.iter().collect() };
    let queued = notify::enqueue(connection, webhooks, lead, &lead_changes, now)?;
    Ok(Saved { rows, changes, stage, queued })
}

/// Moves a lead to MQL when its scores say so: from stage lead whenever a score is at an MQL
/// tier; from nurture only when a score has just entered one (new engagement recycles the lead,
/// while a rep's decision is not undone by scores that were already there).
fn automatic_mql(
    connection: &Connection,
    model: &Model,
    lead: &LeadRow,
    rows: &[ScoreRow],
    qualified_by: &[Option<String>],
    changes: &[Change],
    now: i64,
) -> Result<Option<StageChange>, StoreError> {
    let current: Stage = lead.stage.parse().unwrap_or(Stage::Lead);
    let moves = match current {
        Stage::Lead => true,
        Stage::Nurture => changes.iter().any(|c| {
            lifecycle::is_mql_level(model, &c.score, c.tier.as_deref())
                && !lifecycle::is_mql_level(model, &c.score, c.previous_tier.as_deref())
        }),
        _ => false,
    };
    if !moves {
        return Ok(None);
    }
    let Some(reason) = lifecycle::mql_reason(model, rows, qualified_by) else { return Ok(None) };
    let change = StageChange {
        stage: Stage::Mql.to_string(),
        previous: Some(current.to_string()),
        at: now,
        actor: "leadscore".to_string(),
        reason: Some(reason),
    };
    leadscore_store::stages::set(connection, lead.id, &change)?;
    Ok(Some(change))
}

/// Progress of a workspace's rescoring, readable while it runs.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub model_version: i64,
    pub cause: String,
    pub done: u64,
    pub total: u64,
    pub started_at: String,
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Another activation came while this ran: the job goes over every lead again when it ends.
    #[serde(skip)]
    again: bool,
}

/// Rescoring progress by workspace.
#[derive(Default)]
pub struct Jobs {
    progress: Mutex<HashMap<i64, Progress>>,
}

impl Jobs {
    pub fn get(&self, workspace_id: i64) -> Option<Progress> {
        self.progress.lock().ok()?.get(&workspace_id).cloned()
    }

    fn update(&self, workspace_id: i64, change: impl FnOnce(&mut Progress)) {
        if let Ok(mut progress) = self.progress.lock()
            && let Some(p) = progress.get_mut(&workspace_id)
        {
            change(p);
        }
    }

    /// Starts tracking a job and returns `true`; or, when one is already running for the
    /// workspace, asks it to go over every lead again once it ends (the model may have changed
    /// after it passed some leads) and returns `false`.
    fn start(&self, workspace_id: i64, progress: Progress) -> bool {
        let Ok(mut jobs) = self.progress.lock() else { return false };
        if let Some(running) = jobs.get_mut(&workspace_id).filter(|p| p.finished_at.is_none()) {
            running.again = true;
            running.model_version = progress.model_version;
            running.cause = progress.cause;
            return false;
        }
        jobs.insert(workspace_id, progress);
        true
    }

    /// Ends a job's pass: `true` if it must go over the leads again (see [`Jobs::start`]), else
    /// records it as finished. Both under one lock, so that no request to go again is lost.
    fn end_pass(&self, workspace_id: i64, error: Option<String>) -> bool {
        let Ok(mut jobs) = self.progress.lock() else { return false };
        let Some(p) = jobs.get_mut(&workspace_id) else { return false };
        if p.again && error.is_none() {
            p.again = false;
            p.done = 0;
            return true;
        }
        p.finished_at = Some(Timestamp(now_ms()).to_string());
        p.error = error;
        false
    }
}

/// One batch of a rescoring pass: the workspace, the leads after which it goes on, the time it
/// scores at and what it records.
struct Batch {
    workspace_id: i64,
    after_id: i64,
    now: i64,
    cause: String,
    history: History,
}

/// Rescores one batch of a workspace's leads; returns the last lead id seen (`None` at the end)
/// and how many notifications were queued. Ingestion's memory forgets the leads it rescores.
fn rescore_batch(
    connection: &Connection,
    models: &Models,
    lead_cache: &LeadCache,
    batch: &Batch,
) -> Result<(Option<i64>, u64, usize), StoreError> {
    let Batch { workspace_id, after_id, now, ref cause, history } = *batch;
    let Some(version) = leadscore_store::models::active(connection, workspace_id)? else { return Ok((None, 0, 0)) };
    let model = models.get(connection, &version)?;
    let ids: Vec<i64> = {
        let mut statement = connection.prepare_cached(
            "SELECT id FROM leads WHERE workspace_id = ?1 AND id > ?2 AND merged_into IS NULL ORDER BY id LIMIT ?3",
        )?;
        statement.query_map(params![workspace_id, after_id, BATCH], |row| row.get(0))?.collect::<Result<_, _>>()?
    };
    let hooks = leadscore_store::webhooks::list(connection, workspace_id)?;
    let mut queued = 0;
    for &id in &ids {
        // Ingestion's memory of the lead would be stale: it reads the lead again next time. The
        // other leads it remembers stay valid, so rescoring writes beside that memory.
        lead_cache.lock().forget(id);
        let Some(mut lead) = leads::by_id(connection, workspace_id, id)? else { continue };
        let (state, _) = scoring::state_for(connection, &model, version.id, &lead)?;
        queued +=
            save_scores(connection, &model, version.id, &mut lead, &state, &mut None, now, cause, history, &hooks)?
                .queued;
    }
    Ok((ids.last().copied(), ids.len() as u64, queued))
}

/// Rescores every lead of a workspace in the background. Returns `false` if a rescoring of the
/// workspace is already running: that one then goes over every lead again when it ends, with
/// the model active then.
pub fn start(state: &AppState, workspace_id: i64, model_version: i64, cause: String, history: History) -> bool {
    let total = 0;
    let progress = Progress {
        model_version,
        cause: cause.clone(),
        done: 0,
        total,
        started_at: Timestamp(now_ms()).to_string(),
        finished_at: None,
        error: None,
        again: false,
    };
    if !state.rescoring.start(workspace_id, progress) {
        return false;
    }
    let state = state.clone();
    tokio::spawn(async move {
        loop {
            let cause = state.rescoring.get(workspace_id).map_or_else(|| cause.clone(), |p| p.cause);
            let error = run(&state, workspace_id, &cause, history).await.err().map(|e| e.to_string());
            if !state.rescoring.end_pass(workspace_id, error) {
                break;
            }
        }
    });
    true
}

/// Rescores every lead of a workspace now (also used by the scheduler, without progress).
pub async fn run(state: &AppState, workspace_id: i64, cause: &str, history: History) -> Result<u64, StoreError> {
    let total: i64 = state
        .store
        .read(move |c| {
            Ok(c.query_row(
                "SELECT count(*) FROM leads WHERE workspace_id = ?1 AND merged_into IS NULL",
                [workspace_id],
                |row| row.get(0),
            )?)
        })
        .await?;
    state.rescoring.update(workspace_id, |p| p.total = total as u64);
    state.metrics.rescoring_planned.set(total);
    state.metrics.rescoring_done.set(0);
    let mut after = 0;
    let mut done = 0;
    loop {
        let (models, lead_cache) = (state.models.clone(), state.leads.clone());
        let batch = Batch { workspace_id, after_id: after, now: now_ms(), cause: cause.to_string(), history };
        let (last, n, queued) =
            state.store.write_beside_caches(move |c| rescore_batch(c, &models, &lead_cache, &batch)).await?;
        done += n;
        state.rescoring.update(workspace_id, |p| p.done = done);
        state.metrics.rescoring_done.set(done as i64);
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
/// history.
pub async fn schedule(state: AppState, interval: std::time::Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let workspaces: Result<Vec<i64>, StoreError> = state
            .store
            .read(|c| {
                let mut statement = c.prepare("SELECT workspace_id FROM active_models ORDER BY workspace_id")?;
                let ids = statement.query_map([], |row| row.get(0))?.collect::<Result<_, _>>()?;
                Ok(ids)
            })
            .await;
        for workspace_id in workspaces.unwrap_or_default() {
            let running = state.rescoring.get(workspace_id).is_some_and(|p| p.finished_at.is_none());
            if running {
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

    fn progress(version: i64) -> Progress {
        Progress {
            model_version: version,
            cause: format!("model v{version}"),
            done: 0,
            total: 0,
            started_at: String::new(),
            finished_at: None,
            error: None,
            again: false,
        }
    }

    #[test]
    fn an_activation_during_a_rescoring_makes_it_go_over_the_leads_again() {
        let jobs = Jobs::default();
        assert!(jobs.start(1, progress(2)));
        // Another activation while the first pass runs: no second job, but a second pass.
        assert!(!jobs.start(1, progress(3)));
        assert_eq!(jobs.get(1).unwrap().model_version, 3);
        assert!(jobs.end_pass(1, None));
        assert!(jobs.get(1).unwrap().finished_at.is_none());
        assert!(!jobs.end_pass(1, None));
        assert!(jobs.get(1).unwrap().finished_at.is_some());
        // Once finished, a new activation starts a new job.
        assert!(jobs.start(1, progress(4)));
        // A failed pass ends the job with its error, even if asked to go again.
        assert!(!jobs.start(1, progress(5)));
        assert!(!jobs.end_pass(1, Some("disk full".to_string())));
        assert_eq!(jobs.get(1).unwrap().error.as_deref(), Some("disk full"));
    }

    /// Rescoring a workspace makes ingestion read its leads again, and only them: the leads of
    /// other workspaces stay remembered, and the rescored lead's next event is scored on what
    /// rescoring stored.
    #[test]
    fn rescoring_forgets_only_the_leads_it_rescores() {
        use crate::ingest::{Kind, Message, ingest};
        use leadscore_store::{Store, models, workspaces};
        use serde_json::Map;

        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_ingesting(dir.path(), leadscore_store::message_ids::DEFAULT_RECENT).unwrap();
        let source = "[scores.activity]\nrules = [{ name = \"visits\", event = \"visit\", points = 1 }]\n";
        let (a, b) = store
            .write_blocking(move |c| {
                let mut ids = Vec::new();
                for name in ["a", "b"] {
                    let workspace = workspaces::find_or_create(c, name)?;
                    let version = models::add(c, workspace.id, source, &std::collections::BTreeMap::new())?;
                    models::activate(c, workspace.id, version.id)?;
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
                let batch =
                    Batch { workspace_id: a, after_id: 0, now: 2, cause: "time".into(), history: History::TierChanges };
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
