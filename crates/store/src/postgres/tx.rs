//! A connection of the PostgreSQL store's ([`Connection`]) and the transaction every query
//! function takes ([`Tx`]): the client's statements, each prepared once per connection and kept
//! ([`Statements`]), a transaction's `BEGIN` sent with its first statement, and its `COMMIT` with
//! its last ones when the caller knows which those are ([`Tx::query_and_commit`]).
//!
//! The client prepares a statement given as text anew at every call: a round trip to parse and
//! describe it, then another to run it, and PostgreSQL plans it each time. An ingestion runs a
//! dozen statements, so that was half its round trips and most of the database's work per
//! event. Kept prepared, a statement is one round trip, and PostgreSQL reuses its plan once it
//! has seen the parameters do not change it (its generic plan). The cache is a map from the
//! statement's text, per connection, emptied when full.
//!
//! The blocking client waits for each message's answer before it sends the next, so `BEGIN`
//! cost a round trip of its own: a fifth of a single event's, and a third of a short read's.
//! Each connection here is the asynchronous client on a runtime of its own, driven by the thread
//! that owns it (as the blocking client drives its own), which lets a transaction hold its
//! `BEGIN` back and send it in the same write as its first statement (pipelining, which the
//! asynchronous client does for requests made at once). A transaction that ran no statement
//! never reaches the server. What this saves is the wait for the network between the messages:
//! PostgreSQL still sends its answer to each statement as soon as it is done, so the client wakes
//! as often as before (docs/benchmarks.md, "Begin and commit sent with their neighbouring
//! statements": 42% more single events per connection with the database 0.5 ms away, nothing
//! measurable on loopback). No pool crate is needed: each of the store's workers owns one
//! connection (see [`crate::postgres`]).
//!
//! How PostgreSQL plans a kept statement is a setting of the connection ([`Plans`]), which
//! ingestion's transactions change (see [`Plans::Kept`]).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use tokio::runtime::Runtime;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Row, Statement};

use crate::postgres::remembered::Remembered;

/// Statements kept prepared on one connection, by their text. A statement built with values in
/// its text (rare: the store passes values as parameters) takes an entry of its own; at
/// [`Statements::LIMIT`] entries the map starts afresh.
#[derive(Default)]
pub(crate) struct Statements {
    by_sql: HashMap<String, Statement>,
}

impl Statements {
    /// Entries kept at most: more than the store's distinct statements.
    const LIMIT: usize = 512;
}

/// How PostgreSQL plans the statements a connection keeps prepared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Plans {
    /// PostgreSQL's default: a statement is planned for its parameters' values at every run
    /// while that plan looks cheaper than one for any values, which it does for most statements
    /// taking a list (`= ANY($1)`): planning them each time. Reports and pages, whose best plan
    /// depends on the values asked (a workspace of ten leads or of a million), keep this.
    #[default]
    PerRun,
    /// One plan per kept statement, made at its first run and kept (`plan_cache_mode =
    /// force_generic_plan`), for ingestion, whose statements all find rows by key: a batch's
    /// statements take lists of a hundred values, which PostgreSQL otherwise plans anew at every
    /// run. Batches of 100 stored 0.5 to 14% more events per second with kept plans, in five
    /// alternating pairs of runs; single events gained nothing measurable (docs/benchmarks.md, "The service
    /// on PostgreSQL"). PostgreSQL plans from its statistics of the tables and plans again when
    /// they are refreshed, so a plan kept while a table was small (a scan of all of it) is
    /// replaced once the table has grown: the store refreshes them as tables grow
    /// ([`crate::postgres::statistics`]) rather than wait for autovacuum.
    Kept,
}

