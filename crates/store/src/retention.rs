//! Retention: a workspace may keep events for a limited number of days (`retention`, in
//! `0018_erasure.sql`). The service deletes older events in the background, a slice of event ids
//! per transaction: [`leads_with_expired_events`] finds the leads that have some in a slice, and
//! [`prune`] deletes a lead's expired events and links the ones left, so that the lead's chain
//! (see [`crate::events`]) still reaches every event it keeps. The caller then rescores the
//! lead from what is left.

use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;
use crate::events::CHAIN;
use crate::leads::LeadRow;

/// A workspace's retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    pub workspace_id: i64,
    pub events_days: i64,
    pub set_at: i64,
    pub set_by: String,
}

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Retention> {
    Ok(Retention { workspace_id: row.get(0)?, events_days: row.get(1)?, set_at: row.get(2)?, set_by: row.get(3)? })
}

pub fn get(connection: &Connection, workspace_id: i64) -> Result<Option<Retention>, StoreError> {
    Ok(connection
        .query_row(
            "SELECT workspace_id, events_days, set_at, set_by FROM retention WHERE workspace_id = ?1",
            [workspace_id],
            from_row,
        )
        .optional()?)
}

/// Every workspace's retention.
pub fn all(connection: &Connection) -> Result<Vec<Retention>, StoreError> {
    let mut statement =
        connection.prepare("SELECT workspace_id, events_days, set_at, set_by FROM retention ORDER BY workspace_id")?;
    let rows = statement.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Sets (or, with `None`, removes) the workspace's retention.
pub fn set(
    connection: &Connection,
    workspace_id: i64,
    events_days: Option<i64>,
    set_by: &str,
    now: i64,
) -> Result<(), StoreError> {
    match events_days {
        Some(days) => connection.execute(
            "INSERT INTO retention (workspace_id, events_days, set_at, set_by) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT DO UPDATE SET events_days = excluded.events_days, set_at = excluded.set_at, set_by = excluded.set_by",
            params![workspace_id, days, now, set_by],
        )?,
        None => connection.execute("DELETE FROM retention WHERE workspace_id = ?1", [workspace_id])?,
    };
    Ok(())
}

/// The highest event id stored (0 without any): where a pass over the events ends.
pub fn last_event_id(connection: &Connection) -> Result<i64, StoreError> {
    Ok(connection.query_row("SELECT coalesce(max(id), 0) FROM events", [], |row| row.get(0))?)
}

/// The leads of the workspace with an event older than `cutoff` among the events of ids in
/// `(after, through]`: one slice of a pass, read by the events' primary key.
pub fn leads_with_expired_events(
    connection: &Connection,
    workspace_id: i64,
    cutoff: i64,
    after: i64,
    through: i64,
) -> Result<Vec<i64>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT DISTINCT lead_id FROM events WHERE id > ?1 AND id <= ?2 AND workspace_id = ?3 AND at < ?4 ORDER BY lead_id",
    )?;
    let rows = statement.query_map(params![after, through, workspace_id, cutoff], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A lead's events split at a cutoff (see [`split_chain`]): those kept, newest first, each with
/// the event it was linked to, and the ids of the expired ones.
pub(crate) type SplitChain = (Vec<(i64, Option<i64>)>, Vec<i64>);

/// The lead's chain of events (`rows`: each event's time and the event before it, by id) walked
/// from its newest event, split at `cutoff`: the events kept, newest first, each with the event
/// it was linked to, and the ids of those older than `cutoff`. Both stores prune with it.
pub(crate) fn split_chain(
    lead: &LeadRow,
    rows: &std::collections::HashMap<i64, (i64, Option<i64>)>,
    cutoff: i64,
) -> Result<SplitChain, StoreError> {
    let mut chain: Vec<(i64, i64, Option<i64>)> = Vec::with_capacity(rows.len());
    let mut next = lead.last_event_id;
    while let Some(id) = next {
        let Some(&(at, previous)) = rows.get(&id) else { break };
        chain.push((id, at, previous));
        next = previous;
        if chain.len() > rows.len() {
            return Err(StoreError::Corrupt(format!("the events of lead {} are linked in a cycle", lead.id)));
        }
    }
    let kept = chain.iter().filter(|(_, at, _)| *at >= cutoff).map(|(id, _, previous)| (*id, *previous)).collect();
    let expired = chain.iter().filter(|(_, at, _)| *at < cutoff).map(|(id, _, _)| *id).collect();
    Ok((kept, expired))
}

/// Deletes the lead's events older than `cutoff` and links each event it keeps to the next
/// older one it keeps; the row's `last_event_id` becomes its newest kept event (the caller saves
/// the row). Returns how many were deleted.
pub fn prune(connection: &Connection, lead: &mut LeadRow, cutoff: i64) -> Result<usize, StoreError> {
    // The chain's rows, then walked from the newest in memory: after a merge the order of the
    // links is not the order of the ids.
    let rows: std::collections::HashMap<i64, (i64, Option<i64>)> = {
        let mut statement = connection.prepare_cached(&format!(
            "{CHAIN} SELECT e.id, e.at, e.previous_id FROM chain c JOIN events e ON e.id = c.id"
        ))?;
        let rows = statement.query_map([lead.last_event_id], |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?))))?;
        rows.collect::<Result<_, _>>()?
    };
    let (kept, expired) = split_chain(lead, &rows, cutoff)?;
    if expired.is_empty() {
        return Ok(0);
    }
    let mut delete = connection.prepare_cached("DELETE FROM events WHERE id = ?1")?;
    for id in &expired {
        delete.execute([id])?;
    }
    let mut relink = connection.prepare_cached("UPDATE events SET previous_id = ?1 WHERE id = ?2")?;
    for (position, (id, previous)) in kept.iter().enumerate() {
        let next_kept = kept.get(position + 1).map(|(older, _)| *older);
        if *previous != next_kept {
            relink.execute(params![next_kept, id])?;
        }
    }
    // The stored state counted the deleted events: it is rebuilt from those left when the lead
    // is next scored.
    lead.last_event_id = kept.first().map(|(id, _)| *id);
    lead.state = None;
    lead.state_model_id = None;
    connection.execute(
        "UPDATE leads SET last_event_id = ?1, state = NULL, state_model_id = NULL WHERE id = ?2",
        params![lead.last_event_id, lead.id],
    )?;
    Ok(expired.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{NewEvent, of_lead};
    use crate::{Store, leads, merge, workspaces};

    #[test]
    fn pruning_deletes_the_expired_events_and_keeps_the_others_linked_after_a_merge() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_ingesting(dir.path(), crate::message_ids::DEFAULT_RECENT).unwrap();
        let (kept, cut) = store
            .write_blocking(|c| {
                let workspace = workspaces::find_or_create(c, "acme", 0)?.id;
                let mut user = leads::create(c, workspace, Some("u"), 0)?;
                let mut visitor = leads::create(c, workspace, None, 0)?;
                let properties = serde_json::Map::new();
                // Times out of insertion order (a backfill), on both leads, then merged: the
                // chain's links are not in the order of the ids any more.
                for (to_user, id, at) in
                    [(true, "a", 50), (false, "b", 5), (true, "c", 8), (false, "d", 60), (true, "e", 70)]
                {
                    let lead = if to_user { &mut user } else { &mut visitor };
                    let event =
                        NewEvent { message_id: id, event_type: "visit", at, received_at: 0, properties: &properties };
                    crate::events::insert(c, lead, &event)?;
                    leads::save(c, lead)?;
                }
                merge::merge_leads(c, &visitor, &mut user)?;
                leads::save(c, &user)?;
                let before: Vec<i64> = of_lead(c, &user)?.iter().map(|e| e.at).collect();
                assert_eq!(before, [5, 8, 50, 60, 70]);
                let deleted = prune(c, &mut user, 10)?;
                let after: Vec<i64> = of_lead(c, &user)?.iter().map(|e| e.at).collect();
                let stored = leads::by_id(c, workspace, user.id)?.unwrap();
                assert_eq!(stored.last_event_id, user.last_event_id);
                assert_eq!((stored.state, stored.state_model_id), (None, None), "the state is rebuilt");
                assert_eq!(prune(c, &mut user, 10)?, 0, "nothing more to delete");
                // Every event of the workspace is the lead's: none is lost from the chain.
                let all: i64 = c.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
                assert_eq!(all as usize, after.len());
                Ok((after, deleted))
            })
            .unwrap();
        assert_eq!(kept, [50, 60, 70]);
        assert_eq!(cut, 2);
    }
}
