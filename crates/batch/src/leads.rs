//! Reading the leads file into memory: each lead's id and the values of the fields the model
//! reads, in [`leadscore_core::Model::lead_fields`] order.

use std::path::Path;

use leadscore_core::{Model, Value};
use rustc_hash::FxHashMap;

use crate::ReadOptions;
use crate::columns::{LEAD_ID_COLUMNS, LeadColumns, attribute_value, cell, header_name, sniff_separator};
use crate::error::{BatchError, RowError};
use crate::ids::{IdArena, IdTable};
use crate::input::Format;
use crate::report::Problems;
use crate::times::{TimeOptions, time_attributes};

/// All leads of a file.
pub struct Leads {
    pub ids: IdArena,
    /// `ids.len() * n_fields` values, row-major.
    pub values: Vec<Value>,
    pub n_fields: usize,
    index: LeadIndex,
}

/// Finds a lead by its id. Lead ids are often database keys: when every id is a canonical
/// decimal integer (`7`, not `007` or `+7`) no string is hashed, and when they run 1, 2, 3, ...
/// in file order (a common export) the index is arithmetic. Any other ids are text, found by
/// their bytes in an [`IdTable`].
enum LeadIndex {
    /// The i-th lead's id is `base + i`.
    Sequence {
        base: u64,
    },
    /// Integer ids within a compact range: a direct table (`u32::MAX`: no lead).
    Dense {
        base: u64,
        slots: Vec<u32>,
    },
    Integers(FxHashMap<u64, u32>),
    Text(IdTable),
}

/// The value of a canonical decimal integer id.
fn canonical_integer(id: &[u8]) -> Option<u64> {
    if id.is_empty() || id.len() > 19 || (id.len() > 1 && id[0] == b'0') {
        return None;
    }
    let mut value = 0u64;
    for &b in id {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u64::from(b - b'0');
    }
    Some(value)
}

