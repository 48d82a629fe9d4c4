//! PostgreSQL queries of the models family (see [`crate::models`] for SQLite's): a workspace's
//! scoring model versions (`models`), the one active (`active_models`) and the stack of
//! activations that rollbacks walk down (`model_activations`).
//!
//! # How it differs from SQLite
//! SQLite's single writer makes "the highest version plus one" and "the activation on top of the
//! stack" safe to read and then write. Here several instances write at once, so every write of
//! the family first locks the workspace's row ([`lock_workspace`]): two uploads never read the
//! same highest version (the `UNIQUE (workspace_id, version)` constraint backs it, answered as
//! [`StoreError::Conflict`]), and two activations or rollbacks never both build on the same top
//! of the stack. The lock is `FOR NO KEY UPDATE`, which excludes the family's other writers as
//! `FOR UPDATE` would, but not the key-share locks PostgreSQL takes on the workspace's row for
//! every row inserted that references it (a lead, an event): ingestion goes on meanwhile.

use std::collections::{BTreeMap, BTreeSet};

use crate::StoreError;
use crate::models::*;
use crate::postgres::tx::Tx;

/// The columns [`from_row`] reads, from `models` as `m`.
const COLUMNS: &str = "m.id, m.workspace_id, m.version, m.source, m.created_at, m.predictors";

fn from_row(row: &postgres::Row) -> Result<ModelVersion, StoreError> {
    let id: i64 = row.try_get(0)?;
    let pins: String = row.try_get(5)?;
    let predictors = serde_json::from_str(&pins)
        .map_err(|e| StoreError::Corrupt(format!("the predictive pins of model {id} are not a JSON map: {e}")))?;
    Ok(ModelVersion {
        id,
        workspace_id: row.try_get(1)?,
        version: row.try_get(2)?,
        source: row.try_get(3)?,
        created_at: row.try_get(4)?,
        predictors,
    })
}

/// Locks the workspace's row until the transaction ends: the family's writes of one workspace
/// run one after the other, whichever instance makes them (see the module's doc).
pub(crate) fn lock_workspace(connection: &mut Tx<'_>, workspace_id: i64) -> Result<(), StoreError> {
    connection.execute("SELECT 1 FROM workspaces WHERE id = $1 FOR NO KEY UPDATE", &[&workspace_id])?;
    Ok(())
}

pub(crate) fn by_id(connection: &mut Tx<'_>, model_id: i64) -> Result<Option<ModelVersion>, StoreError> {
    connection
        .query_opt(&format!("SELECT {COLUMNS} FROM models m WHERE m.id = $1"), &[&model_id])?
        .map(|row| from_row(&row))
        .transpose()
}

/// The id of the workspace's version numbered `version`, if there is one.
pub(crate) fn id_of_version(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    version: i64,
) -> Result<Option<i64>, StoreError> {
    let row = connection
        .query_opt("SELECT id FROM models WHERE workspace_id = $1 AND version = $2", &[&workspace_id, &version])?;
    Ok(row.map(|row| row.try_get(0)).transpose()?)
}

/// Every version of the workspace, oldest first.
pub(crate) fn list_versions(connection: &mut Tx<'_>, workspace_id: i64) -> Result<Vec<ListedVersion>, StoreError> {
    let rows = connection.query(
        "SELECT id, version, created_at, uploaded_by FROM models WHERE workspace_id = $1 ORDER BY version",
        &[&workspace_id],
    )?;
    rows.iter()
        .map(|row| {
            Ok(ListedVersion {
                id: row.try_get(0)?,
                version: row.try_get(1)?,
                created_at: row.try_get(2)?,
                uploaded_by: row.try_get(3)?,
            })
        })
        .collect()
}

/// A workspace's activations, oldest first (rolled back ones included, with `undone_at`).
pub(crate) fn stack(connection: &mut Tx<'_>, workspace_id: i64) -> Result<Vec<Activation>, StoreError> {
    let rows = connection.query(
        "SELECT a.model_id, m.version, a.origin, a.at, a.undone_at
         FROM model_activations a JOIN models m ON m.id = a.model_id
         WHERE a.workspace_id = $1 ORDER BY a.id",
        &[&workspace_id],
    )?;
    rows.iter()
        .map(|row| {
            Ok(Activation {
                model_id: row.try_get(0)?,
                version: row.try_get(1)?,
                origin: row.try_get(2)?,
                at: row.try_get(3)?,
                undone_at: row.try_get(4)?,
            })
        })
        .collect()
}

