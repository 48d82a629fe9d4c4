//! PostgreSQL queries of the users family (see [`crate::users`] for SQLite's): console accounts,
//! one per e-mail address over every workspace, each with a role and its password's hash.
//!
//! How it differs from SQLite, for several instances writing at once:
//! - An address's uniqueness comes from the unique `email_key` alone: an insert that conflicts
//!   on it is the `Conflict` SQLite's look-up answers (two creations of one address at once
//!   cannot both pass a look-up made before either inserts).
//! - A change that could leave a workspace without an enabled admin (a demotion, a disabling)
//!   first locks the workspace's enabled admins, in id order: two such changes of one workspace
//!   then run one after the other, and the second sees what the first did. Without the lock, two
//!   admins demoting each other at once would each see the other as the one who remains.
//! - The table checks that a role is one of the roles' names (SQLite's does not); a row with
//!   another still reads as `Corrupt`, as in SQLite.

use crate::StoreError;
use crate::postgres::tx::Tx;
use crate::users::{Role, User, email_key};

const COLUMNS: &str = "id, workspace_id, email, role, created_at, disabled_at";

fn user_from_row(row: &postgres::Row) -> Result<User, StoreError> {
    Ok(User {
        id: row.try_get(0)?,
        workspace_id: row.try_get(1)?,
        email: row.try_get(2)?,
        role: row.try_get::<_, &str>(3)?.parse().map_err(StoreError::Corrupt)?,
        created_at: row.try_get(4)?,
        disabled_at: row.try_get(5)?,
    })
}

/// The account of an e-mail address (disabled or not) with its password hash, for a sign-in.
pub(crate) fn by_email(connection: &mut Tx<'_>, email: &str) -> Result<Option<(User, String)>, StoreError> {
    let sql = format!("SELECT {COLUMNS}, password_hash FROM users WHERE email_key = $1");
    let row = connection.query_opt(&sql, &[&email_key(email)])?;
    row.map(|row| Ok((user_from_row(&row)?, row.try_get(6)?))).transpose()
}

/// The workspace's accounts, disabled ones included, in the order they were created.
pub(crate) fn list(connection: &mut Tx<'_>, workspace_id: i64) -> Result<Vec<User>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE workspace_id = $1 ORDER BY id");
    connection.query(&sql, &[&workspace_id])?.iter().map(user_from_row).collect()
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
    let email = email.trim();
    // An insert of the same address by another transaction not yet committed makes this one wait
    // for its end: committed, it is a conflict; rolled back, this insert goes on.
    let inserted = connection.query_opt(
        "INSERT INTO users (workspace_id, email, email_key, role, password_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (email_key) DO NOTHING RETURNING id",
        &[&workspace_id, &email, &email_key(email), &role.as_str(), &password_hash, &now],
    )?;
    let Some(row) = inserted else {
        return Err(StoreError::Conflict(format!("there is already an account for {email}")));
    };
    Ok(User { id: row.try_get(0)?, workspace_id, email: email.to_string(), role, created_at: now, disabled_at: None })
}

/// Gives one of the workspace's accounts a new password hash; false if it has no such account.
pub(crate) fn set_password(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    user_id: i64,
    password_hash: &str,
) -> Result<bool, StoreError> {
    let changed = connection.execute(
        "UPDATE users SET password_hash = $3 WHERE workspace_id = $1 AND id = $2",
        &[&workspace_id, &user_id, &password_hash],
    )?;
    Ok(changed == 1)
}

/// Refuses (`Conflict`) a change that would leave the workspace without an enabled admin: the
/// account `user_id` is its only one. Nobody could then manage its people, keys or webhooks.
///
/// The workspace's enabled admins stay locked until the transaction ends (see the module's doc),
/// as an update of them would lock them: not against a session's opening, whose reference to its
/// account asks only that the account's key stays.
/// A row that another transaction changed meanwhile is read again once that one commits, so an
/// admin demoted or disabled by it is not counted; one it made admin is not seen, which can only
/// refuse a change that had been allowed, never allow one that leaves no admin.
fn keep_an_admin(connection: &mut Tx<'_>, workspace_id: i64, user_id: i64) -> Result<(), StoreError> {
    let admins: Vec<i64> = connection
        .query(
            "SELECT id FROM users WHERE workspace_id = $1 AND role = 'admin' AND disabled_at IS NULL \
             ORDER BY id FOR NO KEY UPDATE",
            &[&workspace_id],
        )?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
    if admins.contains(&user_id) && admins.len() == 1 {
        return Err(StoreError::Conflict(
            "this is the workspace's last admin: make another person admin first".to_string(),
        ));
    }
    Ok(())
}

