//! The SQLite implementation of the storage interface: a [`Transaction`] is a connection of the
//! writer inside its transaction, and [`Storage`] the [`Store`] handle, whose coherent writes
//! run ingestion.

use std::collections::{BTreeMap, HashMap};

use rusqlite::Connection;

use crate::erasure::{self, Erasure};
use crate::error::StoreError;
use crate::events::{self, Inserted, StoredEvent};
use crate::funnel::{self, Journey, OutcomesByTier, WeekShare};
use crate::keys::{self, KeyInfo, KeyOwner, NewKey, Scope};
use crate::leads::{self, Filter, LeadLinks, LeadRow, ListedLead, Order, Page};
use crate::models::{self, Activation, ListedVersion, ModelVersion, RolledBack};
use crate::overrides::{self, NewOverride, ScoreOverride};
use crate::predictive::{self, LabelledLead, PredictiveVersion, Summary};
use crate::rescorings::{self, Rescoring, RescoringRange};
use crate::retention::{self, Retention};
use crate::scores::{self, HistoryEntry, StoredScores};
use crate::sessions::{self, Opened, Session};
use crate::stages::{self, StageChange};
use crate::storage::{
    Exclusive, IngestedLead, IngestionLookup, IngestionSnapshot, IngestionWrite, LeadSave, NewIdentities,
    NewPredictiveModel, NewRescoring, Notification, ReadWork, Reads, ScoredLeadWrite, Storage, StorageFuture,
    Transaction, TransactionWork,
};
use crate::users::{self, Role, User};
use crate::webhooks::{self, Attempt, ClaimRequest, Claimed, LeadNotification, LogEntry, NewWebhook, Webhook};
use crate::workspaces::{self, Workspace};
use crate::{Generation, Store, merge};

impl Reads for Connection {
    fn workspace_named(&self, name: &str) -> Result<Option<Workspace>, StoreError> {
        workspaces::find(self, name)
    }

    fn model_with_source(
        &self,
        workspace_id: i64,
        source: &str,
        predictors: &BTreeMap<String, i64>,
    ) -> Result<Option<ModelVersion>, StoreError> {
        models::find_same(self, workspace_id, source, predictors)
    }

    fn model_by_id(&self, model_id: i64) -> Result<Option<ModelVersion>, StoreError> {
        models::by_id(self, model_id)
    }

    fn model_id_of_version(&self, workspace_id: i64, version: i64) -> Result<Option<i64>, StoreError> {
        models::id_of_version(self, workspace_id, version)
    }

    fn model_versions(&self, workspace_id: i64) -> Result<Vec<ListedVersion>, StoreError> {
        models::list_versions(self, workspace_id)
    }

    fn model_activations(&self, workspace_id: i64) -> Result<Vec<Activation>, StoreError> {
        models::stack(self, workspace_id)
    }

    fn latest_predictive_model(&self, workspace_id: i64, name: &str) -> Result<Option<PredictiveVersion>, StoreError> {
        predictive::latest(self, workspace_id, name)
    }

    fn predictive_models(&self, workspace_id: i64) -> Result<Vec<Summary>, StoreError> {
        predictive::list(self, workspace_id)
    }

    fn labelled_leads(&self, workspace_id: i64) -> Result<Vec<LabelledLead>, StoreError> {
        predictive::outcomes(self, workspace_id)
    }

    fn fields_no_lead_has(&self, workspace_id: i64, fields: &[String]) -> Result<Vec<String>, StoreError> {
        leads::fields_no_lead_has(self, workspace_id, fields)
    }

    fn count_leads(&self, workspace_id: i64) -> Result<i64, StoreError> {
        leads::count(self, workspace_id)
    }

    fn first_lead_ids(&self, workspace_id: i64, limit: u32) -> Result<Vec<i64>, StoreError> {
        leads::first_ids(self, workspace_id, limit)
    }

    fn active_model(&self, workspace_id: i64) -> Result<Option<ModelVersion>, StoreError> {
        models::active(self, workspace_id)
    }

    fn predictive_model(&self, workspace_id: i64, id: i64) -> Result<Option<PredictiveVersion>, StoreError> {
        predictive::by_id(self, workspace_id, id)
    }

