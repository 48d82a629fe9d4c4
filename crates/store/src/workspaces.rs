//! Workspaces (tenants). Every other table is scoped by a workspace id.

use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub id: i64,
    pub name: String,
}

pub fn find(connection: &Connection, name: &str) -> Result<Option<Workspace>, StoreError> {
    Ok(connection
        .query_row("SELECT id, name FROM workspaces WHERE name = ?1", [name], |row| {
            Ok(Workspace { id: row.get(0)?, name: row.get(1)? })
        })
        .optional()?)
}

pub fn find_or_create(connection: &Connection, name: &str, now: i64) -> Result<Workspace, StoreError> {
    if let Some(workspace) = find(connection, name)? {
        return Ok(workspace);
    }
    connection.execute("INSERT INTO workspaces (name, created_at) VALUES (?1, ?2)", params![name, now])?;
    Ok(Workspace { id: connection.last_insert_rowid(), name: name.to_string() })
}
