//! Saving a lead's freshly evaluated scores with everything that follows from them, in the
//! writer's transaction: its state, current scores and history, the automatic move to MQL, and
//! the webhook notifications of every change. Rescoring saves each lead with [`save_scores`];
//! ingestion prepares every lead of a request ([`prepare`]) and writes them all in one call.

use leadscore_core::{LeadState, Model};
use leadscore_store::leads::LeadRow;
use leadscore_store::scores::{Change, History, ScoreRow, StoredScores};
use leadscore_store::stages::StageChange;
use leadscore_store::storage::{Notification, ScoredLeadWrite};
use leadscore_store::webhooks::Webhook;
use leadscore_store::{StoreError, Transaction};

use crate::lifecycle;
use crate::notify::{self, LeadChanges};
use crate::scoring;

/// What saving a lead's scores did.
pub struct Saved {
    pub rows: Vec<ScoreRow>,
    pub changes: Vec<Change>,
    pub stage: Option<StageChange>,
    pub queued: usize,
}

/// What every lead saved in one transaction shares: the write transaction, the model it was
/// evaluated with, the time, why, what goes into the history, and the workspace's webhooks.
pub struct SaveContext<'a> {
    pub transaction: &'a dyn Transaction,
    pub model: &'a Model,
    pub model_id: i64,
    pub now: i64,
    /// The history's cause: `event`, `model vN`, `time`, ...
    pub cause: &'a str,
    pub history: History,
    pub webhooks: &'a [Webhook],
}

/// What saving a lead's scores writes, worked out before the write: the scores, their changes,
/// the move to MQL they make and the notifications of it all.
pub struct Prepared {
    pub rows: Vec<ScoreRow>,
    pub changes: Vec<Change>,
    pub stage: Option<StageChange>,
    pub notifications: Vec<Notification>,
}

/// Evaluates a lead at `now` from `state` and works out what saving it writes over `stored`
/// (its stored scores); sets the lead's state. Writes nothing: [`Prepared::write`] is the write.
pub fn prepare(context: &SaveContext<'_>, lead: &mut LeadRow, state: &LeadState, stored: &StoredScores) -> Prepared {
    let SaveContext { model, model_id, now, webhooks, .. } = *context;
    lead.state = Some(scoring::state_text(state.occurrences()));
    lead.state_model_id = Some(model_id);
    let (rows, qualified_by) = scoring::evaluate_with_qualifiers(model, model_id, lead, state, now);
    // The move to MQL and the notifications follow from the changes; the store only writes.
    let changes = stored.changes(&rows);
    let stage = lifecycle::mql_move(model, &lead.stage, &rows, &qualified_by, &changes, now);
    let lead_changes = LeadChanges { scores: changes.iter().collect(), stages: stage.iter().collect() };
    let notifications = notify::for_changes(webhooks, lead, &lead_changes);
    Prepared { rows, changes, stage, notifications }
}

impl Prepared {
    /// The storage write of these scores for `lead` (as prepared).
    pub fn write<'a>(&'a self, context: &SaveContext<'a>, lead: &'a LeadRow) -> ScoredLeadWrite<'a> {
        ScoredLeadWrite {
            lead,
            rows: &self.rows,
            cause: context.cause,
            history: context.history,
            stage: self.stage.as_ref(),
            notifications: &self.notifications,
            now: context.now,
        }
    }

    /// What was saved, once written; the lead takes its new stage.
    pub fn saved(self, lead: &mut LeadRow) -> Saved {
        if let Some(change) = &self.stage {
            lead.stage = change.stage.clone();
        }
        Saved { rows: self.rows, changes: self.changes, stage: self.stage, queued: self.notifications.len() }
    }
}

/// Evaluates a lead at `now` from `state`, saves its state and scores, moves it to MQL when its
/// scores say so, and queues the webhook notifications of every change, all in one write of the
/// transaction. `stored` is the lead's stored scores when the caller knows them (read here
/// otherwise), and what is stored after.
pub fn save_scores(
    context: &SaveContext<'_>,
    lead: &mut LeadRow,
    state: &LeadState,
    stored: &mut Option<StoredScores>,
) -> Result<Saved, StoreError> {
    let stored = match stored {
        Some(stored) => stored,
        None => stored.insert(context.transaction.stored_scores(lead.id)?),
    };
    let prepared = prepare(context, lead, state, stored);
    context.transaction.save_scored_lead(&prepared.write(context, lead), stored)?;
    Ok(prepared.saved(lead))
}
