//! PostgreSQL queries of the retention family (see [`crate::retention`] for SQLite's): how many
//! days a workspace keeps events (`retention`), and the deletion of older events that keeps each
//! lead's chain of events linked (see [`crate::events`]).
//!
//! # How it differs from SQLite
//! - [`prune`] is given a lead row the caller read without a lock, and another instance may have
//!   stored events of the lead since (moving its `last_event_id` on). It locks the lead's row
//!   first and, when the stored newest event is not the row's, reads the row again, so that the
//!   walk starts from the stored newest event and no event committed meanwhile is cut out of the
//!   chain. The row given must therefore be as stored: a caller that appends events of the lead
//!   saves the row before pruning it.
//! - The deletions and the new links are one statement each (`= ANY`, `unnest`), not one per
//!   event.
//! - Deleted events stay in the table's files as dead tuples until `VACUUM` reclaims them (see
//!   [`super::erasure`]).

use std::collections::HashMap;

use crate::StoreError;
use crate::events::CHAIN;
use crate::leads::LeadRow;
use crate::postgres::tx::Tx;
use crate::retention::*;

/// [`CHAIN`] with PostgreSQL's parameter: the ids of the events linked back from `$1` (a
/// `BIGINT`, `NULL` for a lead without events), the same walk as SQLite's.
pub(crate) fn chain() -> String {
    CHAIN.replace("?1", "$1::BIGINT")
}

fn from_row(row: &postgres::Row) -> Result<Retention, StoreError> {
    Ok(Retention {
        workspace_id: row.try_get(0)?,
        events_days: row.try_get(1)?,
        set_at: row.try_get(2)?,
        set_by: row.try_get(3)?,
    })
}

pub(crate) fn get(connection: &mut Tx<'_>, workspace_id: i64) -> Result<Option<Retention>, StoreError> {
    connection
        .query_opt(
            "SELECT workspace_id, events_days, set_at, set_by FROM retention WHERE workspace_id = $1",
            &[&workspace_id],
        )?
        .map(|row| from_row(&row))
        .transpose()
}

/// Every workspace's retention.
pub(crate) fn all(connection: &mut Tx<'_>) -> Result<Vec<Retention>, StoreError> {
    let rows = connection
        .query("SELECT workspace_id, events_days, set_at, set_by FROM retention ORDER BY workspace_id", &[])?;
    rows.iter().map(from_row).collect()
}

/// The highest event id stored (0 without any): where a pass over the events ends.
pub(crate) fn last_event_id(connection: &mut Tx<'_>) -> Result<i64, StoreError> {
    Ok(connection.query_one("SELECT coalesce(max(id), 0) FROM events", &[])?.try_get(0)?)
}

/// The leads of the workspace with an event older than `cutoff` among the events of ids in
/// `(after, through]`: one slice of a pass, read by the events' primary key.
pub(crate) fn leads_with_expired_events(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    cutoff: i64,
    after: i64,
    through: i64,
) -> Result<Vec<i64>, StoreError> {
    let rows = connection.query(
        "SELECT DISTINCT lead_id FROM events WHERE id > $1 AND id <= $2 AND workspace_id = $3 AND at < $4 ORDER BY lead_id",
        &[&after, &through, &workspace_id, &cutoff],
    )?;
    Ok(rows.iter().map(|row| row.try_get(0)).collect::<Result<_, _>>()?)
}

/// Sets (or, with `None`, removes) the workspace's retention.
pub(crate) fn set(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    events_days: Option<i64>,
    set_by: &str,
    now: i64,
) -> Result<(), StoreError> {
    match events_days {
        Some(days) => connection.execute(
            "INSERT INTO retention (workspace_id, events_days, set_at, set_by) VALUES ($1, $2, $3, $4)
             ON CONFLICT (workspace_id) DO UPDATE
             SET events_days = excluded.events_days, set_at = excluded.set_at, set_by = excluded.set_by",
            &[&workspace_id, &days, &now, &set_by],
        )?,
        None => connection.execute("DELETE FROM retention WHERE workspace_id = $1", &[&workspace_id])?,
    };
    Ok(())
}