impl Plans {
    /// The session settings that put a connection in this mode.
    fn settings(self) -> &'static str {
        match self {
            Plans::PerRun => "RESET plan_cache_mode",
            Plans::Kept => "SET plan_cache_mode = force_generic_plan",
        }
    }
}

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("{}", with_causes(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("cannot start the runtime a connection needs: {0}")]
    Runtime(#[from] std::io::Error),
}

/// The database's clock, in milliseconds since the epoch, as SQL: what leases are in, so that
/// instances whose own clocks differ agree on when one runs out. A macro, for statements built
/// with `concat!`.
macro_rules! database_now_ms_sql {
    () => {
        "(extract(epoch from clock_timestamp()) * 1000)::bigint"
    };
}
pub(crate) use database_now_ms_sql;

/// [`database_now_ms_sql`] as a constant, for statements built with `format!`.
pub(crate) const DATABASE_NOW_MS: &str = database_now_ms_sql!();

/// Reads the database's clock ([`DATABASE_NOW_MS`]).
pub(crate) fn database_now_ms(connection: &mut Tx<'_>) -> Result<i64, crate::StoreError> {
    Ok(connection.query_one(&format!("SELECT {DATABASE_NOW_MS}"), &[])?.try_get(0)?)
}

/// An error and what caused it, as one line: the client says "error connecting to server" and
/// keeps why (refused, no such host, a password refused) in its source.
pub(crate) fn with_causes(error: &tokio_postgres::Error) -> String {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text
}

/// A connection, the statements prepared on it and what its ingestions remember of each
/// workspace: what a worker (or a test) keeps. Its methods block the calling thread, which must
/// not be one of an asynchronous runtime's.
pub(crate) struct Connection {
    /// Runs the connection's messages, on the calling thread, while a call waits for an answer.
    runtime: Runtime,
    client: Client,
    statements: Statements,
    remembered: Remembered,
    plans: Plans,
}

impl Connection {
    /// Connects with `config`.
    pub(crate) fn connect(config: &tokio_postgres::Config) -> Result<Connection, ConnectError> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (client, connection) = runtime.block_on(config.connect(tokio_postgres::NoTls))?;
        // The task reads and writes the socket whenever the thread waits in `block_on`; it ends
        // with the connection, after which the client's calls fail and `is_closed` says so.
        runtime.spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "a PostgreSQL connection ended");
            }
        });
        Ok(Connection {
            runtime,
            client,
            statements: Statements::default(),
            remembered: Remembered::default(),
            plans: Plans::default(),
        })
    }

    /// Connects to `url` (tests).
    #[cfg(test)]
    pub(crate) fn connect_url(url: &str) -> Connection {
        Connection::connect(&url.parse().expect("a PostgreSQL url")).expect("a PostgreSQL server")
    }

    /// Puts the connection in `plans`' mode, for the transactions that follow. A round trip only
    /// when the mode changes: a worker taking ingestions one after the other sets it once.
    pub(crate) fn plan(&mut self, plans: Plans) -> Result<(), tokio_postgres::Error> {
        if self.plans != plans {
            self.batch_execute(plans.settings())?;
            self.plans = plans;
        }
        Ok(())
    }

    /// Statements without parameters, sent as text, outside any transaction.
    pub(crate) fn batch_execute(&mut self, sql: &str) -> Result<(), tokio_postgres::Error> {
        self.runtime.block_on(self.client.batch_execute(sql))
    }

    /// A transaction with the server's default settings (read committed, read and write).
    pub(crate) fn transaction(&mut self) -> Tx<'_> {
        self.begin(Begin::ReadWrite)
    }

    /// A transaction begun as `begin` says; nothing is sent before its first statement.
    pub(crate) fn begin(&mut self, begin: Begin) -> Tx<'_> {
        Tx {
            runtime: &self.runtime,
            client: &self.client,
            statements: &mut self.statements,
            remembered: &mut self.remembered,
            unsent: Some(begin.sql().to_string()),
            savepoint: None,
            finished: false,
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

/// How a transaction begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Begin {
    /// Read committed, the server's default: each statement sees what was committed before it
    /// began, and rows are locked as they are changed.
    ReadWrite,
    /// One snapshot for every statement, and no writes.
    ReadOnlySnapshot,
}

impl Begin {
    fn sql(self) -> &'static str {
        match self {
            Begin::ReadWrite => "START TRANSACTION",
            Begin::ReadOnlySnapshot => "START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
        }
    }
}

/// A transaction on one connection, whose statements are prepared once per connection. The
/// methods are the client's, taking the statement's text. Dropped before [`Tx::commit`], it is
/// rolled back.
pub(crate) struct Tx<'a> {
    runtime: &'a Runtime,
    client: &'a Client,
    statements: &'a mut Statements,
    remembered: &'a mut Remembered,
    /// What begins the transaction (or its savepoint), until it is sent with the first
    /// statement.
    unsent: Option<String>,
    /// The savepoint's name, for a transaction inside another.
    savepoint: Option<String>,
    /// Committed or rolled back.
    finished: bool,
}

impl<'a> Tx<'a> {
    /// What the connection's ingestions remember of each workspace (see
    /// [`crate::postgres::ingestion`]).
    pub(crate) fn remembered(&mut self) -> &mut Remembered {
        self.remembered
    }

