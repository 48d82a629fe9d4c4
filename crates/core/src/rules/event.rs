//! Event rules (`event`): points for the occurrences of event types a lead's tracker kept, counted
//! within a `window` and up to `max_count`, earned `points` each, by a `progressive` schedule or
//! by `bands` of counts, and shrunk with their age by a `decay`. A sequence (`after`) counts only
//! the occurrences that follow another event within a time: a pricing view within 7 days after a
//! webinar.

use crate::rules::condition::Condition;
use crate::rules::outcome::RuleOutcome;
use crate::time::{Duration, Timestamp};

/// A compiled event rule.
#[derive(Debug)]
pub struct EventRule {
    /// The tracker that keeps the occurrences this rule counts.
    pub tracker: usize,
    pub window: Option<Duration>,
    pub max_count: Option<usize>,
    pub points: EventPoints,
    pub decay: Option<Decay>,
    /// `when`: the rule applies only to leads matching it (checked by `RuleKind::outcome`).
    pub lead_condition: Option<Condition>,
    /// `after`: a sequence's preceding event.
    pub after: Option<Precedent>,
}

/// The event that must precede an occurrence for a sequence to count it.
#[derive(Debug)]
pub struct Precedent {
    /// The tracker that keeps the preceding events (all of them: any may be the one needed).
    pub tracker: usize,
    pub within: Duration,
}

impl Precedent {
    /// The occurrences (ascending) that have a preceding event at most `within` before them, at
    /// the same instant included. `before` is ascending too. Which events count depends only on
    /// the times, never on the order events arrived in.
    pub(crate) fn followed(&self, before: &[Timestamp], times: &[Timestamp]) -> Vec<Timestamp> {
        times
            .iter()
            .copied()
            .filter(|&at| {
                let earliest = at.saturating_sub(self.within);
                let first = before.partition_point(|t| *t < earliest);
                before.get(first).is_some_and(|t| *t <= at)
            })
            .collect()
    }
}

#[derive(Debug)]
pub enum EventPoints {
    /// The same points for every counted occurrence.
    Each(f64),
    /// Points of the 1st, 2nd, ... counted occurrence, oldest first.
    Progressive(Vec<f64>),
    /// Points for the number of counted occurrences.
    Bands(Vec<Band>),
}

#[derive(Debug)]
pub struct Band {
    pub min: usize,
    pub max: Option<usize>,
    pub points: f64,
}

/// How an occurrence's points shrink with its age.
#[derive(Debug)]
pub enum Decay {
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
    #[cfg(test)]
    pub(crate) fn outcome(&self, times: &[Timestamp], as_of: Timestamp) -> RuleOutcome {
        self.outcome_between(times, as_of, as_of)
    }

