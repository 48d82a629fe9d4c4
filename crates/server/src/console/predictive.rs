//! `/predictive` (everyone): the workspace's predictive models, each version with its algorithm,
//! when and how it was trained, the scoring model versions pinned to it and the figures its
//! training measured on held-out leads; and `/predictive/{id}`: one version with its evaluation
//! report, the page `leadscore evaluate --report` draws (`retrain::evaluation_report`), of the
//! model on the workspace's leads whose outcome is known. The report is a document of its own,
//! served at `/predictive/{id}/report` and shown in a sandboxed frame: its inline style needs a
//! policy of its own, and the sandbox runs no script whatever it holds. Admins retrain a model
//! there on the workspace's outcomes (`retraining.rs`, as the API's retrain).

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use leadscore_predict::predictive::Algorithm;
use leadscore_store::now_ms;
use leadscore_store::predictive::Summary;
use leadscore_store::users::Role;
use serde_json::Value;

use super::leads::{ShownTime, shown_time};
use super::missing::MissingPage;
use super::page::{AccountView, page, sentence};
use super::posted;
use super::session::SignedInPage;
use crate::accounts::SignedIn;
use crate::error::ApiError;
use crate::retrain;
use crate::retraining::{self, Asked};
use crate::state::AppState;

/// A version as the pages show it.
struct ShownVersion {
    id: i64,
    name: String,
    version: i64,
    algorithm: String,
    origin: &'static str,
    trained: ShownTime,
    fields: Vec<String>,
    auc: Option<String>,
    /// The scoring model versions pinned to it, newest first, and whether each is the active one.
    pinned_by: Vec<(i64, bool)>,
}

/// Each predictive version's pins: the scoring model versions (and whether active) that use it.
type Pins = BTreeMap<i64, Vec<(i64, bool)>>;

fn shown(summary: &Summary, pins: &Pins, now: i64) -> ShownVersion {
    ShownVersion {
        id: summary.id,
        name: summary.name.clone(),
        version: summary.version,
        algorithm: summary.algorithm.clone(),
        origin: match summary.origin {
            leadscore_store::predictive::Origin::Upload => "uploaded",
            leadscore_store::predictive::Origin::Retrain => "retrained",
        },
        trained: shown_time(summary.created_at, now),
        fields: summary.fields.clone(),
        auc: summary.auc.map(|auc| format!("{auc:.3}")),
        pinned_by: pins.get(&summary.id).cloned().unwrap_or_default(),
    }
}

/// Every predictive version of the workspace, newest first, with the versions pinned to each.
async fn versions(state: &AppState, workspace_id: i64) -> Result<(Vec<Summary>, Pins), ApiError> {
    Ok(state
        .storage
        .read(move |reads| {
            let mut summaries = reads.predictive_models(workspace_id)?;
            summaries.sort_by_key(|s| std::cmp::Reverse((s.created_at, s.id)));
            let active = reads.active_model(workspace_id)?.map(|m| m.id);
            let mut pins = Pins::new();
            for listed in reads.model_versions(workspace_id)?.iter().rev() {
                let Some(version) = reads.model_by_id(listed.id)? else { continue };
                for predictive_id in version.predictors.values() {
                    pins.entry(*predictive_id).or_default().push((version.version, Some(version.id) == active));
                }
            }
            Ok((summaries, pins))
        })
        .await?)
}

#[derive(Template)]
#[template(path = "console/predictive.html")]
struct PredictivePage {
    account: Option<AccountView>,
    section: &'static str,
    /// Each model's name and its versions, newest first.
    models: Vec<(String, Vec<ShownVersion>)>,
}

/// `GET /predictive`: the predictive models and their versions.
pub async fn list(State(state): State<AppState>, SignedInPage(signed_in): SignedInPage) -> Response {
    let (summaries, pins) = match versions(&state, signed_in.user.workspace_id).await {
        Ok(found) => found,
        Err(error) => return error.into_response(),
    };
    let now = now_ms();
    let mut models: Vec<(String, Vec<ShownVersion>)> = Vec::new();
    for summary in &summaries {
        let version = shown(summary, &pins, now);
        match models.iter_mut().find(|(name, _)| *name == summary.name) {
            Some((_, versions)) => versions.push(version),
            None => models.push((summary.name.clone(), vec![version])),
        }
    }
    let shown_page = PredictivePage { account: Some(AccountView::from(&signed_in)), section: "predictive", models };
    page(StatusCode::OK, &shown_page)
}

