//! Each rule kind as SQL, one module per kind as in the engine ([`leadscore_core::rules`]):
//! `attribute` (attribute and case rules, on the lead's columns), `event` (windows, counts,
//! progressive schedules, bands, decay and sequences, over a tracker's occurrences) and
//! `inactivity`. A rule gives the columns it needs over the events and per lead
//! ([`EventColumns`]), and two expressions over the lead's row joined with them: whether it
//! applied and its points.

pub(crate) mod attribute;
pub(crate) mod context;
pub(crate) mod event;
pub(crate) mod inactivity;

use leadscore_core::rules::RuleKind;

pub(crate) use context::{EventColumns, RuleContext, RuleSql};

use crate::error::SqlError;

pub(crate) fn rule(context: &RuleContext<'_, '_>, kind: &RuleKind) -> Result<RuleSql, SqlError> {
    match kind {
        RuleKind::Attribute(rule) => attribute::attribute(context, rule),
        RuleKind::Cases(rule) => attribute::cases(context, rule),
        RuleKind::Event(rule) => event::event(context, rule),
        RuleKind::Inactivity(rule) => inactivity::inactivity(context, rule),
    }
}
