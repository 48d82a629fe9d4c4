//! `leadscore leads`: a person's rights over their data, for operators: erase a lead (as
//! `DELETE /api/leads/{id}` does, with its record, suppression and `lead_erased` notifications)
//! or export everything stored about it as JSON (as `GET /api/leads/{id}/export`).
//!
//! Erasing needs a data directory to itself: a running service remembers leads in memory and
//! would not know this process erased one, so while it runs the erasure goes through its API
//! or console instead. A PostgreSQL store can be erased from while services run on it: they
//! remember no lead beyond a request (see [`leadscore_store::postgres`]).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use leadscore_core::Timestamp;
use leadscore_server::erasure;
use leadscore_server::scoring::Models;
use leadscore_store::{Access, StoreError};

use super::{StoreArgs, workspace_id};

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
        /// The store (a data directory must not have the service running on it)
        #[command(flatten)]
        store: StoreArgs,
        /// Workspace name
        #[arg(long)]
        workspace: String,
        /// The lead's user id, or its own numeric id
        id: String,
    },
    /// Print everything stored about a lead as one JSON document
    Export {
        #[command(flatten)]
        store: StoreArgs,
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
        Action::Erase { store, workspace, id } => {
            store.open_existing()?;
            let location = store.location();
            let recent_message_ids = leadscore_store::message_ids::DEFAULT_RECENT;
            let storage = match location.open(Access::Ingesting { recent_message_ids }) {
                Err(StoreError::InUse { .. }) => bail!(
                    "a leadscore service is running on {location}: erase through it (DELETE /api/leads/{id} with an \
                     admin key, or the lead's page in the console), or stop it first"
                ),
                opened => opened.with_context(|| format!("cannot open the store at {location}"))?,
            };
            let workspace_id = workspace_id(&storage, &workspace, &location)?;
            let erased =
                runtime.block_on(erasure::erase(storage.as_ref(), workspace_id, id, "command line".to_string()));
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
        Action::Export { store, workspace, id } => {
            let storage = store.open_existing()?;
            let workspace_id = workspace_id(&storage, &workspace, &store.location())?;
            let models = Arc::new(Models::default());
            let export = runtime
                .block_on(erasure::export(storage.as_ref(), models, workspace_id, id))
                .map_err(|missing| anyhow::anyhow!("{missing}"))?;
            println!("{}", serde_json::to_string_pretty(&export)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
