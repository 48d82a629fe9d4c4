//! Bulk import of leads and events from CSV, with the column names of HubSpot and Salesforce
//! exports understood out of the box and any other mapping given in the query.
//!
//! Headers and cells are read by `leadscore_batch::columns`, the functions `leadscore score`
//! reads files with, so that a file gives the same leads, attributes and events both ways.
//! Rows are validated first; bad rows are reported by line and reason and skipped, the rest are
//! ingested (and scored) in batches through the usual path.
//!
//! Speed: the rows are ingested in the order of their lead id, not the file's, so that each
//! lead's rows fall in one batch (its row and scores are written once for all of them) and the
//! leads a batch touches are neighbours in the lead id index, and in the leads table when the
//! leads were imported the same way. The scores do not depend on the order of events; which of
//! two rows with the same event id counts is decided in the file's order first. A few batches
//! are in flight at once, so that the writer commits the next while the HTTP side prepares it.

use futures_util::StreamExt;
use std::collections::HashMap;

use axum::extract::{DefaultBodyLimit, Query, State};
use leadscore_batch::columns::{
    ColumnError, ColumnMap, EventColumnNames, EventColumns, LeadColumns, attribute_value, cell, header_name,
    sniff_separator,
};
use leadscore_batch::times::{TimeFormat, TimeOptions, Zone, time_attributes};
use leadscore_store::now_ms;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AdminScope, Authorized};
use crate::error::{ApiError, ApiJson, ErrorCode, RawBody};
use crate::ingest::Outcome;
use crate::intake;
use crate::messages::{Kind, Message, generated_id};
use crate::openapi::ErrorBody;
use crate::state::AppState;

pub const IMPORT_LIMIT: usize = 64 * 1024 * 1024;
/// Rows ingested per writer job.
const CHUNK: usize = 1000;
/// Writer jobs of one import queued at once: the writer commits them together. (On PostgreSQL
/// they run at once, and two that both hold rows of a new lead race to create it: the loser is
/// run again by [`intake::accept`].)
const IN_FLIGHT: usize = 4;
/// Bad rows reported with their reason.
const REPORTED: usize = 100;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(import_leads))
        .routes(routes!(import_events))
        .layer(DefaultBodyLimit::max(IMPORT_LIMIT))
}

struct Rows {
    header: Vec<String>,
    rows: Vec<(u64, Vec<String>)>,
    bad: Vec<Problem>,
    n_bad: u64,
}

/// A row skipped, and why.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ImportProblem)]
struct Problem {
    /// Its line in the file (the header is line 1).
    line: u64,
    reason: String,
}

/// The attribute a column of a leads file became.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ImportedColumn)]
struct Column {
    /// The column's header.
    column: String,
    attribute: String,
}

/// What a leads import did.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = LeadImport)]
struct LeadImportView {
    /// Rows stored as identifies of their lead.
    imported: u64,
    /// Rows skipped (all are counted).
    skipped: u64,
    /// The first 100 rows skipped, with their reason.
    problems: Vec<Problem>,
    /// The attribute each column became.
    columns: Vec<Column>,
}

/// What an events import did.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = EventImport)]
struct EventImportView {
    /// Events stored.
    imported: u64,
    /// Events whose id was already stored (a file imported again).
    duplicates: u64,
    /// Rows skipped (all are counted).
    skipped: u64,
    /// The first 100 rows skipped, with their reason.
    problems: Vec<Problem>,
}

/// The body of an import: CSV text.
struct CsvText;

impl utoipa::PartialSchema for CsvText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        crate::openapi::json_schema(serde_json::json!({
            "type": "string",
            "description": "CSV (or separated by `;` or tabs) with a header line, at most 64 MB",
        }))
    }
}

impl utoipa::ToSchema for CsvText {}

