//! Predictive models of a workspace: upload a file written by `leadscore train`, list the
//! versions, and retrain on the workspace's own outcomes (leads whose stage reached `customer` or
//! `lost`). Scoring models name them in `predictive = "NAME"`; each model version is pinned to
//! the predictive versions it was compiled with.

use std::collections::BTreeMap;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use leadscore_core::{Predictor, Timestamp};
use leadscore_predict::predictive::{Algorithm, PredictiveModel, SavedModel};
use leadscore_store::now_ms;
use leadscore_store::predictive::Origin;
use leadscore_store::storage::NewPredictiveModel;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::auth::{AdminScope, Authorized, ReadScope};
use crate::error::{ApiError, ApiJson, ApiPath, ErrorCode, JsonObject, RawBody};
use crate::openapi::ErrorBody;
use crate::retraining::{self, Asked};
use crate::scoring::valid_name;
use crate::state::AppState;

/// The largest predictive model file accepted (boosted trees on many fields can be megabytes).
pub const PREDICTIVE_LIMIT: usize = 16 * 1024 * 1024;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(upload).layer(DefaultBodyLimit::max(PREDICTIVE_LIMIT)))
        .routes(routes!(retrain))
}

/// The name in the path, checked.
fn name_from_path(name: String) -> Result<String, ApiError> {
    if valid_name(&name) {
        Ok(name)
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidPath,
            "a predictive model's name is 1 to 100 letters, digits, `_`, `-` or `.`",
        ))
    }
}

/// The path of the predictive model routes.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // Only describes the path, which `ApiPath<String>` reads.
struct NamePath {
    /// The name scoring models use in `predictive = "NAME"`: 1 to 100 letters, digits, `_`, `-`
    /// or `.`. (Letters and digits of other scripts are accepted too, up to 100 bytes in UTF-8;
    /// the pattern states the ASCII ones.)
    #[param(pattern = "^[A-Za-z0-9_.-]{1,100}$")]
    name: String,
}

/// The body of a predictive model upload: the file `leadscore train` writes.
struct PredictiveFile;

impl utoipa::PartialSchema for PredictiveFile {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        use leadscore_predict::predictive::{KIND, VERSION};
        crate::openapi::json_schema(serde_json::json!({
            "type": "object",
            "description": "The JSON file `leadscore train` writes (at most 16 MB): its header, and the fitted \
                            parameters of its `algorithm` (`encoder` and `model`, or `booster`), which the service \
                            checks",
            "required": ["kind", "version", "target", "features", "seed", "algorithm"],
            "properties": {
                "kind": { "const": KIND },
                "version": { "type": "integer", "minimum": 0, "maximum": VERSION },
                "target": { "type": "string", "description": "The outcome column it was trained on" },
                "positive": { "type": ["string", "null"], "description": "The value counted as a conversion" },
                "features": { "type": "array", "items": { "type": "string" }, "description": "The lead fields it reads" },
                "seed": { "type": "integer", "minimum": 0 },
                "algorithm": { "enum": ["logistic", "gbdt"] },
                "evaluation": { "description": "What training measured on held-out leads (shown, never used)" },
            },
        }))
    }
}

impl utoipa::ToSchema for PredictiveFile {
    fn name() -> std::borrow::Cow<'static, str> {
        "PredictiveModelFile".into()
    }
}

/// A predictive model version stored.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = UploadedPredictiveModel)]
struct UploadedView {
    name: String,
    version: i64,
    /// `logistic` or `gbdt`.
    algorithm: &'static str,
    /// The lead fields it reads.
    fields: Vec<String>,
    /// One per field no lead of the workspace has (the model takes it as unknown for every lead).
    warnings: Vec<String>,
}

/// Where a predictive model version comes from.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
enum PredictiveOrigin {
    /// A file written by `leadscore train`, uploaded.
    Upload,
    /// `POST /api/predictive-models/{name}/retrain`.
    Retrain,
}

/// A version of a predictive model.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = PredictiveVersion)]
struct VersionView {
    version: i64,
    algorithm: String,
    origin: PredictiveOrigin,
    created_at: String,
    /// The lead fields it reads.
    fields: Vec<String>,
    /// The held-out AUC its file records, or `null`.
    auc: Option<f64>,
}

/// A predictive model and its versions.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = PredictiveModel)]
struct ModelView {
    name: String,
    /// Oldest first.
    versions: Vec<VersionView>,
}

/// The workspace's predictive models.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = PredictiveModelList)]
struct ListView {
    /// By name.
    predictive_models: Vec<ModelView>,
}

