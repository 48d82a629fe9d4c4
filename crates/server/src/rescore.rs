//! Rescoring whole workspaces in the background in small batches, after a model is activated
//! (recorded, resumed after a crash) or as time passes; each lead is saved by [`crate::saving`].
//!
//! An activation's rescoring is split into ranges of lead ids (see
//! [`leadscore_store::rescorings`]): each instance sharing the database takes a range nobody
//! works on, goes through it, then takes another, so that the instances rescore a workspace
//! together; an instance that stops leaves its range to the others when its claim runs out. The
//! instance that activated starts at once, the others within [`JOIN_EVERY`] ([`join`]). The
//! periodic pass goes over every lead in the one instance elected for it.
//!
//! A pass goes through its leads in id order, a batch at a time, in two steps:
//! - on a read snapshot, off the writer ([`evaluate`]): the batch's rows and stored scores in two
//!   queries, the events of the leads whose state must be rebuilt in a third, then every lead
//!   evaluated and its save prepared. A few batches are read ahead, on their own threads, so
//!   that both cores evaluate while the writer writes;
//! - in one writer job ([`write_batch`]): the batch's rows and scores read again, and the leads
//!   still as they were read saved as prepared, together; a lead that changed since (an event,
//!   an override, a merge) is evaluated again there, on what is stored now. A lead whose scores,
//!   state and stage would not change is not written at all.
//!
//! Writer jobs stay short, so ingestion and reads go on while a workspace is rescored.

use std::collections::VecDeque;
use std::sync::Arc;

use leadscore_core::{LeadState, Model, Timestamp};
use leadscore_store::events::StoredEvent;
use leadscore_store::leads::LeadRow;
use leadscore_store::rescorings::{Rescoring, RescoringRange};
use leadscore_store::scores::{History, ScoreRow, StoredScores};
use leadscore_store::stages::StageChange;
use leadscore_store::webhooks::Webhook;
use leadscore_store::{Reads, StoreError, Transaction, now_ms};
use serde::Serialize;

use crate::lead_cache::LeadCache;
use crate::lifecycle::{self, Stage};
use crate::notify::{self, LeadChanges};
use crate::saving::{self, Prepared, SaveContext};
use crate::scoring::{self, Models};
use crate::state::AppState;

/// Leads per batch: one writer job writes a batch, so it stays short enough that ingestion
/// waiting behind it keeps its latency (docs/benchmarks.md, "Rescoring a million leads").
const BATCH: u32 = 250;

/// How often an instance looks for a rescoring begun by another instance on the same database,
/// to take part in it.
pub const JOIN_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Batches read and evaluated ahead of the one being written: two, so that both cores evaluate
/// while the writer writes.
const READ_AHEAD: usize = 2;

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

/// What a pass over a workspace's leads records, and whose it is.
struct Pass {
    workspace_id: i64,
    cause: String,
    history: History,
    /// After a rollback: automatic MQL moves made since then, which the restored version does not
    /// support, are moved back.
    revert_automatic_since: Option<i64>,
    /// An activation's rescoring: the range of it this pass goes through, which records its
    /// progress at every batch. `None` for the periodic pass, which goes over every lead and stops
    /// when an activation's rescoring starts.
    rescoring: Option<RescoringPart>,
}

/// The part of an activation's rescoring a pass goes through.
struct RescoringPart {
    /// The rescoring's model and start, which say it is still the one running.
    model_id: i64,
    started_at: i64,
    range: RescoringRange,
}

impl Pass {
    /// The last lead id the pass goes through.
    fn until(&self) -> i64 {
        self.rescoring.as_ref().map_or(i64::MAX, |part| part.range.until)
    }
}

/// A batch of leads evaluated on a read snapshot, for its writer job: the leads with ids in
/// `after_id` (excluded) to `until` (included).
struct Evaluated {
    after_id: i64,
    until: i64,
    /// The active version's id it was evaluated with (`None`: the workspace had none).
    model_id: Option<i64>,
    /// The instant the leads were evaluated at: after their rows were read, so after every event
    /// they hold was stored.
    now: i64,
    /// The workspace's webhooks as read, which the prepared notifications are for.
    hooks: Vec<Webhook>,
    leads: Vec<EvaluatedLead>,
}

