//! PostgreSQL queries of the overrides family (see [`crate::overrides`] for SQLite's): people's
//! overrides of a lead's score (`score_overrides`), in force or lifted, with who set and lifted
//! each and why.
//!
//! # How it differs from SQLite
//! At most one override is in force per lead and score (the partial unique index
//! `score_overrides_in_force`). [`insert`] lifts the one in force and then stores the new one;
//! so that two instances setting an override on the same lead do not both lift the same one and
//! then collide on the index, it first locks the lead's row, as any write of the lead's scores
//! does. Should the lead have no row (overrides name lead numbers, without a foreign key), a
//! collision is answered as [`StoreError::Conflict`].

use crate::StoreError;
use crate::overrides::*;
use crate::postgres::tx::Tx;

const COLUMNS: &str =
    "id, lead_id, score, value, tier, reason, set_by, set_at, expires_at, lifted_at, lifted_by, lifted_note";

fn from_row(row: &postgres::Row) -> Result<ScoreOverride, StoreError> {
    Ok(ScoreOverride {
        id: row.try_get(0)?,
        lead_id: row.try_get(1)?,
        score: row.try_get(2)?,
        value: row.try_get(3)?,
        tier: row.try_get(4)?,
        reason: row.try_get(5)?,
        set_by: row.try_get(6)?,
        set_at: row.try_get(7)?,
        expires_at: row.try_get(8)?,
        lifted_at: row.try_get(9)?,
        lifted_by: row.try_get(10)?,
        lifted_note: row.try_get(11)?,
    })
}

/// Every override of a lead, in force or lifted, newest first.
pub(crate) fn of_lead(connection: &mut Tx<'_>, lead_id: i64) -> Result<Vec<ScoreOverride>, StoreError> {
    let rows = connection
        .query(&format!("SELECT {COLUMNS} FROM score_overrides WHERE lead_id = $1 ORDER BY id DESC"), &[&lead_id])?;
    rows.iter().map(from_row).collect()
}

/// The override in force on a lead's score, if any.
pub(crate) fn in_force(
    connection: &mut Tx<'_>,
    lead_id: i64,
    score: &str,
) -> Result<Option<ScoreOverride>, StoreError> {
    connection
        .query_opt(
            &format!("SELECT {COLUMNS} FROM score_overrides WHERE lead_id = $1 AND score = $2 AND lifted_at IS NULL"),
            &[&lead_id, &score],
        )?
        .map(|row| from_row(&row))
        .transpose()
}

/// Up to `limit` overrides in force whose expiry is at or before `now`, soonest first, each
/// with its workspace: what the periodic pass lifts.
pub(crate) fn expired(connection: &mut Tx<'_>, now: i64, limit: u32) -> Result<Vec<(i64, ScoreOverride)>, StoreError> {
    let rows = connection.query(
        &format!(
            "SELECT {COLUMNS}, workspace_id FROM score_overrides
             WHERE lifted_at IS NULL AND expires_at IS NOT NULL AND expires_at <= $1
             ORDER BY expires_at LIMIT $2"
        ),
        &[&now, &i64::from(limit)],
    )?;
    rows.iter().map(|row| Ok((row.try_get(12)?, from_row(row)?))).collect()
}

/// Stores a new override in force at `now`, lifting the one in force on the same score, if any
/// (by [`REPLACED`]); answers its id.
pub(crate) fn insert(connection: &mut Tx<'_>, new: &NewOverride<'_>, now: i64) -> Result<i64, StoreError> {
    if new.value.is_none() && new.tier.is_none() {
        return Err(StoreError::Conflict("an override sets a value, a tier or both".to_string()));
    }
    connection.execute("SELECT 1 FROM leads WHERE id = $1 FOR NO KEY UPDATE", &[&new.lead_id])?;
    connection.execute(
        "UPDATE score_overrides SET lifted_at = $3, lifted_by = $4, lifted_note = NULL
         WHERE lead_id = $1 AND score = $2 AND lifted_at IS NULL",
        &[&new.lead_id, &new.score, &now, &REPLACED],
    )?;
    let inserted = connection.query_one(
        "INSERT INTO score_overrides (workspace_id, lead_id, score, value, tier, reason, set_by, set_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        &[
            &new.workspace_id,
            &new.lead_id,
            &new.score,
            &new.value,
            &new.tier,
            &new.reason,
            &new.set_by,
            &now,
            &new.expires_at,
        ],
    );
    let row = inserted.map_err(|error| match error.code() {
        Some(&postgres::error::SqlState::UNIQUE_VIOLATION) => {
            StoreError::Conflict(format!("another override of `{}` was set at the same time", new.score))
        }
        _ => StoreError::Postgres(error),
    })?;
    Ok(row.try_get(0)?)
}

