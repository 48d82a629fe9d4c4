//! The API's error answer: an HTTP status and a JSON body `{code, message}` that names the field
//! at fault. Client mistakes are 4xx with their reason; faults are 500 with a generic message
//! (the detail goes to the log, never to the client). Every code, with its status, is in one
//! table, [`ErrorCode`]; docs/api.md lists the same (a test compares them) and the OpenAPI
//! document's error schema enumerates them.

use std::fmt;
use std::marker::PhantomData;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use leadscore_store::StoreError;
use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// Declares [`ErrorCode`] from one table: each code with its HTTP status, its wire name (what
/// clients read in `code`, stable) and what it means, so that the list of codes, their statuses
/// and [`ErrorCode::ALL`] cannot disagree.
macro_rules! error_codes {
    ($( $(#[doc = $meaning:literal])+ $code:ident = ($status:ident, $name:literal), )+) => {
        /// Every `code` the API answers with. docs/api.md lists them (checked by a test below).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[doc = $meaning])+ $code, )+
        }

        impl ErrorCode {
            /// Every code, in the table's order.
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$code),+];

            /// The HTTP status the code is answered with.
            pub fn status(self) -> StatusCode {
                match self {
                    $(ErrorCode::$code => StatusCode::$status,)+
                }
            }

            /// The name clients read in the body's `code`.
            pub fn name(self) -> &'static str {
                match self {
                    $(ErrorCode::$code => $name,)+
                }
            }
        }
    };
}

error_codes! {
    /// The body is not valid JSON.
    InvalidJson = (BAD_REQUEST, "invalid_json"),
    /// A single Segment message (`/v1/*`) is invalid.
    InvalidMessage = (BAD_REQUEST, "invalid_message"),
    /// A `/v1/batch` body is not `{"batch": [...]}`.
    InvalidBatch = (BAD_REQUEST, "invalid_batch"),
    /// A JSON body has a missing, mistyped or unknown field, or a bad value.
    InvalidField = (BAD_REQUEST, "invalid_field"),
    /// Any other unreadable body.
    InvalidBody = (BAD_REQUEST, "invalid_body"),
    /// An unknown or invalid query parameter.
    InvalidQuery = (BAD_REQUEST, "invalid_query"),
    /// A path parameter that is not valid (a number that is not one, say).
    InvalidPath = (BAD_REQUEST, "invalid_path"),
    /// An import without a header line or without the columns it needs.
    InvalidCsv = (BAD_REQUEST, "invalid_csv"),
    /// An uploaded model has errors.
    InvalidModel = (BAD_REQUEST, "invalid_model"),
    /// An uploaded predictive model is not a valid file written by `leadscore train`.
    InvalidPredictiveModel = (BAD_REQUEST, "invalid_predictive_model"),
    /// An unknown lifecycle stage.
    InvalidStage = (BAD_REQUEST, "invalid_stage"),
    /// A move to a stage that needs a reason, without one.
    ReasonRequired = (BAD_REQUEST, "reason_required"),
    /// A score override naming a tier its score does not have in the active model.
    UnknownTier = (BAD_REQUEST, "unknown_tier"),
    /// A score override naming a score the active model does not have.
    UnknownScore = (NOT_FOUND, "unknown_score"),
    /// Lifting a score override when none is in force on that score.
    NoOverride = (NOT_FOUND, "no_override"),
    /// A refusal of the HTTP layer that no other code names (the status says which).
    BadRequest = (BAD_REQUEST, "bad_request"),
    /// No key, an unknown key, or a malformed `Authorization` header.
    Unauthorized = (UNAUTHORIZED, "unauthorized"),
    /// The key's scope does not allow the route.
    Forbidden = (FORBIDDEN, "forbidden"),
    /// A browser key sent from a page of an origin it is not bound to.
    OriginNotAllowed = (FORBIDDEN, "origin_not_allowed"),
    /// No such resource, or no such route.
    NotFound = (NOT_FOUND, "not_found"),
    /// A change that the current state does not allow (a stage move the lifecycle refuses).
    Conflict = (CONFLICT, "conflict"),
    /// An upsert of a person whose data was erased: on the suppression list until an admin
    /// lifts it.
    Suppressed = (CONFLICT, "suppressed"),
    /// A lead that was erased (its record says when and by whom).
    Erased = (GONE, "erased"),
    /// A change refused while the workspace is being rescored.
    Rescoring = (CONFLICT, "rescoring"),
    /// A retrain without enough customers or lost leads.
    NotEnoughOutcomes = (CONFLICT, "not_enough_outcomes"),
    /// A retrain with no field to learn from.
    NoFields = (CONFLICT, "no_fields"),
    /// A retrain whose fit failed.
    TrainingFailed = (CONFLICT, "training_failed"),
    /// A method the route does not have.
    MethodNotAllowed = (METHOD_NOT_ALLOWED, "method_not_allowed"),
    /// The request took longer than the service waits.
    Timeout = (REQUEST_TIMEOUT, "timeout"),
    /// A Segment batch of more messages than it may hold.
    TooManyMessages = (PAYLOAD_TOO_LARGE, "too_many_messages"),
    /// More events in one request than it may hold.
    TooManyEvents = (PAYLOAD_TOO_LARGE, "too_many_events"),
    /// A browser key's request over a rate limit, or a new anonymous visitor over its address's
    /// hourly cap: retry after `Retry-After` seconds.
    RateLimited = (TOO_MANY_REQUESTS, "rate_limited"),
    /// A body over its route's size limit.
    TooLarge = (PAYLOAD_TOO_LARGE, "too_large"),
    /// A JSON body without `Content-Type: application/json`.
    ContentType = (UNSUPPORTED_MEDIA_TYPE, "content_type"),
    /// A `Content-Encoding` the service cannot read.
    ContentEncoding = (UNSUPPORTED_MEDIA_TYPE, "content_encoding"),
    /// A fault on the server (the detail is logged, never answered).
    Internal = (INTERNAL_SERVER_ERROR, "internal"),
    /// Storage refuses writes: nothing of the request was stored.
    StorageUnavailable = (SERVICE_UNAVAILABLE, "storage_unavailable"),
    /// Another write of the same transaction failed: nothing of the request was stored.
    RolledBack = (SERVICE_UNAVAILABLE, "rolled_back"),
    /// The service holds as many connections as it may.
    TooManyConnections = (SERVICE_UNAVAILABLE, "too_many_connections"),
}

