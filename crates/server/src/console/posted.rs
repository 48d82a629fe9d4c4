//! A form posted to the console, checked the same way by every action: it comes from a page of
//! this origin, the person's role allows the action (whatever the page showed them), and it
//! carries the session's token against cross-site request forgery. Only then are its fields
//! read.

use axum::extract::{Form, FromRequest as _, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use leadscore_store::users::Role;

use super::session::{check_csrf, refuse_unless, refused_origin, same_origin};
use crate::accounts::SignedIn;
use crate::state::AppState;

/// The fields of a posted form, in the order sent (a field may repeat: checkboxes).
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// The first value of `name`, or "" when the form did not send it.
    pub fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(key, _)| key == name).map_or("", |(_, value)| value.as_str())
    }

    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0.iter().filter(|(key, _)| key == name).map(|(_, value)| value.clone()).collect()
    }
}

/// The answer to a form that does not carry its session's token.
pub fn refused_token() -> Response {
    (StatusCode::FORBIDDEN, "this form is not from your session; reload the page and try again").into_response()
}

/// The fields of a form `signed_in` posted to do `action`, which needs the role `needed`; or
/// the refusal to send instead (403 from another site, for a role that may not, or without the
/// session's token; 400 for a body that is not a form).
pub async fn checked(
    state: &AppState,
    signed_in: &SignedIn,
    request: Request,
    needed: Role,
    action: &'static str,
) -> Result<Fields, Response> {
    if !same_origin(request.headers()) {
        return Err(refused_origin());
    }
    if let Some(refusal) = refuse_unless(signed_in, needed, action) {
        return Err(refusal);
    }
    let Ok(Form(pairs)) = Form::<Vec<(String, String)>>::from_request(request, state).await else {
        return Err(
            (StatusCode::BAD_REQUEST, "the form could not be read; reload the page and send it again").into_response()
        );
    };
    let fields = Fields(pairs);
    if !check_csrf(signed_in, fields.get("csrf")) {
        return Err(refused_token());
    }
    Ok(fields)
}
