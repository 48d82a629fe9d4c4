//! Points from data: a fitted logistic regression turned into a leadscore model of whole points that a person can
//! read and edit, and a report of conversion rates by attribute value.
//!
//! # From coefficients to points ([`points_model`])
//! A logistic regression on the features of [`crate::dataset::Encoder`] adds, per lead, one term in log-odds per
//! column. [`points_model`] writes each term as points:
//!
//! - `scale = scale_max / max |coefficient|` points per unit of log-odds, so the strongest feature is worth
//!   `scale_max` points (20 is a good default; more points keep more of the model's ranking, fewer are easier to
//!   edit).
//! - **Categorical** column: each category (and `<missing>`, `<other>`) gets `round(coefficient × scale)`.
//! - **Boolean** column: `round(coefficient × scale)` for true; a missing value gets its indicator's points.
//! - **Numeric** column: the training values are cut into at most `numeric_bins` bins at quantiles (ties kept
//!   together), and each bin gets the model's contribution `coefficient × standardised value × scale` at the mean
//!   training value in the bin (the bin's average contribution), shifted so that the lowest bin gets 0 and rounded.
//!   A missing value gets the contribution of the median the encoder imputes plus the missing indicator's, shifted
//!   the same way.
//!
//! The shift only moves every lead's total by the same amount, so it changes no ranking. Zero-point rules are left
//! out. Tiers are cut at quantiles of the training leads' totals (by default `cold`, `warm` from the 60th
//! percentile, `hot` from the 90th).
//!
//! [`PointsModel::to_toml`] writes the model in leadscore's format (docs/model-format.md): one attribute rule per
//! value, with comments giving the log-odds and the training counts. [`PointsModel::score_rows`] computes the same
//! totals directly from a table, which gives the AUC of the rounded points next to the full model's.
//!
//! Missing values: the written conditions treat the tokens of [`MISSING_TOKENS`] (`NA`, `null`, ...) as missing,
//! as [`crate::dataset::Table`] does, so that scoring a CSV through the TOML gives the totals of
//! [`PointsModel::score_rows`].
//!
//! # Conversion report ([`conversion_report`])
//! Count, conversions, conversion rate and lift (rate over the overall rate) per value of categorical and boolean
//! columns, and per quantile bin of numeric columns, sorted by lift.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use leadscore_core::value::{MISSING_TOKENS, is_missing_token, read_bool, read_number};
use serde::Serialize;

use crate::dataset::{ColumnEncoding, ColumnKind, DatasetError, Encoder, MISSING_CATEGORY, OTHER_CATEGORY, Table};
use crate::logistic::Model;

/// Settings of [`points_model`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointsOptions {
    /// `[model] name`.
    pub model_name: String,
    /// The score's name (letters, digits, `_` and `-`).
    pub score_name: String,
    /// Points of the largest coefficient in absolute value.
    pub scale_max: f64,
    /// At most this many bins per numeric column.
    pub numeric_bins: usize,
    /// Tiers from lowest to highest: a label and the quantile of the training totals where the tier starts (the
    /// first tier's quantile is ignored: it has no lower bound).
    pub tiers: Vec<(String, f64)>,
}

impl Default for PointsOptions {
    fn default() -> Self {
        PointsOptions {
            model_name: "points-from-data".to_string(),
            score_name: "fit".to_string(),
            scale_max: 20.0,
            numeric_bins: DEFAULT_NUMERIC_BINS,
            tiers: vec![("cold".to_string(), 0.0), ("warm".to_string(), 0.6), ("hot".to_string(), 0.9)],
        }
    }
}

/// Bins per numeric column unless told otherwise.
pub const DEFAULT_NUMERIC_BINS: usize = 5;

/// Why a points model could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PointsError {
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error("the model's features differ from the encoder's: they were not fitted together")]
    FeatureMismatch,
    #[error("score name `{0}` can only have letters, digits, `_` and `-`")]
    InvalidScoreName(String),
    #[error("scale_max must be positive and finite, got {0}")]
    InvalidScale(f64),
    #[error("no training rows")]
    NoRows,
}

/// What a rule tests on its column.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "test", rename_all = "snake_case")]
pub enum AttributeTest {
    /// The text is exactly one of `values`, or (with `or_missing`) the value is missing: no cell, or one of
    /// [`MISSING_TOKENS`].
    OneOf { values: Vec<String>, or_missing: bool },
    /// The value is true: `true`, `yes` or `1`, any case (leadscore's `equals = true`).
    True,
    /// The value is a number `>= min` (if given) and `< below` (if given).
    Range { min: Option<f64>, below: Option<f64> },
}

