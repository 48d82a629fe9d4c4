//! Event rules (`event`) over a tracker's occurrences up to the as-of instant: those in the
//! `window` (its start included), after a preceding event for a sequence (`after`: at most
//! `within` before, the same instant included), the `max_count` most recent (and no more than a
//! progressive schedule has steps), each earning its points, its step or, for `bands`, the
//! points of the band their count falls in, shrunk by the `decay` of its age at the as-of
//! instant, with the engine's formulas (`Decay::factor`).

use leadscore_core::rules::event::{Decay, EventPoints, EventRule};

use crate::columns;
use crate::dialect::Dialect;
use crate::error::SqlError;
use crate::rules::context::{EventColumns, RuleContext, RuleSql};

pub(crate) fn event(context: &RuleContext<'_, '_>, rule: &EventRule) -> Result<RuleSql, SqlError> {
    let dialect = context.dialect;
    let ident = |name: &str| dialect.ident(name);
    let (lead, at) = (ident("lead_id"), ident("at"));
    let as_of = context.as_of.sql(dialect);
    let (score, rule_index) = (context.score, context.rule);
    let column = |what: &str| columns::rule_column(score, rule_index, what);
    let mut events = EventColumns::default();

    // The events the rule counts: its tracker's, in the window, after a preceding event.
    let mut member = vec![ident(&columns::tracker(rule.tracker))];
    if let Some(window) = rule.window {
        member.push(format!("{at} >= {}", context.as_of.minus(dialect, window.0)));
    }
    if let Some(precedent) = &rule.after {
        // The latest occurrence of the preceding event up to this one (the same instant
        // included) is within `within` before it exactly when some occurrence is.
        let preceded = column("preceded");
        events.preceded.push((
            preceded.clone(),
            format!(
                "MAX(CASE WHEN {} THEN {at} END) OVER (PARTITION BY {lead} ORDER BY {at} RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)",
                ident(&columns::tracker(precedent.tracker))
            ),
        ));
        member.push(format!("COALESCE({} >= {at} - {}, FALSE)", ident(&preceded), dialect.bigint(precedent.within.0)));
    }
    let is_member = ident(&column("member"));
    events.members.push((column("member"), format!("({})", member.join(" AND "))));

    // The most recent `limit` of them: a list of their times where the dialect has an
    // aggregate for it, else their rank from the most recent.
    let limit = match (&rule.points, rule.max_count) {
        (EventPoints::Progressive(steps), Some(max_count)) => Some(max_count.min(steps.len())),
        (EventPoints::Progressive(steps), None) => Some(steps.len()),
        (_, max_count) => max_count,
    };
    let count = ident(&column("count"));
    if let Some(sums) = sums_by_count(rule, limit) {
        // Without decay, the points depend on the count alone: the query counts, and reads the
        // sum the engine adds up for that count from a table of constants.
        let counted = format!("LEAST({}, {})", dialect.count_where(&is_member), sums.len());
        let mut sum = format!("(CASE {counted}");
        for (k, points) in sums.iter().enumerate() {
            sum.push_str(&format!(" WHEN {} THEN {}", k + 1, dialect.double(*points)));
        }
        sum.push_str(" END)");
        events.per_lead.push((column("count"), counted));
        events.per_lead.push((column("sum"), sum));
        let applied = when_the_lead_matches(context, rule, format!("COALESCE({count} > 0, FALSE)"))?;
        return Ok(RuleSql { events, applied, points: ident(&column("sum")) });
    }
    let greatest = limit.and_then(|n| dialect.greatest(&at, n, &is_member));
    let (recency, total) = (ident(&column("recency")), ident(&column("total")));
    let kept = match limit {
        Some(n) if greatest.is_none() => {
            events.ranks.push((
                column("recency"),
                format!("ROW_NUMBER() OVER (PARTITION BY {lead}, {is_member} ORDER BY {at} DESC)"),
            ));
            format!("({is_member} AND {recency} <= {n})")
        }
        _ => is_member.clone(),
    };
    if let (EventPoints::Progressive(_), None) = (&rule.points, &greatest) {
        events.ranks.push((column("total"), format!("COUNT(*) OVER (PARTITION BY {lead}, {is_member})")));
    }

    // Points shrunk by the decay of the age of an occurrence at `occurred`.
    let decayed = |points: String, occurred: &str| match &rule.decay {
        Some(decay) => format!("{points} * {}", decay_factor(dialect, decay, &format!("({as_of} - {occurred})"))),
        None => points,
    };
    events.per_lead.push((
        column("count"),
        match &greatest {
            Some(greatest) => greatest.count(),
            None => dialect.count_where(&kept),
        },
    ));
    let counted = format!("COALESCE({count} > 0, FALSE)");
    let (points, applied) = match &rule.points {
        EventPoints::Each(points) => {
            let points = dialect.double(*points);
            events.per_lead.push((
                column("sum"),
                match &greatest {
                    Some(greatest) => greatest.sum(|occurred, _| decayed(points.clone(), occurred)),
                    None => dialect.aggregate_where("SUM", &decayed(points, &at), &kept),
                },
            ));
            (ident(&column("sum")), counted)
        }
        EventPoints::Progressive(steps) => {
            // The k counted occurrences earn the first k steps, the oldest the first.
            let step = |oldest_first: String, first: usize| {
                let mut step = format!("(CASE {oldest_first}");
                for (i, points) in steps.iter().enumerate() {
                    step.push_str(&format!(" WHEN {} THEN {}", i + first, dialect.double(*points)));
                }
                step.push_str(" END)");
                step
            };
            let sum = match &greatest {
                Some(greatest) => greatest.sum(|occurred, place| decayed(step(place.to_string(), 1), occurred)),
                None => {
                    let counted_occurrences = format!("LEAST({total}, {})", limit.unwrap_or(steps.len()));
                    let step = step(format!("{counted_occurrences} - {recency}"), 0);
                    dialect.aggregate_where("SUM", &decayed(step, &at), &kept)
                }
            };
            events.per_lead.push((column("sum"), sum));
            (ident(&column("sum")), counted)
        }
        EventPoints::Bands(bands) => {
            // The band of the lead's count of occurrences (at least one).
            let mut band_points = String::from("(CASE");
            let mut in_band = Vec::new();
            for band in bands {
                let within = match band.max {
                    Some(max) => format!("{count} BETWEEN {} AND {max}", band.min),
                    None => format!("{count} >= {}", band.min),
                };
                band_points.push_str(&format!(" WHEN {within} THEN {}", dialect.double(band.points)));
                in_band.push(within);
            }
            band_points.push_str(&format!(" ELSE {} END)", dialect.double(0.0)));
            let applied = if in_band.is_empty() {
                "FALSE".into()
            } else {
                format!("({counted} AND COALESCE({}, FALSE))", in_band.join(" OR "))
            };
            (band_points, applied)
        }
    };
    let applied = when_the_lead_matches(context, rule, applied)?;
    Ok(RuleSql { events, applied, points })
}

