//! PostgreSQL queries of the erasure family (see [`crate::erasure`] for SQLite's): erasing a
//! lead and the leads merged into it with everything of theirs, the record of each erasure
//! (`erasures`, without personal data), and the suppression list of the erased identifiers
//! (`suppressions`), hashed with the workspace's salt (`erasure_salts`) as SQLite's are
//! ([`crate::erasure::hash`]).
//!
//! What is erased is what SQLite's erasure erases: the lead's row and its merged leads' rows,
//! their anonymous ids, every event linked from the lead's newest one, current scores, score and
//! stage history, score overrides, the webhook notifications about them with their delivery
//! logs, and the funnel's cohort rows and outcome moves of theirs.
//!
//! # Concurrency
//! [`erase`] locks the lead's row first: an ingestion of the lead (which locks it as well) either
//! committed before, and its events are erased with the others, or waits and then finds no lead.
//! A merge into the lead locks it too, so no lead joins the group while it is erased. Two
//! erasures in a workspace without a salt yet both try to make one: the first stored is kept
//! (`ON CONFLICT DO NOTHING`, then read).
//!
//! # What stays on disk (operators, read this)
//! SQLite overwrites deleted content (`secure_delete`) and truncates its log after an erasure.
//! PostgreSQL cannot be asked to: a `DELETE` only marks the rows dead, and their bytes stay in
//! the table and index files until the space is reused.
//! - This store runs no `VACUUM`. Autovacuum does, on a table once its dead rows exceed
//!   `autovacuum_vacuum_threshold` + `autovacuum_vacuum_scale_factor` × its rows (50 + 20 % by
//!   default): on a large `events` table that may be days after an erasure. Even then `VACUUM`
//!   only makes the space reusable; the old bytes remain until new rows overwrite them.
//! - To be sure that nothing of an erased lead is left in the files, run `VACUUM FULL` on the
//!   tables (`leads`, `events`, `anonymous_ids`, `lead_scores`, `score_history`, `stage_history`,
//!   `score_overrides`, `outbox`, `deliveries`): it writes each table anew, under an exclusive
//!   lock that stops ingestion while it runs (a tool such as `pg_repack` does it without the
//!   long lock). The old files are unlinked, not overwritten: an encrypted volume is what keeps
//!   their blocks unreadable.
//! - The write-ahead log holds the erased rows until its segments are recycled, and so do WAL
//!   archives, base backups and replicas' copies, for as long as they are kept: their retention
//!   is the erasure's delay.

use std::collections::BTreeSet;

use crate::StoreError;
use crate::erasure::*;
use crate::postgres::retention::chain;
use crate::postgres::tx::Tx;

/// The workspace's salt, if it has one.
fn known_salt(connection: &mut Tx<'_>, workspace_id: i64) -> Result<Option<Vec<u8>>, StoreError> {
    let row = connection.query_opt("SELECT salt FROM erasure_salts WHERE workspace_id = $1", &[&workspace_id])?;
    Ok(row.map(|row| row.try_get(0)).transpose()?)
}

/// The workspace's salt, made on first use.
fn salt(connection: &mut Tx<'_>, workspace_id: i64) -> Result<Vec<u8>, StoreError> {
    if let Some(salt) = known_salt(connection, workspace_id)? {
        return Ok(salt);
    }
    let mut salt = vec![0u8; 32];
    getrandom::fill(&mut salt).map_err(|e| StoreError::Corrupt(format!("no randomness for a salt: {e}")))?;
    // Another instance may store one first: its salt is the workspace's, and this one is dropped.
    connection.execute(
        "INSERT INTO erasure_salts (workspace_id, salt) VALUES ($1, $2) ON CONFLICT (workspace_id) DO NOTHING",
        &[&workspace_id, &salt],
    )?;
    known_salt(connection, workspace_id)?
        .ok_or_else(|| StoreError::Corrupt(format!("the erasure salt of workspace {workspace_id} is missing")))
}

