//! PostgreSQL queries of the events family (see [`crate::events`] for SQLite's): append-only,
//! one row per accepted message id.
//!
//! A lead's events are linked newest to oldest (`previous_id`, from the lead's `last_event_id`),
//! exactly as SQLite links them: the walks below, merges and the other families follow the links.
//!
//! # How it differs from SQLite
//! - **Message ids.** Idempotency comes from the unique index `events (workspace_id, message_id)`:
//!   an event whose message id is stored already is not inserted (`ON CONFLICT DO NOTHING`; an
//!   insert of a message id another transaction is storing waits for it, and inserts only if that
//!   one is undone), and an ingestion reads the index (`postgres::ingestion`). SQLite keeps the message ids in a table of their own
//!   and in memory, for its single writer; here another instance may store a message id at any
//!   time, and only the index knows.
//! - **Several events at once.** An ingestion's events are inserted in one statement
//!   ([`append_saving_rows`], which is SQLite's `append` for every event of a request), their ids
//!   taken from the table's sequence first so that each links to the one before it; the same
//!   statement saves the leads' rows.

use std::collections::HashMap;
#[cfg(test)]
use std::collections::HashSet;

use crate::StoreError;
use crate::events::*;
use crate::leads::LeadRow;
use crate::postgres::tx::Tx;

/// The ids of the events linked back from `$1` (newest first). `UNION` rather than `UNION ALL`:
/// should links ever form a cycle, the walk ends instead of running forever.
pub(crate) const CHAIN: &str = "WITH RECURSIVE chain(id) AS (
        SELECT $1::bigint WHERE $1::bigint IS NOT NULL
        UNION
        SELECT e.previous_id FROM events e JOIN chain c ON e.id = c.id WHERE e.previous_id IS NOT NULL
    )";

fn from_row(row: &postgres::Row, first: usize) -> Result<StoredEvent, StoreError> {
    let properties: String = row.try_get(first + 4)?;
    Ok(StoredEvent {
        id: row.try_get(first)?,
        message_id: row.try_get(first + 1)?,
        event_type: row.try_get(first + 2)?,
        at: row.try_get(first + 3)?,
        properties: serde_json::from_str(&properties).unwrap_or_default(),
    })
}

/// Every event of each of `leads`, oldest first, in the leads' order, in one query: the walks of
/// all their links at once (for rebuilding the states of a batch of leads). `UNION` keeps each
/// walk finite as in [`CHAIN`].
pub(crate) fn of_leads(connection: &mut Tx<'_>, leads: &[&LeadRow]) -> Result<Vec<Vec<StoredEvent>>, StoreError> {
    let mut found: Vec<Vec<StoredEvent>> = leads.iter().map(|_| Vec::new()).collect();
    let (positions, starts): (Vec<i64>, Vec<i64>) =
        leads.iter().enumerate().filter_map(|(i, lead)| lead.last_event_id.map(|id| (i as i64, id))).unzip();
    if starts.is_empty() {
        return Ok(found);
    }
    let rows = connection.query(
        "WITH RECURSIVE chain(lead, id) AS (
            SELECT s.lead, s.id FROM unnest($1::bigint[], $2::bigint[]) AS s(lead, id)
            UNION
            SELECT c.lead, e.previous_id FROM events e JOIN chain c ON e.id = c.id WHERE e.previous_id IS NOT NULL
        )
        SELECT c.lead, e.id, e.message_id, e.type, e.at, e.properties FROM chain c JOIN events e ON e.id = c.id
        ORDER BY c.lead, e.at, e.id",
        &[&positions, &starts],
    )?;
    for row in &rows {
        let lead: i64 = row.try_get(0)?;
        let event = from_row(row, 1)?;
        if let Some(events) = usize::try_from(lead).ok().and_then(|lead| found.get_mut(lead)) {
            events.push(event);
        }
    }
    Ok(found)
}

/// Those of `message_ids` the workspace has stored; as an ingestion reads them (with its other
/// reads, [`crate::postgres::ingestion::after_locks`]).
#[cfg(test)]
pub(crate) fn stored_message_ids(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    message_ids: &[&str],
) -> Result<HashSet<String>, StoreError> {
    Ok(crate::postgres::ingestion::after_locks(connection, workspace_id, &[], message_ids, &[])?.stored_message_ids)
}

