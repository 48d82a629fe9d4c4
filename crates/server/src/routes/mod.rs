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
