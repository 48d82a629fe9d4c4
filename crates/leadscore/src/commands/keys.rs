//! `leadscore keys create`: a new API key for a workspace (created if needed), shown once.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use leadscore_store::Store;
use leadscore_store::keys::Scope;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Create a key and print it (it is stored hashed and cannot be shown again)
    Create {
        /// Directory of the database
        #[arg(long)]
        data: PathBuf,
        /// Workspace name (created if it does not exist)
        #[arg(long)]
        workspace: String,
        /// ingest (send events; safe in a web page), read (leads and scores) or admin (everything)
        #[arg(long, value_parser = |s: &str| s.parse::<Scope>())]
        scope: Scope,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::Create { data, workspace, scope } => {
            let store =
                Store::open(&data).with_context(|| format!("cannot open the data directory {}", data.display()))?;
            let key = store.write_blocking(move |connection| {
                let workspace = leadscore_store::workspaces::find_or_create(connection, &workspace)?;
                leadscore_store::keys::create(connection, workspace.id, scope)
            })?;
            println!("{}", key.secret);
            Ok(ExitCode::SUCCESS)
        }
    }
}
