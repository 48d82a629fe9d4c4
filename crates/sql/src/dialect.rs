//! Everything that differs between SQL dialects, in one place: literals, types, casts, integer
//! division, regular expressions and identifiers. The rest of the crate writes SQL that every
//! dialect reads alike (CTEs, `CASE`, window functions, `GREATEST`/`LEAST`, `POWER`, `SUBSTR`,
//! `LENGTH`, `MOD`, `||`) and asks this module for the rest.
//!
//! DuckDB, PostgreSQL and Spark SQL are run by the differential tests; the other dialects are
//! rendered from the same rules and checked by snapshots of their text.

use std::fmt;

/// A SQL dialect the query is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    DuckDb,
    Postgres,
    Spark,
    Trino,
    Snowflake,
    BigQuery,
}

/// How a dialect writes a code point in a regular expression.
enum RegexEscape {
    /// RE2 and Java: `\x{41}`.
    HexBraces,
    /// PostgreSQL's advanced regular expressions: `\u0041`, `\U0001F600`.
    Unicode,
    /// POSIX extended expressions without code point escapes (Snowflake): a backslash before
    /// punctuation.
    Backslash,
}

impl Dialect {
    pub const ALL: [Dialect; 6] =
        [Dialect::DuckDb, Dialect::Postgres, Dialect::Spark, Dialect::Trino, Dialect::Snowflake, Dialect::BigQuery];

