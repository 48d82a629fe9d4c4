//! Accepting messages, from any route (Segment's API, the native API, CSV imports): ingestion in
//! one coherent writer job, answered once durable; then the webhook dispatcher is woken for what
//! was queued and the outcomes are counted.
//!
//! On SQLite the store's one writer runs several requests' jobs per transaction itself (group
//! commit). Where other processes write the same storage (PostgreSQL), each job is a transaction
//! of its own, so requests that arrive together are ingested together here ([`groups`]).

mod attempt;
pub mod groups;
pub mod lanes;

use crate::error::ApiError;
use crate::ingest::{Ingested, Sender};
use crate::messages::Message;
use crate::state::AppState;
use attempt::ingest_once;

/// Stores the messages in the writer's transaction; answers once they are durable.
pub async fn accept(
    state: &AppState,
    workspace_id: i64,
    messages: Vec<Result<Message, String>>,
    received_at: i64,
) -> Result<Ingested, ApiError> {
    accept_from(state, workspace_id, messages, received_at, Sender::Trusted).await
}

/// As [`accept`], with what `sender` may not do refused.
pub async fn accept_from(
    state: &AppState,
    workspace_id: i64,
    messages: Vec<Result<Message, String>>,
    received_at: i64,
    sender: Sender,
) -> Result<Ingested, ApiError> {
    let ingested = if state.storage.sole_writer() {
        let ingested = ingest_once(state, workspace_id, messages, received_at, sender).await?;
        state.metrics.count_ingested(&ingested);
        ingested
    } else {
        groups::accept(state, lanes::Request { workspace_id, messages, received_at, sender }).await?
    };
    if ingested.queued > 0 {
        state.deliveries.notify_one();
    }
    Ok(ingested)
}
