//! The model pages: the workspace's versions (newest first, who uploaded each and when, which is
//! active), a version's TOML with numbered lines and its warnings, and a line diff between two
//! versions. Anyone signed in reads them; editing is in `model_editor.rs`, previewing and
//! activating in `model_activation.rs`.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Form, FromRequest as _, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use leadscore_store::now_ms;
use leadscore_store::users::Role;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use similar::{ChangeTag, TextDiff};

use super::leads::{ShownTime, shown_time};
use super::page::{AccountView, page, sentence};
use super::session::{SignedInPage, check_csrf, refuse_unless, refused_origin, same_origin};
use crate::accounts::SignedIn;
use crate::model_versions::{self, DiagnosticSeverity, DiagnosticView};
use crate::rescore;
use crate::state::AppState;

/// A form posted to a model page, once its checks pass: it comes from this origin, the person's
/// role allows `what` (`needed`), and it carries the session's token (read by `token`). Else the
/// refusal to answer.
pub(super) async fn posted_form<T: DeserializeOwned>(
    state: &AppState,
    signed_in: &SignedIn,
    request: Request,
    (needed, what): (Role, &'static str),
    token: fn(&T) -> &str,
) -> Result<T, Response> {
    if !same_origin(request.headers()) {
        return Err(refused_origin());
    }
    if let Some(refusal) = refuse_unless(signed_in, needed, what) {
        return Err(refusal);
    }
    let Ok(Form(form)) = Form::<T>::from_request(request, state).await else {
        return Err((StatusCode::BAD_REQUEST, "the form could not be read; go back and send it again").into_response());
    };
    if !check_csrf(signed_in, token(&form)) {
        let refusal = (StatusCode::FORBIDDEN, "this form is not from your session; reload the page and try again");
        return Err(refusal.into_response());
    }
    Ok(form)
}

/// A line of a model's text as a page shows it: numbered, marked with what is wrong with it.
pub(super) struct SourceLine {
    pub number: usize,
    pub text: String,
    /// `error`, `warning` or empty: the worst diagnostic at this line.
    pub mark: &'static str,
    pub messages: Vec<String>,
}

/// `source` as numbered lines, each marked with the diagnostics that point at it.
pub(super) fn source_lines(source: &str, diagnostics: &[DiagnosticView]) -> Vec<SourceLine> {
    source
        .lines()
        .enumerate()
        .map(|(index, text)| {
            let number = index + 1;
            let here: Vec<&DiagnosticView> = diagnostics.iter().filter(|d| d.line == Some(number)).collect();
            let mark = if here.iter().any(|d| d.severity == DiagnosticSeverity::Error) {
                "error"
            } else if here.is_empty() {
                ""
            } else {
                "warning"
            };
            let messages =
                here.iter().map(|d| format!("{}: {}", severity_word(d.severity), sentence(&d.message))).collect();
            SourceLine { number, text: text.to_string(), mark, messages }
        })
        .collect()
}

/// A diagnostic in a list: its severity as a word, where it points, and the message.
pub(super) struct ShownDiagnostic {
    pub severity: &'static str,
    pub word: &'static str,
    pub line: Option<usize>,
    pub place: String,
    pub message: String,
}

fn severity_word(severity: DiagnosticSeverity) -> &'static str {
    match severity {
        DiagnosticSeverity::Error => "Error",
        DiagnosticSeverity::Warning => "Warning",
    }
}

pub(super) fn shown_diagnostics(diagnostics: &[DiagnosticView]) -> Vec<ShownDiagnostic> {
    diagnostics
        .iter()
        .map(|d| ShownDiagnostic {
            severity: match d.severity {
                DiagnosticSeverity::Error => "error",
                DiagnosticSeverity::Warning => "warning",
            },
            word: severity_word(d.severity),
            line: d.line,
            place: match (d.line, d.column) {
                (Some(line), Some(column)) => format!("line {line}, column {column}"),
                (Some(line), None) => format!("line {line}"),
                _ => "the whole model".to_string(),
            },
            message: sentence(&d.message),
        })
        .collect()
}

struct VersionRow {
    version: i64,
    created: ShownTime,
    uploaded_by: String,
    active: bool,
    /// The version before it, to diff against.
    previous: Option<i64>,
}

struct ShownProgress {
    cause: String,
    done: u64,
    total: u64,
    finished: bool,
}

#[derive(Template)]
#[template(path = "console/models.html")]
struct ModelsPage {
    account: Option<AccountView>,
    section: &'static str,
    versions: Vec<VersionRow>,
    can_edit: bool,
    can_activate: bool,
    rescoring: Option<ShownProgress>,
}

