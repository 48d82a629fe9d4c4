//! A person's rights over their data: erasing a lead (`DELETE /api/leads/{id}`), exporting
//! everything stored about it (`GET /api/leads/{id}/export`), and the erasure records with the
//! suppression of the erased identifiers (`/api/erasures`), and how long events are kept
//! (`/api/retention`, the deletions being [`crate::retention`]'s). Erasure is
//! [`crate::erasure`]'s.

use axum::extract::State;
use axum::http::StatusCode;
use leadscore_store::now_ms;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AdminScope, Authorized, ReadScope};
use crate::erasure::{self, ErasureView, LeadExport};
use crate::error::{ApiError, ApiJson, ApiPath, ErrorCode};
use crate::openapi::ErrorBody;
use crate::routes::models::key_label;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(erase))
        .routes(routes!(export))
        .routes(routes!(erasures))
        .routes(routes!(lift))
        .routes(routes!(retention, set_retention))
}

/// Erases a lead: its fields, events, scores, score and stage history, webhook notifications
/// and delivery logs, and those of the leads merged into it.
///
/// Answered once no file of the data directory holds them (deleted content is overwritten and
/// the write-ahead log truncated). Every webhook is sent `lead_erased` with the lead's numeric
/// id. The erasure is recorded (who, when, how much) without the values, and the lead's user
/// ids, anonymous ids and e-mails are suppressed: later messages naming them are dropped until an
/// admin lifts it (`POST /api/erasures/{id}/lift`).
#[utoipa::path(
    delete,
    path = "/api/leads/{id}",
    tag = "privacy",
    operation_id = "erase_lead",
    params(("id" = String, Path, description = "The lead's user id, or its own numeric id")),
    responses(
        (status = 200, description = "Erased: the erasure's record", body = ErasureView),
        (status = 404, description = "No such lead", body = ErrorBody),
        (status = 410, description = "`erased`: the lead was erased already", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn erase(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    Authorized { owner, .. }: Authorized<AdminScope>,
) -> Result<ApiJson<ErasureView>, ApiError> {
    let by = key_label(&state, &owner).await?;
    let erased = erasure::erase(state.storage.as_ref(), owner.workspace_id, id, by).await?;
    state.deliveries.notify_one();
    state.metrics.count_erasure();
    Ok(ApiJson(erased.into()))
}

/// Everything stored about a lead, as one JSON document (a person's copy of their data).
///
/// Its fields, anonymous ids and merged leads, every event with its properties, its scores now
/// with their explanation, its score and stage history and the webhook notifications about it.
#[utoipa::path(
    get,
    path = "/api/leads/{id}/export",
    tag = "privacy",
    operation_id = "export_lead",
    params(("id" = String, Path, description = "The lead's user id, or its own numeric id")),
    responses(
        (status = 200, description = "Everything stored about the lead", body = LeadExport),
        (status = 404, description = "No such lead", body = ErrorBody),
        (status = 410, description = "`erased`: the lead was erased", body = ErrorBody),
    ),
    security(("api_key" = ["read"])),
)]
async fn export(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    Authorized { owner, .. }: Authorized<ReadScope>,
) -> Result<ApiJson<LeadExport>, ApiError> {
    Ok(ApiJson(erasure::export(state.storage.as_ref(), state.models.clone(), owner.workspace_id, id).await?))
}

/// The workspace's erasures.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct ErasureList {
    /// Newest first.
    erasures: Vec<ErasureView>,
}

/// The workspace's erasures, newest first, with how many identifiers each keeps suppressed.
#[utoipa::path(
    get,
    path = "/api/erasures",
    tag = "privacy",
    operation_id = "list_erasures",
    responses((status = 200, description = "The erasures, newest first", body = ErasureList)),
    security(("api_key" = ["admin"])),
)]
async fn erasures(
    State(state): State<AppState>,
    Authorized { owner, .. }: Authorized<AdminScope>,
) -> Result<ApiJson<ErasureList>, ApiError> {
    let workspace_id = owner.workspace_id;
    let erasures = state.storage.read(move |reads| reads.erasures(workspace_id)).await?;
    Ok(ApiJson(ErasureList { erasures: erasures.into_iter().map(ErasureView::from).collect() }))
}

