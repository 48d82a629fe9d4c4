//! API keys: random secrets shown once, stored as their SHA-256, each with a scope.
//!
//! A plain SHA-256 is enough (no password hash): the secrets are 256 random bits, so there is
//! nothing to guess that a slow hash would protect.
//!
//! A browser key is public (a website's pages carry it) and bound to the origins allowed to use
//! it; its restrictions are the service's to enforce.
//!
//! A key is revoked rather than deleted: its row stays, so that a listing still shows which key
//! was revoked and when.

use std::fmt;
use std::str::FromStr;

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::StoreError;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Send events and identify leads; safe to embed in a web page.
    Ingest,
    /// Read leads, scores and history.
    Read,
    /// Everything, including models and keys.
    Admin,
    /// Send events and traits from a website's pages, from the origins the key is bound to;
    /// public, so it reads nothing and cannot change what identifies a known lead.
    Browser,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Admin => "admin",
            Scope::Browser => "browser",
        }
    }

    /// Whether a key of this scope may act where `needed` is required. What a browser key may
    /// do (send a website's events), an ingest key may too.
    pub fn allows(self, needed: Scope) -> bool {
        self == needed || self == Scope::Admin || (needed == Scope::Browser && self == Scope::Ingest)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(text: &str) -> Result<Scope, String> {
        match text {
            "ingest" => Ok(Scope::Ingest),
            "read" => Ok(Scope::Read),
            "admin" => Ok(Scope::Admin),
            "browser" => Ok(Scope::Browser),
            other => Err(format!("unknown scope `{other}`: use ingest, read, admin or browser")),
        }
    }
}

/// A scope as stored; the table's CHECK constraint allows only the scopes' names.
impl rusqlite::types::FromSql for Scope {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Scope> {
        value.as_str()?.parse().map_err(|e: String| rusqlite::types::FromSqlError::Other(e.into()))
    }
}

/// A key as created: the secret is shown once and never stored.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub id: i64,
    /// What it is for, as its maker named it ("" when unnamed).
    pub name: String,
    pub secret: String,
    pub prefix: String,
    pub scope: Scope,
    /// The origins a browser key is bound to; empty for other scopes.
    pub origins: Vec<String>,
    pub created_at: i64,
}

/// A key as listed: what tells it apart (its id and the first 12 characters of its secret),
/// never the secret nor its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: i64,
    /// What it is for, as its maker named it ("" when unnamed).
    pub name: String,
    pub prefix: String,
    pub scope: Scope,
    /// The origins a browser key is bound to; empty for other scopes.
    pub origins: Vec<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// Who a presented key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwner {
    pub key_id: i64,
    pub workspace_id: i64,
    pub scope: Scope,
    /// The origins a browser key is bound to; empty for other scopes.
    pub origins: Vec<String>,
}

/// What is stored of a secret (the PostgreSQL store hashes with it too).
pub(crate) fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

pub fn create(connection: &Connection, workspace_id: i64, scope: Scope, now: i64) -> Result<NewKey, StoreError> {
    create_named(connection, workspace_id, scope, "", &[], now)
}

/// Origins as stored: separated by single spaces (an origin has none).
pub(crate) fn joined(origins: &[String]) -> String {
    origins.join(" ")
}

pub(crate) fn split(origins: &str) -> Vec<String> {
    origins.split(' ').filter(|o| !o.is_empty()).map(str::to_string).collect()
}

/// A new key with a `name` that says what it is for; a browser key with the `origins` allowed
/// to use it (at least one, none for other scopes: the caller checks them, the table refuses a
/// key without).
pub fn create_named(
    connection: &Connection,
    workspace_id: i64,
    scope: Scope,
    name: &str,
    origins: &[String],
    now: i64,
) -> Result<NewKey, StoreError> {
    let (secret, prefix) = new_secret()?;
    connection.execute(
        "INSERT INTO api_keys (workspace_id, prefix, secret_hash, scope, created_at, name, origins)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![workspace_id, prefix, hash(&secret), scope.as_str(), now, name, joined(origins)],
    )?;
    Ok(NewKey {
        id: connection.last_insert_rowid(),
        name: name.to_string(),
        secret,
        prefix,
        scope,
        origins: origins.to_vec(),
        created_at: now,
    })
}

