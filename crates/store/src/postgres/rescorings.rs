//! PostgreSQL queries of the rescorings family (see [`crate::rescorings`] for SQLite's): one row
//! per workspace (`rescorings`), the running or the last rescoring of its leads after a model
//! activation, and its ranges of leads (`rescoring_ranges`), each with how far it got.
//!
//! # How it differs from SQLite
//! - [`begin`] reads whether a rescoring runs and then writes: under SQLite's single writer
//!   nothing comes between. Here it first locks the workspace's row as the models family does
//!   ([`super::models::lock_workspace`]), so that of two instances activating at once the second
//!   sees the first's rescoring and is refused (or, at start, starts over from it).
//! - Several instances run a rescoring together: [`claim`] takes a range nobody holds (`FOR UPDATE
//!   SKIP LOCKED`, and a lease that has not run out), leases in the database's clock so that
//!   instances whose clocks differ agree on when one ran out. A batch locks its range's row
//!   ([`range_for_update`]) before it writes, so that of two instances on one range (a lease run
//!   out under a slow one) the second finds the range moved on and stops.
//! - [`finish_range`] locks the rescoring's row before it counts the ranges left, so that of two
//!   instances finishing the last two ranges at once the second sees the first's and records the
//!   end.

use crate::StoreError;
use crate::postgres::models::lock_workspace;
use crate::postgres::tx::{DATABASE_NOW_MS, Tx};
use crate::rescorings::*;

fn from_row(row: &postgres::Row) -> Result<Rescoring, StoreError> {
    Ok(Rescoring {
        workspace_id: row.try_get(0)?,
        model_id: row.try_get(1)?,
        model_version: row.try_get(2)?,
        cause: row.try_get(3)?,
        done: row.try_get(4)?,
        total: row.try_get(5)?,
        started_at: row.try_get(6)?,
        finished_at: row.try_get(7)?,
        error: row.try_get(8)?,
        revert_automatic_since: row.try_get(9)?,
    })
}
fn range_from_row(row: &postgres::Row) -> Result<RescoringRange, StoreError> {
    Ok(RescoringRange {
        workspace_id: row.try_get(0)?,
        first_after: row.try_get(1)?,
        until: row.try_get(2)?,
        after_lead_id: row.try_get(3)?,
        done: row.try_get(4)?,
        finished_at: row.try_get(5)?,
    })
}

/// The workspace's running or last rescoring.
pub(crate) fn get(connection: &mut Tx<'_>, workspace_id: i64) -> Result<Option<Rescoring>, StoreError> {
    connection
        .query_opt(&format!("SELECT {COLUMNS} WHERE r.workspace_id = $1"), &[&workspace_id])?
        .map(|row| from_row(&row))
        .transpose()
}

/// Records the start of a rescoring of every lead of the workspace with `model_id`, and its
/// ranges.
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
    let row = connection.query_one(
        "SELECT count(*), min(id), max(id) FROM leads WHERE workspace_id = $1 AND merged_into IS NULL",
        &[&workspace_id],
    )?;
    let (total, min_id, max_id): (i64, Option<i64>, Option<i64>) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    connection.execute(
        "INSERT INTO rescorings (workspace_id, model_id, cause, total, started_at, finished_at, error,
                                 revert_automatic_since)
         VALUES ($1, $2, $3, $4, $5, NULL, NULL, $6)
         ON CONFLICT (workspace_id) DO UPDATE SET
             model_id = excluded.model_id, cause = excluded.cause, total = excluded.total,
             started_at = excluded.started_at, finished_at = NULL, error = NULL,
             revert_automatic_since = excluded.revert_automatic_since",
        &[&workspace_id, &model_id, &cause, &total, &now, &revert_automatic_since],
    )?;
    connection.execute("DELETE FROM rescoring_ranges WHERE workspace_id = $1", &[&workspace_id])?;
    let (starts, ends): (Vec<i64>, Vec<i64>) =
        plan_ranges(total, min_id.unwrap_or(0), max_id.unwrap_or(0)).into_iter().unzip();
    connection.execute(
        "INSERT INTO rescoring_ranges (workspace_id, first_after, until_lead_id, after_lead_id, done)
         SELECT $1, r.first_after, r.until_lead_id, r.first_after, 0
         FROM unnest($2::bigint[], $3::bigint[]) AS r (first_after, until_lead_id)",
        &[&workspace_id, &starts, &ends],
    )?;
    Ok(())
}

