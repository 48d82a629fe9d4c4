//! Attribute rules (`when`) and case rules (`cases`: the first case that matches), on the lead's
//! columns alone.

use leadscore_core::rules::attribute::{AttributeRule, CaseRule};

use crate::error::SqlError;
use crate::rules::context::{EventColumns, RuleContext, RuleSql};

pub(crate) fn attribute(context: &RuleContext<'_, '_>, rule: &AttributeRule) -> Result<RuleSql, SqlError> {
    Ok(RuleSql {
        events: EventColumns::default(),
        applied: context.lead_conditions().render(&rule.when)?,
        points: context.dialect.double(rule.points),
    })
}

pub(crate) fn cases(context: &RuleContext<'_, '_>, rule: &CaseRule) -> Result<RuleSql, SqlError> {
    let conditions = context.lead_conditions();
    let mut matched = Vec::new();
    let mut points = String::from("(CASE");
    for (when, case_points) in &rule.cases {
        let when = conditions.render(when)?;
        points.push_str(&format!(" WHEN {when} THEN {}", context.dialect.double(*case_points)));
        matched.push(when);
    }
    points.push_str(&format!(" ELSE {} END)", context.dialect.double(0.0)));
    let applied = if matched.is_empty() { "FALSE".to_string() } else { format!("({})", matched.join(" OR ")) };
    Ok(RuleSql { events: EventColumns::default(), applied, points })
}
