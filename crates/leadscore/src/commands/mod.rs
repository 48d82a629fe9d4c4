//! One module per subcommand.

pub mod check;
pub mod evaluate;
pub mod explain;
pub mod keys;
pub mod leads;
pub mod score;
pub mod serve;
pub mod test;
pub mod train;
pub mod users;

use std::path::Path;

use anyhow::{Context, bail};
use leadscore_store::Store;

/// A figure of a report with four decimals, or `n/a` when there is none or it is not finite (as
/// its JSON, where such a number is `null`).
pub(crate) fn number(value: impl Into<Option<f64>>) -> String {
    value.into().filter(|v| v.is_finite()).map_or("n/a".to_string(), |v| format!("{v:.4}"))
}

/// Opens the database of `data` without creating one: listing or revoking in a mistyped
/// directory must say so, not leave an empty database there.
pub(crate) fn open_existing(data: &Path) -> anyhow::Result<Store> {
    let database = data.join("leadscore.db");
    if !database.is_file() {
        bail!("no database in {}: {} does not exist", data.display(), database.display());
    }
    Store::open(data).with_context(|| format!("cannot open the data directory {}", data.display()))
}

pub(crate) fn no_workspace(workspace: &str, data: &Path) -> String {
    format!("no workspace `{workspace}` in {}", data.display())
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
