//! The cache version: a counter that moves in the same transaction as every change to what a
//! running service keeps in memory between requests, so that each process sharing the store
//! (service instances on one PostgreSQL database, or the command line beside a service on a
//! data directory) learns within a second that its caches are stale.
//!
//! What it covers: the `api_keys` table, which the service caches twice (authenticated keys,
//! and the origins browser keys are bound to, for CORS). Nothing else stored is cached across
//! requests: accounts and sessions are read at every console request, webhooks at every claim of
//! the outbox, and compiled models are cached by the id of a model version, whose text never
//! changes. A new cache of stored rows needs a trigger on its tables that moves this counter.
//!
//! Why a counter read once a second rather than PostgreSQL's `LISTEN/NOTIFY`: a notification
//! is instant but is lost while the listening connection is down (a restart of PostgreSQL, a
//! network cut), after which nothing tells the instance that it missed one; a poll of one row
//! once a second per instance costs next to nothing, learns of any change however long the
//! connection was down (the counter only grows), and works alike on SQLite, where the command
//! line writes to the same file as the service and there is nothing to listen to.
//!
//! The counter is kept by triggers (`migrations/0022_cache_versions.sql`, and PostgreSQL's
//! `postgres/migrations/0003_cache_versions.sql`) rather than by the functions that write keys:
//! every path that changes a key (the service, the command line, a migration, an operator's SQL)
//! moves it, and none can forget to.

use rusqlite::Connection;

use crate::StoreError;

/// The current cache version: any change to it means the caches it covers may be stale.
pub fn read(connection: &Connection) -> Result<i64, StoreError> {
    Ok(connection.prepare_cached("SELECT version FROM cache_versions WHERE id = 1")?.query_row([], |row| row.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{self, Scope};

    #[test]
    fn every_change_to_a_key_moves_the_version_and_reads_do_not() {
        let mut connection = Connection::open_in_memory().unwrap();
        crate::migrate::apply(&mut connection).unwrap();
        let workspace = crate::workspaces::find_or_create(&connection, "acme", 1).unwrap();
        let start = read(&connection).unwrap();

        let key =
            keys::create_named(&connection, workspace.id, Scope::Browser, "site", &["https://a.example".into()], 2)
                .unwrap();
        let created = read(&connection).unwrap();
        assert!(created > start, "a new key (and its origins) moves it");

        keys::authenticate(&connection, &key.secret).unwrap();
        keys::browser_origins(&connection).unwrap();
        assert_eq!(read(&connection).unwrap(), created, "reading keys leaves it");

        assert!(!keys::revoke(&connection, workspace.id, key.id + 1, 3).unwrap());
        assert_eq!(read(&connection).unwrap(), created, "revoking no key leaves it");
        assert!(keys::revoke(&connection, workspace.id, key.id, 3).unwrap());
        let revoked = read(&connection).unwrap();
        assert!(revoked > created, "a revocation moves it");

        connection.execute("DELETE FROM api_keys", []).unwrap();
        assert!(read(&connection).unwrap() > revoked, "a deletion moves it");
    }

    #[test]
    fn a_change_rolled_back_leaves_the_version() {
        let mut connection = Connection::open_in_memory().unwrap();
        crate::migrate::apply(&mut connection).unwrap();
        let workspace = crate::workspaces::find_or_create(&connection, "acme", 1).unwrap();
        let start = read(&connection).unwrap();
        let transaction = connection.transaction().unwrap();
        keys::create(&transaction, workspace.id, Scope::Read, 2).unwrap();
        drop(transaction);
        assert_eq!(read(&connection).unwrap(), start);
    }
}
