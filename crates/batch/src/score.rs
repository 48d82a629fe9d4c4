//! Scoring every lead in parallel and writing one output row per lead, in the leads file's order.

use std::io::Write;

use leadscore_core::{Event, EventTypeId, LeadScores, LeadState, Model, ScoreOutlook, ScoreResult, Timestamp};
use rayon::prelude::*;
use serde::Serialize;

use crate::error::BatchError;
use crate::events::{EventRecord, Events, LEADS_PER_BUCKET, NO_TYPE, group_bucket};
use crate::leads::Leads;

/// Buckets whose output is held in memory before it is written.
const BUCKETS_PER_WRITE: usize = 32;

/// The output's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// `lead_id,NAME,NAME_tier,...`
    Csv,
    /// One JSON object per lead with every contribution and each score's outlook (what
    /// `leadscore score --explain` writes).
    ExplainJsonLines,
    /// The same without the outlooks, which cost far more than the scores: for programs that
    /// read back values, tiers and contributions only (`leadscore evaluate`).
    ContributionsJsonLines,
}

/// Scores every lead and writes the rows to `out`.
pub fn write_scores(
    model: &Model,
    leads: &Leads,
    events: &Events,
    as_of: Timestamp,
    format: OutputFormat,
    out: &mut dyn Write,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<(), BatchError> {
    if format == OutputFormat::Csv {
        let mut header = String::from("lead_id");
        for name in model.score_names() {
            header.push(',');
            header.push_str(&csv_field(name));
            header.push(',');
            header.push_str(&csv_field(&format!("{name}_tier")));
        }
        header.push('\n');
        out.write_all(header.as_bytes()).map_err(BatchError::Write)?;
    }
    let n_leads = leads.len();
    let n_buckets = events.buckets.len();
    let buckets: Vec<usize> = (0..n_buckets).collect();
    // Buffers reused from bucket to bucket, as many as buckets are scored at once: fresh ones
    // for every bucket would cost their pages again.
    let scratches = std::sync::Mutex::new(Vec::<Scratch>::new());
    for batch in buckets.chunks(BUCKETS_PER_WRITE) {
        let outputs: Vec<Vec<u8>> = batch
            .par_iter()
            .map(|&bucket| {
                let mut scratch = scratches.lock().ok().and_then(|mut s| s.pop()).unwrap_or_else(Scratch::new);
                let first_lead = bucket * LEADS_PER_BUCKET;
                let bucket_leads = LEADS_PER_BUCKET.min(n_leads - first_lead);
                group_bucket(
                    &events.buckets[bucket],
                    first_lead,
                    bucket_leads,
                    &mut scratch.offsets,
                    &mut scratch.records,
                );
                let mut buffer = Vec::with_capacity(bucket_leads * 48);
                let mut state = LeadState::new(model);
                let mut scores = LeadScores::default();
                for i in 0..bucket_leads {
                    let lead = first_lead + i;
                    state.clear();
                    for record in &scratch.records[scratch.offsets[i]..scratch.offsets[i + 1]] {
                        let event = Event {
                            event_type: (record.event_type != NO_TYPE).then_some(EventTypeId(record.event_type)),
                            at: Timestamp(record.at),
                            properties: events.properties_of(record),
                        };
                        state.apply(model, &event);
                    }
                    model.evaluate_into(leads.values_of(lead), &state, as_of, &mut scores);
                    match format {
                        OutputFormat::Csv => write_csv_row(&mut buffer, leads.ids.get(lead), &scores),
                        OutputFormat::ExplainJsonLines => {
                            let outlooks = model.outlook(leads.values_of(lead), &state, as_of);
                            write_explained(&mut buffer, leads.ids.get(lead), &scores, Some(&outlooks))
                        }
                        OutputFormat::ContributionsJsonLines => {
                            write_explained(&mut buffer, leads.ids.get(lead), &scores, None)
                        }
                    }
                }
                if let Ok(mut scratches) = scratches.lock() {
                    scratches.push(scratch);
                }
                buffer
            })
            .collect();
        for output in outputs {
            out.write_all(&output).map_err(BatchError::Write)?;
        }
        let done = batch.last().map_or(0, |b| ((b + 1) * LEADS_PER_BUCKET).min(n_leads));
        progress(done as u64, n_leads as u64);
    }
    out.flush().map_err(BatchError::Write)
}

/// Per-thread buffers reused from bucket to bucket.
struct Scratch {
    offsets: Vec<usize>,
    records: Vec<EventRecord>,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch { offsets: Vec::new(), records: Vec::new() }
    }
}

