//! Webhook subscriptions and their delivery log.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use leadscore_core::Timestamp;
use leadscore_store::now_ms;
use leadscore_store::webhooks;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AdminScope, Authorized};
use crate::error::{ApiError, ApiJson, ApiPath};
use crate::openapi::ErrorBody;
use crate::state::AppState;
use crate::webhook_subscriptions::{self, Subscription};

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
#[schema(as = CreateWebhookFields)]
struct CreateRequest {
    /// Where to POST the notifications: an http:// or https:// URL (as the WHATWG URL standard
    /// reads it) of at most 2,048 characters. Unless the service runs with
    /// `--allow-private-webhooks`, its host must resolve, and only to public addresses.
    #[schema(pattern = "^[Hh][Tt][Tt][Pp][Ss]?://", max_length = 2048)]
    url: String,
    /// The kinds of notification, at least one.
    #[schema(value_type = Vec<WebhookEvent>, min_items = 1)]
    events: Vec<String>,
    /// For `score_crossed` (and only with it): the score to watch (1 to 200 characters).
    #[schema(schema_with = crate::openapi::optional_id)]
    score: Option<String>,
    /// For `score_crossed` (and only with it): the threshold to watch.
    threshold: Option<f64>,
}

/// The body of a subscription: [`CreateRequest`], with the rule between its fields that its
/// derived schema cannot state (`score` and `threshold` go with `score_crossed`, and only with it).
struct CreateWebhook;

impl utoipa::PartialSchema for CreateWebhook {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        crate::openapi::json_schema(json!({
            "allOf": [crate::openapi::reference::<CreateRequest>()],
            "if": { "required": ["events"], "properties": { "events": { "contains": { "const": "score_crossed" } } } },
            "then": {
                "required": ["score", "threshold"],
                "properties": { "score": { "type": "string" }, "threshold": { "type": "number" } },
            },
            "else": { "properties": { "score": { "type": "null" }, "threshold": { "type": "null" } } },
        }))
    }
}

impl utoipa::ToSchema for CreateWebhook {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::Schema>)>) {
        schemas.push((CreateRequest::name().into(), <CreateRequest as utoipa::PartialSchema>::schema()));
        <CreateRequest as utoipa::ToSchema>::schemas(schemas);
    }
}

/// A kind of notification (see docs/api.md for when each is sent).
#[derive(Serialize, utoipa::ToSchema)]
// Describes the names the store keeps as text (`EVENT_KINDS`, which a test compares with these).
#[allow(dead_code)]
#[serde(rename_all = "snake_case")]
enum WebhookEvent {
    TierChanged,
    BecameMql,
    StageChanged,
    ScoreCrossed,
}

/// A kind of notification delivered: one a webhook subscribes to, or `lead_erased`, which every
/// webhook is sent when a lead is erased (see docs/api.md).
#[derive(Serialize, utoipa::ToSchema)]
// Describes the names the outbox keeps as text.
#[allow(dead_code)]
#[serde(rename_all = "snake_case")]
enum DeliveredEvent {
    TierChanged,
    BecameMql,
    StageChanged,
    ScoreCrossed,
    LeadErased,
}

/// A webhook subscription, without its secret.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Webhook)]
struct WebhookView {
    id: i64,
    url: String,
    #[schema(value_type = Vec<WebhookEvent>)]
    events: Vec<String>,
    /// For `score_crossed`: the score and the threshold watched; `null` otherwise.
    score: Option<String>,
    threshold: Option<f64>,
    created_at: String,
}

impl From<&webhooks::Webhook> for WebhookView {
    fn from(webhook: &webhooks::Webhook) -> WebhookView {
        WebhookView {
            id: webhook.id,
            url: webhook.url.clone(),
            events: webhook.events.clone(),
            score: webhook.score.clone(),
            threshold: webhook.threshold,
            created_at: Timestamp(webhook.created_at).to_string(),
        }
    }
}

/// A webhook subscription just made.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = CreatedWebhook)]
struct CreatedView {
    #[serde(flatten)]
    webhook: WebhookView,
    /// The key of each delivery's signature; shown only in this answer.
    secret: String,
    /// What the subscription asks for that the active model never gives (a `score` it lacks, a
    /// `threshold` its range never crosses, `tier_changed` without tiers); empty if nothing.
    warnings: Vec<String>,
}

/// The workspace's webhook subscriptions.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = WebhookList)]
struct ListView {
    webhooks: Vec<WebhookView>,
}

/// How a notification's delivery stands.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

/// A notification and how its delivery went.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Delivery)]
struct DeliveryView {
    id: i64,
    lead_id: i64,
    #[schema(value_type = DeliveredEvent)]
    event: String,
    status: DeliveryStatus,
    attempts: i64,
    created_at: String,
    delivered_at: Option<String>,
    failed_at: Option<String>,
    /// When it is tried next, while it is pending.
    next_attempt_at: Option<String>,
    /// The receiver's last HTTP status (`null` when there was no answer).
    last_status: Option<i64>,
    /// Why the last attempt failed.
    last_error: Option<String>,
}

/// A webhook's delivery log.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = DeliveryLog)]
struct DeliveryLogView {
    /// The latest 500 notifications, newest first.
    deliveries: Vec<DeliveryView>,
}

