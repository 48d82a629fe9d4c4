//! The PostgreSQL schema's versioned migrations, applied at connect, each in its own transaction,
//! and refused when an applied one was edited (its checksum), as SQLite's are ([`crate::migrate`]).
//! Several instances starting at once take turns: the first applies, the others find it done.

use sha2::{Digest, Sha256};

use crate::StoreError;

/// In order. Never edit an entry once released: add a new one.
const MIGRATIONS: &[(u32, &str, &str)] = &[
    (1, "init", include_str!("migrations/0001_init.sql")),
    (2, "funnel_counts", include_str!("migrations/0002_funnel_counts.sql")),
    (3, "cache_versions", include_str!("migrations/0003_cache_versions.sql")),
    (4, "funnel_counts_appended", include_str!("migrations/0004_funnel_counts_appended.sql")),
    (5, "rescoring_ranges", include_str!("migrations/0005_rescoring_ranges.sql")),
    (6, "workspace_versions", include_str!("migrations/0006_workspace_versions.sql")),
    (7, "search_text_planned_once", include_str!("migrations/0007_search_text_planned_once.sql")),
    (8, "stored_message_ids_refused", include_str!("migrations/0008_stored_message_ids_refused.sql")),
];

/// Any number that no other application takes advisory locks with on the same database.
const MIGRATION_LOCK: i64 = 7_305_683_311_020_550;

/// Applies every migration the database has not had yet.
pub(super) fn apply(client: &mut postgres::Client) -> Result<(), StoreError> {
    let mut transaction = client.transaction()?;
    apply_through(&mut transaction, u32::MAX)?;
    transaction.commit()?;
    Ok(())
}

/// The version of the schema's first migration: the tables, without the funnel's counts, which a
/// copy of a store lets the later migrations fill from the rows it copied (see [`crate::copy`]).
pub(crate) const BASE_TABLES: u32 = 1;

/// Applies, inside `transaction`, the migrations the database has not had up to version
/// `through` (all of them with `u32::MAX`), each in a savepoint of its own; the caller commits.
pub(crate) fn apply_through(transaction: &mut postgres::Transaction<'_>, through: u32) -> Result<(), StoreError> {
    transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    transaction.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at BIGINT NOT NULL
        )",
    )?;
    let applied: Vec<(i64, String)> = transaction
        .query("SELECT version, checksum FROM schema_migrations ORDER BY version", &[])?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let known = MIGRATIONS.last().map_or(0, |(version, _, _)| *version);
    if let Some((found, _)) = applied.iter().find(|(version, _)| *version > i64::from(known)) {
        return Err(StoreError::TooNew { found: u32::try_from(*found).unwrap_or(u32::MAX), known });
    }
    for &(version, name, sql) in MIGRATIONS.iter().filter(|(version, _, _)| *version <= through) {
        let checksum = hex::encode(Sha256::digest(sql.as_bytes()));
        match applied.iter().find(|(v, _)| *v == i64::from(version)) {
            Some((_, stored)) if *stored == checksum => continue,
            Some(_) => return Err(StoreError::MigrationChanged { version, name: name.to_string() }),
            None => {}
        }
        let mut step = transaction.transaction()?;
        step.batch_execute(sql)?;
        step.execute(
            "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)",
            &[&i64::from(version), &name, &checksum, &crate::now_ms()],
        )?;
        step.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::testing::TestDatabase;

    #[test]
    fn applies_once_and_refuses_edited_migrations_and_newer_schemas() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = postgres::Client::connect(&database.url, postgres::NoTls).unwrap();
        apply(&mut client).unwrap();
        apply(&mut client).unwrap();
        let count: i64 = client.query_one("SELECT count(*) FROM schema_migrations", &[]).unwrap().get(0);
        assert_eq!(count, MIGRATIONS.len() as i64);

        client.execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1", &[]).unwrap();
        assert!(matches!(apply(&mut client), Err(StoreError::MigrationChanged { version: 1, .. })));
        let checksum = hex::encode(Sha256::digest(MIGRATIONS[0].2.as_bytes()));
        client.execute("UPDATE schema_migrations SET checksum = $1 WHERE version = 1", &[&checksum]).unwrap();

        client
            .execute(
                "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (999, 'x', '', 0)",
                &[],
            )
            .unwrap();
        assert!(matches!(apply(&mut client), Err(StoreError::TooNew { found: 999, .. })));
    }

    #[test]
    fn applies_up_to_a_version_then_the_rest() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = postgres::Client::connect(&database.url, postgres::NoTls).unwrap();
        let mut transaction = client.transaction().unwrap();
        apply_through(&mut transaction, BASE_TABLES).unwrap();
        transaction.commit().unwrap();
        let versions = |client: &mut postgres::Client| -> Vec<i64> {
            client
                .query("SELECT version FROM schema_migrations ORDER BY version", &[])
                .unwrap()
                .iter()
                .map(|row| row.get(0))
                .collect()
        };
        assert_eq!(versions(&mut client), vec![1]);
        let counts: Option<String> = client.query_one("SELECT to_regclass('tier_counts')::text", &[]).unwrap().get(0);
        assert_eq!(counts, None);
        apply(&mut client).unwrap();
        assert_eq!(
            versions(&mut client),
            MIGRATIONS.iter().map(|(version, _, _)| i64::from(*version)).collect::<Vec<_>>()
        );
    }

    /// Migration 5 makes each rescoring one range, where it got (as SQLite's 23).
    #[test]
    fn a_rescoring_begun_before_ranges_resumes_where_it_got() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = postgres::Client::connect(&database.url, postgres::NoTls).unwrap();
        let mut transaction = client.transaction().unwrap();
        apply_through(&mut transaction, 4).unwrap();
        transaction
            .batch_execute(
                "INSERT INTO workspaces (id, name, created_at) VALUES (1, 'a', 0);
                 INSERT INTO models (id, workspace_id, version, source, created_at) VALUES (1, 1, 1, '[scores.s]', 0);
                 INSERT INTO rescorings (workspace_id, model_id, cause, after_lead_id, done, total, started_at)
                     VALUES (1, 1, 'model v1', 41, 7, 10, 0);",
            )
            .unwrap();
        apply_through(&mut transaction, u32::MAX).unwrap();
        transaction.commit().unwrap();
        let mut connection = crate::postgres::tx::Connection::connect_url(&database.url);
        let mut t = connection.transaction();
        let range = crate::postgres::rescorings::claim(&mut t, 1).unwrap().unwrap();
        assert_eq!((range.first_after, range.until, range.after_lead_id), (0, i64::MAX, 41));
        let rescoring = crate::postgres::rescorings::get(&mut t, 1).unwrap().unwrap();
        assert_eq!((rescoring.done, rescoring.total), (7, 10));
    }

    #[test]
    fn instances_starting_together_apply_the_schema_once() {
        let Some(database) = TestDatabase::create() else { return };
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let url = database.url.clone();
                std::thread::spawn(move || {
                    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                    apply(&mut client)
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap().unwrap();
        }
    }
}
