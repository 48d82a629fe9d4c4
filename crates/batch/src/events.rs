//! Reading the events file: blocks of whole records parsed in parallel into compact records
//! (lead, event type, time, properties), appended to per-bucket lists of leads.
//!
//! Events arrive in any order. Rather than sorting all of them by lead (a scatter over the whole
//! data set, single-threaded and cache-hostile), each parsing worker appends records to the bucket
//! of its lead, a bucket being a run of [`LEADS_PER_BUCKET`] consecutive leads; scoring then
//! groups one bucket at a time, in cache, in parallel.
//!
//! Only what the model needs is kept: events of types no rule names are counted and dropped
//! (unless an inactivity rule counts every event), and so are events after the as-of time.

use std::path::Path;

use leadscore_core::{Model, Timestamp, Value};
use rayon::prelude::*;

use crate::BatchOptions;
use crate::columns::{
    EventColumnNames, EventColumns, LEAD_ID_COLUMNS, TIME_COLUMNS, TYPE_COLUMNS, cell, header_name, sniff_separator,
    trim_bytes,
};
use crate::error::{BatchError, RowError};
use crate::ids::BATCH;
use crate::input::{Block, Blocks, Format, for_each_block, split_block, split_plain_line};
use crate::leads::{Leads, csv_reason, json_id, parse_object};
use crate::report::Problems;
use crate::times::TimeOptions;

/// Leads per bucket: a bucket's events and state fit in the CPU caches.
pub const LEADS_PER_BUCKET: usize = 4096;

pub(crate) const NO_TYPE: u32 = u32::MAX;
const NO_PROPERTIES: u32 = u32::MAX;

/// One event the model may count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventRecord {
    pub at: i64,
    pub lead: u32,
    /// The model's event type id, or `u32::MAX` for a type no rule names.
    pub event_type: u32,
    /// Index of the event's properties in [`Events::properties`] (in units of one event's
    /// properties), or `u32::MAX` when the model reads none.
    pub properties: u32,
}

/// The events of a file, by bucket of leads.
pub struct Events {
    /// For each bucket, the record lists the workers appended (in file order).
    pub buckets: Vec<Vec<Vec<EventRecord>>>,
    pub properties: Vec<Value>,
    pub n_properties: usize,
    pub read: u64,
    pub unused: u64,
    pub after_as_of: u64,
    /// Events whose lead is not in the leads file, and the first of them (line, lead id).
    pub unknown_lead: u64,
    pub first_unknown_lead: Option<(u64, String)>,
}

impl Events {
    /// No events (scoring without an events file).
    pub fn none(n_leads: usize, model: &Model) -> Events {
        Events {
            buckets: vec![Vec::new(); n_leads.div_ceil(LEADS_PER_BUCKET)],
            properties: Vec::new(),
            n_properties: model.event_properties().len(),
            read: 0,
            unused: 0,
            after_as_of: 0,
            unknown_lead: 0,
            first_unknown_lead: None,
        }
    }

    pub fn properties_of(&self, record: &EventRecord) -> &[Value] {
        if record.properties == NO_PROPERTIES {
            return &[];
        }
        let start = record.properties as usize * self.n_properties;
        &self.properties[start..start + self.n_properties]
    }
}

/// What one parallel worker made of its piece of a block.
struct Piece {
    /// The records kept, in file order, until [`Piece::distribute`] moves them to `buckets`.
    records: Vec<EventRecord>,
    buckets: Vec<Vec<EventRecord>>,
    properties: Vec<Value>,
    bad_rows: Vec<RowError>,
    skipped: u64,
    read: u64,
    unused: u64,
    after_as_of: u64,
    unknown_lead: u64,
    first_unknown_lead: Option<(u64, String)>,
}

impl Piece {
    /// An empty piece that collects its records in `records` (a worker's reused buffer).
    fn new(records: Vec<EventRecord>) -> Piece {
        Piece {
            records,
            buckets: Vec::new(),
            properties: Vec::new(),
            bad_rows: Vec::new(),
            skipped: 0,
            read: 0,
            unused: 0,
            after_as_of: 0,
            unknown_lead: 0,
            first_unknown_lead: None,
        }
    }

