//! Erasing a lead from the console (admins): `/leads/{id}/erase` first states what goes (the
//! lead, its merged leads, how many events, its histories and notifications), that it cannot be
//! undone, that webhooks are told and that the person's identifiers stay suppressed; the post
//! erases it as the API does (`crate::erasure`) and shows the erasure's record.

use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use leadscore_store::now_ms;
use leadscore_store::users::Role;

use super::leads::{ShownTime, encode, shown_time};
use super::page::{AccountView, page};
use super::posted;
use super::session::{SignedInPage, refuse_unless};
use crate::accounts::SignedIn;
use crate::erasure::{self, Missing};
use crate::listing::find;
use crate::state::AppState;

/// What the confirmation names.
struct ToErase {
    link: String,
    name: String,
    id: i64,
    events: u64,
    merged: usize,
    stage_moves: usize,
}

/// An erasure as the page shows it, once done (or found done before).
struct Erased {
    lead_id: i64,
    by: String,
    at: ShownTime,
    leads: i64,
    events: i64,
    suppressed: i64,
}

#[derive(Template)]
#[template(path = "console/lead_erase.html")]
struct ErasePage {
    account: Option<AccountView>,
    section: &'static str,
    lead: Option<ToErase>,
    erased: Option<Erased>,
}

fn shown(erasure: &leadscore_store::erasure::Erasure, now: i64) -> Erased {
    Erased {
        lead_id: erasure.lead_id,
        by: erasure.erased_by.clone(),
        at: shown_time(erasure.erased_at, now),
        leads: erasure.leads,
        events: erasure.events,
        suppressed: erasure.suppressed,
    }
}

pub(super) fn missing_page(signed_in: &SignedIn, missing: Missing) -> Response {
    match missing {
        Missing::Erased(erasure) => {
            let shown_page = ErasePage {
                account: Some(AccountView::from(signed_in)),
                section: "leads",
                lead: None,
                erased: Some(shown(&erasure, now_ms())),
            };
            page(StatusCode::GONE, &shown_page)
        }
        Missing::NoSuchLead(_) => {
            let shown_page = super::missing::MissingPage {
                account: Some(AccountView::from(signed_in)),
                section: "leads",
                what: "This workspace has no such lead.",
                back: ("/leads", "Back to the leads"),
            };
            page(StatusCode::NOT_FOUND, &shown_page)
        }
        Missing::Store(error) => crate::error::ApiError::from(error).into_response(),
    }
}

/// `GET /leads/{id}/erase`: what erasing the lead removes, and the button that does it.
pub async fn confirm(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    Path(id): Path<String>,
) -> Response {
    if let Some(refusal) = refuse_unless(&signed_in, Role::Admin, "erase leads") {
        return refusal;
    }
    let workspace_id = signed_in.user.workspace_id;
    let read = state
        .storage
        .read(move |reads| {
            let Some(lead) = find(reads, workspace_id, &id)? else {
                return Ok(Err(erasure::missing(reads, workspace_id, &id)));
            };
            let (_, events) = reads.newest_events(&lead, 0)?;
            let links = reads.lead_links(workspace_id, lead.id)?;
            let stage_moves = reads.stage_history(lead.id)?.len();
            let name = super::page::display_name(&lead.attributes)
                .or_else(|| lead.email.clone())
                .or_else(|| lead.user_id.clone())
                .unwrap_or_else(|| format!("Anonymous lead {}", lead.id));
            Ok(Ok(ToErase {
                link: format!("/leads/{}", encode(&lead.id.to_string())),
                name,
                id: lead.id,
                events,
                merged: links.merged_leads.len(),
                stage_moves,
            }))
        })
        .await;
    match read {
        Ok(Ok(lead)) => {
            let shown_page = ErasePage {
                account: Some(AccountView::from(&signed_in)),
                section: "leads",
                lead: Some(lead),
                erased: None,
            };
            page(StatusCode::OK, &shown_page)
        }
        Ok(Err(missing)) => missing_page(&signed_in, missing),
        Err(error) => crate::error::ApiError::from(error).into_response(),
    }
}

/// `GET /leads/{id}/export` (admins): everything stored about the lead, as the API's export, as
/// a JSON download.
pub async fn export(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    Path(id): Path<String>,
) -> Response {
    if let Some(refusal) = refuse_unless(&signed_in, Role::Admin, "export a lead's data") {
        return refusal;
    }
    match erasure::export(state.storage.as_ref(), state.models.clone(), signed_in.user.workspace_id, id).await {
        Ok(document) => {
            let body = match serde_json::to_string_pretty(&document) {
                Ok(body) => body,
                Err(_) => return crate::error::ApiError::internal().into_response(),
            };
            let disposition = format!("attachment; filename=\"lead-{}.json\"", document_lead_id(&document));
            (
                StatusCode::OK,
                [
                    (axum::http::header::CONTENT_TYPE, "application/json".to_string()),
                    (axum::http::header::CONTENT_DISPOSITION, disposition),
                    (axum::http::header::CACHE_CONTROL, "no-store".to_string()),
                ],
                body,
            )
                .into_response()
        }
        Err(missing) => missing_page(&signed_in, missing),
    }
}

fn document_lead_id(document: &erasure::LeadExport) -> i64 {
    document.lead["id"].as_i64().unwrap_or_default()
}

/// `POST /leads/{id}/erase`: erases the lead, then shows the erasure's record.
pub async fn erase(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    if let Err(refusal) = posted::checked(&state, &signed_in, request, Role::Admin, "erase leads").await {
        return refusal;
    }
    let by = format!("user {}", signed_in.user.email);
    match erasure::erase(state.storage.as_ref(), signed_in.user.workspace_id, id, by).await {
        Ok(erasure) => {
            state.deliveries.notify_one();
            state.metrics.count_erasure();
            let shown_page = ErasePage {
                account: Some(AccountView::from(&signed_in)),
                section: "leads",
                lead: None,
                erased: Some(shown(&erasure, now_ms())),
            };
            page(StatusCode::OK, &shown_page)
        }
        Err(missing) => missing_page(&signed_in, missing),
    }
}
