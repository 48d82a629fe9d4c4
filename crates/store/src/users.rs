//! People who sign in to the console: an account per e-mail address, in one workspace, with a
//! role. The store keeps the password's hash as it is given (an Argon2id PHC string made by the
//! service); it never sees a password.
//!
//! An e-mail address is unique over every workspace, compared trimmed and lower-cased, so that
//! `Ana@Example.com` and `ana@example.com` are one account and a sign-in finds it without asking
//! for the workspace.

use std::fmt;
use std::str::FromStr;

use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;

/// What a person may do in the console, each role including the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Reads leads, reports, models and their previews.
    Viewer,
    /// Also moves stages and edits and previews models.
    Editor,
    /// Also activates and rolls back models, and manages webhooks, keys and users.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    /// Whether a person of this role may do what `needed` may.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(text: &str) -> Result<Role, String> {
        match text {
            "viewer" => Ok(Role::Viewer),
            "editor" => Ok(Role::Editor),
            "admin" => Ok(Role::Admin),
            other => Err(format!("unknown role `{other}`: use viewer, editor or admin")),
        }
    }
}

impl rusqlite::types::FromSql for Role {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Role> {
        value.as_str()?.parse().map_err(|e: String| rusqlite::types::FromSqlError::Other(e.into()))
    }
}

/// An account, without its password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub workspace_id: i64,
    /// As it was given (the comparison key is trimmed and lower-cased).
    pub email: String,
    pub role: Role,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
}

/// The comparison key of an e-mail address.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

const COLUMNS: &str = "id, workspace_id, email, role, created_at, disabled_at";

fn user_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(0)?,
        workspace_id: row.get(1)?,
        email: row.get(2)?,
        role: row.get(3)?,
        created_at: row.get(4)?,
        disabled_at: row.get(5)?,
    })
}

/// Creates an account; a `Conflict` if the address already has one (in any workspace).
pub fn create(
    connection: &Connection,
    workspace_id: i64,
    email: &str,
    role: Role,
    password_hash: &str,
    now: i64,
) -> Result<User, StoreError> {
    let email = email.trim();
    let key = email_key(email);
    let taken: Option<i64> =
        connection.query_row("SELECT id FROM users WHERE email_key = ?1", [&key], |row| row.get(0)).optional()?;
    if taken.is_some() {
        return Err(StoreError::Conflict(format!("there is already an account for {email}")));
    }
    connection.execute(
        "INSERT INTO users (workspace_id, email, email_key, role, password_hash, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![workspace_id, email, key, role.as_str(), password_hash, now],
    )?;
    Ok(User {
        id: connection.last_insert_rowid(),
        workspace_id,
        email: email.to_string(),
        role,
        created_at: now,
        disabled_at: None,
    })
}

/// The account of an e-mail address (disabled or not) with its password hash, for a sign-in.
pub fn by_email(connection: &Connection, email: &str) -> Result<Option<(User, String)>, StoreError> {
    let sql = format!("SELECT {COLUMNS}, password_hash FROM users WHERE email_key = ?1");
    Ok(connection.query_row(&sql, [email_key(email)], |row| Ok((user_from_row(row)?, row.get(6)?))).optional()?)
}

