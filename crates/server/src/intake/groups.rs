//! Requests ingested together, where other processes write the same storage (PostgreSQL).
//!
//! There, each ingestion is a PostgreSQL transaction of its own, and what a transaction costs
//! (its round trips, its commit's flush, the threads woken for each) hardly depends on how many
//! events it carries: pgbench on leadscore's schema stores ten times more events per second in
//! transactions of 100 than one per transaction (docs/benchmarks.md, "The service on
//! PostgreSQL"). SQLite's one writer groups requests itself (group commit); here an instance
//! runs at most a few ingestion transactions at once (`leadscore serve --database-writers`: the
//! lanes, `intake::lanes`), and the requests that arrive while they run wait and go together
//! into the next transaction a lane starts. A request that finds a lane free goes at once, alone:
//! grouping adds no wait, it only gathers the requests that would have waited anyway.
//!
//! What a group keeps of each request:
//! - **Its answer.** A group is one ingestion of its requests' messages in arrival order
//!   ([`crate::ingest::ingest_received`]); each request is answered its own items, in its order,
//!   and the leads its messages were stored on, as the group's commit left them (`split`). A
//!   lead merged into another by a later message of the group is answered as the lead kept: the
//!   merged one never existed outside the transaction.
//! - **Its receipt.** Each event is stored with its own request's time of receipt; the group's
//!   leads are scored as of the latest one, as a request that waited for a lead's lock is.
//! - **Idempotency.** A message id sent by two requests of a group is stored once, for the
//!   first; the second is answered `duplicate`, as it would be in a transaction after the first.
//! - **Its own failure.** A group that lost a race is run again whole, as a request is. A group
//!   that failed because storage cannot take work now (PostgreSQL restarting, a full disk, a
//!   statement past its timeout) fails every request of it at once, as each would have failed: no
//!   request of it was stored, and each is safe to send again. A group that failed otherwise is
//!   run again request by request, so that one request's failure is not the others'.
//! - **What goes alone.** A browser key's request, at once: what it may create is counted per
//!   request. So does a request of more than [`super::lanes::JOINS_AT_MOST`] messages, which
//!   spreads a transaction's cost over its own.
//! - **Order and locks.** A group names one workspace, takes requests in arrival order, and locks
//!   its identities and leads in the fixed orders a batch does, so groups of several instances
//!   wait on each other as batches do and never deadlock for being groups.
//!
//! A group runs in a task of its own, so that a client that goes away cuts short no other
//! request's answer.

use std::collections::HashMap;

use tokio::sync::{OwnedSemaphorePermit, oneshot};

use super::attempt::ingest_retrying;
use super::lanes::{Request, Waiting, joins};
use crate::error::ApiError;
use crate::ingest::{Ingested, Outcome, Sender};
use crate::state::AppState;

/// Ingests `request`, with the requests that wait beside it when every lane is busy; answers
/// once its group is durable. A request that does not join groups goes alone, at once.
pub async fn accept(state: &AppState, request: Request) -> Result<Ingested, ApiError> {
    if !joins(&request) {
        return alone(state, request).await;
    }
    let (answer, answered) = oneshot::channel();
    state.intake.queue().push_back(Waiting { request, answer });
    if let Ok(lane) = state.intake.lanes.clone().try_acquire_owned() {
        tokio::spawn(run_lane(state.clone(), lane));
    }
    // The sender is dropped unanswered only if the group's task panicked.
    answered.await.unwrap_or_else(|_| Err(ApiError::internal()))
}

/// Runs groups while requests wait, holding `lane`.
async fn run_lane(state: AppState, mut lane: OwnedSemaphorePermit) {
    loop {
        loop {
            let group = state.intake.next_group();
            if group.is_empty() {
                break;
            }
            run(&state, group).await;
        }
        drop(lane);
        // A request queued after the look above, while this lane was held, may have found no lane
        // free: look again now that it is.
        if state.intake.queue().is_empty() {
            return;
        }
        match state.intake.lanes.clone().try_acquire_owned() {
            Ok(again) => lane = again,
            // Another lane is running: it looks at the queue before it stops.
            Err(_) => return,
        }
    }
}

/// Ingests a group and answers each of its requests.
async fn run(state: &AppState, mut group: Vec<Waiting>) {
    state.metrics.requests_per_ingestion.observe(group.len() as f64);
    if group.len() == 1 {
        let Some(Waiting { request, answer }) = group.pop() else { return };
        let _ = answer.send(alone(state, request).await);
        return;
    }
    let workspace_id = group[0].request.workspace_id;
    let parts: Vec<&[_]> = group.iter().map(|w| w.request.messages.as_slice()).collect();
    let counts: Vec<usize> = parts.iter().map(|part| part.len()).collect();
    let received: Vec<i64> =
        group.iter().flat_map(|w| std::iter::repeat_n(w.request.received_at, w.request.messages.len())).collect();
    let result = ingest_retrying(state, workspace_id, &parts, &received, Sender::Trusted).await;
    drop(parts);
    match result {
        Ok(ingested) => {
            for (waiting, ingested) in group.into_iter().zip(split(ingested, &counts)) {
                state.metrics.count_ingested(&ingested);
                let _ = waiting.answer.send(Ok(ingested));
            }
        }
        // Storage that cannot take work now (a restart, a full disk, a statement past its
        // timeout, a race lost again and again) or a workspace's data this version cannot read
        // would fail each request again, one after the other: every request is told at once.
        Err(error) if error.is_storage_failure() || error.is_unreadable_data() => {
            let error = ApiError::from(error);
            for waiting in group {
                let _ = waiting.answer.send(Err(error.clone()));
            }
        }
        Err(error) => {
            tracing::warn!(requests = group.len(), %error, "a group of requests failed: each is run again alone");
            for Waiting { request, answer } in group {
                let _ = answer.send(alone(state, request).await);
            }
        }
    }
}

