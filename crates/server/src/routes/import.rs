//! Bulk import of leads and events from CSV, with the column names of HubSpot and Salesforce
//! exports understood out of the box and any other mapping given in the query.
//!
//! Rows are validated first; bad rows are reported by line and reason and skipped, the rest are
//! ingested (and scored) in batches through the usual path.

use std::collections::HashMap;

use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::HeaderMap;
use leadscore_core::Timestamp;
use leadscore_store::keys::Scope;
use leadscore_store::now_ms;
use serde_json::{Map, Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth;
use crate::error::{ApiError, ApiJson, RawBody};
use crate::ingest::{Kind, Message, Outcome};
use crate::openapi::ErrorBody;
use crate::routes::native::generated_id;
use crate::routes::segment::run;
use crate::state::AppState;

pub const IMPORT_LIMIT: usize = 64 * 1024 * 1024;
/// Rows ingested per writer transaction.
const CHUNK: usize = 1000;
/// Bad rows reported with their reason.
const REPORTED: usize = 100;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(import_leads))
        .routes(routes!(import_events))
        .layer(DefaultBodyLimit::max(IMPORT_LIMIT))
}

/// Export column names of common CRMs and the attribute each becomes. Other columns keep their
/// header, in snake_case.
const KNOWN_COLUMNS: &[(&str, &str)] = &[
    // HubSpot contacts export.
    ("Record ID", "id"),
    ("Contact ID", "id"),
    ("Email", "email"),
    ("First Name", "first_name"),
    ("Last Name", "last_name"),
    ("Job Title", "job_title"),
    ("Company Name", "company"),
    ("Industry", "industry"),
    ("Number of Employees", "employees"),
    ("Country/Region", "country"),
    ("Annual Revenue", "annual_revenue"),
    ("Lifecycle Stage", "crm_lifecycle_stage"),
    ("Create Date", "created_at"),
    // Salesforce leads export (labels and API names).
    ("Lead ID", "id"),
    ("Id", "id"),
    ("Title", "job_title"),
    ("Company", "company"),
    ("NumberOfEmployees", "employees"),
    ("No. of Employees", "employees"),
    ("Country", "country"),
    ("AnnualRevenue", "annual_revenue"),
    ("LeadSource", "lead_source"),
    ("Lead Source", "lead_source"),
    ("CreatedDate", "created_at"),
    ("Created Date", "created_at"),
    ("FirstName", "first_name"),
    ("LastName", "last_name"),
    ("Rating", "crm_rating"),
];

/// `Job Title` -> `job_title`.
pub fn snake_case(header: &str) -> String {
    let mut out = String::new();
    for c in header.trim().chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_string()
}

/// The attribute name of each header: the query's mapping (`map.HEADER=attribute`) first, then
/// the known CRM columns, then the header in snake_case.
fn attribute_names(header: &[String], mapping: &HashMap<String, String>) -> Vec<String> {
    header
        .iter()
        .map(|h| {
            mapping
                .get(&format!("map.{h}"))
                .cloned()
                .or_else(|| {
                    KNOWN_COLUMNS.iter().find(|(name, _)| name.eq_ignore_ascii_case(h)).map(|(_, a)| a.to_string())
                })
                .unwrap_or_else(|| snake_case(h))
        })
        .collect()
}

struct Rows {
    header: Vec<String>,
    rows: Vec<(u64, Vec<String>)>,
    bad: Vec<Value>,
    n_bad: u64,
}

fn read_csv(body: &[u8]) -> Result<Rows, ApiError> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(body);
    let header: Vec<String> = reader
        .byte_headers()
        .map_err(|e| ApiError::bad_request("invalid_csv", format!("the header line cannot be read: {e}")))?
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim_start_matches('\u{feff}').trim().to_string())
        .collect();
    if header.iter().all(String::is_empty) {
        return Err(ApiError::bad_request("invalid_csv", "the body is empty: send CSV with a header line"));
    }
    let mut rows = Rows { header, rows: Vec::new(), bad: Vec::new(), n_bad: 0 };
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                rows.reject(line, e.to_string());
                continue;
            }
        }
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != rows.header.len() {
            if record.len() == 1 && record[0].is_empty() {
                continue;
            }
            let reason = format!("{} fields where the header has {}", record.len(), rows.header.len());
            rows.reject(line, reason);
            continue;
        }
        rows.rows.push((line, record.iter().map(|f| String::from_utf8_lossy(f).trim().to_string()).collect()));
    }
    Ok(rows)
}

impl Rows {
    fn reject(&mut self, line: u64, reason: String) {
        self.n_bad += 1;
        if self.bad.len() < REPORTED {
            self.bad.push(json!({ "line": line, "reason": reason }));
        }
    }
}