    /// Moves the records to their buckets, each bucket's list allocated once at its exact size
    /// (lists grown record by record cost more in fresh pages, zeroed by the kernel, than the
    /// parsing itself); gives back the emptied record buffer for the worker's next piece.
    fn distribute(&mut self, n_buckets: usize) -> Vec<EventRecord> {
        let mut counts = vec![0usize; n_buckets];
        for record in &self.records {
            counts[record.lead as usize / LEADS_PER_BUCKET] += 1;
        }
        self.buckets = counts.into_iter().map(Vec::with_capacity).collect();
        for record in &self.records {
            self.buckets[record.lead as usize / LEADS_PER_BUCKET].push(*record);
        }
        let mut records = std::mem::take(&mut self.records);
        records.clear();
        records
    }
}

/// Where each needed column is.
struct Columns {
    separator: u8,
    n_columns: usize,
    lead: usize,
    event_type: usize,
    time: usize,
    properties: Vec<Option<usize>>,
}

/// Everything a worker needs to turn a row into a record.
struct Context<'a> {
    model: &'a Model,
    leads: &'a Leads,
    /// The model's event types; few, so a scan beats hashing.
    types: Vec<(Box<[u8]>, u32)>,
    keep_unused_types: bool,
    as_of: Timestamp,
    times: &'a TimeOptions,
    file: &'a str,
    strict: bool,
    n_buckets: usize,
}

impl Context<'_> {
    fn bad(&self, piece: &mut Piece, line: u64, reason: String) -> bool {
        piece.skipped += 1;
        if piece.bad_rows.len() < 20 {
            piece.bad_rows.push(RowError { file: self.file.to_string(), line, reason });
        }
        // In strict mode the first bad row ends the piece.
        self.strict
    }

    /// Checks one event and keeps it if it counts. Returns `true` to stop (strict mode).
    fn accept(
        &self,
        piece: &mut Piece,
        line: u64,
        lead: &[u8],
        event_type: &[u8],
        time: &[u8],
        properties: impl FnOnce(&mut Vec<Value>),
    ) -> bool {
        let lead_id = trim_bytes(lead);
        let found = self.leads.find(lead_id);
        self.accept_found(piece, line, lead_id, found, event_type, time, properties)
    }

    /// [`Context::accept`] for an event whose (trimmed) lead id has been looked up already.
    #[allow(clippy::too_many_arguments)]
    fn accept_found(
        &self,
        piece: &mut Piece,
        line: u64,
        lead_id: &[u8],
        found: Option<u32>,
        event_type: &[u8],
        time: &[u8],
        properties: impl FnOnce(&mut Vec<Value>),
    ) -> bool {
        piece.read += 1;
        if lead_id.is_empty() {
            return self.bad(piece, line, "empty lead id".to_string());
        }
        let Some(lead) = found else {
            // Not a bad row: event exports often cover more leads than the file being scored.
            piece.unknown_lead += 1;
            if piece.first_unknown_lead.is_none() {
                piece.first_unknown_lead = Some((line, String::from_utf8_lossy(lead_id).into_owned()));
            }
            return false;
        };
        let time = trim_bytes(time);
        let Some(at) = self.times.parse_bytes(time) else {
            return self.bad(piece, line, self.times.error(time).to_string());
        };
        let event_type = trim_bytes(event_type);
        if event_type.is_empty() {
            return self.bad(piece, line, "empty event type".to_string());
        }
        let type_id = self.types.iter().find(|(name, _)| **name == *event_type).map_or(NO_TYPE, |(_, id)| *id);
        if type_id == NO_TYPE && !self.keep_unused_types {
            piece.unused += 1;
            return false;
        }
        if at.0 > self.as_of.0 {
            piece.after_as_of += 1;
            return false;
        }
        let n_properties = self.model.event_properties().len();
        let properties_index = match piece.properties.len().checked_div(n_properties) {
            None => NO_PROPERTIES,
            Some(index) => {
                properties(&mut piece.properties);
                index as u32
            }
        };
        debug_assert!((lead as usize / LEADS_PER_BUCKET) < self.n_buckets);
        piece.records.push(EventRecord { at: at.0, lead, event_type: type_id, properties: properties_index });
        false
    }
}

