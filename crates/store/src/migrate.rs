//! Versioned schema migrations, applied in order at open, each in its own transaction.
//!
//! Written here rather than taken from a migration crate: the candidates pin older rusqlite
//! versions (two copies of SQLite cannot be linked into one binary) and pull in far more than
//! this needs. A migration that was applied and then edited is refused by its checksum.

use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};

use crate::StoreError;

/// What a migration does after its SQL, in the same transaction: what SQL cannot do.
type Step = fn(&Connection) -> Result<(), StoreError>;

/// A schema change.
struct Migration {
    version: u32,
    name: &'static str,
    sql: &'static str,
    then: Option<Step>,
}

const fn sql(version: u32, name: &'static str, sql: &'static str) -> Migration {
    Migration { version, name, sql, then: None }
}

/// In order. Never edit an entry once released: add a new one.
const MIGRATIONS: &[Migration] = &[
    sql(1, "init", include_str!("migrations/0001_init.sql")),
    sql(2, "webhooks", include_str!("migrations/0002_webhooks.sql")),
    sql(3, "drop_stored_explanations", include_str!("migrations/0003_drop_stored_explanations.sql")),
    sql(4, "predictive_models", include_str!("migrations/0004_predictive_models.sql")),
    sql(5, "lead_scores_by_lead", include_str!("migrations/0005_lead_scores_by_lead.sql")),
    sql(6, "lead_chains", include_str!("migrations/0006_lead_chains.sql")),
    Migration {
        version: 7,
        name: "message_ids",
        sql: include_str!("migrations/0007_message_ids.sql"),
        then: Some(crate::message_ids::index_stored_events),
    },
    sql(8, "activations_and_rescorings", include_str!("migrations/0008_activations_and_rescorings.sql")),
    sql(9, "outbox_pending_by_webhook", include_str!("migrations/0009_outbox_pending_by_webhook.sql")),
    sql(10, "console_accounts", include_str!("migrations/0010_console_accounts.sql")),
    sql(11, "lead_search", include_str!("migrations/0011_lead_search.sql")),
    sql(12, "funnel_reports", include_str!("migrations/0012_funnel_reports.sql")),
    sql(13, "model_uploaders", include_str!("migrations/0013_model_uploaders.sql")),
    sql(14, "key_names", include_str!("migrations/0014_key_names.sql")),
    sql(15, "funnel_counts", include_str!("migrations/0015_funnel_counts.sql")),
    sql(16, "funnel_cohorts", include_str!("migrations/0016_funnel_cohorts.sql")),
    sql(17, "browser_keys", include_str!("migrations/0017_browser_keys.sql")),
    sql(18, "erasure", include_str!("migrations/0018_erasure.sql")),
    sql(19, "score_overrides", include_str!("migrations/0019_score_overrides.sql")),
    sql(20, "history_terms", include_str!("migrations/0020_history_terms.sql")),
    sql(21, "outbox_claims", include_str!("migrations/0021_outbox_claims.sql")),
    sql(22, "cache_versions", include_str!("migrations/0022_cache_versions.sql")),
    sql(23, "rescoring_ranges", include_str!("migrations/0023_rescoring_ranges.sql")),
];

/// The migration from which deleted content is overwritten (`secure_delete`, see
/// [`crate::erasure`]): a database written before it may still hold deleted rows in its free
/// pages, so it is rebuilt (`VACUUM`) once, right after it is migrated past it.
const ERASURE: u32 = 18;

/// Applies every migration the database has not had yet.
pub fn apply(connection: &mut Connection) -> Result<(), StoreError> {
    apply_through(connection, u32::MAX)
}

