//! Data sets of past leads: a CSV table with typed columns, and the encoder that turns it into numeric features.
//!
//! Why it is written here: no Rust crate gives scikit-learn-equivalent preprocessing. linfa and smartcore start
//! from a numeric matrix and leave imputation, scaling and one-hot encoding to the user, and on tabular lead data
//! those choices (not the solver) decide most of the gap in ROC AUC to a scikit-learn baseline. This module
//! reproduces, on purpose and checked against scikit-learn by `tests/it/logistic_vs_sklearn.rs`, the pipeline
//!
//! ```text
//! ColumnTransformer([
//!     ("num",  Pipeline([SimpleImputer(strategy="median", add_indicator=True), StandardScaler()]), numeric),
//!     ("cat",  OneHotEncoder(handle_unknown="ignore"), categorical),
//!     ("bool", "passthrough", boolean),      # after mapping yes/true -> 1, no/false -> 0
//! ])
//! ```
//!
//! # Reading
//! [`Table::from_csv_reader`] keeps a header and the rows as text. Cells are trimmed; an empty cell and the tokens
//! in [`MISSING_TOKENS`](leadscore_core::value::MISSING_TOKENS) are missing
//! ([`leadscore_core::value::is_missing_token`]). Errors name the file, the line and the column.
//!
//! # Column kinds ([`ColumnKind`]), inferred from the non-missing cells of the whole table
//! Cells read as numbers and booleans by the core's one rule ([`leadscore_core::value::read_number`],
//! [`leadscore_core::value::read_bool`]), as the scoring rules read them.
//! - **Numeric** when every value parses as a finite `f64`. A column of only `0` and `1` is **numeric** (it is
//!   standardised like any number), though each of its cells reads as a boolean: that is what scikit-learn does
//!   with such a column in a numeric list, and a 0/1 column is as often a count or a code as it is a flag. A
//!   column with no value at all is numeric.
//! - **Boolean** otherwise, when every value is a boolean: `yes`/`no`, `true`/`false` (any case), mixed with
//!   `1`/`0` or not.
//! - **Date** when every value is an RFC 3339 time (any UTC offset) or a `YYYY-MM-DD` date: used as a number, the
//!   days since 1970-01-01 UTC (fractional for times), so that "signed up before March" is one split or one slope.
//! - **Categorical** otherwise.
//!
//! # Encoding ([`Encoder`]), learned on the training rows only
//! - numeric (and date, as days): median imputation, then standardisation with the mean and the population standard
//!   deviation of the training rows after imputation (a constant column gets scale 1). If the column had missing
//!   values in the training rows, a missing indicator `column=<missing>` is added, standardised the same way
//!   (scikit-learn's scaler sees the indicator too).
//! - categorical: one-hot over the values seen in training (sorted; a missing cell is its own value `<missing>`).
//!   With `min_count > 1`, values seen fewer times are grouped into `column=<other>`. A value never seen in
//!   training encodes as all zeros (`handle_unknown="ignore"`).
//! - boolean: 1 for yes/true/1, 0 for no/false/0; if the training rows had missing values, missing is 0 and an
//!   unscaled indicator `column=<missing>` is added.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;

use leadscore_core::value::{is_missing_token, read_bool, read_number};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// The one-hot value that stands for a missing categorical cell, and the suffix of missing indicators.
pub const MISSING_CATEGORY: &str = "<missing>";

/// The one-hot value that groups categories seen fewer than `min_count` times in training.
pub const OTHER_CATEGORY: &str = "<other>";

/// Why a table could not be read, a target derived or features encoded.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{file}: cannot read the header: {message}")]
    Header { file: String, message: String },
    #[error("{file}: the header is empty")]
    EmptyHeader { file: String },
    #[error("{file}: line 1: column {column} \"{name}\" appears twice in the header")]
    DuplicateColumn { file: String, column: usize, name: String },
    #[error("{file}: line {line}: {message}")]
    Csv { file: String, line: u64, message: String },
    #[error("{file}: line {line}: expected {expected} fields as in the header, found {found}")]
    RaggedRow { file: String, line: u64, expected: usize, found: usize },
    #[error("{file}: no column \"{column}\"")]
    UnknownColumn { file: String, column: String },
    #[error("{file}: line {line}: column \"{column}\": the target is missing")]
    MissingTarget { file: String, line: u64, column: String },
    #[error(
        "{file}: column \"{column}\": the target must have exactly two distinct values unless the positive value is \
         given, found {values:?}"
    )]
    TargetNotBinary { file: String, column: String, values: Vec<String> },
    #[error(
        "{file}: column \"{column}\": cannot tell which of {values:?} is the positive outcome (none is yes/true/1): \
         name it"
    )]
    AmbiguousPositive { file: String, column: String, values: Vec<String> },
    #[error("{file}: column \"{column}\": the positive value \"{positive}\" never occurs")]
    PositiveNotFound { file: String, column: String, positive: String },
    #[error("{file}: line {line}: column \"{column}\": \"{value}\" is not a number (or, in a date column, a date)")]
    NotNumeric { file: String, line: u64, column: String, value: String },
    #[error(
        "{file}: line {line}: column \"{column}\": \"{value}\" is not a boolean (yes/no, true/false, 1/0, or yes/no in another language of docs/model-format.md, such as oui/non)"
    )]
    NotBoolean { file: String, line: u64, column: String, value: String },
    #[error("{file}: row index {row} is out of range ({rows} rows)")]
    RowOutOfRange { file: String, row: usize, rows: usize },
    #[error("{file}: no training rows to learn the encoding from")]
    NoRows { file: String },
}