/// `GET /models`: the versions, newest first.
pub async fn list(State(state): State<AppState>, SignedInPage(signed_in): SignedInPage) -> Response {
    let workspace_id = signed_in.user.workspace_id;
    let (listed, progress) =
        match tokio::try_join!(model_versions::list(&state, workspace_id), rescore::progress(&state, workspace_id)) {
            Ok(found) => found,
            Err(error) => return crate::error::ApiError::from(error).into_response(),
        };
    let now = now_ms();
    let mut versions: Vec<VersionRow> = listed
        .iter()
        .enumerate()
        .map(|(index, version)| VersionRow {
            version: version.version,
            created: shown_time(version.created_at, now),
            uploaded_by: version.uploaded_by.clone().unwrap_or_else(|| "not recorded".to_string()),
            active: version.active,
            previous: index.checked_sub(1).map(|before| listed[before].version),
        })
        .collect();
    versions.reverse();
    let shown = ModelsPage {
        account: Some(AccountView::from(&signed_in)),
        section: "models",
        versions,
        can_edit: signed_in.user.role.allows(Role::Editor),
        can_activate: signed_in.user.role.allows(Role::Admin),
        rescoring: progress.map(|p| ShownProgress {
            cause: p.cause,
            done: p.done,
            total: p.total,
            finished: p.finished_at.is_some(),
        }),
    };
    page(StatusCode::OK, &shown)
}

#[derive(Template)]
#[template(path = "console/model.html")]
struct ModelPage {
    account: Option<AccountView>,
    section: &'static str,
    version: i64,
    active: bool,
    created: ShownTime,
    uploaded_by: String,
    predictive: Vec<(String, String, i64)>,
    lines: Vec<SourceLine>,
    diagnostics: Vec<ShownDiagnostic>,
    can_edit: bool,
    can_activate: bool,
}

#[derive(Template)]
#[template(path = "console/model_not_found.html")]
struct NotFoundPage {
    account: Option<AccountView>,
    section: &'static str,
    what: String,
}

/// The page for a version that is not there (or a path that is not a version).
pub(super) fn no_such_version(signed_in: &SignedIn, version: &str) -> Response {
    let shown = NotFoundPage {
        account: Some(AccountView::from(signed_in)),
        section: "models",
        what: format!("model version {version}"),
    };
    page(StatusCode::NOT_FOUND, &shown)
}

/// `GET /models/{version}`: its text with numbered lines, and what `leadscore check` warns of.
pub async fn show(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    Path(version): Path<String>,
) -> Response {
    let Ok(number) = version.parse::<i64>() else { return no_such_version(&signed_in, &version) };
    let workspace_id = signed_in.user.workspace_id;
    let stored = match model_versions::stored(&state, workspace_id, number).await {
        Ok(stored) => stored,
        Err(leadscore_store::StoreError::NotFound(_)) => return no_such_version(&signed_in, &version),
        Err(error) => return crate::error::ApiError::from(error).into_response(),
    };
    // A stored version compiled when it was stored; checking it again shows its warnings (and,
    // should the compiler have changed, its errors) at their lines.
    let diagnostics = match model_versions::check(&state, workspace_id, stored.model.source.clone()).await {
        Ok(Ok(valid)) => valid.warnings,
        Ok(Err(invalid)) => invalid.diagnostics,
        Err(error) => return crate::error::ApiError::from(error).into_response(),
    };
    let shown = ModelPage {
        account: Some(AccountView::from(&signed_in)),
        section: "models",
        version: stored.model.version,
        active: stored.active,
        created: shown_time(stored.model.created_at, now_ms()),
        uploaded_by: stored.uploaded_by.unwrap_or_else(|| "not recorded".to_string()),
        predictive: stored
            .predictive
            .into_iter()
            .map(|(reference, (name, version))| (reference, name, version))
            .collect(),
        lines: source_lines(&stored.model.source, &diagnostics),
        diagnostics: shown_diagnostics(&diagnostics),
        can_edit: signed_in.user.role.allows(Role::Editor),
        can_activate: signed_in.user.role.allows(Role::Admin),
    };
    page(StatusCode::OK, &shown)
}

/// One row of a line diff.
pub(super) struct DiffRow {
    /// `+` added, `-` removed, a space for a line both have, `…` for lines left out.
    pub sign: &'static str,
    pub kind: &'static str,
    pub old: Option<usize>,
    pub new: Option<usize>,
    pub text: String,
}

/// The lines that differ between `old` and `new`, with three lines of context around each change
/// (Myers' diff, by `similar`); rows of `…` stand for the unchanged lines left out.
pub(super) fn line_diff(old: &str, new: &str) -> Vec<DiffRow> {
    let diff = TextDiff::from_lines(old, new);
    let mut rows = Vec::new();
    for (index, group) in diff.grouped_ops(3).iter().enumerate() {
        if index > 0 {
            rows.push(DiffRow { sign: "…", kind: "gap", old: None, new: None, text: String::new() });
        }
        for op in group {
            for change in diff.iter_changes(op) {
                let (sign, kind) = match change.tag() {
                    ChangeTag::Delete => ("-", "removed"),
                    ChangeTag::Insert => ("+", "added"),
                    ChangeTag::Equal => (" ", "same"),
                };
                rows.push(DiffRow {
                    sign,
                    kind,
                    old: change.old_index().map(|i| i + 1),
                    new: change.new_index().map(|i| i + 1),
                    text: change.value().trim_end_matches(['\n', '\r']).to_string(),
                });
            }
        }
    }
    rows
}

