//! Errors of batch scoring: problems with whole files (fatal) and with single rows (skipped and
//! counted, or fatal with `strict`).

use std::fmt;
use std::path::PathBuf;

/// One bad input row, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub file: String,
    /// 1-based line number in the file.
    pub line: u64,
    pub reason: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

/// Why a batch run stopped.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write the output: {0}")]
    Write(#[source] std::io::Error),
    #[error("{path}: unknown file type; name it .csv for CSV or .jsonl / .ndjson for JSON Lines (one object per line)")]
    UnknownFormat { path: PathBuf },
    #[error("{file}: {message}")]
    BadHeader { file: String, message: String },
    /// A bad row in `strict` mode.
    #[error("{0} (stopped by --strict; without it bad rows are skipped and counted)")]
    BadRow(RowError),
}
