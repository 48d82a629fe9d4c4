//! Where a service's data is, as the command line names it: a directory holding one SQLite file
//! (`--data DIR`), or a PostgreSQL database (`--database postgres://...`), opened behind the one
//! storage interface ([`Storage`]) the service and the commands use.

use std::path::PathBuf;
use std::sync::Arc;

use crate::postgres::{PgOptions, PgStore};
use crate::{Storage, Store, StoreError};

/// A store's place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A data directory with `leadscore.db` in it.
    Directory(PathBuf),
    /// A PostgreSQL connection URL (`postgres://USER@HOST/DB`) or key-value string.
    Postgres(String),
}

/// What the opening process does with the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The service, which stores events: for SQLite, the one process that holds the directory
    /// (see [`Store::open_ingesting`]), keeping `recent_message_ids` in memory.
    Ingesting { recent_message_ids: usize },
    /// A command beside it: anything but events (SQLite's writer refuses them, see
    /// [`Store::open`]).
    Beside,
}

impl Location {
    /// Opens the store, applying the migrations it lacks, for `access`.
    pub fn open(&self, access: Access) -> Result<Arc<dyn Storage>, StoreError> {
        self.open_with(access, &PgOptions::default())
    }

    /// Same as [`Location::open`], with `postgres`' settings for a PostgreSQL database (a data
    /// directory has no use for them).
    pub fn open_with(&self, access: Access, postgres: &PgOptions) -> Result<Arc<dyn Storage>, StoreError> {
        match (self, access) {
            (Location::Directory(dir), Access::Ingesting { recent_message_ids }) => {
                Ok(Arc::new(Store::open_ingesting(dir, recent_message_ids)?))
            }
            (Location::Directory(dir), Access::Beside) => Ok(Arc::new(Store::open(dir)?)),
            // Every instance and command ingests through PostgreSQL's own constraints and locks:
            // nothing is held in one process's memory that another could contradict.
            (Location::Postgres(url), _) => Ok(Arc::new(PgStore::connect(url, postgres.clone())?)),
        }
    }

    /// Whether a store is there already, for commands that must not create one where a path
    /// was mistyped: a data directory's database file exists (a PostgreSQL database is always
    /// there, or connecting says it is not).
    pub fn exists(&self) -> bool {
        match self {
            Location::Directory(dir) => dir.join("leadscore.db").is_file(),
            Location::Postgres(_) => true,
        }
    }
}

impl std::fmt::Display for Location {
    /// The directory, or the URL without its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Directory(dir) => write!(f, "{}", dir.display()),
            Location::Postgres(url) => write!(f, "{}", crate::postgres::redacted(url)),
        }
    }
}
