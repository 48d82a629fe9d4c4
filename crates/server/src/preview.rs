//! Previewing a model version on a workspace's leads against the active version: the tier
//! distribution of every score under both, the value ranges, the leads that would change tier,
//! and what activating it would cause beside (automatic moves to MQL, webhook notifications by
//! kind). Read-only.

use std::collections::BTreeMap;

use leadscore_core::LeadState;
use leadscore_store::models::ModelVersion;
use leadscore_store::{Reads, StoreError};
use serde::Serialize;

use crate::lifecycle;
use crate::notify::{self, LeadChanges};
use crate::scoring::{self, Models};

/// Per score: tier label (or "" for none) -> count, and the value range and mean.
#[derive(Default)]
struct Distribution {
    tiers: BTreeMap<String, BTreeMap<String, u64>>,
    values: BTreeMap<String, (f64, f64, f64, u64)>,
}

impl Distribution {
    fn add(&mut self, score: &str, value: f64, tier: Option<&str>) {
        *self.tiers.entry(score.to_string()).or_default().entry(tier.unwrap_or("").to_string()).or_default() += 1;
        let entry = self.values.entry(score.to_string()).or_insert((f64::INFINITY, f64::NEG_INFINITY, 0.0, 0));
        entry.0 = entry.0.min(value);
        entry.1 = entry.1.max(value);
        entry.2 += value;
        entry.3 += 1;
    }

    fn summary(&self) -> BTreeMap<String, ScoreDistribution> {
        self.values
            .iter()
            .map(|(score, (min, max, sum, n))| {
                let tiers = self.tiers.get(score).cloned().unwrap_or_default();
                (score.clone(), ScoreDistribution { tiers, min: *min, max: *max, mean: sum / *n as f64 })
            })
            .collect()
    }
}

/// A score's values over the leads compared.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ScoreDistribution {
    /// Leads per tier label (`""` for leads in no tier).
    pub tiers: BTreeMap<String, u64>,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
}

/// A lead whose tier of a score would change.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TierChange {
    pub lead_id: i64,
    pub user_id: Option<String>,
    pub score: String,
    /// The tier under the active version (`null` for none, or a score it lacks).
    pub from: Option<String>,
    /// The tier under the version previewed (`null` for none).
    pub to: Option<String>,
    pub value_before: Option<f64>,
    pub value_after: f64,
}

/// What activating the version would cause beside the new scores.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Consequences {
    /// Leads it would move to `mql` automatically.
    pub moves_to_mql: u64,
    /// Webhook notifications it would send, by event type.
    pub webhook_notifications: BTreeMap<&'static str, u64>,
}

/// How a model version would score the workspace's leads, against the active version.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Preview {
    /// The version previewed.
    pub version: i64,
    /// The active version, or `null` when there is none.
    pub compared_with: Option<i64>,
    /// The leads compared.
    pub leads: usize,
    /// By score: its distribution under the active version (`{}` without one).
    pub active: BTreeMap<String, ScoreDistribution>,
    /// By score: its distribution under the version previewed.
    pub candidate: BTreeMap<String, ScoreDistribution>,
    /// Leads whose tier of some score would change.
    pub leads_changing_tier: u64,
    /// The first of those changes (at most `changes`).
    pub changes: Vec<TierChange>,
    pub consequences: Consequences,
}

#[allow(clippy::too_many_arguments)]
pub fn compare(
    reads: &dyn Reads,
    models: &Models,
    workspace_id: i64,
    candidate: &ModelVersion,
    active: Option<&ModelVersion>,
    limit: u32,
    max_changes: u32,
    now: i64,
) -> Result<Preview, StoreError> {
    let candidate_model = models.get(reads, candidate)?;
    let active_model = active.map(|a| models.get(reads, a)).transpose()?;
    let ids = reads.first_lead_ids(workspace_id, limit)?;
    let hooks = reads.webhooks(workspace_id)?;
    // What the activation's rescoring would do beside the new scores: automatic moves to MQL and
    // webhook notifications, counted against the scores stored now, as the rescoring compares.
    let mut stage_moves = 0u64;
    let mut notifications = BTreeMap::new();
    let (mut before, mut after) = (Distribution::default(), Distribution::default());
    let mut changes = Vec::new();
    let mut n_changed = 0u64;
    for id in &ids {
        let Some(lead) = reads.lead_by_id(workspace_id, *id)? else { continue };
        let (state, _): (LeadState, bool) = scoring::state_for(reads, &candidate_model, candidate.id, &lead)?;
        let (new_rows, qualified_by) =
            scoring::evaluate_with_qualifiers(&candidate_model, candidate.id, &lead, &state, now);
        for row in &new_rows {
            after.add(&row.score, row.value, row.tier.as_deref());
        }
        let score_changes = reads.stored_scores(lead.id)?.changes(&new_rows);
        let stage = lifecycle::mql_move(&candidate_model, &lead.stage, &new_rows, &qualified_by, &score_changes, now);
        stage_moves += u64::from(stage.is_some());
        let lead_changes = LeadChanges { scores: score_changes.iter().collect(), stages: stage.iter().collect() };
        notify::count(&hooks, &lead, &lead_changes, &mut notifications);
        let (Some(model), Some(version)) = (&active_model, active) else { continue };
        let (state, _) = scoring::state_for(reads, model, version.id, &lead)?;
        let old_rows = scoring::evaluate(model, version.id, &lead, &state, now);
        for row in &old_rows {
            before.add(&row.score, row.value, row.tier.as_deref());
        }
        let mut changed = false;
        for new in &new_rows {
            let old = old_rows.iter().find(|o| o.score == new.score);
            if old.is_none_or(|o| o.tier != new.tier) {
                changed = true;
                if changes.len() < max_changes as usize {
                    changes.push(TierChange {
                        lead_id: lead.id,
                        user_id: lead.user_id.clone(),
                        score: new.score.clone(),
                        from: old.and_then(|o| o.tier.clone()),
                        to: new.tier.clone(),
                        value_before: old.map(|o| o.value),
                        value_after: new.value,
                    });
                }
            }
        }
        n_changed += u64::from(changed);
    }
    Ok(Preview {
        version: candidate.version,
        compared_with: active.map(|a| a.version),
        leads: ids.len(),
        active: before.summary(),
        candidate: after.summary(),
        leads_changing_tier: n_changed,
        changes,
        consequences: Consequences { moves_to_mql: stage_moves, webhook_notifications: notifications },
    })
}
