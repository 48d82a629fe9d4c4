//! leadscore-sql: compiles a leadscore model into one SQL query that scores leads where the data
//! already is, with the same results as `leadscore score`.
//!
//! The crate is pure, like the core: a compiled [`Model`] and its text in, SQL text out. Its
//! inputs are a leads table (`lead_id` and a column per field the model reads) and an events
//! table (`lead_id`, `type`, `ts` in RFC 3339, and a column per property the model reads), as in
//! the files `leadscore score` reads, every column read as text and cast by the query. Its
//! output has `leadscore score`'s columns: `lead_id`, then each score and `SCORE_tier`.
//!
//! Every construct is either computed exactly as the engine computes it or refused with an
//! [`SqlError`] that names it and its line in the model file: the query is never an
//! approximation.
//!
//! # Layout
//! - [`dialect`]: how the dialects differ (literals, casts, regular expressions, division).
//! - `values`: a text cell read as the engine reads it (trimmed, numbers, booleans, instants).
//! - `regex`: the engine's patterns rewritten for the dialects, case-insensitivity written out.
//! - `condition`: conditions as boolean expressions.
//! - `rules`: one module per rule kind, as in the core's `rules`.
//! - `as_of`: the as-of instant as a constant or as a template's expression.
//! - `query`: the assembly: inputs, trackers, rules, then each score (groups, limits,
//!   normalisation, rounding, tiers, qualifiers).
//! - `rounding`: the engine's rounding of a value to its precision.
//! - `explain`: each score's contributions as JSON text, for `--explain`.
//! - [`dbt`]: the query for every dialect as one dbt macro over the relations dbt passes.
//! - [`error`]: what is refused, and where.

mod as_of;
mod columns;
mod condition;
pub mod dbt;
pub mod dialect;
pub mod error;
mod explain;
mod query;
mod regex;
mod rounding;
mod rules;
mod values;

pub use dbt::{DbtAsOf, dbt_macro};
pub use dialect::Dialect;
pub use error::SqlError;

use leadscore_core::{Model, Timestamp};

/// What to compile a model for.
#[derive(Debug, Clone)]
pub struct SqlOptions<'a> {
    pub dialect: Dialect,
    /// The leads table's name (`NAME` or `SCHEMA.NAME`).
    pub leads_table: &'a str,
    /// The events table's name.
    pub events_table: &'a str,
    /// The instant the scores are computed at.
    pub as_of: Timestamp,
    /// Whether to add a `contributions` column: a JSON object of each score's contributions,
    /// as `leadscore score --explain` writes them.
    pub explain: bool,
}

/// The query that scores every lead of `options.leads_table` with `model`, whose file's text is
/// `model_text` (errors point at its lines).
pub fn compile_sql(model: &Model, model_text: &str, options: &SqlOptions<'_>) -> Result<String, SqlError> {
    query::render(model, model_text, options)
}