/// One lead of an [`Evaluated`] batch.
struct EvaluatedLead {
    /// The row and scores as read: the writer saves `prepared` only if they are still stored.
    read: LeadRow,
    stored: StoredScores,
    /// The row to save (with its new state).
    lead: LeadRow,
    /// `None` when saving would change nothing: the lead is not written.
    prepared: Option<Prepared>,
}

/// Reads and evaluates the workspace's leads with ids in `after_id` (excluded) to `until`
/// (included), at most [`BATCH`], with the active version, preparing each one's save. Writes
/// nothing.
fn evaluate(
    reads: &dyn Reads,
    models: &Models,
    pass: &Pass,
    after_id: i64,
    until: i64,
) -> Result<Evaluated, StoreError> {
    let workspace_id = pass.workspace_id;
    let Some(version) = reads.active_model(workspace_id)? else {
        return Ok(Evaluated { after_id, until, model_id: None, now: 0, hooks: Vec::new(), leads: Vec::new() });
    };
    let model = models.get(reads, &version)?;
    let mut batch = reads.leads_after(workspace_id, after_id, BATCH)?;
    batch.retain(|(lead, _)| lead.id <= until);
    let now = now_ms();
    let hooks = reads.webhooks(workspace_id)?;
    let kept: Vec<Option<LeadState>> =
        batch.iter().map(|(lead, _)| scoring::stored_state(&model, version.id, lead)).collect();
    // After an activation every lead's stored state is the earlier version's: the events of all
    // of them are read in one query, and their states rebuilt.
    let needs_events: Vec<&LeadRow> = batch
        .iter()
        .zip(&kept)
        .filter(|((lead, _), kept)| kept.is_none() && lead.last_event_id.is_some())
        .map(|((lead, _), _)| lead)
        .collect();
    let fetched = reads.events_of_leads(&needs_events)?;
    let fetched_ids: Vec<i64> = needs_events.iter().map(|lead| lead.id).collect();
    let mut fetched = fetched_ids.into_iter().zip(fetched).peekable();
    let context = SaveContext {
        reads,
        model: &model,
        model_id: version.id,
        now,
        cause: &pass.cause,
        history: pass.history,
        webhooks: &hooks,
        models,
        overrides: &[],
    };
    let mut leads = Vec::with_capacity(batch.len());
    for ((read, stored), kept) in batch.into_iter().zip(kept) {
        let state = match kept {
            Some(state) => state,
            None => {
                let events: Vec<StoredEvent> =
                    fetched.next_if(|(id, _)| *id == read.id).map(|(_, events)| events).unwrap_or_default();
                scoring::rebuilt_state(&model, &events)
            }
        };
        let mut lead = read.clone();
        let prepared = saving::prepare(&context, &mut lead, &state, &stored, &saving::Earlier::default());
        // A rollback's reverts look at every lead, changed or not.
        let writes = pass.revert_automatic_since.is_some() || changes_something(&read, &lead, &stored, &prepared);
        leads.push(EvaluatedLead { read, stored, lead, prepared: writes.then_some(prepared) });
    }
    Ok(Evaluated { after_id, until, model_id: Some(version.id), now, hooks, leads })
}

/// Whether saving `prepared` over the lead as read (`read`, `stored`) changes anything but the
/// instants it was evaluated at: a score's value, tier, model or override, the state or its
/// model, the stage, a history entry, a notification or a lifted override. The periodic pass
/// over leads without recent activity changes nothing, and writes nothing.
fn changes_something(read: &LeadRow, saved: &LeadRow, stored: &StoredScores, prepared: &Prepared) -> bool {
    fn occurrences(lead: &LeadRow) -> Option<&str> {
        lead.state.as_deref().map(|text| text.rsplit_once('@').map_or(text, |(occurrences, _)| occurrences))
    }
    let same_scores = prepared.rows.len() == stored.rows().count()
        && prepared.rows.iter().all(|row| {
            stored.row(&row.score).is_some_and(|before| {
                before.value == row.value
                    && before.tier == row.tier
                    && before.model_id == row.model_id
                    && before.overridden == row.overridden
            })
        });
    !(same_scores
        && prepared.changes.is_empty()
        && prepared.stage.is_none()
        && prepared.notifications.is_empty()
        && prepared.lifted_overrides.is_empty()
        && prepared.terms.is_empty()
        && read.state_model_id == saved.state_model_id
        && occurrences(read) == occurrences(saved))
}