    /// Runs `request` on the connection, after the transaction's `BEGIN` if that is not sent
    /// yet: both leave in one write, and the answers come back together. `request` is a future
    /// of the client's, which sends its messages when first polled, so the order of `join!`'s
    /// arguments is the order on the wire.
    ///
    /// Should `BEGIN` fail and the statement succeed, the statement would have run on its own;
    /// the texts of [`Begin`] cannot fail on a live connection, and on a broken one neither
    /// reaches the server.
    fn send<T>(
        runtime: &Runtime,
        client: &Client,
        unsent: &mut Option<String>,
        request: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, tokio_postgres::Error> {
        match unsent.take() {
            None => runtime.block_on(request),
            Some(begin) => {
                let (begun, answer) = runtime.block_on(async { tokio::join!(client.batch_execute(&begin), request) });
                begun?;
                answer
            }
        }
    }

    /// The statement of `sql`, prepared on this connection (now, if it was not).
    fn statement(&mut self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        self.refuse_after_end();
        if let Some(statement) = self.statements.by_sql.get(sql) {
            return Ok(statement.clone());
        }
        let client = self.client;
        let statement = Self::send(self.runtime, client, &mut self.unsent, client.prepare(sql))?;
        if self.statements.by_sql.len() >= Statements::LIMIT {
            self.statements.by_sql.clear();
        }
        self.statements.by_sql.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    /// A statement after [`Tx::query_and_commit`] would run outside the transaction: a bug of the
    /// caller's, stopped here (the worker fails the request and drops the connection).
    fn refuse_after_end(&self) {
        assert!(!self.finished, "a statement was sent after its transaction was committed");
    }

    /// Forgets the statement of `sql` when PostgreSQL says its kept form no longer holds (the
    /// schema changed under it: another instance applied a migration), so that the next use
    /// prepares it again.
    fn check<T>(&mut self, sql: &str, result: Result<T, tokio_postgres::Error>) -> Result<T, tokio_postgres::Error> {
        if let Err(error) = &result {
            use tokio_postgres::error::SqlState;
            if matches!(error.code(), Some(code) if *code == SqlState::FEATURE_NOT_SUPPORTED
                || *code == SqlState::INVALID_SQL_STATEMENT_NAME)
            {
                self.statements.by_sql.remove(sql);
            }
        }
        result
    }

    /// Runs `request` with the kept statement of `sql` (see [`Tx::send`]), and forgets the
    /// statement when PostgreSQL says it no longer holds ([`Tx::check`]).
    fn run_kept<T, F>(
        &mut self,
        sql: &str,
        request: impl FnOnce(&'a Client, Statement) -> F,
    ) -> Result<T, tokio_postgres::Error>
    where
        F: Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let statement = self.statement(sql)?;
        let client = self.client;
        let result = Self::send(self.runtime, client, &mut self.unsent, request(client, statement));
        self.check(sql, result)
    }

    pub(crate) fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        self.run_kept(sql, |client, statement| async move { client.query(&statement, params).await })
    }

    pub(crate) fn query_one(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, tokio_postgres::Error> {
        self.run_kept(sql, |client, statement| async move { client.query_one(&statement, params).await })
    }

    pub(crate) fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, tokio_postgres::Error> {
        self.run_kept(sql, |client, statement| async move { client.query_opt(&statement, params).await })
    }

    pub(crate) fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, tokio_postgres::Error> {
        self.run_kept(sql, |client, statement| async move { client.execute(&statement, params).await })
    }

    /// Runs a statement built to be sent with others on its own.
    pub(crate) fn execute_unanswered(&mut self, statement: &Unanswered<'_>) -> Result<u64, tokio_postgres::Error> {
        self.execute(statement.sql, &statement.params())
    }

    /// A statement sent with its parameters' types in one round trip, not kept: for statements
    /// whose text changes from call to call.
    pub(crate) fn query_typed(
        &mut self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        self.refuse_after_end();
        let client = self.client;
        Self::send(self.runtime, client, &mut self.unsent, client.query_typed(sql, params))
    }

    /// Statements without parameters, sent as text.
    #[cfg(test)]
    pub(crate) fn batch_execute(&mut self, sql: &str) -> Result<(), tokio_postgres::Error> {
        let client = self.client;
        Self::send(self.runtime, client, &mut self.unsent, client.batch_execute(sql))
    }

    /// A savepoint: undone alone when dropped without [`Tx::commit`].
    #[cfg(test)]
    pub(crate) fn transaction(&mut self) -> Result<Tx<'_>, tokio_postgres::Error> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        let name = format!("leadscore_{}", NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let client = self.client;
        Self::send(self.runtime, client, &mut self.unsent, async { Ok::<(), tokio_postgres::Error>(()) })?;
        Ok(Tx {
            runtime: self.runtime,
            client: self.client,
            statements: &mut *self.statements,
            remembered: &mut *self.remembered,
            unsent: Some(format!("SAVEPOINT {name}")),
            savepoint: Some(name),
            finished: false,
        })
    }

    /// Runs `sql`, then each of `then`, and commits, in one round trip: the messages leave in
    /// one write (with `BEGIN`, if no statement was sent before) and PostgreSQL runs them in
    /// order. Nothing may be sent on the transaction afterwards; [`Tx::commit`] then does
    /// nothing.
    ///
    /// Should one of them fail, the ones after it fail too (the transaction is aborted) and
    /// PostgreSQL answers the `COMMIT` by rolling back: nothing of the transaction is stored, and
    /// the first failure is the answer. So a check that must undo the transaction is made by a
    /// statement failing, not by the caller reading its rows.
    pub(crate) fn query_and_commit(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        then: &[Unanswered<'_>],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        assert!(self.savepoint.is_none(), "a savepoint is released, not committed");
        let statement = self.statement(sql)?;
        let mut statements = Vec::with_capacity(then.len());
        for unanswered in then {
            statements.push(self.statement(unanswered.sql)?);
        }
        let (client, begin) = (self.client, self.unsent.take());
        self.finished = true;
        let then_params: Vec<Vec<&(dyn ToSql + Sync)>> = then.iter().map(Unanswered::params).collect();
        // Each request's future sends its messages when first polled: polled in this order, they
        // reach PostgreSQL in this order.
        let mut requests: Vec<Request<'_>> = Vec::with_capacity(then.len() + 3);
        if let Some(begin) = &begin {
            requests.push(Box::pin(async move { client.batch_execute(begin).await.map(|()| None) }));
        }
        let statement = &statement;
        requests.push(Box::pin(async move { client.query(statement, params).await.map(Some) }));
        for (statement, params) in statements.iter().zip(&then_params) {
            requests.push(Box::pin(async move { client.execute(statement, params).await.map(|_| None) }));
        }
        requests.push(Box::pin(async move { client.batch_execute("COMMIT").await.map(|()| None) }));
        let answers = self.runtime.block_on(all_in_order(requests));
        let mut rows = Vec::new();
        for answer in answers {
            if let Some(answered) = answer? {
                rows = answered;
            }
        }
        Ok(rows)
    }

    /// Ends the transaction with `sql` (its commit or its rollback), unless nothing of it was
    /// sent or it has ended already ([`Tx::query_and_commit`]).
    fn finish(&mut self, sql: &str) -> Result<(), tokio_postgres::Error> {
        if std::mem::replace(&mut self.finished, true) || self.unsent.take().is_some() {
            return Ok(());
        }
        self.runtime.block_on(self.client.batch_execute(sql))
    }

    pub(crate) fn commit(mut self) -> Result<(), tokio_postgres::Error> {
        let sql = match &self.savepoint {
            Some(name) => format!("RELEASE SAVEPOINT {name}"),
            None => "COMMIT".to_string(),
        };
        self.finish(&sql)
    }

    #[cfg(test)]
    pub(crate) fn rollback(mut self) -> Result<(), tokio_postgres::Error> {
        self.roll_back()
    }

    fn roll_back(&mut self) -> Result<(), tokio_postgres::Error> {
        let sql = match &self.savepoint {
            Some(name) => format!("ROLLBACK TO SAVEPOINT {name}"),
            None => "ROLLBACK".to_string(),
        };
        self.finish(&sql)
    }
}

/// A statement whose answer is not read, sent after another in the same round trip
/// ([`Tx::query_and_commit`]). It owns its parameters, since it is built before it is sent.
pub(crate) struct Unanswered<'p> {
    pub(crate) sql: &'static str,
    pub(crate) params: Vec<Box<dyn ToSql + Sync + 'p>>,
}

impl Unanswered<'_> {
    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params.iter().map(|param| &**param as &(dyn ToSql + Sync)).collect()
    }
}

