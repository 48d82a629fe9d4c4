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
//! - [`write_all`] writes, in one statement, the events, the leads' rows and every score and
//!   history entry, the parts of `events::append_saving_rows` and `scores::save_over_all`
//!   together: one round trip where the two make two.
//! - [`settings`] answers the active model version and the webhooks from the connection's memory
//!   ([`Remembered`], in a module of its own below both this one and the transaction that keeps
//!   it) while the workspace's version has not moved since they were read, and reads
//!   them (two statements) when it has.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use crate::StoreError;
use crate::erasure::{IdentifierKind, normalised};
use crate::leads::LeadRow;
use crate::postgres::events::{Appending, LeadEvents, append_saving_rows_parts};
use crate::postgres::remembered::{Remembered, Settings};
use crate::postgres::scores::{LeadScores, PlannedWrites, planned_parts};
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

/// What [`write_all`] did.
pub(crate) struct Written {
    /// Each lead's newest event after the statement (as `events::append_saving_rows` answers).
    pub(crate) newest_events: Vec<Option<i64>>,
    /// The message ids another transaction stored meanwhile: the caller must undo its
    /// transaction when there is one (the scores were written as if they were new).
    pub(crate) duplicates: Vec<String>,
}

/// Appends `events` and saves the lead `rows` as `events::append_saving_rows` does, and saves
/// `scores` as `scores::save_over_all` does, in one statement. The scores given are brought up
/// to date unless there were duplicates.
pub(crate) fn write_all(
    connection: &mut Tx<'_>,
    events: &[LeadEvents<'_, '_>],
    rows: &[(&LeadRow, Option<i64>)],
    scores: &mut [LeadScores<'_>],
) -> Result<Written, StoreError> {
    /// The two families' parts, then their answers as rows of three columns told apart by the
    /// first: `0, message_id, id` of each event stored, `1, id, lead_id || ' ' || score`
    /// (text, to share the column) of each history entry.
    static STATEMENT: LazyLock<String> = LazyLock::new(|| {
        format!(
            "WITH {}, {}
             SELECT 0 AS part, message_id AS key, id FROM inserted
             UNION ALL
             SELECT 1, lead_id::text || ' ' || score, id FROM history",
            append_saving_rows_parts!(),
            planned_parts(17)
        )
    });
    let appending = Appending::of(events, rows)?;
    let writes = PlannedWrites::of(scores);
    let params: Vec<&(dyn postgres::types::ToSql + Sync)> =
        appending.params().into_iter().chain(writes.params()).collect();
    let mut inserted: HashMap<String, i64> = HashMap::new();
    let mut history_ids: HashMap<(i64, String), i64> = HashMap::new();
    for row in connection.query(&STATEMENT, &params)? {
        let (part, key, id): (i32, String, i64) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        if part == 0 {
            inserted.insert(key, id);
        } else if let Some((lead_id, score)) = key.split_once(' ')
            && let Ok(lead_id) = lead_id.parse::<i64>()
        {
            history_ids.insert((lead_id, score.to_string()), id);
        }
    }
    let (newest_events, duplicates) = appending.outcome(events, &inserted);
    if duplicates.is_empty() {
        writes.finish(scores, &history_ids);
    }
    Ok(Written { newest_events, duplicates })
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

    /// One statement writes what the events' and the scores' statements write one after the
    /// other: the same events, links, rows, scores and history; and a message id another request
    /// stored is answered as a duplicate, the scores given left as they were.
    #[test]
    fn events_rows_and_scores_written_at_once_are_written_as_one_after_the_other() {
        use crate::leads::LeadRow;
        use crate::postgres::events::{LeadEvents, append_saving_rows, of_lead};
        use crate::postgres::leads::tests::create;
        use crate::postgres::scores::{LeadScores, history, save_over_all, stored};
        use crate::scores::{History, HistoryTerms, ScoreRow};

        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut t = client.transaction().unwrap();
        let ws = workspace(&mut t, "w");
        let none = serde_json::Map::new();
        let event = |message_id, at| crate::events::NewEvent {
            message_id,
            event_type: "visit",
            at,
            received_at: at,
            properties: &none,
        };
        let row = |score: &str, value: f64, tier: &str| ScoreRow {
            score: score.to_string(),
            value,
            tier: Some(tier.to_string()),
            model_id: 1,
            evaluated_at: 5,
            overridden: None,
        };
        let terms = [HistoryTerms { score: "fit".to_string(), terms: "[\"visits\"]".to_string() }];
        let rows = [row("fit", 10.0, "cold"), row("intent", 2.5, "warm")];
        // The same request on two leads: separately on `apart`, at once on `together`.
        let mut leads: Vec<LeadRow> = (0..2).map(|_| create(&mut t, ws, None, 0)).collect();
        let mut stored_scores = [StoredScores::default(), StoredScores::default()];
        for lead in &mut leads {
            lead.email = Some("saved@example.com".to_string());
            lead.updated_at = 5;
        }
        let (apart, together) = (&leads[0], &leads[1]);
        let (events_apart, events_together) = ([event("a1", 1), event("a2", 2)], [event("t1", 1), event("t2", 2)]);
        let [stored_apart, stored_together] = &mut stored_scores;

        let appended = [LeadEvents { workspace_id: ws, lead_id: apart.id, newest: None, events: &events_apart }];
        let (newest_apart, duplicates) = append_saving_rows(&mut t, &appended, &[(apart, None)]).unwrap();
        assert!(duplicates.is_empty());
        let mut scores = [LeadScores {
            lead_id: apart.id,
            stored: stored_apart,
            rows: &rows,
            cause: "event",
            history: History::EveryChange,
            terms: &terms,
        }];
        save_over_all(&mut t, &mut scores).unwrap();

        let appended = [LeadEvents { workspace_id: ws, lead_id: together.id, newest: None, events: &events_together }];
        let mut scores = [LeadScores {
            lead_id: together.id,
            stored: stored_together,
            rows: &rows,
            cause: "event",
            history: History::EveryChange,
            terms: &terms,
        }];
        let written = write_all(&mut t, &appended, &[(together, None)], &mut scores).unwrap();
        assert!(written.duplicates.is_empty());

        let reread = |t: &mut Tx<'_>, id: i64| {
            let lead = crate::postgres::leads::by_id(t, ws, id, crate::postgres::leads::Lock::None).unwrap().unwrap();
            let events: Vec<(String, i64)> =
                of_lead(t, &lead).unwrap().into_iter().map(|e| (e.message_id[1..].to_string(), e.at)).collect();
            let scores = stored(t, id).unwrap();
            let history: Vec<(String, f64, Option<String>, Option<String>)> =
                history(t, id, 10).unwrap().into_iter().map(|h| (h.score, h.value, h.tier, h.terms)).collect();
            (lead.email, lead.last_event_id.is_some(), events, scores.rows().cloned().collect::<Vec<_>>(), history)
        };
        assert_eq!(newest_apart[0].is_some(), written.newest_events[0].is_some());
        let together_read = reread(&mut t, together.id);
        assert_eq!(together_read.0.as_deref(), Some("saved@example.com"), "the row saved");
        assert_eq!(together_read.2.len(), 2, "the events stored");
        assert_eq!(reread(&mut t, apart.id), together_read);
        assert_eq!(
            stored_apart.rows().collect::<Vec<_>>(),
            stored_together.rows().collect::<Vec<_>>(),
            "the scores given brought up to date alike"
        );
        assert_eq!(&stored(&mut t, together.id).unwrap(), &*stored_together, "as stored, history ids included");

        // Sent again with another value: the message id is stored, the caller hears it, and
        // what it holds of the scores is not moved.
        let before = stored_together.clone();
        let again = [row("fit", 99.0, "hot")];
        let appended = [LeadEvents {
            workspace_id: ws,
            lead_id: together.id,
            newest: written.newest_events[0],
            events: &events_together[..1],
        }];
        let mut scores = [LeadScores {
            lead_id: together.id,
            stored: stored_together,
            rows: &again,
            cause: "event",
            history: History::EveryChange,
            terms: &[],
        }];
        let repeated = write_all(&mut t, &appended, &[(together, written.newest_events[0])], &mut scores).unwrap();
        assert_eq!(repeated.duplicates, ["t1"]);
        assert_eq!(&*stored_together, &before);
    }

    /// A workspace's settings are read once, then remembered while its version stays; a webhook
    /// made or a version activated elsewhere moves the version, and the next ingestion reads them
    /// again.
    #[test]
    fn settings_are_remembered_until_the_workspace_changes() {
        let Some(database) = TestDatabase::create() else { return };
        let mut ingesting = database.migrated_client();
        let mut elsewhere = database.migrated_client();
        let (ws, first) = {
            let mut c = elsewhere.transaction().unwrap();
            let ws = workspace(&mut c, "w");
            let first = models::add(&mut c, ws, "[scores.s]", &BTreeMap::new(), None, 1).unwrap();
            models::activate(&mut c, ws, first.id, Origin::Api, 1).unwrap();
            c.commit().unwrap();
            (ws, first)
        };
        let read = |connection: &mut crate::postgres::Connection| {
            let mut t = connection.transaction().unwrap();
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

        let mut c = elsewhere.transaction().unwrap();
        let new = NewWebhook { url: "https://crm.example".into(), events: vec![], score: None, threshold: None };
        crate::postgres::webhooks::create(&mut c, ws, &new, 2).unwrap();
        c.commit().unwrap();
        let (after_webhook, _, hooks) = read(&mut ingesting);
        assert!(after_webhook > before);
        assert_eq!(hooks, 2, "read again, with every webhook stored");

        let mut c = elsewhere.transaction().unwrap();
        let second = models::add(&mut c, ws, "[scores.t]", &BTreeMap::new(), None, 3).unwrap();
        models::activate(&mut c, ws, second.id, Origin::Api, 3).unwrap();
        c.commit().unwrap();
        let (after_activation, active, _) = read(&mut ingesting);
        assert!(after_activation > after_webhook);
        assert_eq!(active, Some(second.id));
    }
}
