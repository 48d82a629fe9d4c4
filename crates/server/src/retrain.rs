//! Retraining a predictive model on the workspace's own outcomes: leads whose stage reached
//! `customer` (converted) or `lost` (did not), learned from their attributes.
//!
//! `leadscore train`'s training (`leadscore_predict::training`: a logistic regression with C = 1,
//! or boosted trees with the default parameters), measured on a stratified 20% held out, then
//! fitted again on every labelled lead: the saved model uses all the outcomes there are, and the
//! AUC says how well the method does on leads it did not see. This module turns the leads into a
//! table and the result into a model to store. Pure computation, so the caller runs it off the
//! async runtime.

use std::collections::BTreeSet;

use leadscore_core::Predictor as _;
use leadscore_predict::dataset::Table;
use leadscore_predict::evaluation::{Evaluation, OutcomeCounts, Refit};
use leadscore_predict::metrics;
use leadscore_predict::predictive::{Algorithm, PredictiveModel, SavedModel};
use leadscore_predict::report::{self, ReportInput};
use leadscore_predict::training::{self, Holdout, TrainingOptions};
use leadscore_store::predictive::LabelledLead;
use serde_json::Value;

/// Leads of each outcome a retrain needs at least.
pub const MIN_PER_OUTCOME: usize = 20;
/// The share of the labelled leads held out to measure the AUC.
const HOLDOUT: f64 = 0.2;
/// Attributes that identify a lead rather than describe it: never learned from by default.
const IDENTITIES: &[&str] = &["email"];
/// The outcome column of the table built from the leads (never an attribute: it starts with a space).
const OUTCOME: &str = " outcome";

/// The inverse regularisation of a logistic regression, as `leadscore train`'s default.
const LOGISTIC_C: f64 = 1.0;

/// Why a model could not be trained: the caller's data or choices, never a fault.
#[derive(Debug, thiserror::Error)]
pub enum RetrainError {
    #[error(
        "retraining needs at least {MIN_PER_OUTCOME} leads in stage `customer` and {MIN_PER_OUTCOME} in stage `lost`; \
         the workspace has {customers} and {lost}"
    )]
    NotEnoughOutcomes { customers: usize, lost: usize },
    #[error("no field to learn from: none of {0} is set on a lead in stage `customer` or `lost`")]
    NoFields(String),
    #[error("training failed: {0}")]
    Failed(String),
}

/// A trained model, ready to store.
pub struct Retrained {
    /// The file, as `leadscore train` writes it.
    pub body: String,
    pub model: PredictiveModel,
    pub algorithm: &'static str,
    /// The fields it reads (those of the request that some labelled lead has).
    pub fields: Vec<String>,
    pub customers: usize,
    pub lost: usize,
    /// The AUC on the held-out leads (`None` if it cannot be computed).
    pub holdout_auc: Option<f64>,
}

/// Counts the outcomes and refuses too few of either.
pub fn check_counts(outcomes: &[LabelledLead]) -> Result<(usize, usize), RetrainError> {
    let customers = outcomes.iter().filter(|o| o.converted).count();
    let lost = outcomes.len() - customers;
    if customers < MIN_PER_OUTCOME || lost < MIN_PER_OUTCOME {
        return Err(RetrainError::NotEnoughOutcomes { customers, lost });
    }
    Ok((customers, lost))
}

/// Every attribute key set on a labelled lead, but identities, sorted.
pub fn attribute_keys(outcomes: &[LabelledLead]) -> Vec<String> {
    let keys: BTreeSet<&String> = outcomes
        .iter()
        .flat_map(|o| o.attributes.iter().filter(|(_, v)| !v.is_null()).map(|(k, _)| k))
        .filter(|k| !IDENTITIES.contains(&k.as_str()))
        .collect();
    keys.into_iter().cloned().collect()
}

