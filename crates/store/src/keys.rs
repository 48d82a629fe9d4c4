//! API keys: random secrets shown once, stored as their SHA-256, each with a scope.
//!
//! A plain SHA-256 is enough (no password hash): the secrets are 256 random bits, so there is
//! nothing to guess that a slow hash would protect.

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
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }

    /// Whether a key of this scope may act where `needed` is required.
    pub fn allows(self, needed: Scope) -> bool {
        self == needed || self == Scope::Admin
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
            other => Err(format!("unknown scope `{other}`: use ingest, read or admin")),
        }
    }
}

/// A key as created: the secret is shown once and never stored.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub secret: String,
    pub prefix: String,
    pub scope: Scope,
}

/// Who a presented key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwner {
    pub key_id: i64,
    pub workspace_id: i64,
    pub scope: Scope,
}

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

pub fn create(connection: &Connection, workspace_id: i64, scope: Scope) -> Result<NewKey, StoreError> {
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).map_err(|e| StoreError::Corrupt(format!("no randomness for a key: {e}")))?;
    let secret = format!("lsk_{}", hex::encode(random));
    let prefix = secret[..12].to_string();
    connection.execute(
        "INSERT INTO api_keys (workspace_id, prefix, secret_hash, scope, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![workspace_id, prefix, hash(&secret), scope.as_str(), crate::now_ms()],
    )?;
    Ok(NewKey { secret, prefix, scope })
}

/// The owner of a key that exists and is not revoked.
pub fn authenticate(connection: &Connection, secret: &str) -> Result<Option<KeyOwner>, StoreError> {
    let row = connection
        .query_row(
            "SELECT id, workspace_id, scope FROM api_keys WHERE secret_hash = ?1 AND revoked_at IS NULL",
            [hash(secret)],
            |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, String>(2)?)),
        )
        .optional()?;
    row.map(|(key_id, workspace_id, scope)| {
        let scope = scope.parse().map_err(StoreError::Corrupt)?;
        Ok(KeyOwner { key_id, workspace_id, scope })
    })
    .transpose()
}
