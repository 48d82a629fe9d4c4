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
use crate::rules::context::{RuleContext, RuleSql};

pub(crate) fn event(context: &RuleContext<'_, '_>, rule: &EventRule) -> Result<RuleSql, SqlError> {
    let dialect = context.dialect;
    let ident = |name: &str| dialect.ident(name);
    let (lead, at) = (ident("lead_id"), ident("at"));
    let as_of = dialect.bigint(context.as_of.0);

    let mut conditions = Vec::new();
    if let Some(window) = rule.window {
        conditions.push(format!("o.{at} >= {}", dialect.bigint(context.as_of.saturating_sub(window).0)));
    }
    if let Some(precedent) = &rule.after {
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM {} p WHERE p.{lead} = o.{lead} AND p.{at} >= o.{at} - {} AND p.{at} <= o.{at})",
            ident(&columns::tracker(precedent.tracker)),
            dialect.bigint(precedent.within.0)
        ));
    }
    let limit = match (&rule.points, rule.max_count) {
        (EventPoints::Progressive(steps), Some(max_count)) => Some(max_count.min(steps.len())),
        (EventPoints::Progressive(steps), None) => Some(steps.len()),
        (_, max_count) => max_count,
    };
    let where_clause =
        if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
    let counted = format!(
        "SELECT o.{lead}, o.{at}, ROW_NUMBER() OVER (PARTITION BY o.{lead} ORDER BY o.{at} DESC) AS {recency}, \
         COUNT(*) OVER (PARTITION BY o.{lead}) AS {total} FROM {tracker} o{where_clause}",
        recency = ident("recency"),
        total = ident("total"),
        tracker = ident(&columns::tracker(rule.tracker)),
    );
    let limit_clause = limit.map_or(String::new(), |n| format!(" WHERE c.{} <= {n}", ident("recency")));

    let factor = rule.decay.as_ref().map(|decay| decay_factor(dialect, decay, &format!("({as_of} - c.{at})")));
    let decayed = |points: String| match &factor {
        Some(factor) => format!("{points} * {factor}"),
        None => points,
    };
    let count = "COUNT(*)";
    let (points, applied) = match &rule.points {
        EventPoints::Each(points) => (format!("SUM({})", decayed(dialect.double(*points))), "TRUE".to_string()),
        EventPoints::Progressive(steps) => {
            // The k counted occurrences earn the first k steps, the oldest the first.
            let counted = format!("LEAST(c.{}, {})", ident("total"), limit.unwrap_or(steps.len()));
            let mut step = format!("(CASE {counted} - c.{}", ident("recency"));
            for (i, points) in steps.iter().enumerate() {
                step.push_str(&format!(" WHEN {i} THEN {}", dialect.double(*points)));
            }
            step.push_str(" END)");
            (format!("SUM({})", decayed(step)), "TRUE".to_string())
        }
        EventPoints::Bands(bands) => {
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
            let applied = if in_band.is_empty() { "FALSE".into() } else { format!("({})", in_band.join(" OR ")) };
            (band_points, applied)
        }
    };
    let (score, rule_index) = (context.score, context.rule);
    let column = |what: &str| columns::rule_column(score, rule_index, what);
    let query = format!(
        "SELECT c.{lead}, {applied} AS {applied_column}, {points} AS {points_column}, {count} AS {n_column} \
         FROM ({counted}) c{limit_clause} GROUP BY c.{lead}",
        applied_column = ident(&column("counted")),
        points_column = ident(&column("sum")),
        n_column = ident(&column("occurrences")),
    );
    let counted_column = ident(&column("counted"));
    let mut applied = format!("COALESCE({counted_column}, FALSE)");
    if let Some(when) = &rule.lead_condition {
        applied = format!("({} AND {applied})", context.lead_conditions().render(when)?);
    }
    Ok(RuleSql {
        tables: vec![(
            columns::rule_table(score, rule_index),
            query,
            vec![column("counted"), column("sum"), column("occurrences")],
        )],
        applied,
        points: ident(&column("sum")),
    })
}

/// The share of its points an occurrence of age `age` (milliseconds, never negative) keeps:
/// `Decay::factor`, operation for operation.
pub(crate) fn decay_factor(dialect: Dialect, decay: &Decay, age: &str) -> String {
    match decay {
        Decay::HalfLife { half_life_days } => format!(
            "POWER({}, ({} / {}) / {})",
            dialect.double(0.5),
            dialect.to_double(age),
            dialect.double(86_400_000.0),
            dialect.double(*half_life_days)
        ),
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