/// The kind of a column, inferred by [`Table::from_csv_reader`] (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    Numeric,
    Boolean,
    Categorical,
    /// RFC 3339 times or `YYYY-MM-DD` dates, used as numbers: days since 1970-01-01 (UTC).
    Date,
}

/// A table read from CSV: column names, cells as text (`None` = missing), the kind of each column.
#[derive(Debug, Clone)]
pub struct Table {
    name: String,
    columns: Vec<String>,
    kinds: Vec<ColumnKind>,
    /// The cells column by column: one allocation per column rather than one per cell, and a column's texts next
    /// to each other, which is how training and evaluation read them.
    cells: Vec<ColumnCells>,
    lines: Vec<u64>,
}

/// The cells of one column: their texts one after another in `text`, cell `r` ending at `ends[r]` and starting
/// where cell `r − 1` ends. A missing cell is empty (a present cell never is: the empty text means missing).
#[derive(Debug, Clone, Default)]
struct ColumnCells {
    text: String,
    ends: Vec<usize>,
}

impl ColumnCells {
    /// Appends a cell, `None` when missing.
    fn push(&mut self, cell: Option<&str>) {
        if let Some(text) = cell {
            self.text.push_str(text);
        }
        self.ends.push(self.text.len());
    }

    fn get(&self, row: usize) -> Option<&str> {
        let start = if row == 0 { 0 } else { self.ends[row - 1] };
        let text = &self.text[start..self.ends[row]];
        (!text.is_empty()).then_some(text)
    }

    /// The present cells.
    fn present(&self) -> impl Iterator<Item = &str> + Clone {
        (0..self.ends.len()).filter_map(|r| self.get(r))
    }
}

/// `str::trim`, quicker for the usual cell that starts and ends with a visible ASCII character (then nothing is
/// to be trimmed, and the general trim decodes characters from both ends to find that out).
fn trim(cell: &str) -> &str {
    let visible = |b: Option<&u8>| b.is_some_and(|b| (b'!'..=b'~').contains(b));
    if visible(cell.as_bytes().first()) && visible(cell.as_bytes().last()) { cell } else { cell.trim() }
}

/// Days since 1970-01-01T00:00Z of an RFC 3339 time (any UTC offset) or a `YYYY-MM-DD` date (midnight UTC).
pub fn parse_date(cell: &str) -> Option<f64> {
    let at = if cell.len() == 10 {
        leadscore_core::Timestamp::parse_rfc3339(&format!("{cell}T00:00:00Z"))
    } else {
        leadscore_core::Timestamp::parse_rfc3339(cell)
    };
    Some(at.ok()?.0 as f64 / 86_400_000.0)
}

/// A present cell as a number: the days of a date column, the number of any other.
pub(crate) fn number_of(cell: &str, date: bool) -> Option<f64> {
    if date { parse_date(cell) } else { read_number(cell) }
}

