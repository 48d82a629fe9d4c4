//! Each rule kind as SQL, one module per kind as in the engine ([`leadscore_core::rules`]):
//! `attribute` (attribute and case rules, on the lead's columns), `event` (windows, counts,
//! progressive schedules, bands, decay and sequences, over a tracker's occurrences) and
//! `inactivity`. A rule gives the tables it needs (one row per lead) and two expressions over
//! the lead's row joined with them: whether it applied and its points.

pub(crate) mod attribute;
pub(crate) mod event;
pub(crate) mod inactivity;

use leadscore_core::Model;
use leadscore_core::rules::RuleKind;
use leadscore_core::time::Timestamp;

use crate::condition::{Conditions, Record};
use crate::dialect::Dialect;
use crate::error::{Place, SqlError};

/// A rule as SQL.
pub(crate) struct RuleSql {
    /// Tables (name, query) with one row per lead that has something to count, joined to the
    /// leads by `lead_id`; their columns are named after the rule ([`crate::columns`]).
    pub(crate) tables: Vec<(String, String, Vec<String>)>,
    /// Whether the rule applied (never NULL).
    pub(crate) applied: String,
    /// Its points when it applied.
    pub(crate) points: String,
}

/// What every rule is rendered with.
pub(crate) struct RuleContext<'a, 't> {
    pub(crate) model: &'a Model,
    pub(crate) dialect: Dialect,
    pub(crate) place: Place<'t>,
    pub(crate) as_of: Timestamp,
    pub(crate) score: usize,
    pub(crate) rule: usize,
}

impl RuleContext<'_, '_> {
    pub(crate) fn lead_conditions(&self) -> Conditions<'_, '_> {
        Conditions { model: self.model, dialect: self.dialect, place: &self.place, record: Record::Lead }
    }
}

pub(crate) fn rule(context: &RuleContext<'_, '_>, kind: &RuleKind) -> Result<RuleSql, SqlError> {
    match kind {
        RuleKind::Attribute(rule) => attribute::attribute(context, rule),
        RuleKind::Cases(rule) => attribute::cases(context, rule),
        RuleKind::Event(rule) => event::event(context, rule),
        RuleKind::Inactivity(rule) => inactivity::inactivity(context, rule),
    }
}