fn read_csv(body: &[u8]) -> Result<Rows, ApiError> {
    let separator = sniff_separator(body);
    let mut reader = csv::ReaderBuilder::new().delimiter(separator).flexible(true).from_reader(body);
    let header: Vec<String> = reader
        .byte_headers()
        .map_err(|e| ApiError::new(ErrorCode::InvalidCsv, format!("the header line cannot be read: {e}")))?
        .iter()
        .map(header_name)
        .collect();
    if header.iter().all(String::is_empty) {
        return Err(ApiError::new(ErrorCode::InvalidCsv, "the body is empty: send CSV with a header line"));
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
        rows.rows.push((line, record.iter().map(|f| cell(f).into_owned()).collect()));
    }
    Ok(rows)
}

impl Rows {
    fn reject(&mut self, line: u64, reason: String) {
        self.n_bad += 1;
        if self.bad.len() < REPORTED {
            self.bad.push(Problem { line, reason });
        }
    }
}

/// Checks the query's parameters: every one is among `known` (or a `map.` one when `map` is
/// allowed), and `time_format` and `time_zone` are valid; returns the time options.
fn checked_query(query: &HashMap<String, String>, known: &[&str], map: bool) -> Result<TimeOptions, ApiError> {
    let allowed = |key: &str| known.contains(&key) || (map && key.starts_with("map."));
    if let Some(unknown) = query.keys().find(|key| !allowed(key)) {
        let mut expected = known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
        if map {
            expected.push_str(", `map.HEADER`");
        }
        return Err(ApiError::new(ErrorCode::InvalidQuery, format!("unknown parameter `{unknown}`: use {expected}")));
    }
    let invalid =
        |parameter: &str, message: String| ApiError::new(ErrorCode::InvalidQuery, format!("`{parameter}`: {message}"));
    for (key, attribute) in query.iter().filter(|(key, _)| key.starts_with("map.")) {
        if key == "map." {
            return Err(invalid(key, "name the column after `map.`: `map.HEADER=attribute`".to_string()));
        }
        if attribute.trim().is_empty() {
            return Err(invalid(key, "name the attribute the column becomes: `map.HEADER=attribute`".to_string()));
        }
    }
    let format = match query.get("time_format") {
        Some(text) => TimeFormat::parse(text).map_err(|e| invalid("time_format", e))?,
        None => TimeFormat::default(),
    };
    let zone = match query.get("time_zone") {
        Some(text) => Zone::parse(text).map_err(|e| invalid("time_zone", e))?,
        None => Zone::default(),
    };
    Ok(TimeOptions { format, zone })
}

/// The lead attributes read as times, with whether the workspace's active model reads each (see
/// `time_attributes`: `leadscore score` reads a file's with the same function).
async fn lead_time_attributes(state: &AppState, workspace_id: i64) -> Result<Vec<(String, bool)>, ApiError> {
    let models = state.models.clone();
    let attributes = state
        .storage
        .read(move |reads| {
            let model = match reads.active_model(workspace_id)? {
                Some(version) => Some(models.get(reads, &version)?),
                None => None,
            };
            Ok(time_attributes(model.as_deref()))
        })
        .await?;
    Ok(attributes)
}

