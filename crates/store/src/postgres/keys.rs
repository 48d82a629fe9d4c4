//! PostgreSQL queries of the keys family (see [`crate::keys`] for SQLite's).
#![allow(unused_imports, unused_variables)]

use crate::postgres::Tx;
use crate::keys::*;
use std::fmt;
use std::str::FromStr;
use sha2::{Digest, Sha256};
use crate::StoreError;

pub(crate) fn create(connection: &mut Tx<'_>, workspace_id: i64, scope: Scope, now: i64) -> Result<NewKey, StoreError> {
    todo!()
}

/// The owner of a key that exists and is not revoked.
pub(crate) fn authenticate(connection: &mut Tx<'_>, secret: &str) -> Result<Option<KeyOwner>, StoreError> {
    todo!()
}

/// The workspace's keys, revoked ones included, newest first.
pub(crate) fn list(connection: &mut Tx<'_>, workspace_id: i64) -> Result<Vec<KeyInfo>, StoreError> {
    todo!()
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
    todo!()
}

/// Every origin that a browser key not revoked is bound to, in any workspace: what a CORS
/// preflight, which carries no key, is answered for.
pub(crate) fn browser_origins(connection: &mut Tx<'_>) -> Result<Vec<String>, StoreError> {
    todo!()
}

/// Revokes one of the workspace's keys; false if the workspace has no such key. Revoking a key
/// again keeps the time of its first revocation, so that the listing says when it stopped working.
pub(crate) fn revoke(connection: &mut Tx<'_>, workspace_id: i64, key_id: i64, now: i64) -> Result<bool, StoreError> {
    todo!()
}

/// One of the workspace's keys, revoked or not; `None` if the workspace has no such key.
pub(crate) fn by_id(connection: &mut Tx<'_>, workspace_id: i64, key_id: i64) -> Result<Option<KeyInfo>, StoreError> {
    todo!()
}
