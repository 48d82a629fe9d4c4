//! PostgreSQL queries of the leads family (see [`crate::leads`] for SQLite's): identity (user
//! id, anonymous ids), attributes, lifecycle stage and the engine's state.
//!
//! # How it differs from SQLite
//! - **Lead ids** are reserved in blocks before an ingestion creates leads ([`reserve_ids`],
//!   `reserve_lead_ids` in the schema), since several instances create leads at once; SQLite's
//!   single writer takes the next id after the largest.
//! - **Writes that race another instance.** Two instances may create a lead for the same new
//!   user id at once, or give two leads one user id: the unique index refuses the second, which
//!   fails with [`StoreError::RolledBack`] (nothing of it was stored; sent again, it finds the
//!   lead the other created). Several leads and links are written in one statement each, in id
//!   and anonymous id order, so that two ingestions lock rows in the same order.
//! - **Text search** ([`list`]). SQLite keeps an FTS5 trigram table by triggers; here the lead
//!   row has a generated column, `search_text`, with the same text SQLite's triggers build (the
//!   e-mail, name or first and last names, and company, one per line: `lead_search_text` in the
//!   schema), searched with `ILIKE`. A GIN trigram index (`pg_trgm`) serves searches of three
//!   characters or more when the extension could be created; a managed server may refuse it, and
//!   then the schema goes without the index (searches read the workspace's leads, with the same
//!   answers). A generated column rather than a trigger: PostgreSQL keeps it for any writer,
//!   erasure and merges included, and a write that leaves the e-mail and attributes as they were
//!   costs nothing more. Case is folded by the database's character type (`LC_CTYPE`): a UTF-8
//!   locale folds every script as FTS5 does (Latin, Cyrillic, Greek...), a database created with
//!   the `C` locale folds ASCII only. SQLite's two ways of reading a search (sorting few matches,
//!   checking leads in score order for many) are one statement here: the planner chooses with its
//!   statistics.
//! - **Byte order of text.** Where SQLite orders text (anonymous ids), the order is by bytes as
//!   SQLite's (`COLLATE "C"`), whatever the database's collation.

use postgres::types::ToSql;

use crate::StoreError;
use crate::leads::*;
use crate::postgres::Tx;

const COLUMNS: &str = "id, workspace_id, user_id, email, attributes, created_at, updated_at, last_event_at, stage, state, \
     state_model_id, last_event_id";

/// [`COLUMNS`] of the table aliased `l`.
pub(crate) const COLUMNS_OF_L: &str = "l.id, l.workspace_id, l.user_id, l.email, l.attributes, l.created_at, \
     l.updated_at, l.last_event_at, l.stage, l.state, l.state_model_id, l.last_event_id";

/// A lead from a row of [`COLUMNS`] (in that order, from the first column).
pub(crate) fn from_row(row: &postgres::Row) -> Result<LeadRow, StoreError> {
    let attributes: String = row.try_get(4)?;
    Ok(LeadRow {
        id: row.try_get(0)?,
        workspace_id: row.try_get(1)?,
        user_id: row.try_get(2)?,
        email: row.try_get(3)?,
        attributes: serde_json::from_str(&attributes).unwrap_or_default(),
        created_at: row.try_get(5)?,
        updated_at: row.try_get(6)?,
        last_event_at: row.try_get(7)?,
        stage: row.try_get(8)?,
        state: row.try_get(9)?,
        state_model_id: row.try_get(10)?,
        last_event_id: row.try_get(11)?,
    })
}

/// A unique violation a write of another instance caused (the same new user id at once): the
/// transaction is undone, and sending it again finds what the other wrote.
fn raced(error: postgres::Error, what: &str) -> StoreError {
    if error.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) {
        StoreError::RolledBack(format!("{what} was written at the same time by another request; send it again"))
    } else {
        error.into()
    }
}

