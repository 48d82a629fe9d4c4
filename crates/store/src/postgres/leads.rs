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
use crate::postgres::tx::Tx;

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

/// How a write reads a lead it may save: locked until its transaction ends, so that what it
/// saves is what it read (see `storage/postgres.rs`, [`crate::storage::postgres::PgTransaction`]).
/// A read leaves the rows unlocked.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Lock {
    None,
    ForUpdate,
}

impl Lock {
    /// The clause that locks the rows of `table` (an alias) as read, if this locks.
    fn clause(self, table: &str) -> String {
        match self {
            Lock::None => String::new(),
            Lock::ForUpdate => format!(" FOR UPDATE OF {table}"),
        }
    }
}

/// The workspace's next `limit` leads in id order after `after_id` (merged ones left out), whole
/// rows in one query: a batch of a pass over every lead (a rescoring, a model preview), locked in
/// id order with [`Lock::ForUpdate`].
pub(crate) fn rows_after(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    after_id: i64,
    limit: u32,
    lock: Lock,
) -> Result<Vec<LeadRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM leads WHERE workspace_id = $1 AND id > $2 AND merged_into IS NULL ORDER BY id LIMIT $3{}",
        lock.clause("leads")
    );
    let rows = connection.query(&sql, &[&workspace_id, &after_id, &i64::from(limit)])?;
    rows.iter().map(from_row).collect()
}

/// A lead of the workspace by its own id (not a merged one).
pub(crate) fn by_id(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    id: i64,
    lock: Lock,
) -> Result<Option<LeadRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM leads WHERE workspace_id = $1 AND id = $2 AND merged_into IS NULL{}",
        lock.clause("leads")
    );
    connection.query_opt(&sql, &[&workspace_id, &id])?.as_ref().map(from_row).transpose()
}

pub(crate) fn by_user_id(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    user_id: &str,
    lock: Lock,
) -> Result<Option<LeadRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM leads WHERE workspace_id = $1 AND user_id = $2 AND merged_into IS NULL{}",
        lock.clause("leads")
    );
    connection.query_opt(&sql, &[&workspace_id, &user_id])?.as_ref().map(from_row).transpose()
}

pub(crate) fn by_anonymous_id(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    anonymous_id: &str,
    lock: Lock,
) -> Result<Option<LeadRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS_OF_L} FROM leads l JOIN anonymous_ids a ON a.lead_id = l.id
         WHERE a.workspace_id = $1 AND a.anonymous_id = $2 AND l.merged_into IS NULL{}",
        lock.clause("l")
    );
    connection.query_opt(&sql, &[&workspace_id, &anonymous_id])?.as_ref().map(from_row).transpose()
}

/// Anonymous ids and the lead each is linked to.
pub(crate) type AnonymousLinks = Vec<(String, i64)>;

/// The leads an ingestion finds by its user ids and anonymous ids (merged ones left out), in id
/// order, each locked until the transaction ends: another instance ingesting for the same lead
/// waits for this one, and then reads what it wrote. With the leads the anonymous ids lead to
/// (which may have moved while the locks were awaited).
///
/// Identities are locked first ([`lock_identities`]), then rows: two requests creating one new
/// lead run one after the other, and two requests never wait for each other in a cycle. A request
/// naming one identity (most single events) skips the identity lock when that identity has a
/// lead: its lead's row lock orders it, and holding nothing else while it waits, it can close no
/// cycle. When its identity has no lead yet, it takes the identity's lock then and looks again (a
/// request that held the lock may have created the lead meanwhile). Taking rows first in every
/// request deadlocked batches creating leads (a lead created while one request waited is then
/// locked after identities that another holds while it waits for the row).
pub(crate) fn lock_for_ingestion(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    user_ids: &[&str],
    anonymous_ids: &[&str],
) -> Result<(Vec<LeadRow>, AnonymousLinks), StoreError> {
    if user_ids.is_empty() && anonymous_ids.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let distinct: std::collections::HashSet<(bool, &str)> =
        user_ids.iter().map(|id| (true, *id)).chain(anonymous_ids.iter().map(|id| (false, *id))).collect();
    if distinct.len() > 1 {
        lock_identities(connection, workspace_id, user_ids, anonymous_ids)?;
        return lock_leads_of(connection, workspace_id, user_ids, anonymous_ids);
    }
    let (leads, links) = lock_leads_of(connection, workspace_id, user_ids, anonymous_ids)?;
    let has_lead = match (user_ids.first(), anonymous_ids.first()) {
        (Some(user_id), _) => leads.iter().any(|lead| lead.user_id.as_deref() == Some(*user_id)),
        (None, Some(_)) => !links.is_empty(),
        (None, None) => false,
    };
    if has_lead {
        return Ok((leads, links));
    }
    lock_identities(connection, workspace_id, user_ids, anonymous_ids)?;
    lock_leads_of(connection, workspace_id, user_ids, anonymous_ids)
}