/// A refusal: its code (which gives the status) and a message that says what to fix.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Seconds after which a retry may succeed (`Retry-After`), for refusals that pass.
    pub retry_after: Option<u32>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
}

/// The `{code, message}` body of a refusal, as JSON text, for answers written below axum (the
/// connection layer's).
pub fn body_text(code: ErrorCode, message: &str) -> String {
    // A struct of two strings always serializes.
    serde_json::to_string(&Body { code: code.name(), message }).unwrap_or_default()
}

/// A refusal with `status`, which is the code's own except for refusals made below the handlers
/// (whose status is passed on as it came).
fn answer(status: StatusCode, code: ErrorCode, message: &str, retry_after: Option<u32>) -> Response {
    let mut response = (status, Json(Body { code: code.name(), message })).into_response();
    if let Some(seconds) = retry_after {
        response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(seconds));
    }
    response
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into(), retry_after: None }
    }

    /// The HTTP status of the answer: the code's.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::NotFound, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Unauthorized, message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Forbidden, message)
    }

    /// Storage refuses writes (a full disk): nothing of the request was stored.
    pub fn storage_unavailable() -> ApiError {
        ApiError {
            retry_after: Some(5),
            ..ApiError::new(
                ErrorCode::StorageUnavailable,
                "the service cannot store data right now (its disk may be full); nothing of this request was stored; \
                 retry later",
            )
        }
    }

    pub fn internal() -> ApiError {
        ApiError::new(ErrorCode::Internal, INTERNAL_MESSAGE)
    }
}