/// What a writer job of a pass did.
enum Step {
    /// The batch was written: `leads` in its range, `queued` notifications.
    Written { leads: i64, queued: usize },
    /// Every lead is done (and an activation's rescoring recorded as finished).
    Finished,
    /// Leads were added after the last one planned: the pass goes on.
    More,
    /// The pass is no longer wanted: its rescoring finished or was replaced, or (the periodic
    /// pass) an activation's rescoring started.
    Stopped,
}

/// Whether `pass` still runs, checked in the writer: an activation's rescoring is still the one
/// recorded as unfinished, and its range is unfinished and at `after_id` (the range's row is
/// locked, so that of two instances on one range only the first writes; see
/// [`Transaction::lock_rescoring_range`]); the periodic pass runs while no activation's rescoring
/// does. Answers the range as stored.
fn still_wanted(
    transaction: &dyn Transaction,
    pass: &Pass,
    after_id: i64,
) -> Result<Option<Option<RescoringRange>>, StoreError> {
    let running = transaction.rescoring(pass.workspace_id)?.filter(|r| r.finished_at.is_none());
    Ok(match (&pass.rescoring, running) {
        (Some(part), Some(rescoring)) => {
            if rescoring.model_id != part.model_id || rescoring.started_at != part.started_at {
                return Ok(None);
            }
            transaction
                .lock_rescoring_range(pass.workspace_id, part.range.first_after)?
                .filter(|range| range.finished_at.is_none() && range.after_lead_id == after_id)
                .map(Some)
        }
        (Some(_), None) => None,
        (None, running) => running.is_none().then_some(None),
    })
}

