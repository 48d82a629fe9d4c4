//! The model previews this process computes in the background, over every lead of a workspace
//! (the console's preview and activation pages): each one's progress while it runs, then its
//! result with the time it was computed. Kept in memory, a few at most (the oldest forgotten),
//! keyed by workspace, version previewed and active version, so that an activation (a new active
//! version) never shows a result against another. A job learns at every batch whether it is still
//! wanted: one forgotten or replaced stops.

use std::sync::{Arc, Mutex};

use crate::preview::Preview;

/// Previews kept at most; starting one more forgets the oldest.
const KEPT: usize = 8;

/// A finished preview is computed again once it is this old (15 minutes), as leads and their
/// events changed meanwhile.
pub const MAX_AGE_MS: i64 = 15 * 60_000;

/// What a preview compares: a workspace's version (its model id) against its active one (`None`
/// without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub workspace_id: i64,
    pub candidate_id: i64,
    pub active_id: Option<i64>,
}

/// Where a preview stands.
#[derive(Clone)]
pub enum Status {
    Running { done: u64, total: u64, started_at: i64 },
    Finished { preview: Arc<Preview>, computed_at: i64 },
    Failed { message: String, at: i64 },
}

impl Status {
    /// Whether it must be computed again: failed, or finished before `changed_at` (the last
    /// activation or rollback: the stored scores it counted against changed) or more than
    /// [`MAX_AGE_MS`] before `now`.
    pub fn is_stale(&self, changed_at: i64, now: i64) -> bool {
        match self {
            Status::Running { .. } => false,
            Status::Finished { computed_at, .. } => *computed_at < changed_at || now - computed_at > MAX_AGE_MS,
            Status::Failed { .. } => true,
        }
    }
}

struct Entry {
    key: Key,
    /// Which job the entry is: a job replaced by another one for the same key stops.
    job: u64,
    status: Status,
}

#[derive(Default)]
pub struct PreviewJobs {
    /// Oldest first.
    entries: Mutex<Vec<Entry>>,
    next_job: Mutex<u64>,
}

impl PreviewJobs {
    pub fn status(&self, key: Key) -> Option<Status> {
        let entries = self.entries.lock().ok()?;
        entries.iter().find(|entry| entry.key == key).map(|entry| entry.status.clone())
    }

    /// Records a new job for `key`, over `total` leads, replacing what was kept for it (a running job of it stops at
    /// its next batch) and forgetting the oldest entry when too many are kept; returns its id.
    pub fn start(&self, key: Key, total: u64, now: i64) -> u64 {
        let job = self.next_job.lock().map_or(0, |mut next| {
            *next += 1;
            *next
        });
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|entry| entry.key != key);
            if entries.len() >= KEPT {
                entries.remove(0);
            }
            entries.push(Entry { key, job, status: Status::Running { done: 0, total, started_at: now } });
        }
        job
    }

    /// Sets the status of job `job`; `false` when it is no longer wanted (forgotten or
    /// replaced), and then it should stop.
    pub fn update(&self, job: u64, status: Status) -> bool {
        let Ok(mut entries) = self.entries.lock() else { return false };
        match entries.iter_mut().find(|entry| entry.job == job) {
            Some(entry) => {
                entry.status = status;
                true
            }
            None => false,
        }
    }

    /// Job `job`'s progress: `done` leads compared (leads added since it started may take it
    /// past the total it started with).
    pub fn progress(&self, job: u64, done: u64) -> bool {
        let Ok(mut entries) = self.entries.lock() else { return false };
        match entries.iter_mut().find(|entry| entry.job == job) {
            Some(Entry { status: Status::Running { done: d, total: t, .. }, .. }) => {
                (*d, *t) = (done, (*t).max(done));
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(candidate_id: i64) -> Key {
        Key { workspace_id: 1, candidate_id, active_id: Some(1) }
    }

    fn finished(at: i64) -> Status {
        let preview = Preview {
            version: 2,
            compared_with: Some(1),
            leads: 0,
            active: Default::default(),
            candidate: Default::default(),
            leads_changing_tier: 0,
            changes: Vec::new(),
            consequences: crate::preview::Consequences { moves_to_mql: 0, webhook_notifications: Default::default() },
        };
        Status::Finished { preview: Arc::new(preview), computed_at: at }
    }

    #[test]
    fn a_replaced_or_forgotten_job_is_told_to_stop_and_the_oldest_is_forgotten() {
        let jobs = PreviewJobs::default();
        let first = jobs.start(key(2), 100, 0);
        assert!(jobs.progress(first, 10));
        assert!(matches!(jobs.status(key(2)), Some(Status::Running { done: 10, total: 100, .. })));
        let again = jobs.start(key(2), 100, 1);
        assert!(!jobs.progress(first, 20), "a job replaced for its key stops");
        assert!(jobs.update(again, finished(5)));
        assert!(matches!(jobs.status(key(2)), Some(Status::Finished { computed_at: 5, .. })));
        assert!(jobs.status(Key { active_id: Some(3), ..key(2) }).is_none(), "another active version");
        for candidate in 3..3 + KEPT as i64 {
            jobs.start(key(candidate), 100, 2);
        }
        assert!(jobs.status(key(2)).is_none(), "the oldest is forgotten");
        assert!(!jobs.update(again, finished(6)));
        assert!(jobs.status(key(3)).is_some());
    }

    #[test]
    fn a_result_is_stale_after_an_activation_or_its_age_and_a_failure_always() {
        assert!(!finished(1_000).is_stale(500, 1_000 + MAX_AGE_MS));
        assert!(finished(1_000).is_stale(1_001, 2_000), "the active version changed after it");
        assert!(finished(1_000).is_stale(0, 1_001 + MAX_AGE_MS), "too old");
        assert!(Status::Failed { message: String::new(), at: 0 }.is_stale(0, 0));
        assert!(!Status::Running { done: 0, total: 0, started_at: 0 }.is_stale(10, 10 + MAX_AGE_MS));
    }
}
