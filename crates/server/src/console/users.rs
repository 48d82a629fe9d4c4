//! `/users` (admins): the workspace's people (role, when they joined and last signed in, whether
//! disabled), a new account (with a password the admin gives or one made up and shown once), and
//! for each person `/users/{id}`: another role, a new password, disabling (which ends their
//! sessions). The workspace's last admin can be neither demoted nor disabled: the store refuses
//! it and the page says so. Accounts are `accounts.rs`'s, as the command line's.

use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use leadscore_store::now_ms;
use leadscore_store::users::{Role, User};

use super::leads::{ShownTime, shown_time};
use super::missing::MissingPage;
use super::page::{AccountView, page, sentence};
use super::posted;
use super::session::{SignedInPage, refuse_unless};
use crate::accounts::{self, AccountError, SignedIn};
use crate::error::ApiError;
use crate::state::AppState;

const ROLES: [(&str, &str); 3] = [
    ("viewer", "reads leads, reports and models"),
    ("editor", "also moves stages, edits and previews models"),
    ("admin", "also activates models and manages webhooks, keys and people"),
];

struct ShownUser {
    id: i64,
    email: String,
    role: String,
    created: ShownTime,
    last_sign_in: Option<ShownTime>,
    disabled: Option<ShownTime>,
    /// Whether this is the person looking at the page.
    is_you: bool,
}

/// A password shown once: to whom it belongs and the password.
struct GivenPassword {
    email: String,
    password: String,
}

