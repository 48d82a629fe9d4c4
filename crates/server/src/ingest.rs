//! Ingestion: turning messages ([`crate::messages`]) into leads and events, resolving identities
//! (anonymous ids merged into a user's lead, aliases), and rescoring the leads they touch, all in
//! one writer transaction so that the answer carries durable, current scores.
//!
//! A batch is answered per item: items that are invalid or duplicates are listed with the
//! reason and change nothing; all accepted items of a request commit together or not at all.

use std::collections::BTreeMap;

use leadscore_store::events::{Inserted, NewEvent};
use leadscore_store::leads::LeadRow;
use leadscore_store::merge::merge_attributes;
use leadscore_store::scores::{Change, History};
use leadscore_store::stages::StageChange;
use leadscore_store::{StoreError, Transaction};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::lead_cache::{LeadCache, Leads};
use crate::messages::{Kind, Message};
use crate::saving::{self, SaveContext};
use crate::scoring::{self, Models};

/// What happened to one item of a request, by `status`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Stored, on the lead of this id.
    Accepted { lead_id: i64 },
    /// The message id was already stored; nothing changed.
    Duplicate,
    /// Invalid: nothing changed. The reason starts with the item's place (`batch[2]: ...`).
    Refused { reason: String },
}

/// A lead's scores after the request.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ScoredLead {
    /// The lead's own numeric id.
    pub id: i64,
    /// Absent for an anonymous lead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// By score name, one per score of the active model (`{}` while the workspace has none).
    pub scores: BTreeMap<String, ScoreSummary>,
    /// The stage the request moved the lead to, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::lifecycle::Stage>)]
    pub stage: Option<String>,
}

/// A score's value and tier.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ScoreSummary {
    pub value: f64,
    /// `null` when the value falls in no tier.
    pub tier: Option<String>,
}

/// The result of an ingestion request.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Ingested {
    pub items: Vec<Outcome>,
    pub leads: Vec<ScoredLead>,
    /// Score changes (for notifications).
    #[serde(skip)]
    pub changes: Vec<(i64, Change)>,
    #[serde(skip)]
    pub stage_changes: Vec<(i64, StageChange)>,
    /// Webhook notifications written to the outbox.
    #[serde(skip)]
    pub queued: usize,
    /// Messages (not refused) whose lead ingestion remembered, and those whose lead it had to
    /// find in the database (see [`crate::lead_cache`]).
    #[serde(skip)]
    pub remembered: usize,
    #[serde(skip)]
    pub looked_up: usize,
}

/// The lead of an alias call: the lead known by `previous_id` (an anonymous id or an earlier user
/// id) is merged into the user's lead, or takes the user id when the user has none yet.
fn resolve_alias(
    transaction: &dyn Transaction,
    workspace_id: i64,
    user_id: &str,
    previous_id: &str,
    now: i64,
    remembered: &Leads,
) -> Result<(LeadRow, Option<i64>), StoreError> {
    let previous = match transaction.lead_by_user_id(workspace_id, previous_id)? {
        Some(lead) => Some(lead),
        None => transaction.lead_by_anonymous_id(workspace_id, previous_id)?,
    };
    let previous = previous.map(|lead| up_to_date(remembered, lead));
    let target = transaction.lead_by_user_id(workspace_id, user_id)?.map(|lead| up_to_date(remembered, lead));
    let resolved = match (previous, target) {
        (Some(previous), Some(mut target)) if previous.id != target.id => {
            transaction.merge_leads(&previous, &mut target)?;
            (target, Some(previous.id))
        }
        (_, Some(target)) => (target, None),
        (Some(previous), None) => {
            transaction.set_user_id(previous.id, user_id)?;
            (LeadRow { user_id: Some(user_id.to_string()), ..previous }, None)
        }
        (None, None) => (transaction.create_lead(workspace_id, Some(user_id), now)?, None),
    };
    // Later calls with the earlier id (as an anonymous id) find this lead.
    transaction.link_anonymous_id(workspace_id, previous_id, resolved.0.id)?;
    Ok(resolved)
}