/// A new key's secret, and its prefix (what a listing shows of it).
pub(crate) fn new_secret() -> Result<(String, String), StoreError> {
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).map_err(|e| StoreError::Corrupt(format!("no randomness for a key: {e}")))?;
    let secret = format!("lsk_{}", hex::encode(random));
    let prefix = secret[..12].to_string();
    Ok((secret, prefix))
}

const INFO_COLUMNS: &str = "id, prefix, scope, created_at, revoked_at, name, origins";

fn info_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<KeyInfo> {
    Ok(KeyInfo {
        id: row.get(0)?,
        prefix: row.get(1)?,
        scope: row.get(2)?,
        created_at: row.get(3)?,
        revoked_at: row.get(4)?,
        name: row.get(5)?,
        origins: split(&row.get::<_, String>(6)?),
    })
}

/// The workspace's keys, revoked ones included, newest first.
pub fn list(connection: &Connection, workspace_id: i64) -> Result<Vec<KeyInfo>, StoreError> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {INFO_COLUMNS} FROM api_keys WHERE workspace_id = ?1 ORDER BY created_at DESC, id DESC"
    ))?;
    let rows = statement.query_map([workspace_id], info_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One of the workspace's keys, revoked or not; `None` if the workspace has no such key.
pub fn by_id(connection: &Connection, workspace_id: i64, key_id: i64) -> Result<Option<KeyInfo>, StoreError> {
    let sql = format!("SELECT {INFO_COLUMNS} FROM api_keys WHERE workspace_id = ?1 AND id = ?2");
    Ok(connection.query_row(&sql, params![workspace_id, key_id], info_from_row).optional()?)
}

/// Revokes one of the workspace's keys; false if the workspace has no such key. Revoking a key
/// again keeps the time of its first revocation, so that the listing says when it stopped working.
pub fn revoke(connection: &Connection, workspace_id: i64, key_id: i64, now: i64) -> Result<bool, StoreError> {
    let changed = connection.execute(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?1) WHERE workspace_id = ?2 AND id = ?3",
        params![now, workspace_id, key_id],
    )?;
    Ok(changed == 1)
}

/// The owner of a key that exists and is not revoked.
pub fn authenticate(connection: &Connection, secret: &str) -> Result<Option<KeyOwner>, StoreError> {
    let row = connection
        .query_row(
            "SELECT id, workspace_id, scope, origins FROM api_keys WHERE secret_hash = ?1 AND revoked_at IS NULL",
            [hash(secret)],
            |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, String>(2)?, row.get::<_, String>(3)?))
            },
        )
        .optional()?;
    row.map(|(key_id, workspace_id, scope, origins)| {
        let scope = scope.parse().map_err(StoreError::Corrupt)?;
        Ok(KeyOwner { key_id, workspace_id, scope, origins: split(&origins) })
    })
    .transpose()
}

