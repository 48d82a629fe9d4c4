//! Who is calling: an API key from `Authorization: Bearer KEY`, or Segment's style (the write key
//! as the basic-auth user name with an empty password), checked against the store and cached
//! ([`crate::key_cache`]). A route states the scope it needs in its signature with
//! [`Authorized`]; the Segment routes, whose key may be in the body, call [`authorize`] themselves.

use std::marker::PhantomData;
use std::time::Instant;

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use base64::Engine;
use leadscore_store::keys::{KeyOwner, Scope};

use crate::error::ApiError;
#[cfg(test)]
use crate::key_cache::RECHECK_AFTER;
use crate::state::AppState;

/// The key in the request's headers, if any.
pub fn key_from_headers(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else { return Ok(None) };
    let value = value.to_str().map_err(|_| ApiError::unauthorized("the Authorization header is not text"))?;
    // The scheme is case-insensitive (RFC 9110, 11.1) and separated by one or more spaces.
    let (scheme, credentials) = value.trim_start().split_once(' ').unwrap_or((value, ""));
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("bearer") && !credentials.is_empty() {
        return Ok(Some(credentials.to_string()));
    }
    if let Some(encoded) = Some(credentials).filter(|_| scheme.eq_ignore_ascii_case("basic")) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
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
    let owner = match state.keys.fresh(&key, Instant::now()) {
        Some(owner) => owner,
        None => {
            let revocations_before = state.keys.revocations();
            // The check time is taken before the read: the entry must not outlive what the read saw.
            let checked_at = Instant::now();
            let secret = key.clone();
            let found = state.storage.authenticate(secret).await?;
            state.keys.remember(key, found.as_ref(), checked_at, revocations_before);
            found.ok_or_else(|| ApiError::unauthorized("unknown or revoked API key"))?
        }
    };
    if !owner.scope.allows(needed) {
        let needs = match needed {
            Scope::Read => "a read key",
            Scope::Ingest => "an ingest key",
            Scope::Admin => "an admin key",
            Scope::Browser => "an ingest or browser key",
        };
        return Err(ApiError::forbidden(format!("this {} key cannot do that: it needs {needs}", owner.scope)));
    }
    Ok(owner)
}

/// A scope a route needs, as a type, so that a handler's signature says which.
pub trait NeededScope {
    const SCOPE: Scope;
}

/// Routes that store leads and events (`ingest` or `admin` keys).
pub struct IngestScope;
/// Routes that read leads, models and scores (`read` or `admin` keys).
pub struct ReadScope;
/// Routes that change models, keys, webhooks and stages (`admin` keys).
pub struct AdminScope;

impl NeededScope for IngestScope {
    const SCOPE: Scope = Scope::Ingest;
}
impl NeededScope for ReadScope {
    const SCOPE: Scope = Scope::Read;
}
impl NeededScope for AdminScope {
    const SCOPE: Scope = Scope::Admin;
}

/// The owner of the request's key, which allows what `S` needs: extracting it reads the key from
/// the headers and authorizes it, answering 401 or 403 otherwise. Extractors run in the order of
/// the handler's arguments; put it after the path, so that a bad path is refused first.
pub struct Authorized<S: NeededScope> {
    pub owner: KeyOwner,
    // `fn() -> S`: the marker is neither kept nor sent, so it adds no bounds.
    scope: PhantomData<fn() -> S>,
}

impl<S: NeededScope> FromRequestParts<AppState> for Authorized<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Authorized<S>, ApiError> {
        let owner = authorize(state, key_from_headers(&parts.headers)?, S::SCOPE).await?;
        Ok(Authorized { owner, scope: PhantomData })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadscore_store::{Store, keys, workspaces};

    #[test]
    fn the_authorization_scheme_is_case_insensitive() {
        let key = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(axum::http::header::AUTHORIZATION, value.parse().unwrap());
            key_from_headers(&headers)
        };
        for value in ["Bearer lsk_1", "bearer lsk_1", "BEARER  lsk_1", "Basic bHNrXzE6", "basic bHNrXzE6"] {
            assert_eq!(key(value).unwrap().as_deref(), Some("lsk_1"), "{value}");
        }
        assert!(key("Token lsk_1").is_err());
        assert!(key("Bearer").is_err());
    }

    /// The key id a route needing `S` is handed for a request with `key`, or the refusal's status.
    async fn extracted<S: NeededScope>(state: &AppState, key: Option<&str>) -> Result<i64, axum::http::StatusCode> {
        let mut request = axum::http::Request::builder();
        if let Some(key) = key {
            request = request.header(axum::http::header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let (mut parts, ()) = request.body(()).unwrap().into_parts();
        Authorized::<S>::from_request_parts(&mut parts, state).await.map(|a| a.owner.key_id).map_err(|e| e.status())
    }

    #[test]
    fn a_route_is_handed_the_owner_of_a_key_whose_scope_allows_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key = store
            .write_blocking(|c| {
                let workspace = workspaces::find_or_create(c, "acme", leadscore_store::now_ms())?;
                keys::create(c, workspace.id, Scope::Read, leadscore_store::now_ms())
            })
            .unwrap();
        let state = AppState::new(store, crate::Config::default());
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let secret = Some(key.secret.as_str());
        assert_eq!(runtime.block_on(extracted::<ReadScope>(&state, secret)), Ok(key.id));
        assert_eq!(runtime.block_on(extracted::<AdminScope>(&state, secret)), Err(axum::http::StatusCode::FORBIDDEN));
        assert_eq!(runtime.block_on(extracted::<IngestScope>(&state, secret)), Err(axum::http::StatusCode::FORBIDDEN));
        assert_eq!(runtime.block_on(extracted::<ReadScope>(&state, None)), Err(axum::http::StatusCode::UNAUTHORIZED));
        assert_eq!(
            runtime.block_on(extracted::<ReadScope>(&state, Some("lsk_unknown"))),
            Err(axum::http::StatusCode::UNAUTHORIZED)
        );
    }

    #[test]
    fn a_key_revoked_by_another_process_is_refused_once_its_check_is_too_old() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (workspace_id, key) = store
            .write_blocking(|c| {
                let workspace = workspaces::find_or_create(c, "acme", leadscore_store::now_ms())?;
                Ok((workspace.id, keys::create(c, workspace.id, Scope::Read, leadscore_store::now_ms())?))
            })
            .unwrap();
        let state = AppState::new(store.clone(), crate::Config::default());
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let authorize = |state: &AppState| runtime.block_on(authorize(state, Some(key.secret.clone()), Scope::Read));
        assert_eq!(authorize(&state).unwrap().key_id, key.id);

        // As the command line does: in the database only, unknown to the cache.
        let key_id = key.id;
        assert!(
            store.write_blocking(move |c| keys::revoke(c, workspace_id, key_id, leadscore_store::now_ms())).unwrap()
        );
        assert!(authorize(&state).is_ok(), "checked less than 30 s ago: still trusted");

        state.keys.age(RECHECK_AFTER);
        assert_eq!(authorize(&state).unwrap_err().status(), axum::http::StatusCode::UNAUTHORIZED);
        assert!(state.keys.is_empty(), "a revoked key is not kept");
    }
}