/// Finds or creates the lead of a message. When an identify links an anonymous lead to a known
/// user, the anonymous lead is merged into the known one; its id is returned too.
fn resolve_lead(
    transaction: &dyn Transaction,
    workspace_id: i64,
    message: &Message,
    now: i64,
    remembered: &Leads,
) -> Result<(LeadRow, Option<i64>), StoreError> {
    let by_anonymous = match &message.anonymous_id {
        Some(anonymous_id) => transaction.lead_by_anonymous_id(workspace_id, anonymous_id)?,
        None => None,
    };
    let by_anonymous = by_anonymous.map(|lead| up_to_date(remembered, lead));
    let mut merged_from = None;
    let lead = match &message.user_id {
        Some(user_id) => match (
            transaction.lead_by_user_id(workspace_id, user_id)?.map(|lead| up_to_date(remembered, lead)),
            by_anonymous,
        ) {
            (Some(mut known), Some(anonymous)) if anonymous.id != known.id && anonymous.user_id.is_none() => {
                transaction.merge_leads(&anonymous, &mut known)?;
                merged_from = Some(anonymous.id);
                known
            }
            (Some(known), _) => known,
            (None, Some(anonymous)) if anonymous.user_id.is_none() => {
                transaction.set_user_id(anonymous.id, user_id)?;
                LeadRow { user_id: Some(user_id.clone()), ..anonymous }
            }
            (None, _) => transaction.create_lead(workspace_id, Some(user_id), now)?,
        },
        None => match by_anonymous {
            Some(lead) => lead,
            None => transaction.create_lead(workspace_id, None, now)?,
        },
    };
    if let Some(anonymous_id) = &message.anonymous_id {
        transaction.link_anonymous_id(workspace_id, anonymous_id, lead.id)?;
    }
    Ok((lead, merged_from))
}

/// A lead as read from the database, with what the current request changed in it and saves only
/// at its end (its newest event), which the remembered row has.
fn up_to_date(remembered: &Leads, mut lead: LeadRow) -> LeadRow {
    if let Some(entry) = remembered.get(lead.id) {
        lead.last_event_id = entry.row.last_event_id;
    }
    lead
}

/// A lead a request touched: the events it added (to apply to the stored state) and the time of
/// its latest event, saved with the lead once at the end rather than per event. The lead's row
/// is the remembered one (see [`crate::lead_cache`]).
struct Touched {
    id: i64,
    events: Vec<(String, i64, Map<String, Value>)>,
    last_event_at: Option<i64>,
}

fn forgotten(id: i64) -> StoreError {
    StoreError::Corrupt(format!("lead {id} was not remembered during its ingestion"))
}