/// The fields of `fields` that no lead of the workspace has (merged-away leads aside), in their
/// order. A lead has a field when an attribute of that name holds a value (not `null`, not blank
/// text); `email` and `user_id` count the lead's own columns too, and every lead has `created_at`
/// (what the service's scoring reads, `scoring::lead_values`).
///
/// Attributes are JSON text, read one lead at a time: the newest leads are looked at first, where
/// most fields turn up, and the fields still missing then cost one pass over the workspace's
/// leads together, however many they are.
pub(crate) fn fields_no_lead_has(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    fields: &[String],
) -> Result<Vec<String>, StoreError> {
    let mut found = std::collections::HashSet::new();
    if fields.iter().any(|f| matches!(f.as_str(), "email" | "user_id" | "created_at")) {
        let row = connection.query_one(
            "SELECT EXISTS (SELECT 1 FROM leads WHERE workspace_id = $1 AND merged_into IS NULL AND email IS NOT NULL),
                    EXISTS (SELECT 1 FROM leads WHERE workspace_id = $1 AND merged_into IS NULL AND user_id IS NOT NULL),
                    EXISTS (SELECT 1 FROM leads WHERE workspace_id = $1 AND merged_into IS NULL)",
            &[&workspace_id],
        )?;
        for (index, field) in ["email", "user_id", "created_at"].into_iter().enumerate() {
            if row.try_get::<_, bool>(index)? {
                found.insert(field.to_string());
            }
        }
    }
    for leads in [
        "SELECT attributes FROM leads WHERE workspace_id = $1 AND merged_into IS NULL ORDER BY id DESC LIMIT 1000",
        "SELECT attributes FROM leads WHERE workspace_id = $1 AND merged_into IS NULL",
    ] {
        let wanted: Vec<&str> = fields.iter().filter(|f| !found.contains(*f)).map(String::as_str).collect();
        if wanted.is_empty() {
            break;
        }
        // `json` rather than `jsonb`: every key as written, as SQLite's `json_each` reads them.
        let sql = format!(
            "SELECT DISTINCT a.key FROM ({leads}) l, json_each(l.attributes::json) a
             WHERE a.key = ANY($2) AND json_typeof(a.value) <> 'null'
               AND NOT (json_typeof(a.value) = 'string' AND btrim(a.value #>> '{{}}', E' \\t\\n\\r') = '')"
        );
        for row in connection.query(&sql, &[&workspace_id, &wanted])? {
            found.insert(row.try_get::<_, String>(0)?);
        }
    }
    Ok(fields.iter().filter(|f| !found.contains(*f)).cloned().collect())
}

/// How many leads the workspace has, merged ones included.
pub(crate) fn count(connection: &mut Tx<'_>, workspace_id: i64) -> Result<i64, StoreError> {
    Ok(connection.query_one("SELECT count(*) FROM leads WHERE workspace_id = $1", &[&workspace_id])?.try_get(0)?)
}

/// The ids of the workspace's first `limit` leads (merged ones left out), in id order: the sample
/// a model preview compares.
pub(crate) fn first_ids(connection: &mut Tx<'_>, workspace_id: i64, limit: u32) -> Result<Vec<i64>, StoreError> {
    ids_after(connection, workspace_id, i64::MIN, limit)
}

/// The ids of up to `limit` of the workspace's leads (merged ones left out) after `after_id`, in
/// id order: how rescoring walks a workspace in batches.
pub(crate) fn ids_after(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    after_id: i64,
    limit: u32,
) -> Result<Vec<i64>, StoreError> {
    let rows = connection.query(
        "SELECT id FROM leads WHERE workspace_id = $1 AND id > $2 AND merged_into IS NULL ORDER BY id LIMIT $3",
        &[&workspace_id, &after_id, &i64::from(limit)],
    )?;
    Ok(rows.iter().map(|row| row.try_get(0)).collect::<Result<_, _>>()?)
}

/// The workspace's next `limit` leads in id order after `after_id` (merged ones left out), whole
/// rows in one query: a batch of a pass over every lead (a model preview).
pub(crate) fn rows_after(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    after_id: i64,
    limit: u32,
) -> Result<Vec<LeadRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM leads WHERE workspace_id = $1 AND id > $2 AND merged_into IS NULL ORDER BY id LIMIT $3"
    );
    let rows = connection.query(&sql, &[&workspace_id, &after_id, &i64::from(limit)])?;
    rows.iter().map(from_row).collect()
}

