//! Accepting messages, from any route (Segment's API, the native API, CSV imports): ingestion in
//! one coherent writer job, answered once durable; then the webhook dispatcher is woken for what
//! was queued and the outcomes are counted.

use crate::error::ApiError;
use crate::ingest::{self, Ingested, Sender};
use crate::messages::Message;
use crate::state::AppState;

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
    let (models, leads) = (state.models.clone(), state.leads.clone());
    let ingested = state
        .storage
        .ingest(move |transaction| {
            ingest::ingest_from(transaction, &models, &leads, workspace_id, messages, received_at, sender)
        })
        .await?;
    if ingested.queued > 0 {
        state.deliveries.notify_one();
    }
    state.metrics.count_ingested(&ingested);
    Ok(ingested)
}