impl AttributeTest {
    /// Whether a cell (as [`Table::cell`] gives it, trimmed, `None` when missing) passes, as leadscore's engine
    /// decides it.
    pub fn matches(&self, cell: Option<&str>) -> bool {
        match (self, cell) {
            (AttributeTest::OneOf { or_missing, .. }, None) => *or_missing,
            (AttributeTest::OneOf { values, or_missing }, Some(text)) => {
                values.iter().any(|v| v == text) || (*or_missing && is_missing_token(text))
            }
            (AttributeTest::True, Some(text)) => read_bool(text) == Some(true),
            (AttributeTest::Range { min, below }, Some(text)) => match read_number(text) {
                Some(x) => min.is_none_or(|m| x >= m) && below.is_none_or(|b| x < b),
                None => false,
            },
            (AttributeTest::True | AttributeTest::Range { .. }, None) => false,
        }
    }
}

/// One rule of a points model: a test on one column and its points.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributePoints {
    /// The rule name (unique in the model), such as `job = retired` or `age 33 to under 40`.
    pub name: String,
    pub test: AttributeTest,
    pub points: i64,
    /// The unrounded points (log-odds × scale, after the shift for numeric columns).
    pub exact_points: f64,
    /// The contribution to the log-odds before the shift.
    pub log_odds: f64,
    /// Training rows that pass the test.
    pub training_count: usize,
}

/// The rules of one column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnPoints {
    pub column: String,
    pub kind: ColumnKind,
    /// Rules with non-zero points: categories by points (highest first), numeric bins in order.
    pub attributes: Vec<AttributePoints>,
    /// How the points were made, for people (written as a comment).
    pub note: Option<String>,
}

/// One tier: leads from `min` points up (no lower bound for the first).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TierCut {
    pub label: String,
    pub min: Option<f64>,
    /// Share of the training rows in the tier.
    pub share_of_training: f64,
}

/// A leadscore model of whole points made from a logistic regression: see the module documentation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointsModel {
    pub model_name: String,
    pub score_name: String,
    /// Points per unit of log-odds.
    pub scale: f64,
    /// The regression's intercept (log-odds), for the record.
    pub intercept: f64,
    pub training_rows: usize,
    pub columns: Vec<ColumnPoints>,
    pub tiers: Vec<TierCut>,
}

