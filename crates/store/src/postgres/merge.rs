//! PostgreSQL queries of the merge family (see [`crate::merge`] for SQLite's): merging two leads
//! that turned out to be one person (an anonymous visitor who identifies, an `alias`).
//!
//! # How it differs from SQLite
//! Another instance may be writing either lead: both are locked, in id order (the order every
//! writer of several leads takes), before anything moves, so that no event is appended to `from`
//! after its chain moved, nor to `into` behind the links rewritten here. Moving `from`'s chain and
//! linking its oldest event to `into`'s newest is one statement.

use crate::StoreError;
use crate::leads::LeadRow;
use crate::merge::merge_attributes;
use crate::postgres::events::CHAIN;
use crate::postgres::tx::Tx;

/// Moves everything of lead `from` (events, anonymous ids) to lead `into`; `from` remains as a
/// pointer so that old references still resolve. `from`'s events are linked in ahead of
/// `into`'s, whose `last_event_id` changes; `into` takes the attributes, e-mail and times it
/// lacks from `from` (the caller saves `into`).
pub(crate) fn merge_leads(connection: &mut Tx<'_>, from: &LeadRow, into: &mut LeadRow) -> Result<(), StoreError> {
    let mut both = [from.id, into.id];
    both.sort_unstable();
    connection.query("SELECT id FROM leads WHERE id = ANY($1) ORDER BY id FOR UPDATE", &[&both.as_slice()])?;
    if let Some(newest) = from.last_event_id {
        // The chain's events move to `into`, and its oldest (the one linked to nothing) is linked
        // to `into`'s newest. `old` is the events as they were (what `RETURNING` cannot see).
        let sql = format!(
            "{CHAIN} UPDATE events e SET lead_id = $2,
                 previous_id = CASE WHEN e.previous_id IS NULL THEN $3 ELSE e.previous_id END
             FROM chain c JOIN events old ON old.id = c.id WHERE e.id = c.id
             RETURNING old.previous_id IS NULL"
        );
        let moved = connection.query(&sql, &[&newest, &into.id, &into.last_event_id])?;
        let mut oldest = 0;
        for row in &moved {
            if row.try_get::<_, bool>(0)? {
                oldest += 1;
            }
        }
        // SQLite's merge reads the oldest event first and fails without one: links that form a
        // cycle, or a newest event that is not stored. (Undone with the transaction.)
        if oldest == 0 {
            return Err(StoreError::Corrupt(format!(
                "the events of lead {} are not linked back to a first event from event {newest}",
                from.id
            )));
        }
        into.last_event_id = Some(newest);
    }
    connection.execute("UPDATE anonymous_ids SET lead_id = $1 WHERE lead_id = $2", &[&into.id, &from.id])?;
    connection.execute("DELETE FROM lead_scores WHERE lead_id = $1", &[&from.id])?;
    connection.execute(
        "UPDATE leads SET merged_into = $1, user_id = NULL, last_event_id = NULL WHERE id = $2",
        &[&into.id, &from.id],
    )?;
    merge_attributes(&mut into.attributes, &from.attributes, false);
    into.email = into.email.take().or_else(|| from.email.clone());
    into.created_at = into.created_at.min(from.created_at);
    into.last_event_at = into.last_event_at.max(from.last_event_at);
    Ok(())
}