/// A predictive model retrained.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = RetrainedPredictiveModel)]
struct RetrainedView {
    name: String,
    /// The new predictive version.
    version: i64,
    algorithm: &'static str,
    /// The fields it learned from.
    fields: Vec<String>,
    /// The leads in stage `customer` and in stage `lost` it learned from.
    customers: usize,
    lost: usize,
    /// The AUC measured on the 20% held out, or `null` when it cannot be measured.
    holdout_auc: Option<f64>,
    /// The scoring model version stored and activated with it, or `null`.
    model_version: Option<i64>,
    /// Why no scoring model version was activated when one was asked for (a rescoring started
    /// while the model trained: the version is stored, to activate later).
    warnings: Vec<String>,
}

fn invalid_model(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidPredictiveModel, message)
}

/// Stores a new version of a predictive model.
///
/// The body is a model file written by `leadscore train` (JSON, at most 16 MB). Scoring model
/// versions uploaded from now on use this version; those already stored keep theirs.
#[utoipa::path(
    put,
    path = "/api/predictive-models/{name}",
    tag = "predictive models",
    operation_id = "upload_predictive_model",
    params(NamePath),
    request_body(content = PredictiveFile, content_type = "application/json", description = "A model file written by `leadscore train`; any `Content-Type` is accepted"),
    responses(
        (status = 201, description = "The version stored, the lead fields it reads, and a warning naming each of them that no lead of the workspace has", body = UploadedView),
        (status = 400, description = "`invalid_predictive_model`: the body is not a valid model file (the message says why); `invalid_path`: a bad name", body = ErrorBody),
        (status = 413, description = "The file is over 16 MB (`too_large`)", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn upload(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    Authorized { owner, .. }: Authorized<AdminScope>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let name = name_from_path(name)?;
    // Parsing and checking a large file is CPU work: off the async runtime.
    let label = name.clone();
    let (text, model) = tokio::task::spawn_blocking(move || -> Result<(String, PredictiveModel), ApiError> {
        let text = String::from_utf8(body.to_vec())
            .map_err(|_| invalid_model("the body must be the JSON file `leadscore train` writes (UTF-8)"))?;
        let saved = SavedModel::from_json(text.as_bytes(), &label).map_err(|e| invalid_model(e.to_string()))?;
        let model = PredictiveModel::new(saved, &label).map_err(|e| invalid_model(e.to_string()))?;
        Ok((text, model))
    })
    .await
    .map_err(|_| ApiError::internal())??;
    let algorithm = model.saved().fitted.name();
    let fields = model.fields().to_vec();
    // A field no lead has is unknown for every lead: the model would score them all alike on it,
    // which usually means the leads carry it under another name.
    let checked = fields.clone();
    let missing = state.storage.read(move |reads| reads.fields_no_lead_has(owner.workspace_id, &checked)).await?;
    let warnings: Vec<String> = missing
        .iter()
        .map(|field| {
            format!(
                "no lead of the workspace has the field `{field}`: the model takes it as unknown for every lead \
                 until leads carry it (an identify trait, a lead attribute or an imported column of that name)"
            )
        })
        .collect();
    let stored_name = name.clone();
    let now = now_ms();
    let stored = state
        .storage
        .write(move |transaction| {
            let new = NewPredictiveModel {
                workspace_id: owner.workspace_id,
                name: &stored_name,
                body: &text,
                algorithm,
                origin: Origin::Upload,
            };
            transaction.add_predictive_model(&new, now)
        })
        .await?;
    state.models.remember(&stored, model);
    let body = UploadedView { name, version: stored.version, algorithm, fields, warnings };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// The workspace's predictive models and their versions.
#[utoipa::path(
    get,
    path = "/api/predictive-models",
    tag = "predictive models",
    operation_id = "list_predictive_models",
    responses(
        (status = 200, description = "Each predictive model with its versions", body = ListView),
    ),
    security(("api_key" = ["read"])),
)]
async fn list(
    State(state): State<AppState>,
    Authorized { owner, .. }: Authorized<ReadScope>,
) -> Result<ApiJson<ListView>, ApiError> {
    let summaries = state.storage.read(move |reads| reads.predictive_models(owner.workspace_id)).await?;
    let mut by_name: BTreeMap<String, Vec<VersionView>> = BTreeMap::new();
    for summary in summaries {
        by_name.entry(summary.name).or_default().push(VersionView {
            version: summary.version,
            algorithm: summary.algorithm,
            origin: match summary.origin {
                Origin::Upload => PredictiveOrigin::Upload,
                Origin::Retrain => PredictiveOrigin::Retrain,
            },
            created_at: Timestamp(summary.created_at).to_string(),
            fields: summary.fields,
            auc: summary.auc,
        });
    }
    let predictive_models = by_name.into_iter().map(|(name, versions)| ModelView { name, versions }).collect();
    Ok(ApiJson(ListView { predictive_models }))
}

/// What to retrain; every field is optional, and so is the body.
#[derive(Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
#[schema(as = RetrainPredictiveModel)]
struct RetrainRequest {
    /// `logistic` (the default) or `gbdt`.
    algorithm: Option<Algorithm>,
    /// The lead attributes to learn from (at least one, none blank); default: those of the
    /// latest version of the model, or else every attribute of the labelled leads but `email`.
    #[schema(schema_with = field_names)]
    fields: Option<Vec<String>>,
    /// Whether to make and activate a new version of the active scoring model, pinned to the new
    /// predictive version, when it uses this predictive model (default `true`).
    activate: Option<bool>,
    /// The seed of the holdout split (default 7): the same seed and leads give the same model.
    /// A whole number, written `7` or `7.0` (JSON Schema calls both integers).
    #[serde(default, deserialize_with = "whole_number")]
    seed: Option<u64>,
}

/// A JSON number that is a whole number from 0 to `u64::MAX`, as JSON Schema's `integer` takes it:
/// `7.0` is the integer 7 there, and a client generated from the document may send it so.
fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else { return Ok(None) };
    crate::error::whole_number(&number).map(Some).ok_or_else(|| {
        serde::de::Error::custom(format!("`seed` must be a whole number from 0 to {}, not {number}", u64::MAX))
    })
}

