//! PostgreSQL queries of the keys family (see [`crate::keys`] for SQLite's): API keys, stored as
//! the SHA-256 of their secret with a scope, revoked rather than deleted.
//!
//! Secrets are made and hashed by SQLite's module ([`crate::keys::new_secret`],
//! [`crate::keys::hash`]), so that both stores create and find keys alike. The scope is text
//! checked by the table (as in SQLite); one that is not a scope's name reads as `Corrupt`.

use crate::StoreError;
use crate::keys::{KeyInfo, KeyOwner, NewKey, Scope, hash, joined, new_secret, split};
use crate::postgres::tx::Tx;

/// A new key of `scope`, unnamed.
pub(crate) fn create(connection: &mut Tx<'_>, workspace_id: i64, scope: Scope, now: i64) -> Result<NewKey, StoreError> {
    create_named(connection, workspace_id, scope, "", &[], now)
}

/// The owner of a key that exists and is not revoked.
pub(crate) fn authenticate(connection: &mut Tx<'_>, secret: &str) -> Result<Option<KeyOwner>, StoreError> {
    let row = connection.query_opt(
        "SELECT id, workspace_id, scope, origins FROM api_keys WHERE secret_hash = $1 AND revoked_at IS NULL",
        &[&hash(secret)],
    )?;
    row.map(|row| {
        Ok(KeyOwner {
            key_id: row.try_get(0)?,
            workspace_id: row.try_get(1)?,
            scope: scope(row.try_get(2)?)?,
            origins: split(row.try_get(3)?),
        })
    })
    .transpose()
}

const INFO_COLUMNS: &str = "id, prefix, scope, created_at, revoked_at, name, origins";

fn info_from_row(row: &postgres::Row) -> Result<KeyInfo, StoreError> {
    Ok(KeyInfo {
        id: row.try_get(0)?,
        prefix: row.try_get(1)?,
        scope: scope(row.try_get(2)?)?,
        created_at: row.try_get(3)?,
        revoked_at: row.try_get(4)?,
        name: row.try_get(5)?,
        origins: split(row.try_get(6)?),
    })
}

fn scope(stored: &str) -> Result<Scope, StoreError> {
    stored.parse().map_err(StoreError::Corrupt)
}

/// The workspace's keys, revoked ones included, newest first.
pub(crate) fn list(connection: &mut Tx<'_>, workspace_id: i64) -> Result<Vec<KeyInfo>, StoreError> {
    let sql = format!("SELECT {INFO_COLUMNS} FROM api_keys WHERE workspace_id = $1 ORDER BY created_at DESC, id DESC");
    connection.query(&sql, &[&workspace_id])?.iter().map(info_from_row).collect()
}

/// A new key with a `name` that says what it is for; a browser key with the `origins` allowed
/// to use it (at least one, none for other scopes: the caller checks them, the table refuses a
/// key without).
pub(crate) fn create_named(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    scope: Scope,
    name: &str,
    origins: &[String],
    now: i64,
) -> Result<NewKey, StoreError> {
    let (secret, prefix) = new_secret()?;
    let row = connection.query_one(
        "INSERT INTO api_keys (workspace_id, prefix, secret_hash, scope, created_at, name, origins)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        &[&workspace_id, &prefix, &hash(&secret), &scope.as_str(), &now, &name, &joined(origins)],
    )?;
    Ok(NewKey {
        id: row.try_get(0)?,
        name: name.to_string(),
        secret,
        prefix,
        scope,
        origins: origins.to_vec(),
        created_at: now,
    })
}

/// Every origin that a browser key not revoked is bound to, in any workspace: what a CORS
/// preflight, which carries no key, is answered for.
pub(crate) fn browser_origins(connection: &mut Tx<'_>) -> Result<Vec<String>, StoreError> {
    let rows = connection.query("SELECT origins FROM api_keys WHERE scope = 'browser' AND revoked_at IS NULL", &[])?;
    let mut origins = Vec::new();
    for row in rows {
        origins.extend(split(row.try_get(0)?));
    }
    // Sorted here rather than by the server: its collation may order text otherwise than Rust.
    origins.sort();
    origins.dedup();
    Ok(origins)
}

