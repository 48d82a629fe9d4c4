//! Idempotent ingestion: which message ids each workspace has stored, so that a retry is told
//! from a new message.
//!
//! A unique index over random message ids (Segment's libraries send UUIDs) takes each insert at
//! a random place, so every commit wrote about one index page per event, and the checkpoint
//! wrote it again. Instead the ids of the newest events are kept in the writer thread's memory
//! and moved into the on-disk index (`message_ids`) by sweeps in key order, one slice at the
//! start of each write transaction: a sweep writes each index page once for all the ids that
//! fall on it. The index is keyed by a fixed hash first, so that a slice's ids are neighbours on
//! disk whatever the form of the ids.
//!
//! - The memory follows the writer's transactions: the writer tells it when a job fails (its
//!   savepoint, or the whole transaction, was rolled back) and when a transaction ends, and it
//!   forgets the ids that were rolled back. Ids a slice moved to disk leave memory only once the
//!   slice is committed.
//! - After a restart it is rebuilt from the events stored after the last completed sweep began
//!   (`message_ids_merged.through`): the events table is the log it is recovered from.
//! - So only one process may store events in a data directory, the one that holds its lock (see
//!   [`crate::Store::open_ingesting`]); any other writer refuses to store events.
//!
//! Written by hand: the memory must undo exactly what SQLite rolls back, which no cache crate
//! knows about; a table in SQLite's own memory did, but cost more than the event's insert.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Arc;

use rusqlite::{Connection, params};

use crate::StoreError;

mod filter;

/// How many ids are kept in memory by default before a sweep starts moving them to disk: about
/// 16 MB (80 bytes each). More memory means fewer index pages written per event (a sweep writes each page of
/// the index at most once, whatever the number of ids it moves), and a longer rebuild at start.
pub const DEFAULT_RECENT: usize = 200_000;

/// A slice moves at least this many ids (or as many as are kept, if fewer), and twice as many as
/// the last transaction stored, so that a sweep always gains on the arrivals.
const MIN_SLICE: usize = 256;

/// Puts an id into the on-disk index.
const INSERT_ON_DISK: &str =
    "INSERT INTO message_ids (hash, workspace_id, message_id) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING";

/// An id, ordered as in the on-disk index: (hash, workspace, message id).
type Key = (i64, i64, Arc<str>);

thread_local! {
    /// The ingesting store's writer thread's ids; `None` on every other thread, where storing an
    /// event is refused.
    static RECENT: RefCell<Option<Recent>> = const { RefCell::new(None) };
}

