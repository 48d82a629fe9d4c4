//! The PostgreSQL implementation of the storage interface: a [`Transaction`] is a transaction on
//! one of the store's connections ([`PgTransaction`]), and [`Storage`] the [`PgStore`] handle.
//! The table families' queries are in [`crate::postgres`], one module each, named as SQLite's.

use std::cell::{RefCell, RefMut};
use std::collections::BTreeMap;

use crate::Generation;
use crate::erasure::Erasure;
use crate::error::StoreError;
use crate::events::StoredEvent;
use crate::funnel::{Journey, OutcomesByTier, WeekShare};
use crate::keys::{KeyInfo, KeyOwner, NewKey, Scope};
use crate::leads::{Filter, LeadLinks, LeadRow, ListedLead, Order, Page};
use crate::models::{Activation, ListedVersion, ModelVersion, Origin as ModelOrigin, RolledBack};
use crate::overrides::{NewOverride, ScoreOverride};
use crate::postgres::{self as pg, PgStore, Tx};
use crate::predictive::{LabelledLead, PredictiveVersion, Summary};
use crate::rescorings::{Rescoring, RescoringRange};
use crate::retention::Retention;
use crate::scores::{HistoryEntry, StoredScores};
use crate::sessions::{Opened, Session};
use crate::stages::StageChange;
use crate::storage::{
    Exclusive, IngestedLead, IngestionLookup, IngestionSnapshot, IngestionWrite, LeadSave, NewIdentities,
    NewPredictiveModel, NewRescoring, Notification, ReadWork, Reads, ScoredLeadWrite, Storage, StorageFuture,
    Transaction, TransactionWork,
};
use crate::users::{Role, User};
use crate::webhooks::{Attempt, ClaimRequest, Claimed, LeadNotification, LogEntry, NewWebhook, Webhook};
use crate::workspaces::Workspace;

/// A transaction on one of the store's connections, as the storage interface's work sees it.
/// The interface's methods take `&self` while the client's take `&mut`: each call borrows the
/// transaction for as long as its queries run, and no call makes another.
///
/// In a write, every lead read by id, identity or batch is locked until the transaction ends
/// ([`leads::Lock::ForUpdate`](pg::leads::Lock)): a write saves what it computed from the rows it
/// read (a rescoring batch, an override, a stage move), and another instance's ingestion of the
/// same lead committed in between would otherwise be overwritten (SQLite's one writer never
/// interleaves). Batches lock in id order, as ingestions do.
pub struct PgTransaction<'c, 't> {
    transaction: RefCell<&'c mut Tx<'t>>,
    /// How the leads read are locked: not at all in a read-only snapshot.
    lock: pg::leads::Lock,
}

impl<'c, 't> PgTransaction<'c, 't> {
    /// A read-only snapshot's.
    pub(crate) fn new(transaction: &'c mut Tx<'t>) -> Self {
        PgTransaction { transaction: RefCell::new(transaction), lock: pg::leads::Lock::None }
    }

    /// A write's, which locks the leads it reads.
    pub(crate) fn writing(transaction: &'c mut Tx<'t>) -> Self {
        PgTransaction { transaction: RefCell::new(transaction), lock: pg::leads::Lock::ForUpdate }
    }

    /// The transaction, for one call's queries.
    fn c(&self) -> RefMut<'_, &'c mut Tx<'t>> {
        self.transaction.borrow_mut()
    }
}

impl Reads for PgTransaction<'_, '_> {
    fn workspace_named(&self, name: &str) -> Result<Option<Workspace>, StoreError> {
        pg::workspaces::find(&mut self.c(), name)
    }

    fn model_with_source(
        &self,
        workspace_id: i64,
        source: &str,
        predictors: &BTreeMap<String, i64>,
    ) -> Result<Option<ModelVersion>, StoreError> {
        pg::models::find_same(&mut self.c(), workspace_id, source, predictors)
    }

    fn model_by_id(&self, model_id: i64) -> Result<Option<ModelVersion>, StoreError> {
        pg::models::by_id(&mut self.c(), model_id)
    }

    fn model_id_of_version(&self, workspace_id: i64, version: i64) -> Result<Option<i64>, StoreError> {
        pg::models::id_of_version(&mut self.c(), workspace_id, version)
    }

    fn model_versions(&self, workspace_id: i64) -> Result<Vec<ListedVersion>, StoreError> {
        pg::models::list_versions(&mut self.c(), workspace_id)
    }

    fn model_activations(&self, workspace_id: i64) -> Result<Vec<Activation>, StoreError> {
        pg::models::stack(&mut self.c(), workspace_id)
    }

