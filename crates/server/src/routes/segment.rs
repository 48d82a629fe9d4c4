//! Segment's HTTP Tracking API: `/v1/identify`, `/v1/track`, `/v1/page`, `/v1/screen` and
//! `/v1/batch`, so that Segment and RudderStack sources and libraries can send here unchanged.
//!
//! The write key comes as the basic-auth user name (Segment's way), a bearer token, or the
//! body's `writeKey`. Limits are Segment's: 32 KB per message, 500 KB per batch.
//!
//! Websites send with Segment's browser library (analytics.js, `@segment/analytics-next`),
//! which uses the short paths (`/v1/t`, `/v1/p`, `/v1/i`, `/v1/g`, `/v1/a`, `/v1/b`), sends
//! `text/plain` bodies (so that `sendBeacon` and simple requests can carry them; bodies are read
//! as JSON whatever their type), and first fetches its settings
//! (`/v1/projects/{writeKey}/settings`). A browser key's answers carry no scores: it reads
//! nothing.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use leadscore_store::keys::Scope;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::abuse::{self, Bots};
use crate::auth;
use crate::cors;
use crate::error::{ApiError, ApiJson, ApiPath, ErrorCode, JsonObject, RawBody};
use crate::ingest::{ANONYMOUS_CAP_REFUSAL, Ingested, Outcome, ScoredLead, Sender};
use crate::intake;
use crate::messages::{self, ID_LIMIT, Message};
use crate::openapi::{BLANK, ErrorBody, NOT_BLANK, json_schema};
use crate::state::AppState;

pub const MESSAGE_LIMIT: usize = 32 * 1024;
pub const BATCH_LIMIT: usize = 500 * 1024;
/// Messages accepted in one batch (500 KB of 32 KB messages cannot exceed it anyway).
pub const BATCH_ITEMS: usize = 2500;
/// What a batch's messages are told when a bot's request is ignored.
const BOT_IGNORED: &str = "ignored: the request's User-Agent is a known bot's";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(identify).layer(DefaultBodyLimit::max(MESSAGE_LIMIT)))
        .routes(routes!(track).layer(DefaultBodyLimit::max(MESSAGE_LIMIT)))
        .routes(routes!(page).layer(DefaultBodyLimit::max(MESSAGE_LIMIT)))
        .routes(routes!(screen).layer(DefaultBodyLimit::max(MESSAGE_LIMIT)))
        .routes(routes!(group).layer(DefaultBodyLimit::max(MESSAGE_LIMIT)))
        .routes(routes!(alias).layer(DefaultBodyLimit::max(MESSAGE_LIMIT)))
        .routes(routes!(batch).layer(DefaultBodyLimit::max(BATCH_LIMIT)))
        .routes(routes!(identify_short).layer(DefaultBodyLimit::max(MESSAGE_LIMIT)))
        .routes(routes!(track_short).layer(DefaultBodyLimit::max(MESSAGE_LIMIT)))
        .routes(routes!(page_short).layer(DefaultBodyLimit::max(MESSAGE_LIMIT)))
        .routes(routes!(group_short).layer(DefaultBodyLimit::max(MESSAGE_LIMIT)))
        .routes(routes!(alias_short).layer(DefaultBodyLimit::max(MESSAGE_LIMIT)))
        .routes(routes!(batch_short).layer(DefaultBodyLimit::max(BATCH_LIMIT)))
        .routes(routes!(settings))
}

/// The request's headers and the client's address (when the connection says it).
struct Client {
    headers: HeaderMap,
    address: Option<IpAddr>,
}

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Client, Self::Rejection> {
        let address = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
        Ok(Client { headers: parts.headers.clone(), address })
    }
}

/// Who sends, and what to do with its messages.
struct Caller {
    workspace_id: i64,
    browser: bool,
    address: Option<IpAddr>,
    /// A bot's request, answered without storing anything.
    ignore: bool,
    /// A bot's request, stored with `bot: true`.
    mark: bool,
}

