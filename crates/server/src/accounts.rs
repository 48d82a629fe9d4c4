//! Signing people in to the console, and their sessions.
//!
//! A sign-in checks the password against the account's Argon2id hash on the blocking pool (a
//! hash takes tens of milliseconds of a core on purpose). A wrong address and a wrong password
//! get the same answer after the same work, so that the answer does not tell which addresses
//! have accounts. Guessing is slowed per account and per client address: past a few failures in
//! [`FAILURE_WINDOW`], each attempt must wait twice as long as the last after the latest failure,
//! even with the right password; the failures live in the database, so several instances of the
//! service slow guessing alike.
//!
//! A session ends after [`IDLE`] without use or [`LIFETIME`] after the sign-in, whichever comes
//! first, or at sign-out. Using it moves its idle end on, written at most once a minute so that
//! browsing does not write for every page.

use std::sync::{Arc, OnceLock};

use leadscore_store::Storage;
use leadscore_store::sessions::{Opened, Session};
use leadscore_store::users::{Role, User, email_key};

use crate::passwords;

/// How long a session lives without use.
pub const IDLE: i64 = 8 * HOUR;
/// How long a session lives at most.
pub const LIFETIME: i64 = 7 * 24 * HOUR;
/// How far back failed sign-ins count.
pub const FAILURE_WINDOW: i64 = 15 * MINUTE;
/// Failures aimed at one account that cost nothing.
const FREE_ACCOUNT_FAILURES: u32 = 5;
/// Failures from one client address that cost nothing (offices share an address).
const FREE_ADDRESS_FAILURES: u32 = 20;
/// The longest wait a failure imposes.
const LONGEST_WAIT: i64 = FAILURE_WINDOW;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

/// Why a sign-in did not open a session.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// The address has no enabled account, or the password is not its password: one answer for
    /// both.
    #[error("the e-mail address or the password is wrong")]
    WrongCredentials,
    /// Too many recent failures for this account or this address.
    #[error("too many failed sign-ins: try again in {retry_after_seconds} seconds")]
    TooManyAttempts { retry_after_seconds: u32 },
    #[error(transparent)]
    Storage(#[from] leadscore_store::StoreError),
    #[error("the password check did not run: {0}")]
    Hashing(String),
}

/// A browser's live session and whom it signs in.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub session: Session,
    pub user: User,
}

fn subjects(email: &str, address: &str) -> Vec<String> {
    vec![format!("account:{}", email_key(email)), format!("address:{address}")]
}

/// When the next attempt may be made after `failures` failures, the last at `last`, with
/// `free` of them costing nothing: none if it may be made now.
fn wait_until(failures: u32, last: Option<i64>, free: u32) -> Option<i64> {
    let over = failures.checked_sub(free)?;
    let wait = (1_000i64 << over.min(20)).min(LONGEST_WAIT);
    last.map(|last| last + wait)
}

/// A hash no password matches, checked when an address has no account so that the answer takes
/// as long as for a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| passwords::hash("a decoy password nobody has").unwrap_or_default())
}

/// Signs `email` in with `password` from the client `address` at `now`: a new session, or why not.
pub async fn sign_in(
    storage: &Arc<dyn Storage>,
    email: &str,
    password: &str,
    address: &str,
    now: i64,
) -> Result<(Opened, User), SignInError> {
    let subjects = subjects(email, address);
    let counts = storage.sign_in_failures(subjects.clone(), now - FAILURE_WINDOW).await?;
    let free = [FREE_ACCOUNT_FAILURES, FREE_ADDRESS_FAILURES];
    let next_allowed = counts.iter().zip(free).filter_map(|(&(n, last), free)| wait_until(n, last, free)).max();
    if let Some(at) = next_allowed.filter(|&at| at > now) {
        let seconds = ((at - now) as f64 / 1000.0).ceil() as u32;
        return Err(SignInError::TooManyAttempts { retry_after_seconds: seconds.max(1) });
    }

    let account = storage.account_for_sign_in(email.to_string()).await?;
    let (user, hash) = match account {
        Some((user, hash)) if user.disabled_at.is_none() => (Some(user), hash),
        _ => (None, decoy_hash().to_string()),
    };
    let password = password.to_string();
    let matches = tokio::task::spawn_blocking(move || passwords::verify(&password, &hash))
        .await
        .map_err(|e| SignInError::Hashing(e.to_string()))?;
    match user {
        Some(user) if matches => {
            let opened = storage.open_session(user.id, subjects, now, IDLE, LIFETIME).await?;
            Ok((opened, user))
        }
        _ => {
            storage.record_sign_in_failure(subjects, now, now - FAILURE_WINDOW).await?;
            Err(SignInError::WrongCredentials)
        }
    }
}