    fn webhooks(&self, workspace_id: i64) -> Result<Vec<Webhook>, StoreError> {
        webhooks::list(self, workspace_id)
    }

    fn rescoring(&self, workspace_id: i64) -> Result<Option<Rescoring>, StoreError> {
        rescorings::get(self, workspace_id)
    }

    fn lead_ids_after(&self, workspace_id: i64, after_id: i64, limit: u32) -> Result<Vec<i64>, StoreError> {
        leads::ids_after(self, workspace_id, after_id, limit)
    }

    fn leads_after(
        &self,
        workspace_id: i64,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<(LeadRow, StoredScores)>, StoreError> {
        let rows = leads::rows_after(self, workspace_id, after_id, limit)?;
        let ids: Vec<i64> = rows.iter().map(|lead| lead.id).collect();
        Ok(rows.into_iter().zip(scores::stored_of(self, &ids)?).collect())
    }

    fn events_of_leads(&self, leads: &[&LeadRow]) -> Result<Vec<Vec<StoredEvent>>, StoreError> {
        events::of_leads(self, leads)
    }

    fn lead_by_id(&self, workspace_id: i64, id: i64) -> Result<Option<LeadRow>, StoreError> {
        leads::by_id(self, workspace_id, id)
    }

    fn latest_stage(&self, lead_id: i64) -> Result<Option<StageChange>, StoreError> {
        stages::latest(self, lead_id)
    }

    fn ingestion_snapshot(&self, lookup: &IngestionLookup<'_>) -> Result<IngestionSnapshot, StoreError> {
        let workspace_id = lookup.workspace_id;
        let mut snapshot = IngestionSnapshot {
            active_model: models::active(self, workspace_id)?,
            webhooks: webhooks::list(self, workspace_id)?,
            ..IngestionSnapshot::default()
        };
        for message_id in &lookup.message_ids {
            if events::exists(self, workspace_id, message_id)? {
                snapshot.stored_message_ids.insert(message_id.to_string());
            }
        }
        let mut found = |lead: LeadRow| -> Result<i64, StoreError> {
            let id = lead.id;
            if let std::collections::hash_map::Entry::Vacant(entry) = snapshot.leads.entry(id) {
                entry.insert((lead, scores::stored(self, id)?));
            }
            Ok(id)
        };
        let mut by_user_id = HashMap::new();
        for user_id in &lookup.user_ids {
            if let Some(lead) = leads::by_user_id(self, workspace_id, user_id)? {
                by_user_id.insert(user_id.to_string(), found(lead)?);
            }
        }
        let mut by_anonymous_id = HashMap::new();
        for anonymous_id in &lookup.anonymous_ids {
            if let Some(lead) = leads::by_anonymous_id(self, workspace_id, anonymous_id)? {
                by_anonymous_id.insert(anonymous_id.to_string(), found(lead)?);
            }
        }
        snapshot.by_user_id = by_user_id;
        snapshot.by_anonymous_id = by_anonymous_id;
        snapshot.next_lead_id = leads::next_id(self)?;
        let listed = erasure::suppressed(self, workspace_id, &lookup.identifiers)?;
        snapshot.suppressed = lookup
            .identifiers
            .iter()
            .zip(listed)
            .filter(|(_, listed)| *listed)
            .map(|((kind, value), _)| (*kind, value.to_string()))
            .collect();
        Ok(snapshot)
    }

    fn lead_links(&self, workspace_id: i64, lead_id: i64) -> Result<LeadLinks, StoreError> {
        leads::links(self, workspace_id, lead_id)
    }

    fn notifications_of_lead(&self, workspace_id: i64, lead_id: i64) -> Result<Vec<LeadNotification>, StoreError> {
        webhooks::of_lead(self, workspace_id, lead_id)
    }

    fn erasures(&self, workspace_id: i64) -> Result<Vec<Erasure>, StoreError> {
        erasure::list(self, workspace_id)
    }

    fn erasure_of_lead(&self, workspace_id: i64, lead_id: i64) -> Result<Option<Erasure>, StoreError> {
        erasure::of_lead(self, workspace_id, lead_id)
    }

    fn retention(&self, workspace_id: i64) -> Result<Option<Retention>, StoreError> {
        retention::get(self, workspace_id)
    }

    fn retentions(&self) -> Result<Vec<Retention>, StoreError> {
        retention::all(self)
    }

    fn last_event_id(&self) -> Result<i64, StoreError> {
        retention::last_event_id(self)
    }

    fn leads_with_expired_events(
        &self,
        workspace_id: i64,
        cutoff: i64,
        after: i64,
        through: i64,
    ) -> Result<Vec<i64>, StoreError> {
        retention::leads_with_expired_events(self, workspace_id, cutoff, after, through)
    }

    fn lead_by_user_id(&self, workspace_id: i64, user_id: &str) -> Result<Option<LeadRow>, StoreError> {
        leads::by_user_id(self, workspace_id, user_id)
    }

    fn lead_by_anonymous_id(&self, workspace_id: i64, anonymous_id: &str) -> Result<Option<LeadRow>, StoreError> {
        leads::by_anonymous_id(self, workspace_id, anonymous_id)
    }

    fn events_of(&self, lead: &LeadRow) -> Result<Vec<StoredEvent>, StoreError> {
        events::of_lead(self, lead)
    }

    fn newest_events(&self, lead: &LeadRow, limit: u32) -> Result<(Vec<StoredEvent>, u64), StoreError> {
        events::newest_of_lead(self, lead, limit)
    }

    fn stored_scores(&self, lead_id: i64) -> Result<StoredScores, StoreError> {
        scores::stored(self, lead_id)
    }

    fn list_leads(
        &self,
        workspace_id: i64,
        filter: &Filter,
        order: Order,
        limit: u32,
        page: Page,
    ) -> Result<Vec<ListedLead>, StoreError> {
        leads::list(self, workspace_id, filter, order, limit, page)
    }

    fn score_history(&self, lead_id: i64, limit: u32) -> Result<Vec<HistoryEntry>, StoreError> {
        scores::history(self, lead_id, limit)
    }

    fn score_overrides(&self, lead_id: i64) -> Result<Vec<ScoreOverride>, StoreError> {
        overrides::of_lead(self, lead_id)
    }

    fn override_in_force(&self, lead_id: i64, score: &str) -> Result<Option<ScoreOverride>, StoreError> {
        overrides::in_force(self, lead_id, score)
    }

    fn expired_overrides(&self, now: i64, limit: u32) -> Result<Vec<(i64, ScoreOverride)>, StoreError> {
        overrides::expired(self, now, limit)
    }

    fn stage_history(&self, lead_id: i64) -> Result<Vec<StageChange>, StoreError> {
        stages::history(self, lead_id)
    }

    fn tier_counts(&self, workspace_id: i64, score: &str) -> Result<Vec<(Option<String>, i64)>, StoreError> {
        funnel::tier_counts(self, workspace_id, score)
    }

    fn stage_counts(&self, workspace_id: i64) -> Result<Vec<(String, i64)>, StoreError> {
        funnel::stage_counts(self, workspace_id)
    }

    fn mql_entries_by_week(&self, workspace_id: i64, from: i64, to: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        funnel::mql_entries_by_week(self, workspace_id, from, to)
    }

    fn mql_journeys(&self, workspace_id: i64, from: i64, to: i64, now: i64) -> Result<Vec<Journey>, StoreError> {
        funnel::mql_journeys(self, workspace_id, from, to, now)
    }

    fn tier_share_by_week(
        &self,
        workspace_id: i64,
        score: &str,
        tier: &str,
        counts_now: &[(Option<String>, i64)],
        from: i64,
        now: i64,
    ) -> Result<Vec<WeekShare>, StoreError> {
        funnel::tier_share_by_week(self, workspace_id, score, tier, counts_now, from, now)
    }

    fn outcomes_by_tier(
        &self,
        workspace_id: i64,
        score: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<OutcomesByTier>, StoreError> {
        funnel::outcomes_by_tier(self, workspace_id, score, from, to)
    }
}

impl Transaction for Connection {
    fn find_or_create_workspace(&self, name: &str, now: i64) -> Result<Workspace, StoreError> {
        workspaces::find_or_create(self, name, now)
    }

    fn new_key(&self, workspace_id: i64, scope: Scope, now: i64) -> Result<NewKey, StoreError> {
        keys::create(self, workspace_id, scope, now)
    }

    fn add_model_version(
        &self,
        workspace_id: i64,
        source: &str,
        predictors: &BTreeMap<String, i64>,
        uploaded_by: Option<&str>,
        now: i64,
    ) -> Result<ModelVersion, StoreError> {
        models::add(self, workspace_id, source, predictors, uploaded_by, now)
    }

    fn activate_model(
        &self,
        workspace_id: i64,
        model_id: i64,
        origin: models::Origin,
        now: i64,
    ) -> Result<(), StoreError> {
        models::activate(self, workspace_id, model_id, origin, now)
    }

    fn roll_back_model(&self, workspace_id: i64, now: i64) -> Result<RolledBack, StoreError> {
        models::rollback(self, workspace_id, now)
    }

    fn add_predictive_model(&self, new: &NewPredictiveModel<'_>, now: i64) -> Result<PredictiveVersion, StoreError> {
        predictive::add(self, new.workspace_id, new.name, new.body, new.algorithm, new.origin, now)
    }

    fn begin_rescoring(&self, rescoring: &NewRescoring<'_>, now: i64) -> Result<(), StoreError> {
        rescorings::begin(
            self,
            rescoring.workspace_id,
            rescoring.model_id,
            rescoring.cause,
            rescoring.revert_automatic_since,
            rescoring.if_running,
            now,
        )
    }

    fn lock_rescoring_range(&self, workspace_id: i64, first_after: i64) -> Result<Option<RescoringRange>, StoreError> {
        // The writer's transaction keeps every row from other writers.
        rescorings::range(self, workspace_id, first_after)
    }

    fn record_rescoring_progress(
        &self,
        range: &RescoringRange,
        after_lead_id: i64,
        done: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        rescorings::advance(self, range, after_lead_id, done, now)
    }

    fn finish_rescoring_range(&self, range: &RescoringRange, now: i64) -> Result<bool, StoreError> {
        rescorings::finish_range(self, range, now)
    }

    fn finish_rescoring(&self, workspace_id: i64, error: Option<&str>, now: i64) -> Result<(), StoreError> {
        rescorings::finish(self, workspace_id, error, now)
    }

    fn set_stage(&self, lead_id: i64, change: &StageChange) -> Result<(), StoreError> {
        stages::set(self, lead_id, change)
    }

    fn add_override(&self, new: &NewOverride<'_>, now: i64) -> Result<i64, StoreError> {
        overrides::insert(self, new, now)
    }

    fn lift_override(&self, id: i64, by: &str, note: Option<&str>, now: i64) -> Result<(), StoreError> {
        overrides::lift(self, id, by, note, now)
    }

    fn write_identities(&self, identities: &NewIdentities) -> Result<(), StoreError> {
        let NewIdentities { workspace_id, now, .. } = *identities;
        for (id, user_id) in &identities.leads {
            leads::insert_new(self, *id, workspace_id, user_id.as_deref(), now)?;
        }
        for (anonymous_id, lead_id) in &identities.links {
            leads::link_anonymous_id(self, workspace_id, anonymous_id, *lead_id)?;
        }
        Ok(())
    }

    fn set_user_id(&self, lead_id: i64, user_id: &str) -> Result<(), StoreError> {
        leads::set_user_id(self, lead_id, user_id)
    }

    fn merge_leads(&self, from: &LeadRow, into: &mut LeadRow) -> Result<(), StoreError> {
        merge::merge_leads(self, from, into)
    }

    fn write_ingested(&self, write: &mut IngestionWrite<'_>) -> Result<Vec<Option<i64>>, StoreError> {
        self.write_identities(&write.identities)?;
        let mut newest_events = Vec::with_capacity(write.leads.len());
        for IngestedLead { events: new_events, save } in &mut write.leads {
            let lead = save.lead();
            let mut newest = lead.last_event_id;
            for event in new_events.iter() {
                if events::append(self, lead.workspace_id, lead.id, &mut newest, event)? == Inserted::Duplicate {
                    return Err(StoreError::Corrupt(format!(
                        "message id {:?} was stored twice by one ingestion",
                        event.message_id
                    )));
                }
            }
            match save {
                LeadSave::Row(lead) => leads::save_with_newest_event(self, lead, newest)?,
                LeadSave::Scored(scored, stored) => save_scored(self, scored, stored, newest)?,
            }
            newest_events.push(newest);
        }
        Ok(newest_events)
    }

    fn save_scored_lead(&self, write: &ScoredLeadWrite<'_>, stored: &mut StoredScores) -> Result<(), StoreError> {
        save_scored(self, write, stored, write.lead.last_event_id)
    }

    fn erase_lead(
        &self,
        workspace_id: i64,
        lead_id: i64,
        erased_by: &str,
        now: i64,
    ) -> Result<Option<Erasure>, StoreError> {
        let erased = erasure::erase(self, workspace_id, lead_id, erased_by, now)?;
        if erased.is_some() {
            crate::writer::truncate_wal_after_commit();
        }
        Ok(erased)
    }

    fn set_retention(
        &self,
        workspace_id: i64,
        events_days: Option<i64>,
        set_by: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        retention::set(self, workspace_id, events_days, set_by, now)
    }

    fn prune_events(&self, lead: &mut LeadRow, cutoff: i64) -> Result<usize, StoreError> {
        retention::prune(self, lead, cutoff)
    }

    fn lift_suppression(
        &self,
        workspace_id: i64,
        erasure_id: i64,
        lifted_by: &str,
        now: i64,
    ) -> Result<Option<Erasure>, StoreError> {
        erasure::lift(self, workspace_id, erasure_id, lifted_by, now)
    }

    fn queue_notifications(&self, lead_id: i64, notifications: &[Notification], now: i64) -> Result<(), StoreError> {
        for notification in notifications {
            webhooks::enqueue(self, notification.webhook_id, lead_id, notification.event, &notification.data, now)?;
        }
        Ok(())
    }
}

/// Saves a lead's scores, its row (with `last_event_id` as its newest event), its automatic
/// stage move and its notifications.
fn save_scored(
    connection: &Connection,
    write: &ScoredLeadWrite<'_>,
    stored: &mut StoredScores,
    last_event_id: Option<i64>,
) -> Result<(), StoreError> {
    let lead = write.lead;
    for lifted in write.lifted_overrides {
        overrides::lift(connection, lifted.id, &lifted.by, Some(&lifted.note), write.now)?;
    }
    scores::save_over(connection, lead.id, stored, write.rows, write.cause, write.history, write.terms)?;
    leads::save_with_newest_event(connection, lead, last_event_id)?;
    if let Some(change) = write.stage {
        stages::set(connection, lead.id, change)?;
    }
    connection.queue_notifications(lead.id, write.notifications, write.now)
}

impl Storage for Store {
    fn ping(&self) -> StorageFuture<'_, ()> {
        Box::pin(Store::ping(self))
    }

    fn run_write(&self, work: TransactionWork) -> StorageFuture<'_, ()> {
        Box::pin(self.write(move |connection| work(connection)))
    }

