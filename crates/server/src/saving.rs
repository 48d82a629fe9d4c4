//! Saving a lead's freshly evaluated scores with everything that follows from them, in the
//! writer's transaction: its state, current scores and history, the automatic move to MQL, and
//! the webhook notifications of every change. Ingestion prepares every lead of a request
//! ([`prepare`]) and writes them all in one call; rescoring prepares a batch of leads on a read
//! snapshot, off the writer, and writes them in one writer job; the other paths save a lead at
//! once with [`save_scores`].
//!
//! Each history entry carries why its score moved since the lead's previous save: the stored
//! state keeps the instant it was last evaluated at (`scoring::scored_state_text`), so that the
//! earlier state, fields and model, read at that instant, give back exactly the stored values,
//! and the engine's `changes_between` splits the move into terms. Where the earlier evaluation
//! cannot be rebuilt exactly (a state stored before, or rebuilt since), the entry has no terms:
//! never terms that do not add up to the recorded change.
//!
//! The overrides people set ([`crate::overrides`]) are applied here, to every save, so that
//! whatever saves a lead (an event, a rescoring, the periodic pass, an override itself) stores,
//! ranks, moves and notifies its effective score, with the model's own beside it:
//! - a value and a tier: both replace the model's;
//! - a tier alone: the value stays the model's (it keeps moving with events), the tier is fixed;
//! - a value alone: the tier is the one the model's tiers give that value by points
//!   ([`leadscore_core::Score::tier_of_value`]), qualifiers and disqualifiers aside;
//! - an override whose tier the model evaluated does not have (after an activation) is lifted,
//!   by the save's cause (`model vN`) with a note saying why, and the model's score stands.

use std::sync::Arc;

use leadscore_core::{LeadScores, LeadState, Model, Snapshot, Timestamp, changes_between_ending};
use leadscore_store::leads::LeadRow;
use leadscore_store::scores::{Change, History, HistoryTerms, Overridden, ScoreRow, StoredScores};
use leadscore_store::stages::StageChange;
use leadscore_store::storage::{LiftedOverride, Notification, ScoredLeadWrite};
use leadscore_store::webhooks::Webhook;
use leadscore_store::{Reads, StoreError, Transaction};

use crate::lifecycle;
use crate::notify::{self, LeadChanges};
use crate::scoring::{self, Models};

/// What saving a lead's scores did.
pub struct Saved {
    pub rows: Vec<ScoreRow>,
    pub changes: Vec<Change>,
    pub stage: Option<StageChange>,
    pub queued: usize,
}

/// What every lead saved in one transaction shares: what it reads (the write transaction, or a
/// read snapshot for a caller that prepares leads before its write, as rescoring does), the model
/// it was evaluated with, the time, why, what goes into the history, and the workspace's webhooks.
pub struct SaveContext<'a> {
    pub reads: &'a dyn Reads,
    pub model: &'a Model,
    pub model_id: i64,
    pub now: i64,
    /// The history's cause: `event`, `model vN`, `time`, ...
    pub cause: &'a str,
    pub history: History,
    pub webhooks: &'a [Webhook],
    /// The compiled models, for the model a lead was last saved with when it was another one.
    pub models: &'a Models,
    /// Overrides the caller sets or lifts with this save, by score: applied instead of the one
    /// stored (empty but for an override's own save).
    pub overrides: &'a [AskedOverride],
}

/// What the lead was at its previous save, where the lead row being saved no longer says:
/// its fields before a request changed them, its state before it was pruned or rebuilt.
#[derive(Debug, Default, Clone)]
pub struct Earlier {
    /// Attributes and e-mail (`None`: the row's are the earlier ones).
    pub fields: Option<(serde_json::Map<String, serde_json::Value>, Option<String>)>,
    /// The stored state text and its model (`None`: the row's are).
    pub state: Option<(Option<String>, Option<i64>)>,
    /// The state that text holds, already read, when the caller has it (for the model it saves
    /// with): not parsed again.
    pub saved_state: Option<LeadState>,
}

/// An override a save applies to one score instead of the stored one: `set` is the override
/// now in force, `None` when it was just lifted.
#[derive(Debug, Clone, PartialEq)]
pub struct AskedOverride {
    pub score: String,
    pub set: Option<OverrideSpec>,
}

/// What an override in force sets: a value, a tier, or both.
#[derive(Debug, Clone, PartialEq)]
pub struct OverrideSpec {
    pub id: i64,
    pub value: Option<f64>,
    pub tier: Option<String>,
}