/// The new-account form as it was sent, to show again with its problem.
#[derive(Default)]
struct Asked {
    email: String,
    role: String,
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage {
    account: Option<AccountView>,
    section: &'static str,
    roles: [(&'static str, &'static str); 3],
    users: Vec<ShownUser>,
    given: Option<GivenPassword>,
    asked: Asked,
    problem: Option<String>,
}

#[derive(Template)]
#[template(path = "console/user.html")]
struct UserPage {
    account: Option<AccountView>,
    section: &'static str,
    roles: [(&'static str, &'static str); 3],
    user: ShownUser,
    given: Option<GivenPassword>,
    /// What stopped a change, and the id of the form it is about.
    problem: Option<(String, &'static str)>,
    /// Whether to ask to confirm disabling the account.
    confirm_disable: bool,
}

async fn people(state: &AppState, signed_in: &SignedIn) -> Result<Vec<ShownUser>, Response> {
    let workspace_id = signed_in.user.workspace_id;
    let listed = state.storage.list_users(workspace_id).await.map_err(|e| ApiError::from(e).into_response())?;
    let sign_ins = state.storage.last_sign_ins(workspace_id).await.map_err(|e| ApiError::from(e).into_response())?;
    let now = now_ms();
    Ok(listed
        .iter()
        .map(|user| shown(user, sign_ins.iter().find(|(id, _)| *id == user.id).map(|(_, at)| *at), signed_in, now))
        .collect())
}

fn shown(user: &User, last_sign_in: Option<i64>, signed_in: &SignedIn, now: i64) -> ShownUser {
    ShownUser {
        id: user.id,
        email: user.email.clone(),
        role: user.role.to_string(),
        created: shown_time(user.created_at, now),
        last_sign_in: last_sign_in.map(|at| shown_time(at, now)),
        disabled: user.disabled_at.map(|at| shown_time(at, now)),
        is_you: user.id == signed_in.user.id,
    }
}

async fn render_list(
    state: &AppState,
    signed_in: &SignedIn,
    status: StatusCode,
    given: Option<GivenPassword>,
    asked: Asked,
    problem: Option<String>,
) -> Response {
    let users = match people(state, signed_in).await {
        Ok(users) => users,
        Err(response) => return response,
    };
    let shown_page = UsersPage {
        account: Some(AccountView::from(signed_in)),
        section: "users",
        roles: ROLES,
        users,
        given,
        asked,
        problem,
    };
    page(status, &shown_page)
}

/// `GET /users`: the people of the workspace and the form for a new account.
pub async fn list(State(state): State<AppState>, SignedInPage(signed_in): SignedInPage) -> Response {
    if let Some(refusal) = refuse_unless(&signed_in, Role::Admin, "manage people") {
        return refusal;
    }
    render_list(&state, &signed_in, StatusCode::OK, None, Asked::default(), None).await
}

/// The status and sentence of an account refusal, or the fault's answer.
fn refusal(error: AccountError) -> Result<(StatusCode, String), Box<Response>> {
    match error {
        AccountError::Storage(error) => Err(Box::new(ApiError::from(error).into_response())),
        AccountError::NoSuchAccount => Ok((StatusCode::NOT_FOUND, sentence(&error.to_string()))),
        AccountError::Refused(_) => Ok((StatusCode::CONFLICT, sentence(&error.to_string()))),
        other => Ok((StatusCode::BAD_REQUEST, sentence(&other.to_string()))),
    }
}

/// The password a form asks for: the one typed, or one made up (then shown once).
fn password_from(typed: &str) -> Result<(String, bool), AccountError> {
    if typed.is_empty() { Ok((accounts::generated_password()?, true)) } else { Ok((typed.to_string(), false)) }
}

/// `POST /users`: makes the account; a password made up for it is shown in this answer only.
pub async fn create(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    request: Request,
) -> Response {
    let form = match posted::checked(&state, &signed_in, request, Role::Admin, "add people").await {
        Ok(form) => form,
        Err(refusal) => return refusal,
    };
    let asked = Asked { email: form.get("email").trim().to_string(), role: form.get("role").to_string() };
    let role = match asked.role.parse::<Role>() {
        Ok(role) => role,
        Err(reason) => {
            return render_list(&state, &signed_in, StatusCode::BAD_REQUEST, None, asked, Some(sentence(&reason)))
                .await;
        }
    };
    let made = match password_from(form.get("password")) {
        Ok(made) => made,
        Err(error) => {
            return render_list(&state, &signed_in, StatusCode::BAD_REQUEST, None, asked, Some(error.to_string()))
                .await;
        }
    };
    let (password, generated) = made;
    let workspace_id = signed_in.user.workspace_id;
    match accounts::create_account(&state.storage, workspace_id, &asked.email, role, password.clone(), now_ms()).await {
        Ok(user) if generated => {
            let given = GivenPassword { email: user.email, password };
            render_list(&state, &signed_in, StatusCode::CREATED, Some(given), Asked::default(), None).await
        }
        Ok(_) => Redirect::to("/users").into_response(),
        Err(error) => match refusal(error) {
            Ok((status, problem)) => render_list(&state, &signed_in, status, None, asked, Some(problem)).await,
            Err(response) => *response,
        },
    }
}

fn not_found(signed_in: &SignedIn) -> Response {
    let shown = MissingPage {
        account: Some(AccountView::from(signed_in)),
        section: "users",
        what: "This workspace has no such person.",
        back: ("/users", "Back to the people"),
    };
    page(StatusCode::NOT_FOUND, &shown)
}

async fn render_person(
    state: &AppState,
    signed_in: &SignedIn,
    id: i64,
    status: StatusCode,
    given: Option<GivenPassword>,
    problem: Option<(String, &'static str)>,
    confirm_disable: bool,
) -> Response {
    let users = match people(state, signed_in).await {
        Ok(users) => users,
        Err(response) => return response,
    };
    let Some(user) = users.into_iter().find(|user| user.id == id) else { return not_found(signed_in) };
    let shown_page = UserPage {
        account: Some(AccountView::from(signed_in)),
        section: "users",
        roles: ROLES,
        user,
        given,
        problem,
        confirm_disable,
    };
    page(status, &shown_page)
}

/// `GET /users/{id}`: one person, with their role, password and access to change.
pub async fn show(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    Path(id): Path<i64>,
) -> Response {
    if let Some(refusal) = refuse_unless(&signed_in, Role::Admin, "manage people") {
        return refusal;
    }
    render_person(&state, &signed_in, id, StatusCode::OK, None, None, false).await
}

/// `GET /users/{id}/disable`: the person's page, asking to confirm disabling them.
pub async fn confirm_disable(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    Path(id): Path<i64>,
) -> Response {
    if let Some(refusal) = refuse_unless(&signed_in, Role::Admin, "disable people") {
        return refusal;
    }
    render_person(&state, &signed_in, id, StatusCode::OK, None, None, true).await
}

/// After a change: the person's page again, or the page with what stopped it.
async fn after_change(
    state: &AppState,
    signed_in: &SignedIn,
    id: i64,
    done: Result<(), AccountError>,
    form: &'static str,
) -> Response {
    match done {
        Ok(()) => Redirect::to(&format!("/users/{id}")).into_response(),
        Err(error) => match refusal(error) {
            Ok((StatusCode::NOT_FOUND, _)) => not_found(signed_in),
            Ok((status, problem)) => {
                render_person(state, signed_in, id, status, None, Some((problem, form)), false).await
            }
            Err(response) => *response,
        },
    }
}

/// `POST /users/{id}/role`: gives the person another role.
pub async fn change_role(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    Path(id): Path<i64>,
    request: Request,
) -> Response {
    let form = match posted::checked(&state, &signed_in, request, Role::Admin, "change people's roles").await {
        Ok(form) => form,
        Err(refusal) => return refusal,
    };
    let role = form.get("role").parse::<Role>();
    let done = match &role {
        Ok(role) => accounts::change_role(&state.storage, signed_in.user.workspace_id, id, *role).await,
        Err(reason) => Err(AccountError::UnknownRole(reason.clone())),
    };
    if done.is_ok() && id == signed_in.user.id && role != Ok(Role::Admin) {
        // An admin who gave up the role can no longer see the people: back to the leads.
        return Redirect::to("/leads").into_response();
    }
    after_change(&state, &signed_in, id, done, "role-form").await
}

/// `POST /users/{id}/disable`: the person can no longer sign in; their sessions end now.
pub async fn disable(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    Path(id): Path<i64>,
    request: Request,
) -> Response {
    if let Err(refusal) = posted::checked(&state, &signed_in, request, Role::Admin, "disable people").await {
        return refusal;
    }
    let done = accounts::disable(&state.storage, signed_in.user.workspace_id, id, now_ms()).await;
    after_change(&state, &signed_in, id, done, "disable-form").await
}

/// `POST /users/{id}/password`: a new password for the person (typed, or made up and shown once);
/// their sessions end.
pub async fn reset_password(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    Path(id): Path<i64>,
    request: Request,
) -> Response {
    let form = match posted::checked(&state, &signed_in, request, Role::Admin, "reset people's passwords").await {
        Ok(form) => form,
        Err(refusal) => return refusal,
    };
    if id == signed_in.user.id {
        // One's own password is changed knowing the current one, and keeps one signed in.
        return Redirect::to("/account").into_response();
    }
    let listed = match state.storage.list_users(signed_in.user.workspace_id).await {
        Ok(listed) => listed,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let Some(user) = listed.into_iter().find(|user| user.id == id) else { return not_found(&signed_in) };
    let (password, generated) = match password_from(form.get("password")) {
        Ok(made) => made,
        Err(error) => return after_change(&state, &signed_in, id, Err(error), "password-form").await,
    };
    match accounts::set_password(&state.storage, &user, password.clone(), now_ms()).await {
        Ok(()) if generated => {
            let given = GivenPassword { email: user.email, password };
            render_person(&state, &signed_in, id, StatusCode::OK, Some(given), None, false).await
        }
        done => after_change(&state, &signed_in, id, done, "password-form").await,
    }
}
