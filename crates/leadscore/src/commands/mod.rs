//! One module per subcommand.

pub mod check;
pub mod dbt;
pub mod evaluate;
pub mod explain;
pub mod keys;
pub mod leads;
pub mod migrate_store;
pub mod score;
pub mod serve;
pub mod sql;
pub mod test;
pub mod train;
pub mod users;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use leadscore_core::Timestamp;
use leadscore_store::{Access, Location, Storage};

/// `--as-of`: an instant in RFC 3339.
fn parse_as_of(text: &str) -> Result<Timestamp, String> {
    Timestamp::parse_rfc3339(text).map_err(|e| e.to_string())
}

/// The moment a command runs, for `--as-of-now` and a missing `--as-of`.
fn now() -> Timestamp {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Timestamp(since_epoch.as_millis() as i64)
}

/// Where a command finds the data: a directory with one SQLite file, or a PostgreSQL database;
/// one of the two.
#[derive(clap::Args, Clone, Debug)]
#[group(required = true, multiple = false)]
pub struct StoreArgs {
    /// Directory of the SQLite database
    #[arg(long)]
    data: Option<PathBuf>,
    /// A PostgreSQL database instead of a data directory (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB`)
    #[arg(long, env = "LEADSCORE_DATABASE", hide_env_values = true)]
    database: Option<String>,
}

impl StoreArgs {
    pub(crate) fn location(&self) -> Location {
        match (&self.data, &self.database) {
            (_, Some(url)) => Location::Postgres(url.clone()),
            (Some(dir), None) => Location::Directory(dir.clone()),
            // clap's group requires one of the two.
            (None, None) => Location::Directory(PathBuf::from(".")),
        }
    }

    /// Opens the store for a command beside the service, creating it if there is none.
    pub(crate) fn open(&self) -> anyhow::Result<Arc<dyn Storage>> {
        let location = self.location();
        location.open(Access::Beside).with_context(|| format!("cannot open the store at {location}"))
    }

    /// Opens the store without creating one: listing or revoking in a mistyped directory must
    /// say so, not leave an empty database there.
    pub(crate) fn open_existing(&self) -> anyhow::Result<Arc<dyn Storage>> {
        let location = self.location();
        if !location.exists() {
            bail!("no database in {location}: {location}/leadscore.db does not exist");
        }
        self.open()
    }
}

pub(crate) fn no_workspace(workspace: &str, location: &Location) -> String {
    format!("no workspace `{workspace}` in {location}")
}

/// Runs a command's storage calls to their end (they are asynchronous, as the service's are).
pub(crate) fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    Ok(runtime.block_on(future))
}

/// The id of the workspace named `workspace`, or an error naming it and the store.
pub(crate) fn workspace_id(storage: &Arc<dyn Storage>, workspace: &str, location: &Location) -> anyhow::Result<i64> {
    let name = workspace.to_string();
    let found = block_on(storage.read(move |reads| reads.workspace_named(&name)))??;
    Ok(found.with_context(|| no_workspace(workspace, location))?.id)
}

/// A figure of a report with four decimals, or `n/a` when there is none or it is not finite (as
/// its JSON, where such a number is `null`).
pub(crate) fn number(value: impl Into<Option<f64>>) -> String {
    value.into().filter(|v| v.is_finite()).map_or("n/a".to_string(), |v| format!("{v:.4}"))
}

/// Rows as columns aligned by their widths in characters, one line each (the first is the header).
pub(crate) fn aligned(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|column| rows.iter().filter_map(|row| row.get(column)).map(|cell| cell.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