/// What a client is told of a fault: the detail goes to the log only.
const INTERNAL_MESSAGE: &str = "something went wrong on the server; it was logged";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        answer(self.status(), self.code, &self.message, self.retry_after)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::NotFound(message) => ApiError::not_found(message),
            StoreError::Conflict(message) => ApiError::new(ErrorCode::Conflict, message),
            StoreError::Rescoring => ApiError::new(
                ErrorCode::Rescoring,
                "a rescoring of the workspace is still running; wait for it to finish (its progress is in GET /api/models)",
            ),
            // The writer logs when writes start and stop failing; each refused request only at
            // debug level, so that a full disk does not fill the log as well.
            StoreError::RolledBack(message) => {
                ApiError { retry_after: Some(1), ..ApiError::new(ErrorCode::RolledBack, message) }
            }
            other if other.is_storage_failure() => {
                tracing::debug!(error = %other, "storage unavailable");
                ApiError::storage_unavailable()
            }
            other if other.is_unreadable_data() => {
                tracing::error!(error = %other, "stored data this version cannot read");
                ApiError::internal()
            }
            other => {
                tracing::error!(error = %other, "store failure");
                ApiError::internal()
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        match rejection {
            JsonRejection::JsonDataError(e) => ApiError::new(ErrorCode::InvalidField, e.body_text()),
            JsonRejection::JsonSyntaxError(e) => ApiError::new(ErrorCode::InvalidJson, e.body_text()),
            JsonRejection::MissingJsonContentType(_) => {
                ApiError::new(ErrorCode::ContentType, "send the body with Content-Type: application/json")
            }
            JsonRejection::BytesRejection(e) => {
                ApiError::new(ErrorCode::TooLarge, format!("the body could not be read: {}", e.body_text()))
            }
            other => ApiError::new(ErrorCode::InvalidBody, other.body_text()),
        }
    }
}

/// Middleware: gives every refusal the `{code, message}` body, also those made below the
/// handlers (axum's `405`, the timeout's `408`, the decompression layer's `415`), which come
/// with an empty body.
pub async fn json_refusals(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    // Only empty refusals are filled in: a handler's own text (`/readyz`) stays as it is.
    let empty = axum::body::HttpBody::size_hint(response.body()).exact() == Some(0);
    if !(status.is_client_error() || status.is_server_error()) || is_json || !empty {
        return response;
    }
    let (code, message) = match status {
        // axum adds the `Allow` header after this layer has run.
        StatusCode::METHOD_NOT_ALLOWED => (
            ErrorCode::MethodNotAllowed,
            "this route does not take that method; the Allow header lists those it takes".to_string(),
        ),
        StatusCode::REQUEST_TIMEOUT => (
            ErrorCode::Timeout,
            "the request took more than 30 seconds (110 for an import, which goes on to the end of its file); it \
             may have been stored or not: send it again with the same message ids"
                .to_string(),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            ErrorCode::ContentEncoding,
            "the body's Content-Encoding is not supported: send it uncompressed or with gzip".to_string(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (ErrorCode::TooLarge, TOO_LARGE_MESSAGE.to_string()),
        StatusCode::NOT_FOUND => (ErrorCode::NotFound, "no such route".to_string()),
        status if status.is_server_error() => (ErrorCode::Internal, INTERNAL_MESSAGE.to_string()),
        status => (
            ErrorCode::BadRequest,
            format!("the request was refused: {}", status.canonical_reason().unwrap_or("bad request")),
        ),
    };
    // The status stays the one given below: `bad_request` and `internal` stand for several.
    let mut refusal = answer(status, code, &message, None);
    for (name, value) in response.headers() {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            refusal.headers_mut().insert(name.clone(), value.clone());
        }
    }
    refusal
}

/// `Json` whose rejections answer `{code, message}` instead of plain text, and which takes only a
/// JSON object (see [`JsonObject`]).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<ApiJson<T>, ApiError> {
        let Json(JsonObject(value)) = Json::<JsonObject<T>>::from_request(request, state).await?;
        Ok(ApiJson(value))
    }
}

/// A JSON object read as `T`. serde reads a struct from an array as well (`[null]` as its fields
/// in order), which is no body the document describes: anything but an object is refused, as a
/// mistyped value (`invalid_field`).
pub struct JsonObject<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for JsonObject<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<JsonObject<T>, D::Error> {
        struct Fields<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for Fields<T> {
            type Value = T;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }

        deserializer.deserialize_map(Fields(PhantomData)).map(JsonObject)
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        ApiError::new(ErrorCode::InvalidPath, format!("a part of the path is not valid: {}", rejection.body_text()))
    }
}

/// `Path` whose rejections answer `{code, message}`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// The raw body, within the route's size limit; a body over it answers 413 with `{code, message}`.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<RawBody, ApiError> {
        Bytes::from_request(request, state).await.map(RawBody).map_err(|rejection: BytesRejection| {
            // Reading a body fails for its size (413) or for the connection (400), nothing else.
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(ErrorCode::TooLarge, TOO_LARGE_MESSAGE)
            } else {
                ApiError::new(ErrorCode::InvalidBody, rejection.body_text())
            }
        })
    }
}

