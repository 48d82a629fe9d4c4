//! Why a lead's scores moved: `GET /api/leads/{id}/changes`, between two instants under the
//! active model (`from`, `to`) or between two model versions at one instant (`versions=a,b`),
//! each score's change split into terms that add up to it (the engine's
//! [`leadscore_core::changes`]).
//!
//! The states are rebuilt from the lead's stored events (up to each instant), and the lead's
//! fields are its current ones: the service keeps no earlier field values, so a change of fields
//! shows in the history's terms (written when it happened), not here.

use axum::extract::{Query, State};
use leadscore_core::{ScoreChange, Snapshot, Timestamp, model_changes};
use leadscore_store::events::StoredEvent;
use leadscore_store::{Reads, StoreError, now_ms};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Authorized, ReadScope};
use crate::error::{ApiError, ApiJson, ApiPath, ErrorCode};
use crate::listing::find;
use crate::openapi::ErrorBody;
use crate::routes::query_time;
use crate::scoring;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(changes))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ChangesQuery {
    /// The earlier instant (RFC 3339). Required unless `versions` is given.
    #[param(format = DateTime)]
    from: Option<String>,
    /// The later instant (RFC 3339; default now). With `versions`, the instant both are read at.
    #[param(format = DateTime)]
    to: Option<String>,
    /// Two model versions, `a,b` (such as `3,4`): what changing from version a to b does to the
    /// lead's scores. Not with `from`.
    #[param(pattern = r"^ *[0-9]{1,18} *, *[0-9]{1,18} *$")]
    versions: Option<String>,
}

/// Why a lead's scores moved.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = LeadChanges)]
struct ChangesView<'m> {
    /// The lead's own numeric id.
    id: i64,
    /// The earlier instant (between two instants).
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    /// The later instant, or the instant two versions are read at.
    to: String,
    /// The model versions compared: the active one twice between two instants.
    model_versions: [i64; 2],
    /// One per score of the later model (then the scores only the earlier one has): value and
    /// tier before and after, and the terms that add up to the change.
    #[schema(value_type = Vec<leadscore_core::ScoreChange>)]
    changes: Vec<ScoreChange<'m>>,
}

fn versions(text: &str) -> Result<(i64, i64), ApiError> {
    let parsed = text.split_once(',').and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
    parsed.ok_or_else(|| {
        ApiError::new(ErrorCode::InvalidQuery, format!("`versions` is two version numbers such as `3,4`, not `{text}`"))
    })
}

/// Why a lead's scores moved, term by term.
///
/// Between two instants (`from`, `to`) under the active model: time passing (decay, windows
/// expiring, inactivity), then the events stored in between, each score's change split into
/// terms by rule and cause, components and segments replaced by their scores' own terms. Or,
/// with `versions=a,b`, what changing from model version a to b does at `to`. The terms add up to
/// each change. The lead's current fields are used at both ends.
#[utoipa::path(
    get,
    path = "/api/leads/{id}/changes",
    tag = "leads",
    operation_id = "lead_changes",
    params(("id" = String, Path, description = "The lead's user id, or its own numeric id"), ChangesQuery),
    responses(
        (status = 200, description = "Each score's change and its terms", body = ChangesView),
        (status = 400, description = "`invalid_query`: an unknown parameter, a time that is not RFC 3339, neither `from` nor `versions` (or both), or `versions` that are not two numbers", body = ErrorBody),
        (status = 404, description = "No such lead, no active model, or no such model version", body = ErrorBody),
    ),
    security(("api_key" = ["read"])),
)]
async fn changes(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    query: Result<Query<ChangesQuery>, axum::extract::rejection::QueryRejection>,
    Authorized { owner, .. }: Authorized<ReadScope>,
) -> Result<ApiJson<serde_json::Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.body_text()))?;
    let to = query.to.as_deref().map(|t| query_time("to", t)).transpose()?;
    let asked = match (query.from.as_deref(), query.versions.as_deref()) {
        (Some(from), None) => Asked::Instants(query_time("from", from)?),
        (None, Some(text)) => Asked::Versions(versions(text)?),
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                ErrorCode::InvalidQuery,
                "give `from` (two instants) or `versions` (two model versions), not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::new(
                ErrorCode::InvalidQuery,
                "give `from` (why the scores moved since then) or `versions=a,b` (what a new model version does)",
            ));
        }
    };
    let models = state.models.clone();
    let answer = state
        .storage
        .read(move |reads| {
            let to = to.unwrap_or(Timestamp(now_ms()));
            let Some(lead) = find(reads, owner.workspace_id, &id)? else {
                return Err(StoreError::NotFound(format!("no lead with id or userId `{id}`")));
            };
            let events = reads.events_of(&lead)?;
            let (before_version, after_version) = match asked {
                Asked::Instants(_) => {
                    let active = reads.active_model(owner.workspace_id)?.ok_or_else(|| {
                        StoreError::NotFound(
                            "the workspace has no active model: upload one with POST /api/models".into(),
                        )
                    })?;
                    (active.clone(), active)
                }
                Asked::Versions((a, b)) => {
                    (version(reads, owner.workspace_id, a)?, version(reads, owner.workspace_id, b)?)
                }
            };
            let before_model = models.get(reads, &before_version)?;
            let after_model = models.get(reads, &after_version)?;
            let up_to =
                |at: Timestamp| -> Vec<StoredEvent> { events.iter().filter(|e| e.at <= at.0).cloned().collect() };
            let (from, changes) = match asked {
                Asked::Instants(from) => {
                    let fields = scoring::lead_values(&after_model, &lead);
                    let before = scoring::rebuilt_state(&after_model, &up_to(from));
                    let after = scoring::rebuilt_state(&after_model, &up_to(to));
                    let changes = after_model.changes(
                        Snapshot { lead: &fields, state: &before, as_of: from },
                        Snapshot { lead: &fields, state: &after, as_of: to },
                    );
                    (Some(from.to_string()), changes)
                }
                Asked::Versions(_) => {
                    let old_fields = scoring::lead_values(&before_model, &lead);
                    let new_fields = scoring::lead_values(&after_model, &lead);
                    let old_state = scoring::rebuilt_state(&before_model, &up_to(to));
                    let new_state = scoring::rebuilt_state(&after_model, &up_to(to));
                    let changes = model_changes(
                        &before_model,
                        Snapshot { lead: &old_fields, state: &old_state, as_of: to },
                        &after_model,
                        Snapshot { lead: &new_fields, state: &new_state, as_of: to },
                    );
                    (None, changes)
                }
            };
            let view = ChangesView {
                id: lead.id,
                from,
                to: to.to_string(),
                model_versions: [before_version.version, after_version.version],
                changes,
            };
            // The changes borrow the compiled models, which live in this read: serialised here.
            serde_json::to_value(&view).map_err(|e| StoreError::Corrupt(e.to_string()))
        })
        .await?;
    Ok(ApiJson(answer))
}

/// What the query asks to compare.
#[derive(Clone, Copy)]
enum Asked {
    Instants(Timestamp),
    Versions((i64, i64)),
}

fn version(
    reads: &dyn Reads,
    workspace_id: i64,
    number: i64,
) -> Result<leadscore_store::models::ModelVersion, StoreError> {
    let missing = || StoreError::NotFound(format!("no model version {number} in this workspace"));
    let id = reads.model_id_of_version(workspace_id, number)?.ok_or_else(missing)?;
    reads.model_by_id(id)?.ok_or_else(missing)
}
