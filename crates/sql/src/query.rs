//! The whole query: the input tables read as text and cast, the events read once (each
//! tracker's occurrences, the rules' columns over them, then one row per lead of what they add
//! up to) and joined to the leads, then each score in the engine's order as a few common table
//! expressions (its rules, groups, sum, value, tier), and the output columns of `leadscore
//! score`.
//!
//! Sums are written as the engine adds them: contributions in its order, from 0, one addition
//! after another; limits as `clamp`; normalisation as scaled contributions plus the offset; the
//! value rounded once to the score's precision, half away from zero. Doubles are written exactly,
//! so that the query's arithmetic is the engine's, operation for operation, and lands on the same
//! side of every tier boundary.

use leadscore_core::Model;
use leadscore_core::model::{Qualifier, Score};

use crate::SqlOptions;
use crate::as_of::AsOf;
use crate::columns;
use crate::condition::{Conditions, Record};
use crate::dialect::Dialect;
use crate::error::{Place, SqlError};
use crate::explain::Json;
use crate::rounding::round_to_precision;
use crate::rules::{self, RuleContext};
use crate::values;

/// The tables of the query, in order.
struct Query {
    ctes: Vec<Cte>,
}

struct Cte {
    name: String,
    sql: String,
    /// Whether the table may be folded into the one that reads it ([`Query::push_inline`]).
    inline: bool,
}

impl Query {
    /// A table computed once ([`Dialect::cte_keyword`]).
    fn push(&mut self, name: impl Into<String>, sql: impl Into<String>) {
        self.ctes.push(Cte { name: name.into(), sql: sql.into(), inline: false });
    }

    /// A table that the next one alone reads, where folding it into that one costs nothing to
    /// an optimiser that computes each common subexpression once, and writing it out (millions
    /// of events, once per such table) is what computing it once would cost.
    fn push_inline(&mut self, name: impl Into<String>, sql: impl Into<String>) {
        self.ctes.push(Cte { name: name.into(), sql: sql.into(), inline: true });
    }

    fn last(&self) -> String {
        self.ctes.last().map(|cte| cte.name.clone()).unwrap_or_default()
    }
}

pub(crate) fn render(model: &Model, text: &str, options: &SqlOptions<'_>) -> Result<String, SqlError> {
    let dialect = options.dialect;
    let leads = table_name(dialect, options.leads_table)?;
    let events = table_name(dialect, options.events_table)?;
    render_over(model, text, dialect, &leads, &events, &AsOf::At(options.as_of), options.explain)
}