pub(crate) fn active(connection: &mut Tx<'_>, workspace_id: i64) -> Result<Option<ModelVersion>, StoreError> {
    connection
        .query_opt(
            &format!(
                "SELECT {COLUMNS} FROM active_models a JOIN models m ON m.id = a.model_id WHERE a.workspace_id = $1"
            ),
            &[&workspace_id],
        )?
        .map(|row| from_row(&row))
        .transpose()
}

/// Stores a new version (the caller has compiled it, resolving its predictive references to
/// `predictors`) and returns it, with who uploaded it (an API key, a console account; `None`
/// when no one did, as for tests and versions stored before it was recorded). A pinned
/// predictive model must belong to the workspace.
pub(crate) fn add(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    source: &str,
    predictors: &BTreeMap<String, i64>,
    uploaded_by: Option<&str>,
    now: i64,
) -> Result<ModelVersion, StoreError> {
    if !predictors.is_empty() {
        // One query for every pin; the first reference (in name order, as SQLite checks them)
        // pinned to a model of another workspace is named.
        let pinned: Vec<i64> = predictors.values().copied().collect();
        let owned: BTreeSet<i64> = connection
            .query(
                "SELECT id FROM predictive_models WHERE id = ANY($1) AND workspace_id = $2",
                &[&pinned, &workspace_id],
            )?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()?;
        if let Some((reference, id)) = predictors.iter().find(|(_, id)| !owned.contains(id)) {
            return Err(StoreError::NotFound(format!(
                "`{reference}` is pinned to predictive model {id}, which is not in this workspace"
            )));
        }
    }
    let pins = serde_json::to_string(predictors).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    lock_workspace(connection, workspace_id)?;
    // Under the lock, this statement's snapshot has every version another instance committed.
    let inserted = connection.query_one(
        "INSERT INTO models (workspace_id, version, source, created_at, predictors, uploaded_by)
         SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4, $5 FROM models WHERE workspace_id = $1
         RETURNING id, version",
        &[&workspace_id, &source, &now, &pins, &uploaded_by],
    );
    let row = inserted.map_err(|error| match error.code() {
        Some(&postgres::error::SqlState::UNIQUE_VIOLATION) => {
            StoreError::Conflict("another version of the workspace's model was stored at the same time".to_string())
        }
        _ => StoreError::Postgres(error),
    })?;
    Ok(ModelVersion {
        id: row.try_get(0)?,
        workspace_id,
        version: row.try_get(1)?,
        source: source.to_string(),
        created_at: now,
        predictors: predictors.clone(),
    })
}

/// Makes a version the active one, on top of the workspace's version stack.
pub(crate) fn activate(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    model_id: i64,
    origin: Origin,
    now: i64,
) -> Result<(), StoreError> {
    lock_workspace(connection, workspace_id)?;
    let owned: bool = connection
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM models WHERE id = $1 AND workspace_id = $2)",
            &[&model_id, &workspace_id],
        )?
        .try_get(0)?;
    if !owned {
        return Err(StoreError::NotFound(format!("no model {model_id} in this workspace")));
    }
    set_active(connection, workspace_id, model_id, now)?;
    // Activating the version already active changes nothing to roll back: one entry for it, so
    // that a rollback goes to the version before it.
    connection.execute(
        "INSERT INTO model_activations (workspace_id, model_id, origin, at)
         SELECT $1, $2, $3, $4
         WHERE (SELECT model_id FROM model_activations WHERE workspace_id = $1 AND undone_at IS NULL
                ORDER BY id DESC LIMIT 1) IS DISTINCT FROM $2",
        &[&workspace_id, &model_id, &origin.as_str(), &now],
    )?;
    Ok(())
}

fn set_active(connection: &mut Tx<'_>, workspace_id: i64, model_id: i64, now: i64) -> Result<(), StoreError> {
    connection.execute(
        "INSERT INTO active_models (workspace_id, model_id) VALUES ($1, $2)
         ON CONFLICT (workspace_id) DO UPDATE SET model_id = excluded.model_id",
        &[&workspace_id, &model_id],
    )?;
    connection.execute("UPDATE models SET activated_at = $1 WHERE id = $2", &[&now, &model_id])?;
    Ok(())
}

