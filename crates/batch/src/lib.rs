//! leadscore-batch: scores files of leads and events with the leadscore engine.
//!
//! Leads are read into memory (the values of the fields the model reads); events are read in
//! large blocks parsed in parallel, kept only if the model may count them, grouped by lead, and
//! every lead is then scored in parallel and written in the leads file's order.
//!
//! # Layout
//! - [`columns`]: how a CSV header and its cells are read; the service's CSV import reads files
//!   with the same functions, so that a file scores the same both ways.
//! - [`times`]: time values (RFC 3339, CRM exports' forms, day or month first, patterns) in a
//!   time zone; shared with the service's CSV import too.
//! - [`input`]: file formats and block-wise reading.
//! - [`leads`], [`events`]: the two readers.
//! - [`ids`]: lead ids as text, in one arena, and the table that finds a lead by its id.
//! - [`score`]: parallel scoring and the output rows.
//! - [`changes`]: why scores moved between two instants or two models (`leadscore explain`).
//! - [`report`]: skipped rows, warnings and counts.

pub mod changes;
pub mod columns;
pub mod error;
pub mod events;
pub mod ids;
pub mod input;
pub mod leads;
pub mod report;
pub mod score;
pub mod times;

use std::io::Write;
use std::path::Path;

use leadscore_core::{Model, Timestamp};

pub use columns::ColumnMap;
pub use error::{BatchError, RowError};
pub use report::{Problems, Summary};
pub use score::{OutputFormat, format_score};
pub use times::{TimeFormat, TimeOptions, Zone};

/// What to score and how.
pub struct BatchOptions<'a> {
    pub leads: &'a Path,
    pub events: Option<&'a Path>,
    pub as_of: Timestamp,
    pub output: OutputFormat,
    /// Stop at the first bad row instead of skipping it.
    pub strict: bool,
    pub read: ReadOptions,
}

/// How the input files are read, as the service's CSV import reads them with its query
/// parameters.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Explicit attribute names of lead columns (`--map HEADER=ATTRIBUTE`).
    pub mapping: ColumnMap,
    /// How event times and the leads' time attributes are written (`--time-format`,
    /// `--time-zone`).
    pub times: TimeOptions,
}

/// The phases a run reports progress for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    ReadingEvents,
    Scoring,
}

/// Scores the leads of `options.leads` with their events and writes one row per lead to `out`.
pub fn score_files(
    model: &Model,
    options: &BatchOptions<'_>,
    out: &mut dyn Write,
    progress: &(dyn Fn(Phase, u64, u64) + Sync),
) -> Result<Summary, BatchError> {
    let mut problems = Problems::new(options.strict);
    let leads = leads::read_leads(model, options.leads, &options.read, &mut problems)?;
    let events = match options.events {
        Some(path) => {
            let progress = |done, total| progress(Phase::ReadingEvents, done, total);
            events::read_events(model, &leads, path, options, &mut problems, &progress)?
        }
        None => events::Events::none(leads.len(), model),
    };
    score::write_scores(model, &leads, &events, options.as_of, options.output, out, &|done, total| {
        progress(Phase::Scoring, done, total)
    })?;
    Ok(Summary {
        leads: leads.len() as u64,
        events_read: events.read,
        events_unused: events.unused,
        events_after_as_of: events.after_as_of,
        events_unknown_lead: events.unknown_lead,
        problems,
    })
}