/// Stores the messages and rescores the leads they touch. Runs in one write transaction, as an
/// ingestion (`Storage::ingest`): it keeps the remembered leads equal to what it stores.
pub fn ingest(
    transaction: &dyn Transaction,
    models: &Models,
    lead_cache: &LeadCache,
    workspace_id: i64,
    messages: Vec<Result<Message, String>>,
    received_at: i64,
) -> Result<Ingested, StoreError> {
    // What can fail for another reason than storage (a stored model that no longer compiles)
    // fails here, before anything is written: this job has no savepoint of its own.
    let model_version = transaction.active_model(workspace_id)?;
    let model = model_version.as_ref().map(|v| models.get(transaction, v)).transpose()?;
    let hooks = transaction.webhooks(workspace_id)?;
    let mut remembered = lead_cache.lock();
    let mut ingested = Ingested::default();
    // Touched leads in first-touch order with the events this request added to each, and the
    // leads whose state must be rebuilt from all their events (after a merge).
    let mut touched: Vec<Touched> = Vec::new();
    let mut rebuild: Vec<i64> = Vec::new();
    for message in messages {
        let message = match message.and_then(|m| m.check_limits().map(|()| m)) {
            Ok(message) => message,
            Err(reason) => {
                ingested.items.push(Outcome::Refused { reason });
                continue;
            }
        };
        let known = match message.kind {
            Kind::Alias { .. } => None,
            _ => remembered.lead_of(workspace_id, message.user_id.as_deref(), message.anonymous_id.as_deref()),
        };
        let (lead_id, merged_from) = match known {
            Some(id) => {
                ingested.remembered += 1;
                (id, None)
            }
            None => {
                ingested.looked_up += 1;
                // Finding the lead may create, link or merge leads: not for a duplicate.
                if transaction.is_stored(workspace_id, &message.message_id)? {
                    ingested.items.push(Outcome::Duplicate);
                    continue;
                }
                let (lead, merged_from) = match (&message.kind, &message.user_id) {
                    (Kind::Alias { previous_id }, Some(user_id)) => {
                        let resolved =
                            resolve_alias(transaction, workspace_id, user_id, previous_id, received_at, &remembered)?;
                        remembered.link_anonymous_id(workspace_id, previous_id, resolved.0.id);
                        resolved
                    }
                    _ => resolve_lead(transaction, workspace_id, &message, received_at, &remembered)?,
                };
                let id = lead.id;
                // resolve_lead links the message's anonymous id to the lead (resolve_alias links
                // the earlier id, above).
                if let (false, Some(anonymous_id)) = (matches!(message.kind, Kind::Alias { .. }), &message.anonymous_id)
                {
                    remembered.link_anonymous_id(workspace_id, anonymous_id, id);
                }
                remembered.remember(lead);
                if let Some(merged) = merged_from {
                    remembered.forget(merged);
                    // Its state is rebuilt from all its events, the merged lead's too.
                    if let Some(entry) = remembered.get_mut(id) {
                        entry.state = None;
                    }
                }
                (id, merged_from)
            }
        };
        let entry = remembered.get_mut(lead_id).ok_or_else(|| forgotten(lead_id))?;
        let lead = &mut entry.row;
        let mut carried = None;
        if let Some(merged) = merged_from {
            // The merged lead's events now belong to `lead`, whose state is rebuilt from them all.
            if let Some(position) = touched.iter().position(|t| t.id == merged) {
                carried = touched.remove(position).last_event_at;
            }
            rebuild.push(lead.id);
        }
        let (event_type, stored_properties) = match &message.kind {
            Kind::Identify => (scoring::IDENTIFY, &message.traits),
            Kind::Alias { .. } => (scoring::ALIAS, &message.traits),
            Kind::Group { .. } => (scoring::GROUP, &message.traits),
            Kind::Track(name) => (name.as_str(), &message.properties),
        };
        let stored = NewEvent {
            message_id: &message.message_id,
            event_type,
            at: message.at,
            received_at,
            properties: stored_properties,
        };
        if transaction.insert_event(lead, &stored)? == Inserted::Duplicate {
            ingested.items.push(Outcome::Duplicate);
            continue;
        }
        let mut last_event_at = carried;
        let mut new_event = None;
        lead.updated_at = received_at;
        match &message.kind {
            Kind::Identify => {
                merge_attributes(&mut lead.attributes, &message.traits, true);
                if let Some(Value::String(email)) = message.traits.get("email") {
                    lead.email = Some(email.clone());
                }
            }
            Kind::Track(_) => last_event_at = last_event_at.max(Some(message.at)),
            Kind::Group { group_id } => {
                lead.attributes.insert("company_id".to_string(), Value::String(group_id.clone()));
                for (key, value) in &message.traits {
                    lead.attributes.insert(format!("company_{key}"), value.clone());
                }
            }
            Kind::Alias { .. } => {}
        }
        // Attribute changes (and merges) are saved at once: a later message of this request may
        // merge leads and reads them back. An event changes nothing saved until the end.
        if !matches!(message.kind, Kind::Track(_)) || merged_from.is_some() {
            transaction.save_lead(lead)?;
        }
        ingested.items.push(Outcome::Accepted { lead_id });
        if let Kind::Track(name) = message.kind {
            new_event = Some((name, message.at, message.properties));
        }
        match touched.iter_mut().find(|t| t.id == lead_id) {
            Some(entry) => {
                entry.last_event_at = entry.last_event_at.max(last_event_at);
                entry.events.extend(new_event);
            }
            None => touched.push(Touched { id: lead_id, events: Vec::from_iter(new_event), last_event_at }),
        }
    }
    for Touched { id, events: new_events, last_event_at } in touched {
        let entry = remembered.get_mut(id).ok_or_else(|| forgotten(id))?;
        let lead = &mut entry.row;
        lead.last_event_at = lead.last_event_at.max(last_event_at);
        lead.updated_at = received_at;
        let mut summary =
            ScoredLead { id: lead.id, user_id: lead.user_id.clone(), scores: BTreeMap::new(), stage: None };
        if let (Some(model), Some(version)) = (&model, &model_version) {
            if rebuild.contains(&lead.id) {
                lead.state_model_id = None;
                entry.state = None;
            }
            let state = match entry.state.take() {
                Some((model_id, mut state)) if model_id == version.id => {
                    for (event_type, at, properties) in &new_events {
                        scoring::apply(model, &mut state, event_type, *at, properties);
                    }
                    state
                }
                _ => {
                    let (mut state, rebuilt) = scoring::state_for(transaction, model, version.id, lead)?;
                    if !rebuilt {
                        for (event_type, at, properties) in &new_events {
                            scoring::apply(model, &mut state, event_type, *at, properties);
                        }
                    }
                    state
                }
            };
            let context = SaveContext {
                transaction,
                model,
                model_id: version.id,
                now: received_at,
                cause: "event",
                history: History::EveryChange,
                webhooks: &hooks,
            };
            let saved = saving::save_scores(&context, lead, &state, &mut entry.scores)?;
            entry.state = Some((version.id, state));
            for row in &saved.rows {
                summary.scores.insert(row.score.clone(), ScoreSummary { value: row.value, tier: row.tier.clone() });
            }
            ingested.queued += saved.queued;
            ingested.changes.extend(saved.changes.into_iter().map(|c| (lead.id, c)));
            if let Some(change) = saved.stage {
                summary.stage = Some(change.stage.clone());
                ingested.stage_changes.push((lead.id, change));
            }
        } else {
            transaction.save_lead(lead)?;
        }
        ingested.leads.push(summary);
    }
    Ok(ingested)
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadscore_store::{Store, models, workspaces};

    /// Ingestion runs without a savepoint of its own, so what can fail for another reason than
    /// storage must fail before it writes anything: then the jobs it shares a transaction with
    /// are not rolled back with it.
    #[test]
    fn a_workspace_whose_model_no_longer_compiles_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_ingesting(dir.path(), leadscore_store::message_ids::DEFAULT_RECENT).unwrap();
        let workspace_id = store
            .write_blocking(|c| {
                let workspace = workspaces::find_or_create(c, "w", leadscore_store::now_ms())?;
                let version = models::add(
                    c,
                    workspace.id,
                    "[scores.activity]\nrules = []\n",
                    &BTreeMap::new(),
                    leadscore_store::now_ms(),
                )?;
                models::activate(c, workspace.id, version.id, models::Origin::Api, leadscore_store::now_ms())?;
                // As if stored by a version of leadscore that accepted what this one refuses: the
                // test corrupts the row on purpose, which no store function does.
                c.execute("UPDATE models SET source = 'not a model' WHERE id = ?1", [version.id])?;
                Ok(workspace.id)
            })
            .unwrap();
        let (models, leads) = (Models::default(), LeadCache::new(store.generation()));
        let message = Message {
            kind: Kind::Track("visit".to_string()),
            user_id: Some("u".to_string()),
            anonymous_id: None,
            message_id: "m1".to_string(),
            at: 0,
            traits: Map::new(),
            properties: Map::new(),
        };
        let (result, changes) = store
            .write_blocking(move |c| {
                let before = c.total_changes();
                let result = ingest(c, &models, &leads, workspace_id, vec![Ok(message)], 0);
                Ok((result.map(|_| ()).map_err(|e| e.to_string()), c.total_changes() - before))
            })
            .unwrap();
        assert!(result.as_ref().is_err_and(|e| e.contains("does not compile")), "{result:?}");
        assert_eq!(changes, 0);
    }
}
