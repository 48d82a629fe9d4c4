//! The store's error type: what a caller reports (not found, a conflict), what storage refuses
//! (a full disk, an I/O error), and what this version cannot read.

use std::path::PathBuf;

/// A storage failure. `Conflict` and `NotFound` are the caller's to report; the rest are faults.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {}", postgres_message(.0))]
    Postgres(#[from] postgres::Error),
    #[error("cannot connect to PostgreSQL at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("cannot open the data directory {path}: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("the migration {version} ({name}) was changed after it was applied; restore it")]
    MigrationChanged { version: u32, name: String },
    #[error("the database was made by a newer leadscore (schema {found}, this one knows {known})")]
    TooNew { found: u32, known: u32 },
    /// Stored data that this version of leadscore cannot read: a row that is not what the schema
    /// promises (an unknown value, a missing row it refers to). The message names the row.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A stored scoring model version that this version of leadscore does not compile: stored by
    /// a version that accepted what this one refuses, or pinned to a predictive model that no
    /// longer fits it.
    #[error("stored model {model_id} does not compile: {reason}")]
    ModelDoesNotCompile { model_id: i64, reason: String },
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

impl StoreError {
    /// Whether the error comes from storage rather than from the data or the caller: a full
    /// disk, an I/O error, a file that cannot be written, a database busy beyond its timeout.
    pub fn is_storage_failure(&self) -> bool {
        use rusqlite::ErrorCode::*;
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Postgres(error) => postgres_is_unavailable(error),
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(failure, _)) => matches!(
                failure.code,
                DiskFull | SystemIoFailure | ReadOnly | CannotOpen | DatabaseBusy | DatabaseLocked | OutOfMemory
            ),
            _ => false,
        }
    }

    /// Whether the work failed only because another transaction ran at the same time (a
    /// deadlock, a serialization failure, a lock that did not come in time, a row the other
    /// created first): nothing of it was stored, sending it again is safe, and storage itself
    /// is fine.
    pub fn is_race(&self) -> bool {
        match self {
            StoreError::RolledBack(_) => true,
            StoreError::Postgres(error) => {
                error.code().is_some_and(|code| matches!(code.code(), "40001" | "40P01" | "55P03"))
            }
            _ => false,
        }
    }

    /// Whether the error says that stored data is not what this version can read (a corrupt or
    /// incompatible row, a value of the wrong type), rather than that storage or the caller failed:
    /// an operator must look at the data, and retrying does not help.
    pub fn is_unreadable_data(&self) -> bool {
        use rusqlite::Error::*;
        match self {
            StoreError::Corrupt(_) | StoreError::ModelDoesNotCompile { .. } => true,
            StoreError::Sqlite(FromSqlConversionFailure(..) | InvalidColumnType(..) | IntegralValueOutOfRange(..)) => {
                true
            }
            StoreError::Sqlite(Utf8Error(..)) => true,
            // A column of another type than the schema promises.
            StoreError::Postgres(error) => error.to_string().starts_with("error deserializing"),
            StoreError::Sqlite(SqliteFailure(failure, _)) => {
                matches!(failure.code, rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
            }
            _ => false,
        }
    }
}

/// Whether a PostgreSQL error says the database cannot take the work now rather than that the
/// work is wrong: the connection is gone, the server is shutting down or out of resources (a full
/// disk), a statement ran past its timeout, or the transaction lost a race (a deadlock, a
/// serialization failure). Nothing of the transaction was committed, and sending it again is
/// safe.
fn postgres_is_unavailable(error: &postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    let Some(code) = error.code() else {
        // No SQLSTATE: unavailable if it is an I/O error (a broken connection), not if a value
        // did not convert or a query found another number of rows than it expects.
        return std::error::Error::source(error).is_some_and(|cause| cause.is::<std::io::Error>());
    };
    let code = code.code();
    // 08: connection exceptions; 53: insufficient resources (53100 is a full disk); 57: operator
    // intervention (a shutdown, a cancelled statement); 58: system errors (I/O); 40001 and 40P01:
    // serialization failures and deadlocks; 55P03: a lock not available in time.
    ["08", "53", "57", "58"].iter().any(|class| code.starts_with(class)) || matches!(code, "40001" | "40P01" | "55P03")
}

/// A PostgreSQL error with the server's message and detail, rather than `db error`.
fn postgres_message(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        },
        None => error.to_string(),
    }
}
