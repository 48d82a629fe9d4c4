//! Attribute rules (`when`: points when the lead matches a condition) and case rules (`cases`:
//! the points of the first case the lead matches): rules on the lead's fields alone.

use crate::rules::condition::{Condition, Scores};
use crate::rules::outcome::RuleOutcome;
use crate::value::Value;

/// `points` when the lead matches `when`.
#[derive(Debug)]
pub struct AttributeRule {
    pub when: Condition,
    pub points: f64,
}

impl AttributeRule {
    pub(crate) fn outcome(&self, lead: &[Value], scores: &dyn Scores) -> RuleOutcome {
        if self.when.matches_with(lead, scores) { RuleOutcome::points(self.points) } else { RuleOutcome::default() }
    }
}

/// The points of the first case the lead matches, in the written order (an `otherwise` case is
/// last and always matches).
#[derive(Debug)]
pub struct CaseRule {
    pub cases: Vec<(Condition, f64)>,
}

impl CaseRule {
    pub(crate) fn outcome(&self, lead: &[Value], scores: &dyn Scores) -> RuleOutcome {
        match self.cases.iter().find(|(when, _)| when.matches_with(lead, scores)) {
            Some((_, points)) => RuleOutcome::points(*points),
            None => RuleOutcome::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{AttributeRule, CaseRule};
    use crate::rules::condition::{Condition, NoScores, Test};
    use crate::value::Value;

    fn at_least(min: f64) -> Condition {
        Condition::Field { slot: 0, tests: vec![Test::AtLeast(min)] }
    }

    #[test]
    fn an_attribute_rule_gives_its_points_when_the_lead_matches() {
        let rule = AttributeRule { when: at_least(100.0), points: 10.0 };
        let applied = rule.outcome(&[Value::Number(250.0)], &NoScores);
        assert!(applied.applied);
        assert_eq!((applied.points, applied.occurrences), (10.0, 0));
        assert!(!rule.outcome(&[Value::Number(50.0)], &NoScores).applied);
        assert!(!rule.outcome(&[], &NoScores).applied);
    }

    #[test]
    fn a_case_rule_gives_the_points_of_the_first_case_that_matches() {
        let rule =
            CaseRule { cases: vec![(at_least(1000.0), 20.0), (at_least(100.0), 10.0), (Condition::Always, -5.0)] };
        assert_eq!(rule.outcome(&[Value::Number(5000.0)], &NoScores).points, 20.0);
        assert_eq!(rule.outcome(&[Value::Number(500.0)], &NoScores).points, 10.0);
        let otherwise = rule.outcome(&[Value::Missing], &NoScores);
        assert!(otherwise.applied);
        assert_eq!(otherwise.points, -5.0);
        let without_otherwise = CaseRule { cases: vec![(at_least(1000.0), 20.0)] };
        assert!(!without_otherwise.outcome(&[Value::Number(5.0)], &NoScores).applied);
    }
}
