//! The bridge between stored leads and the engine: compiled models by id, a lead's field values
//! and state, and evaluation into storable score rows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use leadscore_core::{Event, LeadScores, LeadState, Model, Timestamp, Value};
use leadscore_store::StoreError;
use leadscore_store::events::StoredEvent;
use leadscore_store::leads::LeadRow;
use leadscore_store::models::ModelVersion;
use leadscore_store::rusqlite::Connection;
use leadscore_store::scores::ScoreRow;

/// The event types identify, alias and group calls are stored under: kept for idempotency and
/// audit, never activity.
pub const IDENTIFY: &str = "identify";
pub const ALIAS: &str = "alias";
pub const GROUP: &str = "group";

/// Compiled models by their id; a model version never changes once stored, so entries never
/// go stale.
#[derive(Default)]
pub struct Models {
    compiled: Mutex<HashMap<i64, Arc<Model>>>,
}

impl Models {
    pub fn get(&self, version: &ModelVersion) -> Result<Arc<Model>, StoreError> {
        if let Some(model) = self.compiled.lock().ok().and_then(|m| m.get(&version.id).cloned()) {
            return Ok(model);
        }
        let compiled = leadscore_core::compile(&version.source).map_err(|e| {
            StoreError::Corrupt(format!("stored model {} does not compile: {}", version.id, e.render("model")))
        })?;
        let model = Arc::new(compiled.model);
        if let Ok(mut cache) = self.compiled.lock() {
            cache.insert(version.id, model.clone());
        }
        Ok(model)
    }
}

/// The value of each field the model reads, from the lead's attributes; `email`, `user_id` and
/// `created_at` fall back to the lead's own columns.
pub fn lead_values(model: &Model, lead: &LeadRow) -> Vec<Value> {
    model
        .lead_fields()
        .iter()
        .map(|field| match lead.attributes.get(field) {
            Some(value) => Value::from_json(value),
            None => match field.as_str() {
                "email" => lead.email.clone().map_or(Value::Missing, Value::text),
                "user_id" => lead.user_id.clone().map_or(Value::Missing, Value::text),
                "created_at" => Value::text(Timestamp(lead.created_at).to_string()),
                _ => Value::Missing,
            },
        })
        .collect()
}

pub fn event_properties(model: &Model, properties: &serde_json::Map<String, serde_json::Value>) -> Vec<Value> {
    model.event_properties().iter().map(|p| properties.get(p).map_or(Value::Missing, Value::from_json)).collect()
}

/// Applies one stored or incoming event to a state.
pub fn apply(
    model: &Model,
    state: &mut LeadState,
    event_type: &str,
    at: i64,
    properties: &serde_json::Map<String, serde_json::Value>,
) {
    let values = event_properties(model, properties);
    state.apply(model, &Event { event_type: model.event_type(event_type), at: Timestamp(at), properties: &values });
}

/// The lead's state for `model`: the stored one when it was built for this model, else rebuilt
/// from every stored event. The second value says whether it was rebuilt (then it already holds
/// every stored event).
pub fn state_for(
    connection: &Connection,
    model: &Model,
    model_id: i64,
    lead: &LeadRow,
) -> Result<(LeadState, bool), StoreError> {
    if lead.state_model_id == Some(model_id)
        && let Some(json) = &lead.state
        && let Ok(occurrences) = serde_json::from_str::<Vec<Vec<i64>>>(json)
        && let Some(state) = LeadState::from_occurrences(
            model,
            occurrences.into_iter().map(|t| t.into_iter().map(Timestamp).collect()).collect(),
        )
    {
        return Ok((state, false));
    }
    let mut state = LeadState::new(model);
    for StoredEvent { event_type, at, properties, .. } in leadscore_store::events::of_lead(connection, lead.id)? {
        if ![IDENTIFY, ALIAS, GROUP].contains(&event_type.as_str()) {
            apply(model, &mut state, &event_type, at, &properties);
        }
    }
    Ok((state, true))
}

pub fn state_json(state: &LeadState) -> String {
    let occurrences: Vec<Vec<i64>> = state.occurrences().iter().map(|t| t.iter().map(|x| x.0).collect()).collect();
    serde_json::to_string(&occurrences).unwrap_or_else(|_| "[]".to_string())
}

/// Evaluates every score of a lead at `now` into rows to store.
pub fn evaluate(model: &Model, model_id: i64, lead: &LeadRow, state: &LeadState, now: i64) -> Vec<ScoreRow> {
    evaluate_with_qualifiers(model, model_id, lead, state, now).0
}

/// Every score of a lead at `now` with its explanation, as JSON by score name.
pub fn explain(model: &Model, lead: &LeadRow, state: &LeadState, now: i64) -> Vec<(String, serde_json::Value)> {
    let scores: LeadScores<'_> = model.evaluate(&lead_values(model, lead), state, Timestamp(now));
    scores
        .scores
        .iter()
        .map(|score| (score.name.to_string(), serde_json::to_value(score).unwrap_or(serde_json::Value::Null)))
        .collect()
}

/// Same as [`evaluate`], with the qualifier that set each score's tier, if any.
pub fn evaluate_with_qualifiers(
    model: &Model,
    model_id: i64,
    lead: &LeadRow,
    state: &LeadState,
    now: i64,
) -> (Vec<ScoreRow>, Vec<Option<String>>) {
    let scores: LeadScores<'_> = model.evaluate(&lead_values(model, lead), state, Timestamp(now));
    let qualified_by = scores.scores.iter().map(|s| s.qualified_by.map(str::to_string)).collect();
    let rows = scores
        .scores
        .iter()
        .map(|score| ScoreRow {
            score: score.name.to_string(),
            value: score.value,
            tier: score.tier.map(str::to_string),
            model_id,
            evaluated_at: now,
        })
        .collect();
    (rows, qualified_by)
}