/// What saving a lead's scores writes, worked out before the write: the scores, their changes,
/// the move to MQL they make and the notifications of it all.
pub struct Prepared {
    pub rows: Vec<ScoreRow>,
    pub changes: Vec<Change>,
    pub stage: Option<StageChange>,
    pub notifications: Vec<Notification>,
    pub terms: Vec<HistoryTerms>,
    pub lifted_overrides: Vec<LiftedOverride>,
}

/// Evaluates a lead at `now` from `state` and works out what saving it writes over `stored`
/// (its stored scores); sets the lead's state. `earlier` says what the lead was at its previous
/// save where the row no longer does. Writes nothing: [`Prepared::write`] is the write.
pub fn prepare(
    context: &SaveContext<'_>,
    lead: &mut LeadRow,
    state: &LeadState,
    stored: &StoredScores,
    earlier: &Earlier,
) -> Prepared {
    let SaveContext { model, model_id, now, webhooks, .. } = *context;
    let (earlier_state, earlier_model_id) = match &earlier.state {
        Some((text, model_id)) => (text.clone(), *model_id),
        None => (lead.state.take(), lead.state_model_id),
    };
    lead.state = Some(scoring::scored_state_text(state.occurrences(), now));
    lead.state_model_id = Some(model_id);
    let evaluated = model.evaluate(&scoring::lead_values(model, lead), state, Timestamp(now));
    let (mut rows, mut qualified_by) = scoring::rows_of(&evaluated, model_id, now);
    let lifted_overrides = apply_overrides(context, stored, &mut rows, &mut qualified_by);
    let recorded = rows.iter().any(|row| context.history.records(stored.row(&row.score), row));
    let terms = if recorded {
        let before = Before {
            state: earlier_state.as_deref(),
            model_id: earlier_model_id,
            fields: earlier.fields.as_ref(),
            parsed: earlier.saved_state.as_ref(),
        };
        history_terms(context, lead, state, &evaluated, &before, &rows, stored)
    } else {
        Vec::new()
    };
    // The move to MQL and the notifications follow from the changes; the store only writes.
    let changes = stored.changes(&rows);
    let stage = lifecycle::mql_move(model, &lead.stage, &rows, &qualified_by, &changes, now);
    let lead_changes = LeadChanges { scores: changes.iter().collect(), stages: stage.iter().collect() };
    let notifications = notify::for_changes(webhooks, lead, &lead_changes);
    Prepared { rows, changes, stage, notifications, terms, lifted_overrides }
}

/// The lead at its previous save.
struct Before<'a> {
    state: Option<&'a str>,
    model_id: Option<i64>,
    fields: Option<&'a (serde_json::Map<String, serde_json::Value>, Option<String>)>,
    /// `state` already read, for the model being saved with.
    parsed: Option<&'a LeadState>,
}

/// The terms of each score whose change the history records, from the lead's previous save to
/// `rows`; none for a score whose earlier value cannot be rebuilt exactly.
fn history_terms<'m>(
    context: &SaveContext<'m>,
    lead: &LeadRow,
    state: &LeadState,
    evaluated: &LeadScores<'m>,
    before: &Before<'_>,
    rows: &[ScoreRow],
    stored: &StoredScores,
) -> Vec<HistoryTerms> {
    let after_fields = scoring::lead_values(context.model, lead);
    let earlier_model: Arc<Model>;
    let (before_model, before_state, before_fields, scored_at) = match (before.state, before.model_id) {
        (Some(text), Some(model_id)) => {
            let Some(scored_at) = scoring::scored_at(text) else { return Vec::new() };
            let before_model: &Model = if model_id == context.model_id {
                context.model
            } else {
                let found = context.reads.model_by_id(model_id).ok().flatten();
                match found.and_then(|version| context.models.get(context.reads, &version).ok()) {
                    Some(model) => {
                        earlier_model = model;
                        &earlier_model
                    }
                    None => return Vec::new(),
                }
            };
            let before_state = match before.parsed.filter(|_| model_id == context.model_id) {
                Some(parsed) => std::borrow::Cow::Borrowed(parsed),
                None => match scoring::parse_state(text).and_then(|o| LeadState::from_occurrences(before_model, o)) {
                    Some(read) => std::borrow::Cow::Owned(read),
                    None => return Vec::new(),
                },
            };
            let before_fields = match before.fields {
                Some((attributes, email)) => {
                    scoring::field_values(before_model, attributes, email.as_deref(), lead.user_id.as_deref())
                }
                None => scoring::lead_values(before_model, lead),
            };
            (before_model, before_state, before_fields, scored_at)
        }
        // A lead saved for the first time: from nothing, no fields and no events, to now.
        (None, _) if stored.is_empty() => {
            let nothing = vec![leadscore_core::Value::Missing; after_fields.len()];
            (context.model, std::borrow::Cow::Owned(LeadState::new(context.model)), nothing, context.now)
        }
        _ => return Vec::new(),
    };
    let changes = changes_between_ending(
        before_model,
        Snapshot { lead: &before_fields, state: &before_state, as_of: Timestamp(scored_at) },
        context.model,
        Snapshot { lead: &after_fields, state, as_of: Timestamp(context.now) },
        Some(evaluated),
    );
    rows.iter()
        .filter(|row| context.history.records(stored.row(&row.score), row))
        .filter_map(|row| {
            let change = changes.iter().find(|c| c.score == row.score)?;
            let stored_before = stored.row(&row.score).map_or(0.0, |b| b.value);
            // Only terms that explain the very values stored: the earlier evaluation rebuilt
            // must give back what was saved then.
            (change.before == stored_before && change.after == row.value).then(|| HistoryTerms {
                score: row.score.clone(),
                terms: serde_json::to_string(&change.terms).unwrap_or_default(),
            })
        })
        .collect()
}

