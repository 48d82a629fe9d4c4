//! Model versions: upload (checked, errors with line and column), list, activate.

use std::collections::BTreeMap;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use leadscore_core::Timestamp;
use leadscore_store::keys::KeyOwner;
use leadscore_store::models::ModelVersion;
use serde::Serialize;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::auth::{AdminScope, Authorized, ReadScope};
use crate::error::{ApiError, ApiJson, ApiPath, ErrorCode, RawBody};
use crate::model_versions::{self, DiagnosticView};
use crate::openapi::ErrorBody;
use crate::preview::Preview;
use crate::rescore::{self, Progress};
use crate::state::AppState;

pub const MODEL_LIMIT: usize = 1024 * 1024;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, upload).layer(DefaultBodyLimit::max(MODEL_LIMIT)))
        .routes(routes!(one))
        .routes(routes!(activate))
        .routes(routes!(preview))
        .routes(routes!(rollback))
}

/// A model refused for its errors: the error body, with every diagnostic.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = InvalidModel)]
struct InvalidModelView {
    /// `invalid_model`.
    code: &'static str,
    message: String,
    /// The errors and warnings, with their line and column.
    diagnostics: Vec<DiagnosticView>,
}

/// A model version stored.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = UploadedModel)]
struct UploadedView {
    version: i64,
    /// Whether it is active: the workspace's first version is activated at once.
    active: bool,
    /// What `leadscore check` warns of: the compiler's warnings, and tiers no lead can reach.
    warnings: Vec<DiagnosticView>,
}

/// A stored model version.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ModelVersion)]
struct VersionView {
    version: i64,
    created_at: String,
    /// Who stored it: an API key (by its prefix), a console account (by its e-mail address) or
    /// the command that installed it; `null` for versions stored before it was recorded.
    uploaded_by: Option<String>,
    active: bool,
}

/// The workspace's model versions.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ModelList)]
struct ModelListView {
    /// Oldest first.
    models: Vec<VersionView>,
    /// The workspace's running or latest rescoring, or `null` when there was none since the
    /// service started.
    rescoring: Option<Progress>,
}

/// A version activated, and the rescoring of every lead that started.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Activation)]
struct ActivationView {
    version: i64,
    /// Always `true`.
    active: bool,
    rescoring: Option<Progress>,
}

/// The body of a model upload: TOML text.
struct ModelText;

impl utoipa::PartialSchema for ModelText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        crate::openapi::json_schema(serde_json::json!({
            "type": "string",
            "description": "The model, in the format of docs/model-format.md (UTF-8, at most 1 MB)",
        }))
    }
}

impl utoipa::ToSchema for ModelText {}

