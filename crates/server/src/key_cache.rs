//! The API keys this service has seen valid, so that most requests need no database read to
//! authenticate.
//!
//! A revoked key stops working at once when it is revoked through this service (the cache forgets
//! it), and within about a second when another process revokes it (another instance, or the
//! command line): [`crate::cache_versions`] sees the store's cache version move and empties the
//! cache. [`RECHECK_AFTER`] bounds the delay while that version cannot be read.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use leadscore_store::keys::KeyOwner;

/// How long a cached key is trusted before it is checked against the database again: the longest
/// a key revoked by another process keeps working here when the cache version cannot be read.
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
    /// Counts the revocations made through [`KeyCache::forget`] and the drops of
    /// [`KeyCache::forget_all`]: a key read from the database while one happened is not cached,
    /// as the read may predate the revocation.
    revocations: u64,
}

struct Checked {
    owner: KeyOwner,
    checked_at: Instant,
}

impl KeyCache {
    /// The owner of `key` if it was found valid in the database less than [`RECHECK_AFTER`] ago.
    pub fn fresh(&self, key: &str, now: Instant) -> Option<KeyOwner> {
        let entries = self.entries.lock().ok()?;
        let checked = entries.known.get(key)?;
        (now.duration_since(checked.checked_at) < RECHECK_AFTER).then(|| checked.owner.clone())
    }

    /// Where revocations stand before a database read, to hand to [`KeyCache::remember`].
    pub fn revocations(&self) -> u64 {
        self.entries.lock().map_or(0, |entries| entries.revocations)
    }

    /// Caches what the database said about `key` at `checked_at` (forgetting a revoked key),
    /// unless a revocation happened since `revocations_before` was taken.
    pub fn remember(&self, key: String, owner: Option<&KeyOwner>, checked_at: Instant, revocations_before: u64) {
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

    /// Forgets every key, after a change made elsewhere (the cache version moved): keys being read
    /// meanwhile are not cached either, as their read may predate the change.
    pub fn forget_all(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.known.clear();
            entries.revocations += 1;
        }
    }
}

#[cfg(test)]
impl KeyCache {
    /// Makes every cached check `by` older.
    pub(crate) fn age(&self, by: Duration) {
        if let Ok(mut entries) = self.entries.lock() {
            for checked in entries.known.values_mut() {
                checked.checked_at = checked.checked_at.checked_sub(by).unwrap_or(checked.checked_at);
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.lock().map_or(true, |entries| entries.known.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadscore_store::keys::Scope;

    fn owner(key_id: i64) -> KeyOwner {
        KeyOwner { key_id, workspace_id: 1, scope: Scope::Read, origins: Vec::new() }
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
    fn forgetting_every_key_also_refuses_the_reads_in_flight() {
        let cache = KeyCache::default();
        let now = Instant::now();
        cache.remember("lsk_x".to_string(), Some(&owner(7)), now, cache.revocations());
        let before = cache.revocations();
        cache.forget_all();
        assert_eq!(cache.fresh("lsk_x", now), None);
        cache.remember("lsk_y".to_string(), Some(&owner(8)), now, before);
        assert_eq!(cache.fresh("lsk_y", now), None, "read before the drop");
        cache.remember("lsk_y".to_string(), Some(&owner(8)), now, cache.revocations());
        assert_eq!(cache.fresh("lsk_y", now), Some(owner(8)));
    }
}
