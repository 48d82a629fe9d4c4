//! `leadscore sql`: prints the model as one SQL query that scores a leads table with its events
//! table where the data already is, with the same scores and tiers as `leadscore score`.

use std::path::PathBuf;
use std::process::ExitCode;

use leadscore_core::Timestamp;
use leadscore_sql::{Dialect, SqlOptions};

use crate::model_file;

#[derive(clap::Args)]
pub struct Args {
    /// The model file (TOML)
    model: PathBuf,
    /// The SQL dialect: duckdb, postgres, spark, trino, snowflake or bigquery
    #[arg(long, value_parser = parse_dialect)]
    dialect: Dialect,
    /// The leads table: lead_id and a text column per lead field the model reads
    #[arg(long, default_value = "leads", value_name = "TABLE")]
    leads: String,
    /// The events table: lead_id, type, ts (RFC 3339) and a text column per property the model reads
    #[arg(long, default_value = "events", value_name = "TABLE")]
    events: String,
    /// Score as of this instant (RFC 3339, any UTC offset); events after it are ignored
    #[arg(long, value_parser = super::parse_as_of, required_unless_present = "as_of_now", conflicts_with = "as_of_now")]
    as_of: Option<Timestamp>,
    /// Score as of the moment the command runs (written into the query as a constant)
    #[arg(long)]
    as_of_now: bool,
    /// Add a column with each score's contributions as JSON
    #[arg(long)]
    explain: bool,
}

fn parse_dialect(text: &str) -> Result<Dialect, String> {
    Dialect::from_name(text).ok_or_else(|| {
        let names: Vec<&str> = Dialect::ALL.iter().map(|d| d.name()).collect();
        format!("`{text}` is not a dialect: use one of {}", names.join(", "))
    })
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let loaded = model_file::load(&args.model)?;
    let path = loaded.path.clone();
    let source = loaded.source.clone();
    let model = loaded.into_model()?;
    let as_of = args.as_of.unwrap_or_else(super::now);
    let options = SqlOptions {
        dialect: args.dialect,
        leads_table: &args.leads,
        events_table: &args.events,
        as_of,
        explain: args.explain,
    };
    match leadscore_sql::compile_sql(&model, &source, &options) {
        Ok(query) => {
            print!("{query}");
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("error: {path}: {error}");
            Ok(ExitCode::from(2))
        }
    }
}
