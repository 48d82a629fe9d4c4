//! The transaction every query function of the PostgreSQL store takes ([`Tx`]): the client's
//! transaction, with each statement prepared once per connection and kept ([`Statements`]).
//!
//! The client prepares a statement given as text anew at every call: a round trip to parse and
//! describe it, then another to run it, and PostgreSQL plans it each time. An ingestion runs a
//! dozen statements, so that was half its round trips and most of the database's work per
//! event. Kept prepared, a statement is one round trip, and PostgreSQL reuses its plan once it
//! has seen the parameters do not change it (its generic plan). No crate does this for the
//! blocking client (connection pools of the asynchronous one do, with a pool this store does not
//! need); the cache is a map from the statement's text, per connection, emptied when full.
//!
//! How PostgreSQL plans a kept statement is a setting of the connection ([`Plans`]), which
//! ingestion's transactions change (see [`Plans::Kept`]).

use std::collections::HashMap;

use postgres::types::{ToSql, Type};
use postgres::{Row, Statement};

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

/// A connection, the statements prepared on it and what its ingestions remember of each
/// workspace: what a worker (or a test) keeps.
pub(crate) struct Connection {
    pub(crate) client: postgres::Client,
    statements: Statements,
    remembered: Remembered,
    plans: Plans,
}

impl Connection {
    pub(crate) fn new(client: postgres::Client) -> Connection {
        Connection {
            client,
            statements: Statements::default(),
            remembered: Remembered::default(),
            plans: Plans::default(),
        }
    }

    /// Puts the connection in `plans`' mode, for the transactions that follow. A round trip only
    /// when the mode changes: a worker taking ingestions one after the other sets it once.
    pub(crate) fn plan(&mut self, plans: Plans) -> Result<(), postgres::Error> {
        if self.plans != plans {
            self.client.batch_execute(plans.settings())?;
            self.plans = plans;
        }
        Ok(())
    }

    /// A transaction with the connection's default settings.
    pub(crate) fn transaction(&mut self) -> Result<Tx<'_>, postgres::Error> {
        Ok(Tx { inner: self.client.transaction()?, statements: &mut self.statements, remembered: &mut self.remembered })
    }

    /// A transaction begun by `builder`'s settings (isolation, read-only).
    pub(crate) fn build_transaction(
        &mut self,
        configure: impl FnOnce(postgres::TransactionBuilder<'_>) -> postgres::TransactionBuilder<'_>,
    ) -> Result<Tx<'_>, postgres::Error> {
        let inner = configure(self.client.build_transaction()).start()?;
        Ok(Tx { inner, statements: &mut self.statements, remembered: &mut self.remembered })
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

impl std::ops::Deref for Connection {
    type Target = postgres::Client;

    fn deref(&self) -> &postgres::Client {
        &self.client
    }
}

impl std::ops::DerefMut for Connection {
    fn deref_mut(&mut self) -> &mut postgres::Client {
        &mut self.client
    }
}

/// A transaction on one connection, whose statements are prepared once per connection. The
/// methods are the client's, taking the statement's text.
pub(crate) struct Tx<'a> {
    inner: postgres::Transaction<'a>,
    statements: &'a mut Statements,
    remembered: &'a mut Remembered,
}

impl<'a> Tx<'a> {
    /// What the connection's ingestions remember of each workspace (see
    /// [`crate::postgres::ingestion`]).
    pub(crate) fn remembered(&mut self) -> &mut Remembered {
        self.remembered
    }

    /// The statement of `sql`, prepared on this connection (now, if it was not).
    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.statements.by_sql.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.inner.prepare(sql)?;
        if self.statements.by_sql.len() >= Statements::LIMIT {
            self.statements.by_sql.clear();
        }
        self.statements.by_sql.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    /// Forgets the statement of `sql` when PostgreSQL says its kept form no longer holds (the
    /// schema changed under it: another instance applied a migration), so that the next use
    /// prepares it again.
    fn check<T>(&mut self, sql: &str, result: Result<T, postgres::Error>) -> Result<T, postgres::Error> {
        if let Err(error) = &result {
            use postgres::error::SqlState;
            if matches!(error.code(), Some(code) if *code == SqlState::FEATURE_NOT_SUPPORTED
                || *code == SqlState::INVALID_SQL_STATEMENT_NAME)
            {
                self.statements.by_sql.remove(sql);
            }
        }
        result
    }

    pub(crate) fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, postgres::Error> {
        let statement = self.statement(sql)?;
        let result = self.inner.query(&statement, params);
        self.check(sql, result)
    }

    pub(crate) fn query_one(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, postgres::Error> {
        let statement = self.statement(sql)?;
        let result = self.inner.query_one(&statement, params);
        self.check(sql, result)
    }

    pub(crate) fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, postgres::Error> {
        let statement = self.statement(sql)?;
        let result = self.inner.query_opt(&statement, params);
        self.check(sql, result)
    }

    pub(crate) fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, postgres::Error> {
        let statement = self.statement(sql)?;
        let result = self.inner.execute(&statement, params);
        self.check(sql, result)
    }

    /// A statement sent with its parameters' types in one round trip, not kept: for statements
    /// whose text changes from call to call.
    pub(crate) fn query_typed(
        &mut self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>, postgres::Error> {
        self.inner.query_typed(sql, params)
    }

    /// Statements without parameters, sent as text.
    #[cfg(test)]
    pub(crate) fn batch_execute(&mut self, sql: &str) -> Result<(), postgres::Error> {
        self.inner.batch_execute(sql)
    }

    /// A savepoint: undone alone when dropped without [`Tx::commit`].
    #[cfg(test)]
    pub(crate) fn transaction(&mut self) -> Result<Tx<'_>, postgres::Error> {
        Ok(Tx {
            inner: self.inner.transaction()?,
            statements: &mut *self.statements,
            remembered: &mut *self.remembered,
        })
    }

    pub(crate) fn commit(self) -> Result<(), postgres::Error> {
        self.inner.commit()
    }

    #[cfg(test)]
    pub(crate) fn rollback(self) -> Result<(), postgres::Error> {
        self.inner.rollback()
    }
}

#[cfg(test)]
mod tests {
    use crate::postgres::testing::TestDatabase;

    #[test]
    fn a_statement_is_prepared_once_per_connection_and_again_after_the_schema_changes_under_it() {
        let Some(database) = TestDatabase::create() else { return };
        let mut connection = database.migrated_client();
        let prepared = |connection: &mut super::Connection| -> i64 {
            let mut t = connection.transaction().unwrap();
            let count: i64 = t.query_one("SELECT count(*) FROM pg_prepared_statements", &[]).unwrap().get(0);
            t.commit().unwrap();
            count
        };
        let first = prepared(&mut connection);
        for _ in 0..3 {
            let mut t = connection.transaction().unwrap();
            t.query("SELECT * FROM workspaces WHERE id = $1", &[&1_i64]).unwrap();
            t.commit().unwrap();
        }
        assert_eq!(prepared(&mut connection), first + 1, "one statement more, however often it ran");
        // Another connection changes the table's columns: the kept statement's result no longer
        // holds, the transaction fails, and the next one prepares it again.
        let mut other = database.migrated_client();
        other.batch_execute("ALTER TABLE workspaces ADD COLUMN extra TEXT").unwrap();
        let mut t = connection.transaction().unwrap();
        assert!(t.query("SELECT * FROM workspaces WHERE id = $1", &[&1_i64]).is_err());
        drop(t);
        let mut t = connection.transaction().unwrap();
        assert!(t.query("SELECT * FROM workspaces WHERE id = $1", &[&1_i64]).is_ok(), "prepared again");
    }
}
