//! Events: append-only, one row per accepted message id.

use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;

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
    Ok(connection
        .prepare_cached("SELECT 1 FROM events WHERE workspace_id = ?1 AND message_id = ?2")?
        .query_row(params![workspace_id, message_id], |_| Ok(()))
        .optional()?
        .is_some())
}

pub fn insert(
    connection: &Connection,
    workspace_id: i64,
    lead_id: i64,
    event: &NewEvent<'_>,
) -> Result<Inserted, StoreError> {
    let changed = connection
        .prepare_cached(
            "INSERT INTO events (workspace_id, lead_id, message_id, type, at, received_at, properties)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (workspace_id, message_id) DO NOTHING",
        )?
        .execute(params![
            workspace_id,
            lead_id,
            event.message_id,
            event.event_type,
            event.at,
            event.received_at,
            serde_json::to_string(event.properties).map_err(|e| StoreError::Corrupt(e.to_string()))?
        ])?;
    Ok(if changed == 1 { Inserted::New } else { Inserted::Duplicate })
}

/// Every event of a lead, oldest first (for rebuilding its state).
pub fn of_lead(connection: &Connection, lead_id: i64) -> Result<Vec<StoredEvent>, StoreError> {
    let mut statement = connection
        .prepare_cached("SELECT id, message_id, type, at, properties FROM events WHERE lead_id = ?1 ORDER BY at, id")?;
    let rows = statement.query_map([lead_id], |row| {
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