/// The points model of `model`, a logistic regression fitted on `encoder`'s features of `table`'s rows `rows` (the
/// training rows, which give the numeric bins and the tiers).
pub fn points_model(
    table: &Table,
    rows: &[usize],
    encoder: &Encoder,
    model: &Model,
    options: &PointsOptions,
) -> Result<PointsModel, PointsError> {
    if options.score_name.is_empty()
        || !options.score_name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(PointsError::InvalidScoreName(options.score_name.clone()));
    }
    if !(options.scale_max > 0.0 && options.scale_max.is_finite()) {
        return Err(PointsError::InvalidScale(options.scale_max));
    }
    if rows.is_empty() {
        return Err(PointsError::NoRows);
    }
    if model.feature_names != encoder.feature_names {
        return Err(PointsError::FeatureMismatch);
    }
    let coefficient: HashMap<&str, f64> = model.named_coefficients().collect();
    let largest = model.coefficients.iter().fold(0.0, |m: f64, w| m.max(w.abs()));
    let scale = if largest > 0.0 { options.scale_max / largest } else { 0.0 };
    let mut names = HashSet::new();
    let mut columns = Vec::new();
    for encoding in &encoder.columns {
        let (column, kind, mut attributes, note) = match encoding {
            ColumnEncoding::Categorical { column, categories, other, rare } => {
                let c = table.column_index(column)?;
                let mut attributes = Vec::new();
                let mut push = |value: &str, test: AttributeTest, name: String| {
                    let w = coefficient[format!("{column}={value}").as_str()];
                    attributes.push(attribute(name, test, w, w * scale, table, rows, c));
                };
                for category in categories {
                    if category == MISSING_CATEGORY {
                        push(category, missing_test(), format!("{column} missing"));
                    } else {
                        let test = AttributeTest::OneOf { values: vec![category.clone()], or_missing: false };
                        push(category, test, format!("{column} = {category}"));
                    }
                }
                if *other {
                    let test = AttributeTest::OneOf {
                        values: rare.iter().filter(|v| *v != MISSING_CATEGORY).cloned().collect(),
                        or_missing: rare.iter().any(|v| v == MISSING_CATEGORY),
                    };
                    push(OTHER_CATEGORY, test, format!("{column} other"));
                }
                attributes.sort_by(|a, b| b.exact_points.total_cmp(&a.exact_points));
                let note = other.then(|| {
                    format!("`{column} other`: the values seen too rarely in training to get their own points")
                });
                (column, ColumnKind::Categorical, attributes, note)
            }
            ColumnEncoding::Boolean { column, missing_indicator } => {
                let c = table.column_index(column)?;
                let w = coefficient[column.as_str()];
                let mut attributes =
                    vec![attribute(format!("{column} = yes"), AttributeTest::True, w, w * scale, table, rows, c)];
                if *missing_indicator {
                    let w = coefficient[format!("{column}={MISSING_CATEGORY}").as_str()];
                    attributes.push(attribute(
                        format!("{column} missing"),
                        missing_test(),
                        w,
                        w * scale,
                        table,
                        rows,
                        c,
                    ));
                }
                (column, ColumnKind::Boolean, attributes, None)
            }
            // The scoring model's tests compare numbers and texts, not dates: a date's points would need a rule
            // that does not exist, so the column is named with why it has none.
            ColumnEncoding::Numeric { column, date: true, .. } => {
                let note = "a date: the full model uses it, points rules cannot test dates, so it has no points here \
                            (give the leads an age in days to score it)"
                    .to_string();
                (column, ColumnKind::Date, Vec::new(), Some(note))
            }
            ColumnEncoding::Numeric { column, median, standardiser, missing_indicator, date: false } => {
                let c = table.column_index(column)?;
                let w = coefficient[column.as_str()];
                let indicator = missing_indicator.map(|s| {
                    let wi = coefficient[format!("{column}={MISSING_CATEGORY}").as_str()];
                    (wi * (0.0 - s.mean) / s.scale, wi * (1.0 - s.mean) / s.scale)
                });
                let (present_term, missing_term) = indicator.unwrap_or((0.0, 0.0));
                let contribution = |x: f64| w * (x - standardiser.mean) / standardiser.scale;
                let mut values = present_values(table, rows, c, column, false)?;
                let edges = quantile_edges(&mut values, options.numeric_bins);
                let bins = bins_of(&edges);
                // Each bin's representative value: the mean of the training values in it.
                let log_odds: Vec<f64> = bins
                    .iter()
                    .map(|&(min, below)| {
                        let inside: Vec<f64> = values
                            .iter()
                            .copied()
                            .filter(|&x| min.is_none_or(|m| x >= m) && below.is_none_or(|b| x < b))
                            .collect();
                        let mean = inside.iter().sum::<f64>() / inside.len().max(1) as f64;
                        contribution(mean) + present_term
                    })
                    .collect();
                let lowest = log_odds.iter().copied().fold(f64::INFINITY, f64::min);
                let mut attributes: Vec<AttributePoints> = bins
                    .iter()
                    .zip(&log_odds)
                    .map(|(&(min, below), &lo)| {
                        let name = format!("{column} {}", range_label(min, below));
                        let test = AttributeTest::Range { min, below };
                        attribute(name, test, lo, (lo - lowest) * scale, table, rows, c)
                    })
                    .collect();
                let lo = contribution(*median) + missing_term;
                attributes.push(attribute(
                    format!("{column} missing"),
                    missing_test(),
                    lo,
                    (lo - lowest) * scale,
                    table,
                    rows,
                    c,
                ));
                let note = format!(
                    "log-odds relative to the mean value; points: the log-odds at the mean training value of each \
                     bin, less the lowest bin's ({lowest:+.4}); a missing value counts as the median {}",
                    toml_number(*median)
                );
                (column, ColumnKind::Numeric, attributes, Some(note))
            }
        };
        attributes.retain(|a| a.points != 0);
        for a in &mut attributes {
            // Names are unique unless a column name mimics another rule's ("a = b" and "a" with value "b").
            let mut name = a.name.clone();
            let mut k = 2;
            while !names.insert(name.clone()) {
                name = format!("{} ({k})", a.name);
                k += 1;
            }
            a.name = name;
        }
        columns.push(ColumnPoints { column: column.clone(), kind, attributes, note });
    }
    let mut points = PointsModel {
        model_name: options.model_name.clone(),
        score_name: options.score_name.clone(),
        scale,
        intercept: model.intercept,
        training_rows: rows.len(),
        columns,
        tiers: Vec::new(),
    };
    points.tiers = tiers(&points.score_rows(table, rows)?, &options.tiers);
    Ok(points)
}

fn missing_test() -> AttributeTest {
    AttributeTest::OneOf { values: Vec::new(), or_missing: true }
}

fn attribute(
    name: String,
    test: AttributeTest,
    log_odds: f64,
    exact_points: f64,
    table: &Table,
    rows: &[usize],
    column: usize,
) -> AttributePoints {
    let training_count = rows.iter().filter(|&&r| test.matches(table.cell(r, column))).count();
    AttributePoints { name, test, points: exact_points.round() as i64, exact_points, log_odds, training_count }
}

