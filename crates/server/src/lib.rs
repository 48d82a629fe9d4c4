//! leadscore-server: the HTTP service. Teams send contacts and activity as it happens (Segment's
//! Tracking API or the native API); each accepted event is stored durably and the lead rescored
//! before the answer, which carries the new scores.
//!
//! # Layout
//! - [`routes`](mod@routes): one module per resource (`segment`, `leads`, `models`, `health`, ...), each with
//!   the OpenAPI description of its handlers; [`openapi`]: the document at `GET /openapi.json`.
//! - [`ingest`]: messages to leads and events (identities resolved in memory), and rescoring, in
//!   one writer transaction, with one storage read and one write per request.
//! - [`scoring`]: compiled models (pinned to their predictive models), a lead's field values and
//!   state, evaluation to rows; [`retrain`]: predictive models learned from the workspace's outcomes.
//! - [`auth`]: API keys and scopes; [`error`]: the `{code, message}` error answer.

pub mod abuse;
pub mod accounts;
pub mod activation;
pub mod api_keys;
pub mod auth;
pub mod browser_origins;
pub mod cache_versions;
pub mod connections;
pub mod console;
pub mod cors;
pub mod delivery;
pub mod demo;
pub mod egress;
pub mod erasure;
pub mod error;
pub mod ingest;
pub mod intake;
pub mod key_cache;
pub mod lead_cache;
pub mod lifecycle;
pub mod listing;
pub mod messages;
pub mod metrics;
pub mod model_versions;
pub mod notify;
pub mod openapi;
pub mod overrides;
pub mod passwords;
pub mod preview;
pub mod preview_jobs;
pub mod rescore;
pub mod retention;
pub mod retrain;
pub mod retraining;
pub mod routes;
pub mod saving;
pub mod scoring;
pub mod stage_moves;
pub mod state;
pub mod webhook_subscriptions;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use state::{AppState, Config};

/// Every route with its OpenAPI description.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .merge(routes::health::routes())
        .merge(routes::segment::routes())
        .merge(routes::leads::routes())
        .merge(routes::lead_changes::routes())
        .merge(routes::overrides::routes())
        .merge(routes::privacy::routes())
        .merge(routes::models::routes())
        .merge(routes::predictive::routes())
        .merge(routes::webhooks::routes())
        .merge(routes::keys::routes())
        .merge(routes::native::routes())
        .merge(routes::import::routes())
        .merge(routes::metrics::routes())
        .routes(routes!(openapi::document))
}

/// The OpenAPI document `GET /openapi.json` serves.
pub fn document() -> utoipa::openapi::OpenApi {
    openapi::with_refusals(routes().into_openapi())
}

/// How long a handler may take before the client is answered 408: imports read and score up to
/// 64 MB and get longer (under the connection's stall limit, `connections::Limits`), and go on
/// to the end of their file if they pass it (see `routes::import`).
fn handler_deadline(path: &str) -> Duration {
    if path.starts_with("/api/import/") { Duration::from_secs(110) } else { Duration::from_secs(30) }
}

async fn deadline(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let limit = handler_deadline(request.uri().path());
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => StatusCode::REQUEST_TIMEOUT.into_response(),
    }
}

/// The whole HTTP application. Every route comes with its OpenAPI description, collected into
/// the document served at `GET /openapi.json`.
pub fn app(state: AppState) -> Router {
    let (router, api) = routes().split_for_parts();
    let api = openapi::with_refusals(api);
    router
        .layer(axum::Extension(openapi::Document::new(&api)))
        // The console's pages are HTML for people, outside the API's document.
        .merge(console::routes())
        // An unknown path: JSON for API clients, the console's page for browsers.
        .fallback(console::not_found::fallback)
        // Layers wrap from the inside out: the timeout applies to the handler, the trace to all.
        .layer(axum::middleware::from_fn(deadline))
        // Gzip bodies (RudderStack's SDKs compress by default); size limits count the inflated body.
        .layer(tower_http::decompression::RequestDecompressionLayer::new())
        // Outside the layers that refuse with an empty body (timeout, decompression, routing).
        .layer(axum::middleware::map_response(error::json_refusals))
        // Outside the JSON refusals, so that a page of an allowed origin can read them too.
        .layer(axum::middleware::from_fn_with_state(state.clone(), cors::layer))
        .layer(axum::middleware::from_fn_with_state(state.clone(), routes::metrics::track))
        // Request spans carry the route pattern, never the path: paths hold lead ids, which can
        // be e-mail addresses.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &axum::http::Request<_>| {
                    let route =
                        request.extensions().get::<axum::extract::MatchedPath>().map_or("unmatched", |p| p.as_str());
                    tracing::info_span!("request", method = %request.method(), route)
                })
                // One line per request, at the default level, in the request's span (method and
                // route pattern): its status and latency. Failures get no second line.
                .on_response(|response: &axum::http::Response<_>, latency: Duration, _span: &tracing::Span| {
                    let status = response.status().as_u16();
                    let latency_ms = latency.as_secs_f64() * 1000.0;
                    if status >= 500 {
                        tracing::warn!(status, latency_ms, "answered");
                    } else {
                        tracing::info!(status, latency_ms, "answered");
                    }
                })
                .on_failure(()),
        )
        .with_state(state)
}

/// Serves until `shutdown` completes, then finishes the requests in flight, within the
/// connection limits of `state.config`. Runs the webhook dispatcher, the rescoring scheduler, the
/// joining of rescorings other instances began (`rescore::join`), the retention pass and the
/// watch of the cache version (`cache_versions`) alongside.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // reqwest's rustls needs a process-wide crypto provider before its first client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Rescorings that a stop or a crash cut short go on where they stopped.
    if let Err(error) = rescore::resume(&state).await {
        tracing::error!(%error, "cannot read the rescorings to resume");
    }
    let dispatcher = delivery::spawn(state.clone());
    let scheduler = tokio::spawn(rescore::schedule(state.clone(), state.config.rescore_interval));
    let joiner = tokio::spawn(rescore::join(state.clone()));
    let retention = tokio::spawn(retention::schedule(state.clone(), state.config.retention_interval));
    let caches = tokio::spawn(cache_versions::watch(state.clone()));
    let limits = state.config.connections;
    let metrics = state.metrics.clone();
    let served = connections::serve(listener, app(state), limits, metrics, shutdown).await;
    dispatcher.abort();
    scheduler.abort();
    joiner.abort();
    retention.abort();
    caches.abort();
    served
}

/// Logs the start of the service.
pub fn log_start(address: std::net::SocketAddr) {
    tracing::info!(%address, version = env!("CARGO_PKG_VERSION"), "leadscore listening");
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
