//! Webhook subscriptions and their delivery log.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use leadscore_core::Timestamp;
use leadscore_store::keys::Scope;
use leadscore_store::webhooks::{self, EVENT_KINDS, NewWebhook};
use leadscore_store::{StoreError, now_ms};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth;
use crate::egress;
use crate::error::{ApiError, ApiJson, ApiPath};
use crate::openapi::ErrorBody;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(remove))
        .routes(routes!(deliveries))
        .routes(routes!(redeliver))
}

/// A webhook subscription to create.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateWebhook)]
struct CreateRequest {
    /// Where to POST the notifications (http or https). Unless the service runs with
    /// `--allow-private-webhooks`, its host must resolve, and only to public addresses.
    url: String,
    /// The kinds of notification: any of `tier_changed`, `became_mql`, `stage_changed`, `score_crossed`.
    events: Vec<String>,
    /// For `score_crossed`: the score and the threshold to watch.
    score: Option<String>,
    threshold: Option<f64>,
}

fn webhook_json(webhook: &webhooks::Webhook, with_secret: bool) -> Value {
    let mut value = json!({
        "id": webhook.id,
        "url": webhook.url,
        "events": webhook.events,
        "score": webhook.score,
        "threshold": webhook.threshold,
        "created_at": Timestamp(webhook.created_at).to_string(),
    });
    if with_secret {
        value["secret"] = json!(webhook.secret);
    }
    value
}

/// Subscribes a URL to notifications of lead changes.
///
/// The answer carries the `secret` that signs each delivery; it is shown only here.
#[utoipa::path(
    post,
    path = "/api/webhooks",
    tag = "webhooks",
    operation_id = "create_webhook",
    request_body = CreateRequest,
    responses(
        (status = 201, description = "The webhook: `{id, url, events, score, threshold, created_at, secret}`", body = Object),
        (status = 400, description = "`invalid_field` (with the field at fault: a `url` whose host is or resolves to a loopback, private, link-local or other non-public address, unless the service allows them) or `invalid_json`", body = ErrorBody),
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
    let url = reqwest::Url::parse(&request.url)
        .map_err(|e| ApiError::bad_request("invalid_field", format!("`url` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ApiError::bad_request("invalid_field", "`url` must be an http:// or https:// URL"));
    }
    if request.events.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("`events` is empty: use any of {}", EVENT_KINDS.join(", ")),
        ));
    }
    if let Some(unknown) = request.events.iter().find(|e| !EVENT_KINDS.contains(&e.as_str())) {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("`events` has `{unknown}`: use any of {}", EVENT_KINDS.join(", ")),
        ));
    }
    let crossing = request.events.iter().any(|e| e == "score_crossed");
    match (crossing, &request.score, request.threshold) {
        (true, Some(_), Some(t)) if t.is_finite() => {}
        (true, _, _) => {
            return Err(ApiError::bad_request(
                "invalid_field",
                "`score_crossed` needs `score` and a finite `threshold`",
            ));
        }
        (false, None, None) => {}
        (false, _, _) => {
            return Err(ApiError::bad_request("invalid_field", "`score` and `threshold` only go with `score_crossed`"));
        }
    }
    // Checked last: it may wait for a name to resolve. Deliveries check the address again.
    if !state.config.allow_private_webhooks {
        egress::check_url(&url).await.map_err(|refused| {
            ApiError::bad_request("invalid_field", format!("`url`: {refused}: {}", egress::HOW_TO_ALLOW))
        })?;
    }
    let new =
        NewWebhook { url: url.to_string(), events: request.events, score: request.score, threshold: request.threshold };
    let webhook = state.store.write(move |c| webhooks::create(c, owner.workspace_id, &new)).await?;
    Ok((StatusCode::CREATED, axum::Json(webhook_json(&webhook, true))).into_response())
}