/// The non-missing values of a numeric (or, as days, a date) column in `rows`.
fn present_values(table: &Table, rows: &[usize], c: usize, column: &str, date: bool) -> Result<Vec<f64>, DatasetError> {
    let mut values = Vec::with_capacity(rows.len());
    for &r in rows {
        if let Some(text) = table.cell(r, c) {
            values.push(crate::dataset::number_of(text, date).ok_or_else(|| DatasetError::NotNumeric {
                file: table.name().to_string(),
                line: table.line(r),
                column: column.to_string(),
                value: text.to_string(),
            })?);
        }
    }
    Ok(values)
}

/// Sorts `values` and returns the inner edges of at most `bins` quantile bins: values of the data, strictly
/// increasing, each above the smallest value; a bin runs from its edge (included) to the next (excluded).
fn quantile_edges(values: &mut [f64], bins: usize) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    let mut edges: Vec<f64> = Vec::new();
    let n = values.len();
    if n == 0 {
        return edges;
    }
    for i in 1..bins.max(1) {
        let edge = values[(i * n / bins).min(n - 1)];
        if edge > values[0] && edges.last().is_none_or(|&last| edge > last) {
            edges.push(edge);
        }
    }
    edges
}

/// `(min, below)` of each bin between the edges (the first has no `min`, the last no `below`).
fn bins_of(edges: &[f64]) -> Vec<(Option<f64>, Option<f64>)> {
    let mut lows = vec![None];
    lows.extend(edges.iter().copied().map(Some));
    let mut highs: Vec<Option<f64>> = edges.iter().copied().map(Some).collect();
    highs.push(None);
    lows.into_iter().zip(highs).collect()
}

/// [`range_label`] for a date column, whose numbers are days since 1970-01-01: `2026-01-05 to before 2026-03-01`.
fn date_range_label(min: Option<f64>, below: Option<f64>) -> String {
    let day = |days: f64| {
        let text = leadscore_core::Timestamp((days * 86_400_000.0).round() as i64).to_string();
        // A whole day prints as the date alone; a time of day is kept.
        let date = text.strip_suffix("T00:00:00Z").or_else(|| text.strip_suffix("T00:00:00.000Z"));
        date.map_or(text.clone(), str::to_string)
    };
    match (min, below) {
        (None, None) => "any".to_string(),
        (None, Some(b)) => format!("before {}", day(b)),
        (Some(m), None) => format!("{} and later", day(m)),
        (Some(m), Some(b)) => format!("{} to before {}", day(m), day(b)),
    }
}

fn range_label(min: Option<f64>, below: Option<f64>) -> String {
    match (min, below) {
        (None, None) => "any".to_string(),
        (None, Some(b)) => format!("below {b}"),
        (Some(m), None) => format!("{m} and over"),
        (Some(m), Some(b)) => format!("{m} to under {b}"),
    }
}

/// The tiers at quantiles of `totals` ("lower" quantiles: values of the data); a tier whose start would not be
/// above the previous one's is left out.
fn tiers(totals: &[f64], spec: &[(String, f64)]) -> Vec<TierCut> {
    let mut sorted = totals.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let mut mins: Vec<(String, Option<f64>)> = Vec::new();
    for (i, (label, q)) in spec.iter().enumerate() {
        if i == 0 {
            mins.push((label.clone(), None));
            continue;
        }
        if n == 0 {
            break;
        }
        let q = q.clamp(0.0, 1.0);
        let min = sorted[((q * (n - 1) as f64).floor() as usize).min(n - 1)];
        if mins.last().and_then(|t| t.1).is_none_or(|prev| min > prev) && (mins.len() > 1 || min > sorted[0]) {
            mins.push((label.clone(), Some(min)));
        }
    }
    let mut out = Vec::with_capacity(mins.len());
    for (i, (label, min)) in mins.iter().enumerate() {
        let next = mins.get(i + 1).and_then(|t| t.1);
        let inside = sorted.iter().filter(|&&t| min.is_none_or(|m| t >= m) && next.is_none_or(|m| t < m)).count();
        out.push(TierCut { label: label.clone(), min: *min, share_of_training: inside as f64 / n.max(1) as f64 });
    }
    out
}