#[derive(Template)]
#[template(path = "console/predictive_model.html")]
struct ModelPage {
    account: Option<AccountView>,
    section: &'static str,
    model: ShownVersion,
    /// What its training measured on held-out leads, as (figure, value) rows.
    training: Vec<(&'static str, String)>,
    /// Whether the workspace's outcomes make a report, and how many of each there are.
    report: bool,
    customers: usize,
    lost: usize,
    /// Whether the person may retrain it, and the outcomes of each kind a retrain needs.
    can_retrain: bool,
    min_outcomes: usize,
    /// What stopped a retrain.
    problem: Option<String>,
}

fn not_found(signed_in: &SignedIn) -> Response {
    let shown = MissingPage {
        account: Some(AccountView::from(signed_in)),
        section: "predictive",
        what: "This workspace has no such predictive model version.",
        back: ("/predictive", "Back to the predictive models"),
    };
    page(StatusCode::NOT_FOUND, &shown)
}

/// The figures a model file's `evaluation` records, as rows of the page.
fn training_figures(evaluation: &Value) -> Vec<(&'static str, String)> {
    let number =
        |key: &str, decimals: usize| evaluation.get(key).and_then(Value::as_f64).map(|v| format!("{v:.decimals$}"));
    let share = evaluation.get("test_positive_rate").and_then(Value::as_f64).map(|v| format!("{:.1} %", v * 100.0));
    [
        ("AUC on held-out leads", number("auc", 3)),
        ("Log loss", number("log_loss", 3)),
        ("Brier score", number("brier", 3)),
        ("Training leads", number("train_rows", 0)),
        ("Held-out leads", number("test_rows", 0)),
        ("Converted among the held-out", share),
    ]
    .into_iter()
    .filter_map(|(label, value)| value.map(|value| (label, value)))
    .collect()
}

/// `GET /predictive/{id}`: one version, its training's figures and its evaluation report.
pub async fn show(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    Path(id): Path<i64>,
) -> Response {
    render(&state, &signed_in, id, StatusCode::OK, None).await
}

async fn render(
    state: &AppState,
    signed_in: &SignedIn,
    id: i64,
    status: StatusCode,
    problem: Option<String>,
) -> Response {
    let workspace_id = signed_in.user.workspace_id;
    let (summaries, pins) = match versions(state, workspace_id).await {
        Ok(found) => found,
        Err(error) => return error.into_response(),
    };
    let Some(summary) = summaries.iter().find(|s| s.id == id) else { return not_found(signed_in) };
    let read = state
        .storage
        .read(move |reads| Ok((reads.predictive_model(workspace_id, id)?, reads.labelled_leads(workspace_id)?)))
        .await;
    let (stored, outcomes) = match read {
        Ok((Some(stored), outcomes)) => (stored, outcomes),
        Ok((None, _)) => return not_found(signed_in),
        Err(error) => return ApiError::from(error).into_response(),
    };
    let evaluation = serde_json::from_str::<Value>(&stored.body)
        .ok()
        .and_then(|file| file.get("evaluation").cloned())
        .unwrap_or(Value::Null);
    let customers = outcomes.iter().filter(|o| o.converted).count();
    let lost = outcomes.len() - customers;
    let shown_page = ModelPage {
        account: Some(AccountView::from(signed_in)),
        section: "predictive",
        model: shown(summary, &pins, now_ms()),
        training: training_figures(&evaluation),
        report: customers > 0 && lost > 0,
        customers,
        lost,
        can_retrain: signed_in.user.role.allows(Role::Admin),
        min_outcomes: retrain::MIN_PER_OUTCOME,
        problem,
    };
    page(status, &shown_page)
}

/// `POST /predictive/{id}/retrain` (admins): trains a new version of the model's name on the
/// workspace's outcomes, as the API's retrain does, then shows it; or the page with what stopped it.
pub async fn retrain(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    Path(id): Path<i64>,
    request: Request,
) -> Response {
    let form = match posted::checked(&state, &signed_in, request, Role::Admin, "retrain predictive models").await {
        Ok(form) => form,
        Err(refusal) => return refusal,
    };
    let workspace_id = signed_in.user.workspace_id;
    let stored = match state.storage.read(move |reads| reads.predictive_model(workspace_id, id)).await {
        Ok(Some(stored)) => stored,
        Ok(None) => return not_found(&signed_in),
        Err(error) => return ApiError::from(error).into_response(),
    };
    let algorithm = match form.get("algorithm") {
        "gbdt" => Algorithm::Gbdt,
        _ => Algorithm::Logistic,
    };
    let asked =
        Asked { algorithm, fields: None, activate: form.get("activate") == "yes", seed: retraining::DEFAULT_SEED };
    match retraining::retrain(&state, workspace_id, stored.name, asked).await {
        Ok(done) => Redirect::to(&format!("/predictive/{}", done.stored.id)).into_response(),
        Err(error) if error.status().is_client_error() => {
            render(&state, &signed_in, id, error.status(), Some(sentence(&error.message))).await
        }
        Err(error) => error.into_response(),
    }
}

/// `GET /predictive/{id}/report`: the evaluation report, a document of its own for the frame of
/// the version's page: its own inline style and drawings only, no script, shown only in a page of
/// this service.
pub async fn report(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    Path(id): Path<i64>,
) -> Response {
    let workspace_id = signed_in.user.workspace_id;
    let models = state.models.clone();
    let read = state
        .storage
        .read(move |reads| {
            let Some(stored) = reads.predictive_model(workspace_id, id)? else { return Ok(None) };
            let model = models.predictor(reads, workspace_id, stored.id)?;
            Ok(Some((stored, model, reads.labelled_leads(workspace_id)?)))
        })
        .await;
    let (stored, model, outcomes) = match read {
        Ok(Some(found)) => found,
        Ok(None) => return not_found(&signed_in),
        Err(error) => return ApiError::from(error).into_response(),
    };
    let title = format!("{} version {}", stored.name, stored.version);
    // Predicting every labelled lead is CPU work: off the async runtime.
    let drawn = tokio::task::spawn_blocking(move || retrain::evaluation_report(&title, &model, &outcomes)).await;
    let body = match drawn {
        Ok(Ok(Some(body))) => body,
        Ok(Ok(None)) => {
            return (
                StatusCode::NOT_FOUND,
                "no report: the workspace has no leads of both outcomes (customer and lost) yet",
            )
                .into_response();
        }
        Ok(Err(error)) => {
            tracing::error!(%error, model = id, "an evaluation report could not be drawn");
            return (StatusCode::INTERNAL_SERVER_ERROR, "the report could not be drawn; it was logged").into_response();
        }
        Err(_) => return ApiError::internal().into_response(),
    };
    // The report's own styles inline, no script, framed by the console's pages only.
    super::page::html(
        StatusCode::OK,
        body,
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; base-uri 'none'; \
         form-action 'none'; sandbox",
    )
}
