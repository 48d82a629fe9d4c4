//! Previewing a version against the active one (`/models/{version}/preview`: the tier
//! distribution of each score side by side, the leads that would change tier, the stage moves
//! and webhook notifications an activation would cause), activating it and rolling back (admins
//! only: a confirmation page stating what will change, then a post), and the rescoring's
//! progress (`/models/rescoring`, a page that reloads itself until the rescoring is done). The
//! preview compares every lead in the background (`model_versions::background_preview`, the
//! API's comparison a batch at a time): a page shows the kept result with its time, or the
//! comparison's progress (the preview page reloading itself until it is done); activations and
//! rollbacks are the API's.

use std::collections::BTreeSet;

use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use leadscore_store::StoreError;
use leadscore_store::users::Role;
use serde::Deserialize;

use super::charts;
use super::leads::{ShownTime, encode, shown_time};
use super::models::{no_such_version, posted_form};
use super::page::{AccountView, page, sentence};
use super::session::{SignedInPage, refuse_unless};
use crate::accounts::SignedIn;
use crate::error::{ApiError, ErrorCode};
use crate::model_versions::{self, BackgroundPreview};
use crate::preview::Preview;
use crate::preview_jobs::Status;
use crate::rescore;
use crate::state::AppState;

/// One tier of a score under both versions.
struct TierRow {
    tier: String,
    before: u64,
    after: u64,
    difference: String,
    /// Bar lengths, in hundredths of the largest count of the score.
    before_bar: String,
    after_bar: String,
}

struct ScoreComparison {
    name: String,
    /// Whether the score has tiers (one without has every lead in "no tier": no table then).
    has_tiers: bool,
    rows: Vec<TierRow>,
    /// Mean values, as text.
    mean_before: Option<String>,
    mean_after: String,
}

struct ChangeRow {
    link: String,
    lead: String,
    score: String,
    from: String,
    to: String,
    before: String,
    after: String,
}

/// What a preview shows, from `preview::compare`'s report.
struct Shown {
    version: i64,
    compared_with: Option<i64>,
    leads: usize,
    scores: Vec<ScoreComparison>,
    leads_changing_tier: u64,
    changes: Vec<ChangeRow>,
    moves_to_mql: u64,
    notifications: Vec<(String, u64)>,
    n_notifications: u64,
}

/// The preview's figures as the page shows them; `tiers` gives each score's tiers in the order
/// the version lists them (others, and "no tier", come first).
fn shown(report: &Preview, tiers: &[(String, Vec<String>)]) -> Shown {
    let names: BTreeSet<&String> = report.active.keys().chain(report.candidate.keys()).collect();
    let scores = names
        .into_iter()
        .map(|name| {
            let before = report.active.get(name);
            let after = report.candidate.get(name);
            let listed = tiers.iter().find(|(score, _)| score == name).map(|(_, labels)| labels.as_slice());
            let place = |tier: &String| listed.and_then(|labels| labels.iter().position(|l| l == tier));
            let mut tiers: Vec<&String> = before
                .iter()
                .flat_map(|d| d.tiers.keys())
                .chain(after.iter().flat_map(|d| d.tiers.keys()))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            tiers.sort_by_key(|tier| place(tier));
            let count = |d: Option<&crate::preview::ScoreDistribution>, tier: &String| {
                d.and_then(|d| d.tiers.get(tier)).copied().unwrap_or(0)
            };
            let largest = tiers.iter().map(|t| count(before, t).max(count(after, t))).max().unwrap_or(0).max(1);
            let bar = |n: u64| format!("{:.1}", 100.0 * n as f64 / largest as f64);
            let rows: Vec<TierRow> = tiers
                .into_iter()
                .map(|tier| {
                    let (b, a) = (count(before, tier), count(after, tier));
                    TierRow {
                        tier: if tier.is_empty() { "no tier".to_string() } else { tier.clone() },
                        before: b,
                        after: a,
                        difference: charts::signed(a as f64 - b as f64),
                        before_bar: bar(b),
                        after_bar: bar(a),
                    }
                })
                .collect();
            ScoreComparison {
                name: name.clone(),
                has_tiers: rows.iter().any(|row| row.tier != "no tier"),
                rows,
                mean_before: before.map(|d| charts::plain(d.mean)),
                mean_after: after.map_or_else(|| "–".to_string(), |d| charts::plain(d.mean)),
            }
        })
        .collect();
    let tier = |t: &Option<String>| t.clone().unwrap_or_else(|| "no tier".to_string());
    let changes = report
        .changes
        .iter()
        .map(|change| {
            let lead = change.user_id.clone().unwrap_or_else(|| format!("lead {}", change.lead_id));
            ChangeRow {
                link: format!(
                    "/leads/{}",
                    encode(&change.user_id.clone().unwrap_or_else(|| change.lead_id.to_string()))
                ),
                lead,
                score: change.score.clone(),
                from: tier(&change.from),
                to: tier(&change.to),
                before: change.value_before.map_or_else(|| "–".to_string(), charts::plain),
                after: charts::plain(change.value_after),
            }
        })
        .collect();
    let notifications: Vec<(String, u64)> =
        report.consequences.webhook_notifications.iter().map(|(kind, n)| (kind.to_string(), *n)).collect();
    Shown {
        version: report.version,
        compared_with: report.compared_with,
        leads: report.leads,
        scores,
        leads_changing_tier: report.leads_changing_tier,
        changes,
        moves_to_mql: report.consequences.moves_to_mql,
        n_notifications: notifications.iter().map(|(_, n)| n).sum(),
        notifications,
    }
}