/// Trains `algorithm` on the outcomes' `fields`; `name` names the model in messages.
pub fn train(
    outcomes: &[LabelledLead],
    fields: &[String],
    algorithm: Algorithm,
    seed: u64,
    name: &str,
) -> Result<Retrained, RetrainError> {
    let (customers, lost) = check_counts(outcomes)?;
    let asked = fields.join("`, `");
    // A field no labelled lead has would be a column of nothing: leave it out.
    let fields: Vec<String> = fields
        .iter()
        .filter(|f| outcomes.iter().any(|o| o.attributes.get(f.as_str()).is_some_and(|v| !v.is_null())))
        .cloned()
        .collect();
    if fields.is_empty() {
        return Err(RetrainError::NoFields(format!("`{asked}`")));
    }
    let failed = |e: &dyn std::fmt::Display| RetrainError::Failed(e.to_string());
    let table = table(outcomes, &fields).map_err(|e| failed(&e))?;
    let labels: Vec<bool> = outcomes.iter().map(|o| o.converted).collect();
    let features: Vec<&str> = fields.iter().map(String::as_str).collect();

    let holdout = Holdout::split(&table, &labels, HOLDOUT, seed);
    let options = TrainingOptions { algorithm: Some(algorithm), c: LOGISTIC_C, seed };
    let trained =
        training::train(&table, &labels, &features, &holdout, &options, &mut |_| {}).map_err(|e| failed(&e))?;
    let all: Vec<usize> = (0..labels.len()).collect();
    let fitted = training::fit(algorithm, &table, &features, &all, &labels, LOGISTIC_C).map_err(|e| failed(&e))?;
    let mut evaluation = Evaluation::new(&trained, &holdout);
    evaluation.refit =
        Some(Refit { origin: "retrain", refit_rows: all.len(), leads: OutcomeCounts { customers, lost } });
    let holdout_auc = evaluation.auc;
    let saved = SavedModel::new("stage", Some("customer"), fields.clone(), seed, fitted, evaluation.to_json());
    let body = serde_json::to_string(&saved).map_err(|e| failed(&e))?;
    let algorithm = saved.fitted.name();
    let model = PredictiveModel::new(saved, name).map_err(|e| failed(&e))?;
    Ok(Retrained { body, model, algorithm, fields, customers, lost, holdout_auc })
}

/// The table of the labelled leads: one row per lead, one column per field, and the outcome. Goes
/// through JSON Lines so that attribute values read exactly as in a `.jsonl` training file.
fn table(outcomes: &[LabelledLead], fields: &[String]) -> Result<Table, leadscore_predict::dataset::DatasetError> {
    let mut lines = Vec::new();
    for outcome in outcomes {
        // Every line has every column (null when missing), so the column order is the same.
        let mut row = serde_json::Map::new();
        for field in fields {
            // As the text a predictive score reads from the lead (`4.0` as `4`), so that a
            // category learned here is the one met when scoring.
            let text = outcome.attributes.get(field).map(leadscore_core::Value::from_json);
            let text = text.as_ref().and_then(|v| v.as_text()).map(|t| Value::String(t.into_owned()));
            row.insert(field.clone(), text.unwrap_or(Value::Null));
        }
        row.insert(OUTCOME.to_string(), Value::Bool(outcome.converted));
        lines.extend_from_slice(Value::Object(row).to_string().as_bytes());
        lines.push(b'\n');
    }
    Table::from_json_lines_reader(lines.as_slice(), "the workspace's leads")
}

