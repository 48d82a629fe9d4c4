//! The [`Store`] handle: opening the data directory (migrated, locked by the process that
//! ingests), sending work to the writer thread, and reading on a pool of read-only connections.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use rusqlite::{Connection, OpenFlags};

use crate::error::StoreError;
use crate::health::WriteHealth;
use crate::message_ids;
use crate::migrate;
use crate::writer::{
    BESIDE_CACHES, COHERENT, Generation, Job, Mode, PLAIN, WAL_RESET_SIZE, WriteJob, checkpoint_loop, write_loop,
};

/// Read connections kept open.
const READERS: usize = 4;
/// How long [`Store::open_ingesting`] waits for the data directory's lock.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    writer: mpsc::Sender<Box<dyn WriteJob>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    path: Arc<PathBuf>,
    generation: Generation,
    /// The checkpoint thread stops when the last handle is dropped.
    _alive: Arc<()>,
    /// The data directory's lock, held by the store that ingests (see [`Store::open_ingesting`]).
    _lock: Option<Arc<std::fs::File>>,
    health: WriteHealth,
}

impl Store {
    /// Opens (creating if needed) `DIR/leadscore.db`, applies migrations and starts the writer.
    /// This store writes anything but events: those only the process that ingests stores (see
    /// [`Store::open_ingesting`]); its writer refuses them, so that commands can run beside it.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::start(dir, None)
    }

    /// Same as [`Store::open`] for the one process that stores events in the data directory: it
    /// takes an exclusive OS lock (`flock`) on the directory itself, released when the last
    /// handle is dropped and the writer has finished its queue, or when the process ends, however
    /// it ends; or fails with [`StoreError::InUse`] after waiting for it for 2 s. The lock is on
    /// the directory rather than on a file in it, so that no file's deletion can let a second
    /// process in. It keeps the newest `recent_message_ids` message ids in memory (see
    /// [`message_ids`]).
    pub fn open_ingesting(dir: &Path, recent_message_ids: usize) -> Result<Store, StoreError> {
        create_dir(dir)?;
        let file = std::fs::File::open(dir).map_err(|source| StoreError::Open { path: dir.to_path_buf(), source })?;
        let path = dir.to_path_buf();
        // A store of this process that was just dropped lets go of the lock once its writer has
        // finished the work queued before: wait a little for that.
        let waiting_since = std::time::Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if waiting_since.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                Err(std::fs::TryLockError::WouldBlock) => return Err(StoreError::InUse { dir: dir.to_path_buf() }),
                Err(std::fs::TryLockError::Error(source)) => return Err(StoreError::Open { path, source }),
            }
        }
        Store::start(dir, Some((file, recent_message_ids)))
    }

    fn start(dir: &Path, ingesting: Option<(std::fs::File, usize)>) -> Result<Store, StoreError> {
        create_dir(dir)?;
        let path = dir.join("leadscore.db");
        let mut connection = Connection::open(&path)?;
        configure(&connection)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "wal_autocheckpoint", 0)?;
        // A WAL that starts over after a burst is cut back to this size rather than kept large.
        connection.pragma_update(None, "journal_size_limit", WAL_RESET_SIZE as i64)?;
        migrate::apply(&mut connection)?;
        let (lock, recent) = match ingesting {
            Some((lock, keep)) => (Some(Arc::new(lock)), Some(message_ids::Recent::rebuild(&connection, keep)?)),
            None => (None, None),
        };
        // The writer holds the lock too, until it has finished every job queued.
        let writer_lock = lock.clone();
        let (writer, jobs) = mpsc::channel::<Box<dyn WriteJob>>();
        let alive = Arc::new(());
        let wal = dir.join("leadscore.db-wal");
        let spawn_error = |source| StoreError::Open { path: path.clone(), source };
        let generation = Generation::default();
        let writer_generation = generation.clone();
        let health = WriteHealth::default();
        let writer_health = health.clone();
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                // Only the ingesting store's writer knows the recent message ids, so only it
                // stores events.
                if let Some(recent) = recent {
                    message_ids::install(recent);
                }
                write_loop(connection, jobs, wal, writer_generation, writer_health);
                drop(writer_lock);
            })
            .map_err(spawn_error)?;
        let (checkpoint_path, watch) = (path.clone(), Arc::downgrade(&alive));
        std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpoint_path, watch))
            .map_err(spawn_error)?;
        Ok(Store {
            writer,
            readers: Arc::new(Mutex::new(Vec::new())),
            path: Arc::new(path),
            generation,
            _alive: alive,
            _lock: lock,
            health,
        })
    }

    /// Runs `work` in the writer's transaction and returns its result once committed.
    pub async fn write<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(work, PLAIN)?.await.map_err(|_| StoreError::Closed)?
    }

    /// Same as [`Store::write`] for work that keeps every cache checked against
    /// [`Store::generation`] up to date itself, so that the generation does not change unless the
    /// work fails, and that, once it has written anything, fails only when storage does (a
    /// client's mistake is part of its result, not an error). It runs without a savepoint of its
    /// own: if it fails after writing, every job of its transaction is rolled back and told so.
    /// Only ingestion, which keeps the writer's cache of leads, writes this way.
    pub async fn write_coherent<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(work, COHERENT)?.await.map_err(|_| StoreError::Closed)?
    }

    /// Same as [`Store::write`] for synchronous callers (the command line).
    pub fn write_blocking<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(work, PLAIN)?.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    /// Same as [`Store::write_coherent`] for synchronous callers.
    pub fn write_coherent_blocking<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(work, COHERENT)?.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    /// Same as [`Store::write`] for work that changes nothing a coherent writer's cache holds
    /// (leads, their scores and identities), such as webhook delivery bookkeeping, or that removes
    /// from the cache what it changes, such as rescoring: the caches stay valid.
    pub async fn write_beside_caches<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(work, BESIDE_CACHES)?.await.map_err(|_| StoreError::Closed)?
    }

    pub(crate) fn submit<R, F>(
        &self,
        work: F,
        mode: Mode,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<R, StoreError>>, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Job { work: Some(work), result: None, reply, mode };
        self.writer.send(Box::new(job)).map_err(|_| StoreError::Closed)?;
        Ok(answer)
    }

    /// Why writes fail now, if they do for a storage reason (see [`crate::WriteHealth`]).
    pub fn write_failure(&self) -> Option<String> {
        self.health.failing()
    }

    /// Writes a row that needs a new page in the log, so that the writer finds out whether
    /// storage takes writes again ([`Store::write_failure`] is cleared if so): for `/readyz` while
    /// writes fail (with no traffic, nothing else would find out).
    pub async fn probe_write(&self, now: i64) -> Result<(), StoreError> {
        self.write_beside_caches(move |connection| {
            connection.execute(
                "INSERT INTO write_probes (id, at) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                [now],
            )?;
            Ok(())
        })
        .await
    }

    /// Whether the database answers a read: what `/readyz` asks first.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.read(|connection| Ok(connection.query_row("SELECT 1", [], |_| Ok(()))?)).await
    }

    /// The writer's generation (see [`crate::Generation`]).
    pub fn generation(&self) -> Generation {
        self.generation.clone()
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

fn create_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(dir).map_err(|source| StoreError::Open { path: dir.to_path_buf(), source })
}

fn configure(connection: &Connection) -> Result<(), StoreError> {
    connection.busy_timeout(std::time::Duration::from_secs(10))?;
    // FULL: a commit is on disk before the writer answers; survives power loss, not only kill -9.
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    // Deleted content is overwritten with zeros, so that an erased lead leaves no copy in free
    // space (see `erasure`); it costs little, as rows are rarely deleted.
    connection.pragma_update(None, "secure_delete", "ON")?;
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

#[cfg(test)]
impl Store {
    /// Keeps the writer busy for 300 ms with a job that first runs `work`, and returns once that
    /// job has started: the jobs submitted before its answer comes share one transaction.
    pub(crate) fn hold_writer<F>(&self, work: F) -> tokio::sync::oneshot::Receiver<Result<(), StoreError>>
    where
        F: FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static,
    {
        let (started, has_started) = std::sync::mpsc::channel();
        let held = self
            .submit(
                move |c: &Connection| {
                    let _ = started.send(());
                    work(c)?;
                    std::thread::sleep(std::time::Duration::from_millis(300));
                    Ok(())
                },
                PLAIN,
            )
            .unwrap();
        has_started.recv().expect("the writer runs the holding job");
        held
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    since.as_millis() as i64
}