/// Who may send to these routes: ingest, admin and browser keys; a browser key only from the
/// origins it is bound to, within its rate limits and its address's (`abuse.rs`).
async fn caller(state: &AppState, client: &Client, key: Option<String>) -> Result<Caller, ApiError> {
    let owner = auth::authorize(state, key, Scope::Browser).await?;
    cors::check_origin(&owner, &client.headers)?;
    let mut caller = Caller {
        workspace_id: owner.workspace_id,
        browser: false,
        address: client.address,
        ignore: false,
        mark: false,
    };
    if owner.scope != Scope::Browser {
        return Ok(caller);
    }
    caller.browser = true;
    let guard = &state.guard;
    let now = Instant::now();
    let limited = |outcome: &'static str, wait: std::time::Duration| {
        state.metrics.browser_limited(outcome, 1);
        let seconds = u32::try_from(wait.as_secs_f64().ceil() as u64).unwrap_or(u32::MAX).max(1);
        ApiError {
            retry_after: Some(seconds),
            ..ApiError::new(ErrorCode::RateLimited, "too many requests with this browser key or from this address")
        }
    };
    guard.keys.take(&owner.key_id, now).map_err(|wait| limited("key_rate", wait))?;
    if let Some(address) = client.address {
        guard.addresses.take(&address, now).map_err(|wait| limited("address_rate", wait))?;
    }
    let agent = client.headers.get(axum::http::header::USER_AGENT).and_then(|v| v.to_str().ok());
    if abuse::is_bot(agent, guard.limits.allow_headless) {
        match guard.limits.bots {
            Bots::Ignore => {
                state.metrics.browser_limited("bot_ignored", 1);
                caller.ignore = true;
            }
            Bots::Mark => {
                state.metrics.browser_limited("bot_marked", 1);
                caller.mark = true;
            }
            Bots::Allow => {}
        }
    }
    Ok(caller)
}

impl Caller {
    /// Accepts `messages` as this caller may: a browser key's new anonymous leads within its
    /// address's hourly cap (the part of the reservation left unused is given back).
    async fn accept(
        &self,
        state: &AppState,
        mut messages: Vec<Result<Message, String>>,
        received_at: i64,
    ) -> Result<Ingested, ApiError> {
        if !self.browser {
            return intake::accept_from(state, self.workspace_id, messages, received_at, Sender::Trusted).await;
        }
        if self.mark {
            for message in messages.iter_mut().flatten() {
                message.properties.insert("bot".to_string(), Value::Bool(true));
                message.traits.insert("bot".to_string(), Value::Bool(true));
            }
        }
        // At most the messages without a user id make anonymous leads.
        let wanted = messages.iter().flatten().filter(|m| m.user_id.is_none()).count();
        let wanted = u32::try_from(wanted).unwrap_or(u32::MAX);
        let cap = &state.guard.anonymous;
        let granted = match self.address {
            Some(address) => cap.reserve(address, wanted, Instant::now()),
            // No address to count against (a caller inside this process): the cap per request.
            None => wanted.min(state.guard.limits.anonymous_per_address_per_hour),
        };
        let sender = Sender::Browser { new_anonymous: granted };
        let ingested = intake::accept_from(state, self.workspace_id, messages, received_at, sender).await;
        let used = ingested.as_ref().map_or(0, |i| i.new_anonymous);
        if let Some(address) = self.address {
            cap.give_back(address, granted.saturating_sub(used));
        }
        let ingested = ingested?;
        let capped = ingested
            .items
            .iter()
            .filter(|item| matches!(item, Outcome::Refused { reason } if reason == ANONYMOUS_CAP_REFUSAL))
            .count();
        state.metrics.browser_limited("anonymous_cap", capped as u64);
        Ok(ingested)
    }
}

fn parse_body<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::InvalidJson, format!("the body is not valid JSON: {e}")))
}

/// The key from the headers, else the body's `writeKey`. The key can be in the body, so these
/// routes authorize once they have read it, rather than with [`auth::Authorized`].
fn write_key(headers: &HeaderMap, in_body: Option<&str>) -> Result<Option<String>, ApiError> {
    if let Some(key) = auth::key_from_headers(headers)? {
        return Ok(Some(key));
    }
    Ok(in_body.map(str::to_string))
}