impl Table {
    /// Reads a CSV with a header line. `name_for_errors` (usually the file path) starts every error message.
    pub fn from_csv_reader<R: Read>(reader: R, name_for_errors: &str) -> Result<Table, DatasetError> {
        let file = name_for_errors.to_string();
        // Fields are trimmed below as they are stored: the reader's own trimming of fields rebuilds every record.
        let mut csv = csv::ReaderBuilder::new().has_headers(true).trim(csv::Trim::Headers).from_reader(reader);
        let header = csv.headers().map_err(|e| DatasetError::Header { file: file.clone(), message: e.to_string() })?;
        let columns: Vec<String> = header.iter().map(str::to_string).collect();
        if columns.is_empty() || columns.iter().all(String::is_empty) {
            return Err(DatasetError::EmptyHeader { file });
        }
        let mut seen = HashSet::new();
        for (i, name) in columns.iter().enumerate() {
            if !seen.insert(name.as_str()) {
                return Err(DatasetError::DuplicateColumn { file, column: i + 1, name: name.clone() });
            }
        }
        let mut cells = vec![ColumnCells::default(); columns.len()];
        let mut lines = Vec::new();
        let mut record = csv::StringRecord::new();
        loop {
            match csv.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {
                    lines.push(record.position().map_or(0, |p| p.line()));
                    for (column, cell) in cells.iter_mut().zip(&record) {
                        let cell = trim(cell);
                        column.push((!is_missing_token(cell)).then_some(cell));
                    }
                }
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    return Err(match e.kind() {
                        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => DatasetError::RaggedRow {
                            file,
                            line,
                            expected: *expected_len as usize,
                            found: *len as usize,
                        },
                        _ => DatasetError::Csv { file, line, message: e.to_string() },
                    });
                }
            }
        }
        let kinds = cells.par_iter().map(|c| infer_kind(c.present())).collect();
        Ok(Table { name: file, columns, kinds, cells, lines })
    }

    /// Reads JSON Lines: one object per line; the columns are every key met, in order of first
    /// appearance. Numbers and booleans become their text, `null` and absent keys are missing, and
    /// nested objects or arrays are kept as their JSON text.
    pub fn from_json_lines_reader<R: Read>(reader: R, name_for_errors: &str) -> Result<Table, DatasetError> {
        let file = name_for_errors.to_string();
        let mut columns: Vec<String> = Vec::new();
        let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        // IndexMap keeps the keys in the order they are written (serde_json's map sorts them).
        let mut objects: Vec<(u64, indexmap::IndexMap<String, serde_json::Value>)> = Vec::new();
        for (i, line) in std::io::BufRead::lines(std::io::BufReader::new(reader)).enumerate() {
            let line_number = i as u64 + 1;
            let line =
                line.map_err(|e| DatasetError::Csv { file: file.clone(), line: line_number, message: e.to_string() })?;
            let line = line.trim().trim_start_matches('\u{feff}');
            if line.is_empty() {
                continue;
            }
            let object = match serde_json::from_str::<serde_json::Value>(line) {
                Ok(serde_json::Value::Object(_)) => {
                    serde_json::from_str::<indexmap::IndexMap<String, serde_json::Value>>(line).map_err(|e| {
                        DatasetError::Csv {
                            file: file.clone(),
                            line: line_number,
                            message: format!("invalid JSON: {e}"),
                        }
                    })?
                }
                Ok(_) => {
                    let message = "not a JSON object".to_string();
                    return Err(DatasetError::Csv { file, line: line_number, message });
                }
                Err(e) => {
                    return Err(DatasetError::Csv { file, line: line_number, message: format!("invalid JSON: {e}") });
                }
            };
            for key in object.keys() {
                if !index.contains_key(key) {
                    index.insert(key.clone(), columns.len());
                    columns.push(key.clone());
                }
            }
            objects.push((line_number, object));
        }
        if columns.is_empty() {
            return Err(DatasetError::EmptyHeader { file });
        }
        let mut cells = vec![ColumnCells::default(); columns.len()];
        let mut lines = Vec::with_capacity(objects.len());
        let mut row: Vec<Option<String>> = vec![None; columns.len()];
        for (line, object) in objects {
            for (key, value) in object {
                let text = match value {
                    serde_json::Value::Null => None,
                    serde_json::Value::String(s) => Some(s.trim().to_string()),
                    serde_json::Value::Bool(b) => Some(b.to_string()),
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    other => Some(other.to_string()),
                };
                row[index[&key]] = text.filter(|t| !is_missing_token(t));
            }
            for (column, cell) in cells.iter_mut().zip(&mut row) {
                column.push(cell.take().as_deref());
            }
            lines.push(line);
        }
        let kinds = cells.par_iter().map(|c| infer_kind(c.present())).collect();
        Ok(Table { name: file, columns, kinds, cells, lines })
    }

    /// Reads a file: JSON Lines for `.jsonl` / `.ndjson`, CSV otherwise.
    pub fn from_path(path: &std::path::Path) -> Result<Table, DatasetError> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path)
            .map_err(|e| DatasetError::Header { file: name.clone(), message: format!("cannot read it: {e}") })?;
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("jsonl" | "ndjson") => Table::from_json_lines_reader(file, &name),
            _ => Table::from_csv_reader(std::io::BufReader::new(file), &name),
        }
    }

    /// The name given for error messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Column names, in file order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Inferred kinds, parallel to [`Table::columns`].
    pub fn kinds(&self) -> &[ColumnKind] {
        &self.kinds
    }

    /// Number of data rows (the header excluded).
    pub fn n_rows(&self) -> usize {
        self.lines.len()
    }

    /// The index of a column by name.
    pub fn column_index(&self, column: &str) -> Result<usize, DatasetError> {
        self.columns
            .iter()
            .position(|c| c == column)
            .ok_or_else(|| DatasetError::UnknownColumn { file: self.name.clone(), column: column.to_string() })
    }

    /// The inferred kind of a column.
    pub fn kind(&self, column: &str) -> Result<ColumnKind, DatasetError> {
        Ok(self.kinds[self.column_index(column)?])
    }

    /// The text of a cell, `None` when missing. Panics if `row` or `column` is out of range.
    pub fn cell(&self, row: usize, column: usize) -> Option<&str> {
        self.cells[column].get(row)
    }

    /// The line in the file where data row `row` starts (the header is line 1).
    pub fn line(&self, row: usize) -> u64 {
        self.lines[row]
    }

    /// The outcome of every row as a boolean.
    ///
    /// With `positive`, rows whose value equals it are `true` and all others `false` (it must occur). Without it the
    /// column must have exactly two distinct values, and the positive one is whichever is `yes`, `true` or `1` (any
    /// case). A missing target is an error naming its line.
    pub fn target(&self, column: &str, positive: Option<&str>) -> Result<Vec<bool>, DatasetError> {
        let c = self.column_index(column)?;
        let mut values: Vec<&str> = Vec::with_capacity(self.n_rows());
        let mut distinct: Vec<String> = Vec::new();
        for r in 0..self.n_rows() {
            let Some(v) = self.cells[c].get(r) else {
                return Err(DatasetError::MissingTarget {
                    file: self.name.clone(),
                    line: self.lines[r],
                    column: column.to_string(),
                });
            };
            if !distinct.iter().any(|d| d == v) {
                distinct.push(v.to_string());
            }
            values.push(v);
        }
        distinct.sort();
        let positive = match positive {
            Some(p) => {
                if !distinct.iter().any(|d| d == p) {
                    return Err(DatasetError::PositiveNotFound {
                        file: self.name.clone(),
                        column: column.to_string(),
                        positive: p.to_string(),
                    });
                }
                p.to_string()
            }
            None => {
                if distinct.len() != 2 {
                    return Err(DatasetError::TargetNotBinary {
                        file: self.name.clone(),
                        column: column.to_string(),
                        values: distinct,
                    });
                }
                let is_positive = |v: &str| read_bool(v) == Some(true);
                match distinct.iter().filter(|v| is_positive(v)).collect::<Vec<_>>()[..] {
                    [p] => p.clone(),
                    _ => {
                        return Err(DatasetError::AmbiguousPositive {
                            file: self.name.clone(),
                            column: column.to_string(),
                            values: distinct,
                        });
                    }
                }
            }
        };
        Ok(values.into_iter().map(|v| v == positive).collect())
    }

    fn check_rows(&self, rows: &[usize]) -> Result<(), DatasetError> {
        match rows.iter().find(|&&r| r >= self.n_rows()) {
            Some(&row) => Err(DatasetError::RowOutOfRange { file: self.name.clone(), row, rows: self.n_rows() }),
            None => Ok(()),
        }
    }
}

