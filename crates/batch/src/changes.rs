//! Why scores moved, for files: each lead's changes between two instants under one model, or
//! between two models at one instant, as JSON Lines (`leadscore explain`). The terms come from
//! the engine ([`leadscore_core::changes`]); this module reads the files once per model and
//! folds each lead's events into the states the comparison needs.

use std::io::Write;
use std::path::Path;

use leadscore_core::{Event, EventTypeId, LeadState, Model, ScoreChange, Snapshot, Timestamp, model_changes};
use serde::Serialize;

use crate::error::BatchError;
use crate::events::{EventRecord, Events, LEADS_PER_BUCKET, NO_TYPE, group_bucket, read_events};
use crate::leads::{Leads, read_leads};
use crate::report::Problems;
use crate::score::format_score;
use crate::{BatchOptions, OutputFormat, ReadOptions};

/// What to compare.
pub enum Comparison<'a> {
    /// One model, two instants; with `leads_before`, the leads' fields at the first instant come
    /// from that file (a lead missing from it keeps its later fields).
    Instants { model: &'a Model, from: Timestamp, to: Timestamp, leads_before: Option<&'a Path> },
    /// Two models (two versions), at one instant.
    Versions { before: &'a Model, after: &'a Model, as_of: Timestamp },
}

/// The files and how to read them.
pub struct ChangeFiles<'a> {
    pub leads: &'a Path,
    pub events: Option<&'a Path>,
    pub read: ReadOptions,
    pub strict: bool,
    /// Only these lead ids (all when empty), in the leads file's order.
    pub only: &'a [String],
    pub format: ChangeFormat,
}

/// How the changes are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeFormat {
    /// One JSON object per lead, every score with its terms.
    JsonLines,
    /// For people: per lead, each score that moved with its terms, largest first.
    Text,
}

/// One lead's line of output.
#[derive(Serialize)]
struct LeadChanges<'a, 'm> {
    lead_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    as_of: Option<String>,
    changes: Vec<ScoreChange<'m>>,
}

/// Reads the files and writes one JSON line per lead with every score's change and its terms.
/// Returns how many leads were written, and the problems met reading.
pub fn write_changes(
    comparison: &Comparison<'_>,
    files: &ChangeFiles<'_>,
    out: &mut dyn Write,
) -> Result<(usize, Problems), BatchError> {
    let mut problems = Problems::new(files.strict);
    let mut written = 0;
    match *comparison {
        Comparison::Instants { model, from, to, leads_before } => {
            let leads = read_leads(model, files.leads, &files.read, &mut problems)?;
            let earlier = leads_before.map(|path| read_leads(model, path, &files.read, &mut problems)).transpose()?;
            let events = read_all(model, &leads, files, from.max(to), &mut problems)?;
            for_each_lead(&leads, &events, files.only, |lead, records| {
                let before_state = fold(model, &events, records, from);
                let after_state = fold(model, &events, records, to);
                let after_fields = leads.values_of(lead);
                let before_fields = earlier
                    .as_ref()
                    .and_then(|e| e.find(leads.ids.bytes_of(lead)).map(|i| e.values_of(i as usize)))
                    .unwrap_or(after_fields);
                let changes = model.changes(
                    Snapshot { lead: before_fields, state: &before_state, as_of: from },
                    Snapshot { lead: after_fields, state: &after_state, as_of: to },
                );
                let line = LeadChanges {
                    lead_id: leads.ids.get(lead),
                    from: Some(from.to_string()),
                    to: Some(to.to_string()),
                    as_of: None,
                    changes,
                };
                written += 1;
                write_line(out, &line, files.format)
            })?;
        }
        Comparison::Versions { before, after, as_of } => {
            let old_leads = read_leads(before, files.leads, &files.read, &mut problems)?;
            let new_leads = read_leads(after, files.leads, &files.read, &mut Problems::new(files.strict))?;
            let old_events = read_all(before, &old_leads, files, as_of, &mut problems)?;
            let new_events = read_all(after, &new_leads, files, as_of, &mut Problems::new(files.strict))?;
            let mut new_records: Vec<Vec<EventRecord>> = vec![Vec::new(); new_leads.len()];
            for_each_lead(&new_leads, &new_events, &[], |lead, records| {
                new_records[lead] = records.to_vec();
                Ok(())
            })?;
            for_each_lead(&old_leads, &old_events, files.only, |lead, records| {
                let old_state = fold(before, &old_events, records, as_of);
                let new_state = fold(after, &new_events, &new_records[lead], as_of);
                let changes = model_changes(
                    before,
                    Snapshot { lead: old_leads.values_of(lead), state: &old_state, as_of },
                    after,
                    Snapshot { lead: new_leads.values_of(lead), state: &new_state, as_of },
                );
                let line = LeadChanges {
                    lead_id: old_leads.ids.get(lead),
                    from: None,
                    to: None,
                    as_of: Some(as_of.to_string()),
                    changes,
                };
                written += 1;
                write_line(out, &line, files.format)
            })?;
        }
    }
    out.flush().map_err(BatchError::Write)?;
    Ok((written, problems))
}

