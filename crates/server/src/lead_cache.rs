//! The writer's memory of the leads ingestion touched recently: each lead's row, its engine
//! state (parsed) and its stored scores, found by user id or anonymous id. A message for a
//! remembered lead then reads nothing but its message id's duplicate check (which ingestion's
//! one read makes for every message): no lookup by user id, no state to parse, no scores to
//! compare with.
//!
//! Coherence: only ingestion reads and changes this memory, inside the writer's transaction,
//! and it keeps the memory equal to what it stores (it writes with `Storage::ingest`).
//! Rescoring and stage moves forget each lead they change (`Storage::write_beside_caches`).
//! Every other write, every failed job and every failed commit changes the store's generation, and
//! the whole memory is dropped the next time it is locked at another generation.
//!
//! Size: at most `capacity` leads, in two generations. Leads are remembered in the young one;
//! when it holds half the capacity, the old one is dropped and the young one becomes old. A lead
//! found in the old generation moves back to the young one, so that the leads a site keeps
//! hearing from stay remembered (real traffic is skewed: a few leads send most events) while
//! the memory stays bounded whatever the number of leads. This is the least recently used order
//! in two steps, at the cost of a hash map per generation rather than a list per lead.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use leadscore_core::LeadState;
use leadscore_store::Generation;
use leadscore_store::leads::LeadRow;
use leadscore_store::scores::StoredScores;

/// Leads remembered at most by default (see `leadscore serve --remembered-leads`).
pub const DEFAULT_CAPACITY: usize = 100_000;

pub struct LeadCache {
    generation: Generation,
    capacity: usize,
    /// Whether the memory is emptied at every lock: for a storage that other processes write
    /// (see [`LeadCache::per_request`]).
    per_request: bool,
    leads: Mutex<Leads>,
}

/// The remembered leads, valid for one generation of the store.
#[derive(Default)]
pub struct Leads {
    generation: u64,
    young: Remembrance,
    old: Remembrance,
}

/// One generation of remembered leads.
#[derive(Default)]
struct Remembrance {
    /// Workspace id, then user id or anonymous id, to lead id. A user id entry counts only while
    /// the lead's row still has that user id; an anonymous id entry only while its lead is
    /// remembered (a merged lead is forgotten, and the links that named it are stale).
    by_user: HashMap<i64, HashMap<String, i64>>,
    by_anonymous: HashMap<i64, HashMap<String, i64>>,
    entries: HashMap<i64, Remembered>,
}

impl Remembrance {
    fn linked(map: &HashMap<i64, HashMap<String, i64>>, workspace_id: i64, id: &str) -> Option<i64> {
        map.get(&workspace_id)?.get(id).copied()
    }
}

/// A lead as stored, with what ingestion derived from it.
pub struct Remembered {
    pub row: LeadRow,
    /// The engine's state parsed from `row.state`, with the model version it is for.
    pub state: Option<(i64, LeadState)>,
    pub scores: Option<StoredScores>,
}

impl LeadCache {
    pub fn new(generation: Generation) -> LeadCache {
        LeadCache::with_capacity(generation, DEFAULT_CAPACITY)
    }

    /// A memory of at most `capacity` leads (at least 2).
    pub fn with_capacity(generation: Generation, capacity: usize) -> LeadCache {
        LeadCache { generation, capacity: capacity.max(2), per_request: false, leads: Mutex::new(Leads::default()) }
    }

    /// A memory that lasts one request: when other processes write the same storage (several
    /// instances on PostgreSQL), a lead remembered from an earlier request may have changed, or
    /// may hold what a transaction still open wrote, so every request reads its leads (and
    /// locks them) again, in a memory of its own.
    pub fn per_request(generation: Generation) -> LeadCache {
        LeadCache { per_request: true, ..LeadCache::with_capacity(generation, 2) }
    }

    /// The remembered leads, emptied first if anything may have changed them since they were
    /// remembered; the old generation is dropped first if the young one holds half the capacity.
    ///
    /// A memory per request ([`LeadCache::per_request`]) hands each request an empty memory of its
    /// own instead, locking nothing: the requests of one instance then run at once, each
    /// locking its leads in the database.
    pub fn lock(&self) -> LeadsGuard<'_> {
        if self.per_request {
            return LeadsGuard::Own(Box::default());
        }
        let mut leads = self.leads.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let generation = self.generation.current();
        if leads.generation != generation {
            *leads = Leads { generation, ..Leads::default() };
        } else if leads.young.entries.len() >= self.capacity / 2 {
            leads.old = std::mem::take(&mut leads.young);
        }
        LeadsGuard::Shared(leads)
    }
}

/// The remembered leads a request works with (see [`LeadCache::lock`]).
pub enum LeadsGuard<'a> {
    /// The memory shared by the process's requests, locked for as long as this lives.
    Shared(MutexGuard<'a, Leads>),
    /// A memory of the request's own, forgotten with it.
    Own(Box<Leads>),
}

