//! Field values of leads and event properties, as read from files or JSON.

use std::borrow::Cow;

/// One field's value. Files carry text; JSON may carry numbers and booleans. Tests compare by
/// meaning: the text `"200"` is the number 200 for a numeric range.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Value {
    /// Absent, null or an empty cell: matches nothing but `missing`.
    #[default]
    Missing,
    Text(String),
    Number(f64),
    Bool(bool),
}

impl Value {
    /// Text as given; an empty or all-blank string is a missing value.
    pub fn text(text: impl Into<String>) -> Value {
        let text = text.into();
        if text.trim().is_empty() { Value::Missing } else { Value::Text(text) }
    }

    /// A JSON value as a field value (JSON Lines files, API bodies); `null` is missing, objects
    /// and arrays are kept as their JSON text.
    pub fn from_json(value: &serde_json::Value) -> Value {
        match value {
            serde_json::Value::Null => Value::Missing,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => n.as_f64().map_or(Value::Missing, Value::Number),
            serde_json::Value::String(s) => Value::text(s.as_str()),
            other => Value::Text(other.to_string()),
        }
    }

    pub fn is_missing(&self) -> bool {
        matches!(self, Value::Missing)
    }

    /// The value as a number, if it is one or is text that reads as one.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            Value::Text(t) => t.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
            Value::Bool(_) | Value::Missing => None,
        }
    }

    /// The value as text (numbers and booleans in their usual spelling).
    pub fn as_text(&self) -> Option<Cow<'_, str>> {
        match self {
            Value::Text(t) => Some(Cow::Borrowed(t)),
            Value::Number(n) => Some(Cow::Owned(format_number(*n))),
            Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            Value::Missing => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            Value::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => Some(true),
                "false" | "no" | "0" => Some(false),
                _ => None,
            },
            Value::Number(n) => Some(*n != 0.0),
            Value::Missing => None,
        }
    }
}

/// Formats a number without a needless fraction: `200`, `2.5`.
pub fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 { format!("{}", n as i64) } else { format!("{n}") }
}