/// Ingests messages in chunks; counts outcomes, reporting refusals by line.
async fn ingest_in_chunks(
    state: &AppState,
    workspace_id: i64,
    messages: Vec<(u64, Message)>,
    rows: &mut Rows,
) -> Result<(u64, u64), ApiError> {
    let (mut accepted, mut duplicates) = (0, 0);
    for chunk in messages.chunks(CHUNK) {
        let lines: Vec<u64> = chunk.iter().map(|(line, _)| *line).collect();
        let batch = chunk.iter().map(|(_, m)| Ok(m.clone())).collect();
        let ingested = run(state, workspace_id, batch, now_ms()).await?;
        for (line, outcome) in lines.into_iter().zip(ingested.items) {
            match outcome {
                Outcome::Accepted { .. } => accepted += 1,
                Outcome::Duplicate => duplicates += 1,
                Outcome::Refused { reason } => rows.reject(line, reason),
            }
        }
    }
    Ok((accepted, duplicates))
}

/// Imports leads and their attributes from CSV.
///
/// One row per lead, keyed by its id column; the other columns become attributes, named after
/// HubSpot's and Salesforce's export columns where known, else after the header in snake_case.
/// A query parameter `map.HEADER=attribute` names a column's attribute. Bad rows are reported by
/// line and skipped; the rest are imported (and scored).
#[utoipa::path(
    post,
    path = "/api/import/leads",
    tag = "import",
    operation_id = "import_leads",
    params(
        ("id" = Option<String>, Query, description = "The id column's header (default: a column named lead_id, user_id, Record ID or Lead ID)"),
    ),
    request_body(content = String, content_type = "text/csv", description = "CSV with a header line (at most 64 MB)"),
    responses(
        (status = 200, description = "`{imported, skipped, problems, columns}`: counts, the bad rows (first 100) with line and reason, and the attribute of each column", body = Object),
        (status = 400, description = "`invalid_csv`: no header line, or no id column", body = ErrorBody),
        (status = 401, description = "No key, an unknown one, or a malformed `Authorization` header", body = ErrorBody),
        (status = 403, description = "The key is not an admin key", body = ErrorBody),
        (status = 413, description = "The body is over 64 MB (`too_large`)", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn import_leads(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    RawBody(body): RawBody,
) -> Result<ApiJson<Value>, ApiError> {
    let owner = auth::authorize(&state, auth::key_from_headers(&headers)?, Scope::Admin).await?;
    let mut rows = read_csv(&body)?;
    let names = attribute_names(&rows.header, &query);
    let id_column = match query.get("id") {
        Some(column) => rows.header.iter().position(|h| h == column),
        None => names.iter().position(|n| n == "id" || n == "lead_id" || n == "user_id"),
    }
    .ok_or_else(|| {
        ApiError::bad_request(
            "invalid_csv",
            "no id column: name it lead_id, Record ID (HubSpot) or Lead ID (Salesforce), or pass ?id=COLUMN",
        )
    })?;
    let now = now_ms();
    let mut messages = Vec::new();
    for (line, fields) in std::mem::take(&mut rows.rows) {
        let id = fields[id_column].clone();
        if id.is_empty() {
            rows.reject(line, "empty lead id".to_string());
            continue;
        }
        let mut traits = Map::new();
        // Values stay text ("02134" is a postcode, not 2134); rules read numbers from text.
        for (i, (name, value)) in names.iter().zip(&fields).enumerate() {
            if i != id_column && !value.is_empty() {
                traits.insert(name.clone(), Value::String(value.clone()));
            }
        }
        let message = Message {
            kind: Kind::Identify,
            user_id: Some(id),
            anonymous_id: None,
            message_id: generated_id("import"),
            at: now,
            traits,
            properties: Map::new(),
        };
        messages.push((line, message));
    }
    let (accepted, _) = ingest_in_chunks(&state, owner.workspace_id, messages, &mut rows).await?;
    Ok(ApiJson(json!({
        "imported": accepted,
        "skipped": rows.n_bad,
        "problems": rows.bad,
        "columns": rows.header.iter().zip(&names).map(|(h, n)| json!({ "column": h, "attribute": n })).collect::<Vec<_>>(),
    })))
}

/// Imports events from CSV.
///
/// Each row needs a lead id, a type and a time (RFC 3339) column; the others become the event's
/// properties. An `event_id` / `message_id` column makes the import safe to repeat (without one,
/// each row gets an id derived from its content). Bad rows are reported by line and skipped.
#[utoipa::path(
    post,
    path = "/api/import/events",
    tag = "import",
    operation_id = "import_events",
    params(
        ("lead" = Option<String>, Query, description = "The lead id column's header (default: lead_id, user_id, userId, id, Record ID or Lead ID)"),
        ("type" = Option<String>, Query, description = "The event type column's header (default: type, event, event_type or Activity Type)"),
        ("time" = Option<String>, Query, description = "The time column's header (default: ts, timestamp, occurred_at, time or Activity Date)"),
        ("event_id" = Option<String>, Query, description = "The event id column's header (default: event_id, message_id or messageId)"),
    ),
    request_body(content = String, content_type = "text/csv", description = "CSV with a header line (at most 64 MB)"),
    responses(
        (status = 200, description = "`{imported, duplicates, skipped, problems}`: counts, and the bad rows (first 100) with line and reason", body = Object),
        (status = 400, description = "`invalid_csv`: no header line, or a lead id, type or time column missing", body = ErrorBody),
        (status = 401, description = "No key, an unknown one, or a malformed `Authorization` header", body = ErrorBody),
        (status = 403, description = "The key is not an admin key", body = ErrorBody),
        (status = 413, description = "The body is over 64 MB (`too_large`)", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn import_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    RawBody(body): RawBody,
) -> Result<ApiJson<Value>, ApiError> {
    let owner = auth::authorize(&state, auth::key_from_headers(&headers)?, Scope::Admin).await?;
    let mut rows = read_csv(&body)?;
    let find = |key: &str, names: &[&str]| -> Option<usize> {
        match query.get(key) {
            Some(column) => rows.header.iter().position(|h| h == column),
            None => names.iter().find_map(|n| rows.header.iter().position(|h| h.eq_ignore_ascii_case(n))),
        }
    };
    let lead = find("lead", &["lead_id", "user_id", "userId", "id", "Record ID", "Lead ID"]);
    let kind = find("type", &["type", "event", "event_type", "Activity Type"]);
    let time = find("time", &["ts", "timestamp", "occurred_at", "time", "Activity Date"]);
    let event_id = find("event_id", &["event_id", "message_id", "messageId"]);
    let (Some(lead), Some(kind), Some(time)) = (lead, kind, time) else {
        return Err(ApiError::bad_request(
            "invalid_csv",
            "events need a lead id (lead_id), a type (type) and a time (ts) column, or ?lead=, ?type=, ?time= naming them",
        ));
    };
    let special = [Some(lead), Some(kind), Some(time), event_id];
    let now = now_ms();
    let mut messages = Vec::new();
    for (line, fields) in std::mem::take(&mut rows.rows) {
        let at = match Timestamp::parse_rfc3339(&fields[time]) {
            Ok(at) if at.0 <= now + 5 * 60 * 1000 => at.0,
            Ok(at) => {
                rows.reject(line, format!("the time {at} is in the future"));
                continue;
            }
            Err(e) => {
                rows.reject(line, e.to_string());
                continue;
            }
        };
        if fields[lead].is_empty() || fields[kind].is_empty() {
            rows.reject(line, "empty lead id or type".to_string());
            continue;
        }
        let mut properties = Map::new();
        for (i, (header, value)) in rows.header.iter().zip(&fields).enumerate() {
            if !special.contains(&Some(i)) && !value.is_empty() {
                properties.insert(header.clone(), Value::String(value.clone()));
            }
        }
        let message_id = match event_id.map(|i| fields[i].clone()).filter(|id| !id.is_empty()) {
            Some(id) => id,
            None => format!("import-{}", content_id(&fields)),
        };
        let message = Message {
            kind: Kind::Track(fields[kind].clone()),
            user_id: Some(fields[lead].clone()),
            anonymous_id: None,
            message_id,
            at,
            traits: Map::new(),
            properties,
        };
        messages.push((line, message));
    }
    let (accepted, duplicates) = ingest_in_chunks(&state, owner.workspace_id, messages, &mut rows).await?;
    Ok(ApiJson(json!({ "imported": accepted, "duplicates": duplicates, "skipped": rows.n_bad, "problems": rows.bad })))
}

/// A stable id for a row without one (FNV-1a over its fields), so a repeated import is a no-op.
fn content_id(fields: &[String]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for field in fields {
        for byte in field.bytes().chain(std::iter::once(0x1f)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crm_columns_map_to_attributes() {
        let header: Vec<String> = ["Record ID", "Job Title", "Number of Employees", "Favourite Colour", "Custom"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mapping = HashMap::from([("map.Custom".to_string(), "segment".to_string())]);
        assert_eq!(attribute_names(&header, &mapping), ["id", "job_title", "employees", "favourite_colour", "segment"]);
        assert_eq!(snake_case("Country/Region"), "country_region");
    }
}
