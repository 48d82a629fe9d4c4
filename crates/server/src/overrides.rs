//! A person overriding a lead's score, from the API or the console: setting an override (a
//! value, a tier or both, a mandatory reason, an optional expiry), lifting it by hand, and the
//! periodic pass that lifts the expired ones. Each is one transaction: the override's record,
//! then the lead saved again through [`saving::save_scores`], which applies overrides (see
//! [`crate::saving`] for what a tier or a value alone means), records the history entry naming
//! the override, moves the lead to MQL when the effective tier calls for it and notifies webhooks
//! of the change as of any score change.

use leadscore_store::overrides::{EXPIRY, NewOverride, ScoreOverride};
use leadscore_store::scores::{History, ScoreRow};
use leadscore_store::{StoreError, Transaction};

use crate::error::{ApiError, ErrorCode};
use crate::listing::find;
use crate::saving::{self, AskedOverride, OverrideSpec, SaveContext};
use crate::scoring::{self, Models};
use crate::state::AppState;

/// The most characters of an override's reason or note, and of who sets it.
pub const REASON_LIMIT: usize = 2000;
pub const ACTOR_LIMIT: usize = 200;

/// The history's causes of an override's changes.
pub const SET_CAUSE: &str = "override";
pub const LIFTED_CAUSE: &str = "override lifted";
pub const EXPIRY_CAUSE: &str = "override expired";

/// An override a person asks for.
#[derive(Debug, Clone)]
pub struct AskedSet {
    pub score: String,
    pub value: Option<f64>,
    pub tier: Option<String>,
    pub reason: String,
    pub expires_at: Option<i64>,
    /// Who sets it: `key N` or `user E-MAIL`.
    pub by: String,
}

/// A lead's score after a change of its override: the effective score with the model's beside
/// it, and the override in force, if any.
#[derive(Debug, Clone)]
pub struct OverrideOutcome {
    pub lead_id: i64,
    pub row: Option<ScoreRow>,
    pub in_force: Option<ScoreOverride>,
}

/// Checks what a person asks before anything is read: a reason, a value or a tier, an expiry
/// in the future, within the stored limits. The error names the field.
fn check(asked: &AskedSet, now: i64) -> Result<(), ApiError> {
    if asked.reason.trim().is_empty() {
        return Err(ApiError::new(ErrorCode::ReasonRequired, "an override needs a `reason`: say why the score is set"));
    }
    for (field, text, limit) in [("reason", &asked.reason, REASON_LIMIT), ("actor", &asked.by, ACTOR_LIMIT)] {
        let characters = text.chars().count();
        if characters > limit {
            return Err(ApiError::new(
                ErrorCode::InvalidField,
                format!("`{field}` has {characters} characters; at most {limit} are stored"),
            ));
        }
    }
    if asked.value.is_none() && asked.tier.is_none() {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            "an override sets `value`, `tier` or both; neither was given",
        ));
    }
    if let Some(value) = asked.value.filter(|v| !v.is_finite()) {
        return Err(ApiError::new(ErrorCode::InvalidField, format!("`value` {value} is not a finite number")));
    }
    if let Some(expires_at) = asked.expires_at.filter(|&at| at <= now) {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!("`expires_at` {} is not in the future", leadscore_core::Timestamp(expires_at)),
        ));
    }
    Ok(())
}

