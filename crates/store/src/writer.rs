//! The writer thread: the only write connection, running callers' jobs several per transaction
//! (group commit), each in its own savepoint unless it is coherent, answering each caller only
//! after the commit; and the background checkpoint of the WAL.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use rusqlite::Connection;

use crate::error::StoreError;
use crate::health::WriteHealth;
use crate::message_ids;

/// How many callers' work the writer commits together at most.
pub(crate) const MAX_GROUP: usize = 256;

/// A number that changes whenever the stored data may have changed behind the back of a cache
/// kept by coherent writers (see [`crate::Store::write_coherent`]): before every other write job, after
/// every job that failed (its work was rolled back) and after every failed commit. A cache of
/// stored rows is valid as long as the generation is the one it was filled at.
#[derive(Clone, Default)]
pub struct Generation(Arc<AtomicU64>);

impl Generation {
    pub fn current(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    pub(crate) fn advance(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

/// Checkpoints the WAL in the background, so that commits never pay for copying it (the
/// writer's automatic checkpoints are off). While there are frames to copy it comes back within
/// a few milliseconds, so that little is left for the writer's own checkpoints (see
/// [`write_loop`]); it rests only when nothing was written since its last look.
pub(crate) fn checkpoint_loop(path: PathBuf, stop: std::sync::Weak<()>) {
    let Ok(connection) = Connection::open(&path) else { return };
    let _ = connection.busy_timeout(std::time::Duration::from_secs(10));
    let mut last = None;
    while stop.upgrade().is_some() {
        // (busy, frames in the WAL, frames copied to the database)
        let result = connection
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
            })
            .ok();
        // Idle: every frame copied and none added since the last look.
        let idle = matches!(result, Some((_, frames, copied)) if frames == copied) && result == last;
        last = result;
        std::thread::sleep(if idle { CHECKPOINT_REST } else { CHECKPOINT_AGAIN });
    }
}

thread_local! {
    /// Set by a job whose deleted rows must leave no copy in the WAL (an erasure): after its
    /// transaction commits, the writer checkpoints the whole WAL into the database file and
    /// truncates it before it answers. Cleared once that succeeded.
    static TRUNCATE_WAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Asks the writer to checkpoint and truncate the WAL once the current transaction commits
/// (see [`crate::erasure`]). Only meaningful on the writer thread.
pub(crate) fn truncate_wal_after_commit() {
    TRUNCATE_WAL.set(true);
}

/// How long the writer tries to truncate the WAL after an erasure before it answers anyway.
const TRUNCATE_FOR: std::time::Duration = std::time::Duration::from_secs(10);

/// Copies every frame of the WAL into the database and truncates the WAL to nothing. Readers of
/// older snapshots are waited for by the connection's busy handler, but a checkpoint already
/// running (the background one, every few milliseconds while frames wait) makes SQLite give up
/// at once rather than wait: so it is tried again until it succeeds, for at most
/// [`TRUNCATE_FOR`]. Whether it did.
fn truncate_wal(connection: &Connection) -> bool {
    let started = std::time::Instant::now();
    loop {
        let result = connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get::<_, i64>(0));
        match result {
            Ok(0) => return true,
            Ok(_) | Err(_) if started.elapsed() < TRUNCATE_FOR => {
                std::thread::sleep(std::time::Duration::from_millis(2))
            }
            Ok(_) => {
                tracing::warn!("the WAL could not be truncated after an erasure (it stayed busy); retrying later");
                return false;
            }
            Err(error) => {
                tracing::warn!("the WAL could not be truncated after an erasure: {error}; retrying later");
                return false;
            }
        }
    }
}

/// A unit of work for the writer thread.
/// Why a transaction's jobs were not stored though their own work succeeded.
#[derive(Debug, Clone)]
pub(crate) enum Undone {
    /// Storage refused the transaction (it could not begin, SQLite rolled it back, the commit
    /// failed).
    ByStorage(String),
    /// Another job of the same transaction failed after writing.
    WithAnother(String),
}

pub(crate) trait WriteJob: Send {
    /// Runs the work inside the open transaction, in a savepoint of its own when it shares the
    /// transaction with other jobs. Returns whether the work succeeded.
    fn run(&mut self, connection: &Connection, own_savepoint: bool) -> bool;
    fn mode(&self) -> Mode;
    /// Answers the caller once the transaction's fate is known.
    fn finish(self: Box<Self>, commit: Result<(), Undone>);
}

pub(crate) struct Job<R, F> {
    pub(crate) work: Option<F>,
    pub(crate) result: Option<Result<R, StoreError>>,
    pub(crate) reply: tokio::sync::oneshot::Sender<Result<R, StoreError>>,
    pub(crate) mode: Mode,
}

/// How a job shares the writer with others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mode {
    /// The work keeps the caches checked against the generation valid (it updates them, or
    /// changes nothing they hold), so the generation does not advance before it.
    keeps_caches: bool,
    /// The work runs in a savepoint of its own when it shares a transaction, so that its failure
    /// undoes only its own writes.
    savepoint: bool,
}

