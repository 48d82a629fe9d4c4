//! PostgreSQL queries of the workspaces family (see [`crate::workspaces`] for SQLite's).
#![allow(unused_imports, unused_variables)]

use crate::postgres::Tx;
use crate::workspaces::*;
use crate::StoreError;

pub(crate) fn find_or_create(connection: &mut Tx<'_>, name: &str, now: i64) -> Result<Workspace, StoreError> {
    todo!()
}