/// The query over the leads and events relations as given (already quoted, or placed by a
/// template).
pub(crate) fn render_over(
    model: &Model,
    text: &str,
    dialect: Dialect,
    leads_table: &str,
    events_table: &str,
    as_of: &AsOf,
    explain: bool,
) -> Result<String, SqlError> {
    let ident = |name: &str| dialect.ident(name);
    let lead = ident("lead_id");
    let mut query = Query { ctes: Vec::new() };

    // Leads: the id and every field the model reads, trimmed, empty as NULL.
    let mut lead_columns = vec![format!("{} AS {lead}", values::cell(dialect, &lead))];
    for (slot, field) in model.lead_fields().iter().enumerate() {
        let mut value = values::cell(dialect, &ident(field));
        if field == "user_id" {
            // `leadscore score` gives a model reading `user_id` the lead's id when the lead has
            // none, as the service does.
            value = format!("COALESCE({value}, {})", values::cell(dialect, &lead));
        }
        lead_columns.push(format!("{value} AS {}", ident(&columns::lead_field(slot))));
    }
    query.push("lead_rows", format!("SELECT {} FROM {leads_table}", lead_columns.join(", ")));
    let time_slots = columns::time_field_slots(model);
    let leads = if time_slots.is_empty() {
        "lead_rows"
    } else {
        // Time fields as instants; a lead whose time field holds something else is left out,
        // as `leadscore score` skips its row.
        let mut forms = Vec::new();
        let mut parts = Vec::new();
        let mut instants = Vec::new();
        let mut valid = Vec::new();
        for &slot in &time_slots {
            let field = ident(&columns::lead_field(slot));
            let prefix = format!("{}_", columns::lead_field(slot));
            forms.push(values::instant_form(dialect, &field, &prefix, None));
            parts.extend(values::instant_parts(dialect, &field, &prefix));
            let at = ident(&columns::lead_time(slot));
            instants.push(format!("{} AS {at}", values::instant_ms(dialect, &prefix, None)));
            valid.push(format!("({field} IS NULL OR {at} IS NOT NULL)"));
        }
        query.push_inline("lead_time_forms", format!("SELECT l.*, {} FROM {} l", forms.join(", "), ident("lead_rows")));
        query.push("lead_time_parts", format!("SELECT l.*, {} FROM {} l", parts.join(", "), ident("lead_time_forms")));
        query.push("lead_times", format!("SELECT l.*, {} FROM {} l", instants.join(", "), ident("lead_time_parts")));
        query.push("lead_rows_read", format!("SELECT * FROM {} WHERE {}", ident("lead_times"), valid.join(" AND ")));
        "lead_rows_read"
    };

    // Rules and qualifiers first, so that the events are read only when one counts them.
    let mut rule_sql = Vec::new();
    let mut events = rules::EventColumns::default();
    for &score_index in model.evaluation_order() {
        let score = &model.scores()[score_index];
        let place = score_place(text, score);
        if score.predictive.is_some() {
            return Err(place.not_yet("predictive", "the predictive score"));
        }
        let mut rules_of_score = Vec::new();
        for (rule_index, rule) in score.rules.iter().enumerate() {
            let context = RuleContext {
                model,
                dialect,
                place: Place { text, span: rule.span.clone() },
                as_of: as_of.clone(),
                score: score_index,
                rule: rule_index,
            };
            let mut sql = rules::rule(&context, &rule.kind)?;
            events.extend(std::mem::take(&mut sql.events));
            rules_of_score.push(sql);
        }
        for (kind, qualifiers) in [("qualifier", &score.qualifiers), ("disqualifier", &score.disqualifiers)] {
            for (i, qualifier) in qualifiers.iter().enumerate() {
                if let Some(test) = &qualifier.event {
                    let mut counted = ident(&columns::tracker(test.tracker));
                    if let Some(within) = test.within {
                        counted = format!("{counted} AND {} >= {}", ident("at"), as_of.minus(dialect, within.0));
                    }
                    events
                        .per_lead
                        .push((columns::qualifier_count(score_index, kind, i), dialect.count_where(&counted)));
                }
            }
        }
        rule_sql.push((score_index, rules_of_score));
    }

    // Every lead with what its events add up to.
    let mut base_columns = vec!["l.*".to_string()];
    let mut joins = String::new();
    if !events.per_lead.is_empty() {
        push_events(model, dialect, events_table, as_of, text, &events, &mut query)?;
        let table = ident("event_rules");
        base_columns.extend(events.per_lead.iter().map(|(name, _)| format!("{table}.{}", ident(name))));
        joins.push_str(&format!(" LEFT JOIN {table} ON {table}.{lead} = l.{lead}"));
    }
    query.push(
        "lead_base",
        format!("SELECT {} FROM {} l{joins} WHERE l.{lead} IS NOT NULL", base_columns.join(", "), ident(leads)),
    );

    for (score_index, rules_of_score) in rule_sql {
        push_score(model, dialect, text, score_index, &rules_of_score, explain, &mut query)?;
    }

    let mut output = vec![lead.clone()];
    for (score_index, score) in model.scores().iter().enumerate() {
        output.push(format!("{} AS {}", ident(&columns::score_column(score_index, "value")), ident(&score.name)));
        output.push(format!(
            "{} AS {}",
            ident(&columns::score_column(score_index, "tier")),
            ident(&format!("{}_tier", score.name))
        ));
    }
    if explain {
        // One object: each score's name and its contributions.
        let json = Json { dialect };
        let members: Vec<(&str, String)> = model
            .scores()
            .iter()
            .enumerate()
            .map(|(k, score)| (score.name.as_str(), ident(&columns::score_column(k, "contributions"))))
            .collect();
        output.push(format!("{} AS {}", json.object(&members), ident("contributions")));
    }
    let ctes: Vec<String> = query
        .ctes
        .iter()
        .map(|cte| format!("{} AS {}(\n  {}\n)", ident(&cte.name), dialect.cte_keyword(cte.inline), cte.sql))
        .collect();
    Ok(format!(
        "WITH\n{}\nSELECT {} FROM {} ORDER BY {lead}\n",
        ctes.join(",\n"),
        output.join(", "),
        ident(&query.last())
    ))
}