/// A comparison under way, as a page shows it.
struct Running {
    done: u64,
    total: u64,
    percent: u64,
}

/// A background preview as a page shows it: one of its result (with when it was computed), its
/// progress or its failure, or none for the active version itself.
struct PreviewView {
    version: i64,
    compared_with: Option<i64>,
    result: Option<Shown>,
    computed: Option<ShownTime>,
    running: Option<Running>,
    failed: Option<String>,
}

/// Version `version` previewed against the active one, as a page shows it (`again`: compared
/// anew, unless a comparison runs).
async fn previewed(state: &AppState, workspace_id: i64, version: i64, again: bool) -> Result<PreviewView, StoreError> {
    let (BackgroundPreview { version, compared_with, status }, tiers) = tokio::try_join!(
        model_versions::background_preview(state, workspace_id, version, again),
        model_versions::tiers(state, workspace_id, version)
    )?;
    let mut view = PreviewView { version, compared_with, result: None, computed: None, running: None, failed: None };
    match status {
        Some(Status::Finished { preview, computed_at }) => {
            view.result = Some(shown(&preview, &tiers));
            view.computed = Some(shown_time(computed_at, leadscore_store::now_ms()));
        }
        Some(Status::Running { done, total, .. }) => {
            let percent = (100 * done).checked_div(total).map_or(0, |percent| percent.min(100));
            view.running = Some(Running { done, total, percent });
        }
        Some(Status::Failed { message, .. }) => view.failed = Some(message),
        None => {}
    }
    Ok(view)
}

#[derive(Template)]
#[template(path = "console/model_preview.html")]
struct PreviewPage {
    account: Option<AccountView>,
    section: &'static str,
    view: PreviewView,
    can_activate: bool,
    /// Whether a running comparison's page reloads itself (a confirmation page does not, so
    /// that it never reloads under the admin's click).
    reloads: bool,
}

/// `GET /models/{version}/preview`.
pub async fn preview(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    Path(version): Path<String>,
) -> Response {
    preview_page(&state, &signed_in, &version, false).await
}

