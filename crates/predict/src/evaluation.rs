//! What a model did on leads whose outcome is known, as serialisable types.
//!
//! - [`Evaluation`]: a trained model on the leads held out of its training (`leadscore train`
//!   prints it and saves it in the model file; a retrain saves the common part with what it
//!   refitted on, [`Refit`]).
//! - [`Backtest`]: any model's scores on past leads (`leadscore evaluate`): AUC, log loss after
//!   calibrating points to probabilities ([`calibrate`]), distribution, lift, conversion per tier,
//!   and two models compared.
//!
//! Their JSON ([`Evaluation::to_json`], [`Backtest::to_json`]) has every object's keys in
//! alphabetical order, as these reports have always been written: people and scripts read them.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::dataset::{DatasetError, Features, Table};
use crate::logistic::LogisticRegression;
use crate::metrics::{self, CalibrationBin, Confusion, Decile};
use crate::points::{self, AttributeValueReport, PointsModel};
use crate::predictive::Algorithm;
use crate::threshold::{self, Advice};
use crate::training::{CrossValidation, Holdout, Trained};

/// Bins of the calibration table of a training report.
const CALIBRATION_BINS: usize = 10;
/// Attribute values a training report lists.
const ATTRIBUTES_LISTED: usize = 20;
/// Quantile bins of a numeric column in a training report's attribute values.
const ATTRIBUTE_NUMERIC_BINS: usize = 5;

/// A trained model measured on the leads held out of its training.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub algorithm: Algorithm,
    pub train_rows: usize,
    pub test_rows: usize,
    /// The share of converted leads among the held-out ones.
    pub test_positive_rate: f64,
    /// `None` when the held-out leads do not have both outcomes.
    pub auc: Option<f64>,
    pub log_loss: f64,
    pub brier: f64,
    /// What `leadscore train` reports besides.
    #[serde(flatten)]
    pub report: Option<TrainingReport>,
    /// For a retrain: the fit on every labelled lead that was saved.
    #[serde(flatten)]
    pub refit: Option<Refit>,
}

/// What `leadscore train` measures besides the common figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainingReport {
    /// Each algorithm's mean AUC, when cross-validation chose the algorithm.
    pub cross_validation: Vec<CrossValidation>,
    /// The probability above which a lead is predicted to convert, for `confusion`.
    pub threshold: f64,
    pub confusion: Confusion,
    pub calibration: Vec<CalibrationBin>,
    pub lift_by_decile: Vec<Decile>,
    pub thresholds: ThresholdAdvice,
    /// The points model written with the trained one, if any.
    pub points_model: Option<PointsEvaluation>,
    /// Attribute values by lift on the training leads (at most 20).
    pub attributes: Vec<AttributeValueReport>,
}

/// Thresholds advised on the held-out leads.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdAdvice {
    /// The top share of leads that sales can call.
    pub capacity: Option<Advice>,
    pub best_f1: Option<Advice>,
    /// Present when the cost of a touch and the value of a conversion were given (and then
    /// `null` when no threshold could be advised).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_value: Option<Option<Advice>>,
}

/// A points model written next to the trained model, measured on the same held-out leads.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointsEvaluation {
    /// Where it was written.
    pub file: String,
    pub auc: Option<f64>,
}

/// A retrain's fit on every labelled lead, after the measure on the held-out ones.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Refit {
    /// Always `retrain`: says where the model comes from.
    pub origin: &'static str,
    pub refit_rows: usize,
    pub leads: OutcomeCounts,
}

/// Labelled leads of each outcome.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OutcomeCounts {
    pub customers: usize,
    pub lost: usize,
}

/// The settings of a [`TrainingReport`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainingReportOptions {
    /// The probability above which a lead counts as predicted to convert.
    pub threshold: f64,
    /// The share of leads sales can call, for threshold advice.
    pub capacity: f64,
    /// The cost of one sales touch and the value of one conversion, for the expected-value
    /// threshold.
    pub economics: Option<(f64, f64)>,
    /// Attribute values are listed when at least this many training leads have them.
    pub attribute_min_count: usize,
}

