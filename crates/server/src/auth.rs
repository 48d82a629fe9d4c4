//! Who is calling: an API key from `Authorization: Bearer KEY`, or Segment's style (the write key
//! as the basic-auth user name with an empty password), checked against the store and cached.
//!
//! A revoked key stops working at once when it is revoked through this service (the cache forgets
//! it), and within [`RECHECK_AFTER`] when another process revokes it (the command line writes to
//! the same database, which this service only sees when it reads the key again).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use base64::Engine;
use leadscore_store::keys::{KeyOwner, Scope};

use crate::error::ApiError;
use crate::state::AppState;

/// How long a cached key is trusted before it is checked against the database again: the longest
/// a key revoked by another process keeps working here.
pub const RECHECK_AFTER: Duration = Duration::from_secs(30);

/// Keys already seen, so that most requests do not need a database read to authenticate. Only
/// valid keys are kept, so that unknown keys sent by anyone cannot fill it.
#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    known: HashMap<String, Checked>,
    /// Counts the revocations made through [`KeyCache::forget`]: a key read from the database
    /// while one happened is not cached, as the read may predate the revocation.
    revocations: u64,
}

struct Checked {
    owner: KeyOwner,
    checked_at: Instant,
}

impl KeyCache {
    /// The owner of `key` if it was found valid in the database less than [`RECHECK_AFTER`] ago.
    fn fresh(&self, key: &str, now: Instant) -> Option<KeyOwner> {
        let entries = self.entries.lock().ok()?;
        let checked = entries.known.get(key)?;
        (now.duration_since(checked.checked_at) < RECHECK_AFTER).then(|| checked.owner.clone())
    }

    /// Where revocations stand before a database read, to hand to [`KeyCache::remember`].
    fn revocations(&self) -> u64 {
        self.entries.lock().map_or(0, |entries| entries.revocations)
    }

    /// Caches what the database said about `key` at `checked_at` (forgetting a revoked key),
    /// unless a revocation happened since `revocations_before` was taken.
    fn remember(&self, key: String, owner: Option<&KeyOwner>, checked_at: Instant, revocations_before: u64) {
        let Ok(mut entries) = self.entries.lock() else { return };
        match owner {
            Some(owner) if entries.revocations == revocations_before => {
                entries.known.insert(key, Checked { owner: owner.clone(), checked_at });
            }
            _ => {
                entries.known.remove(&key);
            }
        }
    }

    /// Forgets a key that was just revoked (after the revocation was committed), so that its
    /// next request reads the database and is refused.
    pub fn forget(&self, key_id: i64) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.known.retain(|_, checked| checked.owner.key_id != key_id);
            entries.revocations += 1;
        }
    }
}

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
            let found = state.store.read(move |c| leadscore_store::keys::authenticate(c, &secret)).await?;
            state.keys.remember(key, found.as_ref(), checked_at, revocations_before);
            found.ok_or_else(|| ApiError::unauthorized("unknown or revoked API key"))?
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

    fn owner(key_id: i64) -> KeyOwner {
        KeyOwner { key_id, workspace_id: 1, scope: Scope::Read }
    }

    #[test]
    fn a_key_read_while_it_was_being_revoked_is_not_cached() {
        let cache = KeyCache::default();
        let now = Instant::now();
        let before = cache.revocations();
        cache.forget(7);
        cache.remember("lsk_x".to_string(), Some(&owner(7)), now, before);
        assert_eq!(cache.fresh("lsk_x", now), None);
        // Without a revocation in between, the key is cached, and forgetting it drops it.
        cache.remember("lsk_x".to_string(), Some(&owner(7)), now, cache.revocations());
        assert_eq!(cache.fresh("lsk_x", now), Some(owner(7)));
        cache.forget(7);
        assert_eq!(cache.fresh("lsk_x", now), None);
    }

    #[test]
    fn a_key_revoked_by_another_process_is_refused_once_its_check_is_too_old() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (workspace_id, key) = store
            .write_blocking(|c| {
                let workspace = workspaces::find_or_create(c, "acme")?;
                Ok((workspace.id, keys::create(c, workspace.id, Scope::Read)?))
            })
            .unwrap();
        let state = AppState::new(store.clone(), crate::Config::default());
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let authorize = |state: &AppState| runtime.block_on(authorize(state, Some(key.secret.clone()), Scope::Read));
        assert_eq!(authorize(&state).unwrap().key_id, key.id);

        // As the command line does: in the database only, unknown to the cache.
        let key_id = key.id;
        assert!(store.write_blocking(move |c| keys::revoke(c, workspace_id, key_id)).unwrap());
        assert!(authorize(&state).is_ok(), "checked less than 30 s ago: still trusted");

        let long_ago = Instant::now().checked_sub(RECHECK_AFTER).unwrap();
        state.keys.entries.lock().unwrap().known.get_mut(&key.secret).unwrap().checked_at = long_ago;
        assert_eq!(authorize(&state).unwrap_err().status, axum::http::StatusCode::UNAUTHORIZED);
        assert!(state.keys.entries.lock().unwrap().known.is_empty(), "a revoked key is not kept");
    }
}
