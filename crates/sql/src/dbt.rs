//! A model's query as a dbt macro of the package `leadscore` (dbt/ in the repository; its
//! macros call each other as `leadscore.NAME`): `NAME(leads, events, as_of=none)` dispatches on
//! the adapter
//! (`duckdb__NAME`, `postgres__NAME`, `spark__NAME`, `trino__NAME`, `snowflake__NAME`,
//! `bigquery__NAME`) to the query in that dialect, over the two relations dbt passes, which are
//! placed where the table names go exactly as dbt renders them (`"db"."schema"."leads"`).
//!
//! The query is Jinja's raw text (`{% raw %}`), so that nothing in it (a `{{` or `{#` in a
//! pattern or a text) is read as Jinja; the raw text is closed only around the relations and
//! the as-of instant. The as-of instant is the one given when the macro is written, or the start
//! of each dbt run (`run_started_at`), or a macro argument (`as_of='2026-11-01T00:00:00Z'`):
//! Jinja computes it in milliseconds with integers, and the query holds it as constants as it
//! does for `leadscore sql`. A dialect that refuses the model raises dbt's compilation error with
//! the refusal.

use leadscore_core::{Model, Timestamp};

use crate::as_of::AsOf;
use crate::dialect::Dialect;
use crate::error::SqlError;
use crate::query::render_over;

/// When the macro scores, if the model calling it gives no `as_of`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbtAsOf {
    /// This instant, always.
    At(Timestamp),
    /// The start of each dbt run (`run_started_at`, the same for every model of the run).
    RunStart,
}

/// The Jinja variable each dialect's macro holds the as-of instant in (milliseconds).
const AS_OF_VARIABLE: &str = "leadscore_as_of_ms";

fn as_of_template(back: i64) -> String {
    if back == 0 {
        format!("{{% endraw %}}{{{{ {AS_OF_VARIABLE} }}}}{{% raw %}}")
    } else {
        format!("{{% endraw %}}{{{{ {AS_OF_VARIABLE} - {back} }}}}{{% raw %}}")
    }
}

/// The dbt adapters' names for the dialects (dbt-databricks falls back to `spark__`).
fn adapter(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::DuckDb => "duckdb",
        Dialect::Postgres => "postgres",
        Dialect::Spark => "spark",
        Dialect::Trino => "trino",
        Dialect::Snowflake => "snowflake",
        Dialect::BigQuery => "bigquery",
    }
}

