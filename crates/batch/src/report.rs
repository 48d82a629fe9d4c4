//! What a batch run tells the user at the end: rows skipped (with the first few reasons),
//! warnings about the inputs, and counts.

use crate::error::{BatchError, RowError};

/// How many skipped rows are kept with their reason; the rest are only counted.
const KEPT_ROW_ERRORS: usize = 20;

/// Bad rows and warnings met while reading.
#[derive(Debug, Default)]
pub struct Problems {
    strict: bool,
    pub rows_skipped: u64,
    pub first_rows: Vec<RowError>,
    pub warnings: Vec<String>,
}

impl Problems {
    pub fn new(strict: bool) -> Problems {
        Problems { strict, ..Problems::default() }
    }

    /// Records a bad row: an error in strict mode, else skipped and counted.
    pub fn row(&mut self, error: RowError) -> Result<(), BatchError> {
        if self.strict {
            return Err(BatchError::BadRow(error));
        }
        self.rows_skipped += 1;
        if self.first_rows.len() < KEPT_ROW_ERRORS {
            self.first_rows.push(error);
        }
        Ok(())
    }

    pub fn warn(&mut self, warning: String) {
        if !self.warnings.contains(&warning) {
            self.warnings.push(warning);
        }
    }

    /// Adds the bad rows a parallel worker met (in file order).
    pub(crate) fn merge(&mut self, rows: Vec<RowError>, skipped: u64) -> Result<(), BatchError> {
        if self.strict {
            return match rows.into_iter().next() {
                Some(first) => Err(BatchError::BadRow(first)),
                None => Ok(()),
            };
        }
        self.rows_skipped += skipped;
        let room = KEPT_ROW_ERRORS.saturating_sub(self.first_rows.len());
        self.first_rows.extend(rows.into_iter().take(room));
        Ok(())
    }
}

/// The figures of a finished run.
#[derive(Debug, Default)]
pub struct Summary {
    pub leads: u64,
    pub events_read: u64,
    /// Events of a type no rule looks at.
    pub events_unused: u64,
    /// Events after the as-of time.
    pub events_after_as_of: u64,
    /// Events of leads not in the leads file.
    pub events_unknown_lead: u64,
    pub problems: Problems,
}