/// `applied`, and the rule's condition on the lead (`when`) if it has one.
fn when_the_lead_matches(context: &RuleContext<'_, '_>, rule: &EventRule, applied: String) -> Result<String, SqlError> {
    Ok(match &rule.lead_condition {
        Some(when) => format!("({} AND {applied})", context.lead_conditions().render(when)?),
        None => applied,
    })
}

/// The most counted occurrences whose sums [`sums_by_count`] writes out as constants.
const COUNTED_SUMS_AT_MOST: usize = 100;

/// For a rule whose occurrences earn points that do not depend on their times (no decay;
/// the same points each, or a progressive schedule) and that counts at most `limit` of them
/// (no more than [`COUNTED_SUMS_AT_MOST`]): the rule's points for 1, 2, ... `limit` counted
/// occurrences, added up as `EventRule::outcome_between` adds them, newest first. The query
/// then needs each lead's count alone, not the times of its most recent occurrences (a list per
/// lead and rule, or a window over every event).
fn sums_by_count(rule: &EventRule, limit: Option<usize>) -> Option<Vec<f64>> {
    let limit = limit.filter(|n| (1..=COUNTED_SUMS_AT_MOST).contains(n))?;
    if rule.decay.is_some() {
        return None;
    }
    // The engine multiplies each occurrence's points by its decay's factor, 1.0 without one.
    let sums = match &rule.points {
        EventPoints::Each(points) => (1..=limit).map(|k| (0..k).map(|_| points * 1.0).sum()).collect(),
        EventPoints::Progressive(steps) => {
            (1..=limit).map(|k| steps[..k].iter().rev().map(|step| step * 1.0).sum()).collect()
        }
        EventPoints::Bands(_) => return None,
    };
    Some(sums)
}

