//! `/keys` (admins): the workspace's API keys by their prefix (never their secret), a new key
//! shown once in the answer to its creation and never again, and a revocation confirmed on a page
//! of its own that says what stops working. The keys are the API's (`api_keys.rs`).

use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use leadscore_store::keys::{KeyInfo, Scope};
use leadscore_store::now_ms;
use leadscore_store::users::Role;

use super::leads::{ShownTime, shown_time};
use super::page::{AccountView, page, sentence};
use super::posted;
use super::session::{SignedInPage, refuse_unless};
use crate::accounts::SignedIn;
use crate::api_keys;
use crate::state::AppState;

/// What each scope lets a key do, as the form explains it.
const SCOPES: [(&str, &str); 4] = [
    ("ingest", "send events and identify leads from a server"),
    ("browser", "send a website's events from its pages, from the origins below; reads nothing"),
    ("read", "read leads, scores, stages and models"),
    ("admin", "everything, including models, webhooks and keys"),
];

struct ShownKey {
    id: i64,
    name: String,
    prefix: String,
    scope: String,
    /// The origins a browser key is bound to, one line.
    origins: String,
    created: ShownTime,
    revoked: Option<ShownTime>,
}

/// A key just created: the only page that ever shows its secret.
struct CreatedKey {
    name: String,
    secret: String,
    scope: String,
}

#[derive(Template)]
#[template(path = "console/keys.html")]
struct KeysPage {
    account: Option<AccountView>,
    section: &'static str,
    scopes: [(&'static str, &'static str); 4],
    keys: Vec<ShownKey>,
    created: Option<CreatedKey>,
    problem: Option<String>,
}

#[derive(Template)]
#[template(path = "console/key_revoke.html")]
struct RevokePage {
    account: Option<AccountView>,
    section: &'static str,
    key: ShownKey,
}

fn shown(key: &KeyInfo, now: i64) -> ShownKey {
    ShownKey {
        id: key.id,
        name: key.name.clone(),
        prefix: key.prefix.clone(),
        scope: key.scope.to_string(),
        origins: key.origins.join(" "),
        created: shown_time(key.created_at, now),
        revoked: key.revoked_at.map(|at| shown_time(at, now)),
    }
}

async fn render(
    state: &AppState,
    signed_in: &SignedIn,
    status: StatusCode,
    created: Option<CreatedKey>,
    problem: Option<String>,
) -> Response {
    let now = now_ms();
    let keys = match state.storage.list_keys(signed_in.user.workspace_id).await {
        Ok(keys) => keys,
        Err(error) => return crate::error::ApiError::from(error).into_response(),
    };
    let shown_page = KeysPage {
        account: Some(AccountView::from(signed_in)),
        section: "keys",
        scopes: SCOPES,
        keys: keys.iter().map(|key| shown(key, now)).collect(),
        created,
        problem,
    };
    page(status, &shown_page)
}

/// `GET /keys`: the keys, newest first, and the form for a new one.
pub async fn list(State(state): State<AppState>, SignedInPage(signed_in): SignedInPage) -> Response {
    if let Some(refusal) = refuse_unless(&signed_in, Role::Admin, "manage API keys") {
        return refusal;
    }
    render(&state, &signed_in, StatusCode::OK, None, None).await
}

/// `POST /keys`: a new key, its secret shown in this answer only (reloading it does not show it
/// again: the page is not cached and a repeated post makes another key).
pub async fn create(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    request: Request,
) -> Response {
    let form = match posted::checked(&state, &signed_in, request, Role::Admin, "create API keys").await {
        Ok(form) => form,
        Err(refusal) => return refusal,
    };
    let checked = form.get("scope").parse::<Scope>().and_then(|scope| {
        // One origin a line (or separated by spaces or commas); only a browser key takes them.
        let given: Vec<String> = form
            .get("origins")
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|o| !o.is_empty())
            .map(str::to_string)
            .collect();
        let given = if scope == Scope::Browser { given } else { Vec::new() };
        Ok((scope, api_keys::checked_name(form.get("name"))?, api_keys::checked_origins(scope, &given)?))
    });
    let (scope, name, origins) = match checked {
        Ok(checked) => checked,
        Err(reason) => return render(&state, &signed_in, StatusCode::BAD_REQUEST, None, Some(sentence(&reason))).await,
    };
    match api_keys::create(&state, signed_in.user.workspace_id, scope, name, origins, now_ms()).await {
        Ok(key) => {
            let created = CreatedKey { name: key.name, secret: key.secret, scope: key.scope.to_string() };
            render(&state, &signed_in, StatusCode::CREATED, Some(created), None).await
        }
        Err(error) => crate::error::ApiError::from(error).into_response(),
    }
}

async fn key_of(state: &AppState, signed_in: &SignedIn, id: i64) -> Result<KeyInfo, Response> {
    let keys = state.storage.list_keys(signed_in.user.workspace_id).await;
    match keys {
        Ok(keys) => keys.into_iter().find(|key| key.id == id).ok_or_else(|| not_found(signed_in)),
        Err(error) => Err(crate::error::ApiError::from(error).into_response()),
    }
}

fn not_found(signed_in: &SignedIn) -> Response {
    let shown = super::missing::MissingPage {
        account: Some(AccountView::from(signed_in)),
        section: "keys",
        what: "This workspace has no such API key.",
        back: ("/keys", "Back to the keys"),
    };
    page(StatusCode::NOT_FOUND, &shown)
}

/// `GET /keys/{id}/revoke`: what revoking the key stops, and the button that does it.
pub async fn confirm_revoke(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    Path(id): Path<i64>,
) -> Response {
    if let Some(refusal) = refuse_unless(&signed_in, Role::Admin, "revoke API keys") {
        return refusal;
    }
    match key_of(&state, &signed_in, id).await {
        Ok(key) if key.revoked_at.is_none() => {
            let shown_page = RevokePage {
                account: Some(AccountView::from(&signed_in)),
                section: "keys",
                key: shown(&key, now_ms()),
            };
            page(StatusCode::OK, &shown_page)
        }
        Ok(_) => Redirect::to("/keys").into_response(),
        Err(response) => response,
    }
}

/// `POST /keys/{id}/revoke`: revokes the key (its next request is refused), then the keys.
pub async fn revoke(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    Path(id): Path<i64>,
    request: Request,
) -> Response {
    if let Err(refusal) = posted::checked(&state, &signed_in, request, Role::Admin, "revoke API keys").await {
        return refusal;
    }
    match api_keys::revoke(&state, signed_in.user.workspace_id, id, now_ms()).await {
        Ok(Some(_)) => Redirect::to("/keys").into_response(),
        Ok(None) => not_found(&signed_in),
        Err(error) => crate::error::ApiError::from(error).into_response(),
    }
}
