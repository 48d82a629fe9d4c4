//! API keys as the API and the console manage them: a new key (its secret returned once, stored
//! hashed) and a revocation that the key cache forgets at once, so the key's next request is
//! refused on every route.

use leadscore_store::StoreError;
use leadscore_store::keys::{KeyInfo, NewKey, Scope};

use crate::state::AppState;

/// A new key of the workspace with `scope`, with its secret (shown once, never again).
pub async fn create(state: &AppState, workspace_id: i64, scope: Scope, now: i64) -> Result<NewKey, StoreError> {
    state.storage.create_key(workspace_id, scope, now).await
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
