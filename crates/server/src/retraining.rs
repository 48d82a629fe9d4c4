//! Retraining a predictive model on the workspace's outcomes, as the API and the console ask for
//! it: the outcomes read, the training run off the async runtime (`retrain.rs`), the new version
//! stored and, when the active scoring model uses the name and it is asked, a scoring model
//! version pinned to it activated (and the workspace rescored).

use leadscore_predict::predictive::Algorithm;
use leadscore_store::models::ModelVersion;
use leadscore_store::predictive::{Origin, PredictiveVersion};
use leadscore_store::storage::NewPredictiveModel;
use leadscore_store::{StoreError, now_ms};
use serde::Deserialize;

use crate::activation;
use crate::error::{ApiError, ErrorCode};
use crate::retrain::{self, RetrainError};
use crate::state::AppState;

/// The seed of a retrain's holdout split when the request gives none, as `leadscore train`.
pub const DEFAULT_SEED: u64 = 7;

/// What a retrain is asked to do.
#[derive(Debug, Clone)]
pub struct Asked {
    pub algorithm: Algorithm,
    /// The fields to learn from; `None`: those of the latest version, else every attribute of the
    /// labelled leads.
    pub fields: Option<Vec<String>>,
    /// Whether to activate a scoring model version pinned to the new one, when the active
    /// scoring model uses the name.
    pub activate: bool,
    pub seed: u64,
}

/// A retrain done.
pub struct Retrained {
    pub stored: PredictiveVersion,
    pub algorithm: &'static str,
    pub fields: Vec<String>,
    pub customers: usize,
    pub lost: usize,
    pub holdout_auc: Option<f64>,
    /// The scoring model version stored and activated with it, if any.
    pub model_version: Option<i64>,
    /// Why no scoring model version was activated when one was asked for.
    pub warnings: Vec<String>,
}

/// Retrains the workspace's predictive model `name` (a checked name) on its outcomes.
pub async fn retrain(state: &AppState, workspace_id: i64, name: String, asked: Asked) -> Result<Retrained, ApiError> {
    let read_name = name.clone();
    let (outcomes, latest_fields, in_active) = state
        .storage
        .read(move |reads| {
            let outcomes = reads.labelled_leads(workspace_id)?;
            let latest_fields = reads.latest_predictive_model(workspace_id, &read_name)?.map(|v| fields_of(&v));
            let in_active = reads.active_model(workspace_id)?.is_some_and(|m| m.predictors.contains_key(&read_name));
            Ok((outcomes, latest_fields, in_active))
        })
        .await?;
    retrain::check_counts(&outcomes).map_err(refused)?;
    // Refuse before the work rather than after it, when the result could not be activated.
    if asked.activate && in_active {
        activation::refuse_while_rescoring(state, workspace_id).await?;
    }
    let fields = match asked.fields {
        Some(fields) => fields,
        None => latest_fields.filter(|f| !f.is_empty()).unwrap_or_else(|| retrain::attribute_keys(&outcomes)),
    };
    if fields.is_empty() {
        return Err(ApiError::new(
            ErrorCode::NoFields,
            "no field to learn from: the labelled leads have no attributes (send `fields`)",
        ));
    }
    let label = name.clone();
    let trained =
        tokio::task::spawn_blocking(move || retrain::train(&outcomes, &fields, asked.algorithm, asked.seed, &label))
            .await
            .map_err(|_| ApiError::internal())?
            .map_err(refused)?;

    let models = state.models.clone();
    let stored_name = name.clone();
    let (body, model, algorithm) = (trained.body, trained.model, trained.algorithm);
    let now = now_ms();
    let (stored, activated, warnings): (PredictiveVersion, Option<ModelVersion>, Vec<String>) = state
        .storage
        .write(move |transaction| {
            let new = NewPredictiveModel {
                workspace_id,
                name: &stored_name,
                body: &body,
                algorithm,
                origin: Origin::Retrain,
            };
            let stored = transaction.add_predictive_model(&new, now)?;
            models.remember(&stored, model);
            let active = transaction.active_model(workspace_id)?;
            let Some(active) = active.filter(|m| asked.activate && m.predictors.contains_key(&stored_name)) else {
                return Ok((stored, None, Vec::new()));
            };
            // The same text, pinned to the new version for this name and to the same versions
            // for any other predictive model it uses.
            let mut pins = active.predictors.clone();
            pins.insert(stored_name.clone(), stored.id);
            let retrained = format!("retraining of predictive model {stored_name}");
            let version = transaction.add_model_version(workspace_id, &active.source, &pins, Some(&retrained), now)?;
            // Only the new version's failure to compile is the request's conflict; a stored row
            // this version cannot read, or failing storage, keeps its own answer.
            models.get(transaction, &version).map_err(|e| match e {
                StoreError::ModelDoesNotCompile { .. } => {
                    StoreError::Conflict(format!("the active model does not compile with the retrained model: {e}"))
                }
                other => other,
            })?;
            // A rescoring that started during the training: the trained model and the version
            // pinned to it are kept, not activated, rather than thrown away with the work.
            match activation::activate(
                transaction,
                workspace_id,
                version.id,
                leadscore_store::models::Origin::Retrain,
                now,
            ) {
                Ok(_) => Ok((stored, Some(version), Vec::new())),
                Err(StoreError::Rescoring) => {
                    let warning = format!(
                        "a rescoring started while the model trained, so version {} of the scoring model, which uses \
                         it, is stored but not active: activate it with POST /api/models/{}/activate once the \
                         rescoring is done",
                        version.version, version.version
                    );
                    Ok((stored, None, vec![warning]))
                }
                Err(other) => Err(other),
            }
        })
        .await?;
    if activated.is_some() {
        activation::rescore(state, workspace_id);
    }
    Ok(Retrained {
        stored,
        algorithm,
        fields: trained.fields,
        customers: trained.customers,
        lost: trained.lost,
        holdout_auc: trained.holdout_auc,
        model_version: activated.map(|v: ModelVersion| v.version),
        warnings,
    })
}

/// The fields a stored version reads (none if its file cannot say).
fn fields_of(version: &PredictiveVersion) -> Vec<String> {
    #[derive(Deserialize)]
    struct Features {
        features: Vec<String>,
    }
    serde_json::from_str::<Features>(&version.body).map(|f| f.features).unwrap_or_default()
}

fn refused(error: RetrainError) -> ApiError {
    let code = match error {
        RetrainError::NotEnoughOutcomes { .. } => ErrorCode::NotEnoughOutcomes,
        RetrainError::NoFields(_) => ErrorCode::NoFields,
        RetrainError::Failed(_) => ErrorCode::TrainingFailed,
    };
    ApiError::new(code, error.to_string())
}
