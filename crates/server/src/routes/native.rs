//! The native ingestion API: upsert a lead by its user id, append events in batches. Both go
//! through the same path as Segment calls (idempotent by id, scored before the answer).

use axum::extract::{DefaultBodyLimit, State};
use leadscore_core::Timestamp;
use leadscore_store::now_ms;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Authorized, IngestScope};
use crate::error::{ApiError, ApiJson, ApiPath, ErrorCode, JsonObject};
use crate::ingest::{Outcome, ScoredLead};
use crate::intake;
use crate::messages::{Kind, Message, generated_id};
use crate::openapi::ErrorBody;
use crate::state::AppState;

/// Events accepted in one `POST /api/events`.
pub const EVENTS_PER_REQUEST: usize = 1000;
pub const BODY_LIMIT: usize = 1024 * 1024;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(upsert)).routes(routes!(append)).layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// A lead's e-mail and attributes.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UpsertLead)]
struct Upsert {
    /// Sets the lead's e-mail (and its attribute `email`).
    email: Option<String>,
    /// Attributes to set; each replaces the one stored, the others stay.
    #[serde(default)]
    attributes: Map<String, Value>,
}

/// The path of `PUT /api/leads/{id}`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // Only describes the path, which `ApiPath<String>` reads.
struct UpsertPath {
    /// The lead's user id: 1 to 200 characters, not all white space. (The pattern is
    /// `openapi::NOT_BLANK`, written out because the attribute takes a literal; a test compares.)
    #[param(
        min_length = 1,
        max_length = 200,
        pattern = "[^\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    id: String,
}

/// A lead created or updated.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = UpsertedLead)]
struct UpsertAnswer {
    /// The lead with its new scores.
    lead: ScoredLead,
}

/// The answer to appended events: one outcome per event, in order.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AppendedEvents)]
struct AppendAnswer {
    items: Vec<Outcome>,
    /// Every lead the events touched, with its new scores.
    leads: Vec<ScoredLead>,
}

/// Creates or updates a lead by its user id.
///
/// Attributes given are merged key by key over those stored (a key given replaces its value,
/// others stay); the lead is rescored before the answer.
#[utoipa::path(
    put,
    path = "/api/leads/{id}",
    tag = "native",
    operation_id = "upsert_lead",
    params(UpsertPath),
    request_body = Upsert,
    responses(
        (status = 200, description = "The lead with its new scores", body = UpsertAnswer),
        (status = 400, description = "`invalid_field` (with the field at fault) or `invalid_json`", body = ErrorBody),
        (status = 409, description = "`suppressed`: the user id or e-mail is an erased person's (see `GET /api/erasures`); nothing stored", body = ErrorBody),
        (status = 413, description = "`too_large`: the body is over 1 MB", body = ErrorBody),
        (status = 415, description = "`content_type`: the body is not sent as `application/json`", body = ErrorBody),
    ),
    security(("api_key" = ["ingest"])),
)]
async fn upsert(
    State(state): State<AppState>,
    ApiPath(user_id): ApiPath<String>,
    Authorized { owner, .. }: Authorized<IngestScope>,
    ApiJson(request): ApiJson<Upsert>,
) -> Result<ApiJson<UpsertAnswer>, ApiError> {
    crate::messages::check_id("the lead id in the path", &user_id)
        .map_err(|reason| ApiError::new(ErrorCode::InvalidField, reason))?;
    let mut traits = request.attributes;
    if let Some(email) = request.email {
        traits.insert("email".into(), Value::String(email));
    }
    let now = now_ms();
    let message = Message {
        kind: Kind::Identify,
        user_id: Some(user_id),
        anonymous_id: None,
        message_id: generated_id("upsert"),
        at: now,
        traits,
        properties: Map::new(),
    };
    let ingested = intake::accept(&state, owner.workspace_id, vec![Ok(message)], now).await?;
    // The id was checked above, so ingestion has nothing left to refuse; if it did, the request
    // is refused as a whole rather than answered without its lead.
    match (ingested.items.into_iter().next(), ingested.leads.into_iter().next()) {
        (Some(Outcome::Accepted { .. }), Some(lead)) => Ok(ApiJson(UpsertAnswer { lead })),
        (Some(Outcome::Refused { reason }), _) => Err(ApiError::new(ErrorCode::InvalidField, reason)),
        (Some(Outcome::Suppressed), _) => Err(ApiError::new(
            ErrorCode::Suppressed,
            "this person's data was erased and their user id or e-mail is suppressed: nothing was stored \
             (an admin can lift the suppression: see GET /api/erasures)",
        )),
        _ => Err(ApiError::internal()),
    }
}

