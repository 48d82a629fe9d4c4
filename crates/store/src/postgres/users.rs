//! PostgreSQL queries of the users family (see [`crate::users`] for SQLite's).
#![allow(unused_imports, unused_variables)]

use crate::postgres::Tx;
use crate::users::*;
use std::fmt;
use std::str::FromStr;
use crate::StoreError;

/// The account of an e-mail address (disabled or not) with its password hash, for a sign-in.
pub(crate) fn by_email(connection: &mut Tx<'_>, email: &str) -> Result<Option<(User, String)>, StoreError> {
    todo!()
}

/// The workspace's accounts, disabled ones included, in the order they were created.
pub(crate) fn list(connection: &mut Tx<'_>, workspace_id: i64) -> Result<Vec<User>, StoreError> {
    todo!()
}

/// Creates an account; a `Conflict` if the address already has one (in any workspace).
pub(crate) fn create(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    email: &str,
    role: Role,
    password_hash: &str,
    now: i64,
) -> Result<User, StoreError> {
    todo!()
}

/// Gives one of the workspace's accounts a new password hash; false if it has no such account.
pub(crate) fn set_password(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    user_id: i64,
    password_hash: &str,
) -> Result<bool, StoreError> {
    todo!()
}

/// Gives one of the workspace's accounts another role; false if it has no such account.
/// Refused (`Conflict`) when it would take the role of admin from the workspace's last admin.
pub(crate) fn set_role(connection: &mut Tx<'_>, workspace_id: i64, user_id: i64, role: Role) -> Result<bool, StoreError> {
    todo!()
}

/// When each of the workspace's accounts last signed in (opened a session), by account id;
/// accounts that never did are absent.
pub(crate) fn last_sign_ins(connection: &mut Tx<'_>, workspace_id: i64) -> Result<Vec<(i64, i64)>, StoreError> {
    todo!()
}

/// Disables one of the workspace's accounts: it can no longer sign in and its sessions end
/// (`sessions::live` finds none). False if the workspace has no such live account. Refused
/// (`Conflict`) for the workspace's last enabled admin.
pub(crate) fn disable(connection: &mut Tx<'_>, workspace_id: i64, user_id: i64, now: i64) -> Result<bool, StoreError> {
    todo!()
}
