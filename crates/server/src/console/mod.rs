//! The web console: server-rendered HTML pages for the people who work the leads, at `/`.
//!
//! Pages are askama templates compiled into the binary (`templates/console/`), styled by one
//! embedded stylesheet (`assets/console.css`); nothing is fetched from the internet and no script
//! is needed. Every page but the sign-in needs a session (`session::SignedInPage`); a page a role may
//! not see answers 403 whatever the buttons show.
//!
//! Sessions live in a cookie that scripts cannot read (`HttpOnly`), that other sites' requests do
//! not carry when they post (`SameSite=Lax`), marked `Secure` when the service is told it is
//! reached over HTTPS (`serve --behind-https`). Every form posts a token of its session
//! (`session::check_csrf`) and every post must come from a page of this origin (`session::same_origin`). The
//! cookie is read and written by hand: one name and a handful of attributes do not need a cookie
//! crate.

pub mod account;
pub mod charts;
pub mod funnel;
pub mod keys;
pub mod lead;
pub mod lead_erasure;
pub mod lead_overrides;
pub mod leads;
pub mod leads_csv;
pub mod missing;
pub mod model_activation;
pub mod model_editor;
pub mod models;
pub mod not_found;
pub mod page;
pub mod posted;
pub mod predictive;
pub mod session;
pub mod sign_in;
pub mod users;
pub mod webhooks;

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::state::AppState;
use session::SignedInPage;

/// The console's routes (not part of the API's OpenAPI document).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/console/console.css", get(stylesheet))
        .route("/sign-in", get(sign_in::form).post(sign_in::submit))
        .route("/sign-out", post(sign_in::sign_out))
        // The leads list, its CSV download
        .route("/leads", get(leads::list))
        .route("/leads.csv", get(leads_csv::download))
        .route("/leads/{id}", get(lead::show))
        .route("/leads/{id}/stage", post(lead::move_stage))
        .route("/leads/{id}/overrides/{score}", post(lead_overrides::set))
        .route("/leads/{id}/overrides/{score}/lift", post(lead_overrides::lift))
        .route("/leads/{id}/erase", get(lead_erasure::confirm).post(lead_erasure::erase))
        .route("/leads/{id}/export", get(lead_erasure::export))
        // The model pages: versions, one version, the editor, a diff, a preview, activating and
        // rolling back, the rescoring's progress.
        .route("/models", get(models::list))
        .route("/models/new", get(model_editor::form).post(model_editor::submit))
        .route("/models/check", post(model_editor::check_as_typed))
        .route("/console/model-editor.js", get(model_editor::script))
        .route("/models/diff", get(models::diff))
        .route("/models/rollback", get(model_activation::confirm_rollback).post(model_activation::rollback))
        .route("/models/rescoring", get(model_activation::rescoring))
        .route("/models/{version}", get(models::show))
        .route("/models/{version}/preview", get(model_activation::preview).post(model_activation::compare_again))
        .route("/models/{version}/activate", get(model_activation::confirm_activation).post(model_activation::activate))
        // The funnel and KPIs page.
        .route("/funnel", get(funnel::show))
        // Administration: webhooks and their deliveries, API keys, people; one's own account.
        .route("/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/webhooks/{id}", get(webhooks::show))
        .route("/webhooks/{id}/delete", get(webhooks::confirm_delete).post(webhooks::delete))
        .route("/webhooks/{id}/deliveries/{delivery}/redeliver", post(webhooks::redeliver))
        .route("/keys", get(keys::list).post(keys::create))
        .route("/keys/{id}/revoke", get(keys::confirm_revoke).post(keys::revoke))
        .route("/users", get(users::list).post(users::create))
        .route("/users/{id}", get(users::show))
        .route("/users/{id}/role", post(users::change_role))
        .route("/users/{id}/password", post(users::reset_password))
        .route("/users/{id}/disable", get(users::confirm_disable).post(users::disable))
        .route("/account", get(account::show))
        .route("/account/password", post(account::change_password))
        // Predictive models and their evaluation reports.
        .route("/predictive", get(predictive::list))
        .route("/predictive/{id}", get(predictive::show))
        .route("/predictive/{id}/report", get(predictive::report))
        .route("/predictive/{id}/retrain", post(predictive::retrain))
}

/// `/`: the leads for a signed-in person, the sign-in page for anyone else.
async fn home(signed_in: Option<SignedInPage>) -> Redirect {
    Redirect::to(if signed_in.is_some() { "/leads" } else { "/sign-in" })
}

async fn stylesheet() -> Response {
    let headers = [
        (header::CONTENT_TYPE, "text/css; charset=utf-8"),
        (header::CACHE_CONTROL, "public, max-age=300"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    (headers, include_str!("../../assets/console.css")).into_response()
}
