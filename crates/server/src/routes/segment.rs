//! Segment's HTTP Tracking API: `/v1/identify`, `/v1/track`, `/v1/page`, `/v1/screen` and
//! `/v1/batch`, so that Segment and RudderStack sources and libraries can send here unchanged.
//!
//! The write key comes as the basic-auth user name (Segment's way), a bearer token, or the
//! body's `writeKey`. Limits are Segment's: 32 KB per message, 500 KB per batch.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use leadscore_store::keys::Scope;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::auth;
use crate::error::{ApiError, RawBody};
use crate::ingest::{self, Message, Outcome};
use crate::openapi::ErrorBody;
use crate::state::AppState;

pub const MESSAGE_LIMIT: usize = 32 * 1024;
pub const BATCH_LIMIT: usize = 500 * 1024;
/// Messages accepted in one batch (500 KB of 32 KB messages cannot exceed it anyway).
pub const BATCH_ITEMS: usize = 2500;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(identify).layer(DefaultBodyLimit::max(MESSAGE_LIMIT)))
        .routes(routes!(track).layer(DefaultBodyLimit::max(MESSAGE_LIMIT)))
        .routes(routes!(page).layer(DefaultBodyLimit::max(MESSAGE_LIMIT)))
        .routes(routes!(screen).layer(DefaultBodyLimit::max(MESSAGE_LIMIT)))
        .routes(routes!(group).layer(DefaultBodyLimit::max(MESSAGE_LIMIT)))
        .routes(routes!(alias).layer(DefaultBodyLimit::max(MESSAGE_LIMIT)))
        .routes(routes!(batch).layer(DefaultBodyLimit::max(BATCH_LIMIT)))
}

fn parse_body<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}")))
}

/// The key from the headers, else from the body's `writeKey`.
fn write_key(headers: &HeaderMap, body: &Value) -> Result<Option<String>, ApiError> {
    if let Some(key) = auth::key_from_headers(headers)? {
        return Ok(Some(key));
    }
    Ok(body.get("writeKey").and_then(Value::as_str).map(str::to_string))
}

/// Identifies a lead: its user id and traits (Segment's `identify`).
///
/// The body is one Segment message of that type (at most 32 KB); its `type`, if given, is
/// ignored. The key may also come as the basic-auth user name or the body's `writeKey`.
#[utoipa::path(
    post,
    path = "/v1/identify",
    tag = "segment",
    operation_id = "segment_identify",
    request_body(content = Object, description = "A Segment `identify` message"),
    responses(
        (status = 200, description = "Stored and scored (or a duplicate of a message already stored): `{success, duplicate, lead}` with the lead's new scores", body = Object),
        (status = 400, description = "`invalid_json` or `invalid_message`", body = ErrorBody),
        (status = 401, description = "No key, an unknown one, or a malformed `Authorization` header", body = ErrorBody),
        (status = 403, description = "The key is neither an ingest nor an admin key", body = ErrorBody),
        (status = 413, description = "The message is over 32 KB (`too_large`)"),
    ),
    security(("api_key" = [])),
)]
async fn identify(state: State<AppState>, headers: HeaderMap, RawBody(body): RawBody) -> Result<Response, ApiError> {
    single(state, headers, body, "identify").await
}

/// Records an event of a lead (Segment's `track`).
///
/// The body is one Segment message of that type (at most 32 KB); its `type`, if given, is
/// ignored. The key may also come as the basic-auth user name or the body's `writeKey`.
#[utoipa::path(
    post,
    path = "/v1/track",
    tag = "segment",
    operation_id = "segment_track",
    request_body(content = Object, description = "A Segment `track` message"),
    responses(
        (status = 200, description = "Stored and scored (or a duplicate of a message already stored): `{success, duplicate, lead}` with the lead's new scores", body = Object),
        (status = 400, description = "`invalid_json` or `invalid_message`", body = ErrorBody),
        (status = 401, description = "No key, an unknown one, or a malformed `Authorization` header", body = ErrorBody),
        (status = 403, description = "The key is neither an ingest nor an admin key", body = ErrorBody),
        (status = 413, description = "The message is over 32 KB (`too_large`)"),
    ),
    security(("api_key" = [])),
)]
async fn track(state: State<AppState>, headers: HeaderMap, RawBody(body): RawBody) -> Result<Response, ApiError> {
    single(state, headers, body, "track").await
}

