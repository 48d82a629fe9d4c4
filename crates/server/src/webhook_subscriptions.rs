//! Webhook subscriptions as the API and the console make them: a new subscription checked (its
//! URL, its events, `score` and `threshold` with `score_crossed` only, an address the service may
//! reach) and stored with a signing secret, with warnings of what the active model never gives;
//! and a notification queued again for redelivery.

use leadscore_core::value::format_number;
use leadscore_core::{Model, check};
use leadscore_store::webhooks::{EVENT_KINDS, NewWebhook, Webhook};

use crate::egress;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// The most characters of a webhook's URL (what browsers and proxies commonly take).
pub const URL_LIMIT: usize = 2048;

/// A subscription someone asks for, as sent (checked by [`subscribe`]).
#[derive(Debug, Clone, Default)]
pub struct Subscription {
    pub url: String,
    pub events: Vec<String>,
    pub score: Option<String>,
    pub threshold: Option<f64>,
}

/// Checks and stores a subscription of the workspace at `now`: the webhook (with its secret, to
/// show once) and its warnings, or why it was refused (`invalid_field`, the field named).
pub async fn subscribe(
    state: &AppState,
    workspace_id: i64,
    asked: Subscription,
    now: i64,
) -> Result<(Webhook, Vec<String>), ApiError> {
    let characters = asked.url.chars().count();
    if characters > URL_LIMIT {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!("`url` has {characters} characters; at most {URL_LIMIT} are stored"),
        ));
    }
    if let Some(score) = &asked.score {
        crate::messages::check_id("`score`", score).map_err(|reason| ApiError::new(ErrorCode::InvalidField, reason))?;
    }
    let url = reqwest::Url::parse(&asked.url)
        .map_err(|e| ApiError::new(ErrorCode::InvalidField, format!("`url` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ApiError::new(ErrorCode::InvalidField, "`url` must be an http:// or https:// URL"));
    }
    if asked.events.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!("`events` is empty: use any of {}", EVENT_KINDS.join(", ")),
        ));
    }
    if let Some(unknown) = asked.events.iter().find(|e| !EVENT_KINDS.contains(&e.as_str())) {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!("`events` has `{unknown}`: use any of {}", EVENT_KINDS.join(", ")),
        ));
    }
    let crossing = asked.events.iter().any(|e| e == "score_crossed");
    match (crossing, &asked.score, asked.threshold) {
        (true, Some(_), Some(t)) if t.is_finite() => {}
        (true, _, _) => {
            return Err(ApiError::new(
                ErrorCode::InvalidField,
                "`score_crossed` needs `score` and a finite `threshold`",
            ));
        }
        (false, None, None) => {}
        (false, _, _) => {
            return Err(ApiError::new(ErrorCode::InvalidField, "`score` and `threshold` only go with `score_crossed`"));
        }
    }
    // Checked last: it may wait for a name to resolve. Deliveries check the address again.
    if !state.config.allow_private_webhooks {
        egress::check_url(&url).await.map_err(|refused| {
            ApiError::new(ErrorCode::InvalidField, format!("`url`: {refused}: {}", egress::HOW_TO_ALLOW))
        })?;
    }
    // The active model, to warn of what it never gives: `None` when there is none, `Some(None)`
    // when it cannot be compiled (a fault for the log, not a reason to refuse the subscription).
    let models = state.models.clone();
    let active = state
        .storage
        .read(move |reads| {
            let Some(version) = reads.active_model(workspace_id)? else { return Ok(None) };
            match models.get(reads, &version) {
                Ok(model) => Ok(Some(Some((version.version, model)))),
                Err(error) => {
                    tracing::error!(%error, model = version.id, "cannot compile the active model to check a webhook");
                    Ok(Some(None))
                }
            }
        })
        .await?;
    let warnings = match &active {
        None => warnings(None, &asked),
        Some(Some((version, model))) => warnings(Some((*version, model)), &asked),
        Some(None) => Vec::new(),
    };
    let new = NewWebhook { url: url.to_string(), events: asked.events, score: asked.score, threshold: asked.threshold };
    let webhook = state.storage.subscribe_webhook(workspace_id, new, now).await?;
    Ok((webhook, warnings))
}

