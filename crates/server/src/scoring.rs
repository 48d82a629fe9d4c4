//! The bridge between stored leads and the engine: compiled models by id (with the predictive
//! models they are pinned to), a lead's field values and state, and evaluation into storable
//! score rows.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use leadscore_core::{Compiled, Event, LeadScores, LeadState, Model, ModelError, Predictor, Timestamp, Value};
use leadscore_predict::predictive::{PredictiveModel, SavedModel};
use leadscore_store::StoreError;
use leadscore_store::events::StoredEvent;
use leadscore_store::leads::LeadRow;
use leadscore_store::models::ModelVersion;
use leadscore_store::predictive::PredictiveVersion;
use leadscore_store::rusqlite::Connection;
use leadscore_store::scores::ScoreRow;

/// The event types identify, alias and group calls are stored under: kept for idempotency and
/// audit, never activity.
pub const IDENTIFY: &str = "identify";
pub const ALIAS: &str = "alias";
pub const GROUP: &str = "group";

/// Compiled models by their id, and the predictive models they use by theirs; a model version
/// never changes once stored, and neither does a predictive model version, so entries never go
/// stale.
#[derive(Default)]
pub struct Models {
    compiled: Mutex<HashMap<i64, Arc<Model>>>,
    /// By id, with the workspace that owns it: a hit is checked against the caller's workspace.
    predictors: Mutex<HashMap<i64, (i64, Arc<PredictiveModel>)>>,
}

/// What compiling a model's text for a new version made: the compiler's result and, for each
/// predictive reference it resolved, the id of the stored predictive model to pin.
pub struct NewVersion {
    pub compiled: Result<Compiled, ModelError>,
    pub predictors: BTreeMap<String, i64>,
}

impl Models {
    /// The stored version compiled with the predictive models it was pinned to when stored.
    pub fn get(&self, connection: &Connection, version: &ModelVersion) -> Result<Arc<Model>, StoreError> {
        if let Some(model) = self.compiled.lock().ok().and_then(|m| m.get(&version.id).cloned()) {
            return Ok(model);
        }
        let fault = RefCell::new(None);
        let loader = |reference: &str| -> Result<Arc<dyn Predictor>, String> {
            let Some(&id) = version.predictors.get(reference) else {
                return Err(format!("`{reference}` was not pinned to a predictive model when this version was stored"));
            };
            match self.predictor(connection, version.workspace_id, id) {
                Ok(model) => Ok(model),
                Err(error) => {
                    let message = error.to_string();
                    *fault.borrow_mut() = Some(error);
                    Err(message)
                }
            }
        };
        let compiled = leadscore_core::compile_with(&version.source, &loader);
        if let Some(error) = fault.into_inner() {
            return Err(error);
        }
        let compiled = compiled.map_err(|e| {
            StoreError::Corrupt(format!("stored model {} does not compile: {}", version.id, e.render("model")))
        })?;
        let model = Arc::new(compiled.model);
        if let Ok(mut cache) = self.compiled.lock() {
            cache.insert(version.id, model.clone());
        }
        Ok(model)
    }

    /// Compiles a model's text for a new version of the workspace's model: each predictive
    /// reference resolves to the latest version of the workspace's predictive model of that name
    /// (an unknown name is a diagnostic at the reference). Store the version with the returned pins.
    pub fn compile_new(
        &self,
        connection: &Connection,
        workspace_id: i64,
        source: &str,
    ) -> Result<NewVersion, StoreError> {
        let pins = RefCell::new(BTreeMap::new());
        let fault = RefCell::new(None);
        let loader = |reference: &str| -> Result<Arc<dyn Predictor>, String> {
            if !valid_name(reference) {
                return Err(format!(
                    "`{reference}` is not the name of a predictive model: names are letters, digits, `_`, `-` and `.`"
                ));
            }
            let found = leadscore_store::predictive::latest(connection, workspace_id, reference)
                .and_then(|latest| latest.map(|stored| self.checked(stored)).transpose());
            match found {
                Ok(Some((id, model))) => {
                    pins.borrow_mut().insert(reference.to_string(), id);
                    Ok(model)
                }
                Ok(None) => Err(format!(
                    "no predictive model `{reference}` in this workspace: upload one with PUT /api/predictive-models/{reference}"
                )),
                Err(error) => {
                    let message = error.to_string();
                    *fault.borrow_mut() = Some(error);
                    Err(message)
                }
            }
        };
        let compiled = leadscore_core::compile_with(source, &loader);
        if let Some(error) = fault.into_inner() {
            return Err(error);
        }
        Ok(NewVersion { compiled, predictors: pins.into_inner() })
    }

    /// A stored predictive model version of the workspace, checked once and kept.
    pub fn predictor(
        &self,
        connection: &Connection,
        workspace_id: i64,
        id: i64,
    ) -> Result<Arc<PredictiveModel>, StoreError> {
        if let Some(model) = self.cached(workspace_id, id) {
            return Ok(model);
        }
        let stored = leadscore_store::predictive::by_id(connection, workspace_id, id)?
            .ok_or_else(|| StoreError::NotFound(format!("no predictive model {id} in this workspace")))?;
        Ok(self.checked(stored)?.1)
    }

    /// A stored predictive model version checked (or found in the cache), with its id.
    fn checked(&self, stored: PredictiveVersion) -> Result<(i64, Arc<PredictiveModel>), StoreError> {
        if let Some(model) = self.cached(stored.workspace_id, stored.id) {
            return Ok((stored.id, model));
        }
        let label = format!("predictive model `{}` v{}", stored.name, stored.version);
        let model = SavedModel::from_json(stored.body.as_bytes(), &label)
            .and_then(|saved| PredictiveModel::new(saved, &label))
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok((stored.id, self.remember(stored.workspace_id, stored.id, model)))
    }

    fn cached(&self, workspace_id: i64, id: i64) -> Option<Arc<PredictiveModel>> {
        let cache = self.predictors.lock().ok()?;
        cache.get(&id).filter(|(owner, _)| *owner == workspace_id).map(|(_, model)| model.clone())
    }

    /// Keeps a predictive model just stored under `id`, so that it is not read back and checked again.
    pub fn remember(&self, workspace_id: i64, id: i64, model: PredictiveModel) -> Arc<PredictiveModel> {
        let model = Arc::new(model);
        if let Ok(mut cache) = self.predictors.lock() {
            cache.insert(id, (workspace_id, model.clone()));
        }
        model
    }
}

/// Whether `name` can name a predictive model: 1 to 100 letters, digits, `_`, `-` or `.`, so that
/// a file name such as `conversion.json` works too.
pub fn valid_name(name: &str) -> bool {
    (1..=100).contains(&name.len()) && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
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
