//! The OpenAPI 3.1 document of the HTTP API, served at `GET /openapi.json`.
//!
//! It is collected from the router itself: every route is registered through
//! [`utoipa_axum::router::OpenApiRouter`] with the `#[utoipa::path]` description of its handler,
//! so a route cannot be served without being documented, nor documented without being served.

use axum::Extension;
use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, InfoBuilder, LicenseBuilder, OpenApi, OpenApiBuilder};

/// The name of the security scheme every authenticated operation requires.
pub const API_KEY: &str = "api_key";

const DESCRIPTION: &str = "Lead scoring as a service: teams send contacts and activity as it \
happens (Segment's Tracking API or the native API); each accepted event is stored durably and the \
lead rescored before the answer, which carries the new scores.

Authentication: send an API key as `Authorization: Bearer KEY`. Keys have a scope (`ingest`, \
`read` or `admin`; an admin key can do everything); a key of the wrong scope gets 403. The Segment \
endpoints (`/v1/...`) also accept Segment's way, the write key as the basic-auth user name with an \
empty password, or the body's `writeKey`.

Errors are JSON `{\"code\", \"message\"}` with a 4xx status for client mistakes (the `code` is \
stable, the `message` says what to fix) and 500 for faults.";

/// The error answer of every endpoint.
#[derive(utoipa::ToSchema)]
#[schema(as = ApiError)]
#[allow(dead_code)] // Only describes `crate::error::ApiError`'s body.
pub struct ErrorBody {
    /// Stable, machine-readable: `unauthorized`, `forbidden`, `not_found`, `invalid_json`, ...
    code: String,
    /// What went wrong and how to fix it.
    message: String,
}

/// The document's fixed part: what the routes do not say (title, version, security scheme).
pub fn base() -> OpenApi {
    let bearer = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some(
        "An API key: `Authorization: Bearer KEY`. The Segment endpoints (`/v1/...`) also accept \
         basic auth with the write key as the user name (and an empty password).",
    ));
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("leadscore")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(DESCRIPTION))
                .license(Some(LicenseBuilder::new().name("Apache-2.0").identifier(Some("Apache-2.0")).build())),
        )
        .components(Some(
            ComponentsBuilder::new().security_scheme(API_KEY, SecurityScheme::Http(bearer.build())).build(),
        ))
        .build()
}

/// The serialized document, handed to [`document`] by an `Extension` layer.
#[derive(Clone)]
pub struct Document(pub Bytes);

impl Document {
    pub fn new(api: &OpenApi) -> Document {
        Document(Bytes::from(serde_json::to_vec(api).expect("an OpenAPI document serializes")))
    }
}

/// This OpenAPI document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "openapi",
    operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", body = Object)),
)]
pub async fn document(Extension(document): Extension<Document>) -> Response {
    ([(CONTENT_TYPE, "application/json")], document.0).into_response()
}