/// Writes an evaluated batch in the writer: each lead still as it was read is saved as
/// prepared; one that changed since is evaluated again here, on what is stored now. Records an
/// activation's rescoring's progress. Ingestion's memory forgets the leads it writes.
fn write_batch(
    transaction: &dyn Transaction,
    models: &Models,
    lead_cache: &LeadCache,
    pass: &Pass,
    evaluated: Evaluated,
) -> Result<Step, StoreError> {
    let Some(range) = still_wanted(transaction, pass, evaluated.after_id)? else { return Ok(Step::Stopped) };
    let workspace_id = pass.workspace_id;
    let Some(version) = transaction.active_model(workspace_id)? else {
        // No active version (none was ever activated): nothing to rescore with.
        if range.is_some() {
            transaction.finish_rescoring(workspace_id, None, now_ms())?;
        }
        return Ok(Step::Finished);
    };
    let model = models.get(transaction, &version)?;
    let hooks = transaction.webhooks(workspace_id)?;
    // Saves prepared for other webhooks or another active version are worked out again here.
    let prepared_hold = hooks == evaluated.hooks && evaluated.model_id == Some(version.id);
    let mut current = transaction.leads_after(workspace_id, evaluated.after_id, BATCH)?;
    current.retain(|(lead, _)| lead.id <= evaluated.until);
    let leads = current.len() as i64;
    // Read when the batch is written: an event committed since the batch was read must not be
    // after the time its lead is evaluated at.
    let now = now_ms();
    let context = |now: i64| SaveContext {
        reads: transaction,
        model: &model,
        model_id: version.id,
        now,
        cause: &pass.cause,
        history: pass.history,
        webhooks: &hooks,
        models,
        overrides: &[],
    };
    let (as_read, afresh) = (context(evaluated.now), context(now));
    let mut earlier = evaluated.leads.into_iter().peekable();
    // Leads still as read, saved together once the batch is gone through; each with the instant
    // it was evaluated at, for a rollback's reverts.
    let mut as_prepared: Vec<(LeadRow, Prepared)> = Vec::new();
    let mut stored_as_prepared: Vec<StoredScores> = Vec::new();
    let mut saved_afresh: Vec<(LeadRow, Vec<ScoreRow>)> = Vec::new();
    let mut queued = 0;
    for (row, stored) in current {
        while earlier.next_if(|e| e.read.id < row.id).is_some() {}
        let unchanged =
            earlier.next_if(|e| e.read.id == row.id).filter(|e| prepared_hold && e.read == row && e.stored == stored);
        match unchanged {
            Some(EvaluatedLead { prepared: None, .. }) => continue,
            Some(EvaluatedLead { lead, stored, prepared: Some(prepared), .. }) => {
                // Ingestion's memory of the lead would be stale: it reads the lead again next
                // time. The other leads it remembers stay valid, so rescoring writes beside it.
                lead_cache.lock().forget(lead.id);
                as_prepared.push((lead, prepared));
                stored_as_prepared.push(stored);
            }
            None => {
                lead_cache.lock().forget(row.id);
                let mut lead = row;
                let (state, _) = scoring::state_for(transaction, &model, version.id, &lead)?;
                let saved = saving::save_scores(
                    transaction,
                    &afresh,
                    &mut lead,
                    &state,
                    &mut Some(stored),
                    &saving::Earlier::default(),
                )?;
                queued += saved.queued;
                saved_afresh.push((lead, saved.rows));
            }
        }
    }
    {
        let writes: Vec<_> = as_prepared.iter().map(|(lead, prepared)| prepared.write(&as_read, lead)).collect();
        let mut scored: Vec<_> = writes.iter().zip(stored_as_prepared.iter_mut()).collect();
        transaction.save_scored_leads(&mut scored)?;
    }
    let mut written: Vec<(LeadRow, Vec<ScoreRow>, i64)> = Vec::with_capacity(as_prepared.len() + saved_afresh.len());
    for (mut lead, prepared) in as_prepared {
        let saved = prepared.saved(&mut lead);
        queued += saved.queued;
        written.push((lead, saved.rows, evaluated.now));
    }
    written.extend(saved_afresh.into_iter().map(|(lead, rows)| (lead, rows, now)));
    if let Some(since) = pass.revert_automatic_since {
        for (mut lead, rows, at) in written {
            queued += revert_automatic_mql(transaction, &model, &mut lead, &rows, since, &pass.cause, &hooks, at)?;
        }
    }
    if let Some(range) = range {
        transaction.record_rescoring_progress(&range, evaluated.until, range.done + leads, now)?;
    }
    Ok(Step::Written { leads, queued })
}

/// The writer job after the last batch planned: the pass ends unless leads were added after
/// `after_id` (in its range) meanwhile; an activation's rescoring records its range as finished,
/// and itself when that was its last.
fn write_end(transaction: &dyn Transaction, pass: &Pass, after_id: i64) -> Result<Step, StoreError> {
    let Some(range) = still_wanted(transaction, pass, after_id)? else { return Ok(Step::Stopped) };
    if transaction.lead_ids_after(pass.workspace_id, after_id, 1)?.first().is_some_and(|&id| id <= pass.until()) {
        return Ok(Step::More);
    }
    if let Some(range) = range {
        transaction.finish_rescoring_range(&range, now_ms())?;
    }
    Ok(Step::Finished)
}

/// How a pass ended.
enum Ended {
    Finished,
    Stopped,
}

