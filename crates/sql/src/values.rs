//! How the query reads a cell of text as the engine reads it: trimmed of white space (empty is
//! missing), as a number, as a boolean and as an RFC 3339 instant in milliseconds. Every input
//! column is read as text and cast here, so that tables loaded from the CSV files `leadscore
//! score` reads, with every column as text, give the same values.

use std::collections::HashMap;
use std::sync::OnceLock;

use leadscore_core::value::{FALSE_WORDS, TRUE_WORDS};

use crate::dialect::Dialect;
use crate::regex::{Node, render};

/// The characters Rust's `str::trim` removes (Unicode `White_Space`), which the batch readers
/// trim cells of.
const WHITE_SPACE: &[char] = &[
    '\u{9}', '\u{a}', '\u{b}', '\u{c}', '\u{d}', ' ', '\u{85}', '\u{a0}', '\u{1680}', '\u{2000}', '\u{2001}',
    '\u{2002}', '\u{2003}', '\u{2004}', '\u{2005}', '\u{2006}', '\u{2007}', '\u{2008}', '\u{2009}', '\u{200a}',
    '\u{2028}', '\u{2029}', '\u{202f}', '\u{205f}', '\u{3000}',
];

/// A text column as a cell: trimmed, and NULL when nothing is left (a missing value).
///
/// Trimming a set of 25 code points is most of the time DuckDB spends reading a table of events
/// (7.6 of 20.9 s of CPU for 2,000,000 events in `bench/sql_vs_duckdb.py`'s query), and nearly
/// every cell starts and ends with a printable ASCII character, which no trim removes. Where
/// `ASCII` answers the first character's code point (DuckDB; PostgreSQL in UTF-8, which the query
/// needs), such cells are taken as they are, and only the others trimmed.
pub(crate) fn cell(dialect: Dialect, column: &str) -> String {
    let white_space = dialect.code_points(&WHITE_SPACE.iter().map(|c| *c as u32).collect::<Vec<_>>());
    let text = format!("CAST({column} AS {})", dialect.text_type());
    let trimmed = format!("NULLIF({}, '')", dialect.trim(&text, &white_space));
    match dialect {
        // DuckDB's `RIGHT` makes a new text, and its last character (`[-1]`) compared as a text
        // is a third of the time: a character beyond ASCII starts with a byte above `~`.
        Dialect::DuckDb => format!(
            "(CASE WHEN ASCII({text}) BETWEEN 33 AND 126 AND {text}[-1] BETWEEN '!' AND '~' THEN {text} ELSE {trimmed} END)"
        ),
        Dialect::Postgres => format!(
            "(CASE WHEN ASCII({text}) BETWEEN 33 AND 126 AND ASCII(RIGHT({text}, 1)) BETWEEN 33 AND 126 \
             THEN {text} ELSE {trimmed} END)"
        ),
        _ => trimmed,
    }
}

/// What Rust's `f64` parser reads as a finite number (`250`, `2.5e2`, `.5`, `1.`, `+7`); its
/// `inf` and `NaN` are not numbers to the engine.
const NUMBER: &str = "^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$";

/// A cell (trimmed text or NULL) as a double, NULL when it does not read as a number
/// (`leadscore_core::value::read_number`).
pub(crate) fn number(dialect: Dialect, cell: &str) -> String {
    let pattern = ascii_pattern(dialect, NUMBER);
    let double = dialect.to_double(cell);
    let finite = match dialect {
        // PostgreSQL refuses to cast a text beyond a double's range; its exact decimals tell
        // which texts Rust reads as infinite (not a number) or as zero.
        Dialect::Postgres => {
            let exact = format!("ABS(CAST({cell} AS NUMERIC))");
            format!(
                "(CASE WHEN {exact} >= {OVERFLOW} THEN NULL WHEN {exact} <= {UNDERFLOW} THEN {} ELSE {double} END)",
                dialect.double(0.0)
            )
        }
        // The others read such texts as infinite, which the engine does not take for a number.
        _ => format!("(CASE WHEN ABS({double}) <= {} THEN {double} END)", dialect.double(f64::MAX)),
    };
    format!("(CASE WHEN {} THEN {finite} END)", dialect.regex_matches(cell, &pattern))
}

/// The least number whose nearest double is infinite: 2^1024 - 2^970.
const OVERFLOW: &str = "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497792";