/// The schema of a Segment message sent to the route of `kind`, as [`messages::parse_message`]
/// reads it: ids are strings or numbers, an empty (or blank) string counts as absent, times are
/// RFC 3339 with an offset, and other fields are accepted and ignored.
fn message_schema(kind: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    // An id the message must carry, and one it may: 1 to 200 characters, or a number.
    let present = json!({ "anyOf": [
        { "type": "string", "minLength": 1, "maxLength": ID_LIMIT, "pattern": NOT_BLANK },
        { "type": "number" },
    ] });
    let optional = json!({ "anyOf": [
        { "type": "string", "maxLength": ID_LIMIT },
        { "type": "string", "pattern": BLANK },
        { "type": ["number", "null"] },
    ] });
    let text = json!({ "type": ["string", "number", "null"] });
    // A message more than 5 minutes in the server's future is refused: no schema can say so.
    let time = json!({ "anyOf": [
        { "type": "string", "format": "date-time" },
        { "type": "string", "pattern": BLANK },
        { "type": "null" },
    ] });
    let fields = json!({ "type": ["object", "null"] });
    let mut properties = json!({
        "type": { "type": ["string", "number", "null"], "description": "Ignored: the route says the type" },
        "userId": optional,
        "anonymousId": optional,
        "messageId": present,
        "timestamp": time,
        "originalTimestamp": time,
        "sentAt": time,
        "properties": fields,
        "traits": fields,
        "name": text,
        "context": { "description": "Read for `context.traits` when `traits` is absent or empty" },
        "writeKey": { "description": "The key, when it is not in the `Authorization` header" },
    });
    let mut required = vec!["messageId"];
    match kind {
        "track" => {
            properties["event"] = present.clone();
            required.push("event");
        }
        "alias" => {
            properties["previousId"] = present.clone();
            properties["userId"] = present.clone();
            required.extend(["previousId", "userId"]);
        }
        "group" => {
            properties["groupId"] = present.clone();
            required.push("groupId");
        }
        _ => {}
    }
    json_schema(json!({
        "type": "object",
        "description": format!("A Segment `{kind}` message (at most 32 KB)"),
        "required": required,
        "properties": properties,
        "anyOf": [
            { "required": ["userId"], "properties": { "userId": present } },
            { "required": ["anonymousId"], "properties": { "anonymousId": present } },
        ],
    }))
}

/// Declares the schema of a Segment message of one type, for the route of that type.
macro_rules! segment_message {
    ($type_name:ident, $kind:literal) => {
        #[doc = concat!("A Segment `", $kind, "` message.")]
        struct $type_name;

        impl utoipa::PartialSchema for $type_name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
                message_schema($kind)
            }
        }

        impl utoipa::ToSchema for $type_name {
            fn name() -> std::borrow::Cow<'static, str> {
                stringify!($type_name).into()
            }
        }
    };
}

segment_message!(SegmentIdentify, "identify");
segment_message!(SegmentTrack, "track");
segment_message!(SegmentPage, "page");
segment_message!(SegmentScreen, "screen");
segment_message!(SegmentGroup, "group");
segment_message!(SegmentAlias, "alias");

/// The answer to one Segment message.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct SegmentAnswer {
    /// Always `true`: a refused message is answered 400.
    success: bool,
    /// Whether the message id was already stored (nothing changed).
    duplicate: bool,
    /// The lead's scores after the message; `null` for a duplicate, and for a browser key.
    lead: Option<ScoredLead>,
}

/// The answer to a batch: one outcome per message, in order.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct SegmentBatchAnswer {
    /// Always `true`: refused messages are answered in `items`.
    success: bool,
    items: Vec<Outcome>,
    /// Every lead the batch touched, in the order they were first touched, with its new scores
    /// (none for a browser key).
    leads: Vec<ScoredLead>,
}

/// Identifies a lead: its user id and traits (Segment's `identify`).
///
/// The body is one Segment message of that type (at most 32 KB); its `type`, if given, is
/// ignored. The key may also come as the basic-auth user name or the body's `writeKey`; an
/// ingest, admin or browser key.
#[utoipa::path(
    post,
    path = "/v1/identify",
    tag = "segment",
    operation_id = "segment_identify",
    request_body(content = SegmentIdentify, description = "A Segment `identify` message"),
    responses(
        (status = 200, description = "Stored and scored (or a duplicate of a message already stored), with the lead's new scores", body = SegmentAnswer),
        (status = 400, description = "`invalid_json`, or `invalid_message`: the message is invalid, or more than 5 minutes in the server's future (send `sentAt` to correct a client's clock)", body = ErrorBody),
        (status = 413, description = "The message is over 32 KB (`too_large`)", body = ErrorBody),
        (status = 429, description = "`rate_limited`: a browser key's request over its key's or its address's rate, or (single messages) a new anonymous visitor over its address's hourly cap; see `Retry-After`", body = ErrorBody),
    ),
    security(("api_key" = ["browser"])),
)]
async fn identify(state: State<AppState>, client: Client, RawBody(body): RawBody) -> Result<Response, ApiError> {
    single(state, client, body, "identify").await
}