/// Runs a pass over the workspace's leads after `after_id` up to its end ([`Pass::until`]),
/// batch after batch, reading ahead; `progress` hears each batch written (the last lead id of its
/// range, and its leads). A failed batch fails the pass, which can be run again from where it
/// recorded its progress.
async fn drive(
    state: &AppState,
    pass: Arc<Pass>,
    mut after_id: i64,
    mut progress: impl FnMut(i64, i64),
) -> Result<Ended, StoreError> {
    let workspace_id = pass.workspace_id;
    let mut planned = after_id;
    let mut exhausted = false;
    let mut ahead: VecDeque<tokio::task::JoinHandle<Result<Evaluated, StoreError>>> = VecDeque::new();
    loop {
        while ahead.len() < READ_AHEAD && !exhausted {
            let from = planned;
            let mut ids = state.storage.read(move |reads| reads.lead_ids_after(workspace_id, from, BATCH)).await?;
            let read = ids.len();
            ids.retain(|&id| id <= pass.until());
            let Some(&until) = ids.last() else {
                exhausted = true;
                break;
            };
            exhausted = read < BATCH as usize || ids.len() < read;
            planned = until;
            let (reader, models, pass) = (state.clone(), state.models.clone(), pass.clone());
            ahead.push_back(tokio::spawn(async move {
                reader.storage.read(move |reads| evaluate(reads, &models, &pass, from, until)).await
            }));
        }
        let Some(reading) = ahead.pop_front() else {
            let pass = pass.clone();
            match state.storage.write_beside_caches(move |transaction| write_end(transaction, &pass, after_id)).await? {
                Step::More => {
                    exhausted = false;
                    continue;
                }
                Step::Stopped => return Ok(Ended::Stopped),
                _ => return Ok(Ended::Finished),
            }
        };
        let evaluated = reading.await.map_err(|_| StoreError::Closed)??;
        let until = evaluated.until;
        let (models, lead_cache, writing) = (state.models.clone(), state.leads.clone(), pass.clone());
        let step = state
            .storage
            .write_beside_caches(move |transaction| write_batch(transaction, &models, &lead_cache, &writing, evaluated))
            .await?;
        match step {
            Step::Written { leads, queued } => {
                after_id = until;
                progress(until, leads);
                if queued > 0 {
                    state.deliveries.notify_one();
                }
            }
            Step::Stopped => return Ok(Ended::Stopped),
            Step::Finished | Step::More => return Ok(Ended::Finished),
        }
    }
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
            let ran = run_job(&state, workspace_id).await;
            state.rescoring.release(workspace_id);
            // An activation that committed while this job ended found it still claimed and left
            // its rescoring to it: look once more, and run it if it is a new one. (A rescoring
            // whose ranges other instances hold is theirs to end.)
            let unfinished = state.storage.rescoring(workspace_id).await;
            let new = unfinished.is_ok_and(|r| r.is_some_and(|r| r.finished_at.is_none() && Some(r.started_at) != ran));
            if !new || !state.rescoring.claim(workspace_id) {
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

/// Takes part, every [`JOIN_EVERY`], in the rescorings other instances on the same database
/// began (an activation through another instance): each unfinished one is started here too, and
/// takes the ranges nobody works on. Runs until aborted; with a store only this process writes,
/// there is nobody else's to join.
pub async fn join(state: AppState) {
    if state.storage.sole_writer() {
        return;
    }
    let mut ticks = tokio::time::interval(JOIN_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        // A read that fails is tried at the next tick (the scheduler logs storage failures).
        if let Ok(unfinished) = state.storage.unfinished_rescorings().await {
            for rescoring in unfinished {
                start(&state, rescoring.workspace_id);
            }
        }
    }
}

/// Failures in a row after which a rescoring gives up (with the error recorded).
const ATTEMPTS: u32 = 5;

/// Takes part in the workspace's stored rescoring until no range of it is left to take: takes a
/// range, goes through it (each batch's transaction recording its progress), takes the next. A
/// batch that storage fails is tried again until storage is back; one that fails otherwise (a
/// model that no longer compiles) is tried [`ATTEMPTS`] times, then the rescoring stops with its
/// error. Answers the start of the last rescoring it took part in.
async fn run_job(state: &AppState, workspace_id: i64) -> Option<i64> {
    let mut failures = 0;
    let mut ran = None;
    // The range this instance works on, as far as it got: kept over a failed batch.
    let mut held: Option<RescoringRange> = None;
    loop {
        let rescoring = match state.storage.rescoring(workspace_id).await {
            Ok(Some(rescoring)) if rescoring.finished_at.is_none() => Ok(rescoring),
            Ok(_) => return ran,
            Err(error) => Err(error),
        };
        let range = match &rescoring {
            Ok(rescoring) if ran != Some(rescoring.started_at) => {
                // Another rescoring replaced the one this instance worked on.
                ran = Some(rescoring.started_at);
                held = None;
                None
            }
            _ => held.take(),
        };
        let range = match (rescoring.as_ref(), range) {
            (Ok(_), Some(range)) => Ok(Some(range)),
            (Ok(_), None) => state.storage.claim_rescoring_range(workspace_id, now_ms()).await,
            (Err(_), _) => Ok(None),
        };
        let outcome = match (rescoring, range) {
            (Ok(_), Ok(None)) => return ran,
            (Ok(rescoring), Ok(Some(range))) => {
                let pass = Arc::new(Pass {
                    workspace_id,
                    cause: rescoring.cause.clone(),
                    history: History::EveryChange,
                    revert_automatic_since: rescoring.revert_automatic_since,
                    rescoring: Some(RescoringPart {
                        model_id: rescoring.model_id,
                        started_at: rescoring.started_at,
                        range: range.clone(),
                    }),
                });
                // This instance's view: the leads done as read, and those it does since.
                let (mut done, total) = (rescoring.done, rescoring.total);
                state.metrics.rescoring_planned.set(total.max(done));
                state.metrics.rescoring_done.set(done);
                let mut progress = range.clone();
                let outcome = drive(state, pass, range.after_lead_id, |until, leads| {
                    failures = 0;
                    done += leads;
                    state.metrics.rescored_here.inc_by(leads.unsigned_abs());
                    progress.after_lead_id = until;
                    progress.done += leads;
                    state.metrics.rescoring_done.set(done);
                    state.metrics.rescoring_planned.set(total.max(done));
                })
                .await;
                if outcome.is_err() {
                    held = Some(progress);
                }
                outcome
            }
            (Err(error), _) | (_, Err(error)) => Err(error),
        };
        match outcome {
            // The range is done, or another instance took it over (it found this one's claim run
            // out), or the rescoring was replaced: on to what is left.
            Ok(Ended::Stopped | Ended::Finished) => continue,
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
                    return ran;
                }
                tokio::time::sleep(std::time::Duration::from_secs(2 << failures)).await;
            }
        }
    }
}