/// The greatest number whose nearest double is zero: 2^-1075 (halfway to the least subnormal,
/// which rounds to even, to zero).
const UNDERFLOW: &str = "0.0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000024703282292062327208828439643411068618252990130716238221279284125033775363510437593264991818081799618989828234772285886546332835517796989819938739800539093906315035659515570226392290858392449105184435931802849936536152500319370457678249219365623669863658480757001585769269903706311928279558551332927834338409351978015531246597263579574622766465272827220056374006485499977096599470454020828166226237857393450736339007967761930577506740176324673600968951340535537458516661134223766678604162159680461914467291840300530057530849048765391711386591646239524912623653881879636239373280423891018672348497668235089863388587925628302755995657524455507255189313690836254779186948667994968324049705821028513185451396213837722826145437693412532098591327667236328125";

/// A cell as a boolean, NULL when it is not one (`leadscore_core::value::read_bool`): one of
/// the words, ignoring case as the engine does (ASCII case for ASCII text, Unicode lower case
/// otherwise), each character spelled as the class of characters that lower-case to it.
pub(crate) fn boolean(dialect: Dialect, cell: &str) -> String {
    let words = |words: &[&str]| {
        let alternatives = words.iter().map(|word| lower_case_insensitive(word)).collect();
        render(dialect, &Node::whole(Node::Alternation(alternatives)))
    };
    format!(
        "(CASE WHEN {} THEN TRUE WHEN {} THEN FALSE END)",
        dialect.regex_matches(cell, &words(TRUE_WORDS)),
        dialect.regex_matches(cell, &words(FALSE_WORDS))
    )
}

/// A lower-case text as the pattern of the texts whose lower case it is, character by
/// character: each character as the class of the characters whose lower case is that
/// character alone.
pub(crate) fn lower_case_insensitive(lower: &str) -> Node {
    Node::Concat(lower.chars().map(|c| Node::Class { negated: false, chars: lowered_to(c) }).collect())
}

/// The characters whose Unicode lower case is `c` alone (`c` among them when it is lower case).
pub(crate) fn lowered_to(c: char) -> Vec<char> {
    static INVERSE: OnceLock<HashMap<char, Vec<char>>> = OnceLock::new();
    let inverse = INVERSE.get_or_init(|| {
        let mut inverse: HashMap<char, Vec<char>> = HashMap::new();
        for d in (0..=char::MAX as u32).filter_map(char::from_u32) {
            let mut lower = d.to_lowercase();
            if lower.len() == 1
                && let Some(l) = lower.next()
            {
                inverse.entry(l).or_default().push(d);
            }
        }
        inverse
    });
    inverse.get(&c).cloned().unwrap_or_default()
}

/// Whether a text's lower case can be made of other characters than its own, one for one: a
/// character whose lower case is several (`İ` is `i̇`) or depends on its neighbours (a final
/// `Σ` is `ς`). Texts compared by lower case must not hold what these can produce.
pub(crate) fn lower_case_is_contextual(lower: &str) -> bool {
    lower.chars().any(|c| matches!(c, 'ς' | 'σ' | '\u{307}'))
}

/// An ASCII pattern (digits, classes of ASCII characters) in the dialect's syntax.
fn ascii_pattern(dialect: Dialect, pattern: &str) -> String {
    match crate::regex::parse(pattern) {
        Ok(node) => render(dialect, &node),
        Err(_) => unreachable!("the crate's own patterns parse"),
    }
}

/// RFC 3339 as the engine's parser reads it (`leadscore_core::time`): a `T`, `t` or space
/// between date and time, any fraction of a second (truncated to milliseconds), `Z`, `z` or an
/// offset.
const RFC_3339: &str =
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$";

/// The other times `leadscore score` reads by default (`--time-format iso`, `--time-zone UTC`;
/// `leadscore_batch::times`): a day, or a day and a time without an offset, in UTC.
const NAIVE: &str = "^[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?)?$";

/// A column's text, as the table holds it (untrimmed), as milliseconds since the epoch, where
/// the dialect reads the commonest spellings of an instant with a parser of its own
/// ([`Dialect::utc_ms`]): RFC 3339 in UTC with an upper-case `T` and `Z`, without a fraction of
/// a second or with milliseconds (`2026-05-11T00:16:29Z`, `2026-05-11T00:16:29.123Z`), as
/// exports and trackers write them. NULL for anything else (white space around it too) and for
/// what that parser refuses (a leap second, an 31 April), which [`instant_parts`] then reads
/// from the trimmed cell: a value is always the engine's, and splitting the text and adding up
/// the parts took DuckDB more time than every rule of the reference model.
pub(crate) fn instant_fast(dialect: Dialect, cell: &str) -> Option<String> {
    dialect.utc_ms(cell)
}

