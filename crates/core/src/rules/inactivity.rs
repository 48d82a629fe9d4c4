//! Inactivity rules (`inactive_for`): points when a lead's tracker holds no occurrence in the
//! last `after`, counted from the lead's creation time when it has none.

use crate::rules::outcome::RuleOutcome;
use crate::time::{Duration, Timestamp};
use crate::value::Value;

/// `points` when no tracked event happened in the last `after`.
#[derive(Debug)]
pub(crate) struct InactivityRule {
    /// The tracker that keeps the most recent occurrence (of the listed types, or of any type).
    pub(crate) tracker: usize,
    pub(crate) after: Duration,
    pub(crate) points: f64,
}

impl InactivityRule {
    /// The rule's outcome at `as_of`, from its tracker's ascending occurrence times up to `as_of`;
    /// `created_at_field` is the lead record slot of the model's `[lead] created_at`.
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