    /// The outcome with the window and counts taken at `counted_at` and the decay at
    /// `decayed_at`: what tells windows expiring apart from decay when a score's change over
    /// time is explained (`changes.rs`). Both the same instant: [`EventRule::outcome`].
    pub(crate) fn outcome_between(
        &self,
        times: &[Timestamp],
        counted_at: Timestamp,
        decayed_at: Timestamp,
    ) -> RuleOutcome {
        let as_of = decayed_at;
        let start = match self.window {
            Some(window) => times.partition_point(|t| *t < counted_at.saturating_sub(window)),
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

#[cfg(test)]
mod tests {
    use super::{Band, Decay, EventPoints, EventRule, Precedent};
    use crate::time::{Duration, Timestamp};

    const DAY: i64 = 86_400_000;

    fn rule(points: EventPoints) -> EventRule {
        EventRule { tracker: 0, window: None, max_count: None, points, decay: None, lead_condition: None, after: None }
    }

    fn days(days: &[i64]) -> Vec<Timestamp> {
        days.iter().map(|d| Timestamp(d * DAY)).collect()
    }

    #[test]
    fn each_occurrence_in_the_window_counts_up_to_max_count() {
        let times = days(&[1, 2, 8, 9, 10]);
        let as_of = Timestamp(10 * DAY);
        let every = rule(EventPoints::Each(2.0)).outcome(&times, as_of);
        assert_eq!((every.points, every.occurrences), (10.0, 5));
        let windowed = EventRule { window: Some(Duration::from_days(3)), ..rule(EventPoints::Each(2.0)) };
        assert_eq!(windowed.outcome(&times, as_of).occurrences, 3);
        let capped = EventRule { max_count: Some(2), ..rule(EventPoints::Each(2.0)) };
        assert_eq!(capped.outcome(&times, as_of).points, 4.0);
        assert!(!rule(EventPoints::Each(2.0)).outcome(&[], as_of).applied);
    }

    #[test]
    fn a_progressive_schedule_counts_its_length_of_the_most_recent_occurrences() {
        let outcome =
            rule(EventPoints::Progressive(vec![1.0, 2.0, 3.0])).outcome(&days(&[1, 2, 3, 4]), Timestamp(5 * DAY));
        assert_eq!((outcome.points, outcome.occurrences), (6.0, 3));
        let two = rule(EventPoints::Progressive(vec![1.0, 2.0, 3.0])).outcome(&days(&[1, 2]), Timestamp(5 * DAY));
        assert_eq!(two.points, 3.0);
    }

    #[test]
    fn bands_give_the_points_of_the_band_the_count_falls_in() {
        let bands = || {
            EventPoints::Bands(vec![
                Band { min: 1, max: Some(2), points: 5.0 },
                Band { min: 4, max: None, points: 20.0 },
            ])
        };
        let as_of = Timestamp(10 * DAY);
        assert_eq!(rule(bands()).outcome(&days(&[1, 2]), as_of).points, 5.0);
        assert_eq!(rule(bands()).outcome(&days(&[1, 2, 3, 4, 5]), as_of).points, 20.0);
        // Three occurrences fall between the bands: the rule does not apply.
        assert!(!rule(bands()).outcome(&days(&[1, 2, 3]), as_of).applied);
    }

    #[test]
    fn decay_shrinks_points_with_age() {
        let half_life = Decay::HalfLife { half_life_days: 30.0 };
        assert_eq!(half_life.factor(Duration(0)), 1.0);
        assert_eq!(half_life.factor(Duration::from_days(30)), 0.5);
        let linear = Decay::Linear { percent: 25.0, every: Duration::from_days(30) };
        assert_eq!(linear.factor(Duration::from_days(29)), 1.0);
        assert_eq!(linear.factor(Duration::from_days(65)), 0.5);
        assert_eq!(linear.factor(Duration::from_days(365)), 0.0);
        let steps = Decay::Steps(vec![(Duration::from_days(30), 0.5), (Duration::from_days(90), 0.1)]);
        assert_eq!(steps.factor(Duration::from_days(30)), 1.0);
        assert_eq!(steps.factor(Duration::from_days(31)), 0.5);
        assert_eq!(steps.factor(Duration::from_days(91)), 0.1);
        let decayed = EventRule { decay: Some(half_life), ..rule(EventPoints::Each(8.0)) };
        assert_eq!(decayed.outcome(&days(&[0, 30]), Timestamp(30 * DAY)).points, 12.0);
    }

    #[test]
    fn a_sequence_counts_occurrences_that_follow_the_preceding_event_within_its_time() {
        let precedent = Precedent { tracker: 1, within: Duration::from_days(7) };
        let webinars = days(&[10, 30]);
        // Day 10 itself (same instant) and day 17 (exactly 7 days) follow the webinar of day 10;
        // day 18 is too late; day 5 comes before; day 31 follows the webinar of day 30.
        let pricing = days(&[5, 10, 17, 18, 31]);
        assert_eq!(precedent.followed(&webinars, &pricing), days(&[10, 17, 31]));
        assert_eq!(precedent.followed(&[], &pricing), Vec::new());
        assert_eq!(precedent.followed(&webinars, &[]), Vec::new());
    }
}
