//! The writes of an ingestion request once its leads are scored, in one statement
//! ([`write_all`]): the events, the leads' rows, every history entry and every score row, the
//! parts of `events::append_saving_rows` and of `scores::save_over_all` in one `WITH`. One round
//! trip where the two make two; a single event is then four round trips, commit included (begin
//! travels with the first statement: docs/ARCHITECTURE.md, "Two stores"). Its reads are `postgres::ingestion`'s.

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::StoreError;
use crate::leads::LeadRow;
use crate::postgres::events::{Appending, LeadEvents, append_saving_rows_parts};
use crate::postgres::scores::{LeadScores, PlannedWrites, planned_parts};
use crate::postgres::tx::Tx;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::leads::tests::workspace;
    use crate::postgres::testing::TestDatabase;
    use crate::scores::StoredScores;

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
}