/// Sets an override on the workspace's lead `id` (a user id, else its own id), at `now`.
pub async fn set(
    state: &AppState,
    workspace_id: i64,
    id: String,
    asked: AskedSet,
    now: i64,
) -> Result<OverrideOutcome, ApiError> {
    check(&asked, now)?;
    let (models, lead_cache) = (state.models.clone(), state.leads.clone());
    let (outcome, queued) = state
        .storage
        .write_beside_caches(move |transaction| {
            let Some(lead) = find(transaction, workspace_id, &id)? else {
                return Ok(Err(ApiError::new(ErrorCode::NotFound, format!("no lead with id or userId `{id}`"))));
            };
            let Some(version) = transaction.active_model(workspace_id)? else {
                return Ok(Err(ApiError::new(
                    ErrorCode::UnknownScore,
                    format!("the workspace has no active model, so no score `{}`", asked.score),
                )));
            };
            let model = models.get(transaction, &version)?;
            let Some(score) = model.scores().iter().find(|s| s.name() == asked.score) else {
                let known: Vec<&str> = model.score_names().collect();
                return Ok(Err(ApiError::new(
                    ErrorCode::UnknownScore,
                    format!("model v{} has no score `{}`; it has {}", version.version, asked.score, known.join(", ")),
                )));
            };
            if let Some(tier) = asked.tier.as_deref().filter(|t| !score.has_tier(t)) {
                let known: Vec<&str> = score.tiers().iter().map(|t| t.label()).collect();
                return Ok(Err(ApiError::new(
                    ErrorCode::UnknownTier,
                    format!(
                        "`tier` `{tier}` is not a tier of score `{}`; its tiers are {}",
                        asked.score,
                        known.join(", ")
                    ),
                )));
            }
            lead_cache.lock().forget(lead.id);
            let override_id = transaction.add_override(
                &NewOverride {
                    workspace_id,
                    lead_id: lead.id,
                    score: &asked.score,
                    value: asked.value,
                    tier: asked.tier.as_deref(),
                    reason: asked.reason.trim(),
                    set_by: &asked.by,
                    expires_at: asked.expires_at,
                },
                now,
            )?;
            let spec = OverrideSpec { id: override_id, value: asked.value, tier: asked.tier.clone() };
            let change = [AskedOverride { score: asked.score.clone(), set: Some(spec) }];
            let (lead_id, row, queued) = save(transaction, &models, lead, &change, SET_CAUSE, now)?;
            let in_force = transaction.override_in_force(lead_id, &asked.score)?;
            Ok(Ok((OverrideOutcome { lead_id, row, in_force }, queued)))
        })
        .await??;
    if queued > 0 {
        state.deliveries.notify_one();
    }
    Ok(outcome)
}

/// Lifts the override in force on `score` of the workspace's lead `id`, by `by`, with an
/// optional note, at `now`.
pub async fn lift(
    state: &AppState,
    workspace_id: i64,
    id: String,
    score: String,
    by: String,
    note: Option<String>,
    now: i64,
) -> Result<OverrideOutcome, ApiError> {
    let note = note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    if let Some(characters) = note.as_ref().map(|n| n.chars().count()).filter(|&n| n > REASON_LIMIT) {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!("`note` has {characters} characters; at most {REASON_LIMIT} are stored"),
        ));
    }
    let (models, lead_cache) = (state.models.clone(), state.leads.clone());
    let (outcome, queued) = state
        .storage
        .write_beside_caches(move |transaction| {
            let Some(lead) = find(transaction, workspace_id, &id)? else {
                return Ok(Err(ApiError::new(ErrorCode::NotFound, format!("no lead with id or userId `{id}`"))));
            };
            let Some(in_force) = transaction.override_in_force(lead.id, &score)? else {
                return Ok(Err(ApiError::new(
                    ErrorCode::NoOverride,
                    format!("no override is in force on score `{score}` of lead {}", lead.id),
                )));
            };
            lead_cache.lock().forget(lead.id);
            transaction.lift_override(in_force.id, &by, note.as_deref(), now)?;
            let change = [AskedOverride { score: score.clone(), set: None }];
            let (lead_id, row, queued) = save(transaction, &models, lead, &change, LIFTED_CAUSE, now)?;
            Ok(Ok((OverrideOutcome { lead_id, row, in_force: None }, queued)))
        })
        .await??;
    if queued > 0 {
        state.deliveries.notify_one();
    }
    Ok(outcome)
}

/// How many expired overrides one transaction of the periodic pass lifts.
const EXPIRY_BATCH: u32 = 100;

