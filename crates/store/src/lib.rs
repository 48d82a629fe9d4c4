//! leadscore-store: the service's embedded storage, one SQLite file in WAL mode.
//!
//! All writes go through one writer thread that owns the only write connection and commits
//! several callers' work in one transaction (group commit): each caller's work runs in its own
//! savepoint, so one failure never undoes another's, and every caller hears back only after the
//! transaction is durable (`synchronous = FULL`). Reads use a small pool of read-only connections
//! and see every committed write.
//!
//! # Layout
//! - [`migrate`]: versioned schema migrations applied at open.
//! - [`workspaces`], [`keys`], [`models`], [`leads`], [`events`], [`scores`], [`stages`]: typed operations on
//!   one table family each, as functions of a `&Connection` so that callers compose them inside
//!   one transaction.

pub use rusqlite;

pub mod events;
pub mod keys;
pub mod leads;
pub mod migrate;
pub mod models;
pub mod predictive;
pub mod scores;
pub mod stages;
pub mod webhooks;
pub mod workspaces;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use rusqlite::{Connection, OpenFlags};

/// How many callers' work the writer commits together at most.
const MAX_GROUP: usize = 256;
/// Read connections kept open.
const READERS: usize = 4;

/// A storage failure. `Conflict` and `NotFound` are the caller's to report; the rest are faults.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot open the data directory {path}: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("the migration {version} ({name}) was changed after it was applied; restore it")]
    MigrationChanged { version: u32, name: String },
    #[error("the database was made by a newer leadscore (schema {found}, this one knows {known})")]
    TooNew { found: u32, known: u32 },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the store is shut down")]
    Closed,
}

/// A handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    writer: mpsc::Sender<Box<dyn WriteJob>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    path: Arc<PathBuf>,
    /// The checkpoint thread stops when the last handle is dropped.
    _alive: Arc<()>,
}

impl Store {
    /// Opens (creating if needed) `DIR/leadscore.db`, applies migrations and starts the writer.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Open { path: dir.to_path_buf(), source })?;
        let path = dir.join("leadscore.db");
        let mut connection = Connection::open(&path)?;
        configure(&connection)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "wal_autocheckpoint", 0)?;
        migrate::apply(&mut connection)?;
        let (writer, jobs) = mpsc::channel::<Box<dyn WriteJob>>();
        let alive = Arc::new(());
        let wal = dir.join("leadscore.db-wal");
        let spawn_error = |source| StoreError::Open { path: path.clone(), source };
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || write_loop(connection, jobs, wal))
            .map_err(spawn_error)?;
        let (checkpoint_path, watch) = (path.clone(), Arc::downgrade(&alive));
        std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpoint_path, watch))
            .map_err(spawn_error)?;
        Ok(Store { writer, readers: Arc::new(Mutex::new(Vec::new())), path: Arc::new(path), _alive: alive })
    }

    /// Runs `work` in the writer's transaction and returns its result once committed.
    pub async fn write<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Job { work: Some(work), result: None, reply };
        self.writer.send(Box::new(job)).map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Same as [`Store::write`] for synchronous callers (the command line).
    pub fn write_blocking<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Job { work: Some(work), result: None, reply };
        self.writer.send(Box::new(job)).map_err(|_| StoreError::Closed)?;
        answer.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    /// Runs `work` on a read connection, off the async runtime.
    pub async fn read<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.read_blocking(work)).await.map_err(|_| StoreError::Closed)?
    }

    /// Same as [`Store::read`] for synchronous callers.
    pub fn read_blocking<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> Result<R, StoreError>,
    {
        let pooled = self.readers.lock().map_err(|_| StoreError::Closed)?.pop();
        let connection = match pooled {
            Some(connection) => connection,
            None => {
                let connection = Connection::open_with_flags(
                    self.path.as_ref(),
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                configure(&connection)?;
                connection
            }
        };
        let result = work(&connection);
        if let Ok(mut readers) = self.readers.lock()
            && readers.len() < READERS
        {
            readers.push(connection);
        }
        result
    }
}

