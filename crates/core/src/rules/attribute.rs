//! Attribute rules (`when`: points when the lead matches a condition) and case rules (`cases`:
//! the points of the first case the lead matches): rules on the lead's fields alone.

use crate::rules::condition::Condition;
use crate::rules::outcome::RuleOutcome;
use crate::value::Value;

/// `points` when the lead matches `when`.
#[derive(Debug)]
pub(crate) struct AttributeRule {
    pub(crate) when: Condition,
    pub(crate) points: f64,
}

impl AttributeRule {
    pub(crate) fn outcome(&self, lead: &[Value]) -> RuleOutcome {
        if self.when.matches(lead) { RuleOutcome::points(self.points) } else { RuleOutcome::default() }
    }
}

/// The points of the first case the lead matches, in the written order (an `otherwise` case is
/// last and always matches).
#[derive(Debug)]
pub(crate) struct CaseRule {
    pub(crate) cases: Vec<(Condition, f64)>,
}

impl CaseRule {
    pub(crate) fn outcome(&self, lead: &[Value]) -> RuleOutcome {
        match self.cases.iter().find(|(when, _)| when.matches(lead)) {
            Some((_, points)) => RuleOutcome::points(*points),
            None => RuleOutcome::default(),
        }
    }
}
