//! The PostgreSQL store, for several service instances sharing one database: the same storage
//! interface as SQLite's ([`crate::storage`]), implemented in `storage/postgres.rs` over the
//! functions of this module's table families.
//!
//! # How it differs from SQLite
//! - **Connections.** A fixed set of worker threads, each owning one connection, run the work
//!   handed to the store (a read in a read-only snapshot, a write in a transaction of its own); a
//!   worker whose connection broke connects again before its next job, so a restart of
//!   PostgreSQL fails only the requests in flight (with [`StoreError::Unavailable`]: nothing of
//!   them was committed, and sending them again is safe). Written here rather than taken from a
//!   pool crate: the storage interface runs synchronous work on threads already (as SQLite's
//!   writer does), and a connection needs nothing more than a thread that owns it. Each is the
//!   asynchronous client driven by its thread ([`tx`]), so that a transaction's `BEGIN` travels
//!   with its first statement; migrations and the keepers of advisory locks use the blocking one.
//! - **Concurrency.** Transactions of several instances run at once. What SQLite's single writer
//!   gave for free is asked for explicitly: rows locked in a fixed order, message ids stored with
//!   conflict detection, lead ids reserved in blocks (`reserve_lead_ids` in the schema).
//! - **Caches.** Another instance may change any lead, so this store's [`Generation`] moves with
//!   every transaction that begins: ingestion's memory of leads never outlives a request. The
//!   caches of API keys follow the cache version instead ([`crate::cache_versions`]), which a
//!   trigger moves with every change of a key and each instance reads once a second.
//!
//! - **Counters.** The funnel's counts are changes appended by triggers, summed when read and
//!   folded by a thread of the store every second (`funnel::fold_counts`), so that writers
//!   changing one count do not wait for each other.
//! - **Plans.** Ingestion keeps one plan per statement ([`Plans::Kept`]), made again when the
//!   same thread refreshes the statistics of a table that has grown ([`statistics`]).
//!
//! # Layout
//! - [`PgStore`] (here): connecting, the workers, the folder of counts, and running work on them.
//! - `migrate`: the schema's versioned migrations (`migrations/`), checksummed as SQLite's are.
//! - One module per table family, as functions of a [`Tx`], named as SQLite's are.

pub(crate) mod cache_versions;
pub(crate) mod erasure;
pub(crate) mod events;
pub(crate) mod funnel;
pub(crate) mod ingested;
pub(crate) mod ingestion;
pub(crate) mod keys;
pub(crate) mod leads;
pub(crate) mod merge;
pub(crate) mod migrate;
pub(crate) mod models;
pub(crate) mod overrides;
pub(crate) mod predictive;
pub(crate) mod remembered;
pub(crate) mod rescorings;
pub(crate) mod retention;
pub(crate) mod scores;
pub(crate) mod sessions;
pub(crate) mod stages;
pub(crate) mod statistics;
pub(crate) mod tx;
pub(crate) mod users;
pub(crate) mod webhooks;
pub(crate) mod workspaces;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::StoreError;
use crate::health::WriteHealth;
use crate::writer::Generation;

pub(crate) use tx::{Begin, Connection, Plans, Tx, Unanswered, with_causes};

/// How the store connects and how many connections it keeps.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections (and worker threads) kept open.
    pub connections: usize,
    /// A statement running longer than this is cancelled, and its request fails with 503.
    pub statement_timeout: Duration,
    /// How long connecting may take before a job fails.
    pub connect_timeout: Duration,
}

impl PgOptions {
    /// Connections kept by default. Each request holds one for its transaction, most of which is
    /// spent waiting (on PostgreSQL's commit flush and on the network), so more connections than
    /// cores keep the database busy: on 2 cores, with 10 clients sending single events, 16
    /// stored 20 to 35% more requests per second than 8 (docs/benchmarks.md). A worker connects
    /// at its first job, so commands that make a few calls open a few.
    pub const DEFAULT_CONNECTIONS: usize = 16;
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            connections: PgOptions::DEFAULT_CONNECTIONS,
            statement_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// What a worker runs: given its connection, or why it has none.
type Job = Box<dyn FnOnce(Result<&mut Connection, StoreError>) + Send>;

/// A handle to a PostgreSQL store; cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    jobs: mpsc::Sender<Job>,
    generation: Generation,
    health: WriteHealth,
    /// How to open a connection of its own, for a lock held longer than a transaction.
    config: tokio_postgres::Config,
    options: PgOptions,
    /// Kept by every handle: when the last is dropped, the folder of the funnel's counts stops.
    _folder: Arc<mpsc::Sender<()>>,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://USER@HOST/DB`), applies the migrations it
    /// has not had (one instance at a time: the others wait) and starts the workers.
    pub fn connect(url: &str, options: PgOptions) -> Result<PgStore, StoreError> {
        // The blocking client runs a runtime of its own, which cannot start on a thread that
        // drives asynchronous tasks (the service opens its store from one): connect on a thread
        // of its own, as the workers do.
        let url = url.to_string();
        std::thread::scope(|scope| {
            scope.spawn(move || PgStore::connect_here(&url, options)).join().unwrap_or_else(|_| Err(StoreError::Closed))
        })
    }