/// Ingests messages in chunks, in the order of their lead id (see the module's doc); counts
/// outcomes, reporting refusals by line. A row whose event id an earlier line of the file has
/// is a duplicate, whatever its lead.
///
/// The chunks are ingested by a task of their own, which goes on to the end of the file if the
/// request is dropped (a client that gave up, the handler's deadline): a file is imported whole
/// or, if storage fails, up to the failing chunk, never cut at an arbitrary place.
async fn ingest_in_chunks(
    state: &AppState,
    workspace_id: i64,
    mut messages: Vec<(u64, Message)>,
    rows: &mut Rows,
) -> Result<(u64, u64), ApiError> {
    let mut duplicates = 0;
    let mut first = std::collections::HashSet::with_capacity(messages.len());
    messages.retain(|(_, message)| {
        // A row that ingestion refuses does not take its id (as in one request).
        let kept = message.check_limits().is_err() || first.insert(message.message_id.clone());
        duplicates += u64::from(!kept);
        kept
    });
    drop(first);
    messages.sort_by(|(_, a), (_, b)| a.user_id.cmp(&b.user_id));
    let state = state.clone();
    let outcomes = tokio::spawn(async move {
        let mut chunks = Vec::with_capacity(messages.len().div_ceil(CHUNK));
        let mut messages = messages.into_iter().peekable();
        while messages.peek().is_some() {
            chunks.push(messages.by_ref().take(CHUNK).collect::<Vec<_>>());
        }
        let now = now_ms();
        let state = &state;
        let mut ingested = futures_util::stream::iter(chunks.into_iter().map(|chunk| {
            let (lines, batch): (Vec<u64>, Vec<_>) = chunk.into_iter().map(|(line, m)| (line, Ok(m))).unzip();
            async move { (lines, intake::accept(state, workspace_id, batch, now).await) }
        }))
        .buffered(IN_FLIGHT);
        let mut outcomes = Vec::new();
        while let Some((lines, result)) = ingested.next().await {
            outcomes.extend(lines.into_iter().zip(result?.items));
        }
        Ok::<_, ApiError>(outcomes)
    });
    let outcomes = outcomes.await.map_err(|error| {
        tracing::error!(%error, "an import's task stopped");
        ApiError::internal()
    })??;
    let mut accepted = 0;
    for (line, outcome) in outcomes {
        match outcome {
            Outcome::Accepted { .. } => accepted += 1,
            Outcome::Duplicate => duplicates += 1,
            Outcome::Refused { reason } => rows.reject(line, reason),
            Outcome::Suppressed => rows.reject(
                line,
                "the person this row names was erased and is suppressed: not imported (see GET /api/erasures)"
                    .to_string(),
            ),
        }
    }
    Ok((accepted, duplicates))
}