/// A notification queued again.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Redelivery)]
struct RedeliveryView {
    /// The id of the new notification.
    id: i64,
    /// `pending`.
    status: DeliveryStatus,
}

/// Subscribes a URL to notifications of lead changes.
///
/// The answer carries the `secret` that signs each delivery; it is shown only here.
#[utoipa::path(
    post,
    path = "/api/webhooks",
    tag = "webhooks",
    operation_id = "create_webhook",
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "The webhook, with its secret and warnings", body = CreatedView),
        (status = 400, description = "`invalid_field` (with the field at fault: a `url` whose host is or resolves to a loopback, private, link-local or other non-public address, unless the service allows them) or `invalid_json`", body = ErrorBody),
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
    let asked =
        Subscription { url: request.url, events: request.events, score: request.score, threshold: request.threshold };
    let (webhook, warnings) = webhook_subscriptions::subscribe(&state, owner.workspace_id, asked, now_ms()).await?;
    let body = CreatedView { webhook: WebhookView::from(&webhook), secret: webhook.secret.clone(), warnings };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// The workspace's webhooks (without their secrets).
#[utoipa::path(
    get,
    path = "/api/webhooks",
    tag = "webhooks",
    operation_id = "list_webhooks",
    responses(
        (status = 200, description = "The subscriptions, without their secrets", body = ListView),
    ),
    security(("api_key" = ["admin"])),
)]
async fn list(
    State(state): State<AppState>,
    Authorized { owner, .. }: Authorized<AdminScope>,
) -> Result<ApiJson<ListView>, ApiError> {
    let hooks = state.storage.list_webhooks(owner.workspace_id).await?;
    Ok(ApiJson(ListView { webhooks: hooks.iter().map(WebhookView::from).collect() }))
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
        (status = 404, description = "No such webhook", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn remove(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    Authorized { owner, .. }: Authorized<AdminScope>,
) -> Result<StatusCode, ApiError> {
    let now = now_ms();
    let deleted = state.storage.delete_webhook(owner.workspace_id, id, now).await?;
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
        (status = 200, description = "The latest 500 notifications, newest first, with their status, attempts, times and last error", body = DeliveryLogView),
        (status = 400, description = "`invalid_path`: the id in the path is not an integer", body = ErrorBody),
        (status = 404, description = "No such webhook", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn deliveries(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    Authorized { owner, .. }: Authorized<AdminScope>,
) -> Result<ApiJson<DeliveryLogView>, ApiError> {
    let log = state
        .storage
        .delivery_log(owner.workspace_id, id, None, 500)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no webhook {id}")))?;
    let time = |t: Option<i64>| t.map(|t| Timestamp(t).to_string());
    let deliveries = log
        .into_iter()
        .map(|e| {
            let status = match (e.delivered_at, e.failed_at) {
                (Some(_), _) => DeliveryStatus::Delivered,
                (None, Some(_)) => DeliveryStatus::Failed,
                (None, None) => DeliveryStatus::Pending,
            };
            let next_attempt_at =
                if matches!(status, DeliveryStatus::Pending) { time(Some(e.next_attempt_at)) } else { None };
            DeliveryView {
                id: e.id,
                lead_id: e.lead_id,
                event: e.event,
                status,
                attempts: e.attempts,
                created_at: Timestamp(e.created_at).to_string(),
                delivered_at: time(e.delivered_at),
                failed_at: time(e.failed_at),
                next_attempt_at,
                last_status: e.last_status,
                last_error: e.last_error,
            }
        })
        .collect();
    Ok(ApiJson(DeliveryLogView { deliveries }))
}

/// Sends a notification again, as a new delivery.
#[utoipa::path(
    post,
    path = "/api/webhooks/deliveries/{id}/redeliver",
    tag = "webhooks",
    operation_id = "redeliver",
    params(("id" = i64, Path, description = "The delivery's id, from the delivery log")),
    responses(
        (status = 202, description = "The new notification, `pending`", body = RedeliveryView),
        (status = 400, description = "`invalid_path`: the id in the path is not an integer", body = ErrorBody),
        (status = 404, description = "No such delivery of a live webhook in this workspace", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn redeliver(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    Authorized { owner, .. }: Authorized<AdminScope>,
) -> Result<Response, ApiError> {
    let queued = webhook_subscriptions::redeliver(&state, owner.workspace_id, id, now_ms()).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(RedeliveryView { id: queued, status: DeliveryStatus::Pending }))
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadscore_store::webhooks::EVENT_KINDS;

    #[test]
    fn the_documented_event_kinds_are_those_the_store_takes() {
        let documented = [
            WebhookEvent::TierChanged,
            WebhookEvent::BecameMql,
            WebhookEvent::StageChanged,
            WebhookEvent::ScoreCrossed,
        ]
        .map(|kind| serde_json::to_value(kind).unwrap().as_str().unwrap().to_string());
        let mut stored: Vec<&str> = EVENT_KINDS.to_vec();
        let mut documented: Vec<&str> = documented.iter().map(String::as_str).collect();
        stored.sort_unstable();
        documented.sort_unstable();
        assert_eq!(documented, stored);
    }
}