/// Lifts every override whose expiry has passed (by [`EXPIRY`]), a batch per transaction, and
/// saves their leads again; answers how many were lifted.
pub async fn lift_expired(state: &AppState) -> Result<usize, StoreError> {
    let mut lifted = 0;
    loop {
        let (models, lead_cache) = (state.models.clone(), state.leads.clone());
        let (n, queued) = state
            .storage
            .write_beside_caches(move |transaction| {
                let now = leadscore_store::now_ms();
                let expired = transaction.expired_overrides(now, EXPIRY_BATCH)?;
                let mut queued = 0;
                let mut leads: Vec<(i64, i64)> = expired.iter().map(|(w, o)| (*w, o.lead_id)).collect();
                leads.sort_unstable();
                leads.dedup();
                for (workspace_id, lead_id) in leads {
                    let mut change = Vec::new();
                    for (_, expired) in expired.iter().filter(|(w, o)| *w == workspace_id && o.lead_id == lead_id) {
                        transaction.lift_override(expired.id, EXPIRY, None, now)?;
                        change.push(AskedOverride { score: expired.score.clone(), set: None });
                    }
                    lead_cache.lock().forget(lead_id);
                    // A lead merged into another keeps no scores: its overrides are only lifted.
                    if let Some(lead) = transaction.lead_by_id(workspace_id, lead_id)? {
                        queued += save(transaction, &models, lead, &change, EXPIRY_CAUSE, now)?.2;
                    }
                }
                Ok((expired.len(), queued))
            })
            .await?;
        lifted += n;
        if queued > 0 {
            state.deliveries.notify_one();
        }
        if n < EXPIRY_BATCH as usize {
            return Ok(lifted);
        }
    }
}

/// Saves a lead's scores again with `change` applied: answers its id, the changed score's row
/// and the notifications queued. Without an active model the overrides are only recorded.
fn save(
    transaction: &dyn Transaction,
    models: &Models,
    mut lead: leadscore_store::leads::LeadRow,
    change: &[AskedOverride],
    cause: &str,
    now: i64,
) -> Result<(i64, Option<ScoreRow>, usize), StoreError> {
    let Some(version) = transaction.active_model(lead.workspace_id)? else { return Ok((lead.id, None, 0)) };
    let model = models.get(transaction, &version)?;
    let (lead_state, _) = scoring::state_for(transaction, &model, version.id, &lead)?;
    let hooks = transaction.webhooks(lead.workspace_id)?;
    let context = SaveContext {
        reads: transaction,
        model: &model,
        model_id: version.id,
        now,
        cause,
        history: History::EveryChange,
        webhooks: &hooks,
        models,
        overrides: change,
    };
    let saved =
        saving::save_scores(transaction, &context, &mut lead, &lead_state, &mut None, &saving::Earlier::default())?;
    let row = saved.rows.into_iter().find(|row| change.first().is_some_and(|c| c.score == row.score));
    Ok((lead.id, row, saved.queued))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked() -> AskedSet {
        AskedSet {
            score: "fit".to_string(),
            value: None,
            tier: Some("mql".to_string()),
            reason: "signed a letter of intent".to_string(),
            expires_at: None,
            by: "key 1".to_string(),
        }
    }

    #[test]
    fn what_a_person_asks_is_checked_with_the_field_named() {
        let now = 1_000_000;
        assert!(check(&asked(), now).is_ok());
        let refusal = |a: AskedSet| {
            let error = check(&a, now).unwrap_err();
            (error.code.name(), error.message)
        };
        let (code, message) = refusal(AskedSet { reason: "  ".to_string(), ..asked() });
        assert_eq!(code, "reason_required");
        assert!(message.contains("`reason`"), "{message}");
        let (code, message) = refusal(AskedSet { tier: None, ..asked() });
        assert_eq!(code, "invalid_field");
        assert!(message.contains("`value`, `tier`"), "{message}");
        let (code, message) = refusal(AskedSet { expires_at: Some(now), ..asked() });
        assert_eq!(code, "invalid_field");
        assert!(message.contains("`expires_at`"), "{message}");
        let (_, message) = refusal(AskedSet { reason: "x".repeat(REASON_LIMIT + 1), ..asked() });
        assert!(message.contains("`reason` has 2001 characters"), "{message}");
        assert!(check(&AskedSet { expires_at: Some(now + 1), value: Some(3.0), tier: None, ..asked() }, now).is_ok());
    }
}