/// Whether each identifier is on the workspace's suppression list, in order; as an ingestion
/// reads it (with its other reads, [`crate::postgres::ingestion::after_locks`]).
#[cfg(test)]
pub(crate) fn suppressed(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    identifiers: &[(IdentifierKind, &str)],
) -> Result<Vec<bool>, StoreError> {
    Ok(crate::postgres::ingestion::after_locks(connection, workspace_id, &[], &[], identifiers)?.suppressed)
}

/// An erasure's columns as [`from_row`] reads them, with how many identifiers it keeps listed.
const ERASURE_COLUMNS: &str = "SELECT e.id, e.lead_id, e.erased_by, e.erased_at, e.leads, e.events,
        (SELECT count(*) FROM suppressions s WHERE s.erasure_id = e.id), e.lifted_at, e.lifted_by
     FROM erasures e";

fn from_row(row: &postgres::Row) -> Result<Erasure, StoreError> {
    Ok(Erasure {
        id: row.try_get(0)?,
        lead_id: row.try_get(1)?,
        erased_by: row.try_get(2)?,
        erased_at: row.try_get(3)?,
        leads: row.try_get(4)?,
        events: row.try_get(5)?,
        suppressed: row.try_get(6)?,
        lifted_at: row.try_get(7)?,
        lifted_by: row.try_get(8)?,
    })
}

/// The workspace's erasures, newest first.
pub(crate) fn list(connection: &mut Tx<'_>, workspace_id: i64) -> Result<Vec<Erasure>, StoreError> {
    let rows = connection
        .query(&format!("{ERASURE_COLUMNS} WHERE e.workspace_id = $1 ORDER BY e.id DESC"), &[&workspace_id])?;
    rows.iter().map(from_row).collect()
}

/// The latest erasure of a lead number, if it was erased.
pub(crate) fn of_lead(connection: &mut Tx<'_>, workspace_id: i64, lead_id: i64) -> Result<Option<Erasure>, StoreError> {
    connection
        .query_opt(
            &format!("{ERASURE_COLUMNS} WHERE e.workspace_id = $1 AND e.lead_id = $2 ORDER BY e.id DESC LIMIT 1"),
            &[&workspace_id, &lead_id],
        )?
        .map(|row| from_row(&row))
        .transpose()
}

/// The kind of identifier a row of [`erase`]'s identifier query names.
fn kind_named(name: &str) -> Result<IdentifierKind, StoreError> {
    [IdentifierKind::UserId, IdentifierKind::AnonymousId, IdentifierKind::Email]
        .into_iter()
        .find(|kind| kind.as_str() == name)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown identifier kind `{name}`")))
}