/// Every event of a lead, oldest first (for rebuilding its state): the events linked back from
/// `lead.last_event_id`, which is current in the given row even before the row is saved.
pub(crate) fn of_lead(connection: &mut Tx<'_>, lead: &LeadRow) -> Result<Vec<StoredEvent>, StoreError> {
    let sql = format!(
        "{CHAIN} SELECT e.id, e.message_id, e.type, e.at, e.properties FROM chain c JOIN events e ON e.id = c.id
         ORDER BY e.at, e.id"
    );
    let rows = connection.query(&sql, &[&lead.last_event_id])?;
    rows.iter().map(|row| from_row(row, 0)).collect()
}

/// A lead's `limit` most recently stored events (newest first, by the order they were stored,
/// which is their links' order) and how many it has in all: what a lead's page lists, without
/// reading every event of a lead that has thousands.
pub(crate) fn newest_of_lead(
    connection: &mut Tx<'_>,
    lead: &LeadRow,
    limit: u32,
) -> Result<(Vec<StoredEvent>, u64), StoreError> {
    let rows = connection.query(
        "WITH RECURSIVE chain(id, n) AS (
            SELECT $1::bigint, 1::bigint WHERE $1::bigint IS NOT NULL
            UNION ALL
            SELECT e.previous_id, c.n + 1 FROM events e JOIN chain c ON e.id = c.id
            WHERE e.previous_id IS NOT NULL AND c.n < $2
        )
        SELECT e.id, e.message_id, e.type, e.at, e.properties FROM chain c JOIN events e ON e.id = c.id
        ORDER BY c.n",
        &[&lead.last_event_id, &i64::from(limit)],
    )?;
    let newest: Vec<StoredEvent> = rows.iter().map(|row| from_row(row, 0)).collect::<Result<_, _>>()?;
    let count = if (newest.len() as u64) < u64::from(limit) {
        newest.len() as u64
    } else {
        // Counting walks the links without reading the events' properties.
        let sql = format!("{CHAIN} SELECT count(*) FROM chain");
        let count: i64 = connection.query_one(&sql, &[&lead.last_event_id])?.try_get(0)?;
        u64::try_from(count).unwrap_or_default()
    };
    Ok((newest, count))
}

/// The text an event's properties are stored as.
fn properties_text(event: &NewEvent<'_>) -> Result<String, StoreError> {
    serde_json::to_string(event.properties).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Events of one lead to append after its newest event, as [`append_all`] takes them.
pub(crate) struct LeadEvents<'e, 'a> {
    pub(crate) workspace_id: i64,
    pub(crate) lead_id: i64,
    pub(crate) newest: Option<i64>,
    pub(crate) events: &'e [NewEvent<'a>],
}

/// Appends the events of several leads in one statement, each lead's linked one after the
/// other from its `newest`, and answers each lead's newest event after them. The message ids
/// another transaction stored meanwhile are not stored again, and are answered instead (their
/// events are left out, and the links would skip them: the caller, which read them as new, must
/// give up its transaction).
#[cfg(test)]
pub(crate) fn append_all(
    connection: &mut Tx<'_>,
    leads: &[LeadEvents<'_, '_>],
) -> Result<(Vec<Option<i64>>, Vec<String>), StoreError> {
    append_saving_rows(connection, leads, &[])
}

