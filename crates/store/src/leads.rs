//! Leads: identity (user id, anonymous ids), attributes, lifecycle stage and the engine's state.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};

use crate::StoreError;

/// A stored lead.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadRow {
    pub id: i64,
    pub workspace_id: i64,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub attributes: Map<String, Value>,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_event_at: Option<i64>,
    pub stage: String,
    /// The engine's state (as `scoring::state_text` in the server writes it) and the model it was
    /// built for.
    pub state: Option<String>,
    pub state_model_id: Option<i64>,
    /// The newest of the lead's events, from which the others are linked (see [`crate::events`]).
    pub last_event_id: Option<i64>,
}

const COLUMNS: &str = "id, workspace_id, user_id, email, attributes, created_at, updated_at, last_event_at, stage, state, \
     state_model_id, last_event_id";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<LeadRow> {
    let attributes: String = row.get(4)?;
    Ok(LeadRow {
        id: row.get(0)?,
        workspace_id: row.get(1)?,
        user_id: row.get(2)?,
        email: row.get(3)?,
        attributes: serde_json::from_str(&attributes).unwrap_or_default(),
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
        last_event_at: row.get(7)?,
        stage: row.get(8)?,
        state: row.get(9)?,
        state_model_id: row.get(10)?,
        last_event_id: row.get(11)?,
    })
}

/// A lead of the workspace by its own id (not a merged one).
pub fn by_id(connection: &Connection, workspace_id: i64, id: i64) -> Result<Option<LeadRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM leads WHERE workspace_id = ?1 AND id = ?2 AND merged_into IS NULL");
    Ok(connection.prepare_cached(&sql)?.query_row(params![workspace_id, id], from_row).optional()?)
}

pub fn by_user_id(connection: &Connection, workspace_id: i64, user_id: &str) -> Result<Option<LeadRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM leads WHERE workspace_id = ?1 AND user_id = ?2 AND merged_into IS NULL");
    Ok(connection.prepare_cached(&sql)?.query_row(params![workspace_id, user_id], from_row).optional()?)
}

pub fn by_anonymous_id(
    connection: &Connection,
    workspace_id: i64,
    anonymous_id: &str,
) -> Result<Option<LeadRow>, StoreError> {
    let sql = format!(
        "SELECT {} FROM leads l JOIN anonymous_ids a ON a.lead_id = l.id
         WHERE a.workspace_id = ?1 AND a.anonymous_id = ?2 AND l.merged_into IS NULL",
        COLUMNS.split(", ").map(|c| format!("l.{c}")).collect::<Vec<_>>().join(", ")
    );
    Ok(connection.prepare_cached(&sql)?.query_row(params![workspace_id, anonymous_id], from_row).optional()?)
}

/// Creates a lead; `user_id` may be unknown yet (an anonymous visitor).
pub fn create(
    connection: &Connection,
    workspace_id: i64,
    user_id: Option<&str>,
    now: i64,
) -> Result<LeadRow, StoreError> {
    let id = next_id(connection)?;
    insert_new(connection, id, workspace_id, user_id, now)?;
    by_id(connection, workspace_id, id)?.ok_or_else(|| StoreError::Corrupt("a created lead vanished".into()))
}

/// A new lead's row as [`insert_new`] stores it: for a caller that creates leads with ids it was
/// handed ([`next_id`]) and writes them later in the same transaction.
pub fn new_row(id: i64, workspace_id: i64, user_id: Option<&str>, now: i64) -> LeadRow {
    LeadRow {
        id,
        workspace_id,
        user_id: user_id.map(str::to_string),
        email: None,
        attributes: Map::new(),
        created_at: now,
        updated_at: now,
        last_event_at: None,
        stage: "lead".to_string(),
        state: None,
        state_model_id: None,
        last_event_id: None,
    }
}

/// The id the next lead created in this transaction takes, when no other write creates one in
/// between (ids are never reused: merged leads stay as pointers).
pub fn next_id(connection: &Connection) -> Result<i64, StoreError> {
    // Erased leads' ids count too: an id is never given again (see `0018_erasure.sql`).
    Ok(connection
        .prepare_cached(
            "SELECT max(coalesce((SELECT max(id) FROM leads), 0), coalesce((SELECT max(last_lead_id) FROM erasures), 0)) + 1",
        )?
        .query_row([], |row| row.get(0))?)
}

/// Stores a new lead with the id it was handed (see [`new_row`]).
pub fn insert_new(
    connection: &Connection,
    id: i64,
    workspace_id: i64,
    user_id: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO leads (id, workspace_id, user_id, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
        )?
        .execute(params![id, workspace_id, user_id, now])?;
    Ok(())
}

pub fn link_anonymous_id(
    connection: &Connection,
    workspace_id: i64,
    anonymous_id: &str,
    lead_id: i64,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO anonymous_ids (workspace_id, anonymous_id, lead_id) VALUES (?1, ?2, ?3)
             ON CONFLICT (workspace_id, anonymous_id) DO UPDATE SET lead_id = excluded.lead_id",
        )?
        .execute(params![workspace_id, anonymous_id, lead_id])?;
    Ok(())
}