/// Erases the lead `lead_id` of the workspace (and the leads merged into it) and lists its
/// identifiers; `None` when the workspace has no such lead (or it is itself merged into another:
/// erase that one). The caller queues the `lead_erased` notifications after it.
pub(crate) fn erase(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    lead_id: i64,
    erased_by: &str,
    now: i64,
) -> Result<Option<Erasure>, StoreError> {
    let found = connection.query_opt(
        "SELECT last_event_id FROM leads WHERE id = $1 AND workspace_id = $2 AND merged_into IS NULL FOR UPDATE",
        &[&lead_id, &workspace_id],
    )?;
    let Some(found) = found else { return Ok(None) };
    let newest_event: Option<i64> = found.try_get(0)?;
    // The lead and every lead merged into it, directly or through another.
    let group: Vec<i64> = connection
        .query(
            "WITH RECURSIVE grouped(id) AS (
                 SELECT $1::BIGINT UNION SELECT l.id FROM leads l JOIN grouped g ON l.merged_into = g.id
             ) SELECT id FROM grouped",
            &[&lead_id],
        )?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;

    // What the suppression list keeps: user ids, e-mails (the column and any `email` trait) and
    // anonymous ids of the whole group, and the e-mails the identify events of the lead's chain
    // name (a merged lead's user id was cleared by the merge; its events still say it). A trait
    // or property that is not text names no e-mail.
    let mut identifiers: BTreeSet<(IdentifierKind, String)> = BTreeSet::new();
    let rows = connection.query(
        &format!(
            "{chain}
             SELECT 'user_id', user_id FROM leads WHERE id = ANY($2) AND user_id IS NOT NULL
             UNION ALL SELECT 'email', email FROM leads WHERE id = ANY($2) AND email IS NOT NULL
             UNION ALL SELECT 'email', a.doc ->> 'email'
                 FROM leads l CROSS JOIN LATERAL (SELECT l.attributes::jsonb AS doc) a
                 WHERE l.id = ANY($2) AND jsonb_typeof(a.doc -> 'email') = 'string'
             UNION ALL SELECT 'anonymous_id', anonymous_id FROM anonymous_ids
                 WHERE workspace_id = $3 AND lead_id = ANY($2)
             UNION ALL SELECT 'email', p.doc ->> 'email'
                 FROM chain c JOIN events e ON e.id = c.id CROSS JOIN LATERAL (SELECT e.properties::jsonb AS doc) p
                 WHERE jsonb_typeof(p.doc -> 'email') = 'string'",
            chain = chain()
        ),
        &[&newest_event, &group, &workspace_id],
    )?;
    for row in &rows {
        let kind: &str = row.try_get(0)?;
        identifiers.insert((kind_named(kind)?, row.try_get(1)?));
    }

    // Events first (linked from the lead's newest), then what refers to the leads, then them.
    // SQLite clears the leads' `last_event_id` in between; not here, where an update writes one
    // more copy of each row, personal data included, for `VACUUM` to reclaim: the rows go anyway.
    let events = connection
        .execute(&format!("{} DELETE FROM events WHERE id IN (SELECT id FROM chain)", chain()), &[&newest_event])?;
    connection.execute(
        "DELETE FROM deliveries WHERE outbox_id IN (
             SELECT o.id FROM outbox o WHERE o.webhook_id IN (SELECT id FROM webhooks WHERE workspace_id = $1)
               AND o.lead_id = ANY($2))",
        &[&workspace_id, &group],
    )?;
    connection.execute(
        "DELETE FROM outbox WHERE webhook_id IN (SELECT id FROM webhooks WHERE workspace_id = $1) AND lead_id = ANY($2)",
        &[&workspace_id, &group],
    )?;
    // The funnel's cohort rows and moves are the erased leads' own: they go with the moves, which
    // only an erasure deletes (the funnel's migration made their tables).
    // Overrides go with them: their reasons and notes are free text that may name the person.
    let tables = ["lead_scores", "score_history", "score_overrides", "stage_history", "mql_cohorts", "outcome_moves"];
    for table in tables {
        connection.execute(&format!("DELETE FROM {table} WHERE lead_id = ANY($1)"), &[&group])?;
    }
    connection
        .execute("DELETE FROM anonymous_ids WHERE workspace_id = $1 AND lead_id = ANY($2)", &[&workspace_id, &group])?;
    // One statement: the merged leads' references to the lead are checked at its end.
    connection.execute("DELETE FROM leads WHERE id = ANY($1)", &[&group])?;

    let (leads, events) = (group.len() as i64, events as i64);
    let last_lead_id = group.iter().max().copied().unwrap_or(lead_id);
    let erasure_id: i64 = connection
        .query_one(
            "INSERT INTO erasures (workspace_id, lead_id, erased_by, erased_at, leads, events, last_lead_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            &[&workspace_id, &lead_id, &erased_by, &now, &leads, &events, &last_lead_id],
        )?
        .try_get(0)?;
    let salt = salt(connection, workspace_id)?;
    let hashed: Vec<(Vec<u8>, &'static str)> = identifiers
        .iter()
        .filter_map(|(kind, value)| hash(&salt, *kind, value).map(|hash| (hash, kind.as_str())))
        .collect();
    // SQLite stores them one by one, each a change, so that an identifier listed in two spellings
    // (an e-mail in capitals and in lower case) counts twice; counted here as there. One row per
    // hash is stored: a statement cannot update the row it inserted.
    let suppressed = hashed.len() as i64;
    let mut distinct = BTreeSet::new();
    let (hashes, kinds): (Vec<&Vec<u8>>, Vec<&str>) =
        hashed.iter().filter(|(hash, _)| distinct.insert(hash)).map(|(hash, kind)| (hash, *kind)).unzip();
    if !hashes.is_empty() {
        connection.execute(
            "INSERT INTO suppressions (workspace_id, hash, kind, erasure_id)
             SELECT $1, listed.hash, listed.kind, $4 FROM unnest($2::BYTEA[], $3::TEXT[]) AS listed(hash, kind)
             ON CONFLICT (workspace_id, hash) DO UPDATE SET erasure_id = excluded.erasure_id",
            &[&workspace_id, &hashes, &kinds, &erasure_id],
        )?;
    }
    Ok(Some(Erasure {
        id: erasure_id,
        lead_id,
        erased_by: erased_by.to_string(),
        erased_at: now,
        leads,
        events,
        suppressed,
        lifted_at: None,
        lifted_by: None,
    }))
}

