//! Previewing a model version on a workspace's leads against the active version: the tier
//! distribution of every score under both, the value ranges, the leads that would change tier,
//! and what activating it would cause beside (automatic moves to MQL, webhook notifications by
//! kind). Read-only.
//!
//! A comparison goes through the leads in id order, a batch at a time ([`Comparison::next_batch`]:
//! the batch's rows with their stored scores, then their events, in a fixed number of queries),
//! so that it can run in one read snapshot (the API's [`compare`]) or in many, one per batch,
//! letting ingestion and other reads go on in between (the console's background previews,
//! `model_versions::start_preview`).

use std::collections::BTreeMap;
use std::sync::Arc;

use leadscore_core::Model;
use leadscore_store::events::StoredEvent;
use leadscore_store::leads::LeadRow;
use leadscore_store::models::ModelVersion;
use leadscore_store::{Reads, StoreError};
use serde::Serialize;

use crate::lifecycle;
use crate::notify::{self, LeadChanges};
use crate::scoring::{self, Models};

/// Per score: tier label (or "" for none) -> count, and the value range and mean.
#[derive(Default, Clone)]
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
#[derive(Clone, Serialize, utoipa::ToSchema)]
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

/// Leads a comparison reads per batch: enough that the queries' cost is spread over many leads,
/// few enough that a batch's events fit in memory and a snapshot is short.
pub const BATCH_LEADS: u32 = 1_000;

/// The two versions compared, compiled.
pub struct Versions {
    pub candidate: ModelVersion,
    candidate_model: Arc<Model>,
    /// The active version, if any, and its model.
    pub active: Option<(ModelVersion, Arc<Model>)>,
}

impl Versions {
    pub fn load(
        reads: &dyn Reads,
        models: &Models,
        candidate: ModelVersion,
        active: Option<ModelVersion>,
    ) -> Result<Versions, StoreError> {
        let candidate_model = models.get(reads, &candidate)?;
        let active = match active {
            Some(version) => {
                let model = models.get(reads, &version)?;
                Some((version, model))
            }
            None => None,
        };
        Ok(Versions { candidate, candidate_model, active })
    }
}

/// A comparison under way: the figures of the leads compared so far, and where it stands.
#[derive(Clone)]
pub struct Comparison {
    before: Distribution,
    after: Distribution,
    changes: Vec<TierChange>,
    max_changes: usize,
    leads_changing_tier: u64,
    moves_to_mql: u64,
    notifications: BTreeMap<&'static str, u64>,
    /// The leads compared, and the id of the last one.
    pub leads: u64,
    last_lead_id: i64,
}

impl Comparison {
    /// A comparison that will list at most `max_changes` tier changes.
    pub fn new(max_changes: u32) -> Comparison {
        Comparison {
            before: Distribution::default(),
            after: Distribution::default(),
            changes: Vec::new(),
            max_changes: max_changes as usize,
            leads_changing_tier: 0,
            moves_to_mql: 0,
            notifications: BTreeMap::new(),
            leads: 0,
            last_lead_id: 0,
        }
    }

    /// Compares the workspace's next `limit` leads (in id order, after the last one compared)
    /// under both versions at `now`; returns how many there were (fewer than `limit`: the last
    /// batch).
    pub fn next_batch(
        &mut self,
        reads: &dyn Reads,
        versions: &Versions,
        workspace_id: i64,
        limit: u32,
        now: i64,
    ) -> Result<usize, StoreError> {
        let batch = reads.leads_after(workspace_id, self.last_lead_id, limit)?;
        let Some((last, _)) = batch.last() else { return Ok(0) };
        self.last_lead_id = last.id;
        let candidate_id = versions.candidate.id;
        let active_id = versions.active.as_ref().map(|(version, _)| version.id);
        // Events are read, in one query, only for the leads whose stored state was built for
        // neither version (usually every lead with events: the stored state is the active
        // version's, and the candidate's is rebuilt).
        let needs_events: Vec<&LeadRow> = batch
            .iter()
            .map(|(lead, _)| lead)
            .filter(|lead| {
                lead.last_event_id.is_some()
                    && (lead.state_model_id != Some(candidate_id) || lead.state_model_id != active_id)
            })
            .collect();
        let fetched = reads.events_of_leads(&needs_events)?;
        let mut fetched = needs_events.iter().map(|lead| lead.id).zip(&fetched).peekable();
        let hooks = reads.webhooks(workspace_id)?;
        for (lead, stored) in &batch {
            let lead_events: &[StoredEvent] = match fetched.next_if(|(id, _)| *id == lead.id) {
                Some((_, events)) => events,
                None => &[],
            };
            let state = |model: &Model, id: i64| {
                scoring::stored_state(model, id, lead).unwrap_or_else(|| scoring::rebuilt_state(model, lead_events))
            };
            let candidate_state = state(&versions.candidate_model, candidate_id);
            let (new_rows, qualified_by) =
                scoring::evaluate_with_qualifiers(&versions.candidate_model, candidate_id, lead, &candidate_state, now);
            for row in &new_rows {
                self.after.add(&row.score, row.value, row.tier.as_deref());
            }
            // What the activation's rescoring would do beside the new scores: automatic moves to
            // MQL and webhook notifications, counted against the scores stored now, as the
            // rescoring compares.
            let score_changes = stored.changes(&new_rows);
            let stage = lifecycle::mql_move(
                &versions.candidate_model,
                &lead.stage,
                &new_rows,
                &qualified_by,
                &score_changes,
                now,
            );
            self.moves_to_mql += u64::from(stage.is_some());
            let lead_changes = LeadChanges { scores: score_changes.iter().collect(), stages: stage.iter().collect() };
            notify::count(&hooks, lead, &lead_changes, &mut self.notifications);
            self.leads += 1;
            let Some((version, model)) = &versions.active else { continue };
            let old_rows = scoring::evaluate(model, version.id, lead, &state(model, version.id), now);
            for row in &old_rows {
                self.before.add(&row.score, row.value, row.tier.as_deref());
            }
            let mut changed = false;
            for new in &new_rows {
                let old = old_rows.iter().find(|o| o.score == new.score);
                if old.is_none_or(|o| o.tier != new.tier) {
                    changed = true;
                    if self.changes.len() < self.max_changes {
                        self.changes.push(TierChange {
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
            self.leads_changing_tier += u64::from(changed);
        }
        Ok(batch.len())
    }

    /// The report of the leads compared so far.
    pub fn report(&self, versions: &Versions) -> Preview {
        Preview {
            version: versions.candidate.version,
            compared_with: versions.active.as_ref().map(|(version, _)| version.version),
            leads: self.leads as usize,
            active: self.before.summary(),
            candidate: self.after.summary(),
            leads_changing_tier: self.leads_changing_tier,
            changes: self.changes.clone(),
            consequences: Consequences {
                moves_to_mql: self.moves_to_mql,
                webhook_notifications: self.notifications.clone(),
            },
        }
    }
}

/// The workspace's first `limit` leads compared under `candidate` and `active`, in the one
/// snapshot `reads` (the API's synchronous preview).
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
    let versions = Versions::load(reads, models, candidate.clone(), active.cloned())?;
    let mut comparison = Comparison::new(max_changes);
    let mut left = limit;
    while left > 0 {
        let asked = left.min(BATCH_LEADS);
        let read = comparison.next_batch(reads, &versions, workspace_id, asked, now)?;
        if read < asked as usize {
            break;
        }
        left -= asked;
    }
    Ok(comparison.report(&versions))
}