    fn connect_here(url: &str, options: PgOptions) -> Result<PgStore, StoreError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|error: postgres::Error| StoreError::Connect { url: redacted(url), reason: error.to_string() })?;
        config.connect_timeout(options.connect_timeout);
        if config.get_application_name().is_none() {
            config.application_name("leadscore");
        }
        // Migrations run on a blocking client, as `migrate-store` runs them; the workers connect
        // on their first jobs.
        let mut first = connect_blocking(&config, &options)
            .map_err(|error| StoreError::Connect { url: redacted(url), reason: with_causes(&error) })?;
        migrate::apply(&mut first)?;
        drop(first);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..options.connections.max(1) {
            let (config, options, queue) = (config.clone(), options.clone(), queue.clone());
            std::thread::Builder::new()
                .name(format!("store-postgres-{index}"))
                .spawn(move || work_loop(config, options, queue))
                .map_err(|source| StoreError::Open { path: "postgres worker".into(), source })?;
        }
        let (folder, stop) = mpsc::channel::<()>();
        let (folder_config, folder_options) = (apart(&config, "counts"), options.clone());
        std::thread::Builder::new()
            .name("store-postgres-fold".into())
            .spawn(move || fold_counts_loop(folder_config, folder_options, stop))
            .map_err(|source| StoreError::Open { path: "postgres count folder".into(), source })?;
        Ok(PgStore {
            jobs,
            generation: Generation::default(),
            health: WriteHealth::default(),
            config,
            options,
            _folder: Arc::new(folder),
        })
    }

    /// Runs `work` on a read-only snapshot of the database, off the async runtime.
    pub(crate) async fn read<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(Work::Read, work)?.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `work` in a transaction of its own and answers once it is committed.
    pub(crate) async fn write<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(Work::Write, work)?.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs an ingestion's `work` as [`PgStore::write`] does, with its statements' plans kept
    /// ([`Plans::Kept`]).
    pub(crate) async fn ingest<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(Work::Ingestion, work)?.await.map_err(|_| StoreError::Closed)?
    }

    /// Same as [`PgStore::write`] for synchronous callers (tests; the command line goes through
    /// [`crate::Storage`]).
    #[cfg(test)]
    pub(crate) fn write_blocking<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(Work::Write, work)?.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    /// Same as [`PgStore::read`] for synchronous callers.
    #[cfg(test)]
    pub(crate) fn read_blocking<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(Work::Read, work)?.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    fn submit<R, F>(
        &self,
        kind: Work,
        work: F,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<R, StoreError>>, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let (generation, health) = (self.generation.clone(), self.health.clone());
        let read_only = kind.read_only();
        let job: Job = Box::new(move |client| {
            let result = client.and_then(|client| run(client, kind, &generation, work));
            match &result {
                // A race lost to another transaction says nothing of the database's health.
                Err(error) if !read_only && error.is_storage_failure() && !error.is_race() => {
                    health.failed_plainly(&error.to_string())
                }
                Ok(_) if !read_only => health.succeeded_plainly(),
                _ => {}
            }
            let _ = reply.send(result);
        });
        self.jobs.send(job).map_err(|_| StoreError::Closed)?;
        Ok(answer)
    }

    /// The right to do `job` alone among the instances (see
    /// [`crate::Storage::try_exclusive`]): a session-level advisory lock on a connection of its
    /// own, kept by a thread that checks every second that the connection lives and gives the
    /// lock back (closing the connection) when the answer is dropped. Blocks while connecting.
    pub(crate) fn try_exclusive(&self, job: &str) -> Result<Option<crate::storage::Exclusive>, StoreError> {
        use std::sync::atomic::{AtomicBool, Ordering};
        let mut client = connect_blocking(&apart(&self.config, job), &self.options).map_err(|error| {
            StoreError::Unavailable(format!("cannot connect to PostgreSQL: {}", with_causes(&error)))
        })?;
        let key = advisory_key(job);
        let granted: bool = client.query_one("SELECT pg_try_advisory_lock($1)", &[&key])?.get(0);
        if !granted {
            return Ok(None);
        }
        let held = Arc::new(AtomicBool::new(true));
        let (release, released) = mpsc::channel::<()>();
        let watched = held.clone();
        let job = job.to_string();
        std::thread::Builder::new()
            .name("store-postgres-lock".into())
            .spawn(move || {
                // Dropping the sender (the right given back) or losing the connection ends it;
                // the connection's end releases the lock.
                while let Err(mpsc::RecvTimeoutError::Timeout) = released.recv_timeout(LOCK_CHECK_EVERY) {
                    if client.is_valid(LOCK_CHECK_EVERY).is_err() {
                        watched.store(false, Ordering::Release);
                        tracing::warn!(
                            job,
                            "lost the connection that kept a job to this instance; another may take it"
                        );
                        return;
                    }
                }
            })
            .map_err(|source| StoreError::Open { path: "postgres lock keeper".into(), source })?;
        Ok(Some(crate::storage::Exclusive::kept(held, Box::new(std::sync::Mutex::new(release)))))
    }

    /// The generation ingestion's caches are checked against (see the module's doc).
    pub(crate) fn generation(&self) -> Generation {
        self.generation.clone()
    }

    /// Why writes fail now, if they do for a storage reason.
    pub(crate) fn write_failure(&self) -> Option<String> {
        self.health.failing()
    }
}