/// Which reading a cell holding a time takes, for a `SELECT` over a row where `cell` is the
/// trimmed text, as the column `{prefix}form` that [`instant_parts`] reads: 1 for RFC 3339, 2
/// for a time without an offset, NULL for anything else, and NULL too where `fast`, the column
/// of [`instant_fast`]'s reading, holds a value. A column of its own, in a table before the
/// parts: the parts read it ten times, and PostgreSQL, which does not compute a repeated
/// expression once, matched the two regular expressions twenty times per event (30 of the 44
/// s its query took on 2,000,000 events).
pub(crate) fn instant_form(dialect: Dialect, cell: &str, prefix: &str, fast: Option<&str>) -> String {
    let general = match fast {
        Some(fast) => format!("WHEN {fast} IS NOT NULL THEN NULL "),
        None => String::new(),
    };
    format!(
        "(CASE {general}WHEN {} THEN 1 WHEN {} THEN 2 END) AS {}",
        dialect.regex_matches(cell, &ascii_pattern(dialect, RFC_3339)),
        dialect.regex_matches(cell, &ascii_pattern(dialect, NAIVE)),
        dialect.ident(&format!("{prefix}form"))
    )
}

/// The columns that split a cell holding a time into numbers, named with `prefix`, for a
/// `SELECT` over a row where `cell` is the trimmed text and [`instant_form`]'s column is: the
/// date, the clock, the milliseconds and the offset, NULL where the form is. [`instant_ms`]
/// makes milliseconds since the epoch of them.
pub(crate) fn instant_parts(dialect: Dialect, cell: &str, prefix: &str) -> Vec<String> {
    let length = format!("LENGTH({cell})");
    // Up to three digits of the fraction that starts at character 21 and ends `end` characters
    // before the text does, padded with zeros.
    let milli = |end: &str| {
        format!(
            "(CASE WHEN {length} > 20 AND SUBSTR({cell}, 20, 1) IN ('.', ',') THEN {} ELSE 0 END)",
            dialect.to_bigint(&format!("SUBSTR(SUBSTR({cell}, 21, {length} - 20 - {end}) || '00', 1, 3)"))
        )
    };
    let form = dialect.ident(&format!("{prefix}form"));
    let number = |start: &str, length: usize| dialect.to_bigint(&format!("SUBSTR({cell}, {start}, {length})"));
    let zulu = format!("SUBSTR({cell}, {length}, 1) IN ('Z', 'z')");
    let zone_length = format!("(CASE WHEN {zulu} THEN 1 ELSE 6 END)");
    let clock = |start: usize, needs: usize| {
        format!("(CASE WHEN {length} >= {needs} THEN {} ELSE 0 END)", number(&start.to_string(), 2))
    };
    let parts = [
        ("year", format!("(CASE WHEN {form} IS NOT NULL THEN {} END)", number("1", 4))),
        ("month", format!("(CASE WHEN {form} IS NOT NULL THEN {} END)", number("6", 2))),
        ("day", format!("(CASE WHEN {form} IS NOT NULL THEN {} END)", number("9", 2))),
        ("hour", format!("(CASE {form} WHEN 1 THEN {} WHEN 2 THEN {} END)", number("12", 2), clock(12, 16))),
        ("minute", format!("(CASE {form} WHEN 1 THEN {} WHEN 2 THEN {} END)", number("15", 2), clock(15, 16))),
        ("second", format!("(CASE {form} WHEN 1 THEN {} WHEN 2 THEN {} END)", number("18", 2), clock(18, 19))),
        ("milli", format!("(CASE {form} WHEN 1 THEN {} WHEN 2 THEN {} END)", milli(&zone_length), milli("0"))),
        (
            "offset_sign",
            format!(
                "(CASE {form} WHEN 1 THEN (CASE WHEN NOT {zulu} AND SUBSTR({cell}, {length} - 5, 1) = '-' THEN -1 ELSE 1 END) WHEN 2 THEN 1 END)"
            ),
        ),
        (
            "offset_hour",
            format!(
                "(CASE {form} WHEN 1 THEN (CASE WHEN {zulu} THEN 0 ELSE {} END) WHEN 2 THEN 0 END)",
                number(&format!("{length} - 4"), 2)
            ),
        ),
        (
            "offset_minute",
            format!(
                "(CASE {form} WHEN 1 THEN (CASE WHEN {zulu} THEN 0 ELSE {} END) WHEN 2 THEN 0 END)",
                number(&format!("{length} - 1"), 2)
            ),
        ),
    ];
    parts
        .into_iter()
        .map(|(name, expression)| format!("{expression} AS {}", dialect.ident(&format!("{prefix}{name}"))))
        .collect()
}

