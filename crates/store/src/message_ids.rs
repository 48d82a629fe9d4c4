//! Idempotent ingestion: which message ids each workspace has stored, so that a retry is told
//! from a new message.
//!
//! A unique index over random message ids (Segment's libraries send UUIDs) takes each insert at
//! a random place, so every commit wrote about one index page per event, and the checkpoint
//! wrote it again. Instead the ids stored lately are kept in a table in the writer connection's
//! memory (`temp.recent_message_ids`) and moved into the on-disk index (`message_ids`) by sweeps
//! in key order, one slice per write transaction: a sweep writes each index page once for all
//! the ids that fall on it.
//!
//! - The in-memory table takes part in the writer's transactions and savepoints: a write that is
//!   rolled back forgets its ids together with its events.
//! - After a restart it is rebuilt from the events stored after the last completed sweep began
//!   (`message_ids_merged.through`): the events table is the log it is recovered from.
//! - So only one process may store events in a data directory, the one that holds its lock (see
//!   [`crate::Store::open_ingesting`]); other processes' writers refuse to store events.

use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;

/// How many ids are kept in memory by default before a sweep starts moving them to disk: about
/// 20 MiB. More memory means fewer index pages written per event (a sweep writes at most every
/// page of the index once, whatever the number of ids it moves), and a longer rebuild at start.
pub const DEFAULT_RECENT: usize = 200_000;

/// A slice moves at least this many ids, and twice as many as the last transaction stored, so
/// that a sweep always gains on the arrivals.
const MIN_SLICE: usize = 256;

const CREATE_RECENT: &str = "CREATE TEMP TABLE IF NOT EXISTS recent_message_ids (
        workspace_id  INTEGER NOT NULL,
        message_id    TEXT NOT NULL,
        PRIMARY KEY (workspace_id, message_id)
    ) WITHOUT ROWID";

/// Whether the workspace has stored this message id.
pub fn is_stored(connection: &Connection, workspace_id: i64, message_id: &str) -> Result<bool, StoreError> {
    Ok(connection
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM temp.recent_message_ids WHERE workspace_id = ?1 AND message_id = ?2)
                 OR EXISTS (SELECT 1 FROM main.message_ids WHERE workspace_id = ?1 AND message_id = ?2)",
        )?
        .query_row(params![workspace_id, message_id], |row| row.get(0))?)
}

/// Records that the workspace stores this message id now; false if it already had.
pub(crate) fn record(connection: &Connection, workspace_id: i64, message_id: &str) -> Result<bool, StoreError> {
    let changed = connection
        .prepare_cached(
            "INSERT INTO temp.recent_message_ids (workspace_id, message_id) SELECT ?1, ?2
             WHERE NOT EXISTS (SELECT 1 FROM main.message_ids WHERE workspace_id = ?1 AND message_id = ?2)
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![workspace_id, message_id])?;
    Ok(changed == 1)
}

/// Makes the writer of a store that does not hold the data directory's lock refuse to store
/// events: its in-memory table would miss the ids the ingesting process keeps in its own.
pub(crate) fn refuse_ingestion(connection: &Connection) -> Result<(), StoreError> {
    connection.execute_batch(&format!(
        "{CREATE_RECENT};
         CREATE TEMP TRIGGER IF NOT EXISTS only_the_ingesting_process_stores_events
         BEFORE INSERT ON recent_message_ids BEGIN
             SELECT RAISE(ABORT, 'this process cannot store events: another leadscore process (leadscore serve) \
                 holds the data directory''s lock; send events to it instead');
         END"
    ))?;
    Ok(())
}

/// The ingesting writer's side: rebuilds the in-memory ids at start, then moves them to disk.
#[derive(Debug)]
pub(crate) struct Sweeper {
    /// Above this many ids in memory, a sweep starts.
    keep: usize,
    /// Ids in memory, about: ids moved by a slice are counted exactly, arrivals by events stored.
    recent: usize,
    /// The newest event id after the last transaction.
    newest_event: i64,
    /// Events the last transaction stored.
    arrived: usize,
    sweep: Option<Sweep>,
}

