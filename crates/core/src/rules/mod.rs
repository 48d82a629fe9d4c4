//! The rules a score adds up, one module per kind: `attribute` (attribute and case rules),
//! `event` (event rules, their windows, counts and decay) and `inactivity`, each with its compiled
//! form and its evaluation, and `condition`, the conditions they test, with the lists its e-mail
//! tests read (`lists`) and the `gibberish` test on names. `RuleKind` names the kinds
//! and hands each rule to its module.
//!
//! A rule reads the lead's fields and its tracker's occurrence times and gives a `RuleOutcome`;
//! adding outcomes up into scores, tiers and explanations is the engine's ([`crate::engine`]),
//! which this module does not depend on.

pub mod attribute;
pub mod condition;
pub mod event;
pub mod gibberish;
pub mod inactivity;
pub mod lists;
pub mod outcome;

pub use outcome::RuleOutcome;

use crate::time::Timestamp;
use crate::value::Value;
use attribute::{AttributeRule, CaseRule};
use condition::Scores;
use event::EventRule;
use inactivity::InactivityRule;

/// A rule's kind, decided by the compiler from the rule's keys, with its compiled settings.
///
/// Event and inactivity rules may also test the lead (`when`): when the lead does not match, the
/// rule does not apply, whatever its events.
#[derive(Debug)]
pub enum RuleKind {
    Attribute(AttributeRule),
    Cases(CaseRule),
    Event(EventRule),
    Inactivity(InactivityRule),
}

impl RuleKind {
    /// Evaluates the rule for one lead at `as_of`. `occurrences` holds, per tracker, the lead's
    /// ascending occurrence times (a lead's state); `created_at_field` is the lead record slot of
    /// the model's `[lead] created_at`; `scores` are the lead's scores its conditions may test.
    pub(crate) fn outcome(
        &self,
        lead: &[Value],
        occurrences: &[Vec<Timestamp>],
        created_at_field: Option<usize>,
        as_of: Timestamp,
        scores: &dyn Scores,
    ) -> RuleOutcome {
        self.outcome_between(lead, occurrences, created_at_field, as_of, as_of, scores)
    }

    /// The outcome with occurrences counted (windows, counts, inactivity) at `counted_at` and
    /// event points decayed at `decayed_at`; [`RuleKind::outcome`] takes both at the as-of time.
    pub(crate) fn outcome_between(
        &self,
        lead: &[Value],
        occurrences: &[Vec<Timestamp>],
        created_at_field: Option<usize>,
        counted_at: Timestamp,
        decayed_at: Timestamp,
        scores: &dyn Scores,
    ) -> RuleOutcome {
        match self {
            RuleKind::Attribute(rule) => rule.outcome(lead, scores),
            RuleKind::Cases(rule) => rule.outcome(lead, scores),
            RuleKind::Event(rule) => {
                if rule.lead_condition.as_ref().is_some_and(|c| !c.matches_with(lead, scores)) {
                    return RuleOutcome::default();
                }
                let times = counted_until(&occurrences[rule.tracker], counted_at);
                match &rule.after {
                    None => rule.outcome_between(times, counted_at, decayed_at),
                    Some(precedent) => {
                        let before = counted_until(&occurrences[precedent.tracker], counted_at);
                        rule.outcome_between(&precedent.followed(before, times), counted_at, decayed_at)
                    }
                }
            }
            RuleKind::Inactivity(rule) => {
                if rule.lead_condition.as_ref().is_some_and(|c| !c.matches_with(lead, scores)) {
                    return RuleOutcome::default();
                }
                rule.outcome(counted_until(&occurrences[rule.tracker], counted_at), lead, created_at_field, counted_at)
            }
        }
    }
}

/// The ascending times that are not after `as_of`: occurrences after the as-of instant never
/// count.
pub(crate) fn counted_until(times: &[Timestamp], as_of: Timestamp) -> &[Timestamp] {
    &times[..times.partition_point(|t| *t <= as_of)]
}

#[cfg(test)]
mod tests {
    use super::counted_until;
    use crate::time::Timestamp;

    #[test]
    fn occurrences_after_the_as_of_instant_never_count() {
        let times = [Timestamp(1), Timestamp(2), Timestamp(2), Timestamp(3)];
        assert_eq!(counted_until(&times, Timestamp(2)), &times[..3]);
        assert_eq!(counted_until(&times, Timestamp(0)), &[] as &[Timestamp]);
        assert_eq!(counted_until(&times, Timestamp(9)), &times[..]);
    }
}
