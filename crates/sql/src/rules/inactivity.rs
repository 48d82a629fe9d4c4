//! Inactivity rules (`inactive_for`): points when the lead's tracker holds no occurrence in the
//! last `after`, strictly (exactly `after` ago is not yet inactive), counted from the lead's
//! creation time (`[lead] created_at`, if not after the as-of instant) when it has none.

use leadscore_core::rules::inactivity::InactivityRule;

use crate::columns;
use crate::error::SqlError;
use crate::rules::context::{EventColumns, RuleContext, RuleSql};

pub(crate) fn inactivity(context: &RuleContext<'_, '_>, rule: &InactivityRule) -> Result<RuleSql, SqlError> {
    let dialect = context.dialect;
    let last = columns::rule_column(context.score, context.rule, "last");
    let mut events = EventColumns::default();
    events.per_lead.push((
        last.clone(),
        dialect.aggregate_where("MAX", &dialect.ident("at"), &dialect.ident(&columns::tracker(rule.tracker))),
    ));
    let mut last = dialect.ident(&last);
    if let Some(slot) = context.model.created_at_slot() {
        // Without occurrences, the lead's creation time, if it is not after the as-of instant.
        let created = dialect.ident(&columns::lead_time(slot));
        last = format!("COALESCE({last}, (CASE WHEN {created} <= {} THEN {created} END))", context.as_of.sql(dialect));
    }
    let inactive =
        format!("({last} IS NULL OR {} - {last} > {})", context.as_of.sql(dialect), dialect.bigint(rule.after.0));
    let applied = match &rule.lead_condition {
        Some(when) => format!("({} AND {inactive})", context.lead_conditions().render(when)?),
        None => inactive,
    };
    Ok(RuleSql { events, applied, points: dialect.double(rule.points) })
}