/// Records an event of a lead (Segment's `track`).
///
/// The body is one Segment message of that type (at most 32 KB); its `type`, if given, is
/// ignored. The key may also come as the basic-auth user name or the body's `writeKey`; an
/// ingest, admin or browser key.
#[utoipa::path(
    post,
    path = "/v1/track",
    tag = "segment",
    operation_id = "segment_track",
    request_body(content = SegmentTrack, description = "A Segment `track` message"),
    responses(
        (status = 200, description = "Stored and scored (or a duplicate of a message already stored), with the lead's new scores", body = SegmentAnswer),
        (status = 400, description = "`invalid_json`, or `invalid_message`: the message is invalid, or more than 5 minutes in the server's future (send `sentAt` to correct a client's clock)", body = ErrorBody),
        (status = 413, description = "The message is over 32 KB (`too_large`)", body = ErrorBody),
        (status = 429, description = "`rate_limited`: a browser key's request over its key's or its address's rate, or (single messages) a new anonymous visitor over its address's hourly cap; see `Retry-After`", body = ErrorBody),
    ),
    security(("api_key" = ["browser"])),
)]
async fn track(state: State<AppState>, client: Client, RawBody(body): RawBody) -> Result<Response, ApiError> {
    single(state, client, body, "track").await
}

/// Records a page view (Segment's `page`).
///
/// The body is one Segment message of that type (at most 32 KB); its `type`, if given, is
/// ignored. The key may also come as the basic-auth user name or the body's `writeKey`; an
/// ingest, admin or browser key.
#[utoipa::path(
    post,
    path = "/v1/page",
    tag = "segment",
    operation_id = "segment_page",
    request_body(content = SegmentPage, description = "A Segment `page` message"),
    responses(
        (status = 200, description = "Stored and scored (or a duplicate of a message already stored), with the lead's new scores", body = SegmentAnswer),
        (status = 400, description = "`invalid_json`, or `invalid_message`: the message is invalid, or more than 5 minutes in the server's future (send `sentAt` to correct a client's clock)", body = ErrorBody),
        (status = 413, description = "The message is over 32 KB (`too_large`)", body = ErrorBody),
        (status = 429, description = "`rate_limited`: a browser key's request over its key's or its address's rate, or (single messages) a new anonymous visitor over its address's hourly cap; see `Retry-After`", body = ErrorBody),
    ),
    security(("api_key" = ["browser"])),
)]
async fn page(state: State<AppState>, client: Client, RawBody(body): RawBody) -> Result<Response, ApiError> {
    single(state, client, body, "page").await
}

/// Records a screen view in a mobile app (Segment's `screen`).
///
/// The body is one Segment message of that type (at most 32 KB); its `type`, if given, is
/// ignored. The key may also come as the basic-auth user name or the body's `writeKey`; an
/// ingest, admin or browser key.
#[utoipa::path(
    post,
    path = "/v1/screen",
    tag = "segment",
    operation_id = "segment_screen",
    request_body(content = SegmentScreen, description = "A Segment `screen` message"),
    responses(
        (status = 200, description = "Stored and scored (or a duplicate of a message already stored), with the lead's new scores", body = SegmentAnswer),
        (status = 400, description = "`invalid_json`, or `invalid_message`: the message is invalid, or more than 5 minutes in the server's future (send `sentAt` to correct a client's clock)", body = ErrorBody),
        (status = 413, description = "The message is over 32 KB (`too_large`)", body = ErrorBody),
        (status = 429, description = "`rate_limited`: a browser key's request over its key's or its address's rate, or (single messages) a new anonymous visitor over its address's hourly cap; see `Retry-After`", body = ErrorBody),
    ),
    security(("api_key" = ["browser"])),
)]
async fn screen(state: State<AppState>, client: Client, RawBody(body): RawBody) -> Result<Response, ApiError> {
    single(state, client, body, "screen").await
}

/// Links a lead to an account whose traits become `company_*` attributes (Segment's `group`).
///
/// The body is one Segment message of that type (at most 32 KB); its `type`, if given, is
/// ignored. The key may also come as the basic-auth user name or the body's `writeKey`; an
/// ingest, admin or browser key.
#[utoipa::path(
    post,
    path = "/v1/group",
    tag = "segment",
    operation_id = "segment_group",
    request_body(content = SegmentGroup, description = "A Segment `group` message"),
    responses(
        (status = 200, description = "Stored and scored (or a duplicate of a message already stored), with the lead's new scores", body = SegmentAnswer),
        (status = 400, description = "`invalid_json`, or `invalid_message`: the message is invalid, or more than 5 minutes in the server's future (send `sentAt` to correct a client's clock)", body = ErrorBody),
        (status = 413, description = "The message is over 32 KB (`too_large`)", body = ErrorBody),
        (status = 429, description = "`rate_limited`: a browser key's request over its key's or its address's rate, or (single messages) a new anonymous visitor over its address's hourly cap; see `Retry-After`", body = ErrorBody),
    ),
    security(("api_key" = ["browser"])),
)]
async fn group(state: State<AppState>, client: Client, RawBody(body): RawBody) -> Result<Response, ApiError> {
    single(state, client, body, "group").await
}

