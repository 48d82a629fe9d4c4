//! Predictive scores: a model learned from past outcomes that turns a lead's fields into a
//! probability of conversion, shown as a score of 0-100.
//!
//! The core only knows the [`Predictor`] interface: training, the saved file format and where a
//! model comes from (a file beside the model, a model stored by the service) belong to the
//! callers, which hand the compiler a [`PredictorLoader`]. That keeps the core free of I/O. The
//! same loader reads the list files a model names (`[lists.NAME] file = "..."`), for the same
//! reason.

use std::fmt::Debug;
use std::sync::Arc;

use crate::value::Value;

/// A trained model that scores single leads.
pub trait Predictor: Send + Sync + Debug {
    /// The lead fields the model reads; [`Predictor::predict`] receives their values in this order.
    fn fields(&self) -> &[String];

    /// The probability (0 to 1) that a lead with these field values converts. With `effects`,
    /// also writes each field's effect: the probability minus the probability the model gives
    /// when that field alone is unknown (one entry per field, in [`Predictor::fields`] order).
    fn predict(&self, values: &[&Value], effects: Option<&mut Vec<f64>>) -> f64;
}

/// Finds the predictive model a score names (`predictive = "..."` in a model file).
pub trait PredictorLoader {
    /// Loads the model `reference` names, or explains why it cannot (the message is shown at the
    /// reference's place in the model file).
    fn load(&self, reference: &str) -> Result<Arc<dyn Predictor>, String>;

    /// The text of the list file a `[lists.NAME]` table names (`file = "..."`), or why it cannot
    /// be read (shown at the `file` key). Only a caller with files beside the model, the command
    /// line, can read one; everywhere else the model must hold its entries.
    fn read_list(&self, path: &str) -> Result<String, String> {
        Err(format!(
            "list files cannot be read here, so `{path}` cannot be used: put its entries in the model with `entries = [\"...\"]`"
        ))
    }
}

/// A loader for models that use no predictive score: every reference is an error.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPredictors;

impl PredictorLoader for NoPredictors {
    fn load(&self, reference: &str) -> Result<Arc<dyn Predictor>, String> {
        Err(format!("cannot load the predictive model `{reference}` here: no predictive models are available"))
    }
}

impl<F> PredictorLoader for F
where
    F: Fn(&str) -> Result<Arc<dyn Predictor>, String>,
{
    fn load(&self, reference: &str) -> Result<Arc<dyn Predictor>, String> {
        self(reference)
    }
}