/// Applies the migrations up to version `last` that the database has not had yet.
fn apply_through(connection: &mut Connection, last: u32) -> Result<(), StoreError> {
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at INTEGER NOT NULL
        )",
    )?;
    let applied: Vec<(u32, String)> = {
        let mut statement = connection.prepare("SELECT version, checksum FROM schema_migrations ORDER BY version")?;
        statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?.collect::<Result<_, _>>()?
    };
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    if let Some((found, _)) = applied.iter().find(|(version, _)| *version > known) {
        return Err(StoreError::TooNew { found: *found, known });
    }
    let written_before_erasure = !applied.is_empty() && applied.iter().all(|(version, _)| *version < ERASURE);
    for &Migration { version, name, sql, then } in MIGRATIONS.iter().filter(|m| m.version <= last) {
        let checksum = hex::encode(Sha256::digest(sql.as_bytes()));
        match applied.iter().find(|(v, _)| *v == version) {
            Some((_, stored)) if *stored == checksum => continue,
            Some(_) => return Err(StoreError::MigrationChanged { version, name: name.to_string() }),
            None => {}
        }
        let transaction = connection.transaction()?;
        transaction.execute_batch(sql)?;
        if let Some(then) = then {
            then(&transaction)?;
        }
        transaction.execute(
            "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?1, ?2, ?3, ?4)",
            params![version, name, checksum, crate::now_ms()],
        )?;
        transaction.commit()?;
    }
    if written_before_erasure && last >= ERASURE {
        forget_deleted_content(connection);
    }
    Ok(())
}

