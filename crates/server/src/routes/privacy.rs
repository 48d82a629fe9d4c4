//! A person's rights over their data: erasing a lead (`DELETE /api/leads/{id}`), exporting
//! everything stored about it (`GET /api/leads/{id}/export`), and the erasure records with the
//! suppression of the erased identifiers (`/api/erasures`). The work is [`crate::erasure`]'s.

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
    OpenApiRouter::new().routes(routes!(erase)).routes(routes!(export)).routes(routes!(erasures)).routes(routes!(lift))
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
