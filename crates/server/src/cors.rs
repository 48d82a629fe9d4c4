//! CORS for websites' pages, which send events with a browser key: a preflight (which carries
//! no key) is answered for the origins some browser key is bound to, and so is every request to
//! the Segment routes (`/v1/...`) from such an origin; any other origin gets no CORS headers, so
//! its pages cannot send. Which key may be used from which origin is checked by the route, once
//! it has read the key ([`check_origin`]). The origins are kept by
//! [`crate::browser_origins`].

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use leadscore_store::keys::{KeyOwner, Scope};

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// The headers a page may send: the library's `Content-Type: text/plain`, its basic-auth
/// `Authorization` with the write key, and its retry count.
const ALLOWED_HEADERS: &str = "Content-Type, Authorization, X-Retry-Count";
/// How long a browser may keep a preflight's answer (browsers cap it at 2 hours).
const PREFLIGHT_MAX_AGE: &str = "7200";

/// The request's `Origin`, when it has one that is text.
fn origin(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ORIGIN).and_then(|value| value.to_str().ok())
}

/// A browser key used from a page of an origin it is not bound to is refused
/// (`origin_not_allowed`). A request without `Origin` is not a page's (a browser always sends
/// it with a cross-origin POST) and is let through: a browser key is public, and what it can do
/// is limited by its scope, not by where it is used.
pub fn check_origin(owner: &KeyOwner, headers: &HeaderMap) -> Result<(), ApiError> {
    match origin(headers) {
        Some(origin) if owner.scope == Scope::Browser && !owner.origins.iter().any(|o| o == origin) => {
            Err(ApiError::new(
                ErrorCode::OriginNotAllowed,
                format!("this browser key is not bound to the origin {origin}: add it to a browser key's origins"),
            ))
        }
        _ => Ok(()),
    }
}

/// Answers preflights and adds the CORS headers to answers under `/v1/` for an allowed origin.
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with("/v1/") {
        return next.run(request).await;
    }
    let Some(origin) = origin(request.headers()).map(str::to_string) else { return next.run(request).await };
    let allowed = match state.origins.allow(state.storage.as_ref(), &origin).await {
        Ok(allowed) => allowed,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let preflight = request.method() == Method::OPTIONS;
    let mut response = match preflight {
        // Not allowed: an empty answer without CORS headers, which the browser takes as a refusal.
        true => StatusCode::NO_CONTENT.into_response(),
        false => next.run(request).await,
    };
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if !allowed {
        return response;
    }
    if let Ok(value) = HeaderValue::from_str(&origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
    if preflight {
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, OPTIONS"));
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOWED_HEADERS));
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(PREFLIGHT_MAX_AGE));
    } else {
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("Retry-After"));
    }
    response
}
