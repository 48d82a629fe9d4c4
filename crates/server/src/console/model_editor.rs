//! The model editor (`/models/new`), for editors and admins: the text of the active version (or
//! of `?from=N`) in a text area, checked on demand ("Check") or saved as a new version ("Save as
//! a new version"). Both show the diagnostics `leadscore check` gives, each linked to its line in
//! a numbered copy of the text below the area; a model that does not compile is not saved, and
//! the text typed is kept. Saving is the API's upload (`model_versions::save`), in the person's
//! name. A small embedded script (`assets/model-editor.js`) checks the text as it is typed
//! (`POST /models/check`, JSON) and selects a diagnostic's line in the text area; the page works
//! without it.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use leadscore_store::users::Role;
use serde::Deserialize;

use super::models::{ShownDiagnostic, SourceLine, posted_form, shown_diagnostics, source_lines};
use super::page::{AccountView, page, sentence};
use super::session::{SignedInPage, refuse_unless};
use crate::accounts::SignedIn;
use crate::model_versions::{self, DiagnosticSeverity, DiagnosticView};
use crate::routes::models::MODEL_LIMIT;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "console/model_edit.html")]
struct EditorPage {
    account: Option<AccountView>,
    section: &'static str,
    /// The version the text started from, if any.
    from: Option<i64>,
    source: String,
    /// Whether the text was checked (or a save tried): the diagnostics below are about it.
    checked: bool,
    n_errors: usize,
    diagnostics: Vec<ShownDiagnostic>,
    lines: Vec<SourceLine>,
    /// A problem with the request itself (not the model), as a sentence.
    problem: Option<String>,
}

impl EditorPage {
    fn new(signed_in: &SignedIn, from: Option<i64>, source: String) -> EditorPage {
        EditorPage {
            account: Some(AccountView::from(signed_in)),
            section: "models",
            from,
            source,
            checked: false,
            n_errors: 0,
            diagnostics: Vec::new(),
            lines: Vec::new(),
            problem: None,
        }
    }

    fn with_diagnostics(mut self, diagnostics: &[DiagnosticView]) -> EditorPage {
        self.checked = true;
        self.n_errors = diagnostics.iter().filter(|d| d.severity == DiagnosticSeverity::Error).count();
        self.diagnostics = shown_diagnostics(diagnostics);
        self.lines = source_lines(&self.source, diagnostics);
        self
    }
}

#[derive(Deserialize, Default)]
pub struct EditorQuery {
    from: Option<i64>,
}

/// `GET /models/new`: the editor, holding the active version's text or that of `?from=N`.
pub async fn form(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    query: Result<Query<EditorQuery>, QueryRejection>,
) -> Response {
    if let Some(refusal) = refuse_unless(&signed_in, Role::Editor, "edit a model") {
        return refusal;
    }
    let asked = query.ok().and_then(|Query(query)| query.from);
    let workspace_id = signed_in.user.workspace_id;
    let from = match asked {
        Some(version) => Some(version),
        None => match model_versions::list(&state, workspace_id).await {
            Ok(listed) => listed.iter().find(|v| v.active).map(|v| v.version),
            Err(error) => return crate::error::ApiError::from(error).into_response(),
        },
    };
    let source = match from {
        Some(version) => match model_versions::stored(&state, workspace_id, version).await {
            Ok(stored) => stored.model.source,
            Err(leadscore_store::StoreError::NotFound(_)) => {
                return super::models::no_such_version(&signed_in, &version.to_string());
            }
            Err(error) => return crate::error::ApiError::from(error).into_response(),
        },
        None => String::new(),
    };
    page(StatusCode::OK, &EditorPage::new(&signed_in, from, source))
}

#[derive(Deserialize)]
pub struct EditorForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    source: String,
    /// `check` or `save`: the button pressed.
    #[serde(default)]
    action: String,
    from: Option<i64>,
}

/// `POST /models/new`: checks the text, or saves it as a new version and shows that version.
pub async fn submit(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    request: Request,
) -> Response {
    let checked = posted_form(&state, &signed_in, request, (Role::Editor, "save a model"), |f: &EditorForm| &f.csrf);
    let form = match checked.await {
        Ok(form) => form,
        Err(refusal) => return refusal,
    };
    // Browsers send a text area's lines ended by CR LF; the model is stored as typed otherwise.
    let source = form.source.replace("\r\n", "\n");
    let mut shown = EditorPage::new(&signed_in, form.from, source.clone());
    if source.len() > MODEL_LIMIT {
        shown.problem = Some("The model is over 1 MB; shorten it before saving.".to_string());
        return page(StatusCode::PAYLOAD_TOO_LARGE, &shown);
    }
    let workspace_id = signed_in.user.workspace_id;
    if form.action != "save" {
        return match model_versions::check(&state, workspace_id, source).await {
            Ok(Ok(valid)) => page(StatusCode::OK, &shown.with_diagnostics(&valid.warnings)),
            Ok(Err(invalid)) => page(StatusCode::OK, &shown.with_diagnostics(&invalid.diagnostics)),
            Err(error) => crate::error::ApiError::from(error).into_response(),
        };
    }
    match model_versions::save(&state, workspace_id, source, signed_in.user.email.clone()).await {
        Ok(Ok(saved)) => Redirect::to(&format!("/models/{}", saved.version)).into_response(),
        Ok(Err(invalid)) => {
            let mut shown = shown.with_diagnostics(&invalid.diagnostics);
            shown.problem = Some(sentence(&format!("{}; nothing was saved", invalid.message)));
            page(StatusCode::BAD_REQUEST, &shown)
        }
        Err(error) => crate::error::ApiError::from(error).into_response(),
    }
}

#[derive(serde::Serialize)]
pub struct CheckAnswer {
    diagnostics: Vec<DiagnosticView>,
}

#[derive(Deserialize)]
pub struct CheckForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    source: String,
}

/// `POST /models/check`: the diagnostics of the text posted (the editor's script checks as the
/// text is typed), as JSON.
pub async fn check_as_typed(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    request: Request,
) -> Response {
    let checked = posted_form(&state, &signed_in, request, (Role::Editor, "check a model"), |f: &CheckForm| &f.csrf);
    let form = match checked.await {
        Ok(form) => form,
        Err(refusal) => return refusal,
    };
    if form.source.len() > MODEL_LIMIT {
        return (StatusCode::PAYLOAD_TOO_LARGE, "the model is over 1 MB").into_response();
    }
    match model_versions::check(&state, signed_in.user.workspace_id, form.source.replace("\r\n", "\n")).await {
        Ok(Ok(valid)) => axum::Json(CheckAnswer { diagnostics: valid.warnings }).into_response(),
        Ok(Err(invalid)) => axum::Json(CheckAnswer { diagnostics: invalid.diagnostics }).into_response(),
        Err(error) => crate::error::ApiError::from(error).into_response(),
    }
}

/// The editor's script, embedded like the stylesheet.
pub async fn script() -> Response {
    let headers = [
        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
        (header::CACHE_CONTROL, "public, max-age=300"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    (headers, include_str!("../../assets/model-editor.js")).into_response()
}
