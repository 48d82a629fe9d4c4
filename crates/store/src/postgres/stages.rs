//! PostgreSQL queries of the stages family (see [`crate::stages`] for SQLite's): a lead's
//! lifecycle stage (`leads.stage`) and the history of its changes (`stage_history`), with the
//! lead's workspace, by which reports read moves.
//!
//! The same queries as SQLite's: [`set`] updates the lead's row first, which locks it until the
//! transaction ends, so two instances moving one lead record their changes one after the other.

use crate::StoreError;
use crate::postgres::tx::{Tx, Unanswered};
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
    set_all(connection, &[(lead_id, change)])
}

/// [`set`] for several leads (each once), in two statements however many: the leads' rows, then
/// their moves, recorded in the order given.
pub(crate) fn set_all(connection: &mut Tx<'_>, changes: &[(i64, &StageChange)]) -> Result<(), StoreError> {
    for statement in set_all_statements(changes) {
        connection.execute_unanswered(&statement)?;
    }
    Ok(())
}

/// The statements of [`set_all`], to be sent with others (see
/// [`Tx::query_and_commit`](crate::postgres::tx::Tx::query_and_commit)): none for no change.
pub(crate) fn set_all_statements<'c>(changes: &[(i64, &'c StageChange)]) -> Vec<Unanswered<'c>> {
    if changes.is_empty() {
        return Vec::new();
    }
    let lead_ids: Vec<i64> = changes.iter().map(|(id, _)| *id).collect();
    let stages: Vec<&str> = changes.iter().map(|(_, c)| c.stage.as_str()).collect();
    let previous: Vec<Option<&str>> = changes.iter().map(|(_, c)| c.previous.as_deref()).collect();
    let ats: Vec<i64> = changes.iter().map(|(_, c)| c.at).collect();
    let actors: Vec<&str> = changes.iter().map(|(_, c)| c.actor.as_str()).collect();
    let reasons: Vec<Option<&str>> = changes.iter().map(|(_, c)| c.reason.as_deref()).collect();
    vec![
        Unanswered {
            sql: "UPDATE leads l SET stage = n.stage, updated_at = n.at
                  FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS n (id, stage, at) WHERE l.id = n.id",
            params: vec![Box::new(lead_ids.clone()), Box::new(stages.clone()), Box::new(ats.clone())],
        },
        Unanswered {
            sql: "INSERT INTO stage_history (lead_id, workspace_id, stage, previous, at, actor, reason)
                  SELECT n.lead_id, l.workspace_id, n.stage, n.previous, n.at, n.actor, n.reason
                  FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[])
                      WITH ORDINALITY AS n (lead_id, stage, previous, at, actor, reason, given)
                  JOIN leads l ON l.id = n.lead_id
                  ORDER BY n.given",
            params: vec![
                Box::new(lead_ids),
                Box::new(stages),
                Box::new(previous),
                Box::new(ats),
                Box::new(actors),
                Box::new(reasons),
            ],
        },
    ]
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
        let mut c = client.transaction();
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
        // Several leads at once: each moved, the moves recorded in the order given.
        c.execute("INSERT INTO leads (id, workspace_id, created_at, updated_at) VALUES (3, $1, 0, 0)", &[&ws]).unwrap();
        let (sql, mql) = (change("sql", Some("lost"), 30), change("mql", None, 30));
        set_all(&mut c, &[(3, &mql), (1, &sql)]).unwrap();
        assert_eq!((latest(&mut c, 1).unwrap(), latest(&mut c, 3).unwrap()), (Some(sql), Some(mql)));
        let order: Vec<i64> =
            c.query("SELECT lead_id FROM stage_history ORDER BY id", &[]).unwrap().iter().map(|r| r.get(0)).collect();
        assert_eq!(order, [1, 1, 3, 1]);
        let stages: Vec<String> =
            c.query("SELECT stage FROM leads ORDER BY id", &[]).unwrap().iter().map(|r| r.get(0)).collect();
        assert_eq!(stages, ["sql", "lead", "mql"]);
    }
}