/// The share of its points an occurrence of age `age` (milliseconds, never negative) keeps:
/// `Decay::factor`, operation for operation.
pub(crate) fn decay_factor(dialect: Dialect, decay: &Decay, age: &str) -> String {
    match decay {
        Decay::HalfLife { half_life_days } => dialect.half_to_the(&format!(
            "(({} / {}) / {})",
            dialect.to_double(age),
            dialect.double(86_400_000.0),
            dialect.double(*half_life_days)
        )),
        Decay::Linear { percent, every } => format!(
            "GREATEST({} - {} / {} * {}, {})",
            dialect.double(1.0),
            dialect.double(*percent),
            dialect.double(100.0),
            dialect.to_double(&dialect.int_div(age, &every.0.to_string())),
            dialect.double(0.0)
        ),
        Decay::Steps(steps) => {
            let mut factor = String::from("(CASE");
            for (older_than, share) in steps.iter().rev() {
                factor.push_str(&format!(" WHEN {age} > {} THEN {}", older_than.0, dialect.double(*share)));
            }
            factor.push_str(&format!(" ELSE {} END)", dialect.double(1.0)));
            factor
        }
    }
}

#[cfg(test)]
mod tests {
    use leadscore_core::rules::event::{Band, Decay, EventPoints, EventRule};

    use super::sums_by_count;

    fn rule(points: EventPoints, decay: Option<Decay>) -> EventRule {
        EventRule { tracker: 0, window: None, max_count: None, points, decay, lead_condition: None, after: None }
    }

    #[test]
    fn sums_by_count_are_added_one_occurrence_at_a_time_newest_first() {
        // Eight times 0.1 added one by one is not 8 * 0.1 (0.8).
        let each = sums_by_count(&rule(EventPoints::Each(0.1), None), Some(8)).unwrap();
        assert_eq!(each.len(), 8);
        assert_eq!(each[2], 0.1 + 0.1 + 0.1);
        assert_eq!(each[7], 0.7999999999999999);
        // The newest of k occurrences earns the k-th step and is added first.
        let steps = vec![0.1, 0.2, 1e16, -1e16];
        let progressive = sums_by_count(&rule(EventPoints::Progressive(steps), None), Some(4)).unwrap();
        assert_eq!(progressive[..3], [0.1, 0.2 + 0.1, 1e16 + 0.2 + 0.1]);
        assert_eq!(progressive[3], -1e16 + 1e16 + 0.2 + 0.1);
    }

    #[test]
    fn rules_whose_points_depend_on_times_or_on_bands_are_not_summed_by_count() {
        let decay = || Some(Decay::HalfLife { half_life_days: 30.0 });
        assert_eq!(sums_by_count(&rule(EventPoints::Each(1.0), decay()), Some(3)), None);
        let bands = EventPoints::Bands(vec![Band { min: 1, max: None, points: 5.0 }]);
        assert_eq!(sums_by_count(&rule(bands, None), Some(3)), None);
        // Without a limit, or with one beyond the constants written out, the query counts.
        assert_eq!(sums_by_count(&rule(EventPoints::Each(1.0), None), None), None);
        assert_eq!(sums_by_count(&rule(EventPoints::Each(1.0), None), Some(101)), None);
        assert_eq!(sums_by_count(&rule(EventPoints::Each(1.0), None), Some(100)).map(|s| s.len()), Some(100));
    }
}