/// Ingests one request in a transaction of its own.
async fn alone(state: &AppState, request: Request) -> Result<Ingested, ApiError> {
    let received = vec![request.received_at; request.messages.len()];
    let ingested =
        ingest_retrying(state, request.workspace_id, &[&request.messages], &received, request.sender).await?;
    state.metrics.count_ingested(&ingested);
    Ok(ingested)
}

/// The answers of a group's requests (`counts[i]` messages each, in order) from the group's
/// ingestion: each request's items, and the leads they were stored on. What is counted once for
/// the group (notifications queued, leads looked up) goes with the first request.
fn split(mut group: Ingested, counts: &[usize]) -> Vec<Ingested> {
    // Where each lead merged during the group ended up.
    let merged: HashMap<i64, i64> = group.merged.iter().copied().collect();
    let kept = |mut id: i64| {
        // Each merge's kept lead existed when it merged, so the chain ends; bounded all the same.
        for _ in 0..=merged.len() {
            match merged.get(&id) {
                Some(&into) => id = into,
                None => break,
            }
        }
        id
    };
    let leads: HashMap<i64, crate::ingest::ScoredLead> = group.leads.drain(..).map(|lead| (lead.id, lead)).collect();
    let mut items = group.items.drain(..);
    let mut answers = Vec::with_capacity(counts.len());
    for (index, &count) in counts.iter().enumerate() {
        let mut answer = if index == 0 {
            Ingested {
                items: Vec::new(),
                leads: Vec::new(),
                changes: std::mem::take(&mut group.changes),
                stage_changes: std::mem::take(&mut group.stage_changes),
                queued: group.queued,
                remembered: group.remembered,
                new_anonymous: group.new_anonymous,
                looked_up: group.looked_up,
                merged: std::mem::take(&mut group.merged),
            }
        } else {
            Ingested::default()
        };
        for item in items.by_ref().take(count) {
            let item = match item {
                Outcome::Accepted { lead_id } => {
                    let lead_id = kept(lead_id);
                    if !answer.leads.iter().any(|lead| lead.id == lead_id)
                        && let Some(lead) = leads.get(&lead_id)
                    {
                        answer.leads.push(lead.clone());
                    }
                    Outcome::Accepted { lead_id }
                }
                other => other,
            };
            answer.items.push(item);
        }
        answers.push(answer);
    }
    answers
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::ingest::ScoredLead;

    fn lead(id: i64) -> ScoredLead {
        ScoredLead { id, user_id: Some(format!("u{id}")), scores: BTreeMap::new(), stage: None }
    }

    #[test]
    fn each_request_is_answered_its_own_items_and_the_leads_they_name() {
        let group = Ingested {
            items: vec![
                Outcome::Accepted { lead_id: 7 },
                Outcome::Duplicate,
                Outcome::Accepted { lead_id: 9 },
                Outcome::Accepted { lead_id: 7 },
                Outcome::Refused { reason: "batch[1]: no type".into() },
            ],
            leads: vec![lead(7), lead(9)],
            queued: 3,
            ..Ingested::default()
        };
        let answers = split(group, &[2, 2, 1]);
        assert_eq!(answers.len(), 3);
        assert_eq!(answers[0].items, vec![Outcome::Accepted { lead_id: 7 }, Outcome::Duplicate]);
        assert_eq!(answers[0].leads, vec![lead(7)]);
        assert_eq!(answers[0].queued, 3, "counted once, with the first request");
        assert_eq!(answers[1].items, vec![Outcome::Accepted { lead_id: 9 }, Outcome::Accepted { lead_id: 7 }]);
        assert_eq!(answers[1].leads, vec![lead(9), lead(7)]);
        assert_eq!(answers[1].queued, 0);
        assert_eq!(answers[2].items, vec![Outcome::Refused { reason: "batch[1]: no type".into() }]);
        assert!(answers[2].leads.is_empty());
    }

    #[test]
    fn a_lead_merged_later_in_the_group_is_answered_as_the_lead_kept() {
        // Request one's event went on anonymous lead 3; request two's identify merged 3 into 5,
        // then 5 was merged into 8 by request three's alias.
        let group = Ingested {
            items: vec![
                Outcome::Accepted { lead_id: 3 },
                Outcome::Accepted { lead_id: 5 },
                Outcome::Accepted { lead_id: 8 },
            ],
            leads: vec![lead(8)],
            merged: vec![(3, 5), (5, 8)],
            ..Ingested::default()
        };
        let answers = split(group, &[1, 1, 1]);
        for answer in &answers {
            assert_eq!(answer.items, vec![Outcome::Accepted { lead_id: 8 }]);
            assert_eq!(answer.leads, vec![lead(8)]);
        }
    }
}