/// A lead's other names: its anonymous ids and the leads merged into it (directly or through
/// another), as an export lists them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeadLinks {
    pub anonymous_ids: Vec<String>,
    pub merged_leads: Vec<i64>,
}

pub fn links(connection: &Connection, workspace_id: i64, lead_id: i64) -> Result<LeadLinks, StoreError> {
    let mut statement = connection.prepare(
        "SELECT anonymous_id FROM anonymous_ids WHERE workspace_id = ?1 AND lead_id = ?2 ORDER BY anonymous_id",
    )?;
    let anonymous_ids =
        statement.query_map(params![workspace_id, lead_id], |row| row.get(0))?.collect::<Result<_, _>>()?;
    let mut statement = connection.prepare(
        "WITH RECURSIVE grouped(id) AS (
             SELECT id FROM leads WHERE merged_into = ?2 AND workspace_id = ?1
             UNION SELECT l.id FROM leads l JOIN grouped g ON l.merged_into = g.id
         ) SELECT id FROM grouped ORDER BY id",
    )?;
    let merged_leads =
        statement.query_map(params![workspace_id, lead_id], |row| row.get(0))?.collect::<Result<_, _>>()?;
    Ok(LeadLinks { anonymous_ids, merged_leads })
}

/// Gives an anonymous lead its user id.
pub fn set_user_id(connection: &Connection, lead_id: i64, user_id: &str) -> Result<(), StoreError> {
    connection.execute("UPDATE leads SET user_id = ?1 WHERE id = ?2", params![user_id, lead_id])?;
    Ok(())
}

/// The ids of up to `limit` of the workspace's leads (merged ones left out) after `after_id`, in
/// id order: how rescoring walks a workspace in batches.
pub fn ids_after(
    connection: &Connection,
    workspace_id: i64,
    after_id: i64,
    limit: u32,
) -> Result<Vec<i64>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT id FROM leads WHERE workspace_id = ?1 AND id > ?2 AND merged_into IS NULL ORDER BY id LIMIT ?3",
    )?;
    let ids = statement.query_map(rusqlite::params![workspace_id, after_id, limit], |row| row.get(0))?;
    Ok(ids.collect::<Result<_, _>>()?)
}

/// The workspace's next `limit` leads in id order after `after_id` (merged ones left out), whole
/// rows in one query: a batch of a pass over every lead (a model preview).
pub fn rows_after(
    connection: &Connection,
    workspace_id: i64,
    after_id: i64,
    limit: u32,
) -> Result<Vec<LeadRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM leads WHERE workspace_id = ?1 AND id > ?2 AND merged_into IS NULL ORDER BY id LIMIT ?3"
    );
    let mut statement = connection.prepare_cached(&sql)?;
    let rows = statement.query_map(params![workspace_id, after_id, limit], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The ids of the workspace's first `limit` leads (merged ones left out), in id order: the sample
/// a model preview compares.
pub fn first_ids(connection: &Connection, workspace_id: i64, limit: u32) -> Result<Vec<i64>, StoreError> {
    ids_after(connection, workspace_id, i64::MIN, limit)
}

/// How many leads the workspace has, merged ones included.
pub fn count(connection: &Connection, workspace_id: i64) -> Result<i64, StoreError> {
    Ok(connection.query_row("SELECT count(*) FROM leads WHERE workspace_id = ?1", [workspace_id], |row| row.get(0))?)
}

/// Saves attributes (merged over the stored ones by the caller), email, state and stage.
pub fn save(connection: &Connection, lead: &LeadRow) -> Result<(), StoreError> {
    save_with_newest_event(connection, lead, lead.last_event_id)?;
    connection.prepare_cached("UPDATE leads SET stage = ?1 WHERE id = ?2")?.execute(params![lead.stage, lead.id])?;
    Ok(())
}

/// Same as [`save`], with `last_event_id` as the lead's newest event instead of the row's: for a
/// caller that appended events after the row was built (see [`crate::events::append`]). The
/// stage is left as stored: [`crate::stages::set`] moves it, with its record. Left out of the
/// statement, which every event's lead runs, so is the trigger that counts leads per stage
/// (`0015_funnel_counts.sql`).
pub fn save_with_newest_event(
    connection: &Connection,
    lead: &LeadRow,
    last_event_id: Option<i64>,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "UPDATE leads SET email = ?1, attributes = ?2, updated_at = ?3, last_event_at = ?4,
                 state = ?5, state_model_id = ?6, last_event_id = ?8 WHERE id = ?7",
        )?
        .execute(params![
            lead.email,
            serde_json::to_string(&lead.attributes).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            lead.updated_at,
            lead.last_event_at,
            lead.state,
            lead.state_model_id,
            lead.id,
            last_event_id
        ])?;
    Ok(())
}

/// Sort orders for [`list`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    ScoreDescending,
    ScoreAscending,
    LastActivity,
}