impl Leads {
    fn new(n_fields: usize) -> Leads {
        Leads { ids: IdArena::default(), values: Vec::new(), n_fields, index: LeadIndex::Sequence { base: 0 } }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Makes room for `n` more leads.
    fn reserve(&mut self, n: usize) {
        self.ids.reserve(n);
        self.values.reserve(n.saturating_mul(self.n_fields));
    }

    pub fn values_of(&self, lead: usize) -> &[Value] {
        &self.values[lead * self.n_fields..(lead + 1) * self.n_fields]
    }

    /// The index of a lead by its id.
    pub fn find(&self, id: &[u8]) -> Option<u32> {
        match &self.index {
            LeadIndex::Sequence { base } => {
                let i = canonical_integer(id)?.checked_sub(*base)?;
                (i < self.ids.len() as u64).then_some(i as u32)
            }
            LeadIndex::Dense { base, slots } => {
                let slot = canonical_integer(id)?.checked_sub(*base)?;
                slots.get(usize::try_from(slot).ok()?).copied().filter(|&i| i != u32::MAX)
            }
            LeadIndex::Integers(map) => map.get(&canonical_integer(id)?).copied(),
            LeadIndex::Text(table) => table.find(&self.ids, id),
        }
    }

    /// The leads of up to [`crate::ids::BATCH`] ids: `found[i]` is `self.find(ids[i])`. Text ids
    /// are looked up together, so that their cache misses overlap.
    pub fn find_many(&self, ids: &[&[u8]], found: &mut [Option<u32>]) {
        match &self.index {
            LeadIndex::Text(table) => table.find_many(&self.ids, ids, found),
            _ => ids.iter().zip(found).for_each(|(id, found)| *found = self.find(id)),
        }
    }

    /// Indexes the last lead of `self.ids`; `false` if an earlier lead has its id.
    fn insert_id(&mut self) -> bool {
        let next = self.ids.len() as u32 - 1;
        let id = self.ids.bytes_of(next as usize);
        let integer = canonical_integer(id);
        match (&mut self.index, integer) {
            (LeadIndex::Sequence { base }, Some(n)) if next == 0 => *base = n,
            (LeadIndex::Sequence { base }, Some(n)) if n == *base + u64::from(next) => {}
            (LeadIndex::Sequence { base }, Some(_)) => {
                let base = *base;
                self.index = LeadIndex::Integers((0..next).map(|i| (base + u64::from(i), i)).collect());
                return self.insert_id();
            }
            (LeadIndex::Integers(map), Some(n)) => {
                if map.contains_key(&n) {
                    return false;
                }
                map.insert(n, next);
            }
            (LeadIndex::Text(table), _) => return table.insert(&self.ids, next),
            (_, None) | (LeadIndex::Dense { .. }, Some(_)) => {
                // The earlier ids were all distinct integers: only the new one can repeat one.
                let mut table = IdTable::with_capacity(self.ids.len());
                (0..next).for_each(|lead| {
                    table.insert(&self.ids, lead);
                });
                let inserted = table.insert(&self.ids, next);
                self.index = LeadIndex::Text(table);
                return inserted;
            }
        }
        true
    }

    /// Turns a hashed integer index into a direct table when the ids are compact enough.
    fn seal(&mut self) {
        let LeadIndex::Integers(map) = &self.index else { return };
        let (Some(&min), Some(&max)) = (map.keys().min(), map.keys().max()) else { return };
        if max - min < 4 * map.len() as u64 + 1024 {
            let mut slots = vec![u32::MAX; (max - min) as usize + 1];
            for (&id, &i) in map {
                slots[(id - min) as usize] = i;
            }
            self.index = LeadIndex::Dense { base: min, slots };
        }
    }

    fn push(
        &mut self,
        id: &str,
        values: impl Iterator<Item = Value>,
        line: u64,
        file: &str,
        problems: &mut Problems,
    ) -> Result<(), BatchError> {
        self.ids.push(id);
        if !self.insert_id() {
            self.ids.pop();
            return problems.row(RowError {
                file: file.to_string(),
                line,
                reason: format!("lead_id `{id}` appears a second time; the first one is kept"),
            });
        }
        self.values.extend(values);
        Ok(())
    }
}

/// Reads every lead of `path`.
pub fn read_leads(
    model: &Model,
    path: &Path,
    options: &ReadOptions,
    problems: &mut Problems,
) -> Result<Leads, BatchError> {
    let fields = model.lead_fields();
    let mut leads = Leads::new(fields.len());
    let file_name = path.display().to_string();
    let time_attributes = time_attributes(Some(model));
    let times = Times {
        fields: (0..fields.len()).filter(|&i| time_attributes.iter().any(|(a, _)| *a == fields[i])).collect(),
        options: &options.times,
    };
    match Format::of(path)? {
        Format::Csv => read_csv(fields, path, &file_name, options, &times, &mut leads, problems)?,
        Format::JsonLines => read_json_lines(fields, path, &file_name, &times, &mut leads, problems)?,
    }
    leads.seal();
    Ok(leads)
}

/// The lead fields that hold a time (`created_at`), read with the time options (the fields the
/// model reads: the others are not read at all).
struct Times<'a> {
    fields: Vec<usize>,
    options: &'a TimeOptions,
}

impl Times<'_> {
    /// Rewrites the lead's time fields as the engine reads them (RFC 3339), as the service's
    /// import does; or says which is not a time.
    fn normalise(&self, fields: &[String], values: &mut [Value]) -> Result<(), String> {
        for &i in &self.fields {
            let Some(text) = values[i].as_text().map(|text| text.into_owned()) else { continue };
            match self.options.normalise(&text) {
                Ok(written) => values[i] = Value::text(written),
                Err(error) => return Err(format!("`{}`: {error}", fields[i])),
            }
        }
        Ok(())
    }
}

/// The service gives a model reading `user_id` the lead's id when no attribute holds one
/// (`crates/server/src/scoring.rs`, `lead_values`); so does a file.
fn user_id_fallback(fields: &[String], values: &mut [Value], id: &str) {
    for (field, value) in fields.iter().zip(values) {
        if field == "user_id" && value.is_missing() {
            *value = Value::text(id);
        }
    }
}

