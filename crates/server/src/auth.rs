//! Who is calling: an API key from `Authorization: Bearer KEY`, or Segment's style (the write key
//! as the basic-auth user name with an empty password), checked against the store and cached.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::HeaderMap;
use base64::Engine;
use leadscore_store::keys::{KeyOwner, Scope};

use crate::error::ApiError;
use crate::state::AppState;

/// Keys already seen, so that a request does not need a database read to authenticate.
#[derive(Default)]
pub struct KeyCache {
    known: Mutex<HashMap<String, KeyOwner>>,
}

/// The key in the request's headers, if any.
pub fn key_from_headers(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else { return Ok(None) };
    let value = value.to_str().map_err(|_| ApiError::unauthorized("the Authorization header is not text"))?;
    if let Some(token) = value.strip_prefix("Bearer ") {
        return Ok(Some(token.trim().to_string()));
    }
    if let Some(encoded) = value.strip_prefix("Basic ") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| ApiError::unauthorized("the basic credentials are not base64"))?;
        let text =
            String::from_utf8(decoded).map_err(|_| ApiError::unauthorized("the basic credentials are not UTF-8"))?;
        let user = text.split_once(':').map_or(text.as_str(), |(user, _)| user);
        return Ok(Some(user.to_string()));
    }
    Err(ApiError::unauthorized("use `Authorization: Bearer KEY` or basic auth with the key as the user name"))
}

/// Checks a key and that its scope allows `needed`.
pub async fn authorize(state: &AppState, key: Option<String>, needed: Scope) -> Result<KeyOwner, ApiError> {
    let Some(key) = key else {
        return Err(ApiError::unauthorized("no API key: send `Authorization: Bearer KEY` (or a Segment write key)"));
    };
    let cached = state.keys.known.lock().ok().and_then(|known| known.get(&key).cloned());
    let owner = match cached {
        Some(owner) => owner,
        None => {
            let secret = key.clone();
            let found = state.store.read(move |c| leadscore_store::keys::authenticate(c, &secret)).await?;
            let owner = found.ok_or_else(|| ApiError::unauthorized("unknown or revoked API key"))?;
            if let Ok(mut known) = state.keys.known.lock() {
                known.insert(key, owner.clone());
            }
            owner
        }
    };
    if !owner.scope.allows(needed) {
        let article = |scope: Scope| if scope == Scope::Read { "a" } else { "an" };
        return Err(ApiError::forbidden(format!(
            "this {} key cannot do that: it needs {} {} key",
            owner.scope,
            article(needed),
            needed
        )));
    }
    Ok(owner)
}
