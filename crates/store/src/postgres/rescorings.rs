//! PostgreSQL queries of the rescorings family (see [`crate::rescorings`] for SQLite's): one row
//! per workspace (`rescorings`), the running or the last rescoring of its leads after a model
//! activation, with how far it got.
//!
//! # How it differs from SQLite
//! [`begin`] reads whether a rescoring runs and then writes: under SQLite's single writer nothing
//! comes between. Here it first locks the workspace's row as the models family does
//! ([`super::models::lock_workspace`]), so that of two instances activating at once the second
//! sees the first's rescoring and is refused (or, at start, starts over from it). The progress
//! of a running rescoring ([`advance`], [`finish`]) is written by the one instance that runs it.

use crate::StoreError;
use crate::postgres::models::lock_workspace;
use crate::postgres::tx::Tx;
use crate::rescorings::*;

const COLUMNS: &str = "r.workspace_id, r.model_id, m.version, r.cause, r.after_lead_id, r.done, r.total, r.started_at,
     r.finished_at, r.error, r.revert_automatic_since
     FROM rescorings r JOIN models m ON m.id = r.model_id";

fn from_row(row: &postgres::Row) -> Result<Rescoring, StoreError> {
    Ok(Rescoring {
        workspace_id: row.try_get(0)?,
        model_id: row.try_get(1)?,
        model_version: row.try_get(2)?,
        cause: row.try_get(3)?,
        after_lead_id: row.try_get(4)?,
        done: row.try_get(5)?,
        total: row.try_get(6)?,
        started_at: row.try_get(7)?,
        finished_at: row.try_get(8)?,
        error: row.try_get(9)?,
        revert_automatic_since: row.try_get(10)?,
    })
}

/// The workspace's running or last rescoring.
pub(crate) fn get(connection: &mut Tx<'_>, workspace_id: i64) -> Result<Option<Rescoring>, StoreError> {
    connection
        .query_opt(&format!("SELECT {COLUMNS} WHERE r.workspace_id = $1"), &[&workspace_id])?
        .map(|row| from_row(&row))
        .transpose()
}

/// Records the start of a rescoring of every lead of the workspace with `model_id`.
pub(crate) fn begin(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    model_id: i64,
    cause: &str,
    revert_automatic_since: Option<i64>,
    if_running: IfRunning,
    now: i64,
) -> Result<(), StoreError> {
    lock_workspace(connection, workspace_id)?;
    let running = get(connection, workspace_id)?.filter(|r| r.finished_at.is_none());
    if if_running == IfRunning::Refuse && running.is_some() {
        return Err(StoreError::Rescoring);
    }
    // A rescoring that starts over a rollback's unfinished one still owes the rollback's reverts.
    let revert_automatic_since = revert_automatic_since.or(running.and_then(|r| r.revert_automatic_since));
    connection.execute(
        "INSERT INTO rescorings (workspace_id, model_id, cause, after_lead_id, done, total, started_at, finished_at,
                                 error, revert_automatic_since)
         SELECT $1, $2, $3, 0, 0, count(*), $4, NULL, NULL, $5
         FROM leads WHERE workspace_id = $1 AND merged_into IS NULL
         ON CONFLICT (workspace_id) DO UPDATE SET
             model_id = excluded.model_id, cause = excluded.cause, after_lead_id = 0, done = 0,
             total = excluded.total, started_at = excluded.started_at, finished_at = NULL, error = NULL,
             revert_automatic_since = excluded.revert_automatic_since",
        &[&workspace_id, &model_id, &cause, &now, &revert_automatic_since],
    )?;
    Ok(())
}

/// Records that the leads up to `after_lead_id` are done, `done` in all.
pub(crate) fn advance(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    after_lead_id: i64,
    done: i64,
) -> Result<(), StoreError> {
    connection.execute(
        "UPDATE rescorings SET after_lead_id = $1, done = $2 WHERE workspace_id = $3",
        &[&after_lead_id, &done, &workspace_id],
    )?;
    Ok(())
}

/// Records the end of the workspace's rescoring, with the error that stopped it, if any.
pub(crate) fn finish(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    error: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    connection.execute(
        "UPDATE rescorings SET finished_at = $1, error = $2 WHERE workspace_id = $3",
        &[&now, &error, &workspace_id],
    )?;
    Ok(())
}

