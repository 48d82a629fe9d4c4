//! A person's rights over their data, for the API, the console and the command line alike:
//! erasing a lead (with a `lead_erased` notification to every webhook, so that downstream
//! systems erase too), exporting everything stored about it as one JSON document, and the
//! erasure records with the suppression they keep (see [`leadscore_store::erasure`]).
//!
//! The notification names the lead by its numeric id only, the id every earlier notification
//! carried: its e-mail or user id would put back into the outbox what was just erased.

use std::collections::BTreeMap;

use leadscore_core::Timestamp;
use leadscore_store::erasure::Erasure;
use leadscore_store::storage::Notification;
use leadscore_store::{Reads, Storage, StoreError};
use serde::Serialize;
use serde_json::{Value, json};

use crate::listing::find;
use crate::scoring::{self, Models};

/// The webhook event sent to every webhook when a lead is erased.
pub const LEAD_ERASED: &str = "lead_erased";

/// An erasure as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErasureView {
    pub id: i64,
    /// The erased lead's numeric id.
    pub lead_id: i64,
    /// Who asked: `key N (name)`, `user E-MAIL` or `command line`.
    pub erased_by: String,
    pub erased_at: String,
    /// Lead rows erased: the lead and the leads merged into it.
    pub leads: i64,
    pub events: i64,
    /// Identifiers (user ids, anonymous ids, e-mails, as salted hashes) whose messages are
    /// dropped; 0 once lifted.
    pub suppressed_identifiers: i64,
    pub lifted_at: Option<String>,
    pub lifted_by: Option<String>,
}

impl From<Erasure> for ErasureView {
    fn from(e: Erasure) -> ErasureView {
        ErasureView {
            id: e.id,
            lead_id: e.lead_id,
            erased_by: e.erased_by,
            erased_at: Timestamp(e.erased_at).to_string(),
            leads: e.leads,
            events: e.events,
            suppressed_identifiers: e.suppressed,
            lifted_at: e.lifted_at.map(|t| Timestamp(t).to_string()),
            lifted_by: e.lifted_by,
        }
    }
}

