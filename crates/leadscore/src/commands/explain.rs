//! `leadscore explain`: why each lead's scores moved between two instants (`--from`, `--to`),
//! or between two versions of a model (`--model-before`), from the same files `leadscore score`
//! reads; every change split into terms that add up to it.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use leadscore_batch::changes::{ChangeFiles, ChangeFormat, Comparison};
use leadscore_batch::{ColumnMap, ReadOptions, TimeFormat, TimeOptions, Zone};
use leadscore_core::Timestamp;

use crate::model_file;

#[derive(clap::Args)]
pub struct Args {
    /// The model file (TOML); with --model-before, the newer version
    #[arg(long)]
    model: PathBuf,
    /// An earlier version of the model: explain what changing from it to --model does, as of --to
    #[arg(long)]
    model_before: Option<PathBuf>,
    /// Leads (CSV or JSON Lines), as for `leadscore score`: the fields at --to
    #[arg(long)]
    leads: PathBuf,
    /// The leads' fields at --from, when they changed (a lead missing here keeps its --leads fields)
    #[arg(long, conflicts_with = "model_before")]
    leads_before: Option<PathBuf>,
    /// Events (CSV or JSON Lines), as for `leadscore score`
    #[arg(long)]
    events: Option<PathBuf>,
    /// The earlier instant (RFC 3339)
    #[arg(long, value_parser = parse_time, conflicts_with = "model_before")]
    from: Option<Timestamp>,
    /// The later instant (RFC 3339); with --model-before, the instant both versions are read at
    #[arg(long, value_parser = parse_time)]
    to: Timestamp,
    /// Only this lead (repeat for more)
    #[arg(long = "lead", value_name = "LEAD_ID")]
    only: Vec<String>,
    /// Write JSON Lines (every score with its terms) instead of text
    #[arg(long)]
    json: bool,
    /// Stop at the first bad input row instead of skipping and counting it
    #[arg(long)]
    strict: bool,
    /// Read the leads file's column HEADER as the attribute ATTRIBUTE (as `leadscore score --map`)
    #[arg(long = "map", value_name = "HEADER=ATTRIBUTE", value_parser = ColumnMap::parse_entry)]
    map: Vec<(String, String)>,
    /// How times are written (as `leadscore score --time-format`)
    #[arg(long, value_name = "FORMAT", default_value = "iso", value_parser = TimeFormat::parse)]
    time_format: TimeFormat,
    /// The time zone of times written without an offset (as `leadscore score --time-zone`)
    #[arg(long, value_name = "ZONE", default_value = "UTC", value_parser = Zone::parse)]
    time_zone: Zone,
}

fn parse_time(text: &str) -> Result<Timestamp, String> {
    Timestamp::parse_rfc3339(text).map_err(|e| e.to_string())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let model = model_file::load(&args.model)?.into_model()?;
    let before_model = match &args.model_before {
        Some(path) => Some(model_file::load(path)?.into_model()?),
        None => None,
    };
    let comparison = match (&before_model, args.from) {
        (Some(before), _) => Comparison::Versions { before, after: &model, as_of: args.to },
        (None, Some(from)) => {
            Comparison::Instants { model: &model, from, to: args.to, leads_before: args.leads_before.as_deref() }
        }
        (None, None) => {
            bail!("give --from (two instants under one model) or --model-before (two versions of the model)")
        }
    };
    let files = ChangeFiles {
        leads: &args.leads,
        events: args.events.as_deref(),
        read: ReadOptions {
            mapping: ColumnMap(args.map.clone()),
            times: TimeOptions { format: args.time_format.clone(), zone: args.time_zone.clone() },
        },
        strict: args.strict,
        only: &args.only,
        format: if args.json { ChangeFormat::JsonLines } else { ChangeFormat::Text },
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    let (written, problems) = leadscore_batch::changes::write_changes(&comparison, &files, &mut out)?;
    out.flush()?;
    for warning in &problems.warnings {
        eprintln!("warning: {warning}");
    }
    for row in &problems.first_rows {
        eprintln!("skipped: {row}");
    }
    let missing: Vec<&String> = args.only.iter().collect();
    if !args.only.is_empty() && written < args.only.len() {
        eprintln!(
            "error: of the leads {}, only {written} are in {}",
            missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
            args.leads.display()
        );
        return Ok(ExitCode::from(1));
    }
    Ok(if problems.rows_skipped > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