/// Records that override `id` was lifted at `now` by `by`, with an optional note; an override
/// already lifted keeps its first lifting.
pub(crate) fn lift(connection: &mut Tx<'_>, id: i64, by: &str, note: Option<&str>, now: i64) -> Result<(), StoreError> {
    connection.execute(
        "UPDATE score_overrides SET lifted_at = $2, lifted_by = $3, lifted_note = $4 WHERE id = $1 AND lifted_at IS NULL",
        &[&id, &now, &by, &note],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::models::tests::workspace;
    use crate::postgres::testing::TestDatabase;

    fn new<'a>(workspace_id: i64, lead_id: i64, tier: &'a str, expires_at: Option<i64>) -> NewOverride<'a> {
        NewOverride {
            workspace_id,
            lead_id,
            score: "fit",
            value: None,
            tier: Some(tier),
            reason: "signed a letter of intent",
            set_by: "user ana@example.com",
            expires_at,
        }
    }

    #[test]
    fn a_new_override_replaces_the_one_in_force_and_expired_ones_are_found_in_order() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut c = client.transaction();
        let ws = workspace(&mut c, "w");
        c.execute(
            "INSERT INTO leads (id, workspace_id, created_at, updated_at) VALUES (1, $1, 0, 0), (2, $1, 0, 0)",
            &[&ws],
        )
        .unwrap();
        let first = insert(&mut c, &new(ws, 1, "mql", Some(5_000)), 1_000).unwrap();
        let second = insert(&mut c, &new(ws, 1, "sql", None), 2_000).unwrap();
        let other =
            insert(&mut c, &NewOverride { value: Some(12.5), ..new(ws, 2, "cold", Some(4_000)) }, 2_000).unwrap();
        let later = insert(&mut c, &new(ws, 2, "cold", Some(4_500)), 2_500);
        assert!(later.is_ok(), "{later:?}");
        let all = of_lead(&mut c, 1).unwrap();
        assert_eq!(all.iter().map(|o| o.id).collect::<Vec<_>>(), [second, first]);
        assert_eq!((all[1].lifted_by.as_deref(), all[1].lifted_at), (Some(REPLACED), Some(2_000)));
        assert_eq!(all[0].lifted_at, None);
        assert_eq!(in_force(&mut c, 1, "fit").unwrap().map(|o| o.id), Some(second));
        assert_eq!(in_force(&mut c, 1, "intent").unwrap(), None);
        // The replaced overrides' expiries no longer matter; the other lead's in force is due.
        let due = expired(&mut c, 4_500, 10).unwrap();
        assert_eq!(due.iter().map(|(w, o)| (*w, o.lead_id, o.expires_at)).collect::<Vec<_>>(), [(ws, 2, Some(4_500))]);
        assert!(expired(&mut c, 3_000, 10).unwrap().is_empty());
        let replaced = of_lead(&mut c, 2).unwrap().into_iter().find(|o| o.id == other).unwrap();
        assert_eq!(replaced.value, Some(12.5));
        // Lifting keeps the first lifting.
        lift(&mut c, second, "user bob@example.com", Some("wrong lead"), 3_000).unwrap();
        lift(&mut c, second, "expiry", None, 4_000).unwrap();
        let lifted = of_lead(&mut c, 1).unwrap().remove(0);
        assert_eq!(
            (lifted.lifted_at, lifted.lifted_by.as_deref(), lifted.lifted_note.as_deref()),
            (Some(3_000), Some("user bob@example.com"), Some("wrong lead"))
        );
    }

    #[test]
    fn of_two_instances_setting_an_override_at_once_the_second_replaces_the_first() {
        let Some(database) = TestDatabase::create() else { return };
        let mut first = database.migrated_client();
        let mut second = crate::postgres::Connection::connect_url(&database.url);
        let ws = {
            let mut c = first.transaction();
            let ws = workspace(&mut c, "w");
            c.execute("INSERT INTO leads (id, workspace_id, created_at, updated_at) VALUES (1, $1, 0, 0)", &[&ws])
                .unwrap();
            c.commit().unwrap();
            ws
        };
        let mut one = first.transaction();
        let set_first = insert(&mut one, &new(ws, 1, "mql", None), 1_000).unwrap();
        // The second waits for the lead's lock, then lifts the first's override.
        let setting = std::thread::spawn(move || {
            let mut two = second.transaction();
            let id = insert(&mut two, &new(ws, 1, "sql", None), 2_000)?;
            two.commit()?;
            Ok::<i64, StoreError>(id)
        });
        one.commit().unwrap();
        let set_second = setting.join().unwrap().unwrap();
        let mut c = first.transaction();
        let all = of_lead(&mut c, 1).unwrap();
        let lifted: Vec<_> = all.iter().map(|o| (o.id, o.lifted_by.as_deref())).collect();
        assert_eq!(lifted, [(set_second, None), (set_first, Some(REPLACED))]);
    }

    #[test]
    fn expired_overrides_come_soonest_first_up_to_the_limit() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut c = client.transaction();
        let ws = workspace(&mut c, "w");
        for (lead, expires_at) in [(1, 300), (2, 100), (3, 200)] {
            insert(&mut c, &new(ws, lead, "cold", Some(expires_at)), 0).unwrap();
        }
        let due = expired(&mut c, 1_000, 2).unwrap();
        assert_eq!(due.iter().map(|(_, o)| o.lead_id).collect::<Vec<_>>(), [2, 3]);
    }

    #[test]
    fn an_override_without_value_or_tier_is_refused() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut c = client.transaction();
        let ws = workspace(&mut c, "w");
        let refused = insert(&mut c, &NewOverride { tier: None, ..new(ws, 1, "x", None) }, 0);
        assert!(matches!(refused, Err(StoreError::Conflict(_))), "{refused:?}");
    }
}
