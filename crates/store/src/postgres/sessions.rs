//! PostgreSQL queries of the sessions family (see [`crate::sessions`] for SQLite's): console
//! sessions, stored as the SHA-256 of their token, and failed sign-ins counted per subject.
//!
//! Tokens are made and hashed by SQLite's module ([`crate::sessions::new_token`],
//! [`crate::sessions::hash`]), so that both stores open and find sessions alike. Failed sign-ins
//! live in the shared database, so every instance slows the same guesses down.

use crate::StoreError;
use crate::postgres::tx::Tx;
use crate::sessions::{Opened, Session, ends, hash, new_token, random_hex};
use crate::users::User;

/// The failed sign-ins aimed at `subject` since `since`, and the time of the last one.
pub(crate) fn failures_since(
    connection: &mut Tx<'_>,
    subject: &str,
    since: i64,
) -> Result<(u32, Option<i64>), StoreError> {
    let row = connection.query_one(
        "SELECT count(*), max(at) FROM sign_in_failures WHERE subject = $1 AND at >= $2",
        &[&subject, &since],
    )?;
    let count: i64 = row.try_get(0)?;
    let count = u32::try_from(count)
        .map_err(|_| StoreError::Corrupt(format!("{count} failed sign-ins aimed at {subject}, more than counted")))?;
    Ok((count, row.try_get(1)?))
}

/// Records a failed sign-in aimed at `subject`, and forgets the failures of every subject from
/// before `forget_before`.
pub(crate) fn record_failure(
    connection: &mut Tx<'_>,
    subject: &str,
    now: i64,
    forget_before: i64,
) -> Result<(), StoreError> {
    // One statement for both: the deletion cannot see the row inserted beside it (a statement
    // sees the table as it was), just as SQLite's deletes before it inserts.
    connection.execute(
        "WITH forgotten AS (DELETE FROM sign_in_failures WHERE at < $3) \
         INSERT INTO sign_in_failures (subject, at) VALUES ($1, $2)",
        &[&subject, &now, &forget_before],
    )?;
    Ok(())
}

/// Forgets the failed sign-ins aimed at `subject` (after a successful one).
pub(crate) fn clear_failures(connection: &mut Tx<'_>, subject: &str) -> Result<(), StoreError> {
    connection.execute("DELETE FROM sign_in_failures WHERE subject = $1", &[&subject])?;
    Ok(())
}

/// Opens a session for `user_id`, idle for at most `idle_ms` and ending after `lifetime_ms`.
pub(crate) fn open(
    connection: &mut Tx<'_>,
    user_id: i64,
    now: i64,
    idle_ms: i64,
    lifetime_ms: i64,
) -> Result<Opened, StoreError> {
    let (token, csrf_token) = (new_token()?, random_hex()?);
    let (idle_until, ends_at) = ends(now, idle_ms, lifetime_ms);
    let row = connection.query_one(
        "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, idle_until, ends_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        &[&hash(&token), &user_id, &csrf_token, &now, &idle_until, &ends_at],
    )?;
    let session = Session { id: row.try_get(0)?, user_id, csrf_token, created_at: now, idle_until, ends_at };
    Ok(Opened { token, session })
}

/// The live session of `token` and its account at `now`, if there is one.
pub(crate) fn live(connection: &mut Tx<'_>, token: &str, now: i64) -> Result<Option<(Session, User)>, StoreError> {
    let row = connection.query_opt(
        "SELECT s.id, s.user_id, s.csrf_token, s.created_at, s.idle_until, s.ends_at, \
                u.workspace_id, u.email, u.role, u.created_at, u.disabled_at \
         FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.idle_until > $2 AND s.ends_at > $2 \
           AND u.disabled_at IS NULL",
        &[&hash(token), &now],
    )?;
    let Some(row) = row else { return Ok(None) };
    let session = Session {
        id: row.try_get(0)?,
        user_id: row.try_get(1)?,
        csrf_token: row.try_get(2)?,
        created_at: row.try_get(3)?,
        idle_until: row.try_get(4)?,
        ends_at: row.try_get(5)?,
    };
    let user = User {
        id: session.user_id,
        workspace_id: row.try_get(6)?,
        email: row.try_get(7)?,
        role: row.try_get::<_, &str>(8)?.parse().map_err(StoreError::Corrupt)?,
        created_at: row.try_get(9)?,
        disabled_at: row.try_get(10)?,
    };
    Ok(Some((session, user)))
}

