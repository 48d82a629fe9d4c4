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

/// Compiled models by their id, and the predictive models they use by theirs. A stored version
/// never changes, but a cache can be filled inside a transaction that then rolls back, and SQLite
/// gives the freed id to the next row, of any workspace: so a hit counts only if the entry was
/// made from the same stored row (workspace, text and pins; or workspace, name, version and
/// creation time).
#[derive(Default)]
pub struct Models {
    compiled: Mutex<HashMap<i64, (ModelVersion, Arc<Model>)>>,
    predictors: Mutex<HashMap<i64, (PredictiveIdentity, Arc<PredictiveModel>)>>,
}

/// What tells two stored predictive model versions apart when they had the same id.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PredictiveIdentity {
    workspace_id: i64,
    name: String,
    version: i64,
    created_at: i64,
}

impl PredictiveIdentity {
    fn of(stored: &PredictiveVersion) -> PredictiveIdentity {
        PredictiveIdentity {
            workspace_id: stored.workspace_id,
            name: stored.name.clone(),
            version: stored.version,
            created_at: stored.created_at,
        }
    }
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
        let hit = self.compiled.lock().ok().and_then(|cache| {
            let (made_from, model) = cache.get(&version.id)?;
            let same = made_from.workspace_id == version.workspace_id
                && made_from.source == version.source
                && made_from.predictors == version.predictors;
            same.then(|| model.clone())
        });
        if let Some(model) = hit {
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
            cache.insert(version.id, (version.clone(), model.clone()));
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

    /// A stored predictive model version of the workspace, checked once and kept. The row is read
    /// each time (this runs only when a model is compiled) to tell whether the kept one is it.
    pub fn predictor(
        &self,
        connection: &Connection,
        workspace_id: i64,
        id: i64,
    ) -> Result<Arc<PredictiveModel>, StoreError> {
        let stored = leadscore_store::predictive::by_id(connection, workspace_id, id)?
            .ok_or_else(|| StoreError::NotFound(format!("no predictive model {id} in this workspace")))?;
        Ok(self.checked(stored)?.1)
    }

    /// A stored predictive model version checked (or found in the cache), with its id.
    fn checked(&self, stored: PredictiveVersion) -> Result<(i64, Arc<PredictiveModel>), StoreError> {
        let identity = PredictiveIdentity::of(&stored);
        let hit = self.predictors.lock().ok().and_then(|cache| {
            let (made_from, model) = cache.get(&stored.id)?;
            (*made_from == identity).then(|| model.clone())
        });
        if let Some(model) = hit {
            return Ok((stored.id, model));
        }
        let label = format!("predictive model `{}` v{}", stored.name, stored.version);
        let model = SavedModel::from_json(stored.body.as_bytes(), &label)
            .and_then(|saved| PredictiveModel::new(saved, &label))
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok((stored.id, self.remember(&stored, model)))
    }

    /// Keeps a predictive model just stored, so that it is not parsed and checked again.
    pub fn remember(&self, stored: &PredictiveVersion, model: PredictiveModel) -> Arc<PredictiveModel> {
        let model = Arc::new(model);
        if let Ok(mut cache) = self.predictors.lock() {
            cache.insert(stored.id, (PredictiveIdentity::of(stored), model.clone()));
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
    for StoredEvent { event_type, at, properties, .. } in leadscore_store::events::of_lead(connection, lead)? {
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

#[cfg(test)]
mod tests {
    use super::*;
    use leadscore_store::{Store, models, workspaces};

    /// A version compiled inside a transaction that rolls back leaves its id free for the next
    /// version, of another workspace: the cache must not hand the first model out for it.
    #[test]
    fn a_cached_model_of_a_rolled_back_version_is_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let cache = Arc::new(Models::default());
        let (a, b) = store
            .write_blocking(|c| Ok((workspaces::find_or_create(c, "a")?.id, workspaces::find_or_create(c, "b")?.id)))
            .unwrap();
        let first = cache.clone();
        let rolled_back: Result<(), StoreError> = store.write_blocking(move |c| {
            let version = models::add(c, a, "[scores.alpha]\nrules = []\n", &BTreeMap::new())?;
            first.get(c, &version)?;
            Err(StoreError::Conflict("changed my mind".to_string()))
        });
        assert!(rolled_back.is_err());
        let second = cache.clone();
        let names = store
            .write_blocking(move |c| {
                let version = models::add(c, b, "[scores.beta]\nrules = []\n", &BTreeMap::new())?;
                Ok(second.get(c, &version)?.score_names().map(str::to_string).collect::<Vec<_>>())
            })
            .unwrap();
        assert_eq!(names, ["beta"]);
    }
}