fn configure(connection: &Connection) -> Result<(), StoreError> {
    connection.busy_timeout(std::time::Duration::from_secs(10))?;
    // FULL: a commit is on disk before the writer answers; survives power loss, not only kill -9.
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    // A 64 MiB page cache keeps a transaction's pages in memory instead of spilling them to the
    // WAL mid-transaction and reading them back.
    connection.pragma_update(None, "cache_size", -65_536)?;
    connection.pragma_update(None, "temp_store", "MEMORY")?;
    // Cached statements stay prepared: without the planner stability guarantee SQLite re-prepares
    // some of them on every new binding.
    connection.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    connection.set_prepared_statement_cache_capacity(128);
    Ok(())
}

/// Checkpoints the WAL in the background, so that commits never pay for it (the writer's
/// automatic checkpoints are off).
fn checkpoint_loop(path: PathBuf, stop: std::sync::Weak<()>) {
    let Ok(connection) = Connection::open(&path) else { return };
    let _ = connection.busy_timeout(std::time::Duration::from_secs(10));
    while stop.upgrade().is_some() {
        std::thread::sleep(std::time::Duration::from_millis(250));
        let _ = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    }
}

/// A unit of work for the writer thread.
trait WriteJob: Send {
    /// Runs the work inside the open transaction, in a savepoint of its own when it shares the
    /// transaction with other jobs. Returns whether the work succeeded.
    fn run(&mut self, connection: &Connection, own_savepoint: bool) -> bool;
    /// Answers the caller once the transaction's fate is known.
    fn finish(self: Box<Self>, commit: Result<(), String>);
}

struct Job<R, F> {
    work: Option<F>,
    result: Option<Result<R, StoreError>>,
    reply: tokio::sync::oneshot::Sender<Result<R, StoreError>>,
}

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

    fn finish(self: Box<Self>, commit: Result<(), String>) {
        let answer = match (commit, self.result) {
            (Ok(()), Some(result)) => result,
            (Err(message), _) => Err(StoreError::Corrupt(format!("the commit failed: {message}"))),
            (Ok(()), None) => Err(StoreError::Closed),
        };
        let _ = self.reply.send(answer);
    }
}

/// The WAL file size above which the writer cuts it back (see [`write_loop`]).
const WAL_LIMIT: u64 = 8 * 1024 * 1024;

fn write_loop(connection: Connection, jobs: mpsc::Receiver<Box<dyn WriteJob>>, wal: PathBuf) {
    let mut groups = 0u64;
    while let Ok(first) = jobs.recv() {
        // Under sustained writes the background checkpoints copy frames but the WAL never gets a
        // moment to start over, so it would grow without end; now and then, if it is large, the
        // writer checkpoints what is left (little, as the background already copied most) and
        // truncates it. Small and frequent is cheaper than large and rare: a truncation pauses
        // writes for as long as the file is big (see docs/benchmarks.md for the measured
        // trade-off); RESTART pauses less but did not keep the file bounded under load.
        groups += 1;
        if groups.is_multiple_of(64) && std::fs::metadata(&wal).is_ok_and(|m| m.len() > WAL_LIMIT) {
            let _ = connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let begin = connection.execute_batch("BEGIN IMMEDIATE");
        if let Err(error) = begin {
            group.into_iter().for_each(|job| job.finish(Err(error.to_string())));
            continue;
        }
        // A job alone in its transaction needs no savepoint: if it fails, the whole (its own)
        // transaction is rolled back.
        let shared = group.len() > 1;
        let mut all_ok = true;
        for job in &mut group {
            all_ok &= job.run(&connection, shared);
        }
        let commit = if shared || all_ok {
            connection.execute_batch("COMMIT").map_err(|e| e.to_string())
        } else {
            connection.execute_batch("ROLLBACK").map_err(|e| e.to_string())
        };
        if commit.is_err() {
            let _ = connection.execute_batch("ROLLBACK");
        }
        for job in group {
            job.finish(commit.clone());
        }
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    since.as_millis() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_write_fails_alone_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let failed: Result<(), StoreError> = store.write_blocking(|_| panic!("a bug"));
        assert!(matches!(failed, Err(StoreError::Corrupt(_))));
        let workspace = store.write_blocking(|c| workspaces::find_or_create(c, "w")).unwrap();
        let found = store.read_blocking(|c| workspaces::find(c, "w")).unwrap();
        assert_eq!(found, Some(workspace));
    }
}
