//! leadscore-predict: learning lead scores from outcomes.
//!
//! Pure computation on in-memory data (no clock; randomness only from an explicit seed), so that
//! training is reproducible and testable.
//!
//! # Layout
//! - [`metrics`]: ROC AUC, log loss, Brier score, calibration, lift and gain by decile.
//! - [`dataset`]: a table of past leads with an outcome, typed columns, encoding into features.
//! - [`logistic`]: L2-regularised logistic regression.
//! - [`gbdt`]: gradient-boosted decision trees (histogram boosting, leaf-wise as LightGBM or symmetric as CatBoost)
//!   on table columns; [`target_stats`]: CatBoost's ordered target statistics of categorical columns.
//! - [`random`]: the seeded generator and stratified splits.
//! - [`threshold`]: threshold advice (capacity, best F1, best expected value).
//! - [`points`]: a logistic regression as an editable leadscore model of whole points; conversion by attribute value.
//! - [`predictive`]: the model file `leadscore train` writes, and that model scoring single leads (a predictive
//!   score of a scoring model).
//! - [`report`]: a self-contained HTML evaluation report with inline SVG charts (ROC, calibration, lift, scores).
//! - [`training`]: the training pipeline of `leadscore train` and the service's retraining: holdout, fit of either
//!   algorithm, choice by cross-validation, points model.
//! - [`evaluation`]: what a model did on leads with known outcomes, as serialisable types: a trained model on its
//!   held-out leads, and any model's scores backtested (calibration, conversion per tier, comparison).
//!
//! Cells read as numbers and booleans by the core's rule ([`leadscore_core::value::read_number`],
//! [`leadscore_core::value::read_bool`]), as the scoring rules read them.

pub mod dataset;
pub mod evaluation;
pub mod gbdt;
pub mod logistic;
pub mod metrics;
pub mod points;
pub mod predictive;
pub mod random;
pub mod report;
pub mod target_stats;
pub mod threshold;
pub mod training;