/// Events to append.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AppendEvents)]
struct Append {
    /// At most 1000 (more is `413 too_many_events`), each a `NativeEvent`. Each is checked on its
    /// own: one that is not valid is refused in the answer's `items`, and the others go on.
    #[schema(schema_with = native_events)]
    events: Vec<Value>,
}

/// The `events` of `POST /api/events`: any values, since each is answered on its own.
fn native_events() -> utoipa::openapi::schema::Array {
    let event = serde_json::to_value(<NativeEvent as utoipa::PartialSchema>::schema()).expect("a schema serializes");
    let item = crate::openapi::json_schema(json!({
        "anyOf": [event, { "description": "Anything else, refused in its item of the answer" }],
    }));
    utoipa::openapi::schema::ArrayBuilder::new().items(item).max_items(Some(EVENTS_PER_REQUEST)).build()
}

/// One event of `POST /api/events`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NativeEvent {
    /// The lead's user id (1 to 200 characters).
    #[schema(schema_with = crate::openapi::id)]
    lead: String,
    /// What happened: the event name rules match on (1 to 200 characters).
    #[serde(rename = "type")]
    #[schema(schema_with = crate::openapi::id)]
    event_type: String,
    /// RFC 3339 with an offset, at most 5 minutes ahead of the server's clock; default: now.
    #[schema(format = DateTime)]
    at: Option<String>,
    /// Makes retries safe (1 to 200 characters); generated when absent, so that sending the
    /// event again stores it twice.
    #[schema(schema_with = crate::openapi::optional_id)]
    id: Option<String>,
    #[serde(default)]
    properties: Map<String, Value>,
}

fn parse_event(index: usize, value: Value, now: i64) -> Result<Message, String> {
    let JsonObject(event) =
        serde_json::from_value::<JsonObject<NativeEvent>>(value).map_err(|e| format!("events[{index}]: {e}"))?;
    if event.lead.trim().is_empty() {
        return Err(format!("events[{index}]: `lead` is empty"));
    }
    if event.event_type.trim().is_empty() {
        return Err(format!("events[{index}]: `type` is empty"));
    }
    let at = match &event.at {
        Some(text) => Timestamp::parse_rfc3339(text).map_err(|e| format!("events[{index}]: `at`: {e}"))?.0,
        None => now,
    };
    if at > now + 5 * 60 * 1000 {
        return Err(format!("events[{index}]: `at` {} is in the future", Timestamp(at)));
    }
    Ok(Message {
        kind: Kind::Track(event.event_type),
        user_id: Some(event.lead),
        anonymous_id: None,
        message_id: event.id.unwrap_or_else(|| generated_id("event")),
        at,
        traits: Map::new(),
        properties: event.properties,
    })
}

/// Appends events to leads.
///
/// At most 1000 events; each is answered in `items`, like `/v1/batch`: accepted,
/// duplicate or refused with its reason.
#[utoipa::path(
    post,
    path = "/api/events",
    tag = "native",
    operation_id = "append_events",
    request_body = Append,
    responses(
        (status = 200, description = "An outcome per event (accepted, duplicate, or refused with its reason) and the leads with their new scores", body = AppendAnswer),
        (status = 400, description = "`invalid_field` or `invalid_json`: the body is not `{\"events\": [...]}`", body = ErrorBody),
        (status = 413, description = "`too_many_events` (over 1000), or `too_large`: the body is over 1 MB", body = ErrorBody),
        (status = 415, description = "`content_type`: the body is not sent as `application/json`", body = ErrorBody),
    ),
    security(("api_key" = ["ingest"])),
)]
async fn append(
    State(state): State<AppState>,
    Authorized { owner, .. }: Authorized<IngestScope>,
    ApiJson(request): ApiJson<Append>,
) -> Result<ApiJson<AppendAnswer>, ApiError> {
    if request.events.len() > EVENTS_PER_REQUEST {
        return Err(ApiError::new(
            ErrorCode::TooManyEvents,
            format!("send at most {EVENTS_PER_REQUEST} events per request; this one has {}", request.events.len()),
        ));
    }
    let now = now_ms();
    let messages = request.events.into_iter().enumerate().map(|(i, v)| parse_event(i, v, now)).collect();
    let ingested = intake::accept(&state, owner.workspace_id, messages, now).await?;
    Ok(ApiJson(AppendAnswer { items: ingested.items, leads: ingested.leads }))
}
