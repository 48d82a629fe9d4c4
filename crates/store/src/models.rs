//! Scoring model versions of a workspace; one is active.
//!
//! A version keeps, beside its text, the predictive models its predictive scores were compiled
//! with (see [`crate::predictive`]), so that it scores the same way until a new version is made.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;

/// A stored model version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelVersion {
    pub id: i64,
    pub workspace_id: i64,
    pub version: i64,
    pub source: String,
    pub created_at: i64,
    /// Each predictive reference of the source (`predictive = "..."`) and the id of the stored
    /// predictive model it is pinned to.
    pub predictors: BTreeMap<String, i64>,
}

/// Stores a new version (the caller has compiled it, resolving its predictive references to
/// `predictors`) and returns it, with who uploaded it (an API key, a console account; `None`
/// when no one did, as for tests and versions stored before it was recorded). A pinned
/// predictive model must belong to the workspace.
pub fn add(
    connection: &Connection,
    workspace_id: i64,
    source: &str,
    predictors: &BTreeMap<String, i64>,
    uploaded_by: Option<&str>,
    now: i64,
) -> Result<ModelVersion, StoreError> {
    for (reference, id) in predictors {
        let owned: bool = connection.query_row(
            "SELECT count(*) > 0 FROM predictive_models WHERE id = ?1 AND workspace_id = ?2",
            params![id, workspace_id],
            |row| row.get(0),
        )?;
        if !owned {
            return Err(StoreError::NotFound(format!(
                "`{reference}` is pinned to predictive model {id}, which is not in this workspace"
            )));
        }
    }
    let pins = serde_json::to_string(predictors).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let version: i64 = connection.query_row(
        "SELECT coalesce(max(version), 0) + 1 FROM models WHERE workspace_id = ?1",
        [workspace_id],
        |row| row.get(0),
    )?;
    connection.execute(
        "INSERT INTO models (workspace_id, version, source, created_at, predictors, uploaded_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![workspace_id, version, source, now, pins, uploaded_by],
    )?;
    Ok(ModelVersion {
        id: connection.last_insert_rowid(),
        workspace_id,
        version,
        source: source.to_string(),
        created_at: now,
        predictors: predictors.clone(),
    })
}

/// Who activated a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The first version uploaded to a workspace, active at once.
    Upload,
    /// `POST /api/models/{version}/activate`.
    Api,
    /// `leadscore serve --model FILE` at start.
    File,
    /// A predictive model retrained with `activate`.
    Retrain,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Upload => "upload",
            Origin::Api => "api",
            Origin::File => "file",
            Origin::Retrain => "retrain",
        }
    }
}

/// One entry of a workspace's version stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    pub model_id: i64,
    pub version: i64,
    pub origin: String,
    pub at: i64,
    /// When a rollback undid it.
    pub undone_at: Option<i64>,
}

/// Makes a version the active one, on top of the workspace's version stack.
pub fn activate(
    connection: &Connection,
    workspace_id: i64,
    model_id: i64,
    origin: Origin,
    now: i64,
) -> Result<(), StoreError> {
    let owned: bool = connection.query_row(
        "SELECT count(*) > 0 FROM models WHERE id = ?1 AND workspace_id = ?2",
        params![model_id, workspace_id],
        |row| row.get(0),
    )?;
    if !owned {
        return Err(StoreError::NotFound(format!("no model {model_id} in this workspace")));
    }
    set_active(connection, workspace_id, model_id, now)?;
    // Activating the version already active changes nothing to roll back: one entry for it, so
    // that a rollback goes to the version before it.
    let on_top = stack(connection, workspace_id)?.into_iter().rev().find(|a| a.undone_at.is_none());
    if on_top.is_none_or(|top| top.model_id != model_id) {
        connection.execute(
            "INSERT INTO model_activations (workspace_id, model_id, origin, at) VALUES (?1, ?2, ?3, ?4)",
            params![workspace_id, model_id, origin.as_str(), now],
        )?;
    }
    Ok(())
}

fn set_active(connection: &Connection, workspace_id: i64, model_id: i64, now: i64) -> Result<(), StoreError> {
    connection.execute(
        "INSERT INTO active_models (workspace_id, model_id) VALUES (?1, ?2)
         ON CONFLICT (workspace_id) DO UPDATE SET model_id = excluded.model_id",
        params![workspace_id, model_id],
    )?;
    connection.execute("UPDATE models SET activated_at = ?1 WHERE id = ?2", params![now, model_id])?;
    Ok(())
}

/// What a rollback did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolledBack {
    /// The version that was active, and when it had been activated.
    pub undone: ModelVersion,
    pub undone_activated_at: i64,
    /// The version active again.
    pub restored: ModelVersion,
}

/// Undoes the newest activation still standing: the version activated before it is active
/// again. A second rollback goes one further down the stack; it never goes forward again.
pub fn rollback(connection: &Connection, workspace_id: i64, now: i64) -> Result<RolledBack, StoreError> {
    let standing = stack(connection, workspace_id)?.into_iter().filter(|a| a.undone_at.is_none()).collect::<Vec<_>>();
    let [.., below, top] = standing.as_slice() else {
        return Err(StoreError::NotFound(match standing.len() {
            0 => "no active model to roll back from".to_string(),
            _ => "no earlier version to roll back to: every version activated before the active one was rolled back"
                .to_string(),
        }));
    };
    connection.execute(
        "UPDATE model_activations SET undone_at = ?1
         WHERE id = (SELECT max(id) FROM model_activations WHERE workspace_id = ?2 AND undone_at IS NULL)",
        params![now, workspace_id],
    )?;
    set_active(connection, workspace_id, below.model_id, now)?;
    let find =
        |id| by_id(connection, id)?.ok_or_else(|| StoreError::Corrupt(format!("activation of missing model {id}")));
    Ok(RolledBack { undone: find(top.model_id)?, undone_activated_at: top.at, restored: find(below.model_id)? })
}

