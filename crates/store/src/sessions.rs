//! Console sessions (a signed-in browser) and failed sign-ins.
//!
//! A session's token is 256 random bits, given once to the browser (in a cookie) and stored as
//! its SHA-256, as API keys are: a copy of the database signs nobody in. A session is live until
//! it has not been used for its idle time, until its end whatever happens, or until it is
//! revoked; a disabled account has no live session. Each session has its own token against
//! cross-site request forgery, which every form it posts must carry.
//!
//! Failed sign-ins are counted per subject (an account, a client address) in the database, so
//! that every instance of the service slows guessing down alike.

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::StoreError;
use crate::users::User;

/// A live or ended session, without its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: i64,
    pub user_id: i64,
    /// What every form of this session must send back.
    pub csrf_token: String,
    pub created_at: i64,
    /// When it ends unless it is used again before.
    pub idle_until: i64,
    /// When it ends whatever happens.
    pub ends_at: i64,
}

/// A session just opened, with the token its browser keeps (shown once).
#[derive(Debug, Clone)]
pub struct Opened {
    pub token: String,
    pub session: Session,
}

/// What is stored of a token (the PostgreSQL store hashes with it too).
pub(crate) fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// 256 random bits in hexadecimal.
pub(crate) fn random_hex() -> Result<String, StoreError> {
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).map_err(|e| StoreError::Corrupt(format!("no randomness for a session: {e}")))?;
    Ok(hex::encode(random))
}

/// A new session's token, as its browser keeps it.
pub(crate) fn new_token() -> Result<String, StoreError> {
    Ok(format!("lss_{}", random_hex()?))
}

/// When a session opened at `now` ends if unused (its idle end) and whatever happens.
pub(crate) fn ends(now: i64, idle_ms: i64, lifetime_ms: i64) -> (i64, i64) {
    let ends_at = now.saturating_add(lifetime_ms);
    (now.saturating_add(idle_ms).min(ends_at), ends_at)
}

/// Opens a session for `user_id`, idle for at most `idle_ms` and ending after `lifetime_ms`.
pub fn open(
    connection: &Connection,
    user_id: i64,
    now: i64,
    idle_ms: i64,
    lifetime_ms: i64,
) -> Result<Opened, StoreError> {
    let (token, csrf_token) = (new_token()?, random_hex()?);
    let (idle_until, ends_at) = ends(now, idle_ms, lifetime_ms);
    connection.execute(
        "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, idle_until, ends_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![hash(&token), user_id, csrf_token, now, idle_until, ends_at],
    )?;
    let session =
        Session { id: connection.last_insert_rowid(), user_id, csrf_token, created_at: now, idle_until, ends_at };
    Ok(Opened { token, session })
}

/// The live session of `token` and its account at `now`, if there is one.
pub fn live(connection: &Connection, token: &str, now: i64) -> Result<Option<(Session, User)>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT s.id, s.user_id, s.csrf_token, s.created_at, s.idle_until, s.ends_at, \
                u.workspace_id, u.email, u.role, u.created_at, u.disabled_at \
         FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.token_hash = ?1 AND s.revoked_at IS NULL AND s.idle_until > ?2 AND s.ends_at > ?2 \
           AND u.disabled_at IS NULL",
    )?;
    Ok(statement
        .query_row(params![hash(token), now], |row| {
            let session = Session {
                id: row.get(0)?,
                user_id: row.get(1)?,
                csrf_token: row.get(2)?,
                created_at: row.get(3)?,
                idle_until: row.get(4)?,
                ends_at: row.get(5)?,
            };
            let user = User {
                id: session.user_id,
                workspace_id: row.get(6)?,
                email: row.get(7)?,
                role: row.get(8)?,
                created_at: row.get(9)?,
                disabled_at: row.get(10)?,
            };
            Ok((session, user))
        })
        .optional()?)
}

/// Moves a session's idle end to `idle_until` (never past its end, never back).
pub fn extend(connection: &Connection, session_id: i64, idle_until: i64) -> Result<(), StoreError> {
    connection.execute(
        "UPDATE sessions SET idle_until = max(idle_until, min(?2, ends_at)) WHERE id = ?1 AND revoked_at IS NULL",
        params![session_id, idle_until],
    )?;
    Ok(())
}

/// Ends a session (a sign-out); false if it had already ended by revocation.
pub fn revoke(connection: &Connection, session_id: i64, now: i64) -> Result<bool, StoreError> {
    let changed = connection.execute(
        "UPDATE sessions SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![session_id, now],
    )?;
    Ok(changed == 1)
}

/// Ends every session of an account (its password changed, it was disabled); how many were live.
pub fn revoke_all_of(connection: &Connection, user_id: i64, now: i64) -> Result<usize, StoreError> {
    Ok(connection.execute(
        "UPDATE sessions SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
        params![user_id, now],
    )?)
}

/// Records a failed sign-in aimed at `subject`, and forgets the failures of every subject from
/// before `forget_before`.
pub fn record_failure(connection: &Connection, subject: &str, now: i64, forget_before: i64) -> Result<(), StoreError> {
    connection.execute("DELETE FROM sign_in_failures WHERE at < ?1", [forget_before])?;
    connection.execute("INSERT INTO sign_in_failures (subject, at) VALUES (?1, ?2)", params![subject, now])?;
    Ok(())
}