fn infer_kind<'a>(values: impl Iterator<Item = &'a str> + Clone) -> ColumnKind {
    if values.clone().next().is_none() {
        ColumnKind::Numeric
    } else if values.clone().all(|v| read_number(v).is_some()) {
        // Before booleans: a column of only 0 and 1 is a number, though each cell reads as a boolean.
        ColumnKind::Numeric
    } else if values.clone().all(|v| read_bool(v).is_some()) {
        ColumnKind::Boolean
    } else if values.clone().all(|v| parse_date(v).is_some()) {
        ColumnKind::Date
    } else {
        ColumnKind::Categorical
    }
}

/// A dense row-major matrix of encoded features.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    pub n_rows: usize,
    pub n_features: usize,
    /// One name per feature: `age`, `job=admin.`, `balance=<missing>`, `default` (1 = yes/true).
    pub names: Vec<String>,
    /// `n_rows * n_features` values, row after row.
    pub values: Vec<f64>,
}

impl Features {
    /// The features of one row.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.values[i * self.n_features..(i + 1) * self.n_features]
    }
}

/// Settings of [`Encoder::fit_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncoderOptions {
    /// A categorical value seen fewer times than this in training goes to `column=<other>`. 1 keeps all values, as
    /// scikit-learn's `OneHotEncoder(handle_unknown="ignore")` does.
    pub min_count: usize,
}

impl Default for EncoderOptions {
    fn default() -> Self {
        EncoderOptions { min_count: 1 }
    }
}

/// Centre and scale of one standardised feature.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Standardiser {
    pub mean: f64,
    pub scale: f64,
}