    fn run_read(&self, work: ReadWork) -> StorageFuture<'_, ()> {
        Box::pin(self.read(move |connection| work(connection)))
    }

    fn write_failure(&self) -> Option<String> {
        Store::write_failure(self)
    }

    fn probe_write(&self, now: i64) -> StorageFuture<'_, ()> {
        Box::pin(Store::probe_write(self, now))
    }

    fn generation(&self) -> Generation {
        Store::generation(self)
    }

    fn run_ingestion(&self, work: TransactionWork) -> StorageFuture<'_, ()> {
        Box::pin(self.write_coherent(move |connection| work(connection)))
    }

    fn rescoring(&self, workspace_id: i64) -> StorageFuture<'_, Option<Rescoring>> {
        Box::pin(self.read(move |connection| rescorings::get(connection, workspace_id)))
    }

    fn unfinished_rescorings(&self) -> StorageFuture<'_, Vec<Rescoring>> {
        Box::pin(self.read(rescorings::unfinished))
    }

    fn finish_rescoring(&self, workspace_id: i64, error: Option<String>, now: i64) -> StorageFuture<'_, ()> {
        Box::pin(self.write(move |connection| rescorings::finish(connection, workspace_id, error.as_deref(), now)))
    }

    fn claim_rescoring_range(&self, workspace_id: i64, now: i64) -> StorageFuture<'_, Option<RescoringRange>> {
        // A claim touches no lead: the writer's cache of leads stays valid.
        Box::pin(self.write_beside_caches(move |connection| rescorings::claim(connection, workspace_id, now)))
    }

    fn workspaces_with_active_model(&self) -> StorageFuture<'_, Vec<i64>> {
        Box::pin(self.read(models::workspaces_with_active_model))
    }

    fn claim_notifications(&self, request: ClaimRequest) -> StorageFuture<'_, Claimed> {
        // A claim touches no lead: the writer's cache of leads stays valid.
        Box::pin(self.write_beside_caches(move |connection| webhooks::claim(connection, &request)))
    }

    fn record_delivery_attempt(
        &self,
        outbox_id: i64,
        attempt: Attempt,
        delivered: bool,
        next_attempt_at: Option<i64>,
    ) -> StorageFuture<'_, ()> {
        Box::pin(self.write_beside_caches(move |connection| {
            webhooks::record_attempt(connection, outbox_id, &attempt, delivered, next_attempt_at)
        }))
    }

    fn notifications_waiting(&self) -> StorageFuture<'_, i64> {
        Box::pin(self.read(webhooks::depth))
    }

    fn shared_clock_ms(&self) -> StorageFuture<'_, i64> {
        Box::pin(std::future::ready(Ok(crate::now_ms())))
    }

    fn authenticate(&self, secret: String) -> StorageFuture<'_, Option<KeyOwner>> {
        Box::pin(self.read(move |connection| keys::authenticate(connection, &secret)))
    }

    fn list_keys(&self, workspace_id: i64) -> StorageFuture<'_, Vec<KeyInfo>> {
        Box::pin(self.read(move |connection| keys::list(connection, workspace_id)))
    }

    fn create_key(
        &self,
        workspace_id: i64,
        scope: Scope,
        name: String,
        origins: Vec<String>,
        now: i64,
    ) -> StorageFuture<'_, NewKey> {
        Box::pin(
            self.write(move |connection| keys::create_named(connection, workspace_id, scope, &name, &origins, now)),
        )
    }

    fn browser_origins(&self) -> StorageFuture<'_, Vec<String>> {
        Box::pin(self.read(keys::browser_origins))
    }

    fn cache_version(&self) -> StorageFuture<'_, i64> {
        Box::pin(self.read(crate::cache_versions::read))
    }

    fn revoke_key(&self, workspace_id: i64, key_id: i64, now: i64) -> StorageFuture<'_, Option<KeyInfo>> {
        Box::pin(self.write(move |connection| {
            if keys::revoke(connection, workspace_id, key_id, now)? {
                keys::by_id(connection, workspace_id, key_id)
            } else {
                Ok(None)
            }
        }))
    }

    fn account_for_sign_in(&self, email: String) -> StorageFuture<'_, Option<(User, String)>> {
        Box::pin(self.read(move |connection| users::by_email(connection, &email)))
    }

    fn sign_in_failures(&self, subjects: Vec<String>, since: i64) -> StorageFuture<'_, Vec<(u32, Option<i64>)>> {
        Box::pin(self.read(move |connection| {
            subjects.iter().map(|subject| sessions::failures_since(connection, subject, since)).collect()
        }))
    }

    fn record_sign_in_failure(&self, subjects: Vec<String>, now: i64, forget_before: i64) -> StorageFuture<'_, ()> {
        Box::pin(self.write_beside_caches(move |connection| {
            subjects.iter().try_for_each(|subject| sessions::record_failure(connection, subject, now, forget_before))
        }))
    }

    fn open_session(
        &self,
        user_id: i64,
        subjects: Vec<String>,
        now: i64,
        idle_ms: i64,
        lifetime_ms: i64,
    ) -> StorageFuture<'_, Opened> {
        Box::pin(self.write_beside_caches(move |connection| {
            subjects.iter().try_for_each(|subject| sessions::clear_failures(connection, subject))?;
            sessions::open(connection, user_id, now, idle_ms, lifetime_ms)
        }))
    }

    fn live_session(&self, token: String, now: i64) -> StorageFuture<'_, Option<(Session, User)>> {
        Box::pin(self.read(move |connection| sessions::live(connection, &token, now)))
    }

    fn extend_session(&self, session_id: i64, idle_until: i64) -> StorageFuture<'_, ()> {
        Box::pin(self.write_beside_caches(move |connection| sessions::extend(connection, session_id, idle_until)))
    }

    fn end_session(&self, session_id: i64, now: i64) -> StorageFuture<'_, bool> {
        Box::pin(self.write_beside_caches(move |connection| sessions::revoke(connection, session_id, now)))
    }

    fn list_users(&self, workspace_id: i64) -> StorageFuture<'_, Vec<User>> {
        Box::pin(self.read(move |connection| users::list(connection, workspace_id)))
    }

    fn create_user(
        &self,
        workspace_id: i64,
        email: String,
        role: Role,
        password_hash: String,
        now: i64,
    ) -> StorageFuture<'_, User> {
        Box::pin(self.write_beside_caches(move |connection| {
            users::create(connection, workspace_id, &email, role, &password_hash, now)
        }))
    }

    fn set_password(
        &self,
        workspace_id: i64,
        user_id: i64,
        password_hash: String,
        now: i64,
    ) -> StorageFuture<'_, bool> {
        Box::pin(self.write_beside_caches(move |connection| {
            let changed = users::set_password(connection, workspace_id, user_id, &password_hash)?;
            if changed {
                sessions::revoke_all_of(connection, user_id, now)?;
            }
            Ok(changed)
        }))
    }

    fn set_user_role(&self, workspace_id: i64, user_id: i64, role: Role) -> StorageFuture<'_, bool> {
        Box::pin(self.write_beside_caches(move |connection| users::set_role(connection, workspace_id, user_id, role)))
    }

    fn last_sign_ins(&self, workspace_id: i64) -> StorageFuture<'_, Vec<(i64, i64)>> {
        Box::pin(self.read(move |connection| users::last_sign_ins(connection, workspace_id)))
    }

    fn disable_user(&self, workspace_id: i64, user_id: i64, now: i64) -> StorageFuture<'_, bool> {
        Box::pin(self.write_beside_caches(move |connection| {
            let disabled = users::disable(connection, workspace_id, user_id, now)?;
            if disabled {
                sessions::revoke_all_of(connection, user_id, now)?;
            }
            Ok(disabled)
        }))
    }

    fn list_webhooks(&self, workspace_id: i64) -> StorageFuture<'_, Vec<Webhook>> {
        Box::pin(self.read(move |connection| webhooks::list(connection, workspace_id)))
    }

    fn subscribe_webhook(&self, workspace_id: i64, new: NewWebhook, now: i64) -> StorageFuture<'_, Webhook> {
        Box::pin(self.write(move |connection| webhooks::create(connection, workspace_id, &new, now)))
    }

    fn delete_webhook(&self, workspace_id: i64, id: i64, now: i64) -> StorageFuture<'_, bool> {
        Box::pin(self.write(move |connection| webhooks::delete(connection, workspace_id, id, now)))
    }

    fn delivery_log(
        &self,
        workspace_id: i64,
        id: i64,
        before: Option<i64>,
        limit: u32,
    ) -> StorageFuture<'_, Option<Vec<LogEntry>>> {
        Box::pin(self.read(move |connection| {
            if webhooks::by_id(connection, workspace_id, id)?.is_none() {
                return Ok(None);
            }
            webhooks::log(connection, id, before, limit).map(Some)
        }))
    }

    fn redeliver(&self, workspace_id: i64, outbox_id: i64, now: i64) -> StorageFuture<'_, i64> {
        Box::pin(self.write(move |connection| webhooks::redeliver(connection, workspace_id, outbox_id, now)))
    }

    fn sole_writer(&self) -> bool {
        true
    }

    fn try_exclusive(&self, _job: String) -> StorageFuture<'_, Option<Exclusive>> {
        // One process ingests into a data directory (it holds the directory's lock): there is
        // nobody to keep a job from.
        Box::pin(async { Ok(Some(Exclusive::sole())) })
    }

    fn run_beside_caches(&self, work: TransactionWork) -> StorageFuture<'_, ()> {
        Box::pin(self.write_beside_caches(move |connection| work(connection)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::Store;
    use crate::storage::conformance::{Opened, conformance_tests};

    /// An empty SQLite storage, as the service opens it, in a directory of its own.
    fn open() -> Option<Opened> {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_ingesting(dir.path(), crate::message_ids::DEFAULT_RECENT).unwrap();
        Some((Box::new(dir), Arc::new(store)))
    }

    conformance_tests!(open);
}
