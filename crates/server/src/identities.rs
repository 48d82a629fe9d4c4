//! Identity resolution for one ingestion request: which lead each message belongs to, found
//! in memory on what the request read before its loop (`Reads::ingestion_snapshot`), with
//! anonymous ids merged into a user's lead and aliases.
//!
//! What the request changes is kept here as it goes, so that a later message of the same request
//! sees an earlier one's leads, links and merges. New leads (with the ids the snapshot handed
//! out) and anonymous id links wait for the request's one write ([`Identities::finish`]). Giving
//! a stored lead its user id and merging leads are storage calls of their own, made at once:
//! they are rare (an anonymous visitor who identifies, an alias), and a merge moves stored
//! events, so the new leads and links before it are written first. An id the snapshot was not
//! asked about (a remembered lead that an earlier message merged away) is looked up then.

use std::collections::HashMap;

use leadscore_store::leads::{self, LeadRow};
use leadscore_store::scores::StoredScores;
use leadscore_store::storage::{IngestionLookup, IngestionSnapshot, NewIdentities};
use leadscore_store::{StoreError, Transaction};

use crate::lead_cache::Leads;
use crate::messages::Message;

/// The identities of one request's workspace as the request has left them so far.
pub struct Identities<'t> {
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
    pub fn new(
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
    pub fn finish(self) -> NewIdentities {
        self.pending
    }

    /// The stored scores of a lead read or created here, once.
    pub fn take_scores(&mut self, lead_id: i64) -> Option<StoredScores> {
        self.scores.remove(&lead_id)
    }

    /// The lead of an alias call: the lead known by `previous_id` (an anonymous id or an earlier
    /// user id) is merged into the user's lead, or takes the user id when the user has none yet.
    /// The merged lead's id is returned too.
    pub fn resolve_alias(
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

    /// Finds or creates the lead of a message. When an identify links an anonymous lead to a
    /// known user, the anonymous lead is merged into the known one; its id is returned too.
    pub fn resolve_lead(
        &mut self,
        remembered: &Leads,
        message: &Message,
    ) -> Result<(LeadRow, Option<i64>), StoreError> {
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
