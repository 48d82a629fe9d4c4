//! Fitted models and metrics against committed scikit-learn fixtures, points against the model, predictive records.
//!
//! One test binary per crate (each file here is a module of it): a binary per file would link
//! the crate and its dependencies again for every file.

mod gbdt_bank;
mod logistic_vs_sklearn;
mod metrics_vs_sklearn;
mod points_vs_model;
mod predictive_records;