/// A workspace's activations, oldest first (rolled back ones included, with `undone_at`).
pub fn stack(connection: &Connection, workspace_id: i64) -> Result<Vec<Activation>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT a.model_id, m.version, a.origin, a.at, a.undone_at
         FROM model_activations a JOIN models m ON m.id = a.model_id
         WHERE a.workspace_id = ?1 ORDER BY a.id",
    )?;
    let rows = statement.query_map([workspace_id], |row| {
        Ok(Activation {
            model_id: row.get(0)?,
            version: row.get(1)?,
            origin: row.get(2)?,
            at: row.get(3)?,
            undone_at: row.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The newest version with this source and these pins, if one was stored.
pub fn find_same(
    connection: &Connection,
    workspace_id: i64,
    source: &str,
    predictors: &BTreeMap<String, i64>,
) -> Result<Option<ModelVersion>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT id, workspace_id, version, source, created_at, predictors FROM models
         WHERE workspace_id = ?1 AND source = ?2 ORDER BY version DESC",
    )?;
    let candidates = statement.query_map(params![workspace_id, source], from_row)?;
    for candidate in candidates {
        let candidate = candidate?;
        if candidate.predictors == *predictors {
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ModelVersion> {
    let pins: String = row.get(5)?;
    let predictors = serde_json::from_str(&pins)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, Box::new(e)))?;
    Ok(ModelVersion {
        id: row.get(0)?,
        workspace_id: row.get(1)?,
        version: row.get(2)?,
        source: row.get(3)?,
        created_at: row.get(4)?,
        predictors,
    })
}

pub fn active(connection: &Connection, workspace_id: i64) -> Result<Option<ModelVersion>, StoreError> {
    Ok(connection
        .prepare_cached(
            "SELECT m.id, m.workspace_id, m.version, m.source, m.created_at, m.predictors
             FROM active_models a JOIN models m ON m.id = a.model_id WHERE a.workspace_id = ?1",
        )?
        .query_row([workspace_id], from_row)
        .optional()?)
}

/// The id of the workspace's version numbered `version`, if there is one.
pub fn id_of_version(connection: &Connection, workspace_id: i64, version: i64) -> Result<Option<i64>, StoreError> {
    Ok(connection
        .query_row("SELECT id FROM models WHERE workspace_id = ?1 AND version = ?2", [workspace_id, version], |row| {
            row.get(0)
        })
        .optional()?)
}

/// A version as listed: its id, number, creation time and uploader, without its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedVersion {
    pub id: i64,
    pub version: i64,
    pub created_at: i64,
    /// Who uploaded it, when it was recorded (see [`add`]).
    pub uploaded_by: Option<String>,
}

/// Every version of the workspace, oldest first.
pub fn list_versions(connection: &Connection, workspace_id: i64) -> Result<Vec<ListedVersion>, StoreError> {
    let mut statement = connection
        .prepare("SELECT id, version, created_at, uploaded_by FROM models WHERE workspace_id = ?1 ORDER BY version")?;
    let rows = statement.query_map([workspace_id], |row| {
        Ok(ListedVersion { id: row.get(0)?, version: row.get(1)?, created_at: row.get(2)?, uploaded_by: row.get(3)? })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The workspaces that have an active version, in id order: those the scheduler rescores.
pub fn workspaces_with_active_model(connection: &Connection) -> Result<Vec<i64>, StoreError> {
    let mut statement = connection.prepare("SELECT workspace_id FROM active_models ORDER BY workspace_id")?;
    let ids = statement.query_map([], |row| row.get(0))?;
    Ok(ids.collect::<Result<_, _>>()?)
}

pub fn by_id(connection: &Connection, model_id: i64) -> Result<Option<ModelVersion>, StoreError> {
    Ok(connection
        .query_row(
            "SELECT id, workspace_id, version, source, created_at, predictors FROM models WHERE id = ?1",
            [model_id],
            from_row,
        )
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, workspaces};

    #[test]
    fn activating_the_active_version_again_leaves_one_entry_to_roll_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write_blocking(|c| {
                let ws = workspaces::find_or_create(c, "w", crate::now_ms())?.id;
                let v1 = add(c, ws, "[scores.a]", &BTreeMap::new(), None, crate::now_ms())?;
                let v2 = add(c, ws, "[scores.b]", &BTreeMap::new(), Some("ana@example.com"), crate::now_ms())?;
                activate(c, ws, v1.id, Origin::Upload, crate::now_ms())?;
                activate(c, ws, v2.id, Origin::Api, crate::now_ms())?;
                activate(c, ws, v2.id, Origin::Api, crate::now_ms())?;
                assert_eq!(stack(c, ws)?.iter().map(|a| a.version).collect::<Vec<_>>(), [1, 2]);
                let uploaders = list_versions(c, ws)?.into_iter().map(|v| v.uploaded_by).collect::<Vec<_>>();
                assert_eq!(uploaders, [None, Some("ana@example.com".to_string())]);
                let rolled = rollback(c, ws, crate::now_ms())?;
                assert_eq!((rolled.undone.version, rolled.restored.version), (2, 1));
                assert!(matches!(rollback(c, ws, crate::now_ms()), Err(StoreError::NotFound(_))));
                Ok(())
            })
            .unwrap();
    }
}
