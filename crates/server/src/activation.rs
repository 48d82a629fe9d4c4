//! Changing a workspace's active model version, by any route: an activation or a rollback is
//! written with the record of the rescoring it calls for, in one transaction, and the rescoring
//! starts once that commits. The record makes both hold across crashes and concurrent requests:
//! a second activation while a rescoring runs is refused inside the writer's transaction (one
//! of eight simultaneous requests wins), and a rescoring cut short resumes at the next start.

use leadscore_store::models::{ModelVersion, Origin};
use leadscore_store::rescorings::IfRunning;
use leadscore_store::storage::NewRescoring;
use leadscore_store::{StoreError, Transaction};

use crate::error::ApiError;
use crate::state::AppState;

/// Makes `model_id` the active version and records the rescoring of every lead with it. Fails
/// with [`StoreError::Rescoring`] while the workspace's last rescoring has not finished.
pub fn activate(
    transaction: &dyn Transaction,
    workspace_id: i64,
    model_id: i64,
    origin: Origin,
    now: i64,
) -> Result<ModelVersion, StoreError> {
    let version = transaction
        .model_by_id(model_id)?
        .filter(|v| v.workspace_id == workspace_id)
        .ok_or_else(|| StoreError::NotFound(format!("no model {model_id} in this workspace")))?;
    let if_running = if origin == Origin::File { IfRunning::Restart } else { IfRunning::Refuse };
    let cause = format!("model v{}", version.version);
    let rescoring = NewRescoring { workspace_id, model_id, cause: &cause, revert_automatic_since: None, if_running };
    transaction.begin_rescoring(&rescoring, now)?;
    transaction.activate_model(workspace_id, model_id, origin, now)?;
    Ok(version)
}

/// Undoes the newest activation still standing (see [`leadscore_store::models::rollback`]) and records the
/// rescoring with the restored version, which also moves back the automatic MQL moves made
/// under the undone version that the restored one does not support.
pub fn rollback(transaction: &dyn Transaction, workspace_id: i64, now: i64) -> Result<ModelVersion, StoreError> {
    if transaction.rescoring(workspace_id)?.is_some_and(|r| r.finished_at.is_none()) {
        return Err(StoreError::Rescoring);
    }
    let rolled = transaction.roll_back_model(workspace_id, now)?;
    let cause = format!("rollback from v{} to v{}", rolled.undone.version, rolled.restored.version);
    let rescoring = NewRescoring {
        workspace_id,
        model_id: rolled.restored.id,
        cause: &cause,
        revert_automatic_since: Some(rolled.undone_activated_at),
        if_running: IfRunning::Refuse,
    };
    transaction.begin_rescoring(&rescoring, now)?;
    Ok(rolled.restored)
}

/// Starts the rescoring an activation recorded, once it is committed.
pub fn rescore(state: &AppState, workspace_id: i64) {
    crate::rescore::start(state, workspace_id);
}

/// Refuses early, before costly work whose result would be activated, while the workspace is
/// still being rescored (the activation itself checks again in its transaction).
pub async fn refuse_while_rescoring(state: &AppState, workspace_id: i64) -> Result<(), ApiError> {
    if crate::rescore::progress(state, workspace_id).await?.is_some_and(|p| p.finished_at.is_none()) {
        return Err(StoreError::Rescoring.into());
    }
    Ok(())
}