impl std::ops::Deref for LeadsGuard<'_> {
    type Target = Leads;

    fn deref(&self) -> &Leads {
        match self {
            LeadsGuard::Shared(leads) => leads,
            LeadsGuard::Own(leads) => leads,
        }
    }
}

impl std::ops::DerefMut for LeadsGuard<'_> {
    fn deref_mut(&mut self) -> &mut Leads {
        match self {
            LeadsGuard::Shared(leads) => leads,
            LeadsGuard::Own(leads) => leads,
        }
    }
}

impl Leads {
    /// The remembered lead of a message with these ids, when finding it in the database would
    /// change nothing: its user id (if any) is the lead's, and its anonymous id (if any) is
    /// linked to the same lead.
    pub fn lead_of(&self, workspace_id: i64, user_id: Option<&str>, anonymous_id: Option<&str>) -> Option<i64> {
        let linked = |map: fn(&Remembrance) -> &HashMap<i64, HashMap<String, i64>>, id: &str| {
            Remembrance::linked(map(&self.young), workspace_id, id)
                .or_else(|| Remembrance::linked(map(&self.old), workspace_id, id))
        };
        let by_anonymous = |anonymous_id: &str| linked(|r| &r.by_anonymous, anonymous_id);
        let id = match (user_id, anonymous_id) {
            (Some(user_id), anonymous_id) => {
                let id = linked(|r| &r.by_user, user_id)?;
                let linked = anonymous_id.is_none_or(|anonymous_id| by_anonymous(anonymous_id) == Some(id));
                (linked && self.get(id)?.row.user_id.as_deref() == Some(user_id)).then_some(id)?
            }
            (None, Some(anonymous_id)) => by_anonymous(anonymous_id)?,
            (None, None) => return None,
        };
        self.get(id).is_some().then_some(id)
    }

    pub fn get(&self, id: i64) -> Option<&Remembered> {
        self.young.entries.get(&id).or_else(|| self.old.entries.get(&id))
    }

    /// The remembered lead, moved to the young generation if it was in the old one.
    pub fn get_mut(&mut self, id: i64) -> Option<&mut Remembered> {
        if !self.young.entries.contains_key(&id) {
            let entry = self.old.entries.remove(&id)?;
            if let Some(user_id) = &entry.row.user_id {
                self.young.by_user.entry(entry.row.workspace_id).or_default().insert(user_id.clone(), id);
            }
            self.young.entries.insert(id, entry);
        }
        self.young.entries.get_mut(&id)
    }

    /// Remembers a lead as just read, created or changed (and saved or about to be), found by its
    /// user id. An already remembered lead keeps its parsed state and scores: the row's state and
    /// scores are saved only with them.
    pub fn remember(&mut self, row: LeadRow) {
        if let Some(user_id) = &row.user_id {
            self.young.by_user.entry(row.workspace_id).or_default().insert(user_id.clone(), row.id);
        }
        match self.get_mut(row.id) {
            Some(entry) => entry.row = row,
            None => {
                self.young.entries.insert(row.id, Remembered { row, state: None, scores: None });
            }
        }
    }

    /// Records that `anonymous_id` is linked to the lead `lead_id`.
    pub fn link_anonymous_id(&mut self, workspace_id: i64, anonymous_id: &str, lead_id: i64) {
        self.young.by_anonymous.entry(workspace_id).or_default().insert(anonymous_id.to_string(), lead_id);
        if let Some(old) = self.old.by_anonymous.get_mut(&workspace_id) {
            old.remove(anonymous_id);
        }
    }

    /// Forgets a lead (merged into another: the ids that found it are stale).
    pub fn forget(&mut self, id: i64) {
        self.young.entries.remove(&id);
        self.old.entries.remove(&id);
    }

    /// How many leads are remembered.
    pub fn len(&self) -> usize {
        self.young.entries.len() + self.old.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, user_id: Option<&str>) -> LeadRow {
        LeadRow {
            id,
            workspace_id: 1,
            user_id: user_id.map(str::to_string),
            email: None,
            attributes: Default::default(),
            created_at: 0,
            updated_at: 0,
            last_event_at: None,
            stage: "lead".to_string(),
            state: None,
            state_model_id: None,
            last_event_id: None,
        }
    }

