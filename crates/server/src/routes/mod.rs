//! One module per resource; each exposes `routes()`, an `OpenApiRouter` whose handlers carry their
//! `#[utoipa::path]` description, to merge into the app's router (see [`crate::openapi`]).

pub mod health;
pub mod import;
pub mod keys;
pub mod lead_changes;
pub mod leads;
pub mod metrics;
pub mod models;
pub mod native;
pub mod overrides;
pub mod predictive;
pub mod privacy;
pub mod segment;
pub mod webhooks;

/// A query parameter's RFC 3339 time, or the `invalid_query` refusal naming the parameter.
pub(crate) fn query_time(parameter: &str, text: &str) -> Result<leadscore_core::Timestamp, crate::error::ApiError> {
    leadscore_core::Timestamp::parse_rfc3339(text).map_err(|_| {
        crate::error::ApiError::new(
            crate::error::ErrorCode::InvalidQuery,
            format!("`{parameter}` must be an RFC 3339 time such as 2026-01-31T09:00:00Z, not `{text}`"),
        )
    })
}