impl PointsModel {
    /// The points total of each of `table`'s rows `rows`: the sum of the points of every rule whose test passes,
    /// exactly what leadscore computes from [`PointsModel::to_toml`] for a lead with those fields.
    pub fn score_rows(&self, table: &Table, rows: &[usize]) -> Result<Vec<f64>, DatasetError> {
        let indexes = self.columns.iter().map(|c| table.column_index(&c.column)).collect::<Result<Vec<_>, _>>()?;
        if let Some(&row) = rows.iter().find(|&&r| r >= table.n_rows()) {
            return Err(DatasetError::RowOutOfRange { file: table.name().to_string(), row, rows: table.n_rows() });
        }
        Ok(rows
            .iter()
            .map(|&r| {
                let mut total = 0i64;
                for (column, &c) in self.columns.iter().zip(&indexes) {
                    let cell = table.cell(r, c);
                    total += column.attributes.iter().filter(|a| a.test.matches(cell)).map(|a| a.points).sum::<i64>();
                }
                total as f64
            })
            .collect())
    }

    /// The model in leadscore's TOML format (docs/model-format.md), with comments.
    pub fn to_toml(&self) -> String {
        let s = &self.score_name;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# Points from data: generated by leadscore from a logistic regression on {} leads.",
            self.training_rows
        );
        let _ = writeln!(
            out,
            "# One point is {:.4} in log-odds ({:.3} points per unit); the strongest attribute value is worth the most.",
            if self.scale > 0.0 { 1.0 / self.scale } else { 0.0 },
            self.scale
        );
        out.push_str(
            "# Categories and yes/no fields get round(coefficient x scale) points. Numbers are cut into bins at\n\
             # quantiles of the training values; each bin gets the model's contribution at its mean value, shifted so\n\
             # that the lowest bin of the field gets 0. Values with 0 points have no rule.\n\
             # Edit freely; `leadscore check` validates the file.\n\n",
        );
        let _ = writeln!(out, "[model]\nname = {}", toml_string(&self.model_name));
        let _ = writeln!(
            out,
            "description = {}\n",
            toml_string(&format!(
                "Points per attribute value from a logistic regression on {} leads (intercept {:.4} log-odds)",
                self.training_rows, self.intercept
            ))
        );
        let _ = writeln!(out, "[scores.{s}]");
        let _ = writeln!(out, "description = \"Whole points per attribute value, learned from past conversions\"");
        if !self.tiers.is_empty() {
            out.push_str("tiers = [\n");
            for tier in &self.tiers {
                let entry = match tier.min {
                    None => format!("{{ label = {} }},", toml_string(&tier.label)),
                    Some(min) => format!("{{ label = {}, min = {} }},", toml_string(&tier.label), toml_number(min)),
                };
                let _ = writeln!(out, "  {entry:<40} # {:.1}% of training leads", tier.share_of_training * 100.0);
            }
            out.push_str("]\n");
        }
        for column in &self.columns {
            let kind = match column.kind {
                ColumnKind::Numeric => "number",
                ColumnKind::Boolean => "yes/no",
                ColumnKind::Categorical => "category",
                ColumnKind::Date => "date",
            };
            let title = format!("# --- {} ({kind}) ", column.column);
            let _ = writeln!(out, "\n{title:-<100}");
            if let Some(note) = &column.note {
                let _ = writeln!(out, "# {note}");
            }
            if column.attributes.is_empty() {
                out.push_str("# (no value is worth a whole point)\n");
            }
            for a in &column.attributes {
                let _ = writeln!(
                    out,
                    "\n# log-odds {:+.4}, exact points {:.2}; {} of {} training leads",
                    a.log_odds, a.exact_points, a.training_count, self.training_rows
                );
                let _ = writeln!(out, "[[scores.{s}.rules]]");
                let _ = writeln!(out, "name = {}", toml_string(&a.name));
                let _ = writeln!(out, "when = {}", condition(&column.column, &a.test));
                let _ = writeln!(out, "points = {}", a.points);
            }
        }
        out
    }
}

fn condition(field: &str, test: &AttributeTest) -> String {
    let f = toml_string(field);
    let list = |values: &[&str]| values.iter().map(|v| toml_string(v)).collect::<Vec<_>>().join(", ");
    let missing = || {
        let tokens: Vec<&str> = MISSING_TOKENS.iter().copied().filter(|t| !t.is_empty()).collect();
        vec![format!("{{ field = {f}, missing = true }}"), format!("{{ field = {f}, one_of = [{}] }}", list(&tokens))]
    };
    match test {
        AttributeTest::OneOf { values, or_missing } => {
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            let mut tests = Vec::new();
            match values.len() {
                0 => {}
                1 => tests.push(format!("{{ field = {f}, equals = {} }}", toml_string(values[0]))),
                _ => tests.push(format!("{{ field = {f}, one_of = [{}] }}", list(&values))),
            }
            if *or_missing {
                tests.extend(missing());
            }
            if tests.len() == 1 {
                tests.pop().unwrap_or_default()
            } else {
                format!("{{ any = [{}] }}", tests.join(", "))
            }
        }
        AttributeTest::True => format!("{{ field = {f}, equals = true }}"),
        AttributeTest::Range { min, below } => {
            let mut out = format!("{{ field = {f}");
            if let Some(m) = min {
                let _ = write!(out, ", min = {}", toml_number(*m));
            }
            if let Some(b) = below {
                let _ = write!(out, ", below = {}", toml_number(*b));
            }
            if min.is_none() && below.is_none() {
                out.push_str(", present = true");
            }
            out.push_str(" }");
            out
        }
    }
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A finite number as TOML: Rust's shortest round-trip spelling, which TOML reads back to the same `f64`.
fn toml_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 { format!("{}", x as i64) } else { format!("{x:?}") }
}