/// The leads of the user ids and anonymous ids (merged ones left out), locked in id order, with
/// the lead each anonymous id leads to, read once the locks are held.
fn lock_leads_of(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    user_ids: &[&str],
    anonymous_ids: &[&str],
) -> Result<(Vec<LeadRow>, AnonymousLinks), StoreError> {
    let mut leads: Vec<LeadRow> = connection
        .query(&lock_statement(), &[&workspace_id, &user_ids, &anonymous_ids])?
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
        // Rare (a merge committed while this waited), and locked after the others, out of id
        // order: should that deadlock with another ingestion, PostgreSQL undoes one of them,
        // which fails as unavailable and may be sent again.
        let sql = format!(
            "SELECT {COLUMNS_OF_L} FROM leads l
             WHERE l.id IN (SELECT unnest($1::bigint[])) AND l.merged_into IS NULL ORDER BY l.id FOR UPDATE OF l"
        );
        for row in connection.query(&sql, &[&missing])? {
            leads.push(from_row(&row)?);
        }
        leads.sort_by_key(|lead| lead.id);
    }
    let links = links.into_iter().filter(|(_, id)| leads.iter().any(|lead| lead.id == *id)).collect();
    Ok((leads, links))
}

/// The leads of a workspace (`$1`) with a user id of `$2` or an anonymous id of `$3`, merged ones
/// left out, locked in id order.
///
/// Rows are sorted, then locked in that order; a row changed meanwhile is checked again against
/// the conditions (a lead merged away drops out). The ids are found first, each identity through
/// its index, then the rows by primary key (a join): a condition `user_id = ANY(..) OR id IN (..)`
/// on the rows themselves is read by scanning every lead of the workspace, and so is
/// `id = ANY(ARRAY(..))` in the plan PostgreSQL keeps for a prepared statement, which reads the
/// whole index of unmerged leads by workspace (`leads::tests::an_ingestion_reads_only_the_leads_it_names`).
fn lock_statement() -> String {
    format!(
        "SELECT {COLUMNS_OF_L} FROM leads l
         WHERE l.id IN (
                   SELECT id FROM leads WHERE workspace_id = $1 AND user_id = ANY($2)
                   UNION
                   SELECT lead_id FROM anonymous_ids WHERE workspace_id = $1 AND anonymous_id = ANY($3))
           AND l.merged_into IS NULL
         ORDER BY l.id FOR UPDATE OF l"
    )
}

/// Locks each identity an ingestion names (a user id or an anonymous id of the workspace) until
/// the transaction ends, so that two requests naming one identity run one after the other,
/// across instances, even when no lead has it yet: the second then finds the lead the first
/// created. Without it both would create the lead, and the one committing second would fail on
/// the unique user id and be run again; under a burst of new users that was most requests.
///
/// Transaction-level advisory locks, one per identity (its hash: two identities sharing one only
/// wait for each other), taken in the order of their keys in one statement, before any row lock
/// but a lone identity's (see [`lock_for_ingestion`]): two requests never wait for each other's
/// identities in a cycle. Each is an entry of
/// PostgreSQL's lock table (`max_locks_per_transaction`, 64 per connection by default, shared),
/// which holds requests of a few hundred distinct identities at once; a batch of thousands of
/// identities may need it raised.
fn lock_identities(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    user_ids: &[&str],
    anonymous_ids: &[&str],
) -> Result<(), StoreError> {
    let mut keys: Vec<i64> = user_ids
        .iter()
        .map(|id| identity_key(workspace_id, "user", id))
        .chain(anonymous_ids.iter().map(|id| identity_key(workspace_id, "anonymous", id)))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    // Functions of the select list are evaluated after the sort (the order they lock in).
    connection.execute(
        "SELECT pg_advisory_xact_lock(k.key) FROM unnest($1::bigint[]) WITH ORDINALITY AS k (key, n) ORDER BY k.n",
        &[&keys],
    )?;
    Ok(())
}

/// The advisory lock key of an identity: the first 8 bytes of a SHA-256, the same in every
/// instance whatever its build.
fn identity_key(workspace_id: i64, kind: &str, id: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("leadscore identity {workspace_id} {kind} {id}").as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("a SHA-256 has 32 bytes"))
}