fn read_csv(
    fields: &[String],
    path: &Path,
    file: &str,
    options: &ReadOptions,
    times: &Times<'_>,
    leads: &mut Leads,
    problems: &mut Problems,
) -> Result<(), BatchError> {
    let read_error = |source: std::io::Error| BatchError::Read { path: path.to_path_buf(), source };
    let head = first_line(path).map_err(read_error)?;
    let separator = sniff_separator(&head);
    if let Ok(metadata) = std::fs::metadata(path) {
        leads.reserve(estimated_rows(&head, metadata.len()));
    }
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(separator)
        .flexible(true)
        .from_path(path)
        .map_err(|e| read_error(csv_io(e)))?;
    let header: Vec<String> = match reader.byte_headers() {
        Ok(h) => h.iter().map(header_name).collect(),
        Err(e) => {
            return Err(BatchError::BadHeader { file: file.to_string(), message: e.to_string() });
        }
    };
    let n_columns = header.len();
    let columns = LeadColumns::new(header, &options.mapping, None)
        .map_err(|e| BatchError::BadHeader { file: file.to_string(), message: e.to_string() })?;
    // Columns are read as the attributes the service's import makes of them (see `columns`).
    let field_columns: Vec<Vec<usize>> = fields.iter().map(|f| columns.columns_of(f)).collect();
    for (field, found) in fields.iter().zip(&field_columns) {
        if !found.is_empty() || field == "user_id" {
            continue;
        }
        let hint = match columns.near_miss(field) {
            Some((header, attribute)) => format!(
                " (its column `{header}` is read as `{attribute}`, as the service's import names it: name the field `{attribute}` in the model, or map the column with --map '{header}={field}')"
            ),
            None => String::new(),
        };
        problems.warn(format!("{file}: no column `{field}`, which the model reads: every lead is missing it{hint}"));
    }
    // Byte records: a stray non-UTF-8 byte in a column the model never reads must not cost the
    // lead; the fields that are used are decoded leniently.
    let mut record = csv::ByteRecord::new();
    let mut values = Vec::with_capacity(fields.len());
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    return Err(read_error(csv_io(e)));
                }
                problems.row(RowError { file: file.to_string(), line, reason: csv_reason(&e) })?;
                continue;
            }
        }
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != n_columns {
            problems.row(RowError {
                file: file.to_string(),
                line,
                reason: format!("{} fields where the header has {}", record.len(), n_columns),
            })?;
            continue;
        }
        let id = cell(record.get(columns.id).unwrap_or_default());
        if id.is_empty() {
            problems.row(RowError { file: file.to_string(), line, reason: "empty lead id".to_string() })?;
            continue;
        }
        values.clear();
        values.extend(
            field_columns
                .iter()
                .map(|found| attribute_value(found, |c| record.get(c).map(cell)).map_or(Value::Missing, Value::text)),
        );
        user_id_fallback(fields, &mut values, &id);
        if let Err(reason) = times.normalise(fields, &mut values) {
            problems.row(RowError { file: file.to_string(), line, reason })?;
            continue;
        }
        leads.push(&id, values.drain(..), line, file, problems)?;
    }
    Ok(())
}

/// About how many rows a file of `file_len` bytes holds, from the lines of its first bytes: to
/// allocate the leads' memory once rather than by doubling (each step copies everything read so
/// far into fresh pages). Memory reserved beyond the real count is never touched.
fn estimated_rows(head: &[u8], file_len: u64) -> usize {
    let lines = memchr::memchr_iter(b'\n', head).count() as u64;
    let estimate = if head.is_empty() || lines == 0 { 0 } else { file_len * lines / head.len() as u64 };
    // A row takes at least two bytes; an unusual head must not reserve more than the file holds.
    estimate.saturating_add(estimate / 16).min(file_len / 2) as usize
}

/// The start of a file, up to its first line's end (or 64 KiB), to sniff its separator from.
fn first_line(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(path)?.take(1 << 16).read_to_end(&mut head)?;
    Ok(head)
}

