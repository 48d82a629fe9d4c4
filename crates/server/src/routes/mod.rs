//! One module per resource; each exposes `routes()` to merge into the app's router.

pub mod health;
pub mod import;
pub mod leads;
pub mod models;
pub mod native;
pub mod segment;
pub mod webhooks;
