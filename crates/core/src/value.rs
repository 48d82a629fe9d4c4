//! Field values of leads and event properties, as read from files or JSON, and the one rule by
//! which a cell's text reads as a number, a boolean or missing ([`read_number`], [`read_bool`],
//! [`Value::text`], and for data sets [`is_missing_token`]): the scoring rules and the predictive
//! models (training tables and scoring alike) read cells with these same functions, so that a
//! value means the same to both.

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

    /// The value as a number, if it is one or is text that reads as one ([`read_number`]).
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            Value::Text(t) => read_number(t),
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

    /// The value as a boolean: a JSON boolean, text as [`read_bool`] reads it, or a number (0 is
    /// false, any other true).
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            Value::Text(t) => read_bool(t),
            Value::Number(n) => Some(*n != 0.0),
            Value::Missing => None,
        }
    }
}

/// Formats a number without a needless fraction: `200`, `2.5`.
pub fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 { format!("{}", n as i64) } else { format!("{n}") }
}

/// The texts that data sets write for "no value" besides the empty cell (R's `NA`, pandas' `NaN`,
/// the `NULL` of database dumps), matched exactly after trimming.
pub const MISSING_TOKENS: &[&str] = &["", "NA", "N/A", "null", "NULL", "NaN"];

/// Whether a cell's text is missing in a table to learn from and to a predictive score: empty,
/// white space, or one of [`MISSING_TOKENS`] after trimming.
///
/// The scoring rules read only the empty cell as missing ([`Value::text`]) and take `NA` as the
/// text it is: a lead id, or a value a condition may name (`equals = "N/A"`), as the model format
/// documents. A data set exported from R, pandas or a database writes its gaps with these tokens,
/// and learning from them as a category would learn the export tool rather than the leads.
pub fn is_missing_token(text: &str) -> bool {
    MISSING_TOKENS.contains(&text.trim())
}

/// The words read as true, in the languages of the markets leadscore's formats support (English,
/// Chinese, Japanese, Bulgarian, Polish, German, French, Spanish), in lower case: [`read_bool`]
/// compares a cell with them ignoring case. `si` without its accent is there because keyboards
/// and exports drop it.
pub const TRUE_WORDS: &[&str] = &["true", "yes", "1", "是", "はい", "да", "tak", "ja", "oui", "sí", "si"];

/// The words read as false, as [`TRUE_WORDS`]. No word is true in one of these languages and
/// false in another (`nie` is "no" in Polish and "never" in German; `ja` is "I" in Polish, no
/// answer at all), so one list serves every market.
pub const FALSE_WORDS: &[&str] = &["false", "no", "0", "否", "いいえ", "не", "nie", "nein", "non"];

/// A cell's text as a boolean, after trimming white space and ignoring case (Unicode lower
/// case, so `Да`, `NEIN` and `SÍ` read as `да`, `nein` and `sí`): [`TRUE_WORDS`] are true,
/// [`FALSE_WORDS`] false, anything else is not a boolean.
///
/// `1` and `0` are booleans because CRM exports and databases write checkboxes that way as often
/// as `true`/`false` or `yes`/`no`. Whether a whole column of `0` and `1` is a flag or a count is
/// another question, which the reader of a table answers (a training table keeps such a column
/// numeric); this function only says what one cell means when a boolean is asked for.
pub fn read_bool(text: &str) -> Option<bool> {
    let text = text.trim();
    // The longest word has 5 characters; longer cells (most text) are not booleans, and
    // lower-casing them would allocate for nothing.
    if text.chars().nth(5).is_some() {
        return None;
    }
    let lower;
    let text = if text.is_ascii() {
        text
    } else {
        lower = text.to_lowercase();
        lower.as_str()
    };
    let is = |words: &[&str]| words.iter().any(|word| text.eq_ignore_ascii_case(word));
    if is(TRUE_WORDS) {
        Some(true)
    } else if is(FALSE_WORDS) {
        Some(false)
    } else {
        None
    }
}

