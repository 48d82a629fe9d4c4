//! The storage interface the service uses, shaped by what it does rather than by tables, so that
//! another database is one more implementation of these traits (SQLite's is [`sqlite`]).
//!
//! - [`Storage`]: the service's handle. It runs work that needs several reads and writes
//!   together (ingestion, rescoring, activations, stage moves) in one transaction, answering once
//!   it is durable; what stands alone (keys, webhooks, deliveries, rescorings' progress, health)
//!   is a method of its own.
//! - [`Reads`]: what such work reads, in a read snapshot or in a write transaction.
//! - [`Transaction`]: what it writes besides: leads and their identities, events, model
//!   versions and activations, and, in one call per lead ([`ScoredLeadWrite`]), its scores with
//!   their history, its automatic stage move and its webhook notifications.
//!
//! Ingestion crosses the interface a fixed number of times per request, whatever the number of
//! its messages, as a database across a network needs: one read before it resolves identities
//! ([`Reads::ingestion_snapshot`]: the active model, the webhooks, which message ids are stored,
//! the leads the messages' ids find with their stored scores, and the id new leads start from)
//! and one write at its end ([`Transaction::write_ingested`]: new leads and anonymous id links,
//! then each touched lead's events, row and scores). Only rare identity changes are calls of
//! their own (giving a stored lead its user id, merging two leads, with
//! [`Transaction::write_identities`] before a merge), and so are reading a lead's events to
//! rebuild its state (after a merge or a model change) and an id the snapshot was not asked.
//!
//! The work is the caller's: the store never scores (it does not depend on the engine or the
//! service), it hands the work a [`Transaction`] and commits what the work wrote.

#[cfg(test)]
mod conformance;
pub mod postgres;
pub mod sqlite;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;

use crate::Generation;
use crate::erasure::{Erasure, IdentifierKind};
use crate::error::StoreError;
use crate::events::{NewEvent, StoredEvent};
use crate::funnel::{Journey, OutcomesByTier, WeekShare};
use crate::keys::{KeyInfo, KeyOwner, NewKey, Scope};
use crate::leads::{Filter, LeadLinks, LeadRow, ListedLead, Order, Page};
use crate::models::{Activation, ListedVersion, ModelVersion, Origin as ModelOrigin, RolledBack};
use crate::overrides::{NewOverride, ScoreOverride};
use crate::predictive::{LabelledLead, Origin as PredictiveOrigin, PredictiveVersion, Summary};
use crate::rescorings::{IfRunning, Rescoring, RescoringRange};
use crate::retention::Retention;
use crate::scores::{History, HistoryEntry, HistoryTerms, ScoreRow, StoredScores};
use crate::sessions::{Opened, Session};
use crate::stages::StageChange;
use crate::users::{Role, User};
use crate::webhooks::{Attempt, ClaimRequest, Claimed, LeadNotification, LogEntry, NewWebhook, Webhook};
use crate::workspaces::Workspace;

/// What a storage call answers, later.
pub type StorageFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Work run in one write transaction, given that transaction.
pub type TransactionWork = Box<dyn FnOnce(&dyn Transaction) -> Result<(), StoreError> + Send>;

/// Work run on a read snapshot, given what it can read.
pub type ReadWork = Box<dyn FnOnce(&dyn Reads) -> Result<(), StoreError> + Send>;

/// What the service reads, in a read (a snapshot) or inside a write transaction. Every query
/// that takes a client's input is scoped by workspace.
pub trait Reads {
    /// The workspace of this name, if there is one.
    fn workspace_named(&self, name: &str) -> Result<Option<Workspace>, StoreError>;
    /// The newest of the workspace's scoring model versions with this text and these pinned
    /// predictive model versions, if one was stored: a model file installed again.
    fn model_with_source(
        &self,
        workspace_id: i64,
        source: &str,
        predictors: &BTreeMap<String, i64>,
    ) -> Result<Option<ModelVersion>, StoreError>;
    /// The workspace's active scoring model version, if any.
    fn active_model(&self, workspace_id: i64) -> Result<Option<ModelVersion>, StoreError>;
    /// A stored scoring model version by its id.
    fn model_by_id(&self, model_id: i64) -> Result<Option<ModelVersion>, StoreError>;
    /// The id of the workspace's scoring model version numbered `version`, if there is one.
    fn model_id_of_version(&self, workspace_id: i64, version: i64) -> Result<Option<i64>, StoreError>;
    /// Every scoring model version of the workspace, oldest first, without its text.
    fn model_versions(&self, workspace_id: i64) -> Result<Vec<ListedVersion>, StoreError>;
    /// The workspace's activations, oldest first, rolled back ones included (see
    /// [`crate::models::stack`]): what a rollback would restore.
    fn model_activations(&self, workspace_id: i64) -> Result<Vec<Activation>, StoreError>;
    /// A stored predictive model version of the workspace, which a scoring model is pinned to.
    fn predictive_model(&self, workspace_id: i64, id: i64) -> Result<Option<PredictiveVersion>, StoreError>;
    /// The newest version of the workspace's predictive model `name`.
    fn latest_predictive_model(&self, workspace_id: i64, name: &str) -> Result<Option<PredictiveVersion>, StoreError>;
    /// The workspace's predictive models, each with its versions.
    fn predictive_models(&self, workspace_id: i64) -> Result<Vec<Summary>, StoreError>;
    /// The workspace's leads whose outcome is known, which a retrain learns from.
    fn labelled_leads(&self, workspace_id: i64) -> Result<Vec<LabelledLead>, StoreError>;
    /// Which of `fields` no lead of the workspace has.
    fn fields_no_lead_has(&self, workspace_id: i64, fields: &[String]) -> Result<Vec<String>, StoreError>;
    /// The workspace's webhooks, which a change of score or stage notifies.
    fn webhooks(&self, workspace_id: i64) -> Result<Vec<Webhook>, StoreError>;
    /// The workspace's running or last rescoring.
    fn rescoring(&self, workspace_id: i64) -> Result<Option<Rescoring>, StoreError>;