/// The events: id, type and time cells, the time in milliseconds (rows without a type or whose
/// time is not a time are left out, as `leadscore score` skips them), up to the as-of instant;
/// then, over those, whether each is an occurrence of each tracker, the rules' columns over
/// the events (`events`), and one row per lead with their aggregates (`event_rules`).
fn push_events(
    model: &Model,
    dialect: Dialect,
    events_table: &str,
    as_of: &AsOf,
    text: &str,
    events: &rules::EventColumns,
    query: &mut Query,
) -> Result<(), SqlError> {
    let ident = |name: &str| dialect.ident(name);
    let lead = ident("lead_id");
    // The type as the index of one the trackers keep, where each keeps a list of types; else as
    // a cell (some tracker keeps every type).
    let type_index = event_type_index(model, dialect);
    let event_type = match &type_index {
        Some(index) => index.expression.clone(),
        None => values::cell(dialect, &ident("type")),
    };
    let mut cells =
        vec![format!("{} AS {lead}", values::cell(dialect, &lead)), format!("{event_type} AS {}", ident("event_type"))];
    // Where the dialect reads the commonest spellings of a time itself, it reads the column as
    // it is (such a time has nothing to trim), and only the other times are trimmed as cells.
    // The reading is written twice; DuckDB, the dialect that has one, computes it once.
    let (time_text, time_cell) = (ident("time_text"), values::cell(dialect, &ident("ts")));
    let raw_time = format!("CAST({} AS {})", ident("ts"), dialect.text_type());
    let fast = match values::instant_fast(dialect, &raw_time) {
        Some(fast) => {
            cells.push(format!("{fast} AS {}", ident("time_fast")));
            cells.push(format!("(CASE WHEN {fast} IS NULL THEN {time_cell} END) AS {time_text}"));
            Some(ident("time_fast"))
        }
        None => {
            cells.push(format!("{time_cell} AS {time_text}"));
            None
        }
    };
    let mut properties = Vec::new();
    for (slot, property) in model.event_properties().iter().enumerate() {
        let column = ident(&columns::event_property(slot));
        cells.push(format!("{} AS {column}", values::cell(dialect, &ident(property))));
        properties.push(column);
    }
    query.push_inline("event_cells", format!("SELECT {} FROM {events_table}", cells.join(", ")));
    let form = values::instant_form(dialect, &time_text, "time_", fast.as_deref());
    query.push_inline("event_forms", format!("SELECT e.*, {form} FROM {} e", ident(&query.last())));
    let parts = values::instant_parts(dialect, &time_text, "time_");
    // The parts of a time are read many times by its instant: PostgreSQL computes them once in a
    // table of their own. DuckDB computes each once in the projection that reads them, and
    // keeps the events' rows (lead, type, instant, properties) instead: writing out the fifteen
    // columns of cells and parts of 20,000,000 events took it longer.
    query.push_inline("event_times", format!("SELECT e.*, {} FROM {} e", parts.join(", "), ident(&query.last())));
    let at = ident("at");
    let instant = values::instant_ms(dialect, "time_", fast.as_deref());
    let mut kept = vec![lead.clone(), ident("event_type"), format!("{instant} AS {at}")];
    kept.extend(properties);
    // Rows are left out after they are kept: DuckDB would push a condition on the lead down to
    // the table, and read every lead's cell twice (for the condition, then for the row).
    query.push("event_rows", format!("SELECT {} FROM {}", kept.join(", "), ident("event_times")));
    query.push_inline(
        "counted_events",
        format!(
            "SELECT * FROM {} WHERE {lead} IS NOT NULL AND {at} IS NOT NULL AND {at} <= {} AND {} IS NOT NULL",
            ident("event_rows"),
            as_of.sql(dialect),
            ident("event_type")
        ),
    );
    let mut trackers = vec![lead.clone(), at.clone()];
    for (tracker_index, tracker) in model.trackers().iter().enumerate() {
        let mut conditions = Vec::new();
        if let Some(types) = model.tracker_event_types(tracker_index) {
            let list: Vec<String> = match &type_index {
                Some(index) => types.iter().filter_map(|t| index.of(t)).map(|i| i.to_string()).collect(),
                None => types.iter().map(|t| dialect.text(t)).collect(),
            };
            conditions.push(if list.is_empty() {
                "FALSE".to_string()
            } else {
                format!("{} IN ({})", ident("event_type"), list.join(", "))
            });
        }
        if let Some(filter) = &tracker.filter {
            let place = Place { text, span: tracker_span(model, tracker_index).unwrap_or(0..text.len()) };
            let conditions_sql = Conditions { model, dialect, place: &place, record: Record::Event };
            conditions.push(conditions_sql.render(filter)?);
        }
        let occurs = if conditions.is_empty() { "TRUE".to_string() } else { format!("({})", conditions.join(" AND ")) };
        trackers.push(format!("{occurs} AS {}", ident(&columns::tracker(tracker_index))));
    }
    query.push_inline("event_trackers", format!("SELECT {} FROM {}", trackers.join(", "), ident("counted_events")));
    for (name, stage) in
        [("event_preceded", &events.preceded), ("event_members", &events.members), ("event_ranks", &events.ranks)]
    {
        if !stage.is_empty() {
            let added: Vec<String> = stage.iter().map(|(column, sql)| format!("{sql} AS {}", ident(column))).collect();
            let previous = query.last();
            let sql = format!("SELECT *, {} FROM {}", added.join(", "), ident(&previous));
            // Windows are computed once; the members are conditions over the trackers.
            if name == "event_members" { query.push_inline(name, sql) } else { query.push(name, sql) }
        }
    }
    let aggregates: Vec<String> =
        events.per_lead.iter().map(|(column, sql)| format!("{sql} AS {}", ident(column))).collect();
    let previous = query.last();
    query.push(
        "event_rules",
        format!("SELECT {lead}, {} FROM {} GROUP BY {lead}", aggregates.join(", "), ident(&previous)),
    );
    Ok(())
}