/// The parts of a statement's `WITH` that append events and save lead rows (see
/// [`append_saving_rows`]), from the parameters `$1` to `$16` ([`Appending::params`]); the part
/// `inserted` has the `message_id` and `id` of each event stored. Another family's parts may
/// follow them in the same statement (`postgres::ingested::write_all`).
///
/// The ids are drawn in the order given (the rows are numbered, sorted, then given their ids one
/// by one), each event linked to its lead's event before it in the request, the first to the
/// lead's newest stored; then the rows, each with the highest id appended to its lead (its last
/// event in the request: all were stored, or the caller undoes the request for its duplicates).
/// Data-modifying parts of a statement all run, whether read or not.
macro_rules! append_saving_rows_parts {
    () => {
        "given AS (
             SELECT g.* FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[],
                                    $6::bigint[], $7::text[], $8::bigint[]) WITH ORDINALITY
                 AS g (workspace_id, lead_id, message_id, type, at, received_at, properties, newest, n)
             ORDER BY g.n
         ),
         numbered AS (SELECT nextval(pg_get_serial_sequence('events', 'id')) AS id, given.* FROM given),
         chained AS (
             SELECT numbered.*, coalesce(lag(id) OVER (PARTITION BY lead_id ORDER BY n), newest) AS previous_id
             FROM numbered
         ),
         inserted AS (
             INSERT INTO events (id, workspace_id, lead_id, message_id, type, at, received_at, properties, previous_id)
             SELECT id, workspace_id, lead_id, message_id, type, at, received_at, properties, previous_id
             FROM chained ORDER BY n
             ON CONFLICT (workspace_id, message_id) DO NOTHING RETURNING message_id, id, lead_id
         ),
         saved AS (
             UPDATE leads SET email = r.email, attributes = r.attributes, updated_at = r.updated_at,
                 last_event_at = r.last_event_at, state = r.state, state_model_id = r.state_model_id,
                 last_event_id = coalesce(newest.id, r.last_event_id)
             FROM unnest($9::bigint[], $10::text[], $11::text[], $12::bigint[], $13::bigint[], $14::text[],
                         $15::bigint[], $16::bigint[])
                 AS r (id, email, attributes, updated_at, last_event_at, state, state_model_id, last_event_id)
             LEFT JOIN (SELECT lead_id, max(id) AS id FROM inserted GROUP BY lead_id) newest
                 ON newest.lead_id = r.id
             WHERE leads.id = r.id
             RETURNING leads.id
         )"
    };
}
pub(crate) use append_saving_rows_parts;

/// [`append_all`], and in the same statement (one round trip fewer for every ingestion) saves
/// lead rows as `leads::save_all_with_newest_event` does, each with its newest event: the newest
/// appended to it here, or the one given.
pub(crate) fn append_saving_rows(
    connection: &mut Tx<'_>,
    leads: &[LeadEvents<'_, '_>],
    rows: &[(&LeadRow, Option<i64>)],
) -> Result<(Vec<Option<i64>>, Vec<String>), StoreError> {
    let total: usize = leads.iter().map(|lead| lead.events.len()).sum();
    if total == 0 && rows.is_empty() {
        return Ok((leads.iter().map(|lead| lead.newest).collect(), Vec::new()));
    }
    let appending = Appending::of(leads, rows)?;
    let inserted = connection
        .query(
            concat!("WITH ", append_saving_rows_parts!(), " SELECT message_id, id FROM inserted"),
            &appending.params(),
        )?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_, StoreError>>()?;
    Ok(appending.outcome(leads, &inserted))
}

/// The parameters of [`append_saving_rows_parts`]: events of several leads and lead rows, as
/// columns.
pub(crate) struct Appending<'a> {
    workspace_ids: Vec<i64>,
    lead_ids: Vec<i64>,
    message_ids: Vec<&'a str>,
    types: Vec<&'a str>,
    ats: Vec<i64>,
    received_ats: Vec<i64>,
    properties: Vec<String>,
    newest_before: Vec<Option<i64>>,
    rows: RowColumns<'a>,
}

