//! `GET /metrics`, and the middleware that counts and times every request for it.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::metrics::method_label;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(export))
}

/// Prometheus metrics, in the OpenMetrics text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "metrics",
    operation_id = "metrics",
    responses((
        status = 200,
        description = "Requests and latency by route, ingestion outcomes, rescoring progress, the webhook outbox",
        body = String,
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8",
    )),
)]
async fn export(State(state): State<AppState>) -> Response {
    if let Ok(depth) = state.storage.notifications_waiting().await {
        state.metrics.outbox_depth.set(depth);
    }
    match state.metrics.encode() {
        Ok(body) => {
            ([(CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body).into_response()
        }
        Err(_) => ApiError::internal().into_response(),
    }
}

/// Middleware: counts each request and times it, by its route pattern (never the raw path,
/// which would hold lead ids).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_string();
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.observe_request(route, method, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}