/// Rewrites the database without its free pages, then empties the WAL: what was deleted before
/// deleted content was overwritten leaves the files. It needs as much free disk as the database
/// takes; if it fails the service still starts, and says how to do it by hand.
fn forget_deleted_content(connection: &Connection) {
    let started = std::time::Instant::now();
    let done = connection
        .execute_batch("VACUUM")
        .and_then(|()| connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get::<_, i64>(0)));
    match done {
        Ok(_) => tracing::info!(
            seconds = started.elapsed().as_secs_f64(),
            "rewrote the database once so that no deleted content is left in it"
        ),
        Err(error) => tracing::warn!(
            %error,
            "could not rewrite the database to clear content deleted before this version: erased leads may still \
             be in its free pages; stop the service and run `sqlite3 DIR/leadscore.db VACUUM`"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_written_before_secure_deletion_is_rewritten_without_what_it_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leadscore.db");
        let mut connection = Connection::open(&path).unwrap();
        connection.pragma_update(None, "journal_mode", "WAL").unwrap();
        apply_through(&mut connection, ERASURE - 1).unwrap();
        connection
            .execute_batch(
                "INSERT INTO workspaces (id, name, created_at) VALUES (1, 'w', 0);
                 INSERT INTO leads (id, workspace_id, email, created_at, updated_at)
                     VALUES (1, 1, 'gone.9d2f@example.org', 0, 0);",
            )
            .unwrap();
        connection.execute("DELETE FROM leads WHERE id = 1", []).unwrap();
        connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
        let holds = |needle: &[u8]| {
            std::fs::read_dir(dir.path())
                .unwrap()
                .flatten()
                .any(|file| std::fs::read(file.path()).unwrap().windows(needle.len()).any(|w| w == needle))
        };
        assert!(holds(b"gone.9d2f@example.org"), "deleted without secure_delete, the row stays in a free page");
        apply(&mut connection).unwrap();
        assert!(!holds(b"gone.9d2f@example.org"), "rewritten once when migrated past the erasure");
    }

    /// The tables that grow with every event are appended to, never indexed by lead: an index by
    /// lead inserts at a random place of the index for every event (about one page of WAL each).
    /// A lead's rows are found by walking their links instead.
    #[test]
    fn no_table_that_grows_with_every_event_is_indexed_by_lead() {
        let mut connection = Connection::open_in_memory().unwrap();
        apply(&mut connection).unwrap();
        for table in ["events", "score_history"] {
            let mut indexes = connection.prepare(&format!("PRAGMA index_list({table})")).unwrap();
            let names: Vec<String> = indexes.query_map([], |row| row.get(1)).unwrap().map(Result::unwrap).collect();
            for index in names {
                let mut columns = connection.prepare(&format!("PRAGMA index_info({index})")).unwrap();
                let columns: Vec<String> =
                    columns.query_map([], |row| row.get(2)).unwrap().map(Result::unwrap).collect();
                assert!(!columns.iter().any(|c| c == "lead_id"), "{table} is indexed by lead: {index} on {columns:?}");
            }
        }
    }

    #[test]
    fn applies_once_and_refuses_edited_migrations() {
        let mut connection = Connection::open_in_memory().unwrap();
        apply(&mut connection).unwrap();
        apply(&mut connection).unwrap();
        let n: i64 = connection.query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0)).unwrap();
        assert_eq!(n as usize, MIGRATIONS.len());
        connection.execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1", []).unwrap();
        assert!(matches!(apply(&mut connection), Err(StoreError::MigrationChanged { version: 1, .. })));
        connection.execute("UPDATE schema_migrations SET version = 999 WHERE version = 1", []).unwrap();
        assert!(matches!(apply(&mut connection), Err(StoreError::TooNew { found: 999, .. })));
    }

    #[test]
    fn clustering_the_scores_by_lead_keeps_them() {
        let mut connection = Connection::open_in_memory().unwrap();
        apply_through(&mut connection, 4).unwrap();
        connection
            .execute_batch(
                "INSERT INTO workspaces (id, name, created_at) VALUES (1, 'w', 0);
                 INSERT INTO leads (id, workspace_id, created_at, updated_at) VALUES (1, 1, 0, 0), (2, 1, 0, 0);
                 INSERT INTO lead_scores (lead_id, score, value, tier, model_id, evaluated_at)
                     VALUES (1, 'fit', 10.5, 'warm', 1, 5), (1, 'behaviour', 3, NULL, 1, 5), (2, 'fit', 0, 'cold', 1, 6);",
            )
            .unwrap();
        apply(&mut connection).unwrap();
        let rows: Vec<(i64, String, f64, Option<String>)> = connection
            .prepare("SELECT lead_id, score, value, tier FROM lead_scores ORDER BY lead_id, score")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                (1, "behaviour".to_string(), 3.0, None),
                (1, "fit".to_string(), 10.5, Some("warm".to_string())),
                (2, "fit".to_string(), 0.0, Some("cold".to_string())),
            ]
        );
        let sql: String =
            connection.query_row("SELECT sql FROM sqlite_schema WHERE name = 'lead_scores'", [], |r| r.get(0)).unwrap();
        assert!(sql.contains("WITHOUT ROWID"), "{sql}");
        let indexes: i64 = connection
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = 'lead_scores_rank'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 1);
    }

    /// Migration 6 replaces the indexes by lead with links: every lead still finds exactly its
    /// events (also those a merge moved to it) and every score its history, newest first.
    #[test]
    fn linking_events_and_history_keeps_what_each_lead_finds() {
        let mut connection = Connection::open_in_memory().unwrap();
        apply_through(&mut connection, 5).unwrap();
        // Lead 3 was merged into lead 1 before the migration: its event 3 now belongs to lead 1.
        connection
            .execute_batch(
                "INSERT INTO workspaces (id, name, created_at) VALUES (1, 'w', 0);
                 INSERT INTO leads (id, workspace_id, created_at, updated_at) VALUES (1, 1, 0, 0), (2, 1, 0, 0);
                 INSERT INTO leads (id, workspace_id, created_at, updated_at, merged_into) VALUES (3, 1, 0, 0, 1);
                 INSERT INTO events (id, workspace_id, lead_id, message_id, type, at, received_at) VALUES
                     (1, 1, 1, 'a', 'visit', 30, 30), (2, 1, 2, 'b', 'visit', 10, 10), (3, 1, 1, 'c', 'demo', 5, 5),
                     (4, 1, 1, 'd', 'visit', 20, 40);
                 INSERT INTO lead_scores (lead_id, score, value, tier, model_id, evaluated_at)
                     VALUES (1, 'fit', 10, 'warm', 1, 5), (1, 'behaviour', 3, NULL, 1, 5), (2, 'fit', 0, 'cold', 1, 6);
                 INSERT INTO score_history (id, lead_id, score, value, tier, previous_tier, model_id, at, cause) VALUES
                     (1, 1, 'fit', 5, 'cold', NULL, 1, 1, 'event'), (2, 2, 'fit', 0, 'cold', NULL, 1, 2, 'event'),
                     (3, 1, 'behaviour', 3, NULL, NULL, 1, 3, 'event'), (4, 1, 'fit', 10, 'warm', 'cold', 1, 4, 'event');",
            )
            .unwrap();
        apply(&mut connection).unwrap();
        let lead = |id| crate::leads::by_id(&connection, 1, id).unwrap().unwrap();
        let events = |id| -> Vec<String> {
            crate::events::of_lead(&connection, &lead(id)).unwrap().into_iter().map(|e| e.message_id).collect()
        };
        assert_eq!(events(1), ["c", "d", "a"]);
        assert_eq!(events(2), ["b"]);
        let history = |id, limit| -> Vec<(String, f64)> {
            crate::scores::history(&connection, id, limit).unwrap().into_iter().map(|h| (h.score, h.value)).collect()
        };
        assert_eq!(
            history(1, 10),
            [("fit".to_string(), 10.0), ("behaviour".to_string(), 3.0), ("fit".to_string(), 5.0)]
        );
        assert_eq!(history(1, 2), [("fit".to_string(), 10.0), ("behaviour".to_string(), 3.0)]);
        assert_eq!(history(2, 10), [("fit".to_string(), 0.0)]);
        let indexes: i64 = connection
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name IN ('events_lead', 'score_history_lead')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 0);
    }

    /// Migration 7 moves the message ids out of `events` into their own index, events and
    /// their links unchanged.
    #[test]
    fn moving_message_ids_to_their_own_index_keeps_events_and_ids() {
        let mut connection = Connection::open_in_memory().unwrap();
        apply_through(&mut connection, 6).unwrap();
        connection
            .execute_batch(
                "INSERT INTO workspaces (id, name, created_at) VALUES (1, 'w', 0), (2, 'v', 0);
                 INSERT INTO leads (id, workspace_id, created_at, updated_at, last_event_id) VALUES (1, 1, 0, 0, 3);
                 INSERT INTO leads (id, workspace_id, created_at, updated_at) VALUES (2, 2, 0, 0);
                 INSERT INTO events (id, workspace_id, lead_id, message_id, type, at, received_at, previous_id) VALUES
                     (1, 1, 1, 'a', 'visit', 30, 30, NULL), (2, 2, 2, 'a', 'visit', 10, 10, NULL),
                     (3, 1, 1, 'b', 'demo', 5, 5, 1);",
            )
            .unwrap();
        apply(&mut connection).unwrap();
        let ids: Vec<(i64, String)> = connection
            .prepare("SELECT workspace_id, message_id FROM message_ids ORDER BY workspace_id, message_id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(ids, [(1, "a".to_string()), (1, "b".to_string()), (2, "a".to_string())]);
        let hashed_alike: bool = connection
            .query_row("SELECT hash FROM message_ids WHERE workspace_id = 2 AND message_id = 'a'", [], |r| {
                Ok(r.get::<_, i64>(0)? == crate::message_ids::hash(2, "a"))
            })
            .unwrap();
        assert!(hashed_alike);
        let through: i64 = connection.query_row("SELECT through FROM message_ids_merged", [], |r| r.get(0)).unwrap();
        assert_eq!(through, 3);
        let lead = crate::leads::by_id(&connection, 1, 1).unwrap().unwrap();
        let events: Vec<String> =
            crate::events::of_lead(&connection, &lead).unwrap().into_iter().map(|e| e.message_id).collect();
        assert_eq!(events, ["b", "a"]);
        let unique: i64 = connection
            .query_row("SELECT count(*) FROM sqlite_schema WHERE tbl_name = 'events' AND type = 'index'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(unique, 0);
    }

    /// Migration 8 stacks the versions activated before it so that the active one is on top:
    /// a rollback then goes to the version activated last before it.
    #[test]
    fn the_versions_activated_before_the_stack_existed_are_stacked_with_the_active_on_top() {
        let mut connection = Connection::open_in_memory().unwrap();
        apply_through(&mut connection, 7).unwrap();
        // Version 1 then 3 were activated, then 1 again (a rollback by the old rule); 2 never.
        connection
            .execute_batch(
                "INSERT INTO workspaces (id, name, created_at) VALUES (1, 'w', 0);
                 INSERT INTO models (id, workspace_id, version, source, created_at, activated_at, predictors)
                     VALUES (1, 1, 1, '', 0, 300, '{}'), (2, 1, 2, '', 0, NULL, '{}'), (3, 1, 3, '', 0, 200, '{}');
                 INSERT INTO active_models (workspace_id, model_id) VALUES (1, 1);",
            )
            .unwrap();
        apply(&mut connection).unwrap();
        let stack = crate::models::stack(&connection, 1).unwrap();
        assert_eq!(stack.iter().map(|a| a.version).collect::<Vec<_>>(), [3, 1]);
        let rolled = crate::models::rollback(&connection, 1, crate::now_ms()).unwrap();
        assert_eq!((rolled.undone.version, rolled.restored.version), (1, 3));
        assert!(crate::models::rollback(&connection, 1, crate::now_ms()).is_err(), "nothing below version 3");
    }

    /// Migration 12 gives each stage move its lead's workspace, which the funnel report reads
    /// moves by.
    #[test]
    fn stage_moves_take_their_leads_workspace() {
        let mut connection = Connection::open_in_memory().unwrap();
        apply_through(&mut connection, 10).unwrap();
        connection
            .execute_batch(
                "INSERT INTO workspaces (id, name, created_at) VALUES (1, 'w', 0), (2, 'v', 0);
                 INSERT INTO leads (id, workspace_id, created_at, updated_at) VALUES (1, 1, 0, 0), (2, 2, 0, 0);
                 INSERT INTO stage_history (lead_id, stage, previous, at, actor) VALUES
                     (1, 'mql', 'lead', 5, 'leadscore'), (2, 'mql', 'lead', 6, 'leadscore'), (1, 'sal', 'mql', 7, 'ana');",
            )
            .unwrap();
        apply(&mut connection).unwrap();
        let rows: Vec<(i64, i64, String)> = connection
            .prepare("SELECT lead_id, workspace_id, stage FROM stage_history ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows, [(1, 1, "mql".to_string()), (2, 2, "mql".to_string()), (1, 1, "sal".to_string())]);
    }

    /// Migration 15 fills the counts and the tiers at MQL the funnel report reads from the rows
    /// already stored: they equal a recount of them, and the writes after them keep them so.
    #[test]
    fn the_funnel_counts_and_tiers_at_mql_are_filled_from_the_stored_rows() {
        let mut connection = Connection::open_in_memory().unwrap();
        apply_through(&mut connection, 14).unwrap();
        let week = crate::funnel::WEEK;
        connection
            .execute_batch(&format!(
                "INSERT INTO workspaces (id, name, created_at) VALUES (1, 'w', 0), (2, 'v', 0);
                 INSERT INTO models (id, workspace_id, version, source, created_at) VALUES (1, 1, 1, '', 0), (2, 1, 2, '', 0), (3, 2, 1, '', 0);
                 INSERT INTO leads (id, workspace_id, created_at, updated_at, stage) VALUES
                     (1, 1, 0, 0, 'customer'), (2, 1, 0, 0, 'lead'), (3, 1, 0, 0, 'mql'), (4, 2, 0, 0, 'customer');
                 INSERT INTO leads (id, workspace_id, created_at, updated_at, stage, merged_into) VALUES (5, 1, 0, 0, 'mql', 1);
                 INSERT INTO score_history (id, lead_id, score, value, tier, previous_tier, model_id, at, cause, previous_id) VALUES
                     (1, 1, 'fit', 10, 'cold', NULL, 1, {a}, 'event', NULL),
                     (2, 1, 'fit', 80, 'hot', 'cold', 1, {b}, 'event', 1),
                     (3, 1, 'fit', 85, 'hot', 'hot', 2, {c}, 'model v2', 2),
                     (4, 2, 'fit', 5, NULL, NULL, 1, {a}, 'event', NULL),
                     (5, 3, 'fit', 50, 'warm', NULL, 2, {c}, 'event', NULL),
                     (6, 3, 'intent', 9, 'cold', NULL, 2, {c}, 'event', NULL),
                     (7, 4, 'fit', 90, 'hot', NULL, 3, {b}, 'event', NULL),
                     (8, 5, 'fit', 70, 'hot', NULL, 1, {a}, 'event', NULL);
                 INSERT INTO lead_scores (lead_id, score, value, tier, model_id, evaluated_at, history_id) VALUES
                     (1, 'fit', 85, 'hot', 2, {c}, 3), (2, 'fit', 5, NULL, 1, {a}, 4), (3, 'fit', 50, 'warm', 2, {c}, 5),
                     (3, 'intent', 9, 'cold', 2, {c}, 6), (4, 'fit', 90, 'hot', 3, {b}, 7);
                 INSERT INTO stage_history (lead_id, workspace_id, stage, previous, at, actor) VALUES
                     (1, 1, 'mql', 'lead', {b} + 1, 'leadscore'), (1, 1, 'customer', 'mql', {c}, 'ana'),
                     (3, 1, 'mql', 'lead', {c}, 'leadscore'),
                     (4, 2, 'mql', 'lead', {a}, 'leadscore'), (4, 2, 'customer', 'mql', {c}, 'ana');",
                a = 2900 * week + 5,
                b = 2901 * week + 3,
                c = 2903 * week,
            ))
            .unwrap();
        apply(&mut connection).unwrap();
        crate::funnel::recount::assert_kept_counts_equal(&connection);
        assert_eq!(
            crate::funnel::tier_counts(&connection, 1, "fit").unwrap(),
            [(None, 1), (Some("hot".to_string()), 1), (Some("warm".to_string()), 1)]
        );
        assert_eq!(
            crate::funnel::stage_counts(&connection, 1).unwrap(),
            [("customer".to_string(), 1), ("lead".to_string(), 1), ("mql".to_string(), 1)],
            "the merged lead is not counted"
        );
        // Lead 1 was hot when it became MQL; lead 4 had no score then: counted by its tier now.
        let outcomes = |workspace_id| crate::funnel::outcomes_by_tier(&connection, workspace_id, "fit", 0, i64::MAX);
        let won =
            |tier: &str, at_mql| crate::funnel::OutcomesByTier { tier: Some(tier.into()), at_mql, won: 1, lost: 0 };
        assert_eq!((outcomes(1).unwrap(), outcomes(2).unwrap()), (vec![won("hot", true)], vec![won("hot", false)]));
        connection
            .execute_batch(
                "UPDATE leads SET stage = 'sal' WHERE id = 3;
                 UPDATE leads SET merged_into = 1 WHERE id = 2;
                 DELETE FROM lead_scores WHERE lead_id = 2;
                 UPDATE lead_scores SET tier = 'warm' WHERE lead_id = 1 AND score = 'fit';",
            )
            .unwrap();
        crate::funnel::recount::assert_kept_counts_equal(&connection);
    }

    /// Migration 16 fills the cohorts and the outcome moves the funnel report reads from the
    /// moves already stored (MQL entered twice, moves stored out of time order, a merged lead):
    /// they equal a walk of the moves, and the moves after them keep them so.
    #[test]
    fn the_funnel_cohorts_are_filled_from_the_stored_moves() {
        let mut connection = Connection::open_in_memory().unwrap();
        apply_through(&mut connection, 15).unwrap();
        connection
            .execute_batch(
                "INSERT INTO workspaces (id, name, created_at) VALUES (1, 'w', 0), (2, 'v', 0);
                 INSERT INTO models (id, workspace_id, version, source, created_at) VALUES (1, 1, 1, '', 0), (2, 2, 1, '', 0);
                 INSERT INTO leads (id, workspace_id, created_at, updated_at, stage) VALUES
                     (1, 1, 0, 0, 'customer'), (2, 1, 0, 0, 'lost'), (3, 2, 0, 0, 'customer');
                 INSERT INTO leads (id, workspace_id, created_at, updated_at, stage, merged_into) VALUES (4, 1, 0, 0, 'customer', 1);
                 INSERT INTO score_history (id, lead_id, score, value, tier, previous_tier, model_id, at, cause, previous_id) VALUES
                     (1, 1, 'fit', 80, 'hot', NULL, 1, 0, 'event', NULL), (2, 2, 'fit', 10, 'cold', NULL, 1, 0, 'event', NULL),
                     (3, 3, 'fit', 50, 'warm', NULL, 2, 0, 'event', NULL);
                 INSERT INTO lead_scores (lead_id, score, value, tier, model_id, evaluated_at, history_id) VALUES
                     (1, 'fit', 80, 'hot', 1, 0, 1), (2, 'fit', 10, 'cold', 1, 0, 2), (3, 'fit', 50, 'warm', 2, 0, 3);
                 INSERT INTO stage_history (lead_id, workspace_id, stage, previous, at, actor) VALUES
                     (1, 1, 'mql', 'lead', 100, 'leadscore'), (1, 1, 'customer', 'mql', 500, 'ana'),
                     (1, 1, 'sal', 'mql', 300, 'ana'), (1, 1, 'mql', 'sal', 400, 'ana'),
                     (1, 1, 'mql', 'sal', 400, 'ana'), (1, 1, 'customer', 'mql', 200, 'ana'),
                     (2, 1, 'lost', 'lead', 300, 'ana'), (2, 1, 'mql', 'lost', 200, 'leadscore'),
                     (2, 1, 'lost', 'mql', 300, 'ana'), (3, 2, 'mql', 'lead', 100, 'leadscore'),
                     (3, 2, 'customer', 'mql', 150, 'ana'), (4, 1, 'mql', 'lead', 100, 'leadscore'),
                     (4, 1, 'customer', 'mql', 120, 'ana');
                 -- In 2026, after the epoch's first Monday that weeks are counted from.
                 UPDATE stage_history SET at = at + 1793577600000;",
            )
            .unwrap();
        let t = 1_793_577_600_000;
        apply(&mut connection).unwrap();
        crate::funnel::recount::assert_kept_counts_equal(&connection);
        let cohort = crate::funnel::mql_journeys(&connection, 1, t, t + 1000, t + 1000).unwrap();
        let firsts: Vec<(i64, i64, Option<i64>)> = cohort.iter().map(|j| (j.lead_id, j.mql, j.customer)).collect();
        assert_eq!(firsts, [(1, t + 100, Some(t + 200)), (2, t + 200, None), (4, t + 100, Some(t + 120))]);
        let change = |stage: &str, at| crate::stages::StageChange {
            stage: stage.to_string(),
            previous: None,
            at,
            actor: "ana".to_string(),
            reason: None,
        };
        crate::stages::set(&connection, 2, &change("mql", t + 250)).unwrap();
        crate::stages::set(&connection, 1, &change("lost", t + 600)).unwrap();
        crate::stages::set(&connection, 2, &change("customer", t + 50)).unwrap();
        crate::funnel::recount::assert_kept_counts_equal(&connection);
    }

    /// Migration 21 leaves the notifications pending before it unclaimed: the first claim after
    /// it takes them, and no other until their lease ends.
    #[test]
    fn notifications_pending_before_claims_are_claimable() {
        let mut connection = Connection::open_in_memory().unwrap();
        apply_through(&mut connection, 20).unwrap();
        connection
            .execute_batch(
                "INSERT INTO workspaces (id, name, created_at) VALUES (1, 'w', 0);
                 INSERT INTO webhooks (id, workspace_id, url, secret, events, created_at)
                     VALUES (1, 1, 'http://example.com', 'whsec_x', '[]', 0);
                 INSERT INTO outbox (id, webhook_id, lead_id, event, data, created_at, next_attempt_at) VALUES
                     (1, 1, 7, 'tier_changed', '{}', 10, 10), (2, 1, 7, 'became_mql', '{}', 20, 20);",
            )
            .unwrap();
        apply(&mut connection).unwrap();
        let at =
            |now| crate::webhooks::ClaimRequest { per_webhook: 8, sending: Vec::new(), limit: 8, now, lease_ms: 100 };
        let claimed = |now| -> Vec<i64> {
            crate::webhooks::claim(&connection, &at(now)).unwrap().notifications.iter().map(|p| p.id).collect()
        };
        assert_eq!(claimed(30), [1], "the lead's first");
        assert_eq!(claimed(129), [] as [i64; 0], "claimed until 130");
        assert_eq!(claimed(130), [1]);
    }

    /// Migration 22 starts the cache version over the keys made before it, and from then on
    /// every change to a key moves it.
    #[test]
    fn the_cache_version_starts_over_existing_keys_and_moves_with_their_changes() {
        let mut connection = Connection::open_in_memory().unwrap();
        apply_through(&mut connection, 21).unwrap();
        connection
            .execute_batch(
                "INSERT INTO workspaces (id, name, created_at) VALUES (1, 'w', 0);
                 INSERT INTO api_keys (id, workspace_id, prefix, secret_hash, scope, created_at)
                     VALUES (1, 1, 'lsk_12345678', x'00', 'read', 0);",
            )
            .unwrap();
        apply(&mut connection).unwrap();
        assert_eq!(crate::cache_versions::read(&connection).unwrap(), 0);
        assert!(crate::keys::revoke(&connection, 1, 1, 5).unwrap());
        assert_eq!(crate::cache_versions::read(&connection).unwrap(), 1);
    }

    /// Migration 23 makes each rescoring one range, where it got: a rescoring cut short before it
    /// resumes from its last lead, and a finished one keeps its count.
    #[test]
    fn a_rescoring_begun_before_ranges_resumes_where_it_got() {
        let mut connection = Connection::open_in_memory().unwrap();
        apply_through(&mut connection, 22).unwrap();
        connection
            .execute_batch(
                "INSERT INTO workspaces (id, name, created_at) VALUES (1, 'a', 0), (2, 'b', 0);
                 INSERT INTO models (id, workspace_id, version, source, created_at) VALUES
                     (1, 1, 1, '[scores.s]', 0), (2, 2, 1, '[scores.s]', 0);
                 INSERT INTO rescorings (workspace_id, model_id, cause, after_lead_id, done, total, started_at, finished_at)
                     VALUES (1, 1, 'model v1', 41, 7, 10, 0, NULL), (2, 2, 'model v1', 90, 3, 3, 0, 5);",
            )
            .unwrap();
        apply(&mut connection).unwrap();
        let running = crate::rescorings::claim(&connection, 1, 10).unwrap().unwrap();
        assert_eq!((running.first_after, running.until, running.after_lead_id), (0, i64::MAX, 41));
        assert_eq!(crate::rescorings::get(&connection, 1).unwrap().map(|r| (r.done, r.total)), Some((7, 10)));
        assert_eq!(crate::rescorings::claim(&connection, 2, 10).unwrap(), None, "finished");
        assert_eq!(crate::rescorings::get(&connection, 2).unwrap().map(|r| r.done), Some(3));
    }
}
