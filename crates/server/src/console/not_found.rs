//! "Not found" for people: a browser asking for an address that is neither a page nor an API
//! route gets an HTML page with the console's navigation, while API clients (paths under
//! `/api/` and `/v1/`, or requests that do not accept HTML) keep the JSON `not_found`.

use askama::Template;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::page::{AccountView, page};
use super::session::SignedInPage;
use crate::error::ApiError;

#[derive(Template)]
#[template(path = "console/not_found.html")]
pub(super) struct NotFoundPage {
    pub account: Option<AccountView>,
    pub section: &'static str,
    /// The lead id asked for, when the page was a lead's.
    pub lead: Option<String>,
    /// The path asked for.
    pub path: String,
}

/// Whether a request is a person's browser asking for a page rather than an API client.
fn wants_a_page(uri: &Uri, headers: &HeaderMap) -> bool {
    let path = uri.path();
    let api = ["/api/", "/v1/"].iter().any(|prefix| path.starts_with(prefix)) || path == "/api" || path == "/v1";
    let html = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|accept| accept.split(',').any(|kind| kind.trim().starts_with("text/html")));
    !api && html
}

/// Every request no route answers.
pub async fn fallback(signed_in: Option<SignedInPage>, uri: Uri, headers: HeaderMap) -> Response {
    if !wants_a_page(&uri, &headers) {
        return ApiError::not_found("no such route").into_response();
    }
    let shown = NotFoundPage {
        account: signed_in.map(|SignedInPage(signed_in)| AccountView::from(&signed_in)),
        section: "",
        lead: None,
        path: uri.path().to_string(),
    };
    page(StatusCode::NOT_FOUND, &shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_browsers_outside_the_api_get_a_page() {
        let browser: HeaderMap =
            [(header::ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8".parse().unwrap())].into_iter().collect();
        let client: HeaderMap = [(header::ACCEPT, "application/json".parse().unwrap())].into_iter().collect();
        let uri = |path: &str| path.parse::<Uri>().unwrap();
        assert!(wants_a_page(&uri("/nowhere"), &browser));
        assert!(!wants_a_page(&uri("/api/nowhere"), &browser));
        assert!(!wants_a_page(&uri("/v1/nowhere"), &browser));
        assert!(!wants_a_page(&uri("/nowhere"), &client));
        assert!(!wants_a_page(&uri("/nowhere"), &HeaderMap::new()));
    }
}
