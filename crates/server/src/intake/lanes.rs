//! The lanes of one instance: at most `--database-writers` ingestion transactions at once, and
//! the requests waiting for one, in arrival order, taken a group at a time
//! (`Lanes::next_group`). Kept apart from `intake::groups`, which runs the groups, so that the
//! service's state can hold the lanes without depending on what runs them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::{Semaphore, oneshot};

use crate::error::ApiError;
use crate::ingest::{Ingested, Sender};
use crate::messages::Message;

/// Ingestion transactions at once by default (`leadscore serve --database-writers`).
pub const DEFAULT_WRITERS: usize = 2;

/// The most messages one group carries.
pub const MAX_MESSAGES: usize = 1_000;

/// The most messages of a request that joins a group. A bigger request already spreads a
/// transaction's cost over its messages, and goes alone, at once, outside the lanes: grouped,
/// batches of 100 gained nothing and held more locks for longer (docs/benchmarks.md).
pub const JOINS_AT_MOST: usize = 50;

/// One request's messages, as `intake::accept_from` takes them.
pub struct Request {
    pub workspace_id: i64,
    pub messages: Vec<Result<Message, String>>,
    pub received_at: i64,
    pub sender: Sender,
}

/// A request waiting for a lane, and where its answer goes.
pub(super) struct Waiting {
    pub(super) request: Request,
    pub(super) answer: oneshot::Sender<Result<Ingested, ApiError>>,
}

/// The lanes of one instance and the requests waiting for one.
pub struct Lanes {
    pub(super) lanes: Arc<Semaphore>,
    waiting: Mutex<VecDeque<Waiting>>,
}

impl Lanes {
    /// At most `lanes` ingestion transactions at once (at least one).
    pub fn new(lanes: usize) -> Lanes {
        Lanes { lanes: Arc::new(Semaphore::new(lanes.max(1))), waiting: Mutex::new(VecDeque::new()) }
    }

    pub(super) fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Waiting>> {
        // The queue holds no invariant a panic could break half-way: take it as it is.
        self.waiting.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The next group: the oldest waiting request, and after it every waiting request of the same
    /// workspace that may join it, in arrival order, up to [`MAX_MESSAGES`].
    pub(super) fn next_group(&self) -> Vec<Waiting> {
        let mut queue = self.queue();
        let Some(first) = queue.pop_front() else { return Vec::new() };
        let workspace_id = first.request.workspace_id;
        let mut messages = first.request.messages.len();
        let mut group = vec![first];
        let mut index = 0;
        while index < queue.len() && messages < MAX_MESSAGES {
            let request = &queue[index].request;
            if request.workspace_id == workspace_id
                && messages + request.messages.len() <= MAX_MESSAGES
                && let Some(waiting) = queue.remove(index)
            {
                messages += waiting.request.messages.len();
                group.push(waiting);
            } else {
                index += 1;
            }
        }
        group
    }
}

/// Whether a request may share a transaction with others.
pub(super) fn joins(request: &Request) -> bool {
    request.sender == Sender::Trusted && request.messages.len() <= JOINS_AT_MOST
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(workspace_id: i64, messages: usize) -> Waiting {
        Waiting {
            request: Request {
                workspace_id,
                messages: (0..messages).map(|i| Err(format!("m{i}"))).collect(),
                received_at: 0,
                sender: Sender::Trusted,
            },
            answer: oneshot::channel().0,
        }
    }

    fn sizes(group: &[Waiting]) -> Vec<(i64, usize)> {
        group.iter().map(|w| (w.request.workspace_id, w.request.messages.len())).collect()
    }

    #[test]
    fn a_group_takes_one_workspaces_requests_in_arrival_order_up_to_its_size() {
        let groups = Lanes::new(1);
        let mut queued = vec![request(1, 1), request(2, 1)];
        queued.extend((0..MAX_MESSAGES / JOINS_AT_MOST).map(|_| request(1, JOINS_AT_MOST)));
        queued.push(request(2, 3));
        for waiting in queued {
            groups.queue().push_back(waiting);
        }
        // Workspace 1's requests as long as they fit; the one that would make the group too big
        // waits for the next.
        let mut first = vec![(1, 1)];
        first.extend((0..MAX_MESSAGES / JOINS_AT_MOST - 1).map(|_| (1, JOINS_AT_MOST)));
        assert_eq!(sizes(&groups.next_group()), first);
        assert_eq!(sizes(&groups.next_group()), vec![(2, 1), (2, 3)]);
        assert_eq!(sizes(&groups.next_group()), vec![(1, JOINS_AT_MOST)]);
        assert!(groups.next_group().is_empty());
    }

    #[test]
    fn a_browser_keys_request_and_a_big_one_go_alone() {
        let trusted = |messages| Request {
            workspace_id: 1,
            messages: (0..messages).map(|i| Err(format!("m{i}"))).collect(),
            received_at: 0,
            sender: Sender::Trusted,
        };
        assert!(joins(&trusted(1)));
        assert!(joins(&trusted(JOINS_AT_MOST)));
        assert!(!joins(&trusted(JOINS_AT_MOST + 1)));
        assert!(!joins(&Request { sender: Sender::Browser { new_anonymous: 5 }, ..trusted(1) }));
    }
}