/// A lead of the workspace by its own id (not a merged one).
pub(crate) fn by_id(connection: &mut Tx<'_>, workspace_id: i64, id: i64) -> Result<Option<LeadRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM leads WHERE workspace_id = $1 AND id = $2 AND merged_into IS NULL");
    connection.query_opt(&sql, &[&workspace_id, &id])?.as_ref().map(from_row).transpose()
}

pub(crate) fn by_user_id(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    user_id: &str,
) -> Result<Option<LeadRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM leads WHERE workspace_id = $1 AND user_id = $2 AND merged_into IS NULL");
    connection.query_opt(&sql, &[&workspace_id, &user_id])?.as_ref().map(from_row).transpose()
}

pub(crate) fn by_anonymous_id(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    anonymous_id: &str,
) -> Result<Option<LeadRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS_OF_L} FROM leads l JOIN anonymous_ids a ON a.lead_id = l.id
         WHERE a.workspace_id = $1 AND a.anonymous_id = $2 AND l.merged_into IS NULL"
    );
    connection.query_opt(&sql, &[&workspace_id, &anonymous_id])?.as_ref().map(from_row).transpose()
}

/// The leads an ingestion finds by its user ids and anonymous ids (merged ones left out), in id
/// order, each locked until the transaction ends: another instance ingesting for the same lead
/// waits for this one, and then reads what it wrote. With the leads the anonymous ids lead to
/// (which may have moved while the locks were awaited).
pub(crate) fn lock_for_ingestion(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    user_ids: &[&str],
    anonymous_ids: &[&str],
) -> Result<(Vec<LeadRow>, Vec<(String, i64)>), StoreError> {
    if user_ids.is_empty() && anonymous_ids.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    // Rows are sorted, then locked in that order; a row changed meanwhile is checked again
    // against the conditions (a lead merged away or given another user id drops out).
    let sql = format!(
        "SELECT {COLUMNS_OF_L} FROM leads l
         WHERE l.workspace_id = $1 AND l.merged_into IS NULL
           AND (l.user_id = ANY($2)
                OR l.id IN (SELECT lead_id FROM anonymous_ids WHERE workspace_id = $1 AND anonymous_id = ANY($3)))
         ORDER BY l.id FOR UPDATE OF l"
    );
    let mut leads: Vec<LeadRow> = connection
        .query(&sql, &[&workspace_id, &user_ids, &anonymous_ids])?
        .iter()
        .map(from_row)
        .collect::<Result<_, _>>()?;
    // Read after the locks are held: a merge committed meanwhile moved anonymous ids.
    let links = anonymous_links(connection, workspace_id, anonymous_ids)?;
    let missing: Vec<i64> = {
        let mut missing: Vec<i64> =
            links.iter().map(|(_, id)| *id).filter(|id| !leads.iter().any(|lead| lead.id == *id)).collect();
        missing.sort_unstable();
        missing.dedup();
        missing
    };
    if !missing.is_empty() {
        let sql = format!(
            "SELECT {COLUMNS_OF_L} FROM leads l WHERE l.id = ANY($1) AND l.merged_into IS NULL ORDER BY l.id FOR UPDATE OF l"
        );
        for row in connection.query(&sql, &[&missing])? {
            leads.push(from_row(&row)?);
        }
        leads.sort_by_key(|lead| lead.id);
    }
    let links = links.into_iter().filter(|(_, id)| leads.iter().any(|lead| lead.id == *id)).collect();
    Ok((leads, links))
}

/// The lead (not a merged one) each of `anonymous_ids` that has one is linked to.
fn anonymous_links(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    anonymous_ids: &[&str],
) -> Result<Vec<(String, i64)>, StoreError> {
    if anonymous_ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = connection.query(
        "SELECT a.anonymous_id, a.lead_id FROM anonymous_ids a JOIN leads l ON l.id = a.lead_id
         WHERE a.workspace_id = $1 AND a.anonymous_id = ANY($2) AND l.merged_into IS NULL",
        &[&workspace_id, &anonymous_ids],
    )?;
    Ok(rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect::<Result<_, StoreError>>()?)
}