/// Conversions among the leads with one attribute value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributeValueReport {
    pub column: String,
    pub kind: ColumnKind,
    /// The value; for numeric columns a bin such as `33 to under 40`; `<missing>` for missing cells.
    pub value: String,
    /// Rows with the value.
    pub count: usize,
    /// Of which converted.
    pub conversions: usize,
    /// `conversions / count`.
    pub rate: f64,
    /// `rate` over the conversion rate of all the rows given; 1 for every value when nothing converted.
    pub lift: f64,
}

/// Conversion rate and lift per value of `columns` (categorical and boolean columns by value, numeric columns by
/// at most `numeric_bins` quantile bins) over `table`'s rows `rows`, sorted by lift (highest first; then by count).
/// `labels` holds the outcome of **every row of the table** (as [`Table::target`] returns it). Values seen fewer
/// than `min_count` times in `rows` are left out.
///
/// # Panics
/// When `labels` does not have one outcome per table row.
pub fn conversion_report(
    table: &Table,
    labels: &[bool],
    rows: &[usize],
    columns: &[&str],
    min_count: usize,
    numeric_bins: usize,
) -> Result<Vec<AttributeValueReport>, DatasetError> {
    assert_eq!(labels.len(), table.n_rows(), "conversion_report: {} labels for {} rows", labels.len(), table.n_rows());
    if let Some(&row) = rows.iter().find(|&&r| r >= table.n_rows()) {
        return Err(DatasetError::RowOutOfRange { file: table.name().to_string(), row, rows: table.n_rows() });
    }
    let total_conversions = rows.iter().filter(|&&r| labels[r]).count();
    let overall = if rows.is_empty() { 0.0 } else { total_conversions as f64 / rows.len() as f64 };
    let mut out = Vec::new();
    for &column in columns {
        let c = table.column_index(column)?;
        let kind = table.kinds()[c];
        // (value, count, conversions) in first-seen order for categories, bin order for numbers
        // (then missing). Rows are counted by group index: no text is made per row.
        let mut groups: Vec<(String, usize, usize)> = Vec::new();
        let count = |groups: &mut Vec<(String, usize, usize)>, group: usize, converted: bool| {
            groups[group].1 += 1;
            groups[group].2 += usize::from(converted);
        };
        match kind {
            ColumnKind::Categorical | ColumnKind::Boolean => {
                let mut index: HashMap<&str, usize> = HashMap::new();
                for &r in rows {
                    let value = match (kind, table.cell(r, c)) {
                        (_, None) => MISSING_CATEGORY,
                        (ColumnKind::Boolean, Some(text)) => {
                            if AttributeTest::True.matches(Some(text)) {
                                "yes"
                            } else {
                                "no"
                            }
                        }
                        (_, Some(text)) => text,
                    };
                    let group = *index.entry(value).or_insert_with(|| {
                        groups.push((value.to_string(), 0, 0));
                        groups.len() - 1
                    });
                    count(&mut groups, group, labels[r]);
                }
            }
            ColumnKind::Numeric | ColumnKind::Date => {
                let date = kind == ColumnKind::Date;
                let mut values = present_values(table, rows, c, column, date)?;
                let bins = bins_of(&quantile_edges(&mut values, numeric_bins));
                for &(min, below) in &bins {
                    let label = if date { date_range_label(min, below) } else { range_label(min, below) };
                    groups.push((label, 0, 0));
                }
                let mut missing = None;
                for &r in rows {
                    let group = match table.cell(r, c).and_then(|t| crate::dataset::number_of(t, date)) {
                        None => *missing.get_or_insert_with(|| {
                            groups.push((MISSING_CATEGORY.to_string(), 0, 0));
                            groups.len() - 1
                        }),
                        // The bins cover every number, in order: the first whose upper end is above it.
                        Some(x) => bins
                            .iter()
                            .position(|&(min, below)| min.is_none_or(|m| x >= m) && below.is_none_or(|b| x < b))
                            .unwrap_or(bins.len() - 1),
                    };
                    count(&mut groups, group, labels[r]);
                }
            }
        }
        for (value, count, conversions) in groups {
            if count == 0 || count < min_count {
                continue;
            }
            let rate = conversions as f64 / count as f64;
            let lift = if overall > 0.0 { rate / overall } else { 1.0 };
            out.push(AttributeValueReport { column: column.to_string(), kind, value, count, conversions, rate, lift });
        }
    }
    out.sort_by(|a, b| b.lift.total_cmp(&a.lift).then(b.count.cmp(&a.count)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logistic::LogisticRegression;

    fn table(text: &str) -> Table {
        Table::from_csv_reader(text.as_bytes(), "t.csv").unwrap()
    }

    #[test]
    fn quantile_edges_keep_ties_together() {
        let mut v = vec![5.0, 1.0, 2.0, 3.0, 4.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(quantile_edges(&mut v, 5), [3.0, 5.0, 7.0, 9.0]);
        let mut v = vec![-1.0; 8];
        v.extend([3.0, 10.0]);
        assert_eq!(quantile_edges(&mut v, 5), [3.0]);
        assert_eq!(quantile_edges(&mut [], 5), Vec::<f64>::new());
        assert_eq!(quantile_edges(&mut [1.0, 1.0], 5), Vec::<f64>::new());
        assert_eq!(bins_of(&[3.0]), [(None, Some(3.0)), (Some(3.0), None)]);
        assert_eq!(range_label(Some(3.0), Some(7.5)), "3 to under 7.5");
    }

    #[test]
    fn tests_match_like_the_engine() {
        let missing = missing_test();
        assert!(missing.matches(None) && missing.matches(Some("NA")) && !missing.matches(Some("x")));
        let one = AttributeTest::OneOf { values: vec!["a".into()], or_missing: false };
        assert!(one.matches(Some("a")) && !one.matches(Some("A")) && !one.matches(None));
        assert!(AttributeTest::True.matches(Some("Yes")) && !AttributeTest::True.matches(Some("no")));
        let range = AttributeTest::Range { min: Some(3.0), below: Some(5.0) };
        assert!(range.matches(Some("3")) && range.matches(Some("4.99")) && !range.matches(Some("5")));
        assert!(!range.matches(Some("abc")) && !range.matches(None));
    }

    #[test]
    fn toml_text_escapes_and_numbers() {
        assert_eq!(toml_string("a\"b\\c\n"), r#""a\"b\\c\n""#);
        assert_eq!(toml_number(30.0), "30");
        assert_eq!(toml_number(-1.0), "-1");
        assert_eq!(toml_number(0.1), "0.1");
        assert_eq!(toml_number(1e-7), "1e-7");
    }

    /// A small data set where the outcome depends on a category, a flag and a number.
    fn fixture() -> (Table, Vec<bool>, Vec<usize>) {
        let mut csv = String::from("plan,flag,size,y\n");
        for i in 0..120 {
            let plan = ["free", "pro", "team \"x\""][i % 3];
            let flag = if i % 4 == 0 {
                "yes"
            } else if i % 11 == 0 {
                ""
            } else {
                "no"
            };
            let size = if i % 13 == 0 { String::new() } else { format!("{}", (i * 7) % 50) };
            let y = (i % 3 == 1 && i % 5 != 0) || (i % 4 == 0 && i % 3 != 0) || (i * 7) % 50 > 44;
            let _ = writeln!(csv, "{plan},{flag},{size},{}", if y { "yes" } else { "no" });
        }
        let t = table(&csv);
        let labels = t.target("y", None).unwrap();
        (t, labels, (0..120).collect())
    }

    #[test]
    fn points_follow_the_coefficients_and_the_toml_scores_the_same() {
        let (t, labels, rows) = fixture();
        let encoder = Encoder::fit(&t, &["plan", "flag", "size"], &rows).unwrap();
        let features = encoder.transform(&t, &rows).unwrap();
        let model = LogisticRegression::fit(&features, &labels, 1.0, 100).unwrap();
        let options = PointsOptions { score_name: "fit".into(), scale_max: 20.0, ..PointsOptions::default() };
        let points = points_model(&t, &rows, &encoder, &model, &options).unwrap();
        // The largest coefficient is worth exactly 20 points.
        let max_points =
            points.columns.iter().flat_map(|c| &c.attributes).map(|a| a.exact_points.abs()).fold(0.0, f64::max);
        assert!(max_points <= 20.0 + 1e-9);
        let plan_pro = model.named_coefficients().find(|(n, _)| *n == "plan=pro").unwrap().1;
        let pro = points.columns[0].attributes.iter().find(|a| a.name == "plan = pro").unwrap();
        assert_eq!(pro.points, (plan_pro * points.scale).round() as i64);
        // Numeric bins: the lowest gets 0 and is therefore left out.
        let size = &points.columns[2];
        assert!(size.attributes.iter().all(|a| a.points != 0));
        let toml = points.to_toml();
        let compiled = leadscore_core::compile(&toml).unwrap_or_else(|e| panic!("{}\n{toml}", e.render("model.toml")));
        let core = compiled.model;
        let direct = points.score_rows(&t, &rows).unwrap();
        for (&r, &want) in rows.iter().zip(&direct) {
            let lead: Vec<leadscore_core::Value> = core
                .lead_fields()
                .iter()
                .map(|f| {
                    t.cell(r, t.column_index(f).unwrap())
                        .map_or(leadscore_core::Value::Missing, leadscore_core::Value::text)
                })
                .collect();
            let scores = core.score(&lead, [], leadscore_core::Timestamp(0));
            assert_eq!(scores.get("fit").unwrap().value, want, "row {r}");
        }
        // Tiers: strictly increasing, shares add up to 1.
        let share: f64 = points.tiers.iter().map(|t| t.share_of_training).sum();
        assert!((share - 1.0).abs() < 1e-12, "{:?}", points.tiers);
        assert_eq!(points.tiers[0].label, "cold");
    }

    #[test]
    fn points_model_rejects_bad_options() {
        let (t, labels, rows) = fixture();
        let encoder = Encoder::fit(&t, &["plan"], &rows).unwrap();
        let model = LogisticRegression::fit(&encoder.transform(&t, &rows).unwrap(), &labels, 1.0, 100).unwrap();
        let bad = PointsOptions { score_name: "a b".into(), ..PointsOptions::default() };
        assert!(matches!(points_model(&t, &rows, &encoder, &model, &bad), Err(PointsError::InvalidScoreName(_))));
        let bad = PointsOptions { scale_max: 0.0, ..PointsOptions::default() };
        assert!(matches!(points_model(&t, &rows, &encoder, &model, &bad), Err(PointsError::InvalidScale(_))));
        let other = Encoder::fit(&t, &["flag"], &rows).unwrap();
        let opts = PointsOptions::default();
        assert!(matches!(points_model(&t, &rows, &other, &model, &opts), Err(PointsError::FeatureMismatch)));
    }

    #[test]
    fn tiers_at_quantiles() {
        let totals: Vec<f64> = (0..10).map(f64::from).collect();
        let spec = PointsOptions::default().tiers;
        let t = tiers(&totals, &spec);
        assert_eq!(t.iter().map(|t| t.min).collect::<Vec<_>>(), [None, Some(5.0), Some(8.0)]);
        assert_eq!(t.iter().map(|t| t.share_of_training).collect::<Vec<_>>(), [0.5, 0.3, 0.2]);
        // All equal: only the first tier.
        let t = tiers(&[3.0; 10], &spec);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].share_of_training, 1.0);
    }

    #[test]
    fn conversion_report_by_hand() {
        let t = table("k,b,n,y\na,yes,1,yes\na,no,2,no\nb,no,3,no\nb,,4,no\nc,yes,,yes\na,yes,6,yes\n");
        let labels = t.target("y", None).unwrap();
        let rows: Vec<usize> = (0..6).collect();
        let report = conversion_report(&t, &labels, &rows, &["k", "b", "n"], 2, 2).unwrap();
        // Overall rate 3/6 = 0.5.
        let find = |c: &str, v: &str| report.iter().find(|r| r.column == c && r.value == v).cloned();
        let a = find("k", "a").unwrap();
        assert_eq!((a.count, a.conversions), (3, 2));
        assert!((a.lift - 4.0 / 3.0).abs() < 1e-12);
        let yes = find("b", "yes").unwrap();
        assert_eq!((yes.count, yes.conversions, yes.rate, yes.lift), (3, 3, 1.0, 2.0));
        assert_eq!(report[0].lift, 2.0);
        // Seen once: left out.
        assert!(find("k", "c").is_none() && find("b", "<missing>").is_none());
        // Numbers 1, 2, 3, 4, 6 in two bins: below 3 and from 3.
        assert_eq!(find("n", "below 3").unwrap().count, 2);
        assert_eq!(find("n", "3 and over").unwrap().count, 3);
        assert!(report.windows(2).all(|w| w[0].lift >= w[1].lift));
    }
}