/// The live session of a browser's `token` at `now`, its idle end moved on if it is more than a
/// minute old.
pub async fn session(
    storage: &Arc<dyn Storage>,
    token: &str,
    now: i64,
) -> Result<Option<SignedIn>, leadscore_store::StoreError> {
    let Some((mut session, user)) = storage.live_session(token.to_string(), now).await? else {
        return Ok(None);
    };
    let idle_until = (now + IDLE).min(session.ends_at);
    if idle_until - session.idle_until > MINUTE {
        storage.extend_session(session.id, idle_until).await?;
        session.idle_until = idle_until;
    }
    Ok(Some(SignedIn { session, user }))
}

/// Ends a session (a sign-out).
pub async fn sign_out(
    storage: &Arc<dyn Storage>,
    session_id: i64,
    now: i64,
) -> Result<(), leadscore_store::StoreError> {
    storage.end_session(session_id, now).await.map(|_| ())
}

/// Why an account could not be made or changed: the input of the person asking, in words for
/// them, or a fault of the service.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("`{0}` is not an e-mail address: give the address the person signs in with")]
    NotAnEmail(String),
    #[error(transparent)]
    Password(#[from] passwords::PasswordError),
    /// Refused by the store: an address that has an account, the workspace's last admin.
    #[error("{0}")]
    Refused(String),
    #[error("this workspace has no such person: reload the list of people")]
    NoSuchAccount,
    /// A role that is not one of the three.
    #[error("{0}")]
    UnknownRole(String),
    #[error(transparent)]
    Storage(leadscore_store::StoreError),
}

impl From<leadscore_store::StoreError> for AccountError {
    fn from(error: leadscore_store::StoreError) -> AccountError {
        match error {
            leadscore_store::StoreError::Conflict(reason) => AccountError::Refused(reason),
            other => AccountError::Storage(other),
        }
    }
}

/// Checks that `email` looks like an address a person signs in with.
pub fn check_email(email: &str) -> Result<(), AccountError> {
    let trimmed = email.trim();
    if !trimmed.contains('@') || trimmed.chars().count() > 254 || trimmed.chars().any(char::is_whitespace) {
        return Err(AccountError::NotAnEmail(email.to_string()));
    }
    Ok(())
}

/// A password made for someone (16 letters and digits of 57, about 93 bits, in groups of four to
/// read out), shown once to the admin who hands it over.
pub fn generated_password() -> Result<String, AccountError> {
    // Letters and digits that cannot be read as one another (no 0/O, 1/l/I).
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).map_err(|e| AccountError::Refused(format!("no randomness for a password: {e}")))?;
    let letters: String = random.iter().map(|&b| ALPHABET[b as usize % ALPHABET.len()] as char).collect();
    Ok(format!("{}-{}-{}-{}", &letters[..4], &letters[4..8], &letters[8..12], &letters[12..]))
}

/// `password` checked for the owner of `email` and hashed, on the blocking pool.
async fn checked_hash(password: String, email: &str) -> Result<String, AccountError> {
    passwords::check(&password, email)?;
    tokio::task::spawn_blocking(move || passwords::hash(&password))
        .await
        .map_err(|e| passwords::PasswordError::Hashing(e.to_string()))?
        .map_err(AccountError::from)
}

/// Makes an account of the workspace with `role` and `password`.
pub async fn create_account(
    storage: &Arc<dyn Storage>,
    workspace_id: i64,
    email: &str,
    role: Role,
    password: String,
    now: i64,
) -> Result<User, AccountError> {
    check_email(email)?;
    let hash = checked_hash(password, email).await?;
    Ok(storage.create_user(workspace_id, email.trim().to_string(), role, hash, now).await?)
}