    fn latest_predictive_model(&self, workspace_id: i64, name: &str) -> Result<Option<PredictiveVersion>, StoreError> {
        pg::predictive::latest(&mut self.c(), workspace_id, name)
    }

    fn predictive_models(&self, workspace_id: i64) -> Result<Vec<Summary>, StoreError> {
        pg::predictive::list(&mut self.c(), workspace_id)
    }

    fn labelled_leads(&self, workspace_id: i64) -> Result<Vec<LabelledLead>, StoreError> {
        pg::predictive::outcomes(&mut self.c(), workspace_id)
    }

    fn fields_no_lead_has(&self, workspace_id: i64, fields: &[String]) -> Result<Vec<String>, StoreError> {
        pg::leads::fields_no_lead_has(&mut self.c(), workspace_id, fields)
    }

    fn count_leads(&self, workspace_id: i64) -> Result<i64, StoreError> {
        pg::leads::count(&mut self.c(), workspace_id)
    }

    fn first_lead_ids(&self, workspace_id: i64, limit: u32) -> Result<Vec<i64>, StoreError> {
        pg::leads::first_ids(&mut self.c(), workspace_id, limit)
    }

    fn active_model(&self, workspace_id: i64) -> Result<Option<ModelVersion>, StoreError> {
        pg::models::active(&mut self.c(), workspace_id)
    }

    fn predictive_model(&self, workspace_id: i64, id: i64) -> Result<Option<PredictiveVersion>, StoreError> {
        pg::predictive::by_id(&mut self.c(), workspace_id, id)
    }

    fn webhooks(&self, workspace_id: i64) -> Result<Vec<Webhook>, StoreError> {
        pg::webhooks::list(&mut self.c(), workspace_id)
    }

    fn rescoring(&self, workspace_id: i64) -> Result<Option<Rescoring>, StoreError> {
        pg::rescorings::get(&mut self.c(), workspace_id)
    }

    fn lead_ids_after(&self, workspace_id: i64, after_id: i64, limit: u32) -> Result<Vec<i64>, StoreError> {
        pg::leads::ids_after(&mut self.c(), workspace_id, after_id, limit)
    }

