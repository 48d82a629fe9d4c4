//! Segment's HTTP Tracking API: `/v1/identify`, `/v1/track`, `/v1/page`, `/v1/screen` and
//! `/v1/batch`, so that Segment and RudderStack sources and libraries can send here unchanged.
//!
//! The write key comes as the basic-auth user name (Segment's way), a bearer token, or the
//! body's `writeKey`. Limits are Segment's: 32 KB per message, 500 KB per batch.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use leadscore_store::keys::Scope;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::auth;
use crate::error::ApiError;
use crate::ingest::{self, Message, Outcome};
use crate::state::AppState;

pub const MESSAGE_LIMIT: usize = 32 * 1024;
pub const BATCH_LIMIT: usize = 500 * 1024;
/// Messages accepted in one batch (500 KB of 32 KB messages cannot exceed it anyway).
pub const BATCH_ITEMS: usize = 2500;

pub fn routes() -> Router<AppState> {
    let single = |kind: &'static str| {
        post(move |state: State<AppState>, headers: HeaderMap, body: Bytes| single(state, headers, body, kind))
            .layer(DefaultBodyLimit::max(MESSAGE_LIMIT))
    };
    Router::new()
        .route("/v1/identify", single("identify"))
        .route("/v1/track", single("track"))
        .route("/v1/page", single("page"))
        .route("/v1/screen", single("screen"))
        .route("/v1/batch", post(batch).layer(DefaultBodyLimit::max(BATCH_LIMIT)))
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

async fn single(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
    kind: &'static str,
) -> Result<Response, ApiError> {
    let value: Value = parse_body(&body)?;
    let owner = auth::authorize(&state, write_key(&headers, &value)?, Scope::Ingest).await?;
    let received_at = leadscore_store::now_ms();
    let message = ingest::parse_message(&value, Some(kind), None, received_at)
        .map_err(|reason| ApiError::bad_request("invalid_message", reason))?;
    let ingested = run(&state, owner.workspace_id, vec![Ok(message)], received_at).await?;
    let duplicate = ingested.items.first() == Some(&Outcome::Duplicate);
    let body = json!({ "success": true, "duplicate": duplicate, "lead": ingested.leads.first() });
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

async fn batch(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    #[derive(serde::Deserialize)]
    struct Batch<'a> {
        #[serde(borrow)]
        batch: Vec<&'a RawValue>,
        #[serde(rename = "sentAt")]
        sent_at: Option<String>,
        #[serde(rename = "writeKey")]
        write_key: Option<String>,
    }
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
    let models = state.models.clone();
    let ingested = state
        .store
        .write(move |connection| ingest::ingest(connection, &models, workspace_id, messages, received_at))
        .await?;
    if ingested.queued > 0 {
        state.deliveries.notify_one();
    }
    state.metrics.count_ingested(&ingested);
    Ok(ingested)
}