    /// The workspace's next `limit` leads in id order after `after_id` (merged ones left out),
    /// each with its stored scores: a batch of a pass over every lead, in a fixed number of
    /// queries whatever its size.
    fn leads_after(
        &self,
        workspace_id: i64,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<(LeadRow, StoredScores)>, StoreError>;
    /// Every event of each of `leads`, oldest first, in the leads' order, in one query.
    fn events_of_leads(&self, leads: &[&LeadRow]) -> Result<Vec<Vec<StoredEvent>>, StoreError>;

    /// Everything an ingestion request reads before it resolves its messages, in one call (see
    /// [`IngestionSnapshot`]).
    fn ingestion_snapshot(&self, lookup: &IngestionLookup<'_>) -> Result<IngestionSnapshot, StoreError>;
    /// A lead of the workspace by its id.
    fn lead_by_id(&self, workspace_id: i64, id: i64) -> Result<Option<LeadRow>, StoreError>;
    /// The lead a user id belongs to, merged leads left out.
    fn lead_by_user_id(&self, workspace_id: i64, user_id: &str) -> Result<Option<LeadRow>, StoreError>;
    /// The lead an anonymous id is linked to, merged leads left out.
    fn lead_by_anonymous_id(&self, workspace_id: i64, anonymous_id: &str) -> Result<Option<LeadRow>, StoreError>;
    /// The ids of up to `limit` of the workspace's leads after `after_id`, merged ones left out,
    /// in id order: how rescoring walks a workspace.
    fn lead_ids_after(&self, workspace_id: i64, after_id: i64, limit: u32) -> Result<Vec<i64>, StoreError>;
    /// The ids of the workspace's first `limit` leads, merged ones left out, in id order: the
    /// sample a model preview compares.
    fn first_lead_ids(&self, workspace_id: i64, limit: u32) -> Result<Vec<i64>, StoreError>;
    /// A page of the workspace's leads with one score's value and tier (see [`crate::leads::list`]).
    fn list_leads(
        &self,
        workspace_id: i64,
        filter: &Filter,
        order: Order,
        limit: u32,
        page: Page,
    ) -> Result<Vec<ListedLead>, StoreError>;
    /// Every event of a lead, to rebuild its state when the model changed or leads merged.
    fn events_of(&self, lead: &LeadRow) -> Result<Vec<StoredEvent>, StoreError>;
    /// A lead's `limit` most recently stored events, newest first, and how many it has in all
    /// (see [`crate::events::newest_of_lead`]).
    fn newest_events(&self, lead: &LeadRow, limit: u32) -> Result<(Vec<StoredEvent>, u64), StoreError>;
    /// How many leads the workspace has, merged ones included.
    fn count_leads(&self, workspace_id: i64) -> Result<i64, StoreError>;
    /// A lead's stored scores.
    fn stored_scores(&self, lead_id: i64) -> Result<StoredScores, StoreError>;
    /// A lead's newest `limit` score changes, newest first.
    fn score_history(&self, lead_id: i64, limit: u32) -> Result<Vec<HistoryEntry>, StoreError>;
    /// Every override of a lead's scores, in force or lifted, newest first.
    fn score_overrides(&self, lead_id: i64) -> Result<Vec<ScoreOverride>, StoreError>;
    /// The override in force on a lead's score, if any.
    fn override_in_force(&self, lead_id: i64, score: &str) -> Result<Option<ScoreOverride>, StoreError>;
    /// Up to `limit` overrides in force whose expiry is at or before `now`, each with its
    /// workspace (see [`crate::overrides::expired`]).
    fn expired_overrides(&self, now: i64, limit: u32) -> Result<Vec<(i64, ScoreOverride)>, StoreError>;
    /// A lead's latest stage change.
    fn latest_stage(&self, lead_id: i64) -> Result<Option<StageChange>, StoreError>;
    /// Every stage change of a lead.
    fn stage_history(&self, lead_id: i64) -> Result<Vec<StageChange>, StoreError>;
    /// A lead's anonymous ids and the leads merged into it (an export's identities).
    fn lead_links(&self, workspace_id: i64, lead_id: i64) -> Result<LeadLinks, StoreError>;
    /// Every webhook notification about a lead (and the leads merged into it), oldest first.
    fn notifications_of_lead(&self, workspace_id: i64, lead_id: i64) -> Result<Vec<LeadNotification>, StoreError>;
    /// The workspace's erasures, newest first.
    fn erasures(&self, workspace_id: i64) -> Result<Vec<Erasure>, StoreError>;
    /// The latest erasure of a lead number, if it was erased.
    fn erasure_of_lead(&self, workspace_id: i64, lead_id: i64) -> Result<Option<Erasure>, StoreError>;
    /// How long the workspace keeps events (`None`: forever).
    fn retention(&self, workspace_id: i64) -> Result<Option<Retention>, StoreError>;
    /// Every workspace's retention.
    fn retentions(&self) -> Result<Vec<Retention>, StoreError>;
    /// The highest event id stored (0 without any).
    fn last_event_id(&self) -> Result<i64, StoreError>;
    /// The workspace's leads with an event older than `cutoff` among event ids `(after, through]`.
    fn leads_with_expired_events(
        &self,
        workspace_id: i64,
        cutoff: i64,
        after: i64,
        through: i64,
    ) -> Result<Vec<i64>, StoreError>;

    // The funnel report (see [`crate::funnel`]): periods are `[from, to)`, in milliseconds.
    /// How many of the workspace's leads are in each tier of `score` now.
    fn tier_counts(&self, workspace_id: i64, score: &str) -> Result<Vec<(Option<String>, i64)>, StoreError>;
    /// How many of the workspace's leads are in each stage now.
    fn stage_counts(&self, workspace_id: i64) -> Result<Vec<(String, i64)>, StoreError>;
    /// Leads entering MQL in the period, by week.
    fn mql_entries_by_week(&self, workspace_id: i64, from: i64, to: i64) -> Result<Vec<(i64, i64)>, StoreError>;
    /// The leads that entered MQL in the period and their way through the funnel up to `now`.
    fn mql_journeys(&self, workspace_id: i64, from: i64, to: i64, now: i64) -> Result<Vec<Journey>, StoreError>;
    /// How many leads were in `tier` of `score` at the end of each week from `from` to `now`,
    /// counted back from `counts_now` ([`Reads::tier_counts`] of the score, in the same read).
    fn tier_share_by_week(
        &self,
        workspace_id: i64,
        score: &str,
        tier: &str,
        counts_now: &[(Option<String>, i64)],
        from: i64,
        now: i64,
    ) -> Result<Vec<WeekShare>, StoreError>;
    /// Leads won and lost in the period, by their tier of `score` when they became MQL.
    fn outcomes_by_tier(
        &self,
        workspace_id: i64,
        score: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<OutcomesByTier>, StoreError>;
}

/// What ingestion, rescoring and stage moves write in one write transaction, beside what they
/// read ([`Reads`]).
///
/// Leads are passed as the rows read in the same transaction (or kept coherent with it): the
/// events and the merge link rows from them (see [`crate::events`]).
pub trait Transaction: Reads {
    /// The workspace of this name, created if there is none.
    fn find_or_create_workspace(&self, name: &str, now: i64) -> Result<Workspace, StoreError>;
    /// A new API key of the workspace, with its secret (stored hashed).
    fn new_key(&self, workspace_id: i64, scope: Scope, now: i64) -> Result<NewKey, StoreError>;
    /// Stores a new scoring model version, pinned to the predictive model versions `predictors`.
    fn add_model_version(
        &self,
        workspace_id: i64,
        source: &str,
        predictors: &BTreeMap<String, i64>,
        uploaded_by: Option<&str>,
        now: i64,
    ) -> Result<ModelVersion, StoreError>;
    /// Makes a version the active one, on top of the workspace's version stack.
    fn activate_model(&self, workspace_id: i64, model_id: i64, origin: ModelOrigin, now: i64)
    -> Result<(), StoreError>;
    /// Undoes the newest activation still standing (see [`crate::models::rollback`]).
    fn roll_back_model(&self, workspace_id: i64, now: i64) -> Result<RolledBack, StoreError>;
    /// Stores a new version of the workspace's predictive model `name`.
    fn add_predictive_model(&self, new: &NewPredictiveModel<'_>, now: i64) -> Result<PredictiveVersion, StoreError>;
    /// Records the start of a rescoring of every lead of the workspace (see
    /// [`crate::rescorings::begin`]).
    fn begin_rescoring(&self, rescoring: &NewRescoring<'_>, now: i64) -> Result<(), StoreError>;
    /// A range of the workspace's rescoring as stored now, kept from other writers until the
    /// transaction ends (see [`crate::rescorings`]): a batch reads it before it writes.
    fn lock_rescoring_range(&self, workspace_id: i64, first_after: i64) -> Result<Option<RescoringRange>, StoreError>;
    /// Records that a rescoring's range has done its leads up to `after_lead_id`, `done` in the
    /// range, and renews the range's claim.
    fn record_rescoring_progress(
        &self,
        range: &RescoringRange,
        after_lead_id: i64,
        done: i64,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Records that a rescoring's range is done, and the rescoring too when it was its last range;
    /// answers whether it was.
    fn finish_rescoring_range(&self, range: &RescoringRange, now: i64) -> Result<bool, StoreError>;
    /// Records the end of the workspace's rescoring, with the error that stopped it, if any.
    fn finish_rescoring(&self, workspace_id: i64, error: Option<&str>, now: i64) -> Result<(), StoreError>;

    /// Creates leads with the ids the snapshot handed out, then links anonymous ids (or earlier
    /// user ids) to leads, replacing earlier links, in order. Ingestion writes these with
    /// [`Transaction::write_ingested`], and alone only before a merge that needs them stored.
    fn write_identities(&self, identities: &NewIdentities) -> Result<(), StoreError>;
    /// Gives an anonymous lead the user id it turned out to have.
    fn set_user_id(&self, lead_id: i64, user_id: &str) -> Result<(), StoreError>;
    /// Merges `from` into `into` (see [`crate::merge::merge_leads`]).
    fn merge_leads(&self, from: &LeadRow, into: &mut LeadRow) -> Result<(), StoreError>;
    /// Writes what an ingestion request worked out, in one call: its new identities, then each
    /// lead's new events (appended in order after the row's `last_event_id`), then its row, and
    /// its scores with what follows from them. Answers each lead's newest event id, in the order
    /// of `write.leads`, which the caller keeps in the rows it remembers. A message id already
    /// stored is an error that stores nothing of the work: the caller leaves out the duplicates
    /// the snapshot named and those repeated in the request.
    ///
    /// The work's last call on the transaction: PostgreSQL's store commits the transaction with
    /// it, in the same round trip (`postgres/ingested.rs`), and refuses any statement after it.
    /// SQLite's commits when the work returns, with the other works of its group.
    fn write_ingested(&self, write: &mut IngestionWrite<'_>) -> Result<Vec<Option<i64>>, StoreError>;

    /// Writes a lead's freshly evaluated scores with everything that follows from them, in one
    /// call: its row, its scores over `stored` (brought up to date) and their history, its
    /// automatic stage move and its webhook notifications.
    fn save_scored_lead(&self, write: &ScoredLeadWrite<'_>, stored: &mut StoredScores) -> Result<(), StoreError>;
    /// Saves several leads as [`Transaction::save_scored_lead`] saves each, where the store can in
    /// fewer statements (a rescoring's batch).
    fn save_scored_leads(&self, scored: &mut [(&ScoredLeadWrite<'_>, &mut StoredScores)]) -> Result<(), StoreError> {
        for (write, stored) in scored.iter_mut() {
            self.save_scored_lead(write, stored)?;
        }
        Ok(())
    }
    /// Moves a lead to a stage, recording the change.
    fn set_stage(&self, lead_id: i64, change: &StageChange) -> Result<(), StoreError>;
    /// Stores an override in force, lifting the one it replaces (see
    /// [`crate::overrides::insert`]); answers its id. The lead's scores are saved after it, with
    /// the override applied, by [`Transaction::save_scored_lead`].
    fn add_override(&self, new: &NewOverride<'_>, now: i64) -> Result<i64, StoreError>;
    /// Records that an override was lifted (see [`crate::overrides::lift`]).
    fn lift_override(&self, id: i64, by: &str, note: Option<&str>, now: i64) -> Result<(), StoreError>;
    /// Queues webhook notifications about a lead, sent after the commit.
    fn queue_notifications(&self, lead_id: i64, notifications: &[Notification], now: i64) -> Result<(), StoreError>;

    /// Erases a lead and the leads merged into it, records the erasure and lists their
    /// identifiers for suppression (see [`crate::erasure`]); `None` when the workspace has no
    /// such lead. The transaction is answered once no file of the store holds what it erased.
    fn erase_lead(
        &self,
        workspace_id: i64,
        lead_id: i64,
        erased_by: &str,
        now: i64,
    ) -> Result<Option<Erasure>, StoreError>;
    /// Sets (or, with `None`, removes) how long the workspace keeps events.
    fn set_retention(
        &self,
        workspace_id: i64,
        events_days: Option<i64>,
        set_by: &str,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Deletes the lead's events older than `cutoff`, keeping the others linked (see
    /// [`crate::retention::prune`]); answers how many went.
    fn prune_events(&self, lead: &mut LeadRow, cutoff: i64) -> Result<usize, StoreError>;
    /// Lifts an erasure's suppression; `None` when the workspace has no such erasure.
    fn lift_suppression(
        &self,
        workspace_id: i64,
        erasure_id: i64,
        lifted_by: &str,
        now: i64,
    ) -> Result<Option<Erasure>, StoreError>;
}

/// A lead's freshly evaluated scores and what follows from them, which the caller worked out
/// (the store does not score): see [`Transaction::save_scored_lead`].
pub struct ScoredLeadWrite<'a> {
    /// The lead as saved: its state, attributes and times (its stage is `stage`'s, if any).
    pub lead: &'a LeadRow,
    pub rows: &'a [ScoreRow],
    /// The history's cause: `event`, `model vN`, `time`, ...
    pub cause: &'a str,
    pub history: History,
    /// Why each score moved, for the history entries written (scores without terms get none).
    pub terms: &'a [HistoryTerms],
    /// The automatic move the scores made, if they made one.
    pub stage: Option<&'a StageChange>,
    pub notifications: &'a [Notification],
    /// Overrides that the scores no longer carry because the model evaluated does not allow them
    /// (a tier it does not have): recorded as lifted.
    pub lifted_overrides: &'a [LiftedOverride],
    pub now: i64,
}

/// An override lifted by the save of a lead's scores, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct LiftedOverride {
    pub id: i64,
    /// Who lifted it, as the override's record says (`model vN`).
    pub by: String,
    pub note: String,
}

/// What an ingestion request looks up before it resolves its messages: see
/// [`Reads::ingestion_snapshot`].
pub struct IngestionLookup<'a> {
    pub workspace_id: i64,
    /// Every message id of the request, to tell duplicates.
    pub message_ids: Vec<&'a str>,
    /// The user ids and anonymous ids of the messages whose lead the caller does not know yet.
    pub user_ids: Vec<&'a str>,
    pub anonymous_ids: Vec<&'a str>,
    /// Every identifier the messages carry (user ids, anonymous ids, e-mails), to drop the
    /// messages of erased people (see [`crate::erasure`]).
    pub identifiers: Vec<(IdentifierKind, &'a str)>,
}

/// What an ingestion request reads, in one call: the workspace's active model and webhooks, the
/// message ids it already has, and the leads the ids asked find (merged leads left out), each
/// with its stored scores.
#[derive(Default)]
pub struct IngestionSnapshot {
    pub active_model: Option<ModelVersion>,
    pub webhooks: Vec<Webhook>,
    /// Those of the message ids asked that are already stored.
    pub stored_message_ids: HashSet<String>,
    /// The lead id of each user id asked that finds a lead.
    pub by_user_id: HashMap<String, i64>,
    /// The lead id of each anonymous id asked that finds a lead.
    pub by_anonymous_id: HashMap<String, i64>,
    /// The leads found, by id, with their stored scores.
    pub leads: HashMap<i64, (LeadRow, StoredScores)>,
    /// The id the request's first new lead takes, the next ones following: the ingestion is the
    /// only writer of its transaction until it ends (a database with concurrent writers would
    /// reserve as many ids as the request has messages).
    pub next_lead_id: i64,
    /// Those of the identifiers asked that are on the suppression list (`lookup.identifiers`'
    /// kinds and values).
    pub suppressed: HashSet<(IdentifierKind, String)>,
}

/// Leads an ingestion creates and anonymous ids it links: see [`Transaction::write_identities`].
#[derive(Debug, Default, Clone, PartialEq)]
pub struct NewIdentities {
    pub workspace_id: i64,
    pub now: i64,
    /// Each new lead's id (handed out by [`IngestionSnapshot::next_lead_id`]) and user id, if any.
    pub leads: Vec<(i64, Option<String>)>,
    /// Anonymous ids (or earlier user ids) and the lead each is now linked to, in order.
    pub links: Vec<(String, i64)>,
}

impl NewIdentities {
    pub fn is_empty(&self) -> bool {
        self.leads.is_empty() && self.links.is_empty()
    }
}

/// What an ingestion request writes at its end: see [`Transaction::write_ingested`].
pub struct IngestionWrite<'a> {
    /// Written first: the leads below may be new.
    pub identities: NewIdentities,
    /// Every lead the request touched, in the order they are written.
    pub leads: Vec<IngestedLead<'a>>,
}

/// One lead of an [`IngestionWrite`]: its new events, oldest message first, and its row.
pub struct IngestedLead<'a> {
    pub events: Vec<NewEvent<'a>>,
    pub save: LeadSave<'a>,
}

/// How a lead of an ingestion is saved.
pub enum LeadSave<'a> {
    /// Its row only (the workspace has no active model).
    Row(&'a LeadRow),
    /// Its row and its freshly evaluated scores over what is stored (brought up to date), as
    /// [`Transaction::save_scored_lead`] saves them.
    Scored(ScoredLeadWrite<'a>, &'a mut StoredScores),
}

impl LeadSave<'_> {
    /// The lead's row as saved.
    pub fn lead(&self) -> &LeadRow {
        match self {
            LeadSave::Row(lead) => lead,
            LeadSave::Scored(write, _) => write.lead,
        }
    }
}

/// A predictive model version to store (the caller has checked the file).
pub struct NewPredictiveModel<'a> {
    pub workspace_id: i64,
    pub name: &'a str,
    pub body: &'a str,
    pub algorithm: &'a str,
    pub origin: PredictiveOrigin,
}

/// A rescoring to record: of every lead of the workspace with `model_id`, and why.
pub struct NewRescoring<'a> {
    pub workspace_id: i64,
    pub model_id: i64,
    pub cause: &'a str,
    /// After a rollback: automatic MQL moves made since then are moved back.
    pub revert_automatic_since: Option<i64>,
    pub if_running: IfRunning,
}

/// A webhook notification to queue: which webhook, the event kind and its JSON data.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub webhook_id: i64,
    pub event: &'static str,
    pub data: String,
}

/// The service's storage.
pub trait Storage: Send + Sync {
    /// Whether the database answers a read.
    fn ping(&self) -> StorageFuture<'_, ()>;
    /// Runs `work` in a write transaction of its own (its own savepoint when it shares the
    /// transaction) and answers once it is durable. Callers use `<dyn Storage>::write`.
    fn run_write(&self, work: TransactionWork) -> StorageFuture<'_, ()>;
    /// Runs `work` on a read snapshot, off the async runtime. Callers use
    /// `<dyn Storage>::read`, which hands the work's result back.
    fn run_read(&self, work: ReadWork) -> StorageFuture<'_, ()>;
    /// Why writes fail now, if they do for a storage reason (a full disk, an I/O error).
    fn write_failure(&self) -> Option<String>;
    /// A write of its own, so that a storage that failed finds out whether writes are back.
    fn probe_write(&self, now: i64) -> StorageFuture<'_, ()>;
    /// The number that changes whenever stored data may have changed behind a cache kept by
    /// ingestion (see [`crate::Generation`]).
    fn generation(&self) -> Generation;
    /// Runs an ingestion batch's work in one write transaction and answers once it is durable.
    /// The work keeps the caches checked against [`Storage::generation`] up to date itself, and,
    /// once it has written anything, fails only when storage does (see
    /// [`crate::Store::write_coherent`]). Callers use `<dyn Storage>::ingest`, which hands the
    /// work's result back.
    fn run_ingestion(&self, work: TransactionWork) -> StorageFuture<'_, ()>;
    /// Runs work that forgets, in the caches checked against [`Storage::generation`], every lead
    /// it changes (a rescoring batch, a stage move), in one write transaction, and answers once it
    /// is durable: the caches stay valid for the other leads (see
    /// [`crate::Store::write_beside_caches`]). Callers use `<dyn Storage>::write_beside_caches`.
    fn run_beside_caches(&self, work: TransactionWork) -> StorageFuture<'_, ()>;

    /// The workspace's running or last rescoring.
    fn rescoring(&self, workspace_id: i64) -> StorageFuture<'_, Option<Rescoring>>;
    /// Every rescoring a stop (or a crash) cut short, to resume.
    fn unfinished_rescorings(&self) -> StorageFuture<'_, Vec<Rescoring>>;
    /// Records the end of the workspace's rescoring with the error that stopped it, if any.
    fn finish_rescoring(&self, workspace_id: i64, error: Option<String>, now: i64) -> StorageFuture<'_, ()>;
    /// Takes a range of the workspace's rescoring that no other instance works on, for a while
    /// renewed by each batch it writes (see [`crate::rescorings`]); `None` when none is left.
    fn claim_rescoring_range(&self, workspace_id: i64, now: i64) -> StorageFuture<'_, Option<RescoringRange>>;
    /// The workspaces that have an active model, in id order: those the scheduler rescores.
    fn workspaces_with_active_model(&self) -> StorageFuture<'_, Vec<i64>>;
    /// Claims the notifications to send now (each webhook's share, soonest due first) until the
    /// lease ends: no other claim, of this instance or another, answers them before their attempt
    /// is recorded or the lease ends (see [`crate::webhooks::claim`]). Touches no lead.
    fn claim_notifications(&self, request: ClaimRequest) -> StorageFuture<'_, Claimed>;
    /// Records a delivery attempt of a notification and ends its claim; `next_attempt_at` None
    /// with a failure means it gave up. Touches no lead, so ingestion's caches stay valid.
    fn record_delivery_attempt(
        &self,
        outbox_id: i64,
        attempt: Attempt,
        delivered: bool,
        next_attempt_at: Option<i64>,
    ) -> StorageFuture<'_, ()>;
    /// How many notifications wait to be delivered.
    fn notifications_waiting(&self) -> StorageFuture<'_, i64>;
    /// The time, in milliseconds since the epoch, by the clock that every process sharing this
    /// store reads: the outbox's leases and due times are in it, so that instances whose own
    /// clocks differ by more than a lease still agree on whether a claim holds. SQLite's store
    /// has one process (its clock); PostgreSQL's is the database's clock.
    fn shared_clock_ms(&self) -> StorageFuture<'_, i64>;
    /// The owner and scope of an API key, if it is known and not revoked.
    fn authenticate(&self, secret: String) -> StorageFuture<'_, Option<KeyOwner>>;
    /// The workspace's API keys, newest first.
    fn list_keys(&self, workspace_id: i64) -> StorageFuture<'_, Vec<KeyInfo>>;
    /// A new API key of the workspace named `name`, with its secret (stored hashed).
    /// A browser key is bound to `origins` (at least one); other scopes to none.
    fn create_key(
        &self,
        workspace_id: i64,
        scope: Scope,
        name: String,
        origins: Vec<String>,
        now: i64,
    ) -> StorageFuture<'_, NewKey>;
    /// Every origin a browser key that is not revoked is bound to, in any workspace.
    fn browser_origins(&self) -> StorageFuture<'_, Vec<String>>;
    /// The cache version: a number that moves with every committed change of what the service
    /// caches across requests (API keys and their origins), whichever process made it; read every
    /// second by each running service (see [`crate::cache_versions`]).
    fn cache_version(&self) -> StorageFuture<'_, i64>;
    /// Revokes one of the workspace's keys and returns it as revoked; `None` if the workspace
    /// has no such key.
    fn revoke_key(&self, workspace_id: i64, key_id: i64, now: i64) -> StorageFuture<'_, Option<KeyInfo>>;

    // Console accounts and sessions. Their writes leave the ingestion's remembered leads alone
    // (written beside the caches): a page view must not make the next event read its lead.
    /// The account an e-mail address signs in with (disabled or not), with its password hash.
    fn account_for_sign_in(&self, email: String) -> StorageFuture<'_, Option<(User, String)>>;
    /// The failed sign-ins aimed at each subject since `since`: how many, and when the last was.
    fn sign_in_failures(&self, subjects: Vec<String>, since: i64) -> StorageFuture<'_, Vec<(u32, Option<i64>)>>;
    /// Records a failed sign-in aimed at each subject; failures from before `forget_before` go.
    fn record_sign_in_failure(&self, subjects: Vec<String>, now: i64, forget_before: i64) -> StorageFuture<'_, ()>;
    /// Opens a session for an account that signed in, and forgets the failures aimed at
    /// `subjects`.
    fn open_session(
        &self,
        user_id: i64,
        subjects: Vec<String>,
        now: i64,
        idle_ms: i64,
        lifetime_ms: i64,
    ) -> StorageFuture<'_, Opened>;
    /// The live session of a browser's token, with its account.
    fn live_session(&self, token: String, now: i64) -> StorageFuture<'_, Option<(Session, User)>>;
    /// Moves a session's idle end on (never past its end).
    fn extend_session(&self, session_id: i64, idle_until: i64) -> StorageFuture<'_, ()>;
    /// Ends a session (a sign-out); false if it had ended already.
    fn end_session(&self, session_id: i64, now: i64) -> StorageFuture<'_, bool>;
    /// The workspace's accounts, in the order they were made.
    fn list_users(&self, workspace_id: i64) -> StorageFuture<'_, Vec<User>>;
    /// A new account of the workspace (`Conflict` if its address has one, in any workspace).
    fn create_user(
        &self,
        workspace_id: i64,
        email: String,
        role: Role,
        password_hash: String,
        now: i64,
    ) -> StorageFuture<'_, User>;
    /// Disables one of the workspace's accounts and ends its sessions; false if it has no such
    /// account still enabled; `Conflict` for the workspace's last enabled admin.
    fn disable_user(&self, workspace_id: i64, user_id: i64, now: i64) -> StorageFuture<'_, bool>;
    /// Gives one of the workspace's accounts another role; false if it has no such account;
    /// `Conflict` if it would leave the workspace without an enabled admin.
    fn set_user_role(&self, workspace_id: i64, user_id: i64, role: Role) -> StorageFuture<'_, bool>;
    /// When each of the workspace's accounts last signed in, by account id (those that did).
    fn last_sign_ins(&self, workspace_id: i64) -> StorageFuture<'_, Vec<(i64, i64)>>;
    /// Gives one of the workspace's accounts a new password and ends its sessions; false if it
    /// has no such account.
    fn set_password(&self, workspace_id: i64, user_id: i64, password_hash: String, now: i64)
    -> StorageFuture<'_, bool>;

    /// The workspace's webhooks.
    fn list_webhooks(&self, workspace_id: i64) -> StorageFuture<'_, Vec<Webhook>>;
    /// Subscribes a webhook, with a new signing secret.
    fn subscribe_webhook(&self, workspace_id: i64, new: NewWebhook, now: i64) -> StorageFuture<'_, Webhook>;
    /// Stops a webhook; false if the workspace has no such webhook.
    fn delete_webhook(&self, workspace_id: i64, id: i64, now: i64) -> StorageFuture<'_, bool>;
    /// A webhook's newest `limit` notifications (older than the notification `before`, if given)
    /// and their attempts; `None` if the workspace has no such webhook.
    fn delivery_log(
        &self,
        workspace_id: i64,
        id: i64,
        before: Option<i64>,
        limit: u32,
    ) -> StorageFuture<'_, Option<Vec<LogEntry>>>;
    /// Queues a notification of the workspace again; returns the new notification's id.
    fn redeliver(&self, workspace_id: i64, outbox_id: i64, now: i64) -> StorageFuture<'_, i64>;

    /// Whether this process writes the storage alone (SQLite's ingesting store holds its data
    /// directory): only then may ingestion remember leads from one request to the next, since
    /// nobody else changes them behind its back.
    fn sole_writer(&self) -> bool;

    /// The right to do `job` alone among every process that shares this storage (the periodic
    /// pass, a workspace's rescoring), held until the answer is dropped; `None` while another
    /// process holds it. A storage only one process writes (SQLite's) always grants it: the
    /// process keeps its own jobs apart.
    fn try_exclusive(&self, job: String) -> StorageFuture<'_, Option<Exclusive>>;
}

/// The right to do a job alone, held until dropped (see [`Storage::try_exclusive`]).
pub struct Exclusive {
    held: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Whatever keeps the right (a connection that holds a lock); dropped to give it back.
    _keeper: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl Exclusive {
    /// A right nobody else can ask for: one process writes the storage.
    pub fn sole() -> Exclusive {
        Exclusive { held: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)), _keeper: None }
    }

    /// A right kept by `keeper`, held while `held` says so.
    pub(crate) fn kept(
        held: std::sync::Arc<std::sync::atomic::AtomicBool>,
        keeper: Box<dyn std::any::Any + Send + Sync>,
    ) -> Exclusive {
        Exclusive { held, _keeper: Some(keeper) }
    }

    /// Whether the right still holds: it is lost with the connection that keeps it (a database
    /// restart), and another process may then have taken it.
    pub fn is_held(&self) -> bool {
        self.held.load(std::sync::atomic::Ordering::Acquire)
    }
}

impl dyn Storage + '_ {
    /// Runs `work` on a read snapshot (see [`Storage::run_read`]) and returns its result.
    pub async fn read<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&dyn Reads) -> Result<R, StoreError> + Send + 'static,
    {
        let (sender, result) = std::sync::mpsc::sync_channel(1);
        self.run_read(Box::new(move |reads| {
            let _ = sender.send(work(reads)?);
            Ok(())
        }))
        .await?;
        result.try_recv().map_err(|_| StoreError::Closed)
    }

    /// Runs `work` in a write transaction (see [`Storage::run_write`]) and returns its result once
    /// committed.
    pub async fn write<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&dyn Transaction) -> Result<R, StoreError> + Send + 'static,
    {
        let (work, result) = returning(work);
        self.run_write(work).await?;
        result.try_recv().map_err(|_| StoreError::Closed)
    }

