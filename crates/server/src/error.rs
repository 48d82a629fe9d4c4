//! The API's error answer: an HTTP status and a JSON body `{code, message}` that names the field
//! at fault. Client mistakes are 4xx with their reason; faults are 500 with a generic message
//! (the detail goes to the log, never to the client).

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

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds after which a retry may succeed (`Retry-After`), for refusals that pass.
    pub retry_after: Option<u32>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), retry_after: None }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// Storage refuses writes (a full disk): nothing of the request was stored.
    pub fn storage_unavailable() -> ApiError {
        ApiError {
            retry_after: Some(5),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "the service cannot store data right now (its disk may be full); nothing of this request was stored; \
                 retry later",
            )
        }
    }

    pub fn internal() -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "something went wrong on the server; it was logged",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(Body { code: self.code, message: &self.message });
        let mut response = (self.status, body).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(seconds));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::NotFound(message) => ApiError::not_found(message),
            StoreError::Conflict(message) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            StoreError::Rescoring => ApiError::new(
                StatusCode::CONFLICT,
                "rescoring",
                "a rescoring of the workspace is still running; wait for it to finish (its progress is in GET /api/models)",
            ),
            // The writer logs when writes start and stop failing; each refused request only at
            // debug level, so that a full disk does not fill the log as well.
            StoreError::RolledBack(message) => ApiError {
                retry_after: Some(1),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "rolled_back", message)
            },
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
            JsonRejection::JsonDataError(e) => ApiError::bad_request("invalid_field", e.body_text()),
            JsonRejection::JsonSyntaxError(e) => ApiError::bad_request("invalid_json", e.body_text()),
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "content_type",
                "send the body with Content-Type: application/json",
            ),
            JsonRejection::BytesRejection(e) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the body could not be read: {}", e.body_text()),
            ),
            other => ApiError::bad_request("invalid_body", other.body_text()),
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
            "method_not_allowed",
            "this route does not take that method; the Allow header lists those it takes".to_string(),
        ),
        StatusCode::REQUEST_TIMEOUT => (
            "timeout",
            "the request took more than 30 seconds; it may have been stored or not: send it again with the same \
             message ids"
                .to_string(),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "content_encoding",
            "the body's Content-Encoding is not supported: send it uncompressed or with gzip".to_string(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => {
            ("too_large", "the body is larger than this route accepts (see docs/api.md for the limits)".to_string())
        }
        StatusCode::NOT_FOUND => ("not_found", "no such route".to_string()),
        status if status.is_server_error() => {
            ("internal", "something went wrong on the server; it was logged".to_string())
        }
        status => {
            ("bad_request", format!("the request was refused: {}", status.canonical_reason().unwrap_or("bad request")))
        }
    };
    let mut refusal = ApiError::new(status, code, message).into_response();
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
        ApiError::bad_request("invalid_path", format!("a part of the path is not valid: {}", rejection.body_text()))
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
            let status = rejection.status();
            let code = if status == StatusCode::PAYLOAD_TOO_LARGE { "too_large" } else { "invalid_body" };
            let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "the body is larger than this route accepts (see docs/api.md for the limits)".to_string()
            } else {
                rejection.body_text()
            };
            ApiError::new(status, code, message)
        })
    }
}

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