/// The fixed hash that orders the index: FNV-1a over the workspace id and the message id, then
/// splitmix64's finaliser so that the high bits, which order the index, are well mixed. Stored
/// in every database: never change it.
pub fn hash(workspace_id: i64, message_id: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in workspace_id.to_le_bytes().iter().chain(message_id.as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^= hash >> 31;
    hash as i64
}

/// Whether the workspace has stored this message id. Only the ingesting writer knows.
pub fn is_stored(connection: &Connection, workspace_id: i64, message_id: &str) -> Result<bool, StoreError> {
    let hash = hash(workspace_id, message_id);
    RECENT.with_borrow(|recent| recent.as_ref().ok_or_else(refused)?.knows(connection, hash, workspace_id, message_id))
}

/// Records that the workspace stores this message id now; false if it already had.
pub(crate) fn record(connection: &Connection, workspace_id: i64, message_id: &str) -> Result<bool, StoreError> {
    let hash = hash(workspace_id, message_id);
    RECENT.with_borrow_mut(|recent| {
        let recent = recent.as_mut().ok_or_else(refused)?;
        if recent.knows(connection, hash, workspace_id, message_id)? {
            return Ok(false);
        }
        let key: Key = (hash, workspace_id, Arc::from(message_id));
        recent.added.push(key.clone());
        recent.ids.insert(key);
        Ok(true)
    })
}

/// Forgets an id [`record`] recorded in this transaction, whose event was not stored after all.
pub(crate) fn forget(workspace_id: i64, message_id: &str) {
    let hash = hash(workspace_id, message_id);
    RECENT.with_borrow_mut(|recent| {
        let Some(recent) = recent else { return };
        let is_it = |key: &Key| key.0 == hash && key.1 == workspace_id && &*key.2 == message_id;
        if let Some(position) = recent.added.iter().rposition(is_it) {
            let key = recent.added.remove(position);
            recent.ids.remove(&key);
        }
    })
}

fn refused() -> StoreError {
    StoreError::Conflict(
        "this process cannot store events: only the leadscore process that holds the data directory's lock \
         (leadscore serve) stores them; send events to it instead"
            .to_string(),
    )
}

fn on_disk(connection: &Connection, hash: i64, workspace_id: i64, message_id: &str) -> Result<bool, StoreError> {
    let mut statement = connection
        .prepare_cached("SELECT 1 FROM message_ids WHERE hash = ?1 AND workspace_id = ?2 AND message_id = ?3")?;
    Ok(statement.exists(params![hash, workspace_id, message_id])?)
}

/// Fills the on-disk index from the stored events (the migration that creates it), in sorted
/// chunks so that memory stays bounded.
pub(crate) fn index_stored_events(connection: &Connection) -> Result<(), StoreError> {
    const CHUNK: usize = 500_000;
    let mut insert = connection.prepare(INSERT_ON_DISK)?;
    let mut flush = |chunk: &mut Vec<(i64, i64, String)>| -> Result<(), StoreError> {
        chunk.sort_unstable();
        for (hash, workspace_id, message_id) in chunk.drain(..) {
            insert.execute(params![hash, workspace_id, message_id])?;
        }
        Ok(())
    };
    let mut select = connection.prepare("SELECT workspace_id, message_id FROM events")?;
    let mut rows = select.query([])?;
    let mut chunk = Vec::new();
    while let Some(row) = rows.next()? {
        let (workspace_id, message_id): (i64, String) = (row.get(0)?, row.get(1)?);
        chunk.push((hash(workspace_id, &message_id), workspace_id, message_id));
        if chunk.len() == CHUNK {
            flush(&mut chunk)?;
        }
    }
    flush(&mut chunk)
}

/// The ingesting writer's ids in memory, and the sweep that moves them to disk.
#[derive(Debug)]
pub(crate) struct Recent {
    ids: BTreeSet<Key>,
    /// Above this many ids in memory, a sweep starts.
    keep: usize,
    /// Ids the open transaction added, to forget if it is rolled back.
    added: Vec<Key>,
    /// Where the running job's additions start in `added`.
    job_start: usize,
    /// Ids (events) the last transaction stored.
    arrived: usize,
    sweep: Option<Sweep>,
    /// What the open transaction's slice moved to disk.
    slice: Option<Slice>,
    /// The lowest message id, for lookups' lower bounds.
    empty: Arc<str>,
    /// Which ids may be on disk.
    filter: filter::DiskFilter,
}

#[derive(Debug, Clone)]
struct Sweep {
    /// Every event up to this id had its message id in memory or on disk when the sweep began, so
    /// once the sweep ends they are all on disk.
    began_after: i64,
    /// The last key moved; the next slice starts after it.
    cursor: Option<Key>,
}

#[derive(Debug)]
struct Slice {
    moved: Vec<Key>,
    /// The sweep as it stands after the slice; `None` when the slice ended it.
    sweep: Option<Sweep>,
}

impl Recent {
    /// Rebuilds the ids in memory from the events stored since the last completed sweep began.
    pub(crate) fn rebuild(connection: &Connection, keep: usize) -> Result<Recent, StoreError> {
        connection.execute_batch("BEGIN")?;
        let rebuilt = (|| {
            let through: i64 = connection.query_row("SELECT through FROM message_ids_merged", [], |r| r.get(0))?;
            let mut statement = connection.prepare("SELECT workspace_id, message_id FROM events WHERE id > ?1")?;
            let ids = statement
                .query_map([through], |row| {
                    let (workspace_id, message_id): (i64, String) = (row.get(0)?, row.get(1)?);
                    Ok((hash(workspace_id, &message_id), workspace_id, Arc::from(message_id)))
                })?
                .collect::<Result<BTreeSet<Key>, _>>()?;
            Ok::<_, StoreError>(Recent {
                ids,
                keep: keep.max(1),
                added: Vec::new(),
                job_start: 0,
                arrived: 0,
                sweep: None,
                slice: None,
                empty: Arc::from(""),
                // At most one id per event is on disk.
                filter: filter::DiskFilter::new(connection.path(), newest_event(connection)?.max(0) as u64),
            })
        })();
        connection.execute_batch(if rebuilt.is_ok() { "COMMIT" } else { "ROLLBACK" })?;
        rebuilt
    }

    fn holds(&self, hash: i64, workspace_id: i64, message_id: &str) -> bool {
        let from = (hash, workspace_id, self.empty.clone());
        self.ids.range(from..).take_while(|key| key.0 == hash && key.1 == workspace_id).any(|key| &*key.2 == message_id)
    }

    /// Whether the id is stored: in memory, or on disk (the filter first, then the index if the
    /// filter cannot say no).
    fn knows(
        &self,
        connection: &Connection,
        hash: i64,
        workspace_id: i64,
        message_id: &str,
    ) -> Result<bool, StoreError> {
        Ok(self.holds(hash, workspace_id, message_id)
            || (self.filter.may_hold(hash) && on_disk(connection, hash, workspace_id, message_id)?))
    }

    /// Moves the next slice of ids to disk if a sweep is under way or due.
    fn move_slice(&mut self, connection: &Connection) -> Result<(), StoreError> {
        let sweep = match &self.sweep {
            Some(sweep) => sweep.clone(),
            None if self.ids.len() > self.keep => Sweep { began_after: newest_event(connection)?, cursor: None },
            None => return Ok(()),
        };
        let size = (2 * self.arrived).max(MIN_SLICE.min(self.keep));
        let after = match &sweep.cursor {
            Some(cursor) => Bound::Excluded(cursor),
            None => Bound::Unbounded,
        };
        let moved: Vec<Key> = self.ids.range((after, Bound::Unbounded)).take(size).cloned().collect();
        let mut insert = connection.prepare_cached(INSERT_ON_DISK)?;
        for (hash, workspace_id, message_id) in &moved {
            insert.execute(params![hash, workspace_id, &**message_id])?;
            // Before the commit: should it fail, the filter holds a few ids too many, which
            // costs only probes.
            self.filter.moved_to_disk(*hash);
        }
        let ended = moved.len() < size;
        if ended {
            connection.prepare_cached("UPDATE message_ids_merged SET through = ?1")?.execute([sweep.began_after])?;
        }
        let sweep = (!ended).then(|| Sweep { cursor: moved.last().cloned(), ..sweep });
        self.slice = Some(Slice { moved, sweep });
        Ok(())
    }

    fn forget_since(&mut self, start: usize) {
        for key in self.added.drain(start..) {
            self.ids.remove(&key);
        }
    }
}

/// Gives the calling thread (the ingesting store's writer) its ids.
pub(crate) fn install(recent: Recent) {
    RECENT.set(Some(recent));
}

/// A write transaction began: moves the next slice to disk, if one is due.
pub(crate) fn transaction_began(connection: &Connection) -> Result<(), StoreError> {
    RECENT.with_borrow_mut(|recent| match recent {
        Some(recent) => {
            recent.filter.poll();
            recent.move_slice(connection)
        }
        None => Ok(()),
    })
}

/// A job of the transaction starts.
pub(crate) fn job_started() {
    RECENT.with_borrow_mut(|recent| {
        if let Some(recent) = recent {
            recent.job_start = recent.added.len();
        }
    })
}

/// The job failed, so what it wrote was rolled back: its ids are forgotten.
pub(crate) fn job_failed() {
    RECENT.with_borrow_mut(|recent| {
        if let Some(recent) = recent {
            recent.forget_since(recent.job_start);
        }
    })
}

/// The transaction ended: committed, its slice's ids leave memory; rolled back, its ids are
/// forgotten and its slice never happened.
pub(crate) fn transaction_ended(committed: bool) {
    RECENT.with_borrow_mut(|recent| {
        let Some(recent) = recent else { return };
        let slice = recent.slice.take();
        recent.arrived = if committed { recent.added.len() } else { 0 };
        if committed {
            recent.added.clear();
            if let Some(slice) = slice {
                for key in &slice.moved {
                    recent.ids.remove(key);
                }
                recent.sweep = slice.sweep;
            }
        } else {
            recent.forget_since(0);
        }
        recent.job_start = 0;
    })
}

fn newest_event(connection: &Connection) -> Result<i64, StoreError> {
    Ok(connection.prepare_cached("SELECT coalesce(max(id), 0) FROM events")?.query_row([], |r| r.get(0))?)
}

/// Ids in memory (for tests).
#[cfg(test)]
fn in_memory() -> usize {
    RECENT.with_borrow(|recent| recent.as_ref().map_or(0, |r| r.ids.len()))
}

/// Whether the filter of ids on disk is built (for tests).
#[cfg(test)]
fn filter_ready() -> bool {
    RECENT.with_borrow(|recent| recent.as_ref().is_some_and(|r| r.filter.ready()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Inserted, NewEvent, insert};
    use crate::{Store, leads, workspaces};
    use proptest::prelude::*;

    /// Every database orders its index by this hash: values computed independently (FNV-1a and
    /// splitmix64's finaliser, in Python) pin it, so that a change to it cannot pass unnoticed.
    #[test]
    fn the_index_hash_never_changes() {
        assert_eq!(hash(1, "m1"), -7_076_963_462_212_141_874);
        assert_eq!(hash(42, "550e8400-e29b-41d4-a716-446655440000"), -958_511_864_021_780_006);
        assert_eq!(hash(7, ""), -5_898_249_207_013_735_906);
    }

    /// Stores one event per id in one transaction, answering whether each was new.
    fn store_events(store: &Store, ids: Vec<String>) -> Result<Vec<bool>, StoreError> {
        store.write_coherent_blocking(move |c| {
            let workspace = workspaces::find_or_create(c, "w", crate::now_ms())?;
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
                let (on_disk, events, through) = c.query_row(
                    "SELECT (SELECT count(*) FROM message_ids), (SELECT count(*) FROM events),
                            (SELECT through FROM message_ids_merged)",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?;
                Ok((on_disk, in_memory() as i64, events, through))
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
        // The same once the filter of the ids on disk is built (each write looks for it).
        let started = std::time::Instant::now();
        while !store.write_blocking(|_| Ok(filter_ready())).unwrap() {
            assert!(started.elapsed().as_secs() < 30, "the filter was never built");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
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
            let workspace = workspaces::find_or_create(c, "w", crate::now_ms())?;
            let mut lead = leads::create(c, workspace.id, Some("u"), 0)?;
            let none = serde_json::Map::new();
            let event = NewEvent { message_id: "m", event_type: "visit", at: 1, received_at: 1, properties: &none };
            assert_eq!(insert(c, &mut lead, &event)?, Inserted::New);
            Err(StoreError::Conflict("later".into()))
        });
        assert!(failed.is_err());
        assert_eq!(store_events(&store, vec!["m".into(), "m".into()]).unwrap(), [true, false]);
    }

    /// An event that could not be stored leaves no id behind, even when the caller goes on.
    #[test]
    fn an_event_that_fails_to_store_leaves_no_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_ingesting(dir.path(), DEFAULT_RECENT).unwrap();
        store
            .write_blocking(|c| {
                let workspace = workspaces::find_or_create(c, "w", crate::now_ms())?;
                let mut no_such_lead = leads::create(c, workspace.id, None, 0)?;
                no_such_lead.id = 999_999;
                let none = serde_json::Map::new();
                let event = NewEvent { message_id: "m", event_type: "visit", at: 1, received_at: 1, properties: &none };
                assert!(insert(c, &mut no_such_lead, &event).is_err(), "the lead does not exist");
                Ok(())
            })
            .unwrap();
        assert_eq!(store_events(&store, vec!["m".into()]).unwrap(), [true]);
    }

    /// In a shared transaction, a job that fails is rolled back to its savepoint with its ids;
    /// the others keep theirs.
    #[test]
    fn a_job_rolled_back_to_its_savepoint_forgets_its_ids() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_ingesting(dir.path(), DEFAULT_RECENT).unwrap();
        store_events(&store, vec![]).unwrap();
        let slow = store.hold_writer(|_| Ok(()));
        let one = |id: &'static str, fail: bool| {
            move |c: &Connection| {
                let mut lead = leads::by_user_id(c, 1, "u")?.unwrap();
                let none = serde_json::Map::new();
                let event = NewEvent { message_id: id, event_type: "visit", at: 1, received_at: 1, properties: &none };
                assert_eq!(insert(c, &mut lead, &event)?, Inserted::New);
                leads::save(c, &lead)?;
                if fail { Err(StoreError::Conflict("fails".into())) } else { Ok(()) }
            }
        };
        let failing = store.submit(one("a", true), crate::writer::PLAIN).unwrap();
        let kept = store.submit(one("b", false), crate::writer::COHERENT).unwrap();
        assert!(slow.blocking_recv().unwrap().is_ok());
        assert!(failing.blocking_recv().unwrap().is_err());
        assert!(kept.blocking_recv().unwrap().is_ok());
        assert_eq!(store_events(&store, vec!["a".into(), "b".into()]).unwrap(), [true, false]);
    }

    /// When SQLite rolls a whole transaction back by itself (here a full database), the writer
    /// runs nothing more in it, and its ids are forgotten: the retry is stored, once.
    #[test]
    fn a_transaction_the_database_rolls_back_forgets_its_ids() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_ingesting(dir.path(), 1).unwrap();
        store_events(&store, vec!["before".into()]).unwrap();
        store
            .write_blocking(|c| {
                let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
                c.pragma_update(None, "max_page_count", pages + 20)?;
                Ok(())
            })
            .unwrap();
        let slow = store.hold_writer(|_| Ok(()));
        let fills_the_disk = store
            .submit(
                |c: &Connection| {
                    c.execute("INSERT INTO workspaces (name, created_at) VALUES (hex(randomblob(400000)), 0)", [])?;
                    Ok(())
                },
                crate::writer::PLAIN,
            )
            .unwrap();
        let store_m = {
            let store = store.clone();
            std::thread::spawn(move || store_events(&store, vec!["m".into()]))
        };
        assert!(slow.blocking_recv().unwrap().is_ok());
        assert!(fills_the_disk.blocking_recv().unwrap().is_err());
        let answer = store_m.join().unwrap();
        assert!(answer.is_err(), "{answer:?}");
        store.write_blocking(|c| Ok(c.pragma_update(None, "max_page_count", 1_000_000_000)?)).unwrap();
        assert_eq!(store_events(&store, vec!["m".into(), "m".into()]).unwrap(), [true, false]);
        let stored: i64 = store
            .read_blocking(|c| Ok(c.query_row("SELECT count(*) FROM events WHERE message_id = 'm'", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(stored, 1);
    }

    /// Only the process holding the lock stores events; another may still write the rest.
    #[test]
    fn only_the_store_holding_the_lock_stores_events() {
        let dir = tempfile::tempdir().unwrap();
        let ingesting = Store::open_ingesting(dir.path(), DEFAULT_RECENT).unwrap();
        let again = Store::open_ingesting(dir.path(), DEFAULT_RECENT).err().unwrap();
        assert!(matches!(again, StoreError::InUse { .. }), "{again}");
        assert!(again.to_string().contains("the directory's lock"), "{again}");
        let beside = Store::open(dir.path()).unwrap();
        let refused = store_events(&beside, vec!["m".into()]).unwrap_err().to_string();
        assert!(refused.contains("this process cannot store events"), "{refused}");
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
                            let workspace = workspaces::find_or_create(c, "w", crate::now_ms())?;
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
            // Wherever the last sweep stopped, a restart still knows every stored id.
            drop(store);
            let store = Store::open_ingesting(dir.path(), keep).unwrap();
            let new = store_events(&store, (0..60).map(|i| format!("id-{i}")).collect()).unwrap();
            for (id, new) in (0u8..60).zip(new) {
                prop_assert_eq!(new, !stored.contains(&id), "id {} after a restart", id);
            }
        }
    }
}
