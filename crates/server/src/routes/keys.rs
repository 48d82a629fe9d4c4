//! The workspace's API keys: list them, create one, revoke one (a leaked key, a departed holder).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use leadscore_core::Timestamp;
use leadscore_store::keys::{KeyInfo, Scope};
use leadscore_store::now_ms;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api_keys;
use crate::auth::{AdminScope, Authorized};
use crate::error::{ApiError, ApiJson, ApiPath, ErrorCode};
use crate::openapi::ErrorBody;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(revoke))
}

/// A key to create. Its schema is written by hand ([`create_request_schema`]): a browser key
/// needs origins and other keys take none, a rule between fields that derive cannot state.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    scope: String,
    name: Option<String>,
    origins: Option<Vec<String>>,
}

/// An origin as `api_keys::checked_origins` takes it: `http` or `https` in any case, a host of
/// letters, digits, dots and dashes not starting with a dot or a dash, and a port from 1 to
/// 65535 without leading zeros.
const ORIGIN_PATTERN: &str = concat!(
    r"^[hH][tT][tT][pP][sS]?://[a-zA-Z0-9][a-zA-Z0-9.-]{0,252}",
    r"(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?$"
);

fn create_request_schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    crate::openapi::json_schema(serde_json::json!({
        "type": "object",
        "description": "A key to create.",
        "additionalProperties": false,
        "required": ["scope"],
        "properties": {
            "scope": { "$ref": "#/components/schemas/KeyScope", "description": "What the key may do." },
            "name": {
                "type": ["string", "null"],
                "maxLength": api_keys::NAME_LIMIT,
                "pattern": r"^[^\u0000-\u001f\u007f-\u009f]*$",
                "description": "What the key is for, to tell it apart in the list (at most 100 characters, one line \
                    without control characters); none by default.",
            },
            "origins": {
                "type": ["array", "null"],
                "maxItems": api_keys::ORIGINS_LIMIT,
                "items": { "type": "string", "pattern": ORIGIN_PATTERN },
                "description": "The origins allowed to use a browser key (`https://www.example.com`: scheme, host and \
                    port, no path), 1 to 20; none (absent, `null` or `[]`) for other scopes.",
            },
        },
        "if": { "properties": { "scope": { "const": "browser" } }, "required": ["scope"] },
        "then": { "required": ["origins"], "properties": { "origins": { "type": "array", "minItems": 1 } } },
        "else": { "properties": { "origins": { "anyOf": [{ "type": "null" }, { "type": "array", "maxItems": 0 }] } } },
    }))
}

impl utoipa::PartialSchema for CreateRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        create_request_schema()
    }
}

impl utoipa::ToSchema for CreateRequest {
    fn name() -> std::borrow::Cow<'static, str> {
        "CreateKey".into()
    }

    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::Schema>)>) {
        schemas.push((KeyScope::name().into_owned(), <KeyScope as utoipa::PartialSchema>::schema()));
    }
}

/// What a key may do: `ingest` (send messages and events), `browser` (send a website's events
/// from its pages, from the origins it is bound to; reads nothing), `read` (leads, their
/// history and stages, models) or `admin` (everything).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
enum KeyScope {
    Ingest,
    Read,
    Admin,
    Browser,
}

impl From<Scope> for KeyScope {
    fn from(scope: Scope) -> KeyScope {
        match scope {
            Scope::Ingest => KeyScope::Ingest,
            Scope::Read => KeyScope::Read,
            Scope::Admin => KeyScope::Admin,
            Scope::Browser => KeyScope::Browser,
        }
    }
}

/// An API key, never with its secret.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Key)]
struct KeyView {
    id: i64,
    /// What it is for, as named when it was made (`""` when unnamed).
    name: String,
    /// The key's first 12 characters, to recognise it.
    prefix: String,
    scope: KeyScope,
    /// The origins a browser key is bound to (empty for other scopes).
    origins: Vec<String>,
    created_at: String,
    /// When it was revoked, or `null`.
    revoked_at: Option<String>,
}