impl<'a> Appending<'a> {
    pub(crate) fn of(
        leads: &[LeadEvents<'_, 'a>],
        rows: &[(&'a LeadRow, Option<i64>)],
    ) -> Result<Appending<'a>, StoreError> {
        let mut appending = Appending {
            workspace_ids: vec![],
            lead_ids: vec![],
            message_ids: vec![],
            types: vec![],
            ats: vec![],
            received_ats: vec![],
            properties: vec![],
            newest_before: vec![],
            rows: RowColumns::of(rows)?,
        };
        for lead in leads {
            for event in lead.events {
                appending.workspace_ids.push(lead.workspace_id);
                appending.lead_ids.push(lead.lead_id);
                appending.message_ids.push(event.message_id);
                appending.types.push(event.event_type);
                appending.ats.push(event.at);
                appending.received_ats.push(event.received_at);
                appending.properties.push(properties_text(event)?);
                appending.newest_before.push(lead.newest);
            }
        }
        Ok(appending)
    }

    /// `$1` to `$16` of [`append_saving_rows_parts`].
    pub(crate) fn params(&self) -> [&(dyn postgres::types::ToSql + Sync); 16] {
        [
            &self.workspace_ids,
            &self.lead_ids,
            &self.message_ids,
            &self.types,
            &self.ats,
            &self.received_ats,
            &self.properties,
            &self.newest_before,
            &self.rows.ids,
            &self.rows.emails,
            &self.rows.attributes,
            &self.rows.updated_at,
            &self.rows.last_event_at,
            &self.rows.states,
            &self.rows.state_model_ids,
            &self.rows.last_event_ids,
        ]
    }

    /// Each lead's newest event after the statement, and the message ids it did not store
    /// (another transaction did), from `inserted`, the message id and id of each event stored.
    pub(crate) fn outcome(
        &self,
        leads: &[LeadEvents<'_, '_>],
        inserted: &HashMap<String, i64>,
    ) -> (Vec<Option<i64>>, Vec<String>) {
        let duplicates: Vec<String> =
            self.message_ids.iter().filter(|id| !inserted.contains_key(**id)).map(|id| id.to_string()).collect();
        // Each lead's newest: its last event of the request (all were stored, or the caller
        // undoes the request for its duplicates).
        let newest_events = leads
            .iter()
            .map(|lead| match lead.events.last() {
                Some(last) => inserted.get(last.message_id).copied().or(lead.newest),
                None => lead.newest,
            })
            .collect();
        (newest_events, duplicates)
    }
}

/// Lead rows as the columns of an `unnest` (see [`append_saving_rows`]), each with its newest
/// event.
struct RowColumns<'a> {
    ids: Vec<i64>,
    emails: Vec<Option<&'a str>>,
    attributes: Vec<String>,
    updated_at: Vec<i64>,
    last_event_at: Vec<Option<i64>>,
    states: Vec<Option<&'a str>>,
    state_model_ids: Vec<Option<i64>>,
    last_event_ids: Vec<Option<i64>>,
}