impl Evaluation {
    /// The common figures of a trained model on the holdout's test rows.
    pub fn new(trained: &Trained, holdout: &Holdout<'_>) -> Evaluation {
        let (predicted, labels) = (&trained.predicted, &holdout.test_labels);
        let positives = labels.iter().filter(|l| **l).count();
        Evaluation {
            algorithm: trained.fitted.algorithm(),
            train_rows: holdout.train.len(),
            test_rows: holdout.test.len(),
            test_positive_rate: positives as f64 / holdout.test.len().max(1) as f64,
            auc: metrics::roc_auc(predicted, labels),
            log_loss: metrics::log_loss(predicted, labels),
            brier: metrics::brier(predicted, labels),
            report: None,
            refit: None,
        }
    }

    /// The JSON object, keys in alphabetical order at every level.
    pub fn to_json(&self) -> serde_json::Value {
        sorted_json(self)
    }
}

impl TrainingReport {
    /// What `leadscore train` reports on the holdout: `labels` holds the outcome of every row of
    /// the training `table`, `features` the columns learned from.
    pub fn new(
        table: &Table,
        labels: &[bool],
        features: &[&str],
        trained: &Trained,
        holdout: &Holdout<'_>,
        options: &TrainingReportOptions,
        points_model: Option<PointsEvaluation>,
    ) -> Result<TrainingReport, DatasetError> {
        let (predicted, test_labels) = (&trained.predicted, &holdout.test_labels);
        let thresholds = ThresholdAdvice {
            capacity: threshold::for_capacity(predicted, test_labels, options.capacity),
            best_f1: threshold::best_f1(predicted, test_labels),
            expected_value: options
                .economics
                .map(|(cost, value)| threshold::best_expected_value(predicted, test_labels, cost, value)),
        };
        let mut attributes = points::conversion_report(
            table,
            labels,
            &holdout.train,
            features,
            options.attribute_min_count,
            ATTRIBUTE_NUMERIC_BINS,
        )?;
        attributes.truncate(ATTRIBUTES_LISTED);
        Ok(TrainingReport {
            cross_validation: trained.cross_validation.clone(),
            threshold: options.threshold,
            confusion: metrics::confusion(predicted, test_labels, options.threshold),
            calibration: metrics::calibration(predicted, test_labels, CALIBRATION_BINS),
            lift_by_decile: metrics::lift_by_decile(predicted, test_labels),
            thresholds,
            points_model,
            attributes,
        })
    }
}

impl PointsEvaluation {
    /// A points model written to `file`, scored on the holdout's test rows.
    pub fn new(file: String, points: &PointsModel, holdout: &Holdout<'_>) -> Result<PointsEvaluation, DatasetError> {
        let totals = points.score_rows(holdout.test_table, &holdout.test)?;
        Ok(PointsEvaluation { file, auc: metrics::roc_auc(&totals, &holdout.test_labels) })
    }
}

/// One score of a model on every lead of the data, with its tier when the model has tiers.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreColumn {
    pub name: String,
    pub values: Vec<f64>,
    pub tiers: Option<Vec<String>>,
    /// Whether the values are probabilities in points of 0-100 (a predictive score) rather than
    /// points.
    pub probabilities: bool,
}

impl ScoreColumn {
    /// The values as probabilities of conversion: a predictive score's divided by 100, points
    /// calibrated on the outcomes ([`calibrate`]).
    pub fn probabilities(&self, labels: &[bool]) -> Vec<f64> {
        if self.probabilities {
            self.values.iter().map(|v| v / 100.0).collect()
        } else {
            calibrate(&self.values, labels)
        }
    }
}

