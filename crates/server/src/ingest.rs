//! Ingestion: turning messages ([`crate::messages`]) into leads and events, resolving identities
//! (anonymous ids merged into a user's lead, aliases), and rescoring the leads they touch, all in
//! one writer transaction so that the answer carries durable, current scores.
//!
//! A batch is answered per item: items that are invalid or duplicates are listed with the
//! reason and change nothing; all accepted items of a request commit together or not at all.
//!
//! A request crosses the storage interface twice whatever its size: it reads what it needs in
//! one call (`Reads::ingestion_snapshot`: the model, the webhooks, which message ids are stored,
//! the leads of the messages the lead cache does not know), resolves identities in memory on it
//! (`Identities`), catches message ids repeated within the request in memory, evaluates
//! every touched lead, and writes it all in one call (`Transaction::write_ingested`: new leads
//! and links, then each lead's events, row and scores). Rare cases add calls: giving a stored
//! lead its user id, a merge, rebuilding a lead's state from its stored events (after a merge or
//! a model change), an id the snapshot was not asked, and the first use of a model version.

use std::collections::{BTreeMap, HashMap, HashSet};

use leadscore_store::erasure::IdentifierKind;
use leadscore_store::events::NewEvent;
use leadscore_store::leads::{self, LeadRow};
use leadscore_store::merge::merge_attributes;
use leadscore_store::scores::{Change, History, StoredScores};
use leadscore_store::stages::StageChange;
use leadscore_store::storage::{
    IngestedLead, IngestionLookup, IngestionSnapshot, IngestionWrite, LeadSave, NewIdentities,
};
use leadscore_store::{StoreError, Transaction};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::lead_cache::{LeadCache, Leads};
use crate::messages::{Kind, Message};
use crate::saving::{self, Prepared, SaveContext};
use crate::scoring::{self, Models};

/// What happened to one item of a request, by `status`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Stored, on the lead of this id.
    Accepted { lead_id: i64 },
    /// The message id was already stored; nothing changed.
    Duplicate,
    /// Invalid: nothing changed. The reason starts with the item's place (`batch[2]: ...`).
    Refused { reason: String },
    /// Dropped: it names a person whose data was erased (`DELETE /api/leads/{id}`), whose
    /// identifiers stay suppressed until an admin lifts it. Nothing stored.
    Suppressed,
}

/// A lead's scores after the request.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ScoredLead {
    /// The lead's own numeric id.
    pub id: i64,
    /// Absent for an anonymous lead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// By score name, one per score of the active model (`{}` while the workspace has none).
    pub scores: BTreeMap<String, ScoreSummary>,
    /// The stage the request moved the lead to, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::lifecycle::Stage>)]
    pub stage: Option<String>,
}

/// A score's value and tier: the effective ones, which a person's override sets while it is in
/// force.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ScoreSummary {
    pub value: f64,
    /// `null` when the value falls in no tier.
    pub tier: Option<String>,
    /// Only while a person's override is in force: the model's own value and tier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub computed: Option<ComputedScore>,
}

/// The model's own value and tier of a score a person overrode.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ComputedScore {
    pub value: f64,
    pub tier: Option<String>,
}

impl From<&leadscore_store::scores::ScoreRow> for ScoreSummary {
    fn from(row: &leadscore_store::scores::ScoreRow) -> ScoreSummary {
        ScoreSummary {
            value: row.value,
            tier: row.tier.clone(),
            computed: row
                .overridden
                .as_ref()
                .map(|o| ComputedScore { value: o.computed_value, tier: o.computed_tier.clone() }),
        }
    }
}

/// The result of an ingestion request.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Ingested {
    pub items: Vec<Outcome>,
    pub leads: Vec<ScoredLead>,
    /// Score changes (for notifications).
    #[serde(skip)]
    pub changes: Vec<(i64, Change)>,
    #[serde(skip)]
    pub stage_changes: Vec<(i64, StageChange)>,
    /// Webhook notifications written to the outbox.
    #[serde(skip)]
    pub queued: usize,
    /// Messages (not refused) whose lead ingestion remembered, and those whose lead it had to
    /// find in the database (see [`crate::lead_cache`]).
    #[serde(skip)]
    pub remembered: usize,
    /// New anonymous leads made for a [`Sender::Browser`] (counted against its allowance).
    #[serde(skip)]
    pub new_anonymous: u32,
    #[serde(skip)]
    pub looked_up: usize,
    /// The leads merged into another (merged, kept), in the order the request merged them: an
    /// item accepted on a lead merged later in the same request names the merged lead.
    #[serde(skip)]
    pub merged: Vec<(i64, i64)>,
}

/// A new event of the request, stored at its end.
struct AddedEvent {
    message_id: String,
    event_type: String,
    at: i64,
    /// When the request that carried it was received.
    received_at: i64,
    properties: Map<String, Value>,
    /// A tracked event, which the engine counts (identify, alias and group are only stored).
    tracked: bool,
}

/// A lead a request touched: the events it added (to store, and the tracked ones to apply to the
/// stored state) and the time of its latest event, saved with the lead once at the end rather
/// than per event. The lead's row is the remembered one (see [`crate::lead_cache`]).
struct Touched {
    id: i64,
    events: Vec<AddedEvent>,
    last_event_at: Option<i64>,
}

fn forgotten(id: i64) -> StoreError {
    StoreError::Corrupt(format!("lead {id} was not remembered during its ingestion"))
}

/// What the request looks up before its loop: every message id (duplicates), and the ids of
/// the messages whose lead the lead cache does not know (an alias's earlier id both as a user id
/// and as an anonymous id).
fn lookup<'m>(workspace_id: i64, messages: &'m [Result<Message, String>], remembered: &Leads) -> IngestionLookup<'m> {
    let mut lookup = IngestionLookup {
        workspace_id,
        message_ids: Vec::new(),
        user_ids: Vec::new(),
        anonymous_ids: Vec::new(),
        identifiers: Vec::new(),
    };
    let mut asked = HashSet::new();
    for message in messages.iter().flatten() {
        lookup.message_ids.push(&message.message_id);
        lookup.identifiers.extend(identifiers_of(message));
        let known = !matches!(message.kind, Kind::Alias { .. })
            && remembered.lead_of(workspace_id, message.user_id.as_deref(), message.anonymous_id.as_deref()).is_some();
        if known {
            continue;
        }
        let previous_id = match &message.kind {
            Kind::Alias { previous_id } => Some(previous_id.as_str()),
            _ => None,
        };
        for user_id in message.user_id.as_deref().into_iter().chain(previous_id) {
            if asked.insert((true, user_id)) {
                lookup.user_ids.push(user_id);
            }
        }
        for anonymous_id in message.anonymous_id.as_deref().into_iter().chain(previous_id) {
            if asked.insert((false, anonymous_id)) {
                lookup.anonymous_ids.push(anonymous_id);
            }
        }
    }
    lookup
}

