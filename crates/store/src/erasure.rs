//! Erasing a lead (GDPR article 17, CCPA): every row that holds its personal data goes, the
//! erasure is recorded without the values, and its identifiers join the suppression list so that
//! what arrives for them later is dropped until an admin lifts it (`0018_erasure.sql`).
//!
//! What is erased: the lead's row and the rows of the leads merged into it (which keep the
//! e-mail and traits they had), their anonymous ids, every event (linked from the lead's newest
//! one, which after a merge links the merged leads' events too), current scores, score and stage
//! history, score overrides (whose reasons are free text), and the webhook notifications about
//! them with their delivery logs. The message ids of the events stay (they carry no personal
//! data) so that a retry is still a duplicate. The funnel's kept counts follow the deleted rows
//! by their triggers.
//!
//! That no copy is left in the files is the writer's part: `secure_delete` is on for every
//! connection (deleted content is overwritten with zeros) and the WAL is checkpointed and
//! truncated after the erasure commits (see [`crate::Store`]).
//!
//! Identifiers are matched by salted hash: SHA-256 over the workspace's random salt, the kind
//! and the value (an e-mail trimmed and in lower case). Nothing stored can be read back into the
//! values; a value can only be tested, which is what the list is for.

use std::collections::BTreeSet;

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::StoreError;
use crate::events::CHAIN;

/// The kinds of identifier the suppression list matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IdentifierKind {
    UserId,
    AnonymousId,
    Email,
}

impl IdentifierKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentifierKind::UserId => "user_id",
            IdentifierKind::AnonymousId => "anonymous_id",
            IdentifierKind::Email => "email",
        }
    }
}

/// An erasure as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    pub id: i64,
    pub lead_id: i64,
    pub erased_by: String,
    pub erased_at: i64,
    /// Lead rows erased: the lead and the leads merged into it.
    pub leads: i64,
    pub events: i64,
    /// Identifiers on the suppression list for it (0 once lifted).
    pub suppressed: i64,
    pub lifted_at: Option<i64>,
    pub lifted_by: Option<String>,
}

/// The workspace's salt, made on first use.
fn salt(connection: &Connection, workspace_id: i64) -> Result<Vec<u8>, StoreError> {
    if let Some(salt) = known_salt(connection, workspace_id)? {
        return Ok(salt);
    }
    let mut salt = vec![0u8; 32];
    getrandom::fill(&mut salt).map_err(|e| StoreError::Corrupt(format!("no randomness for a salt: {e}")))?;
    connection
        .execute("INSERT INTO erasure_salts (workspace_id, salt) VALUES (?1, ?2)", params![workspace_id, salt])?;
    Ok(salt)
}

fn known_salt(connection: &Connection, workspace_id: i64) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(connection
        .prepare_cached("SELECT salt FROM erasure_salts WHERE workspace_id = ?1")?
        .query_row([workspace_id], |row| row.get(0))
        .optional()?)
}

/// The hash an identifier is listed by: SHA-256 of the salt, the kind, a zero byte and the
/// [`normalised`] value; `None` for a blank one. (PostgreSQL's store computes the same in SQL,
/// from the normalised value, see `postgres::ingestion`.)
pub(crate) fn hash(salt: &[u8], kind: IdentifierKind, value: &str) -> Option<Vec<u8>> {
    let normalised = normalised(kind, value)?;
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(kind.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(normalised.as_bytes());
    Some(hasher.finalize().to_vec())
}

/// An identifier as it is hashed: trimmed, an e-mail address in lower case; `None` for a blank
/// one.
pub(crate) fn normalised(kind: IdentifierKind, value: &str) -> Option<String> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    Some(match kind {
        IdentifierKind::Email => value.to_lowercase(),
        _ => value.to_string(),
    })
}