/// Probabilities from points: a logistic regression on the one score (Platt scaling); the base
/// rate for every lead when it cannot be fitted (one outcome only).
pub fn calibrate(values: &[f64], labels: &[bool]) -> Vec<f64> {
    let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
    let spread = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len().max(1) as f64).sqrt();
    let scale = if spread > 0.0 { spread } else { 1.0 };
    let features = Features {
        n_rows: values.len(),
        n_features: 1,
        names: vec!["score".to_string()],
        values: values.iter().map(|v| (v - mean) / scale).collect(),
    };
    match LogisticRegression::fit(&features, labels, 1e6, 100) {
        Ok(model) => model.predict_proba(&features),
        Err(_) => {
            let rate = labels.iter().filter(|l| **l).count() as f64 / labels.len().max(1) as f64;
            vec![rate; values.len()]
        }
    }
}

/// One score's figures on past leads.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreEvaluation {
    pub auc: Option<f64>,
    pub log_loss: f64,
    /// Of which probabilities the log loss is.
    pub log_loss_note: &'static str,
    pub distribution: Quantiles,
    pub lift_by_decile: Vec<Decile>,
    /// Conversion per tier, tiers in order of first appearance (when the score has tiers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tiers: Option<Vec<TierConversion>>,
}

/// Quantiles of a score's values (`None` when there is none).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quantiles {
    pub min: Option<f64>,
    pub p25: Option<f64>,
    pub median: Option<f64>,
    pub p75: Option<f64>,
    pub max: Option<f64>,
}

/// The leads of one tier and how many converted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TierConversion {
    /// The tier's label (empty for leads without a tier).
    pub tier: String,
    pub leads: usize,
    pub conversions: usize,
    pub rate: f64,
}

impl ScoreEvaluation {
    /// AUC, log loss, distribution and conversion per tier of one score.
    pub fn new(column: &ScoreColumn, labels: &[bool]) -> ScoreEvaluation {
        let probabilities = column.probabilities(labels);
        let mut sorted = column.values.clone();
        sorted.sort_by(f64::total_cmp);
        let quantile = |q: f64| sorted.get(((sorted.len().max(1) - 1) as f64 * q).round() as usize).copied();
        ScoreEvaluation {
            auc: metrics::roc_auc(&column.values, labels),
            log_loss: metrics::log_loss(&probabilities, labels),
            log_loss_note: if column.probabilities {
                "of the model's probabilities"
            } else {
                "after a one-variable logistic calibration of the points"
            },
            distribution: Quantiles {
                min: quantile(0.0),
                p25: quantile(0.25),
                median: quantile(0.5),
                p75: quantile(0.75),
                max: quantile(1.0),
            },
            lift_by_decile: metrics::lift_by_decile(&column.values, labels),
            tiers: column.tiers.as_ref().map(|tiers| conversion_per_tier(tiers, labels)),
        }
    }
}

/// Leads and conversions of each tier, in order of first appearance.
fn conversion_per_tier(tiers: &[String], labels: &[bool]) -> Vec<TierConversion> {
    let mut per_tier: Vec<TierConversion> = Vec::new();
    for (tier, converted) in tiers.iter().zip(labels) {
        let index = match per_tier.iter().position(|t| &t.tier == tier) {
            Some(index) => index,
            None => {
                per_tier.push(TierConversion { tier: tier.clone(), leads: 0, conversions: 0, rate: 0.0 });
                per_tier.len() - 1
            }
        };
        per_tier[index].leads += 1;
        per_tier[index].conversions += usize::from(*converted);
    }
    for tier in &mut per_tier {
        tier.rate = tier.conversions as f64 / tier.leads as f64;
    }
    per_tier
}

/// Every score of a model (or two) against the outcomes of past leads.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Backtest {
    /// The model, as the caller names it (its file).
    pub model: String,
    pub leads: usize,
    pub conversions: usize,
    /// Each score's figures, by score name.
    pub scores: BTreeMap<String, ScoreEvaluation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compare: Option<Comparison>,
}

/// A second model on the same leads.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub model: String,
    pub scores: BTreeMap<String, ScoreEvaluation>,
    /// The first score of the first model against the first of the second (`None` when the
    /// bootstrap cannot run: one outcome only, a NaN score, no rounds).
    pub auc_difference: Option<AucDifference>,
}