/// Merges the lead known by `previousId` into the user's lead (Segment's `alias`).
///
/// The body is one Segment message of that type (at most 32 KB); its `type`, if given, is
/// ignored. The key may also come as the basic-auth user name or the body's `writeKey`; an
/// ingest, admin or browser key.
#[utoipa::path(
    post,
    path = "/v1/alias",
    tag = "segment",
    operation_id = "segment_alias",
    request_body(content = SegmentAlias, description = "A Segment `alias` message"),
    responses(
        (status = 200, description = "Stored and scored (or a duplicate of a message already stored), with the lead's new scores", body = SegmentAnswer),
        (status = 400, description = "`invalid_json`, or `invalid_message`: the message is invalid, or more than 5 minutes in the server's future (send `sentAt` to correct a client's clock)", body = ErrorBody),
        (status = 413, description = "The message is over 32 KB (`too_large`)", body = ErrorBody),
        (status = 429, description = "`rate_limited`: a browser key's request over its key's or its address's rate, or (single messages) a new anonymous visitor over its address's hourly cap; see `Retry-After`", body = ErrorBody),
    ),
    security(("api_key" = ["browser"])),
)]
async fn alias(state: State<AppState>, client: Client, RawBody(body): RawBody) -> Result<Response, ApiError> {
    single(state, client, body, "alias").await
}

async fn single(
    State(state): State<AppState>,
    client: Client,
    body: axum::body::Bytes,
    kind: &'static str,
) -> Result<Response, ApiError> {
    let value: Value = parse_body(&body)?;
    let key = write_key(&client.headers, value.get("writeKey").and_then(Value::as_str))?;
    let caller = caller(&state, &client, key).await?;
    let received_at = leadscore_store::now_ms();
    let message = messages::parse_message(&value, Some(kind), None, received_at)
        .map_err(|reason| ApiError::new(ErrorCode::InvalidMessage, reason))?;
    if caller.ignore {
        return Ok(axum::Json(SegmentAnswer { success: true, duplicate: false, lead: None }).into_response());
    }
    let ingested = caller.accept(&state, vec![Ok(message)], received_at).await?;
    // A message refused while it was ingested (an id over its limit, say) is refused as a whole
    // request, as one refused when it was read.
    if let Some(Outcome::Refused { reason }) = ingested.items.first() {
        if reason == ANONYMOUS_CAP_REFUSAL {
            return Err(ApiError { retry_after: Some(3600), ..ApiError::new(ErrorCode::RateLimited, reason.clone()) });
        }
        return Err(ApiError::new(ErrorCode::InvalidMessage, reason.clone()));
    }
    let duplicate = ingested.items.first() == Some(&Outcome::Duplicate);
    let lead = ingested.leads.into_iter().next().filter(|_| !caller.browser);
    let body = SegmentAnswer { success: true, duplicate, lead };
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

/// Several Segment messages of any types, as Segment's libraries send them.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[schema(as = SegmentBatch)]
struct Batch<'a> {
    /// The messages (at most 2,500, each at most 32 KB), each with its `type` and otherwise as
    /// the single routes take them. Each is checked on its own: an invalid one is refused in the
    /// answer's `items`, and the others go on.
    #[serde(borrow)]
    #[schema(schema_with = any_messages)]
    batch: Vec<&'a RawValue>,
    /// When the client sent the batch (RFC 3339), to correct its clock's skew.
    #[serde(rename = "sentAt")]
    sent_at: Option<String>,
    /// The write key, if it is not in the `Authorization` header.
    #[serde(rename = "writeKey")]
    write_key: Option<String>,
}