/// Lifts an erasure's suppression: messages naming its identifiers are stored again (a person
/// who comes back and asks to be known). The record stays, with who lifted it and when.
#[utoipa::path(
    post,
    path = "/api/erasures/{id}/lift",
    tag = "privacy",
    operation_id = "lift_suppression",
    params(("id" = i64, Path, description = "The erasure's id")),
    responses(
        (status = 200, description = "Lifted (or lifted already): the erasure's record", body = ErasureView),
        (status = 400, description = "`invalid_path`: the id is not an integer", body = ErrorBody),
        (status = 404, description = "No such erasure", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn lift(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    Authorized { owner, .. }: Authorized<AdminScope>,
) -> Result<(StatusCode, ApiJson<ErasureView>), ApiError> {
    let by = key_label(&state, &owner).await?;
    let workspace_id = owner.workspace_id;
    let lifted = state
        .storage
        .write(move |transaction| transaction.lift_suppression(workspace_id, id, &by, now_ms()))
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no erasure {id} in this workspace")))?;
    Ok((StatusCode::OK, ApiJson(lifted.into())))
}

/// How long the workspace keeps events.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct RetentionView {
    /// Events older than this many days are deleted; `null`: kept forever.
    events_days: Option<i64>,
    /// When and by whom it was set (`null` when never).
    set_at: Option<String>,
    set_by: Option<String>,
    /// What the retention does to the active model's rules (a rule that counts events forever,
    /// a `window` or an inactivity longer than it).
    warnings: Vec<String>,
}

/// A retention to set.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RetentionRequest {
    /// Days to keep events (1 to 36,500), or `null` to keep them forever: required, so that a
    /// body without it cannot remove a retention by mistake. A whole number, written `30` or
    /// `30.0` (JSON Schema calls both integers).
    #[schema(minimum = 1, maximum = 36500, required = true)]
    #[serde(deserialize_with = "days")]
    events_days: Option<i64>,
}

/// `events_days`: null, or a whole number of days from 1 to 36,500.
fn days<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    use serde::Deserialize;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else { return Ok(None) };
    match crate::error::whole_number(&number).filter(|days| (1..=36_500).contains(days)) {
        Some(days) => Ok(Some(days as i64)),
        None => Err(serde::de::Error::custom(format!(
            "`events_days` must be a whole number of days from 1 to 36500 (or null to keep events forever), not {number}"
        ))),
    }
}

async fn retention_view(state: &AppState, workspace_id: i64) -> Result<RetentionView, ApiError> {
    let models = state.models.clone();
    Ok(state
        .storage
        .read(move |reads| {
            let retention = reads.retention(workspace_id)?;
            let mut warnings = Vec::new();
            if let (Some(retention), Some(version)) = (&retention, reads.active_model(workspace_id)?) {
                let model = models.get(reads, &version)?;
                let kept = leadscore_core::Duration::from_days(retention.events_days);
                warnings =
                    leadscore_core::check::retention_warnings(&model, kept).into_iter().map(|d| d.message).collect();
            }
            Ok(RetentionView {
                events_days: retention.as_ref().map(|r| r.events_days),
                set_at: retention.as_ref().map(|r| leadscore_core::Timestamp(r.set_at).to_string()),
                set_by: retention.map(|r| r.set_by),
                warnings,
            })
        })
        .await?)
}

/// How long the workspace keeps events, and what that does to the active model's rules.
#[utoipa::path(
    get,
    path = "/api/retention",
    tag = "privacy",
    operation_id = "get_retention",
    responses((status = 200, description = "The retention (`events_days` null: forever) and its warnings", body = RetentionView)),
    security(("api_key" = ["admin"])),
)]
async fn retention(
    State(state): State<AppState>,
    Authorized { owner, .. }: Authorized<AdminScope>,
) -> Result<ApiJson<RetentionView>, ApiError> {
    Ok(ApiJson(retention_view(&state, owner.workspace_id).await?))
}

/// Sets how long the workspace keeps events.
///
/// Older events are deleted in the background (at once, then at the service's retention
/// interval), and their leads rescored from the events left: a rule that counts forever loses
/// what it counted from them (see the answer's `warnings`).
#[utoipa::path(
    put,
    path = "/api/retention",
    tag = "privacy",
    operation_id = "set_retention",
    request_body = RetentionRequest,
    responses(
        (status = 200, description = "The retention set, with what it does to the active model's rules", body = RetentionView),
        (status = 400, description = "`invalid_field`: `events_days` is not a whole number from 1 to 36,500 (or null), or `invalid_json`", body = ErrorBody),
        (status = 415, description = "`content_type`: the body is not sent as `application/json`", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn set_retention(
    State(state): State<AppState>,
    Authorized { owner, .. }: Authorized<AdminScope>,
    ApiJson(request): ApiJson<RetentionRequest>,
) -> Result<ApiJson<RetentionView>, ApiError> {
    let by = key_label(&state, &owner).await?;
    let workspace_id = owner.workspace_id;
    let days = request.events_days;
    state.storage.write(move |transaction| transaction.set_retention(workspace_id, days, &by, now_ms())).await?;
    if days.is_some() {
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(error) = crate::retention::run_pass(&state, workspace_id).await {
                tracing::error!(%error, workspace_id, "a retention pass failed");
            }
        });
    }
    Ok(ApiJson(retention_view(&state, workspace_id).await?))
}
