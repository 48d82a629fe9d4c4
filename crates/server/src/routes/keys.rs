//! The workspace's API keys: list them, create one, revoke one (a leaked key, a departed holder).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use leadscore_core::Timestamp;
use leadscore_store::keys::{self, KeyInfo, Scope};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth;
use crate::error::{ApiError, ApiJson, ApiPath};
use crate::openapi::ErrorBody;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(revoke))
}

/// A key to create.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateKey)]
struct CreateRequest {
    /// `ingest`, `read` or `admin`.
    scope: String,
}

fn key_json(key: &KeyInfo) -> Value {
    json!({
        "id": key.id,
        "prefix": key.prefix,
        "scope": key.scope.as_str(),
        "created_at": Timestamp(key.created_at).to_string(),
        "revoked_at": key.revoked_at.map(|t| Timestamp(t).to_string()),
    })
}

/// The workspace's keys, newest first, revoked ones included; never their secrets.
#[utoipa::path(
    get,
    path = "/api/keys",
    tag = "keys",
    operation_id = "list_keys",
    responses(
        (status = 200, description = "`{keys}`: each with its id, prefix (the first 12 characters of the key), scope, created_at and revoked_at", body = Object),
        (status = 401, description = "No key, an unknown one, or a malformed `Authorization` header", body = ErrorBody),
        (status = 403, description = "The key is not an admin key", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<ApiJson<Value>, ApiError> {
    let owner = auth::authorize(&state, auth::key_from_headers(&headers)?, Scope::Admin).await?;
    let listed = state.store.read(move |c| keys::list(c, owner.workspace_id)).await?;
    Ok(ApiJson(json!({ "keys": listed.iter().map(key_json).collect::<Vec<_>>() })))
}

/// Creates a key in the workspace.
///
/// The answer carries the key itself (`secret`); it is stored hashed and shown only here.
#[utoipa::path(
    post,
    path = "/api/keys",
    tag = "keys",
    operation_id = "create_key",
    request_body = CreateRequest,
    responses(
        (status = 201, description = "The key: `{id, prefix, scope, created_at, revoked_at, secret}`", body = Object),
        (status = 400, description = "`invalid_field` (with the field at fault) or `invalid_json`", body = ErrorBody),
        (status = 401, description = "No key, an unknown one, or a malformed `Authorization` header", body = ErrorBody),
        (status = 403, description = "The key is not an admin key", body = ErrorBody),
        (status = 413, description = "`too_large`: the body is over 2 MB", body = ErrorBody),
        (status = 415, description = "`content_type`: the body is not sent as `application/json`", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<CreateRequest>,
) -> Result<Response, ApiError> {
    let owner = auth::authorize(&state, auth::key_from_headers(&headers)?, Scope::Admin).await?;
    let scope: Scope =
        request.scope.parse().map_err(|reason| ApiError::bad_request("invalid_field", format!("`scope`: {reason}")))?;
    let key = state.store.write(move |c| keys::create(c, owner.workspace_id, scope)).await?;
    let info =
        KeyInfo { id: key.id, prefix: key.prefix, scope: key.scope, created_at: key.created_at, revoked_at: None };
    let mut answer = key_json(&info);
    answer["secret"] = json!(key.secret);
    Ok((StatusCode::CREATED, axum::Json(answer)).into_response())
}

/// Revokes a key: its next request is refused. A key may revoke itself.
///
/// Revoking a revoked key answers it unchanged, with the time of its first revocation.
#[utoipa::path(
    delete,
    path = "/api/keys/{id}",
    tag = "keys",
    operation_id = "revoke_key",
    params(("id" = i64, Path, description = "The key's id, from the list of keys")),
    responses(
        (status = 200, description = "The revoked key: `{id, prefix, scope, created_at, revoked_at}`", body = Object),
        (status = 400, description = "`invalid_path`: the id in the path is not an integer", body = ErrorBody),
        (status = 401, description = "No key, an unknown one, or a malformed `Authorization` header", body = ErrorBody),
        (status = 403, description = "The key is not an admin key", body = ErrorBody),
        (status = 404, description = "No such key in this workspace", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<i64>,
) -> Result<ApiJson<Value>, ApiError> {
    let owner = auth::authorize(&state, auth::key_from_headers(&headers)?, Scope::Admin).await?;
    let workspace_id = owner.workspace_id;
    let revoked = state
        .store
        .write(move |c| if keys::revoke(c, workspace_id, id)? { keys::by_id(c, workspace_id, id) } else { Ok(None) })
        .await?;
    let revoked = revoked.ok_or_else(|| ApiError::not_found(format!("no key {id} in this workspace")))?;
    // After the commit, so that a request that reads the key again sees it revoked.
    state.keys.forget(revoked.id);
    Ok(ApiJson(key_json(&revoked)))
}