pub(crate) const PLAIN: Mode = Mode { keeps_caches: false, savepoint: true };
pub(crate) const COHERENT: Mode = Mode { keeps_caches: true, savepoint: false };
pub(crate) const BESIDE_CACHES: Mode = Mode { keeps_caches: true, savepoint: true };

impl<R, F> WriteJob for Job<R, F>
where
    R: Send + 'static,
    F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
{
    fn run(&mut self, connection: &Connection, own_savepoint: bool) -> bool {
        let Some(work) = self.work.take() else { return false };
        // A bug that panics in one caller's work must not take the writer thread (and with it
        // every later write) down: the panic becomes that caller's error.
        let guarded = |connection: &Connection| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(connection)))
                .unwrap_or_else(|_| Err(StoreError::Corrupt("a write panicked; the error was logged".to_string())))
        };
        let result = if own_savepoint {
            (|| {
                connection.execute_batch("SAVEPOINT job")?;
                match guarded(connection) {
                    Ok(value) => {
                        connection.execute_batch("RELEASE job")?;
                        Ok(value)
                    }
                    Err(error) => {
                        connection.execute_batch("ROLLBACK TO job; RELEASE job")?;
                        Err(error)
                    }
                }
            })()
        } else {
            guarded(connection)
        };
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn mode(&self) -> Mode {
        self.mode
    }

    fn finish(self: Box<Self>, commit: Result<(), Undone>) {
        let answer = match (commit, self.result) {
            (Ok(()), Some(Err(error))) if error.is_storage_failure() => {
                Err(StoreError::Unavailable(format!("{error}; nothing of the transaction was stored")))
            }
            (Ok(()), Some(result)) => result,
            (Err(Undone::ByStorage(message)), _) => Err(StoreError::Unavailable(message)),
            (Err(Undone::WithAnother(message)), _) => Err(StoreError::RolledBack(message)),
            (Ok(()), None) => Err(StoreError::Closed),
        };
        let _ = self.reply.send(answer);
    }
}

/// How soon the background checkpoint runs again while the writer keeps adding frames.
const CHECKPOINT_AGAIN: std::time::Duration = std::time::Duration::from_millis(2);
/// How long it rests when nothing is being written.
const CHECKPOINT_REST: std::time::Duration = std::time::Duration::from_millis(50);
/// The WAL size above which the writer copies what the background left, so that the WAL can
/// start over; also the size a WAL that starts over is cut back to.
pub(crate) const WAL_RESET_SIZE: u64 = 16 * 1024 * 1024;
/// The WAL size above which the writer waits for a full checkpoint and truncates the file: a
/// last resort (a long pause) for when the WAL could not start over, e.g. while a long read
/// holds an old snapshot.
const WAL_HARD_LIMIT: u64 = 1024 * 1024 * 1024;
/// How many groups the writer commits between two looks at the WAL's size.
const WAL_CHECK_EVERY: u64 = 2;