impl From<&KeyInfo> for KeyView {
    fn from(key: &KeyInfo) -> KeyView {
        KeyView {
            id: key.id,
            name: key.name.clone(),
            prefix: key.prefix.clone(),
            scope: key.scope.into(),
            origins: key.origins.clone(),
            created_at: Timestamp(key.created_at).to_string(),
            revoked_at: key.revoked_at.map(|t| Timestamp(t).to_string()),
        }
    }
}

/// A key just created, with its secret: shown only in this answer.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = CreatedKey)]
struct CreatedKeyView {
    #[serde(flatten)]
    key: KeyView,
    /// The key itself (`lsk_` and 64 hex digits), to send as `Authorization: Bearer KEY`.
    secret: String,
}

/// The workspace's keys.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = KeyList)]
struct KeyListView {
    /// Newest first, revoked ones included.
    keys: Vec<KeyView>,
}

/// The workspace's keys, newest first, revoked ones included; never their secrets.
#[utoipa::path(
    get,
    path = "/api/keys",
    tag = "keys",
    operation_id = "list_keys",
    responses(
        (status = 200, description = "The keys, newest first", body = KeyListView),
    ),
    security(("api_key" = ["admin"])),
)]
async fn list(
    State(state): State<AppState>,
    Authorized { owner, .. }: Authorized<AdminScope>,
) -> Result<ApiJson<KeyListView>, ApiError> {
    let listed = state.storage.list_keys(owner.workspace_id).await?;
    Ok(ApiJson(KeyListView { keys: listed.iter().map(KeyView::from).collect() }))
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
        (status = 201, description = "The key, with its secret", body = CreatedKeyView),
        (status = 400, description = "`invalid_field` (with the field at fault) or `invalid_json`", body = ErrorBody),
        (status = 413, description = "`too_large`: the body is over 2 MB", body = ErrorBody),
        (status = 415, description = "`content_type`: the body is not sent as `application/json`", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn create(
    State(state): State<AppState>,
    Authorized { owner, .. }: Authorized<AdminScope>,
    ApiJson(request): ApiJson<CreateRequest>,
) -> Result<Response, ApiError> {
    let scope: Scope =
        request.scope.parse().map_err(|reason| ApiError::new(ErrorCode::InvalidField, format!("`scope`: {reason}")))?;
    let now = now_ms();
    let name = api_keys::checked_name(request.name.as_deref().unwrap_or(""))
        .map_err(|reason| ApiError::new(ErrorCode::InvalidField, format!("`name`: {reason}")))?;
    let origins = api_keys::checked_origins(scope, request.origins.as_deref().unwrap_or_default())
        .map_err(|reason| ApiError::new(ErrorCode::InvalidField, format!("`origins`: {reason}")))?;
    let key = api_keys::create(&state, owner.workspace_id, scope, name, origins, now).await?;
    let info = KeyInfo {
        id: key.id,
        name: key.name,
        prefix: key.prefix,
        scope: key.scope,
        origins: key.origins,
        created_at: key.created_at,
        revoked_at: None,
    };
    let answer = CreatedKeyView { key: KeyView::from(&info), secret: key.secret };
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
        (status = 200, description = "The revoked key", body = KeyView),
        (status = 400, description = "`invalid_path`: the id in the path is not an integer", body = ErrorBody),
        (status = 404, description = "No such key in this workspace", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn revoke(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    Authorized { owner, .. }: Authorized<AdminScope>,
) -> Result<ApiJson<KeyView>, ApiError> {
    let workspace_id = owner.workspace_id;
    let now = now_ms();
    let revoked = api_keys::revoke(&state, workspace_id, id, now).await?;
    let revoked = revoked.ok_or_else(|| ApiError::not_found(format!("no key {id} in this workspace")))?;
    Ok(ApiJson(KeyView::from(&revoked)))
}