/// A macro name dbt reads: letters, digits and `_`, not starting with a digit.
fn valid_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A dbt macro file with the query of `model` (whose file's text is `model_text`) for every
/// adapter, under the macro name `name`.
pub fn dbt_macro(model: &Model, model_text: &str, name: &str, as_of: DbtAsOf) -> Result<String, SqlError> {
    if !valid_name(name) {
        return Err(SqlError::MacroName(name.to_string()));
    }
    let leads = "{% endraw %}{{ leads }}{% raw %}";
    let events = "{% endraw %}{{ events }}{% raw %}";
    let default_as_of = match as_of {
        DbtAsOf::At(at) => at.0.to_string(),
        DbtAsOf::RunStart => format!("leadscore.{name}_instant_ms(run_started_at)"),
    };
    let mut out = format!(
        "{{#- Written by `leadscore dbt`: the model's query for each adapter. Do not edit; write it again
    when the model changes (dbt/macros/README.md). -#}}

{{#- {name}(leads, events, as_of=none): one row per lead of `leads` with `lead_id`, then each score
    and SCORE_tier, as `leadscore score` gives them. `leads` and `events` are relations (ref() or
    source()) with every column as text; `as_of` is an RFC 3339 date-time ('2026-11-01T00:00:00Z',
    '2026-11-01T09:00:00.250+09:00'), or none for {}. -#}}
{{% macro {name}(leads, events, as_of=none) -%}}
  {{{{ return(adapter.dispatch('{name}', 'leadscore')(leads, events, as_of)) }}}}
{{%- endmacro %}}

{{#- Milliseconds since 1970 of a datetime (naive in UTC, or aware), with integers alone. -#}}
{{% macro {name}_instant_ms(instant) -%}}
  {{%- set naive = instant.replace(tzinfo=none) if instant.utcoffset() is none else (instant - instant.utcoffset()).replace(tzinfo=none) -%}}
  {{%- set since = naive - modules.datetime.datetime(1970, 1, 1) -%}}
  {{{{ return(since.days * 86400000 + since.seconds * 1000 + since.microseconds // 1000) }}}}
{{%- endmacro %}}

{{#- The as-of instant in milliseconds: `as_of` if given, else the default. -#}}
{{% macro {name}_as_of_ms(as_of) -%}}
  {{%- if as_of is none -%}}
    {{{{ return({default_as_of}) }}}}
  {{%- else -%}}
    {{{{ return(leadscore.{name}_parsed_ms(as_of)) }}}}
  {{%- endif -%}}
{{%- endmacro %}}

{{#- Milliseconds since 1970 of an RFC 3339 date-time, read as `leadscore score --as-of` reads it:
    'T', 't' or a space between date and time, any digits of a second's fraction (the first three
    count), 'Z', 'z' or an offset such as +09:00, and a leap second folded onto the next. The
    days are counted with integers alone (the civil calendar's formula), as the engine counts them. -#}}
{{% macro {name}_parsed_ms(text) -%}}
  {{%- set parts = modules.re.match('^([0-9]{{4}})-([0-9]{{2}})-([0-9]{{2}})[Tt ]([0-9]{{2}}):([0-9]{{2}}):([0-9]{{2}})(?:[.]([0-9]+))?(?:([Zz])|([+-])([0-9]{{2}}):([0-9]{{2}}))$', text) -%}}
  {{%- set year = (parts.group(1) | int) if parts else 0 -%}}
  {{%- set month = (parts.group(2) | int) if parts else 0 -%}}
  {{%- set day = (parts.group(3) | int) if parts else 0 -%}}
  {{%- set leap = (year % 4 == 0 and year % 100 != 0) or year % 400 == 0 -%}}
  {{%- set month_days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] -%}}
  {{%- if parts is none or month < 1 or month > 12 or day < 1 or day > month_days[month - 1]
        or parts.group(4) | int > 23 or parts.group(5) | int > 59 or parts.group(6) | int > 60
        or (parts.group(10) or '0') | int > 23 or (parts.group(11) or '0') | int > 59 -%}}
    {{{{ exceptions.raise_compiler_error('{name}: as_of ' ~ text ~ ' is not an RFC 3339 date-time (write it like 2026-11-01T00:00:00Z or 2026-11-01T09:00:00+09:00)') }}}}
  {{%- endif -%}}
  {{%- set y = year - (1 if month <= 2 else 0) -%}}
  {{%- set era = (y if y >= 0 else y - 399) // 400 -%}}
  {{%- set year_of_era = y - era * 400 -%}}
  {{%- set day_of_year = (153 * ((month + 9) % 12) + 2) // 5 + day - 1 -%}}
  {{%- set days = era * 146097 + year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year - 719468 -%}}
  {{%- set offset_minutes = 0 if parts.group(8) else ((parts.group(10) | int) * 60 + (parts.group(11) | int)) * (1 if parts.group(9) == '+' else -1) -%}}
  {{%- set seconds = days * 86400 + (parts.group(4) | int) * 3600 + (parts.group(5) | int) * 60 + (parts.group(6) | int) - offset_minutes * 60 -%}}
  {{{{ return(seconds * 1000 + ((parts.group(7) or '') ~ '000')[:3] | int) }}}}
{{%- endmacro %}}

{{% macro default__{name}(leads, events, as_of) -%}}
  {{{{ exceptions.raise_compiler_error('{name}: leadscore writes no query for the adapter ' ~ adapter.type() ~ '; it writes duckdb, postgres, spark, trino, snowflake and bigquery') }}}}
{{%- endmacro %}}
",
        match as_of {
            DbtAsOf::At(at) => format!("{at} (when the macro was written)"),
            DbtAsOf::RunStart => "the start of the dbt run".to_string(),
        }
    );
    for dialect in Dialect::ALL {
        out.push_str(&format!("\n{{% macro {}__{name}(leads, events, as_of) -%}}\n", adapter(dialect)));
        match dialect_body(model, model_text, dialect)? {
            Ok(query) => {
                out.push_str(&format!("{{%- set {AS_OF_VARIABLE} = leadscore.{name}_as_of_ms(as_of) -%}}\n"));
                let query = query.replace("{{ leads_relation }}", leads).replace("{{ events_relation }}", events);
                out.push_str(&format!("{{% raw %}}{}{{% endraw %}}\n", query.trim_end()));
            }
            Err(refusal) => {
                // A refusal in one dialect leaves the others usable: this one fails when dbt
                // compiles a model calling it.
                out.push_str(&format!(
                    "  {{{{ exceptions.raise_compiler_error({}) }}}}\n",
                    jinja_string(&format!("{name} on {}: {refusal}", adapter(dialect)))
                ));
            }
        }
        out.push_str("{%- endmacro %}\n");
    }
    Ok(out)
}

/// The query of one dialect with `{{ leads_relation }}` and `{{ events_relation }}` where the
/// relations go, or the refusal to write it. The outer error is one the macro cannot hold.
fn dialect_body(model: &Model, model_text: &str, dialect: Dialect) -> Result<Result<String, SqlError>, SqlError> {
    // The same query over plain names, to see that nothing of the model closes the raw text.
    let plain = match render_over(
        model,
        model_text,
        dialect,
        &dialect.ident("leads"),
        &dialect.ident("events"),
        &AsOf::At(Timestamp(0)),
        false,
    ) {
        Ok(plain) => plain,
        Err(refusal) => return Ok(Err(refusal)),
    };
    for marker in ["endraw", "{{ leads_relation }}", "{{ events_relation }}"] {
        if plain.contains(marker) {
            return Err(SqlError::Jinja(marker.to_string()));
        }
    }
    let query = render_over(
        model,
        model_text,
        dialect,
        "{{ leads_relation }}",
        "{{ events_relation }}",
        &AsOf::Template(as_of_template),
        false,
    )?;
    Ok(Ok(query))
}

/// A Jinja string literal.
fn jinja_string(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'").replace('\n', "\\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macro_names_are_jinja_names() {
        assert!(valid_name("leadscore_scores"));
        assert!(valid_name("_x1"));
        assert!(!valid_name("1x"));
        assert!(!valid_name("a-b"));
        assert!(!valid_name(""));
    }

    fn macro_of(model_text: &str) -> Result<String, SqlError> {
        let model = leadscore_core::compile(model_text).expect("the model compiles").model;
        dbt_macro(&model, model_text, "scores", DbtAsOf::RunStart)
    }

    #[test]
    fn jinja_in_the_models_texts_stays_text_and_a_raw_text_end_is_refused() {
        let model = |text: &str| {
            format!(
                "[scores.s]\n[[scores.s.rules]]\nname = \"r\"\nwhen = {{ field = \"title\", equals = \"{text}\" }}\npoints = 1\n"
            )
        };
        let written = macro_of(&model("{{ x }} {% if %} {# y #}")).unwrap();
        assert!(written.contains("IN ('{{ x }} {% if %} {# y #}')"), "inside the raw text: {written}");
        assert_eq!(macro_of(&model("{% endraw %}")), Err(SqlError::Jinja("endraw".into())));
    }

    #[test]
    fn a_refusal_in_one_dialect_is_that_adapters_compilation_error() {
        let long = "[scores.s]\n[[scores.s.rules]]\nname = \"code\"\nwhen = { field = \"code\", regex = '^[0-9]{300}$' }\npoints = 1\n";
        let written = macro_of(long).unwrap();
        let postgres =
            written.split("{% macro postgres__scores").nth(1).unwrap().split("{%- endmacro %}").next().unwrap();
        assert!(postgres.contains("raise_compiler_error('scores on postgres: the pattern"), "{postgres}");
        let duckdb = written.split("{% macro duckdb__scores").nth(1).unwrap().split("{%- endmacro %}").next().unwrap();
        assert!(duckdb.contains("{% raw %}WITH"), "{duckdb}");
    }

    #[test]
    fn the_as_of_instant_is_a_jinja_expression() {
        assert_eq!(as_of_template(0), "{% endraw %}{{ leadscore_as_of_ms }}{% raw %}");
        assert_eq!(as_of_template(86_400_000), "{% endraw %}{{ leadscore_as_of_ms - 86400000 }}{% raw %}");
    }
}