/// The lead (not a merged one) each of `anonymous_ids` that has one is linked to.
fn anonymous_links(
    connection: &mut Tx<'_>,
    workspace_id: i64,
    anonymous_ids: &[&str],
) -> Result<AnonymousLinks, StoreError> {
    if anonymous_ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = connection.query(
        "SELECT a.anonymous_id, a.lead_id FROM anonymous_ids a JOIN leads l ON l.id = a.lead_id
         WHERE a.workspace_id = $1 AND a.anonymous_id = ANY($2) AND l.merged_into IS NULL",
        &[&workspace_id, &anonymous_ids],
    )?;
    rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect()
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

/// [`save_with_newest_event`] for several leads in one statement: each row with its newest
/// event. The rows are an ingestion's, locked (or created) by its transaction already.
pub(crate) fn save_all_with_newest_event(
    connection: &mut Tx<'_>,
    leads: &[(&LeadRow, Option<i64>)],
) -> Result<(), StoreError> {
    if leads.is_empty() {
        return Ok(());
    }
    crate::postgres::events::append_saving_rows(connection, &[], leads)?;
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::postgres::testing::TestDatabase;

    /// A workspace named `name`, made here rather than by its own family's queries.
    pub(crate) fn workspace(t: &mut Tx<'_>, name: &str) -> i64 {
        t.query_one("INSERT INTO workspaces (name, created_at) VALUES ($1, 0) RETURNING id", &[&name]).unwrap().get(0)
    }

    /// A new lead, as an ingestion creates one: its id reserved, then stored.
    pub(crate) fn create(t: &mut Tx<'_>, workspace_id: i64, user_id: Option<&str>, now: i64) -> LeadRow {
        let id = reserve_ids(t, 1).unwrap();
        insert_new(t, workspace_id, &[(id, user_id.map(String::from))], now).unwrap();
        by_id(t, workspace_id, id, crate::postgres::leads::Lock::None).unwrap().unwrap()
    }

    /// Saves the row as it is, its newest event included (SQLite's `leads::save` but the stage).
    pub(crate) fn save(t: &mut Tx<'_>, lead: &LeadRow) {
        save_with_newest_event(t, lead, lead.last_event_id).unwrap();
    }

    /// Whether another session finds the lead's row locked.
    fn locked_elsewhere(other: &mut crate::postgres::Connection, id: i64) -> bool {
        let mut other_t = other.transaction();
        let taken = other_t.query("SELECT id FROM leads WHERE id = $1 FOR UPDATE NOWAIT", &[&id]);
        taken.err().and_then(|e| e.code().cloned()) == Some(postgres::error::SqlState::LOCK_NOT_AVAILABLE)
    }

    /// Returns once a session of the database waits for a lock; fails if `second` ends first (it
    /// did not wait).
    fn until_it_waits<T>(database: &TestDatabase, second: &std::thread::JoinHandle<T>) {
        let mut watcher = postgres::Client::connect(&database.url, postgres::NoTls).unwrap();
        while watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .unwrap()
            .get::<_, i64>(0)
            == 0
        {
            assert!(!second.is_finished(), "the second ingestion did not wait for the first");
            std::thread::yield_now();
        }
    }

    #[test]
    fn lead_ids_are_reserved_in_blocks_and_a_lead_needs_one() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut t = client.transaction();
        let w = workspace(&mut t, "w");
        assert_eq!(reserve_ids(&mut t, 0).unwrap(), 0, "no id reserved");
        let first = reserve_ids(&mut t, 3).unwrap();
        assert!(first > 0);
        assert_eq!(reserve_ids(&mut t, 1).unwrap(), first + 3, "the block's ids are not handed out again");
        insert_new(&mut t, w, &[(first + 1, Some("b".into())), (first, None)], 7).unwrap();
        assert_eq!(
            by_id(&mut t, w, first, crate::postgres::leads::Lock::None).unwrap(),
            Some(new_row(first, w, None, 7)),
            "the row its caller keeps"
        );
        assert_eq!(
            by_user_id(&mut t, w, "b", crate::postgres::leads::Lock::None).unwrap(),
            Some(new_row(first + 1, w, Some("b"), 7))
        );
        t.execute("SAVEPOINT before_zero", &[]).unwrap();
        assert!(insert_new(&mut t, w, &[(0, None)], 7).is_err(), "0 is what no reservation hands out");
    }

    /// A reservation that fails leaves no lock behind on its connection for the others to wait
    /// for.
    #[test]
    fn a_failed_reservation_keeps_no_lock() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        client.batch_execute("SELECT setval('lead_ids', 9223372036854775800)").unwrap();
        let mut t = client.transaction();
        assert!(reserve_ids(&mut t, 100).is_err(), "past the largest id");
        let mut other = database.migrated_client();
        // Bounds a failure only: a reservation left locked would make this one wait forever.
        other.batch_execute("SET lock_timeout = '10s'").unwrap();
        let mut other_t = other.transaction();
        assert!(reserve_ids(&mut other_t, 2).unwrap() > 0);
    }

    #[test]
    fn a_user_id_stored_by_another_request_at_once_is_sent_again() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut t = client.transaction();
        let w = workspace(&mut t, "w");
        create(&mut t, w, Some("ana"), 0);
        let id = reserve_ids(&mut t, 1).unwrap();
        let error = insert_new(&mut t, w, &[(id, Some("ana".into()))], 0).unwrap_err();
        assert!(matches!(error, StoreError::RolledBack(_)), "{error:?}");
    }

    #[test]
    fn anonymous_ids_link_to_the_lead_given_last_and_list_in_byte_order() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut t = client.transaction();
        let w = workspace(&mut t, "w");
        let (a, b) = (create(&mut t, w, Some("a"), 0), create(&mut t, w, None, 0));
        let given = [("v-b".to_string(), b.id), ("V-a".to_string(), a.id), ("v-b".to_string(), a.id)];
        link_anonymous_ids(&mut t, w, &given).unwrap();
        link_anonymous_ids(&mut t, w, &[("w".to_string(), a.id)]).unwrap();
        assert_eq!(
            by_anonymous_id(&mut t, w, "v-b", crate::postgres::leads::Lock::None).unwrap().map(|l| l.id),
            Some(a.id),
            "the last link"
        );
        let found = links(&mut t, w, a.id).unwrap();
        assert_eq!(found.anonymous_ids, ["V-a", "v-b", "w"], "upper case first, as bytes sort");
        assert!(links(&mut t, w, b.id).unwrap().anonymous_ids.is_empty());
        set_user_id(&mut t, b.id, "b").unwrap();
        assert_eq!(by_user_id(&mut t, w, "b", crate::postgres::leads::Lock::None).unwrap().map(|l| l.id), Some(b.id));
    }

    /// The leads an ingestion finds stay locked until its transaction ends: another transaction
    /// cannot take them meanwhile.
    #[test]
    fn an_ingestion_locks_the_leads_it_finds() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let (w, a, b, other) = {
            let mut t = client.transaction();
            let w = workspace(&mut t, "w");
            let (a, b, other) =
                (create(&mut t, w, Some("a"), 0), create(&mut t, w, None, 0), create(&mut t, w, None, 0));
            link_anonymous_ids(&mut t, w, &[("visitor".to_string(), b.id)]).unwrap();
            t.commit().unwrap();
            (w, a.id, b.id, other.id)
        };
        let mut t = client.transaction();
        let (leads, links) = lock_for_ingestion(&mut t, w, &["a", "nobody"], &["visitor", "unknown"]).unwrap();
        assert_eq!(leads.iter().map(|l| l.id).collect::<Vec<_>>(), [a, b]);
        assert_eq!(links, [("visitor".to_string(), b)]);
        let mut other_client = database.migrated_client();
        let mut locked = |id: i64| locked_elsewhere(&mut other_client, id);
        assert!(locked(a) && locked(b));
        assert!(!locked(other), "a lead not asked for is not locked");
        t.commit().unwrap();
        assert!(!locked(a), "until the transaction ends");
    }

    /// A write's reads of leads lock them until it ends, so that another instance's ingestion of
    /// one waits instead of committing between the read and the write that follows it; a read's
    /// lock nothing.
    #[test]
    fn a_writes_reads_of_leads_lock_them() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let (w, a, b, c) = {
            let mut t = client.transaction();
            let w = workspace(&mut t, "w");
            let (a, b, c) = (create(&mut t, w, Some("a"), 0), create(&mut t, w, None, 0), create(&mut t, w, None, 0));
            link_anonymous_ids(&mut t, w, &[("visitor".to_string(), c.id)]).unwrap();
            t.commit().unwrap();
            (w, a.id, b.id, c.id)
        };
        let mut other_client = database.migrated_client();
        let mut locked = |id: i64| locked_elsewhere(&mut other_client, id);
        for lock in [Lock::None, Lock::ForUpdate] {
            let mut t = client.transaction();
            by_user_id(&mut t, w, "a", lock).unwrap().unwrap();
            by_id(&mut t, w, b, lock).unwrap().unwrap();
            by_anonymous_id(&mut t, w, "visitor", lock).unwrap().unwrap();
            let expected = lock == Lock::ForUpdate;
            assert_eq!([locked(a), locked(b), locked(c)], [expected; 3]);
            t.rollback().unwrap();
            let mut t = client.transaction();
            assert_eq!(rows_after(&mut t, w, b, 10, lock).unwrap().len(), 1);
            assert_eq!([locked(b), locked(c)], [false, expected], "the batch's leads only");
        }
    }

    /// The leads an ingestion names are found through the indexes of their identities, not by
    /// reading every lead of the workspace.
    #[test]
    fn an_ingestion_reads_only_the_leads_it_names() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut t = client.transaction();
        let w = workspace(&mut t, "w");
        t.batch_execute(
            "INSERT INTO leads (id, workspace_id, user_id, created_at, updated_at)
             SELECT nextval('lead_ids'), 1, 'u' || i, 0, 0 FROM generate_series(1, 5000) i;
             ANALYZE leads",
        )
        .unwrap();
        assert_eq!(w, 1);
        let (user_ids, anonymous_ids) = (vec!["u7", "u4000"], vec!["visitor"]);
        // The plan for these values, and the one a prepared statement keeps for any values (a
        // statement the client prepares and keeps is planned so after its first runs).
        t.batch_execute(&format!("PREPARE locking (bigint, text[], text[]) AS {}", lock_statement())).unwrap();
        for mode in ["force_custom_plan", "force_generic_plan"] {
            t.batch_execute(&format!("SET LOCAL plan_cache_mode = {mode}")).unwrap();
            let plan: Vec<String> = t
                .query("EXPLAIN EXECUTE locking (1, '{u7,u4000}', '{visitor}')", &[])
                .unwrap()
                .iter()
                .map(|row| row.get(0))
                .collect();
            let plan = plan.join("\n");
            assert!(!plan.contains("Seq Scan on leads") && !plan.contains("using leads_workspace"), "{mode}: {plan}");
        }
        let (leads, _) = lock_for_ingestion(&mut t, w, &user_ids, &anonymous_ids).unwrap();
        assert_eq!(leads.iter().map(|l| l.user_id.as_deref()).collect::<Vec<_>>(), [Some("u7"), Some("u4000")]);
    }

    /// Two ingestions for one lead at once: the second waits for the first's locks, then reads
    /// its events and newest event, so that it links after them and finds its message stored.
    #[test]
    fn a_second_ingestion_of_a_lead_reads_what_the_first_wrote() {
        use crate::events::NewEvent;
        use crate::postgres::events::{LeadEvents, append_all, of_lead, stored_message_ids};
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let w = {
            let mut t = client.transaction();
            let w = workspace(&mut t, "w");
            create(&mut t, w, Some("ana"), 0);
            t.commit().unwrap();
            w
        };
        // What an ingestion does with its snapshot: append its event if new, save the lead.
        fn ingest(t: &mut Tx<'_>, w: i64, message_id: &str) -> Result<bool, StoreError> {
            let (leads, _) = lock_for_ingestion(t, w, &["ana"], &[])?;
            if !stored_message_ids(t, w, &[message_id])?.is_empty() {
                return Ok(false);
            }
            let none = serde_json::Map::new();
            let events = [NewEvent { message_id, event_type: "visit", at: 1, received_at: 1, properties: &none }];
            let lead = &leads[0];
            let appended =
                [LeadEvents { workspace_id: w, lead_id: lead.id, newest: lead.last_event_id, events: &events }];
            let (newest, _) = append_all(t, &appended)?;
            save_with_newest_event(t, lead, newest[0])?;
            Ok(true)
        }
        let mut first = client.transaction();
        assert!(ingest(&mut first, w, "m1").unwrap());
        let url = database.url.clone();
        let second = std::thread::spawn(move || {
            let mut client = crate::postgres::Connection::connect_url(&url);
            let mut t = client.transaction();
            let stored = (ingest(&mut t, w, "m1").unwrap(), ingest(&mut t, w, "m2").unwrap());
            t.commit().unwrap();
            stored
        });
        // The second waits for the lead's lock; the first then commits.
        until_it_waits(&database, &second);
        first.commit().unwrap();
        assert_eq!(second.join().unwrap(), (false, true), "m1 stored by the first, m2 by the second");
        let mut t = client.transaction();
        let lead = by_user_id(&mut t, w, "ana", crate::postgres::leads::Lock::None).unwrap().unwrap();
        let events: Vec<String> = of_lead(&mut t, &lead).unwrap().into_iter().map(|e| e.message_id).collect();
        assert_eq!(events, ["m1", "m2"], "one chain, each event linked after the other's");
    }

    /// Rows saved together are saved as one at a time saves them, each with its newest event.
    /// Two ingestions naming a user no lead has yet: the second waits for the first and finds
    /// the lead it created, instead of creating it too and failing on the unique user id.
    #[test]
    fn a_second_ingestion_of_a_new_user_finds_the_lead_the_first_created() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let w = {
            let mut t = client.transaction();
            let w = workspace(&mut t, "w");
            t.commit().unwrap();
            w
        };
        let mut first = client.transaction();
        let (found, _) = lock_for_ingestion(&mut first, w, &["new", "other"], &["visitor"]).unwrap();
        assert!(found.is_empty());
        let created = create(&mut first, w, Some("new"), 0);
        let url = database.url.clone();
        let second = std::thread::spawn(move || {
            let mut client = crate::postgres::Connection::connect_url(&url);
            let mut t = client.transaction();
            let (found, _) = lock_for_ingestion(&mut t, w, &["new"], &[]).unwrap();
            found.into_iter().map(|lead| lead.id).collect::<Vec<_>>()
        });
        until_it_waits(&database, &second);
        first.commit().unwrap();
        assert_eq!(second.join().unwrap(), [created.id]);
        // Another identity of the workspace, or the same one of another, does not wait.
        let mut first = client.transaction();
        lock_for_ingestion(&mut first, w, &["new"], &[]).unwrap();
        let mut other = database.migrated_client();
        let mut t = other.transaction();
        t.batch_execute("SET LOCAL lock_timeout = '2s'").unwrap();
        let other_workspace = workspace(&mut t, "v");
        lock_for_ingestion(&mut t, w, &["someone else"], &["new"]).unwrap();
        lock_for_ingestion(&mut t, other_workspace, &["new"], &[]).unwrap();
    }

    #[test]
    fn rows_saved_together_are_saved_as_one_by_one() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut t = client.transaction();
        let w = workspace(&mut t, "w");
        let (mut a, mut b) = (create(&mut t, w, Some("a"), 0), create(&mut t, w, None, 0));
        a.email = Some("a@example.com".into());
        a.attributes.insert("name".into(), "Ana".into());
        (a.updated_at, a.last_event_at, a.state, a.state_model_id) = (5, Some(4), Some("{}".into()), Some(3));
        b.updated_at = 6;
        let untouched = create(&mut t, w, Some("c"), 0);
        save_all_with_newest_event(&mut t, &[(&a, Some(11)), (&b, None)]).unwrap();
        save_all_with_newest_event(&mut t, &[]).unwrap();
        let expected = [LeadRow { last_event_id: Some(11), ..a }, b, untouched];
        assert_eq!(rows_after(&mut t, w, 0, 10, crate::postgres::leads::Lock::None).unwrap(), expected);
        let text: String =
            t.query_one("SELECT search_text FROM leads WHERE id = $1", &[&expected[0].id]).unwrap().get(0);
        assert_eq!(text, "a@example.com\nAna");
    }

    #[test]
    fn a_field_counts_when_some_lead_holds_a_value_for_it() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut t = client.transaction();
        let fields: Vec<String> =
            ["industry", "size", "blank", "email", "user_id", "created_at", "other"].map(String::from).to_vec();
        let w = workspace(&mut t, "w");
        let before = fields_no_lead_has(&mut t, w, &fields).unwrap();
        let mut lead = create(&mut t, w, None, 0);
        let attributes = serde_json::json!({"industry": "Technology", "size": null, "blank": " \t "});
        lead.attributes = attributes.as_object().unwrap().clone();
        save(&mut t, &lead);
        let mut other = create(&mut t, w, None, 0);
        other.email = Some("a@b.example".into());
        save(&mut t, &other);
        let after = fields_no_lead_has(&mut t, w, &fields).unwrap();
        let elsewhere = workspace(&mut t, "x");
        assert_eq!(before, ["industry", "size", "blank", "email", "user_id", "created_at", "other"]);
        assert_eq!(after, ["size", "blank", "user_id", "other"]);
        assert_eq!(fields_no_lead_has(&mut t, elsewhere, &fields[..1]).unwrap(), ["industry"]);
        assert_eq!(count(&mut t, w).unwrap(), 2);
        assert_eq!(first_ids(&mut t, w, 1).unwrap(), [lead.id]);
        assert_eq!(ids_after(&mut t, w, lead.id, 5).unwrap(), [other.id]);
        assert_eq!(rows_after(&mut t, w, 0, 5, crate::postgres::leads::Lock::None).unwrap(), [lead, other]);
    }

    /// A workspace of leads with names in several scripts and scores with many ties, beside
    /// another workspace's lead that must never show. The same leads as SQLite's tests list.
    fn listed_workspace(t: &mut Tx<'_>) -> i64 {
        let w = workspace(t, "w");
        let names = ["Zofia Wójcik", "Иван Петров", "王芳", "田中 美咲", "ANNA Nowak", "Мария Иванова"];
        for i in 0..60_i64 {
            let mut lead = create(t, w, Some(&format!("u{i}")), 0);
            lead.email = Some(format!("lead{i}@example.com"));
            let name = names[i as usize % names.len()];
            lead.attributes =
                serde_json::json!({"name": name, "company": format!("Firma {}", i % 4)}).as_object().unwrap().clone();
            lead.updated_at = i * 1000;
            save(t, &lead);
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
            let mut stored = crate::postgres::scores::stored(t, lead.id).unwrap();
            crate::postgres::scores::save_over(
                t,
                lead.id,
                &mut stored,
                &[row],
                "event",
                crate::scores::History::EveryChange,
                &[],
            )
            .unwrap();
        }
        let other = workspace(t, "x");
        let mut stranger = create(t, other, Some("s"), 0);
        stranger.email = Some("lead1@example.com".into());
        save(t, &stranger);
        w
    }

    fn fit() -> Filter {
        Filter { score: "fit".into(), ..Filter::default() }
    }

    /// Walks every page forwards with cursors, then backwards from the end.
    fn walk(t: &mut Tx<'_>, workspace_id: i64, filter: &Filter, order: Order, size: u32) -> Vec<ListedLead> {
        let position = |lead: &ListedLead| Position { value: lead.value, id: lead.id };
        let mut read = |page: Page| list(t, workspace_id, filter, order, size, page).unwrap();
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
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut t = client.transaction();
        let w = listed_workspace(&mut t);
        for (order, size) in [(Order::ScoreDescending, 8), (Order::ScoreAscending, 7), (Order::ScoreDescending, 1)] {
            let listed = walk(&mut t, w, &fit(), order, size);
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
        let offset = list(&mut t, w, &fit(), Order::ScoreDescending, 8, Page::Offset(8)).unwrap();
        assert_eq!(offset, walk(&mut t, w, &fit(), Order::ScoreDescending, 8)[8..16], "offsets page alike");
        let hot = Filter { tier: Some("hot".into()), min_value: Some(45.0), max_value: Some(60.0), ..fit() };
        let listed = walk(&mut t, w, &hot, Order::ScoreDescending, 3);
        assert_eq!(listed.len(), 16);
        assert!(listed.iter().all(|l| l.value.unwrap() >= 50.0 && l.tier.as_deref() == Some("hot")));
        let recent = Filter { updated_since: Some(50_000), ..fit() };
        assert_eq!(walk(&mut t, w, &recent, Order::ScoreAscending, 4).len(), 10);
        // Without a model, leads are listed newest first.
        let all = walk(&mut t, w, &Filter::default(), Order::ScoreDescending, 9);
        let ids: Vec<i64> = all.iter().map(|l| l.id).collect();
        let mut newest_first = ids.clone();
        newest_first.sort_by(|a, b| b.cmp(a));
        assert_eq!((ids.len(), &ids), (60, &newest_first));
        assert!(all.iter().all(|l| l.value.is_none() && l.tier.is_none() && !l.overridden));
        // By activity, by offset, leads without the score too.
        let by_activity = list(&mut t, w, &fit(), Order::LastActivity, 100, Page::Offset(0)).unwrap();
        assert_eq!(by_activity.len(), 60);
        assert_eq!(by_activity[0].company.as_deref(), Some("Firma 0"));
        assert_eq!(by_activity[1].name.as_deref(), Some("Иван Петров"));
        // An e-mail, exactly but for ASCII case.
        let email = Filter { email: Some(" LEAD1@example.COM ".into()), ..fit() };
        let found = list(&mut t, w, &email, Order::ScoreDescending, 10, Page::Offset(0)).unwrap();
        assert_eq!(found.iter().map(|l| l.user_id.as_deref()).collect::<Vec<_>>(), [Some("u1")]);
    }

    #[test]
    fn a_text_search_finds_latin_cyrillic_and_chinese_in_any_case() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut t = client.transaction();
        let w = listed_workspace(&mut t);
        let found = |t: &mut Tx<'_>, text: &str| {
            let filter = Filter { text: Some(text.to_string()), ..fit() };
            let mut names: Vec<String> =
                walk(t, w, &filter, Order::ScoreDescending, 4).into_iter().map(|l| l.name.unwrap()).collect();
            names.sort();
            names.dedup();
            names
        };
        assert_eq!(found(&mut t, "wÓjc"), ["Zofia Wójcik"], "Latin, any case");
        assert_eq!(found(&mut t, "иВАН"), ["Иван Петров", "Мария Иванова"], "Cyrillic, any case");
        assert_eq!(found(&mut t, "王芳"), ["王芳"], "two Chinese characters, below a trigram");
        assert_eq!(found(&mut t, "美"), ["田中 美咲"]);
        assert_eq!(found(&mut t, "Ив"), ["Иван Петров", "Мария Иванова"], "a short search folds case too");
        assert_eq!(found(&mut t, "anna"), ["ANNA Nowak"]);
        let company = Filter { text: Some("FIRMA 3".into()), ..fit() };
        assert_eq!(walk(&mut t, w, &company, Order::ScoreDescending, 4).len(), 15, "the company");
        assert_eq!(found(&mut t, "lead1@"), ["Иван Петров"], "the e-mail, and no other workspace's lead");
        assert!(found(&mut t, "\"x").is_empty(), "quotes are text");
        assert!(found(&mut t, "%").is_empty() && found(&mut t, "a_n").is_empty(), "so are wildcards");
        let filter = Filter { text: Some("example.com".into()), ..fit() };
        assert_eq!(walk(&mut t, w, &filter, Order::ScoreDescending, 7).len(), 60);
        // A changed name is found by its new text only.
        let mut lead = by_user_id(&mut t, w, "u2", crate::postgres::leads::Lock::None).unwrap().unwrap();
        lead.attributes.insert("name".into(), "Agnieszka Kowalska".into());
        save(&mut t, &lead);
        let filter = Filter { text: Some("王芳".into()), ..fit() };
        assert_eq!(walk(&mut t, w, &filter, Order::ScoreDescending, 50).len(), 9);
        assert_eq!(found(&mut t, "kowalska"), ["Agnieszka Kowalska"]);
    }

    /// The common pages have an index to read in the list's order: with sorting made as costly as
    /// the planner allows, none of their plans sorts. (Which index a small table is read by is
    /// the planner's choice; that one exists is the schema's.)
    #[test]
    fn the_common_pages_have_an_index_in_their_order() {
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut t = client.transaction();
        let w = listed_workspace(&mut t);
        t.batch_execute("ANALYZE; SET LOCAL enable_sort = off; SET LOCAL enable_seqscan = off").unwrap();
        let at = Position { value: Some(40.0), id: 7 };
        let tier = Filter { tier: Some("hot".into()), ..fit() };
        let range = Filter { min_value: Some(10.0), max_value: Some(50.0), ..fit() };
        let (plain, none) = (fit(), Filter::default());
        let cases: Vec<(&str, &Filter, Order, Page)> = vec![
            ("first page", &plain, Order::ScoreDescending, Page::Offset(0)),
            ("next page", &plain, Order::ScoreDescending, Page::After(at)),
            ("previous page", &plain, Order::ScoreDescending, Page::Before(at)),
            ("ascending", &plain, Order::ScoreAscending, Page::After(at)),
            ("tier", &tier, Order::ScoreDescending, Page::After(at)),
            ("score range", &range, Order::ScoreDescending, Page::After(at)),
            ("no model", &none, Order::ScoreDescending, Page::After(at)),
        ];
        for (name, filter, order, page) in cases {
            let (sql, parameters) = list_statement(w, filter, order, 50, page);
            let parameters: Vec<&(dyn ToSql + Sync)> = parameters.iter().map(|p| p.as_ref()).collect();
            let plan: Vec<String> =
                t.query(&format!("EXPLAIN {sql}"), &parameters).unwrap().iter().map(|row| row.get(0)).collect();
            assert!(!plan.iter().any(|step| step.contains("Sort")), "{name} sorts: {plan:#?}");
        }
    }

    /// The search text is what SQLite's triggers write for the same lead, whatever its fields
    /// hold (text, numbers, booleans, objects, nothing).
    #[test]
    fn the_search_text_is_sqlites() {
        let attributes = [
            serde_json::json!({}),
            serde_json::json!({"name": " Ana ", "company": "Acme"}),
            serde_json::json!({"first_name": "Zofia", "last_name": "Wójcik", "company": 42}),
            serde_json::json!({"first_name": "Zofia", "company": 1.5}),
            serde_json::json!({"last_name": true, "name": null, "company": {"a": [1, "b"]}}),
            serde_json::json!({"name": false, "company": ["x", 2]}),
        ];
        let emails = [None, Some("ana@example.com"), None, Some(""), Some("x@y"), None];
        let dir = tempfile::tempdir().unwrap();
        let sqlite = crate::Store::open(dir.path()).unwrap();
        let attributes_sqlite = attributes.clone();
        let in_sqlite: Vec<Option<String>> = sqlite
            .write_blocking(move |c| {
                let w = crate::workspaces::find_or_create(c, "w", 0)?;
                let mut texts = Vec::new();
                for (attributes, email) in attributes_sqlite.iter().zip(emails) {
                    let mut lead = crate::leads::create(c, w.id, None, 0)?;
                    lead.attributes = attributes.as_object().unwrap().clone();
                    lead.email = email.map(String::from);
                    crate::leads::save(c, &lead)?;
                    let text =
                        c.query_row("SELECT text FROM lead_search WHERE rowid = ?1", [lead.id], |row| row.get(0)).ok();
                    texts.push(text);
                }
                Ok(texts)
            })
            .unwrap();
        let Some(database) = TestDatabase::create() else { return };
        let mut client = database.migrated_client();
        let mut t = client.transaction();
        let w = workspace(&mut t, "w");
        for ((attributes, email), sqlite_text) in attributes.iter().zip(emails).zip(in_sqlite) {
            let mut lead = create(&mut t, w, None, 0);
            lead.attributes = attributes.as_object().unwrap().clone();
            lead.email = email.map(String::from);
            save(&mut t, &lead);
            let text: String = t.query_one("SELECT search_text FROM leads WHERE id = $1", &[&lead.id]).unwrap().get(0);
            // SQLite leaves a lead without e-mail and attributes out of its index: no text.
            assert_eq!(text, sqlite_text.unwrap_or_default(), "{attributes} {email:?}");
        }
    }
}