/// What a job does, which decides its transaction and how its statements are planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Work {
    Read,
    Write,
    /// A write of ingestion's, whose statements all find rows by key ([`Plans::Kept`]).
    Ingestion,
}

impl Work {
    fn read_only(self) -> bool {
        self == Work::Read
    }

    fn plans(self) -> Plans {
        if self == Work::Ingestion { Plans::Kept } else { Plans::PerRun }
    }
}

/// Runs one job's work in a transaction on `client`: read-only and repeatable (one snapshot) for
/// a read, read committed for a write, whose rows are locked as it goes.
fn run<R>(
    connection: &mut Connection,
    kind: Work,
    generation: &Generation,
    work: impl FnOnce(&mut Tx<'_>) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    let read_only = kind.read_only();
    if !read_only {
        // Another instance may have written since: what this one remembers is checked anew.
        generation.advance();
    }
    connection.plan(kind.plans())?;
    let mut transaction = connection.begin(if read_only { Begin::ReadOnlySnapshot } else { Begin::ReadWrite });
    let result = work(&mut transaction)?;
    transaction.commit()?;
    Ok(result)
}

/// A worker: takes jobs one at a time and runs each on its connection, connecting again first
/// when the connection is gone (PostgreSQL restarted, the network failed).
fn work_loop(config: tokio_postgres::Config, options: PgOptions, queue: Arc<Mutex<mpsc::Receiver<Job>>>) {
    let mut client: Option<Connection> = None;
    loop {
        let job = {
            let Ok(queue) = queue.lock() else { return };
            match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        if client.as_ref().is_some_and(Connection::is_closed) {
            client = None;
        }
        if client.is_none() {
            match connect(&config, &options) {
                Ok(connected) => client = Some(connected),
                Err(error) => {
                    job(Err(StoreError::Unavailable(format!("cannot connect to PostgreSQL: {error}"))));
                    continue;
                }
            }
        }
        if let Some(connected) = client.as_mut() {
            // A panic in the work (a bug) fails its request, which hears `Closed`, not the
            // worker: the others would take every job and then none would be left. The
            // connection may be inside a transaction the panic left, so it is not used again.
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(Ok(connected))));
            if ran.is_err() {
                client = None;
            }
        }
    }
}

/// How often the funnel's counts are folded (see `funnel::fold_counts`): the rows a count's read
/// sums are about one second's changes of it, plus one.
pub(crate) const FOLD_COUNTS_EVERY: Duration = Duration::from_secs(1);