fn read_all(
    model: &Model,
    leads: &Leads,
    files: &ChangeFiles<'_>,
    as_of: Timestamp,
    problems: &mut Problems,
) -> Result<Events, BatchError> {
    match files.events {
        Some(path) => {
            let options = BatchOptions {
                leads: files.leads,
                events: files.events,
                as_of,
                output: OutputFormat::ExplainJsonLines,
                strict: files.strict,
                read: files.read.clone(),
            };
            read_events(model, leads, path, &options, problems, &|_, _| {})
        }
        None => Ok(Events::none(leads.len(), model)),
    }
}

/// Calls `each` with every lead (of `only`, when given) and its events in time order.
fn for_each_lead(
    leads: &Leads,
    events: &Events,
    only: &[String],
    mut each: impl FnMut(usize, &[EventRecord]) -> Result<(), BatchError>,
) -> Result<(), BatchError> {
    let (mut offsets, mut records) = (Vec::new(), Vec::new());
    for bucket in 0..events.buckets.len() {
        let first_lead = bucket * LEADS_PER_BUCKET;
        let bucket_leads = LEADS_PER_BUCKET.min(leads.len() - first_lead);
        group_bucket(&events.buckets[bucket], first_lead, bucket_leads, &mut offsets, &mut records);
        for i in 0..bucket_leads {
            let lead = first_lead + i;
            if !only.is_empty() && !only.iter().any(|id| **id == *leads.ids.get(lead)) {
                continue;
            }
            each(lead, &records[offsets[i]..offsets[i + 1]])?;
        }
    }
    Ok(())
}

/// A lead's state from its events up to `as_of`.
fn fold(model: &Model, events: &Events, records: &[EventRecord], as_of: Timestamp) -> LeadState {
    let mut state = LeadState::new(model);
    for record in records.iter().filter(|r| r.at <= as_of.0) {
        let event = Event {
            event_type: (record.event_type != NO_TYPE).then_some(EventTypeId(record.event_type)),
            at: Timestamp(record.at),
            properties: events.properties_of(record),
        };
        state.apply(model, &event);
    }
    state
}

fn write_line(out: &mut dyn Write, line: &LeadChanges<'_, '_>, format: ChangeFormat) -> Result<(), BatchError> {
    let buffer = match format {
        ChangeFormat::JsonLines => {
            let mut buffer = serde_json::to_vec(line).expect("serialising to memory cannot fail");
            buffer.push(b'\n');
            buffer
        }
        ChangeFormat::Text => text(line).into_bytes(),
    };
    out.write_all(&buffer).map_err(BatchError::Write)
}

/// ```text
/// lead b2b-01: 2026-10-01T00:00:00Z -> 2026-10-31T00:00:00Z
///   engagement  40 -> 35  (-5)
///        -10  decay           engagement: webinar
///        +10  events (+2)     engagement: clicks
///         -5  limit           engagement: group email
///   unchanged: fit
/// ```
fn text(line: &LeadChanges<'_, '_>) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let when = match (&line.from, &line.to, &line.as_of) {
        (Some(from), Some(to), _) => format!("{from} -> {to}"),
        (_, _, Some(as_of)) => format!("model versions, as of {as_of}"),
        _ => String::new(),
    };
    let _ = writeln!(out, "lead {}: {when}", line.lead_id);
    let mut unchanged = Vec::new();
    for change in &line.changes {
        if change.terms.is_empty() && change.tier_before == change.tier_after {
            unchanged.push(change.score);
            continue;
        }
        let tier = |t: Option<&str>| t.map_or(String::new(), |t| format!(" ({t})"));
        let _ = writeln!(
            out,
            "  {}  {}{} -> {}{}  ({})",
            change.score,
            format_score(change.before),
            tier(change.tier_before),
            format_score(change.after),
            tier(change.tier_after),
            signed(change.change)
        );
        // Terms that round to 0 at 6 decimals (what rounding to a precision leaves, often) are in
        // the JSON; a person reads the ones that show.
        for term in change.terms.iter().filter(|t| format_score(t.points) != "0" || t.occurrences != 0) {
            let cause = serde_json::to_value(term.cause).ok().and_then(|v| v.as_str().map(|s| s.replace('_', " ")));
            let mut cause = cause.unwrap_or_default();
            if term.occurrences != 0 {
                cause = format!("{cause} ({:+})", term.occurrences);
            }
            let what = match (term.rule, term.group, term.field) {
                (Some(rule), _, _) => format!("{}: {rule}", term.score),
                (None, Some(group), _) => format!("{}: group {group}", term.score),
                (None, None, Some(field)) => format!("{}: field {field}", term.score),
                _ => term.score.to_string(),
            };
            let _ = writeln!(out, "    {:>12}  {cause:<18} {what}", signed(term.points));
        }
    }
    if !unchanged.is_empty() {
        let _ = writeln!(out, "  unchanged: {}", unchanged.join(", "));
    }
    out
}

fn signed(value: f64) -> String {
    let text = format_score(value);
    if text.starts_with('-') || text == "0" { text } else { format!("+{text}") }
}
