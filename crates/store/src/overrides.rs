//! People's overrides of a lead's score (`0019_score_overrides.sql`): a value, a tier or both
//! set by hand with a reason, in force until lifted by hand, at its expiry, or by a model that
//! no longer has its tier. The current score row names the override in force
//! ([`crate::scores::Overridden`]); this module keeps the overrides themselves, in force or
//! lifted, which say who set and lifted each and why.

use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;

/// An override as stored, in force (`lifted_at` is `None`) or lifted.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreOverride {
    pub id: i64,
    pub lead_id: i64,
    pub score: String,
    pub value: Option<f64>,
    pub tier: Option<String>,
    pub reason: String,
    pub set_by: String,
    pub set_at: i64,
    pub expires_at: Option<i64>,
    pub lifted_at: Option<i64>,
    pub lifted_by: Option<String>,
    pub lifted_note: Option<String>,
}

/// An override a person sets.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOverride<'a> {
    pub workspace_id: i64,
    pub lead_id: i64,
    pub score: &'a str,
    pub value: Option<f64>,
    pub tier: Option<&'a str>,
    pub reason: &'a str,
    pub set_by: &'a str,
    pub expires_at: Option<i64>,
}

/// Who lifts an override in force on a score when a newer one takes its place.
pub const REPLACED: &str = "replaced";

/// Who lifts an override at its expiry.
pub const EXPIRY: &str = "expiry";

/// Stores a new override in force at `now`, lifting the one in force on the same score, if any
/// (by [`REPLACED`]); answers its id.
pub fn insert(connection: &Connection, new: &NewOverride<'_>, now: i64) -> Result<i64, StoreError> {
    if new.value.is_none() && new.tier.is_none() {
        return Err(StoreError::Conflict("an override sets a value, a tier or both".to_string()));
    }
    if let Some(previous) = in_force(connection, new.lead_id, new.score)? {
        lift(connection, previous.id, REPLACED, None, now)?;
    }
    connection
        .prepare_cached(
            "INSERT INTO score_overrides
                 (workspace_id, lead_id, score, value, tier, reason, set_by, set_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            new.workspace_id,
            new.lead_id,
            new.score,
            new.value,
            new.tier,
            new.reason,
            new.set_by,
            now,
            new.expires_at
        ])?;
    Ok(connection.last_insert_rowid())
}

/// Records that override `id` was lifted at `now` by `by`, with an optional note; an override
/// already lifted keeps its first lifting.
pub fn lift(connection: &Connection, id: i64, by: &str, note: Option<&str>, now: i64) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "UPDATE score_overrides SET lifted_at = ?2, lifted_by = ?3, lifted_note = ?4
             WHERE id = ?1 AND lifted_at IS NULL",
        )?
        .execute(params![id, now, by, note])?;
    Ok(())
}

/// The override in force on a lead's score, if any.
pub fn in_force(connection: &Connection, lead_id: i64, score: &str) -> Result<Option<ScoreOverride>, StoreError> {
    Ok(connection
        .prepare_cached(&format!("{SELECT} WHERE lead_id = ?1 AND score = ?2 AND lifted_at IS NULL"))?
        .query_row(params![lead_id, score], from_row)
        .optional()?)
}

/// Every override of a lead, in force or lifted, newest first.
pub fn of_lead(connection: &Connection, lead_id: i64) -> Result<Vec<ScoreOverride>, StoreError> {
    let mut statement = connection.prepare_cached(&format!("{SELECT} WHERE lead_id = ?1 ORDER BY id DESC"))?;
    let rows = statement.query_map([lead_id], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Up to `limit` overrides in force whose expiry is at or before `now`, soonest first, each
/// with its workspace: what the periodic pass lifts.
pub fn expired(connection: &Connection, now: i64, limit: u32) -> Result<Vec<(i64, ScoreOverride)>, StoreError> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {COLUMNS}, workspace_id FROM score_overrides WHERE lifted_at IS NULL AND expires_at IS NOT NULL AND expires_at <= ?1
         ORDER BY expires_at LIMIT ?2"
    ))?;
    let rows = statement.query_map(params![now, limit], |row| Ok((row.get(12)?, from_row(row)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

const COLUMNS: &str =
    "id, lead_id, score, value, tier, reason, set_by, set_at, expires_at, lifted_at, lifted_by, lifted_note";
const SELECT: &str = "SELECT id, lead_id, score, value, tier, reason, set_by, set_at, expires_at, lifted_at, lifted_by,
    lifted_note FROM score_overrides";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ScoreOverride> {
    Ok(ScoreOverride {
        id: row.get(0)?,
        lead_id: row.get(1)?,
        score: row.get(2)?,
        value: row.get(3)?,
        tier: row.get(4)?,
        reason: row.get(5)?,
        set_by: row.get(6)?,
        set_at: row.get(7)?,
        expires_at: row.get(8)?,
        lifted_at: row.get(9)?,
        lifted_by: row.get(10)?,
        lifted_note: row.get(11)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, leads, workspaces};

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
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (first, second, all, due, later) = store
            .write_blocking(|c| {
                let workspace = workspaces::find_or_create(c, "w", 0)?;
                let lead = leads::create(c, workspace.id, Some("u"), 0)?;
                let other = leads::create(c, workspace.id, Some("v"), 0)?;
                let first = insert(c, &new(workspace.id, lead.id, "mql", Some(5_000)), 1_000)?;
                let second = insert(c, &new(workspace.id, lead.id, "sql", None), 2_000)?;
                insert(c, &new(workspace.id, other.id, "cold", Some(4_000)), 2_000)?;
                let all = of_lead(c, lead.id)?;
                Ok((first, second, all, expired(c, 4_500, 10)?, expired(c, 3_000, 10)?))
            })
            .unwrap();
        assert_eq!(all.iter().map(|o| o.id).collect::<Vec<_>>(), [second, first]);
        assert_eq!(all[1].lifted_by.as_deref(), Some(REPLACED));
        assert_eq!(all[1].lifted_at, Some(2_000));
        assert_eq!(all[0].lifted_at, None);
        // The replaced override's expiry no longer matters; the other lead's is due.
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].1.tier.as_deref(), Some("cold"));
        assert!(later.is_empty());
    }

    #[test]
    fn an_override_without_value_or_tier_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let refused = store.write_blocking(|c| {
            let workspace = workspaces::find_or_create(c, "w", 0)?;
            let lead = leads::create(c, workspace.id, Some("u"), 0)?;
            insert(c, &NewOverride { tier: None, ..new(workspace.id, lead.id, "x", None) }, 0)
        });
        assert!(matches!(refused, Err(StoreError::Conflict(_))), "{refused:?}");
    }
}