/// The effective value and tier of `score` under an override of `value`, `tier` or both, over
/// the model's own (see the module's doc).
pub fn effective(
    score: &leadscore_core::Score,
    value: Option<f64>,
    tier: Option<&str>,
    computed_value: f64,
    computed_tier: Option<&str>,
) -> (f64, Option<String>) {
    let tier = match (tier, value) {
        (Some(tier), _) => Some(tier),
        (None, Some(value)) => score.tier_of_value(value),
        (None, None) => computed_tier,
    };
    (value.unwrap_or(computed_value), tier.map(str::to_string))
}

/// Replaces each overridden score's value and tier by the override's (see the module's doc),
/// keeping the model's beside them; answers the overrides the model no longer allows, which
/// are left out. An overridden tier was set by no qualifier.
fn apply_overrides(
    context: &SaveContext<'_>,
    stored: &StoredScores,
    rows: &mut [ScoreRow],
    qualified_by: &mut [Option<String>],
) -> Vec<LiftedOverride> {
    let mut lifted = Vec::new();
    for (row, qualified_by) in rows.iter_mut().zip(qualified_by.iter_mut()) {
        let asked = context.overrides.iter().find(|asked| asked.score == row.score);
        let spec = match asked {
            Some(asked) => asked.set.clone(),
            None => {
                stored.overridden(&row.score).map(|o| OverrideSpec { id: o.id, value: o.value, tier: o.tier.clone() })
            }
        };
        let Some(spec) = spec else { continue };
        let Some(score) = context.model.scores().iter().find(|s| s.name() == row.score) else { continue };
        if let Some(tier) = spec.tier.as_deref().filter(|tier| !score.has_tier(tier)) {
            lifted.push(LiftedOverride {
                id: spec.id,
                by: context.cause.to_string(),
                note: format!("score `{}` has no tier `{tier}` in this model", row.score),
            });
            continue;
        }
        let (computed_value, computed_tier) = (row.value, row.tier.take());
        (row.value, row.tier) =
            effective(score, spec.value, spec.tier.as_deref(), computed_value, computed_tier.as_deref());
        row.overridden =
            Some(Overridden { id: spec.id, value: spec.value, tier: spec.tier, computed_value, computed_tier });
        *qualified_by = None;
    }
    lifted
}

impl Prepared {
    /// The storage write of these scores for `lead` (as prepared).
    pub fn write<'a>(&'a self, context: &SaveContext<'a>, lead: &'a LeadRow) -> ScoredLeadWrite<'a> {
        ScoredLeadWrite {
            lead,
            rows: &self.rows,
            cause: context.cause,
            history: context.history,
            terms: &self.terms,
            stage: self.stage.as_ref(),
            notifications: &self.notifications,
            lifted_overrides: &self.lifted_overrides,
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
/// otherwise), and what is stored after; `earlier` as for [`prepare`].
pub fn save_scores(
    transaction: &dyn Transaction,
    context: &SaveContext<'_>,
    lead: &mut LeadRow,
    state: &LeadState,
    stored: &mut Option<StoredScores>,
    earlier: &Earlier,
) -> Result<Saved, StoreError> {
    let stored = match stored {
        Some(stored) => stored,
        None => stored.insert(transaction.stored_scores(lead.id)?),
    };
    let prepared = prepare(context, lead, state, stored, earlier);
    transaction.save_scored_lead(&prepared.write(context, lead), stored)?;
    Ok(prepared.saved(lead))
}
