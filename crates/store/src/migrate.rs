//! Versioned schema migrations, applied in order at open, each in its own transaction.
//!
//! Written here rather than taken from a migration crate: the candidates pin older rusqlite
//! versions (two copies of SQLite cannot be linked into one binary) and pull in far more than
//! this needs. A migration that was applied and then edited is refused by its checksum.

use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};

use crate::StoreError;

/// (version, name, SQL), in order. Never edit an entry once released: add a new one.
const MIGRATIONS: &[(u32, &str, &str)] = &[
    (1, "init", include_str!("migrations/0001_init.sql")),
    (2, "webhooks", include_str!("migrations/0002_webhooks.sql")),
    (3, "drop_stored_explanations", include_str!("migrations/0003_drop_stored_explanations.sql")),
    (4, "predictive_models", include_str!("migrations/0004_predictive_models.sql")),
    (5, "lead_scores_by_lead", include_str!("migrations/0005_lead_scores_by_lead.sql")),
];

/// Applies every migration the database has not had yet.
pub fn apply(connection: &mut Connection) -> Result<(), StoreError> {
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at INTEGER NOT NULL
        )",
    )?;
    let applied: Vec<(u32, String)> = {
        let mut statement = connection.prepare("SELECT version, checksum FROM schema_migrations ORDER BY version")?;
        statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?.collect::<Result<_, _>>()?
    };
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if let Some((found, _)) = applied.iter().find(|(version, _)| *version > known) {
        return Err(StoreError::TooNew { found: *found, known });
    }
    for &(version, name, sql) in MIGRATIONS {
        let checksum = hex::encode(Sha256::digest(sql.as_bytes()));
        match applied.iter().find(|(v, _)| *v == version) {
            Some((_, stored)) if *stored == checksum => continue,
            Some(_) => return Err(StoreError::MigrationChanged { version, name: name.to_string() }),
            None => {}
        }
        let transaction = connection.transaction()?;
        transaction.execute_batch(sql)?;
        transaction.execute(
            "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?1, ?2, ?3, ?4)",
            params![version, name, checksum, crate::now_ms()],
        )?;
        transaction.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