#[derive(Deserialize, Default)]
pub struct DiffQuery {
    from: Option<String>,
    to: Option<String>,
}

#[derive(Template)]
#[template(path = "console/model_diff.html")]
struct DiffPage {
    account: Option<AccountView>,
    section: &'static str,
    versions: Vec<i64>,
    from: Option<i64>,
    to: Option<i64>,
    rows: Vec<DiffRow>,
    added: usize,
    removed: usize,
    problem: Option<String>,
}

/// `GET /models/diff?from=A&to=B`: what changed from version A to version B, line by line.
/// Without both, the version before the newest against the newest.
pub async fn diff(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    query: Result<Query<DiffQuery>, QueryRejection>,
) -> Response {
    let query = query.map(|Query(query)| query).unwrap_or_default();
    let workspace_id = signed_in.user.workspace_id;
    let versions: Vec<i64> = match model_versions::list(&state, workspace_id).await {
        Ok(listed) => listed.iter().rev().map(|v| v.version).collect(),
        Err(error) => return crate::error::ApiError::from(error).into_response(),
    };
    let mut shown = DiffPage {
        account: Some(AccountView::from(&signed_in)),
        section: "models",
        from: versions.get(1).copied(),
        to: versions.first().copied(),
        versions,
        rows: Vec::new(),
        added: 0,
        removed: 0,
        problem: None,
    };
    let nonempty = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
    let mut unknown = None;
    let mut choose = |asked: Option<String>, default: Option<i64>| match asked {
        None => default,
        Some(asked) => match asked.trim().parse::<i64>() {
            Ok(number) if shown.versions.contains(&number) => Some(number),
            _ => {
                unknown.get_or_insert(asked);
                default
            }
        },
    };
    let (from, to) = (choose(nonempty(query.from), shown.from), choose(nonempty(query.to), shown.to));
    (shown.from, shown.to) = (from, to);
    if let Some(asked) = unknown {
        shown.problem = Some(format!("There is no model version “{asked}”; choose one from the list."));
        return page(StatusCode::BAD_REQUEST, &shown);
    }
    let (Some(from), Some(to)) = (shown.from, shown.to) else {
        return page(StatusCode::OK, &shown);
    };
    let texts = tokio::try_join!(
        model_versions::stored(&state, workspace_id, from),
        model_versions::stored(&state, workspace_id, to)
    );
    let (old, new) = match texts {
        Ok(found) => found,
        Err(error) => return crate::error::ApiError::from(error).into_response(),
    };
    shown.rows = line_diff(&old.model.source, &new.model.source);
    shown.added = shown.rows.iter().filter(|row| row.kind == "added").count();
    shown.removed = shown.rows.iter().filter(|row| row.kind == "removed").count();
    page(StatusCode::OK, &shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_marks_added_and_removed_lines_with_their_numbers_and_leaves_out_distant_ones() {
        let old = (1..=12).map(|n| format!("line {n}\n")).collect::<String>();
        let new = old.replace("line 2\n", "line two\n").replace("line 11\n", "");
        let rows = line_diff(&old, &new);
        let signs: String = rows.iter().map(|row| row.sign).collect();
        assert_eq!(signs, " -+   …   - ", "{:?}", rows.iter().map(|r| &r.text).collect::<Vec<_>>());
        let removed = rows.iter().find(|row| row.sign == "-").unwrap();
        assert_eq!((removed.old, removed.new, removed.text.as_str()), (Some(2), None, "line 2"));
        let added = rows.iter().find(|row| row.sign == "+").unwrap();
        assert_eq!((added.old, added.new, added.text.as_str()), (None, Some(2), "line two"));
        assert!(line_diff("same\n", "same\n").is_empty());
    }

    #[test]
    fn each_line_carries_the_worst_diagnostic_that_points_at_it() {
        let diagnostic =
            |severity, line| DiagnosticView { severity, line: Some(line), column: Some(1), message: "bad".into() };
        let lines = source_lines(
            "a\nb\nc",
            &[
                diagnostic(DiagnosticSeverity::Warning, 2),
                diagnostic(DiagnosticSeverity::Error, 2),
                diagnostic(DiagnosticSeverity::Warning, 3),
            ],
        );
        let marks: Vec<_> = lines.iter().map(|l| (l.number, l.mark, l.messages.len())).collect();
        assert_eq!(marks, [(1, "", 0), (2, "error", 2), (3, "warning", 1)]);
        assert_eq!(lines[1].messages[1], "Error: Bad");
    }
}