/// Takes an unfinished range of the workspace's rescoring that no other instance holds (none
/// locks its row, and its lease ran out or it has none) for [`LEASE_MS`] of the database's clock;
/// `None` when there is none.
pub(crate) fn claim(connection: &mut Tx<'_>, workspace_id: i64) -> Result<Option<RescoringRange>, StoreError> {
    connection
        .query_opt(
            &format!(
                "UPDATE rescoring_ranges SET claimed_until = {DATABASE_NOW_MS} + $2
                 WHERE workspace_id = $1 AND first_after = (
                     SELECT first_after FROM rescoring_ranges
                     WHERE workspace_id = $1 AND finished_at IS NULL
                       AND (claimed_until IS NULL OR claimed_until < {DATABASE_NOW_MS})
                     ORDER BY first_after LIMIT 1 FOR UPDATE SKIP LOCKED)
                 RETURNING {RANGE_COLUMNS}"
            ),
            &[&workspace_id, &LEASE_MS],
        )?
        .map(|row| range_from_row(&row))
        .transpose()
}

/// One range of the workspace's rescoring, its row locked until the transaction ends (see the
/// module's doc).
pub(crate) fn range_for_update(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    first_after: i64,
) -> Result<Option<RescoringRange>, StoreError> {
    connection
        .query_opt(
            &format!(
                "SELECT {RANGE_COLUMNS} FROM rescoring_ranges WHERE workspace_id = $1 AND first_after = $2 FOR UPDATE"
            ),
            &[&workspace_id, &first_after],
        )?
        .map(|row| range_from_row(&row))
        .transpose()
}

/// Records that the range's leads up to `after_lead_id` are done, `done` in the range, and renews
/// its claim.
pub(crate) fn advance(
    connection: &mut Tx<'_>,
    range: &RescoringRange,
    after_lead_id: i64,
    done: i64,
) -> Result<(), StoreError> {
    connection.execute(
        &format!(
            "UPDATE rescoring_ranges SET after_lead_id = $1, done = $2, claimed_until = {DATABASE_NOW_MS} + $3
             WHERE workspace_id = $4 AND first_after = $5"
        ),
        &[&after_lead_id, &done, &LEASE_MS, &range.workspace_id, &range.first_after],
    )?;
    Ok(())
}

