//! PostgreSQL queries of the sessions family (see [`crate::sessions`] for SQLite's).
#![allow(unused_imports, unused_variables)]

use crate::postgres::Tx;
use crate::sessions::*;
use sha2::{Digest, Sha256};
use crate::StoreError;
use crate::users::User;

/// The failed sign-ins aimed at `subject` since `since`, and the time of the last one.
pub(crate) fn failures_since(connection: &mut Tx<'_>, subject: &str, since: i64) -> Result<(u32, Option<i64>), StoreError> {
    todo!()
}

/// Records a failed sign-in aimed at `subject`, and forgets the failures of every subject from
/// before `forget_before`.
pub(crate) fn record_failure(connection: &mut Tx<'_>, subject: &str, now: i64, forget_before: i64) -> Result<(), StoreError> {
    todo!()
}

/// Forgets the failed sign-ins aimed at `subject` (after a successful one).
pub(crate) fn clear_failures(connection: &mut Tx<'_>, subject: &str) -> Result<(), StoreError> {
    todo!()
}

/// Opens a session for `user_id`, idle for at most `idle_ms` and ending after `lifetime_ms`.
pub(crate) fn open(
    connection: &mut Tx<'_>,
    user_id: i64,
    now: i64,
    idle_ms: i64,
    lifetime_ms: i64,
) -> Result<Opened, StoreError> {
    todo!()
}

/// The live session of `token` and its account at `now`, if there is one.
pub(crate) fn live(connection: &mut Tx<'_>, token: &str, now: i64) -> Result<Option<(Session, User)>, StoreError> {
    todo!()
}

/// Moves a session's idle end to `idle_until` (never past its end, never back).
pub(crate) fn extend(connection: &mut Tx<'_>, session_id: i64, idle_until: i64) -> Result<(), StoreError> {
    todo!()
}

/// Ends a session (a sign-out); false if it had already ended by revocation.
pub(crate) fn revoke(connection: &mut Tx<'_>, session_id: i64, now: i64) -> Result<bool, StoreError> {
    todo!()
}

/// Ends every session of an account (its password changed, it was disabled); how many were live.
pub(crate) fn revoke_all_of(connection: &mut Tx<'_>, user_id: i64, now: i64) -> Result<usize, StoreError> {
    todo!()
}