    #[test]
    fn a_memory_per_request_is_each_requests_own() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            leadscore_store::Store::open_ingesting(dir.path(), leadscore_store::message_ids::DEFAULT_RECENT).unwrap();
        let cache = LeadCache::per_request(store.generation());
        cache.lock().remember(leadscore_store::leads::new_row(1, 1, Some("ana"), 0));
        assert!(cache.lock().get(1).is_none(), "nothing outlives the request that remembered it");
        // Two requests at once each have a memory, and neither waits for the other's.
        let (mut first, second) = (cache.lock(), cache.lock());
        first.remember(leadscore_store::leads::new_row(2, 1, Some("bo"), 0));
        assert!(second.get(2).is_none());
        let kept = LeadCache::new(store.generation());
        kept.lock().remember(leadscore_store::leads::new_row(1, 1, Some("ana"), 0));
        assert!(kept.lock().get(1).is_some(), "a sole writer's memory lasts");
    }

    #[test]
    fn a_lead_is_found_only_by_ids_that_still_find_it() {
        let mut leads = Leads::default();
        leads.remember(row(1, Some("u")));
        leads.remember(row(2, None));
        leads.link_anonymous_id(1, "a", 2);
        assert_eq!(leads.lead_of(1, Some("u"), None), Some(1));
        assert_eq!(leads.lead_of(2, Some("u"), None), None, "another workspace");
        assert_eq!(leads.lead_of(1, None, Some("a")), Some(2));
        // The anonymous id is another lead's: finding the lead in the database would link or merge.
        assert_eq!(leads.lead_of(1, Some("u"), Some("a")), None);
        assert_eq!(leads.lead_of(1, Some("u"), Some("unknown")), None);
        leads.link_anonymous_id(1, "a", 1);
        assert_eq!(leads.lead_of(1, Some("u"), Some("a")), Some(1));
        // The user id moved on (the row no longer has it), or the lead was merged away.
        leads.remember(row(1, Some("v")));
        assert_eq!(leads.lead_of(1, Some("u"), None), None);
        assert_eq!(leads.lead_of(1, Some("v"), Some("a")), Some(1));
        leads.forget(1);
        assert_eq!(leads.lead_of(1, Some("v"), None), None);
        assert_eq!(leads.lead_of(1, None, Some("a")), None);
    }

    #[test]
    fn the_memory_stays_bounded_and_keeps_the_leads_found_again() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            leadscore_store::Store::open_ingesting(dir.path(), leadscore_store::message_ids::DEFAULT_RECENT).unwrap();
        let cache = LeadCache::with_capacity(store.generation(), 10);
        for id in 1..=5 {
            cache.lock().remember(row(id, Some(&format!("u{id}"))));
        }
        // The young generation is full: locking makes it the old one, still found.
        let mut leads = cache.lock();
        assert_eq!(leads.len(), 5);
        assert_eq!(leads.lead_of(1, Some("u1"), None), Some(1));
        // Lead 1 is found again: it moves back to the young generation with its user id.
        assert!(leads.get_mut(1).is_some());
        drop(leads);
        for id in 6..=9 {
            cache.lock().remember(row(id, Some(&format!("u{id}"))));
        }
        // Full again: the old generation (leads 2 to 5) goes; lead 1 stays.
        let leads = cache.lock();
        assert_eq!(leads.len(), 5);
        assert_eq!(leads.lead_of(1, Some("u1"), None), Some(1));
        assert_eq!(leads.lead_of(1, Some("u2"), None), None);
        assert_eq!(leads.lead_of(1, Some("u9"), None), Some(9));
        drop(leads);
        for id in 10..1000 {
            cache.lock().remember(row(id, Some(&format!("u{id}"))));
            assert!(cache.lock().len() <= 10);
        }
    }

    #[test]
    fn an_anonymous_link_in_the_young_generation_replaces_an_old_one() {
        let mut leads = Leads::default();
        leads.remember(row(1, None));
        leads.link_anonymous_id(1, "a", 1);
        leads.old = std::mem::take(&mut leads.young);
        leads.remember(row(2, None));
        leads.link_anonymous_id(1, "a", 2);
        assert_eq!(leads.lead_of(1, None, Some("a")), Some(2));
        leads.young = Remembrance::default();
        assert_eq!(leads.lead_of(1, None, Some("a")), None, "the old link was dropped, not revived");
    }

    #[test]
    fn the_memory_is_dropped_when_the_generation_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            leadscore_store::Store::open_ingesting(dir.path(), leadscore_store::message_ids::DEFAULT_RECENT).unwrap();
        let cache = LeadCache::new(store.generation());
        cache.lock().remember(row(1, Some("u")));
        assert!(cache.lock().get(1).is_some());
        store.write_coherent_blocking(|_| Ok(())).unwrap();
        assert!(cache.lock().get(1).is_some(), "a coherent write keeps it");
        store.write_blocking(|_| Ok(())).unwrap();
        assert!(cache.lock().get(1).is_none(), "any other write drops it");
        cache.lock().remember(row(1, Some("u")));
        let failed: Result<(), _> =
            store.write_coherent_blocking(|_| Err(leadscore_store::StoreError::Conflict("rolled back".to_string())));
        assert!(failed.is_err());
        assert!(cache.lock().get(1).is_none(), "a failed coherent write drops it");
    }
}