/// The AUC of one score minus another's, with a 95% stratified bootstrap interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AucDifference {
    pub first: String,
    pub second: String,
    pub difference: f64,
    pub lower_95: f64,
    pub upper_95: f64,
    pub rounds: usize,
    pub seed: u64,
}

fn evaluate_scores(columns: &[ScoreColumn], labels: &[bool]) -> BTreeMap<String, ScoreEvaluation> {
    columns.iter().map(|c| (c.name.clone(), ScoreEvaluation::new(c, labels))).collect()
}

impl Backtest {
    /// The scores of `model` (one column per score) against `labels`.
    pub fn new(model: String, columns: &[ScoreColumn], labels: &[bool]) -> Backtest {
        Backtest {
            model,
            leads: labels.len(),
            conversions: labels.iter().filter(|l| **l).count(),
            scores: evaluate_scores(columns, labels),
            compare: None,
        }
    }

    /// Adds a second model's scores, and the AUC difference of the first score of each, from
    /// `rounds` bootstrap resamples drawn with `seed`.
    pub fn compare(
        &mut self,
        model: String,
        first: &ScoreColumn,
        second: &[ScoreColumn],
        labels: &[bool],
        rounds: usize,
        seed: u64,
    ) {
        let auc_difference = second.first().and_then(|other| {
            let (difference, lower_95, upper_95) =
                metrics::bootstrap_auc_difference(&first.values, &other.values, labels, rounds, seed)?;
            Some(AucDifference {
                first: first.name.clone(),
                second: other.name.clone(),
                difference,
                lower_95,
                upper_95,
                rounds,
                seed,
            })
        });
        self.compare = Some(Comparison { model, scores: evaluate_scores(second, labels), auc_difference });
    }

    /// The JSON object, keys in alphabetical order at every level.
    pub fn to_json(&self) -> serde_json::Value {
        sorted_json(self)
    }
}

/// A value as JSON with its objects' keys sorted (serde_json's map keeps them sorted).
fn sorted_json(value: &impl Serialize) -> serde_json::Value {
    // These types hold only numbers, strings, sequences and maps with string keys, which always
    // convert; a failure would be a bug in them, shown rather than hidden.
    serde_json::to_value(value).unwrap_or_else(|e| serde_json::Value::String(format!("unserialisable: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_per_tier_in_order_of_appearance() {
        let tiers: Vec<String> = ["hot", "cold", "hot", "", "cold"].iter().map(|t| t.to_string()).collect();
        let per_tier = conversion_per_tier(&tiers, &[true, false, false, true, false]);
        let got: Vec<(&str, usize, usize, f64)> =
            per_tier.iter().map(|t| (t.tier.as_str(), t.leads, t.conversions, t.rate)).collect();
        assert_eq!(got, [("hot", 2, 1, 0.5), ("cold", 2, 0, 0.0), ("", 1, 1, 1.0)]);
    }

    #[test]
    fn calibration_ranks_as_the_points_and_falls_back_to_the_base_rate() {
        let values = [0.0, 10.0, 20.0, 30.0, 40.0, 50.0];
        let labels = [false, false, true, false, true, true];
        let p = calibrate(&values, &labels);
        assert!(p.windows(2).all(|w| w[0] < w[1]), "{p:?}");
        assert_eq!(calibrate(&values, &[true; 6]), [1.0; 6]);
    }

    #[test]
    fn json_keys_are_sorted_and_optional_parts_left_out() {
        let column = ScoreColumn { name: "fit".into(), values: vec![1.0, 2.0, 3.0], tiers: None, probabilities: false };
        let backtest = Backtest::new("m.toml".into(), std::slice::from_ref(&column), &[false, true, true]);
        let json = backtest.to_json();
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["conversions", "leads", "model", "scores"]);
        let score = json["scores"]["fit"].as_object().unwrap();
        assert_eq!(
            score.keys().collect::<Vec<_>>(),
            ["auc", "distribution", "lift_by_decile", "log_loss", "log_loss_note"]
        );
        assert_eq!(json["scores"]["fit"]["distribution"]["median"], 2.0);
    }
}
