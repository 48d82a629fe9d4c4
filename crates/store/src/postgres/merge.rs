//! PostgreSQL queries of the merge family (see [`crate::merge`] for SQLite's).
#![allow(unused_imports, unused_variables)]

use crate::postgres::Tx;
use crate::merge::*;
use serde_json::{Map, Value};
use crate::StoreError;
use crate::events;
use crate::leads::LeadRow;

/// Moves everything of lead `from` (events, anonymous ids) to lead `into`; `from` remains as a
/// pointer so that old references still resolve. `from`'s events are linked in ahead of
/// `into`'s, whose `last_event_id` changes; `into` takes the attributes, e-mail and times it
/// lacks from `from` (the caller saves `into`).
pub(crate) fn merge_leads(connection: &mut Tx<'_>, from: &LeadRow, into: &mut LeadRow) -> Result<(), StoreError> {
    todo!()
}
