//! What evaluating one rule for one lead gives the score that holds it: whether it applied, its
//! points and, for an event rule, how many occurrences it counted.
//!
//! Every rule kind returns it and the engine assembles scores from it, so it sits apart from both.

/// One rule's outcome while a score is evaluated.
#[derive(Debug, Clone, Copy, Default)]
pub struct RuleOutcome {
    pub applied: bool,
    pub points: f64,
    pub occurrences: u32,
}

impl RuleOutcome {
    /// A rule that applied without counting occurrences (attribute, case and inactivity rules).
    pub(crate) fn points(points: f64) -> RuleOutcome {
        RuleOutcome { applied: true, points, occurrences: 0 }
    }
}