#[derive(Deserialize)]
pub struct AgainForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /models/{version}/preview`: compares again (the kept result is of another time), then
/// shows the page.
pub async fn compare_again(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    Path(version): Path<String>,
    request: Request,
) -> Response {
    let asked = (Role::Viewer, "preview a model version");
    if let Err(refusal) = posted_form(&state, &signed_in, request, asked, |f: &AgainForm| &f.csrf).await {
        return refusal;
    }
    let answer = preview_page(&state, &signed_in, &version, true).await;
    if answer.status() != StatusCode::OK {
        return answer;
    }
    // The page's own address, so that reloading it compares nothing again.
    Redirect::to(&format!("/models/{}/preview", encode(&version))).into_response()
}

async fn preview_page(state: &AppState, signed_in: &SignedIn, version: &str, again: bool) -> Response {
    let started = std::time::Instant::now();
    let Ok(number) = version.parse::<i64>() else { return no_such_version(signed_in, version) };
    let view = match previewed(state, signed_in.user.workspace_id, number, again).await {
        Ok(view) => view,
        Err(StoreError::NotFound(_)) => return no_such_version(signed_in, version),
        Err(error) => return ApiError::from(error).into_response(),
    };
    let shown = PreviewPage {
        account: Some(AccountView::from(signed_in)),
        section: "models",
        view,
        can_activate: signed_in.user.role.allows(Role::Admin),
        reloads: true,
    };
    let mut answer = page(StatusCode::OK, &shown);
    server_timing(&mut answer, started);
    answer
}

/// The server's own time for the page, in a `Server-Timing` header, as the leads pages give it.
fn server_timing(answer: &mut Response, started: std::time::Instant) {
    let value = format!("app;dur={:.1}", started.elapsed().as_secs_f64() * 1000.0);
    if let Ok(value) = axum::http::HeaderValue::from_str(&value) {
        answer.headers_mut().insert("server-timing", value);
    }
}

#[derive(Template)]
#[template(path = "console/model_confirm.html")]
struct ConfirmPage {
    account: Option<AccountView>,
    section: &'static str,
    /// `activate` or `rollback`.
    action: &'static str,
    /// Where the form posts.
    post_to: String,
    /// What will change; `None` when there is nothing to do (and `nothing` says why).
    view: Option<PreviewView>,
    nothing: Option<String>,
    problem: Option<String>,
    reloads: bool,
}

/// `GET /models/{version}/activate`: what activating it will change, and the button.
pub async fn confirm_activation(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    Path(version): Path<String>,
) -> Response {
    if let Some(refusal) = refuse_unless(&signed_in, Role::Admin, "activate a model version") {
        return refusal;
    }
    let started = std::time::Instant::now();
    let Ok(number) = version.parse::<i64>() else { return no_such_version(&signed_in, &version) };
    let mut answer = activation_page(&state, &signed_in, number, StatusCode::OK, None).await;
    server_timing(&mut answer, started);
    answer
}

async fn activation_page(
    state: &AppState,
    signed_in: &SignedIn,
    version: i64,
    status: StatusCode,
    problem: Option<String>,
) -> Response {
    let workspace_id = signed_in.user.workspace_id;
    let view = match previewed(state, workspace_id, version, false).await {
        Ok(view) => view,
        Err(StoreError::NotFound(_)) => return no_such_version(signed_in, &version.to_string()),
        Err(error) => return ApiError::from(error).into_response(),
    };
    let already = view.compared_with == Some(version);
    let shown = ConfirmPage {
        account: Some(AccountView::from(signed_in)),
        section: "models",
        action: "activate",
        post_to: format!("/models/{version}/activate"),
        nothing: already.then(|| format!("Version {version} is already the active version.")),
        view: (!already).then_some(view),
        problem,
        reloads: false,
    };
    page(status, &shown)
}

/// `GET /models/rollback`: what rolling back will change, and the button.
pub async fn confirm_rollback(State(state): State<AppState>, SignedInPage(signed_in): SignedInPage) -> Response {
    if let Some(refusal) = refuse_unless(&signed_in, Role::Admin, "roll back the model") {
        return refusal;
    }
    rollback_page(&state, &signed_in, StatusCode::OK, None).await
}

async fn rollback_page(
    state: &AppState,
    signed_in: &SignedIn,
    status: StatusCode,
    problem: Option<String>,
) -> Response {
    let workspace_id = signed_in.user.workspace_id;
    let target = match model_versions::rollback_target(state, workspace_id).await {
        Ok(target) => target,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let mut shown_page = ConfirmPage {
        account: Some(AccountView::from(signed_in)),
        section: "models",
        action: "rollback",
        post_to: "/models/rollback".to_string(),
        view: None,
        nothing: None,
        problem,
        reloads: false,
    };
    match target {
        None => {
            shown_page.nothing = Some(
                "There is no earlier version to roll back to: every version activated before the active one was \
                 rolled back, or only one was ever active."
                    .to_string(),
            );
        }
        Some(version) => match previewed(state, workspace_id, version, false).await {
            Ok(view) => shown_page.view = Some(view),
            Err(error) => return ApiError::from(error).into_response(),
        },
    }
    page(status, &shown_page)
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    csrf: String,
}

/// What stopped an activation or a rollback, as a sentence for its confirmation page, when it is
/// the person's to resolve (a rescoring still running, nothing to roll back to); `None` for a
/// fault, answered as the API answers it.
fn problem_of(error: &ApiError) -> Option<(StatusCode, String)> {
    if error.code == ErrorCode::Rescoring {
        // The API's message points at its own route; a person follows the console's page.
        let message = "A rescoring of the workspace is still running: wait until it is done (the models page links to its progress), then try again.";
        return Some((error.status(), message.to_string()));
    }
    error.status().is_client_error().then(|| (error.status(), sentence(&error.message)))
}

/// `POST /models/{version}/activate`: activates it, then shows the rescoring's progress.
pub async fn activate(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    Path(version): Path<String>,
    request: Request,
) -> Response {
    let confirmation = (Role::Admin, "activate a model version");
    if let Err(refusal) = posted_form(&state, &signed_in, request, confirmation, |f: &ConfirmForm| &f.csrf).await {
        return refusal;
    }
    let Ok(number) = version.parse::<i64>() else { return no_such_version(&signed_in, &version) };
    match model_versions::activate(&state, signed_in.user.workspace_id, number).await {
        Ok(_) => Redirect::to("/models/rescoring").into_response(),
        Err(StoreError::NotFound(_)) => no_such_version(&signed_in, &version),
        Err(error) => {
            let error = ApiError::from(error);
            match problem_of(&error) {
                Some((status, problem)) => activation_page(&state, &signed_in, number, status, Some(problem)).await,
                None => error.into_response(),
            }
        }
    }
}

/// `POST /models/rollback`: rolls back, then shows the rescoring's progress.
pub async fn rollback(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    request: Request,
) -> Response {
    let confirmation = (Role::Admin, "roll back the model");
    if let Err(refusal) = posted_form(&state, &signed_in, request, confirmation, |f: &ConfirmForm| &f.csrf).await {
        return refusal;
    }
    match model_versions::rollback(&state, signed_in.user.workspace_id).await {
        Ok(_) => Redirect::to("/models/rescoring").into_response(),
        Err(error) => {
            let error = ApiError::from(error);
            match problem_of(&error) {
                Some((status, problem)) => rollback_page(&state, &signed_in, status, Some(problem)).await,
                None => error.into_response(),
            }
        }
    }
}

#[derive(Template)]
#[template(path = "console/model_rescoring.html")]
struct RescoringPage {
    account: Option<AccountView>,
    section: &'static str,
    /// `None` when no rescoring ran since the service started.
    progress: Option<rescore::Progress>,
    percent: u64,
}

/// `GET /models/rescoring`: the workspace's running or last rescoring; while it runs, the page
/// reloads itself every second (no script needed).
pub async fn rescoring(State(state): State<AppState>, SignedInPage(signed_in): SignedInPage) -> Response {
    let progress = match rescore::progress(&state, signed_in.user.workspace_id).await {
        Ok(progress) => progress,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let percent = progress
        .as_ref()
        .map_or(0, |p| if p.finished_at.is_some() || p.total == 0 { 100 } else { (100 * p.done / p.total).min(100) });
    let shown = RescoringPage { account: Some(AccountView::from(&signed_in)), section: "models", progress, percent };
    page(StatusCode::OK, &shown)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::preview::{Consequences, ScoreDistribution, TierChange};

    fn distribution(tiers: &[(&str, u64)]) -> ScoreDistribution {
        let tiers = tiers.iter().map(|(label, n)| (label.to_string(), *n)).collect();
        ScoreDistribution { tiers, min: 0.0, max: 10.0, mean: 4.25 }
    }

    #[test]
    fn tiers_are_shown_in_the_models_order_with_their_change_and_leads_by_their_id() {
        let report = Preview {
            version: 2,
            compared_with: Some(1),
            leads: 9,
            active: BTreeMap::from([("fit".to_string(), distribution(&[("cold", 6), ("warm", 3)]))]),
            candidate: BTreeMap::from([(
                "fit".to_string(),
                distribution(&[("", 1), ("cold", 4), ("hot", 1), ("warm", 3)]),
            )]),
            leads_changing_tier: 3,
            changes: vec![TierChange {
                lead_id: 7,
                user_id: Some("ząb@example.pl".to_string()),
                score: "fit".to_string(),
                from: Some("cold".to_string()),
                to: None,
                value_before: Some(1.0),
                value_after: -0.5,
            }],
            consequences: Consequences {
                moves_to_mql: 1,
                webhook_notifications: BTreeMap::from([("lead.tier_changed", 2), ("lead.stage_changed", 1)]),
            },
        };
        let tiers = [("fit".to_string(), vec!["cold".to_string(), "warm".to_string(), "hot".to_string()])];
        let shown = shown(&report, &tiers);
        let rows: Vec<_> =
            shown.scores[0].rows.iter().map(|r| (r.tier.as_str(), r.before, r.after, r.difference.as_str())).collect();
        assert_eq!(rows, [("no tier", 0, 1, "+1"), ("cold", 6, 4, "−2"), ("warm", 3, 3, "0"), ("hot", 0, 1, "+1")]);
        assert_eq!(shown.scores[0].rows[1].before_bar, "100.0", "bars are scaled to the score's largest count");
        let change = &shown.changes[0];
        assert_eq!(
            (change.link.as_str(), change.to.as_str(), change.after.as_str()),
            ("/leads/z%C4%85b%40example.pl", "no tier", "−0.5")
        );
        assert_eq!(shown.n_notifications, 3);
    }
}