/// Records a page view (Segment's `page`).
///
/// The body is one Segment message of that type (at most 32 KB); its `type`, if given, is
/// ignored. The key may also come as the basic-auth user name or the body's `writeKey`.
#[utoipa::path(
    post,
    path = "/v1/page",
    tag = "segment",
    operation_id = "segment_page",
    request_body(content = Object, description = "A Segment `page` message"),
    responses(
        (status = 200, description = "Stored and scored (or a duplicate of a message already stored): `{success, duplicate, lead}` with the lead's new scores", body = Object),
        (status = 400, description = "`invalid_json` or `invalid_message`", body = ErrorBody),
        (status = 401, description = "No key, an unknown one, or a malformed `Authorization` header", body = ErrorBody),
        (status = 403, description = "The key is neither an ingest nor an admin key", body = ErrorBody),
        (status = 413, description = "The message is over 32 KB (`too_large`)"),
    ),
    security(("api_key" = [])),
)]
async fn page(state: State<AppState>, headers: HeaderMap, RawBody(body): RawBody) -> Result<Response, ApiError> {
    single(state, headers, body, "page").await
}

/// Records a screen view in a mobile app (Segment's `screen`).
///
/// The body is one Segment message of that type (at most 32 KB); its `type`, if given, is
/// ignored. The key may also come as the basic-auth user name or the body's `writeKey`.
#[utoipa::path(
    post,
    path = "/v1/screen",
    tag = "segment",
    operation_id = "segment_screen",
    request_body(content = Object, description = "A Segment `screen` message"),
    responses(
        (status = 200, description = "Stored and scored (or a duplicate of a message already stored): `{success, duplicate, lead}` with the lead's new scores", body = Object),
        (status = 400, description = "`invalid_json` or `invalid_message`", body = ErrorBody),
        (status = 401, description = "No key, an unknown one, or a malformed `Authorization` header", body = ErrorBody),
        (status = 403, description = "The key is neither an ingest nor an admin key", body = ErrorBody),
        (status = 413, description = "The message is over 32 KB (`too_large`)"),
    ),
    security(("api_key" = [])),
)]
async fn screen(state: State<AppState>, headers: HeaderMap, RawBody(body): RawBody) -> Result<Response, ApiError> {
    single(state, headers, body, "screen").await
}