/// The event types the trackers keep, when each keeps a list of them, and the expression of an
/// event's type as the index of one of them in that list (NULL for any other type).
struct EventTypeIndex {
    types: Vec<String>,
    expression: String,
}

impl EventTypeIndex {
    fn of(&self, event_type: &str) -> Option<usize> {
        self.types.iter().position(|t| t == event_type)
    }
}

/// Trimming each event's type as a cell, then comparing it with each tracker's list of types, was
/// 5% of the instructions DuckDB ran for the reference model (`bench/sql_vs_duckdb.py`). The
/// index is computed once per event, with integers to compare after; a type cell that is exactly
/// one of the model's types (nearly every cell) is that type without being trimmed. Types that a
/// trimmed cell cannot be (with white space around them) are left out: the engine's trimmed types
/// never equal them either.
fn event_type_index(model: &Model, dialect: Dialect) -> Option<EventTypeIndex> {
    let mut types: Vec<String> = Vec::new();
    for tracker in 0..model.trackers().len() {
        for event_type in model.tracker_event_types(tracker)? {
            if event_type.trim() == event_type && !event_type.is_empty() && !types.iter().any(|t| t == event_type) {
                types.push(event_type.to_string());
            }
        }
    }
    let index_of = |text: &str, otherwise: &str| {
        let mut case = format!("(CASE {text}");
        for (i, event_type) in types.iter().enumerate() {
            case.push_str(&format!(" WHEN {} THEN {i}", dialect.text(event_type)));
        }
        case.push_str(&format!("{otherwise} END)"));
        case
    };
    let expression = if types.is_empty() {
        "CAST(NULL AS INTEGER)".to_string()
    } else {
        let column = dialect.ident("type");
        let raw = format!("CAST({column} AS {})", dialect.text_type());
        let trimmed = index_of(&values::cell(dialect, &column), "");
        index_of(&raw, &format!(" ELSE {trimmed}"))
    };
    Some(EventTypeIndex { types, expression })
}