/// Erases the lead `lead_id` of the workspace (and the leads merged into it) and lists its
/// identifiers; `None` when the workspace has no such lead (or it is itself merged into another:
/// erase that one). The caller queues the `lead_erased` notifications after it.
pub fn erase(
    connection: &Connection,
    workspace_id: i64,
    lead_id: i64,
    erased_by: &str,
    now: i64,
) -> Result<Option<Erasure>, StoreError> {
    let found: Option<Option<i64>> = connection
        .query_row(
            "SELECT last_event_id FROM leads WHERE id = ?1 AND workspace_id = ?2 AND merged_into IS NULL",
            params![lead_id, workspace_id],
            |row| row.get(0),
        )
        .optional()?;
    let Some(newest_event) = found else { return Ok(None) };
    // The lead and every lead merged into it, directly or through another.
    let group: Vec<i64> = {
        let mut statement = connection.prepare(
            "WITH RECURSIVE grouped(id) AS (
                 SELECT ?1 UNION SELECT l.id FROM leads l JOIN grouped g ON l.merged_into = g.id
             ) SELECT id FROM grouped",
        )?;
        let rows = statement.query_map([lead_id], |row| row.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    let ids = group.iter().map(i64::to_string).collect::<Vec<_>>().join(",");

    // What the suppression list keeps: user ids, e-mails (the column and any `email` trait) and
    // anonymous ids of the whole group.
    let mut identifiers: BTreeSet<(IdentifierKind, String)> = BTreeSet::new();
    {
        let mut statement = connection.prepare(&format!(
            "SELECT user_id, email, json_extract(attributes, '$.email') FROM leads WHERE id IN ({ids})"
        ))?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let user_id: Option<String> = row.get(0)?;
            let email: Option<String> = row.get(1)?;
            let trait_email: Option<rusqlite::types::Value> = row.get(2)?;
            identifiers.extend(user_id.map(|id| (IdentifierKind::UserId, id)));
            identifiers.extend(email.map(|e| (IdentifierKind::Email, e)));
            if let Some(rusqlite::types::Value::Text(e)) = trait_email {
                identifiers.insert((IdentifierKind::Email, e));
            }
        }
        let mut statement = connection.prepare(&format!(
            "SELECT anonymous_id FROM anonymous_ids WHERE workspace_id = ?1 AND lead_id IN ({ids})"
        ))?;
        let rows = statement.query_map([workspace_id], |row| row.get::<_, String>(0))?;
        for anonymous_id in rows {
            identifiers.insert((IdentifierKind::AnonymousId, anonymous_id?));
        }
        // A merged lead's user id was cleared by the merge; the identify events that named it
        // still say it.
        let mut statement = connection.prepare(&format!(
            "{CHAIN} SELECT json_extract(e.properties, '$.email') FROM chain c JOIN events e ON e.id = c.id
             WHERE json_type(e.properties, '$.email') = 'text'"
        ))?;
        let rows = statement.query_map([newest_event], |row| row.get::<_, String>(0))?;
        for email in rows {
            identifiers.insert((IdentifierKind::Email, email?));
        }
    }

    // Events first (linked from the lead's newest), then what refers to the leads, then them.
    let events = connection
        .execute(&format!("{CHAIN} DELETE FROM events WHERE id IN (SELECT id FROM chain)"), [newest_event])?;
    connection.execute(&format!("UPDATE leads SET last_event_id = NULL WHERE id IN ({ids})"), [])?;
    connection.execute(
        &format!(
            "DELETE FROM deliveries WHERE outbox_id IN (
                 SELECT o.id FROM outbox o WHERE o.webhook_id IN (SELECT id FROM webhooks WHERE workspace_id = ?1)
                   AND o.lead_id IN ({ids}))"
        ),
        [workspace_id],
    )?;
    connection.execute(
        &format!(
            "DELETE FROM outbox WHERE webhook_id IN (SELECT id FROM webhooks WHERE workspace_id = ?1)
               AND lead_id IN ({ids})"
        ),
        [workspace_id],
    )?;
    // The funnel's cohort rows are the erased leads' own (`0016_funnel_cohorts.sql`): they go
    // with the moves, which only an erasure deletes.
    // Overrides go with them: their reasons and notes are free text that may name the person.
    for table in ["lead_scores", "score_history", "score_overrides", "stage_history", "mql_cohorts", "outcome_moves"] {
        connection.execute(&format!("DELETE FROM {table} WHERE lead_id IN ({ids})"), [])?;
    }
    connection.execute(
        &format!("DELETE FROM anonymous_ids WHERE workspace_id = ?1 AND lead_id IN ({ids})"),
        [workspace_id],
    )?;
    // Merged leads point at the lead: they go first.
    connection.execute(&format!("DELETE FROM leads WHERE id IN ({ids}) AND id != ?1"), [lead_id])?;
    connection.execute("DELETE FROM leads WHERE id = ?1", [lead_id])?;

    connection.execute(
        "INSERT INTO erasures (workspace_id, lead_id, erased_by, erased_at, leads, events, last_lead_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            workspace_id,
            lead_id,
            erased_by,
            now,
            group.len() as i64,
            events as i64,
            group.iter().max().copied().unwrap_or(lead_id)
        ],
    )?;
    let erasure_id = connection.last_insert_rowid();
    let salt = salt(connection, workspace_id)?;
    let mut insert = connection.prepare_cached(
        "INSERT INTO suppressions (workspace_id, hash, kind, erasure_id) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT DO UPDATE SET erasure_id = excluded.erasure_id",
    )?;
    let mut suppressed = 0;
    for (kind, value) in &identifiers {
        if let Some(hash) = hash(&salt, *kind, value) {
            suppressed += insert.execute(params![workspace_id, hash, kind.as_str(), erasure_id])? as i64;
        }
    }
    Ok(Some(Erasure {
        id: erasure_id,
        lead_id,
        erased_by: erased_by.to_string(),
        erased_at: now,
        leads: group.len() as i64,
        events: events as i64,
        suppressed,
        lifted_at: None,
        lifted_by: None,
    }))
}

