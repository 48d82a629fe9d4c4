//! What a connection's ingestions remember of each workspace between transactions (see
//! [`crate::postgres::ingestion`], which reads and fills it); kept by the connection
//! ([`crate::postgres::tx::Connection`]).

use std::collections::HashMap;

use crate::models::ModelVersion;
use crate::webhooks::Webhook;

/// What an ingestion reads of its workspace besides leads, as of a version of the workspace.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) version: i64,
    pub(crate) active_model: Option<ModelVersion>,
    pub(crate) webhooks: Vec<Webhook>,
}

/// A connection's memory of each workspace's [`Settings`]. Per connection, so that no lock is
/// shared between the store's workers; a workspace's settings are read once per connection and
/// again after each change.
#[derive(Default)]
pub(crate) struct Remembered {
    pub(crate) by_workspace: HashMap<i64, Settings>,
}

impl Remembered {
    /// Workspaces remembered at most: past it the memory starts afresh.
    pub(crate) const LIMIT: usize = 1_024;
}