/// Stores a new version of the workspace's model.
///
/// The body is the model's TOML text (at most 1 MB), checked before it is stored. The first
/// version uploaded is activated at once; later ones wait for `activate`.
#[utoipa::path(
    post,
    path = "/api/models",
    tag = "models",
    operation_id = "upload_model",
    request_body(
        content(
            (ModelText = "application/toml"),
            (ModelText = "text/plain"),
        ),
        description = "The model (TOML); any `Content-Type` is accepted",
    ),
    responses(
        (status = 201, description = "The version stored, whether it is active, and the warnings `leadscore check` gives (the compiler's, and the tiers no lead can reach)", body = UploadedView),
        (status = 400, description = "`invalid_model`: the model has errors or some of its `[[tests]]` fail, listed in `diagnostics` with their line and column", body = InvalidModelView),
        (status = 413, description = "The model is over 1 MB (`too_large`)", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn upload(
    State(state): State<AppState>,
    Authorized { owner, .. }: Authorized<AdminScope>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let source = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::new(ErrorCode::InvalidModel, "the model must be UTF-8 text (TOML)"))?;
    let uploaded_by = key_label(&state, &owner).await?;
    match model_versions::save(&state, owner.workspace_id, source, uploaded_by).await? {
        Ok(saved) => {
            let body = UploadedView { version: saved.version, active: saved.active, warnings: saved.warnings };
            Ok((StatusCode::CREATED, axum::Json(body)).into_response())
        }
        Err(invalid) => {
            let body = InvalidModelView {
                code: ErrorCode::InvalidModel.name(),
                message: invalid.message,
                diagnostics: invalid.diagnostics,
            };
            Ok((StatusCode::BAD_REQUEST, axum::Json(body)).into_response())
        }
    }
}

/// How a version uploaded with an API key names its uploader: the key's prefix, as keys are
/// listed.
pub(crate) async fn key_label(state: &AppState, owner: &KeyOwner) -> Result<String, ApiError> {
    let keys = state.storage.list_keys(owner.workspace_id).await?;
    Ok(match keys.iter().find(|key| key.id == owner.key_id) {
        Some(key) => format!("API key {}…", key.prefix),
        None => format!("API key {}", owner.key_id),
    })
}

/// The workspace's model versions, and the progress of its rescoring.
#[utoipa::path(
    get,
    path = "/api/models",
    tag = "models",
    operation_id = "list_models",
    responses(
        (status = 200, description = "Each version with its creation time and whether it is active; the running or last rescoring, if any", body = ModelListView),
    ),
    security(("api_key" = ["read"])),
)]
async fn list(
    State(state): State<AppState>,
    Authorized { owner, .. }: Authorized<ReadScope>,
) -> Result<ApiJson<ModelListView>, ApiError> {
    let rescoring = rescore::progress(&state, owner.workspace_id).await?;
    let versions = model_versions::list(&state, owner.workspace_id)
        .await?
        .into_iter()
        .map(|listed| VersionView {
            version: listed.version,
            created_at: Timestamp(listed.created_at).to_string(),
            uploaded_by: listed.uploaded_by,
            active: listed.active,
        })
        .collect();
    Ok(ApiJson(ModelListView { models: versions, rescoring }))
}

/// A predictive model a version is pinned to.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = PinnedPredictiveModel)]
struct PinnedView {
    /// The predictive model's name, as the model's `predictive = "..."` names it.
    name: String,
    /// The version of it this model version scores with.
    version: i64,
}

/// A stored model version with its text.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ModelVersionSource)]
struct VersionSourceView {
    version: i64,
    created_at: String,
    /// Who stored it, as in the list of versions.
    uploaded_by: Option<String>,
    active: bool,
    /// The model file as it was uploaded (TOML).
    source: String,
    /// The predictive models its predictive scores are pinned to, by the reference in the text.
    predictive: BTreeMap<String, PinnedView>,
}

/// One model version with its TOML, as uploaded.
#[utoipa::path(
    get,
    path = "/api/models/{version}",
    tag = "models",
    operation_id = "get_model",
    params(("version" = i64, Path, description = "The version number")),
    responses(
        (status = 200, description = "The version, whether it is active, its text and the predictive models it is pinned to", body = VersionSourceView),
        (status = 400, description = "`invalid_path`: the version in the path is not an integer", body = ErrorBody),
        (status = 404, description = "`not_found`: no such version in the workspace", body = ErrorBody),
    ),
    security(("api_key" = ["read"])),
)]
async fn one(
    State(state): State<AppState>,
    ApiPath(version): ApiPath<i64>,
    Authorized { owner, .. }: Authorized<ReadScope>,
) -> Result<ApiJson<VersionSourceView>, ApiError> {
    let stored = model_versions::stored(&state, owner.workspace_id, version).await?;
    let view = VersionSourceView {
        version: stored.model.version,
        created_at: Timestamp(stored.model.created_at).to_string(),
        uploaded_by: stored.uploaded_by,
        active: stored.active,
        source: stored.model.source,
        predictive: stored
            .predictive
            .into_iter()
            .map(|(reference, (name, version))| (reference, PinnedView { name, version }))
            .collect(),
    };
    Ok(ApiJson(view))
}