    fn leads_after(
        &self,
        workspace_id: i64,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<(LeadRow, StoredScores)>, StoreError> {
        let rows = pg::leads::rows_after(&mut self.c(), workspace_id, after_id, limit, self.lock)?;
        let ids: Vec<i64> = rows.iter().map(|lead| lead.id).collect();
        Ok(rows.into_iter().zip(pg::scores::stored_of(&mut self.c(), &ids)?).collect())
    }

    fn events_of_leads(&self, leads: &[&LeadRow]) -> Result<Vec<Vec<StoredEvent>>, StoreError> {
        pg::events::of_leads(&mut self.c(), leads)
    }

    fn lead_by_id(&self, workspace_id: i64, id: i64) -> Result<Option<LeadRow>, StoreError> {
        pg::leads::by_id(&mut self.c(), workspace_id, id, self.lock)
    }

    fn latest_stage(&self, lead_id: i64) -> Result<Option<StageChange>, StoreError> {
        pg::stages::latest(&mut self.c(), lead_id)
    }

    /// A fixed number of queries whatever the request's size. The leads found are locked (in id
    /// order) until the ingestion's transaction ends: another instance ingesting for one of them
    /// waits, then reads what this one wrote.
    fn ingestion_snapshot(&self, lookup: &IngestionLookup<'_>) -> Result<IngestionSnapshot, StoreError> {
        let workspace_id = lookup.workspace_id;
        let (leads, links) =
            pg::leads::lock_for_ingestion(&mut self.c(), workspace_id, &lookup.user_ids, &lookup.anonymous_ids)?;
        // Read once the leads are locked: an ingestion that held one of them has committed its
        // events by now, and a message it stored reads as stored here.
        let ids: Vec<i64> = leads.iter().map(|lead| lead.id).collect();
        let read =
            pg::ingestion::after_locks(&mut self.c(), workspace_id, &ids, &lookup.message_ids, &lookup.identifiers)?;
        let settings = pg::ingestion::settings(&mut self.c(), workspace_id, read.workspace_version)?;
        let mut snapshot = IngestionSnapshot {
            active_model: settings.active_model,
            webhooks: settings.webhooks,
            stored_message_ids: read.stored_message_ids,
            ..IngestionSnapshot::default()
        };
        let asked: std::collections::HashSet<&str> = lookup.user_ids.iter().copied().collect();
        snapshot.by_user_id = leads
            .iter()
            .filter_map(|lead| {
                lead.user_id.as_deref().filter(|id| asked.contains(id)).map(|id| (id.to_string(), lead.id))
            })
            .collect();
        snapshot.by_anonymous_id = links.into_iter().collect();
        snapshot.leads = leads.into_iter().zip(read.scores).map(|(lead, scores)| (lead.id, (lead, scores))).collect();
        snapshot.next_lead_id = pg::leads::reserve_ids(&mut self.c(), new_leads_at_most(lookup, &snapshot))?;
        snapshot.suppressed = lookup
            .identifiers
            .iter()
            .zip(read.suppressed)
            .filter(|(_, listed)| *listed)
            .map(|((kind, value), _)| (*kind, value.to_string()))
            .collect();
        Ok(snapshot)
    }

    fn lead_links(&self, workspace_id: i64, lead_id: i64) -> Result<LeadLinks, StoreError> {
        pg::leads::links(&mut self.c(), workspace_id, lead_id)
    }

    fn notifications_of_lead(&self, workspace_id: i64, lead_id: i64) -> Result<Vec<LeadNotification>, StoreError> {
        pg::webhooks::of_lead(&mut self.c(), workspace_id, lead_id)
    }

    fn erasures(&self, workspace_id: i64) -> Result<Vec<Erasure>, StoreError> {
        pg::erasure::list(&mut self.c(), workspace_id)
    }

    fn erasure_of_lead(&self, workspace_id: i64, lead_id: i64) -> Result<Option<Erasure>, StoreError> {
        pg::erasure::of_lead(&mut self.c(), workspace_id, lead_id)
    }

    fn retention(&self, workspace_id: i64) -> Result<Option<Retention>, StoreError> {
        pg::retention::get(&mut self.c(), workspace_id)
    }

    fn retentions(&self) -> Result<Vec<Retention>, StoreError> {
        pg::retention::all(&mut self.c())
    }

    fn last_event_id(&self) -> Result<i64, StoreError> {
        pg::retention::last_event_id(&mut self.c())
    }

    fn leads_with_expired_events(
        &self,
        workspace_id: i64,
        cutoff: i64,
        after: i64,
        through: i64,
    ) -> Result<Vec<i64>, StoreError> {
        pg::retention::leads_with_expired_events(&mut self.c(), workspace_id, cutoff, after, through)
    }

    fn lead_by_user_id(&self, workspace_id: i64, user_id: &str) -> Result<Option<LeadRow>, StoreError> {
        pg::leads::by_user_id(&mut self.c(), workspace_id, user_id, self.lock)
    }

    fn lead_by_anonymous_id(&self, workspace_id: i64, anonymous_id: &str) -> Result<Option<LeadRow>, StoreError> {
        pg::leads::by_anonymous_id(&mut self.c(), workspace_id, anonymous_id, self.lock)
    }

    fn events_of(&self, lead: &LeadRow) -> Result<Vec<StoredEvent>, StoreError> {
        pg::events::of_lead(&mut self.c(), lead)
    }

    fn newest_events(&self, lead: &LeadRow, limit: u32) -> Result<(Vec<StoredEvent>, u64), StoreError> {
        pg::events::newest_of_lead(&mut self.c(), lead, limit)
    }

    fn stored_scores(&self, lead_id: i64) -> Result<StoredScores, StoreError> {
        pg::scores::stored(&mut self.c(), lead_id)
    }

    fn list_leads(
        &self,
        workspace_id: i64,
        filter: &Filter,
        order: Order,
        limit: u32,
        page: Page,
    ) -> Result<Vec<ListedLead>, StoreError> {
        pg::leads::list(&mut self.c(), workspace_id, filter, order, limit, page)
    }

    fn score_history(&self, lead_id: i64, limit: u32) -> Result<Vec<HistoryEntry>, StoreError> {
        pg::scores::history(&mut self.c(), lead_id, limit)
    }

    fn score_overrides(&self, lead_id: i64) -> Result<Vec<ScoreOverride>, StoreError> {
        pg::overrides::of_lead(&mut self.c(), lead_id)
    }

    fn override_in_force(&self, lead_id: i64, score: &str) -> Result<Option<ScoreOverride>, StoreError> {
        pg::overrides::in_force(&mut self.c(), lead_id, score)
    }

    fn expired_overrides(&self, now: i64, limit: u32) -> Result<Vec<(i64, ScoreOverride)>, StoreError> {
        pg::overrides::expired(&mut self.c(), now, limit)
    }

    fn stage_history(&self, lead_id: i64) -> Result<Vec<StageChange>, StoreError> {
        pg::stages::history(&mut self.c(), lead_id)
    }

    fn tier_counts(&self, workspace_id: i64, score: &str) -> Result<Vec<(Option<String>, i64)>, StoreError> {
        pg::funnel::tier_counts(&mut self.c(), workspace_id, score)
    }

    fn stage_counts(&self, workspace_id: i64) -> Result<Vec<(String, i64)>, StoreError> {
        pg::funnel::stage_counts(&mut self.c(), workspace_id)
    }

    fn mql_entries_by_week(&self, workspace_id: i64, from: i64, to: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        pg::funnel::mql_entries_by_week(&mut self.c(), workspace_id, from, to)
    }

    fn mql_journeys(&self, workspace_id: i64, from: i64, to: i64, now: i64) -> Result<Vec<Journey>, StoreError> {
        pg::funnel::mql_journeys(&mut self.c(), workspace_id, from, to, now)
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
        pg::funnel::tier_share_by_week(&mut self.c(), workspace_id, score, tier, counts_now, from, now)
    }

    fn outcomes_by_tier(
        &self,
        workspace_id: i64,
        score: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<OutcomesByTier>, StoreError> {
        pg::funnel::outcomes_by_tier(&mut self.c(), workspace_id, score, from, to)
    }
}

impl Transaction for PgTransaction<'_, '_> {
    fn find_or_create_workspace(&self, name: &str, now: i64) -> Result<Workspace, StoreError> {
        pg::workspaces::find_or_create(&mut self.c(), name, now)
    }

    fn new_key(&self, workspace_id: i64, scope: Scope, now: i64) -> Result<NewKey, StoreError> {
        pg::keys::create(&mut self.c(), workspace_id, scope, now)
    }

    fn add_model_version(
        &self,
        workspace_id: i64,
        source: &str,
        predictors: &BTreeMap<String, i64>,
        uploaded_by: Option<&str>,
        now: i64,
    ) -> Result<ModelVersion, StoreError> {
        pg::models::add(&mut self.c(), workspace_id, source, predictors, uploaded_by, now)
    }

    fn activate_model(
        &self,
        workspace_id: i64,
        model_id: i64,
        origin: ModelOrigin,
        now: i64,
    ) -> Result<(), StoreError> {
        pg::models::activate(&mut self.c(), workspace_id, model_id, origin, now)
    }

    fn roll_back_model(&self, workspace_id: i64, now: i64) -> Result<RolledBack, StoreError> {
        pg::models::rollback(&mut self.c(), workspace_id, now)
    }

    fn add_predictive_model(&self, new: &NewPredictiveModel<'_>, now: i64) -> Result<PredictiveVersion, StoreError> {
        pg::predictive::add(&mut self.c(), new.workspace_id, new.name, new.body, new.algorithm, new.origin, now)
    }

    fn begin_rescoring(&self, rescoring: &NewRescoring<'_>, now: i64) -> Result<(), StoreError> {
        pg::rescorings::begin(
            &mut self.c(),
            rescoring.workspace_id,
            rescoring.model_id,
            rescoring.cause,
            rescoring.revert_automatic_since,
            rescoring.if_running,
            now,
        )
    }

    fn lock_rescoring_range(&self, workspace_id: i64, first_after: i64) -> Result<Option<RescoringRange>, StoreError> {
        pg::rescorings::range_for_update(&mut self.c(), workspace_id, first_after)
    }

    fn record_rescoring_progress(
        &self,
        range: &RescoringRange,
        after_lead_id: i64,
        done: i64,
        _now: i64,
    ) -> Result<(), StoreError> {
        // The lease is renewed in the database's clock.
        pg::rescorings::advance(&mut self.c(), range, after_lead_id, done)
    }

    fn finish_rescoring_range(&self, range: &RescoringRange, now: i64) -> Result<bool, StoreError> {
        pg::rescorings::finish_range(&mut self.c(), range, now)
    }

    fn finish_rescoring(&self, workspace_id: i64, error: Option<&str>, now: i64) -> Result<(), StoreError> {
        pg::rescorings::finish(&mut self.c(), workspace_id, error, now)
    }

    fn set_stage(&self, lead_id: i64, change: &StageChange) -> Result<(), StoreError> {
        pg::stages::set(&mut self.c(), lead_id, change)
    }

    fn add_override(&self, new: &NewOverride<'_>, now: i64) -> Result<i64, StoreError> {
        pg::overrides::insert(&mut self.c(), new, now)
    }

    fn lift_override(&self, id: i64, by: &str, note: Option<&str>, now: i64) -> Result<(), StoreError> {
        pg::overrides::lift(&mut self.c(), id, by, note, now)
    }

    fn write_identities(&self, identities: &NewIdentities) -> Result<(), StoreError> {
        let NewIdentities { workspace_id, now, .. } = *identities;
        pg::leads::insert_new(&mut self.c(), workspace_id, &identities.leads, now)?;
        pg::leads::link_anonymous_ids(&mut self.c(), workspace_id, &identities.links)
    }

    fn set_user_id(&self, lead_id: i64, user_id: &str) -> Result<(), StoreError> {
        pg::leads::set_user_id(&mut self.c(), lead_id, user_id)
    }

    fn merge_leads(&self, from: &LeadRow, into: &mut LeadRow) -> Result<(), StoreError> {
        pg::merge::merge_leads(&mut self.c(), from, into)
    }

    /// The new leads and links, the overrides lifted (when there are), then every event, lead
    /// row and score of the request in one statement sent with the stage moves, the
    /// notifications and the commit: the transaction ends here (see the trait's doc).
    fn write_ingested(&self, write: &mut IngestionWrite<'_>) -> Result<Vec<Option<i64>>, StoreError> {
        self.write_identities(&write.identities)?;
        // Every lead's events and row, and every score: one statement.
        let mut appended: Vec<pg::events::LeadEvents<'_, '_>> = Vec::with_capacity(write.leads.len());
        let mut rows: Vec<(&LeadRow, Option<i64>)> = Vec::with_capacity(write.leads.len());
        let mut scored: Vec<(&ScoredLeadWrite<'_>, &mut StoredScores)> = Vec::with_capacity(write.leads.len());
        for IngestedLead { events, save } in write.leads.iter_mut() {
            let lead: &LeadRow = match save {
                LeadSave::Row(lead) => lead,
                LeadSave::Scored(write, stored) => {
                    scored.push((&*write, &mut **stored));
                    write.lead
                }
            };
            appended.push(pg::events::LeadEvents {
                workspace_id: lead.workspace_id,
                lead_id: lead.id,
                newest: lead.last_event_id,
                events,
            });
            rows.push((lead, lead.last_event_id));
        }
        let connection = &mut self.c();
        lift_overrides(connection, &scored)?;
        let writes: Vec<&ScoredLeadWrite<'_>> = scored.iter().map(|(write, _)| *write).collect();
        let then = after_scores_statements(&writes);
        // A message id the snapshot found new but another instance stored since (a lead created
        // by both at once, so not locked by this request) fails the statement: nothing of this
        // request is kept, and sent again it finds the message id stored.
        pg::ingested::write_all_and_commit(connection, &appended, &rows, &mut lead_scores(&mut scored), &then)
    }

    fn save_scored_lead(&self, write: &ScoredLeadWrite<'_>, stored: &mut StoredScores) -> Result<(), StoreError> {
        save_scored(&mut self.c(), write, stored, write.lead.last_event_id)
    }

    fn save_scored_leads(&self, scored: &mut [(&ScoredLeadWrite<'_>, &mut StoredScores)]) -> Result<(), StoreError> {
        save_scores(&mut self.c(), scored)?;
        let rows: Vec<(&LeadRow, Option<i64>)> =
            scored.iter().map(|(write, _)| (write.lead, write.lead.last_event_id)).collect();
        pg::leads::save_all_with_newest_event(&mut self.c(), &rows)
    }

    fn erase_lead(
        &self,
        workspace_id: i64,
        lead_id: i64,
        erased_by: &str,
        now: i64,
    ) -> Result<Option<Erasure>, StoreError> {
        pg::erasure::erase(&mut self.c(), workspace_id, lead_id, erased_by, now)
    }

    fn set_retention(
        &self,
        workspace_id: i64,
        events_days: Option<i64>,
        set_by: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        pg::retention::set(&mut self.c(), workspace_id, events_days, set_by, now)
    }

    fn prune_events(&self, lead: &mut LeadRow, cutoff: i64) -> Result<usize, StoreError> {
        pg::retention::prune(&mut self.c(), lead, cutoff)
    }

    fn lift_suppression(
        &self,
        workspace_id: i64,
        erasure_id: i64,
        lifted_by: &str,
        now: i64,
    ) -> Result<Option<Erasure>, StoreError> {
        pg::erasure::lift(&mut self.c(), workspace_id, erasure_id, lifted_by, now)
    }

    fn queue_notifications(&self, lead_id: i64, notifications: &[Notification], now: i64) -> Result<(), StoreError> {
        for notification in notifications {
            pg::webhooks::enqueue(
                &mut self.c(),
                notification.webhook_id,
                lead_id,
                notification.event,
                &notification.data,
                now,
            )?;
        }
        Ok(())
    }
}

/// Saves a lead's scores, its row (with `last_event_id` as its newest event), its automatic
/// stage move and its notifications.
fn save_scored(
    connection: &mut Tx<'_>,
    write: &ScoredLeadWrite<'_>,
    stored: &mut StoredScores,
    last_event_id: Option<i64>,
) -> Result<(), StoreError> {
    save_scores(connection, &mut [(write, stored)])?;
    pg::leads::save_with_newest_event(connection, write.lead, last_event_id)
}

/// What [`save_scored`] saves but the lead's row, for several leads at once (an ingestion, which
/// saves its leads' rows together): the scores of all in one go (`scores::save_over_all`) and the
/// stage moves of all in another (`stages::set_all`), each lead's overrides lifted before, its
/// notifications after.
fn save_scores(
    connection: &mut Tx<'_>,
    scored: &mut [(&ScoredLeadWrite<'_>, &mut StoredScores)],
) -> Result<(), StoreError> {
    lift_overrides(connection, scored)?;
    pg::scores::save_over_all(connection, &mut lead_scores(scored))?;
    after_scores(connection, scored)
}

/// What saving scores does before they are written: the overrides they lift.
fn lift_overrides(
    connection: &mut Tx<'_>,
    scored: &[(&ScoredLeadWrite<'_>, &mut StoredScores)],
) -> Result<(), StoreError> {
    for (write, _) in scored {
        for lifted in write.lifted_overrides {
            pg::overrides::lift(connection, lifted.id, &lifted.by, Some(&lifted.note), write.now)?;
        }
    }
    Ok(())
}

/// The scores of `scored` as the scores family saves them.
fn lead_scores<'s>(scored: &'s mut [(&ScoredLeadWrite<'_>, &mut StoredScores)]) -> Vec<pg::scores::LeadScores<'s>> {
    scored
        .iter_mut()
        .map(|(write, stored)| pg::scores::LeadScores {
            lead_id: write.lead.id,
            stored,
            rows: write.rows,
            cause: write.cause,
            history: write.history,
            terms: write.terms,
        })
        .collect()
}

/// What saving scores does once they are written: the stage moves, and the webhook
/// notifications queued.
fn after_scores(
    connection: &mut Tx<'_>,
    scored: &[(&ScoredLeadWrite<'_>, &mut StoredScores)],
) -> Result<(), StoreError> {
    let writes: Vec<&ScoredLeadWrite<'_>> = scored.iter().map(|(write, _)| *write).collect();
    for statement in after_scores_statements(&writes) {
        connection.execute_unanswered(&statement)?;
    }
    Ok(())
}

/// The statements of [`after_scores`]: the stage moves of all the leads, then each lead's
/// notifications.
fn after_scores_statements<'w>(writes: &[&'w ScoredLeadWrite<'_>]) -> Vec<pg::Unanswered<'w>> {
    let moves: Vec<(i64, &StageChange)> =
        writes.iter().filter_map(|write| write.stage.map(|change| (write.lead.id, change))).collect();
    let mut statements = pg::stages::set_all_statements(&moves);
    for write in writes {
        for notification in write.notifications {
            statements.push(pg::webhooks::enqueue_statement(
                notification.webhook_id,
                write.lead.id,
                notification.event,
                &notification.data,
                write.now,
            ));
        }
    }
    statements
}

impl Storage for PgStore {
    fn ping(&self) -> StorageFuture<'_, ()> {
        Box::pin(self.read(|t| Ok(t.execute("SELECT 1", &[]).map(drop)?)))
    }

    fn run_write(&self, work: TransactionWork) -> StorageFuture<'_, ()> {
        Box::pin(self.write(move |t| work(&PgTransaction::writing(t))))
    }

    fn run_read(&self, work: ReadWork) -> StorageFuture<'_, ()> {
        Box::pin(self.read(move |t| work(&PgTransaction::new(t))))
    }

    fn write_failure(&self) -> Option<String> {
        PgStore::write_failure(self)
    }

    fn probe_write(&self, now: i64) -> StorageFuture<'_, ()> {
        Box::pin(self.write(move |t| {
            t.execute(
                "INSERT INTO write_probes (id, at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                &[&now],
            )?;
            Ok(())
        }))
    }

    fn generation(&self) -> Generation {
        PgStore::generation(self)
    }

    fn run_ingestion(&self, work: TransactionWork) -> StorageFuture<'_, ()> {
        Box::pin(self.ingest(move |t| work(&PgTransaction::writing(t))))
    }

    fn rescoring(&self, workspace_id: i64) -> StorageFuture<'_, Option<Rescoring>> {
        Box::pin(self.read(move |connection| pg::rescorings::get(connection, workspace_id)))
    }

    fn unfinished_rescorings(&self) -> StorageFuture<'_, Vec<Rescoring>> {
        Box::pin(self.read(pg::rescorings::unfinished))
    }

    fn finish_rescoring(&self, workspace_id: i64, error: Option<String>, now: i64) -> StorageFuture<'_, ()> {
        Box::pin(self.write(move |connection| pg::rescorings::finish(connection, workspace_id, error.as_deref(), now)))
    }

    fn claim_rescoring_range(&self, workspace_id: i64, _now: i64) -> StorageFuture<'_, Option<RescoringRange>> {
        // Leased in the database's clock.
        Box::pin(self.write(move |connection| pg::rescorings::claim(connection, workspace_id)))
    }

    fn workspaces_with_active_model(&self) -> StorageFuture<'_, Vec<i64>> {
        Box::pin(self.read(pg::models::workspaces_with_active_model))
    }

    fn claim_notifications(&self, request: ClaimRequest) -> StorageFuture<'_, Claimed> {
        Box::pin(self.write(move |connection| pg::webhooks::claim(connection, &request)))
    }

    fn record_delivery_attempt(
        &self,
        outbox_id: i64,
        attempt: Attempt,
        delivered: bool,
        next_attempt_at: Option<i64>,
    ) -> StorageFuture<'_, ()> {
        Box::pin(self.write(move |connection| {
            pg::webhooks::record_attempt(connection, outbox_id, &attempt, delivered, next_attempt_at)
        }))
    }

    fn notifications_waiting(&self) -> StorageFuture<'_, i64> {
        Box::pin(self.read(pg::webhooks::depth))
    }

