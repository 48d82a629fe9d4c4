//! PostgreSQL queries of the workspaces family (see [`crate::workspaces`] for SQLite's): the
//! tenants every other table is scoped by.
//!
//! Two instances may create the same workspace at once: its name's unique constraint decides,
//! and the one that loses reads the winner's row instead of failing.

use crate::StoreError;
use crate::postgres::tx::Tx;
use crate::workspaces::Workspace;

/// The workspace named `name`, created at `now` if there is none.
pub(crate) fn find_or_create(connection: &mut Tx<'_>, name: &str, now: i64) -> Result<Workspace, StoreError> {
    // Found first: the workspace exists almost always, and an insert that does nothing would
    // still spend an id.
    if let Some(workspace) = find(connection, name)? {
        return Ok(workspace);
    }
    let inserted = connection.query_opt(
        "INSERT INTO workspaces (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING id",
        &[&name, &now],
    )?;
    if let Some(row) = inserted {
        return Ok(Workspace { id: row.try_get(0)?, name: name.to_string() });
    }
    // Another transaction created it since the first look and has committed (the insert waited
    // for it): read committed, this statement sees its row.
    find(connection, name)?
        .ok_or_else(|| StoreError::Corrupt(format!("the workspace `{name}` conflicts on insert but cannot be read")))
}

/// The workspace of this name, if there is one.
pub(crate) fn find(connection: &mut Tx<'_>, name: &str) -> Result<Option<Workspace>, StoreError> {
    let row = connection.query_opt("SELECT id, name FROM workspaces WHERE name = $1", &[&name])?;
    row.map(|row| Ok(Workspace { id: row.try_get(0)?, name: row.try_get(1)? })).transpose()
}

/// Returns once a session of `database` waits for a lock another holds, or once `meeting` (the
/// thread that should meet the lock) has ended: a test that makes two transactions meet knows the
/// second has reached the first's lock, and one whose second took no lock ends to fail its
/// assertions rather than waiting for ever (the account families' tests use it too).
#[cfg(test)]
pub(crate) fn wait_until_one_waits_for_a_lock<T>(
    database: &crate::postgres::testing::TestDatabase,
    meeting: &std::thread::JoinHandle<T>,
) {
    let mut observer = postgres::Client::connect(&database.url, postgres::NoTls).unwrap();
    while !meeting.is_finished() {
        let waiting: i64 = observer
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .unwrap()
            .get(0);
        if waiting > 0 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::testing::TestDatabase;

    #[test]
    fn a_name_has_one_workspace() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut transaction = client.transaction();
        let acme = find_or_create(&mut transaction, "acme", 1).unwrap();
        let again = find_or_create(&mut transaction, "acme", 2).unwrap();
        let other = find_or_create(&mut transaction, "globex", 3).unwrap();
        assert_eq!(acme, again);
        assert_eq!(acme.name, "acme");
        assert_ne!(acme.id, other.id);
    }

    #[test]
    fn a_workspace_created_meanwhile_by_another_transaction_is_found_not_refused() {
        let Some(database) = TestDatabase::create() else { return };
        let mut first = database.migrated_client();
        let mut creating = first.transaction();
        let created = find_or_create(&mut creating, "acme", 1).unwrap();
        // The other transaction finds no committed row and waits on the insert's conflict.
        let url = database.url.clone();
        let late = std::thread::spawn(move || {
            let mut second = crate::postgres::Connection::connect_url(&url);
            let mut transaction = second.transaction();
            find_or_create(&mut transaction, "acme", 2).unwrap()
        });
        wait_until_one_waits_for_a_lock(&database, &late);
        creating.commit().unwrap();
        assert_eq!(late.join().unwrap(), created);
    }
}
