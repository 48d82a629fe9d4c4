//! One ingestion transaction of messages: alone on SQLite, whose one writer no other process
//! races; run again when it lost a race with another writer on PostgreSQL. Below both the
//! requests of `intake` and the groups of `intake::groups`.

use leadscore_store::StoreError;

use crate::ingest::{self, Ingested, Sender};
use crate::messages::Message;
use crate::state::AppState;

/// Ingests `messages`, received at `received_at`, in one transaction of a storage no other
/// process writes (SQLite's): nothing to race, so the messages are moved in, not copied.
pub(super) async fn ingest_once(
    state: &AppState,
    workspace_id: i64,
    messages: Vec<Result<Message, String>>,
    received_at: i64,
    sender: Sender,
) -> Result<Ingested, StoreError> {
    let (models, leads) = (state.models.clone(), state.leads.clone());
    state
        .storage
        .ingest(move |transaction| {
            ingest::ingest_from(transaction, &models, &leads, workspace_id, messages, received_at, sender)
        })
        .await
}

/// Ingests the messages of `parts` (one part per request, in order; `received[i]` the receipt
/// of the i-th message of them all) in one transaction, run again when it lost a race with
/// another writer of the storage. Each attempt ingests a copy, so that the parts stay with the
/// caller, whatever happens.
pub(super) async fn ingest_retrying(
    state: &AppState,
    workspace_id: i64,
    parts: &[&[Result<Message, String>]],
    received: &[i64],
    sender: Sender,
) -> Result<Ingested, StoreError> {
    // A request can lose a race it cannot see coming (another request created the same new lead
    // first, or a deadlock): nothing of it was stored, so it is run again here, a few times,
    // rather than answered 503.
    let mut attempt = 0;
    loop {
        let (models, leads) = (state.models.clone(), state.leads.clone());
        let messages: Vec<Result<Message, String>> = parts.iter().flat_map(|part| part.iter().cloned()).collect();
        let received = received.to_vec();
        let result = state
            .storage
            .ingest(move |transaction| {
                ingest::ingest_received(transaction, &models, &leads, workspace_id, messages, &received, sender)
            })
            .await;
        match result {
            Err(error) if attempt < RACE_RETRIES && lost_a_race(&error) => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(5 << attempt)).await;
            }
            result => return result,
        }
    }
}

/// Times a request is run again when it lost a race with another writer of the storage.
const RACE_RETRIES: u32 = 3;

/// Whether a request failed only because another transaction ran at the same time: a row it
/// created was created by the other first (`RolledBack`), a deadlock or a lock that did not come
/// in time (a storage failure of PostgreSQL's, 40P01, 55P03). Nothing of it was stored.
fn lost_a_race(error: &StoreError) -> bool {
    matches!(error, StoreError::RolledBack(_)) || error.is_storage_failure()
}
