//! Training a predictive model from a table of past leads: which leads it learns from and which it
//! is measured on ([`Holdout`]), the fit of either [`Algorithm`] ([`fit`]), the choice between them
//! by cross-validation ([`cross_validate`]), and the points model made from a logistic
//! regression ([`points_model`]).
//!
//! `leadscore train` and the service's retraining both train with [`train`]; what they measured
//! is written by the `evaluation` module, above this one.

use crate::dataset::{DatasetError, Encoder, Table};
use crate::gbdt::{Booster, GbdtError, Params};
use crate::logistic::{self, FitError, LogisticRegression};
use crate::points::{self, PointsError, PointsModel, PointsOptions};
use crate::predictive::{Algorithm, Fitted, PredictiveError};
use crate::{metrics, random};

/// Folds of the cross-validation that chooses the algorithm.
pub const CROSS_VALIDATION_FOLDS: usize = 3;
/// Newton iterations of a logistic regression's fit.
const LOGISTIC_ITERATIONS: usize = 100;

/// Why a model could not be trained.
#[derive(Debug, thiserror::Error)]
pub enum TrainingError {
    #[error("{file}: no column is left to learn from once the target and --drop are removed")]
    NoFeatures { file: String },
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    Logistic(#[from] FitError),
    #[error(transparent)]
    Gbdt(#[from] GbdtError),
    #[error(transparent)]
    Points(#[from] PointsError),
    #[error(transparent)]
    Predictive(#[from] PredictiveError),
}

/// How to train.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainingOptions {
    /// The algorithm, or `None` for the better of the two by cross-validation on the training
    /// leads.
    pub algorithm: Option<Algorithm>,
    /// Inverse strength of the L2 regularisation of a logistic regression.
    pub c: f64,
    /// The seed of the cross-validation's folds (and, for the caller, of the holdout split).
    pub seed: u64,
}

/// The leads a model learns from (rows of the training table) and those it is measured on (rows
/// of `test_table`, which may be the training table or another one with the same columns).
#[derive(Debug, Clone)]
pub struct Holdout<'a> {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
    pub test_table: &'a Table,
    /// The outcome of each test row, in the order of `test`.
    pub test_labels: Vec<bool>,
}

impl<'a> Holdout<'a> {
    /// A stratified share `test_fraction` of the table's rows held out, by `seed`.
    ///
    /// # Panics
    /// When `test_fraction` is not within [0, 1].
    pub fn split(table: &'a Table, labels: &[bool], test_fraction: f64, seed: u64) -> Holdout<'a> {
        let (train, test) = random::stratified_split(labels, test_fraction, seed);
        let test_labels = test.iter().map(|&i| labels[i]).collect();
        Holdout { train, test, test_table: table, test_labels }
    }

    /// Every row of the training table to learn from, every row of `test_table` to measure on.
    pub fn separate(table: &Table, test_table: &'a Table, test_labels: Vec<bool>) -> Holdout<'a> {
        Holdout {
            train: (0..table.n_rows()).collect(),
            test: (0..test_table.n_rows()).collect(),
            test_table,
            test_labels,
        }
    }
}

/// The columns to learn from: every column but the target and `drop` (which must all exist).
pub fn features<'t>(table: &'t Table, target: &str, drop: &[String]) -> Result<Vec<&'t str>, TrainingError> {
    for column in drop {
        table.column_index(column)?;
    }
    let features: Vec<&str> =
        table.columns().iter().map(String::as_str).filter(|c| *c != target && !drop.iter().any(|d| d == c)).collect();
    if features.is_empty() {
        return Err(TrainingError::NoFeatures { file: table.name().to_string() });
    }
    Ok(features)
}

/// A logistic regression on the table rows `rows`; `labels` holds the outcome of every table row.
fn fit_logistic(
    table: &Table,
    features: &[&str],
    rows: &[usize],
    labels: &[bool],
    c: f64,
) -> Result<(Encoder, logistic::Model), TrainingError> {
    let row_labels: Vec<bool> = rows.iter().map(|&i| labels[i]).collect();
    let encoder = Encoder::fit(table, features, rows)?;
    let model = LogisticRegression::fit(&encoder.transform(table, rows)?, &row_labels, c, LOGISTIC_ITERATIONS)?;
    Ok((encoder, model))
}

/// `algorithm` fitted on the table rows `rows`; `labels` holds the outcome of every table row, and
/// `c` is the logistic regression's inverse regularisation (boosted trees take
/// [`Params::symmetric`]).
pub fn fit(
    algorithm: Algorithm,
    table: &Table,
    features: &[&str],
    rows: &[usize],
    labels: &[bool],
    c: f64,
) -> Result<Fitted, TrainingError> {
    Ok(match algorithm {
        Algorithm::Logistic => {
            let (encoder, model) = fit_logistic(table, features, rows, labels, c)?;
            Fitted::Logistic { encoder, model }
        }
        Algorithm::Gbdt => {
            let row_labels: Vec<bool> = rows.iter().map(|&i| labels[i]).collect();
            Fitted::Gbdt { booster: Booster::fit(table, features, rows, &row_labels, &Params::symmetric())? }
        }
    })
}

/// One algorithm's mean AUC over the cross-validation's folds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CrossValidation {
    pub algorithm: Algorithm,
    pub mean_auc: f64,
}

/// Mean AUC of each algorithm over [`CROSS_VALIDATION_FOLDS`] stratified folds of the training
/// rows `train`; `on_step` is called after each fit.
pub fn cross_validate(
    table: &Table,
    features: &[&str],
    train: &[usize],
    labels: &[bool],
    options: &TrainingOptions,
    on_step: &mut dyn FnMut(&'static str),
) -> Result<Vec<CrossValidation>, TrainingError> {
    let train_labels: Vec<bool> = train.iter().map(|&i| labels[i]).collect();
    let folds = random::stratified_folds(&train_labels, CROSS_VALIDATION_FOLDS, options.seed);
    let mut results = Vec::new();
    for algorithm in [Algorithm::Logistic, Algorithm::Gbdt] {
        let mut total = 0.0;
        for fold in &folds {
            let held: Vec<usize> = fold.iter().map(|&i| train[i]).collect();
            let fit_rows: Vec<usize> =
                (0..train.len()).filter(|i| fold.binary_search(i).is_err()).map(|i| train[i]).collect();
            let fitted = fit(algorithm, table, features, &fit_rows, labels, options.c)?;
            on_step("cross-validating");
            let held_labels: Vec<bool> = held.iter().map(|&i| labels[i]).collect();
            total += metrics::roc_auc(&fitted.predict_table(table, &held)?, &held_labels).unwrap_or(0.5);
        }
        results.push(CrossValidation { algorithm, mean_auc: total / folds.len() as f64 });
    }
    Ok(results)
}

/// A model fitted on the holdout's training rows, and its predictions for the test rows.
#[derive(Debug, Clone)]
pub struct Trained {
    pub fitted: Fitted,
    /// Empty unless the algorithm was chosen by cross-validation.
    pub cross_validation: Vec<CrossValidation>,
    /// The probability of conversion of each test row, in the order of [`Holdout::test`].
    pub predicted: Vec<f64>,
}

/// How many times [`train`] calls its `on_step` (for a progress bar).
pub fn steps(options: &TrainingOptions) -> u64 {
    let fits = if options.algorithm.is_none() { 2 * CROSS_VALIDATION_FOLDS as u64 } else { 0 };
    fits + 2
}

/// Trains on the holdout's training rows of `table` (`labels`: the outcome of every table row)
/// and predicts its test rows. Without an algorithm in `options`, the one with the better mean
/// AUC by cross-validation on the training rows. `on_step` is called
/// [`steps`] times, with what was just done.
pub fn train(
    table: &Table,
    labels: &[bool],
    features: &[&str],
    holdout: &Holdout<'_>,
    options: &TrainingOptions,
    on_step: &mut dyn FnMut(&'static str),
) -> Result<Trained, TrainingError> {
    let cross_validation = match options.algorithm {
        Some(_) => Vec::new(),
        None => cross_validate(table, features, &holdout.train, labels, options, on_step)?,
    };
    let chosen = options.algorithm.unwrap_or_else(|| {
        cross_validation
            .iter()
            .max_by(|a, b| a.mean_auc.total_cmp(&b.mean_auc))
            .map_or(Algorithm::Logistic, |b| b.algorithm)
    });
    let fitted = fit(chosen, table, features, &holdout.train, labels, options.c)?;
    on_step("fitting");
    let predicted = fitted.predict_table(holdout.test_table, &holdout.test)?;
    on_step("evaluating");
    Ok(Trained { fitted, cross_validation, predicted })
}

/// An editable points model from a logistic regression on the holdout's training rows: the
/// trained one, or one fitted for it when boosted trees were trained (points come from a logistic
/// regression's coefficients, whichever model was chosen).
pub fn points_model(
    table: &Table,
    labels: &[bool],
    features: &[&str],
    holdout: &Holdout<'_>,
    trained: &Fitted,
    options: &TrainingOptions,
    points: &PointsOptions,
) -> Result<PointsModel, TrainingError> {
    let fitted_for_points;
    let (encoder, model) = match trained {
        Fitted::Logistic { encoder, model } => (encoder, model),
        Fitted::Gbdt { .. } => {
            fitted_for_points = fit_logistic(table, features, &holdout.train, labels, options.c)?;
            (&fitted_for_points.0, &fitted_for_points.1)
        }
    };
    Ok(points::points_model(table, &holdout.train, encoder, model, points)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Leads whose age mostly tells their outcome.
    fn table() -> (Table, Vec<bool>) {
        let mut text = "age,job,y\n".to_string();
        for i in 0..80 {
            let converted = i % 2 == 0;
            let age = if converted { 50 + i % 10 } else { 25 + i % 10 } + if i % 7 == 0 { 20 } else { 0 };
            let job = if converted != (i % 5 == 0) { "manager" } else { "student" };
            text.push_str(&format!("{age},{job},{}\n", if converted { "yes" } else { "no" }));
        }
        let table = Table::from_csv_reader(text.as_bytes(), "t.csv").unwrap();
        let labels = table.target("y", None).unwrap();
        (table, labels)
    }

    #[test]
    fn chooses_by_cross_validation_and_counts_its_steps() {
        let (table, labels) = table();
        let features = features(&table, "y", &[]).unwrap();
        assert_eq!(features, ["age", "job"]);
        let holdout = Holdout::split(&table, &labels, 0.25, 7);
        assert_eq!((holdout.train.len(), holdout.test.len()), (60, 20));
        for algorithm in [None, Some(Algorithm::Logistic), Some(Algorithm::Gbdt)] {
            let options = TrainingOptions { algorithm, c: 1.0, seed: 7 };
            let mut steps_seen = 0;
            let trained = train(&table, &labels, &features, &holdout, &options, &mut |_| steps_seen += 1).unwrap();
            assert_eq!(steps_seen, steps(&options));
            assert_eq!(trained.predicted.len(), 20);
            assert_eq!(trained.cross_validation.len(), if algorithm.is_none() { 2 } else { 0 });
            if let Some(algorithm) = algorithm {
                assert_eq!(trained.fitted.algorithm(), algorithm);
            }
            assert!(metrics::roc_auc(&trained.predicted, &holdout.test_labels).is_some_and(|auc| auc > 0.5));
        }
    }

    #[test]
    fn names_what_cannot_be_learned_from() {
        let (table, _) = table();
        assert!(matches!(features(&table, "y", &["nope".to_string()]), Err(TrainingError::Dataset(_))));
        let error = features(&table, "y", &["age".to_string(), "job".to_string()]).unwrap_err();
        assert_eq!(error.to_string(), "t.csv: no column is left to learn from once the target and --drop are removed");
    }
}
