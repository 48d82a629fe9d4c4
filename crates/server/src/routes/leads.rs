//! Reading leads: one lead with its scores and their explanation, a filtered and sorted list,
//! and a lead's score history.
//!
//! A lead's scores are evaluated at the moment of the read from its stored state, so that decay,
//! windows and inactivity are always current.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use leadscore_core::Timestamp;
use leadscore_store::leads::Order;
use leadscore_store::{StoreError, now_ms};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AdminScope, Authorized, ReadScope};
use crate::error::{ApiError, ApiJson, ApiPath, ErrorCode};
use crate::lifecycle::{self, Stage};
use crate::listing::{self, ListRequest, Listing, find};
use crate::openapi::ErrorBody;
use crate::scoring;
use crate::stage_moves::{self, AskedMove};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(one))
        .routes(routes!(history))
        .routes(routes!(set_stage))
        .routes(routes!(stages))
}

/// A lead with its scores, evaluated at the moment of the read.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Lead)]
struct LeadView {
    /// The lead's own numeric id.
    id: i64,
    user_id: Option<String>,
    email: Option<String>,
    /// Its lifecycle stage.
    #[schema(value_type = Stage)]
    stage: String,
    /// Its identify traits (and imported columns), by name.
    attributes: serde_json::Map<String, Value>,
    /// When the service first saw the lead (RFC 3339, like every time here).
    created_at: String,
    updated_at: String,
    /// The time of its latest event, or `null` before any.
    last_event_at: Option<String>,
    /// The instant the scores were evaluated at.
    as_of: String,
    /// The active model's version, or `null` while the workspace has none.
    model_version: Option<i64>,
    /// By score name: its value, tier, explanation and outlook (`{}` while the workspace has no
    /// model). Each is the engine's `ScoreResult` and `ScoreOutlook` serialized as they are.
    /// A score a person overrode has the effective `value` and `tier` here, and the model's own
    /// in `computed` (`{value, tier}`), which its contributions add up to.
    #[schema(value_type = BTreeMap<String, scoring::ExplainedScore>)]
    scores: BTreeMap<String, Value>,
    /// The overrides in force, by score name (`{}` without any).
    overrides: BTreeMap<String, crate::routes::overrides::OverrideView>,
}