/// Deletes the lead's events older than `cutoff` and links each event it keeps to the next
/// older one it keeps; the row's `last_event_id` becomes its newest kept event (the caller saves
/// the row). Returns how many were deleted.
pub(crate) fn prune(connection: &mut Tx<'_>, lead: &mut LeadRow, cutoff: i64) -> Result<usize, StoreError> {
    let stored = connection.query_opt("SELECT last_event_id FROM leads WHERE id = $1 FOR UPDATE", &[&lead.id])?;
    if let Some(stored) = stored {
        let newest: Option<i64> = stored.try_get(0)?;
        if newest != lead.last_event_id {
            // Events were stored since the caller read the row: it is read again under the lock.
            match crate::postgres::leads::by_id(
                connection,
                lead.workspace_id,
                lead.id,
                crate::postgres::leads::Lock::None,
            )? {
                Some(fresh) => *lead = fresh,
                // Merged into another lead meanwhile: its events are that lead's now.
                None => return Ok(0),
            }
        }
    }
    // The chain's rows, then walked from the newest in memory: after a merge the order of the
    // links is not the order of the ids.
    let rows: HashMap<i64, (i64, Option<i64>)> = connection
        .query(
            &format!("{} SELECT e.id, e.at, e.previous_id FROM chain c JOIN events e ON e.id = c.id", chain()),
            &[&lead.last_event_id],
        )?
        .iter()
        .map(|row| Ok((row.try_get(0)?, (row.try_get(1)?, row.try_get(2)?))))
        .collect::<Result<_, StoreError>>()?;
    let (kept, expired) = split_chain(lead, &rows, cutoff)?;
    if expired.is_empty() {
        return Ok(0);
    }
    connection.execute("DELETE FROM events WHERE id = ANY($1)", &[&expired])?;
    // Each kept event whose link changes, and the next older kept event it links to now.
    let (relinked, links): (Vec<i64>, Vec<Option<i64>>) = kept
        .iter()
        .enumerate()
        .filter_map(|(position, (id, previous))| {
            let next_kept = kept.get(position + 1).map(|(older, _)| *older);
            (*previous != next_kept).then_some((*id, next_kept))
        })
        .unzip();
    if !relinked.is_empty() {
        connection.execute(
            "UPDATE events e SET previous_id = link.previous_id
             FROM unnest($1::BIGINT[], $2::BIGINT[]) AS link(id, previous_id) WHERE e.id = link.id",
            &[&relinked, &links],
        )?;
    }
    // The stored state counted the deleted events: it is rebuilt from those left when the lead
    // is next scored.
    lead.last_event_id = kept.first().map(|(id, _)| *id);
    lead.state = None;
    lead.state_model_id = None;
    connection.execute(
        "UPDATE leads SET last_event_id = $1, state = NULL, state_model_id = NULL WHERE id = $2",
        &[&lead.last_event_id, &lead.id],
    )?;
    Ok(expired.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::models::tests::workspace;
    use crate::postgres::testing::TestDatabase;

    fn lead_row(id: i64, workspace_id: i64, last_event_id: Option<i64>) -> LeadRow {
        LeadRow {
            id,
            workspace_id,
            user_id: None,
            email: None,
            attributes: serde_json::Map::new(),
            created_at: 0,
            updated_at: 0,
            last_event_at: None,
            stage: "lead".to_string(),
            state: Some("{}".to_string()),
            state_model_id: Some(1),
            last_event_id,
        }
    }

    /// The times of the events linked back from `newest`, newest first.
    fn chain_times(c: &mut Tx<'_>, newest: Option<i64>) -> Vec<i64> {
        let mut times = Vec::new();
        let mut next = newest;
        while let Some(id) = next {
            let row = c.query_one("SELECT at, previous_id FROM events WHERE id = $1", &[&id]).unwrap();
            times.push(row.get(0));
            next = row.get(1);
        }
        times
    }

    #[test]
    fn pruning_deletes_the_expired_events_and_keeps_the_others_linked_after_a_merge() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut c = client.transaction();
        let ws = workspace(&mut c, "acme");
        // Lead 1's chain as a merge of lead 2 into it leaves it, with times out of insertion order
        // (a backfill): 70 -> 8 -> 50 (lead 1's own), then 60 -> 5 (lead 2's, linked in ahead).
        c.execute(
            "INSERT INTO leads (id, workspace_id, created_at, updated_at, state, state_model_id, last_event_id) VALUES
                 (1, $1, 0, 0, '{}', 1, 5), (2, $1, 0, 0, NULL, NULL, NULL)",
            &[&ws],
        )
        .unwrap();
        c.execute("UPDATE leads SET merged_into = 1 WHERE id = 2", &[]).unwrap();
        c.execute(
            "INSERT INTO events (id, workspace_id, lead_id, message_id, type, at, received_at, previous_id) VALUES
                 (1, $1, 1, 'a', 'visit', 50, 0, 4),
                 (2, $1, 1, 'b', 'visit', 5, 0, NULL),
                 (3, $1, 1, 'c', 'visit', 8, 0, 1),
                 (4, $1, 1, 'd', 'visit', 60, 0, 2),
                 (5, $1, 1, 'e', 'visit', 70, 0, 3)",
            &[&ws],
        )
        .unwrap();
        assert_eq!(chain_times(&mut c, Some(5)), [70, 8, 50, 60, 5]);
        assert_eq!(leads_with_expired_events(&mut c, ws, 10, 0, 5).unwrap(), [1]);
        assert_eq!(leads_with_expired_events(&mut c, ws, 10, 3, 5).unwrap(), Vec::<i64>::new());
        assert_eq!(last_event_id(&mut c).unwrap(), 5);
        let mut lead = lead_row(1, ws, Some(5));
        assert_eq!(prune(&mut c, &mut lead, 10).unwrap(), 2);
        assert_eq!(chain_times(&mut c, lead.last_event_id), [70, 50, 60]);
        let stored = c.query_one("SELECT last_event_id, state, state_model_id FROM leads WHERE id = 1", &[]).unwrap();
        assert_eq!(stored.get::<_, Option<i64>>(0), lead.last_event_id);
        assert_eq!((stored.get::<_, Option<String>>(1), stored.get::<_, Option<i64>>(2)), (None, None), "rebuilt");
        assert_eq!((lead.state.as_deref(), lead.state_model_id), (None, None));
        assert_eq!(prune(&mut c, &mut lead, 10).unwrap(), 0, "nothing more to delete");
        // Every event left is in the chain: none is lost from it.
        let all: i64 = c.query_one("SELECT count(*) FROM events", &[]).unwrap().get(0);
        assert_eq!(all, 3);
        // The newest events expiring too leave the lead without any.
        assert_eq!(prune(&mut c, &mut lead, 1_000).unwrap(), 3);
        assert_eq!(lead.last_event_id, None);
        assert_eq!(last_event_id(&mut c).unwrap(), 0);
    }

    #[test]
    fn a_retention_is_set_changed_and_removed() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut c = client.transaction();
        let (acme, globex) = (workspace(&mut c, "acme"), workspace(&mut c, "globex"));
        set(&mut c, globex, Some(30), "key 1 (ops)", 1).unwrap();
        set(&mut c, acme, Some(90), "user ana@example.com", 2).unwrap();
        set(&mut c, acme, Some(60), "command line", 3).unwrap();
        let expected = Retention { workspace_id: acme, events_days: 60, set_at: 3, set_by: "command line".into() };
        assert_eq!(get(&mut c, acme).unwrap(), Some(expected.clone()));
        assert_eq!(all(&mut c).unwrap().iter().map(|r| r.workspace_id).collect::<Vec<_>>(), [acme, globex]);
        set(&mut c, acme, None, "command line", 4).unwrap();
        assert_eq!(get(&mut c, acme).unwrap(), None);
        assert_eq!(all(&mut c).unwrap().len(), 1);
    }
}