/// Activates a model version.
///
/// An earlier version rolls back. Every lead is rescored in the background; the rescoring's
/// progress is in `GET /api/models`.
#[utoipa::path(
    post,
    path = "/api/models/{version}/activate",
    tag = "models",
    operation_id = "activate_model",
    params(("version" = i64, Path, description = "The version number")),
    responses(
        (status = 202, description = "Activated; the rescoring started", body = ActivationView),
        (status = 400, description = "`invalid_path`: the version in the path is not an integer", body = ErrorBody),
        (status = 404, description = "No such version", body = ErrorBody),
        (status = 409, description = "`rescoring`: a rescoring is still running", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn activate(
    State(state): State<AppState>,
    ApiPath(version): ApiPath<i64>,
    Authorized { owner, .. }: Authorized<AdminScope>,
) -> Result<Response, ApiError> {
    let version = model_versions::activate(&state, owner.workspace_id, version).await?;
    activated(&state, owner.workspace_id, version).await
}

/// Activates the version that was active before the current one.
///
/// Every lead is rescored in the background, as with `activate`.
#[utoipa::path(
    post,
    path = "/api/models/rollback",
    tag = "models",
    operation_id = "rollback_model",
    responses(
        (status = 202, description = "Activated; the rescoring started", body = ActivationView),
        (status = 404, description = "No active version, or none active before it", body = ErrorBody),
        (status = 409, description = "`rescoring`: a rescoring is still running", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn rollback(
    State(state): State<AppState>,
    Authorized { owner, .. }: Authorized<AdminScope>,
) -> Result<Response, ApiError> {
    let version = model_versions::rollback(&state, owner.workspace_id).await?;
    activated(&state, owner.workspace_id, version).await
}

/// The answer to an activation or a rollback, once its rescoring has started.
async fn activated(state: &AppState, workspace_id: i64, version: ModelVersion) -> Result<Response, ApiError> {
    let rescoring = rescore::progress(state, workspace_id).await?;
    let body = ActivationView { version: version.version, active: true, rescoring };
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct PreviewQuery {
    /// Leads to compare at most (default 100,000).
    #[param(format = Int64, minimum = 0, maximum = 4294967295_u32)]
    limit: Option<u32>,
    /// Leads that would change tier listed at most (default 100).
    #[param(format = Int64, minimum = 0, maximum = 4294967295_u32)]
    changes: Option<u32>,
}

/// How a version would score the workspace's leads, against the active version.
///
/// Changes nothing: the version is compared on the workspace's leads, with the leads that would
/// change tier.
#[utoipa::path(
    get,
    path = "/api/models/{version}/preview",
    tag = "models",
    operation_id = "preview_model",
    params(("version" = i64, Path, description = "The version number"), PreviewQuery),
    responses(
        (status = 200, description = "Per score, tier counts and value statistics under both versions, the leads that would change tier, and what the activation would cause beside", body = Preview),
        (status = 400, description = "`invalid_query`: an unknown parameter or a bad value (a version in the path that is not an integer gets `invalid_path`)", body = ErrorBody),
        (status = 404, description = "No such version", body = ErrorBody),
    ),
    security(("api_key" = ["read"])),
)]
async fn preview(
    State(state): State<AppState>,
    ApiPath(version): ApiPath<i64>,
    query: Result<axum::extract::Query<PreviewQuery>, axum::extract::rejection::QueryRejection>,
    Authorized { owner, .. }: Authorized<ReadScope>,
) -> Result<ApiJson<Preview>, ApiError> {
    let axum::extract::Query(query) = query.map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.body_text()))?;
    let limit = query.limit.unwrap_or(100_000);
    let report =
        model_versions::preview(&state, owner.workspace_id, version, limit, query.changes.unwrap_or(100)).await?;
    Ok(ApiJson(report))
}