/// The instant a request scores its leads at (and records as their update): when it was
/// received, or the latest update of one of its leads if that is later.
///
/// A request received before another may write the same lead after it: it waited for the
/// lead's lock while another instance's request went first, or it waited for this writer. Scored
/// as of its own receipt, the lead would leave out that request's events (an event later than the
/// instant a score is taken at does not count) and store a score that is missing them until the
/// lead's next rescoring, with its tier, webhooks and move to MQL following that score. Every
/// ingestion records the instant it scored a lead at as the lead's `updated_at`, and an event
/// without a time of its own is at its request's receipt, which comes before: from the latest
/// update on, every event stored before counts (an event whose own time is still to come counts
/// from that time, as it always did).
///
/// The leads are those the snapshot read (locked, on a storage other processes write) and the
/// remembered ones the messages name.
fn scored_at(
    workspace_id: i64,
    received_at: i64,
    messages: &[Result<Message, String>],
    snapshot: &IngestionSnapshot,
    remembered: &Leads,
) -> i64 {
    let read = snapshot.leads.values().map(|(row, _)| row.updated_at);
    let known = messages
        .iter()
        .flatten()
        .filter_map(|m| remembered.lead_of(workspace_id, m.user_id.as_deref(), m.anonymous_id.as_deref()))
        .filter_map(|id| remembered.get(id))
        .map(|entry| entry.row.updated_at);
    read.chain(known).fold(received_at, i64::max)
}

/// The identifiers a message names, as the suppression list matches them: its user id, its
/// anonymous id, an alias's earlier id (either kind) and an `email` trait.
fn identifiers_of(message: &Message) -> Vec<(IdentifierKind, &str)> {
    let mut identifiers = Vec::new();
    identifiers.extend(message.user_id.as_deref().map(|id| (IdentifierKind::UserId, id)));
    identifiers.extend(message.anonymous_id.as_deref().map(|id| (IdentifierKind::AnonymousId, id)));
    if let Kind::Alias { previous_id } = &message.kind {
        identifiers.push((IdentifierKind::UserId, previous_id));
        identifiers.push((IdentifierKind::AnonymousId, previous_id));
    }
    if let Some(Value::String(email)) = message.traits.get("email") {
        identifiers.push((IdentifierKind::Email, email));
    }
    identifiers
}

/// Stores the messages and rescores the leads they touch. Runs in one write transaction, as an
/// ingestion (`Storage::ingest`): it keeps the remembered leads equal to what it stores.
///
/// One read before the loop ([`leadscore_store::Reads::ingestion_snapshot`]) and one write after
/// it ([`Transaction::write_ingested`]); see the module's doc for the rare calls besides.
pub fn ingest(
    transaction: &dyn Transaction,
    models: &Models,
    lead_cache: &LeadCache,
    workspace_id: i64,
    messages: Vec<Result<Message, String>>,
    received_at: i64,
) -> Result<Ingested, StoreError> {
    ingest_from(transaction, models, lead_cache, workspace_id, messages, received_at, Sender::Trusted)
}

/// Who sent the messages, for what they may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    /// A server with an ingest or admin key: anything.
    Trusted,
    /// A website's page with a browser key, which anyone can read: it sends events and traits
    /// and links an anonymous id to a user id, but an `alias` that would merge or rename an
    /// identified lead is refused, and an `email` trait that would change an identified lead's
    /// e-mail address is dropped (the message's other traits are kept). It may make at most
    /// `new_anonymous` new anonymous leads (the cap per client address, `abuse.rs`): a message
    /// that would make another is refused ([`ANONYMOUS_CAP_REFUSAL`]).
    Browser { new_anonymous: u32 },
}

/// What a message is told when it would make one more anonymous lead than its sender may.
pub const ANONYMOUS_CAP_REFUSAL: &str =
    "too many new anonymous visitors from this address in the last hour: try again later";

/// What [`Sender::Browser`] is told when its `alias` would merge or rename an identified lead.
pub const BROWSER_ALIAS_REFUSAL: &str =
    "a browser key cannot merge or rename an identified lead: `previousId` belongs to another user";

/// [`ingest`], with what `sender` may not do refused.
#[allow(clippy::too_many_arguments)]
pub fn ingest_from(
    transaction: &dyn Transaction,
    models: &Models,
    lead_cache: &LeadCache,
    workspace_id: i64,
    messages: Vec<Result<Message, String>>,
    received_at: i64,
    sender: Sender,
) -> Result<Ingested, StoreError> {
    let received = vec![received_at; messages.len()];
    ingest_received(transaction, models, lead_cache, workspace_id, messages, &received, sender)
}