/// Where the rule or qualifier that owns a tracker is written (each has trackers of its own).
fn tracker_span(model: &Model, tracker_index: usize) -> Option<std::ops::Range<usize>> {
    use leadscore_core::rules::RuleKind;
    for score in model.scores() {
        for rule in &score.rules {
            let owns = match &rule.kind {
                RuleKind::Event(event) => {
                    event.tracker == tracker_index || event.after.as_ref().is_some_and(|p| p.tracker == tracker_index)
                }
                RuleKind::Inactivity(inactivity) => inactivity.tracker == tracker_index,
                RuleKind::Attribute(_) | RuleKind::Cases(_) => false,
            };
            if owns {
                return Some(rule.span.clone());
            }
        }
        for qualifier in score.qualifiers.iter().chain(&score.disqualifiers) {
            if qualifier.event.as_ref().is_some_and(|e| e.tracker == tracker_index) {
                return Some(qualifier.span.clone());
            }
        }
    }
    None
}

/// Where a score is written: its `[scores.NAME]` table, found in the text.
fn score_place<'t>(text: &'t str, score: &Score) -> Place<'t> {
    let header = format!("scores.{}", score.name);
    let start = text.find(&header).unwrap_or(0);
    let end = text[start..].find("\n[scores.").map_or(text.len(), |i| start + 1 + i);
    Place { text, span: start..end }
}

