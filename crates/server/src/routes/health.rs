//! Liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(ready))
}

/// Live when the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    operation_id = "healthz",
    responses((status = 200, description = "The process is up", body = String, example = "ok")),
)]
async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the database answers.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    operation_id = "readyz",
    responses(
        (status = 200, description = "The database answers and takes writes", body = String, example = "ready"),
        (status = 503, description = "The database does not answer, or writes fail (a full disk)", body = String),
    ),
)]
async fn ready(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.storage.ping().await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "the database does not answer");
    }
    // While writes fail, a write of its own tells whether storage is back: with no traffic
    // (a load balancer sends none to an instance that is not ready), nothing else would.
    if state.storage.write_failure().is_some() {
        let _ = state.storage.probe_write(leadscore_store::now_ms()).await;
        if state.storage.write_failure().is_some() {
            return (StatusCode::SERVICE_UNAVAILABLE, "writes fail (storage is unavailable; see the log)");
        }
    }
    (StatusCode::OK, "ready")
}
