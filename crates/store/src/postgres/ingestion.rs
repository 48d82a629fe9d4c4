//! The reads of an ingestion request once its leads are locked, in as few round trips as the
//! answers allow: what `storage/postgres.rs::ingestion_snapshot` reads besides the leads.
//!
//! Every statement is a round trip to PostgreSQL, and a single event's request is made of little
//! else: the database's work per statement, not per row, is what limits single-event requests
//! (docs/benchmarks.md, "The service on PostgreSQL"). So:
//! - [`after_locks`] reads, in one statement, the message ids already stored, the locked leads'
//!   scores, which identifiers are on the suppression list (hashed in SQL as
//!   [`crate::erasure::hash`] hashes them) and the workspace's version (`workspace_versions`,
//!   moved by triggers on `active_models` and `webhooks`). It comes after the row locks: a
//!   request that held one of the leads has committed its events and scores by then, and an
//!   erasure of one of them its suppression entries.
//! - [`settings`] answers the active model version and the webhooks from the connection's memory
//!   ([`Remembered`], in a module of its own below both this one and the transaction that keeps
//!   it) while the workspace's version has not moved since they were read, and reads
//!   them (two statements) when it has.

use std::collections::HashSet;

use crate::StoreError;
use crate::erasure::{IdentifierKind, normalised};
use crate::postgres::remembered::{Remembered, Settings};
use crate::postgres::scores::{position_of, stored_row_at, stored_score_columns, stored_scores_from};
use crate::postgres::tx::Tx;
use crate::scores::StoredScores;

/// What [`after_locks`] reads.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct AfterLocks {
    /// Those of the message ids asked that are stored.
    pub(crate) stored_message_ids: HashSet<String>,
    /// The scores of each lead asked, in the order asked.
    pub(crate) scores: Vec<StoredScores>,
    /// Whether each identifier asked is on the suppression list, in the order asked.
    pub(crate) suppressed: Vec<bool>,
    /// The workspace's version (see the module's doc).
    pub(crate) workspace_version: i64,
}

/// The parts of [`after_locks`]' statement, the first column of each of its rows.
const SCORE: i32 = 0;
const MESSAGE_ID: i32 = 1;
const SUPPRESSED: i32 = 2;
const VERSION: i32 = 3;

/// The statement of [`after_locks`]: rows of four parts, told apart by their first column, the
/// others in the columns `scores::stored_row` reads (offset by one). `$1` the workspace, `$2` the lead
/// ids, `$3` the message ids, `$4` and `$5` the identifiers' kinds and normalised values.
const AFTER_LOCKS: &str = concat!(
    "SELECT * FROM (
         SELECT 0 AS part, ",
    stored_score_columns!(),
    " ",
    stored_scores_from!(),
    " WHERE s.lead_id = ANY($2)
         UNION ALL
         SELECT 1, e.message_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
         FROM events e WHERE e.workspace_id = $1 AND e.message_id = ANY($3)
         UNION ALL
         SELECT 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, n.i
         FROM unnest($4::text[], $5::text[]) WITH ORDINALITY AS n (kind, value, i)
         JOIN erasure_salts salt ON salt.workspace_id = $1
         WHERE EXISTS (
             SELECT 1 FROM suppressions x
             WHERE x.workspace_id = $1
               AND x.hash = sha256(salt.salt || convert_to(n.kind, 'UTF8') || '\\x00'::bytea || convert_to(n.value, 'UTF8')))
         UNION ALL
         SELECT 3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                coalesce((SELECT version FROM workspace_versions WHERE workspace_id = $1), 0)
     ) parts
     ORDER BY part, lead_id, score COLLATE \"C\""
);

