//! A person's override of a lead's score: setting it (`PUT`) and lifting it (`DELETE`). Both
//! need an admin key, as a stage move does: an override changes what the workspace's lists,
//! automation and webhooks act on, which ingest and read keys never do.

use axum::extract::{Query, State};
use leadscore_core::Timestamp;
use leadscore_store::now_ms;
use leadscore_store::overrides::ScoreOverride;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AdminScope, Authorized};
use crate::error::{ApiError, ApiJson, ApiPath, ErrorCode};
use crate::ingest::ComputedScore;
use crate::openapi::ErrorBody;
use crate::overrides::{self, AskedSet, OverrideOutcome};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(set, lift))
}

/// An override of a score: a value, a tier or both, and why.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ScoreOverrideRequest)]
struct OverrideRequest {
    /// The value to set; without it the model's value stays and moves with events.
    value: Option<f64>,
    /// The tier to set, one of the score's tier labels; without it the tier is the one the
    /// model's tiers give `value`.
    tier: Option<String>,
    /// Why (required, with a character other than white space).
    #[schema(schema_with = reason, required = true)]
    reason: Option<String>,
    /// When the override ends by itself (RFC 3339, in the future); without it, it holds until
    /// lifted.
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    /// Who sets it (a rep's e-mail, a CRM user id); default `key N`, the key's id.
    #[schema(max_length = 200)]
    actor: Option<String>,
}

/// An override's `reason`: required, 1 to 2,000 characters, not all white space (as the handler
/// checks it, answering `reason_required`).
fn reason() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .description(Some("Why (required, with a character other than white space)."))
        .min_length(Some(1))
        .max_length(Some(2000))
        .pattern(Some(crate::openapi::NOT_BLANK))
        .build()
}

/// A score override in force.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ScoreOverride)]
pub struct OverrideView {
    /// The value set, `null` when only the tier is.
    pub value: Option<f64>,
    /// The tier set, `null` when only the value is (the tier then follows from it).
    pub tier: Option<String>,
    pub reason: String,
    pub set_by: String,
    pub set_at: String,
    /// When it ends by itself, `null` for never.
    pub expires_at: Option<String>,
}

impl From<&ScoreOverride> for OverrideView {
    fn from(o: &ScoreOverride) -> OverrideView {
        OverrideView {
            value: o.value,
            tier: o.tier.clone(),
            reason: o.reason.clone(),
            set_by: o.set_by.clone(),
            set_at: Timestamp(o.set_at).to_string(),
            expires_at: o.expires_at.map(|t| Timestamp(t).to_string()),
        }
    }
}

/// A lead's score after its override changed.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = OverriddenScore)]
struct OverriddenScoreView {
    /// The lead's own numeric id.
    id: i64,
    score: String,
    /// The effective value and tier (`null` without an active model).
    value: Option<f64>,
    tier: Option<String>,
    /// The model's own value and tier, while an override is in force.
    computed: Option<ComputedScore>,
    /// The override in force, `null` once lifted.
    #[serde(rename = "override")]
    in_force: Option<OverrideView>,
}

impl OverriddenScoreView {
    fn of(score: String, outcome: OverrideOutcome) -> OverriddenScoreView {
        let row = outcome.row.as_ref();
        OverriddenScoreView {
            id: outcome.lead_id,
            score,
            value: row.map(|r| r.value),
            tier: row.and_then(|r| r.tier.clone()),
            computed: row
                .and_then(|r| r.overridden.as_ref())
                .map(|o| ComputedScore { value: o.computed_value, tier: o.computed_tier.clone() }),
            in_force: outcome.in_force.as_ref().map(OverrideView::from),
        }
    }
}

