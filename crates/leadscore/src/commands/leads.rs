//! `leadscore leads`: a person's rights over their data, for operators: erase a lead (as
//! `DELETE /api/leads/{id}` does, with its record, suppression and `lead_erased` notifications)
//! or export everything stored about it as JSON (as `GET /api/leads/{id}/export`).
//!
//! Erasing needs the data directory to itself: a running service remembers leads in memory and
//! would not know this process erased one, so while it runs the erasure goes through its API
//! or console instead.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use leadscore_core::Timestamp;
use leadscore_server::erasure;
use leadscore_server::scoring::Models;
use leadscore_store::{Store, StoreError};

use super::{no_workspace, open_existing};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Erase a lead and the leads merged into it: fields, events, scores, histories, webhook
    /// notifications. Its identifiers are suppressed; webhooks are sent `lead_erased`
    Erase {
        /// Directory of the database (the service must not be running on it)
        #[arg(long)]
        data: PathBuf,
        /// Workspace name
        #[arg(long)]
        workspace: String,
        /// The lead's user id, or its own numeric id
        id: String,
    },
    /// Print everything stored about a lead as one JSON document
    Export {
        /// Directory of the database
        #[arg(long)]
        data: PathBuf,
        /// Workspace name
        #[arg(long)]
        workspace: String,
        /// The lead's user id, or its own numeric id
        id: String,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match args.action {
        Action::Erase { data, workspace, id } => {
            open_existing(&data)?;
            let store = match Store::open_ingesting(&data, leadscore_store::message_ids::DEFAULT_RECENT) {
                Err(StoreError::InUse { .. }) => bail!(
                    "a leadscore service is running on {}: erase through it (DELETE /api/leads/{id} with an admin \
                     key, or the lead's page in the console), or stop it first",
                    data.display()
                ),
                opened => opened.with_context(|| format!("cannot open the data directory {}", data.display()))?,
            };
            let workspace_id = workspace_id(&store, &workspace, &data)?;
            let erased = runtime.block_on(erasure::erase(&store, workspace_id, id, "command line".to_string()));
            let erased = erased.map_err(|missing| anyhow::anyhow!("{missing}"))?;
            println!(
                "erased lead {} of workspace `{workspace}` ({} lead rows, {} events) at {}; {} identifiers suppressed \
                 (erasure {}); webhooks are sent lead_erased when the service next runs",
                erased.lead_id,
                erased.leads,
                erased.events,
                Timestamp(erased.erased_at),
                erased.suppressed,
                erased.id
            );
        }
        Action::Export { data, workspace, id } => {
            let store = open_existing(&data)?;
            let workspace_id = workspace_id(&store, &workspace, &data)?;
            let models = Arc::new(Models::default());
            let export = runtime
                .block_on(erasure::export(&store, models, workspace_id, id))
                .map_err(|missing| anyhow::anyhow!("{missing}"))?;
            println!("{}", serde_json::to_string_pretty(&export)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn workspace_id(store: &Store, workspace: &str, data: &std::path::Path) -> anyhow::Result<i64> {
    let name = workspace.to_string();
    let found = store.read_blocking(move |connection| leadscore_store::workspaces::find(connection, &name))?;
    Ok(found.with_context(|| no_workspace(workspace, data))?.id)
}
