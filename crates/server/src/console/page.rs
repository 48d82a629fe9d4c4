//! A console page as it is sent: the template rendered, with the headers every page carries,
//! and who is signed in as the page header shows them.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::accounts::SignedIn;

/// Who is signed in, as the page header shows them.
#[derive(Debug, Clone)]
pub struct AccountView {
    pub email: String,
    pub role: String,
    /// The session's token against cross-site request forgery, for the forms of the page.
    pub csrf: String,
}

impl From<&SignedIn> for AccountView {
    fn from(signed_in: &SignedIn) -> AccountView {
        AccountView {
            email: signed_in.user.email.clone(),
            role: signed_in.user.role.to_string(),
            csrf: signed_in.session.csrf_token.clone(),
        }
    }
}

/// A rendered page with the headers every page carries: no caching (pages hold personal data),
/// no framing, scripts and styles from this origin only.
pub fn page(status: StatusCode, template: &impl Template) -> Response {
    let body = match template.render() {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%error, "a console page did not render");
            return (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be shown; it was logged").into_response();
        }
    };
    html(status, body, CONSOLE_POLICY)
}

/// What a console page may load and who may frame it: this origin only, framed by nobody.
const CONSOLE_POLICY: &str =
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// An HTML answer with the headers every page carries (no caching: pages hold personal data;
/// no guessing of the type; no referrer outside this origin) and the content security `policy`.
pub fn html(status: StatusCode, body: String, policy: &'static str) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(policy));
    response
}

/// A message as a sentence on a page: its first letter capitalised (the service's messages start
/// in lower case to read well after a field name).
pub fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// A person's name from the lead's fields (`name`, else first and last names).
pub fn display_name(attributes: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    let text = |key: &str| attributes.get(key).and_then(|v| v.as_str());
    leadscore_store::leads::person_name(
        text("name"),
        text("first_name").or(text("firstName")),
        text("last_name").or(text("lastName")),
    )
}