fn read_json_lines(
    fields: &[String],
    path: &Path,
    file: &str,
    times: &Times<'_>,
    leads: &mut Leads,
    problems: &mut Problems,
) -> Result<(), BatchError> {
    let text = std::fs::read(path).map_err(|source| BatchError::Read { path: path.to_path_buf(), source })?;
    let text = text.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&text);
    for (i, line) in text.split(|b| *b == b'\n').enumerate() {
        let line_number = i as u64 + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let object = match parse_object(line) {
            Ok(object) => object,
            Err(reason) => {
                problems.row(RowError { file: file.to_string(), line: line_number, reason })?;
                continue;
            }
        };
        let Some(id) = LEAD_ID_COLUMNS.iter().find_map(|k| object.get(*k)).and_then(json_id) else {
            problems.row(RowError {
                file: file.to_string(),
                line: line_number,
                reason: format!("no lead id: give the object one of the keys {}", LEAD_ID_COLUMNS.join(", ")),
            })?;
            continue;
        };
        // Fields may sit at the top level or under "attributes" / "traits" (Segment's name).
        let nested = ["attributes", "traits"].iter().find_map(|k| object.get(*k)).and_then(|v| v.as_object());
        let mut values: Vec<Value> = fields
            .iter()
            .map(|f| {
                let value = object.get(f).or_else(|| nested.and_then(|n| n.get(f)));
                value.map_or(Value::Missing, Value::from_json)
            })
            .collect();
        user_id_fallback(fields, &mut values, &id);
        if let Err(reason) = times.normalise(fields, &mut values) {
            problems.row(RowError { file: file.to_string(), line: line_number, reason })?;
            continue;
        }
        leads.push(&id, values.into_iter(), line_number, file, problems)?;
    }
    Ok(())
}

/// Parses one JSON Lines line into an object, or says why not.
pub(crate) fn parse_object(line: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    match serde_json::from_slice::<serde_json::Value>(line) {
        Ok(serde_json::Value::Object(object)) => Ok(object),
        Ok(_) => Err("not a JSON object".to_string()),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

/// A JSON id (string or integer) as text.
pub(crate) fn json_id(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(crate) fn csv_io(error: csv::Error) -> std::io::Error {
    match error.into_kind() {
        csv::ErrorKind::Io(io) => io,
        other => std::io::Error::other(format!("{other:?}")),
    }
}

pub(crate) fn csv_reason(error: &csv::Error) -> String {
    match error.kind() {
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_string(),
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("{len} fields where the header has {expected_len}")
        }
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leads_with(ids: &[&str]) -> Leads {
        let mut leads = Leads::new(0);
        let mut problems = Problems::new(false);
        for (line, id) in ids.iter().enumerate() {
            leads.push(id, std::iter::empty(), line as u64 + 2, "leads.csv", &mut problems).unwrap();
        }
        for id in ids {
            leads.ids.push(id);
            assert!(!leads.insert_id(), "{id} is a duplicate");
            leads.ids.pop();
        }
        leads.seal();
        leads
    }

    #[test]
    fn integer_ids_match_only_their_canonical_spelling() {
        for ids in [vec!["3", "1", "2"], vec!["5", "900000000000", "0"], vec!["1", "2", "3"], vec!["7", "8", "10"]] {
            let leads = leads_with(&ids);
            for (i, id) in ids.iter().enumerate() {
                assert_eq!(leads.find(id.as_bytes()), Some(i as u32));
            }
            assert_eq!(leads.find(b"01"), None);
            assert_eq!(leads.find(b"4"), None);
            assert_eq!(leads.find(b"-1"), None);
            assert_eq!(leads.find(b""), None);
        }
        let text = leads_with(&["7", "a-1", "8"]);
        assert_eq!(text.find(b"7"), Some(0));
        assert_eq!(text.find(b"a-1"), Some(1));
        assert_eq!(text.find(b"8"), Some(2));
        assert_eq!(text.find(b"08"), None);
        let sequence = leads_with(&["1", "2", "3"]);
        assert_eq!(sequence.find(b"4"), None);
        assert_eq!(sequence.find(b"0"), None);
    }
}