/// Reads every event of `path` that the model may count at `as_of`.
pub fn read_events(
    model: &Model,
    leads: &Leads,
    path: &Path,
    options: &BatchOptions<'_>,
    problems: &mut Problems,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Events, BatchError> {
    let format = Format::of(path)?;
    let file = path.display().to_string();
    let types = model
        .event_types()
        .iter()
        .map(|name| (name.as_bytes().into(), model.event_type(name).map_or(NO_TYPE, |id| id.0)))
        .collect();
    let n_buckets = leads.len().div_ceil(LEADS_PER_BUCKET);
    let context = Context {
        model,
        leads,
        types,
        keep_unused_types: model.needs_every_event_type(),
        as_of: options.as_of,
        times: &options.read.times,
        file: &file,
        strict: options.strict,
        n_buckets,
    };
    let blocks = Blocks::open(path, format == Format::Csv)?;
    let total_bytes = blocks.len();
    let mut events = Events::none(leads.len(), model);
    let mut done_bytes = 0u64;
    let mut columns: Option<Columns> = None;
    let parts = rayon::current_num_threads() * 4;
    let n_properties = model.event_properties().len().max(1);
    // Record buffers reused from piece to piece (as many as pieces run at once): a buffer grown
    // afresh for every piece costs its pages again.
    let buffers = std::sync::Mutex::new(Vec::<Vec<EventRecord>>::new());
    for_each_block(blocks, |block: &Block| -> Result<(), BatchError> {
        done_bytes += block.bytes.len() as u64;
        let mut body = block;
        let without_header;
        if format == Format::Csv && columns.is_none() {
            let separator = sniff_separator(&block.bytes);
            let (header, header_len) = take_header(&block.bytes, separator, &file)?;
            columns = Some(csv_columns(model, header, separator, &file, problems)?);
            without_header = Block { bytes: block.bytes[header_len..].to_vec(), first_line: block.first_line + 1 };
            body = &without_header;
        }
        let pieces = split_block(body, parts, format == Format::Csv);
        let parsed: Vec<Piece> = pieces
            .par_iter()
            .map(|(bytes, first_line)| {
                let records = buffers.lock().map(|mut b| b.pop()).ok().flatten().unwrap_or_default();
                let mut piece = match (format, &columns) {
                    (Format::Csv, Some(columns)) => parse_csv(&context, columns, bytes, *first_line, records),
                    _ => parse_json_lines(&context, bytes, *first_line, records),
                };
                let records = piece.distribute(n_buckets);
                if let Ok(mut buffers) = buffers.lock() {
                    buffers.push(records);
                }
                piece
            })
            .collect();
        for piece in parsed {
            problems.merge(piece.bad_rows, piece.skipped)?;
            let offset = (events.properties.len() / n_properties) as u32;
            for (bucket, mut records) in piece.buckets.into_iter().enumerate() {
                if records.is_empty() {
                    continue;
                }
                if offset > 0 && !piece.properties.is_empty() {
                    records.iter_mut().filter(|r| r.properties != NO_PROPERTIES).for_each(|r| r.properties += offset);
                }
                events.buckets[bucket].push(records);
            }
            events.properties.extend(piece.properties);
            events.read += piece.read;
            events.unused += piece.unused;
            events.after_as_of += piece.after_as_of;
            events.unknown_lead += piece.unknown_lead;
            if events.first_unknown_lead.is_none() {
                events.first_unknown_lead = piece.first_unknown_lead;
            }
        }
        progress(done_bytes, total_bytes);
        Ok(())
    })?;
    if format == Format::Csv && columns.is_none() {
        return Err(BatchError::BadHeader { file, message: "the file is empty: it needs a header line".to_string() });
    }
    if let Some((line, id)) = &events.first_unknown_lead {
        problems.warn(format!(
            "{file}: {} events belong to leads that are not in the leads file and were not scored (the first: line {line}, lead_id `{id}`)",
            events.unknown_lead
        ));
    }
    Ok(events)
}

/// Splits off the header record of a CSV block: its fields and the byte length it took.
fn take_header(bytes: &[u8], separator: u8, file: &str) -> Result<(Vec<String>, usize), BatchError> {
    let mut reader =
        csv::ReaderBuilder::new().delimiter(separator).has_headers(false).flexible(true).from_reader(bytes);
    let mut record = csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(true) => {
            let mut end = reader.position().byte() as usize;
            // After a CRLF header the reader stops between the `\r` and the `\n`.
            if bytes.get(end) == Some(&b'\n') {
                end += 1;
            }
            let header = record.iter().map(|s| header_name(s.as_bytes())).collect();
            Ok((header, end))
        }
        Ok(false) => Err(BatchError::BadHeader {
            file: file.to_string(),
            message: "the file is empty: it needs a header line".to_string(),
        }),
        Err(e) => Err(BatchError::BadHeader {
            file: file.to_string(),
            message: format!("unreadable header: {}", csv_reason(&e)),
        }),
    }
}

