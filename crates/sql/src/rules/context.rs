//! What a rule's SQL is made of and rendered with, apart from the dispatch in `mod.rs` so that
//! the kinds' modules and the dispatch import it without importing each other.

use leadscore_core::Model;
use leadscore_core::time::Timestamp;

use crate::condition::{Conditions, Record};
use crate::dialect::Dialect;
use crate::error::Place;

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
