//! `leadscore score`: scores a leads file with its events file and writes one row per lead.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use leadscore_batch::{BatchOptions, ColumnMap, OutputFormat, Phase, ReadOptions, TimeFormat, TimeOptions, Zone};
use leadscore_core::Timestamp;

use crate::model_file;

#[derive(clap::Args)]
pub struct Args {
    /// The model file (TOML)
    #[arg(long)]
    model: PathBuf,
    /// Leads: CSV with a header, or JSON Lines (.jsonl); one lead per row with a lead_id
    #[arg(long)]
    leads: PathBuf,
    /// Events: CSV or JSON Lines with lead_id, type and ts (a time: see --time-format); other
    /// columns are properties
    #[arg(long)]
    events: Option<PathBuf>,
    /// Score as of this instant (RFC 3339, any UTC offset); events after it are ignored [default: now]
    #[arg(long, value_parser = super::parse_as_of)]
    as_of: Option<Timestamp>,
    /// Write here instead of standard output
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write JSON Lines with every score's contributions instead of CSV
    #[arg(long)]
    explain: bool,
    /// Stop at the first bad input row instead of skipping and counting it
    #[arg(long)]
    strict: bool,
    /// Read the leads file's column HEADER as the attribute (field) ATTRIBUTE, as the service's
    /// import does with ?map.HEADER=ATTRIBUTE; repeat for more columns
    #[arg(long = "map", value_name = "HEADER=ATTRIBUTE", value_parser = ColumnMap::parse_entry)]
    map: Vec<(String, String)>,
    /// How event times and the leads' created_at are written: iso (RFC 3339, 2026-11-20 10:00:00
    /// or 2026-11-20), dmy (day first: 20/11/2026 10:00), mdy (month first: 11/20/2026 10:00 AM)
    /// or a strftime pattern such as '%d/%m/%Y %H:%M'
    #[arg(long, value_name = "FORMAT", default_value = "iso", value_parser = TimeFormat::parse)]
    time_format: TimeFormat,
    /// The time zone of times written without an offset: an IANA name such as Europe/Paris, UTC,
    /// or an offset such as +01:00
    #[arg(long, value_name = "ZONE", default_value = "UTC", value_parser = Zone::parse)]
    time_zone: Zone,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let model = model_file::load(&args.model)?.into_model()?;
    let as_of = args.as_of.unwrap_or_else(super::now);
    let options = BatchOptions {
        leads: &args.leads,
        events: args.events.as_deref(),
        as_of,
        output: if args.explain { OutputFormat::ExplainJsonLines } else { OutputFormat::Csv },
        strict: args.strict,
        read: ReadOptions {
            mapping: ColumnMap(args.map.clone()),
            times: TimeOptions { format: args.time_format.clone(), zone: args.time_zone.clone() },
        },
    };
    // The output is written to a temporary file beside it and renamed when complete, so that a
    // failed run never leaves a truncated file (nor empties an input given by mistake).
    let partial = match &args.out {
        Some(path) => {
            refuse_overwriting_inputs(path, &args)?;
            Some(partial_path(path))
        }
        None => None,
    };
    let mut out: Box<dyn Write> = match &partial {
        Some(path) => Box::new(BufWriter::with_capacity(
            1 << 20,
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(BufWriter::with_capacity(1 << 20, std::io::stdout().lock())),
    };
    let bar = progress_bar();
    let started = Instant::now();
    let summary = leadscore_batch::score_files(&model, &options, &mut out, &|phase, done, total| {
        if let Some(bar) = &bar {
            let message = match phase {
                Phase::ReadingEvents => "reading events",
                Phase::Scoring => "scoring leads",
            };
            if bar.message() != message {
                bar.set_message(message);
                bar.set_position(0);
            }
            bar.set_length(total);
            bar.set_position(done);
        }
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let finished = summary.map_err(anyhow::Error::from).and_then(|summary| {
        out.flush().context("cannot write the output")?;
        Ok(summary)
    });
    drop(out);
    if let (Some(partial), Some(path)) = (&partial, &args.out) {
        match &finished {
            Ok(_) => std::fs::rename(partial, path).with_context(|| format!("cannot write {}", path.display()))?,
            Err(_) => {
                let _ = std::fs::remove_file(partial);
            }
        }
    }
    let summary = finished?;

    let problems = &summary.problems;
    for warning in &problems.warnings {
        eprintln!("warning: {warning}");
    }
    for row in &problems.first_rows {
        eprintln!("skipped: {row}");
    }
    if problems.rows_skipped > problems.first_rows.len() as u64 {
        eprintln!("skipped: ... and {} more rows", problems.rows_skipped - problems.first_rows.len() as u64);
    }
    eprintln!(
        "scored {} leads as of {as_of} from {} events ({} of types no rule uses, {} after the as-of time, {} of other leads) in {:.2} s; {} bad rows skipped",
        summary.leads,
        summary.events_read,
        summary.events_unused,
        summary.events_after_as_of,
        summary.events_unknown_lead,
        started.elapsed().as_secs_f64(),
        problems.rows_skipped,
    );
    Ok(if problems.rows_skipped > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn partial_path(path: &std::path::Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".partial-{}", std::process::id()));
    path.with_file_name(name)
}

fn refuse_overwriting_inputs(out: &std::path::Path, args: &Args) -> anyhow::Result<()> {
    let Ok(out) = out.canonicalize() else { return Ok(()) };
    for input in [Some(&args.model), Some(&args.leads), args.events.as_ref()].into_iter().flatten() {
        if input.canonicalize().is_ok_and(|input| input == out) {
            anyhow::bail!("--out {} is one of the input files; choose another output file", out.display());
        }
    }
    Ok(())
}

/// A progress bar on a terminal; nothing when standard error is redirected.
fn progress_bar() -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:>14} [{bar:40}] {percent:>3}% {elapsed}")
            .expect("the template is valid")
            .progress_chars("=> "),
    );
    Some(bar)
}