fn csv_columns(
    model: &Model,
    header: Vec<String>,
    separator: u8,
    file: &str,
    problems: &mut Problems,
) -> Result<Columns, BatchError> {
    let n_columns = header.len();
    let found = EventColumns::new(header, EventColumnNames::default())
        .map_err(|e| BatchError::BadHeader { file: file.to_string(), message: e.to_string() })?;
    let properties = model
        .event_properties()
        .iter()
        .map(|p| {
            let column = found.property(p);
            if column.is_none() {
                problems.warn(format!(
                    "{file}: no column `{p}`, which the model's event filters read: every event is missing it"
                ));
            }
            column
        })
        .collect();
    Ok(Columns { separator, n_columns, lead: found.lead, event_type: found.event_type, time: found.time, properties })
}

/// The properties the model reads, from trimmed cells (as the service's import reads them).
fn property_values<'a>(columns: &Columns, field: impl Fn(usize) -> Option<&'a [u8]>, out: &mut Vec<Value>) {
    out.extend(columns.properties.iter().map(|c| match c.and_then(&field) {
        Some(bytes) => Value::text(cell(bytes).into_owned()),
        None => Value::Missing,
    }))
}

fn parse_csv(
    context: &Context<'_>,
    columns: &Columns,
    bytes: &[u8],
    first_line: u64,
    records: Vec<EventRecord>,
) -> Piece {
    // Most event files have no quotes at all: split lines and commas directly.
    if memchr::memchr(b'"', bytes).is_none() {
        return parse_plain_csv(context, columns, bytes, first_line, records);
    }
    let mut piece = Piece::new(records);
    let mut reader =
        csv::ReaderBuilder::new().delimiter(columns.separator).has_headers(false).flexible(true).from_reader(bytes);
    let mut record = csv::ByteRecord::new();
    loop {
        let line = first_line + reader.position().line() - 1;
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                if context.bad(&mut piece, line, csv_reason(&e)) {
                    break;
                }
                continue;
            }
        }
        if record.len() != columns.n_columns {
            if record.len() == 1 && record[0].is_empty() {
                continue; // a blank line
            }
            let reason = format!("{} fields where the header has {}", record.len(), columns.n_columns);
            if context.bad(&mut piece, line, reason) {
                break;
            }
            continue;
        }
        let stop = context.accept(
            &mut piece,
            line,
            &record[columns.lead],
            &record[columns.event_type],
            &record[columns.time],
            |out| property_values(columns, |c| record.get(c), out),
        );
        if stop {
            break;
        }
    }
    piece
}

