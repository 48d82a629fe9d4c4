//! PostgreSQL queries of the stages family (see [`crate::stages`] for SQLite's): a lead's
//! lifecycle stage (`leads.stage`) and the history of its changes (`stage_history`), with the
//! lead's workspace, by which reports read moves.
//!
//! The same queries as SQLite's: [`set`] updates the lead's row first, which locks it until the
//! transaction ends, so two instances moving one lead record their changes one after the other.

use crate::StoreError;
use crate::postgres::Tx;
use crate::stages::*;

/// A `stage, previous, at, actor, reason` row.
fn from_row(row: &postgres::Row) -> Result<StageChange, StoreError> {
    Ok(StageChange {
        stage: row.try_get(0)?,
        previous: row.try_get(1)?,
        at: row.try_get(2)?,
        actor: row.try_get(3)?,
        reason: row.try_get(4)?,
    })
}

/// A lead's latest stage change, if it ever moved.
pub(crate) fn latest(connection: &mut Tx<'_>, lead_id: i64) -> Result<Option<StageChange>, StoreError> {
    connection
        .query_opt(
            "SELECT stage, previous, at, actor, reason FROM stage_history WHERE lead_id = $1 ORDER BY id DESC LIMIT 1",
            &[&lead_id],
        )?
        .map(|row| from_row(&row))
        .transpose()
}

/// A lead's stage changes, newest first.
pub(crate) fn history(connection: &mut Tx<'_>, lead_id: i64) -> Result<Vec<StageChange>, StoreError> {
    let rows = connection.query(
        "SELECT stage, previous, at, actor, reason FROM stage_history WHERE lead_id = $1 ORDER BY id DESC",
        &[&lead_id],
    )?;
    rows.iter().map(from_row).collect()
}

/// Sets a lead's stage and records the change (with the lead's workspace, which reports read
/// moves by).
pub(crate) fn set(connection: &mut Tx<'_>, lead_id: i64, change: &StageChange) -> Result<(), StoreError> {
    connection.execute(
        "UPDATE leads SET stage = $1, updated_at = $2 WHERE id = $3",
        &[&change.stage, &change.at, &lead_id],
    )?;
    connection.execute(
        "INSERT INTO stage_history (lead_id, workspace_id, stage, previous, at, actor, reason)
         SELECT $1, workspace_id, $2, $3, $4, $5, $6 FROM leads WHERE id = $1",
        &[&lead_id, &change.stage, &change.previous, &change.at, &change.actor, &change.reason],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::models::tests::workspace;
    use crate::postgres::testing::TestDatabase;

    fn change(stage: &str, previous: Option<&str>, at: i64) -> StageChange {
        StageChange {
            stage: stage.to_string(),
            previous: previous.map(str::to_string),
            at,
            actor: "user ana@example.com".to_string(),
            reason: (stage == "lost").then(|| "went with a competitor".to_string()),
        }
    }

    #[test]
    fn a_change_moves_the_lead_and_is_recorded_with_its_workspace() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut c = client.transaction().unwrap();
        let ws = workspace(&mut c, "w");
        c.execute(
            "INSERT INTO leads (id, workspace_id, created_at, updated_at) VALUES (1, $1, 0, 0), (2, $1, 0, 0)",
            &[&ws],
        )
        .unwrap();
        assert_eq!(latest(&mut c, 1).unwrap(), None);
        set(&mut c, 1, &change("mql", Some("lead"), 10)).unwrap();
        set(&mut c, 1, &change("lost", Some("mql"), 20)).unwrap();
        assert_eq!(history(&mut c, 1).unwrap(), [change("lost", Some("mql"), 20), change("mql", Some("lead"), 10)]);
        assert_eq!(latest(&mut c, 1).unwrap(), Some(change("lost", Some("mql"), 20)));
        assert!(history(&mut c, 2).unwrap().is_empty());
        let row = c.query_one("SELECT stage, updated_at FROM leads WHERE id = 1", &[]).unwrap();
        assert_eq!((row.get::<_, String>(0), row.get::<_, i64>(1)), ("lost".to_string(), 20));
        let workspaces: Vec<Option<i64>> =
            c.query("SELECT workspace_id FROM stage_history", &[]).unwrap().iter().map(|r| r.get(0)).collect();
        assert_eq!(workspaces, [Some(ws), Some(ws)]);
    }
}
