//! PostgreSQL queries of the predictive family (see [`crate::predictive`] for SQLite's): the
//! predictive model files of a workspace (`predictive_models`), numbered per name.
//!
//! # How it differs from SQLite
//! - A new version number is the name's highest plus one, read under the lock of the workspace's
//!   row that the models family takes too ([`super::models::lock_workspace`]), so that two
//!   instances never give the same number; `UNIQUE (workspace_id, name, version)` backs it.
//! - [`list`] reads the fields and the AUC out of the stored files with `jsonb`, parsed once per
//!   row; a file whose `features` or `evaluation.auc` is not what they should be lists no fields
//!   or no AUC, as SQLite's `json_extract` does.

use crate::StoreError;
use crate::postgres::models::lock_workspace;
use crate::postgres::tx::Tx;
use crate::predictive::*;

const COLUMNS: &str = "id, workspace_id, name, version, body, algorithm, origin, created_at";

fn origin_at(row: &postgres::Row, index: usize) -> Result<Origin, StoreError> {
    let text: String = row.try_get(index)?;
    Origin::parse(&text).ok_or_else(|| StoreError::Corrupt(format!("unknown predictive model origin `{text}`")))
}

fn from_row(row: &postgres::Row) -> Result<PredictiveVersion, StoreError> {
    Ok(PredictiveVersion {
        id: row.try_get(0)?,
        workspace_id: row.try_get(1)?,
        name: row.try_get(2)?,
        version: row.try_get(3)?,
        body: row.try_get(4)?,
        algorithm: row.try_get(5)?,
        origin: origin_at(row, 6)?,
        created_at: row.try_get(7)?,
    })
}

/// The latest version of the workspace's predictive model `name`, if there is one.
pub(crate) fn latest(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    name: &str,
) -> Result<Option<PredictiveVersion>, StoreError> {
    connection
        .query_opt(
            &format!(
                "SELECT {COLUMNS} FROM predictive_models WHERE workspace_id = $1 AND name = $2
                 ORDER BY version DESC LIMIT 1"
            ),
            &[&workspace_id, &name],
        )?
        .map(|row| from_row(&row))
        .transpose()
}

