//! Inactivity rules (`inactive_for`): points when a lead's tracker holds no occurrence in the
//! last `after`, counted from the lead's creation time when it has none.

use crate::rules::condition::Condition;
use crate::rules::outcome::RuleOutcome;
use crate::time::{Duration, Timestamp};
use crate::value::Value;

/// `points` when no tracked event happened in the last `after`.
#[derive(Debug)]
pub struct InactivityRule {
    /// The tracker that keeps the most recent occurrence (of the listed types, or of any type).
    pub tracker: usize,
    pub after: Duration,
    pub points: f64,
    /// `when`: the rule applies only to leads matching it (checked by `RuleKind::outcome`).
    pub lead_condition: Option<Condition>,
}

impl InactivityRule {
    /// The rule's outcome at `as_of`, from its tracker's ascending occurrence times up to `as_of`;
    /// `created_at_field` is the lead record slot of the model's `[lead] created_at`.
    // Inlined into the dispatch (`RuleKind::outcome`), as it was when the engine evaluated it:
    // rules are evaluated for every lead of every request and batch.
    #[inline]
    pub(crate) fn outcome(
        &self,
        times: &[Timestamp],
        lead: &[Value],
        created_at_field: Option<usize>,
        as_of: Timestamp,
    ) -> RuleOutcome {
        let last = times.last().copied().or_else(|| {
            let field = created_at_field?;
            let text = lead.get(field)?.as_text()?;
            Timestamp::parse_rfc3339(text.trim()).ok().filter(|created| *created <= as_of)
        });
        let inactive = last.is_none_or(|last| as_of.since(last) > self.after);
        if inactive { RuleOutcome::points(self.points) } else { RuleOutcome::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::InactivityRule;
    use crate::time::{Duration, Timestamp};
    use crate::value::Value;

    const DAY: i64 = 86_400_000;

    fn rule() -> InactivityRule {
        InactivityRule { tracker: 0, after: Duration::from_days(30), points: -10.0, lead_condition: None }
    }

    #[test]
    fn a_lead_is_inactive_when_its_last_occurrence_is_older_than_after() {
        let as_of = Timestamp(100 * DAY);
        let inactive = rule().outcome(&[Timestamp(DAY), Timestamp(60 * DAY)], &[], None, as_of);
        assert!(inactive.applied);
        assert_eq!(inactive.points, -10.0);
        assert!(!rule().outcome(&[Timestamp(80 * DAY)], &[], None, as_of).applied);
        // Exactly `after` ago is not yet inactive.
        assert!(!rule().outcome(&[Timestamp(70 * DAY)], &[], None, as_of).applied);
        // Nothing ever happened and nothing says when the lead came: inactive.
        assert!(rule().outcome(&[], &[], None, as_of).applied);
    }

    #[test]
    fn without_occurrences_inactivity_counts_from_the_lead_creation_time() {
        let as_of = Timestamp::parse_rfc3339("2026-03-01T00:00:00Z").expect("a valid time");
        let recent = [Value::text("2026-02-20T00:00:00Z")];
        assert!(!rule().outcome(&[], &recent, Some(0), as_of).applied);
        let old = [Value::text("2025-12-01T00:00:00Z")];
        assert!(rule().outcome(&[], &old, Some(0), as_of).applied);
        // A creation time after the as-of instant says nothing about activity before it.
        let future = [Value::text("2026-04-01T00:00:00Z")];
        assert!(rule().outcome(&[], &future, Some(0), as_of).applied);
    }
}
