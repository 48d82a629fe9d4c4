//! Events: append-only, one row per accepted message id (see [`crate::message_ids`]).
//!
//! A lead's events are linked newest to oldest (`previous_id`, from the lead's `last_event_id`)
//! rather than indexed by lead: an index keyed by lead takes each insert at a random place, and
//! so costs a page written per event at every commit (see migration 6).

use rusqlite::{Connection, params};

use crate::StoreError;
use crate::leads::LeadRow;

/// An event to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent<'a> {
    pub message_id: &'a str,
    pub event_type: &'a str,
    pub at: i64,
    pub received_at: i64,
    pub properties: &'a serde_json::Map<String, serde_json::Value>,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub id: i64,
    pub message_id: String,
    pub event_type: String,
    pub at: i64,
    pub properties: serde_json::Map<String, serde_json::Value>,
}

/// Whether a message id was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    New,
    /// Already stored: nothing was written.
    Duplicate,
}

/// Whether the workspace already has this message id.
pub fn exists(connection: &Connection, workspace_id: i64, message_id: &str) -> Result<bool, StoreError> {
    crate::message_ids::is_stored(connection, workspace_id, message_id)
}

/// Stores an event of `lead` and makes it the lead's newest (`lead.last_event_id`; the caller
/// saves the lead before its transaction ends).
/// Nothing is written for a message id the workspace already has.
pub fn insert(connection: &Connection, lead: &mut LeadRow, event: &NewEvent<'_>) -> Result<Inserted, StoreError> {
    append(connection, lead.workspace_id, lead.id, &mut lead.last_event_id, event)
}

/// Stores an event of the lead `lead_id` after its newest event `newest`, which becomes the new
/// event (the caller saves it as the lead's `last_event_id` before its transaction ends). For a
/// caller that appends several events to a lead before saving its row once.
/// Nothing is written for a message id the workspace already has.
pub fn append(
    connection: &Connection,
    workspace_id: i64,
    lead_id: i64,
    newest: &mut Option<i64>,
    event: &NewEvent<'_>,
) -> Result<Inserted, StoreError> {
    let properties = serde_json::to_string(event.properties).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    if !crate::message_ids::record(connection, workspace_id, event.message_id)? {
        return Ok(Inserted::Duplicate);
    }
    let inserted = connection
        .prepare_cached(
            "INSERT INTO events (workspace_id, lead_id, message_id, type, at, received_at, properties, previous_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                workspace_id,
                lead_id,
                event.message_id,
                event.event_type,
                event.at,
                event.received_at,
                properties,
                *newest,
            ])
        });
    if let Err(error) = inserted {
        // Not stored, so not a duplicate next time, even if the caller goes on.
        crate::message_ids::forget(workspace_id, event.message_id);
        return Err(error.into());
    }
    *newest = Some(connection.last_insert_rowid());
    Ok(Inserted::New)
}

/// The ids of the events linked back from `newest` (newest first). `UNION` rather than `UNION
/// ALL`: should links ever form a cycle, the walk ends instead of running forever.
pub(crate) const CHAIN: &str = "WITH RECURSIVE chain(id) AS (
        SELECT ?1 WHERE ?1 IS NOT NULL
        UNION
        SELECT e.previous_id FROM events e JOIN chain c ON e.id = c.id WHERE e.previous_id IS NOT NULL
    )";

