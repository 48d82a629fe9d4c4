//! PostgreSQL's cache version (see [`crate::cache_versions`] for what it covers and why it is
//! polled rather than notified): one row moved by a row-level trigger on `api_keys`
//! (`migrations/0003_cache_versions.sql`), as SQLite's triggers move theirs.
//!
//! The row is a point of contention only for writes of keys, which are rare: concurrent key
//! changes of several instances wait on its lock in turn, and READ COMMITTED re-reads the row
//! after the wait, so that no increment is lost.

use crate::StoreError;
use crate::postgres::tx::Tx;

/// The current cache version: any change to it means the caches it covers may be stale.
pub(crate) fn read(connection: &mut Tx<'_>) -> Result<i64, StoreError> {
    Ok(connection.query_one("SELECT version FROM cache_versions WHERE id = 1", &[])?.try_get(0)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Scope;
    use crate::postgres::testing::TestDatabase;
    use crate::postgres::{keys, workspaces};

    #[test]
    fn every_change_to_a_key_moves_the_version_and_reads_do_not() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut c = client.transaction();
        let workspace = workspaces::find_or_create(&mut c, "acme", 1).unwrap();
        let start = read(&mut c).unwrap();

        let key =
            keys::create_named(&mut c, workspace.id, Scope::Browser, "site", &["https://a.example".into()], 2).unwrap();
        let created = read(&mut c).unwrap();
        assert!(created > start, "a new key (and its origins) moves it");

        keys::authenticate(&mut c, &key.secret).unwrap();
        keys::browser_origins(&mut c).unwrap();
        assert_eq!(read(&mut c).unwrap(), created, "reading keys leaves it");

        assert!(!keys::revoke(&mut c, workspace.id, key.id + 1, 3).unwrap());
        assert_eq!(read(&mut c).unwrap(), created, "revoking no key leaves it");
        assert!(keys::revoke(&mut c, workspace.id, key.id, 3).unwrap());
        let revoked = read(&mut c).unwrap();
        assert!(revoked > created, "a revocation moves it");

        c.execute("DELETE FROM api_keys", &[]).unwrap();
        assert!(read(&mut c).unwrap() > revoked, "a deletion moves it");
    }

    #[test]
    fn a_change_is_seen_by_others_once_committed_and_never_if_rolled_back() {
        let Some(database) = TestDatabase::create() else { return };
        let mut writer = database.migrated_client();
        let mut reader = database.migrated_client();
        let mut read_apart = || read(&mut reader.transaction()).unwrap();
        let workspace = {
            let mut c = writer.transaction();
            let workspace = workspaces::find_or_create(&mut c, "acme", 1).unwrap();
            c.commit().unwrap();
            workspace
        };
        let start = read_apart();

        let mut c = writer.transaction();
        keys::create(&mut c, workspace.id, Scope::Read, 2).unwrap();
        assert_eq!(read_apart(), start, "not before the commit");
        c.rollback().unwrap();
        assert_eq!(read_apart(), start, "nor after a rollback");

        let mut c = writer.transaction();
        keys::create(&mut c, workspace.id, Scope::Read, 3).unwrap();
        c.commit().unwrap();
        assert!(read_apart() > start, "after the commit");
    }
}
