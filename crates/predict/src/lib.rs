//! leadscore-predict: learning lead scores from outcomes.
//!
//! Pure computation on in-memory data (no clock; randomness only from an explicit seed), so that
//! training is reproducible and testable.
//!
//! # Layout
//! - [`metrics`]: ROC AUC, log loss, Brier score, calibration, lift and gain by decile.
//! - [`dataset`]: a table of past leads with an outcome, typed columns, encoding into features.
//! - [`logistic`]: L2-regularised logistic regression.
//! - [`random`]: the seeded generator and stratified splits.

pub mod dataset;
pub mod logistic;
pub mod metrics;
pub mod random;