/// A lead with its scores and their explanation.
///
/// The lead is found by its user id, else by its own numeric id.
#[utoipa::path(
    get,
    path = "/api/leads/{id}",
    tag = "leads",
    operation_id = "get_lead",
    params(("id" = String, Path, description = "The lead's user id, or its own numeric id")),
    responses(
        (status = 200, description = "The lead", body = LeadView),
        (status = 404, description = "No such lead", body = ErrorBody),
        (status = 410, description = "`erased`: the lead (by its numeric id) was erased", body = ErrorBody),
    ),
    security(("api_key" = ["read"])),
)]
async fn one(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    Authorized { owner, .. }: Authorized<ReadScope>,
) -> Result<ApiJson<LeadView>, ApiError> {
    let models = state.models.clone();
    let view = state
        .storage
        .read(move |reads| {
            // Read in the snapshot, so that every event it holds is at or before this time.
            let now = now_ms();
            let Some(lead) = find(reads, owner.workspace_id, &id)? else {
                return Ok(Err(crate::erasure::missing(reads, owner.workspace_id, &id)));
            };
            let mut scores = BTreeMap::new();
            let version = reads.active_model(owner.workspace_id)?;
            let in_force: Vec<_> =
                reads.score_overrides(lead.id)?.into_iter().filter(|o| o.lifted_at.is_none()).collect();
            if let Some(version) = &version {
                let model = models.get(reads, version)?;
                let (lead_state, _) = scoring::state_for(reads, &model, version.id, &lead)?;
                scores.extend(scoring::explain_with_outlook(&model, &lead, &lead_state, now));
                for o in &in_force {
                    let (Some(score), Some(Value::Object(result))) =
                        (model.scores().iter().find(|s| s.name() == o.score), scores.get_mut(&o.score))
                    else {
                        continue;
                    };
                    let computed_value = result.get("value").and_then(Value::as_f64).unwrap_or_default();
                    let computed_tier = result.get("tier").and_then(Value::as_str).map(str::to_string);
                    let (value, tier) = crate::saving::effective(
                        score,
                        o.value,
                        o.tier.as_deref(),
                        computed_value,
                        computed_tier.as_deref(),
                    );
                    result.insert(
                        "computed".to_string(),
                        serde_json::json!({"value": computed_value, "tier": computed_tier}),
                    );
                    result.insert("value".to_string(), serde_json::json!(value));
                    result.insert("tier".to_string(), serde_json::json!(tier));
                }
            }
            let overrides =
                in_force.iter().map(|o| (o.score.clone(), crate::routes::overrides::OverrideView::from(o))).collect();
            Ok(Ok(LeadView {
                id: lead.id,
                user_id: lead.user_id,
                email: lead.email,
                stage: lead.stage,
                attributes: lead.attributes,
                created_at: Timestamp(lead.created_at).to_string(),
                updated_at: Timestamp(lead.updated_at).to_string(),
                last_event_at: lead.last_event_at.map(|t| Timestamp(t).to_string()),
                as_of: Timestamp(now).to_string(),
                model_version: version.map(|v| v.version),
                scores,
                overrides,
            }))
        })
        .await??;
    Ok(ApiJson(view))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// The score to show and sort by, one of the active model's (default: its first with tiers,
    /// else its first).
    score: Option<String>,
    /// Only leads in this tier of the score (one of its tier labels).
    tier: Option<String>,
    /// Only leads in this lifecycle stage.
    #[param(inline)]
    stage: Option<Stage>,
    /// Only leads whose score is at least this (a finite number).
    min: Option<f64>,
    /// Only leads whose score is at most this (a finite number).
    max: Option<f64>,
    /// Only leads whose e-mail, name (`name`, or `first_name` and `last_name`) or `company`
    /// contains this text, in any case (Latin, Cyrillic...; Chinese and Japanese as written).
    /// Three characters or more are found through an index; one or two (a Chinese name is often
    /// two) by reading the leads in order, which is slower when few leads match.
    search: Option<String>,
    /// Only leads updated (an event, a change of fields) at or after this time (RFC 3339).
    #[param(format = DateTime)]
    updated_since: Option<String>,
    /// Only the lead with this e-mail, exactly but for the case of ASCII letters (to serve a
    /// person's request about their data that comes with an e-mail).
    email: Option<String>,
    /// `score` (highest first, default), `score_asc` or `last_activity`.
    #[param(inline)]
    order: Option<ListOrder>,
    /// Leads to list (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// Where the page starts: a listing's `next_cursor` or `previous_cursor` (the first page
    /// without one). Opaque, and stable: a page's address can be kept. Not with `offset`, nor
    /// with `order=last_activity`.
    cursor: Option<String>,
    /// Leads to skip (default 0). A far page costs a walk over every lead skipped: prefer
    /// `cursor`.
    #[param(format = Int64, minimum = 0, maximum = 4294967295_u32)]
    offset: Option<u32>,
}

/// How a lead listing is sorted.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
enum ListOrder {
    /// Highest score first.
    Score,
    /// Lowest score first.
    ScoreAsc,
    /// Most recent activity first.
    LastActivity,
}

/// A lead in a listing, with the stored value and tier of the score listed.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ListedLead)]
struct ListedView {
    id: i64,
    user_id: Option<String>,
    email: Option<String>,
    #[schema(value_type = Stage)]
    stage: String,
    last_event_at: Option<String>,
    /// The score's value when the lead was last scored; `null` when it has none (listed last by
    /// `order=last_activity`; the score orders list only leads that have the score, which all do
    /// once a model's rescoring is done).
    value: Option<f64>,
    /// Its tier then, or `null`.
    tier: Option<String>,
    /// Whether a person's override is in force on the score: `value` and `tier` are then the
    /// overridden ones, the model's own are in `GET /api/leads/{id}`.
    overridden: bool,
}

/// Leads listed by a score.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = LeadList)]
struct LeadListView {
    /// The score listed (`""` while the workspace has no active model).
    score: String,
    leads: Vec<ListedView>,
    /// The `cursor` of the next page, `null` on the last (and with `order=last_activity`).
    next_cursor: Option<String>,
    /// The `cursor` of the previous page, `null` on the first (and with `order=last_activity`).
    previous_cursor: Option<String>,
}