/// Overrides a lead's score: a value, a tier or both, with a reason and an optional expiry.
///
/// While it holds, the effective score (what lists rank and filter, what the automatic move to
/// MQL and webhooks act on) is the overridden one, and events keep updating the model's own,
/// shown beside it. A tier alone keeps the model's value; a value alone takes the tier the
/// model's tiers give it. An override replaces the one in force on the score, if any.
#[utoipa::path(
    put,
    path = "/api/leads/{id}/overrides/{score}",
    tag = "leads",
    operation_id = "set_score_override",
    params(
        ("id" = String, Path, description = "The lead's user id, or its own numeric id"),
        ("score" = String, Path, description = "The score's name in the active model"),
    ),
    request_body = OverrideRequest,
    responses(
        (status = 200, description = "The score with the override in force", body = OverriddenScoreView),
        (status = 400, description = "`reason_required`, `unknown_tier`, `invalid_json` or `invalid_field` (neither `value` nor `tier`, an `expires_at` that is not a future RFC 3339 time, a field over its length)", body = ErrorBody),
        (status = 404, description = "`not_found`: no such lead; `unknown_score`: the active model has no such score", body = ErrorBody),
        (status = 413, description = "`too_large`: the body is over 2 MB", body = ErrorBody),
        (status = 415, description = "`content_type`: the body is not sent as `application/json`", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn set(
    State(state): State<AppState>,
    ApiPath((id, score)): ApiPath<(String, String)>,
    Authorized { owner, .. }: Authorized<AdminScope>,
    ApiJson(request): ApiJson<OverrideRequest>,
) -> Result<ApiJson<OverriddenScoreView>, ApiError> {
    let expires_at = match request.expires_at.as_deref() {
        Some(text) => Some(Timestamp::parse_rfc3339(text).map(|t| t.0).map_err(|_| {
            ApiError::new(ErrorCode::InvalidField, format!("`expires_at` `{text}` is not an RFC 3339 time"))
        })?),
        None => None,
    };
    let by = request.actor.filter(|a| !a.trim().is_empty()).unwrap_or_else(|| format!("key {}", owner.key_id));
    let asked = AskedSet {
        score: score.clone(),
        value: request.value,
        tier: request.tier,
        reason: request.reason.unwrap_or_default(),
        expires_at,
        by,
    };
    let outcome = overrides::set(&state, owner.workspace_id, id, asked, now_ms()).await?;
    Ok(ApiJson(OverriddenScoreView::of(score, outcome)))
}

/// Who lifts an override and why.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct LiftQuery {
    /// Why it is lifted (optional).
    note: Option<String>,
    /// Who lifts it; default `key N`, the key's id.
    actor: Option<String>,
}

/// Lifts the override in force on a lead's score: the model's score is the effective one again.
#[utoipa::path(
    delete,
    path = "/api/leads/{id}/overrides/{score}",
    tag = "leads",
    operation_id = "lift_score_override",
    params(
        ("id" = String, Path, description = "The lead's user id, or its own numeric id"),
        ("score" = String, Path, description = "The score's name"),
        LiftQuery,
    ),
    responses(
        (status = 200, description = "The score, the model's own again", body = OverriddenScoreView),
        (status = 400, description = "`invalid_query`: an unknown parameter; `invalid_field`: a note over 2,000 characters", body = ErrorBody),
        (status = 404, description = "`not_found`: no such lead; `no_override`: no override is in force on the score", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn lift(
    State(state): State<AppState>,
    ApiPath((id, score)): ApiPath<(String, String)>,
    query: Result<Query<LiftQuery>, axum::extract::rejection::QueryRejection>,
    Authorized { owner, .. }: Authorized<AdminScope>,
) -> Result<ApiJson<OverriddenScoreView>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.body_text()))?;
    let by = query.actor.filter(|a| !a.trim().is_empty()).unwrap_or_else(|| format!("key {}", owner.key_id));
    if by.chars().count() > overrides::ACTOR_LIMIT {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!("`actor` has more than {} characters", overrides::ACTOR_LIMIT),
        ));
    }
    let outcome = overrides::lift(&state, owner.workspace_id, id, score.clone(), by, query.note, now_ms()).await?;
    Ok(ApiJson(OverriddenScoreView::of(score, outcome)))
}
