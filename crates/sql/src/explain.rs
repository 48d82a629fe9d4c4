//! `--explain`: each score's contributions as JSON text, in the engine's order and shape
//! (`leadscore_core::engine::Contribution`, as `leadscore score --explain` writes them): the
//! rules that applied (with their group, and the occurrences an event rule counted), the group
//! limits that cut, the weighted components, the score's limit and normalisation's offset; or
//! the one `segment` a score routes to, or `not_applicable`.
//!
//! The JSON is built by concatenating text rather than with the dialects' JSON functions, which
//! differ in every dialect and in the order they write keys: names are escaped here, and numbers
//! are the dialect's text of a double (the shortest digits that read back, a valid JSON number)
//! after the engine's rounding of written points to 6 decimals.

use crate::dialect::Dialect;

/// JSON text of one contribution object or array, as SQL expressions of text.
pub(crate) struct Json {
    pub(crate) dialect: Dialect,
}

impl Json {
    /// A constant JSON string (a name from the model), as a SQL text literal.
    pub(crate) fn string(&self, value: &str) -> String {
        self.dialect.text(&json_string(value))
    }

    /// A constant piece of JSON text.
    pub(crate) fn raw(&self, text: &str) -> String {
        self.dialect.text(text)
    }

    /// A double expression as a JSON number, rounded as the engine writes points.
    pub(crate) fn points(&self, value: &str) -> String {
        self.number(&crate::rounding::round_to_precision(self.dialect, value, 6))
    }

    /// A number expression (never NULL, finite) as JSON text.
    pub(crate) fn number(&self, value: &str) -> String {
        format!("CAST({value} AS {})", self.dialect.text_type())
    }

    /// An object of `(key, JSON text expression)` members; a member whose value is NULL is left
    /// out.
    pub(crate) fn object(&self, members: &[(&str, String)]) -> String {
        let members: Vec<String> = members
            .iter()
            .map(|(key, value)| format!("({} || {value})", self.raw(&format!("{}:", json_string(key)))))
            .collect();
        format!("({} || {} || {})", self.raw("{"), self.dialect.join_non_null(",", &members), self.raw("}"))
    }

    /// An array of the elements that are not NULL (each a JSON text expression or NULL).
    pub(crate) fn array(&self, elements: &[String]) -> String {
        if elements.is_empty() {
            return self.raw("[]");
        }
        format!("({} || {} || {})", self.raw("["), self.dialect.join_non_null(",", elements), self.raw("]"))
    }
}

/// `value` as a JSON string: quoted, with quotes, backslashes and control characters escaped.
fn json_string(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::json_string;

    #[test]
    fn names_are_escaped_as_json_strings() {
        assert_eq!(json_string("plain"), "\"plain\"");
        assert_eq!(json_string("a \"b\" \\ c\n\u{1}é"), "\"a \\\"b\\\" \\\\ c\\n\\u0001é\"");
    }
}