/// Every version of the workspace's predictive models, by name then version. The fields and AUC
/// are read from the stored files by PostgreSQL, so that bodies (megabytes for boosted trees)
/// are not copied out.
pub(crate) fn list(connection: &mut Tx<'_>, workspace_id: i64) -> Result<Vec<Summary>, StoreError> {
    // `COLLATE "C"`: names sorted by their bytes, as SQLite's default collation sorts them.
    let rows = connection.query(
        "SELECT p.id, p.name, p.version, p.algorithm, p.origin, p.created_at,
                coalesce(file.doc -> 'features', '[]')::text,
                CASE WHEN jsonb_typeof(file.doc #> '{evaluation,auc}') = 'number'
                     THEN (file.doc #>> '{evaluation,auc}')::double precision END
         FROM predictive_models p CROSS JOIN LATERAL (SELECT p.body::jsonb AS doc) file
         WHERE p.workspace_id = $1 ORDER BY p.name COLLATE \"C\", p.version",
        &[&workspace_id],
    )?;
    rows.iter()
        .map(|row| {
            let fields: String = row.try_get(6)?;
            Ok(Summary {
                id: row.try_get(0)?,
                name: row.try_get(1)?,
                version: row.try_get(2)?,
                algorithm: row.try_get(3)?,
                origin: origin_at(row, 4)?,
                created_at: row.try_get(5)?,
                fields: serde_json::from_str(&fields).unwrap_or_default(),
                auc: row.try_get(7)?,
            })
        })
        .collect()
}

/// The workspace's leads whose current stage is `customer` or `lost` (merged-away leads left out),
/// in the order they were created.
pub(crate) fn outcomes(connection: &mut Tx<'_>, workspace_id: i64) -> Result<Vec<LabelledLead>, StoreError> {
    let rows = connection.query(
        "SELECT stage, attributes FROM leads
         WHERE workspace_id = $1 AND stage IN ('customer', 'lost') AND merged_into IS NULL ORDER BY id",
        &[&workspace_id],
    )?;
    rows.iter()
        .map(|row| {
            let (stage, attributes): (String, String) = (row.try_get(0)?, row.try_get(1)?);
            Ok(LabelledLead {
                converted: stage == "customer",
                attributes: serde_json::from_str(&attributes).unwrap_or_default(),
            })
        })
        .collect()
}

/// A version by its id, if it belongs to the workspace.
pub(crate) fn by_id(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    id: i64,
) -> Result<Option<PredictiveVersion>, StoreError> {
    connection
        .query_opt(
            &format!("SELECT {COLUMNS} FROM predictive_models WHERE id = $1 AND workspace_id = $2"),
            &[&id, &workspace_id],
        )?
        .map(|row| from_row(&row))
        .transpose()
}

/// Stores a new version of the workspace's predictive model `name` (the caller has checked the
/// file) and returns it.
pub(crate) fn add(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    name: &str,
    body: &str,
    algorithm: &str,
    origin: Origin,
    now: i64,
) -> Result<PredictiveVersion, StoreError> {
    lock_workspace(connection, workspace_id)?;
    let inserted = connection.query_one(
        "INSERT INTO predictive_models (workspace_id, name, version, body, algorithm, origin, created_at)
         SELECT $1, $2, coalesce(max(version), 0) + 1, $3, $4, $5, $6
         FROM predictive_models WHERE workspace_id = $1 AND name = $2
         RETURNING id, version",
        &[&workspace_id, &name, &body, &algorithm, &origin.as_str(), &now],
    );
    let row = inserted.map_err(|error| match error.code() {
        Some(&postgres::error::SqlState::UNIQUE_VIOLATION) => {
            StoreError::Conflict(format!("another version of predictive model `{name}` was stored at the same time"))
        }
        _ => StoreError::Postgres(error),
    })?;
    Ok(PredictiveVersion {
        id: row.try_get(0)?,
        workspace_id,
        name: name.to_string(),
        version: row.try_get(1)?,
        body: body.to_string(),
        algorithm: algorithm.to_string(),
        origin,
        created_at: now,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::postgres::models;
    use crate::postgres::models::tests::workspace;
    use crate::postgres::testing::TestDatabase;

    const BODY: &str =
        r#"{"kind": "leadscore-predictive-model", "features": ["age", "job"], "evaluation": {"auc": 0.75}}"#;

    #[test]
    fn versions_are_numbered_per_name_and_scoped_by_workspace() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut c = client.transaction();
        let acme = workspace(&mut c, "acme");
        let globex = workspace(&mut c, "globex");
        let first = add(&mut c, acme, "conversion", BODY, "logistic", Origin::Upload, 1).unwrap();
        let second = add(&mut c, acme, "conversion", "{}", "gbdt", Origin::Retrain, 2).unwrap();
        let other = add(&mut c, globex, "conversion", "{}", "logistic", Origin::Upload, 3).unwrap();
        let churn =
            add(&mut c, acme, "Churn", r#"{"features": null, "evaluation": {"auc": "high"}}"#, "x", Origin::Upload, 4)
                .unwrap();
        assert_eq!((first.version, second.version, other.version, churn.version), (1, 2, 1, 1));
        assert_eq!(latest(&mut c, acme, "conversion").unwrap().map(|v| v.id), Some(second.id));
        assert_eq!(latest(&mut c, acme, "churn").unwrap(), None);
        assert_eq!(by_id(&mut c, acme, first.id).unwrap(), Some(first.clone()));
        assert_eq!(by_id(&mut c, globex, first.id).unwrap(), None, "another workspace's model is not found");
        let listed = list(&mut c, acme).unwrap();
        let order: Vec<_> = listed.iter().map(|s| (s.name.as_str(), s.version)).collect();
        assert_eq!(order, [("Churn", 1), ("conversion", 1), ("conversion", 2)], "by name (bytes), then version");
        assert_eq!(listed[1].fields, ["age", "job"]);
        assert_eq!(listed[1].auc, Some(0.75));
        assert_eq!((listed[2].origin, listed[2].auc), (Origin::Retrain, None));
        assert_eq!((listed[0].fields.len(), listed[0].auc), (0, None), "a null list and a text AUC read as none");
    }

    #[test]
    fn a_model_version_keeps_its_pins() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut c = client.transaction();
        let acme = workspace(&mut c, "acme");
        let globex = workspace(&mut c, "globex");
        let v1 = add(&mut c, acme, "conversion", BODY, "logistic", Origin::Upload, 1).unwrap();
        let pins = BTreeMap::from([("conversion".to_string(), v1.id)]);
        let stored = models::add(&mut c, acme, "[scores.s]", &pins, None, 2).unwrap();
        // A newer predictive version does not change what the stored version is pinned to.
        add(&mut c, acme, "conversion", BODY, "logistic", Origin::Retrain, 3).unwrap();
        assert_eq!(models::by_id(&mut c, stored.id).unwrap().map(|m| m.predictors), Some(pins.clone()));
        models::activate(&mut c, acme, stored.id, crate::models::Origin::Api, 4).unwrap();
        assert_eq!(models::active(&mut c, acme).unwrap().map(|m| m.predictors), Some(pins.clone()));
        let plain = models::add(&mut c, acme, "[scores.t]", &BTreeMap::new(), None, 5).unwrap();
        assert!(models::by_id(&mut c, plain.id).unwrap().is_some_and(|m| m.predictors.is_empty()));
        // Pinning another workspace's predictive model is refused, naming the reference.
        let refused = models::add(&mut c, globex, "[scores.s]", &pins, None, 6);
        assert!(matches!(&refused, Err(StoreError::NotFound(m)) if m.contains("`conversion`")), "{refused:?}");
    }

    #[test]
    fn outcomes_are_the_customers_and_the_lost_in_creation_order() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut c = client.transaction();
        let acme = workspace(&mut c, "acme");
        c.execute(
            "INSERT INTO leads (id, workspace_id, attributes, created_at, updated_at, stage, merged_into) VALUES
                 (1, $1, '{\"job\": \"cto\"}', 0, 0, 'lost', NULL),
                 (2, $1, '{}', 0, 0, 'customer', NULL),
                 (3, $1, '{}', 0, 0, 'mql', NULL),
                 (4, $1, '{}', 0, 0, 'customer', 2)",
            &[&acme],
        )
        .unwrap();
        let found = outcomes(&mut c, acme).unwrap();
        assert_eq!(found.iter().map(|l| l.converted).collect::<Vec<_>>(), [false, true]);
        assert_eq!(found[0].attributes.get("job"), Some(&serde_json::json!("cto")));
    }
}