/// Every origin that a browser key not revoked is bound to, in any workspace: what a CORS
/// preflight, which carries no key, is answered for.
pub fn browser_origins(connection: &Connection) -> Result<Vec<String>, StoreError> {
    let mut statement =
        connection.prepare_cached("SELECT origins FROM api_keys WHERE scope = 'browser' AND revoked_at IS NULL")?;
    let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
    let mut origins = Vec::new();
    for row in rows {
        origins.extend(split(&row?));
    }
    origins.sort();
    origins.dedup();
    Ok(origins)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, workspaces};

    #[test]
    fn a_listing_shows_prefixes_newest_first_and_never_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (first, second, listed, elsewhere) = store
            .write_blocking(|c| {
                let acme = workspaces::find_or_create(c, "acme", crate::now_ms())?;
                let other = workspaces::find_or_create(c, "other", crate::now_ms())?;
                let first = create(c, acme.id, Scope::Ingest, crate::now_ms())?;
                let second = create(c, acme.id, Scope::Admin, crate::now_ms())?;
                create(c, other.id, Scope::Read, crate::now_ms())?;
                Ok((first, second, list(c, acme.id)?, list(c, other.id)?))
            })
            .unwrap();
        assert_eq!(listed.iter().map(|k| k.id).collect::<Vec<_>>(), [second.id, first.id]);
        assert_eq!(listed[0].prefix, second.secret[..12]);
        assert_eq!(listed[0].scope, Scope::Admin);
        assert_eq!(
            listed[1],
            KeyInfo {
                id: first.id,
                prefix: first.prefix.clone(),
                scope: Scope::Ingest,
                created_at: first.created_at,
                revoked_at: None,
                name: String::new(),
                origins: Vec::new(),
            }
        );
        assert!(!format!("{listed:?}").contains(&first.secret[12..]));
        assert_eq!(elsewhere.len(), 1);
        assert_eq!(elsewhere[0].scope, Scope::Read);
    }

    fn authenticates(store: &Store, secret: &str) -> bool {
        let secret = secret.to_string();
        store.read_blocking(move |c| authenticate(c, &secret)).unwrap().is_some()
    }

    #[test]
    fn a_revoked_key_no_longer_authenticates_and_keeps_its_first_revocation_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (key, acme) = store
            .write_blocking(|c| {
                let acme = workspaces::find_or_create(c, "acme", crate::now_ms())?;
                Ok((create(c, acme.id, Scope::Read, crate::now_ms())?, acme.id))
            })
            .unwrap();
        assert!(authenticates(&store, &key.secret));
        let revoke_and_read =
            move |c: &Connection| Ok((revoke(c, acme, key.id, crate::now_ms())?, by_id(c, acme, key.id)?));

        let (revoked, info) = store.write_blocking(revoke_and_read).unwrap();
        assert!(revoked);
        let first_revocation = info.unwrap().revoked_at.expect("revoked");
        assert!(!authenticates(&store, &key.secret));

        // Later, so that a second revocation would have a different time if it overwrote the first.
        std::thread::sleep(std::time::Duration::from_millis(5));
        let (revoked_again, info) = store.write_blocking(revoke_and_read).unwrap();
        assert!(revoked_again);
        assert_eq!(info.unwrap().revoked_at, Some(first_revocation));
    }

    #[test]
    fn another_workspace_cannot_see_or_revoke_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (revoked, seen, unknown, secret) = store
            .write_blocking(|c| {
                let acme = workspaces::find_or_create(c, "acme", crate::now_ms())?;
                let other = workspaces::find_or_create(c, "other", crate::now_ms())?;
                let key = create(c, acme.id, Scope::Admin, crate::now_ms())?;
                Ok((
                    revoke(c, other.id, key.id, crate::now_ms())?,
                    by_id(c, other.id, key.id)?,
                    revoke(c, acme.id, key.id + 100, crate::now_ms())?,
                    key.secret,
                ))
            })
            .unwrap();
        assert!(!revoked);
        assert_eq!(seen, None);
        assert!(!unknown);
        assert!(authenticates(&store, &secret));
    }

    #[test]
    fn a_browser_key_carries_its_origins_until_it_is_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let origins = vec!["https://www.example.com".to_string(), "http://localhost:8080".to_string()];
        let given = origins.clone();
        let (key, other, listed, without_origin) = store
            .write_blocking(move |c| {
                let acme = workspaces::find_or_create(c, "acme", crate::now_ms())?;
                let key = create_named(c, acme.id, Scope::Browser, "site", &given, crate::now_ms())?;
                let other =
                    create_named(c, acme.id, Scope::Browser, "", &["https://b.example".into()], crate::now_ms())?;
                let without_origin = create_named(c, acme.id, Scope::Browser, "", &[], crate::now_ms()).is_err();
                Ok((key, other, browser_origins(c)?, without_origin))
            })
            .unwrap();
        assert!(without_origin, "the table refuses a browser key bound to no origin");
        assert_eq!(listed, ["http://localhost:8080", "https://b.example", "https://www.example.com"]);
        let secret = key.secret.clone();
        let owner = store.read_blocking(move |c| authenticate(c, &secret)).unwrap().unwrap();
        assert_eq!((owner.scope, owner.origins), (Scope::Browser, origins));

        let (acme, other_id) = (owner.workspace_id, other.id);
        let listed = store
            .write_blocking(move |c| {
                revoke(c, acme, other_id, crate::now_ms())?;
                browser_origins(c)
            })
            .unwrap();
        assert_eq!(listed, ["http://localhost:8080", "https://www.example.com"]);
    }
}