/// One score's tables: its rules, groups, sum, value and tier.
fn push_score(
    model: &Model,
    dialect: Dialect,
    text: &str,
    k: usize,
    rules_of_score: &[rules::RuleSql],
    explain: bool,
    query: &mut Query,
) -> Result<(), SqlError> {
    let score = &model.scores()[k];
    let ident = |name: &str| dialect.ident(name);
    let column = |what: &str| ident(&columns::score_column(k, what));
    let place = score_place(text, score);
    let conditions = Conditions { model, dialect, place: &place, record: Record::Lead };
    let double = |value: f64| dialect.double(value);

    // Rules, and whether the score applies to the lead at all.
    let applicable = match &score.applies_to {
        Some(condition) => conditions.render(condition)?,
        None => "TRUE".into(),
    };
    let mut rule_columns = vec![format!("{applicable} AS {}", column("applicable"))];
    let rules_counted = if score.segments.is_empty() { "TRUE" } else { "FALSE" };
    rule_columns.push(format!("({} AND {rules_counted}) AS {}", applicable, column("rules_counted")));
    for (i, sql) in rules_of_score.iter().enumerate() {
        rule_columns.push(format!("{} AS {}", sql.applied, ident(&columns::rule_column(k, i, "applied"))));
        rule_columns.push(format!("{} AS {}", sql.points, ident(&columns::rule_column(k, i, "points"))));
    }
    let previous = query.last();
    query.push(format!("score_{k}_rules"), format!("SELECT *, {} FROM {}", rule_columns.join(", "), ident(&previous)));

    let term = |i: usize| {
        format!(
            "(CASE WHEN {} THEN {} ELSE {} END)",
            ident(&columns::rule_column(k, i, "applied")),
            ident(&columns::rule_column(k, i, "points")),
            double(0.0)
        )
    };
    let fold = |terms: &[String]| {
        let mut sum = format!("({}", double(0.0));
        for term in terms {
            sum.push_str(" + ");
            sum.push_str(term);
        }
        sum.push(')');
        sum
    };
    let clamp = |value: &str, min: Option<f64>, max: Option<f64>| {
        let value = min.map_or(value.to_string(), |min| format!("GREATEST({value}, {})", double(min)));
        max.map_or(value.clone(), |max| format!("LEAST({value}, {})", double(max)))
    };

    if !score.segments.is_empty() {
        // The score of the first segment the lead matches: its value, and its tier when this
        // score has no tiers of its own.
        let whens: Vec<String> = score.segments.iter().map(|s| conditions.render(&s.when)).collect::<Result<_, _>>()?;
        let mut value = String::from("(CASE");
        let mut tier = String::from("(CASE");
        for (segment, when) in score.segments.iter().zip(&whens) {
            let routed = |what: &str| ident(&columns::score_column(segment.score, what));
            value.push_str(&format!(" WHEN {when} THEN {}", routed("value")));
            tier.push_str(&format!(" WHEN {when} THEN {}", routed("tier")));
        }
        value.push_str(&format!(" ELSE {} END)", double(0.0)));
        tier.push_str(" END)");
        let matched = format!("({})", whens.join(" OR "));
        let previous = query.last();
        query.push(
            format!("score_{k}_value"),
            format!(
                "SELECT *, (CASE WHEN {applicable} AND {matched} THEN {value} ELSE {} END) AS {}, ({applicable} AND {matched}) AS {} FROM {}",
                double(0.0),
                column("value"),
                column("scored"),
                ident(&previous)
            ),
        );
        let tier_sql = if score.tiers.is_empty() {
            format!("(CASE WHEN {} THEN {tier} ELSE {} END)", column("scored"), dialect.null_text())
        } else {
            tier_expression(model, dialect, text, k, score, &column("scored"))?
        };
        let previous = query.last();
        query.push(
            format!("score_{k}_tier"),
            format!("SELECT *, {tier_sql} AS {} FROM {}", column("tier"), ident(&previous)),
        );
        if explain {
            let json = Json { dialect };
            let mut routed_name = String::from("(CASE");
            for (segment, when) in score.segments.iter().zip(&whens) {
                routed_name
                    .push_str(&format!(" WHEN {when} THEN {}", json.string(&model.scores()[segment.score].name)));
            }
            routed_name.push_str(" END)");
            let routed = json.array(&[json.object(&[
                ("kind", json.string("segment")),
                ("score", routed_name),
                ("points", json.points(&column("value"))),
            ])]);
            push_contributions(dialect, k, &column("scored"), &routed, query);
        }
        return Ok(());
    }

    // Groups: each group's rules added up, then limited.
    let mut terms: Vec<String> = (0..score.rules.len()).filter(|&i| score.rules[i].group.is_none()).map(term).collect();
    let mut group_columns = Vec::new();
    for (g, group) in score.groups.iter().enumerate() {
        let grouped: Vec<String> =
            (0..score.rules.len()).filter(|&i| score.rules[i].group == Some(g)).map(term).collect();
        terms.extend(grouped.iter().cloned());
        if group.min.is_some() || group.max.is_some() {
            let total = column(&format!("group_{g}"));
            group_columns.push(format!("{} AS {total}", fold(&grouped)));
            terms.push(format!("({} - {total})", clamp(&total, group.min, group.max)));
        }
    }
    if !group_columns.is_empty() {
        let previous = query.last();
        query.push(
            format!("score_{k}_groups"),
            format!("SELECT *, {} FROM {}", group_columns.join(", "), ident(&previous)),
        );
    }
    for &(component, weight) in &score.components {
        terms.push(format!("({} * {})", double(weight), ident(&columns::score_column(component, "value"))));
    }
    let previous = query.last();
    query.push(
        format!("score_{k}_sum"),
        format!("SELECT *, {} AS {} FROM {}", fold(&terms), column("sum"), ident(&previous)),
    );

    // The limits, normalisation and the one rounding.
    let sum = column("sum");
    let limited = clamp(&sum, score.min, score.max);
    let total = match (score.normalize, score.min, score.max) {
        (true, Some(min), Some(max)) => {
            let scale = 100.0 / (max - min);
            let mut scaled: Vec<String> = terms.iter().map(|t| format!("({t} * {})", double(scale))).collect();
            scaled.push(format!("(({limited} - {sum}) * {})", double(scale)));
            let scaled_sum = fold(&scaled);
            format!("({scaled_sum} + ((({limited} - {}) * {}) - {scaled_sum}))", double(min), double(scale))
        }
        _ => format!("({sum} + ({limited} - {sum}))"),
    };
    let previous = query.last();
    query.push(
        format!("score_{k}_total"),
        format!("SELECT *, {total} AS {} FROM {}", column("total"), ident(&previous)),
    );
    let rounded = round_to_precision(dialect, &column("total"), score.precision);
    let previous = query.last();
    query.push(
        format!("score_{k}_value"),
        format!(
            "SELECT *, (CASE WHEN {applicable} THEN {rounded} ELSE {} END) AS {}, {applicable} AS {} FROM {}",
            double(0.0),
            column("value"),
            column("scored"),
            ident(&previous)
        ),
    );
    let tier_sql = tier_expression(model, dialect, text, k, score, &column("scored"))?;
    let previous = query.last();
    query.push(
        format!("score_{k}_tier"),
        format!("SELECT *, {tier_sql} AS {} FROM {}", column("tier"), ident(&previous)),
    );
    if explain {
        // The engine's contributions, in its order (`Model::evaluate_score`), each scaled when
        // the score is normalised.
        let json = Json { dialect };
        let scale = match (score.normalize, score.min, score.max) {
            (true, Some(min), Some(max)) => Some((min, 100.0 / (max - min))),
            _ => None,
        };
        let scaled = |points: String| match scale {
            Some((_, scale)) => format!("({points} * {})", double(scale)),
            None => points,
        };
        let rule = |i: usize, group: Option<&str>| {
            let mut members = vec![("kind", json.string("rule")), ("rule", json.string(&score.rules[i].name))];
            if let Some(group) = group {
                members.push(("group", json.string(group)));
            }
            // `occurrences` is written for an event rule that counted some.
            if let leadscore_core::rules::RuleKind::Event(_) = score.rules[i].kind {
                let count = ident(&columns::rule_column(k, i, "count"));
                members.push(("occurrences", format!("(CASE WHEN {count} > 0 THEN {} END)", json.number(&count))));
            }
            members.push(("points", json.points(&scaled(ident(&columns::rule_column(k, i, "points"))))));
            format!("(CASE WHEN {} THEN {} END)", ident(&columns::rule_column(k, i, "applied")), json.object(&members))
        };
        let mut elements: Vec<String> =
            (0..score.rules.len()).filter(|&i| score.rules[i].group.is_none()).map(|i| rule(i, None)).collect();
        for (g, group) in score.groups.iter().enumerate() {
            elements.extend(
                (0..score.rules.len()).filter(|&i| score.rules[i].group == Some(g)).map(|i| rule(i, Some(&group.name))),
            );
            if group.min.is_some() || group.max.is_some() {
                let total = column(&format!("group_{g}"));
                let limited = clamp(&total, group.min, group.max);
                elements.push(format!(
                    "(CASE WHEN {limited} <> {total} THEN {} END)",
                    json.object(&[
                        ("kind", json.string("group_limit")),
                        ("group", json.string(&group.name)),
                        ("points", json.points(&scaled(format!("({limited} - {total})")))),
                    ])
                ));
            }
        }
        for &(component, weight) in &score.components {
            let value = ident(&columns::score_column(component, "value"));
            elements.push(json.object(&[
                ("kind", json.string("component")),
                ("score", json.string(&model.scores()[component].name)),
                ("weight", json.raw(&format!("{weight:?}"))),
                ("points", json.points(&scaled(format!("({} * {value})", double(weight))))),
            ]));
        }
        if score.min.is_some() || score.max.is_some() {
            elements.push(format!(
                "(CASE WHEN {limited} <> {sum} THEN {} END)",
                json.object(&[
                    ("kind", json.string("score_limit")),
                    ("points", json.points(&scaled(format!("({limited} - {sum})")))),
                ])
            ));
        }
        if let Some((min, scale)) = scale {
            let scaled_terms: Vec<String> = terms.iter().map(|t| format!("({t} * {})", double(scale))).collect();
            let mut all = scaled_terms;
            all.push(format!("(({limited} - {sum}) * {})", double(scale)));
            let offset = format!("((({limited} - {}) * {}) - {})", double(min), double(scale), fold(&all));
            elements.push(format!(
                "(CASE WHEN {offset} <> {} THEN {} END)",
                double(0.0),
                json.object(&[("kind", json.string("normalization")), ("points", json.points(&offset))])
            ));
        }
        push_contributions(dialect, k, &column("scored"), &json.array(&elements), query);
    }
    Ok(())
}

