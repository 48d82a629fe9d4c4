//! The console's session: its cookie, the extractor that sends anyone not signed in to the
//! sign-in page, and the checks every posted form passes (its origin, its session's token).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use leadscore_store::users::Role;

use super::page::{AccountView, page};
use axum::response::{IntoResponse, Redirect, Response};
use leadscore_store::now_ms;

use crate::accounts::{self, SignedIn};
use crate::state::AppState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "leadscore_session";

/// The value of the cookie `name` in the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(key, value)| (key == name).then_some(value))
}

/// The `Set-Cookie` value that keeps a session for `max_age_ms`, or (with 0) forgets it.
pub fn session_cookie(token: &str, max_age_ms: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}", max_age_ms / 1000)
}

/// Whether a posted form comes from a page of this service: a browser names the page's origin
/// (`Origin`) or says how the request relates to it (`Sec-Fetch-Site`); a post that another site
/// made is refused even when it carries the session's cookie.
pub fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        // Browsers send `Origin` with every post; tools that send neither header are not browsers
        // acting for another site.
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) == Some(host)
}

/// Whether a posted token is the session's, compared in constant time.
pub fn check_csrf(signed_in: &SignedIn, posted: &str) -> bool {
    let expected = signed_in.session.csrf_token.as_bytes();
    let posted = posted.as_bytes();
    expected.len() == posted.len() && expected.iter().zip(posted).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
}

/// The client's address, for slowing down guessing per address.
pub fn client_address(parts_or_extensions: &axum::http::Extensions) -> String {
    parts_or_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |ConnectInfo(address)| address.ip().to_string())
}

/// A signed-in person's request; anyone else is sent to the sign-in page.
pub struct SignedInPage(pub SignedIn);

impl FromRequestParts<AppState> for SignedInPage {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<SignedInPage, Response> {
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(Redirect::to("/sign-in").into_response());
        };
        match accounts::session(&state.storage, token, now_ms()).await {
            Ok(Some(signed_in)) => Ok(SignedInPage(signed_in)),
            Ok(None) => Err(Redirect::to("/sign-in").into_response()),
            Err(error) => Err(crate::error::ApiError::from(error).into_response()),
        }
    }
}

impl axum::extract::OptionalFromRequestParts<AppState> for SignedInPage {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Option<SignedInPage>, Response> {
        match <SignedInPage as FromRequestParts<AppState>>::from_request_parts(parts, state).await {
            Ok(page) => Ok(Some(page)),
            Err(response) if response.status().is_redirection() => Ok(None),
            Err(response) => Err(response),
        }
    }
}

/// The answer to a form posted from another site.
pub fn refused_origin() -> Response {
    (StatusCode::FORBIDDEN, "this form was posted from another site; open the console and post it from there")
        .into_response()
}

#[derive(askama::Template)]
#[template(path = "console/forbidden.html")]
struct ForbiddenPage {
    account: Option<AccountView>,
    section: &'static str,
    role: String,
    needed: String,
    action: &'static str,
}

/// `None` if the person's role allows `needed`; else the 403 page that says what the role cannot
/// do and who can. Every action checks it, whatever the page's buttons show.
pub fn refuse_unless(signed_in: &SignedIn, needed: Role, action: &'static str) -> Option<Response> {
    if signed_in.user.role.allows(needed) {
        return None;
    }
    let shown = ForbiddenPage {
        account: Some(AccountView::from(signed_in)),
        section: "",
        role: signed_in.user.role.to_string(),
        needed: needed.to_string(),
        action,
    };
    Some(page(StatusCode::FORBIDDEN, &shown))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let request = headers(&[("cookie", "theme=dark; leadscore_session=lss_abc"), ("cookie", "other=1")]);
        assert_eq!(cookie(&request, SESSION_COOKIE), Some("lss_abc"));
        assert_eq!(cookie(&headers(&[("cookie", "leadscore_session_old=x")]), SESSION_COOKIE), None);
        assert_eq!(
            session_cookie("lss_abc", 3_600_000, true),
            "leadscore_session=lss_abc; Path=/; HttpOnly; SameSite=Lax; Max-Age=3600; Secure"
        );
    }

    #[test]
    fn posts_from_other_sites_are_told_apart() {
        assert!(same_origin(&headers(&[("host", "leads.example.com"), ("origin", "https://leads.example.com")])));
        assert!(!same_origin(&headers(&[("host", "leads.example.com"), ("origin", "https://evil.example")])));
        assert!(!same_origin(&headers(&[("host", "leads.example.com"), ("sec-fetch-site", "cross-site")])));
        assert!(same_origin(&headers(&[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8080")])));
        assert!(same_origin(&headers(&[("host", "leads.example.com")])), "a tool that is no browser");
    }
}
