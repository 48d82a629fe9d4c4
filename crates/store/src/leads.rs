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
    connection
        .prepare_cached("INSERT INTO leads (workspace_id, user_id, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)")?
        .execute(params![workspace_id, user_id, now])?;
    let id = connection.last_insert_rowid();
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
    Ok(connection.prepare_cached("SELECT coalesce(max(id), 0) + 1 FROM leads")?.query_row([], |row| row.get(0))?)
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

/// The ids of the workspace's first `limit` leads (merged ones left out), in id order: the sample
/// a model preview compares.
pub fn first_ids(connection: &Connection, workspace_id: i64, limit: u32) -> Result<Vec<i64>, StoreError> {
    ids_after(connection, workspace_id, i64::MIN, limit)
}

/// How many leads the workspace has, merged ones included.
pub fn count(connection: &Connection, workspace_id: i64) -> Result<i64, StoreError> {
    Ok(connection.query_row("SELECT count(*) FROM leads WHERE workspace_id = ?1", [workspace_id], |row| row.get(0))?)
}

/// Saves attributes (merged over the stored ones by the caller), email and state.
pub fn save(connection: &Connection, lead: &LeadRow) -> Result<(), StoreError> {
    save_with_newest_event(connection, lead, lead.last_event_id)
}

/// Same as [`save`], with `last_event_id` as the lead's newest event instead of the row's: for a
/// caller that appended events after the row was built (see [`crate::events::append`]).
pub fn save_with_newest_event(
    connection: &Connection,
    lead: &LeadRow,
    last_event_id: Option<i64>,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "UPDATE leads SET email = ?1, attributes = ?2, updated_at = ?3, last_event_at = ?4, stage = ?5,
                 state = ?6, state_model_id = ?7, last_event_id = ?9 WHERE id = ?8",
        )?
        .execute(params![
            lead.email,
            serde_json::to_string(&lead.attributes).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            lead.updated_at,
            lead.last_event_at,
            lead.stage,
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
}

/// Leads of a workspace with one score, filtered and sorted.
pub fn list(
    connection: &Connection,
    workspace_id: i64,
    filter: &Filter,
    order: Order,
    limit: u32,
    offset: u32,
) -> Result<Vec<ListedLead>, StoreError> {
    let order_by = match order {
        Order::ScoreDescending => "s.value IS NULL, s.value DESC, l.id",
        Order::ScoreAscending => "s.value IS NULL, s.value ASC, l.id",
        Order::LastActivity => "l.last_event_at IS NULL, l.last_event_at DESC, l.id",
    };
    let sql = format!(
        "SELECT l.id, l.user_id, l.email, l.stage, l.last_event_at, s.value, s.tier,
                json_extract(l.attributes, '$.name'), json_extract(l.attributes, '$.first_name'),
                json_extract(l.attributes, '$.last_name')
         FROM leads l LEFT JOIN lead_scores s ON s.lead_id = l.id AND s.score = ?2
         WHERE l.workspace_id = ?1 AND l.merged_into IS NULL
           AND (?3 IS NULL OR s.tier = ?3) AND (?4 IS NULL OR l.stage = ?4) AND (?5 IS NULL OR s.value >= ?5)
         ORDER BY {order_by} LIMIT ?6 OFFSET ?7"
    );
    let mut statement = connection.prepare(&sql)?;
    let rows = statement.query_map(
        params![workspace_id, filter.score, filter.tier, filter.stage, filter.min_value, limit, offset],
        |row| {
            Ok(ListedLead {
                id: row.get(0)?,
                user_id: row.get(1)?,
                email: row.get(2)?,
                stage: row.get(3)?,
                last_event_at: row.get(4)?,
                value: row.get(5)?,
                tier: row.get(6)?,
                name: person_name(text(row, 7)?.as_deref(), text(row, 8)?.as_deref(), text(row, 9)?.as_deref()),
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
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
}
