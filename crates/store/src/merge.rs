//! Merging two leads that turned out to be one person (an anonymous visitor who identifies, an
//! `alias`): everything of one moves to the other, which keeps its own values and takes the
//! other's where it has none. The one place that does it, above both leads and events.

use rusqlite::{Connection, params};
use serde_json::{Map, Value};

use crate::StoreError;
use crate::events;
use crate::leads::LeadRow;

/// Moves everything of lead `from` (events, anonymous ids) to lead `into`; `from` remains as a
/// pointer so that old references still resolve. `from`'s events are linked in ahead of
/// `into`'s, whose `last_event_id` changes; `into` takes the attributes, e-mail and times it
/// lacks from `from` (the caller saves `into`).
pub fn merge_leads(connection: &Connection, from: &LeadRow, into: &mut LeadRow) -> Result<(), StoreError> {
    if let Some(newest) = from.last_event_id {
        let chain = events::CHAIN;
        let oldest: i64 = connection.query_row(
            &format!("{chain} SELECT e.id FROM chain c JOIN events e ON e.id = c.id WHERE e.previous_id IS NULL"),
            [newest],
            |row| row.get(0),
        )?;
        connection
            .execute(&format!("{chain} UPDATE events SET lead_id = ?2 WHERE id IN chain"), params![newest, into.id])?;
        connection.execute("UPDATE events SET previous_id = ?1 WHERE id = ?2", params![into.last_event_id, oldest])?;
        into.last_event_id = Some(newest);
    }
    connection.execute("UPDATE anonymous_ids SET lead_id = ?1 WHERE lead_id = ?2", params![into.id, from.id])?;
    connection.execute("DELETE FROM lead_scores WHERE lead_id = ?1", [from.id])?;
    connection.execute(
        "UPDATE leads SET merged_into = ?1, user_id = NULL, last_event_id = NULL WHERE id = ?2",
        params![into.id, from.id],
    )?;
    merge_attributes(&mut into.attributes, &from.attributes, false);
    into.email = into.email.take().or_else(|| from.email.clone());
    into.created_at = into.created_at.min(from.created_at);
    into.last_event_at = into.last_event_at.max(from.last_event_at);
    Ok(())
}

/// Copies `from` into `into`; with `overwrite` false, keys `into` has are kept.
pub fn merge_attributes(into: &mut Map<String, Value>, from: &Map<String, Value>, overwrite: bool) {
    for (key, value) in from {
        if overwrite || !into.contains_key(key) {
            into.insert(key.clone(), value.clone());
        }
    }
}