impl<'a> RowColumns<'a> {
    fn of(leads: &[(&'a LeadRow, Option<i64>)]) -> Result<RowColumns<'a>, StoreError> {
        Ok(RowColumns {
            ids: leads.iter().map(|(lead, _)| lead.id).collect(),
            emails: leads.iter().map(|(lead, _)| lead.email.as_deref()).collect(),
            attributes: leads
                .iter()
                .map(|(lead, _)| {
                    serde_json::to_string(&lead.attributes).map_err(|e| StoreError::Corrupt(e.to_string()))
                })
                .collect::<Result<_, _>>()?,
            updated_at: leads.iter().map(|(lead, _)| lead.updated_at).collect(),
            last_event_at: leads.iter().map(|(lead, _)| lead.last_event_at).collect(),
            states: leads.iter().map(|(lead, _)| lead.state.as_deref()).collect(),
            state_model_ids: leads.iter().map(|(lead, _)| lead.state_model_id).collect(),
            last_event_ids: leads.iter().map(|(_, newest)| *newest).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::leads::tests::{create, save, workspace};
    use crate::postgres::testing::TestDatabase;

    fn event<'a>(
        message_id: &'a str,
        at: i64,
        properties: &'a serde_json::Map<String, serde_json::Value>,
    ) -> NewEvent<'a> {
        NewEvent { message_id, event_type: "visit", at, received_at: at, properties }
    }

    /// Appends one event to `lead` (SQLite's `events::insert`): whether it was new.
    fn insert(t: &mut Tx<'_>, lead: &mut LeadRow, event: NewEvent<'_>) -> Inserted {
        let events = [event];
        let appended = [LeadEvents {
            workspace_id: lead.workspace_id,
            lead_id: lead.id,
            newest: lead.last_event_id,
            events: &events,
        }];
        let (newest, duplicates) = append_all(t, &appended).unwrap();
        if !duplicates.is_empty() {
            return Inserted::Duplicate;
        }
        lead.last_event_id = newest[0];
        Inserted::New
    }

    fn ids(events: &[StoredEvent]) -> Vec<String> {
        events.iter().map(|e| e.message_id.clone()).collect()
    }

    /// A batch's events, read in one walk, are each lead's own, in the leads' order, oldest
    /// first, with nothing for a lead without events; and the batch's scores are each lead's.
    #[test]
    fn a_batch_reads_each_leads_events_and_scores_as_one_lead_does() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut t = client.transaction();
        let none = serde_json::Map::new();
        let (w, other) = (workspace(&mut t, "w"), workspace(&mut t, "other"));
        let mut first = create(&mut t, w, Some("a"), 0);
        let theirs = create(&mut t, other, Some("t"), 0);
        let quiet = create(&mut t, w, Some("b"), 0);
        let mut last = create(&mut t, w, Some("c"), 0);
        insert(&mut t, &mut last, event("c1", 50, &none));
        insert(&mut t, &mut first, event("a1", 30, &none));
        insert(&mut t, &mut first, event("a2", 10, &none));
        insert(&mut t, &mut last, event("c2", 20, &none));
        save(&mut t, &first);
        save(&mut t, &last);
        let score = |value| crate::scores::ScoreRow {
            score: "s".into(),
            value,
            tier: None,
            model_id: 1,
            evaluated_at: 0,
            overridden: None,
        };
        for (lead, value) in [(&first, 1.0), (&theirs, 2.0), (&last, 3.0)] {
            let mut stored = crate::scores::StoredScores::default();
            let history = crate::scores::History::EveryChange;
            crate::postgres::scores::save_over(&mut t, lead.id, &mut stored, &[score(value)], "event", history, &[])
                .unwrap();
        }
        let rows = crate::postgres::leads::rows_after(&mut t, w, 0, 10, crate::postgres::leads::Lock::None).unwrap();
        assert_eq!(rows.iter().map(|l| l.id).collect::<Vec<_>>(), [first.id, quiet.id, last.id]);
        let batch: Vec<&LeadRow> = rows.iter().collect();
        let together = of_leads(&mut t, &batch).unwrap();
        let alone: Vec<Vec<StoredEvent>> = rows.iter().map(|lead| of_lead(&mut t, lead).unwrap()).collect();
        assert_eq!(together, alone);
        assert_eq!(together.iter().map(|e| ids(e)).collect::<Vec<_>>(), [vec!["a2", "a1"], vec![], vec!["c2", "c1"]]);
        let scores = crate::postgres::scores::stored_of(&mut t, &[first.id, quiet.id, last.id]).unwrap();
        let alone: Vec<_> = [first.id, quiet.id, last.id]
            .iter()
            .map(|id| crate::postgres::scores::stored(&mut t, *id).unwrap())
            .collect();
        assert_eq!(scores, alone, "another workspace's lead in the range is left out");
        assert!(scores[1].is_empty() && scores[2].row("s").is_some_and(|s| s.value == 3.0));
    }

    /// Each lead finds its own events through its links, a duplicate changes neither the events
    /// nor the links, and a merge hands the merged lead's events to the other.
    #[test]
    fn a_lead_finds_its_events_before_and_after_a_merge() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut t = client.transaction();
        let none = serde_json::Map::new();
        let w = workspace(&mut t, "w");
        let mut known = create(&mut t, w, Some("u"), 0);
        let mut anonymous = create(&mut t, w, None, 0);
        insert(&mut t, &mut known, event("k1", 10, &none));
        insert(&mut t, &mut anonymous, event("a1", 5, &none));
        insert(&mut t, &mut known, event("k2", 30, &none));
        insert(&mut t, &mut anonymous, event("a2", 20, &none));
        let head = known.last_event_id;
        assert_eq!(insert(&mut t, &mut known, event("a1", 40, &none)), Inserted::Duplicate);
        assert_eq!(known.last_event_id, head);
        assert_eq!(
            stored_message_ids(&mut t, w, &["a1", "k2", "x"]).unwrap(),
            ["a1".to_string(), "k2".to_string()].into()
        );
        save(&mut t, &known);
        save(&mut t, &anonymous);
        anonymous.attributes.insert("plan".into(), "pro".into());
        anonymous.email = Some("ana@example.com".into());
        link_visitor(&mut t, w, anonymous.id);
        assert_eq!(ids(&of_lead(&mut t, &known).unwrap()), ["k1", "k2"]);
        assert_eq!(ids(&of_lead(&mut t, &anonymous).unwrap()), ["a1", "a2"]);
        let (newest, count) = newest_of_lead(&mut t, &known, 1).unwrap();
        assert_eq!((ids(&newest), count), (vec!["k2".to_string()], 2));
        crate::postgres::merge::merge_leads(&mut t, &anonymous, &mut known).unwrap();
        save(&mut t, &known);
        let merged =
            crate::postgres::leads::by_id(&mut t, w, known.id, crate::postgres::leads::Lock::None).unwrap().unwrap();
        assert_eq!(ids(&of_lead(&mut t, &merged).unwrap()), ["a1", "k1", "a2", "k2"]);
        let (newest, count) = newest_of_lead(&mut t, &merged, 3).unwrap();
        assert_eq!((ids(&newest), count), (vec!["a2".to_string(), "a1".into(), "k2".into()], 4), "by their links");
        assert_eq!(
            (merged.email.as_deref(), merged.attributes.get("plan")),
            (Some("ana@example.com"), Some(&"pro".into()))
        );
        let owners: Vec<i64> =
            t.query("SELECT DISTINCT lead_id FROM events", &[]).unwrap().iter().map(|r| r.get(0)).collect();
        assert_eq!(owners, [known.id]);
        assert_eq!(
            crate::postgres::leads::by_id(&mut t, w, anonymous.id, crate::postgres::leads::Lock::None).unwrap(),
            None
        );
        let links = crate::postgres::leads::links(&mut t, w, known.id).unwrap();
        assert_eq!((links.anonymous_ids, links.merged_leads), (vec!["visitor".to_string()], vec![anonymous.id]));
    }

    fn link_visitor(t: &mut Tx<'_>, workspace_id: i64, lead_id: i64) {
        crate::postgres::leads::link_anonymous_ids(t, workspace_id, &[("visitor".to_string(), lead_id)]).unwrap();
    }

    /// Links that form a cycle have no first event: the merge refuses them rather than link the
    /// other lead's events into the cycle.
    #[test]
    fn a_merge_refuses_events_that_link_back_to_no_first_one() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut t = client.transaction();
        let none = serde_json::Map::new();
        let w = workspace(&mut t, "w");
        let mut into = create(&mut t, w, Some("u"), 0);
        let mut from = create(&mut t, w, None, 0);
        insert(&mut t, &mut from, event("f1", 1, &none));
        insert(&mut t, &mut from, event("f2", 2, &none));
        t.execute("UPDATE events SET previous_id = $1 WHERE message_id = 'f1'", &[&from.last_event_id]).unwrap();
        let merged = crate::postgres::merge::merge_leads(&mut t, &from, &mut into);
        assert!(matches!(merged, Err(StoreError::Corrupt(_))), "{merged:?}");
        assert_eq!(of_lead(&mut t, &from).unwrap().len(), 2, "the walk of a cycle ends");
    }

    /// Several leads' events are stored in one statement, each linked to its lead's previous one;
    /// a message id already stored is left out and named.
    #[test]
    fn events_of_several_leads_are_appended_at_once_and_linked() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut t = client.transaction();
        let none = serde_json::Map::new();
        let w = workspace(&mut t, "w");
        let mut a = create(&mut t, w, Some("a"), 0);
        let b = create(&mut t, w, Some("b"), 0);
        insert(&mut t, &mut a, event("a0", 0, &none));
        let (for_a, for_b) =
            ([event("a1", 1, &none), event("a2", 2, &none)], [event("b1", 1, &none), event("a0", 3, &none)]);
        let appended = [
            LeadEvents { workspace_id: w, lead_id: a.id, newest: a.last_event_id, events: &for_a },
            LeadEvents { workspace_id: w, lead_id: b.id, newest: None, events: &for_b },
            LeadEvents { workspace_id: w, lead_id: b.id, newest: None, events: &[] },
        ];
        let (newest, duplicates) = append_all(&mut t, &appended).unwrap();
        assert_eq!(duplicates, ["a0"]);
        assert_eq!(newest[2], None, "no events, no newest");
        let a = LeadRow { last_event_id: newest[0], ..a };
        assert_eq!(ids(&of_lead(&mut t, &a).unwrap()), ["a0", "a1", "a2"]);
        let b1: i64 = t.query_one("SELECT id FROM events WHERE message_id = 'b1'", &[]).unwrap().get(0);
        let by_id: Vec<String> = t
            .query("SELECT message_id FROM events WHERE message_id <> 'a0' ORDER BY id", &[])
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert_eq!(by_id, ["a1", "a2", "b1"], "ids drawn in the order given");
        let b = LeadRow { last_event_id: Some(b1), ..b };
        assert_eq!(ids(&of_lead(&mut t, &b).unwrap()), ["b1"]);
        assert_eq!(newest[1], None, "its last event was not stored: the caller gives its request up");
        assert_eq!(append_all(&mut t, &[]).unwrap(), (vec![], vec![]));
    }
}
