//! Predictive models of a workspace: files written by `leadscore train`, uploaded or retrained by
//! the service, numbered per name. A version never changes once stored; scoring model versions
//! pin the versions they were compiled with (see [`crate::models`]).

use std::fmt;

use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;

/// How a predictive model version was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Sent by a client (`PUT /api/predictive-models/{name}`).
    Upload,
    /// Trained by the service on the workspace's own outcomes.
    Retrain,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Upload => "upload",
            Origin::Retrain => "retrain",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Origin> {
        match text {
            "upload" => Some(Origin::Upload),
            "retrain" => Some(Origin::Retrain),
            _ => None,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored predictive model version, with its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredictiveVersion {
    pub id: i64,
    pub workspace_id: i64,
    pub name: String,
    pub version: i64,
    /// The model file's JSON text.
    pub body: String,
    pub algorithm: String,
    pub origin: Origin,
    pub created_at: i64,
}

/// A version as listed: what its file says about it, without the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub id: i64,
    pub name: String,
    pub version: i64,
    pub algorithm: String,
    pub origin: Origin,
    pub created_at: i64,
    /// The lead fields it reads.
    pub fields: Vec<String>,
    /// The AUC its training measured on held-out leads, when the file records one.
    pub auc: Option<f64>,
}

/// Stores a new version of the workspace's predictive model `name` (the caller has checked the
/// file) and returns it.
pub fn add(
    connection: &Connection,
    workspace_id: i64,
    name: &str,
    body: &str,
    algorithm: &str,
    origin: Origin,
    now: i64,
) -> Result<PredictiveVersion, StoreError> {
    let version: i64 = connection.query_row(
        "SELECT coalesce(max(version), 0) + 1 FROM predictive_models WHERE workspace_id = ?1 AND name = ?2",
        params![workspace_id, name],
        |row| row.get(0),
    )?;
    connection.execute(
        "INSERT INTO predictive_models (workspace_id, name, version, body, algorithm, origin, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![workspace_id, name, version, body, algorithm, origin.as_str(), now],
    )?;
    Ok(PredictiveVersion {
        id: connection.last_insert_rowid(),
        workspace_id,
        name: name.to_string(),
        version,
        body: body.to_string(),
        algorithm: algorithm.to_string(),
        origin,
        created_at: now,
    })
}

const COLUMNS: &str = "id, workspace_id, name, version, body, algorithm, origin, created_at";

fn origin_at(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Origin> {
    let text: String = row.get(index)?;
    Origin::parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            format!("unknown predictive model origin `{text}`").into(),
        )
    })
}

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<PredictiveVersion> {
    Ok(PredictiveVersion {
        id: row.get(0)?,
        workspace_id: row.get(1)?,
        name: row.get(2)?,
        version: row.get(3)?,
        body: row.get(4)?,
        algorithm: row.get(5)?,
        origin: origin_at(row, 6)?,
        created_at: row.get(7)?,
    })
}

/// The latest version of the workspace's predictive model `name`, if there is one.
pub fn latest(connection: &Connection, workspace_id: i64, name: &str) -> Result<Option<PredictiveVersion>, StoreError> {
    Ok(connection
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM predictive_models WHERE workspace_id = ?1 AND name = ?2
                 ORDER BY version DESC LIMIT 1"
            ),
            params![workspace_id, name],
            from_row,
        )
        .optional()?)
}

/// A version by its id, if it belongs to the workspace.
pub fn by_id(connection: &Connection, workspace_id: i64, id: i64) -> Result<Option<PredictiveVersion>, StoreError> {
    Ok(connection
        .query_row(
            &format!("SELECT {COLUMNS} FROM predictive_models WHERE id = ?1 AND workspace_id = ?2"),
            params![id, workspace_id],
            from_row,
        )
        .optional()?)
}

