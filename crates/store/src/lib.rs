//! leadscore-store: the service's embedded storage, one SQLite file in WAL mode.
//!
//! All writes go through one writer thread that owns the only write connection and commits
//! several callers' work in one transaction (group commit): each caller's work runs in its own
//! savepoint, so one failure never undoes another's (but ingestion's, see
//! [`Store::write_coherent`]), and every caller hears back only after the transaction is durable
//! (`synchronous = FULL`). Reads use a small pool of read-only connections
//! and see every committed write.
//!
//! # Layout
//! - [`migrate`]: versioned schema migrations applied at open.
//! - [`message_ids`]: which message ids are stored (idempotent ingestion), partly in the writer's
//!   memory; hence one ingesting process per data directory ([`Store::open_ingesting`]).
//! - [`workspaces`], [`keys`], [`models`], [`leads`], [`events`], [`scores`], [`stages`]: typed operations on
//!   one table family each, as functions of a `&Connection` so that callers compose them inside
//!   one transaction.

pub use rusqlite;

pub mod events;
pub mod keys;
pub mod leads;
pub mod merge;
pub mod message_ids;
pub mod migrate;
pub mod models;
pub mod predictive;
pub mod rescorings;
pub mod scores;
pub mod stages;
pub mod webhooks;
pub mod workspaces;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use rusqlite::{Connection, OpenFlags};

/// How many callers' work the writer commits together at most.
const MAX_GROUP: usize = 256;
/// Read connections kept open.
const READERS: usize = 4;
/// How long [`Store::open_ingesting`] waits for the data directory's lock.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

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
    #[error("a rescoring of the workspace is still running; wait for it to finish")]
    Rescoring,
    /// Storage refuses writes (a full disk, an I/O error, a read-only file): nothing of the
    /// transaction was stored, and writes resume by themselves once storage is back.
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
    /// Another write of the same transaction failed after writing, so this one was rolled back
    /// with it: nothing of it was stored, and sending it again is safe.
    #[error("{0}")]
    RolledBack(String),
    #[error(
        "another leadscore process stores events in {dir} (it holds the directory's lock); stop it first or give \
         this one another data directory"
    )]
    InUse { dir: PathBuf },
}

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

/// A number that changes whenever the stored data may have changed behind the back of a cache
/// kept by coherent writers (see [`Store::write_coherent`]): before every other write job, after
/// every job that failed (its work was rolled back) and after every failed commit. A cache of
/// stored rows is valid as long as the generation is the one it was filled at.
#[derive(Clone, Default)]
pub struct Generation(Arc<AtomicU64>);

impl Generation {
    pub fn current(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    fn advance(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

impl StoreError {
    /// Whether the error comes from storage rather than from the data or the caller: a full
    /// disk, an I/O error, a file that cannot be written, a database busy beyond its timeout.
    pub fn is_storage_failure(&self) -> bool {
        use rusqlite::ErrorCode::*;
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(failure, _)) => matches!(
                failure.code,
                DiskFull | SystemIoFailure | ReadOnly | CannotOpen | DatabaseBusy | DatabaseLocked | OutOfMemory
            ),
            _ => false,
        }
    }
}

/// Whether writes fail now for a storage reason, and why: what `/readyz` reports. Set by the
/// writer when a transaction fails that way, cleared by its next commit.
#[derive(Clone, Default)]
pub struct WriteHealth(Arc<Mutex<Option<String>>>);

impl WriteHealth {
    /// Why writes fail, if they do.
    pub fn failing(&self) -> Option<String> {
        self.0.lock().ok().and_then(|reason| reason.clone())
    }

    fn failed(&self, message: &str, dir: &Path) {
        let reason = describe_storage_failure(message, dir);
        let Ok(mut current) = self.0.lock() else { return };
        if current.is_none() {
            tracing::error!(reason = %reason, "writes fail; they resume by themselves once storage is back");
        }
        *current = Some(reason);
    }