/// Undoes the newest activation still standing: the version activated before it is active
/// again. A second rollback goes one further down the stack; it never goes forward again.
pub(crate) fn rollback(connection: &mut Tx<'_>, workspace_id: i64, now: i64) -> Result<RolledBack, StoreError> {
    lock_workspace(connection, workspace_id)?;
    // The two activations on top of those standing, the newest first.
    let standing: Vec<(i64, i64, i64)> = connection
        .query(
            "SELECT id, model_id, at FROM model_activations WHERE workspace_id = $1 AND undone_at IS NULL
             ORDER BY id DESC LIMIT 2",
            &[&workspace_id],
        )?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
        .collect::<Result<_, StoreError>>()?;
    let [top, below] = standing.as_slice() else {
        return Err(StoreError::NotFound(match standing.len() {
            0 => "no active model to roll back from".to_string(),
            _ => "no earlier version to roll back to: every version activated before the active one was rolled back"
                .to_string(),
        }));
    };
    let (top_activation, top_model, top_at) = *top;
    let below_model = below.1;
    connection.execute("UPDATE model_activations SET undone_at = $1 WHERE id = $2", &[&now, &top_activation])?;
    set_active(connection, workspace_id, below_model, now)?;
    let versions: Vec<ModelVersion> = connection
        .query(&format!("SELECT {COLUMNS} FROM models m WHERE m.id = ANY($1)"), &[&vec![top_model, below_model]])?
        .iter()
        .map(from_row)
        .collect::<Result<_, _>>()?;
    let find = |id: i64| {
        versions
            .iter()
            .find(|version| version.id == id)
            .cloned()
            .ok_or_else(|| StoreError::Corrupt(format!("activation of missing model {id}")))
    };
    Ok(RolledBack { undone: find(top_model)?, undone_activated_at: top_at, restored: find(below_model)? })
}

/// The workspaces that have an active version, in id order: those the scheduler rescores.
pub(crate) fn workspaces_with_active_model(connection: &mut Tx<'_>) -> Result<Vec<i64>, StoreError> {
    let rows = connection.query("SELECT workspace_id FROM active_models ORDER BY workspace_id", &[])?;
    Ok(rows.iter().map(|row| row.try_get(0)).collect::<Result<_, _>>()?)
}