/// The workspace's webhooks (without their secrets).
#[utoipa::path(
    get,
    path = "/api/webhooks",
    tag = "webhooks",
    operation_id = "list_webhooks",
    responses(
        (status = 200, description = "`{webhooks}`: each with its id, URL, events, score and threshold", body = Object),
        (status = 401, description = "No key, an unknown one, or a malformed `Authorization` header", body = ErrorBody),
        (status = 403, description = "The key is not an admin key", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<ApiJson<Value>, ApiError> {
    let owner = auth::authorize(&state, auth::key_from_headers(&headers)?, Scope::Admin).await?;
    let hooks = state.store.read(move |c| webhooks::list(c, owner.workspace_id)).await?;
    Ok(ApiJson(json!({ "webhooks": hooks.iter().map(|w| webhook_json(w, false)).collect::<Vec<_>>() })))
}

/// Deletes a webhook; its pending deliveries are marked failed.
#[utoipa::path(
    delete,
    path = "/api/webhooks/{id}",
    tag = "webhooks",
    operation_id = "delete_webhook",
    params(("id" = i64, Path, description = "The webhook's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "`invalid_path`: the id in the path is not an integer", body = ErrorBody),
        (status = 401, description = "No key, an unknown one, or a malformed `Authorization` header", body = ErrorBody),
        (status = 403, description = "The key is not an admin key", body = ErrorBody),
        (status = 404, description = "No such webhook", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    let owner = auth::authorize(&state, auth::key_from_headers(&headers)?, Scope::Admin).await?;
    let deleted = state.store.write(move |c| webhooks::delete(c, owner.workspace_id, id)).await?;
    if deleted { Ok(StatusCode::NO_CONTENT) } else { Err(ApiError::not_found(format!("no webhook {id}"))) }
}

/// A webhook's delivery log: the last 500 notifications and how their delivery went.
#[utoipa::path(
    get,
    path = "/api/webhooks/{id}/deliveries",
    tag = "webhooks",
    operation_id = "webhook_deliveries",
    params(("id" = i64, Path, description = "The webhook's id")),
    responses(
        (status = 200, description = "`{deliveries}`: each with its status (`delivered`, `failed` or `pending`), attempts, times and last error", body = Object),
        (status = 400, description = "`invalid_path`: the id in the path is not an integer", body = ErrorBody),
        (status = 401, description = "No key, an unknown one, or a malformed `Authorization` header", body = ErrorBody),
        (status = 403, description = "The key is not an admin key", body = ErrorBody),
        (status = 404, description = "No such webhook", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn deliveries(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<i64>,
) -> Result<ApiJson<Value>, ApiError> {
    let owner = auth::authorize(&state, auth::key_from_headers(&headers)?, Scope::Admin).await?;
    let log = state
        .store
        .read(move |c| {
            if webhooks::by_id(c, owner.workspace_id, id)?.is_none() {
                return Err(StoreError::NotFound(format!("no webhook {id}")));
            }
            webhooks::log(c, id, 500)
        })
        .await?;
    let time = |t: Option<i64>| t.map(|t| Timestamp(t).to_string());
    let entries: Vec<Value> = log
        .iter()
        .map(|e| {
            let status = match (e.delivered_at, e.failed_at) {
                (Some(_), _) => "delivered",
                (None, Some(_)) => "failed",
                (None, None) => "pending",
            };
            json!({
                "id": e.id, "lead_id": e.lead_id, "event": e.event, "status": status, "attempts": e.attempts,
                "created_at": time(Some(e.created_at)), "delivered_at": time(e.delivered_at), "failed_at": time(e.failed_at),
                "next_attempt_at": if status == "pending" { time(Some(e.next_attempt_at)) } else { None },
                "last_status": e.last_status, "last_error": e.last_error,
            })
        })
        .collect();
    Ok(ApiJson(json!({ "deliveries": entries })))
}

/// Sends a notification again, as a new delivery.
#[utoipa::path(
    post,
    path = "/api/webhooks/deliveries/{id}/redeliver",
    tag = "webhooks",
    operation_id = "redeliver",
    params(("id" = i64, Path, description = "The delivery's id, from the delivery log")),
    responses(
        (status = 202, description = "`{id, status}`: the new delivery, `pending`", body = Object),
        (status = 400, description = "`invalid_path`: the id in the path is not an integer", body = ErrorBody),
        (status = 401, description = "No key, an unknown one, or a malformed `Authorization` header", body = ErrorBody),
        (status = 403, description = "The key is not an admin key", body = ErrorBody),
        (status = 404, description = "No such delivery of a live webhook in this workspace", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn redeliver(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let owner = auth::authorize(&state, auth::key_from_headers(&headers)?, Scope::Admin).await?;
    let queued = state.store.write(move |c| webhooks::redeliver(c, owner.workspace_id, id, now_ms())).await?;
    state.deliveries.notify_one();
    Ok((StatusCode::ACCEPTED, axum::Json(json!({ "id": queued, "status": "pending" }))).into_response())
}