impl Standardiser {
    fn fit(values: &[f64]) -> Standardiser {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        let std = var.sqrt();
        // scikit-learn's StandardScaler leaves a (near-)constant column unscaled.
        let scale = if std > 10.0 * f64::EPSILON * mean.abs().max(1.0) { std } else { 1.0 };
        Standardiser { mean, scale }
    }

    pub(crate) fn apply(&self, v: f64) -> f64 {
        (v - self.mean) / self.scale
    }
}

fn is_false(b: &bool) -> bool {
    !b
}

/// How one table column becomes features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ColumnEncoding {
    Numeric {
        column: String,
        median: f64,
        standardiser: Standardiser,
        /// Present when the training rows had missing values in this column.
        missing_indicator: Option<Standardiser>,
        /// A date column: its values are read as days since 1970-01-01.
        #[serde(default, skip_serializing_if = "is_false")]
        date: bool,
    },
    Boolean {
        column: String,
        missing_indicator: bool,
    },
    Categorical {
        column: String,
        /// Kept values, sorted; each is one feature.
        categories: Vec<String>,
        /// Whether values rarer than `min_count` were grouped into a last `<other>` feature.
        other: bool,
        /// Values grouped into `<other>`, sorted (empty when `other` is false).
        rare: Vec<String>,
    },
}

impl ColumnEncoding {
    fn column(&self) -> &str {
        match self {
            ColumnEncoding::Numeric { column, .. }
            | ColumnEncoding::Boolean { column, .. }
            | ColumnEncoding::Categorical { column, .. } => column,
        }
    }

    fn names(&self, out: &mut Vec<String>) {
        match self {
            ColumnEncoding::Numeric { column, missing_indicator, .. } => {
                out.push(column.clone());
                if missing_indicator.is_some() {
                    out.push(format!("{column}={MISSING_CATEGORY}"));
                }
            }
            ColumnEncoding::Boolean { column, missing_indicator } => {
                out.push(column.clone());
                if *missing_indicator {
                    out.push(format!("{column}={MISSING_CATEGORY}"));
                }
            }
            ColumnEncoding::Categorical { column, categories, other, .. } => {
                out.extend(categories.iter().map(|c| format!("{column}={c}")));
                if *other {
                    out.push(format!("{column}={OTHER_CATEGORY}"));
                }
            }
        }
    }
}

/// Turns table columns into numeric features; learned on training rows by [`Encoder::fit`], applied to any table
/// with the same columns by [`Encoder::transform`]. Serialisable, to be saved with a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Encoder {
    pub options: EncoderOptions,
    pub columns: Vec<ColumnEncoding>,
    pub feature_names: Vec<String>,
}

impl Encoder {
    /// [`Encoder::fit_with`] with the default options (every category kept).
    pub fn fit(table: &Table, feature_columns: &[&str], rows: &[usize]) -> Result<Encoder, DatasetError> {
        Encoder::fit_with(table, feature_columns, rows, EncoderOptions::default())
    }

    /// Learns the encoding of `feature_columns` from the table rows `rows` (the training rows) only.
    pub fn fit_with(
        table: &Table,
        feature_columns: &[&str],
        rows: &[usize],
        options: EncoderOptions,
    ) -> Result<Encoder, DatasetError> {
        table.check_rows(rows)?;
        if rows.is_empty() {
            return Err(DatasetError::NoRows { file: table.name.clone() });
        }
        let mut columns = Vec::with_capacity(feature_columns.len());
        for &name in feature_columns {
            let c = table.column_index(name)?;
            let column = name.to_string();
            let cells = rows.iter().map(|&r| table.cell(r, c));
            columns.push(match table.kinds[c] {
                kind @ (ColumnKind::Numeric | ColumnKind::Date) => {
                    let date = kind == ColumnKind::Date;
                    let mut present = Vec::with_capacity(rows.len());
                    for &r in rows {
                        if let Some(text) = table.cell(r, c) {
                            present.push(number_of(text, date).ok_or_else(|| DatasetError::NotNumeric {
                                file: table.name.clone(),
                                line: table.line(r),
                                column: column.clone(),
                                value: text.to_string(),
                            })?);
                        }
                    }
                    let median = median(&mut present);
                    let imputed: Vec<f64> =
                        cells.clone().map(|cell| cell.and_then(|t| number_of(t, date)).unwrap_or(median)).collect();
                    let standardiser = Standardiser::fit(&imputed);
                    let missing_indicator = (present.len() < rows.len()).then(|| {
                        let indicator: Vec<f64> = cells.map(|cell| f64::from(u8::from(cell.is_none()))).collect();
                        Standardiser::fit(&indicator)
                    });
                    ColumnEncoding::Numeric { column, median, standardiser, missing_indicator, date }
                }
                ColumnKind::Boolean => {
                    ColumnEncoding::Boolean { column, missing_indicator: cells.clone().any(|cell| cell.is_none()) }
                }
                ColumnKind::Categorical => {
                    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
                    for cell in cells {
                        *counts.entry(cell.unwrap_or(MISSING_CATEGORY)).or_default() += 1;
                    }
                    let (kept, rare): (Vec<_>, Vec<_>) = counts.into_iter().partition(|&(_, n)| n >= options.min_count);
                    ColumnEncoding::Categorical {
                        column,
                        categories: kept.into_iter().map(|(v, _)| v.to_string()).collect(),
                        other: !rare.is_empty(),
                        rare: rare.into_iter().map(|(v, _)| v.to_string()).collect(),
                    }
                }
            });
        }
        let mut feature_names = Vec::new();
        for encoding in &columns {
            encoding.names(&mut feature_names);
        }
        Ok(Encoder { options, columns, feature_names })
    }