/// Moves a session's idle end to `idle_until` (never past its end, never back).
pub(crate) fn extend(connection: &mut Tx<'_>, session_id: i64, idle_until: i64) -> Result<(), StoreError> {
    // GREATEST and LEAST are PostgreSQL's two-argument max and min (its max and min aggregate).
    connection.execute(
        "UPDATE sessions SET idle_until = GREATEST(idle_until, LEAST($2, ends_at)) WHERE id = $1 AND revoked_at IS NULL",
        &[&session_id, &idle_until],
    )?;
    Ok(())
}

/// Ends a session (a sign-out); false if it had already ended by revocation.
pub(crate) fn revoke(connection: &mut Tx<'_>, session_id: i64, now: i64) -> Result<bool, StoreError> {
    let changed = connection
        .execute("UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL", &[&session_id, &now])?;
    Ok(changed == 1)
}

/// Ends every session of an account (its password changed, it was disabled); how many were live.
pub(crate) fn revoke_all_of(connection: &mut Tx<'_>, user_id: i64, now: i64) -> Result<usize, StoreError> {
    let changed = connection
        .execute("UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL", &[&user_id, &now])?;
    usize::try_from(changed).map_err(|_| StoreError::Corrupt(format!("{changed} sessions of account {user_id}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::testing::TestDatabase;
    use crate::postgres::{users, workspaces};
    use crate::users::Role;

    const MINUTE: i64 = 60_000;

    fn with_account(test: impl FnOnce(&mut Tx<'_>, User)) {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut c = client.transaction();
        let acme = workspaces::find_or_create(&mut c, "acme", 0).unwrap();
        let user = users::create(&mut c, acme.id, "ana@example.com", Role::Editor, "$argon2id$hash", 0).unwrap();
        test(&mut c, user);
    }

    #[test]
    fn a_session_lives_while_used_until_its_end_and_not_after_a_sign_out() {
        with_account(|c, user| {
            let opened = open(c, user.id, 0, 30 * MINUTE, 120 * MINUTE).unwrap();
            assert!(opened.token.starts_with("lss_") && opened.token.len() == 68, "{}", opened.token);
            assert_eq!(opened.session.csrf_token.len(), 64);
            let stored: Vec<u8> =
                c.query_one("SELECT token_hash FROM sessions WHERE id = $1", &[&opened.session.id]).unwrap().get(0);
            assert_eq!(stored, crate::sessions::hash(&opened.token), "stored as SQLite's store hashes it");

            let found = live(c, &opened.token, 29 * MINUTE).unwrap().expect("live within its idle time");
            assert_eq!(found, (opened.session.clone(), user.clone()));
            assert_eq!(live(c, &opened.token, 30 * MINUTE).unwrap(), None, "idle for its whole idle time");

            let id = opened.session.id;
            extend(c, id, 59 * MINUTE).unwrap();
            assert!(live(c, &opened.token, 58 * MINUTE).unwrap().is_some());
            extend(c, id, 40 * MINUTE).unwrap();
            assert!(live(c, &opened.token, 58 * MINUTE).unwrap().is_some(), "never moved back");
            extend(c, id, 500 * MINUTE).unwrap();
            assert!(live(c, &opened.token, 119 * MINUTE).unwrap().is_some());
            assert_eq!(live(c, &opened.token, 120 * MINUTE).unwrap(), None, "ended whatever happened");

            let other = open(c, user.id, 0, 30 * MINUTE, 120 * MINUTE).unwrap();
            assert_ne!(other.token, opened.token);
            assert!(revoke(c, other.session.id, MINUTE).unwrap());
            assert!(!revoke(c, other.session.id, MINUTE).unwrap());
            assert_eq!(live(c, &other.token, 2 * MINUTE).unwrap(), None, "signed out");
            extend(c, other.session.id, 50 * MINUTE).unwrap();
            assert_eq!(live(c, &other.token, 2 * MINUTE).unwrap(), None, "a revoked session is not extended back");
            assert_eq!(live(c, "lss_unknown", 0).unwrap(), None);
        });
    }

    #[test]
    fn a_session_idle_longer_than_it_lives_ends_at_its_end() {
        with_account(|c, user| {
            let opened = open(c, user.id, 0, 90 * MINUTE, 60 * MINUTE).unwrap();
            assert_eq!((opened.session.idle_until, opened.session.ends_at), (60 * MINUTE, 60 * MINUTE));
        });
    }

    #[test]
    fn a_disabled_account_or_a_revocation_of_all_ends_its_sessions() {
        with_account(|c, user| {
            let first = open(c, user.id, 0, 30 * MINUTE, 120 * MINUTE).unwrap();
            let second = open(c, user.id, 0, 30 * MINUTE, 120 * MINUTE).unwrap();
            revoke(c, second.session.id, 0).unwrap();
            assert_eq!(revoke_all_of(c, user.id, MINUTE).unwrap(), 1, "the live ones");
            assert_eq!(live(c, &first.token, 2 * MINUTE).unwrap(), None);

            let third = open(c, user.id, 0, 30 * MINUTE, 120 * MINUTE).unwrap();
            assert!(users::disable(c, user.workspace_id, user.id, MINUTE).unwrap());
            assert_eq!(live(c, &third.token, 2 * MINUTE).unwrap(), None);
            assert_eq!(users::last_sign_ins(c, user.workspace_id).unwrap(), vec![(user.id, 0)]);
        });
    }

    #[test]
    fn failed_sign_ins_are_counted_per_subject_within_their_window() {
        with_account(|c, _| {
            for at in [0, MINUTE, 2 * MINUTE] {
                record_failure(c, "account:ana@example.com", at, 0).unwrap();
            }
            record_failure(c, "address:192.0.2.7", 2 * MINUTE, 0).unwrap();
            let mut count = |subject: &str, since: i64| failures_since(c, subject, since).unwrap();
            assert_eq!(count("account:ana@example.com", 0), (3, Some(2 * MINUTE)));
            assert_eq!(count("account:ana@example.com", MINUTE), (2, Some(2 * MINUTE)));
            assert_eq!(count("address:192.0.2.7", 0), (1, Some(2 * MINUTE)));
            assert_eq!(count("account:bob@example.com", 0), (0, None));

            // A later failure forgets those before its window; a success forgets its subject's.
            record_failure(c, "address:192.0.2.7", 20 * MINUTE, 15 * MINUTE).unwrap();
            assert_eq!(failures_since(c, "account:ana@example.com", 0).unwrap(), (0, None));
            assert_eq!(failures_since(c, "address:192.0.2.7", 0).unwrap(), (1, Some(20 * MINUTE)));
            // A failure older than the window it forgets is still recorded, as SQLite's is.
            record_failure(c, "address:192.0.2.7", 10 * MINUTE, 15 * MINUTE).unwrap();
            assert_eq!(failures_since(c, "address:192.0.2.7", 0).unwrap(), (2, Some(20 * MINUTE)));
            clear_failures(c, "address:192.0.2.7").unwrap();
            assert_eq!(failures_since(c, "address:192.0.2.7", 0).unwrap(), (0, None));
        });
    }
}