/// [`ingest_from`] for messages received at different instants (`received[i]` is when the
/// request of `messages[i]` came: requests ingested together, `crate::intake::groups`). The
/// leads are scored as of the latest receipt (see `scored_at`).
#[allow(clippy::too_many_arguments)]
pub fn ingest_received(
    transaction: &dyn Transaction,
    models: &Models,
    lead_cache: &LeadCache,
    workspace_id: i64,
    messages: Vec<Result<Message, String>>,
    received: &[i64],
    sender: Sender,
) -> Result<Ingested, StoreError> {
    if received.len() != messages.len() {
        return Err(StoreError::Corrupt(format!(
            "{} messages were given {} instants of receipt",
            messages.len(),
            received.len()
        )));
    }
    let received_at = received.iter().copied().max().unwrap_or_default();
    let messages: Vec<Result<Message, String>> =
        messages.into_iter().map(|message| message.and_then(|m| m.check_limits().map(|()| m))).collect();
    let mut remembered = lead_cache.lock();
    let lookup = lookup(workspace_id, &messages, &remembered);
    let mut snapshot = transaction.ingestion_snapshot(&lookup)?;
    let scored_at = scored_at(workspace_id, received_at, &messages, &snapshot, &remembered);
    let mut identities = Identities::new(transaction, &lookup, &mut snapshot, received_at);
    // A message id stored already, or met earlier in this request, is a duplicate.
    let mut seen = HashSet::with_capacity(lookup.message_ids.len());
    let duplicate: Vec<bool> = messages
        .iter()
        .map(|message| {
            message.as_ref().is_ok_and(|m| {
                snapshot.stored_message_ids.contains(&m.message_id) || !seen.insert(m.message_id.as_str())
            })
        })
        .collect();
    drop(seen);
    drop(lookup);
    // What can fail for another reason than storage (a stored model that no longer compiles)
    // fails here, before anything is written: this job has no savepoint of its own.
    let model_version = snapshot.active_model.take();
    let model = model_version.as_ref().map(|v| models.get(transaction, v)).transpose()?;
    let hooks = std::mem::take(&mut snapshot.webhooks);
    let mut ingested = Ingested::default();
    // Touched leads in first-touch order with the events this request added to each, and the
    // leads whose state must be rebuilt from all their events (after a merge).
    let mut touched: Vec<Touched> = Vec::new();
    let mut rebuild: Vec<i64> = Vec::new();
    // The fields of leads as they were before this request's first identify or group call
    // changed them: what explaining the change of their scores starts from.
    let mut earlier_fields: Vec<(i64, saving::Earlier)> = Vec::new();
    for ((message, duplicate), &message_received_at) in messages.into_iter().zip(duplicate).zip(received) {
        let message = match message {
            Ok(message) => message,
            Err(reason) => {
                ingested.items.push(Outcome::Refused { reason });
                continue;
            }
        };
        let suppressed = !snapshot.suppressed.is_empty()
            && identifiers_of(&message)
                .into_iter()
                .any(|(kind, value)| snapshot.suppressed.contains(&(kind, value.to_string())));
        if suppressed {
            ingested.items.push(Outcome::Suppressed);
            continue;
        }
        let known = match message.kind {
            Kind::Alias { .. } => None,
            _ => remembered.lead_of(workspace_id, message.user_id.as_deref(), message.anonymous_id.as_deref()),
        };
        match known {
            Some(_) => ingested.remembered += 1,
            None => ingested.looked_up += 1,
        }
        // Before finding the lead, which may create, link or merge leads: not for a duplicate.
        if duplicate {
            ingested.items.push(Outcome::Duplicate);
            continue;
        }
        if let (Sender::Browser { .. }, Kind::Alias { previous_id }, Some(user_id)) =
            (sender, &message.kind, &message.user_id)
            && identities.is_another_users(&remembered, previous_id, user_id)?
        {
            ingested.items.push(Outcome::Refused { reason: BROWSER_ALIAS_REFUSAL.to_string() });
            continue;
        }
        // A message without a user id whose anonymous id is new makes an anonymous lead.
        if let (Sender::Browser { new_anonymous }, None, None, Some(anonymous_id)) =
            (sender, &known, &message.user_id, &message.anonymous_id)
            && !matches!(message.kind, Kind::Alias { .. })
            && identities.lead_by_anonymous_id(&remembered, anonymous_id)?.is_none()
        {
            if ingested.new_anonymous >= new_anonymous {
                ingested.items.push(Outcome::Refused { reason: ANONYMOUS_CAP_REFUSAL.to_string() });
                continue;
            }
            ingested.new_anonymous += 1;
        }
        let (lead_id, merged_from) = match known {
            Some(id) => (id, None),
            None => {
                let (lead, merged_from) = match (&message.kind, &message.user_id) {
                    (Kind::Alias { previous_id }, Some(user_id)) => {
                        let resolved = identities.resolve_alias(&remembered, user_id, previous_id)?;
                        remembered.link_anonymous_id(workspace_id, previous_id, resolved.0.id);
                        resolved
                    }
                    _ => identities.resolve_lead(&remembered, &message)?,
                };
                let id = lead.id;
                // resolve_lead links the message's anonymous id to the lead (resolve_alias links
                // the earlier id, above).
                if let (false, Some(anonymous_id)) = (matches!(message.kind, Kind::Alias { .. }), &message.anonymous_id)
                {
                    remembered.link_anonymous_id(workspace_id, anonymous_id, id);
                }
                remembered.remember(lead);
                if let Some(merged) = merged_from {
                    remembered.forget(merged);
                }
                let entry = remembered.get_mut(id).ok_or_else(|| forgotten(id))?;
                if entry.scores.is_none() {
                    entry.scores = identities.take_scores(id);
                }
                if merged_from.is_some() {
                    // Its state is rebuilt from all its events, the merged lead's too.
                    entry.state = None;
                }
                (id, merged_from)
            }
        };
        let entry = remembered.get_mut(lead_id).ok_or_else(|| forgotten(lead_id))?;
        let lead = &mut entry.row;
        let mut carried = (None, Vec::new());
        if let Some(merged) = merged_from {
            ingested.merged.push((merged, lead.id));
            // The merged lead's events now belong to `lead`, whose state is rebuilt from them all.
            if let Some(position) = touched.iter().position(|t| t.id == merged) {
                let merged = touched.remove(position);
                carried = (merged.last_event_at, merged.events);
            }
            rebuild.push(lead.id);
        }
        let (mut last_event_at, mut events) = carried;
        lead.updated_at = scored_at;
        let Message { kind, message_id, at, mut traits, properties, .. } = message;
        if matches!(kind, Kind::Identify | Kind::Group { .. }) && !earlier_fields.iter().any(|(id, _)| *id == lead_id) {
            let fields = Some((lead.attributes.clone(), lead.email.clone()));
            earlier_fields.push((lead_id, saving::Earlier { fields, ..saving::Earlier::default() }));
        }
        let (event_type, properties, tracked) = match kind {
            Kind::Identify => {
                if matches!(sender, Sender::Browser { .. })
                    && lead.user_id.is_some()
                    && lead.email.is_some()
                    && traits.get("email").is_some_and(|email| email.as_str() != lead.email.as_deref())
                {
                    traits.remove("email");
                }
                merge_attributes(&mut lead.attributes, &traits, true);
                if let Some(Value::String(email)) = traits.get("email") {
                    lead.email = Some(email.clone());
                }
                (scoring::IDENTIFY.to_string(), traits, false)
            }
            Kind::Track(name) => {
                last_event_at = last_event_at.max(Some(at));
                (name, properties, true)
            }
            Kind::Group { group_id } => {
                lead.attributes.insert("company_id".to_string(), Value::String(group_id));
                for (key, value) in &traits {
                    lead.attributes.insert(format!("company_{key}"), value.clone());
                }
                (scoring::GROUP.to_string(), traits, false)
            }
            Kind::Alias { .. } => (scoring::ALIAS.to_string(), traits, false),
        };
        ingested.items.push(Outcome::Accepted { lead_id });
        events.push(AddedEvent { message_id, event_type, at, received_at: message_received_at, properties, tracked });
        match touched.iter_mut().find(|t| t.id == lead_id) {
            Some(entry) => {
                entry.last_event_at = entry.last_event_at.max(last_event_at);
                entry.events.append(&mut events);
            }
            None => touched.push(Touched { id: lead_id, events, last_event_at }),
        }
    }
    let context = match (&model, &model_version) {
        (Some(model), Some(version)) => Some(SaveContext {
            reads: transaction,
            model,
            model_id: version.id,
            now: scored_at,
            cause: "event",
            history: History::EveryChange,
            webhooks: &hooks,
            models,
            overrides: &[],
        }),
        _ => None,
    };
    // Each touched lead evaluated with its new events (nothing written yet).
    let mut prepared: Vec<Option<(Prepared, StoredScores)>> = Vec::with_capacity(touched.len());
    for Touched { id, events, last_event_at } in &touched {
        let entry = remembered.get_mut(*id).ok_or_else(|| forgotten(*id))?;
        let lead = &mut entry.row;
        lead.last_event_at = lead.last_event_at.max(*last_event_at);
        lead.updated_at = scored_at;
        let Some(context) = &context else {
            prepared.push(None);
            continue;
        };
        if rebuild.contains(&lead.id) {
            lead.state_model_id = None;
            entry.state = None;
        }
        // The stored state and the stored events never hold this request's events: they are
        // written below.
        let (mut state, remembered_state) = match entry.state.take() {
            Some((model_id, state)) if model_id == context.model_id => (state, true),
            _ => (scoring::state_for(transaction, context.model, context.model_id, lead)?.0, false),
        };
        // The state as last saved, which the history's terms start from: kept rather than read
        // again from the row's text.
        let saved_state = remembered_state.then(|| state.clone());
        for event in events.iter().filter(|e| e.tracked) {
            scoring::apply(context.model, &mut state, &event.event_type, event.at, &event.properties);
        }
        let stored = match entry.scores.take() {
            Some(stored) => stored,
            None => transaction.stored_scores(lead.id)?,
        };
        let earlier = earlier_fields.iter().find(|(lead_id, _)| lead_id == id).map(|(_, e)| e);
        let earlier = saving::Earlier { saved_state, ..earlier.cloned().unwrap_or_default() };
        prepared.push(Some((saving::prepare(context, lead, &state, &stored, &earlier), stored)));
        entry.state = Some((context.model_id, state));
    }
    // One write: the new leads and links, then every lead's events, row and scores.
    let identities = identities.finish();
    let newest_events = if touched.is_empty() && identities.is_empty() {
        Vec::new()
    } else {
        let mut write = IngestionWrite { identities, leads: Vec::with_capacity(touched.len()) };
        for (Touched { id, events, .. }, prepared) in touched.iter().zip(prepared.iter_mut()) {
            let lead = &remembered.get(*id).ok_or_else(|| forgotten(*id))?.row;
            let events = events
                .iter()
                .map(|e| NewEvent {
                    message_id: &e.message_id,
                    event_type: &e.event_type,
                    at: e.at,
                    received_at: e.received_at,
                    properties: &e.properties,
                })
                .collect();
            let save = match (prepared, &context) {
                (Some((prepared, stored)), Some(context)) => LeadSave::Scored(prepared.write(context, lead), stored),
                _ => LeadSave::Row(lead),
            };
            write.leads.push(IngestedLead { events, save });
        }
        transaction.write_ingested(&mut write)?
    };
    for ((Touched { id, .. }, prepared), newest_event) in touched.iter().zip(prepared).zip(newest_events) {
        let entry = remembered.get_mut(*id).ok_or_else(|| forgotten(*id))?;
        let lead = &mut entry.row;
        lead.last_event_id = newest_event;
        let mut summary =
            ScoredLead { id: lead.id, user_id: lead.user_id.clone(), scores: BTreeMap::new(), stage: None };
        if let Some((prepared, stored)) = prepared {
            entry.scores = Some(stored);
            let saved = prepared.saved(lead);
            for row in &saved.rows {
                summary.scores.insert(row.score.clone(), ScoreSummary::from(row));
            }
            ingested.queued += saved.queued;
            ingested.changes.extend(saved.changes.into_iter().map(|c| (lead.id, c)));
            if let Some(change) = saved.stage {
                summary.stage = Some(change.stage.clone());
                ingested.stage_changes.push((lead.id, change));
            }
        }
        ingested.leads.push(summary);
    }
    Ok(ingested)
}

