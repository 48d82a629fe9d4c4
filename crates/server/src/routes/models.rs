//! Model versions: upload (checked, errors with line and column), list, activate.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use leadscore_core::diagnostic::line_column;
use leadscore_core::{Severity, Timestamp};
use leadscore_store::StoreError;
use leadscore_store::keys::Scope;
use leadscore_store::scores::History;
use serde_json::{Value, json};

use crate::auth;
use crate::error::{ApiError, ApiJson};
use crate::preview;
use crate::rescore;
use crate::state::AppState;

pub const MODEL_LIMIT: usize = 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/models", get(list).post(upload).layer(DefaultBodyLimit::max(MODEL_LIMIT)))
        .route("/api/models/{version}/activate", post(activate))
        .route("/api/models/{version}/preview", get(preview))
        .route("/api/models/rollback", post(rollback))
}

fn diagnostics_json(source: &str, diagnostics: &[leadscore_core::Diagnostic]) -> Vec<Value> {
    diagnostics
        .iter()
        .map(|d| {
            let (line, column) = d.span.as_ref().map_or((None, None), |s| {
                let (l, c) = line_column(source, s.start);
                (Some(l), Some(c))
            });
            json!({
                "severity": if d.severity == Severity::Error { "error" } else { "warning" },
                "line": line,
                "column": column,
                "message": d.message,
            })
        })
        .collect()
}

/// Stores a new version of the workspace's model (the body is the TOML text). The first version
/// uploaded is activated at once; later ones wait for `activate`.
async fn upload(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let owner = auth::authorize(&state, auth::key_from_headers(&headers)?, Scope::Admin).await?;
    let source = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::bad_request("invalid_model", "the model must be UTF-8 text (TOML)"))?;
    let warnings = match leadscore_core::compile(&source) {
        Ok(compiled) => diagnostics_json(&source, &compiled.warnings),
        Err(error) => {
            let body = json!({
                "code": "invalid_model",
                "message": error.render("model").lines().next().unwrap_or("the model has errors").to_string(),
                "diagnostics": diagnostics_json(&source, &error.diagnostics),
            });
            return Ok((StatusCode::BAD_REQUEST, axum::Json(body)).into_response());
        }
    };
    let (version, active) = state
        .store
        .write(move |connection| {
            let first = leadscore_store::models::active(connection, owner.workspace_id)?.is_none();
            let version = leadscore_store::models::add(connection, owner.workspace_id, &source)?;
            if first {
                leadscore_store::models::activate(connection, owner.workspace_id, version.id)?;
            }
            Ok((version, first))
        })
        .await?;
    let body = json!({ "version": version.version, "active": active, "warnings": warnings });
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<ApiJson<Value>, ApiError> {
    let owner = auth::authorize(&state, auth::key_from_headers(&headers)?, Scope::Read).await?;
    let rescoring = state.rescoring.get(owner.workspace_id);
    let versions = state
        .store
        .read(move |connection| {
            let active = leadscore_store::models::active(connection, owner.workspace_id)?.map(|v| v.id);
            let mut statement = connection
                .prepare("SELECT id, version, created_at FROM models WHERE workspace_id = ?1 ORDER BY version")?;
            let rows = statement.query_map([owner.workspace_id], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
            })?;
            let mut versions = Vec::new();
            for row in rows {
                let (id, version, created_at) = row?;
                versions.push(json!({
                    "version": version,
                    "created_at": Timestamp(created_at).to_string(),
                    "active": Some(id) == active,
                }));
            }
            Ok(versions)
        })
        .await?;
    Ok(ApiJson(json!({ "models": versions, "rescoring": rescoring })))
}

/// Activates a version (an earlier one rolls back) and rescores every lead in the background.
async fn activate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(version): Path<i64>,
) -> Result<Response, ApiError> {
    let owner = auth::authorize(&state, auth::key_from_headers(&headers)?, Scope::Admin).await?;
    activate_version(&state, owner.workspace_id, move |connection, workspace_id| {
        connection
            .query_row(
                "SELECT id FROM models WHERE workspace_id = ?1 AND version = ?2",
                [workspace_id, version],
                |row| row.get(0),
            )
            .map_err(|_| StoreError::NotFound(format!("no model version {version}")))
    })
    .await
}

/// Activates the version that was active before the current one.
async fn rollback(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let owner = auth::authorize(&state, auth::key_from_headers(&headers)?, Scope::Admin).await?;
    activate_version(&state, owner.workspace_id, |connection, workspace_id| {
        let active = leadscore_store::models::active(connection, workspace_id)?
            .ok_or_else(|| StoreError::NotFound("no active model to roll back from".into()))?;
        connection
            .query_row(
                "SELECT id FROM models WHERE workspace_id = ?1 AND id != ?2 AND activated_at IS NOT NULL
                 ORDER BY activated_at DESC LIMIT 1",
                [workspace_id, active.id],
                |row| row.get(0),
            )
            .map_err(|_| StoreError::NotFound("no earlier active version to roll back to".into()))
    })
    .await
}

async fn activate_version(
    state: &AppState,
    workspace_id: i64,
    choose: impl FnOnce(&leadscore_store::rusqlite::Connection, i64) -> Result<i64, StoreError> + Send + 'static,
) -> Result<Response, ApiError> {
    if state.rescoring.get(workspace_id).is_some_and(|p| p.finished_at.is_none()) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "rescoring",
            "a rescoring is still running; wait for it to finish",
        ));
    }
    let version = state
        .store
        .write(move |connection| {
            let id = choose(connection, workspace_id)?;
            leadscore_store::models::activate(connection, workspace_id, id)?;
            leadscore_store::models::by_id(connection, id)?
                .ok_or_else(|| StoreError::NotFound(format!("no model {id}")))
        })
        .await?;
    let cause = format!("model v{}", version.version);
    rescore::start(state, workspace_id, version.version, cause, History::EveryChange);
    let body = json!({ "version": version.version, "active": true, "rescoring": state.rescoring.get(workspace_id) });
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewQuery {
    /// Leads to compare at most (default 100,000).
    limit: Option<u32>,
    /// Leads that would change tier listed at most (default 100).
    changes: Option<u32>,
}

/// How a version would score the workspace's leads, against the active version; changes nothing.
async fn preview(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(version): Path<i64>,
    query: Result<axum::extract::Query<PreviewQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<ApiJson<Value>, ApiError> {
    let owner = auth::authorize(&state, auth::key_from_headers(&headers)?, Scope::Read).await?;
    let axum::extract::Query(query) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let models = state.models.clone();
    let report = state
        .store
        .read(move |connection| {
            let candidate_id: i64 = connection
                .query_row(
                    "SELECT id FROM models WHERE workspace_id = ?1 AND version = ?2",
                    [owner.workspace_id, version],
                    |row| row.get(0),
                )
                .map_err(|_| StoreError::NotFound(format!("no model version {version}")))?;
            let candidate = leadscore_store::models::by_id(connection, candidate_id)?
                .ok_or_else(|| StoreError::NotFound(format!("no model version {version}")))?;
            let active = leadscore_store::models::active(connection, owner.workspace_id)?;
            preview::compare(
                connection,
                &models,
                owner.workspace_id,
                &candidate,
                active.as_ref(),
                query.limit.unwrap_or(100_000),
                query.changes.unwrap_or(100),
            )
        })
        .await?;
    Ok(ApiJson(report))
}