#[derive(Debug, Clone)]
struct Sweep {
    /// Every event up to this id had its message id in memory or on disk when the sweep began, so
    /// once it ends they are all on disk.
    began_after: i64,
    /// The last key moved; the next slice starts after it.
    cursor: Option<(i64, String)>,
}

/// What a slice did in a transaction that may still be rolled back.
#[derive(Debug)]
pub(crate) struct Slice {
    moved: usize,
    /// The sweep as it stands after the slice; `None` when the slice ended it.
    sweep: Option<Sweep>,
}

impl Sweeper {
    /// Rebuilds the in-memory ids from the events stored since the last completed sweep began.
    pub(crate) fn start(connection: &Connection, keep: usize) -> Result<Sweeper, StoreError> {
        connection.execute_batch(&format!("{CREATE_RECENT}; DELETE FROM temp.recent_message_ids; BEGIN"))?;
        let rebuilt = (|| {
            let through: i64 = connection.query_row("SELECT through FROM message_ids_merged", [], |r| r.get(0))?;
            let recent = connection.execute(
                "INSERT INTO temp.recent_message_ids (workspace_id, message_id)
                 SELECT workspace_id, message_id FROM events WHERE id > ?1 ON CONFLICT DO NOTHING",
                [through],
            )?;
            let newest_event = newest_event(connection)?;
            Ok::<_, StoreError>(Sweeper { keep: keep.max(1), recent, newest_event, arrived: 0, sweep: None })
        })();
        connection.execute_batch(if rebuilt.is_ok() { "COMMIT" } else { "ROLLBACK" })?;
        rebuilt
    }