pub(crate) fn links(connection: &mut Tx<'_>, workspace_id: i64, lead_id: i64) -> Result<LeadLinks, StoreError> {
    let anonymous_ids = connection
        .query(
            "SELECT anonymous_id FROM anonymous_ids WHERE workspace_id = $1 AND lead_id = $2
             ORDER BY anonymous_id COLLATE \"C\"",
            &[&workspace_id, &lead_id],
        )?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
    let merged_leads = connection
        .query(
            "WITH RECURSIVE grouped(id) AS (
                 SELECT id FROM leads WHERE merged_into = $2 AND workspace_id = $1
                 UNION SELECT l.id FROM leads l JOIN grouped g ON l.merged_into = g.id
             ) SELECT id FROM grouped ORDER BY id",
            &[&workspace_id, &lead_id],
        )?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
    Ok(LeadLinks { anonymous_ids, merged_leads })
}

/// `text` as an `ILIKE` pattern matching it anywhere, its wildcards and escapes taken as text.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for character in text.chars() {
        if matches!(character, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(character);
    }
    pattern.push('%');
    pattern
}

/// A text field of the lead's attributes, as the listing reads it: only a string is a name.
fn text_field(field: &str) -> String {
    format!(
        "CASE WHEN json_typeof(l.attributes::json -> '{field}') = 'string' THEN l.attributes::json ->> '{field}' END"
    )
}

/// The statement [`list`] runs and its parameters.
fn list_statement(
    workspace_id: i64,
    filter: &Filter,
    order: Order,
    limit: u32,
    page: Page,
) -> (String, Vec<Box<dyn ToSql + Sync>>) {
    let mut parameters: Vec<Box<dyn ToSql + Sync>> = Vec::new();
    let mut bind = |value: Box<dyn ToSql + Sync>| {
        parameters.push(value);
        format!("${}", parameters.len())
    };
    let by_score = !filter.score.is_empty() && order != Order::LastActivity;
    // The lead id column the index walks, so that ties are broken in the index's order.
    let id = if by_score { "s.lead_id" } else { "l.id" };
    let mut conditions =
        vec![format!("l.workspace_id = {}", bind(Box::new(workspace_id))), "l.merged_into IS NULL".to_string()];
    let from = if filter.score.is_empty() {
        "leads l".to_string()
    } else if !by_score {
        // Listed by activity, a lead without the score is listed too.
        format!(
            "leads l LEFT JOIN lead_scores s ON s.lead_id = l.id AND s.score = {}",
            bind(Box::new(filter.score.clone()))
        )
    } else {
        conditions.push(format!("s.score = {}", bind(Box::new(filter.score.clone()))));
        "lead_scores s JOIN leads l ON l.id = s.lead_id".to_string()
    };
    if let Some(tier) = &filter.tier {
        conditions.push(format!("s.tier = {}", bind(Box::new(tier.clone()))));
    }
    if let Some(stage) = &filter.stage {
        conditions.push(format!("l.stage = {}", bind(Box::new(stage.clone()))));
    }
    if let Some(min) = filter.min_value {
        conditions.push(format!("s.value >= {}", bind(Box::new(min))));
    }
    if let Some(max) = filter.max_value {
        conditions.push(format!("s.value <= {}", bind(Box::new(max))));
    }
    if let Some(since) = filter.updated_since {
        conditions.push(format!("l.updated_at >= {}", bind(Box::new(since))));
    }
    if let Some(email) = filter.email.as_deref().map(str::trim) {
        if email.chars().count() >= 3 {
            // Found through the search text's index; the comparison below decides.
            conditions.push(format!("l.search_text ILIKE {}", bind(Box::new(contains_pattern(email)))));
        }
        // ASCII case only, as SQLite's `lower`: the "C" collation folds nothing else.
        conditions
            .push(format!("lower(l.email COLLATE \"C\") = lower({} COLLATE \"C\")", bind(Box::new(email.to_string()))));
    }
    if let Some(text) = filter.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        conditions.push(format!("l.search_text ILIKE {}", bind(Box::new(contains_pattern(text)))));
    }
    let descending = order != Order::ScoreAscending;
    // A previous page is read backwards from its end, then turned around.
    let (backwards, position) = match page {
        Page::Before(position) => (true, Some(position)),
        Page::After(position) => (false, Some(position)),
        Page::Offset(_) => (false, None),
    };
    let direction = if descending != backwards { "DESC" } else { "ASC" };
    let comparison = if descending != backwards { "<" } else { ">" };
    // Typed, so that a column without a score reads as the type it has with one.
    let value = if filter.score.is_empty() { "NULL::double precision" } else { "s.value" };
    let tier = if filter.score.is_empty() { "NULL::text" } else { "s.tier" };
    let overridden = if filter.score.is_empty() { "false" } else { "s.override_id IS NOT NULL" };
    if let Some(position) = position.filter(|_| order != Order::LastActivity) {
        match (by_score, position.value) {
            (true, Some(at)) => conditions.push(format!(
                "({value}, {id}) {comparison} ({}, {})",
                bind(Box::new(at)),
                bind(Box::new(position.id))
            )),
            _ => conditions.push(format!("{id} {comparison} {}", bind(Box::new(position.id)))),
        }
    }
    let order_by = match order {
        Order::LastActivity => "l.last_event_at IS NULL, l.last_event_at DESC, l.id".to_string(),
        _ if by_score => format!("s.value {direction}, s.lead_id {direction}"),
        _ => format!("l.id {direction}"),
    };
    let offset = match page {
        Page::Offset(offset) => offset,
        _ => 0,
    };
    let limit = bind(Box::new(i64::from(limit)));
    let offset = bind(Box::new(i64::from(offset)));
    let sql = format!(
        "SELECT l.id, l.user_id, l.email, l.stage, l.last_event_at, {value}, {tier},
                {}, {}, {}, {}, {overridden}
         FROM {from}
         WHERE {}
         ORDER BY {order_by} LIMIT {limit} OFFSET {offset}",
        text_field("name"),
        text_field("first_name"),
        text_field("last_name"),
        text_field("company"),
        conditions.join(" AND "),
    );
    (sql, parameters)
}

