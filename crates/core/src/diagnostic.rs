//! Problems found in a model file, each tied to a byte range of the file so that it can be shown
//! with its line and column.

use std::fmt;
use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// One problem in a model file.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    /// Byte range in the model file, when the problem has a place.
    pub span: Option<Range<usize>>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>, span: Option<Range<usize>>) -> Diagnostic {
        Diagnostic { severity: Severity::Error, message: message.into(), span }
    }

    pub fn warning(message: impl Into<String>, span: Option<Range<usize>>) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, message: message.into(), span }
    }

    /// `path:line:column: error: message`, the form editors and terminals link to.
    pub fn render(&self, path: &str, source: &str) -> String {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match &self.span {
            Some(span) => {
                let (line, column) = line_column(source, span.start);
                format!("{path}:{line}:{column}: {kind}: {}", self.message)
            }
            None => format!("{path}: {kind}: {}", self.message),
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// A model file that does not compile: every error found, plus the warnings.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ModelError {
    pub diagnostics: Vec<Diagnostic>,
    source_text: String,
}

impl ModelError {
    pub(crate) fn new(mut diagnostics: Vec<Diagnostic>, source_text: &str) -> ModelError {
        diagnostics.sort_by_key(|d| (d.span.as_ref().map_or(0, |s| s.start), std::cmp::Reverse(d.severity)));
        ModelError { diagnostics, source_text: source_text.to_string() }
    }

    /// Every diagnostic as `path:line:column: error: message`, one per line.
    pub fn render(&self, path: &str) -> String {
        self.diagnostics.iter().map(|d| d.render(path, &self.source_text)).collect::<Vec<_>>().join("\n")
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Error)
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render("model"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_count_characters() {
        let source = "a = 1\nb = \"Директор\" x\n";
        let offset = source.find('x').unwrap();
        assert_eq!(line_column(source, offset), (2, 16));
        assert_eq!(line_column(source, 0), (1, 1));
        assert_eq!(line_column(source, 10_000), (3, 1));
    }
}