fn field_names() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    let name = ObjectBuilder::new().schema_type(Type::String).pattern(Some(crate::openapi::NOT_BLANK));
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(name)
        .min_items(Some(1))
        .build()
}

/// Retrains a predictive model on the workspace's outcomes.
///
/// Learns from the leads whose stage is `customer` (converted) or `lost` (not), at least 20 of
/// each: measures the AUC on a stratified 20% held out, then fits on all of them, and stores the
/// result as a new version. With `activate` (the default), when the active scoring model uses
/// this predictive model, a new scoring model version pinned to it is stored and activated, and
/// every lead is rescored in the background.
#[utoipa::path(
    post,
    path = "/api/predictive-models/{name}/retrain",
    tag = "predictive models",
    operation_id = "retrain_predictive_model",
    params(NamePath),
    request_body(content = Option<RetrainRequest>, content_type = "application/json", description = "Optional: an empty body, or `null`, takes every default"),
    responses(
        (status = 201, description = "The new predictive version, the outcomes it learned from, and the scoring model version activated (or `null`)", body = RetrainedView),
        (status = 400, description = "`invalid_field`, `invalid_json` or `invalid_path`", body = ErrorBody),
        (status = 409, description = "`not_enough_outcomes`: fewer than 20 customers or 20 lost leads; `no_fields`: no field to learn from; `training_failed`; `rescoring`: a rescoring is still running", body = ErrorBody),
        (status = 413, description = "`too_large`: the body is over 2 MB", body = ErrorBody),
        (status = 415, description = "`content_type`: a body not sent as `application/json`", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn retrain(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(name): ApiPath<String>,
    Authorized { owner, .. }: Authorized<AdminScope>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let name = name_from_path(name)?;
    let request = retrain_request(&headers, &body)?;
    let algorithm = request.algorithm.unwrap_or(Algorithm::Logistic);
    let activate = request.activate.unwrap_or(true);
    let seed = request.seed.unwrap_or(retraining::DEFAULT_SEED);
    let asked = Asked { algorithm, fields: request.fields, activate, seed };
    let done = retraining::retrain(&state, owner.workspace_id, name.clone(), asked).await?;
    let answer = RetrainedView {
        name,
        version: done.stored.version,
        algorithm: done.algorithm,
        fields: done.fields,
        customers: done.customers,
        lost: done.lost,
        holdout_auc: done.holdout_auc,
        model_version: done.model_version,
        warnings: done.warnings,
    };
    Ok((StatusCode::CREATED, axum::Json(answer)).into_response())
}

/// The request of a retrain: none for an empty body, else JSON sent as such.
fn retrain_request(headers: &HeaderMap, body: &[u8]) -> Result<RetrainRequest, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(RetrainRequest::default());
    }
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")));
    if !json {
        return Err(ApiError::new(ErrorCode::ContentType, "send the body with Content-Type: application/json"));
    }
    // `null` is no request, like an empty body: the document offers both.
    let request: RetrainRequest = serde_json::from_slice::<Option<JsonObject<RetrainRequest>>>(body)
        .map_err(|e| match e.classify() {
            serde_json::error::Category::Data => ApiError::new(ErrorCode::InvalidField, e.to_string()),
            _ => ApiError::new(ErrorCode::InvalidJson, e.to_string()),
        })?
        .map_or_else(RetrainRequest::default, |JsonObject(request)| request);
    if let Some(fields) = &request.fields
        && (fields.is_empty() || fields.iter().any(|f| f.trim().is_empty()))
    {
        return Err(ApiError::new(ErrorCode::InvalidField, "`fields` must list at least one non-empty field"));
    }
    Ok(request)
}
