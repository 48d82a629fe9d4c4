//! The writes of an ingestion request once its leads are scored, in one statement sent with the
//! transaction's commit ([`write_all_and_commit`]): the events, the leads' rows, every history
//! entry and every score row, the parts of `events::append_saving_rows` and of
//! `scores::save_over_all` in one `WITH`. One round trip where the two and the commit make three;
//! a single event of a known lead is then three round trips in all (begin travels with the first
//! statement: docs/ARCHITECTURE.md, "Two stores"). Its reads are `postgres::ingestion`'s.

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::StoreError;
use crate::leads::LeadRow;
use crate::postgres::events::{Appending, LeadEvents, append_saving_rows_parts};
use crate::postgres::scores::{LeadScores, PlannedWrites, planned_parts};
use crate::postgres::tx::{Tx, Unanswered};

/// The SQLSTATE of `leadscore_refuse_stored_message_ids` (migration 8): a message id of the
/// request was stored by another transaction since the request read them.
const STORED_MEANWHILE: &str = "LS409";

/// Appends `events` and saves the lead `rows` as `events::append_saving_rows` does, and saves
/// `scores` as `scores::save_over_all` does, in one statement, then runs `then` and commits the
/// transaction, all in one round trip ([`Tx::query_and_commit`]); answers each lead's newest
/// event after it (as `events::append_saving_rows` does) and brings the scores given up to date.
///
/// A message id another transaction stored since the request read them fails the statement
/// (`leadscore_refuse_stored_message_ids`), so that nothing of the transaction is committed:
/// [`StoreError::RolledBack`], naming it. The request, sent again, finds it stored.
pub(crate) fn write_all_and_commit(
    connection: &mut Tx<'_>,
    events: &[LeadEvents<'_, '_>],
    rows: &[(&LeadRow, Option<i64>)],
    scores: &mut [LeadScores<'_>],
    then: &[Unanswered<'_>],
) -> Result<Vec<Option<i64>>, StoreError> {
    /// The two families' parts, then their answers as rows of three columns told apart by the
    /// first: `0, message_id, id` of each event stored, `1, id, lead_id || ' ' || score`
    /// (text, to share the column) of each history entry, and one row `2, '', 0` once no message
    /// id was refused.
    static STATEMENT: LazyLock<String> = LazyLock::new(|| {
        format!(
            "WITH {}, {}
             SELECT 0 AS part, message_id AS key, id FROM inserted
             UNION ALL
             SELECT 1, lead_id::text || ' ' || score, id FROM history
             UNION ALL
             SELECT leadscore_refuse_stored_message_ids(
                 array(SELECT message_id FROM given EXCEPT SELECT message_id FROM inserted)), '', 0",
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
    let answered = connection.query_and_commit(&STATEMENT, &params, then).map_err(|error| {
        match error.as_db_error().filter(|refused| refused.code().code() == STORED_MEANWHILE) {
            Some(refused) => StoreError::RolledBack(refused.message().to_string()),
            None => StoreError::from(error),
        }
    })?;
    let mut checked = false;
    for row in answered {
        let (part, key, id): (i32, String, i64) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        match part {
            0 => {
                inserted.insert(key, id);
            }
            1 => {
                if let Some((lead_id, score)) = key.split_once(' ')
                    && let Ok(lead_id) = lead_id.parse::<i64>()
                {
                    history_ids.insert((lead_id, score.to_string()), id);
                }
            }
            _ => checked = true,
        }
    }
    let (newest_events, refused) = appending.outcome(events, &inserted);
    debug_assert!(checked && refused.is_empty(), "the statement's check refuses {refused:?}");
    writes.finish(scores, &history_ids);
    Ok(newest_events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::leads::tests::workspace;
    use crate::postgres::testing::TestDatabase;
    use crate::scores::StoredScores;

    /// One statement writes what the events' and the scores' statements write one after the
    /// other: the same events, links, rows, scores and history, committed with the statements
    /// sent after it; and a message id another request stored fails it, nothing of its
    /// transaction committed and the scores given left as they were.
    #[test]
    fn events_rows_and_scores_written_at_once_are_written_as_one_after_the_other() {
        use crate::leads::LeadRow;
        use crate::postgres::events::{LeadEvents, append_saving_rows, of_lead};
        use crate::postgres::leads::tests::create;
        use crate::postgres::scores::{LeadScores, history, save_over_all, stored};
        use crate::scores::{History, HistoryTerms, ScoreRow};

        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut t = client.transaction();
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
        let change = crate::stages::StageChange {
            stage: "mql".to_string(),
            previous: Some("lead".to_string()),
            at: 5,
            actor: "leadscore".to_string(),
            reason: None,
        };
        let then = crate::postgres::stages::set_all_statements(&[(together.id, &change)]);
        let newest_together = write_all_and_commit(&mut t, &appended, &[(together, None)], &mut scores, &then).unwrap();
        drop(t);
        let mut t = client.transaction();

        let reread = |t: &mut Tx<'_>, id: i64| {
            let lead = crate::postgres::leads::by_id(t, ws, id, crate::postgres::leads::Lock::None).unwrap().unwrap();
            let events: Vec<(String, i64)> =
                of_lead(t, &lead).unwrap().into_iter().map(|e| (e.message_id[1..].to_string(), e.at)).collect();
            let scores = stored(t, id).unwrap();
            let history: Vec<(String, f64, Option<String>, Option<String>)> =
                history(t, id, 10).unwrap().into_iter().map(|h| (h.score, h.value, h.tier, h.terms)).collect();
            (lead.email, lead.last_event_id.is_some(), events, scores.rows().cloned().collect::<Vec<_>>(), history)
        };
        assert_eq!(newest_apart[0].is_some(), newest_together[0].is_some());
        let together_read = reread(&mut t, together.id);
        let stage = |t: &mut Tx<'_>, id: i64| -> String {
            t.query_one("SELECT stage FROM leads WHERE id = $1", &[&id]).unwrap().get(0)
        };
        assert_eq!(stage(&mut t, together.id), "mql", "the statements sent after it committed with it");
        assert_eq!(together_read.0.as_deref(), Some("saved@example.com"), "the row saved");
        assert_eq!(together_read.2.len(), 2, "the events stored");
        assert_eq!(reread(&mut t, apart.id), together_read);
        assert_eq!(
            stored_apart.rows().collect::<Vec<_>>(),
            stored_together.rows().collect::<Vec<_>>(),
            "the scores given brought up to date alike"
        );
        assert_eq!(&stored(&mut t, together.id).unwrap(), &*stored_together, "as stored, history ids included");

        // Sent again with another value and another stage: the message id is stored, the caller
        // hears it, nothing of the transaction is committed, and what it holds of the scores is
        // not moved.
        t.commit().unwrap();
        let mut t = client.transaction();
        let before = stored_together.clone();
        let again = [row("fit", 99.0, "hot")];
        let appended = [LeadEvents {
            workspace_id: ws,
            lead_id: together.id,
            newest: newest_together[0],
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
        let change = crate::stages::StageChange { stage: "sql".to_string(), ..change.clone() };
        let then = crate::postgres::stages::set_all_statements(&[(together.id, &change)]);
        let repeated = write_all_and_commit(&mut t, &appended, &[(together, newest_together[0])], &mut scores, &then);
        match repeated {
            Err(StoreError::RolledBack(message)) => assert!(message.contains(r#"message id "t1""#), "{message}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(&*stored_together, &before);
        drop(t);
        let mut t = client.transaction();
        assert_eq!(stage(&mut t, together.id), "mql", "the stage sent after it is not committed");
        assert_eq!(&stored(&mut t, together.id).unwrap(), &before, "nor the scores");
    }
}