    /// Number of features produced per row.
    pub fn n_features(&self) -> usize {
        self.feature_names.len()
    }

    /// Encodes the rows `rows` of `table` (which may be another file than the training one: columns are looked up
    /// by name). A number that does not parse in a numeric column, or a boolean that `read_bool` does not read, is
    /// an error naming its line; an unseen category is all zeros.
    pub fn transform(&self, table: &Table, rows: &[usize]) -> Result<Features, DatasetError> {
        table.check_rows(rows)?;
        let indexes = self.columns.iter().map(|e| table.column_index(e.column())).collect::<Result<Vec<_>, _>>()?;
        // One lookup table per categorical column: value -> offset within the column's block.
        let lookups: Vec<HashMap<&str, usize>> = self
            .columns
            .iter()
            .map(|e| match e {
                ColumnEncoding::Categorical { categories, other, rare, .. } => {
                    let mut map: HashMap<&str, usize> =
                        categories.iter().enumerate().map(|(i, v)| (v.as_str(), i)).collect();
                    if *other {
                        map.extend(rare.iter().map(|v| (v.as_str(), categories.len())));
                    }
                    map
                }
                _ => HashMap::new(),
            })
            .collect();
        let p = self.n_features();
        let mut values = Vec::with_capacity(rows.len() * p);
        for &r in rows {
            for ((encoding, &c), lookup) in self.columns.iter().zip(&indexes).zip(&lookups) {
                let cell = table.cell(r, c);
                match encoding {
                    ColumnEncoding::Numeric { column, median, standardiser, missing_indicator, date } => {
                        let v = match cell {
                            None => *median,
                            Some(text) => number_of(text, *date).ok_or_else(|| DatasetError::NotNumeric {
                                file: table.name.clone(),
                                line: table.line(r),
                                column: column.clone(),
                                value: text.to_string(),
                            })?,
                        };
                        values.push(standardiser.apply(v));
                        if let Some(s) = missing_indicator {
                            values.push(s.apply(f64::from(u8::from(cell.is_none()))));
                        }
                    }
                    ColumnEncoding::Boolean { column, missing_indicator } => {
                        let v = match cell {
                            None => false,
                            Some(text) => read_bool(text).ok_or_else(|| DatasetError::NotBoolean {
                                file: table.name.clone(),
                                line: table.line(r),
                                column: column.clone(),
                                value: text.to_string(),
                            })?,
                        };
                        values.push(f64::from(u8::from(v)));
                        if *missing_indicator {
                            values.push(f64::from(u8::from(cell.is_none())));
                        }
                    }
                    ColumnEncoding::Categorical { categories, other, .. } => {
                        let width = categories.len() + usize::from(*other);
                        let start = values.len();
                        values.resize(start + width, 0.0);
                        if let Some(&i) = lookup.get(cell.unwrap_or(MISSING_CATEGORY)) {
                            values[start + i] = 1.0;
                        }
                    }
                }
            }
        }
        Ok(Features { n_rows: rows.len(), n_features: p, names: self.feature_names.clone(), values })
    }
}