/// Leads, filtered and sorted by a score.
#[utoipa::path(
    get,
    path = "/api/leads",
    tag = "leads",
    operation_id = "list_leads",
    params(ListQuery),
    responses(
        (status = 200, description = "The score listed, and per lead its ids, e-mail, stage, last activity, value and tier", body = LeadListView),
        (status = 400, description = "`invalid_query`: an unknown parameter, a score or tier the active model does not have, an unknown stage, a `min` or `max` that is not a finite number, an `updated_since` that is not an RFC 3339 time, a `cursor` that is not one (or given with `offset`, or with `order=last_activity`), or a bad `order` or `limit`", body = ErrorBody),
    ),
    security(("api_key" = ["read"])),
)]
async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
    Authorized { owner, .. }: Authorized<ReadScope>,
) -> Result<ApiJson<LeadListView>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.body_text()))?;
    let order = match query.order.unwrap_or(ListOrder::Score) {
        ListOrder::Score => Order::ScoreDescending,
        ListOrder::ScoreAsc => Order::ScoreAscending,
        ListOrder::LastActivity => Order::LastActivity,
    };
    let updated_since = query
        .updated_since
        .as_deref()
        .map(|text| crate::routes::query_time("updated_since", text))
        .transpose()?
        .map(|t| t.0);
    let request = ListRequest {
        score: query.score,
        tier: query.tier,
        stage: query.stage.map(|s| s.to_string()),
        min: query.min,
        max: query.max,
        search: query.search,
        updated_since,
        email: query.email,
        order,
        limit: query.limit.unwrap_or(100),
        cursor: query.cursor,
        offset: query.offset,
    };
    let Listing { score, leads: rows, next, previous, .. } = listing::list(&state, owner.workspace_id, request).await?;
    let leads: Vec<ListedView> = rows
        .into_iter()
        .map(|r| ListedView {
            id: r.id,
            user_id: r.user_id,
            email: r.email,
            stage: r.stage,
            last_event_at: r.last_event_at.map(|t| Timestamp(t).to_string()),
            value: r.value,
            tier: r.tier,
            overridden: r.overridden,
        })
        .collect();
    Ok(ApiJson(LeadListView { score, leads, next_cursor: next, previous_cursor: previous }))
}

/// A change of a score's value or tier.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ScoreChange)]
struct HistoryView {
    score: String,
    value: f64,
    tier: Option<String>,
    previous_tier: Option<String>,
    at: String,
    /// `event` (an accepted message), `model vN` (an activation of version N), `rollback from vN
    /// to vM`, `time` (a tier change found by the periodic rescoring), `override`, `override
    /// lifted` or `override expired` (a person's override set, lifted by hand, or at its expiry).
    cause: String,
    /// Why the score moved since the lead's previous save, in terms that add up to the change
    /// from the previous value (as `GET /api/leads/{id}/changes` gives them). Absent for entries
    /// whose earlier evaluation could not be rebuilt exactly (written before the service kept
    /// it, or after the lead's state was rebuilt).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<leadscore_core::Term>>)]
    terms: Option<serde_json::Value>,
    /// The next tier above this entry's that points reach, by the tiers of the model version the
    /// entry was computed with (`null` in the top tier, when disqualified, or without tiers).
    next_tier: Option<String>,
    /// The points this entry's value lacked to `next_tier`.
    points_missing: Option<f64>,
    /// Only for an entry that set or lifted an override: what it did, who and why.
    #[serde(rename = "override", skip_serializing_if = "Option::is_none")]
    override_change: Option<OverrideChangeView>,
}

/// What a history entry did to a score override.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = OverrideChange)]
struct OverrideChangeView {
    /// `set` or `lifted`.
    action: &'static str,
    /// Who: the person or key that set or lifted it, `expiry`, `replaced` (a newer override),
    /// or `model vN` (a version without the override's tier).
    by: String,
    /// The reason given when set, the note (if any) when lifted.
    note: Option<String>,
}

/// A lead's score history.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = LeadHistory)]
struct LeadHistoryView {
    /// The lead's own numeric id.
    id: i64,
    /// The latest 1,000 changes, newest first.
    history: Vec<HistoryView>,
}

