//! `/webhooks` (admins): the workspace's webhooks with how their latest delivery went, a new
//! subscription (checked as the API checks it, `webhook_subscriptions.rs`; its signing secret shown
//! once, in the answer to its creation), deletion confirmed on a page of its own; and
//! `/webhooks/{id}`: its deliveries newest first, by page, each with a button that sends it again.

use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use leadscore_core::value::format_number;
use leadscore_store::now_ms;
use leadscore_store::users::Role;
use leadscore_store::webhooks::{LogEntry, Webhook};
use serde::Deserialize;

use super::leads::{ShownTime, shown_time};
use super::missing::MissingPage;
use super::page::{AccountView, page, sentence};
use super::posted;
use super::session::{SignedInPage, refuse_unless};
use crate::accounts::SignedIn;
use crate::error::ApiError;
use crate::state::AppState;
use crate::webhook_subscriptions::{self, Subscription};

/// Deliveries a page of the log shows.
const DELIVERIES_PER_PAGE: u32 = 25;

/// Each kind of notification and when it is sent, as the form explains it.
const EVENTS: [(&str, &str); 4] = [
    ("tier_changed", "a lead's tier changes"),
    ("became_mql", "a lead becomes a marketing-qualified lead"),
    ("stage_changed", "a lead's stage changes"),
    ("score_crossed", "a score crosses a threshold (give the score and the threshold)"),
];

/// How a notification's delivery stands, as a word and the class of its badge.
fn status_of(entry: &LogEntry) -> (&'static str, &'static str) {
    match (entry.delivered_at, entry.failed_at) {
        (Some(_), _) => ("Delivered", "state-live"),
        (None, Some(_)) => ("Failed", "state-failed"),
        (None, None) if entry.attempts > 0 => ("Retrying", "state-waiting"),
        (None, None) => ("Pending", "state-waiting"),
    }
}

struct ShownWebhook {
    id: i64,
    url: String,
    events: Vec<String>,
    /// `score ≥ threshold` for `score_crossed`.
    crossing: Option<String>,
    created: ShownTime,
    /// How its latest delivery went: a word, its badge's class, and when.
    latest: Option<(&'static str, &'static str, ShownTime)>,
}

fn shown_webhook(webhook: &Webhook, latest: Option<&LogEntry>, now: i64) -> ShownWebhook {
    ShownWebhook {
        id: webhook.id,
        url: webhook.url.clone(),
        events: webhook.events.clone(),
        crossing: webhook
            .score
            .as_ref()
            .zip(webhook.threshold)
            .map(|(s, t)| format!("{s} crosses {}", format_number(t))),
        created: shown_time(webhook.created_at, now),
        latest: latest.map(|entry| {
            let (word, class) = status_of(entry);
            (word, class, shown_time(entry.created_at, now))
        }),
    }
}

/// The form as it was sent, to show again with its problem.
#[derive(Default)]
struct Asked {
    url: String,
    events: Vec<String>,
    score: String,
    threshold: String,
}

