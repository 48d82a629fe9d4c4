//! The rescoring of a workspace's leads after a model activation, kept in the database: one row
//! per workspace (the running or the last rescoring). Each batch records how far it got in the
//! transaction that saves its scores, so a rescoring cut short by a crash resumes after the last
//! lead it finished, and a second activation cannot slip in while one runs: [`begin`] refuses it
//! inside the writer's transaction.

use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;

/// A workspace's running or last rescoring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rescoring {
    pub workspace_id: i64,
    pub model_id: i64,
    /// The version number of `model_id`.
    pub model_version: i64,
    pub cause: String,
    /// Leads up to this id are done.
    pub after_lead_id: i64,
    pub done: i64,
    pub total: i64,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub error: Option<String>,
    /// After a rollback: automatic moves to MQL made since then may be undone.
    pub revert_automatic_since: Option<i64>,
}

/// Whether [`begin`] may replace a rescoring that has not finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfRunning {
    /// Refuse with [`StoreError::Rescoring`]: the API's activations.
    Refuse,
    /// Start over with the new version: at start, before any rescoring runs in this process.
    Restart,
}

/// Records the start of a rescoring of every lead of the workspace with `model_id`.
pub fn begin(
    connection: &Connection,
    workspace_id: i64,
    model_id: i64,
    cause: &str,
    revert_automatic_since: Option<i64>,
    if_running: IfRunning,
    now: i64,
) -> Result<(), StoreError> {
    let running = get(connection, workspace_id)?.filter(|r| r.finished_at.is_none());
    if if_running == IfRunning::Refuse && running.is_some() {
        return Err(StoreError::Rescoring);
    }
    // A rescoring that starts over a rollback's unfinished one still owes the rollback's reverts.
    let revert_automatic_since = revert_automatic_since.or(running.and_then(|r| r.revert_automatic_since));
    let total: i64 = connection.query_row(
        "SELECT count(*) FROM leads WHERE workspace_id = ?1 AND merged_into IS NULL",
        [workspace_id],
        |row| row.get(0),
    )?;
    connection.execute(
        "INSERT INTO rescorings (workspace_id, model_id, cause, after_lead_id, done, total, started_at, finished_at,
                                 error, revert_automatic_since)
         VALUES (?1, ?2, ?3, 0, 0, ?4, ?5, NULL, NULL, ?6)
         ON CONFLICT (workspace_id) DO UPDATE SET
             model_id = excluded.model_id, cause = excluded.cause, after_lead_id = 0, done = 0,
             total = excluded.total, started_at = excluded.started_at, finished_at = NULL, error = NULL,
             revert_automatic_since = excluded.revert_automatic_since",
        params![workspace_id, model_id, cause, total, now, revert_automatic_since],
    )?;
    Ok(())
}

/// Records that the leads up to `after_lead_id` are done, `done` in all.
pub fn advance(connection: &Connection, workspace_id: i64, after_lead_id: i64, done: i64) -> Result<(), StoreError> {
    connection
        .prepare_cached("UPDATE rescorings SET after_lead_id = ?1, done = ?2 WHERE workspace_id = ?3")?
        .execute(params![after_lead_id, done, workspace_id])?;
    Ok(())
}

/// Records the end of the workspace's rescoring, with the error that stopped it, if any.
pub fn finish(connection: &Connection, workspace_id: i64, error: Option<&str>, now: i64) -> Result<(), StoreError> {
    connection.execute(
        "UPDATE rescorings SET finished_at = ?1, error = ?2 WHERE workspace_id = ?3",
        params![now, error, workspace_id],
    )?;
    Ok(())
}

const COLUMNS: &str = "r.workspace_id, r.model_id, m.version, r.cause, r.after_lead_id, r.done, r.total, r.started_at,
     r.finished_at, r.error, r.revert_automatic_since
     FROM rescorings r JOIN models m ON m.id = r.model_id";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Rescoring> {
    Ok(Rescoring {
        workspace_id: row.get(0)?,
        model_id: row.get(1)?,
        model_version: row.get(2)?,
        cause: row.get(3)?,
        after_lead_id: row.get(4)?,
        done: row.get(5)?,
        total: row.get(6)?,
        started_at: row.get(7)?,
        finished_at: row.get(8)?,
        error: row.get(9)?,
        revert_automatic_since: row.get(10)?,
    })
}

/// The workspace's running or last rescoring.
pub fn get(connection: &Connection, workspace_id: i64) -> Result<Option<Rescoring>, StoreError> {
    Ok(connection
        .prepare_cached(&format!("SELECT {COLUMNS} WHERE r.workspace_id = ?1"))?
        .query_row([workspace_id], from_row)
        .optional()?)
}

/// Every rescoring that has not finished (to resume at start).
pub fn unfinished(connection: &Connection) -> Result<Vec<Rescoring>, StoreError> {
    let mut statement =
        connection.prepare(&format!("SELECT {COLUMNS} WHERE r.finished_at IS NULL ORDER BY r.workspace_id"))?;
    let rows = statement.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, models, workspaces};

    #[test]
    fn a_second_rescoring_is_refused_until_the_first_finishes_and_progress_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write_blocking(|c| {
                let ws = workspaces::find_or_create(c, "w", crate::now_ms())?.id;
                let v1 = models::add(c, ws, "[scores.s]", &Default::default(), None, crate::now_ms())?;
                begin(c, ws, v1.id, "model v1", None, IfRunning::Refuse, crate::now_ms())?;
                assert!(matches!(
                    begin(c, ws, v1.id, "again", None, IfRunning::Refuse, crate::now_ms()),
                    Err(StoreError::Rescoring)
                ));
                advance(c, ws, 41, 7)?;
                let running = get(c, ws)?.unwrap();
                assert_eq!((running.after_lead_id, running.done, running.model_version), (41, 7, 1));
                assert_eq!(unfinished(c)?.len(), 1);
                begin(c, ws, v1.id, "restart", Some(5), IfRunning::Restart, crate::now_ms())?;
                let restarted = get(c, ws)?.unwrap();
                assert_eq!((restarted.after_lead_id, restarted.revert_automatic_since), (0, Some(5)));
                finish(c, ws, None, crate::now_ms())?;
                assert!(unfinished(c)?.is_empty());
                begin(c, ws, v1.id, "model v1", None, IfRunning::Refuse, crate::now_ms())?;
                Ok(())
            })
            .unwrap();
    }
}