/// A score's contributions column: `contributions` (a JSON array) where the score `applies`
/// (its `scored` column), else the engine's one `not_applicable` contribution.
fn push_contributions(dialect: Dialect, k: usize, applies: &str, contributions: &str, query: &mut Query) {
    let json = Json { dialect };
    let not_applicable =
        json.array(&[json.object(&[("kind", json.string("not_applicable")), ("points", json.raw("0.0"))])]);
    let previous = query.last();
    query.push(
        format!("score_{k}_explained"),
        format!(
            "SELECT *, (CASE WHEN {applies} THEN {contributions} ELSE {not_applicable} END) AS {} FROM {}",
            dialect.ident(&columns::score_column(k, "contributions")),
            dialect.ident(&previous)
        ),
    );
}

/// The tier of a scored lead: a disqualifier's tier, else the tier its value reaches raised by
/// the qualifiers it meets; none for a lead the score does not apply to.
fn tier_expression(
    model: &Model,
    dialect: Dialect,
    text: &str,
    k: usize,
    score: &Score,
    scored: &str,
) -> Result<String, SqlError> {
    let value = dialect.ident(&columns::score_column(k, "value"));
    let double = |v: f64| dialect.double(v);
    let mut points_tier = String::from("(CASE");
    for (i, tier) in score.tiers.iter().enumerate().rev().filter(|(_, t)| !t.qualifier_only()) {
        let reached = tier.min().map_or("TRUE".to_string(), |min| format!("{value} >= {}", double(min)));
        let held = tier.max().map_or("TRUE".to_string(), |max| format!("{value} <= {}", double(max)));
        points_tier.push_str(&format!(" WHEN {reached} THEN (CASE WHEN {held} THEN {i} END)"));
    }
    points_tier.push_str(" END)");
    if !score.tiers.iter().any(|t| !t.qualifier_only()) {
        points_tier = "NULL".into();
    }
    let mut raised = vec![format!("COALESCE({points_tier}, -1)")];
    for (i, qualifier) in score.qualifiers.iter().enumerate() {
        let qualifies = qualifies(model, dialect, text, k, "qualifier", i, qualifier)?;
        raised.push(format!("(CASE WHEN {qualifies} THEN {} ELSE -1 END)", qualifier.tier));
    }
    let index = if raised.len() == 1 { raised.remove(0) } else { format!("GREATEST({})", raised.join(", ")) };
    let mut label = format!("(CASE {index}");
    for (i, tier) in score.tiers.iter().enumerate() {
        label.push_str(&format!(" WHEN {i} THEN {}", dialect.text(tier.label())));
    }
    label.push_str(" END)");
    if score.tiers.is_empty() {
        label = dialect.null_text();
    }
    let mut disqualified = Vec::new();
    for (i, disqualifier) in score.disqualifiers.iter().enumerate() {
        disqualified.push(qualifies(model, dialect, text, k, "disqualifier", i, disqualifier)?);
    }
    let tier = if disqualified.is_empty() {
        label
    } else {
        format!(
            "(CASE WHEN {} THEN {} ELSE {label} END)",
            disqualified.join(" OR "),
            dialect.text(&score.disqualified_tier)
        )
    };
    Ok(format!("(CASE WHEN {scored} THEN {tier} ELSE {} END)", dialect.null_text()))
}

