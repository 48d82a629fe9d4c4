//! Why a model is not compiled to SQL: a construct this crate does not compile yet, or one a
//! dialect cannot compute exactly. Both name the construct and the line of the model file where
//! it is written, so that the model's author can see what to change. The query is never
//! approximated instead.

use crate::dialect::Dialect;

/// A model that is not compiled to SQL, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlError {
    /// A construct the SQL compiler does not cover yet.
    #[error("{construct} on line {line} is not compiled to SQL yet")]
    NotYet { construct: String, line: usize },
    /// A construct the dialect cannot compute exactly as the engine does.
    #[error("{construct} on line {line} cannot be computed exactly in {dialect}: {reason}")]
    Inexact { construct: String, line: usize, dialect: Dialect, reason: String },
    /// A table name that is not a (possibly qualified) name.
    #[error("`{0}` is not a table name: give NAME or SCHEMA.NAME, without quotes")]
    TableName(String),
    /// A dbt macro name that Jinja does not read as a name.
    #[error("`{0}` is not a macro name: give letters, digits and `_`, not starting with a digit")]
    MacroName(String),
    /// Text of the model that would end the query's raw Jinja text in a dbt macro.
    #[error("the model's text holds `{0}`, which a dbt macro cannot hold in its query")]
    Jinja(String),
}

impl SqlError {
    /// The model file's line the error points at (1-based), if it points at one.
    pub fn line(&self) -> Option<usize> {
        match self {
            SqlError::NotYet { line, .. } | SqlError::Inexact { line, .. } => Some(*line),
            SqlError::TableName(_) | SqlError::MacroName(_) | SqlError::Jinja(_) => None,
        }
    }
}

/// Where a construct is written: the span of the table that holds it (a rule, a qualifier, a
/// score), in which the key naming the construct is looked for.
#[derive(Debug, Clone)]
pub(crate) struct Place<'t> {
    pub(crate) text: &'t str,
    pub(crate) span: std::ops::Range<usize>,
}

impl Place<'_> {
    /// The line of `key`'s first appearance in the place, or of the place's start.
    pub(crate) fn line_of(&self, key: &str) -> usize {
        let start = self.span.start.min(self.text.len());
        // The span of a `[[...]]` table is its header: its keys run up to the next header.
        let next_header = self.text[start..]
            .match_indices('\n')
            .map(|(i, _)| start + i + 1)
            .find(|&line_start| self.text[line_start..].trim_start().starts_with('['))
            .unwrap_or(self.text.len());
        let end = self.span.end.max(next_header).clamp(start, self.text.len());
        let within = self.text.get(start..end).unwrap_or_default();
        let at = within.find(key).map_or(start, |offset| start + offset);
        self.text[..at].matches('\n').count() + 1
    }

    pub(crate) fn not_yet(&self, key: &str, construct: impl Into<String>) -> SqlError {
        SqlError::NotYet { construct: construct.into(), line: self.line_of(key) }
    }

    pub(crate) fn inexact(&self, key: &str, construct: impl Into<String>, dialect: Dialect, reason: &str) -> SqlError {
        SqlError::Inexact { construct: construct.into(), line: self.line_of(key), dialect, reason: reason.to_string() }
    }
}