/// A page of the workspace's leads with one score, filtered and sorted by it (ties by lead id, in
/// the same direction). Listed by a score, a lead without a value for it is not listed (only
/// while a rescoring gives a new score its first values); without a score (no active model),
/// leads are listed newest first. `Page::After` and `Page::Before` seek the score's index, so
/// that a far page costs what the first does; `Order::LastActivity` lists by offset only, leads
/// without the score included.
pub(crate) fn list(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    filter: &Filter,
    order: Order,
    limit: u32,
    page: Page,
) -> Result<Vec<ListedLead>, StoreError> {
    let (sql, parameters) = list_statement(workspace_id, filter, order, limit, page);
    let parameters: Vec<&(dyn ToSql + Sync)> = parameters.iter().map(|p| p.as_ref()).collect();
    let mut leads = connection
        .query(&sql, &parameters)?
        .iter()
        .map(|row| {
            let name: Option<String> = row.try_get(7)?;
            let first: Option<String> = row.try_get(8)?;
            let last: Option<String> = row.try_get(9)?;
            Ok(ListedLead {
                id: row.try_get(0)?,
                user_id: row.try_get(1)?,
                email: row.try_get(2)?,
                stage: row.try_get(3)?,
                last_event_at: row.try_get(4)?,
                value: row.try_get(5)?,
                tier: row.try_get(6)?,
                name: person_name(name.as_deref(), first.as_deref(), last.as_deref()),
                company: row.try_get(10)?,
                overridden: row.try_get(11)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    if matches!(page, Page::Before(_)) {
        leads.reverse();
    }
    Ok(leads)
}

/// Stores new leads, each with the id it was handed and its user id if known (see [`new_row`]),
/// in one statement, in id order.
pub(crate) fn insert_new(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    leads: &[(i64, Option<String>)],
    now: i64,
) -> Result<(), StoreError> {
    if leads.is_empty() {
        return Ok(());
    }
    let mut sorted: Vec<&(i64, Option<String>)> = leads.iter().collect();
    sorted.sort_by_key(|(id, _)| *id);
    let ids: Vec<i64> = sorted.iter().map(|(id, _)| *id).collect();
    let user_ids: Vec<Option<&str>> = sorted.iter().map(|(_, user_id)| user_id.as_deref()).collect();
    connection
        .execute(
            "INSERT INTO leads (id, workspace_id, user_id, created_at, updated_at)
             SELECT n.id, $1, n.user_id, $2, $2 FROM unnest($3::bigint[], $4::text[]) WITH ORDINALITY AS n(id, user_id, at)
             ORDER BY n.at",
            &[&workspace_id, &now, &ids, &user_ids],
        )
        .map_err(|error| raced(error, "a new lead's user id"))?;
    Ok(())
}

/// Links anonymous ids (or earlier user ids) to leads, in one statement: an id linked twice ends
/// linked to the lead it was given last, as when linked one after the other.
pub(crate) fn link_anonymous_ids(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    links: &[(String, i64)],
) -> Result<(), StoreError> {
    if links.is_empty() {
        return Ok(());
    }
    // One row per id (a statement may not upsert a row twice), the last link of each, in id
    // order.
    let last: std::collections::BTreeMap<&str, i64> =
        links.iter().map(|(anonymous_id, lead_id)| (anonymous_id.as_str(), *lead_id)).collect();
    let anonymous_ids: Vec<&str> = last.keys().copied().collect();
    let lead_ids: Vec<i64> = last.values().copied().collect();
    connection.execute(
        "INSERT INTO anonymous_ids (workspace_id, anonymous_id, lead_id)
         SELECT $1, n.anonymous_id, n.lead_id FROM unnest($2::text[], $3::bigint[]) WITH ORDINALITY AS n(anonymous_id, lead_id, at)
         ORDER BY n.at
         ON CONFLICT (workspace_id, anonymous_id) DO UPDATE SET lead_id = excluded.lead_id",
        &[&workspace_id, &anonymous_ids, &lead_ids],
    )?;
    Ok(())
}

/// Gives an anonymous lead its user id.
pub(crate) fn set_user_id(connection: &mut Tx<'_>, lead_id: i64, user_id: &str) -> Result<(), StoreError> {
    connection
        .execute("UPDATE leads SET user_id = $1 WHERE id = $2", &[&user_id, &lead_id])
        .map_err(|error| raced(error, "the lead's user id"))?;
    Ok(())
}

/// Same as [`save`], with `last_event_id` as the lead's newest event instead of the row's: for a
/// caller that appended events after the row was built (see [`crate::events::append`]). The
/// stage is left as stored: [`crate::stages::set`] moves it, with its record.
pub(crate) fn save_with_newest_event(
    connection: &mut Tx<'_>,
    lead: &LeadRow,
    last_event_id: Option<i64>,
) -> Result<(), StoreError> {
    let attributes = serde_json::to_string(&lead.attributes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    connection.execute(
        "UPDATE leads SET email = $1, attributes = $2, updated_at = $3, last_event_at = $4,
             state = $5, state_model_id = $6, last_event_id = $8 WHERE id = $7",
        &[
            &lead.email,
            &attributes,
            &lead.updated_at,
            &lead.last_event_at,
            &lead.state,
            &lead.state_model_id,
            &lead.id,
            &last_event_id,
        ],
    )?;
    Ok(())
}

/// Reserves `count` consecutive lead ids and answers the first (0 when `count` is 0: no lead
/// may be created then), see `reserve_lead_ids` in the schema.
pub(crate) fn reserve_ids(c: &mut Tx<'_>, count: i64) -> Result<i64, StoreError> {
    if count < 1 {
        return Ok(0);
    }
    Ok(c.query_one("SELECT reserve_lead_ids($1)", &[&count])?.try_get(0)?)
}