/// A batch's messages: any JSON values, each answered on its own.
fn any_messages() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(utoipa::openapi::schema::ObjectBuilder::new().schema_type(utoipa::openapi::schema::SchemaType::AnyValue))
        .max_items(Some(BATCH_ITEMS))
        .build()
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
        (status = 200, description = "An outcome per message (accepted, duplicate, or refused with its reason) and the leads with their new scores", body = SegmentBatchAnswer),
        (status = 400, description = "`invalid_batch`: the body is not `{\"batch\": [...]}`", body = ErrorBody),
        (status = 413, description = "`too_many_messages`: over 2,500 messages (a body over 500 KB gets `too_large`)", body = ErrorBody),
        (status = 429, description = "`rate_limited`: a browser key's request over its key's or its address's rate, or (single messages) a new anonymous visitor over its address's hourly cap; see `Retry-After`", body = ErrorBody),
    ),
    security(("api_key" = ["browser"])),
)]
async fn batch(state: State<AppState>, client: Client, RawBody(body): RawBody) -> Result<Response, ApiError> {
    batch_of(state, client, body).await
}

async fn batch_of(
    State(state): State<AppState>,
    client: Client,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let JsonObject(parsed) = serde_json::from_slice::<JsonObject<Batch<'_>>>(&body).map_err(|e| {
        ApiError::new(ErrorCode::InvalidBatch, format!("the body must be {{\"batch\": [messages...]}}: {e}"))
    })?;
    let caller = caller(&state, &client, write_key(&client.headers, parsed.write_key.as_deref())?).await?;
    if parsed.batch.len() > BATCH_ITEMS {
        return Err(ApiError::new(
            ErrorCode::TooManyMessages,
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
            messages::parse_message(&value, None, parsed.sent_at.as_deref(), received_at)
                .map_err(|e| format!("batch[{i}]: {e}"))
        })
        .collect();
    if caller.ignore {
        let items = vec![Outcome::Refused { reason: BOT_IGNORED.to_string() }; messages.len()];
        return Ok(axum::Json(SegmentBatchAnswer { success: true, items, leads: Vec::new() }).into_response());
    }
    let ingested = caller.accept(&state, messages, received_at).await?;
    let leads = if caller.browser { Vec::new() } else { ingested.leads };
    Ok(axum::Json(SegmentBatchAnswer { success: true, items: ingested.items, leads }).into_response())
}

/// Identifies a lead: `/v1/identify` at the short path Segment's browser library uses.
///
/// The same as `POST /v1/identify`; the body may be sent as `text/plain`.
#[utoipa::path(
    post,
    path = "/v1/i",
    tag = "segment",
    operation_id = "segment_identify_short",
    request_body(content = SegmentIdentify, description = "A Segment `identify` message"),
    responses(
        (status = 200, description = "Stored and scored (or a duplicate of a message already stored), with the lead's new scores (none for a browser key)", body = SegmentAnswer),
        (status = 400, description = "`invalid_json`, or `invalid_message`: the message is invalid, or more than 5 minutes in the server's future (send `sentAt` to correct a client's clock)", body = ErrorBody),
        (status = 413, description = "The message is over 32 KB (`too_large`)", body = ErrorBody),
        (status = 429, description = "`rate_limited`: a browser key's request over its key's or its address's rate, or (single messages) a new anonymous visitor over its address's hourly cap; see `Retry-After`", body = ErrorBody),
    ),
    security(("api_key" = ["browser"])),
)]
async fn identify_short(state: State<AppState>, client: Client, RawBody(body): RawBody) -> Result<Response, ApiError> {
    single(state, client, body, "identify").await
}

/// Records an event of a lead: `/v1/track` at the short path Segment's browser library uses.
///
/// The same as `POST /v1/track`; the body may be sent as `text/plain`.
#[utoipa::path(
    post,
    path = "/v1/t",
    tag = "segment",
    operation_id = "segment_track_short",
    request_body(content = SegmentTrack, description = "A Segment `track` message"),
    responses(
        (status = 200, description = "Stored and scored (or a duplicate of a message already stored), with the lead's new scores (none for a browser key)", body = SegmentAnswer),
        (status = 400, description = "`invalid_json`, or `invalid_message`: the message is invalid, or more than 5 minutes in the server's future (send `sentAt` to correct a client's clock)", body = ErrorBody),
        (status = 413, description = "The message is over 32 KB (`too_large`)", body = ErrorBody),
        (status = 429, description = "`rate_limited`: a browser key's request over its key's or its address's rate, or (single messages) a new anonymous visitor over its address's hourly cap; see `Retry-After`", body = ErrorBody),
    ),
    security(("api_key" = ["browser"])),
)]
async fn track_short(state: State<AppState>, client: Client, RawBody(body): RawBody) -> Result<Response, ApiError> {
    single(state, client, body, "track").await
}