/// Which of `identifiers` are on the workspace's suppression list (by position). One lookup of
/// the list when it is empty, which is the usual case.
pub fn suppressed(
    connection: &Connection,
    workspace_id: i64,
    identifiers: &[(IdentifierKind, &str)],
) -> Result<Vec<bool>, StoreError> {
    let mut none = vec![false; identifiers.len()];
    if identifiers.is_empty() {
        return Ok(none);
    }
    let any: bool = connection
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM suppressions WHERE workspace_id = ?1)")?
        .query_row([workspace_id], |row| row.get(0))?;
    if !any {
        return Ok(none);
    }
    let Some(salt) = known_salt(connection, workspace_id)? else { return Ok(none) };
    let mut statement = connection
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM suppressions WHERE workspace_id = ?1 AND hash = ?2)")?;
    for ((kind, value), listed) in identifiers.iter().zip(none.iter_mut()) {
        if let Some(hash) = hash(&salt, *kind, value) {
            *listed = statement.query_row(params![workspace_id, hash], |row| row.get(0))?;
        }
    }
    Ok(none)
}

/// An erasure's columns as [`from_row`] reads them, with how many identifiers it keeps listed.
const ERASURE_COLUMNS: &str = "SELECT e.id, e.lead_id, e.erased_by, e.erased_at, e.leads, e.events,
        (SELECT count(*) FROM suppressions s WHERE s.erasure_id = e.id), e.lifted_at, e.lifted_by
     FROM erasures e";

