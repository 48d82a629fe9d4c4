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

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use leadscore_core::LeadState;
use leadscore_store::Generation;
use leadscore_store::leads::LeadRow;
use leadscore_store::scores::StoredScores;

/// Leads remembered at most; past this the memory starts over (at about 2 KB a lead).
const CAPACITY: usize = 20_000;

pub struct LeadCache {
    generation: Generation,
    leads: Mutex<Leads>,
}

/// The remembered leads, valid for one generation of the store.
#[derive(Default)]
pub struct Leads {
    generation: u64,
    /// Workspace id, then user id or anonymous id, to lead id. A user id entry counts only while
    /// the lead's row still has that user id; an anonymous id entry only while its lead is
    /// remembered (a merged lead is forgotten, and the links that named it are stale).
    by_user: HashMap<i64, HashMap<String, i64>>,
    by_anonymous: HashMap<i64, HashMap<String, i64>>,
    entries: HashMap<i64, Remembered>,
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
        LeadCache { generation, leads: Mutex::new(Leads::default()) }
    }

    /// The remembered leads, emptied first if anything may have changed them since they were
    /// remembered, or if there are too many.
    pub fn lock(&self) -> MutexGuard<'_, Leads> {
        let mut leads = self.leads.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let generation = self.generation.current();
        if leads.generation != generation || leads.entries.len() > CAPACITY {
            *leads = Leads { generation, ..Leads::default() };
        }
        leads
    }
}

impl Leads {
    /// The remembered lead of a message with these ids, when finding it in the database would
    /// change nothing: its user id (if any) is the lead's, and its anonymous id (if any) is
    /// linked to the same lead.
    pub fn lead_of(&self, workspace_id: i64, user_id: Option<&str>, anonymous_id: Option<&str>) -> Option<i64> {
        let by_anonymous = |anonymous_id: &str| self.by_anonymous.get(&workspace_id)?.get(anonymous_id).copied();
        let id = match (user_id, anonymous_id) {
            (Some(user_id), anonymous_id) => {
                let id = *self.by_user.get(&workspace_id)?.get(user_id)?;
                let linked = anonymous_id.is_none_or(|anonymous_id| by_anonymous(anonymous_id) == Some(id));
                (linked && self.entries.get(&id)?.row.user_id.as_deref() == Some(user_id)).then_some(id)?
            }
            (None, Some(anonymous_id)) => by_anonymous(anonymous_id)?,
            (None, None) => return None,
        };
        self.entries.contains_key(&id).then_some(id)
    }

    pub fn get(&self, id: i64) -> Option<&Remembered> {
        self.entries.get(&id)
    }

    pub fn get_mut(&mut self, id: i64) -> Option<&mut Remembered> {
        self.entries.get_mut(&id)
    }

    /// Remembers a lead as just read, created or changed (and saved or about to be), found by its
    /// user id. An already remembered lead keeps its parsed state and scores: the row's state and
    /// scores are saved only with them.
    pub fn remember(&mut self, row: LeadRow) {
        if let Some(user_id) = &row.user_id {
            self.by_user.entry(row.workspace_id).or_default().insert(user_id.clone(), row.id);
        }
        match self.entries.get_mut(&row.id) {
            Some(entry) => entry.row = row,
            None => {
                self.entries.insert(row.id, Remembered { row, state: None, scores: None });
            }
        }
    }

    /// Records that `anonymous_id` is linked to the lead `lead_id`.
    pub fn link_anonymous_id(&mut self, workspace_id: i64, anonymous_id: &str, lead_id: i64) {
        self.by_anonymous.entry(workspace_id).or_default().insert(anonymous_id.to_string(), lead_id);
    }

    /// Forgets a lead (merged into another: the ids that found it are stale).
    pub fn forget(&mut self, id: i64) {
        self.entries.remove(&id);
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
