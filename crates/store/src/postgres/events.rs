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
//!   one is undone), and [`stored_message_ids`] reads the index. SQLite keeps the message ids in a table of their own
//!   and in memory, for its single writer; here another instance may store a message id at any
//!   time, and only the index knows.
//! - **Several events at once.** An ingestion's events are inserted in one statement
//!   ([`append_all`], which is SQLite's `append` for every event of a request), their ids taken
//!   from the table's sequence first so that each links to the one before it.

use std::collections::HashSet;

use crate::StoreError;
use crate::events::*;
use crate::leads::LeadRow;
use crate::postgres::Tx;

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

/// Those of `message_ids` the workspace already has, in one query.
pub(crate) fn stored_message_ids(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    message_ids: &[&str],
) -> Result<HashSet<String>, StoreError> {
    if message_ids.is_empty() {
        return Ok(HashSet::new());
    }
    let rows = connection.query(
        "SELECT message_id FROM events WHERE workspace_id = $1 AND message_id = ANY($2)",
        &[&workspace_id, &message_ids],
    )?;
    Ok(rows.iter().map(|row| row.try_get(0)).collect::<Result<_, _>>()?)
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

/// Appends the events of several leads in two statements, each lead's linked one after the
/// other from its `newest`, and answers each lead's newest event after them. The message ids
/// another transaction stored meanwhile are not stored again, and are answered instead (their
/// events are left out, and the links would skip them: the caller, which read them as new, must
/// give up its transaction).
pub(crate) fn append_all(
    connection: &mut Tx<'_>,
    leads: &[LeadEvents<'_, '_>],
) -> Result<(Vec<Option<i64>>, Vec<String>), StoreError> {
    let total: usize = leads.iter().map(|lead| lead.events.len()).sum();
    if total == 0 {
        return Ok((leads.iter().map(|lead| lead.newest).collect(), Vec::new()));
    }
    let ids: Vec<i64> = connection
        .query(
            "SELECT nextval(pg_get_serial_sequence('events', 'id')) FROM generate_series(1, $1::bigint)",
            &[&(total as i64)],
        )?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
    let (mut workspace_ids, mut lead_ids, mut message_ids, mut types) = (vec![], vec![], vec![], vec![]);
    let (mut ats, mut received_ats, mut properties, mut previous_ids) = (vec![], vec![], vec![], vec![]);
    let mut next_ids = ids.iter().copied();
    let mut newest_events = Vec::with_capacity(leads.len());
    for lead in leads {
        let mut newest = lead.newest;
        for event in lead.events {
            let id = next_ids.next().ok_or_else(|| StoreError::Corrupt("fewer event ids than events".into()))?;
            workspace_ids.push(lead.workspace_id);
            lead_ids.push(lead.lead_id);
            message_ids.push(event.message_id);
            types.push(event.event_type);
            ats.push(event.at);
            received_ats.push(event.received_at);
            properties.push(properties_text(event)?);
            previous_ids.push(newest);
            newest = Some(id);
        }
        newest_events.push(newest);
    }
    let inserted: HashSet<i64> = connection
        .query(
            "INSERT INTO events (id, workspace_id, lead_id, message_id, type, at, received_at, properties, previous_id)
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::bigint[],
                                  $7::bigint[], $8::text[], $9::bigint[])
             ON CONFLICT (workspace_id, message_id) DO NOTHING RETURNING id",
            &[&ids, &workspace_ids, &lead_ids, &message_ids, &types, &ats, &received_ats, &properties, &previous_ids],
        )?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
    let duplicates = ids
        .iter()
        .zip(&message_ids)
        .filter(|(id, _)| !inserted.contains(id))
        .map(|(_, message_id)| message_id.to_string())
        .collect();
    Ok((newest_events, duplicates))
}
