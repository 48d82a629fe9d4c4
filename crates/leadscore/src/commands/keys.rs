//! `leadscore keys`: create a workspace's API keys (shown once), list them, revoke them. Works on
//! the store of a running service.

use std::process::ExitCode;

use anyhow::bail;
use leadscore_core::Timestamp;
use leadscore_store::keys::{KeyInfo, Scope};

use super::{StoreArgs, aligned, block_on, no_workspace, workspace_id};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Create a key and print it (it is stored hashed and cannot be shown again)
    Create {
        #[command(flatten)]
        store: StoreArgs,
        /// Workspace name (created if it does not exist)
        #[arg(long)]
        workspace: String,
        /// ingest (send events from a server), browser (send a website's events from its pages;
        /// public, needs --origin), read (leads and scores) or admin (everything)
        #[arg(long, value_parser = |s: &str| s.parse::<Scope>())]
        scope: Scope,
        /// An origin allowed to use a browser key (`https://www.example.com`); repeat it for
        /// several
        #[arg(long = "origin")]
        origins: Vec<String>,
        /// What the key is for ("website tracker"), shown when keys are listed
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List a workspace's keys, newest first: id, prefix (the key's first 12 characters), scope,
    /// name, creation and revocation times
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// Workspace name
        #[arg(long)]
        workspace: String,
    },
    /// Revoke a key: every running server stops accepting it within a second
    Revoke {
        #[command(flatten)]
        store: StoreArgs,
        /// Workspace name
        #[arg(long)]
        workspace: String,
        /// The key's id, from `leadscore keys list`
        #[arg(long)]
        id: i64,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let now = leadscore_store::now_ms();
    match args.action {
        Action::Create { store, workspace, scope, name, origins } => {
            let name = leadscore_server::api_keys::checked_name(&name)
                .map_err(|reason| anyhow::anyhow!("--name: {reason}"))?;
            let origins = leadscore_server::api_keys::checked_origins(scope, &origins)
                .map_err(|reason| anyhow::anyhow!("--origin: {reason}"))?;
            let storage = store.open()?;
            let key = block_on(async {
                let workspace = storage.write(move |t| t.find_or_create_workspace(&workspace, now)).await?;
                storage.create_key(workspace.id, scope, name, origins, now).await
            })??;
            println!("{}", key.secret);
        }
        Action::List { store, workspace } => {
            let storage = store.open_existing()?;
            let workspace_id = workspace_id(&storage, &workspace, &store.location())?;
            let listed = block_on(storage.list_keys(workspace_id))??;
            print!("{}", table(&listed));
        }
        Action::Revoke { store, workspace, id } => {
            let storage = store.open_existing()?;
            let location = store.location();
            let outcome = block_on(async {
                let name = workspace.clone();
                let Some(found) = storage.read(move |reads| reads.workspace_named(&name)).await? else {
                    return Ok(Revocation::NoWorkspace);
                };
                // A revocation keeps the first time a key was revoked: read it before, to tell a
                // new revocation from an old one.
                let before = storage.list_keys(found.id).await?.into_iter().find(|key| key.id == id);
                let Some(before) = before else { return Ok(Revocation::NoKey) };
                let after = storage.revoke_key(found.id, id, now).await?;
                anyhow::Ok(Revocation::Done { already_at: before.revoked_at, key: after.unwrap_or(before) })
            })??;
            match outcome {
                Revocation::NoWorkspace => bail!("{}", no_workspace(&workspace, &location)),
                Revocation::NoKey => {
                    bail!("workspace `{workspace}` has no key {id} (`leadscore keys list` shows its keys)")
                }
                Revocation::Done { already_at: Some(at), key } => {
                    println!("key {} ({}, {}) was already revoked at {}", key.id, key.prefix, key.scope, Timestamp(at))
                }
                Revocation::Done { already_at: None, key } => println!(
                    "revoked key {} ({}, {}) of workspace `{workspace}`; every running server stops accepting it within a second",
                    key.id, key.prefix, key.scope
                ),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

enum Revocation {
    NoWorkspace,
    NoKey,
    Done {
        /// When the key had been revoked before, if it had.
        already_at: Option<i64>,
        key: KeyInfo,
    },
}

/// The keys as aligned columns, with a header line.
fn table(keys: &[KeyInfo]) -> String {
    let mut rows = vec![["ID", "PREFIX", "SCOPE", "NAME", "CREATED", "REVOKED"].map(String::from).to_vec()];
    for key in keys {
        rows.push(vec![
            key.id.to_string(),
            key.prefix.clone(),
            key.scope.to_string(),
            if key.name.is_empty() { "-".to_string() } else { key.name.clone() },
            Timestamp(key.created_at).to_string(),
            key.revoked_at.map_or_else(|| "-".to_string(), |at| Timestamp(at).to_string()),
        ]);
    }
    aligned(&rows)
}