/// The failed sign-ins aimed at `subject` since `since`, and the time of the last one.
pub fn failures_since(connection: &Connection, subject: &str, since: i64) -> Result<(u32, Option<i64>), StoreError> {
    Ok(connection.query_row(
        "SELECT count(*), max(at) FROM sign_in_failures WHERE subject = ?1 AND at >= ?2",
        params![subject, since],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?)
}

/// Forgets the failed sign-ins aimed at `subject` (after a successful one).
pub fn clear_failures(connection: &Connection, subject: &str) -> Result<(), StoreError> {
    connection.execute("DELETE FROM sign_in_failures WHERE subject = ?1", [subject])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::{self, Role};
    use crate::{Store, workspaces};

    const MINUTE: i64 = 60_000;

    fn store_with_account() -> (tempfile::TempDir, Store, User) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let user = store
            .write_blocking(|c| {
                let acme = workspaces::find_or_create(c, "acme", 0)?;
                users::create(c, acme.id, "ana@example.com", Role::Editor, "$argon2id$hash", 0)
            })
            .unwrap();
        (dir, store, user)
    }

    #[test]
    fn a_session_lives_while_used_until_its_end_and_not_after_a_sign_out() {
        let (_dir, store, user) = store_with_account();
        let user_id = user.id;
        let opened = store.write_blocking(move |c| open(c, user_id, 0, 30 * MINUTE, 120 * MINUTE)).unwrap();
        assert!(opened.token.starts_with("lss_") && opened.token.len() == 68, "{}", opened.token);
        assert_eq!(opened.session.csrf_token.len(), 64);
        let live_at = |token: String, now: i64| store.read_blocking(move |c| live(c, &token, now)).unwrap();

        let (session, found) = live_at(opened.token.clone(), 29 * MINUTE).expect("live while within its idle time");
        assert_eq!((session, found), (opened.session.clone(), user.clone()));
        assert_eq!(live_at(opened.token.clone(), 30 * MINUTE), None, "idle for its whole idle time");

        // Used at minute 29: its idle end moves on, but never past its end.
        let id = opened.session.id;
        store.write_blocking(move |c| extend(c, id, 59 * MINUTE)).unwrap();
        assert!(live_at(opened.token.clone(), 58 * MINUTE).is_some());
        store.write_blocking(move |c| extend(c, id, 500 * MINUTE)).unwrap();
        assert!(live_at(opened.token.clone(), 119 * MINUTE).is_some());
        assert_eq!(live_at(opened.token.clone(), 120 * MINUTE), None, "ended whatever happened");

        let other = store.write_blocking(move |c| open(c, user_id, 0, 30 * MINUTE, 120 * MINUTE)).unwrap();
        let other_id = other.session.id;
        assert!(store.write_blocking(move |c| revoke(c, other_id, MINUTE)).unwrap());
        assert!(!store.write_blocking(move |c| revoke(c, other_id, MINUTE)).unwrap());
        assert_eq!(live_at(other.token, 2 * MINUTE), None, "signed out");
        assert_eq!(live_at("lss_unknown".to_string(), 0), None);
    }

    #[test]
    fn a_disabled_account_or_a_revocation_of_all_ends_its_sessions() {
        let (_dir, store, user) = store_with_account();
        let user_id = user.id;
        let first = store.write_blocking(move |c| open(c, user_id, 0, 30 * MINUTE, 120 * MINUTE)).unwrap();
        let second = store.write_blocking(move |c| open(c, user_id, 0, 30 * MINUTE, 120 * MINUTE)).unwrap();
        assert_ne!(first.token, second.token);
        assert_eq!(store.write_blocking(move |c| revoke_all_of(c, user_id, MINUTE)).unwrap(), 2);
        let token = first.token.clone();
        assert_eq!(store.read_blocking(move |c| live(c, &token, 2 * MINUTE)).unwrap(), None);

        let third = store.write_blocking(move |c| open(c, user_id, 0, 30 * MINUTE, 120 * MINUTE)).unwrap();
        let workspace_id = user.workspace_id;
        assert!(store.write_blocking(move |c| users::disable(c, workspace_id, user_id, MINUTE)).unwrap());
        assert!(!store.write_blocking(move |c| users::disable(c, workspace_id, user_id, MINUTE)).unwrap());
        assert_eq!(store.read_blocking(move |c| live(c, &third.token, 2 * MINUTE)).unwrap(), None);
    }

    #[test]
    fn failed_sign_ins_are_counted_per_subject_within_their_window() {
        let (_dir, store, _) = store_with_account();
        let count = |subject: &'static str, since: i64| {
            store.read_blocking(move |c| failures_since(c, subject, since)).unwrap()
        };
        for at in [0, MINUTE, 2 * MINUTE] {
            store.write_blocking(move |c| record_failure(c, "account:ana@example.com", at, 0)).unwrap();
        }
        store.write_blocking(|c| record_failure(c, "address:192.0.2.7", 2 * MINUTE, 0)).unwrap();
        assert_eq!(count("account:ana@example.com", 0), (3, Some(2 * MINUTE)));
        assert_eq!(count("account:ana@example.com", MINUTE), (2, Some(2 * MINUTE)));
        assert_eq!(count("address:192.0.2.7", 0), (1, Some(2 * MINUTE)));
        assert_eq!(count("account:bob@example.com", 0), (0, None));

        // A later failure forgets those before its window; a success forgets its subject's.
        store.write_blocking(|c| record_failure(c, "address:192.0.2.7", 20 * MINUTE, 15 * MINUTE)).unwrap();
        assert_eq!(count("account:ana@example.com", 0), (0, None));
        assert_eq!(count("address:192.0.2.7", 0), (1, Some(20 * MINUTE)));
        store.write_blocking(|c| clear_failures(c, "address:192.0.2.7")).unwrap();
        assert_eq!(count("address:192.0.2.7", 0), (0, None));
    }
}