/// Records a page view: `/v1/page` at the short path Segment's browser library uses.
///
/// The same as `POST /v1/page`; the body may be sent as `text/plain`.
#[utoipa::path(
    post,
    path = "/v1/p",
    tag = "segment",
    operation_id = "segment_page_short",
    request_body(content = SegmentPage, description = "A Segment `page` message"),
    responses(
        (status = 200, description = "Stored and scored (or a duplicate of a message already stored), with the lead's new scores (none for a browser key)", body = SegmentAnswer),
        (status = 400, description = "`invalid_json`, or `invalid_message`: the message is invalid, or more than 5 minutes in the server's future (send `sentAt` to correct a client's clock)", body = ErrorBody),
        (status = 413, description = "The message is over 32 KB (`too_large`)", body = ErrorBody),
        (status = 429, description = "`rate_limited`: a browser key's request over its key's or its address's rate, or (single messages) a new anonymous visitor over its address's hourly cap; see `Retry-After`", body = ErrorBody),
    ),
    security(("api_key" = ["browser"])),
)]
async fn page_short(state: State<AppState>, client: Client, RawBody(body): RawBody) -> Result<Response, ApiError> {
    single(state, client, body, "page").await
}

/// Links a lead to an account: `/v1/group` at the short path Segment's browser library uses.
///
/// The same as `POST /v1/group`; the body may be sent as `text/plain`.
#[utoipa::path(
    post,
    path = "/v1/g",
    tag = "segment",
    operation_id = "segment_group_short",
    request_body(content = SegmentGroup, description = "A Segment `group` message"),
    responses(
        (status = 200, description = "Stored and scored (or a duplicate of a message already stored), with the lead's new scores (none for a browser key)", body = SegmentAnswer),
        (status = 400, description = "`invalid_json`, or `invalid_message`: the message is invalid, or more than 5 minutes in the server's future (send `sentAt` to correct a client's clock)", body = ErrorBody),
        (status = 413, description = "The message is over 32 KB (`too_large`)", body = ErrorBody),
        (status = 429, description = "`rate_limited`: a browser key's request over its key's or its address's rate, or (single messages) a new anonymous visitor over its address's hourly cap; see `Retry-After`", body = ErrorBody),
    ),
    security(("api_key" = ["browser"])),
)]
async fn group_short(state: State<AppState>, client: Client, RawBody(body): RawBody) -> Result<Response, ApiError> {
    single(state, client, body, "group").await
}

/// Merges the lead known by `previousId` into the user's lead: `/v1/alias` at the short path Segment's browser library uses.
///
/// The same as `POST /v1/alias`; the body may be sent as `text/plain`.
#[utoipa::path(
    post,
    path = "/v1/a",
    tag = "segment",
    operation_id = "segment_alias_short",
    request_body(content = SegmentAlias, description = "A Segment `alias` message"),
    responses(
        (status = 200, description = "Stored and scored (or a duplicate of a message already stored), with the lead's new scores (none for a browser key)", body = SegmentAnswer),
        (status = 400, description = "`invalid_json`, or `invalid_message`: the message is invalid, or more than 5 minutes in the server's future (send `sentAt` to correct a client's clock)", body = ErrorBody),
        (status = 413, description = "The message is over 32 KB (`too_large`)", body = ErrorBody),
        (status = 429, description = "`rate_limited`: a browser key's request over its key's or its address's rate, or (single messages) a new anonymous visitor over its address's hourly cap; see `Retry-After`", body = ErrorBody),
    ),
    security(("api_key" = ["browser"])),
)]
async fn alias_short(state: State<AppState>, client: Client, RawBody(body): RawBody) -> Result<Response, ApiError> {
    single(state, client, body, "alias").await
}

/// Stores several messages of any types: `/v1/batch` at the short path Segment's browser
/// library uses when it batches.
///
/// The same as `POST /v1/batch`; the body may be sent as `text/plain`.
#[utoipa::path(
    post,
    path = "/v1/b",
    tag = "segment",
    operation_id = "segment_batch_short",
    request_body(content = Batch),
    responses(
        (status = 200, description = "An outcome per message (accepted, duplicate, or refused with its reason) and the leads with their new scores (none for a browser key)", body = SegmentBatchAnswer),
        (status = 400, description = "`invalid_batch`: the body is not `{\"batch\": [...]}`", body = ErrorBody),
        (status = 413, description = "`too_many_messages`: over 2,500 messages (a body over 500 KB gets `too_large`)", body = ErrorBody),
        (status = 429, description = "`rate_limited`: a browser key's request over its key's or its address's rate, or (single messages) a new anonymous visitor over its address's hourly cap; see `Retry-After`", body = ErrorBody),
    ),
    security(("api_key" = ["browser"])),
)]
async fn batch_short(state: State<AppState>, client: Client, RawBody(body): RawBody) -> Result<Response, ApiError> {
    batch_of(state, client, body).await
}