/// Identity resolution for one ingestion request: which lead each message belongs to, found
/// in memory on what the request read before its loop (`Reads::ingestion_snapshot`), with
/// anonymous ids merged into a user's lead and aliases.
///
/// What the request changes is kept here as it goes, so that a later message of the same request
/// sees an earlier one's leads, links and merges. New leads (with the ids the snapshot handed
/// out) and anonymous id links wait for the request's one write ([`Identities::finish`]). Giving
/// a stored lead its user id and merging leads are storage calls of their own, made at once:
/// they are rare (an anonymous visitor who identifies, an alias), and a merge moves stored
/// events, so the new leads and links before it are written first. An id the snapshot was not
/// asked about (a remembered lead that an earlier message merged away) is looked up then.
///
/// It holds the identities of the request's workspace as the request has left them so far.
struct Identities<'t> {
    transaction: &'t dyn Transaction,
    workspace_id: i64,
    now: i64,
    /// The lead of each user id and anonymous id known here (`None`: no lead has it).
    by_user_id: HashMap<String, Option<i64>>,
    by_anonymous_id: HashMap<String, Option<i64>>,
    /// The rows read (the remembered row of a lead, when there is one, is newer).
    rows: HashMap<i64, LeadRow>,
    /// The stored scores of the leads read or created, until the lead cache takes them.
    scores: HashMap<i64, StoredScores>,
    /// The id the next new lead takes.
    next_lead_id: i64,
    /// New leads and links not written yet.
    pending: NewIdentities,
}