fn parse_plain_csv(
    context: &Context<'_>,
    columns: &Columns,
    bytes: &[u8],
    first_line: u64,
    records: Vec<EventRecord>,
) -> Piece {
    let mut piece = Piece::new(records);
    let mut fields = Vec::with_capacity(columns.n_columns);
    let mut batch =
        PlainRows { rows: Vec::with_capacity(BATCH), fields: Vec::with_capacity(BATCH * columns.n_columns) };
    let mut start = 0;
    let mut line = first_line;
    while start < bytes.len() {
        let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |i| start + i);
        let text = &bytes[start..end];
        start = end + 1;
        line += 1;
        let line = line - 1;
        if text.is_empty() || text == b"\r" {
            continue;
        }
        if !split_plain_line(text, columns.separator, columns.n_columns, &mut fields) {
            // The rows before this one are reported first.
            if batch.accept(context, columns, &mut piece) {
                return piece;
            }
            let reason = format!("{} fields where the header has {}", fields.len(), columns.n_columns);
            if context.bad(&mut piece, line, reason) {
                return piece;
            }
            continue;
        }
        batch.rows.push((text, line));
        batch.fields.extend_from_slice(&fields);
        if batch.rows.len() == BATCH && batch.accept(context, columns, &mut piece) {
            return piece;
        }
    }
    batch.accept(context, columns, &mut piece);
    piece
}

/// Rows of a quote-free CSV piece waiting to be accepted together, so that their leads are
/// looked up together ([`Leads::find_many`]).
struct PlainRows<'a> {
    /// Each row's text and line number.
    rows: Vec<(&'a [u8], u64)>,
    /// Each row's field boundaries, `n_columns` per row.
    fields: Vec<(usize, usize)>,
}

impl PlainRows<'_> {
    /// Accepts the waiting rows in file order and empties the batch; `true` to stop (strict mode).
    fn accept(&mut self, context: &Context<'_>, columns: &Columns, piece: &mut Piece) -> bool {
        let n = columns.n_columns;
        let count = self.rows.len();
        let mut ids: [&[u8]; BATCH] = [&[]; BATCH];
        for (i, (text, _)) in self.rows.iter().enumerate() {
            let (start, end) = self.fields[i * n + columns.lead];
            ids[i] = trim_bytes(&text[start..end]);
        }
        let mut found = [None; BATCH];
        context.leads.find_many(&ids[..count], &mut found[..count]);
        let mut stop = false;
        for (i, &(text, line)) in self.rows.iter().enumerate() {
            let fields = &self.fields[i * n..(i + 1) * n];
            let field = |c: usize| &text[fields[c].0..fields[c].1];
            stop = context.accept_found(
                piece,
                line,
                ids[i],
                found[i],
                field(columns.event_type),
                field(columns.time),
                |out| property_values(columns, |c| Some(field(c)), out),
            );
            if stop {
                break;
            }
        }
        self.rows.clear();
        self.fields.clear();
        stop
    }
}

fn parse_json_lines(context: &Context<'_>, bytes: &[u8], first_line: u64, records: Vec<EventRecord>) -> Piece {
    let mut piece = Piece::new(records);
    // A byte-order mark can only start the file's first block.
    let bytes = if first_line == 1 { bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes) } else { bytes };
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let line_number = first_line + i as u64;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let object = match parse_object(line) {
            Ok(object) => object,
            Err(reason) => {
                if context.bad(&mut piece, line_number, reason) {
                    break;
                }
                continue;
            }
        };
        let text = |keys: &[&str]| keys.iter().find_map(|k| object.get(*k)).and_then(json_id).unwrap_or_default();
        let (lead, event_type, time) = (text(LEAD_ID_COLUMNS), text(TYPE_COLUMNS), text(TIME_COLUMNS));
        let nested = object.get("properties").and_then(|p| p.as_object());
        let stop =
            context.accept(&mut piece, line_number, lead.as_bytes(), event_type.as_bytes(), time.as_bytes(), |out| {
                out.extend(context.model.event_properties().iter().map(|p| {
                    nested.and_then(|n| n.get(p)).or_else(|| object.get(p)).map_or(Value::Missing, Value::from_json)
                }))
            });
        if stop {
            break;
        }
    }
    piece
}

