//! Signing in and out of the console: the form, its answer, and the sign-out.
//!
//! A failed sign-in shows the form again with the problem at the top, linked to its field
//! (401 for wrong credentials, 429 with `Retry-After` while guessing is slowed down); the
//! address typed stays in the form, the password never comes back.

use askama::Template;
use axum::extract::{Form, FromRequest as _, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use leadscore_store::now_ms;
use serde::Deserialize;

use super::page::{AccountView, page, sentence};
use super::session::{SignedInPage, check_csrf, client_address, refused_origin, same_origin, session_cookie};
use crate::accounts::{self, LIFETIME, SignInError};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage {
    account: Option<AccountView>,
    section: &'static str,
    email: String,
    problem: Option<String>,
    /// The id of the field the problem is about.
    problem_field: &'static str,
}

impl SignInPage {
    fn new(email: String, problem: Option<(String, &'static str)>) -> SignInPage {
        let (problem, problem_field) = match problem {
            Some((problem, field)) => (Some(problem), field),
            None => (None, ""),
        };
        SignInPage { account: None, section: "", email, problem, problem_field }
    }
}

/// `GET /sign-in`: the form (or the leads, for someone signed in already).
pub async fn form(signed_in: Option<SignedInPage>) -> Response {
    if signed_in.is_some() {
        return Redirect::to("/leads").into_response();
    }
    page(StatusCode::OK, &SignInPage::new(String::new(), None))
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// `POST /sign-in`: opens a session and goes to the leads, or shows the form with the problem.
pub async fn submit(State(state): State<AppState>, request: Request) -> Response {
    let address = client_address(request.extensions());
    if !same_origin(request.headers()) {
        return refused_origin();
    }
    let form = match Form::<SignInForm>::from_request(request, &state).await {
        Ok(Form(form)) => form,
        Err(_) => {
            let problem = ("The form could not be read: send it again from the sign-in page".to_string(), "email");
            return page(StatusCode::BAD_REQUEST, &SignInPage::new(String::new(), Some(problem)));
        }
    };
    let email = form.email.trim().to_string();
    if email.is_empty() || form.password.is_empty() {
        let problem = if email.is_empty() {
            ("Enter your e-mail address".to_string(), "email")
        } else {
            ("Enter your password".to_string(), "password")
        };
        return page(StatusCode::BAD_REQUEST, &SignInPage::new(email, Some(problem)));
    }
    match accounts::sign_in(&state.storage, &email, &form.password, &address, now_ms()).await {
        Ok((opened, _)) => {
            let cookie = session_cookie(&opened.token, LIFETIME, state.config.behind_https);
            let mut response = Redirect::to("/leads").into_response();
            if let Ok(cookie) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(SignInError::WrongCredentials) => {
            let problem = (SignInError::WrongCredentials.to_string(), "password");
            page(StatusCode::UNAUTHORIZED, &SignInPage::new(email, Some((sentence(&problem.0), problem.1))))
        }
        Err(SignInError::TooManyAttempts { retry_after_seconds }) => {
            let problem = (format!("Too many failed sign-ins: try again in {retry_after_seconds} seconds"), "password");
            let mut response = page(StatusCode::TOO_MANY_REQUESTS, &SignInPage::new(email, Some(problem)));
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
            response
        }
        Err(error) => {
            tracing::error!(%error, "a sign-in failed");
            let problem = ("The service could not sign you in right now; try again in a moment".to_string(), "email");
            page(StatusCode::SERVICE_UNAVAILABLE, &SignInPage::new(email, Some(problem)))
        }
    }
}

#[derive(Deserialize)]
pub struct SignOutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /sign-out`: ends the session and forgets its cookie.
pub async fn sign_out(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    request: Request,
) -> Response {
    if !same_origin(request.headers()) {
        return refused_origin();
    }
    let Ok(Form(form)) = Form::<SignOutForm>::from_request(request, &state).await else {
        return (StatusCode::BAD_REQUEST, "the sign-out form could not be read").into_response();
    };
    if !check_csrf(&signed_in, &form.csrf) {
        return (StatusCode::FORBIDDEN, "this form is not from your session; reload the page and try again")
            .into_response();
    }
    if let Err(error) = accounts::sign_out(&state.storage, signed_in.session.id, now_ms()).await {
        return crate::error::ApiError::from(error).into_response();
    }
    let mut response = Redirect::to("/sign-in").into_response();
    if let Ok(cookie) = HeaderValue::from_str(&session_cookie("", 0, state.config.behind_https)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}