/// The settings document Segment's browser library fetches before it sends: the library's own
/// destination (`Segment.io`) pointed back at this service, and nothing else (no other
/// destination, no remote plugin, no metrics sent anywhere).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = SegmentSettings)]
struct SettingsView {
    /// `{"Segment.io": {"apiKey", "apiHost", "protocol", ...}}`: where the library sends.
    #[schema(value_type = Object)]
    integrations: Value,
    /// Every event type enabled.
    #[schema(value_type = Object)]
    plan: Value,
    /// `{"sampleRate": 0}`: the library reports no metrics of its own.
    #[schema(value_type = Object)]
    metrics: Value,
    #[serde(rename = "remotePlugins")]
    #[schema(value_type = Vec<Object>)]
    remote_plugins: Vec<Value>,
    #[serde(rename = "enabledMiddleware")]
    #[schema(value_type = Object)]
    enabled_middleware: Value,
    #[serde(rename = "middlewareSettings")]
    #[schema(value_type = Object)]
    middleware_settings: Value,
    #[serde(rename = "edgeFunction")]
    #[schema(value_type = Object)]
    edge_function: Value,
    #[serde(rename = "analyticsNextEnabled")]
    analytics_next_enabled: bool,
}

/// Where a page reaches this service: the request's `Host`, and `https` when a proxy says so
/// (`X-Forwarded-Proto`) or the service is configured to be reached over HTTPS.
fn api_host(headers: &HeaderMap, behind_https: bool) -> (String, &'static str) {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let host = text("x-forwarded-host").or_else(|| text("host")).filter(|h| !h.is_empty()).unwrap_or("localhost");
    let https = behind_https || text("x-forwarded-proto").is_some_and(|p| p.eq_ignore_ascii_case("https"));
    (format!("{host}/v1"), if https { "https" } else { "http" })
}

/// The settings Segment's browser library loads (`{cdnURL}/v1/projects/{writeKey}/settings`).
///
/// Give the library this service's address as its `cdnURL`; the settings send its events back
/// here (`apiHost` is this host's `/v1`). The key in the path must be an ingest, browser or
/// admin key (a browser key's from a page of its origins); another is not found.
#[utoipa::path(
    get,
    path = "/v1/projects/{writeKey}/settings",
    tag = "segment",
    operation_id = "segment_settings",
    params(("writeKey" = String, Path, description = "The write key the page loads the library with")),
    responses(
        (status = 200, description = "The library's settings", body = SettingsView),
        (status = 400, description = "`invalid_path`: the path is not valid UTF-8", body = ErrorBody),
        (status = 404, description = "`not_found`: no ingest, browser or admin key of that value (or a browser key from a page of another origin)", body = ErrorBody),
        (status = 429, description = "`rate_limited`: a browser key's request over its key's or its address's rate, see `Retry-After`", body = ErrorBody),
    ),
)]
async fn settings(
    State(state): State<AppState>,
    client: Client,
    ApiPath(write_key): ApiPath<String>,
) -> Result<ApiJson<SettingsView>, ApiError> {
    // The key is the resource the path names: an unknown one is not found, whatever the reason.
    caller(&state, &client, Some(write_key.clone())).await.map_err(|error| match error.code {
        ErrorCode::Unauthorized | ErrorCode::Forbidden | ErrorCode::OriginNotAllowed => {
            ApiError::not_found("no write key of that value: use an ingest or browser key")
        }
        _ => error,
    })?;
    let (api_host, protocol) = api_host(&client.headers, state.config.behind_https);
    Ok(ApiJson(SettingsView {
        integrations: json!({ "Segment.io": {
            "apiKey": write_key,
            "apiHost": api_host,
            "protocol": protocol,
            "unbundledIntegrations": [],
            "addBundledMetadata": false,
            "maybeBundledConfigIds": {},
        } }),
        plan: json!({
            "track": { "__default": { "enabled": true, "integrations": {} } },
            "identify": { "__default": { "enabled": true } },
            "group": { "__default": { "enabled": true } },
        }),
        metrics: json!({ "sampleRate": 0 }),
        remote_plugins: Vec::new(),
        enabled_middleware: json!({}),
        middleware_settings: json!({}),
        edge_function: json!({}),
        analytics_next_enabled: true,
    }))
}
