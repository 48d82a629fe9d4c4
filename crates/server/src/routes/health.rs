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
        (status = 200, description = "The database answers", body = String, example = "ready"),
        (status = 503, description = "The database does not answer", body = String),
    ),
)]
async fn ready(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match state.store.read(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?)).await {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "the database does not answer"),
    }
}