    /// Inside the writer's transaction, before its jobs: moves the next slice of ids to disk if a
    /// sweep is under way or due.
    pub(crate) fn move_slice(&self, connection: &Connection) -> Result<Option<Slice>, StoreError> {
        let sweep = match &self.sweep {
            Some(sweep) => sweep.clone(),
            None if self.recent > self.keep => Sweep { began_after: self.newest_event, cursor: None },
            None => return Ok(None),
        };
        let (after_workspace, after_id) = sweep.cursor.clone().unwrap_or((i64::MIN, String::new()));
        let size = (2 * self.arrived).max(MIN_SLICE);
        // The slice ends at its `size`-th id, or at the end of the key range (the sweep ends).
        let last: Option<(i64, String)> = connection
            .prepare_cached(
                "SELECT workspace_id, message_id FROM temp.recent_message_ids
                 WHERE (workspace_id, message_id) > (?1, ?2) ORDER BY workspace_id, message_id LIMIT 1 OFFSET ?3",
            )?
            .query_row(params![after_workspace, after_id, size as i64 - 1], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let (until_workspace, until_id) = last.clone().unwrap_or((i64::MAX, String::new()));
        // (i64::MAX, '') is above every key: workspace ids are far smaller.
        let range = "(workspace_id, message_id) > (?1, ?2) AND (workspace_id, message_id) <= (?3, ?4)";
        let bounds = params![after_workspace, after_id, until_workspace, until_id];
        connection
            .prepare_cached(&format!(
                "INSERT INTO main.message_ids (workspace_id, message_id)
                 SELECT workspace_id, message_id FROM temp.recent_message_ids WHERE {range}
                 ORDER BY workspace_id, message_id ON CONFLICT DO NOTHING"
            ))?
            .execute(bounds)?;
        let moved = connection
            .prepare_cached(&format!("DELETE FROM temp.recent_message_ids WHERE {range}"))?
            .execute(bounds)?;
        if last.is_none() {
            connection.prepare_cached("UPDATE message_ids_merged SET through = ?1")?.execute([sweep.began_after])?;
        }
        let sweep = last.map(|cursor| Sweep { cursor: Some(cursor), ..sweep });
        Ok(Some(Slice { moved, sweep }))
    }

    /// After the writer's transaction: counts what it stored and, if it committed, what its slice
    /// moved.
    pub(crate) fn finished(&mut self, connection: &Connection, committed_slice: Option<Slice>) {
        let newest = newest_event(connection).unwrap_or(self.newest_event);
        self.arrived = usize::try_from(newest - self.newest_event).unwrap_or(0);
        self.newest_event = newest;
        self.recent += self.arrived;
        if let Some(slice) = committed_slice {
            self.recent = self.recent.saturating_sub(slice.moved);
            self.sweep = slice.sweep;
        }
    }
}

fn newest_event(connection: &Connection) -> Result<i64, StoreError> {
    Ok(connection.prepare_cached("SELECT coalesce(max(id), 0) FROM events")?.query_row([], |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Inserted, NewEvent, insert};
    use crate::{Store, leads, workspaces};
    use proptest::prelude::*;

    /// Stores one event per id in one transaction, answering whether each was new.
    fn store_events(store: &Store, ids: Vec<String>) -> Result<Vec<bool>, StoreError> {
        store.write_coherent_blocking(move |c| {
            let workspace = workspaces::find_or_create(c, "w")?;
            let mut lead = match leads::by_user_id(c, workspace.id, "u")? {
                Some(lead) => lead,
                None => leads::create(c, workspace.id, Some("u"), 0)?,
            };
            let none = serde_json::Map::new();
            let mut new = Vec::new();
            for id in &ids {
                let event = NewEvent { message_id: id, event_type: "visit", at: 1, received_at: 1, properties: &none };
                new.push(insert(c, &mut lead, &event)? == Inserted::New);
            }
            leads::save(c, &lead)?;
            Ok(new)
        })
    }

    /// (ids on disk, ids in memory, events stored, `message_ids_merged.through`)
    fn counts(store: &Store) -> (i64, i64, i64, i64) {
        store
            .write_blocking(|c| {
                Ok(c.query_row(
                    "SELECT (SELECT count(*) FROM message_ids), (SELECT count(*) FROM temp.recent_message_ids),
                            (SELECT count(*) FROM events), (SELECT through FROM message_ids_merged)",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )?)
            })
            .unwrap()
    }

    fn ids(range: std::ops::Range<usize>) -> Vec<String> {
        range.map(|i| format!("{:08x}", (i as u32).wrapping_mul(2_654_435_761))).collect()
    }

    /// Sweeps move ids to disk while more arrive; every id, on disk or in memory, refuses its
    /// retry, before and after a restart that rebuilds the memory from the events.
    #[test]
    fn ids_moved_to_disk_refuse_retries_and_a_restart_rebuilds_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_ingesting(dir.path(), 20).unwrap();
        for batch in 0..40 {
            let new = store_events(&store, ids(batch * 10..batch * 10 + 10)).unwrap();
            assert!(new.iter().all(|&n| n), "batch {batch}: {new:?}");
        }
        let (on_disk, in_memory, events, through) = counts(&store);
        assert_eq!(events, 400);
        assert!(on_disk > 300 && in_memory > 0 && through > 0, "{on_disk} {in_memory} {through}");
        assert!(on_disk + in_memory >= 400, "{on_disk} + {in_memory}");
        assert!(store_events(&store, ids(0..400)).unwrap().iter().all(|&n| !n));
        drop(store);

        let store = Store::open_ingesting(dir.path(), 20).unwrap();
        let (_, in_memory_after_restart, ..) = counts(&store);
        assert_eq!(in_memory_after_restart, 400 - through, "the events after `through` are rebuilt");
        assert!(store_events(&store, ids(0..400)).unwrap().iter().all(|&n| !n));
        assert_eq!(store_events(&store, ids(400..401)).unwrap(), [true]);
        assert_eq!(counts(&store).2, 401);
    }

    /// A write that fails is rolled back with the ids it recorded: its retry is new.
    #[test]
    fn a_rolled_back_write_forgets_its_ids() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_ingesting(dir.path(), 20).unwrap();
        let failed: Result<(), StoreError> = store.write_blocking(|c| {
            let workspace = workspaces::find_or_create(c, "w")?;
            let mut lead = leads::create(c, workspace.id, Some("u"), 0)?;
            let none = serde_json::Map::new();
            let event = NewEvent { message_id: "m", event_type: "visit", at: 1, received_at: 1, properties: &none };
            assert_eq!(insert(c, &mut lead, &event)?, Inserted::New);
            Err(StoreError::Conflict("later".into()))
        });
        assert!(failed.is_err());
        assert_eq!(store_events(&store, vec!["m".into(), "m".into()]).unwrap(), [true, false]);
    }

    /// Only the process holding the lock stores events; another may still write the rest.
    #[test]
    fn only_the_store_holding_the_lock_stores_events() {
        let dir = tempfile::tempdir().unwrap();
        let ingesting = Store::open_ingesting(dir.path(), DEFAULT_RECENT).unwrap();
        let again = Store::open_ingesting(dir.path(), DEFAULT_RECENT).err().unwrap();
        assert!(matches!(again, StoreError::InUse { .. }), "{again}");
        assert!(again.to_string().contains("leadscore.lock"), "{again}");
        let beside = Store::open(dir.path()).unwrap();
        let refused = store_events(&beside, vec!["m".into()]).unwrap_err().to_string();
        assert!(refused.contains("cannot store events: another leadscore process"), "{refused}");
        assert_eq!(store_events(&ingesting, vec!["m".into()]).unwrap(), [true]);
        drop(ingesting);
        let next = Store::open_ingesting(dir.path(), DEFAULT_RECENT).unwrap();
        assert_eq!(store_events(&next, vec!["m".into()]).unwrap(), [false]);
    }

    #[derive(Debug, Clone)]
    enum Step {
        /// Store these ids (out of a small pool) in one transaction.
        Store(Vec<u8>),
        /// Store these ids, then fail: nothing of it stays.
        Fail(Vec<u8>),
        Restart,
    }

    fn step() -> impl Strategy<Value = Step> {
        let ids = proptest::collection::vec(0u8..60, 0..12);
        prop_oneof![6 => ids.clone().prop_map(Step::Store), 1 => ids.prop_map(Step::Fail), 1 => Just(Step::Restart)]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Whatever the order of stores, failures, restarts and sweeps, an id is new exactly the
        /// first time a committed write stores it, and the events hold each stored id once.
        #[test]
        fn an_id_is_new_exactly_once(steps in proptest::collection::vec(step(), 1..30), keep in 1usize..8) {
            let dir = tempfile::tempdir().unwrap();
            let mut store = Store::open_ingesting(dir.path(), keep).unwrap();
            let mut stored = std::collections::BTreeSet::new();
            for step in steps {
                match step {
                    Step::Store(batch) => {
                        let names = batch.iter().map(|i| format!("id-{i}")).collect();
                        let new = store_events(&store, names).unwrap();
                        for (id, new) in batch.iter().zip(new) {
                            prop_assert_eq!(new, stored.insert(*id), "id {}", id);
                        }
                    }
                    Step::Fail(batch) => {
                        let names: Vec<String> = batch.iter().map(|i| format!("id-{i}")).collect();
                        let failed: Result<(), StoreError> = store.write_blocking(move |c| {
                            let workspace = workspaces::find_or_create(c, "w")?;
                            let mut lead = leads::create(c, workspace.id, None, 0)?;
                            let none = serde_json::Map::new();
                            for id in &names {
                                let event = NewEvent { message_id: id, event_type: "v", at: 1, received_at: 1, properties: &none };
                                insert(c, &mut lead, &event)?;
                            }
                            Err(StoreError::Conflict("fails".into()))
                        });
                        prop_assert!(failed.is_err());
                    }
                    Step::Restart => {
                        drop(store);
                        store = Store::open_ingesting(dir.path(), keep).unwrap();
                    }
                }
            }
            let stored_ids: Vec<String> = store
                .read_blocking(|c| {
                    Ok(c.prepare("SELECT message_id FROM events ORDER BY message_id")?
                        .query_map([], |r| r.get(0))?
                        .collect::<Result<_, _>>()?)
                })
                .unwrap();
            let mut expected: Vec<String> = stored.iter().map(|i| format!("id-{i}")).collect();
            expected.sort();
            prop_assert_eq!(stored_ids, expected);
        }
    }
}
