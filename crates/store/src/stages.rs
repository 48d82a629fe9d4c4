//! Lifecycle stages of leads and the history of every change: who, when and why.

use rusqlite::{Connection, params};

use crate::StoreError;

/// One recorded change of stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageChange {
    pub stage: String,
    pub previous: Option<String>,
    pub at: i64,
    pub actor: String,
    pub reason: Option<String>,
}

/// Sets a lead's stage and records the change (with the lead's workspace, which reports read
/// moves by).
pub fn set(connection: &Connection, lead_id: i64, change: &StageChange) -> Result<(), StoreError> {
    connection.prepare_cached("UPDATE leads SET stage = ?1, updated_at = ?2 WHERE id = ?3")?.execute(params![
        change.stage,
        change.at,
        lead_id
    ])?;
    connection
        .prepare_cached(
            "INSERT INTO stage_history (lead_id, workspace_id, stage, previous, at, actor, reason)
             SELECT ?1, workspace_id, ?2, ?3, ?4, ?5, ?6 FROM leads WHERE id = ?1",
        )?
        .execute(params![lead_id, change.stage, change.previous, change.at, change.actor, change.reason])?;
    Ok(())
}

/// A `stage, previous, at, actor, reason` row.
fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StageChange> {
    Ok(StageChange {
        stage: row.get(0)?,
        previous: row.get(1)?,
        at: row.get(2)?,
        actor: row.get(3)?,
        reason: row.get(4)?,
    })
}

/// A lead's latest stage change, if it ever moved.
pub fn latest(connection: &Connection, lead_id: i64) -> Result<Option<StageChange>, StoreError> {
    use rusqlite::OptionalExtension;
    Ok(connection
        .prepare_cached(
            "SELECT stage, previous, at, actor, reason FROM stage_history WHERE lead_id = ?1 ORDER BY id DESC LIMIT 1",
        )?
        .query_row([lead_id], from_row)
        .optional()?)
}

/// A lead's stage changes, newest first.
pub fn history(connection: &Connection, lead_id: i64) -> Result<Vec<StageChange>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT stage, previous, at, actor, reason FROM stage_history WHERE lead_id = ?1 ORDER BY id DESC",
    )?;
    let rows = statement.query_map([lead_id], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}