/// Records that the range is done; the rescoring is done, and recorded so, when it was its last
/// unfinished range. Answers whether it was.
pub(crate) fn finish_range(connection: &mut Tx<'_>, range: &RescoringRange, now: i64) -> Result<bool, StoreError> {
    connection.execute("SELECT 1 FROM rescorings WHERE workspace_id = $1 FOR UPDATE", &[&range.workspace_id])?;
    connection.execute(
        "UPDATE rescoring_ranges SET finished_at = $1 WHERE workspace_id = $2 AND first_after = $3",
        &[&now, &range.workspace_id, &range.first_after],
    )?;
    let unfinished: i64 = connection
        .query_one(
            "SELECT count(*) FROM rescoring_ranges WHERE workspace_id = $1 AND finished_at IS NULL",
            &[&range.workspace_id],
        )?
        .try_get(0)?;
    if unfinished > 0 {
        return Ok(false);
    }
    finish(connection, range.workspace_id, None, now)?;
    Ok(true)
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
        let mut c = client.transaction();
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
        let range = claim(&mut c, ws).unwrap().expect("one range, for two leads");
        assert_eq!((range.first_after, range.until), (0, i64::MAX));
        advance(&mut c, &range, 41, 7).unwrap();
        let running = get(&mut c, ws).unwrap().unwrap();
        assert_eq!((running.done, running.model_version), (7, 1));
        assert_eq!(range_for_update(&mut c, ws, 0).unwrap().unwrap().after_lead_id, 41);
        assert_eq!(unfinished(&mut c).unwrap().len(), 1);
        begin(&mut c, ws, v1.id, "restart", Some(5), IfRunning::Restart, 4).unwrap();
        let restarted = get(&mut c, ws).unwrap().unwrap();
        assert_eq!((restarted.done, restarted.revert_automatic_since), (0, Some(5)));
        assert_eq!(range_for_update(&mut c, ws, 0).unwrap().unwrap().after_lead_id, 0, "its ranges start over");
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
        let mut second = crate::postgres::Connection::connect_url(&database.url);
        let (ws, model) = {
            let mut c = first.transaction();
            let ws = workspace(&mut c, "w");
            let model = models::add(&mut c, ws, "[scores.s]", &BTreeMap::new(), None, 1).unwrap().id;
            c.commit().unwrap();
            (ws, model)
        };
        let mut one = first.transaction();
        begin(&mut one, ws, model, "first", None, IfRunning::Refuse, 2).unwrap();
        // The second waits for the first's lock, then finds its rescoring running.
        let beginning = std::thread::spawn(move || {
            let mut two = second.transaction();
            begin(&mut two, ws, model, "second", None, IfRunning::Refuse, 3)
        });
        one.commit().unwrap();
        assert!(matches!(beginning.join().unwrap(), Err(StoreError::Rescoring)));
        let mut c = first.transaction();
        assert_eq!(get(&mut c, ws).unwrap().map(|r| r.cause), Some("first".to_string()));
    }

    /// Two instances claim different ranges; a range whose lease runs is not taken, one whose
    /// lease ran out is; the instance that finishes the last range records the rescoring's end,
    /// also when two finish at once.
    #[test]
    fn instances_share_the_ranges_and_the_last_to_finish_ends_the_rescoring() {
        let Some(database) = TestDatabase::create() else { return };
        let mut first = database.migrated_client();
        let connect = || crate::postgres::Connection::connect_url(&database.url);
        let mut second = connect();
        let ws = {
            let mut c = first.transaction();
            let ws = workspace(&mut c, "w");
            c.execute(
                "INSERT INTO leads (id, workspace_id, created_at, updated_at) SELECT g, $1, 0, 0 FROM generate_series(1::bigint, $2) g",
                &[&ws, &(RANGE_LEADS * 2 + 1)],
            )
            .unwrap();
            let model = models::add(&mut c, ws, "[scores.s]", &BTreeMap::new(), None, 1).unwrap().id;
            begin(&mut c, ws, model, "model v1", None, IfRunning::Refuse, 2).unwrap();
            c.commit().unwrap();
            ws
        };
        // The first holds its claim's row locked (a claim not yet committed); the second skips it.
        let mut one = first.transaction();
        let a = claim(&mut one, ws).unwrap().unwrap();
        let mut two = second.transaction();
        let b = claim(&mut two, ws).unwrap().unwrap();
        assert_ne!(a.first_after, b.first_after);
        one.commit().unwrap();
        two.commit().unwrap();
        let c_range = {
            let mut t = second.transaction();
            let c_range = claim(&mut t, ws).unwrap().unwrap();
            assert_eq!(claim(&mut t, ws).unwrap(), None, "every range is leased");
            // The first's lease runs out (its instance stopped): another takes the range over.
            t.execute("UPDATE rescoring_ranges SET claimed_until = 0 WHERE first_after = $1", &[&a.first_after])
                .unwrap();
            assert_eq!(claim(&mut t, ws).unwrap().map(|r| r.first_after), Some(a.first_after));
            t.commit().unwrap();
            c_range
        };
        let mut t = first.transaction();
        assert!(!finish_range(&mut t, &a, 3).unwrap());
        t.commit().unwrap();
        // The last two finish at once: the second waits for the first's lock, then sees its end.
        let mut one = first.transaction();
        assert!(!finish_range(&mut one, &b, 4).unwrap());
        let finishing = std::thread::spawn(move || {
            let mut two = second.transaction();
            let ended = finish_range(&mut two, &c_range, 5).unwrap();
            two.commit().unwrap();
            ended
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        one.commit().unwrap();
        assert!(finishing.join().unwrap(), "the last range ends the rescoring");
        let mut t = first.transaction();
        assert_eq!(get(&mut t, ws).unwrap().unwrap().finished_at, Some(5));
    }
}
