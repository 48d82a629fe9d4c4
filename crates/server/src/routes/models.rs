//! Model versions: upload (checked, errors with line and column), list, activate.

use std::collections::BTreeMap;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use leadscore_core::diagnostic::line_column;
use leadscore_core::{Severity, Timestamp};
use leadscore_store::models::{ModelVersion, Origin};
use leadscore_store::{Reads, StoreError, now_ms};
use serde::Serialize;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::activation;
use crate::auth::{AdminScope, Authorized, ReadScope};
use crate::error::{ApiError, ApiJson, ApiPath, ErrorCode, RawBody};
use crate::openapi::ErrorBody;
use crate::preview::{self, Preview};
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

/// How serious a diagnostic is.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
enum DiagnosticSeverity {
    Error,
    Warning,
}

/// An error or a warning about a model, where `leadscore check` shows it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Diagnostic)]
struct DiagnosticView {
    severity: DiagnosticSeverity,
    /// The line and column (from 1) it points at, or `null` for the model as a whole.
    line: Option<usize>,
    column: Option<usize>,
    message: String,
}

fn diagnostics(source: &str, diagnostics: &[leadscore_core::Diagnostic]) -> Vec<DiagnosticView> {
    diagnostics
        .iter()
        .map(|d| {
            let (line, column) = d.span.as_ref().map_or((None, None), |s| {
                let (l, c) = line_column(source, s.start);
                (Some(l), Some(c))
            });
            DiagnosticView {
                severity: if d.severity == Severity::Error {
                    DiagnosticSeverity::Error
                } else {
                    DiagnosticSeverity::Warning
                },
                line,
                column,
                message: d.message.clone(),
            }
        })
        .collect()
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
        (status = 400, description = "`invalid_model`: the model has errors, listed in `diagnostics` with their line and column", body = InvalidModelView),
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
    // Predictive references resolve to the latest version of each named predictive model; the
    // version is stored pinned to them, so it scores the same until a new version is made.
    let models = state.models.clone();
    let checked = source.clone();
    let new_version = state.storage.read(move |reads| models.compile_new(reads, owner.workspace_id, &checked)).await?;
    let warnings = match new_version.compiled {
        // The compiler's warnings and the tiers no lead can reach, as `leadscore check` shows them.
        Ok(compiled) => {
            let mut warnings = compiled.warnings;
            warnings.extend(leadscore_core::check::warnings(&compiled.model));
            warnings.sort_by_key(|w| w.span.as_ref().map_or(0, |s| s.start));
            diagnostics(&source, &warnings)
        }
        Err(error) => {
            let body = InvalidModelView {
                code: ErrorCode::InvalidModel.name(),
                message: match error.errors().next() {
                    Some(first) => {
                        format!("the model has {} error(s); the first: {}", error.errors().count(), first.message)
                    }
                    None => "the model has errors".to_string(),
                },
                diagnostics: diagnostics(&source, &error.diagnostics),
            };
            return Ok((StatusCode::BAD_REQUEST, axum::Json(body)).into_response());
        }
    };
    let predictors = new_version.predictors;
    let now = now_ms();
    let (version, active) = state
        .storage
        .write(move |transaction| {
            let first = transaction.active_model(owner.workspace_id)?.is_none();
            let version = transaction.add_model_version(owner.workspace_id, &source, &predictors, now)?;
            if first {
                activation::activate(transaction, owner.workspace_id, version.id, Origin::Upload, now)?;
            }
            Ok((version, first))
        })
        .await?;
    if active {
        activation::rescore(&state, owner.workspace_id);
    }
    let body = UploadedView { version: version.version, active, warnings };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
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
    let versions = state
        .storage
        .read(move |reads| {
            let active = reads.active_model(owner.workspace_id)?.map(|v| v.id);
            let versions = reads.model_versions(owner.workspace_id)?;
            Ok(versions
                .into_iter()
                .map(|listed| VersionView {
                    version: listed.version,
                    created_at: Timestamp(listed.created_at).to_string(),
                    active: Some(listed.id) == active,
                })
                .collect())
        })
        .await?;
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
    let workspace_id = owner.workspace_id;
    let view = state
        .storage
        .read(move |reads| {
            let model = reads
                .model_id_of_version(workspace_id, version)?
                .map(|id| reads.model_by_id(id))
                .transpose()?
                .flatten()
                .ok_or_else(|| StoreError::NotFound(format!("no model version {version}")))?;
            let active = reads.active_model(workspace_id)?.is_some_and(|active| active.id == model.id);
            let mut predictive = BTreeMap::new();
            for (reference, id) in &model.predictors {
                if let Some(pinned) = reads.predictive_model(workspace_id, *id)? {
                    predictive.insert(reference.clone(), PinnedView { name: pinned.name, version: pinned.version });
                }
            }
            Ok(VersionSourceView {
                version: model.version,
                created_at: Timestamp(model.created_at).to_string(),
                active,
                source: model.source,
                predictive,
            })
        })
        .await?;
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
    activate_version(&state, owner.workspace_id, move |reads, workspace_id| {
        reads
            .model_id_of_version(workspace_id, version)?
            .ok_or_else(|| StoreError::NotFound(format!("no model version {version}")))
    })
    .await
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
    let workspace_id = owner.workspace_id;
    let now = now_ms();
    let version = state.storage.write(move |transaction| activation::rollback(transaction, workspace_id, now)).await?;
    activated(&state, workspace_id, version).await
}

/// Activates the version `choose` picks (in the writer's transaction) and starts rescoring every
/// lead in the background.
async fn activate_version(
    state: &AppState,
    workspace_id: i64,
    choose: impl FnOnce(&dyn Reads, i64) -> Result<i64, StoreError> + Send + 'static,
) -> Result<Response, ApiError> {
    let now = now_ms();
    let version = state
        .storage
        .write(move |transaction| {
            let id = choose(transaction, workspace_id)?;
            activation::activate(transaction, workspace_id, id, Origin::Api, now)
        })
        .await?;
    activated(state, workspace_id, version).await
}

/// The answer to an activation or a rollback, once its rescoring has started.
async fn activated(state: &AppState, workspace_id: i64, version: ModelVersion) -> Result<Response, ApiError> {
    activation::rescore(state, workspace_id);
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
    let models = state.models.clone();
    let report = state
        .storage
        .read(move |reads| {
            // Read in the snapshot, so that every event it holds is at or before this time.
            let now = now_ms();
            let candidate_id = reads
                .model_id_of_version(owner.workspace_id, version)?
                .ok_or_else(|| StoreError::NotFound(format!("no model version {version}")))?;
            let candidate = reads
                .model_by_id(candidate_id)?
                .ok_or_else(|| StoreError::NotFound(format!("no model version {version}")))?;
            let active = reads.active_model(owner.workspace_id)?;
            preview::compare(
                reads,
                &models,
                owner.workspace_id,
                &candidate,
                active.as_ref(),
                query.limit.unwrap_or(100_000),
                query.changes.unwrap_or(100),
                now,
            )
        })
        .await?;
    Ok(ApiJson(report))
}