/// Groups one bucket's records by lead: `offsets[i]..offsets[i + 1]` of `out` are the events of
/// the bucket's i-th lead, in time order.
pub fn group_bucket(
    lists: &[Vec<EventRecord>],
    first_lead: usize,
    n_leads: usize,
    offsets: &mut Vec<usize>,
    out: &mut Vec<EventRecord>,
) {
    offsets.clear();
    offsets.resize(n_leads + 1, 0);
    for record in lists.iter().flatten() {
        offsets[record.lead as usize - first_lead + 1] += 1;
    }
    for i in 0..n_leads {
        offsets[i + 1] += offsets[i];
    }
    out.clear();
    out.resize(offsets[n_leads], EventRecord::default());
    let mut next = offsets[..n_leads].to_vec();
    for record in lists.iter().flatten() {
        let slot = &mut next[record.lead as usize - first_lead];
        out[*slot] = *record;
        *slot += 1;
    }
    for i in 0..n_leads {
        out[offsets[i]..offsets[i + 1]].sort_unstable_by_key(|r| r.at);
    }
}

#[cfg(test)]
mod tests {
    use leadscore_core::compile;

    use super::*;
    use crate::{OutputFormat, ReadOptions};

    const MODEL: &str = r#"
[scores.s]
[[scores.s.rules]]
name = "views"
event = "page_view"
points = 1
max_count = 100
"#;

    /// Scores `events` for the leads `a-1`, `b-2`, `007` and returns (output, summary).
    fn score(events: &str, strict: bool) -> Result<(String, crate::Summary), BatchError> {
        let dir = tempfile::tempdir().unwrap();
        let leads = dir.path().join("leads.csv");
        let events_path = dir.path().join("events.csv");
        std::fs::write(&leads, "lead_id\na-1\nb-2\n007\n").unwrap();
        std::fs::write(&events_path, events).unwrap();
        let model = compile(MODEL).unwrap().model;
        let options = BatchOptions {
            leads: &leads,
            events: Some(&events_path),
            as_of: Timestamp::parse_rfc3339("2026-11-01T00:00:00Z").unwrap(),
            output: OutputFormat::Csv,
            strict,
            read: ReadOptions::default(),
        };
        let mut out = Vec::new();
        let summary = crate::score_files(&model, &options, &mut out, &|_, _, _| {})?;
        Ok((String::from_utf8(out).unwrap(), summary))
    }

    #[test]
    fn rows_looked_up_in_batches_count_and_report_as_one_by_one() {
        let mut events = String::from("lead_id,type,ts\n");
        // 40 rows: more than a batch of look-ups, with bad and unknown rows among them.
        for i in 0..40 {
            let row = match i {
                5 => " ,page_view,2026-10-01T00:00:00Z".to_string(),
                17 => "a-1,page_view".to_string(),
                18 => "7,page_view,2026-10-01T00:00:00Z".to_string(),
                30 => "b-2,page_view,not a time".to_string(),
                _ => format!("{},page_view,2026-10-01T00:00:00Z", ["a-1", "b-2", "007"][i % 3]),
            };
            events.push_str(&row);
            events.push('\n');
        }
        let (out, summary) = score(&events, false).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        // Row i is lead i % 3's unless it is one of the four odd rows.
        let good: Vec<usize> = (0..40).filter(|i| ![5, 17, 18, 30].contains(i)).collect();
        let count = |k: usize| good.iter().filter(|&&i| i % 3 == k).count();
        assert_eq!(
            lines,
            [
                "lead_id,s,s_tier",
                &format!("a-1,{},", count(0)),
                &format!("b-2,{},", count(1)),
                &format!("007,{},", count(2))
            ]
        );
        assert_eq!(summary.events_unknown_lead, 1, "`7` is not `007`");
        let bad: Vec<u64> = summary.problems.first_rows.iter().map(|r| r.line).collect();
        assert_eq!(bad, [7, 19, 32], "bad rows in file order, with their lines");
        let strict = score(&events, true).unwrap_err().to_string();
        assert!(strict.contains(":7: empty lead id"), "{strict}");
    }
}