/// Why a lead could not be erased or exported.
#[derive(Debug, thiserror::Error)]
pub enum Missing {
    #[error("no lead with id or userId `{0}`")]
    NoSuchLead(String),
    #[error("lead {} was erased at {} by {}", .0.lead_id, Timestamp(.0.erased_at), .0.erased_by)]
    Erased(Box<Erasure>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a lead is not found: never there, or erased (by its number).
pub fn missing(reads: &dyn Reads, workspace_id: i64, id: &str) -> Missing {
    let erased = id.parse::<i64>().ok().map(|number| reads.erasure_of_lead(workspace_id, number));
    match erased {
        Some(Ok(Some(erasure))) => Missing::Erased(Box::new(erasure)),
        Some(Err(error)) => Missing::Store(error),
        _ => Missing::NoSuchLead(id.to_string()),
    }
}

/// Erases the lead `id` (a user id or a numeric id) and queues `lead_erased` for every webhook
/// of the workspace, in one transaction; answers once nothing of it is left in the store's files.
pub async fn erase(storage: &dyn Storage, workspace_id: i64, id: String, by: String) -> Result<Erasure, Missing> {
    storage
        .write(move |transaction| {
            let Some(lead) = find(transaction, workspace_id, &id)? else {
                return Ok(Err(missing(transaction, workspace_id, &id)));
            };
            let now = leadscore_store::now_ms();
            let Some(erasure) = transaction.erase_lead(workspace_id, lead.id, &by, now)? else {
                return Ok(Err(Missing::NoSuchLead(id)));
            };
            let data = json!({
                "lead": { "id": erasure.lead_id },
                "erasure": { "id": erasure.id, "erased_at": Timestamp(erasure.erased_at).to_string() },
            })
            .to_string();
            let notifications: Vec<Notification> = transaction
                .webhooks(workspace_id)?
                .into_iter()
                .map(|hook| Notification { webhook_id: hook.id, event: LEAD_ERASED, data: data.clone() })
                .collect();
            if !notifications.is_empty() {
                transaction.queue_notifications(erasure.lead_id, &notifications, now)?;
            }
            Ok(Ok(erasure))
        })
        .await?
}

/// Everything stored about a lead, as one document (GDPR article 20): its fields and other
/// names, its events with their properties, its scores with their explanations, its score and
/// stage history, the overrides people set on its scores and the webhook notifications about it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LeadExport {
    /// `leadscore lead export 1`: the document's format.
    pub format: String,
    pub exported_at: String,
    #[schema(value_type = Object)]
    pub lead: Value,
    /// Its anonymous ids (visitors' ids the lead was known by).
    pub anonymous_ids: Vec<String>,
    /// The numeric ids of the leads merged into it.
    pub merged_leads: Vec<i64>,
    /// Every event, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Value>,
    /// By score: the active model's evaluation now, with its explanation.
    #[schema(value_type = BTreeMap<String, Object>)]
    pub scores: BTreeMap<String, Value>,
    /// Every change of a score, newest first.
    #[schema(value_type = Vec<Object>)]
    pub score_history: Vec<Value>,
    /// Every stage change, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub stage_history: Vec<Value>,
    /// Every override of its scores, in force or lifted, newest first, with its reason and the
    /// note it was lifted with.
    #[schema(value_type = Vec<Object>)]
    pub overrides: Vec<Value>,
    /// Every webhook notification about it, with its data as sent.
    #[schema(value_type = Vec<Object>)]
    pub notifications: Vec<Value>,
}

pub async fn export(
    storage: &dyn Storage,
    models: std::sync::Arc<Models>,
    workspace_id: i64,
    id: String,
) -> Result<LeadExport, Missing> {
    storage
        .read(move |reads| {
            let now = leadscore_store::now_ms();
            let Some(lead) = find(reads, workspace_id, &id)? else {
                return Ok(Err(missing(reads, workspace_id, &id)));
            };
            let links = reads.lead_links(workspace_id, lead.id)?;
            let events = reads
                .events_of(&lead)?
                .into_iter()
                .map(|e| {
                    json!({
                        "message_id": e.message_id, "type": e.event_type, "at": Timestamp(e.at).to_string(),
                        "properties": e.properties,
                    })
                })
                .collect();
            let mut scores = BTreeMap::new();
            if let Some(version) = reads.active_model(workspace_id)? {
                let model = models.get(reads, &version)?;
                let (state, _) = scoring::state_for(reads, &model, version.id, &lead)?;
                scores.extend(scoring::explain(&model, &lead, &state, now));
            }
            let score_history = reads
                .score_history(lead.id, u32::MAX)?
                .into_iter()
                .map(|h| {
                    json!({
                        "score": h.score, "value": h.value, "tier": h.tier, "previous_tier": h.previous_tier,
                        "at": Timestamp(h.at).to_string(), "cause": h.cause,
                        "override": h.override_change.map(|o| json!({
                            "action": if o.lifted { "lifted" } else { "set" }, "by": o.by, "note": o.note,
                        })),
                    })
                })
                .collect();
            let stage_history = reads
                .stage_history(lead.id)?
                .into_iter()
                .map(|s| {
                    json!({
                        "stage": s.stage, "previous": s.previous, "at": Timestamp(s.at).to_string(),
                        "actor": s.actor, "reason": s.reason,
                    })
                })
                .collect();
            let overrides = reads
                .score_overrides(lead.id)?
                .into_iter()
                .map(|o| {
                    json!({
                        "score": o.score, "value": o.value, "tier": o.tier, "reason": o.reason, "set_by": o.set_by,
                        "set_at": Timestamp(o.set_at).to_string(),
                        "expires_at": o.expires_at.map(|t| Timestamp(t).to_string()),
                        "lifted_at": o.lifted_at.map(|t| Timestamp(t).to_string()),
                        "lifted_by": o.lifted_by, "lifted_note": o.lifted_note,
                    })
                })
                .collect();
            let notifications = reads
                .notifications_of_lead(workspace_id, lead.id)?
                .into_iter()
                .map(|n| {
                    json!({
                        "id": n.id, "webhook_id": n.webhook_id, "type": n.event,
                        "data": serde_json::from_str::<Value>(&n.data).unwrap_or(Value::String(n.data)),
                        "created_at": Timestamp(n.created_at).to_string(),
                        "delivered_at": n.delivered_at.map(|t| Timestamp(t).to_string()),
                    })
                })
                .collect();
            Ok(Ok(LeadExport {
                format: "leadscore lead export 1".to_string(),
                exported_at: Timestamp(now).to_string(),
                lead: json!({
                    "id": lead.id, "user_id": lead.user_id, "email": lead.email, "stage": lead.stage,
                    "attributes": lead.attributes, "created_at": Timestamp(lead.created_at).to_string(),
                    "updated_at": Timestamp(lead.updated_at).to_string(),
                    "last_event_at": lead.last_event_at.map(|t| Timestamp(t).to_string()),
                }),
                anonymous_ids: links.anonymous_ids,
                merged_leads: links.merged_leads,
                events,
                scores,
                score_history,
                stage_history,
                overrides,
                notifications,
            }))
        })
        .await?
}

impl From<Missing> for crate::error::ApiError {
    fn from(missing: Missing) -> crate::error::ApiError {
        use crate::error::{ApiError, ErrorCode};
        match missing {
            Missing::NoSuchLead(_) => ApiError::new(ErrorCode::NotFound, missing.to_string()),
            Missing::Erased(_) => ApiError::new(ErrorCode::Erased, missing.to_string()),
            Missing::Store(error) => error.into(),
        }
    }
}
