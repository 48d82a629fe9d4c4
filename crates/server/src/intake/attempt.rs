//! One ingestion transaction of messages, run again when it lost a race with another writer of
//! the storage: below both the single requests of `intake` and the groups of `intake::groups`.

use leadscore_store::StoreError;

use crate::ingest::{self, Ingested, Sender};
use crate::messages::Message;
use crate::state::AppState;

/// Ingests `messages` (`received[i]` the receipt of `messages[i]`) in one transaction, run
/// again when it lost a race with another writer of the storage.
pub(super) async fn ingest_retrying(
    state: &AppState,
    workspace_id: i64,
    mut messages: Vec<Result<Message, String>>,
    received: Vec<i64>,
    sender: Sender,
) -> Result<Ingested, StoreError> {
    // Where other processes write the same storage, a request can lose a race it cannot see
    // coming (another request created the same new lead first, or a deadlock): nothing of it was
    // stored, so it is run again here, a few times, rather than answered 503.
    let retries = if state.storage.sole_writer() { 0 } else { RACE_RETRIES };
    let mut attempt = 0;
    loop {
        let (models, leads) = (state.models.clone(), state.leads.clone());
        let this_time = if attempt < retries { messages.clone() } else { std::mem::take(&mut messages) };
        let received = received.clone();
        let result = state
            .storage
            .ingest(move |transaction| {
                ingest::ingest_received(transaction, &models, &leads, workspace_id, this_time, &received, sender)
            })
            .await;
        match result {
            Err(error) if attempt < retries && lost_a_race(&error) => {
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