/// A score rounded to 6 decimals, without trailing zeros (`62.5`, `50`, `-22.500003`): the text
/// of [`leadscore_core::round_score`], which answers and webhooks carry, written without parsing
/// it back (this runs for every score of every lead). The engine has already rounded a value to
/// its score's `precision` (at most 6 decimals), which this leaves as it is.
pub fn format_score(value: f64) -> String {
    let mut text = format!("{value:.6}");
    if text.contains('.') {
        let trimmed = text.trim_end_matches('0').trim_end_matches('.').len();
        text.truncate(trimmed);
    }
    if text == "-0" { "0".to_string() } else { text }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_string() }
}

fn write_csv_row(buffer: &mut Vec<u8>, id: &str, scores: &LeadScores<'_>) {
    buffer.extend_from_slice(csv_field(id).as_bytes());
    for score in &scores.scores {
        buffer.push(b',');
        buffer.extend_from_slice(format_score(score.value).as_bytes());
        buffer.push(b',');
        buffer.extend_from_slice(csv_field(score.tier.unwrap_or("")).as_bytes());
    }
    buffer.push(b'\n');
}

#[derive(Serialize)]
struct ExplainedLead<'a, 'm> {
    lead_id: &'a str,
    scores: ByName<'a, 'm>,
}

/// Scores as a JSON object keyed by score name, in the model's order, each with its outlook
/// when there are outlooks.
struct ByName<'a, 'm> {
    scores: &'a [ScoreResult<'m>],
    outlooks: Option<&'a [ScoreOutlook<'m>]>,
}

/// One score's explanation, then its `outlook`.
#[derive(Serialize)]
struct ExplainedScore<'a, 'm> {
    #[serde(flatten)]
    result: &'a ScoreResult<'m>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outlook: Option<&'a ScoreOutlook<'m>>,
}

impl Serialize for ByName<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.scores.len()))?;
        for (index, score) in self.scores.iter().enumerate() {
            let outlook = self.outlooks.and_then(|outlooks| outlooks.get(index));
            map.serialize_entry(score.name, &ExplainedScore { result: score, outlook })?;
        }
        map.end()
    }
}

fn write_explained(buffer: &mut Vec<u8>, id: &str, scores: &LeadScores<'_>, outlooks: Option<&[ScoreOutlook<'_>]>) {
    let lead = ExplainedLead { lead_id: id, scores: ByName { scores: &scores.scores, outlooks } };
    serde_json::to_writer(&mut *buffer, &lead).expect("serialising to memory cannot fail");
    buffer.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_rounded_to_six_decimals() {
        assert_eq!(format_score(62.5), "62.5");
        assert_eq!(format_score(50.0), "50");
        assert_eq!(format_score(-22.5000031), "-22.500003");
        assert_eq!(format_score(-0.0000001), "0");
        assert_eq!(format_score(8.503741234), "8.503741");
    }

    #[test]
    fn files_and_answers_round_alike() {
        let mut value = 0.123_456_789_f64;
        for i in 0..20_000 {
            value = (value * 7_919.0 + i as f64 * 0.000_000_37).rem_euclid(2_000.0) - 1_000.0;
            let rounded = leadscore_core::round_score(value);
            assert_eq!(format_score(value), rounded.to_string(), "{value}");
            assert_eq!(format_score(value), serde_json::to_string(&rounded).unwrap().trim_end_matches(".0"));
        }
    }
}