/// One row of a lead listing.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedLead {
    pub id: i64,
    pub user_id: Option<String>,
    pub email: Option<String>,
    /// The person's name from its fields ([`person_name`]), if it has one.
    pub name: Option<String>,
    pub stage: String,
    pub last_event_at: Option<i64>,
    pub value: Option<f64>,
    pub tier: Option<String>,
    /// The `company` field, when it is text.
    pub company: Option<String>,
    /// Whether a person's override is in force on the listed score (`value` and `tier` are then
    /// the overridden ones).
    pub overridden: bool,
}

/// A text field of a listing row; a field holding a number or anything else is no name.
fn text(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Option<String>> {
    Ok(match row.get_ref(index)? {
        rusqlite::types::ValueRef::Text(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        _ => None,
    })
}

/// A person's name from the fields CRMs and Segment's `identify` use: `name`, else the first and
/// last names.
pub fn person_name(name: Option<&str>, first: Option<&str>, last: Option<&str>) -> Option<String> {
    fn filled(text: Option<&str>) -> Option<&str> {
        text.map(str::trim).filter(|t| !t.is_empty())
    }
    if let Some(name) = filled(name) {
        return Some(name.to_string());
    }
    let parts: Vec<&str> = [filled(first), filled(last)].into_iter().flatten().collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// Filters for [`list`].
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub score: String,
    pub tier: Option<String>,
    pub stage: Option<String>,
    pub min_value: Option<f64>,
    pub max_value: Option<f64>,
    /// Text the lead's e-mail, name or company contains (any case).
    pub text: Option<String>,
    /// Only leads updated at or after this time (ms).
    pub updated_since: Option<i64>,
    /// Only the lead with this e-mail, exactly but for ASCII case (found through the search
    /// index, which holds every lead's e-mail: no index on the column costs the writer).
    pub email: Option<String>,
}

/// A lead's place in a listing by score: its value (`None` when listed without a score) and id,
/// which breaks ties.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Position {
    pub value: Option<f64>,
    pub id: i64,
}

/// Which page of a listing to read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Page {
    /// The first page after skipping so many leads (what API clients used before cursors; a
    /// far page costs a walk over every lead skipped).
    Offset(u32),
    /// The page after this lead, by seeking the index to it.
    After(Position),
    /// The page before this lead.
    Before(Position),
}

/// At most this many leads matching a text search are sorted by score; a search matching more
/// walks the leads in score order instead, checking each, which finds a page quickly precisely
/// because matches are frequent.
const MOST_SEARCH_MATCHES_SORTED: i64 = 10_000;

/// Leads read at a time when a page is found by checking each lead's text.
const CHECKED_AT_A_TIME: u32 = 500;

/// How a text search reads the search index.
#[derive(Debug, Clone, PartialEq)]
enum Search {
    /// 3 characters or more, few matches: the matches from the trigram index, sorted by score.
    FewMatches(String),
    /// 1 or 2 characters (a Chinese name is often 2), which trigrams cannot index, and few
    /// matches: the leads found by reading every lead's text once, sorted by score.
    Leads(Vec<i64>),
    /// Many matches: each lead in score order, its text checked here (in lower case, the text
    /// sought too) until the page is full.
    Checked(String),
}

