//! `/account`: every person changes their own password, proving they know the current one. The
//! change ends every session of the account (a browser left signed in elsewhere is signed out)
//! and opens a new one for this browser, so that the person stays signed in here.

use askama::Template;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use leadscore_store::now_ms;
use leadscore_store::users::Role;
use serde::Deserialize;

use super::page::{AccountView, page, sentence};
use super::posted;
use super::session::{SignedInPage, session_cookie};
use crate::accounts::{self, AccountError, LIFETIME, SignedIn};
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "console/account.html")]
struct AccountPage {
    account: Option<AccountView>,
    section: &'static str,
    role: String,
    changed: bool,
    /// What stopped the change, and the id of the field it is about.
    problem: Option<(String, &'static str)>,
}

fn render(
    signed_in: &SignedIn,
    status: StatusCode,
    changed: bool,
    problem: Option<(String, &'static str)>,
) -> Response {
    let shown = AccountPage {
        account: Some(AccountView::from(signed_in)),
        section: "account",
        role: signed_in.user.role.to_string(),
        changed,
        problem,
    };
    page(status, &shown)
}

#[derive(Deserialize)]
pub struct AccountQuery {
    #[serde(default)]
    changed: Option<String>,
}

/// `GET /account`: who is signed in, and the form to change one's password.
pub async fn show(SignedInPage(signed_in): SignedInPage, Query(query): Query<AccountQuery>) -> Response {
    render(&signed_in, StatusCode::OK, query.changed.is_some(), None)
}

/// `POST /account/password`: the new password, if the current one is right and the new one is
/// typed the same twice.
pub async fn change_password(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    request: Request,
) -> Response {
    let form = match posted::checked(&state, &signed_in, request, Role::Viewer, "change their password").await {
        Ok(form) => form,
        Err(refusal) => return refusal,
    };
    let problem =
        |text: &str, field| render(&signed_in, StatusCode::BAD_REQUEST, false, Some((text.to_string(), field)));
    match accounts::password_matches(&state.storage, &signed_in.user.email, form.get("current")).await {
        Ok(true) => {}
        Ok(false) => return problem("The current password is not right: type the one you signed in with", "current"),
        Err(error) => return fault(error),
    }
    let new = form.get("new");
    if new != form.get("again") {
        return problem("The two new passwords differ: type the same one twice", "again");
    }
    let now = now_ms();
    match accounts::set_password(&state.storage, &signed_in.user, new.to_string(), now).await {
        Ok(()) => {}
        Err(AccountError::Password(reason)) => return problem(&sentence(&reason.to_string()), "new"),
        Err(error) => return fault(error),
    }
    let opened = match accounts::reopen_session(&state.storage, &signed_in.user, now).await {
        Ok(opened) => opened,
        Err(error) => return fault(error),
    };
    let mut response = Redirect::to("/account?changed=yes").into_response();
    if let Ok(cookie) = HeaderValue::from_str(&session_cookie(&opened.token, LIFETIME, state.config.behind_https)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

fn fault(error: AccountError) -> Response {
    match error {
        AccountError::Storage(error) => ApiError::from(error).into_response(),
        other => {
            tracing::error!(error = %other, "a password change failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "the password could not be changed; try again").into_response()
        }
    }
}