/// The workspace's accounts, disabled ones included, in the order they were created.
pub fn list(connection: &Connection, workspace_id: i64) -> Result<Vec<User>, StoreError> {
    let mut statement =
        connection.prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE workspace_id = ?1 ORDER BY id"))?;
    let rows = statement.query_map([workspace_id], user_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Gives one of the workspace's accounts a new password hash; false if it has no such account.
pub fn set_password(
    connection: &Connection,
    workspace_id: i64,
    user_id: i64,
    password_hash: &str,
) -> Result<bool, StoreError> {
    let changed = connection.execute(
        "UPDATE users SET password_hash = ?3 WHERE workspace_id = ?1 AND id = ?2",
        params![workspace_id, user_id, password_hash],
    )?;
    Ok(changed == 1)
}

/// Refuses (`Conflict`) a change that would leave the workspace without an enabled admin: the
/// account `user_id` is its only one. Nobody could then manage its people, keys or webhooks.
fn keep_an_admin(connection: &Connection, workspace_id: i64, user_id: i64) -> Result<(), StoreError> {
    let (is_admin, others): (bool, i64) = connection.query_row(
        "SELECT coalesce(max(id = ?2), 0), count(*) FILTER (WHERE id != ?2) FROM users \
         WHERE workspace_id = ?1 AND role = 'admin' AND disabled_at IS NULL",
        params![workspace_id, user_id],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    if is_admin && others == 0 {
        return Err(StoreError::Conflict(
            "this is the workspace's last admin: make another person admin first".to_string(),
        ));
    }
    Ok(())
}

/// Gives one of the workspace's accounts another role; false if it has no such account.
/// Refused (`Conflict`) when it would take the role of admin from the workspace's last admin.
pub fn set_role(connection: &Connection, workspace_id: i64, user_id: i64, role: Role) -> Result<bool, StoreError> {
    if role != Role::Admin {
        keep_an_admin(connection, workspace_id, user_id)?;
    }
    let changed = connection.execute(
        "UPDATE users SET role = ?3 WHERE workspace_id = ?1 AND id = ?2",
        params![workspace_id, user_id, role.as_str()],
    )?;
    Ok(changed == 1)
}

/// When each of the workspace's accounts last signed in (opened a session), by account id;
/// accounts that never did are absent.
pub fn last_sign_ins(connection: &Connection, workspace_id: i64) -> Result<Vec<(i64, i64)>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT u.id, max(s.created_at) FROM users u JOIN sessions s ON s.user_id = u.id \
         WHERE u.workspace_id = ?1 GROUP BY u.id ORDER BY u.id",
    )?;
    let rows = statement.query_map([workspace_id], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Disables one of the workspace's accounts: it can no longer sign in and its sessions end
/// (`sessions::live` finds none). False if the workspace has no such live account. Refused
/// (`Conflict`) for the workspace's last enabled admin.
pub fn disable(connection: &Connection, workspace_id: i64, user_id: i64, now: i64) -> Result<bool, StoreError> {
    keep_an_admin(connection, workspace_id, user_id)?;
    let changed = connection.execute(
        "UPDATE users SET disabled_at = ?3 WHERE workspace_id = ?1 AND id = ?2 AND disabled_at IS NULL",
        params![workspace_id, user_id, now],
    )?;
    Ok(changed == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, workspaces};

    #[test]
    fn an_address_has_one_account_whatever_its_case_and_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (ana, again, elsewhere, listed) = store
            .write_blocking(|c| {
                let acme = workspaces::find_or_create(c, "acme", 1)?;
                let globex = workspaces::find_or_create(c, "globex", 1)?;
                let ana = create(c, acme.id, " Ana@Example.com ", Role::Editor, "$argon2id$hash", 2)?;
                let again = create(c, acme.id, "ana@example.com", Role::Admin, "$argon2id$other", 3);
                let elsewhere = create(c, globex.id, "ANA@EXAMPLE.COM", Role::Viewer, "$argon2id$third", 4);
                Ok((ana, again, elsewhere, list(c, acme.id)?))
            })
            .unwrap();
        assert_eq!(ana.email, "Ana@Example.com");
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
        assert!(matches!(elsewhere, Err(StoreError::Conflict(_))), "{elsewhere:?}");
        assert_eq!(listed, vec![ana.clone()]);
        let found = store.read_blocking(|c| by_email(c, "ana@EXAMPLE.com")).unwrap();
        assert_eq!(found, Some((ana, "$argon2id$hash".to_string())));
        assert_eq!(store.read_blocking(|c| by_email(c, "bob@example.com")).unwrap(), None);
    }

    #[test]
    fn roles_include_the_ones_below_them() {
        assert!(Role::Admin.allows(Role::Editor) && Role::Admin.allows(Role::Viewer));
        assert!(Role::Editor.allows(Role::Viewer) && !Role::Editor.allows(Role::Admin));
        assert!(!Role::Viewer.allows(Role::Editor));
        for role in [Role::Viewer, Role::Editor, Role::Admin] {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert_eq!("owner".parse::<Role>(), Err("unknown role `owner`: use viewer, editor or admin".to_string()));
    }
}