/// Folds the funnel's counts every [`FOLD_COUNTS_EVERY`] on a connection of its own, until
/// `stop`'s sender is dropped (the store closed), and refreshes the statistics of the tables that
/// grew ([`statistics::refresh`]). Every instance runs one; they take turns, so one
/// folds at a time and a fold missed by a stopped instance is done by another. A failure (the
/// database restarting) is logged once and the next fold connects again: counts not folded are
/// still summed right by the reads, only slower.
fn fold_counts_loop(config: tokio_postgres::Config, options: PgOptions, stop: mpsc::Receiver<()>) {
    let mut client: Option<Connection> = None;
    let mut failing = false;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(FOLD_COUNTS_EVERY) {
        if client.as_ref().is_some_and(Connection::is_closed) {
            client = None;
        }
        let folded = (|| -> Result<Option<u64>, StoreError> {
            if client.is_none() {
                client = Some(
                    connect(&config, &options)
                        .map_err(|error| StoreError::Unavailable(format!("cannot connect to PostgreSQL: {error}")))?,
                );
            }
            let Some(connected) = client.as_mut() else { return Ok(None) };
            let mut transaction = connected.transaction();
            let folded = funnel::fold_counts(&mut transaction)?;
            transaction.commit()?;
            let mut transaction = connected.transaction();
            if let Some(tables) = statistics::refresh(&mut transaction)?
                && !tables.is_empty()
            {
                tracing::debug!(?tables, "refreshed the planner's statistics of tables that grew");
            }
            transaction.commit()?;
            Ok(folded)
        })();
        match folded {
            Ok(_) if failing => {
                tracing::info!("the funnel's counts are folded again");
                failing = false;
            }
            Ok(_) => {}
            Err(error) => {
                if !failing {
                    tracing::warn!(%error, "folding the funnel's counts failed; the next fold tries again");
                    failing = true;
                }
                client = None;
            }
        }
    }
}

/// How often a kept lock's connection is checked, and how long the check may take.
const LOCK_CHECK_EVERY: Duration = Duration::from_secs(1);

/// The advisory lock key of a job name: the first 8 bytes of its SHA-256, so that every instance
/// (whatever its build) derives the same key, and names do not collide in practice.
fn advisory_key(job: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("leadscore job {job}").as_bytes());
    i64::from_be_bytes(digest[..8].try_into().unwrap_or([0; 8]))
}

/// The settings of a connection kept apart from the workers for `what`, named after it
/// (`leadscore counts`), so that `pg_stat_activity` tells the workers' connections (named as
/// `config` names them) from the others.
fn apart(config: &tokio_postgres::Config, what: &str) -> tokio_postgres::Config {
    let mut apart = config.clone();
    apart.application_name(format!("{} {what}", config.get_application_name().unwrap_or("leadscore")));
    apart
}

/// A worker's connection, with the store's session settings.
fn connect(config: &tokio_postgres::Config, options: &PgOptions) -> Result<Connection, tx::ConnectError> {
    let mut connection = Connection::connect(config)?;
    connection.batch_execute(&session_settings(options))?;
    Ok(connection)
}

/// A blocking client with the store's session settings, for the migrations and the keepers of
/// advisory locks, which have no use for a worker's pipelining.
fn connect_blocking(config: &tokio_postgres::Config, options: &PgOptions) -> Result<postgres::Client, postgres::Error> {
    let mut client = postgres::Config::from(config.clone()).connect(postgres::NoTls)?;
    client.batch_execute(&session_settings(options))?;
    Ok(client)
}

/// The settings every connection of the store's starts with.
fn session_settings(options: &PgOptions) -> String {
    let timeout_ms = options.statement_timeout.as_millis();
    format!("SET statement_timeout = {timeout_ms}; SET lock_timeout = {timeout_ms}")
}

