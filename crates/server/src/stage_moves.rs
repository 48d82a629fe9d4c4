//! A person moving a lead to another stage, from the API or the console: the checks (the move
//! is allowed, a reason where one is needed, within the stored limits, not in leadscore's own
//! name) and the move with its webhook notifications, in one transaction.

use leadscore_store::StoreError;
use leadscore_store::stages::StageChange;

use crate::error::{ApiError, ErrorCode};
use crate::lifecycle::{self, Stage};
use crate::listing::find;
use crate::state::AppState;

/// The most characters of a stage move's actor and reason.
pub const ACTOR_LIMIT: usize = 200;
pub const REASON_LIMIT: usize = 2000;

/// A move a person asks for.
#[derive(Debug, Clone)]
pub struct AskedMove {
    pub to: Stage,
    /// Who moves it (a person's e-mail, a CRM user id).
    pub actor: String,
    pub reason: Option<String>,
    /// Allow going back in the funnel or leaving disqualified, lost and customer.
    pub force: bool,
}

/// Moves the workspace's lead `id` (a user id, else its own id) as `request` asks, at `now`:
/// the lead's id and the change recorded.
pub async fn move_stage(
    state: &AppState,
    workspace_id: i64,
    id: String,
    request: AskedMove,
    now: i64,
) -> Result<(i64, StageChange), ApiError> {
    // The automatic moves are told apart by their actor (a rollback undoes them): a person's
    // move may not take that name.
    if request.actor.trim().eq_ignore_ascii_case(lifecycle::AUTOMATIC_ACTOR) {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!("`actor` `{}` is the name of leadscore's own moves: name the person", lifecycle::AUTOMATIC_ACTOR),
        ));
    }
    // The limits hold for the text as sent, blank or not; a blank reason is then no reason.
    for (field, text, limit) in
        [("actor", Some(&request.actor), ACTOR_LIMIT), ("reason", request.reason.as_ref(), REASON_LIMIT)]
    {
        let characters = text.map_or(0, |t| t.chars().count());
        if characters > limit {
            return Err(ApiError::new(
                ErrorCode::InvalidField,
                format!("`{field}` has {characters} characters; at most {limit} are stored"),
            ));
        }
    }
    let reason = request.reason.filter(|r| !r.trim().is_empty());
    let to = request.to;
    if to.needs_reason() && reason.is_none() {
        return Err(ApiError::new(ErrorCode::ReasonRequired, format!("moving a lead to {to} needs a `reason`")));
    }
    let (actor, force) = (request.actor, request.force);
    let lead_cache = state.leads.clone();
    // Beside ingestion's memory of leads, which forgets this one: frequent moves (a CRM
    // accepting leads) would otherwise drop the whole memory each time.
    let (lead_id, change, queued) = state
        .storage
        .write_beside_caches(move |transaction| {
            let Some(lead) = find(transaction, workspace_id, &id)? else {
                return Err(StoreError::NotFound(format!("no lead with id or userId `{id}`")));
            };
            lead_cache.lock().forget(lead.id);
            let from: Stage = lead.stage.parse().map_err(StoreError::Corrupt)?;
            lifecycle::check_move(from, to, force).map_err(StoreError::Conflict)?;
            let change =
                StageChange { stage: to.to_string(), previous: Some(from.to_string()), at: now, actor, reason };
            transaction.set_stage(lead.id, &change)?;
            let changes = crate::notify::LeadChanges { scores: Vec::new(), stages: vec![&change] };
            let hooks = transaction.webhooks(workspace_id)?;
            let queued = crate::notify::enqueue(transaction, &hooks, &lead, &changes, change.at)?;
            Ok((lead.id, change, queued))
        })
        .await?;
    if queued > 0 {
        state.deliveries.notify_one();
    }
    Ok((lead_id, change))
}
