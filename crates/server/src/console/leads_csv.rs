//! The leads page's view as a CSV file (`/leads.csv` with the page's filters): every matching
//! lead, not only a page, streamed page by page of the listing (by cursor, so that the millionth
//! lead costs what the first does), with the columns a rep works from.
//!
//! Spreadsheets run a cell that starts with `=`, `+`, `-` or `@` as a formula, so such a text
//! cell is written with a `'` before it (a name like `=HYPERLINK(...)` in a lead's fields is then
//! text); numbers are written by the service and left as they are.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body::Frame;
use leadscore_core::Timestamp;
use leadscore_store::leads::ListedLead;
use tokio::sync::mpsc;

use super::leads::{LeadsQuery, server_timing, view_of};
use super::page::sentence;
use super::session::SignedInPage;
use crate::listing::{self, Listing, MOST};
use crate::state::AppState;

/// A text cell a spreadsheet will not run as a formula.
fn cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text.to_string() }
}

/// The CSV's header: the lead, then each score of the active model and its tier.
fn header_row(scores: &[(String, Vec<String>)]) -> Vec<String> {
    let mut header: Vec<String> =
        ["lead_id", "user_id", "name", "email", "company", "stage"].iter().map(|s| s.to_string()).collect();
    for (score, _) in scores {
        header.push(cell(score));
        header.push(cell(&format!("{score} tier")));
    }
    header.push("last_activity".to_string());
    header
}

/// One lead's row; `values` holds its value and tier of each score, in the header's order.
fn lead_row(lead: &ListedLead, values: &[(Option<f64>, Option<String>)]) -> Vec<String> {
    let text = |value: &Option<String>| value.as_deref().map(cell).unwrap_or_default();
    let mut row = vec![
        lead.id.to_string(),
        text(&lead.user_id),
        text(&lead.name),
        text(&lead.email),
        text(&lead.company),
        cell(&lead.stage),
    ];
    for (value, tier) in values {
        row.push(value.map(|v| v.to_string()).unwrap_or_default());
        row.push(text(tier));
    }
    row.push(lead.last_event_at.map(|at| Timestamp(at).to_string()).unwrap_or_default());
    row
}

fn csv_bytes(rows: impl IntoIterator<Item = Vec<String>>) -> Bytes {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        // Writing to memory cannot fail.
        let _ = writer.write_record(&row);
    }
    Bytes::from(writer.into_inner().unwrap_or_default())
}

/// A response body fed by a channel: the rows as they are read.
struct Streamed(mpsc::Receiver<Result<Bytes, io::Error>>);

impl http_body::Body for Streamed {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.0.poll_recv(context).map(|chunk| chunk.map(|chunk| chunk.map(Frame::data)))
    }
}

/// The rows of a page: each lead with its value and tier of every score.
async fn page_rows(state: &AppState, listing: &Listing) -> Result<Bytes, crate::error::ApiError> {
    let names: Vec<String> = listing.scores.iter().map(|(name, _)| name.clone()).collect();
    let leads = listing.leads.clone();
    let rows = state
        .storage
        .read(move |reads| {
            let mut rows = Vec::with_capacity(leads.len());
            for lead in &leads {
                let stored = reads.stored_scores(lead.id)?;
                let values: Vec<(Option<f64>, Option<String>)> = names
                    .iter()
                    .map(|name| {
                        stored
                            .rows()
                            .find(|row| &row.score == name)
                            .map_or((None, None), |row| (Some(row.value), row.tier.clone()))
                    })
                    .collect();
                rows.push(lead_row(lead, &values));
            }
            Ok(rows)
        })
        .await?;
    Ok(csv_bytes(rows))
}

/// `GET /leads.csv`: the view's leads, every page.
pub async fn download(
    State(state): State<AppState>,
    SignedInPage(signed_in): SignedInPage,
    query: Result<Query<LeadsQuery>, QueryRejection>,
) -> Response {
    let started = Instant::now();
    let query = query.map(|Query(query)| query).unwrap_or_default();
    let refused = |message: String| (StatusCode::BAD_REQUEST, sentence(&message)).into_response();
    let mut request = match view_of(&query, MOST) {
        Ok(view) => view.request,
        Err(problem) => return refused(problem),
    };
    // The whole view, from its first lead whatever page the person was on.
    request.cursor = None;
    let workspace_id = signed_in.user.workspace_id;
    let first = match listing::list(&state, workspace_id, request.clone()).await {
        Ok(listing) => listing,
        Err(error) if error.status() == StatusCode::BAD_REQUEST => return refused(error.message),
        Err(error) => return error.into_response(),
    };
    let head = csv_bytes([header_row(&first.scores)]);
    let (sender, receiver) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut listing = first;
        let _ = sender.send(Ok(head)).await;
        loop {
            let chunk = page_rows(&state, &listing).await;
            let failed = chunk.is_err();
            // A receiver gone (the download cancelled) ends the walk.
            let chunk = chunk.map_err(|error| io::Error::other(error.message));
            if sender.send(chunk).await.is_err() || failed {
                return;
            }
            let Some(next) = listing.next.take() else { return };
            match listing::list(&state, workspace_id, listing::ListRequest { cursor: Some(next), ..request.clone() })
                .await
            {
                Ok(more) => listing = more,
                Err(error) => {
                    let _ = sender.send(Err(io::Error::other(error.message))).await;
                    return;
                }
            }
        }
    });
    let headers = [
        (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
        (header::CONTENT_DISPOSITION, "attachment; filename=\"leads.csv\""),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    let mut response = (headers, Body::new(Streamed(receiver))).into_response();
    server_timing(&mut response, started);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_written_as_text() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        for risky in ["+1", "-2", "@SUM(A1)", "\tx"] {
            assert!(cell(risky).starts_with('\''), "{risky}");
        }
        assert_eq!(cell("Иван"), "Иван");
        let lead = ListedLead {
            id: 3,
            user_id: Some("u3".into()),
            email: Some("a@b.example".into()),
            name: Some("=1+1".into()),
            stage: "mql".into(),
            last_event_at: Some(0),
            value: Some(-5.0),
            tier: None,
            company: Some("王, \"Ltd\"".into()),
            overridden: false,
        };
        let bytes = csv_bytes([lead_row(&lead, &[(Some(-5.0), Some("cold".into())), (None, None)])]);
        assert_eq!(
            String::from_utf8(bytes.to_vec()).unwrap(),
            "3,u3,'=1+1,a@b.example,\"王, \"\"Ltd\"\"\",mql,-5,cold,,,1970-01-01T00:00:00Z\n"
        );
    }
}
