//! What a model can reach: for each score the lowest and highest value a lead can get given the
//! rules' points, counts, caps, group limits and the score's own limits, and the tiers no lead
//! can reach.
//!
//! The bounds treat rules as independent (any combination of them may apply), so they are the
//! tightest range that needs no reasoning about conditions excluding each other. Decay only
//! shrinks points towards zero, so it never widens a range.

use serde::Serialize;

use crate::diagnostic::Diagnostic;
use crate::model::{Model, Score};
use crate::rules::RuleKind;
use crate::rules::attribute::{AttributeRule, CaseRule};
use crate::rules::event::EventPoints;
use crate::rules::inactivity::InactivityRule;

/// A closed range of values; infinite ends when nothing caps a rule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

impl Range {
    const ZERO: Range = Range { min: 0.0, max: 0.0 };

    /// The range of "0 or `points`" (a rule applies or not).
    fn zero_or(points: f64) -> Range {
        Range { min: points.min(0.0), max: points.max(0.0) }
    }

    /// The smallest range holding both.
    fn union(self, other: Range) -> Range {
        Range { min: self.min.min(other.min), max: self.max.max(other.max) }
    }

    fn add(self, other: Range) -> Range {
        Range { min: self.min + other.min, max: self.max + other.max }
    }

    fn scale(self, weight: f64) -> Range {
        if weight == 0.0 {
            return Range::ZERO;
        }
        let (a, b) = (self.min * weight, self.max * weight);
        Range { min: a.min(b), max: a.max(b) }
    }

    fn clamp(self, min: Option<f64>, max: Option<f64>) -> Range {
        let clamp = |v: f64| {
            let v = min.map_or(v, |m| v.max(m));
            max.map_or(v, |m| v.min(m))
        };
        Range { min: clamp(self.min), max: clamp(self.max) }
    }
}

