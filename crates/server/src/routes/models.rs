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
use serde_json::{Value, json};

use crate::auth;
use crate::error::{ApiError, ApiJson};
use crate::state::AppState;

pub const MODEL_LIMIT: usize = 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/models", get(list).post(upload).layer(DefaultBodyLimit::max(MODEL_LIMIT)))
        .route("/api/models/{version}/activate", post(activate))
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
    Ok(ApiJson(json!({ "models": versions })))
}

async fn activate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(version): Path<i64>,
) -> Result<ApiJson<Value>, ApiError> {
    let owner = auth::authorize(&state, auth::key_from_headers(&headers)?, Scope::Admin).await?;
    state
        .store
        .write(move |connection| {
            let id: Option<i64> = connection
                .query_row(
                    "SELECT id FROM models WHERE workspace_id = ?1 AND version = ?2",
                    [owner.workspace_id, version],
                    |row| row.get(0),
                )
                .ok();
            let id = id.ok_or_else(|| StoreError::NotFound(format!("no model version {version}")))?;
            leadscore_store::models::activate(connection, owner.workspace_id, id)
        })
        .await?;
    Ok(ApiJson(json!({ "version": version, "active": true })))
}