/// Reads, in one statement, what an ingestion reads once its leads (`lead_ids`, ascending) are
/// locked: see the module's doc.
pub(crate) fn after_locks(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    lead_ids: &[i64],
    message_ids: &[&str],
    identifiers: &[(IdentifierKind, &str)],
) -> Result<AfterLocks, StoreError> {
    // Blank identifiers are never listed: they are not asked.
    let asked: Vec<(usize, &'static str, String)> = identifiers
        .iter()
        .enumerate()
        .filter_map(|(at, (kind, value))| normalised(*kind, value).map(|value| (at, kind.as_str(), value)))
        .collect();
    let kinds: Vec<&str> = asked.iter().map(|(_, kind, _)| *kind).collect();
    let values: Vec<&str> = asked.iter().map(|(_, _, value)| value.as_str()).collect();
    let rows = connection.query(AFTER_LOCKS, &[&workspace_id, &lead_ids, &message_ids, &kinds, &values])?;
    let mut read = AfterLocks { suppressed: vec![false; identifiers.len()], ..AfterLocks::default() };
    let mut scores: Vec<Vec<_>> = lead_ids.iter().map(|_| Vec::new()).collect();
    for row in rows {
        let part: i32 = row.try_get(0)?;
        match part {
            SCORE => {
                if let Some(at) = position_of(lead_ids, row.try_get(12)?) {
                    scores[at].push(stored_row_at(&row, 1)?);
                }
            }
            MESSAGE_ID => {
                read.stored_message_ids.insert(row.try_get(1)?);
            }
            SUPPRESSED => {
                let nth: i64 = row.try_get(12)?;
                if let Some((at, _, _)) = usize::try_from(nth - 1).ok().and_then(|n| asked.get(n)) {
                    read.suppressed[*at] = true;
                }
            }
            VERSION => read.workspace_version = row.try_get(12)?,
            _ => {}
        }
    }
    read.scores = scores.into_iter().map(StoredScores::from_rows).collect();
    Ok(read)
}

/// The workspace's active model version and webhooks as of `version` (read by [`after_locks`]):
/// remembered by the connection since they were read at that version, or read now and
/// remembered.
pub(crate) fn settings(connection: &mut Tx<'_>, workspace_id: i64, version: i64) -> Result<Settings, StoreError> {
    if let Some(settings) = connection.remembered().by_workspace.get(&workspace_id).filter(|s| s.version == version) {
        return Ok(settings.clone());
    }
    let settings = Settings {
        version,
        active_model: crate::postgres::models::active(connection, workspace_id)?,
        webhooks: crate::postgres::webhooks::list(connection, workspace_id)?,
    };
    let remembered = connection.remembered();
    if remembered.by_workspace.len() >= Remembered::LIMIT {
        remembered.by_workspace.clear();
    }
    remembered.by_workspace.insert(workspace_id, settings.clone());
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::models::Origin;
    use crate::postgres::models;
    use crate::postgres::models::tests::workspace;
    use crate::postgres::testing::TestDatabase;
    use crate::webhooks::NewWebhook;

    /// A workspace's settings are read once, then remembered while its version stays; a webhook
    /// made or a version activated elsewhere moves the version, and the next ingestion reads them
    /// again.
    #[test]
    fn settings_are_remembered_until_the_workspace_changes() {
        let Some(database) = TestDatabase::create() else { return };
        let mut ingesting = database.migrated_client();
        let mut elsewhere = database.migrated_client();
        let (ws, first) = {
            let mut c = elsewhere.transaction();
            let ws = workspace(&mut c, "w");
            let first = models::add(&mut c, ws, "[scores.s]", &BTreeMap::new(), None, 1).unwrap();
            models::activate(&mut c, ws, first.id, Origin::Api, 1).unwrap();
            c.commit().unwrap();
            (ws, first)
        };
        let read = |connection: &mut crate::postgres::Connection| {
            let mut t = connection.transaction();
            let version = after_locks(&mut t, ws, &[], &[], &[]).unwrap().workspace_version;
            let settings = settings(&mut t, ws, version).unwrap();
            t.commit().unwrap();
            (version, settings.active_model.map(|m| m.id), settings.webhooks.len())
        };
        let (before, active, hooks) = read(&mut ingesting);
        assert_eq!((active, hooks), (Some(first.id), 0));

        // A row written past the triggers stands for a change nothing announced: the memory is
        // what answers while the version stays.
        elsewhere
            .batch_execute(
                "ALTER TABLE webhooks DISABLE TRIGGER USER;
                 INSERT INTO webhooks (workspace_id, url, secret, events, created_at)
                     SELECT id, 'https://unannounced.example', 's', '[]', 0 FROM workspaces;
                 ALTER TABLE webhooks ENABLE TRIGGER USER;",
            )
            .unwrap();
        assert_eq!(read(&mut ingesting), (before, Some(first.id), 0), "remembered");

        let mut c = elsewhere.transaction();
        let new = NewWebhook { url: "https://crm.example".into(), events: vec![], score: None, threshold: None };
        crate::postgres::webhooks::create(&mut c, ws, &new, 2).unwrap();
        c.commit().unwrap();
        let (after_webhook, _, hooks) = read(&mut ingesting);
        assert!(after_webhook > before);
        assert_eq!(hooks, 2, "read again, with every webhook stored");

        let mut c = elsewhere.transaction();
        let second = models::add(&mut c, ws, "[scores.t]", &BTreeMap::new(), None, 3).unwrap();
        models::activate(&mut c, ws, second.id, Origin::Api, 3).unwrap();
        c.commit().unwrap();
        let (after_activation, active, _) = read(&mut ingesting);
        assert!(after_activation > after_webhook);
        assert_eq!(active, Some(second.id));
    }
}