/// `url` without its password, for messages and logs.
pub(crate) fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A fresh database per test on the PostgreSQL the tests are given, dropped afterwards.

    /// The server the tests use: `LEADSCORE_TEST_POSTGRES`, or the local one without a password.
    pub(crate) fn server_url() -> String {
        std::env::var("LEADSCORE_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
    }

    /// A database created for one test, dropped (with its connections) when this is dropped.
    pub(crate) struct TestDatabase {
        pub(crate) url: String,
        name: String,
    }

    impl TestDatabase {
        /// A fresh database, or `None` (the test then passes without checking anything, and says
        /// so) when no server answers and the run is not continuous integration (`CI=true`),
        /// where a missing server fails the test: a newcomer's `cargo test` runs without one.
        pub(crate) fn create() -> Option<TestDatabase> {
            static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let name = format!(
                "leadscore_test_{}_{}_{}",
                std::process::id(),
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                crate::now_ms()
            );
            let server = server_url();
            let mut admin = match postgres::Client::connect(&server, postgres::NoTls) {
                Ok(admin) => admin,
                Err(error) if std::env::var("CI").is_ok_and(|ci| ci == "true") => panic!(
                    "the PostgreSQL tests need a server: {server} refused ({error}); start one or set \
                     LEADSCORE_TEST_POSTGRES=postgres://USER@HOST:PORT/DB"
                ),
                Err(error) => {
                    eprintln!(
                        "skipped: no PostgreSQL at {server} ({error}); start one or set LEADSCORE_TEST_POSTGRES to \
                         run the PostgreSQL store's tests"
                    );
                    return None;
                }
            };
            admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
            let base = server.rsplit_once('/').map_or(server.as_str(), |(base, _)| base);
            Some(TestDatabase { url: format!("{base}/{name}"), name })
        }

        /// A connection to the database with every migration applied, for a module's tests.
        pub(crate) fn migrated_client(&self) -> super::Connection {
            let mut client = postgres::Client::connect(&self.url, postgres::NoTls).unwrap();
            super::migrate::apply(&mut client).unwrap();
            super::Connection::connect_url(&self.url)
        }
    }

    impl Drop for TestDatabase {
        fn drop(&mut self) {
            if let Ok(mut admin) = postgres::Client::connect(&server_url(), postgres::NoTls) {
                let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_left_out_of_messages() {
        assert_eq!(redacted("postgres://ana:s3cret@db:5432/leads"), "postgres://ana:***@db:5432/leads");
        assert_eq!(redacted("postgres://ana@db/leads"), "postgres://ana@db/leads");
        assert_eq!(redacted("host=db user=ana"), "host=db user=ana");
    }

    #[test]
    fn a_server_that_is_not_there_is_named_in_the_error() {
        let options = PgOptions { connect_timeout: Duration::from_millis(500), ..PgOptions::default() };
        let error = PgStore::connect("postgres://ana:pw@127.0.0.1:1/leads", options).err().expect("nothing listens");
        let message = error.to_string();
        assert!(message.contains("postgres://ana:***@127.0.0.1:1/leads"), "{message}");
        assert!(!message.contains("pw@"), "{message}");
    }

    #[test]
    fn a_job_is_held_by_one_instance_until_it_gives_it_back_or_loses_its_connection() {
        let Some(database) = testing::TestDatabase::create() else { return };
        let options = PgOptions { connections: 1, ..PgOptions::default() };
        let (one, two) = (
            PgStore::connect(&database.url, options.clone()).unwrap(),
            PgStore::connect(&database.url, options).unwrap(),
        );
        let held = one.try_exclusive("periodic pass").unwrap().expect("the first asks first");
        assert!(held.is_held());
        assert!(two.try_exclusive("periodic pass").unwrap().is_none(), "held by the other instance");
        assert!(two.try_exclusive("rescoring 7").unwrap().is_some(), "another job is free");
        drop(held);
        // The keeper closes its connection within a check.
        let taken = (0..50).find_map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            two.try_exclusive("periodic pass").unwrap()
        });
        let taken = taken.expect("given back");

        let mut admin = postgres::Client::connect(&database.url, postgres::NoTls).unwrap();
        let key = advisory_key("periodic pass");
        admin
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted \
                 AND ((classid::bigint << 32) | objid::bigint) = $1",
                &[&key],
            )
            .unwrap();
        let lost = (0..50).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            !taken.is_held()
        });
        assert!(lost, "a lock whose connection ended is no longer held");
        assert!(one.try_exclusive("periodic pass").unwrap().is_some(), "and another instance may take it");
    }

    #[test]
    fn work_runs_in_a_transaction_and_a_failure_commits_nothing() {
        let Some(database) = testing::TestDatabase::create() else { return };
        let store = PgStore::connect(&database.url, PgOptions { connections: 2, ..PgOptions::default() }).unwrap();
        store
            .write_blocking(|t| Ok(t.execute("INSERT INTO workspaces (name, created_at) VALUES ('a', 1)", &[])?))
            .unwrap();
        let failed = store.write_blocking(|t| -> Result<(), StoreError> {
            t.execute("INSERT INTO workspaces (name, created_at) VALUES ('b', 2)", &[])?;
            Err(StoreError::Conflict("no".into()))
        });
        assert!(matches!(failed, Err(StoreError::Conflict(_))));
        let names: Vec<String> = store
            .read_blocking(|t| Ok(t.query("SELECT name FROM workspaces", &[])?.iter().map(|r| r.get(0)).collect()))
            .unwrap();
        assert_eq!(names, ["a"]);
        let read_only = store.read_blocking(|t| Ok(t.execute("DELETE FROM workspaces", &[])?));
        assert!(read_only.is_err(), "a read cannot write");
    }
}