/// Whether a lead meets a qualifier: its lead condition, its count of recent events and the
/// rules of the score it names.
fn qualifies(
    model: &Model,
    dialect: Dialect,
    text: &str,
    k: usize,
    kind: &str,
    i: usize,
    qualifier: &Qualifier,
) -> Result<String, SqlError> {
    let place = Place { text, span: qualifier.span.clone() };
    let mut parts = Vec::new();
    if let Some(when) = &qualifier.when {
        parts.push(Conditions { model, dialect, place: &place, record: Record::Lead }.render(when)?);
    }
    if let Some(test) = &qualifier.event {
        let count = dialect.ident(&columns::qualifier_count(k, kind, i));
        parts.push(format!("COALESCE({count}, 0) >= {}", test.min_count));
    }
    for &rule in &qualifier.rules {
        parts.push(dialect.ident(&columns::rule_column(k, rule, "applied")));
    }
    Ok(if parts.is_empty() { "TRUE".into() } else { format!("({})", parts.join(" AND ")) })
}

/// A table name as the dialect quotes it: `NAME` or `SCHEMA.NAME` (each part quoted).
fn table_name(dialect: Dialect, name: &str) -> Result<String, SqlError> {
    let parts: Vec<&str> = name.split('.').collect();
    let valid =
        |part: &&str| !part.is_empty() && part.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '$');
    if parts.is_empty() || parts.len() > 3 || !parts.iter().all(valid) {
        return Err(SqlError::TableName(name.to_string()));
    }
    Ok(parts.iter().map(|p| dialect.ident(p)).collect::<Vec<_>>().join("."))
}