/// Gives one of the workspace's accounts (`user`) a new password; its sessions end.
pub async fn set_password(
    storage: &Arc<dyn Storage>,
    user: &User,
    password: String,
    now: i64,
) -> Result<(), AccountError> {
    let hash = checked_hash(password, &user.email).await?;
    match storage.set_password(user.workspace_id, user.id, hash, now).await? {
        true => Ok(()),
        false => Err(AccountError::NoSuchAccount),
    }
}

/// Whether `password` is the current password of the account of `email`, checked on the
/// blocking pool (a person changing their own password proves they know it).
pub async fn password_matches(storage: &Arc<dyn Storage>, email: &str, password: &str) -> Result<bool, AccountError> {
    let Some((_, hash)) = storage.account_for_sign_in(email.to_string()).await? else { return Ok(false) };
    let password = password.to_string();
    tokio::task::spawn_blocking(move || passwords::verify(&password, &hash))
        .await
        .map_err(|e| AccountError::Password(passwords::PasswordError::Hashing(e.to_string())))
}

/// Opens a new session for someone whose sessions a change of their own password ended.
pub async fn reopen_session(storage: &Arc<dyn Storage>, user: &User, now: i64) -> Result<Opened, AccountError> {
    Ok(storage.open_session(user.id, Vec::new(), now, IDLE, LIFETIME).await?)
}

/// Gives one of the workspace's accounts another role (refused for its last admin).
pub async fn change_role(
    storage: &Arc<dyn Storage>,
    workspace_id: i64,
    user_id: i64,
    role: Role,
) -> Result<(), AccountError> {
    match storage.set_user_role(workspace_id, user_id, role).await? {
        true => Ok(()),
        false => Err(AccountError::NoSuchAccount),
    }
}