/// Every version of the workspace's predictive models, by name then version. The fields and AUC
/// are read from the stored files by SQLite, so that bodies (megabytes for boosted trees) are
/// not copied out.
pub fn list(connection: &Connection, workspace_id: i64) -> Result<Vec<Summary>, StoreError> {
    let mut statement = connection.prepare(
        "SELECT id, name, version, algorithm, origin, created_at,
                coalesce(json_extract(body, '$.features'), '[]'), json_extract(body, '$.evaluation.auc')
         FROM predictive_models WHERE workspace_id = ?1 ORDER BY name, version",
    )?;
    let rows = statement.query_map([workspace_id], |row| {
        let fields: String = row.get(6)?;
        let auc: Option<f64> = row.get::<_, Option<f64>>(7).unwrap_or(None);
        Ok(Summary {
            id: row.get(0)?,
            name: row.get(1)?,
            version: row.get(2)?,
            algorithm: row.get(3)?,
            origin: origin_at(row, 4)?,
            created_at: row.get(5)?,
            fields: serde_json::from_str(&fields).unwrap_or_default(),
            auc,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A lead whose outcome is known: the training data of a retrained model.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledLead {
    /// `true` for a lead in stage `customer`, `false` for one in `lost`.
    pub converted: bool,
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// The workspace's leads whose current stage is `customer` or `lost` (merged-away leads left out),
/// in the order they were created.
pub fn outcomes(connection: &Connection, workspace_id: i64) -> Result<Vec<LabelledLead>, StoreError> {
    let mut statement = connection.prepare(
        "SELECT stage, attributes FROM leads
         WHERE workspace_id = ?1 AND stage IN ('customer', 'lost') AND merged_into IS NULL ORDER BY id",
    )?;
    let rows = statement.query_map([workspace_id], |row| {
        let (stage, attributes): (String, String) = (row.get(0)?, row.get(1)?);
        Ok(LabelledLead {
            converted: stage == "customer",
            attributes: serde_json::from_str(&attributes).unwrap_or_default(),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::{Store, models, workspaces};

    const BODY: &str =
        r#"{"kind": "leadscore-predictive-model", "features": ["age", "job"], "evaluation": {"auc": 0.75}}"#;

    #[test]
    fn versions_are_numbered_per_name_and_scoped_by_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write_blocking(|c| {
                let acme = workspaces::find_or_create(c, "acme", crate::now_ms())?.id;
                let globex = workspaces::find_or_create(c, "globex", crate::now_ms())?.id;
                let first = add(c, acme, "conversion", BODY, "logistic", Origin::Upload, crate::now_ms())?;
                let second = add(c, acme, "conversion", "{}", "gbdt", Origin::Retrain, crate::now_ms())?;
                let other = add(c, globex, "conversion", "{}", "logistic", Origin::Upload, crate::now_ms())?;
                assert_eq!((first.version, second.version, other.version), (1, 2, 1));
                assert_eq!(latest(c, acme, "conversion")?.map(|v| v.id), Some(second.id));
                assert_eq!(latest(c, acme, "churn")?, None);
                assert_eq!(by_id(c, acme, first.id)?, Some(first.clone()));
                assert_eq!(by_id(c, globex, first.id)?, None, "another workspace's model is not found");
                let listed = list(c, acme)?;
                assert_eq!(listed.len(), 2);
                assert_eq!(listed[0].fields, ["age", "job"]);
                assert_eq!(listed[0].auc, Some(0.75));
                assert_eq!((listed[1].origin, listed[1].auc), (Origin::Retrain, None));
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn a_model_version_keeps_its_pins() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write_blocking(|c| {
                let acme = workspaces::find_or_create(c, "acme", crate::now_ms())?.id;
                let globex = workspaces::find_or_create(c, "globex", crate::now_ms())?.id;
                let v1 = add(c, acme, "conversion", BODY, "logistic", Origin::Upload, crate::now_ms())?;
                let pins = BTreeMap::from([("conversion".to_string(), v1.id)]);
                let stored = models::add(c, acme, "[scores.s]", &pins, None, crate::now_ms())?;
                // A newer predictive version does not change what the stored version is pinned to.
                add(c, acme, "conversion", BODY, "logistic", Origin::Retrain, crate::now_ms())?;
                assert_eq!(models::by_id(c, stored.id)?.map(|m| m.predictors), Some(pins.clone()));
                models::activate(c, acme, stored.id, models::Origin::Api, crate::now_ms())?;
                assert_eq!(models::active(c, acme)?.map(|m| m.predictors), Some(pins.clone()));
                let plain = models::add(c, acme, "[scores.t]", &BTreeMap::new(), None, crate::now_ms())?;
                assert!(models::by_id(c, plain.id)?.is_some_and(|m| m.predictors.is_empty()));
                // Pinning another workspace's predictive model is refused.
                assert!(matches!(
                    models::add(c, globex, "[scores.s]", &pins, None, crate::now_ms()),
                    Err(StoreError::NotFound(_))
                ));
                Ok(())
            })
            .unwrap();
    }
}