/// A cell's text as a number, after trimming white space: a finite decimal number as Rust's
/// `f64` parser reads it (`250`, `250.0`, `2.5e2`, `-1`); `1,000`, `250 employees`, `inf` and `NaN`
/// are not numbers.
pub fn read_number(text: &str) -> Option<f64> {
    let text = text.trim();
    let (negative, digits) = match text.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        rest => (false, rest),
    };
    // Whole numbers of at most 15 digits, most cells of lead data, take a shorter way with the
    // same result: such an integer is exactly an `f64`.
    if !digits.is_empty() && digits.len() <= 15 && digits.iter().all(u8::is_ascii_digit) {
        let n = digits.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
        // Through a float, so that "-0" is -0.0 as the general parse makes it.
        return Some(if negative { -(n as f64) } else { n as f64 });
    }
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_are_words_and_one_and_zero_in_any_case() {
        for text in ["true", "TRUE", "Yes", "yes", "1", " 1 ", "\ttrue\n"] {
            assert_eq!(read_bool(text), Some(true), "{text:?}");
        }
        for text in ["false", "False", "NO", "no", "0", " 0"] {
            assert_eq!(read_bool(text), Some(false), "{text:?}");
        }
        for text in ["", " ", "y", "n", "on", "off", "2", "1.0", "-1", "t", "maybe", "NA"] {
            assert_eq!(read_bool(text), None, "{text:?}");
        }
    }

    #[test]
    fn yes_and_no_read_as_booleans_in_every_supported_language() {
        for text in
            ["是", "はい", "да", "Да", "ДА", "tak", "TAK", "ja", "Ja", "oui", "OUI", "sí", "Sí", "SÍ", "si", "Si"]
        {
            assert_eq!(read_bool(text), Some(true), "{text:?}");
        }
        for text in ["否", "いいえ", "не", "Не", "НЕ", "nie", "Nie", "nein", "NEIN", "Nein", "non", "Non", "no"]
        {
            assert_eq!(read_bool(text), Some(false), "{text:?}");
        }
        for text in [" да ", "\tnein\n", "\u{3000}はい\u{3000}"] {
            assert!(read_bool(text).is_some(), "trimmed: {text:?}");
        }
        // Other words of the same languages, and answers with more than the word, are not
        // booleans: a condition `equals = true` must not match them.
        for text in
            ["是的", "はいはい", "да!", "нет", "niet", "ok", "oui oui", "s", "sì", "ne", "nee", "tak tak", "jaa"]
        {
            assert_eq!(read_bool(text), None, "{text:?}");
        }
    }

    #[test]
    fn no_word_is_both_true_and_false() {
        for word in TRUE_WORDS {
            assert_eq!(read_bool(word), Some(true), "{word}");
            assert!(!FALSE_WORDS.contains(word), "{word}");
            assert_eq!(word.to_lowercase(), *word, "listed in lower case: {word}");
        }
        for word in FALSE_WORDS {
            assert_eq!(read_bool(word), Some(false), "{word}");
            assert_eq!(word.to_lowercase(), *word, "listed in lower case: {word}");
        }
    }

    #[test]
    fn numbers_are_finite_decimals_after_trimming() {
        for (text, n) in
            [("250", 250.0), (" 250 ", 250.0), ("250.0", 250.0), ("2.5e2", 250.0), ("-1", -1.0), ("+7", 7.0)]
        {
            assert_eq!(read_number(text), Some(n), "{text:?}");
        }
        for text in ["", " ", "1,000", "250 employees", "inf", "NaN", "n/a", "-", "+", "1-", "true"] {
            assert_eq!(read_number(text), None, "{text:?}");
        }
        assert!(read_number("-0").is_some_and(|z| z == 0.0 && z.is_sign_negative()));
    }

    #[test]
    fn values_read_as_their_cells_do() {
        assert_eq!(Value::text(" yes ").as_bool(), Some(true));
        assert_eq!(Value::text("0").as_bool(), Some(false));
        assert_eq!(Value::text("Да").as_bool(), Some(true));
        assert_eq!(Value::from_json(&serde_json::json!("NEIN")).as_bool(), Some(false));
        assert_eq!(Value::Number(2.0).as_bool(), Some(true));
        assert_eq!(Value::text(" 2.5e2 ").as_number(), Some(250.0));
        assert_eq!(Value::Bool(true).as_number(), None);
        assert!(Value::text("  ").is_missing());
        assert!(!Value::text("NA").is_missing(), "the rules take NA as the text it is");
    }

    #[test]
    fn data_sets_also_read_missing_tokens_as_missing() {
        for text in ["", "  ", "NA", " N/A ", "null", "NULL", "NaN"] {
            assert!(is_missing_token(text), "{text:?}");
        }
        for text in ["na", "none", "-", "0", "n/a", "Null"] {
            assert!(!is_missing_token(text), "{text:?}");
        }
    }

    #[test]
    fn whole_numbers_read_as_the_general_parse_does() {
        for text in [
            "0",
            "-0",
            "+7",
            "42",
            "-1",
            "007",
            "999999999999999",
            "1234567890123456",
            "1.5",
            "-2e3",
            "",
            "-",
            "+",
            "1-",
            "inf",
            "NaN",
            "١",
        ] {
            let general = text.parse::<f64>().ok().filter(|v| v.is_finite());
            assert_eq!(read_number(text).map(f64::to_bits), general.map(f64::to_bits), "{text:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn numbers_read_as_the_general_parse_does(text in "[-+]?[0-9]{0,20}([.][0-9]{0,3})?([eE][-+]?[0-9]{1,3})?") {
            let general = text.parse::<f64>().ok().filter(|v| v.is_finite());
            proptest::prop_assert_eq!(read_number(&text).map(f64::to_bits), general.map(f64::to_bits));
        }
    }
}
