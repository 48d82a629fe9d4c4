//! `leadscore users`: create the people who sign in to the console, and list them. Works on the
//! store of a running service; the first admin of a workspace is made here, the rest
//! by admins in the console.
//!
//! The password comes from `LEADSCORE_PASSWORD` or is asked twice on the terminal without echo,
//! never from an argument (arguments are visible to every user of the machine in `ps`).

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{Context, bail};
use leadscore_core::Timestamp;
use leadscore_server::passwords;
use leadscore_store::StoreError;
use leadscore_store::users::{Role, User};

use super::{StoreArgs, aligned, block_on, workspace_id};

/// The environment variable a password may come from.
const PASSWORD_VARIABLE: &str = "LEADSCORE_PASSWORD";

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Create a console account (password from LEADSCORE_PASSWORD, or asked on the terminal)
    Create {
        #[command(flatten)]
        store: StoreArgs,
        /// Workspace name (created if it does not exist)
        #[arg(long)]
        workspace: String,
        /// The e-mail address the person signs in with (one account per address)
        #[arg(long)]
        email: String,
        /// viewer (reads), editor (also moves stages and edits models) or admin (everything)
        #[arg(long, value_parser = |s: &str| s.parse::<Role>())]
        role: Role,
    },
    /// List a workspace's accounts: id, e-mail, role, creation time, whether disabled
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// Workspace name
        #[arg(long)]
        workspace: String,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let now = leadscore_store::now_ms();
    match args.action {
        Action::Create { store, workspace, email, role } => {
            leadscore_server::accounts::check_email(&email)?;
            let password = password(&email)?;
            passwords::check(&password, &email)?;
            let hash = passwords::hash(&password)?;
            let storage = store.open()?;
            let name = workspace.clone();
            let created = block_on(async {
                let workspace = storage.write(move |t| t.find_or_create_workspace(&name, now)).await?;
                storage.create_user(workspace.id, email, role, hash, now).await
            })?;
            match created {
                Ok(user) => println!("created the {} account {} in workspace `{workspace}`", user.role, user.email),
                Err(StoreError::Conflict(reason)) => bail!("{reason}: an address has one account"),
                Err(error) => return Err(error.into()),
            }
        }
        Action::List { store, workspace } => {
            let storage = store.open_existing()?;
            let workspace_id = workspace_id(&storage, &workspace, &store.location())?;
            let listed = block_on(storage.list_users(workspace_id))??;
            print!("{}", table(&listed));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The new account's password: from the environment, or typed twice on the terminal.
fn password(email: &str) -> anyhow::Result<String> {
    if let Some(password) = std::env::var_os(PASSWORD_VARIABLE).filter(|p| !p.is_empty()) {
        return password.into_string().map_err(|_| anyhow::anyhow!("{PASSWORD_VARIABLE} is not valid UTF-8"));
    }
    if !std::io::stdin().is_terminal() {
        bail!("no password: set {PASSWORD_VARIABLE}, or run the command in a terminal to type it");
    }
    let first = rpassword::prompt_password(format!("Password for {email}: ")).context("cannot read the password")?;
    let second = rpassword::prompt_password("The same password again: ").context("cannot read the password")?;
    if first != second {
        bail!("the two passwords differ; nothing was created");
    }
    Ok(first)
}

/// The accounts as aligned columns, with a header line.
fn table(users: &[User]) -> String {
    let mut rows = vec![["ID", "EMAIL", "ROLE", "CREATED", "DISABLED"].map(String::from).to_vec()];
    for user in users {
        rows.push(vec![
            user.id.to_string(),
            user.email.clone(),
            user.role.to_string(),
            Timestamp(user.created_at).to_string(),
            user.disabled_at.map_or_else(|| "-".to_string(), |at| Timestamp(at).to_string()),
        ]);
    }
    aligned(&rows)
}
