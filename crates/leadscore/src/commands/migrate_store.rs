//! `leadscore migrate-store`: copies a data directory's SQLite store into an empty PostgreSQL
//! database, keeping every id, checks the copy, and prints what it copied and compared. The copy
//! and its check run in one transaction (see `leadscore_store::copy`): a refusal, a failure or a
//! difference leaves the database empty, and exits non-zero.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use leadscore_store::copy::{CopyReport, copy_store};

use super::aligned;

#[derive(clap::Args)]
pub struct Args {
    /// The data directory of the SQLite store to copy (its service stopped)
    #[arg(long)]
    from: PathBuf,
    /// The empty PostgreSQL database to copy it into (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB`)
    #[arg(long, env = "LEADSCORE_DATABASE", hide_env_values = true)]
    to: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let target = leadscore_store::Location::Postgres(args.to.clone());
    let report = copy_store(&args.from, &args.to, &mut |table, rows, done| {
        // On standard error, so that the report on standard output stays a table.
        if done {
            eprintln!("copied {table}: {rows} rows");
        } else {
            eprintln!("copying {table}: {rows} rows so far");
        }
    })
    .with_context(|| format!("cannot copy {} into {target}", args.from.display()))?;
    print!("{}", report_text(&report));
    println!("copied {} into {target} and checked the copy: every comparison equal", args.from.display());
    Ok(ExitCode::SUCCESS)
}

/// The tables copied with their rows, then what the check compared.
fn report_text(report: &CopyReport) -> String {
    let mut rows = vec![vec!["table".to_string(), "rows copied".to_string()]];
    rows.extend(report.tables.iter().map(|(table, copied)| vec![table.clone(), copied.to_string()]));
    let mut checks = vec![vec!["compared".to_string(), "rows".to_string(), "result".to_string()]];
    checks
        .extend(report.checks.iter().map(|(what, compared)| vec![what.clone(), compared.to_string(), "equal".into()]));
    format!("{}\n{}\n", aligned(&rows), aligned(&checks))
}