/// Milliseconds since the Unix epoch from the columns of [`instant_parts`], NULL when they do
/// not make a valid instant (a 31 April, a 25th hour): the engine skips such times. The day
/// count is the proleptic Gregorian calendar's, computed with integers alone.
///
/// With `fast`, the column of [`instant_fast`]'s reading, that reading where it has one.
pub(crate) fn instant_ms(dialect: Dialect, prefix: &str, fast: Option<&str>) -> String {
    let column = |name: &str| dialect.ident(&format!("{prefix}{name}"));
    let (y, m, d) = (column("year"), column("month"), column("day"));
    let (hour, minute, second, milli) = (column("hour"), column("minute"), column("second"), column("milli"));
    let (sign, offset_hour, offset_minute) = (column("offset_sign"), column("offset_hour"), column("offset_minute"));
    let leap = format!("(MOD({y}, 4) = 0 AND (MOD({y}, 100) <> 0 OR MOD({y}, 400) = 0))");
    let days_in_month = format!(
        "(CASE WHEN {m} = 2 THEN (CASE WHEN {leap} THEN 29 ELSE 28 END) WHEN {m} IN (4, 6, 9, 11) THEN 30 ELSE 31 END)"
    );
    // RFC 3339 allows a leap second, folded onto the next one; a time without an offset does
    // not.
    let form = column("form");
    let valid = format!(
        "{m} BETWEEN 1 AND 12 AND {d} BETWEEN 1 AND {days_in_month} AND {hour} <= 23 AND {minute} <= 59 AND {second} <= (CASE {form} WHEN 1 THEN 60 ELSE 59 END) AND {offset_hour} <= 23 AND {offset_minute} <= 59"
    );
    // Days from 1970-01-01 (H. Hinnant's days_from_civil), with the era's division kept on
    // non-negative numbers so that truncating and flooring divisions agree.
    let shifted_year = format!("({y} - (CASE WHEN {m} <= 2 THEN 1 ELSE 0 END))");
    let era = format!("({} - 1)", dialect.int_div(&format!("({shifted_year} + 400)"), "400"));
    let year_of_era = format!("({shifted_year} - {era} * 400)");
    let shifted_month = format!("(CASE WHEN {m} > 2 THEN {m} - 3 ELSE {m} + 9 END)");
    let day_of_year = format!("({} + {d} - 1)", dialect.int_div(&format!("(153 * {shifted_month} + 2)"), "5"));
    let day_of_era = format!(
        "({year_of_era} * 365 + {} - {} + {day_of_year})",
        dialect.int_div(&year_of_era, "4"),
        dialect.int_div(&year_of_era, "100")
    );
    let days = format!("({era} * 146097 + {day_of_era} - 719468)");
    let general = format!(
        "(CASE WHEN {valid} THEN (({days} * 86400 + {hour} * 3600 + {minute} * 60 + {second}) * 1000 + {milli}) - {sign} * ({offset_hour} * 60 + {offset_minute}) * 60000 END)"
    );
    match fast {
        Some(fast) => format!("COALESCE({fast}, {general})"),
        None => general,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_white_space_trimmed_is_what_rust_trims() {
        let all: Vec<char> = (0..=char::MAX as u32).filter_map(char::from_u32).filter(|c| c.is_whitespace()).collect();
        assert_eq!(all, WHITE_SPACE);
    }

    #[test]
    fn characters_lowered_to_ascii_letters() {
        assert_eq!(lowered_to('a'), vec!['A', 'a']);
        assert_eq!(lowered_to('k'), vec!['K', 'k', '\u{212a}']);
        assert!(lower_case_is_contextual("σκ"));
        // Only `İ` lower-cases to several characters, and its second is a combining dot.
        let several: Vec<char> =
            (0..=char::MAX as u32).filter_map(char::from_u32).filter(|c| c.to_lowercase().len() > 1).collect();
        assert_eq!(several, vec!['\u{130}']);
    }
}
