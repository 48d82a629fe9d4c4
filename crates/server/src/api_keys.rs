//! API keys as the API and the console manage them: a new key (its secret returned once, stored
//! hashed) and a revocation that the key cache forgets at once, so the key's next request is
//! refused on every route.

use leadscore_store::StoreError;
use leadscore_store::keys::{KeyInfo, NewKey, Scope};

use crate::state::AppState;

/// The most characters of a key's name.
pub const NAME_LIMIT: usize = 100;

/// A key's name as given, trimmed; or why it cannot be one.
pub fn checked_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.chars().count() > NAME_LIMIT {
        return Err(format!("a key's name has at most {NAME_LIMIT} characters; say in a few words what it is for"));
    }
    if name.chars().any(char::is_control) {
        return Err("a key's name is one line of text, without control characters".to_string());
    }
    Ok(name.to_string())
}

/// A new key of the workspace with `scope`, named `name` (checked), with its secret (shown once,
/// never again).
pub async fn create(
    state: &AppState,
    workspace_id: i64,
    scope: Scope,
    name: String,
    now: i64,
) -> Result<NewKey, StoreError> {
    state.storage.create_key(workspace_id, scope, name, now).await
}

/// Revokes one of the workspace's keys and returns it as revoked (revoking it again keeps the
/// first time); `None` if the workspace has no such key.
pub async fn revoke(state: &AppState, workspace_id: i64, key_id: i64, now: i64) -> Result<Option<KeyInfo>, StoreError> {
    let revoked = state.storage.revoke_key(workspace_id, key_id, now).await?;
    if let Some(key) = &revoked {
        // After the commit, so that a request that reads the key again sees it revoked.
        state.keys.forget(key.id);
    }
    Ok(revoked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_name_is_one_short_line() {
        assert_eq!(checked_name("  CRM sync  "), Ok("CRM sync".to_string()));
        assert_eq!(checked_name("Трекер сайта"), Ok("Трекер сайта".to_string()));
        assert!(checked_name(&"x".repeat(NAME_LIMIT + 1)).is_err());
        assert!(checked_name("two\nlines").is_err());
    }
}