impl<'t> Identities<'t> {
    /// The identities the snapshot answered for `lookup`'s ids.
    fn new(
        transaction: &'t dyn Transaction,
        lookup: &IngestionLookup<'_>,
        snapshot: &mut IngestionSnapshot,
        now: i64,
    ) -> Identities<'t> {
        let by_user_id =
            lookup.user_ids.iter().map(|id| (id.to_string(), snapshot.by_user_id.get(*id).copied())).collect();
        let by_anonymous_id = lookup
            .anonymous_ids
            .iter()
            .map(|id| (id.to_string(), snapshot.by_anonymous_id.get(*id).copied()))
            .collect();
        let mut rows = HashMap::with_capacity(snapshot.leads.len());
        let mut scores = HashMap::with_capacity(snapshot.leads.len());
        for (id, (row, stored)) in snapshot.leads.drain() {
            rows.insert(id, row);
            scores.insert(id, stored);
        }
        let workspace_id = lookup.workspace_id;
        Identities {
            transaction,
            workspace_id,
            now,
            by_user_id,
            by_anonymous_id,
            rows,
            scores,
            next_lead_id: snapshot.next_lead_id,
            pending: NewIdentities { workspace_id, now, ..NewIdentities::default() },
        }
    }

    /// The new leads and links not written yet, for the request's write.
    fn finish(self) -> NewIdentities {
        self.pending
    }

    /// The stored scores of a lead read or created here, once.
    fn take_scores(&mut self, lead_id: i64) -> Option<StoredScores> {
        self.scores.remove(&lead_id)
    }

    /// The lead of an alias call: the lead known by `previous_id` (an anonymous id or an earlier
    /// user id) is merged into the user's lead, or takes the user id when the user has none yet.
    /// The merged lead's id is returned too.
    fn resolve_alias(
        &mut self,
        remembered: &Leads,
        user_id: &str,
        previous_id: &str,
    ) -> Result<(LeadRow, Option<i64>), StoreError> {
        let previous = match self.lead_by_user_id(remembered, previous_id)? {
            Some(lead) => Some(lead),
            None => self.lead_by_anonymous_id(remembered, previous_id)?,
        };
        let target = self.lead_by_user_id(remembered, user_id)?;
        let resolved = match (previous, target) {
            (Some(previous), Some(mut target)) if previous.id != target.id => {
                self.merge(&previous, &mut target)?;
                (target, Some(previous.id))
            }
            (_, Some(target)) => (target, None),
            (Some(previous), None) => {
                self.set_user_id(previous.id, user_id)?;
                (LeadRow { user_id: Some(user_id.to_string()), ..previous }, None)
            }
            (None, None) => (self.create(Some(user_id))?, None),
        };
        // Later calls with the earlier id (as an anonymous id) find this lead.
        self.link_anonymous_id(previous_id, resolved.0.id)?;
        Ok(resolved)
    }

    /// Whether `id` (an alias's previous id) names a lead identified as another user than
    /// `user_id`: by that user id, or by an anonymous id linked to it.
    fn is_another_users(&mut self, remembered: &Leads, id: &str, user_id: &str) -> Result<bool, StoreError> {
        let lead = match self.lead_by_user_id(remembered, id)? {
            Some(lead) => Some(lead),
            None => self.lead_by_anonymous_id(remembered, id)?,
        };
        Ok(lead.and_then(|lead| lead.user_id).is_some_and(|owner| owner != user_id))
    }

    /// Finds or creates the lead of a message. When an identify links an anonymous lead to a
    /// known user, the anonymous lead is merged into the known one; its id is returned too.
    fn resolve_lead(&mut self, remembered: &Leads, message: &Message) -> Result<(LeadRow, Option<i64>), StoreError> {
        let by_anonymous = match &message.anonymous_id {
            Some(anonymous_id) => self.lead_by_anonymous_id(remembered, anonymous_id)?,
            None => None,
        };
        let mut merged_from = None;
        let lead = match &message.user_id {
            Some(user_id) => match (self.lead_by_user_id(remembered, user_id)?, by_anonymous) {
                (Some(mut known), Some(anonymous)) if anonymous.id != known.id && anonymous.user_id.is_none() => {
                    self.merge(&anonymous, &mut known)?;
                    merged_from = Some(anonymous.id);
                    known
                }
                (Some(known), _) => known,
                (None, Some(anonymous)) if anonymous.user_id.is_none() => {
                    self.set_user_id(anonymous.id, user_id)?;
                    LeadRow { user_id: Some(user_id.clone()), ..anonymous }
                }
                (None, _) => self.create(Some(user_id))?,
            },
            None => match by_anonymous {
                Some(lead) => lead,
                None => self.create(None)?,
            },
        };
        if let Some(anonymous_id) = &message.anonymous_id {
            self.link_anonymous_id(anonymous_id, lead.id)?;
        }
        Ok((lead, merged_from))
    }

    fn lead_by_user_id(&mut self, remembered: &Leads, user_id: &str) -> Result<Option<LeadRow>, StoreError> {
        let id = match self.by_user_id.get(user_id) {
            Some(id) => *id,
            None => {
                let found = self.transaction.lead_by_user_id(self.workspace_id, user_id)?;
                let id = found.map(|lead| self.keep(lead));
                self.by_user_id.insert(user_id.to_string(), id);
                id
            }
        };
        id.map(|id| self.row(remembered, id)).transpose()
    }

    fn lead_by_anonymous_id(&mut self, remembered: &Leads, anonymous_id: &str) -> Result<Option<LeadRow>, StoreError> {
        let id = match self.by_anonymous_id.get(anonymous_id) {
            Some(id) => *id,
            None => {
                let found = self.transaction.lead_by_anonymous_id(self.workspace_id, anonymous_id)?;
                let id = found.map(|lead| self.keep(lead));
                self.by_anonymous_id.insert(anonymous_id.to_string(), id);
                id
            }
        };
        id.map(|id| self.row(remembered, id)).transpose()
    }

    /// Keeps a row read here, unless one is kept already (which is as new).
    fn keep(&mut self, lead: LeadRow) -> i64 {
        let id = lead.id;
        self.rows.entry(id).or_insert(lead);
        id
    }

    /// A lead as the request left it so far: the remembered row has every change the request
    /// made (saved at its end), the row read none, as it had none.
    fn row(&self, remembered: &Leads, id: i64) -> Result<LeadRow, StoreError> {
        match remembered.get(id) {
            Some(entry) => Ok(entry.row.clone()),
            None => {
                self.rows.get(&id).cloned().ok_or_else(|| {
                    StoreError::Corrupt(format!("lead {id} was found but not read during its ingestion"))
                })
            }
        }
    }

    /// A new lead, written with the request.
    fn create(&mut self, user_id: Option<&str>) -> Result<LeadRow, StoreError> {
        let lead = leads::new_row(self.next_lead_id, self.workspace_id, user_id, self.now);
        self.next_lead_id += 1;
        self.pending.leads.push((lead.id, user_id.map(str::to_string)));
        if let Some(user_id) = user_id {
            self.by_user_id.insert(user_id.to_string(), Some(lead.id));
        }
        self.scores.insert(lead.id, StoredScores::default());
        Ok(lead)
    }

    fn set_user_id(&mut self, lead_id: i64, user_id: &str) -> Result<(), StoreError> {
        match self.pending.leads.iter_mut().find(|(id, _)| *id == lead_id) {
            Some((_, new)) => *new = Some(user_id.to_string()),
            None => self.transaction.set_user_id(lead_id, user_id)?,
        }
        self.by_user_id.insert(user_id.to_string(), Some(lead_id));
        Ok(())
    }

    /// Links an anonymous id to a lead, written with the request.
    fn link_anonymous_id(&mut self, anonymous_id: &str, lead_id: i64) -> Result<(), StoreError> {
        self.pending.links.push((anonymous_id.to_string(), lead_id));
        self.by_anonymous_id.insert(anonymous_id.to_string(), Some(lead_id));
        Ok(())
    }

    /// Merges `from` into `into` as the store does: `from`'s anonymous ids find `into`, its user
    /// id nobody. The store moves what it has of `from`, so the new leads and links go first.
    fn merge(&mut self, from: &LeadRow, into: &mut LeadRow) -> Result<(), StoreError> {
        if !self.pending.is_empty() {
            self.transaction.write_identities(&self.pending)?;
            self.pending.leads.clear();
            self.pending.links.clear();
        }
        self.transaction.merge_leads(from, into)?;
        for lead in self.by_anonymous_id.values_mut() {
            if *lead == Some(from.id) {
                *lead = Some(into.id);
            }
        }
        for lead in self.by_user_id.values_mut() {
            if *lead == Some(from.id) {
                *lead = None;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadscore_store::{Store, models, workspaces};

    /// Ingestion runs without a savepoint of its own, so what can fail for another reason than
    /// storage must fail before it writes anything: then the jobs it shares a transaction with
    /// are not rolled back with it.
    #[test]
    fn a_workspace_whose_model_no_longer_compiles_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_ingesting(dir.path(), leadscore_store::message_ids::DEFAULT_RECENT).unwrap();
        let workspace_id = store
            .write_blocking(|c| {
                let workspace = workspaces::find_or_create(c, "w", leadscore_store::now_ms())?;
                let version = models::add(
                    c,
                    workspace.id,
                    "[scores.activity]\nrules = []\n",
                    &BTreeMap::new(),
                    None,
                    leadscore_store::now_ms(),
                )?;
                models::activate(c, workspace.id, version.id, models::Origin::Api, leadscore_store::now_ms())?;
                // As if stored by a version of leadscore that accepted what this one refuses: the
                // test corrupts the row on purpose, which no store function does.
                c.execute("UPDATE models SET source = 'not a model' WHERE id = ?1", [version.id])?;
                Ok(workspace.id)
            })
            .unwrap();
        let (models, leads) = (Models::default(), LeadCache::new(store.generation()));
        let message = Message {
            kind: Kind::Track("visit".to_string()),
            user_id: Some("u".to_string()),
            anonymous_id: None,
            message_id: "m1".to_string(),
            at: 0,
            traits: Map::new(),
            properties: Map::new(),
        };
        let (result, changes) = store
            .write_blocking(move |c| {
                let before = c.total_changes();
                let result = ingest(c, &models, &leads, workspace_id, vec![Ok(message)], 0);
                Ok((result.map(|_| ()).map_err(|e| e.to_string()), c.total_changes() - before))
            })
            .unwrap();
        assert!(result.as_ref().is_err_and(|e| e.contains("does not compile")), "{result:?}");
        assert_eq!(changes, 0);
    }

    /// Counts the calls that cross the storage interface, passing them on.
    struct Counting<'a> {
        inner: &'a dyn Transaction,
        calls: std::cell::RefCell<Vec<&'static str>>,
    }

    macro_rules! counted {
        ($($name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
            $(fn $name(&self $(, $arg: $ty)*) -> $ret {
                self.calls.borrow_mut().push(stringify!($name));
                self.inner.$name($($arg),*)
            })*
        };
    }

    use leadscore_store::Reads;
    use leadscore_store::erasure::Erasure;
    use leadscore_store::events::StoredEvent;
    use leadscore_store::funnel::{Journey, OutcomesByTier, WeekShare};
    use leadscore_store::keys::{NewKey, Scope};
    use leadscore_store::leads::LeadLinks;
    use leadscore_store::leads::{Filter, ListedLead, Order, Page};
    use leadscore_store::models::{Activation, ListedVersion, ModelVersion, Origin, RolledBack};
    use leadscore_store::overrides::{NewOverride, ScoreOverride};
    use leadscore_store::predictive::{LabelledLead, PredictiveVersion, Summary};
    use leadscore_store::rescorings::{Rescoring, RescoringRange};
    use leadscore_store::retention::Retention;
    use leadscore_store::scores::HistoryEntry;
    use leadscore_store::storage::{
        IngestionSnapshot, NewPredictiveModel, NewRescoring, Notification, ScoredLeadWrite,
    };
    use leadscore_store::webhooks::{LeadNotification, Webhook};
    use leadscore_store::workspaces::Workspace;

    impl Reads for Counting<'_> {
        counted! {
            workspace_named(&self, name: &str) -> Result<Option<Workspace>, StoreError>;
            model_with_source(&self, workspace_id: i64, source: &str, predictors: &BTreeMap<String, i64>)
                -> Result<Option<ModelVersion>, StoreError>;
            active_model(&self, workspace_id: i64) -> Result<Option<ModelVersion>, StoreError>;
            model_by_id(&self, model_id: i64) -> Result<Option<ModelVersion>, StoreError>;
            model_id_of_version(&self, workspace_id: i64, version: i64) -> Result<Option<i64>, StoreError>;
            model_versions(&self, workspace_id: i64) -> Result<Vec<ListedVersion>, StoreError>;
            model_activations(&self, workspace_id: i64) -> Result<Vec<Activation>, StoreError>;
            predictive_model(&self, workspace_id: i64, id: i64) -> Result<Option<PredictiveVersion>, StoreError>;
            latest_predictive_model(&self, workspace_id: i64, name: &str) -> Result<Option<PredictiveVersion>, StoreError>;
            predictive_models(&self, workspace_id: i64) -> Result<Vec<Summary>, StoreError>;
            labelled_leads(&self, workspace_id: i64) -> Result<Vec<LabelledLead>, StoreError>;
            fields_no_lead_has(&self, workspace_id: i64, fields: &[String]) -> Result<Vec<String>, StoreError>;
            webhooks(&self, workspace_id: i64) -> Result<Vec<Webhook>, StoreError>;
            rescoring(&self, workspace_id: i64) -> Result<Option<Rescoring>, StoreError>;
            leads_after(&self, workspace_id: i64, after_id: i64, limit: u32) -> Result<Vec<(LeadRow, StoredScores)>, StoreError>;
            events_of_leads(&self, leads: &[&LeadRow]) -> Result<Vec<Vec<StoredEvent>>, StoreError>;
            ingestion_snapshot(&self, lookup: &IngestionLookup<'_>) -> Result<IngestionSnapshot, StoreError>;
            lead_by_id(&self, workspace_id: i64, id: i64) -> Result<Option<LeadRow>, StoreError>;
            lead_by_user_id(&self, workspace_id: i64, user_id: &str) -> Result<Option<LeadRow>, StoreError>;
            lead_by_anonymous_id(&self, workspace_id: i64, anonymous_id: &str) -> Result<Option<LeadRow>, StoreError>;
            lead_ids_after(&self, workspace_id: i64, after_id: i64, limit: u32) -> Result<Vec<i64>, StoreError>;
            first_lead_ids(&self, workspace_id: i64, limit: u32) -> Result<Vec<i64>, StoreError>;
            list_leads(&self, workspace_id: i64, filter: &Filter, order: Order, limit: u32, page: Page)
                -> Result<Vec<ListedLead>, StoreError>;
            events_of(&self, lead: &LeadRow) -> Result<Vec<StoredEvent>, StoreError>;
            newest_events(&self, lead: &LeadRow, limit: u32) -> Result<(Vec<StoredEvent>, u64), StoreError>;
            count_leads(&self, workspace_id: i64) -> Result<i64, StoreError>;
            stored_scores(&self, lead_id: i64) -> Result<StoredScores, StoreError>;
            score_history(&self, lead_id: i64, limit: u32) -> Result<Vec<HistoryEntry>, StoreError>;
            latest_stage(&self, lead_id: i64) -> Result<Option<StageChange>, StoreError>;
            stage_history(&self, lead_id: i64) -> Result<Vec<StageChange>, StoreError>;
            score_overrides(&self, lead_id: i64) -> Result<Vec<ScoreOverride>, StoreError>;
            override_in_force(&self, lead_id: i64, score: &str) -> Result<Option<ScoreOverride>, StoreError>;
            expired_overrides(&self, now: i64, limit: u32) -> Result<Vec<(i64, ScoreOverride)>, StoreError>;
            tier_counts(&self, workspace_id: i64, score: &str) -> Result<Vec<(Option<String>, i64)>, StoreError>;
            stage_counts(&self, workspace_id: i64) -> Result<Vec<(String, i64)>, StoreError>;
            mql_entries_by_week(&self, workspace_id: i64, from: i64, to: i64) -> Result<Vec<(i64, i64)>, StoreError>;
            mql_journeys(&self, workspace_id: i64, from: i64, to: i64, now: i64) -> Result<Vec<Journey>, StoreError>;
            tier_share_by_week(&self, workspace_id: i64, score: &str, tier: &str, counts_now: &[(Option<String>, i64)], from: i64, now: i64)
                -> Result<Vec<WeekShare>, StoreError>;
            outcomes_by_tier(&self, workspace_id: i64, score: &str, from: i64, to: i64)
                -> Result<Vec<OutcomesByTier>, StoreError>;
            lead_links(&self, workspace_id: i64, lead_id: i64) -> Result<LeadLinks, StoreError>;
            notifications_of_lead(&self, workspace_id: i64, lead_id: i64) -> Result<Vec<LeadNotification>, StoreError>;
            erasures(&self, workspace_id: i64) -> Result<Vec<Erasure>, StoreError>;
            erasure_of_lead(&self, workspace_id: i64, lead_id: i64) -> Result<Option<Erasure>, StoreError>;
            retention(&self, workspace_id: i64) -> Result<Option<Retention>, StoreError>;
            retentions(&self) -> Result<Vec<Retention>, StoreError>;
            last_event_id(&self) -> Result<i64, StoreError>;
            leads_with_expired_events(&self, workspace_id: i64, cutoff: i64, after: i64, through: i64)
                -> Result<Vec<i64>, StoreError>;
        }
    }

    impl Transaction for Counting<'_> {
        counted! {
            find_or_create_workspace(&self, name: &str, now: i64) -> Result<Workspace, StoreError>;
            new_key(&self, workspace_id: i64, scope: Scope, now: i64) -> Result<NewKey, StoreError>;
            add_model_version(&self, workspace_id: i64, source: &str, predictors: &BTreeMap<String, i64>,
                uploaded_by: Option<&str>, now: i64)
                -> Result<ModelVersion, StoreError>;
            activate_model(&self, workspace_id: i64, model_id: i64, origin: Origin, now: i64) -> Result<(), StoreError>;
            roll_back_model(&self, workspace_id: i64, now: i64) -> Result<RolledBack, StoreError>;
            add_predictive_model(&self, new: &NewPredictiveModel<'_>, now: i64) -> Result<PredictiveVersion, StoreError>;
            begin_rescoring(&self, rescoring: &NewRescoring<'_>, now: i64) -> Result<(), StoreError>;
            lock_rescoring_range(&self, workspace_id: i64, first_after: i64) -> Result<Option<RescoringRange>, StoreError>;
            record_rescoring_progress(&self, range: &RescoringRange, after_lead_id: i64, done: i64, now: i64)
                -> Result<(), StoreError>;
            finish_rescoring_range(&self, range: &RescoringRange, now: i64) -> Result<bool, StoreError>;
            finish_rescoring(&self, workspace_id: i64, error: Option<&str>, now: i64) -> Result<(), StoreError>;
            write_identities(&self, identities: &NewIdentities) -> Result<(), StoreError>;
            set_user_id(&self, lead_id: i64, user_id: &str) -> Result<(), StoreError>;
            merge_leads(&self, from: &LeadRow, into: &mut LeadRow) -> Result<(), StoreError>;
            write_ingested(&self, write: &mut IngestionWrite<'_>) -> Result<Vec<Option<i64>>, StoreError>;
            save_scored_lead(&self, write: &ScoredLeadWrite<'_>, stored: &mut StoredScores) -> Result<(), StoreError>;
            save_scored_leads(&self, scored: &mut [(&ScoredLeadWrite<'_>, &mut StoredScores)]) -> Result<(), StoreError>;
            set_stage(&self, lead_id: i64, change: &StageChange) -> Result<(), StoreError>;
            add_override(&self, new: &NewOverride<'_>, now: i64) -> Result<i64, StoreError>;
            lift_override(&self, id: i64, by: &str, note: Option<&str>, now: i64) -> Result<(), StoreError>;
            queue_notifications(&self, lead_id: i64, notifications: &[Notification], now: i64) -> Result<(), StoreError>;
            erase_lead(&self, workspace_id: i64, lead_id: i64, erased_by: &str, now: i64) -> Result<Option<Erasure>, StoreError>;
            lift_suppression(&self, workspace_id: i64, erasure_id: i64, lifted_by: &str, now: i64)
                -> Result<Option<Erasure>, StoreError>;
            set_retention(&self, workspace_id: i64, events_days: Option<i64>, set_by: &str, now: i64) -> Result<(), StoreError>;
            prune_events(&self, lead: &mut LeadRow, cutoff: i64) -> Result<usize, StoreError>;
        }
    }

    fn message(user_id: Option<&str>, anonymous_id: Option<&str>, message_id: &str, kind: Kind) -> Message {
        Message {
            kind,
            user_id: user_id.map(str::to_string),
            anonymous_id: anonymous_id.map(str::to_string),
            message_id: message_id.to_string(),
            at: 0,
            traits: Map::new(),
            properties: Map::new(),
        }
    }

    /// A request reads once and writes once, whatever its size, for known leads and new
    /// visitors alike (new leads and links go with the write); a merge adds its own calls.
    #[test]
    fn a_request_crosses_the_storage_interface_twice_whatever_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_ingesting(dir.path(), leadscore_store::message_ids::DEFAULT_RECENT).unwrap();
        let workspace_id = store
            .write_blocking(|c| {
                let workspace = workspaces::find_or_create(c, "w", 0)?;
                let model = "[scores.activity]\nrules = [{ name = \"visits\", event = \"visit\", points = 1 }]\n";
                let version = models::add(c, workspace.id, model, &BTreeMap::new(), None, 0)?;
                models::activate(c, workspace.id, version.id, models::Origin::Api, 0)?;
                Ok(workspace.id)
            })
            .unwrap();
        let (models, leads) =
            (std::sync::Arc::new(Models::default()), std::sync::Arc::new(LeadCache::new(store.generation())));
        let ingest_counting = |messages: Vec<Message>| {
            let (models, leads) = (models.clone(), leads.clone());
            store
                .write_coherent_blocking(move |c| {
                    let counting = Counting { inner: c, calls: Default::default() };
                    let ingested =
                        ingest(&counting, &models, &leads, workspace_id, messages.into_iter().map(Ok).collect(), 0)?;
                    Ok((ingested.items, counting.calls.into_inner()))
                })
                .unwrap()
        };
        let visit = || Kind::Track("visit".to_string());
        // New users and new anonymous visitors, several messages each, and a repeated message id.
        let mut messages = Vec::new();
        for i in 0..50 {
            messages.push(message(Some(&format!("u{}", i % 10)), None, &format!("m{i}"), visit()));
            messages.push(message(None, Some(&format!("a{}", i % 10)), &format!("n{i}"), visit()));
        }
        messages.push(message(Some("u1"), None, "m1", visit()));
        let (items, calls) = ingest_counting(messages);
        assert_eq!(items.last(), Some(&Outcome::Duplicate));
        // Compiling the model reads nothing here (it pins no predictive model).
        assert_eq!(calls, ["ingestion_snapshot", "write_ingested"]);
        // The same leads again: the lead cache knows them all.
        let again = (0..100).map(|i| message(Some(&format!("u{}", i % 10)), None, &format!("p{i}"), visit())).collect();
        let (_, calls) = ingest_counting(again);
        assert_eq!(calls, ["ingestion_snapshot", "write_ingested"]);
        // An anonymous visitor who identifies as a known user is merged into the user's lead.
        let (items, calls) = ingest_counting(vec![message(Some("u1"), Some("a1"), "q1", Kind::Identify)]);
        assert!(matches!(items[..], [Outcome::Accepted { .. }]), "{items:?}");
        assert_eq!(calls, ["ingestion_snapshot", "merge_leads", "events_of", "write_ingested"]);
    }

    /// Requests stored together (`intake::groups`) keep what is each their own: every event its
    /// request's receipt, and the answer says which leads were merged, so that an item accepted
    /// on a lead merged later in the group can be answered as the lead kept.
    #[test]
    fn messages_received_apart_keep_their_receipt_and_merges_are_told() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_ingesting(dir.path(), leadscore_store::message_ids::DEFAULT_RECENT).unwrap();
        let workspace_id = store.write_blocking(|c| Ok(workspaces::find_or_create(c, "w", 0)?.id)).unwrap();
        let (models, leads) = (Models::default(), LeadCache::new(store.generation()));
        let visit = || Kind::Track("visit".to_string());
        let messages = vec![
            Ok(message(Some("u1"), None, "m1", visit())),
            Ok(message(None, Some("a1"), "m2", visit())),
            Ok(message(Some("u1"), Some("a1"), "m3", Kind::Identify)),
        ];
        let ingested = store
            .write_coherent_blocking(move |c| {
                ingest_received(c, &models, &leads, workspace_id, messages, &[1_000, 2_000, 3_000], Sender::Trusted)
            })
            .unwrap();
        let [
            Outcome::Accepted { lead_id: user },
            Outcome::Accepted { lead_id: anonymous },
            Outcome::Accepted { lead_id: kept },
        ] = ingested.items[..]
        else {
            panic!("{:?}", ingested.items)
        };
        assert_eq!(kept, user);
        assert_eq!(ingested.merged, vec![(anonymous, user)]);
        let received: Vec<(String, i64)> = store
            .read_blocking(|c| {
                let mut statement = c.prepare("SELECT message_id, received_at FROM events ORDER BY message_id")?;
                let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .unwrap();
        assert_eq!(received, [("m1".to_string(), 1_000), ("m2".to_string(), 2_000), ("m3".to_string(), 3_000)]);
        // Not as many instants as messages: refused, nothing stored.
        let (models, leads) = (Models::default(), LeadCache::new(store.generation()));
        let refused = store.write_coherent_blocking(move |c| {
            let messages = vec![Ok(message(Some("u2"), None, "m4", Kind::Track("visit".to_string())))];
            ingest_received(c, &models, &leads, workspace_id, messages, &[], Sender::Trusted)
        });
        assert!(refused.is_err());
    }
}