pub(crate) fn write_loop(
    connection: Connection,
    jobs: mpsc::Receiver<Box<dyn WriteJob>>,
    wal: PathBuf,
    generation: Generation,
    health: WriteHealth,
) {
    let dir = wal.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut groups = 0u64;
    while let Ok(first) = jobs.recv() {
        // Under sustained writes the background checkpoint never catches up with the last
        // frames, and a WAL starts over only once every frame is copied. So, when the WAL is
        // large, the writer copies the few frames the background has not (a PASSIVE checkpoint:
        // it gives up at once rather than wait if the background is busy) and its next
        // transaction starts the WAL from the beginning. Pauses stay as short as the background
        // is close behind; truncating at a fixed size instead paused for tens of milliseconds
        // (see docs/benchmarks.md).
        groups += 1;
        if groups.is_multiple_of(WAL_CHECK_EVERY) {
            let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
            let mode = if size > WAL_HARD_LIMIT { "TRUNCATE" } else { "PASSIVE" };
            if size > WAL_RESET_SIZE {
                let _ = connection.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(()));
            }
        }
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        // The next slice of recent message ids goes to disk in this transaction (one sync).
        let begun = connection.execute_batch("BEGIN IMMEDIATE").map_err(|e| e.to_string()).and_then(|()| {
            message_ids::transaction_began(&connection).map_err(|error| {
                let _ = connection.execute_batch("ROLLBACK");
                message_ids::transaction_ended(false);
                format!("cannot move message ids to disk: {error}")
            })
        });
        if let Err(message) = begun {
            health.failed(&message, &dir);
            let message = format!("the transaction could not begin: {message}");
            group.into_iter().for_each(|job| job.finish(Err(Undone::ByStorage(message.clone()))));
            generation.advance();
            continue;
        }
        // A job alone in its transaction needs no savepoint: if it fails, the whole (its own)
        // transaction is rolled back. Nor does a coherent job (ingestion), which fails only when
        // storage does once it has written anything: a savepoint would copy every page it
        // changes for a rollback that practically never comes. If one fails after writing, the
        // whole transaction is rolled back; one that fails before writing left nothing to undo.
        let shared = group.len() > 1;
        let mut all_ok = true;
        let mut failed = vec![false; group.len()];
        // Why the whole transaction was undone, if it was, and whether storage was the reason.
        let mut undone: Option<&str> = None;
        let mut undone_by_storage = false;
        for (index, job) in group.iter_mut().enumerate() {
            let mode = job.mode();
            if !mode.keeps_caches {
                generation.advance();
            }
            let own_savepoint = shared && mode.savepoint;
            let changes_before = connection.total_changes();
            message_ids::job_started();
            let ok = job.run(&connection, own_savepoint);
            if !ok {
                message_ids::job_failed();
                generation.advance();
                failed[index] = true;
            }
            if connection.is_autocommit() {
                // SQLite rolled the whole transaction back by itself (a full disk, an I/O error):
                // nothing of the group is stored, and a further job's statements would each
                // commit on their own, outside the group.
                undone = Some(
                    "the database rolled the transaction back (is the disk full?), so nothing of it was stored; retry",
                );
                undone_by_storage = true;
                break;
            }
            if !ok && shared && !own_savepoint && connection.total_changes() != changes_before {
                let _ = connection.execute_batch("ROLLBACK");
                undone = Some("another write in the same transaction failed, so nothing of it was stored; retry");
                break;
            }
            all_ok &= ok;
        }
        let commit = if let Some(why) = undone {
            generation.advance();
            let why = why.to_string();
            Err(if undone_by_storage { Undone::ByStorage(why) } else { Undone::WithAnother(why) })
        } else if shared || all_ok {
            connection.execute_batch("COMMIT").map_err(|e| Undone::ByStorage(e.to_string()))
        } else {
            connection.execute_batch("ROLLBACK").map_err(|e| Undone::ByStorage(e.to_string()))
        };
        if commit.is_err() && undone.is_none() {
            let _ = connection.execute_batch("ROLLBACK");
            generation.advance();
        }
        let committed = commit.is_ok() && undone.is_none() && (shared || all_ok);
        // An erasure is answered once no frame of the WAL holds what it deleted. (After a
        // rollback the truncation is needless but harmless; one that failed is tried again
        // after the next transaction.)
        if TRUNCATE_WAL.get() && connection.is_autocommit() && truncate_wal(&connection) {
            TRUNCATE_WAL.set(false);
        }
        match &commit {
            Err(Undone::ByStorage(message)) => health.failed(message, &dir),
            Ok(()) if committed => health.succeeded(&dir),
            _ => {}
        }
        for (job, failed) in group.into_iter().zip(failed) {
            // A job that failed hears its own error; the others hear how the transaction ended.
            job.finish(if failed { Ok(()) } else { commit.clone() });
        }
        message_ids::transaction_ended(committed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, workspaces};

    #[test]
    fn a_panicking_write_fails_alone_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let failed: Result<(), StoreError> = store.write_blocking(|_| panic!("a bug"));
        assert!(matches!(failed, Err(StoreError::Corrupt(_))));
        let workspace = store.write_blocking(|c| workspaces::find_or_create(c, "w", crate::now_ms())).unwrap();
        let found = store.read_blocking(|c| workspaces::find(c, "w")).unwrap();
        assert_eq!(found, Some(workspace));
    }

    type Reply = tokio::sync::oneshot::Receiver<Result<(), StoreError>>;
    type Work = Box<dyn FnOnce(&Connection) -> Result<(), StoreError> + Send>;

    /// Runs `jobs` (work, mode) in one shared transaction: the writer is busy with a slow first
    /// job while they are queued. Returns the workspaces stored afterwards and the replies.
    fn in_one_transaction(jobs: Vec<(Work, Mode)>) -> (Vec<String>, Vec<Result<(), StoreError>>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let slow = store.hold_writer(|c| {
            workspaces::find_or_create(c, "first", crate::now_ms())?;
            Ok(())
        });
        let replies: Vec<Reply> = jobs.into_iter().map(|(work, mode)| store.submit(work, mode).unwrap()).collect();
        assert!(slow.blocking_recv().unwrap().is_ok());
        let replies = replies.into_iter().map(|reply| reply.blocking_recv().unwrap()).collect();
        let stored = store
            .read_blocking(|c| {
                Ok(c.prepare("SELECT name FROM workspaces ORDER BY name")?
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?)
            })
            .unwrap();
        (stored, replies)
    }

    fn insert(name: &'static str) -> Work {
        Box::new(move |c: &Connection| {
            workspaces::find_or_create(c, name, crate::now_ms())?;
            Ok(())
        })
    }

    fn fail(after_writing: Option<&'static str>) -> Work {
        Box::new(move |c: &Connection| {
            if let Some(name) = after_writing {
                workspaces::find_or_create(c, name, crate::now_ms())?;
            }
            Err(StoreError::Conflict(format!("{after_writing:?} failed")))
        })
    }

    /// A coherent job has no savepoint: when it fails after writing, the jobs of its transaction
    /// are rolled back with it and told so, and every job that failed reports its own error.
    #[test]
    fn a_coherent_write_that_fails_after_writing_rolls_back_its_whole_transaction() {
        let (stored, replies) = in_one_transaction(vec![
            (insert("before"), PLAIN),
            (fail(None), PLAIN),
            (fail(Some("failing")), COHERENT),
            (insert("after"), PLAIN),
        ]);
        assert_eq!(stored, ["first"]);
        let errors: Vec<String> = replies.into_iter().map(|r| r.unwrap_err().to_string()).collect();
        assert!(errors[0].contains("another write in the same transaction failed"), "{errors:?}");
        assert_eq!(errors[1], "None failed");
        assert_eq!(errors[2], "Some(\"failing\") failed");
        assert!(errors[3].contains("another write in the same transaction failed"), "{errors:?}");
    }

    /// A coherent job that fails before writing anything leaves nothing to undo: the others commit.
    #[test]
    fn a_coherent_write_that_fails_before_writing_fails_alone() {
        let (stored, replies) =
            in_one_transaction(vec![(insert("before"), PLAIN), (fail(None), COHERENT), (insert("after"), COHERENT)]);
        assert_eq!(stored, ["after", "before", "first"]);
        assert!(replies[0].is_ok() && replies[2].is_ok(), "{replies:?}");
        assert_eq!(replies[1].as_ref().unwrap_err().to_string(), "None failed");
    }
}