/// A lead's score history: each change of a score's value or tier, and its cause.
#[utoipa::path(
    get,
    path = "/api/leads/{id}/history",
    tag = "leads",
    operation_id = "lead_history",
    params(("id" = String, Path, description = "The lead's user id, or its own numeric id")),
    responses(
        (status = 200, description = "The last 1000 changes, newest first", body = LeadHistoryView),
        (status = 404, description = "No such lead", body = ErrorBody),
    ),
    security(("api_key" = ["read"])),
)]
async fn history(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    Authorized { owner, .. }: Authorized<ReadScope>,
) -> Result<ApiJson<LeadHistoryView>, ApiError> {
    let models = state.models.clone();
    let (lead_id, entries, next_tiers) = state
        .storage
        .read(move |reads| {
            let Some(lead) = find(reads, owner.workspace_id, &id)? else {
                return Err(StoreError::NotFound(format!("no lead with id or userId `{id}`")));
            };
            let entries = reads.score_history(lead.id, 1000)?;
            // Each entry's next tier, by the tiers of the model version it was computed with.
            let mut compiled = std::collections::HashMap::new();
            let mut next_tiers = Vec::with_capacity(entries.len());
            for entry in &entries {
                let model = match compiled.entry(entry.model_id) {
                    std::collections::hash_map::Entry::Occupied(found) => found.into_mut(),
                    std::collections::hash_map::Entry::Vacant(slot) => {
                        let version = reads.model_by_id(entry.model_id)?;
                        slot.insert(version.and_then(|version| models.get(reads, &version).ok()))
                    }
                };
                let next = model.as_ref().and_then(|model| {
                    let score = model.scores().iter().find(|s| s.name() == entry.score)?;
                    let (tier, missing) = score.next_tier_after(entry.value, entry.tier.as_deref())?;
                    Some((tier.to_string(), missing))
                });
                next_tiers.push(next);
            }
            Ok((lead.id, entries, next_tiers))
        })
        .await?;
    let history: Vec<HistoryView> = entries
        .into_iter()
        .zip(next_tiers)
        .map(|(e, next)| HistoryView {
            next_tier: next.as_ref().map(|(tier, _)| tier.clone()),
            points_missing: next.map(|(_, missing)| missing),
            score: e.score,
            value: e.value,
            tier: e.tier,
            previous_tier: e.previous_tier,
            at: Timestamp(e.at).to_string(),
            cause: e.cause,
            terms: e.terms.as_deref().and_then(|t| serde_json::from_str(t).ok()),
            override_change: e.override_change.map(|o| OverrideChangeView {
                action: if o.lifted { "lifted" } else { "set" },
                by: o.by,
                note: o.note,
            }),
        })
        .collect();
    Ok(ApiJson(LeadHistoryView { id: lead_id, history }))
}

/// A move of a lead to another lifecycle stage.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = StageChangeRequest)]
struct StageRequest {
    /// The stage to move to, in any case (`sal`, `SAL`).
    #[schema(schema_with = stage_in_any_case)]
    stage: String,
    /// Who made the change (a rep's e-mail, a CRM user id); default `key N`, the key's id.
    #[schema(max_length = 200)]
    actor: Option<String>,
    /// Why. Required, with a character other than white space, for nurture, disqualified and
    /// lost (a rejection's reason is feedback for the model).
    #[schema(max_length = 2000)]
    reason: Option<String>,
    /// Allow going back in the funnel or leaving disqualified, lost and customer.
    #[serde(default)]
    force: bool,
}

/// A pattern matching any of `names` in any ASCII case, as `Stage::from_str` reads them.
fn any_case(names: impl Iterator<Item = &'static str>) -> String {
    let spelled: Vec<String> = names
        .map(|name| name.chars().map(|c| format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase())).collect())
        .collect();
    format!("^(?:{})$", spelled.join("|"))
}

/// A move's `stage`: a stage's name, in any case.
fn stage_in_any_case() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(any_case(lifecycle::ALL.iter().map(|s| s.as_str()))))
        .build()
}

/// The body of a stage move: [`StageRequest`], with the rule between its fields that its derived
/// schema cannot state (a `reason` for the stages that need one).
struct StageMove;

impl utoipa::PartialSchema for StageMove {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        let needing = any_case(lifecycle::ALL.iter().filter(|s| s.needs_reason()).map(|s| s.as_str()));
        crate::openapi::json_schema(serde_json::json!({
            "allOf": [crate::openapi::reference::<StageRequest>()],
            "if": { "required": ["stage"], "properties": { "stage": { "type": "string", "pattern": needing } } },
            "then": {
                "required": ["reason"],
                "properties": { "reason": { "type": "string", "pattern": crate::openapi::NOT_BLANK } },
            },
        }))
    }
}