/// The workspace's erasures, newest first.
pub fn list(connection: &Connection, workspace_id: i64) -> Result<Vec<Erasure>, StoreError> {
    let mut statement =
        connection.prepare(&format!("{ERASURE_COLUMNS} WHERE e.workspace_id = ?1 ORDER BY e.id DESC"))?;
    let rows = statement.query_map([workspace_id], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The latest erasure of a lead number, if it was erased.
pub fn of_lead(connection: &Connection, workspace_id: i64, lead_id: i64) -> Result<Option<Erasure>, StoreError> {
    Ok(connection
        .query_row(
            &format!("{ERASURE_COLUMNS} WHERE e.workspace_id = ?1 AND e.lead_id = ?2 ORDER BY e.id DESC LIMIT 1"),
            params![workspace_id, lead_id],
            from_row,
        )
        .optional()?)
}

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Erasure> {
    Ok(Erasure {
        id: row.get(0)?,
        lead_id: row.get(1)?,
        erased_by: row.get(2)?,
        erased_at: row.get(3)?,
        leads: row.get(4)?,
        events: row.get(5)?,
        suppressed: row.get(6)?,
        lifted_at: row.get(7)?,
        lifted_by: row.get(8)?,
    })
}

/// Lifts an erasure's suppression: its identifiers are accepted again. `None` when the
/// workspace has no such erasure; lifting twice changes nothing more.
pub fn lift(
    connection: &Connection,
    workspace_id: i64,
    erasure_id: i64,
    lifted_by: &str,
    now: i64,
) -> Result<Option<Erasure>, StoreError> {
    let exists: bool = connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM erasures WHERE id = ?1 AND workspace_id = ?2)",
        params![erasure_id, workspace_id],
        |row| row.get(0),
    )?;
    if !exists {
        return Ok(None);
    }
    connection.execute(
        "DELETE FROM suppressions WHERE workspace_id = ?1 AND erasure_id = ?2",
        params![workspace_id, erasure_id],
    )?;
    connection.execute(
        "UPDATE erasures SET lifted_at = ?1, lifted_by = ?2 WHERE id = ?3 AND lifted_at IS NULL",
        params![now, lifted_by, erasure_id],
    )?;
    Ok(list(connection, workspace_id)?.into_iter().find(|e| e.id == erasure_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    /// A lead with a score history that changed tiers over two weeks, an MQL move, an anonymous
    /// lead merged into it and a webhook notification; returns (workspace, lead, merged lead).
    fn a_lead(connection: &Connection, name: &str, user_id: &str) -> Result<(i64, i64, i64), StoreError> {
        let workspace = crate::workspaces::find_or_create(connection, name, 0)?.id;
        connection.execute(
            "INSERT INTO models (workspace_id, version, source, created_at) VALUES (?1, 1, '', 0)",
            [workspace],
        )?;
        let model = connection.last_insert_rowid();
        let lead = |user: Option<&str>, email: &str, merged_into: Option<i64>| -> Result<i64, StoreError> {
            connection.execute(
                "INSERT INTO leads (workspace_id, user_id, email, attributes, created_at, updated_at, merged_into)
                 VALUES (?1, ?2, ?3, json_object('name', 'Ada ' || ?3), 0, 0, ?4)",
                params![workspace, user, email, merged_into],
            )?;
            Ok(connection.last_insert_rowid())
        };
        let id = lead(Some(user_id), &format!("{user_id}@example.org"), None)?;
        let merged = lead(None, &format!("{user_id}.old@example.org"), Some(id))?;
        connection.execute(
            "INSERT INTO anonymous_ids (workspace_id, anonymous_id, lead_id) VALUES (?1, ?2, ?3)",
            params![workspace, format!("anon-{user_id}"), id],
        )?;
        let mut previous: Option<i64> = None;
        for (at, tier, previous_tier) in
            [(1_000_000_000_000_i64, "cold", None), (1_000_700_000_000, "hot", Some("cold"))]
        {
            connection.execute(
                "INSERT INTO score_history (lead_id, score, value, tier, previous_tier, model_id, at, cause, previous_id)
                 VALUES (?1, 'fit', 1, ?2, ?3, ?4, ?5, 'event', ?6)",
                params![id, tier, previous_tier, model, at, previous],
            )?;
            previous = Some(connection.last_insert_rowid());
        }
        connection.execute(
            "INSERT INTO lead_scores (lead_id, score, value, tier, model_id, evaluated_at, history_id)
             VALUES (?1, 'fit', 1, 'hot', ?2, 0, ?3)",
            params![id, model, previous],
        )?;
        connection.execute(
            "INSERT INTO stage_history (lead_id, workspace_id, stage, previous, at, actor) VALUES (?1, ?2, 'mql', 'lead', 1000700000000, 'score')",
            params![id, workspace],
        )?;
        connection.execute("UPDATE leads SET stage = 'mql' WHERE id = ?1", [id])?;
        connection.execute(
            "INSERT INTO webhooks (workspace_id, url, secret, events, created_at) VALUES (?1, 'http://x', 's', '[]', 0)",
            [workspace],
        )?;
        let hook = connection.last_insert_rowid();
        let outbox = crate::webhooks::enqueue(connection, hook, id, "tier_changed", &format!("\"{user_id}\""), 0)?;
        connection
            .execute("INSERT INTO deliveries (outbox_id, at, status, duration_ms) VALUES (?1, 0, 200, 1)", [outbox])?;
        Ok((workspace, id, merged))
    }

    fn count(connection: &Connection, sql: &str) -> i64 {
        connection.query_row(sql, [], |row| row.get(0)).unwrap()
    }

    #[test]
    fn an_erasure_deletes_the_lead_and_its_merged_leads_keeps_the_others_and_the_counts_stay_true() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write_blocking(|c| {
                let (workspace, gone, merged) = a_lead(c, "acme", "ada")?;
                let (_, kept, _) = a_lead(c, "acme2", "bob")?;
                let erasure = erase(c, workspace, gone, "test", 5)?.expect("the lead exists");
                assert_eq!((erasure.leads, erasure.events), (2, 0));
                // Two e-mails, a user id, an anonymous id.
                assert_eq!(erasure.suppressed, 4);
                for table in
                    ["leads", "lead_scores", "score_history", "stage_history", "mql_cohorts", "anonymous_ids", "outbox"]
                {
                    let column = if table == "leads" { "id" } else { "lead_id" };
                    let left = count(c, &format!("SELECT count(*) FROM {table} WHERE {column} IN ({gone}, {merged})"));
                    assert_eq!(left, 0, "{table}");
                    let others = count(c, &format!("SELECT count(*) FROM {table} WHERE {column} = {kept}"));
                    assert!(others > 0, "{table} keeps the other lead's rows");
                }
                assert_eq!(count(c, "SELECT count(*) FROM deliveries"), 1, "the other lead's delivery stays");
                assert_eq!(count(c, "SELECT count(*) FROM lead_search WHERE lead_search MATCH '\"ada@example\"'"), 0);
                crate::funnel::recount::assert_kept_counts_equal(c);
                // A merged lead or an erased one is not erased again.
                assert_eq!(erase(c, workspace, gone, "test", 6)?, None);
                assert_eq!(erase(c, workspace, kept, "test", 6)?, None, "another workspace's lead");
                // The erased ids are never given again.
                // Leads 1 and 2 are erased, 3 and 4 (bob, merged) stay.
                assert_eq!((gone, merged, kept), (1, 2, 3));
                assert_eq!(crate::leads::next_id(c)?, 5);
                let (third, newest, newest_merged) = a_lead(c, "acme3", "cy")?;
                erase(c, third, newest, "test", 7)?.unwrap();
                assert_eq!(crate::leads::next_id(c)?, newest_merged + 1, "not {}", newest_merged - 1);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn suppression_matches_the_erased_identifiers_only_in_their_workspace_until_lifted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write_blocking(|c| {
                let (workspace, gone, _) = a_lead(c, "acme", "ada")?;
                let (other, _, _) = a_lead(c, "globex", "ada")?;
                let asked = [
                    (IdentifierKind::UserId, "ada"),
                    (IdentifierKind::Email, "  ADA@Example.org "),
                    (IdentifierKind::AnonymousId, "anon-ada"),
                    (IdentifierKind::Email, "ada.old@example.org"),
                    (IdentifierKind::AnonymousId, "ada"),
                    (IdentifierKind::UserId, "someone"),
                    (IdentifierKind::UserId, ""),
                ];
                assert_eq!(suppressed(c, workspace, &asked)?, [false; 7], "nothing erased yet");
                let erasure = erase(c, workspace, gone, "test", 5)?.unwrap();
                assert_eq!(suppressed(c, workspace, &asked)?, [true, true, true, true, false, false, false]);
                assert_eq!(suppressed(c, other, &asked)?, [false; 7], "another workspace's ada is not erased");
                let stored: Vec<u8> = c.query_row("SELECT hash FROM suppressions LIMIT 1", [], |r| r.get(0))?;
                assert_eq!(stored.len(), 32, "a hash, not a value");
                let lifted = lift(c, workspace, erasure.id, "admin", 9)?.unwrap();
                assert_eq!(
                    (lifted.suppressed, lifted.lifted_at, lifted.lifted_by.as_deref()),
                    (0, Some(9), Some("admin"))
                );
                assert_eq!(suppressed(c, workspace, &asked)?, [false; 7]);
                assert_eq!(lift(c, other, erasure.id, "admin", 9)?, None, "another workspace's erasure");
                Ok(())
            })
            .unwrap();
    }
}