/// The newest version with this source and these pins, if one was stored (see
/// [`crate::models::find_same`]): a model file installed again.
pub(crate) fn find_same(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    source: &str,
    predictors: &BTreeMap<String, i64>,
) -> Result<Option<ModelVersion>, StoreError> {
    let rows = connection.query(
        &format!("SELECT {COLUMNS} FROM models m WHERE m.workspace_id = $1 AND m.source = $2 ORDER BY m.version DESC"),
        &[&workspace_id, &source],
    )?;
    for row in rows {
        let candidate = from_row(&row)?;
        if candidate.predictors == *predictors {
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::postgres::testing::TestDatabase;

    /// A workspace named `name`, made with SQL (the workspaces family is tested on its own).
    pub(crate) fn workspace(connection: &mut Tx<'_>, name: &str) -> i64 {
        connection
            .query_one("INSERT INTO workspaces (name, created_at) VALUES ($1, 0) RETURNING id", &[&name])
            .unwrap()
            .get(0)
    }

    #[test]
    fn a_model_installed_again_is_found_by_its_text_and_pins() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut c = client.transaction();
        let ws = workspace(&mut c, "w");
        let other = workspace(&mut c, "other");
        let plain = add(&mut c, ws, "[scores.a]", &BTreeMap::new(), None, 1).unwrap();
        let again = add(&mut c, ws, "[scores.a]", &BTreeMap::new(), None, 2).unwrap();
        assert_eq!(find_same(&mut c, ws, "[scores.a]", &BTreeMap::new()).unwrap().map(|m| m.id), Some(again.id));
        assert_ne!(plain.id, again.id, "the newest of two same versions");
        assert_eq!(find_same(&mut c, ws, "[scores.b]", &BTreeMap::new()).unwrap(), None);
        assert_eq!(find_same(&mut c, other, "[scores.a]", &BTreeMap::new()).unwrap(), None, "another workspace's");
        let pins = BTreeMap::from([("conversion".to_string(), 7)]);
        assert_eq!(find_same(&mut c, ws, "[scores.a]", &pins).unwrap(), None, "other pins are another model");
    }

    #[test]
    fn activating_the_active_version_again_leaves_one_entry_to_roll_back() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut c = client.transaction();
        let ws = workspace(&mut c, "w");
        let v1 = add(&mut c, ws, "[scores.a]", &BTreeMap::new(), None, 1).unwrap();
        let v2 = add(&mut c, ws, "[scores.b]", &BTreeMap::new(), Some("ana@example.com"), 2).unwrap();
        activate(&mut c, ws, v1.id, Origin::Upload, 3).unwrap();
        activate(&mut c, ws, v2.id, Origin::Api, 4).unwrap();
        activate(&mut c, ws, v2.id, Origin::Api, 5).unwrap();
        assert_eq!(stack(&mut c, ws).unwrap().iter().map(|a| a.version).collect::<Vec<_>>(), [1, 2]);
        let uploaders = list_versions(&mut c, ws).unwrap().into_iter().map(|v| v.uploaded_by).collect::<Vec<_>>();
        assert_eq!(uploaders, [None, Some("ana@example.com".to_string())]);
        let rolled = rollback(&mut c, ws, 6).unwrap();
        assert_eq!((rolled.undone.version, rolled.restored.version, rolled.undone_activated_at), (2, 1, 4));
        assert_eq!(active(&mut c, ws).unwrap().map(|m| m.id), Some(v1.id));
        let error = rollback(&mut c, ws, 7).unwrap_err();
        assert!(matches!(&error, StoreError::NotFound(m) if m.starts_with("no earlier version")), "{error:?}");
        // Activating v2 again puts it back on top; a rollback then undoes it again.
        activate(&mut c, ws, v2.id, Origin::Api, 8).unwrap();
        let undone: Vec<_> = stack(&mut c, ws).unwrap().iter().map(|a| (a.version, a.undone_at)).collect();
        assert_eq!(undone, [(1, None), (2, Some(6)), (2, None)]);
        assert_eq!(rollback(&mut c, ws, 9).unwrap().restored.id, v1.id);
    }

    #[test]
    fn a_workspace_without_activations_has_nothing_to_roll_back_and_foreign_versions_are_not_activated() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut c = client.transaction();
        let (acme, globex) = (workspace(&mut c, "acme"), workspace(&mut c, "globex"));
        let error = rollback(&mut c, acme, 1).unwrap_err();
        assert!(matches!(&error, StoreError::NotFound(m) if m.starts_with("no active model")), "{error:?}");
        let theirs = add(&mut c, globex, "[scores.a]", &BTreeMap::new(), None, 1).unwrap();
        assert!(matches!(activate(&mut c, acme, theirs.id, Origin::Api, 2), Err(StoreError::NotFound(_))));
        assert_eq!(workspaces_with_active_model(&mut c).unwrap(), Vec::<i64>::new());
        activate(&mut c, globex, theirs.id, Origin::Upload, 3).unwrap();
        assert_eq!(workspaces_with_active_model(&mut c).unwrap(), [globex]);
        assert_eq!(id_of_version(&mut c, globex, 1).unwrap(), Some(theirs.id));
        assert_eq!(id_of_version(&mut c, acme, 1).unwrap(), None);
        assert_eq!(by_id(&mut c, theirs.id).unwrap(), Some(theirs));
    }

    #[test]
    fn two_instances_adding_versions_at_once_number_them_one_after_the_other() {
        let Some(database) = TestDatabase::create() else { return };
        let mut first = database.migrated_client();
        let mut second = crate::postgres::Connection::connect_url(&database.url);
        let ws = {
            let mut c = first.transaction();
            let ws = workspace(&mut c, "w");
            c.commit().unwrap();
            ws
        };
        let mut one = first.transaction();
        let v1 = add(&mut one, ws, "[scores.a]", &BTreeMap::new(), None, 1).unwrap();
        // The second instance waits for the first's lock, then sees its version.
        let adding = std::thread::spawn(move || {
            let mut two = second.transaction();
            let v2 = add(&mut two, ws, "[scores.b]", &BTreeMap::new(), None, 2).unwrap();
            two.commit().unwrap();
            v2.version
        });
        one.commit().unwrap();
        assert_eq!((v1.version, adding.join().unwrap()), (1, 2));
    }
}
