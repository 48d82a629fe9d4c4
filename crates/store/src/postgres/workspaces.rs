//! PostgreSQL queries of the workspaces family (see [`crate::workspaces`] for SQLite's).
#![allow(unused_imports, unused_variables)]

use crate::postgres::Tx;
use crate::workspaces::*;
use crate::StoreError;

pub(crate) fn find_or_create(connection: &mut Tx<'_>, name: &str, now: i64) -> Result<Workspace, StoreError> {
    todo!()
}

/// The workspace of this name, if there is one.
pub(crate) fn find(c: &mut Tx<'_>, name: &str) -> Result<Option<Workspace>, StoreError> {
    let row = c.query_opt("SELECT id, name FROM workspaces WHERE name = $1", &[&name])?;
    Ok(row.map(|row| Workspace { id: row.get(0), name: row.get(1) }))
}
