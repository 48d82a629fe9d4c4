//! The instant the query scores at, as SQL: a constant, or a template expression that whatever
//! renders the query's text replaces (a dbt macro's as-of instant, `crate::dbt`). Every window,
//! decay age and inactivity is written from it, so that either gives the same query.

use leadscore_core::Timestamp;
use leadscore_core::time::Duration;

use crate::dialect::Dialect;

/// The instant the query scores at: a constant, or a template expression in milliseconds that
/// whatever renders the query's text replaces (a dbt macro's as-of).
#[derive(Debug, Clone)]
pub(crate) enum AsOf {
    At(Timestamp),
    Template(fn(i64) -> String),
}

impl AsOf {
    /// The instant `back` milliseconds before the as-of instant, as a 64-bit integer.
    pub(crate) fn minus(&self, dialect: Dialect, back: i64) -> String {
        match self {
            AsOf::At(at) => dialect.bigint(at.saturating_sub(Duration(back)).0),
            AsOf::Template(expression) => format!("CAST({} AS {})", expression(back), dialect.bigint_type()),
        }
    }

    /// The as-of instant, as a 64-bit integer.
    pub(crate) fn sql(&self, dialect: Dialect) -> String {
        self.minus(dialect, 0)
    }
}