    fn shared_clock_ms(&self) -> StorageFuture<'_, i64> {
        Box::pin(self.read(pg::tx::database_now_ms))
    }

    fn authenticate(&self, secret: String) -> StorageFuture<'_, Option<KeyOwner>> {
        Box::pin(self.read(move |connection| pg::keys::authenticate(connection, &secret)))
    }

    fn list_keys(&self, workspace_id: i64) -> StorageFuture<'_, Vec<KeyInfo>> {
        Box::pin(self.read(move |connection| pg::keys::list(connection, workspace_id)))
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
            self.write(move |connection| pg::keys::create_named(connection, workspace_id, scope, &name, &origins, now)),
        )
    }

    fn browser_origins(&self) -> StorageFuture<'_, Vec<String>> {
        Box::pin(self.read(pg::keys::browser_origins))
    }

    fn cache_version(&self) -> StorageFuture<'_, i64> {
        Box::pin(self.read(pg::cache_versions::read))
    }

    fn revoke_key(&self, workspace_id: i64, key_id: i64, now: i64) -> StorageFuture<'_, Option<KeyInfo>> {
        Box::pin(self.write(move |connection| {
            if pg::keys::revoke(connection, workspace_id, key_id, now)? {
                pg::keys::by_id(connection, workspace_id, key_id)
            } else {
                Ok(None)
            }
        }))
    }

    fn account_for_sign_in(&self, email: String) -> StorageFuture<'_, Option<(User, String)>> {
        Box::pin(self.read(move |connection| pg::users::by_email(connection, &email)))
    }

    fn sign_in_failures(&self, subjects: Vec<String>, since: i64) -> StorageFuture<'_, Vec<(u32, Option<i64>)>> {
        Box::pin(self.read(move |connection| {
            subjects.iter().map(|subject| pg::sessions::failures_since(connection, subject, since)).collect()
        }))
    }

    fn record_sign_in_failure(&self, subjects: Vec<String>, now: i64, forget_before: i64) -> StorageFuture<'_, ()> {
        Box::pin(self.write(move |connection| {
            subjects
                .iter()
                .try_for_each(|subject| pg::sessions::record_failure(connection, subject, now, forget_before))
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
        Box::pin(self.write(move |connection| {
            subjects.iter().try_for_each(|subject| pg::sessions::clear_failures(connection, subject))?;
            pg::sessions::open(connection, user_id, now, idle_ms, lifetime_ms)
        }))
    }

    fn live_session(&self, token: String, now: i64) -> StorageFuture<'_, Option<(Session, User)>> {
        Box::pin(self.read(move |connection| pg::sessions::live(connection, &token, now)))
    }

    fn extend_session(&self, session_id: i64, idle_until: i64) -> StorageFuture<'_, ()> {
        Box::pin(self.write(move |connection| pg::sessions::extend(connection, session_id, idle_until)))
    }

    fn end_session(&self, session_id: i64, now: i64) -> StorageFuture<'_, bool> {
        Box::pin(self.write(move |connection| pg::sessions::revoke(connection, session_id, now)))
    }

    fn list_users(&self, workspace_id: i64) -> StorageFuture<'_, Vec<User>> {
        Box::pin(self.read(move |connection| pg::users::list(connection, workspace_id)))
    }

    fn create_user(
        &self,
        workspace_id: i64,
        email: String,
        role: Role,
        password_hash: String,
        now: i64,
    ) -> StorageFuture<'_, User> {
        Box::pin(
            self.write(move |connection| {
                pg::users::create(connection, workspace_id, &email, role, &password_hash, now)
            }),
        )
    }

    fn set_password(
        &self,
        workspace_id: i64,
        user_id: i64,
        password_hash: String,
        now: i64,
    ) -> StorageFuture<'_, bool> {
        Box::pin(self.write(move |connection| {
            let changed = pg::users::set_password(connection, workspace_id, user_id, &password_hash)?;
            if changed {
                pg::sessions::revoke_all_of(connection, user_id, now)?;
            }
            Ok(changed)
        }))
    }

    fn set_user_role(&self, workspace_id: i64, user_id: i64, role: Role) -> StorageFuture<'_, bool> {
        Box::pin(self.write(move |connection| pg::users::set_role(connection, workspace_id, user_id, role)))
    }

    fn last_sign_ins(&self, workspace_id: i64) -> StorageFuture<'_, Vec<(i64, i64)>> {
        Box::pin(self.read(move |connection| pg::users::last_sign_ins(connection, workspace_id)))
    }

    fn disable_user(&self, workspace_id: i64, user_id: i64, now: i64) -> StorageFuture<'_, bool> {
        Box::pin(self.write(move |connection| {
            let disabled = pg::users::disable(connection, workspace_id, user_id, now)?;
            if disabled {
                pg::sessions::revoke_all_of(connection, user_id, now)?;
            }
            Ok(disabled)
        }))
    }

    fn list_webhooks(&self, workspace_id: i64) -> StorageFuture<'_, Vec<Webhook>> {
        Box::pin(self.read(move |connection| pg::webhooks::list(connection, workspace_id)))
    }

    fn subscribe_webhook(&self, workspace_id: i64, new: NewWebhook, now: i64) -> StorageFuture<'_, Webhook> {
        Box::pin(self.write(move |connection| pg::webhooks::create(connection, workspace_id, &new, now)))
    }

    fn delete_webhook(&self, workspace_id: i64, id: i64, now: i64) -> StorageFuture<'_, bool> {
        Box::pin(self.write(move |connection| pg::webhooks::delete(connection, workspace_id, id, now)))
    }

    fn delivery_log(
        &self,
        workspace_id: i64,
        id: i64,
        before: Option<i64>,
        limit: u32,
    ) -> StorageFuture<'_, Option<Vec<LogEntry>>> {
        Box::pin(self.read(move |connection| {
            if pg::webhooks::by_id(connection, workspace_id, id)?.is_none() {
                return Ok(None);
            }
            pg::webhooks::log(connection, id, before, limit).map(Some)
        }))
    }

    fn redeliver(&self, workspace_id: i64, outbox_id: i64, now: i64) -> StorageFuture<'_, i64> {
        Box::pin(self.write(move |connection| pg::webhooks::redeliver(connection, workspace_id, outbox_id, now)))
    }

    fn sole_writer(&self) -> bool {
        // Other instances and commands write the same database at any time.
        false
    }

    fn try_exclusive(&self, job: String) -> StorageFuture<'_, Option<Exclusive>> {
        let store = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || store.try_exclusive(&job)).await.map_err(|_| StoreError::Closed)?
        })
    }

    fn run_beside_caches(&self, work: TransactionWork) -> StorageFuture<'_, ()> {
        Box::pin(self.write(move |t| work(&PgTransaction::writing(t))))
    }
}