/// Links a lead to an account whose traits become `company_*` attributes (Segment's `group`).
///
/// The body is one Segment message of that type (at most 32 KB); its `type`, if given, is
/// ignored. The key may also come as the basic-auth user name or the body's `writeKey`.
#[utoipa::path(
    post,
    path = "/v1/group",
    tag = "segment",
    operation_id = "segment_group",
    request_body(content = Object, description = "A Segment `group` message"),
    responses(
        (status = 200, description = "Stored and scored (or a duplicate of a message already stored): `{success, duplicate, lead}` with the lead's new scores", body = Object),
        (status = 400, description = "`invalid_json` or `invalid_message`", body = ErrorBody),
        (status = 401, description = "No key, an unknown one, or a malformed `Authorization` header", body = ErrorBody),
        (status = 403, description = "The key is neither an ingest nor an admin key", body = ErrorBody),
        (status = 413, description = "The message is over 32 KB (`too_large`)", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn group(state: State<AppState>, headers: HeaderMap, RawBody(body): RawBody) -> Result<Response, ApiError> {
    single(state, headers, body, "group").await
}

/// Merges the lead known by `previousId` into the user's lead (Segment's `alias`).
///
/// The body is one Segment message of that type (at most 32 KB); its `type`, if given, is
/// ignored. The key may also come as the basic-auth user name or the body's `writeKey`.
#[utoipa::path(
    post,
    path = "/v1/alias",
    tag = "segment",
    operation_id = "segment_alias",
    request_body(content = Object, description = "A Segment `alias` message"),
    responses(
        (status = 200, description = "Stored and scored (or a duplicate of a message already stored): `{success, duplicate, lead}` with the lead's new scores", body = Object),
        (status = 400, description = "`invalid_json` or `invalid_message`", body = ErrorBody),
        (status = 401, description = "No key, an unknown one, or a malformed `Authorization` header", body = ErrorBody),
        (status = 403, description = "The key is neither an ingest nor an admin key", body = ErrorBody),
        (status = 413, description = "The message is over 32 KB (`too_large`)", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn alias(state: State<AppState>, headers: HeaderMap, RawBody(body): RawBody) -> Result<Response, ApiError> {
    single(state, headers, body, "alias").await
}

async fn single(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
    kind: &'static str,
) -> Result<Response, ApiError> {
    let value: Value = parse_body(&body)?;
    let owner = auth::authorize(&state, write_key(&headers, &value)?, Scope::Ingest).await?;
    let received_at = leadscore_store::now_ms();
    let message = ingest::parse_message(&value, Some(kind), None, received_at)
        .map_err(|reason| ApiError::bad_request("invalid_message", reason))?;
    let ingested = run(&state, owner.workspace_id, vec![Ok(message)], received_at).await?;
    // A message refused while it was ingested (an id over its limit, say) is refused as a whole
    // request, as one refused when it was read.
    if let Some(Outcome::Refused { reason }) = ingested.items.first() {
        return Err(ApiError::bad_request("invalid_message", reason.clone()));
    }
    let duplicate = ingested.items.first() == Some(&Outcome::Duplicate);
    let body = json!({ "success": true, "duplicate": duplicate, "lead": ingested.leads.first() });
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

/// Several Segment messages of any types, as Segment's libraries send them.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[schema(as = SegmentBatch)]
struct Batch<'a> {
    /// The messages (at most 2,500, each at most 32 KB), each with its `type`.
    #[serde(borrow)]
    #[schema(value_type = Vec<Object>)]
    batch: Vec<&'a RawValue>,
    /// When the client sent the batch (RFC 3339), to correct its clock's skew.
    #[serde(rename = "sentAt")]
    sent_at: Option<String>,
    /// The write key, if it is not in the `Authorization` header.
    #[serde(rename = "writeKey")]
    write_key: Option<String>,
}

/// Stores several messages of any types (Segment's `batch`).
///
/// Each message is answered in `items`, in order: accepted, duplicate or refused with its reason;
/// a refused message does not refuse the others. The key may also come as the basic-auth user
/// name or the body's `writeKey`.
#[utoipa::path(
    post,
    path = "/v1/batch",
    tag = "segment",
    operation_id = "segment_batch",
    request_body = Batch,
    responses(
        (status = 200, description = "`{success, items, leads}`: an outcome per message and the leads with their new scores", body = Object),
        (status = 400, description = "`invalid_batch`: the body is not `{\"batch\": [...]}`", body = ErrorBody),
        (status = 401, description = "No key, an unknown one, or a malformed `Authorization` header", body = ErrorBody),
        (status = 403, description = "The key is neither an ingest nor an admin key", body = ErrorBody),
        (status = 413, description = "`too_many_messages`: over 2,500 messages (a body over 500 KB gets `too_large`)", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let parsed: Batch<'_> = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request("invalid_batch", format!("the body must be {{\"batch\": [messages...]}}: {e}"))
    })?;
    let key = match auth::key_from_headers(&headers)? {
        Some(key) => Some(key),
        None => parsed.write_key.clone(),
    };
    let owner = auth::authorize(&state, key, Scope::Ingest).await?;
    if parsed.batch.len() > BATCH_ITEMS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_messages",
            format!("a batch holds at most {BATCH_ITEMS} messages; this one has {}", parsed.batch.len()),
        ));
    }
    let received_at = leadscore_store::now_ms();
    let messages: Vec<Result<Message, String>> = parsed
        .batch
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            if raw.get().len() > MESSAGE_LIMIT {
                return Err(format!("batch[{i}]: a message is at most 32 KB; this one is {} bytes", raw.get().len()));
            }
            let value: Value = serde_json::from_str(raw.get()).map_err(|e| format!("batch[{i}]: {e}"))?;
            ingest::parse_message(&value, None, parsed.sent_at.as_deref(), received_at)
                .map_err(|e| format!("batch[{i}]: {e}"))
        })
        .collect();
    let ingested = run(&state, owner.workspace_id, messages, received_at).await?;
    Ok(axum::Json(json!({ "success": true, "items": ingested.items, "leads": ingested.leads })).into_response())
}

/// Stores the messages in the writer's transaction; answers once they are durable.
pub async fn run(
    state: &AppState,
    workspace_id: i64,
    messages: Vec<Result<Message, String>>,
    received_at: i64,
) -> Result<ingest::Ingested, ApiError> {
    let (models, leads) = (state.models.clone(), state.leads.clone());
    let ingested = state
        .store
        .write_coherent(move |connection| {
            ingest::ingest(connection, &models, &leads, workspace_id, messages, received_at)
        })
        .await?;
    if ingested.queued > 0 {
        state.deliveries.notify_one();
    }
    state.metrics.count_ingested(&ingested);
    Ok(ingested)
}
