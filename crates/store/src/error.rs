//! The store's error type: what a caller reports (not found, a conflict), what storage refuses
//! (a full disk, an I/O error), and what this version cannot read.

use std::path::PathBuf;

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
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(failure, _)) => matches!(
                failure.code,
                DiskFull | SystemIoFailure | ReadOnly | CannotOpen | DatabaseBusy | DatabaseLocked | OutOfMemory
            ),
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
            StoreError::Sqlite(SqliteFailure(failure, _)) => {
                matches!(failure.code, rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
            }
            _ => false,
        }
    }
}