/// Disables one of the workspace's accounts and ends its sessions (refused for its last admin).
pub async fn disable(
    storage: &Arc<dyn Storage>,
    workspace_id: i64,
    user_id: i64,
    now: i64,
) -> Result<(), AccountError> {
    match storage.disable_user(workspace_id, user_id, now).await? {
        true => Ok(()),
        false => Err(AccountError::NoSuchAccount),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadscore_store::Store;

    const PASSWORD: &str = "correct horse battery";
    const OFFICE: &str = "192.0.2.7";

    fn storage_with_ana() -> (tempfile::TempDir, Arc<dyn Storage>, tokio::runtime::Runtime) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let hash = passwords::hash(PASSWORD).unwrap();
        store
            .write_blocking(move |c| {
                let acme = leadscore_store::workspaces::find_or_create(c, "acme", 0)?;
                leadscore_store::users::create(c, acme.id, "ana@example.com", Role::Editor, &hash, 0)
            })
            .unwrap();
        (dir, Arc::new(store), tokio::runtime::Runtime::new().unwrap())
    }

    #[test]
    fn the_right_password_opens_a_session_that_lives_until_sign_out() {
        let (_dir, storage, runtime) = storage_with_ana();
        let (opened, user) = runtime.block_on(sign_in(&storage, " ANA@example.com", PASSWORD, OFFICE, 0)).unwrap();
        assert_eq!(user.email, "ana@example.com");
        assert_eq!((opened.session.idle_until, opened.session.ends_at), (IDLE, LIFETIME));

        // Used an hour later: its idle end moves on from there.
        let signed_in = runtime.block_on(session(&storage, &opened.token, HOUR)).unwrap().unwrap();
        assert_eq!(signed_in.user.id, user.id);
        assert_eq!(signed_in.session.idle_until, HOUR + IDLE);
        assert!(runtime.block_on(session(&storage, &opened.token, HOUR + IDLE - 1)).unwrap().is_some());
        // Unused for longer than its idle time: ended.
        assert!(runtime.block_on(session(&storage, &opened.token, 3 * HOUR + 2 * IDLE)).unwrap().is_none());

        let (other, _) = runtime.block_on(sign_in(&storage, "ana@example.com", PASSWORD, OFFICE, 0)).unwrap();
        runtime.block_on(sign_out(&storage, other.session.id, HOUR)).unwrap();
        assert!(runtime.block_on(session(&storage, &other.token, HOUR)).unwrap().is_none(), "signed out");
        assert!(runtime.block_on(session(&storage, "lss_forged", 0)).unwrap().is_none());
    }

    #[test]
    fn a_wrong_password_and_an_unknown_address_get_the_same_answer() {
        let (_dir, storage, runtime) = storage_with_ana();
        let wrong = runtime.block_on(sign_in(&storage, "ana@example.com", "not her password", OFFICE, 0));
        let unknown = runtime.block_on(sign_in(&storage, "bob@example.com", PASSWORD, OFFICE, 0));
        assert!(matches!(wrong, Err(SignInError::WrongCredentials)), "{wrong:?}");
        assert!(matches!(unknown, Err(SignInError::WrongCredentials)), "{unknown:?}");
        assert_eq!(wrong.unwrap_err().to_string(), unknown.unwrap_err().to_string());
    }

    #[test]
    fn guessing_an_account_slows_down_even_for_the_right_password_then_recovers() {
        let (_dir, storage, runtime) = storage_with_ana();
        for second in 0..FREE_ACCOUNT_FAILURES as i64 + 1 {
            let attempt = runtime.block_on(sign_in(&storage, "ana@example.com", "guess", OFFICE, second * 1000));
            assert!(matches!(attempt, Err(SignInError::WrongCredentials)), "attempt {second}: {attempt:?}");
        }
        // Six failures, the last at 5 s: the next attempt waits 2 s after it.
        let early = runtime.block_on(sign_in(&storage, "ana@example.com", PASSWORD, OFFICE, 6_000));
        assert!(matches!(early, Err(SignInError::TooManyAttempts { retry_after_seconds: 1 })), "{early:?}");
        let later = runtime.block_on(sign_in(&storage, "ana@example.com", PASSWORD, OFFICE, 7_000));
        assert!(later.is_ok(), "{later:?}");
        // The success forgot the account's failures: one more mistake costs nothing.
        let again = runtime.block_on(sign_in(&storage, "ana@example.com", "typo", OFFICE, 8_000));
        assert!(matches!(again, Err(SignInError::WrongCredentials)), "{again:?}");
        assert!(runtime.block_on(sign_in(&storage, "ana@example.com", PASSWORD, OFFICE, 8_001)).is_ok());
    }

    #[test]
    fn a_disabled_account_cannot_sign_in_and_its_sessions_end() {
        let (_dir, storage, runtime) = storage_with_ana();
        let (opened, user) = runtime.block_on(sign_in(&storage, "ana@example.com", PASSWORD, OFFICE, 0)).unwrap();
        assert!(runtime.block_on(storage.disable_user(user.workspace_id, user.id, 1)).unwrap());
        assert!(runtime.block_on(session(&storage, &opened.token, 2)).unwrap().is_none());
        let attempt = runtime.block_on(sign_in(&storage, "ana@example.com", PASSWORD, OFFICE, 3));
        assert!(matches!(attempt, Err(SignInError::WrongCredentials)), "{attempt:?}");
    }

    #[test]
    fn generated_passwords_are_long_readable_and_new_each_time() {
        let first = generated_password().unwrap();
        assert_eq!(first.len(), 19, "{first}");
        assert!(passwords::check(&first, "ana@example.com").is_ok());
        assert!(first.chars().all(|c| c == '-' || (c.is_ascii_alphanumeric() && !"0O1lI".contains(c))), "{first}");
        assert_ne!(generated_password().unwrap(), first);
        assert!(check_email(" ana@example.com ").is_ok());
        assert!(matches!(check_email("ana example"), Err(AccountError::NotAnEmail(_))));
    }

    #[test]
    fn waits_double_past_the_free_failures_up_to_the_window() {
        assert_eq!(wait_until(5, Some(0), 5), Some(1_000));
        assert_eq!(wait_until(4, Some(0), 5), None);
        assert_eq!(wait_until(7, Some(10), 5), Some(4_010));
        assert_eq!(wait_until(60, Some(0), 5), Some(FAILURE_WINDOW));
    }
}