/// Revokes one of the workspace's keys; false if the workspace has no such key. Revoking a key
/// again keeps the time of its first revocation, so that the listing says when it stopped working.
pub(crate) fn revoke(connection: &mut Tx<'_>, workspace_id: i64, key_id: i64, now: i64) -> Result<bool, StoreError> {
    let changed = connection.execute(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE workspace_id = $2 AND id = $3",
        &[&now, &workspace_id, &key_id],
    )?;
    Ok(changed == 1)
}

/// One of the workspace's keys, revoked or not; `None` if the workspace has no such key.
pub(crate) fn by_id(connection: &mut Tx<'_>, workspace_id: i64, key_id: i64) -> Result<Option<KeyInfo>, StoreError> {
    let sql = format!("SELECT {INFO_COLUMNS} FROM api_keys WHERE workspace_id = $1 AND id = $2");
    connection.query_opt(&sql, &[&workspace_id, &key_id])?.as_ref().map(info_from_row).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::testing::TestDatabase;
    use crate::postgres::workspaces;

    fn setup() -> Option<(TestDatabase, crate::postgres::Connection)> {
        let database = TestDatabase::create()?;
        let client = database.migrated_client();
        Some((database, client))
    }

    #[test]
    fn a_listing_shows_prefixes_newest_first_and_never_secrets() {
        let Some((_database, mut client)) = setup() else { return };
        let mut c = client.transaction();
        let acme = workspaces::find_or_create(&mut c, "acme", 1).unwrap();
        let other = workspaces::find_or_create(&mut c, "other", 1).unwrap();
        // The same creation time: the newer id comes first.
        let first = create(&mut c, acme.id, Scope::Ingest, 5).unwrap();
        let second = create(&mut c, acme.id, Scope::Admin, 5).unwrap();
        let oldest = create(&mut c, acme.id, Scope::Read, 4).unwrap();
        create(&mut c, other.id, Scope::Read, 6).unwrap();
        let listed = list(&mut c, acme.id).unwrap();
        assert_eq!(listed.iter().map(|k| k.id).collect::<Vec<_>>(), [second.id, first.id, oldest.id]);
        assert_eq!(listed[0].prefix, second.secret[..12]);
        assert_eq!(
            listed[1],
            KeyInfo {
                id: first.id,
                prefix: first.prefix.clone(),
                scope: Scope::Ingest,
                created_at: 5,
                revoked_at: None,
                name: String::new(),
                origins: Vec::new(),
            }
        );
        assert!(!format!("{listed:?}").contains(&first.secret[12..]));
        let elsewhere = list(&mut c, other.id).unwrap();
        assert_eq!(elsewhere.iter().map(|k| k.scope).collect::<Vec<_>>(), [Scope::Read]);
    }

    #[test]
    fn a_key_is_stored_as_sqlites_hash_of_its_secret() {
        let Some((_database, mut client)) = setup() else { return };
        let mut c = client.transaction();
        let acme = workspaces::find_or_create(&mut c, "acme", 1).unwrap();
        let key = create(&mut c, acme.id, Scope::Read, 1).unwrap();
        let stored: Vec<u8> = c.query_one("SELECT secret_hash FROM api_keys WHERE id = $1", &[&key.id]).unwrap().get(0);
        assert_eq!(stored, crate::keys::hash(&key.secret));
        assert!(key.secret.starts_with("lsk_") && key.secret.len() == 68, "{}", key.secret);
        assert_eq!(authenticate(&mut c, "lsk_unknown").unwrap(), None);
    }

    #[test]
    fn a_revoked_key_no_longer_authenticates_and_keeps_its_first_revocation_time() {
        let Some((_database, mut client)) = setup() else { return };
        let mut c = client.transaction();
        let acme = workspaces::find_or_create(&mut c, "acme", 1).unwrap();
        let key = create(&mut c, acme.id, Scope::Read, 1).unwrap();
        let owner = authenticate(&mut c, &key.secret).unwrap();
        assert_eq!(
            owner,
            Some(KeyOwner { key_id: key.id, workspace_id: acme.id, scope: Scope::Read, origins: Vec::new() })
        );
        assert!(revoke(&mut c, acme.id, key.id, 10).unwrap());
        assert_eq!(authenticate(&mut c, &key.secret).unwrap(), None);
        assert!(revoke(&mut c, acme.id, key.id, 20).unwrap(), "revoking again still finds the key");
        assert_eq!(by_id(&mut c, acme.id, key.id).unwrap().and_then(|k| k.revoked_at), Some(10));
    }

    #[test]
    fn another_workspace_cannot_see_or_revoke_a_key() {
        let Some((_database, mut client)) = setup() else { return };
        let mut c = client.transaction();
        let acme = workspaces::find_or_create(&mut c, "acme", 1).unwrap();
        let other = workspaces::find_or_create(&mut c, "other", 1).unwrap();
        let key = create(&mut c, acme.id, Scope::Admin, 1).unwrap();
        assert!(!revoke(&mut c, other.id, key.id, 2).unwrap());
        assert_eq!(by_id(&mut c, other.id, key.id).unwrap(), None);
        assert!(!revoke(&mut c, acme.id, key.id + 100, 2).unwrap());
        assert!(authenticate(&mut c, &key.secret).unwrap().is_some());
    }

    #[test]
    fn a_browser_key_carries_its_origins_until_it_is_revoked() {
        let Some((_database, mut client)) = setup() else { return };
        let mut c = client.transaction();
        let acme = workspaces::find_or_create(&mut c, "acme", 1).unwrap();
        let origins = vec!["https://www.example.com".to_string(), "http://localhost:8080".to_string()];
        let key = create_named(&mut c, acme.id, Scope::Browser, "site", &origins, 1).unwrap();
        let b = ["https://b.example".to_string(), "https://www.example.com".to_string()];
        let other = create_named(&mut c, acme.id, Scope::Browser, "", &b, 1).unwrap();
        assert_eq!(
            browser_origins(&mut c).unwrap(),
            ["http://localhost:8080", "https://b.example", "https://www.example.com"]
        );
        let owner = authenticate(&mut c, &key.secret).unwrap().unwrap();
        assert_eq!((owner.scope, owner.origins), (Scope::Browser, origins));
        assert_eq!(by_id(&mut c, acme.id, key.id).unwrap().map(|k| k.name), Some("site".to_string()));
        revoke(&mut c, acme.id, other.id, 2).unwrap();
        assert_eq!(browser_origins(&mut c).unwrap(), ["http://localhost:8080", "https://www.example.com"]);

        let without_origin = create_named(&mut c, acme.id, Scope::Browser, "", &[], 3);
        assert!(without_origin.is_err(), "the table refuses a browser key bound to no origin");
    }

    #[test]
    fn a_scope_that_is_not_one_reads_as_corrupt() {
        let Some((_database, mut client)) = setup() else { return };
        let mut c = client.transaction();
        let acme = workspaces::find_or_create(&mut c, "acme", 1).unwrap();
        let key = create(&mut c, acme.id, Scope::Read, 1).unwrap();
        // An older or newer version's scope: the CHECK constraint is dropped to store it.
        c.batch_execute("ALTER TABLE api_keys DROP CONSTRAINT api_keys_scope_check").unwrap();
        c.execute("UPDATE api_keys SET scope = 'owner' WHERE id = $1", &[&key.id]).unwrap();
        assert!(matches!(list(&mut c, acme.id), Err(StoreError::Corrupt(_))));
        assert!(matches!(authenticate(&mut c, &key.secret), Err(StoreError::Corrupt(_))));
    }
}