/// One request of [`Tx::query_and_commit`]'s: the rows of the statement whose rows are read.
type Request<'r> = Pin<Box<dyn Future<Output = Result<Option<Vec<Row>>, tokio_postgres::Error>> + 'r>>;

/// Waits for every future, polling them in their order each time (so that the first poll of
/// each, which sends its request, follows the one before), and answers their outputs in that
/// order.
async fn all_in_order<'f, T>(mut futures: Vec<Pin<Box<dyn Future<Output = T> + 'f>>>) -> Vec<T> {
    let mut outputs: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|context| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(context) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending { Poll::Pending } else { Poll::Ready(()) }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if !self.finished {
            // A broken connection ends its transaction itself; the worker connects again.
            let _ = self.roll_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    use crate::postgres::testing::TestDatabase;

    /// A proxy between one client and the server that counts the client's turns: the times it
    /// sends after hearing from the server, which is one per round trip.
    struct TurnCounter {
        url: String,
        turns: Arc<AtomicU32>,
    }

    impl TurnCounter {
        fn start(database: &TestDatabase) -> TurnCounter {
            let config: tokio_postgres::Config = database.url.parse().unwrap();
            let host = match &config.get_hosts()[0] {
                tokio_postgres::config::Host::Tcp(host) => host.clone(),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(_) => panic!("the tests' server is reached by TCP"),
            };
            let port = config.get_ports().first().copied().unwrap_or(5432);
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let address = listener.local_addr().unwrap();
            let turns = Arc::new(AtomicU32::new(0));
            let counted = turns.clone();
            std::thread::spawn(move || {
                let (client, _) = listener.accept().unwrap();
                let server = TcpStream::connect((host.as_str(), port)).unwrap();
                let server_spoke = Arc::new(AtomicBool::new(true));
                let (mut from_server, mut to_client) = (server.try_clone().unwrap(), client.try_clone().unwrap());
                let spoke = server_spoke.clone();
                std::thread::spawn(move || {
                    let mut buffer = [0u8; 65536];
                    while let Ok(read @ 1..) = from_server.read(&mut buffer) {
                        // Marked before it is passed on: the client answers only after.
                        spoke.store(true, Ordering::SeqCst);
                        if to_client.write_all(&buffer[..read]).is_err() {
                            return;
                        }
                    }
                });
                let (mut from_client, mut to_server) = (client, server);
                let mut buffer = [0u8; 65536];
                while let Ok(read @ 1..) = from_client.read(&mut buffer) {
                    if server_spoke.swap(false, Ordering::SeqCst) {
                        counted.fetch_add(1, Ordering::SeqCst);
                    }
                    if to_server.write_all(&buffer[..read]).is_err() {
                        return;
                    }
                }
            });
            let path = database.url.rsplit_once('/').map_or("", |(_, name)| name);
            let user = config.get_user().unwrap_or("postgres");
            TurnCounter { url: format!("postgres://{user}@{address}/{path}"), turns }
        }

        fn turns(&self) -> u32 {
            self.turns.load(Ordering::SeqCst)
        }
    }

    #[test]
    fn a_transaction_sends_its_begin_with_its_first_statement_and_nothing_when_it_ran_none() {
        let Some(database) = TestDatabase::create() else { return };
        drop(database.migrated_client());
        let counter = TurnCounter::start(&database);
        let mut connection = super::Connection::connect_url(&counter.url);
        let sql = "SELECT count(*) FROM workspaces WHERE id = $1";
        let mut t = connection.transaction();
        t.query_one(sql, &[&1_i64]).unwrap();
        t.commit().unwrap();

        // Prepared now: a statement and the commit are two round trips, the begin riding with
        // the statement.
        let before = counter.turns();
        let mut t = connection.transaction();
        t.query_one(sql, &[&1_i64]).unwrap();
        t.commit().unwrap();
        assert_eq!(counter.turns() - before, 2);

        let before = counter.turns();
        let mut t = connection.begin(super::Begin::ReadOnlySnapshot);
        t.query_one(sql, &[&1_i64]).unwrap();
        t.query_one(sql, &[&2_i64]).unwrap();
        drop(t);
        assert_eq!(counter.turns() - before, 3, "two statements and the rollback of a dropped transaction");

        let before = counter.turns();
        connection.transaction().commit().unwrap();
        drop(connection.transaction());
        assert_eq!(counter.turns(), before, "a transaction that ran nothing never reached the server");

        let insert = "INSERT INTO workspaces (name, created_at) VALUES ($1, 1)";
        let mut t = connection.transaction();
        t.execute(insert, &[&"prepared"]).unwrap();
        drop(t);
        let before = counter.turns();
        let mut t = connection.transaction();
        let then = [super::Unanswered { sql: insert, params: vec![Box::new("then")] }];
        t.query_and_commit(sql, &[&1_i64], &then).unwrap();
        t.commit().unwrap();
        assert_eq!(counter.turns() - before, 1, "begin, a statement, another and the commit at once");
    }

    #[test]
    fn a_failure_among_the_statements_sent_with_the_commit_commits_none_of_them() {
        let Some(database) = TestDatabase::create() else { return };
        let mut connection = database.migrated_client();
        let insert = "INSERT INTO workspaces (name, created_at) VALUES ($1, 1)";
        let names = |connection: &mut super::Connection| -> Vec<String> {
            let mut t = connection.transaction();
            t.query("SELECT name FROM workspaces ORDER BY name", &[]).unwrap().iter().map(|row| row.get(0)).collect()
        };
        let mut t = connection.transaction();
        t.execute(insert, &[&"before"]).unwrap();
        let then = [
            super::Unanswered { sql: insert, params: vec![Box::new("after")] },
            // The name is unique: the second of the same name fails.
            super::Unanswered { sql: insert, params: vec![Box::new("after")] },
        ];
        let failed = t.query_and_commit("SELECT 1", &[], &then).unwrap_err();
        assert_eq!(failed.code(), Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION), "{failed}");
        drop(t);
        assert!(names(&mut connection).is_empty(), "nothing committed: {:?}", names(&mut connection));

        let mut t = connection.transaction();
        let failed = t.query_and_commit("SELECT 1 / $1::int", &[&0_i32], &then[..1]).unwrap_err();
        assert_eq!(failed.code(), Some(&tokio_postgres::error::SqlState::DIVISION_BY_ZERO), "the first failure");
        drop(t);
        assert!(names(&mut connection).is_empty());

        let mut t = connection.transaction();
        t.execute(insert, &[&"before"]).unwrap();
        let rows = t.query_and_commit("SELECT 7", &[], &then[..1]).unwrap();
        assert_eq!(rows[0].get::<_, i32>(0), 7);
        t.commit().unwrap();
        assert_eq!(names(&mut connection), ["after", "before"]);
    }

    #[test]
    fn the_statement_sent_with_begin_is_inside_the_transaction() {
        let Some(database) = TestDatabase::create() else { return };
        let mut connection = database.migrated_client();
        let insert = "INSERT INTO workspaces (name, created_at) VALUES ($1, 1)";
        let mut t = connection.transaction();
        t.execute(insert, &[&"undone"]).unwrap();
        t.rollback().unwrap();
        let mut t = connection.transaction();
        t.execute(insert, &[&"undone by a later failure"]).unwrap();
        drop(t.query_one("SELECT 1/0", &[]).unwrap_err());
        drop(t);
        let mut t = connection.begin(super::Begin::ReadOnlySnapshot);
        assert!(t.execute(insert, &[&"refused"]).is_err(), "a read-only transaction cannot write");
        drop(t);
        let mut t = connection.transaction();
        let names: Vec<String> =
            t.query("SELECT name FROM workspaces", &[]).unwrap().iter().map(|row| row.get(0)).collect();
        assert!(names.is_empty(), "{names:?}");
    }

    #[test]
    fn a_statement_is_prepared_once_per_connection_and_again_after_the_schema_changes_under_it() {
        let Some(database) = TestDatabase::create() else { return };
        let mut connection = database.migrated_client();
        let prepared = |connection: &mut super::Connection| -> i64 {
            let mut t = connection.transaction();
            let count: i64 = t.query_one("SELECT count(*) FROM pg_prepared_statements", &[]).unwrap().get(0);
            t.commit().unwrap();
            count
        };
        let first = prepared(&mut connection);
        for _ in 0..3 {
            let mut t = connection.transaction();
            t.query("SELECT * FROM workspaces WHERE id = $1", &[&1_i64]).unwrap();
            t.commit().unwrap();
        }
        assert_eq!(prepared(&mut connection), first + 1, "one statement more, however often it ran");
        // Another connection changes the table's columns: the kept statement's result no longer
        // holds, the transaction fails, and the next one prepares it again.
        let mut other = database.migrated_client();
        other.batch_execute("ALTER TABLE workspaces ADD COLUMN extra TEXT").unwrap();
        let mut t = connection.transaction();
        assert!(t.query("SELECT * FROM workspaces WHERE id = $1", &[&1_i64]).is_err());
        drop(t);
        let mut t = connection.transaction();
        assert!(t.query("SELECT * FROM workspaces WHERE id = $1", &[&1_i64]).is_ok(), "prepared again");
    }
}