/// An FTS5 query for `text` as a substring: one phrase, its quotes doubled.
fn phrase(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// Every spelling of `text` with each character in lower or upper case (at most 4 for the 1 or 2
/// characters of a short search).
fn spellings(text: &str) -> Vec<String> {
    let mut spellings = vec![String::new()];
    for character in text.chars() {
        let cases: Vec<String> = {
            let mut cases = vec![character.to_lowercase().collect::<String>(), character.to_uppercase().collect()];
            cases.dedup();
            cases
        };
        spellings = spellings.iter().flat_map(|s| cases.iter().map(move |c| format!("{s}{c}"))).collect();
    }
    spellings.sort();
    spellings.dedup();
    spellings
}

fn search_of(connection: &Connection, text: &str) -> Result<Search, StoreError> {
    let checked = Search::Checked(text.to_lowercase());
    if text.chars().count() < 3 {
        let spellings = spellings(text);
        let found: Vec<String> = (1..=spellings.len()).map(|n| format!("instr(text, ?{n}) > 0")).collect();
        let sql = format!(
            "SELECT rowid FROM lead_search WHERE {} LIMIT {}",
            found.join(" OR "),
            MOST_SEARCH_MATCHES_SORTED + 1
        );
        let mut statement = connection.prepare_cached(&sql)?;
        let leads: Vec<i64> =
            statement.query_map(rusqlite::params_from_iter(spellings), |row| row.get(0))?.collect::<Result<_, _>>()?;
        return Ok(if leads.len() as i64 > MOST_SEARCH_MATCHES_SORTED { checked } else { Search::Leads(leads) });
    }
    let query = phrase(text);
    let matches: i64 = connection
        .prepare_cached("SELECT count(*) FROM (SELECT 1 FROM lead_search WHERE lead_search MATCH ?1 LIMIT ?2)")?
        .query_row(params![query, MOST_SEARCH_MATCHES_SORTED + 1], |row| row.get(0))?;
    Ok(if matches > MOST_SEARCH_MATCHES_SORTED { checked } else { Search::FewMatches(query) })
}

/// The statement [`list`] runs and its parameters.
fn list_statement(
    workspace_id: i64,
    filter: &Filter,
    search: Option<&Search>,
    order: Order,
    limit: u32,
    page: Page,
) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value as Sql;
    let mut parameters: Vec<Sql> = Vec::new();
    let mut bind = |value: Sql| {
        parameters.push(value);
        format!("?{}", parameters.len())
    };
    let by_score = !filter.score.is_empty() && order != Order::LastActivity;
    // The lead id column the index walks, so that ties are broken in the index's order.
    let id = if by_score { "s.lead_id" } else { "l.id" };
    let mut conditions =
        vec![format!("l.workspace_id = {}", bind(Sql::Integer(workspace_id))), "l.merged_into IS NULL".to_string()];
    let few_matches = matches!(search, Some(Search::FewMatches(_) | Search::Leads(_))) && by_score;
    let from = if filter.score.is_empty() {
        "leads l".to_string()
    } else if !by_score {
        // Listed by activity, a lead without the score is listed too.
        format!(
            "leads l LEFT JOIN lead_scores s ON s.lead_id = l.id AND s.score = {}",
            bind(Sql::Text(filter.score.clone()))
        )
    } else {
        conditions.push(format!("s.score = {}", bind(Sql::Text(filter.score.clone()))));
        // CROSS JOIN fixes the order of the loops: SQLite's planner, without statistics, could
        // otherwise walk the leads and sort them all.
        match search {
            Some(Search::FewMatches(_)) => {
                "lead_search f CROSS JOIN lead_scores s ON s.lead_id = f.rowid CROSS JOIN leads l ON l.id = s.lead_id"
                    .to_string()
            }
            Some(Search::Leads(leads)) => format!(
                "json_each({}) f CROSS JOIN lead_scores s ON s.lead_id = f.value CROSS JOIN leads l ON l.id = s.lead_id",
                bind(Sql::Text(format!("{leads:?}")))
            ),
            _ => "lead_scores s CROSS JOIN leads l ON l.id = s.lead_id".to_string(),
        }
    };
    if let Some(tier) = &filter.tier {
        conditions.push(format!("s.tier = {}", bind(Sql::Text(tier.clone()))));
    }
    if let Some(stage) = &filter.stage {
        conditions.push(format!("l.stage = {}", bind(Sql::Text(stage.clone()))));
    }
    if let Some(min) = filter.min_value {
        conditions.push(format!("s.value >= {}", bind(Sql::Real(min))));
    }
    if let Some(max) = filter.max_value {
        conditions.push(format!("s.value <= {}", bind(Sql::Real(max))));
    }
    if let Some(since) = filter.updated_since {
        conditions.push(format!("l.updated_at >= {}", bind(Sql::Integer(since))));
    }
    if let Some(email) = filter.email.as_deref().map(str::trim) {
        if email.chars().count() >= 3 {
            conditions.push(format!(
                "{id} IN (SELECT rowid FROM lead_search WHERE lead_search MATCH {})",
                bind(Sql::Text(phrase(email)))
            ));
        }
        conditions.push(format!("lower(l.email) = lower({})", bind(Sql::Text(email.to_string()))));
    }
    // The text a search checks here, or nothing.
    let mut text_column = "NULL".to_string();
    match search {
        Some(Search::FewMatches(query)) if few_matches => {
            conditions.push(format!("f.lead_search MATCH {}", bind(Sql::Text(query.clone()))))
        }
        Some(Search::FewMatches(query)) => conditions.push(format!(
            "{id} IN (SELECT rowid FROM lead_search WHERE lead_search MATCH {})",
            bind(Sql::Text(query.clone()))
        )),
        Some(Search::Leads(_)) if few_matches => {}
        Some(Search::Leads(leads)) => {
            conditions.push(format!("{id} IN (SELECT value FROM json_each({}))", bind(Sql::Text(format!("{leads:?}")))))
        }
        Some(Search::Checked(_)) => text_column = format!("(SELECT text FROM lead_search WHERE rowid = {id})"),
        None => {}
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
    let value = if filter.score.is_empty() { "NULL" } else { "s.value" };
    let tier = if filter.score.is_empty() { "NULL" } else { "s.tier" };
    let overridden = if filter.score.is_empty() { "0" } else { "s.override_id IS NOT NULL" };
    if let Some(position) = position.filter(|_| order != Order::LastActivity) {
        match (by_score, position.value) {
            (true, Some(at)) => conditions.push(format!(
                "({value}, {id}) {comparison} ({}, {})",
                bind(Sql::Real(at)),
                bind(Sql::Integer(position.id))
            )),
            _ => conditions.push(format!("{id} {comparison} {}", bind(Sql::Integer(position.id)))),
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
    let limit = bind(Sql::Integer(limit.into()));
    let offset = bind(Sql::Integer(offset.into()));
    let sql = format!(
        "SELECT l.id, l.user_id, l.email, l.stage, l.last_event_at, {value}, {tier},
                json_extract(l.attributes, '$.name'), json_extract(l.attributes, '$.first_name'),
                json_extract(l.attributes, '$.last_name'), json_extract(l.attributes, '$.company'), {text_column},
                {overridden}
         FROM {from}
         WHERE {}
         ORDER BY {order_by} LIMIT {limit} OFFSET {offset}",
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
pub fn list(
    connection: &Connection,
    workspace_id: i64,
    filter: &Filter,
    order: Order,
    limit: u32,
    page: Page,
) -> Result<Vec<ListedLead>, StoreError> {
    let search = match filter.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(text) => Some(search_of(connection, text)?),
        None => None,
    };
    if let Some(Search::Checked(sought)) = &search {
        return list_checked(connection, workspace_id, filter, sought, order, limit, page);
    }
    let mut leads: Vec<ListedLead> =
        read_listed(connection, workspace_id, filter, search.as_ref(), order, limit, page)?
            .into_iter()
            .map(|(lead, _)| lead)
            .collect();
    if matches!(page, Page::Before(_)) {
        leads.reverse();
    }
    Ok(leads)
}

/// The rows of one listing statement, each with its search text when the search checks it here,
/// in the statement's order (backwards for `Page::Before`).
fn read_listed(
    connection: &Connection,
    workspace_id: i64,
    filter: &Filter,
    search: Option<&Search>,
    order: Order,
    limit: u32,
    page: Page,
) -> Result<Vec<(ListedLead, Option<String>)>, StoreError> {
    let (sql, parameters) = list_statement(workspace_id, filter, search, order, limit, page);
    let mut statement = connection.prepare_cached(&sql)?;
    let rows = statement.query_map(rusqlite::params_from_iter(parameters), |row| {
        let lead = ListedLead {
            id: row.get(0)?,
            user_id: row.get(1)?,
            email: row.get(2)?,
            stage: row.get(3)?,
            last_event_at: row.get(4)?,
            value: row.get(5)?,
            tier: row.get(6)?,
            name: person_name(text(row, 7)?.as_deref(), text(row, 8)?.as_deref(), text(row, 9)?.as_deref()),
            company: text(row, 10)?,
            overridden: row.get(12)?,
        };
        Ok((lead, text(row, 11)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A page of a search with many matches: the leads in the listing's order, read a few hundred at
/// a time, each kept when its text holds `sought` (lower case), until the page is full.
fn list_checked(
    connection: &Connection,
    workspace_id: i64,
    filter: &Filter,
    sought: &str,
    order: Order,
    limit: u32,
    page: Page,
) -> Result<Vec<ListedLead>, StoreError> {
    let search = Search::Checked(sought.to_string());
    let (mut skip, mut at) = match page {
        Page::Offset(offset) => (offset, Page::Offset(0)),
        other => (0, other),
    };
    let mut read = 0u32;
    let mut found = Vec::new();
    loop {
        let rows = read_listed(connection, workspace_id, filter, Some(&search), order, CHECKED_AT_A_TIME, at)?;
        let full = rows.len() == CHECKED_AT_A_TIME as usize;
        read += rows.len() as u32;
        let last = rows.last().map(|(lead, _)| Position { value: lead.value, id: lead.id });
        for (lead, text) in rows {
            if !text.is_some_and(|text| text.to_lowercase().contains(sought)) {
                continue;
            }
            if skip > 0 {
                skip -= 1;
                continue;
            }
            found.push(lead);
            if found.len() == limit as usize {
                break;
            }
        }
        let (Some(last), true) = (last, full && found.len() < limit as usize) else { break };
        at = match (page, order) {
            (_, Order::LastActivity) => Page::Offset(read),
            (Page::Before(_), _) => Page::Before(last),
            _ => Page::After(last),
        };
    }
    if matches!(page, Page::Before(_)) {
        found.reverse();
    }
    Ok(found)
}

/// The fields of `fields` that no lead of the workspace has (merged-away leads aside), in their
/// order. A lead has a field when an attribute of that name holds a value (not `null`, not blank
/// text); `email` and `user_id` count the lead's own columns too, and every lead has `created_at`
/// (what the service's scoring reads, `scoring::lead_values`).
///
/// Attributes are JSON text, read one lead at a time: the newest leads are looked at first, where
/// most fields turn up, and the fields still missing then cost one pass over the workspace's
/// leads together (about 2 s per million leads with ten attributes each), however many they are.
pub fn fields_no_lead_has(
    connection: &Connection,
    workspace_id: i64,
    fields: &[String],
) -> Result<Vec<String>, StoreError> {
    let mut found = std::collections::HashSet::new();
    for (field, column) in [("email", "email"), ("user_id", "user_id"), ("created_at", "created_at")] {
        if fields.iter().any(|f| f == field) {
            let sql = format!(
                "SELECT EXISTS (SELECT 1 FROM leads WHERE workspace_id = ?1 AND merged_into IS NULL AND {column} IS NOT NULL)"
            );
            if connection.query_row(&sql, [workspace_id], |row| row.get::<_, bool>(0))? {
                found.insert(field.to_string());
            }
        }
    }
    for leads in [
        "SELECT attributes FROM leads WHERE workspace_id = ?1 AND merged_into IS NULL ORDER BY id DESC LIMIT 1000",
        "SELECT attributes FROM leads WHERE workspace_id = ?1 AND merged_into IS NULL",
    ] {
        let wanted: Vec<&String> = fields.iter().filter(|f| !found.contains(*f)).collect();
        if wanted.is_empty() {
            break;
        }
        let wanted = serde_json::to_string(&wanted).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let sql = format!(
            "SELECT DISTINCT a.key FROM ({leads}) l, json_each(l.attributes) a
             WHERE a.key IN (SELECT value FROM json_each(?2)) AND a.type != 'null'
               AND NOT (a.type = 'text' AND trim(a.value, ' ' || char(9, 10, 13)) = '')"
        );
        let mut statement = connection.prepare(&sql)?;
        for key in statement.query_map(params![workspace_id, wanted], |row| row.get::<_, String>(0))? {
            found.insert(key?);
        }
    }
    Ok(fields.iter().filter(|f| !found.contains(*f)).cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_is_named_by_name_else_first_and_last_names() {
        assert_eq!(person_name(Some(" 王小明 "), Some("x"), None).as_deref(), Some("王小明"));
        assert_eq!(person_name(Some(""), Some("Zofia"), Some("Wójcik")).as_deref(), Some("Zofia Wójcik"));
        assert_eq!(person_name(None, None, Some("Петров")).as_deref(), Some("Петров"));
        assert_eq!(person_name(None, Some(" "), None), None);
    }
    use crate::{Store, workspaces};

    /// A lead stored with the id it was handed reads back as the row its caller keeps, and as a
    /// lead created otherwise.
    #[test]
    fn a_new_lead_with_a_handed_id_is_the_row_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write_blocking(|c| {
                let workspace = workspaces::find_or_create(c, "w", crate::now_ms())?;
                let created = create(c, workspace.id, Some("u"), 7)?;
                let id = next_id(c)?;
                assert_eq!(id, created.id + 1);
                insert_new(c, id, workspace.id, Some("v"), 7)?;
                let kept = new_row(id, workspace.id, Some("v"), 7);
                assert_eq!(by_id(c, workspace.id, id)?, Some(kept.clone()));
                assert_eq!(LeadRow { id: created.id, user_id: Some("u".into()), ..kept }, created);
                assert_eq!(next_id(c)?, id + 1);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn a_field_counts_when_some_lead_holds_a_value_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let fields: Vec<String> =
            ["industry", "size", "blank", "email", "user_id", "created_at", "other"].map(String::from).to_vec();
        let (before, after, elsewhere) = store
            .write_blocking(move |c| {
                let workspace = workspaces::find_or_create(c, "w", crate::now_ms())?;
                let before = fields_no_lead_has(c, workspace.id, &fields)?;
                let mut lead = create(c, workspace.id, None, 0)?;
                let attributes = serde_json::json!({"industry": "Technology", "size": null, "blank": "  "});
                lead.attributes = attributes.as_object().unwrap().clone();
                save(c, &lead)?;
                let mut other = create(c, workspace.id, None, 0)?;
                other.email = Some("a@b.example".into());
                save(c, &other)?;
                let after = fields_no_lead_has(c, workspace.id, &fields)?;
                let elsewhere = workspaces::find_or_create(c, "x", crate::now_ms())?;
                Ok((before, after, fields_no_lead_has(c, elsewhere.id, &fields[..1])?))
            })
            .unwrap();
        assert_eq!(before, ["industry", "size", "blank", "email", "user_id", "created_at", "other"]);
        assert_eq!(after, ["size", "blank", "user_id", "other"]);
        assert_eq!(elsewhere, ["industry"], "another workspace's leads do not count");
    }

    /// A workspace of leads with names in several scripts and scores with many ties, beside
    /// another workspace's lead that must never show.
    fn listed_workspace() -> (tempfile::TempDir, Store, i64) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let workspace_id = store
            .write_blocking(|c| {
                let workspace = workspaces::find_or_create(c, "w", 0)?;
                let names = ["Zofia Wójcik", "Иван Петров", "王芳", "田中 美咲", "ANNA Nowak", "Мария Иванова"];
                for i in 0..60_i64 {
                    let mut lead = create(c, workspace.id, Some(&format!("u{i}")), 0)?;
                    lead.email = Some(format!("lead{i}@example.com"));
                    let name = names[i as usize % names.len()];
                    lead.attributes = serde_json::json!({"name": name, "company": format!("Firma {}", i % 4)})
                        .as_object()
                        .unwrap()
                        .clone();
                    lead.updated_at = i * 1000;
                    save(c, &lead)?;
                    // Values repeat every 7 leads: ties everywhere.
                    let value = (i % 7) as f64 * 10.0;
                    let tier = if value >= 40.0 { "hot" } else { "cold" };
                    let row = crate::scores::ScoreRow {
                        score: "fit".into(),
                        value,
                        tier: Some(tier.into()),
                        model_id: 1,
                        evaluated_at: 0,
                        overridden: None,
                    };
                    crate::scores::save(c, lead.id, &[row], "event", crate::scores::History::EveryChange)?;
                }
                let other = workspaces::find_or_create(c, "x", 0)?;
                let mut stranger = create(c, other.id, Some("s"), 0)?;
                stranger.email = Some("lead1@example.com".into());
                save(c, &stranger)?;
                Ok(workspace.id)
            })
            .unwrap();
        (dir, store, workspace_id)
    }

    fn fit() -> Filter {
        Filter { score: "fit".into(), ..Filter::default() }
    }

    /// Walks every page forwards with cursors, then backwards from the end.
    fn walk(store: &Store, workspace_id: i64, filter: &Filter, order: Order, size: u32) -> Vec<ListedLead> {
        let read = |page: Page| {
            let filter = filter.clone();
            store.read_blocking(move |c| list(c, workspace_id, &filter, order, size, page)).unwrap()
        };
        walk_with(read, size)
    }

    fn walk_with(read: impl Fn(Page) -> Vec<ListedLead>, size: u32) -> Vec<ListedLead> {
        let position = |lead: &ListedLead| Position { value: lead.value, id: lead.id };
        let mut pages = vec![read(Page::Offset(0))];
        while let Some(last) = pages.last().unwrap().last().filter(|_| pages.last().unwrap().len() == size as usize) {
            let next = read(Page::After(position(last)));
            if next.is_empty() {
                break;
            }
            pages.push(next);
        }
        // Back from the last page, each previous page is the one read forwards.
        for at in (1..pages.len()).rev() {
            assert_eq!(read(Page::Before(position(&pages[at][0]))), pages[at - 1], "page {at} backwards");
        }
        pages.concat()
    }

    #[test]
    fn cursor_pages_list_every_lead_once_in_order_with_ties() {
        let (_dir, store, workspace_id) = listed_workspace();
        for (order, size) in [(Order::ScoreDescending, 8), (Order::ScoreAscending, 7), (Order::ScoreDescending, 1)] {
            let listed = walk(&store, workspace_id, &fit(), order, size);
            let mut ids: Vec<i64> = listed.iter().map(|l| l.id).collect();
            assert_eq!(ids.len(), 60, "{order:?} by {size}");
            let keys: Vec<(f64, i64)> = listed.iter().map(|l| (l.value.unwrap(), l.id)).collect();
            let mut sorted = keys.clone();
            sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
            if order == Order::ScoreDescending {
                sorted.reverse();
            }
            assert_eq!(keys, sorted, "{order:?}: by value, ties by id in the same direction");
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), 60, "no lead twice");
        }
        let offset = store
            .read_blocking(move |c| list(c, workspace_id, &fit(), Order::ScoreDescending, 8, Page::Offset(8)))
            .unwrap();
        assert_eq!(offset, walk(&store, workspace_id, &fit(), Order::ScoreDescending, 8)[8..16], "offsets page alike");
        // Filters page alike.
        let hot = Filter { tier: Some("hot".into()), min_value: Some(45.0), max_value: Some(60.0), ..fit() };
        let listed = walk(&store, workspace_id, &hot, Order::ScoreDescending, 3);
        assert_eq!(listed.len(), 16);
        assert!(listed.iter().all(|l| l.value.unwrap() >= 50.0 && l.tier.as_deref() == Some("hot")));
        let recent = Filter { updated_since: Some(50_000), ..fit() };
        assert_eq!(walk(&store, workspace_id, &recent, Order::ScoreAscending, 4).len(), 10);
        // Without a model, leads are listed newest first.
        let all = walk(&store, workspace_id, &Filter::default(), Order::ScoreDescending, 9);
        assert_eq!(all.iter().map(|l| l.id).collect::<Vec<_>>(), (1..=60).rev().collect::<Vec<_>>());
    }

    #[test]
    fn a_text_search_finds_latin_cyrillic_and_chinese_in_any_case() {
        let (_dir, store, workspace_id) = listed_workspace();
        let found = |text: &str| {
            let filter = Filter { text: Some(text.to_string()), ..fit() };
            let mut names: Vec<String> = walk(&store, workspace_id, &filter, Order::ScoreDescending, 4)
                .into_iter()
                .map(|l| l.name.unwrap())
                .collect();
            names.sort();
            names.dedup();
            names
        };
        assert_eq!(found("wÓjc"), ["Zofia Wójcik"], "Latin, any case");
        assert_eq!(found("иВАН"), ["Иван Петров", "Мария Иванова"], "Cyrillic, any case");
        assert_eq!(found("王芳"), ["王芳"], "two Chinese characters, below a trigram");
        assert_eq!(found("美"), ["田中 美咲"]);
        assert_eq!(found("Ив"), ["Иван Петров", "Мария Иванова"], "a short search folds case too");
        assert_eq!(found("anna"), ["ANNA Nowak"]);
        let company = Filter { text: Some("FIRMA 3".into()), ..fit() };
        assert_eq!(walk(&store, workspace_id, &company, Order::ScoreDescending, 4).len(), 15, "the company");
        assert_eq!(found("lead1@"), ["Иван Петров"], "the e-mail, and no other workspace's lead");
        assert!(found("\"x").is_empty(), "quotes are text");
        let filter = Filter { text: Some("example.com".into()), ..fit() };
        assert_eq!(walk(&store, workspace_id, &filter, Order::ScoreDescending, 7).len(), 60);
        // A changed name is found by its new text only.
        store
            .write_blocking(move |c| {
                let mut lead = by_user_id(c, workspace_id, "u2")?.unwrap();
                lead.attributes.insert("name".into(), "Agnieszka Kowalska".into());
                save(c, &lead)
            })
            .unwrap();
        assert_eq!(found("王芳").len(), 1);
        let filter = Filter { text: Some("王芳".into()), ..fit() };
        assert_eq!(walk(&store, workspace_id, &filter, Order::ScoreDescending, 50).len(), 9);
        assert_eq!(found("kowalska"), ["Agnieszka Kowalska"]);
    }

    /// A search with many matches checks each lead's text in score order: it pages like the
    /// index finds, forwards and backwards, whatever the page size.
    #[test]
    fn checking_each_lead_finds_what_the_index_finds() {
        let (_dir, store, workspace_id) = listed_workspace();
        for (text, order, size) in [
            ("иВАН", Order::ScoreDescending, 3),
            ("example.com", Order::ScoreAscending, 7),
            ("王芳", Order::ScoreDescending, 1),
        ] {
            let filter = Filter { text: Some(text.into()), ..fit() };
            let read = |page: Page| {
                let filter = filter.clone();
                let sought = text.to_lowercase();
                store
                    .read_blocking(move |c| list_checked(c, workspace_id, &filter, &sought, order, size, page))
                    .unwrap()
            };
            let checked = walk_with(read, size);
            assert!(!checked.is_empty());
            assert_eq!(checked, walk(&store, workspace_id, &filter, order, size), "{text}");
        }
        let filter = Filter { text: Some("Firma 1".into()), ..fit() };
        let offset = store
            .read_blocking(move |c| {
                list_checked(c, workspace_id, &filter, "firma 1", Order::LastActivity, 4, Page::Offset(12))
            })
            .unwrap();
        assert_eq!(offset.len(), 3, "15 leads of Firma 1, 12 skipped");
    }

    #[test]
    fn spellings_cover_every_case_of_a_short_search() {
        assert_eq!(spellings("ab"), ["AB", "Ab", "aB", "ab"]);
        assert_eq!(spellings("王"), ["王"]);
        assert_eq!(phrase("a\"b"), "\"a\"\"b\"");
    }

    /// The plans of the common pages seek an index and read no more than a page: no walk over a
    /// table (`SCAN` of leads or scores) and no sort of every match (`TEMP B-TREE`). The one
    /// sort allowed is of a text search's few matches (at most `MOST_SEARCH_MATCHES_SORTED`).
    #[test]
    fn the_common_pages_seek_an_index_and_sort_nothing() {
        let mut connection = Connection::open_in_memory().unwrap();
        crate::migrate::apply(&mut connection).unwrap();
        let at = Position { value: Some(40.0), id: 7 };
        let tier = Filter { tier: Some("hot".into()), ..fit() };
        let range = Filter { min_value: Some(10.0), max_value: Some(50.0), ..fit() };
        let since = Filter { updated_since: Some(1), ..fit() };
        let stage = Filter { stage: Some("mql".into()), ..fit() };
        let few = Search::FewMatches(phrase("ana"));
        let many = Search::Checked("example".into());
        let short = Search::Leads(vec![3, 1, 2]);
        let (plain, none) = (fit(), Filter::default());
        let cases: Vec<(&str, &Filter, Option<&Search>, Order, Page)> = vec![
            ("first page", &plain, None, Order::ScoreDescending, Page::Offset(0)),
            ("next page", &plain, None, Order::ScoreDescending, Page::After(at)),
            ("previous page", &plain, None, Order::ScoreDescending, Page::Before(at)),
            ("ascending", &plain, None, Order::ScoreAscending, Page::After(at)),
            ("tier", &tier, None, Order::ScoreDescending, Page::After(at)),
            ("score range", &range, None, Order::ScoreDescending, Page::After(at)),
            ("updated since", &since, None, Order::ScoreDescending, Page::Offset(0)),
            ("stage", &stage, None, Order::ScoreDescending, Page::Offset(0)),
            ("search, many matches", &plain, Some(&many), Order::ScoreDescending, Page::After(at)),
            ("search, short, few matches", &plain, Some(&short), Order::ScoreDescending, Page::After(at)),
            ("search, few matches", &plain, Some(&few), Order::ScoreDescending, Page::After(at)),
            ("no model", &none, None, Order::ScoreDescending, Page::After(at)),
        ];
        for (name, filter, search, order, page) in cases {
            let (sql, parameters) = list_statement(1, filter, search, order, 50, page);
            let mut statement = connection.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let plan: Vec<String> = statement
                .query_map(rusqlite::params_from_iter(parameters), |row| row.get::<_, String>(3))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let walks = plan.iter().any(|step| step.starts_with("SCAN") && !step.contains("VIRTUAL TABLE"));
            let sorts = plan.iter().any(|step| step.contains("TEMP B-TREE"));
            assert!(!walks, "{name} walks a table: {plan:?}");
            assert!(
                !sorts || matches!(search, Some(Search::FewMatches(_) | Search::Leads(_))),
                "{name} sorts: {plan:?}"
            );
        }
    }
}
