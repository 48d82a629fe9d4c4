//! What a rule's SQL is made of and rendered with, apart from the dispatch in `mod.rs` so that
//! the kinds' modules and the dispatch import it without importing each other.

use leadscore_core::Model;

use crate::as_of::AsOf;
use crate::condition::{Conditions, Record};
use crate::dialect::Dialect;
use crate::error::Place;

/// A rule as SQL.
pub(crate) struct RuleSql {
    /// What the rule reads of the events, if anything.
    pub(crate) events: EventColumns,
    /// Whether the rule applied (never NULL), over the lead's row joined with the columns of
    /// `events.per_lead`.
    pub(crate) applied: String,
    /// Its points when it applied.
    pub(crate) points: String,
}

/// Columns computed over the counted events (one row each, with `lead_id`, `at` and a boolean
/// column per tracker, [`crate::columns::tracker`]), then per lead. Every rule and qualifier
/// adds its columns to the same few tables, so that the query reads the events once: a
/// dialect that inlines common table expressions (Spark SQL) would otherwise parse every
/// event's time again for each rule, in its plan and in its run. Names come from
/// [`crate::columns`], (name, expression).
#[derive(Default)]
pub(crate) struct EventColumns {
    /// Windows over the trackers' columns (a sequence's latest preceding occurrence).
    pub(crate) preceded: Vec<(String, String)>,
    /// Booleans over those: whether an event is one the rule counts.
    pub(crate) members: Vec<(String, String)>,
    /// Windows over the members (recency, count).
    pub(crate) ranks: Vec<(String, String)>,
    /// Aggregates per lead, over its events with all the columns above.
    pub(crate) per_lead: Vec<(String, String)>,
}

impl EventColumns {
    pub(crate) fn extend(&mut self, other: EventColumns) {
        self.preceded.extend(other.preceded);
        self.members.extend(other.members);
        self.ranks.extend(other.ranks);
        self.per_lead.extend(other.per_lead);
    }
}

/// What every rule is rendered with.
pub(crate) struct RuleContext<'a, 't> {
    pub(crate) model: &'a Model,
    pub(crate) dialect: Dialect,
    pub(crate) place: Place<'t>,
    pub(crate) as_of: AsOf,
    pub(crate) score: usize,
    pub(crate) rule: usize,
}

impl RuleContext<'_, '_> {
    pub(crate) fn lead_conditions(&self) -> Conditions<'_, '_> {
        Conditions { model: self.model, dialect: self.dialect, place: &self.place, record: Record::Lead }
    }
}