/// How many leads an ingestion can create at most: one for each user id and anonymous id it asked
/// about that finds no lead (a message whose lead the caller knows creates none). Ids for as many
/// are reserved, so that instances ingesting at once never hand out the same one.
fn new_leads_at_most(lookup: &IngestionLookup<'_>, snapshot: &IngestionSnapshot) -> i64 {
    let users = lookup.user_ids.iter().filter(|id| !snapshot.by_user_id.contains_key(**id));
    let anonymous = lookup.anonymous_ids.iter().filter(|id| !snapshot.by_anonymous_id.contains_key(**id));
    let distinct: std::collections::HashSet<(bool, &str)> =
        users.map(|id| (true, *id)).chain(anonymous.map(|id| (false, *id))).collect();
    distinct.len() as i64
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::postgres::testing::TestDatabase;
    use crate::postgres::{PgOptions, PgStore};
    use crate::storage::conformance::{Opened, conformance_tests};

    /// An empty PostgreSQL storage in a database of its own, dropped after the test; none when
    /// no server is there to test with (see [`TestDatabase::create`]).
    fn open() -> Option<Opened> {
        let database = TestDatabase::create()?;
        let store = PgStore::connect(&database.url, PgOptions { connections: 3, ..PgOptions::default() }).unwrap();
        Some((Box::new(database), Arc::new(store)))
    }

    conformance_tests!(open);
}