/// A JSON number that is a whole number from 0 to `u64::MAX`, as JSON Schema's `integer` takes
/// it: `7.0` is the integer 7 there, and a client generated from the document may send it so.
pub fn whole_number(number: &serde_json::Number) -> Option<u64> {
    if let Some(whole) = number.as_u64() {
        return Some(whole);
    }
    // 2^64 is the first float past u64::MAX; below it, a float without a fraction converts exactly.
    number.as_f64().filter(|f| f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(f)).map(|f| f as u64)
}

/// What a body over its route's limit is told.
const TOO_LARGE_MESSAGE: &str = "the body is larger than this route accepts (see docs/api.md for the limits)";

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Move {
        stage: String,
        #[serde(default)]
        force: bool,
    }

    #[test]
    fn a_json_body_is_an_object_and_never_an_array_of_its_fields() {
        let read = |text: &str| serde_json::from_str::<JsonObject<Move>>(text).map(|o| o.0).map_err(|e| e.to_string());
        assert_eq!(read(r#"{"stage": "sal"}"#), Ok(Move { stage: "sal".into(), force: false }));
        assert!(read(r#"{"stage": "sal", "other": 1}"#).unwrap_err().contains("unknown field"));
        assert!(read(r#"["sal", true]"#).unwrap_err().contains("expected a JSON object"));
        assert!(read("null").unwrap_err().contains("expected a JSON object"));
    }

    /// The rows of docs/api.md's table of error codes: (status, code).
    fn documented_codes() -> Vec<(u16, String)> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md");
        let text = std::fs::read_to_string(path).unwrap();
        let lines = text.lines().skip_while(|line| line.trim() != "| status | `code` | when |").skip(2);
        let mut rows = Vec::new();
        for line in lines.take_while(|line| line.starts_with('|')) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let status = cells[1].parse().unwrap_or_else(|_| panic!("not a status: {line}"));
            let code = cells[2].strip_prefix('`').and_then(|c| c.strip_suffix('`'));
            rows.push((status, code.unwrap_or_else(|| panic!("not a `code`: {line}")).to_string()));
        }
        rows
    }

    #[test]
    fn docs_api_lists_exactly_the_error_codes_with_their_statuses() {
        let documented = documented_codes();
        assert!(!documented.is_empty(), "docs/api.md has no table of error codes");
        let codes: Vec<(u16, String)> =
            ErrorCode::ALL.iter().map(|code| (code.status().as_u16(), code.name().to_string())).collect();
        let undocumented: Vec<_> = codes.iter().filter(|code| !documented.contains(code)).collect();
        assert!(undocumented.is_empty(), "codes without their row in docs/api.md: {undocumented:?}");
        let unknown: Vec<_> = documented.iter().filter(|row| !codes.contains(row)).collect();
        assert!(unknown.is_empty(), "rows of docs/api.md for no code (or with another status): {unknown:?}");
        let mut names: Vec<_> = documented.iter().map(|(_, name)| name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), documented.len(), "a code has two rows in docs/api.md");
    }

    #[test]
    fn wire_names_are_unique_snake_case() {
        let mut names: Vec<&str> = ErrorCode::ALL.iter().map(|code| code.name()).collect();
        assert!(names.iter().all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_')), "{names:?}");
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorCode::ALL.len());
    }

    #[test]
    fn refusals_made_below_the_handlers_get_a_code_and_a_message() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        for (status, code) in [
            (StatusCode::REQUEST_TIMEOUT, "timeout"),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "content_encoding"),
            (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            (StatusCode::IM_A_TEAPOT, "bad_request"),
        ] {
            let bare = (status, [(axum::http::header::RETRY_AFTER, "3")]).into_response();
            let answered = runtime.block_on(json_refusals(bare));
            assert_eq!(answered.status(), status);
            assert_eq!(answered.headers()[axum::http::header::RETRY_AFTER], "3", "other headers are kept");
            let body = runtime.block_on(axum::body::to_bytes(answered.into_body(), 10_000)).unwrap();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["code"], code);
        }
    }
}
