//! The `leadscore` command: thin glue between the command line and the library crates.
//!
//! Exit codes: 0 success; 1 done, but the input had problems (rows skipped, a model with errors);
//! 2 nothing done (unreadable files, bad arguments, `--strict` stopped at a bad row).

mod commands;
mod model_file;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc rather than the system allocator: the service's messages are built on the HTTP
/// threads and dropped on the storage writer thread (and its answers the other way round), and
/// glibc's malloc frees memory of another thread on slow, locked paths. Measured in
/// docs/benchmarks.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Self-hosted lead scoring: explainable rules, decay, tiers, qualifiers.
#[derive(Parser)]
#[command(name = "leadscore", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a model file: every error with line and column, each score's range and its tiers
    Check(commands::check::Args),
    /// Run the `[[tests]]` of a model file: each as ok or FAILED, with the contributions of a failure
    Test(commands::test::Args),
    /// Score a file of leads with their events; one row per lead
    Score(commands::score::Args),
    /// Print the model as one SQL query that scores a leads table and an events table in a database
    Sql(commands::sql::Args),
    /// Write the model's query for every dbt adapter as one dbt macro over a leads and an events relation
    Dbt(commands::dbt::Args),
    /// Why each lead's scores moved between two instants or two model versions, term by term
    Explain(commands::explain::Args),
    /// Run the real-time scoring service (HTTP API and console, on a SQLite file or a PostgreSQL database)
    Serve(commands::serve::Args),
    /// Manage API keys of the service
    Keys(commands::keys::Args),
    /// Manage the people who sign in to the service's console
    Users(commands::users::Args),
    /// Erase a lead or export everything stored about it (a person's rights over their data)
    Leads(commands::leads::Args),
    /// Train a predictive model on past leads and their outcome, evaluated on held-out leads
    Train(commands::train::Args),
    /// Backtest a scoring or predictive model against the outcomes of past leads
    Evaluate(commands::evaluate::Args),
    /// Copy a data directory's SQLite store into an empty PostgreSQL database, and check the copy
    MigrateStore(commands::migrate_store::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => commands::check::run(args),
        Command::Test(args) => commands::test::run(args),
        Command::Score(args) => commands::score::run(args),
        Command::Sql(args) => commands::sql::run(args),
        Command::Dbt(args) => commands::dbt::run(args),
        Command::Explain(args) => commands::explain::run(args),
        Command::Serve(args) => commands::serve::run(args),
        Command::Keys(args) => commands::keys::run(args),
        Command::Users(args) => commands::users::run(args),
        Command::Leads(args) => commands::leads::run(args),
        Command::Train(args) => commands::train::run(args),
        Command::Evaluate(args) => commands::evaluate::run(args),
        Command::MigrateStore(args) => commands::migrate_store::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            if is_broken_pipe(&error) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