/// The evaluation report `leadscore evaluate --report` draws (`leadscore_predict::report`), of
/// `model` measured on the workspace's labelled leads as they are now: each lead's probability
/// against its outcome. `None` unless both outcomes are among them. The leads a model was trained
/// on are among them too, so its figures can be better than on new leads; the figures measured on
/// held-out leads are those its file records.
pub fn evaluation_report(
    title: &str,
    model: &PredictiveModel,
    outcomes: &[LabelledLead],
) -> Result<Option<String>, RetrainError> {
    let customers = outcomes.iter().filter(|o| o.converted).count();
    if customers == 0 || customers == outcomes.len() {
        return Ok(None);
    }
    let failed = |e: &dyn std::fmt::Display| RetrainError::Failed(e.to_string());
    let fields = model.fields().to_vec();
    let table = table(outcomes, &fields).map_err(|e| failed(&e))?;
    let rows: Vec<usize> = (0..outcomes.len()).collect();
    let probabilities = model.saved().fitted.predict_table(&table, &rows).map_err(|e| failed(&e))?;
    let labels: Vec<bool> = outcomes.iter().map(|o| o.converted).collect();
    let figure = |value: f64| if value.is_finite() { format!("{value:.3}") } else { "undefined".to_string() };
    let summary = vec![
        ("leads".to_string(), outcomes.len().to_string()),
        ("conversions (customer)".to_string(), customers.to_string()),
        ("AUC".to_string(), metrics::roc_auc(&probabilities, &labels).map_or("undefined".to_string(), figure)),
        ("log loss".to_string(), figure(metrics::log_loss(&probabilities, &labels))),
        ("Brier score".to_string(), figure(metrics::brier(&probabilities, &labels))),
    ];
    let subtitle = format!(
        "{} on the workspace's {} leads in stage `customer` or `lost`, fields {}",
        model.saved().fitted.name(),
        outcomes.len(),
        fields.join(", ")
    );
    Ok(Some(report::html(&ReportInput {
        title,
        subtitle: &subtitle,
        scores: &probabilities,
        labels: &labels,
        probabilities: Some(&probabilities),
        summary,
    })))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn outcome(converted: bool, i: usize) -> LabelledLead {
        let mut attributes = serde_json::Map::new();
        // Customers are older and mostly managers; a few exceptions keep the classes overlapping.
        let age = if converted { 50 + i % 10 } else { 25 + i % 10 } + if i.is_multiple_of(7) { 20 } else { 0 };
        attributes.insert("age".into(), json!(age));
        attributes.insert("job".into(), json!(if converted != i.is_multiple_of(5) { "manager" } else { "student" }));
        attributes.insert("email".into(), json!(format!("p{i}@example.com")));
        LabelledLead { converted, attributes }
    }

    #[test]
    fn learns_from_outcomes_and_measures_on_held_out_leads() {
        let outcomes: Vec<LabelledLead> = (0..60).map(|i| outcome(i % 2 == 0, i)).collect();
        let keys = attribute_keys(&outcomes);
        assert_eq!(keys, ["age", "job"], "identities are not learned from");
        for algorithm in [Algorithm::Logistic, Algorithm::Gbdt] {
            let trained = train(&outcomes, &keys, algorithm, 7, "conversion").unwrap();
            assert_eq!((trained.customers, trained.lost), (30, 30));
            assert!(trained.holdout_auc.is_some_and(|auc| auc > 0.5), "{:?}", trained.holdout_auc);
            let saved = SavedModel::from_json(trained.body.as_bytes(), "conversion").unwrap();
            assert_eq!(saved.features, ["age", "job"]);
        }
    }

    #[test]
    fn a_stored_model_is_reported_on_the_leads_with_both_outcomes_only() {
        let outcomes: Vec<LabelledLead> = (0..60).map(|i| outcome(i % 2 == 0, i)).collect();
        let trained = train(&outcomes, &attribute_keys(&outcomes), Algorithm::Logistic, 7, "conversion").unwrap();
        let page = evaluation_report("conversion v1", &trained.model, &outcomes).unwrap().expect("both outcomes");
        assert!(page.starts_with("<!DOCTYPE html>") && page.contains("<title>conversion v1</title>"), "{page}");
        assert!(page.contains("<th scope=\"row\">leads</th><td>60</td>"), "{page}");
        assert!(page.contains("<svg") && !page.contains("<script"), "charts, no script");
        let customers_only: Vec<LabelledLead> = outcomes.into_iter().filter(|o| o.converted).collect();
        assert_eq!(evaluation_report("c", &trained.model, &customers_only).unwrap(), None);
    }

    #[test]
    fn categories_learned_from_json_numbers_are_met_when_scoring() {
        // `rating` mixes numbers and text, so it is a category; 4.0 must be the category `4`
        // that scoring a lead with the number 4.0 looks up.
        let outcomes: Vec<LabelledLead> = (0..60)
            .map(|i| {
                let converted = i % 2 == 0;
                let mut attributes = serde_json::Map::new();
                let rating = if converted != (i % 10 == 1) { json!(4.0) } else { json!("low") };
                attributes.insert("rating".into(), rating);
                LabelledLead { converted, attributes }
            })
            .collect();
        let trained = train(&outcomes, &["rating".to_string()], Algorithm::Logistic, 7, "c").unwrap();
        use leadscore_core::Predictor;
        let p = |value: leadscore_core::Value| trained.model.predict(&[&value], None);
        let (four, low, unknown) = (
            p(leadscore_core::Value::from_json(&json!(4.0))),
            p(leadscore_core::Value::text("low")),
            p(leadscore_core::Value::Missing),
        );
        assert!(four > unknown + 0.2 && low < unknown - 0.2, "4.0: {four}, low: {low}, unknown: {unknown}");
    }

    #[test]
    fn too_few_outcomes_and_absent_fields_are_refused() {
        let few: Vec<LabelledLead> = (0..30).map(|i| outcome(i < 25, i)).collect();
        let error = train(&few, &["age".to_string()], Algorithm::Logistic, 7, "c").err().unwrap();
        assert!(matches!(error, RetrainError::NotEnoughOutcomes { customers: 25, lost: 5 }), "{error}");
        let outcomes: Vec<LabelledLead> = (0..60).map(|i| outcome(i % 2 == 0, i)).collect();
        let error = train(&outcomes, &["nothing".to_string()], Algorithm::Logistic, 7, "c").err().unwrap();
        assert!(matches!(error, RetrainError::NoFields(_)), "{error}");
    }
}