impl utoipa::ToSchema for StageMove {
    fn name() -> std::borrow::Cow<'static, str> {
        "StageMove".into()
    }

    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::Schema>)>) {
        schemas.push((StageRequest::name().into(), <StageRequest as utoipa::PartialSchema>::schema()));
        <StageRequest as utoipa::ToSchema>::schemas(schemas);
    }
}

/// A change of a lead's lifecycle stage.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = StageChange)]
struct StageView {
    #[schema(value_type = Stage)]
    stage: String,
    /// The stage before (`null` for none).
    #[schema(value_type = Option<Stage>)]
    previous: Option<String>,
    at: String,
    /// Who made it: the request's `actor`, `key N`, or `leadscore` for automatic moves.
    actor: String,
    reason: Option<String>,
}

/// A stage move made.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = StageMoved)]
struct StageMovedView {
    /// The lead's own numeric id.
    id: i64,
    stage: StageView,
}

/// A lead's stage and the changes that led to it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = LeadStages)]
struct LeadStagesView {
    /// The lead's own numeric id.
    id: i64,
    #[schema(value_type = Stage)]
    stage: String,
    /// Newest first.
    changes: Vec<StageView>,
}

impl From<leadscore_store::stages::StageChange> for StageView {
    fn from(change: leadscore_store::stages::StageChange) -> StageView {
        StageView {
            stage: change.stage,
            previous: change.previous,
            at: Timestamp(change.at).to_string(),
            actor: change.actor,
            reason: change.reason,
        }
    }
}

/// Moves a lead to another lifecycle stage.
///
/// Sales accepting, rejecting, qualifying or closing a lead. Going back in the funnel, or leaving
/// disqualified, lost or customer, needs `force`.
#[utoipa::path(
    post,
    path = "/api/leads/{id}/stage",
    tag = "leads",
    operation_id = "set_lead_stage",
    params(("id" = String, Path, description = "The lead's user id, or its own numeric id")),
    request_body = StageMove,
    responses(
        (status = 200, description = "The change made", body = StageMovedView),
        (status = 400, description = "`invalid_stage`, `reason_required`, `invalid_json` or `invalid_field`", body = ErrorBody),
        (status = 404, description = "No such lead", body = ErrorBody),
        (status = 409, description = "`conflict`: the move is not allowed from the lead's stage (without `force`)", body = ErrorBody),
        (status = 413, description = "`too_large`: the body is over 2 MB", body = ErrorBody),
        (status = 415, description = "`content_type`: the body is not sent as `application/json`", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn set_stage(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    Authorized { owner, .. }: Authorized<AdminScope>,
    ApiJson(request): ApiJson<StageRequest>,
) -> Result<ApiJson<StageMovedView>, ApiError> {
    let to: Stage = request.stage.parse().map_err(|e: String| ApiError::new(ErrorCode::InvalidStage, e))?;
    let actor = request.actor.filter(|a| !a.trim().is_empty()).unwrap_or_else(|| format!("key {}", owner.key_id));
    let asked = AskedMove { to, actor, reason: request.reason, force: request.force };
    let (lead_id, change) = stage_moves::move_stage(&state, owner.workspace_id, id, asked, now_ms()).await?;
    Ok(ApiJson(StageMovedView { id: lead_id, stage: StageView::from(change) }))
}

/// A lead's lifecycle stage and the changes that led to it.
#[utoipa::path(
    get,
    path = "/api/leads/{id}/stages",
    tag = "leads",
    operation_id = "lead_stages",
    params(("id" = String, Path, description = "The lead's user id, or its own numeric id")),
    responses(
        (status = 200, description = "The lead's stage and its changes, newest first", body = LeadStagesView),
        (status = 404, description = "No such lead", body = ErrorBody),
    ),
    security(("api_key" = ["read"])),
)]
async fn stages(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    Authorized { owner, .. }: Authorized<ReadScope>,
) -> Result<ApiJson<LeadStagesView>, ApiError> {
    let (lead_id, stage, changes) = state
        .storage
        .read(move |reads| {
            let Some(lead) = find(reads, owner.workspace_id, &id)? else {
                return Err(StoreError::NotFound(format!("no lead with id or userId `{id}`")));
            };
            Ok((lead.id, lead.stage, reads.stage_history(lead.id)?))
        })
        .await?;
    let changes: Vec<StageView> = changes.into_iter().map(StageView::from).collect();
    Ok(ApiJson(LeadStagesView { id: lead_id, stage, changes }))
}