/// Every rescoring that has not finished (to resume at start).
pub(crate) fn unfinished(connection: &mut Tx<'_>) -> Result<Vec<Rescoring>, StoreError> {
    let rows =
        connection.query(&format!("SELECT {COLUMNS} WHERE r.finished_at IS NULL ORDER BY r.workspace_id"), &[])?;
    rows.iter().map(from_row).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::postgres::models;
    use crate::postgres::models::tests::workspace;
    use crate::postgres::testing::TestDatabase;

    #[test]
    fn a_second_rescoring_is_refused_until_the_first_finishes_and_progress_is_kept() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut c = client.transaction().unwrap();
        let ws = workspace(&mut c, "w");
        c.execute(
            "INSERT INTO leads (id, workspace_id, created_at, updated_at, merged_into) VALUES
                 (1, $1, 0, 0, NULL), (2, $1, 0, 0, NULL), (3, $1, 0, 0, 1)",
            &[&ws],
        )
        .unwrap();
        let v1 = models::add(&mut c, ws, "[scores.s]", &BTreeMap::new(), None, 1).unwrap();
        begin(&mut c, ws, v1.id, "model v1", None, IfRunning::Refuse, 2).unwrap();
        assert!(matches!(begin(&mut c, ws, v1.id, "again", None, IfRunning::Refuse, 3), Err(StoreError::Rescoring)));
        assert_eq!(get(&mut c, ws).unwrap().map(|r| r.total), Some(2), "merged leads are not rescored");
        advance(&mut c, ws, 41, 7).unwrap();
        let running = get(&mut c, ws).unwrap().unwrap();
        assert_eq!((running.after_lead_id, running.done, running.model_version), (41, 7, 1));
        assert_eq!(unfinished(&mut c).unwrap().len(), 1);
        begin(&mut c, ws, v1.id, "restart", Some(5), IfRunning::Restart, 4).unwrap();
        let restarted = get(&mut c, ws).unwrap().unwrap();
        assert_eq!((restarted.after_lead_id, restarted.revert_automatic_since), (0, Some(5)));
        // Starting over again keeps the reverts the rollback's rescoring owes.
        begin(&mut c, ws, v1.id, "restart", None, IfRunning::Restart, 5).unwrap();
        assert_eq!(get(&mut c, ws).unwrap().unwrap().revert_automatic_since, Some(5));
        finish(&mut c, ws, Some("stopped"), 6).unwrap();
        let finished = get(&mut c, ws).unwrap().unwrap();
        assert_eq!((finished.finished_at, finished.error.as_deref()), (Some(6), Some("stopped")));
        assert!(unfinished(&mut c).unwrap().is_empty());
        begin(&mut c, ws, v1.id, "model v1", None, IfRunning::Refuse, 7).unwrap();
        let again = get(&mut c, ws).unwrap().unwrap();
        assert_eq!((again.finished_at, again.error, again.revert_automatic_since), (None, None, None));
    }

    #[test]
    fn of_two_instances_beginning_at_once_the_second_is_refused() {
        let Some(database) = TestDatabase::create() else { return };
        let mut first = database.migrated_client();
        let mut second =
            crate::postgres::Connection::new(postgres::Client::connect(&database.url, postgres::NoTls).unwrap());
        let (ws, model) = {
            let mut c = first.transaction().unwrap();
            let ws = workspace(&mut c, "w");
            let model = models::add(&mut c, ws, "[scores.s]", &BTreeMap::new(), None, 1).unwrap().id;
            c.commit().unwrap();
            (ws, model)
        };
        let mut one = first.transaction().unwrap();
        begin(&mut one, ws, model, "first", None, IfRunning::Refuse, 2).unwrap();
        // The second waits for the first's lock, then finds its rescoring running.
        let beginning = std::thread::spawn(move || {
            let mut two = second.transaction().unwrap();
            begin(&mut two, ws, model, "second", None, IfRunning::Refuse, 3)
        });
        one.commit().unwrap();
        assert!(matches!(beginning.join().unwrap(), Err(StoreError::Rescoring)));
        let mut c = first.transaction().unwrap();
        assert_eq!(get(&mut c, ws).unwrap().map(|r| r.cause), Some("first".to_string()));
    }
}