/// The median of `values` (the mean of the two middle values for an even count, as numpy), 0 when empty.
fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_tables_match_csv_tables() {
        let csv = "id,age,job,y\n1,30,admin,yes\n2,,tech,no\n3,41,,no\n";
        let jsonl = "{\"id\": 1, \"age\": 30, \"job\": \"admin\", \"y\": \"yes\"}\n{\"id\": 2, \"age\": null, \"job\": \"tech\", \"y\": \"no\"}\n\n{\"id\": 3, \"age\": 41, \"y\": \"no\"}\n";
        let a = Table::from_csv_reader(csv.as_bytes(), "a.csv").unwrap();
        let b = Table::from_json_lines_reader(jsonl.as_bytes(), "b.jsonl").unwrap();
        assert_eq!(a.columns(), b.columns());
        assert_eq!(a.kinds(), b.kinds());
        for row in 0..3 {
            for column in 0..4 {
                assert_eq!(a.cell(row, column), b.cell(row, column));
            }
        }
        assert_eq!(b.line(2), 4);
        let error = Table::from_json_lines_reader("{\"a\": 1}\n[1]\n".as_bytes(), "c.jsonl").unwrap_err();
        assert_eq!(error.to_string(), "c.jsonl: line 2: not a JSON object");
    }

    fn table(text: &str) -> Table {
        Table::from_csv_reader(text.as_bytes(), "t.csv").unwrap()
    }

    #[test]
    fn infers_kinds_and_missing_cells() {
        let t = table("n,b,c,z,e\n1.5,yes,a,0,\nNA,No,b,1,\n-2e3,,null,1,\n");
        assert_eq!(
            t.kinds(),
            [
                ColumnKind::Numeric,
                ColumnKind::Boolean,
                ColumnKind::Categorical,
                ColumnKind::Numeric,
                ColumnKind::Numeric
            ]
        );
        assert_eq!(t.cell(1, 0), None);
        assert_eq!(t.cell(2, 1), None);
        assert_eq!(t.cell(2, 2), None);
        assert_eq!(t.line(2), 4);
        // inf / NaN-like text is not a finite number: the column is categorical.
        assert_eq!(table("x\n1\ninf\n").kinds(), [ColumnKind::Categorical]);
    }

    #[test]
    fn dates_and_times_are_days_since_1970() {
        let t = table("signed_up,seen\n2026-01-02,2026-01-02T12:00:00Z\n,2026-01-03T00:00:00+02:00\n1970-01-01,NA\n");
        assert_eq!(t.kinds(), [ColumnKind::Date, ColumnKind::Date]);
        assert_eq!(parse_date("1970-01-01"), Some(0.0));
        assert_eq!(parse_date("1970-01-02T12:00:00Z"), Some(1.5));
        assert_eq!(parse_date("1970-01-02T02:00:00+02:00"), Some(1.0));
        assert_eq!(parse_date("2026-13-01"), None);
        assert_eq!(parse_date("yesterday"), None);
        // A column mixing dates and other text is categorical; years alone are numbers.
        assert_eq!(table("d\n2026-01-02\nsoon\n").kinds(), [ColumnKind::Categorical]);
        assert_eq!(table("d\n2026\n2025\n").kinds(), [ColumnKind::Numeric]);
        // Encoded as numbers of days, with the median for a missing one.
        let rows = [0, 1, 2];
        let encoder = Encoder::fit(&t, &["signed_up"], &rows).unwrap();
        assert!(matches!(encoder.columns[0], ColumnEncoding::Numeric { date: true, .. }));
        let days = parse_date("2026-01-02").unwrap();
        let median = days / 2.0;
        let features = encoder.transform(&t, &rows).unwrap();
        let ColumnEncoding::Numeric { standardiser, .. } = &encoder.columns[0] else { unreachable!() };
        let raw: Vec<f64> = (0..3).map(|r| features.row(r)[0] * standardiser.scale + standardiser.mean).collect();
        for (got, want) in raw.iter().zip([days, median, 0.0]) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let e = Table::from_csv_reader("a,b\n1,2\n3\n".as_bytes(), "leads.csv").unwrap_err();
        assert_eq!(e.to_string(), "leads.csv: line 3: expected 2 fields as in the header, found 1");
        let e = Table::from_csv_reader("a,a\n1,2\n".as_bytes(), "leads.csv").unwrap_err();
        assert!(e.to_string().contains("\"a\" appears twice"), "{e}");
        let t = table("y\nyes\n\nno\n");
        // A blank line is skipped by the CSV reader; an empty cell is a missing target.
        assert_eq!(t.n_rows(), 2);
        let t = table("x,y\n1,yes\n2,\n");
        assert_eq!(t.target("y", None).unwrap_err().to_string(), "t.csv: line 3: column \"y\": the target is missing");
        let train = table("x\n1\n2\n");
        let enc = Encoder::fit(&train, &["x"], &[0, 1]).unwrap();
        let other = table("x\n1\nabc\n");
        let e = enc.transform(&other, &[0, 1]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.csv: line 3: column \"x\": \"abc\" is not a number (or, in a date column, a date)"
        );
        assert!(matches!(Encoder::fit(&train, &["nope"], &[0]), Err(DatasetError::UnknownColumn { .. })));
    }

    #[test]
    fn target_positive_value() {
        let t = table("y,z,w\nno,Won,a\nyes,Lost,b\nno,Won,c\n");
        assert_eq!(t.target("y", None).unwrap(), [false, true, false]);
        assert!(matches!(t.target("z", None), Err(DatasetError::AmbiguousPositive { .. })));
        assert_eq!(t.target("z", Some("Won")).unwrap(), [true, false, true]);
        assert!(matches!(t.target("w", None), Err(DatasetError::TargetNotBinary { .. })));
        assert_eq!(t.target("w", Some("b")).unwrap(), [false, true, false]);
        assert!(matches!(t.target("z", Some("won")), Err(DatasetError::PositiveNotFound { .. })));
        assert_eq!(table("y\n0\n1\n1\n").target("y", None).unwrap(), [false, true, true]);
    }

    #[test]
    fn numeric_imputation_standardisation_and_indicator() {
        // Training rows 0..4: values 1, 3, missing, 5 -> median 3, imputed [1,3,3,5], mean 3, std 1.4142...
        let t = table("x,k\n1,a\n3,b\n,a\n5,a\n100,zzz\n");
        let enc = Encoder::fit(&t, &["x", "k"], &[0, 1, 2, 3]).unwrap();
        assert_eq!(enc.feature_names, ["x", "x=<missing>", "k=a", "k=b"]);
        let f = enc.transform(&t, &[2, 4]).unwrap();
        let std = 2f64.sqrt();
        let ind_std = (0.25f64 * 0.75).sqrt();
        let expect_row0 = [0.0, (1.0 - 0.25) / ind_std, 1.0, 0.0];
        // Row 4 has an unseen category: all zeros in the one-hot block; x is not missing.
        let expect_row1 = [(100.0 - 3.0) / std, (0.0 - 0.25) / ind_std, 0.0, 0.0];
        for (got, want) in f.row(0).iter().zip(expect_row0).chain(f.row(1).iter().zip(expect_row1)) {
            assert!((got - want).abs() < 1e-12, "{:?}", f.values);
        }
        // No missing value in training: no indicator, even if test rows have missing values.
        let enc = Encoder::fit(&t, &["x"], &[0, 1, 3]).unwrap();
        assert_eq!(enc.feature_names, ["x"]);
        let f = enc.transform(&t, &[2]).unwrap();
        assert!((f.values[0] - 0.0).abs() < 1e-12);
    }

    #[test]
    fn boolean_and_rare_categories_and_serde() {
        let t = table("b,k\nyes,a\nno,a\n,b\nTRUE,c\nno,d\n");
        let enc = Encoder::fit_with(&t, &["b", "k"], &[0, 1, 2, 3], EncoderOptions { min_count: 2 }).unwrap();
        assert_eq!(enc.feature_names, ["b", "b=<missing>", "k=a", "k=<other>"]);
        let f = enc.transform(&t, &[0, 2, 3, 4]).unwrap();
        assert_eq!(f.values, [1., 0., 1., 0., 0., 1., 0., 1., 1., 0., 0., 1., 0., 0., 0., 0.]);
        let json = serde_json::to_string(&enc).unwrap();
        let back: Encoder = serde_json::from_str(&json).unwrap();
        assert_eq!(back, enc);
        assert_eq!(back.transform(&t, &[0, 2, 3, 4]).unwrap(), f);
    }

    #[test]
    fn trimming_as_str_trim() {
        for cell in ["", " ", "a", " a", "a ", "\ta b\n", "\u{a0}x\u{a0}", "é", "x\u{2003}", "\u{2003}", "!~"] {
            assert_eq!(trim(cell), cell.trim(), "{cell:?}");
        }
    }

    #[test]
    fn cells_read_as_the_core_reads_them() {
        // 0/1 alone is a number; with words it is a boolean, 1 and 0 true and false.
        let t = table("count,flag,word\n0,yes,true\n1,1,FALSE\n1,0,no\n");
        assert_eq!(t.kinds(), [ColumnKind::Numeric, ColumnKind::Boolean, ColumnKind::Boolean]);
        let enc = Encoder::fit(&t, &["flag", "word"], &[0, 1, 2]).unwrap();
        assert_eq!(enc.transform(&t, &[0, 1, 2]).unwrap().values, [1., 1., 1., 0., 0., 0.]);
        // A boolean column learned from words reads 1/0 in another table, as a predictive score does.
        let other = table("flag,word\n0,1\n");
        assert_eq!(enc.transform(&other, &[0]).unwrap().values, [0., 1.]);
        let e = enc.transform(&table("flag,word\nmaybe,1\n"), &[0]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.csv: line 2: column \"flag\": \"maybe\" is not a boolean (yes/no, true/false, 1/0, or yes/no in another language of docs/model-format.md, such as oui/non)"
        );
        // The positive outcome by default is the value that reads as true.
        assert_eq!(table("y\nNo\nYes\n").target("y", None).unwrap(), [false, true]);
    }

    #[test]
    fn median_like_numpy() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }
}