/// Gives one of the workspace's accounts another role; false if it has no such account.
/// Refused (`Conflict`) when it would take the role of admin from the workspace's last admin.
pub(crate) fn set_role(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    user_id: i64,
    role: Role,
) -> Result<bool, StoreError> {
    if role != Role::Admin {
        keep_an_admin(connection, workspace_id, user_id)?;
    }
    let changed = connection.execute(
        "UPDATE users SET role = $3 WHERE workspace_id = $1 AND id = $2",
        &[&workspace_id, &user_id, &role.as_str()],
    )?;
    Ok(changed == 1)
}

/// When each of the workspace's accounts last signed in (opened a session), by account id;
/// accounts that never did are absent.
pub(crate) fn last_sign_ins(connection: &mut Tx<'_>, workspace_id: i64) -> Result<Vec<(i64, i64)>, StoreError> {
    let rows = connection.query(
        "SELECT u.id, max(s.created_at) FROM users u JOIN sessions s ON s.user_id = u.id \
         WHERE u.workspace_id = $1 GROUP BY u.id ORDER BY u.id",
        &[&workspace_id],
    )?;
    rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect()
}

/// Disables one of the workspace's accounts: it can no longer sign in and its sessions end
/// (`sessions::live` finds none). False if the workspace has no such live account. Refused
/// (`Conflict`) for the workspace's last enabled admin.
pub(crate) fn disable(connection: &mut Tx<'_>, workspace_id: i64, user_id: i64, now: i64) -> Result<bool, StoreError> {
    keep_an_admin(connection, workspace_id, user_id)?;
    let changed = connection.execute(
        "UPDATE users SET disabled_at = $3 WHERE workspace_id = $1 AND id = $2 AND disabled_at IS NULL",
        &[&workspace_id, &user_id, &now],
    )?;
    Ok(changed == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::testing::TestDatabase;
    use crate::postgres::workspaces::{self, wait_until_one_waits_for_a_lock};

    #[test]
    fn an_address_has_one_account_whatever_its_case_and_workspace() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut c = client.transaction();
        let acme = workspaces::find_or_create(&mut c, "acme", 1).unwrap();
        let globex = workspaces::find_or_create(&mut c, "globex", 1).unwrap();
        let ana = create(&mut c, acme.id, " Ana@Example.com ", Role::Editor, "$argon2id$hash", 2).unwrap();
        assert_eq!(ana.email, "Ana@Example.com");
        let again = create(&mut c, acme.id, "ana@example.com", Role::Admin, "$argon2id$other", 3);
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
        let elsewhere = create(&mut c, globex.id, "ANA@EXAMPLE.COM", Role::Viewer, "$argon2id$third", 4);
        assert!(matches!(elsewhere, Err(StoreError::Conflict(_))), "{elsewhere:?}");
        assert_eq!(list(&mut c, acme.id).unwrap(), vec![ana.clone()]);
        assert!(list(&mut c, globex.id).unwrap().is_empty());
        assert_eq!(by_email(&mut c, "ana@EXAMPLE.com").unwrap(), Some((ana, "$argon2id$hash".to_string())));
        assert_eq!(by_email(&mut c, "bob@example.com").unwrap(), None);
    }

    #[test]
    fn an_address_created_twice_at_once_is_a_conflict_for_the_second() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let acme = {
            let mut c = client.transaction();
            let acme = workspaces::find_or_create(&mut c, "acme", 1).unwrap();
            c.commit().unwrap();
            acme
        };
        let mut first = client.transaction();
        create(&mut first, acme.id, "ana@example.com", Role::Admin, "h", 2).unwrap();
        let url = database.url.clone();
        let second = std::thread::spawn(move || {
            let mut other = crate::postgres::Connection::connect_url(&url);
            let mut c = other.transaction();
            create(&mut c, acme.id, "ANA@example.com", Role::Viewer, "h", 3)
        });
        wait_until_one_waits_for_a_lock(&database, &second);
        first.commit().unwrap();
        let second = second.join().unwrap();
        assert!(matches!(second, Err(StoreError::Conflict(_))), "{second:?}");
    }

    #[test]
    fn the_last_enabled_admin_stays_admin_and_enabled() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut c = client.transaction();
        let acme = workspaces::find_or_create(&mut c, "acme", 1).unwrap();
        let globex = workspaces::find_or_create(&mut c, "globex", 1).unwrap();
        let ana = create(&mut c, acme.id, "ana@example.com", Role::Admin, "h", 1).unwrap();
        let bob = create(&mut c, acme.id, "bob@example.com", Role::Editor, "h", 1).unwrap();
        let eve = create(&mut c, globex.id, "eve@example.com", Role::Admin, "h", 1).unwrap();
        let last = |result: Result<bool, StoreError>| matches!(result, Err(StoreError::Conflict(_)));
        assert!(last(set_role(&mut c, acme.id, ana.id, Role::Editor)));
        assert!(last(disable(&mut c, acme.id, ana.id, 2)));
        assert!(set_role(&mut c, acme.id, ana.id, Role::Admin).unwrap(), "staying admin is no change to refuse");
        assert!(set_role(&mut c, acme.id, bob.id, Role::Viewer).unwrap());
        assert!(disable(&mut c, acme.id, bob.id, 2).unwrap());
        assert!(!disable(&mut c, acme.id, bob.id, 3).unwrap(), "already disabled");
        assert!(!set_role(&mut c, globex.id, ana.id, Role::Viewer).unwrap(), "not another's account");
        assert!(!set_password(&mut c, globex.id, ana.id, "x").unwrap(), "not another's account");
        assert!(set_password(&mut c, acme.id, ana.id, "new").unwrap());
        assert_eq!(by_email(&mut c, "ana@example.com").unwrap().map(|(_, hash)| hash), Some("new".to_string()));

        // A disabled admin is not one that remains.
        let carl = create(&mut c, acme.id, "carl@example.com", Role::Admin, "h", 4).unwrap();
        assert!(disable(&mut c, acme.id, carl.id, 5).unwrap());
        assert!(last(set_role(&mut c, acme.id, ana.id, Role::Viewer)));
        let dora = create(&mut c, acme.id, "dora@example.com", Role::Admin, "h", 6).unwrap();
        assert!(set_role(&mut c, acme.id, ana.id, Role::Viewer).unwrap(), "dora remains");
        assert!(last(disable(&mut c, acme.id, dora.id, 7)));
        let roles: Vec<Role> = list(&mut c, acme.id).unwrap().iter().map(|u| u.role).collect();
        assert_eq!(roles, [Role::Viewer, Role::Viewer, Role::Admin, Role::Admin]);
        assert_eq!(list(&mut c, globex.id).unwrap().iter().map(|u| u.id).collect::<Vec<_>>(), [eve.id]);
    }

    #[test]
    fn two_admins_demoting_each_other_at_once_leave_one() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let (acme, ana, bob) = {
            let mut c = client.transaction();
            let acme = workspaces::find_or_create(&mut c, "acme", 1).unwrap();
            let ana = create(&mut c, acme.id, "ana@example.com", Role::Admin, "h", 1).unwrap();
            let bob = create(&mut c, acme.id, "bob@example.com", Role::Admin, "h", 1).unwrap();
            c.commit().unwrap();
            (acme.id, ana.id, bob.id)
        };
        let mut first = client.transaction();
        assert!(set_role(&mut first, acme, ana, Role::Editor).unwrap());
        let url = database.url.clone();
        let second = std::thread::spawn(move || {
            let mut other = crate::postgres::Connection::connect_url(&url);
            let mut c = other.transaction();
            let result = disable(&mut c, acme, bob, 2);
            if result.is_ok() {
                c.commit().unwrap();
            }
            result
        });
        wait_until_one_waits_for_a_lock(&database, &second);
        first.commit().unwrap();
        let second = second.join().unwrap();
        assert!(matches!(second, Err(StoreError::Conflict(_))), "bob became the last admin: {second:?}");
        let mut c = client.transaction();
        let enabled_admins: Vec<i64> = list(&mut c, acme)
            .unwrap()
            .iter()
            .filter(|u| u.role == Role::Admin && u.disabled_at.is_none())
            .map(|u| u.id)
            .collect();
        assert_eq!(enabled_admins, [bob]);
    }

    #[test]
    fn a_role_that_is_not_one_reads_as_corrupt() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut c = client.transaction();
        let acme = workspaces::find_or_create(&mut c, "acme", 1).unwrap();
        let ana = create(&mut c, acme.id, "ana@example.com", Role::Admin, "h", 1).unwrap();
        // An older or newer version's role: the CHECK constraint is dropped to store it.
        c.batch_execute("ALTER TABLE users DROP CONSTRAINT users_role_check").unwrap();
        c.execute("UPDATE users SET role = 'owner' WHERE id = $1", &[&ana.id]).unwrap();
        assert!(matches!(list(&mut c, acme.id), Err(StoreError::Corrupt(_))));
        assert!(matches!(by_email(&mut c, "ana@example.com"), Err(StoreError::Corrupt(_))));
    }
}