    /// Runs `work` as an ingestion batch (see [`Storage::run_ingestion`]) and returns its result
    /// once committed.
    pub async fn ingest<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&dyn Transaction) -> Result<R, StoreError> + Send + 'static,
    {
        let (work, result) = returning(work);
        self.run_ingestion(work).await?;
        result.try_recv().map_err(|_| StoreError::Closed)
    }

    /// Runs `work` beside the caches (see [`Storage::run_beside_caches`]) and returns its result
    /// once committed.
    pub async fn write_beside_caches<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&dyn Transaction) -> Result<R, StoreError> + Send + 'static,
    {
        let (work, result) = returning(work);
        self.run_beside_caches(work).await?;
        result.try_recv().map_err(|_| StoreError::Closed)
    }
}

/// `work` as a [`TransactionWork`], whose result leaves the transaction by a channel: so the
/// trait needs no generic method and stays usable as `dyn Storage`.
fn returning<R, F>(work: F) -> (TransactionWork, std::sync::mpsc::Receiver<R>)
where
    R: Send + 'static,
    F: FnOnce(&dyn Transaction) -> Result<R, StoreError> + Send + 'static,
{
    let (sender, receiver) = std::sync::mpsc::sync_channel(1);
    let work: TransactionWork = Box::new(move |transaction| {
        let result = work(transaction)?;
        let _ = sender.send(result);
        Ok(())
    });
    (work, receiver)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{Store, workspaces};

    fn storage() -> (tempfile::TempDir, Store, Arc<dyn Storage>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_ingesting(dir.path(), crate::message_ids::DEFAULT_RECENT).unwrap();
        let storage: Arc<dyn Storage> = Arc::new(store.clone());
        (dir, store, storage)
    }

    /// Ingestion through the interface answers with the work's result once committed, and work
    /// that fails before writing stores nothing and answers its own error.
    #[test]
    fn ingestion_answers_after_the_commit_and_a_failure_stores_nothing() {
        let (_dir, store, storage) = storage();
        let workspace_id = store.write_blocking(|c| Ok(workspaces::find_or_create(c, "w", 0)?.id)).unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let lead = runtime
            .block_on(storage.ingest(move |transaction| {
                let lookup = IngestionLookup {
                    workspace_id,
                    message_ids: vec!["m1"],
                    user_ids: vec!["u"],
                    anonymous_ids: Vec::new(),
                    identifiers: Vec::new(),
                };
                let snapshot = transaction.ingestion_snapshot(&lookup)?;
                assert!(snapshot.stored_message_ids.is_empty(), "m1 is new");
                assert_eq!(snapshot.by_user_id.get("u"), None);
                let mut lead = crate::leads::new_row(snapshot.next_lead_id, workspace_id, Some("u"), 5);
                let identities =
                    NewIdentities { workspace_id, now: 5, leads: vec![(lead.id, Some("u".into()))], links: Vec::new() };
                let properties = serde_json::Map::new();
                let event =
                    NewEvent { message_id: "m1", event_type: "visit", at: 1, received_at: 5, properties: &properties };
                let mut write = IngestionWrite {
                    identities,
                    leads: vec![IngestedLead { events: vec![event], save: LeadSave::Row(&lead) }],
                };
                let newest = transaction.write_ingested(&mut write)?;
                lead.last_event_id = newest[0];
                Ok(lead)
            }))
            .unwrap();
        let failed = runtime.block_on(storage.ingest(move |transaction| -> Result<(), StoreError> {
            let lookup = IngestionLookup {
                workspace_id,
                message_ids: vec!["m1"],
                user_ids: Vec::new(),
                anonymous_ids: Vec::new(),
                identifiers: Vec::new(),
            };
            if transaction.ingestion_snapshot(&lookup)?.stored_message_ids.contains("m1") {
                return Err(StoreError::Conflict("already stored".to_string()));
            }
            Ok(())
        }));
        assert!(matches!(failed, Err(StoreError::Conflict(_))), "{failed:?}");
        let (found, events) = store
            .read_blocking(move |c| {
                let found = c.lead_by_user_id(workspace_id, "u")?;
                let events = found.as_ref().map(|lead| c.events_of(lead)).transpose()?.unwrap_or_default();
                Ok((found, events))
            })
            .unwrap();
        assert_eq!(found.map(|l| l.id), Some(lead.id));
        assert_eq!(events.iter().map(|e| e.message_id.as_str()).collect::<Vec<_>>(), ["m1"]);
        assert!(runtime.block_on(storage.ping()).is_ok());
        assert_eq!(storage.write_failure(), None);
        assert_eq!(runtime.block_on(storage.rescoring(workspace_id)).unwrap(), None);
        assert_eq!(runtime.block_on(storage.workspaces_with_active_model()).unwrap(), Vec::<i64>::new());
    }
}