/// Rescores every lead of a workspace now, with no record of progress: the periodic pass for
/// tiers that change with time alone. It stops when an activation's rescoring starts. Answers
/// the leads gone through.
pub async fn run(state: &AppState, workspace_id: i64, cause: &str, history: History) -> Result<u64, StoreError> {
    let pass = Arc::new(Pass {
        workspace_id,
        cause: cause.to_string(),
        history,
        revert_automatic_since: None,
        rescoring: None,
    });
    let mut done = 0;
    drive(state, pass, 0, |_, leads| done += leads as u64).await?;
    Ok(done)
}

/// Re-evaluates every workspace's leads every `interval`, so that tiers that change with time
/// alone (decay, windows, inactivity) are recorded and notified. Only tier changes go into the
/// history. Score overrides whose expiry has passed are lifted first, so that the pass sees
/// the model's scores.
///
/// Instances sharing a database elect one to do this (the first to ask holds the right for as
/// long as it runs, see [`leadscore_store::Storage::try_exclusive`]); it also takes over the
/// rescorings after an activation whose instance stopped.
pub async fn schedule(state: AppState, interval: std::time::Duration) {
    let mut elected: Option<leadscore_store::storage::Exclusive> = None;
    loop {
        tokio::time::sleep(interval).await;
        if !elected.as_ref().is_some_and(|e| e.is_held()) {
            elected = match state.storage.try_exclusive("scheduler".to_string()).await {
                Ok(elected) => elected,
                Err(error) => {
                    tracing::error!(%error, "cannot tell whether another instance runs the scheduler");
                    None
                }
            };
            if elected.is_none() {
                continue;
            }
        }
        if let Err(error) = crate::overrides::lift_expired(&state).await {
            tracing::error!(%error, "lifting expired score overrides failed");
        }
        let workspaces: Result<Vec<i64>, StoreError> = state.storage.workspaces_with_active_model().await;
        for workspace_id in workspaces.unwrap_or_default() {
            // A rescoring after an activation goes over every lead anyway. It runs here unless
            // it runs already, here or in another instance.
            let running = state.storage.rescoring(workspace_id).await;
            if running.is_ok_and(|r| r.is_some_and(|r| r.finished_at.is_none())) {
                start(&state, workspace_id);
                continue;
            }
            let started = std::time::Instant::now();
            match run(&state, workspace_id, "time", History::TierChanges).await {
                Ok(leads) => tracing::info!(
                    workspace_id,
                    leads,
                    ms = started.elapsed().as_millis() as u64,
                    "periodic rescoring pass finished"
                ),
                Err(error) => tracing::error!(%error, workspace_id, "scheduled rescoring failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{Ingested, ingest};
    use crate::messages::{Kind, Message};
    use leadscore_store::{Store, models, workspaces};
    use serde_json::Map;

    const VISITS: &str = "[scores.activity]\nrules = [{ name = \"visits\", event = \"visit\", points = 1 }]\n";
    /// Visits that lose half their points every 30 days: a pass long after them changes every
    /// lead's value.
    const DECAYING_VISITS: &str = "[scores.activity]\nrules = [{ name = \"visits\", event = \"visit\", points = 1, decay = { half_life = \"30d\" } }]\n";

    /// A store with workspaces `a` and `b`, each with `source` active, ingestion's memories,
    /// and a way to send a visit of a user to a workspace.
    struct Fixture {
        _dir: tempfile::TempDir,
        store: Store,
        models: Arc<Models>,
        cache: Arc<LeadCache>,
        workspaces: (i64, i64),
    }

    impl Fixture {
        fn new(source: &'static str) -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open_ingesting(dir.path(), leadscore_store::message_ids::DEFAULT_RECENT).unwrap();
            let workspaces = store
                .write_blocking(move |c| {
                    let mut ids = Vec::new();
                    for name in ["a", "b"] {
                        let workspace = workspaces::find_or_create(c, name, now_ms())?;
                        let version = models::add(c, workspace.id, source, &Default::default(), None, now_ms())?;
                        models::activate(c, workspace.id, version.id, models::Origin::Api, now_ms())?;
                        ids.push(workspace.id);
                    }
                    Ok((ids[0], ids[1]))
                })
                .unwrap();
            let cache = Arc::new(LeadCache::new(store.generation()));
            Fixture { _dir: dir, store, models: Arc::new(Models::default()), cache, workspaces }
        }

        fn visit(&self, workspace_id: i64, user: &str, id: &str) -> Ingested {
            let (models, cache) = (self.models.clone(), self.cache.clone());
            let message = Message {
                kind: Kind::Track("visit".to_string()),
                user_id: Some(user.to_string()),
                anonymous_id: None,
                message_id: id.to_string(),
                at: 1,
                traits: Map::new(),
                properties: Map::new(),
            };
            self.store
                .write_coherent_blocking(move |c| ingest(c, &models, &cache, workspace_id, vec![Ok(message)], 1))
                .unwrap()
        }

        /// Activates a version of `a` whose visits are worth `points`.
        fn activate(&self, points: u32) {
            let (a, source) = (self.workspaces.0, VISITS.replace("points = 1", &format!("points = {points}")));
            self.store
                .write_blocking(move |c| {
                    let version = models::add(c, a, &source, &Default::default(), None, now_ms())?;
                    models::activate(c, a, version.id, models::Origin::Api, now_ms())
                })
                .unwrap();
        }

        /// The first batch of `a`'s periodic pass, read and evaluated.
        fn evaluate(&self, pass: &Arc<Pass>) -> Evaluated {
            let (models, pass) = (self.models.clone(), pass.clone());
            self.store.read_blocking(move |c| evaluate(c, &models, &pass, 0, i64::MAX)).unwrap()
        }

        fn write(&self, pass: &Arc<Pass>, evaluated: Evaluated) -> Step {
            let (models, cache, pass) = (self.models.clone(), self.cache.clone(), pass.clone());
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime
                .block_on(self.store.write_beside_caches(move |c| write_batch(c, &models, &cache, &pass, evaluated)))
                .unwrap()
        }

        fn activity(&self, user: &str) -> f64 {
            let (a, user) = (self.workspaces.0, user.to_string());
            self.store
                .read_blocking(move |c| {
                    let lead = c.lead_by_user_id(a, &user)?.unwrap();
                    Ok(c.stored_scores(lead.id)?.row("activity").unwrap().value)
                })
                .unwrap()
        }
    }

    fn periodic(workspace_id: i64) -> Arc<Pass> {
        Arc::new(Pass {
            workspace_id,
            cause: "time".into(),
            history: History::EveryChange,
            revert_automatic_since: None,
            rescoring: None,
        })
    }

    /// Rescoring a workspace makes ingestion read its leads again, and only them: the leads of
    /// other workspaces stay remembered, and the rescored lead's next event is scored on what
    /// rescoring stored.
    #[test]
    fn rescoring_forgets_only_the_leads_it_rescores() {
        let fixture = Fixture::new(DECAYING_VISITS);
        let (a, b) = fixture.workspaces;
        fixture.visit(a, "u", "1");
        fixture.visit(b, "u", "1");
        let pass = periodic(a);
        let evaluated = fixture.evaluate(&pass);
        assert!(matches!(fixture.write(&pass, evaluated), Step::Written { leads: 1, .. }));
        assert!(fixture.activity("u") < 0.01, "the visit of 1970 has decayed");
        let again_a = fixture.visit(a, "u", "2");
        assert_eq!((again_a.remembered, again_a.looked_up), (0, 1), "read again");
        assert_eq!(again_a.leads[0].scores["activity"].value, 2.0);
        let again_b = fixture.visit(b, "u", "2");
        assert_eq!((again_b.remembered, again_b.looked_up), (1, 0), "still remembered");
    }

    /// A lead that an event changes after its batch was read, before it is written, is evaluated
    /// again in the writer: it ends with the scores of all its events, not the ones read; the
    /// other leads of the batch are written as evaluated.
    #[test]
    fn a_lead_changed_between_the_read_and_the_write_of_its_batch_ends_with_the_right_scores() {
        let fixture = Fixture::new(VISITS);
        let a = fixture.workspaces.0;
        fixture.visit(a, "changed", "1");
        fixture.visit(a, "kept", "2");
        fixture.activate(5);
        let pass = periodic(a);
        let evaluated = fixture.evaluate(&pass);
        fixture.visit(a, "changed", "3");
        assert_eq!(fixture.activity("changed"), 10.0, "ingestion scored both visits");
        assert!(matches!(fixture.write(&pass, evaluated), Step::Written { leads: 2, .. }));
        assert_eq!(fixture.activity("changed"), 10.0, "not the one visit read");
        assert_eq!(fixture.activity("kept"), 5.0);
        let next = fixture.visit(a, "changed", "4");
        assert_eq!(next.leads[0].scores["activity"].value, 15.0, "its stored state holds every visit");
    }

    /// A pass that changes nothing writes nothing: the lead stays in ingestion's memory.
    #[test]
    fn a_pass_that_changes_nothing_writes_nothing() {
        let fixture = Fixture::new(VISITS);
        let a = fixture.workspaces.0;
        fixture.visit(a, "u", "1");
        let pass = periodic(a);
        let evaluated = fixture.evaluate(&pass);
        assert!(evaluated.leads.iter().all(|lead| lead.prepared.is_none()));
        assert!(matches!(fixture.write(&pass, evaluated), Step::Written { leads: 1, .. }));
        let again = fixture.visit(a, "u", "2");
        assert_eq!((again.remembered, again.looked_up), (1, 0), "still remembered");
        assert_eq!(fixture.activity("u"), 2.0);
    }
}