/// A webhook just created: the only page that shows its signing secret.
struct Created {
    url: String,
    secret: String,
    warnings: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/webhooks.html")]
struct WebhooksPage {
    account: Option<AccountView>,
    section: &'static str,
    events: [(&'static str, &'static str); 4],
    webhooks: Vec<ShownWebhook>,
    created: Option<Created>,
    asked: Asked,
    problem: Option<String>,
    /// The id of the field the problem is about.
    problem_field: &'static str,
}

/// A message of the subscription's checks in the words of the form, and the field it is about.
fn in_form_words(message: &str) -> (String, &'static str) {
    let field = if message.contains("`events`") {
        "webhook-events"
    } else if message.contains("`threshold`") || message.contains("threshold `") {
        "webhook-threshold"
    } else if message.contains("`score`") {
        "webhook-score"
    } else {
        "webhook-url"
    };
    let words = message
        .replace("`url`", "the address")
        .replace("`events`", "the list of notifications")
        .replace("`score`", "the score")
        .replace("`threshold`", "the threshold");
    (sentence(&words), field)
}

async fn render(
    state: &AppState,
    signed_in: &SignedIn,
    status: StatusCode,
    created: Option<Created>,
    asked: Asked,
    problem: Option<String>,
) -> Response {
    let workspace_id = signed_in.user.workspace_id;
    let now = now_ms();
    let hooks = match state.storage.list_webhooks(workspace_id).await {
        Ok(hooks) => hooks,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let mut webhooks = Vec::with_capacity(hooks.len());
    for webhook in &hooks {
        let latest = match state.storage.delivery_log(workspace_id, webhook.id, None, 1).await {
            Ok(log) => log.unwrap_or_default(),
            Err(error) => return ApiError::from(error).into_response(),
        };
        webhooks.push(shown_webhook(webhook, latest.first(), now));
    }
    let (problem, problem_field) = match problem {
        Some(problem) => {
            let (words, field) = in_form_words(&problem);
            (Some(words), field)
        }
        None => (None, ""),
    };
    let shown = WebhooksPage {
        account: Some(AccountView::from(signed_in)),
        section: "webhooks",
        events: EVENTS,
        webhooks,
        created,
        asked,
        problem,
        problem_field,
    };
    page(status, &shown)
}

/// `GET /webhooks`: the webhooks and the form for a new one.
pub async fn list(State(state): State<AppState>, SignedInPage(signed_in): SignedInPage) -> Response {
    if let Some(refusal) = refuse_unless(&signed_in, Role::Admin, "manage webhooks") {
        return refusal;
    }
    render(&state, &signed_in, StatusCode::OK, None, Asked::default(), None).await
}

/// `POST /webhooks`: subscribes, and shows the signing secret in this answer only; or the form
/// again with its problem as a sentence.
pub async fn create(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    request: Request,
) -> Response {
    let form = match posted::checked(&state, &signed_in, request, Role::Admin, "create webhooks").await {
        Ok(form) => form,
        Err(refusal) => return refusal,
    };
    let asked = Asked {
        url: form.get("url").trim().to_string(),
        events: form.all("events"),
        score: form.get("score").trim().to_string(),
        threshold: form.get("threshold").trim().to_string(),
    };
    let threshold = match asked.threshold.as_str() {
        "" => None,
        text => match text.parse::<f64>() {
            Ok(number) => Some(number),
            Err(_) => {
                let problem = format!("the threshold `{text}` is not a number: write it like 50 or 12.5");
                return render(&state, &signed_in, StatusCode::BAD_REQUEST, None, asked, Some(problem)).await;
            }
        },
    };
    let subscription = Subscription {
        url: asked.url.clone(),
        events: asked.events.clone(),
        score: (!asked.score.is_empty()).then(|| asked.score.clone()),
        threshold,
    };
    match webhook_subscriptions::subscribe(&state, signed_in.user.workspace_id, subscription, now_ms()).await {
        Ok((webhook, warnings)) => {
            let created = Created {
                url: webhook.url,
                secret: webhook.secret,
                warnings: warnings.iter().map(|w| sentence(w)).collect(),
            };
            render(&state, &signed_in, StatusCode::CREATED, Some(created), Asked::default(), None).await
        }
        Err(error) if error.status().is_client_error() => {
            render(&state, &signed_in, error.status(), None, asked, Some(error.message)).await
        }
        Err(error) => error.into_response(),
    }
}

fn not_found(signed_in: &SignedIn) -> Response {
    let shown = MissingPage {
        account: Some(AccountView::from(signed_in)),
        section: "webhooks",
        what: "This workspace has no such webhook: it may have been deleted.",
        back: ("/webhooks", "Back to the webhooks"),
    };
    page(StatusCode::NOT_FOUND, &shown)
}

async fn webhook_of(state: &AppState, signed_in: &SignedIn, id: i64) -> Result<Webhook, Response> {
    match state.storage.list_webhooks(signed_in.user.workspace_id).await {
        Ok(hooks) => hooks.into_iter().find(|hook| hook.id == id).ok_or_else(|| not_found(signed_in)),
        Err(error) => Err(ApiError::from(error).into_response()),
    }
}

struct ShownDelivery {
    id: i64,
    lead_id: i64,
    event: String,
    status: &'static str,
    status_class: &'static str,
    attempts: i64,
    response: Option<i64>,
    error: Option<String>,
    created: ShownTime,
    /// When it was delivered, gave up, or is tried next.
    settled: Option<(&'static str, ShownTime)>,
}

#[derive(Template)]
#[template(path = "console/webhook.html")]
struct WebhookPage {
    account: Option<AccountView>,
    section: &'static str,
    webhook: ShownWebhook,
    deliveries: Vec<ShownDelivery>,
    /// Whether this page is the newest one.
    newest: bool,
    /// The `before` of the next (older) page, if there is one.
    older: Option<i64>,
}

#[derive(Deserialize)]
pub struct LogQuery {
    before: Option<i64>,
}

/// `GET /webhooks/{id}`: its deliveries, newest first, a page at a time (`?before=` an id).
pub async fn show(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    Path(id): Path<i64>,
    Query(query): Query<LogQuery>,
) -> Response {
    if let Some(refusal) = refuse_unless(&signed_in, Role::Admin, "see webhook deliveries") {
        return refusal;
    }
    let webhook = match webhook_of(&state, &signed_in, id).await {
        Ok(webhook) => webhook,
        Err(response) => return response,
    };
    let workspace_id = signed_in.user.workspace_id;
    let log = state.storage.delivery_log(workspace_id, id, query.before, DELIVERIES_PER_PAGE + 1).await;
    let mut log = match log {
        Ok(log) => log.unwrap_or_default(),
        Err(error) => return ApiError::from(error).into_response(),
    };
    let older = (log.len() > DELIVERIES_PER_PAGE as usize).then(|| {
        log.truncate(DELIVERIES_PER_PAGE as usize);
        log.last().map_or(0, |entry| entry.id)
    });
    let now = now_ms();
    let latest = if query.before.is_none() { log.first() } else { None };
    let deliveries = log
        .iter()
        .map(|entry| {
            let (status, status_class) = status_of(entry);
            let settled = match (entry.delivered_at, entry.failed_at) {
                (Some(at), _) => Some(("delivered", shown_time(at, now))),
                (None, Some(at)) => Some(("gave up", shown_time(at, now))),
                (None, None) => Some(("next attempt", shown_time(entry.next_attempt_at, now))),
            };
            ShownDelivery {
                id: entry.id,
                lead_id: entry.lead_id,
                event: entry.event.clone(),
                status,
                status_class,
                attempts: entry.attempts,
                response: entry.last_status,
                error: entry.last_error.clone(),
                created: shown_time(entry.created_at, now),
                settled,
            }
        })
        .collect();
    let shown = WebhookPage {
        account: Some(AccountView::from(&signed_in)),
        section: "webhooks",
        webhook: shown_webhook(&webhook, latest, now),
        deliveries,
        newest: query.before.is_none(),
        older,
    };
    page(StatusCode::OK, &shown)
}

/// `POST /webhooks/{id}/deliveries/{delivery}/redeliver`: sends the notification again (as a new
/// delivery, after the lead's pending ones), then the webhook's newest deliveries.
pub async fn redeliver(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    Path((id, delivery)): Path<(i64, i64)>,
    request: Request,
) -> Response {
    if let Err(refusal) =
        posted::checked(&state, &signed_in, request, Role::Admin, "redeliver webhook notifications").await
    {
        return refusal;
    }
    match webhook_subscriptions::redeliver(&state, signed_in.user.workspace_id, delivery, now_ms()).await {
        Ok(_) => Redirect::to(&format!("/webhooks/{id}")).into_response(),
        Err(error) if error.status() == StatusCode::NOT_FOUND => not_found(&signed_in),
        Err(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checks_messages_name_the_fields_as_the_form_does() {
        assert_eq!(
            in_form_words("`url` must be an http:// or https:// URL"),
            ("The address must be an http:// or https:// URL".to_string(), "webhook-url")
        );
        let (words, field) = in_form_words("`events` is empty: use any of tier_changed, became_mql");
        assert_eq!(
            (words.as_str(), field),
            ("The list of notifications is empty: use any of tier_changed, became_mql", "webhook-events")
        );
        assert_eq!(in_form_words("`score_crossed` needs `score` and a finite `threshold`").1, "webhook-threshold");
    }
}

#[derive(Template)]
#[template(path = "console/webhook_delete.html")]
struct DeletePage {
    account: Option<AccountView>,
    section: &'static str,
    webhook: ShownWebhook,
}

/// `GET /webhooks/{id}/delete`: what deleting the webhook stops, and the button that does it.
pub async fn confirm_delete(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    Path(id): Path<i64>,
) -> Response {
    if let Some(refusal) = refuse_unless(&signed_in, Role::Admin, "delete webhooks") {
        return refusal;
    }
    match webhook_of(&state, &signed_in, id).await {
        Ok(webhook) => {
            let shown = DeletePage {
                account: Some(AccountView::from(&signed_in)),
                section: "webhooks",
                webhook: shown_webhook(&webhook, None, now_ms()),
            };
            page(StatusCode::OK, &shown)
        }
        Err(response) => response,
    }
}

/// `POST /webhooks/{id}/delete`: stops the webhook (its pending deliveries are not sent).
pub async fn delete(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    Path(id): Path<i64>,
    request: Request,
) -> Response {
    if let Err(refusal) = posted::checked(&state, &signed_in, request, Role::Admin, "delete webhooks").await {
        return refusal;
    }
    match state.storage.delete_webhook(signed_in.user.workspace_id, id, now_ms()).await {
        Ok(true) => Redirect::to("/webhooks").into_response(),
        Ok(false) => not_found(&signed_in),
        Err(error) => ApiError::from(error).into_response(),
    }
}