/// Every event of a lead, oldest first (for rebuilding its state): the events linked back from
/// `lead.last_event_id`, which is current in the given row even before the row is saved.
pub fn of_lead(connection: &Connection, lead: &LeadRow) -> Result<Vec<StoredEvent>, StoreError> {
    let sql = format!(
        "{CHAIN} SELECT e.id, e.message_id, e.type, e.at, e.properties FROM chain c JOIN events e ON e.id = c.id
         ORDER BY e.at, e.id"
    );
    let mut statement = connection.prepare_cached(&sql)?;
    let rows = statement.query_map([lead.last_event_id], |row| {
        let properties: String = row.get(4)?;
        Ok(StoredEvent {
            id: row.get(0)?,
            message_id: row.get(1)?,
            event_type: row.get(2)?,
            at: row.get(3)?,
            properties: serde_json::from_str(&properties).unwrap_or_default(),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every event of each of `leads`, oldest first, in the leads' order, in one query: the walks of
/// all their links at once (for rebuilding the states of a batch of leads). `UNION` keeps each
/// walk finite as in [`CHAIN`].
pub fn of_leads(connection: &Connection, leads: &[&LeadRow]) -> Result<Vec<Vec<StoredEvent>>, StoreError> {
    let mut found: Vec<Vec<StoredEvent>> = leads.iter().map(|_| Vec::new()).collect();
    let starts: Vec<(usize, i64)> =
        leads.iter().enumerate().filter_map(|(i, lead)| lead.last_event_id.map(|id| (i, id))).collect();
    if starts.is_empty() {
        return Ok(found);
    }
    let seeds = serde_json::to_string(&starts).unwrap_or_default();
    let mut statement = connection.prepare_cached(
        "WITH RECURSIVE chain(lead, id) AS (
            SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?1)
            UNION
            SELECT c.lead, e.previous_id FROM events e JOIN chain c ON e.id = c.id WHERE e.previous_id IS NOT NULL
        )
        SELECT c.lead, e.id, e.message_id, e.type, e.at, e.properties FROM chain c JOIN events e ON e.id = c.id
        ORDER BY c.lead, e.at, e.id",
    )?;
    let mut rows = statement.query([seeds])?;
    while let Some(row) = rows.next()? {
        let lead: i64 = row.get(0)?;
        let properties: String = row.get(5)?;
        let event = StoredEvent {
            id: row.get(1)?,
            message_id: row.get(2)?,
            event_type: row.get(3)?,
            at: row.get(4)?,
            properties: serde_json::from_str(&properties).unwrap_or_default(),
        };
        if let Some(events) = usize::try_from(lead).ok().and_then(|lead| found.get_mut(lead)) {
            events.push(event);
        }
    }
    Ok(found)
}

/// A lead's `limit` most recently stored events (newest first, by the order they were stored,
/// which is their links' order) and how many it has in all: what a lead's page lists, without
/// reading every event of a lead that has thousands.
pub fn newest_of_lead(
    connection: &Connection,
    lead: &LeadRow,
    limit: u32,
) -> Result<(Vec<StoredEvent>, u64), StoreError> {
    let sql = "WITH RECURSIVE chain(id, n) AS (
            SELECT ?1, 1 WHERE ?1 IS NOT NULL
            UNION ALL
            SELECT e.previous_id, c.n + 1 FROM events e JOIN chain c ON e.id = c.id
            WHERE e.previous_id IS NOT NULL AND c.n < ?2
        )
        SELECT e.id, e.message_id, e.type, e.at, e.properties FROM chain c JOIN events e ON e.id = c.id
        ORDER BY c.n";
    let mut statement = connection.prepare_cached(sql)?;
    let rows = statement.query_map(params![lead.last_event_id, limit], |row| {
        let properties: String = row.get(4)?;
        Ok(StoredEvent {
            id: row.get(0)?,
            message_id: row.get(1)?,
            event_type: row.get(2)?,
            at: row.get(3)?,
            properties: serde_json::from_str(&properties).unwrap_or_default(),
        })
    })?;
    let newest: Vec<StoredEvent> = rows.collect::<Result<_, _>>()?;
    let count = if (newest.len() as u64) < u64::from(limit) {
        newest.len() as u64
    } else {
        // Counting walks the links without reading the events' properties.
        let sql = format!("{CHAIN} SELECT count(*) FROM chain");
        connection.prepare_cached(&sql)?.query_row([lead.last_event_id], |row| row.get::<_, i64>(0))? as u64
    };
    Ok((newest, count))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, leads, workspaces};

    fn event<'a>(
        message_id: &'a str,
        at: i64,
        properties: &'a serde_json::Map<String, serde_json::Value>,
    ) -> NewEvent<'a> {
        NewEvent { message_id, event_type: "visit", at, received_at: at, properties }
    }

    /// A batch's events, read in one walk, are each lead's own, in the leads' order, oldest
    /// first, with nothing for a lead without events; and the batch's scores are each lead's.
    #[test]
    fn a_batch_reads_each_leads_events_and_scores_as_one_lead_does() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_ingesting(dir.path(), crate::message_ids::DEFAULT_RECENT).unwrap();
        store
            .write_blocking(move |c| {
                let none = serde_json::Map::new();
                let workspace = workspaces::find_or_create(c, "w", crate::now_ms())?;
                let other = workspaces::find_or_create(c, "other", crate::now_ms())?;
                let mut first = leads::create(c, workspace.id, Some("a"), 0)?;
                let theirs = leads::create(c, other.id, Some("t"), 0)?;
                let quiet = leads::create(c, workspace.id, Some("b"), 0)?;
                let mut last = leads::create(c, workspace.id, Some("c"), 0)?;
                insert(c, &mut last, &event("c1", 50, &none))?;
                insert(c, &mut first, &event("a1", 30, &none))?;
                insert(c, &mut first, &event("a2", 10, &none))?;
                insert(c, &mut last, &event("c2", 20, &none))?;
                for lead in [&first, &last] {
                    leads::save(c, lead)?;
                }
                let score = |value| crate::scores::ScoreRow {
                    score: "s".into(),
                    value,
                    tier: None,
                    model_id: 1,
                    evaluated_at: 0,
                    overridden: None,
                };
                for (lead, value) in [(&first, 1.0), (&theirs, 2.0), (&last, 3.0)] {
                    crate::scores::save(c, lead.id, &[score(value)], "event", crate::scores::History::EveryChange)?;
                }
                let rows = leads::rows_after(c, workspace.id, 0, 10)?;
                assert_eq!(rows.iter().map(|l| l.id).collect::<Vec<_>>(), [first.id, quiet.id, last.id]);
                let batch: Vec<&LeadRow> = rows.iter().collect();
                let together = of_leads(c, &batch)?;
                let alone = rows.iter().map(|lead| of_lead(c, lead)).collect::<Result<Vec<_>, _>>()?;
                assert_eq!(together, alone);
                let ids = |events: &[StoredEvent]| events.iter().map(|e| e.message_id.clone()).collect::<Vec<_>>();
                assert_eq!(
                    together.iter().map(|e| ids(e)).collect::<Vec<_>>(),
                    [vec!["a2", "a1"], vec![], vec!["c2", "c1"]]
                );
                let scores = crate::scores::stored_of(c, &[first.id, quiet.id, last.id])?;
                let alone = [first.id, quiet.id, last.id]
                    .iter()
                    .map(|id| crate::scores::stored(c, *id))
                    .collect::<Result<Vec<_>, _>>()?;
                assert_eq!(scores, alone, "another workspace's lead in the range is left out");
                Ok(())
            })
            .unwrap();
    }

    /// Each lead finds its own events through its links, a duplicate changes neither the events
    /// nor the links, and a merge hands the merged lead's events to the other.
    #[test]
    fn a_lead_finds_its_events_before_and_after_a_merge() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_ingesting(dir.path(), crate::message_ids::DEFAULT_RECENT).unwrap();
        let ids = |events: Vec<StoredEvent>| events.into_iter().map(|e| e.message_id).collect::<Vec<_>>();
        let (known, anonymous, again, merged, gone) = store
            .write_blocking(move |c| {
                let none = serde_json::Map::new();
                let workspace = workspaces::find_or_create(c, "w", crate::now_ms())?;
                let mut known = leads::create(c, workspace.id, Some("u"), 0)?;
                let mut anonymous = leads::create(c, workspace.id, None, 0)?;
                insert(c, &mut known, &event("k1", 10, &none))?;
                insert(c, &mut anonymous, &event("a1", 5, &none))?;
                insert(c, &mut known, &event("k2", 30, &none))?;
                insert(c, &mut anonymous, &event("a2", 20, &none))?;
                let head = known.last_event_id;
                assert_eq!(insert(c, &mut known, &event("a1", 40, &none))?, Inserted::Duplicate);
                assert_eq!(known.last_event_id, head);
                leads::save(c, &known)?;
                leads::save(c, &anonymous)?;
                let known_events = of_lead(c, &known)?;
                let anonymous_events = of_lead(c, &anonymous)?;
                let again = of_lead(c, &leads::by_id(c, workspace.id, known.id)?.unwrap())?;
                crate::merge::merge_leads(c, &anonymous, &mut known)?;
                leads::save(c, &known)?;
                let merged = of_lead(c, &leads::by_id(c, workspace.id, known.id)?.unwrap())?;
                let owners: Vec<i64> = c
                    .prepare("SELECT DISTINCT lead_id FROM events")?
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                assert_eq!(owners, [known.id]);
                let gone = leads::by_id(c, workspace.id, anonymous.id)?;
                Ok((known_events, anonymous_events, again, merged, gone))
            })
            .unwrap();
        assert_eq!(ids(known), ["k1", "k2"]);
        assert_eq!(ids(anonymous), ["a1", "a2"]);
        assert_eq!(ids(again), ["k1", "k2"]);
        assert_eq!(ids(merged), ["a1", "k1", "a2", "k2"]);
        assert!(gone.is_none());
    }
}