/// The reachable range of one score and its tiers.
#[derive(Debug, Clone, Serialize)]
pub struct ScoreReport {
    pub score: String,
    /// The trained model a predictive score uses, as the model file names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predictive: Option<String>,
    pub range: Range,
    pub tiers: Vec<TierReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TierReport {
    pub label: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Without a `max`, the tier ends below the next tier's `min`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    /// Reachable by points, or given by a qualifier.
    pub reachable: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Reports the reachable range and tiers of every score, in the model's order.
pub fn report(model: &Model) -> Vec<ScoreReport> {
    let mut ranges = vec![Range::ZERO; model.scores.len()];
    for &i in &model.evaluation_order {
        ranges[i] = score_range(&model.scores[i], &ranges);
    }
    model
        .scores
        .iter()
        .zip(&ranges)
        .map(|(score, &range)| ScoreReport {
            score: score.name.clone(),
            predictive: score.predictive_reference().map(str::to_string),
            range,
            tiers: tier_reports(score, range),
        })
        .collect()
}

/// What `leadscore check` marks UNREACHABLE in [`report`], as warnings at the tiers in the
/// model's text, for those who see diagnostics rather than the report (the service's upload).
pub fn warnings(model: &Model) -> Vec<Diagnostic> {
    let mut warnings = Vec::new();
    for (report, score) in report(model).iter().zip(&model.scores) {
        for (tier, written) in report.tiers.iter().zip(&score.tiers).filter(|(tier, _)| !tier.reachable) {
            let why = tier.note.as_deref().unwrap_or("no lead can reach it");
            warnings.push(Diagnostic::warning(
                format!("score `{}`: tier `{}` is unreachable: {why}", report.score, tier.label),
                Some(written.span.clone()),
            ));
        }
    }
    warnings
}

/// What keeping events only `retention` long does to the model's rules, as warnings: a rule that
/// counts events forever (no `window`) loses points as the old events are deleted; a `window`
/// longer than the retention counts only what is kept; an inactivity longer than it may find no
/// event left to measure from. (Events older than the retention are deleted by the service; see
/// docs/api.md, "Retention".)
pub fn retention_warnings(model: &Model, retention: crate::Duration) -> Vec<Diagnostic> {
    let mut warnings = Vec::new();
    for score in &model.scores {
        for rule in &score.rules {
            let what = format!("score `{}`, rule `{}`", score.name, rule.name);
            let message = match &rule.kind {
                RuleKind::Event(event) => match event.window {
                    None => Some(format!(
                        "{what} counts events forever (no `window`), but events are kept {retention}: \
                         what it counted from older events (a negative signal too) is lost as they are deleted; give it a `window` of at most {retention}"
                    )),
                    Some(window) if window.0 > retention.0 => Some(format!(
                        "{what} counts a `window` of {window}, longer than the {retention} events are kept: \
                         it counts only the last {retention}"
                    )),
                    Some(_) => None,
                },
                RuleKind::Inactivity(InactivityRule { after, .. }) if after.0 > retention.0 => Some(format!(
                    "{what} waits {after} of inactivity, longer than the {retention} events are kept: \
                     once a lead's last event is deleted, the lead counts as inactive (or inactive since \
                     its `created_at`) before {after} have passed; make `after` at most {retention}"
                )),
                _ => None,
            };
            warnings.extend(message.map(|message| Diagnostic::warning(message, None)));
        }
    }
    warnings
}

fn score_range(score: &Score, done: &[Range]) -> Range {
    let range = points_range(score, done);
    // A lead the score does not apply to gets 0.
    if score.applies_to.is_some() { range.union(Range::ZERO) } else { range }
}

fn points_range(score: &Score, done: &[Range]) -> Range {
    if !score.segments.is_empty() {
        let routed = score.segments.iter().map(|s| done[s.score]).reduce(Range::union).unwrap_or(Range::ZERO);
        let always_routed = score.segments.iter().any(|s| matches!(s.when, crate::rules::condition::Condition::Always));
        return if always_routed { routed } else { routed.union(Range::ZERO) };
    }
    if score.predictive.is_some() {
        // A probability times 100.
        return Range { min: 0.0, max: 100.0 };
    }
    let mut total = Range::ZERO;
    for rule in score.rules.iter().filter(|r| r.group.is_none()) {
        total = total.add(rule_range(&rule.kind));
    }
    for (group_index, group) in score.groups.iter().enumerate() {
        let group_total = score
            .rules
            .iter()
            .filter(|r| r.group == Some(group_index))
            .fold(Range::ZERO, |acc, r| acc.add(rule_range(&r.kind)));
        total = total.add(group_total.clamp(group.min, group.max));
    }
    for &(component, weight) in &score.components {
        total = total.add(done[component].scale(weight));
    }
    let mut total = total.clamp(score.min, score.max);
    if score.normalize
        && let (Some(min), Some(max)) = (score.min, score.max)
    {
        total = Range { min: (total.min - min) * 100.0 / (max - min), max: (total.max - min) * 100.0 / (max - min) };
    }
    total
}

fn rule_range(kind: &RuleKind) -> Range {
    match kind {
        RuleKind::Attribute(AttributeRule { points, .. }) | RuleKind::Inactivity(InactivityRule { points, .. }) => {
            Range::zero_or(*points)
        }
        RuleKind::Cases(CaseRule { cases }) => {
            cases.iter().fold(Range::ZERO, |acc, (_, p)| Range { min: acc.min.min(*p), max: acc.max.max(*p) })
        }
        RuleKind::Event(rule) => match &rule.points {
            EventPoints::Each(points) => match rule.max_count {
                Some(n) => Range::zero_or(points * n as f64),
                None if *points > 0.0 => Range { min: 0.0, max: f64::INFINITY },
                None if *points < 0.0 => Range { min: f64::NEG_INFINITY, max: 0.0 },
                None => Range::ZERO,
            },
            EventPoints::Progressive(steps) => {
                let n = rule.max_count.map_or(steps.len(), |n| n.min(steps.len()));
                // The counted occurrences earn the first n steps; any may decay to nothing.
                let (neg, pos) = steps[..n]
                    .iter()
                    .fold((0.0, 0.0), |(neg, pos), s| if *s < 0.0 { (neg + s, pos) } else { (neg, pos + s) });
                Range { min: neg, max: pos }
            }
            EventPoints::Bands(bands) => bands
                .iter()
                .filter(|b| rule.max_count.is_none_or(|n| b.min <= n))
                .fold(Range::ZERO, |acc, b| Range { min: acc.min.min(b.points), max: acc.max.max(b.points) }),
        },
    }
}

fn tier_reports(score: &Score, range: Range) -> Vec<TierReport> {
    score
        .tiers
        .iter()
        .enumerate()
        .map(|(i, tier)| {
            let by_qualifier = score.qualifiers.iter().any(|q| q.tier == i);
            let below = match tier.max {
                Some(_) => None,
                None if tier.qualifier_only => None,
                None => score.tiers[i + 1..].iter().find(|t| !t.qualifier_only).and_then(|t| t.min),
            };
            let by_points = !tier.qualifier_only
                && tier.min.is_none_or(|min| min <= range.max)
                && tier.max.is_none_or(|max| max >= range.min)
                && below.is_none_or(|below| below > range.min);
            let note = match (by_points, by_qualifier) {
                (true, _) => None,
                (false, true) => Some("only through a qualifier".to_string()),
                (false, false) if tier.qualifier_only => Some("qualifier_only, but no qualifier gives it".to_string()),
                (false, false) => Some(format!(
                    "no lead can reach it: the score ranges from {} to {}",
                    crate::value::format_number(range.min),
                    crate::value::format_number(range.max)
                )),
            };
            TierReport {
                label: tier.label.clone(),
                min: tier.min,
                max: tier.max,
                below,
                reachable: by_points || by_qualifier,
                note,
            }
        })
        .collect()
}

#[cfg(test)]
mod retention_tests {
    use super::*;

    #[test]
    fn a_retention_shorter_than_a_window_or_an_inactivity_or_a_rule_counting_forever_is_warned_of() {
        let source = r#"
[scores.activity]
[[scores.activity.rules]]
name = "forever"
event = "visit"
points = 1
[[scores.activity.rules]]
name = "recent"
event = "visit"
window = "30d"
points = 1
[[scores.activity.rules]]
name = "quarter"
event = "visit"
window = "13w"
points = 1
[[scores.activity.rules]]
name = "asleep"
inactive_for = "120d"
points = -5
"#;
        let model = crate::compile(source).expect("a valid model").model;
        let warned = |days| -> Vec<String> {
            retention_warnings(&model, crate::Duration::from_days(days)).into_iter().map(|d| d.message).collect()
        };
        let at_60 = warned(60);
        assert_eq!(at_60.len(), 3, "{at_60:?}");
        assert!(at_60[0].contains("rule `forever` counts events forever"), "{}", at_60[0]);
        assert!(at_60[1].contains("rule `quarter` counts a `window` of 13w, longer than the 60d"), "{}", at_60[1]);
        assert!(at_60[2].contains("rule `asleep` waits 120d of inactivity"), "{}", at_60[2]);
        assert_eq!(warned(365).len(), 1, "only the rule that counts forever");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_tiers_are_warnings_where_the_tier_is_written() {
        let source = "[scores.fit]\ntiers = [{ label = \"cold\" }, { label = \"hot\", min = 10 }]\n\
                      [[scores.fit.rules]]\nname = \"tech\"\nwhen = { field = \"industry\", equals = \"Technology\" }\npoints = 5\n";
        let model = crate::compile(source).unwrap().model;
        let warnings = warnings(&model);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(
            warnings[0].message,
            "score `fit`: tier `hot` is unreachable: no lead can reach it: the score ranges from 0 to 5"
        );
        let span = warnings[0].span.clone().unwrap();
        assert_eq!(&source[span], "{ label = \"hot\", min = 10 }");
        assert_eq!(crate::diagnostic::line_column(source, warnings[0].span.clone().unwrap().start), (2, 30));
    }
}
