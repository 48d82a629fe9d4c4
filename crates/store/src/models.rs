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
/// `predictors`) and returns it. A pinned predictive model must belong to the workspace.
pub fn add(
    connection: &Connection,
    workspace_id: i64,
    source: &str,
    predictors: &BTreeMap<String, i64>,
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
    let now = crate::now_ms();
    connection.execute(
        "INSERT INTO models (workspace_id, version, source, created_at, predictors) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![workspace_id, version, source, now, pins],
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

pub fn activate(connection: &Connection, workspace_id: i64, model_id: i64) -> Result<(), StoreError> {
    let owned: bool = connection.query_row(
        "SELECT count(*) > 0 FROM models WHERE id = ?1 AND workspace_id = ?2",
        params![model_id, workspace_id],
        |row| row.get(0),
    )?;
    if !owned {
        return Err(StoreError::NotFound(format!("no model {model_id} in this workspace")));
    }
    connection.execute(
        "INSERT INTO active_models (workspace_id, model_id) VALUES (?1, ?2)
         ON CONFLICT (workspace_id) DO UPDATE SET model_id = excluded.model_id",
        params![workspace_id, model_id],
    )?;
    connection.execute("UPDATE models SET activated_at = ?1 WHERE id = ?2", params![crate::now_ms(), model_id])?;
    Ok(())
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

pub fn by_id(connection: &Connection, model_id: i64) -> Result<Option<ModelVersion>, StoreError> {
    Ok(connection
        .query_row(
            "SELECT id, workspace_id, version, source, created_at, predictors FROM models WHERE id = ?1",
            [model_id],
            from_row,
        )
        .optional()?)
}