/// Imports leads and their attributes from CSV.
///
/// One row per lead, keyed by its id column; the other columns become attributes, named after
/// HubSpot's and Salesforce's export columns where known, else after the header in snake_case.
/// A query parameter `map.HEADER=attribute` names a column's attribute; `created_at` is read as
/// a time (`time_format`, `time_zone`). Bad rows are reported by line and skipped; the rest are
/// imported (and scored).
#[utoipa::path(
    post,
    path = "/api/import/leads",
    tag = "import",
    operation_id = "import_leads",
    params(
        ("id" = Option<String>, Query, description = "The id column's header (default: the first of lead_id, user_id, userId, id, lead, contact_id, Record ID, Contact ID, Lead ID)"),
        ("time_format" = Option<String>, Query, description = "How `created_at` values are written: iso (default), dmy, mdy or a strftime pattern"),
        ("time_zone" = Option<String>, Query, description = "The time zone of times without an offset: an IANA name, UTC (default) or an offset"),
    ),
    request_body(content = CsvText, content_type = "text/csv", description = "CSV with a header line (at most 64 MB); any `Content-Type` is accepted"),
    responses(
        (status = 200, description = "Counts, the bad rows (first 100) with line and reason, and the attribute of each column", body = LeadImportView),
        (status = 400, description = "`invalid_csv`: no header line, or no id column; `invalid_query`: an unknown parameter, a bad `time_format` or `time_zone`, or a column named that the file does not have", body = ErrorBody),
        (status = 413, description = "The body is over 64 MB (`too_large`)", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn import_leads(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    Authorized { owner, .. }: Authorized<AdminScope>,
    RawBody(body): RawBody,
) -> Result<ApiJson<LeadImportView>, ApiError> {
    let times = checked_query(&query, &["id", "time_format", "time_zone"], true)?;
    let time_attributes = lead_time_attributes(&state, owner.workspace_id).await?;
    let mut rows = read_csv(&body)?;
    let mapping = ColumnMap(
        query
            .iter()
            .filter_map(|(key, attribute)| Some((key.strip_prefix("map.")?.to_string(), attribute.clone())))
            .collect(),
    );
    let columns = LeadColumns::new(rows.header.clone(), &mapping, query.get("id").map(String::as_str))
        .map_err(|e| column_error(e, &[("lead id", "id")]))?;
    let attributes = columns.all();
    let now = now_ms();
    let mut messages = Vec::new();
    for (line, fields) in std::mem::take(&mut rows.rows) {
        let id = fields[columns.id].clone();
        if id.is_empty() {
            rows.reject(line, "empty lead id".to_string());
            continue;
        }
        let mut traits = Map::new();
        // Values stay text ("02134" is a postcode, not 2134); rules read numbers from text.
        let mut bad_time = None;
        for (name, found) in &attributes {
            let Some(mut value) = attribute_value(found, |c| fields.get(c).map(String::as_str)).map(str::to_string)
            else {
                continue;
            };
            // A creation time is stored as the engine reads it, as `leadscore score` reads it; one
            // that is no time makes a bad row when the model reads it, as in a file.
            if let Some((_, read)) = time_attributes.iter().find(|(a, _)| a == name) {
                match times.normalise(&value) {
                    Ok(written) => value = written,
                    Err(error) if *read => bad_time = Some(format!("`{name}`: {error}")),
                    Err(_) => {}
                }
            }
            traits.insert(name.to_string(), Value::String(value));
        }
        if let Some(reason) = bad_time {
            rows.reject(line, reason);
            continue;
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
    Ok(ApiJson(LeadImportView {
        imported: accepted,
        skipped: rows.n_bad,
        problems: rows.bad,
        columns: columns
            .header
            .iter()
            .zip(&columns.attributes)
            .map(|(column, attribute)| Column { column: column.clone(), attribute: attribute.clone() })
            .collect(),
    }))
}

/// Imports events from CSV.
///
/// Each row needs a lead id, a type and a time column (RFC 3339, `2026-11-20 10:00:00`, a date,
/// or as `time_format` says, in `time_zone` when it has no offset); the others become the event's
/// properties. An `event_id` / `message_id` column makes the import safe to repeat (without one,
/// each row gets an id derived from its content). Bad rows are reported by line and skipped.
#[utoipa::path(
    post,
    path = "/api/import/events",
    tag = "import",
    operation_id = "import_events",
    params(
        ("lead" = Option<String>, Query, description = "The lead id column's header (default: the first of lead_id, user_id, userId, id, lead, contact_id, Record ID, Contact ID, Lead ID)"),
        ("type" = Option<String>, Query, description = "The event type column's header (default: type, event, event_type, name or Activity Type)"),
        ("time" = Option<String>, Query, description = "The time column's header (default: ts, timestamp, occurred_at, time or Activity Date)"),
        ("event_id" = Option<String>, Query, description = "The event id column's header (default: event_id, message_id or messageId)"),
        ("time_format" = Option<String>, Query, description = "How times are written: iso (default: RFC 3339, 2026-11-20 10:00:00 or 2026-11-20), dmy, mdy or a strftime pattern"),
        ("time_zone" = Option<String>, Query, description = "The time zone of times without an offset: an IANA name, UTC (default) or an offset"),
    ),
    request_body(content = CsvText, content_type = "text/csv", description = "CSV with a header line (at most 64 MB); any `Content-Type` is accepted"),
    responses(
        (status = 200, description = "Counts, and the bad rows (first 100) with line and reason", body = EventImportView),
        (status = 400, description = "`invalid_csv`: no header line, or a lead id, type or time column missing; `invalid_query`: an unknown parameter, a bad `time_format` or `time_zone`, or a column named that the file does not have", body = ErrorBody),
        (status = 413, description = "The body is over 64 MB (`too_large`)", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn import_events(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    Authorized { owner, .. }: Authorized<AdminScope>,
    RawBody(body): RawBody,
) -> Result<ApiJson<EventImportView>, ApiError> {
    let times = checked_query(&query, &["lead", "type", "time", "event_id", "time_format", "time_zone"], false)?;
    let mut rows = read_csv(&body)?;
    let named = |key: &str| query.get(key).map(String::as_str);
    let names = EventColumnNames {
        lead: named("lead"),
        event_type: named("type"),
        time: named("time"),
        event_id: named("event_id"),
    };
    let columns = EventColumns::new(rows.header.clone(), names).map_err(|e| {
        column_error(e, &[("lead id", "lead"), ("event type", "type"), ("time", "time"), ("event id", "event_id")])
    })?;
    let (lead, kind, time, event_id) = (columns.lead, columns.event_type, columns.time, columns.event_id);
    let now = now_ms();
    let mut messages = Vec::new();
    let mut content_ids = ContentIds::default();
    for (line, fields) in std::mem::take(&mut rows.rows) {
        let at = match times.parse(&fields[time]) {
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
            if columns.is_property(i) && !value.is_empty() {
                properties.insert(header.clone(), Value::String(value.clone()));
            }
        }
        let message_id = match event_id.map(|i| fields[i].clone()).filter(|id| !id.is_empty()) {
            Some(id) => id,
            None => content_ids.next(&fields),
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
    Ok(ApiJson(EventImportView { imported: accepted, duplicates, skipped: rows.n_bad, problems: rows.bad }))
}

/// The answer to a header without a column the import needs (`invalid_csv`), or without the
/// column a query parameter names (`invalid_query`). `parameters` gives the query parameter that
/// names each kind of column.
fn column_error(error: ColumnError, parameters: &[(&str, &str)]) -> ApiError {
    let parameter = |what: &str| parameters.iter().find(|(w, _)| *w == what).map_or("", |(_, p)| *p);
    match error {
        ColumnError::Missing { what, .. } => {
            ApiError::new(ErrorCode::InvalidCsv, format!("{error}, or name it with ?{}=COLUMN", parameter(what)))
        }
        ColumnError::UnknownNamed(column, what) => ApiError::new(
            ErrorCode::InvalidQuery,
            format!(
                "`{}`: the file has no column `{column}` (its columns are named in the header line)",
                parameter(what)
            ),
        ),
        ColumnError::UnknownMapped(column) => {
            ApiError::new(ErrorCode::InvalidQuery, format!("`map.{column}`: the file has no column `{column}`"))
        }
    }
}

/// Ids for the rows of a file that have none: derived from the row's content and its occurrence
/// among the file's identical rows (`import-HASH`, then `import-HASH-2`, ...). Identical rows are
/// as many events, as `leadscore score` counts them and as the model format says (identical
/// events are separate occurrences), while importing the same file again stores nothing new.
#[derive(Default)]
struct ContentIds {
    seen: HashMap<u64, u32>,
}

impl ContentIds {
    fn next(&mut self, fields: &[String]) -> String {
        let hash = content_hash(fields);
        let occurrence = self.seen.entry(hash).or_insert(0);
        *occurrence += 1;
        // The first occurrence keeps the id earlier versions gave every copy of the row, so that
        // a file imported by them is still recognised.
        match *occurrence {
            1 => format!("import-{hash:016x}"),
            n => format!("import-{hash:016x}-{n}"),
        }
    }
}

/// FNV-1a over a row's (trimmed) cells.
fn content_hash(fields: &[String]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for field in fields {
        for byte in field.bytes().chain(std::iter::once(0x1f)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn identical_rows_are_separate_events_and_a_second_import_finds_the_same_ids() {
        let rows = [
            row(&["7", "page_view", "2026-11-01T10:00:00Z", "/docs"]),
            row(&["7", "page_view", "2026-11-01T10:00:00Z", "/docs"]),
            row(&["7", "page_view", "2026-11-01T10:00:00Z", "/pricing"]),
            row(&["7", "page_view", "2026-11-01T10:00:00Z", "/docs"]),
        ];
        let first: Vec<String> = {
            let mut ids = ContentIds::default();
            rows.iter().map(|r| ids.next(r)).collect()
        };
        let again: Vec<String> = {
            let mut ids = ContentIds::default();
            rows.iter().map(|r| ids.next(r)).collect()
        };
        assert_eq!(first, again);
        let distinct: std::collections::HashSet<&String> = first.iter().collect();
        assert_eq!(distinct.len(), 4, "{first:?}");
        assert_eq!(first[1], format!("{}-2", first[0]));
        assert_eq!(first[3], format!("{}-3", first[0]));
        // The first copy's id is the one every copy got before: FNV-1a of the cells.
        assert_eq!(first[0], "import-9175e8b637b200ad");
    }
}