/// What a subscription asks for that the workspace's active model (its version number and
/// itself, if there is one) never gives. These are warnings, not refusals: a subscription outlives
/// model versions, and one activated later may have the score, the range or the tiers.
fn warnings(active: Option<(i64, &Model)>, asked: &Subscription) -> Vec<String> {
    let mut warnings = Vec::new();
    let wants = |kind: &str| asked.events.iter().any(|e| e == kind);
    let Some((version, model)) = active else {
        if let Some(score) = &asked.score {
            warnings.push(format!(
                "the workspace has no active model yet, so score `{score}` cannot be checked: \
                 `score_crossed` is sent only while the active model has it"
            ));
        }
        return warnings;
    };
    if let (Some(score), Some(threshold)) = (&asked.score, asked.threshold) {
        let reports = check::report(model);
        match reports.iter().find(|r| r.score == *score) {
            None => {
                let names: Vec<String> = model.score_names().map(|n| format!("`{n}`")).collect();
                warnings.push(format!(
                    "the active model (version {version}) has no score `{score}` (it has {}): `score_crossed` is \
                     sent only once a model with it is active",
                    names.join(", ")
                ));
            }
            Some(report) => {
                // A lead's first value counts as coming from 0.
                let (lowest, highest) = (report.range.min.min(0.0), report.range.max.max(0.0));
                let range = format!(
                    "in the active model (version {version}) it ranges from {} to {}",
                    bound(report.range.min),
                    bound(report.range.max)
                );
                let threshold_text = format_number(threshold);
                if threshold <= lowest {
                    warnings.push(format!(
                        "score `{score}` is never below {threshold_text} ({range}, and a lead's first value counts \
                         as coming from 0): `score_crossed` is never sent"
                    ));
                } else if threshold > highest {
                    warnings.push(format!(
                        "score `{score}` never reaches {threshold_text} ({range}): `score_crossed` is never sent"
                    ));
                }
            }
        }
    }
    if wants("tier_changed") && model.scores().iter().all(|s| s.tiers().is_empty()) {
        warnings
            .push(format!("no score of the active model (version {version}) has tiers: `tier_changed` is never sent"));
    }
    warnings
}

fn bound(value: f64) -> String {
    if value.is_infinite() {
        format!("{}infinity", if value < 0.0 { "minus " } else { "" })
    } else {
        format_number(value)
    }
}

/// Queues one of the workspace's notifications again, as a new one, and wakes the dispatcher;
/// returns the new notification's id.
pub async fn redeliver(state: &AppState, workspace_id: i64, outbox_id: i64, now: i64) -> Result<i64, ApiError> {
    let queued = state.storage.redeliver(workspace_id, outbox_id, now).await?;
    state.deliveries.notify_one();
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crossing(score: &str, threshold: f64) -> Subscription {
        Subscription {
            url: "https://crm.example.com/hook".into(),
            events: vec!["score_crossed".into()],
            score: Some(score.into()),
            threshold: Some(threshold),
        }
    }

    #[test]
    fn a_threshold_outside_what_the_score_can_reach_is_a_warning() {
        let source = "[scores.fit]\ntiers = [{ label = \"cold\" }, { label = \"hot\", min = 3 }]\n[[scores.fit.rules]]\n\
                      name = \"tech\"\nwhen = { field = \"industry\", equals = \"Technology\" }\npoints = 5\n";
        let model = leadscore_core::compile(source).unwrap().model;
        let active = Some((2, &model));
        assert_eq!(warnings(active, &crossing("fit", 5.0)), Vec::<String>::new(), "5 is reached");
        assert_eq!(warnings(active, &crossing("fit", 0.5)), Vec::<String>::new());
        let above = warnings(active, &crossing("fit", 10.0));
        assert_eq!(
            above,
            [
                "score `fit` never reaches 10 (in the active model (version 2) it ranges from 0 to 5): `score_crossed` is never sent"
            ]
        );
        let below = warnings(active, &crossing("fit", 0.0));
        assert!(below[0].starts_with("score `fit` is never below 0 "), "{below:?}");
    }
}
