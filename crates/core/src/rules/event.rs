//! Event rules (`event`): points for the occurrences of event types a lead's tracker kept, counted
//! within a `window` and up to `max_count`, earned `points` each, by a `progressive` schedule or
//! by `bands` of counts, and shrunk with their age by a `decay`.

use crate::rules::outcome::RuleOutcome;
use crate::time::{Duration, Timestamp};

/// A compiled event rule.
#[derive(Debug)]
pub(crate) struct EventRule {
    /// The tracker that keeps the occurrences this rule counts.
    pub(crate) tracker: usize,
    pub(crate) window: Option<Duration>,
    pub(crate) max_count: Option<usize>,
    pub(crate) points: EventPoints,
    pub(crate) decay: Option<Decay>,
}

#[derive(Debug)]
pub(crate) enum EventPoints {
    /// The same points for every counted occurrence.
    Each(f64),
    /// Points of the 1st, 2nd, ... counted occurrence, oldest first.
    Progressive(Vec<f64>),
    /// Points for the number of counted occurrences.
    Bands(Vec<Band>),
}

#[derive(Debug)]
pub(crate) struct Band {
    pub(crate) min: usize,
    pub(crate) max: Option<usize>,
    pub(crate) points: f64,
}

/// How an occurrence's points shrink with its age.
#[derive(Debug)]
pub(crate) enum Decay {
    /// Halved every `half_life_days`.
    HalfLife { half_life_days: f64 },
    /// Lose `percent` of the points at the end of every `every`, down to zero.
    Linear { percent: f64, every: Duration },
    /// Keep `factor` of the points once older than a step (the oldest step reached applies).
    Steps(Vec<(Duration, f64)>),
}

impl Decay {
    /// The share of its points an occurrence of this age keeps.
    pub(crate) fn factor(&self, age: Duration) -> f64 {
        match self {
            Decay::HalfLife { half_life_days } => 0.5f64.powf(age.as_days() / half_life_days),
            Decay::Linear { percent, every } => {
                let periods = (age.0 / every.0) as f64;
                (1.0 - percent / 100.0 * periods).max(0.0)
            }
            Decay::Steps(steps) => {
                steps.iter().rev().find(|(older_than, _)| age > *older_than).map_or(1.0, |(_, factor)| *factor)
            }
        }
    }
}

impl EventRule {
    /// The rule's outcome at `as_of`, from its tracker's ascending occurrence times up to `as_of`.
    pub(crate) fn outcome(&self, times: &[Timestamp], as_of: Timestamp) -> RuleOutcome {
        let start = match self.window {
            Some(window) => times.partition_point(|t| *t < as_of.saturating_sub(window)),
            None => 0,
        };
        let mut counted = &times[start..];
        if let Some(max_count) = self.max_count {
            counted = &counted[counted.len().saturating_sub(max_count)..];
        }
        if let EventPoints::Progressive(steps) = &self.points {
            counted = &counted[counted.len().saturating_sub(steps.len())..];
        }
        if counted.is_empty() {
            return RuleOutcome::default();
        }
        let factor =
            |at: Timestamp| self.decay.as_ref().map_or(1.0, |decay| decay.factor(as_of.since(at).max(Duration(0))));
        // Newest first, so that equal points add up in the same order whatever the history.
        let points = match &self.points {
            EventPoints::Each(points) => counted.iter().rev().map(|&at| points * factor(at)).sum(),
            EventPoints::Progressive(steps) => {
                counted.iter().zip(steps).rev().map(|(&at, step)| step * factor(at)).sum()
            }
            EventPoints::Bands(bands) => {
                let n = counted.len();
                match bands.iter().find(|b| n >= b.min && b.max.is_none_or(|max| n <= max)) {
                    Some(band) => band.points,
                    // A count that falls in no band: the rule does not apply.
                    None => return RuleOutcome::default(),
                }
            }
        };
        RuleOutcome { applied: true, points, occurrences: counted.len() as u32 }
    }
}