/// Lifts an erasure's suppression: its identifiers are accepted again. `None` when the
/// workspace has no such erasure; lifting twice changes nothing more.
pub(crate) fn lift(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    erasure_id: i64,
    lifted_by: &str,
    now: i64,
) -> Result<Option<Erasure>, StoreError> {
    let exists = connection.query_opt(
        "SELECT 1 FROM erasures WHERE id = $1 AND workspace_id = $2 FOR UPDATE",
        &[&erasure_id, &workspace_id],
    )?;
    if exists.is_none() {
        return Ok(None);
    }
    connection.execute(
        "DELETE FROM suppressions WHERE workspace_id = $1 AND erasure_id = $2",
        &[&workspace_id, &erasure_id],
    )?;
    connection.execute(
        "UPDATE erasures SET lifted_at = $1, lifted_by = $2 WHERE id = $3 AND lifted_at IS NULL",
        &[&now, &lifted_by, &erasure_id],
    )?;
    connection
        .query_opt(
            &format!("{ERASURE_COLUMNS} WHERE e.id = $1 AND e.workspace_id = $2"),
            &[&erasure_id, &workspace_id],
        )?
        .map(|row| from_row(&row))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::models::tests::workspace;
    use crate::postgres::testing::TestDatabase;

    /// A lead with a score history that changed tiers, an MQL move, an override, an anonymous
    /// id, an anonymous lead merged into it, two events (one an identify naming an e-mail) and a
    /// webhook notification with its delivery; returns (workspace, lead, merged lead). Lead ids
    /// are `first` and `first + 1`.
    fn a_lead(c: &mut Tx<'_>, name: &str, user_id: &str, first: i64) -> (i64, i64, i64) {
        let workspace = workspace(c, name);
        let model: i64 = c
            .query_one(
                "INSERT INTO models (workspace_id, version, source, created_at) VALUES ($1, 1, '', 0) RETURNING id",
                &[&workspace],
            )
            .unwrap()
            .get(0);
        let (id, merged) = (first, first + 1);
        c.execute(
            "INSERT INTO leads (id, workspace_id, user_id, email, attributes, created_at, updated_at, merged_into) VALUES
                 ($1, $3, $4, $5, json_build_object('name', 'Ada', 'email', $6::TEXT)::TEXT, 0, 0, NULL),
                 ($2, $3, NULL, $7, json_build_object('email', 12)::TEXT, 0, 0, $1)",
            &[
                &id,
                &merged,
                &workspace,
                &user_id,
                &format!("{user_id}@example.org"),
                &format!("{}@EXAMPLE.org", user_id.to_uppercase()),
                &format!("{user_id}.old@example.org"),
            ],
        )
        .unwrap();
        let newest: i64 = c
            .query_one(
                "WITH older AS (
                     INSERT INTO events (workspace_id, lead_id, message_id, type, at, received_at, properties)
                     VALUES ($1, $2, $3::TEXT || '-1', 'visit', 0, 0, '{}') RETURNING id
                 )
                 INSERT INTO events (workspace_id, lead_id, message_id, type, at, received_at, properties, previous_id)
                 SELECT $1, $2, $3::TEXT || '-2', 'identify', 1, 0, json_build_object('email', $3::TEXT || '@work.example')::TEXT, id
                 FROM older RETURNING id",
                &[&workspace, &id, &user_id],
            )
            .unwrap()
            .get(0);
        c.execute("UPDATE leads SET last_event_id = $1, stage = 'mql' WHERE id = $2", &[&newest, &id]).unwrap();
        c.execute(
            "INSERT INTO anonymous_ids (workspace_id, anonymous_id, lead_id) VALUES ($1, $2, $3)",
            &[&workspace, &format!("anon-{user_id}"), &id],
        )
        .unwrap();
        let history: i64 = c
            .query_one(
                "INSERT INTO score_history (lead_id, score, value, tier, previous_tier, model_id, at, cause)
                 VALUES ($1, 'fit', 1, 'hot', 'cold', $2, 1, 'event') RETURNING id",
                &[&id, &model],
            )
            .unwrap()
            .get(0);
        c.execute(
            "INSERT INTO lead_scores (lead_id, score, value, tier, model_id, evaluated_at, history_id)
             VALUES ($1, 'fit', 1, 'hot', $2, 0, $3)",
            &[&id, &model, &history],
        )
        .unwrap();
        c.execute(
            "INSERT INTO stage_history (lead_id, workspace_id, stage, previous, at, actor) VALUES ($1, $2, 'mql', 'lead', 1, 'score')",
            &[&id, &workspace],
        )
        .unwrap();
        c.execute(
            "INSERT INTO score_overrides (workspace_id, lead_id, score, tier, reason, set_by, set_at)
             VALUES ($1, $2, 'fit', 'hot', 'met Ada at a fair', 'user ana@example.com', 0)",
            &[&workspace, &id],
        )
        .unwrap();
        let hook: i64 = c
            .query_one(
                "INSERT INTO webhooks (workspace_id, url, secret, events, created_at) VALUES ($1, 'http://x', 's', '[]', 0)
                 RETURNING id",
                &[&workspace],
            )
            .unwrap()
            .get(0);
        let outbox: i64 = c
            .query_one(
                "INSERT INTO outbox (webhook_id, lead_id, event, data, created_at, next_attempt_at)
                 VALUES ($1, $2, 'tier_changed', '{}', 0, 0) RETURNING id",
                &[&hook, &id],
            )
            .unwrap()
            .get(0);
        c.execute("INSERT INTO deliveries (outbox_id, at, status, duration_ms) VALUES ($1, 0, 200, 1)", &[&outbox])
            .unwrap();
        (workspace, id, merged)
    }

    fn count(c: &mut Tx<'_>, sql: &str) -> i64 {
        c.query_one(sql, &[]).unwrap().get(0)
    }

    #[test]
    fn an_erasure_deletes_the_lead_and_its_merged_leads_and_keeps_the_others() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut c = client.transaction();
        let (workspace, gone, merged) = a_lead(&mut c, "acme", "ada", 1);
        let (_, kept, _) = a_lead(&mut c, "acme2", "bob", 3);
        let erasure = erase(&mut c, workspace, gone, "test", 5).unwrap().expect("the lead exists");
        assert_eq!((erasure.leads, erasure.events), (2, 2));
        // The user id, the anonymous id, and four e-mails: the column, the trait (the same in
        // capitals, counted as SQLite counts it), the merged lead's, the identify event's.
        assert_eq!(erasure.suppressed, 6);
        assert_eq!(count(&mut c, "SELECT count(*) FROM suppressions"), 5, "one row per hash");
        for table in [
            "leads",
            "events",
            "lead_scores",
            "score_history",
            "stage_history",
            "score_overrides",
            "anonymous_ids",
            "outbox",
        ] {
            let column = if table == "leads" { "id" } else { "lead_id" };
            let left = count(&mut c, &format!("SELECT count(*) FROM {table} WHERE {column} IN ({gone}, {merged})"));
            assert_eq!(left, 0, "{table}");
            let others = count(&mut c, &format!("SELECT count(*) FROM {table} WHERE {column} = {kept}"));
            assert!(others > 0, "{table} keeps the other lead's rows");
        }
        assert_eq!(count(&mut c, "SELECT count(*) FROM deliveries"), 1, "the other lead's delivery stays");
        let recorded = of_lead(&mut c, workspace, gone).unwrap().unwrap();
        assert_eq!((recorded.id, recorded.suppressed, recorded.leads), (erasure.id, 5, 2));
        let last: i64 = c.query_one("SELECT last_lead_id FROM erasures", &[]).unwrap().get(0);
        assert_eq!(last, merged);
        // An erased lead is not erased again, nor another workspace's lead.
        assert_eq!(erase(&mut c, workspace, gone, "test", 6).unwrap(), None);
        assert_eq!(erase(&mut c, workspace, kept, "test", 6).unwrap(), None, "another workspace's lead");
        assert_eq!(list(&mut c, workspace).unwrap(), [recorded]);
    }

    #[test]
    fn a_merged_lead_is_not_erased_on_its_own() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut c = client.transaction();
        let (workspace, _, merged) = a_lead(&mut c, "acme", "ada", 1);
        assert_eq!(erase(&mut c, workspace, merged, "test", 5).unwrap(), None);
        assert_eq!(count(&mut c, "SELECT count(*) FROM leads"), 2);
    }

    #[test]
    fn suppression_matches_the_erased_identifiers_only_in_their_workspace_until_lifted() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut c = client.transaction();
        let (workspace, gone, _) = a_lead(&mut c, "acme", "ada", 1);
        let (other, _, _) = a_lead(&mut c, "globex", "ada", 3);
        let asked = [
            (IdentifierKind::UserId, "ada"),
            (IdentifierKind::Email, "  ADA@Example.org "),
            (IdentifierKind::AnonymousId, "anon-ada"),
            (IdentifierKind::Email, "ada.old@example.org"),
            (IdentifierKind::AnonymousId, "ada"),
            (IdentifierKind::UserId, "someone"),
            (IdentifierKind::UserId, ""),
            (IdentifierKind::Email, "ada@work.example"),
        ];
        assert_eq!(suppressed(&mut c, workspace, &asked).unwrap(), [false; 8], "nothing erased yet");
        let erasure = erase(&mut c, workspace, gone, "test", 5).unwrap().unwrap();
        assert_eq!(suppressed(&mut c, workspace, &asked).unwrap(), [true, true, true, true, false, false, false, true]);
        assert_eq!(suppressed(&mut c, other, &asked).unwrap(), [false; 8], "another workspace's ada is not erased");
        assert_eq!(suppressed(&mut c, workspace, &[]).unwrap(), Vec::<bool>::new());
        let stored: Vec<u8> = c.query_one("SELECT hash FROM suppressions LIMIT 1", &[]).unwrap().get(0);
        assert_eq!(stored.len(), 32, "a hash, not a value");
        let lifted = lift(&mut c, workspace, erasure.id, "admin", 9).unwrap().unwrap();
        assert_eq!((lifted.suppressed, lifted.lifted_at, lifted.lifted_by.as_deref()), (0, Some(9), Some("admin")));
        let again = lift(&mut c, workspace, erasure.id, "someone else", 10).unwrap().unwrap();
        assert_eq!((again.lifted_at, again.lifted_by.as_deref()), (Some(9), Some("admin")), "the first lifting stays");
        assert_eq!(suppressed(&mut c, workspace, &asked).unwrap(), [false; 8]);
        assert_eq!(lift(&mut c, other, erasure.id, "admin", 9).unwrap(), None, "another workspace's erasure");
    }

    #[test]
    fn two_erasures_in_a_workspace_share_its_salt() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut c = client.transaction();
        let (workspace, first, _) = a_lead(&mut c, "acme", "ada", 1);
        c.execute(
            "INSERT INTO leads (id, workspace_id, user_id, created_at, updated_at) VALUES (10, $1, 'bob', 0, 0)",
            &[&workspace],
        )
        .unwrap();
        erase(&mut c, workspace, first, "test", 5).unwrap().unwrap();
        erase(&mut c, workspace, 10, "test", 6).unwrap().unwrap();
        assert_eq!(count(&mut c, "SELECT count(*) FROM erasure_salts"), 1);
        let asked = [(IdentifierKind::UserId, "ada"), (IdentifierKind::UserId, "bob")];
        assert_eq!(suppressed(&mut c, workspace, &asked).unwrap(), [true, true]);
        let listed: Vec<i64> = list(&mut c, workspace).unwrap().iter().map(|e| e.lead_id).collect();
        assert_eq!(listed, [10, first], "newest first");
    }
}
