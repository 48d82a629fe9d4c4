//! The lead page's override forms (editors and admins): overriding a score with a value, a tier
//! or both, a reason and an optional end, and lifting an override with an optional note. They
//! call what the API calls (`crate::overrides`), in the person's name (`user E-MAIL`), and show
//! the lead again, or its page with what stopped the form at the top.

use axum::extract::{Form, FromRequest as _, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use leadscore_store::now_ms;
use leadscore_store::users::Role;
use serde::Deserialize;

use super::lead::{Problem, render};
use super::leads::{encode, since_time};
use super::page::sentence;
use super::session::{SignedInPage, check_csrf, refuse_unless, refused_origin, same_origin};
use crate::accounts::SignedIn;
use crate::error::ApiError;
use crate::overrides::{self, AskedSet};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct OverrideForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    tier: String,
    #[serde(default)]
    expires: String,
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
pub struct LiftForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    note: String,
}

/// Who a console person is in an override's record.
fn by(signed_in: &SignedIn) -> String {
    format!("user {}", signed_in.user.email)
}

/// The override's problem, linked to the field it is about (the reason unless the message
/// names another).
fn problem(score: &str, status: StatusCode, message: &str) -> Problem {
    let field = ["value", "tier", "expires_at"]
        .into_iter()
        .find(|field| message.contains(&format!("`{field}`")))
        .map_or("reason", |field| if field == "expires_at" { "expires" } else { field });
    Problem {
        status,
        title: "The score was not overridden",
        field: format!("override-{score}-{field}"),
        message: sentence(message),
        kept: Vec::new(),
    }
}

/// The checks every post of these forms passes before its fields are read: origin, role.
fn refused(signed_in: &SignedIn, request: &Request) -> Option<Response> {
    if !same_origin(request.headers()) {
        return Some(refused_origin());
    }
    refuse_unless(signed_in, Role::Editor, "override a lead's score")
}

fn refused_token() -> Response {
    (StatusCode::FORBIDDEN, "this form is not from your session; reload the page and try again").into_response()
}

/// What the page does with the outcome of an override's change: the lead again, its page with
/// the problem, or the error's own answer (a missing lead, a fault).
async fn answer(
    state: &AppState,
    signed_in: &SignedIn,
    id: String,
    score: &str,
    kept: Vec<(&'static str, String)>,
    outcome: Result<(), ApiError>,
) -> Response {
    match outcome {
        Ok(()) => Redirect::to(&format!("/leads/{}", encode(&id))).into_response(),
        Err(error) if error.status().is_client_error() && error.code.name() != "not_found" => {
            let problem = Problem { kept, ..problem(score, error.status(), &error.message) };
            render(state, signed_in, id, Some(problem)).await
        }
        Err(error) => error.into_response(),
    }
}

/// `POST /leads/{id}/overrides/{score}`.
pub async fn set(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    Path((id, score)): Path<(String, String)>,
    request: Request,
) -> Response {
    if let Some(refusal) = refused(&signed_in, &request) {
        return refusal;
    }
    let Ok(Form(form)) = Form::<OverrideForm>::from_request(request, &state).await else {
        let problem = problem(&score, StatusCode::BAD_REQUEST, "The form could not be read; send it again.");
        return render(&state, &signed_in, id, Some(problem)).await;
    };
    if !check_csrf(&signed_in, &form.csrf) {
        return refused_token();
    }
    let value = match form.value.trim() {
        "" => None,
        text => match text.replace(',', ".").parse::<f64>() {
            Ok(value) if value.is_finite() => Some(value),
            _ => {
                let message = format!("`value` must be a number, such as 40; `{text}` is not");
                let problem = Problem { kept: kept_of(&form), ..problem(&score, StatusCode::BAD_REQUEST, &message) };
                return render(&state, &signed_in, id, Some(problem)).await;
            }
        },
    };
    let expires_at = match form.expires.trim() {
        "" => None,
        text => match since_time(text) {
            Some(at) => Some(at),
            None => {
                let message = format!("`expires_at` must be a date and time such as 2026-01-31T09:00; `{text}` is not");
                let problem = Problem { kept: kept_of(&form), ..problem(&score, StatusCode::BAD_REQUEST, &message) };
                return render(&state, &signed_in, id, Some(problem)).await;
            }
        },
    };
    let kept = kept_of(&form);
    let tier = Some(form.tier.trim().to_string()).filter(|t| !t.is_empty());
    let asked = AskedSet { score: score.clone(), value, tier, reason: form.reason, expires_at, by: by(&signed_in) };
    let outcome = overrides::set(&state, signed_in.user.workspace_id, id.clone(), asked, now_ms()).await;
    answer(&state, &signed_in, id, &score, kept, outcome.map(|_| ())).await
}

/// A refused form's fields, to show it again as it was typed.
fn kept_of(form: &OverrideForm) -> Vec<(&'static str, String)> {
    vec![
        ("value", form.value.clone()),
        ("tier", form.tier.clone()),
        ("expires", form.expires.clone()),
        ("reason", form.reason.clone()),
    ]
}

/// `POST /leads/{id}/overrides/{score}/lift`.
pub async fn lift(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    Path((id, score)): Path<(String, String)>,
    request: Request,
) -> Response {
    if let Some(refusal) = refused(&signed_in, &request) {
        return refusal;
    }
    let Ok(Form(form)) = Form::<LiftForm>::from_request(request, &state).await else {
        let problem = problem(&score, StatusCode::BAD_REQUEST, "The form could not be read; send it again.");
        return render(&state, &signed_in, id, Some(problem)).await;
    };
    if !check_csrf(&signed_in, &form.csrf) {
        return refused_token();
    }
    let workspace_id = signed_in.user.workspace_id;
    let note = Some(form.note);
    let outcome =
        overrides::lift(&state, workspace_id, id.clone(), score.clone(), by(&signed_in), note, now_ms()).await;
    answer(&state, &signed_in, id, &score, Vec::new(), outcome.map(|_| ())).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_links_to_the_field_its_message_names() {
        let field = |message: &str| problem("fit", StatusCode::BAD_REQUEST, message).field;
        assert_eq!(field("an override needs a `reason`: say why"), "override-fit-reason");
        assert_eq!(field("`tier` `hot` is not a tier of score `fit`"), "override-fit-tier");
        assert_eq!(field("`expires_at` 2020-01-01T00:00:00Z is not in the future"), "override-fit-expires");
        assert_eq!(field("an override sets `value`, `tier` or both"), "override-fit-value");
        assert_eq!(problem("fit", StatusCode::BAD_REQUEST, "x").message, "X");
    }
}
