//! `leadscore dbt`: writes the model's query for every dbt adapter as one dbt macro over the
//! leads and events relations a dbt model passes (`crates/sql`'s `dbt` module; dbt/ in the
//! repository is the package that holds it, with a sample project).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use leadscore_core::Timestamp;
use leadscore_sql::DbtAsOf;

use crate::model_file;

#[derive(clap::Args)]
pub struct Args {
    /// The model file (TOML)
    model: PathBuf,
    /// Score as of this instant (RFC 3339, any UTC offset) unless the dbt model passes as_of
    #[arg(long, value_parser = super::parse_as_of, required_unless_present = "as_of_run_start", conflicts_with = "as_of_run_start")]
    as_of: Option<Timestamp>,
    /// Score as of the start of each dbt run (dbt's run_started_at) unless the dbt model passes as_of
    #[arg(long)]
    as_of_run_start: bool,
    /// The macro's name (each adapter's is ADAPTER__NAME)
    #[arg(long, default_value = "leadscore_scores")]
    name: String,
    /// Write the macro here (a .sql file in a dbt project's macros/) instead of standard output
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let loaded = model_file::load(&args.model)?;
    let path = loaded.path.clone();
    let source = loaded.source.clone();
    let model = loaded.into_model()?;
    let as_of = match args.as_of {
        Some(at) => DbtAsOf::At(at),
        None => DbtAsOf::RunStart,
    };
    match leadscore_sql::dbt_macro(&model, &source, &args.name, as_of) {
        Ok(text) => {
            match &args.out {
                Some(out) => std::fs::write(out, text).with_context(|| format!("cannot write {}", out.display()))?,
                None => print!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("error: {path}: {error}");
            Ok(ExitCode::from(2))
        }
    }
}