    /// A commit succeeded. After a failure, writes count as back only once the disk also has
    /// [`RECOVERED_FREE_BYTES`] free: a small write can succeed on a disk that a batch fills,
    /// and readiness would flap with every request.
    fn succeeded(&self, dir: &Path) {
        let Ok(mut current) = self.0.lock() else { return };
        if current.is_some() && free_bytes(dir).is_none_or(|free| free >= RECOVERED_FREE_BYTES) {
            *current = None;
            tracing::info!("writes succeed again");
        }
    }
}

/// Free space under which a disk counts as full (see [`describe_storage_failure`]), and above
/// which writes that failed count as back.
const RECOVERED_FREE_BYTES: u64 = 4 * 1024 * 1024;

/// Free bytes on the file system holding `dir`, if the platform says.
fn free_bytes(dir: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        rustix::fs::statvfs(dir).ok().map(|s| s.f_bavail.saturating_mul(s.f_frsize))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// A storage failure in words an operator acts on: SQLite says "database or disk is full" for
/// both, and an I/O error is often a full disk too, so the free space decides.
fn describe_storage_failure(message: &str, dir: &Path) -> String {
    match free_bytes(dir) {
        Some(free) if free < RECOVERED_FREE_BYTES || message.contains("full") => {
            format!("the disk holding {} is full ({free} bytes free): {message}", dir.display())
        }
        _ => message.to_string(),
    }
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

    fn submit<R, F>(
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

    /// Why writes fail now, if they do for a storage reason (see [`WriteHealth`]).
    pub fn write_failure(&self) -> Option<String> {
        self.health.failing()
    }

    /// Writes a row that needs a new page in the log, so that the writer finds out whether
    /// storage takes writes again ([`Store::write_failure`] is cleared if so): for `/readyz` while
    /// writes fail (with no traffic, nothing else would find out).
    pub async fn probe_write(&self) -> Result<(), StoreError> {
        self.write_beside_caches(|connection| {
            connection.execute(
                "INSERT INTO write_probes (id, at) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                [now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    /// Whether the database answers a read: what `/readyz` asks first.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.read(|connection| Ok(connection.query_row("SELECT 1", [], |_| Ok(()))?)).await
    }

    /// The writer's generation (see [`Generation`]).
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

/// Checkpoints the WAL in the background, so that commits never pay for copying it (the
/// writer's automatic checkpoints are off). While there are frames to copy it comes back within
/// a few milliseconds, so that little is left for the writer's own checkpoints (see
/// [`write_loop`]); it rests only when nothing was written since its last look.
fn checkpoint_loop(path: PathBuf, stop: std::sync::Weak<()>) {
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

/// A unit of work for the writer thread.
/// Why a transaction's jobs were not stored though their own work succeeded.
#[derive(Debug, Clone)]
enum Undone {
    /// Storage refused the transaction (it could not begin, SQLite rolled it back, the commit
    /// failed).
    ByStorage(String),
    /// Another job of the same transaction failed after writing.
    WithAnother(String),
}

trait WriteJob: Send {
    /// Runs the work inside the open transaction, in a savepoint of its own when it shares the
    /// transaction with other jobs. Returns whether the work succeeded.
    fn run(&mut self, connection: &Connection, own_savepoint: bool) -> bool;
    fn mode(&self) -> Mode;
    /// Answers the caller once the transaction's fate is known.
    fn finish(self: Box<Self>, commit: Result<(), Undone>);
}

struct Job<R, F> {
    work: Option<F>,
    result: Option<Result<R, StoreError>>,
    reply: tokio::sync::oneshot::Sender<Result<R, StoreError>>,
    mode: Mode,
}

/// How a job shares the writer with others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mode {
    /// The work keeps the caches checked against the generation valid (it updates them, or
    /// changes nothing they hold), so the generation does not advance before it.
    keeps_caches: bool,
    /// The work runs in a savepoint of its own when it shares a transaction, so that its failure
    /// undoes only its own writes.
    savepoint: bool,
}

const PLAIN: Mode = Mode { keeps_caches: false, savepoint: true };
const COHERENT: Mode = Mode { keeps_caches: true, savepoint: false };
const BESIDE_CACHES: Mode = Mode { keeps_caches: true, savepoint: true };

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
const WAL_RESET_SIZE: u64 = 16 * 1024 * 1024;
/// The WAL size above which the writer waits for a full checkpoint and truncates the file: a
/// last resort (a long pause) for when the WAL could not start over, e.g. while a long read
/// holds an old snapshot.
const WAL_HARD_LIMIT: u64 = 1024 * 1024 * 1024;
/// How many groups the writer commits between two looks at the WAL's size.
const WAL_CHECK_EVERY: u64 = 2;

fn write_loop(
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
impl Store {
    /// Keeps the writer busy for 300 ms with a job that first runs `work`, and returns once that
    /// job has started: the jobs submitted before its answer comes share one transaction.
    fn hold_writer<F>(&self, work: F) -> tokio::sync::oneshot::Receiver<Result<(), StoreError>>
    where
        F: FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static,
    {
        let held = self
            .submit(
                move |c: &Connection| {
                    work(c)?;
                    std::thread::sleep(std::time::Duration::from_millis(300));
                    Ok(())
                },
                PLAIN,
            )
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        held
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

    type Reply = tokio::sync::oneshot::Receiver<Result<(), StoreError>>;
    type Work = Box<dyn FnOnce(&Connection) -> Result<(), StoreError> + Send>;

    /// Runs `jobs` (work, mode) in one shared transaction: the writer is busy with a slow first
    /// job while they are queued. Returns the workspaces stored afterwards and the replies.
    fn in_one_transaction(jobs: Vec<(Work, Mode)>) -> (Vec<String>, Vec<Result<(), StoreError>>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let slow = store.hold_writer(|c| {
            workspaces::find_or_create(c, "first")?;
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
            workspaces::find_or_create(c, name)?;
            Ok(())
        })
    }

    fn fail(after_writing: Option<&'static str>) -> Work {
        Box::new(move |c: &Connection| {
            if let Some(name) = after_writing {
                workspaces::find_or_create(c, name)?;
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