    /// The dialect's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::DuckDb => "duckdb",
            Dialect::Postgres => "postgres",
            Dialect::Spark => "spark",
            Dialect::Trino => "trino",
            Dialect::Snowflake => "snowflake",
            Dialect::BigQuery => "bigquery",
        }
    }

    /// The dialect a command-line name stands for.
    pub fn from_name(name: &str) -> Option<Dialect> {
        Dialect::ALL.into_iter().find(|d| d.name() == name.trim().to_ascii_lowercase())
    }

    /// The type of a double-precision float.
    pub(crate) fn double_type(self) -> &'static str {
        match self {
            Dialect::Postgres => "DOUBLE PRECISION",
            Dialect::BigQuery => "FLOAT64",
            _ => "DOUBLE",
        }
    }

    /// The type of a 64-bit integer.
    pub(crate) fn bigint_type(self) -> &'static str {
        match self {
            Dialect::BigQuery => "INT64",
            _ => "BIGINT",
        }
    }

    /// A double literal that is exactly `value`: the shortest decimal that reads back as the
    /// same double, cast from text (a bare `0.1` is a decimal in most dialects, and some cast
    /// decimals to doubles by dividing, which is not always the nearest double). Spark SQL has
    /// typed double literals (`0.1D`), which it parses as Java parses a double.
    pub(crate) fn double(self, value: f64) -> String {
        let value = if value == 0.0 { 0.0 } else { value };
        match self {
            // In parentheses when negative, so that no `-` follows another into a comment.
            Dialect::Spark if value < 0.0 => format!("({value:?}D)"),
            Dialect::Spark => format!("{value:?}D"),
            _ => format!("CAST('{value:?}' AS {})", self.double_type()),
        }
    }

    /// The floor of a non-negative double, as a double. Spark's `FLOOR` of a double is a 64-bit
    /// integer, the greatest one for anything beyond 2^63; a double less its remainder by 1
    /// (which is exact, as is the subtraction of it) is its floor at any size.
    pub(crate) fn floor_non_negative(self, value: &str) -> String {
        match self {
            Dialect::Spark => format!("({value} - MOD({value}, {}))", self.double(1.0)),
            _ => format!("FLOOR({value})"),
        }
    }

    /// 0.5 to the power of a non-negative double. PostgreSQL raises an error where the result
    /// (or a product of it) is too small for a double, where the engine's is 0: an occurrence
    /// 1,075 half-lives old, which a half-life of a day reaches in three years. There, a share
    /// below 2^-1000 is taken as 0; it moves no value by more than 2^-1000 times its points, far
    /// below the 6 decimals a value keeps.
    pub(crate) fn half_to_the(self, exponent: &str) -> String {
        let power = format!("POWER({}, {exponent})", self.double(0.5));
        match self {
            Dialect::Postgres => {
                format!("(CASE WHEN {exponent} > {} THEN {} ELSE {power} END)", self.double(1000.0), self.double(0.0))
            }
            _ => power,
        }
    }

    /// An integer literal of type BIGINT.
    pub(crate) fn bigint(self, value: i64) -> String {
        format!("CAST({value} AS {})", self.bigint_type())
    }

    /// A text literal.
    pub(crate) fn text(self, value: &str) -> String {
        let quoted = value.replace('\'', "''");
        match self {
            // These read backslash escapes in string literals.
            Dialect::Spark | Dialect::Snowflake | Dialect::BigQuery => format!("'{}'", quoted.replace('\\', "\\\\")),
            _ => format!("'{quoted}'"),
        }
    }

    /// The type of text.
    pub(crate) fn text_type(self) -> &'static str {
        match self {
            Dialect::BigQuery | Dialect::Spark => "STRING",
            _ => "VARCHAR",
        }
    }

    /// A NULL of the text type.
    pub(crate) fn null_text(self) -> String {
        format!("CAST(NULL AS {})", self.text_type())
    }

    /// A quoted identifier.
    pub(crate) fn ident(self, name: &str) -> String {
        match self {
            Dialect::Spark | Dialect::BigQuery => format!("`{}`", name.replace('`', "``")),
            _ => format!("\"{}\"", name.replace('"', "\"\"")),
        }
    }

    /// `expression` cast to a double (text that reads as a number, or an integer).
    pub(crate) fn to_double(self, expression: &str) -> String {
        format!("CAST({expression} AS {})", self.double_type())
    }

    /// Text of ASCII digits cast to an integer.
    pub(crate) fn to_bigint(self, expression: &str) -> String {
        format!("CAST({expression} AS {})", self.bigint_type())
    }

    /// Integer division of non-negative integers (truncated, which is the floor for them).
    pub(crate) fn int_div(self, dividend: &str, divisor: &str) -> String {
        match self {
            Dialect::DuckDb => format!("({dividend} // {divisor})"),
            Dialect::Postgres | Dialect::Trino => format!("({dividend} / {divisor})"),
            Dialect::Spark => format!("({dividend} div {divisor})"),
            Dialect::Snowflake => format!("FLOOR({dividend} / {divisor})"),
            Dialect::BigQuery => format!("DIV({dividend}, {divisor})"),
        }
    }

    /// Whether `text` has a match of `pattern` (already in this dialect's syntax) anywhere.
    pub(crate) fn regex_matches(self, text: &str, pattern: &str) -> String {
        let pattern = self.text(pattern);
        match self {
            Dialect::DuckDb => format!("regexp_matches({text}, {pattern})"),
            Dialect::Postgres => format!("({text} ~ {pattern})"),
            Dialect::Spark => format!("({text} RLIKE {pattern})"),
            Dialect::Trino => format!("regexp_like({text}, {pattern})"),
            Dialect::Snowflake => format!("(REGEXP_INSTR({text}, {pattern}) > 0)"),
            Dialect::BigQuery => format!("REGEXP_CONTAINS({text}, {pattern})"),
        }
    }

    /// A text of these code points, spelled with their numbers (white space and control
    /// characters stay out of the query's text).
    pub(crate) fn code_points(self, code_points: &[u32]) -> String {
        let numbers: Vec<String> = code_points.iter().map(u32::to_string).collect();
        match self {
            Dialect::BigQuery => format!("CODE_POINTS_TO_STRING([{}])", numbers.join(", ")),
            // Spark's CHR is a byte; its string literals read `\uXXXX`.
            Dialect::Spark => {
                format!("'{}'", code_points.iter().map(|c| format!("\\u{c:04X}")).collect::<String>())
            }
            _ => format!("({})", numbers.iter().map(|n| format!("CHR({n})")).collect::<Vec<_>>().join(" || ")),
        }
    }

    /// The first group of `pattern`'s match in `text` (a pattern every dialect reads alike, with
    /// one group), NULL or empty when it does not match.
    pub(crate) fn regex_group(self, text: &str, pattern: &str) -> String {
        let pattern = self.text(pattern);
        match self {
            Dialect::Postgres => format!("SUBSTRING({text} FROM {pattern})"),
            Dialect::Snowflake => format!("REGEXP_SUBSTR({text}, {pattern}, 1, 1, 'e', 1)"),
            Dialect::BigQuery => format!("REGEXP_EXTRACT({text}, {pattern})"),
            _ => format!("REGEXP_EXTRACT({text}, {pattern}, 1)"),
        }
    }

    /// A one-column table (`entry`) of texts, for `IN (...)` and `EXISTS (...)`.
    pub(crate) fn text_table(self, texts: &[&str]) -> String {
        let literals: Vec<String> = texts.iter().map(|t| self.text(t)).collect();
        match self {
            Dialect::BigQuery => format!("(SELECT entry FROM UNNEST([{}]) AS entry)", literals.join(", ")),
            Dialect::Snowflake => format!(
                "(SELECT column1 AS entry FROM VALUES {})",
                literals.iter().map(|l| format!("({l})")).collect::<Vec<_>>().join(", ")
            ),
            _ => format!(
                "(SELECT entry FROM (VALUES {}) AS listed(entry))",
                literals.iter().map(|l| format!("({l})")).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    /// `text` without the characters of `characters` (an expression) at either end.
    pub(crate) fn trim(self, text: &str, characters: &str) -> String {
        match self {
            Dialect::Postgres => format!("BTRIM({text}, {characters})"),
            Dialect::Spark | Dialect::Trino => format!("TRIM(BOTH {characters} FROM {text})"),
            _ => format!("TRIM({text}, {characters})"),
        }
    }

    /// One code point in a regular expression, escaped when it is not a letter or digit.
    pub(crate) fn regex_char(self, c: char) -> String {
        if c.is_ascii_alphanumeric() || (!c.is_ascii() && !c.is_control() && !c.is_whitespace()) {
            return c.to_string();
        }
        match self.regex_escape() {
            RegexEscape::HexBraces => format!("\\x{{{:X}}}", c as u32),
            RegexEscape::Unicode if (c as u32) <= 0xFFFF => format!("\\u{:04X}", c as u32),
            RegexEscape::Unicode => format!("\\U{:08X}", c as u32),
            RegexEscape::Backslash => format!("\\{c}"),
        }
    }

    fn regex_escape(self) -> RegexEscape {
        match self {
            Dialect::DuckDb | Dialect::BigQuery | Dialect::Spark | Dialect::Trino => RegexEscape::HexBraces,
            Dialect::Postgres => RegexEscape::Unicode,
            Dialect::Snowflake => RegexEscape::Backslash,
        }
    }

    /// Milliseconds since the Unix epoch of a text of 20 bytes `YYYY-MM-DDTHH:MM:SSZ` (or of 24
    /// with `.mmm` before the `Z`), NULL when it is anything else or not a date and a clock
    /// that exist, where the dialect has a parser of its own that is quicker than splitting the
    /// text. The text is read as the table holds it, untrimmed: one that starts with a digit and
    /// ends with `Z` has no white space to trim. DuckDB's `strptime` reads a field of one digit
    /// fewer, a year of at most four digits and skips white space only at either end: in such a
    /// text of that length, every field it reads is therefore all its digits (`reading.rs` in
    /// the tests holds texts that would not be). Its `ENDS_WITH` compares the last byte, where
    /// reading the last character (`[-1]`) reads the whole text. The instant's microseconds
    /// are a whole number of milliseconds, divided exactly; `EPOCH_MS` took eight times as long.
    pub(crate) fn utc_ms(self, text: &str) -> Option<String> {
        match self {
            Dialect::DuckDb => Some(format!(
                "(CASE WHEN ASCII({text}) BETWEEN 48 AND 57 AND ENDS_WITH({text}, 'Z') THEN (CASE STRLEN({text}) \
                 WHEN 20 THEN EPOCH_US(TRY_STRPTIME({text}, '%Y-%m-%dT%H:%M:%SZ')) // 1000 \
                 WHEN 24 THEN EPOCH_US(TRY_STRPTIME({text}, '%Y-%m-%dT%H:%M:%S.%gZ')) // 1000 END) END)"
            )),
            _ => None,
        }
    }

    /// The texts that are not NULL among `texts` (expressions), joined with `separator`.
    pub(crate) fn join_non_null(self, separator: &str, texts: &[String]) -> String {
        let separator = self.text(separator);
        let texts = texts.join(", ");
        match self {
            Dialect::Snowflake => format!("ARRAY_TO_STRING(ARRAY_CONSTRUCT_COMPACT({texts}), {separator})"),
            Dialect::BigQuery => {
                format!("ARRAY_TO_STRING(ARRAY(SELECT t FROM UNNEST([{texts}]) AS t WHERE t IS NOT NULL), {separator})")
            }
            // These skip NULL arguments.
            _ => format!("CONCAT_WS({separator}, {texts})"),
        }
    }

    /// An aggregate (`SUM`, `MAX`) of `value` over a group's rows where `filter` holds: NULL
    /// when none does. DuckDB and PostgreSQL update the aggregate with the rows the filter
    /// selects; `MAX(CASE WHEN ... END)` computes the `CASE` for every event and updates every
    /// lead's state with it, once per rule (a tenth of DuckDB's CPU time on the reference
    /// model's 20,000,000 events). The other dialects take the `CASE`, which all of them run.
    pub(crate) fn aggregate_where(self, function: &str, value: &str, filter: &str) -> String {
        match self {
            Dialect::DuckDb | Dialect::Postgres => format!("{function}({value}) FILTER (WHERE {filter})"),
            _ => format!("{function}(CASE WHEN {filter} THEN {value} END)"),
        }
    }

    /// How many of a group's rows `filter` holds for (0 for none).
    pub(crate) fn count_where(self, filter: &str) -> String {
        match self {
            Dialect::DuckDb | Dialect::Postgres => format!("COUNT(*) FILTER (WHERE {filter})"),
            _ => format!("SUM(CASE WHEN {filter} THEN 1 ELSE 0 END)"),
        }
    }

    /// The `n` greatest values of `value` among a group's rows where `filter` holds, as an
    /// aggregate where the dialect has one, in place of a `ROW_NUMBER()` window that sorts every
    /// event once per rule (ten times 2,000,000 rows for the reference model: three quarters of
    /// DuckDB's time, and PostgreSQL's plan spills each sort to disk). The greatest one is `MAX`
    /// in any dialect; DuckDB's `MAX(value, n)` keeps the `n` greatest in its hash aggregate,
    /// PostgreSQL sorts each group's own values in `ARRAY_AGG(... ORDER BY ...)`, Spark SQL
    /// sorts the list it collects per group. Trino, Snowflake and BigQuery, which no test runs,
    /// rank with windows.
    pub(crate) fn greatest(self, value: &str, n: usize, filter: &str) -> Option<Greatest> {
        let list = match self {
            _ if n == 1 => return Some(Greatest::One(self.aggregate_where("MAX", value, filter))),
            Dialect::DuckDb => format!("MAX({value}, {n}) FILTER (WHERE {filter})"),
            Dialect::Postgres => format!("((ARRAY_AGG({value} ORDER BY {value} DESC) FILTER (WHERE {filter}))[1:{n}])"),
            Dialect::Spark => {
                format!("SLICE(SORT_ARRAY(COLLECT_LIST(CASE WHEN {filter} THEN {value} END), FALSE), 1, {n})")
            }
            Dialect::Trino | Dialect::Snowflake | Dialect::BigQuery => return None,
        };
        Some(Greatest::List { dialect: self, list })
    }

    /// What follows `name AS` in a common table expression. The query is a chain of tables
    /// each adding columns computed from the previous one's; an optimiser that inlines them
    /// all substitutes each column's expression wherever it is read, which multiplies along
    /// the chain (PostgreSQL planned for hours). Where the dialect lets the query say so, each
    /// table is computed once, except the `foldable` ones where DuckDB, which computes each
    /// common subexpression of a projection once, is quicker folding them into the next
    /// (2,000,000 events written out once less for each).
    pub(crate) fn cte_keyword(self, foldable: bool) -> &'static str {
        match self {
            Dialect::DuckDb if foldable => "",
            Dialect::Postgres | Dialect::DuckDb => "MATERIALIZED ",
            _ => "",
        }
    }

    /// The largest count a regular expression's `{n,m}` may give.
    pub(crate) fn max_regex_repeat(self) -> u32 {
        match self {
            // PostgreSQL's DUPMAX.
            Dialect::Postgres => 255,
            _ => 1000,
        }
    }
}

/// A group's greatest values, NULL when there are none ([`Dialect::greatest`]).
pub(crate) enum Greatest {
    /// The greatest.
    One(String),
    /// A list (an array) in descending order; NULL or empty for none.
    List { dialect: Dialect, list: String },
}

impl Greatest {
    /// How many there are (0 for none).
    pub(crate) fn count(&self) -> String {
        match self {
            Greatest::One(greatest) => format!("(CASE WHEN {greatest} IS NULL THEN 0 ELSE 1 END)"),
            Greatest::List { dialect: Dialect::Postgres, list } => format!("COALESCE(CARDINALITY({list}), 0)"),
            Greatest::List { dialect: Dialect::Spark, list } => format!("SIZE({list})"),
            Greatest::List { list, .. } => format!("COALESCE(LEN({list}), 0)"),
        }
    }

    /// The sum of `term` over them (NULL for none), `term` being an expression of the value and
    /// of its place among them, counted from 1 at the least value. The terms are added up
    /// newest (greatest) first, as the engine adds them.
    pub(crate) fn sum(&self, term: impl Fn(&str, &str) -> String) -> String {
        let (value, place) = ("greatest_value", "greatest_place");
        // A term that does not read its place is mapped over the list as it is, in place of a
        // reversed copy (places counted from the least value), mapped, reversed again: two
        // lists fewer per lead and rule, 2% of DuckDB's instructions for the reference model.
        let reads_place = term(value, place).contains(place);
        match self {
            Greatest::One(greatest) => format!("(CASE WHEN {greatest} IS NOT NULL THEN {} END)", term(greatest, "1")),
            Greatest::List { dialect: Dialect::Postgres, list } => {
                // An aggregate of the outer query in a subquery, over its elements in order.
                let place_sql = format!("(CARDINALITY({list}) - greatest.position + 1)");
                format!(
                    "(SELECT SUM({}) FROM UNNEST({list}) WITH ORDINALITY AS greatest({value}, position))",
                    term(&format!("greatest.{value}"), &place_sql)
                )
            }
            Greatest::List { dialect: Dialect::Spark, list } if !reads_place => format!(
                "(CASE WHEN SIZE({list}) > 0 THEN AGGREGATE(TRANSFORM({list}, {value} -> {}), {}, (total, term) -> total + term) END)",
                term(value, place),
                Dialect::Spark.double(0.0)
            ),
            Greatest::List { dialect: Dialect::Spark, list } => format!(
                "(CASE WHEN SIZE({list}) > 0 THEN AGGREGATE(REVERSE(TRANSFORM(REVERSE({list}), ({value}, i) -> {})), {}, (total, term) -> total + term) END)",
                term(value, "(i + 1)"),
                Dialect::Spark.double(0.0)
            ),
            Greatest::List { list, .. } if !reads_place => {
                format!("LIST_SUM(LIST_TRANSFORM({list}, LAMBDA {value}: {}))", term(value, place))
            }
            Greatest::List { list, .. } => format!(
                "LIST_SUM(LIST_REVERSE(LIST_TRANSFORM(LIST_REVERSE({list}), LAMBDA {value}, {place}: {})))",
                term(value, place)
            ),
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dialect::DuckDb => "DuckDB",
            Dialect::Postgres => "PostgreSQL",
            Dialect::Spark => "Spark SQL",
            Dialect::Trino => "Trino",
            Dialect::Snowflake => "Snowflake",
            Dialect::BigQuery => "BigQuery",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Dialect;

    #[test]
    fn doubles_are_written_so_that_they_read_back_exactly() {
        assert_eq!(Dialect::DuckDb.double(0.1), "CAST('0.1' AS DOUBLE)");
        assert_eq!(Dialect::Postgres.double(-0.0), "CAST('0.0' AS DOUBLE PRECISION)");
        assert_eq!(Dialect::BigQuery.double(1e300), "CAST('1e300' AS FLOAT64)");
        assert_eq!(Dialect::DuckDb.double(0.30000000000000004), "CAST('0.30000000000000004' AS DOUBLE)");
        assert_eq!(Dialect::Spark.double(86_400_000.0), "86400000.0D");
        assert_eq!(Dialect::Spark.double(-1e-7), "(-1e-7D)");
    }

    #[test]
    fn names_read_back() {
        for dialect in Dialect::ALL {
            assert_eq!(Dialect::from_name(dialect.name()), Some(dialect));
        }
        assert_eq!(Dialect::from_name("mysql"), None);
    }
}
