//! Keeps this instance's caches of stored data in step with changes made elsewhere: another
//! instance on the same PostgreSQL database, or the command line beside this service (`leadscore
//! keys revoke`). Every [`POLL_EVERY`], [`watch`] reads the store's cache version
//! (`Storage::cache_version`, moved by triggers in the transaction of every change of an API key;
//! see `leadscore_store::cache_versions` for why it is polled rather than notified) and, when it
//! moved, drops the caches it covers: the authenticated keys ([`crate::key_cache`]) and the
//! origins of browser keys ([`crate::browser_origins`]). A key revoked anywhere is refused here
//! within about a second.
//!
//! The other caches need nothing: ingestion's memory of leads is checked against the store's
//! generation (which moves at every transaction on PostgreSQL), compiled models are keyed by the id
//! of a model version whose text never changes, and accounts, sessions and webhooks are read at
//! each use.
//!
//! While the version cannot be read (the database is down), the caches keep their own limit:
//! a cached key is checked again after [`crate::key_cache::RECHECK_AFTER`].

use std::time::Duration;

use tokio::time::MissedTickBehavior;

use crate::state::AppState;

/// How often the cache version is read: the longest a change made elsewhere takes to reach this
/// instance's caches, plus one read.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// Reads the cache version every [`POLL_EVERY`] and drops the caches when it moved; runs until
/// aborted.
pub async fn watch(state: AppState) {
    let mut watcher = Watcher::default();
    let mut ticks = tokio::time::interval(POLL_EVERY);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        watcher.poll(&state).await;
    }
}

/// What the watcher last read.
#[derive(Default)]
struct Watcher {
    /// The version the caches were last dropped at; `None` before the first read, which drops
    /// them too (requests may have filled them before the watcher started).
    seen: Option<i64>,
    /// Whether the last read failed, so that an outage is logged once, not every second.
    failing: bool,
}

impl Watcher {
    async fn poll(&mut self, state: &AppState) {
        match state.storage.cache_version().await {
            Ok(version) => {
                if self.failing {
                    tracing::info!("the cache version is read again");
                    self.failing = false;
                }
                if self.seen != Some(version) {
                    state.keys.forget_all();
                    state.origins.forget();
                    self.seen = Some(version);
                }
            }
            Err(error) => {
                if !self.failing {
                    tracing::warn!(
                        %error,
                        "cannot read the cache version: keys revoked elsewhere are refused here only after their cached check expires"
                    );
                    self.failing = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadscore_store::keys::{self, Scope};
    use leadscore_store::{Store, workspaces};

    #[test]
    fn a_key_revoked_by_another_process_is_refused_after_the_next_poll() {
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
        let authorize =
            |state: &AppState| runtime.block_on(crate::auth::authorize(state, Some(key.secret.clone()), Scope::Read));
        let mut watcher = Watcher::default();
        runtime.block_on(watcher.poll(&state));
        assert_eq!(authorize(&state).unwrap().key_id, key.id);
        runtime.block_on(watcher.poll(&state));
        assert!(!state.keys.is_empty(), "nothing changed: the key stays cached");

        // As the command line does: in the database only, unknown to the cache.
        let key_id = key.id;
        assert!(
            store.write_blocking(move |c| keys::revoke(c, workspace_id, key_id, leadscore_store::now_ms())).unwrap()
        );
        assert!(authorize(&state).is_ok(), "cached, until the version is read");
        runtime.block_on(watcher.poll(&state));
        assert!(state.keys.is_empty());
        assert_eq!(authorize(&state).unwrap_err().status(), axum::http::StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn a_browser_key_made_by_another_process_allows_its_origin_after_the_next_poll() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let workspace_id =
            store.write_blocking(|c| Ok(workspaces::find_or_create(c, "acme", leadscore_store::now_ms())?.id)).unwrap();
        let state = AppState::new(store.clone(), crate::Config::default());
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let origin = "https://www.acme.example";
        let allowed = |state: &AppState| runtime.block_on(state.origins.allow(state.storage.as_ref(), origin)).unwrap();
        let mut watcher = Watcher::default();
        runtime.block_on(watcher.poll(&state));
        assert!(!allowed(&state));

        store
            .write_blocking(move |c| {
                keys::create_named(
                    c,
                    workspace_id,
                    Scope::Browser,
                    "site",
                    &[origin.to_string()],
                    leadscore_store::now_ms(),
                )
            })
            .unwrap();
        assert!(!allowed(&state), "the origins read before are kept until the version is read");
        runtime.block_on(watcher.poll(&state));
        assert!(allowed(&state));
    }
}
