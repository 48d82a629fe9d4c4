//! The file `leadscore train` writes, and that file used as a score: one lead at a time, from the
//! lead's field values, with the effect of each field for the explanation.
//!
//! A lead's fields arrive as [`leadscore_core::Value`]s (from a CSV cell, a JSON attribute or the
//! service's store), so encoding here mirrors [`Encoder::transform`] and the booster's binning on
//! one record, without a table (a date column's values are RFC 3339 times or `YYYY-MM-DD` dates,
//! read as days). A value that does not read as its column's kind (text in a numeric column,
//! `maybe` in a boolean one) counts as unknown, as the scoring rules treat it, rather than
//! failing the lead; a category never seen in training is unknown too.
//!
//! A field's effect is the probability minus the probability with that field unknown: simple to
//! state, the same for both algorithms, and cheap (only the field's own terms or the trees that
//! split on it are recomputed).

use std::collections::HashMap;
use std::path::Path;

use leadscore_core::{Predictor, Value};
use serde::{Deserialize, Serialize};

use crate::dataset::{ColumnEncoding, Encoder, MISSING_CATEGORY, Table};
use crate::gbdt::{Booster, Child, FeatureBins, GbdtError, Tree};
use crate::logistic::{self, sigmoid};

/// The `kind` of every file `leadscore train` writes.
pub const KIND: &str = "leadscore-predictive-model";
/// The file format's version.
pub const VERSION: u32 = 1;

/// A trained model as saved to (and read from) its JSON file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedModel {
    pub kind: String,
    pub version: u32,
    /// The outcome column it was trained on, and the value counted as a conversion.
    pub target: String,
    pub positive: Option<String>,
    /// The columns it reads, in training order.
    pub features: Vec<String>,
    pub seed: u64,
    #[serde(flatten)]
    pub fitted: Fitted,
    /// What training measured on held-out leads (an `evaluation::Evaluation` as written
    /// by the version that trained it; shown, never used to predict).
    #[serde(default)]
    pub evaluation: serde_json::Value,
}

/// The algorithm to fit.
// Its JSON spelling is the `algorithm` of a model file and of a retrain's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    // L2-regularised logistic regression: interpretable, and the source of a points model.
    Logistic,
    // Histogram gradient-boosted trees: usually more accurate.
    Gbdt,
}

impl Algorithm {
    /// Its name as files, answers and reports spell it.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Logistic => "logistic",
            Algorithm::Gbdt => "gbdt",
        }
    }
}

/// The fitted model of either algorithm (made by `training::fit`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "algorithm", rename_all = "snake_case")]
pub enum Fitted {
    Logistic { encoder: Encoder, model: logistic::Model },
    Gbdt { booster: Booster },
}

impl Fitted {
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Fitted::Logistic { .. } => Algorithm::Logistic,
            Fitted::Gbdt { .. } => Algorithm::Gbdt,
        }
    }

    pub fn name(&self) -> &'static str {
        self.algorithm().name()
    }

    /// The `n` strongest features, strongest first: standardised coefficients (signed) of a
    /// logistic regression, total split gain of boosted trees.
    pub fn strongest_features(&self, n: usize) -> Vec<(String, f64)> {
        let mut weights: Vec<(String, f64)> = match self {
            Fitted::Logistic { model, .. } => model.named_coefficients().map(|(n, w)| (n.to_string(), w)).collect(),
            Fitted::Gbdt { booster } => booster.feature_importance(),
        };
        weights.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        weights.truncate(n);
        weights
    }

    /// The probability of conversion of the table rows `rows`.
    pub fn predict_table(&self, table: &Table, rows: &[usize]) -> Result<Vec<f64>, PredictiveError> {
        Ok(match self {
            Fitted::Logistic { encoder, model } => model.predict_proba(&encoder.transform(table, rows)?),
            Fitted::Gbdt { booster } => booster.predict_proba(table, rows)?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PredictiveError {
    #[error("cannot read {file}: {source}")]
    Read { file: String, source: std::io::Error },
    #[error("{file}: not a model written by `leadscore train` ({detail})")]
    NotAModel { file: String, detail: String },
    #[error("{file}: model file version {found} is newer than this leadscore reads ({VERSION}); upgrade leadscore")]
    TooNew { file: String, found: u32 },
    #[error("{file}: the model is inconsistent: {detail}; train it again")]
    Inconsistent { file: String, detail: String },
    #[error(transparent)]
    Dataset(#[from] crate::dataset::DatasetError),
    #[error(transparent)]
    Gbdt(#[from] GbdtError),
}

impl SavedModel {
    /// A model of this format's kind and version; `evaluation` is what training measured (an
    /// `evaluation::Evaluation` as JSON).
    pub fn new(
        target: &str,
        positive: Option<&str>,
        features: Vec<String>,
        seed: u64,
        fitted: Fitted,
        evaluation: serde_json::Value,
    ) -> SavedModel {
        SavedModel {
            kind: KIND.to_string(),
            version: VERSION,
            target: target.to_string(),
            positive: positive.map(str::to_string),
            features,
            seed,
            fitted,
            evaluation,
        }
    }

    /// Reads a model from its JSON text; `file` names it in errors.
    pub fn from_json(text: &[u8], file: &str) -> Result<SavedModel, PredictiveError> {
        #[derive(Deserialize)]
        struct Header {
            kind: Option<String>,
            version: Option<u32>,
        }
        let not_a_model = |detail: String| PredictiveError::NotAModel { file: file.to_string(), detail };
        let header: Header = serde_json::from_slice(text).map_err(|e| not_a_model(e.to_string()))?;
        if header.kind.as_deref() != Some(KIND) {
            return Err(not_a_model(format!("its `kind` is not `{KIND}`")));
        }
        match header.version {
            Some(found) if found > VERSION => return Err(PredictiveError::TooNew { file: file.to_string(), found }),
            _ => {}
        }
        serde_json::from_slice(text).map_err(|e| not_a_model(e.to_string()))
    }

    /// Reads a model file.
    pub fn read(path: &Path) -> Result<SavedModel, PredictiveError> {
        let file = path.display().to_string();
        let text = std::fs::read(path).map_err(|source| PredictiveError::Read { file: file.clone(), source })?;
        SavedModel::from_json(&text, &file)
    }
}

/// A saved model ready to score single leads: implements [`leadscore_core::Predictor`].
#[derive(Debug)]
pub struct PredictiveModel {
    saved: SavedModel,
    fields: Vec<String>,
    scorer: Scorer,
}

#[derive(Debug)]
enum Scorer {
    Logistic {
        encoder: Encoder,
        model: logistic::Model,
        /// The features (columns of the coefficient vector) of each field.
        blocks: Vec<std::ops::Range<usize>>,
        /// For each categorical field, its value -> offset within its block.
        lookups: Vec<HashMap<String, usize>>,
    },
    Gbdt {
        booster: Booster,
        /// For each categorical field, its value -> bin.
        lookups: Vec<HashMap<String, u16>>,
        missing_bins: Vec<u16>,
        /// For each field, the trees that split on it (the only ones its effect changes).
        trees_of_field: Vec<Vec<usize>>,
    },
}

impl PredictiveModel {
    /// Checks a saved model once, so that predicting needs no more checks.
    pub fn new(saved: SavedModel, file: &str) -> Result<PredictiveModel, PredictiveError> {
        let inconsistent = |detail: String| PredictiveError::Inconsistent { file: file.to_string(), detail };
        let (fields, scorer) = match &saved.fitted {
            Fitted::Logistic { encoder, model } => {
                if model.coefficients.len() != encoder.n_features() {
                    return Err(inconsistent(format!(
                        "{} coefficients for {} encoded features",
                        model.coefficients.len(),
                        encoder.n_features()
                    )));
                }
                let mut blocks = Vec::with_capacity(encoder.columns.len());
                let mut lookups = Vec::with_capacity(encoder.columns.len());
                let mut start = 0;
                for encoding in &encoder.columns {
                    let width = match encoding {
                        ColumnEncoding::Numeric { missing_indicator, .. } => {
                            1 + usize::from(missing_indicator.is_some())
                        }
                        ColumnEncoding::Boolean { missing_indicator, .. } => 1 + usize::from(*missing_indicator),
                        ColumnEncoding::Categorical { categories, other, .. } => categories.len() + usize::from(*other),
                    };
                    blocks.push(start..start + width);
                    start += width;
                    lookups.push(match encoding {
                        ColumnEncoding::Categorical { categories, other, rare, .. } => {
                            let mut map: HashMap<String, usize> =
                                categories.iter().enumerate().map(|(i, v)| (v.clone(), i)).collect();
                            if *other {
                                map.extend(rare.iter().map(|v| (v.clone(), categories.len())));
                            }
                            map
                        }
                        _ => HashMap::new(),
                    });
                }
                if start != encoder.n_features() {
                    return Err(inconsistent(format!(
                        "the encoder's columns make {start} features, not {}",
                        encoder.n_features()
                    )));
                }
                let fields = encoder.columns.iter().map(|c| column_name(c).to_string()).collect();
                (fields, Scorer::Logistic { encoder: encoder.clone(), model: model.clone(), blocks, lookups })
            }
            Fitted::Gbdt { booster } => {
                let lookups = booster
                    .features
                    .iter()
                    .map(|f| match f {
                        FeatureBins::Categorical { categories, .. } => {
                            categories.iter().enumerate().map(|(i, v)| (v.clone(), i as u16)).collect()
                        }
                        _ => HashMap::new(),
                    })
                    .collect();
                let missing_bins: Vec<u16> = booster.features.iter().map(|f| f.missing_bin() as u16).collect();
                let mut trees_of_field = vec![Vec::new(); booster.features.len()];
                for (t, tree) in booster.trees.iter().enumerate() {
                    check_tree(tree, booster.features.len())
                        .map_err(|detail| inconsistent(format!("tree {t}: {detail}")))?;
                    for node in &tree.nodes {
                        if trees_of_field[node.feature].last() != Some(&t) {
                            trees_of_field[node.feature].push(t);
                        }
                    }
                }
                (
                    booster.features.iter().map(|f| f.column().to_string()).collect(),
                    Scorer::Gbdt { booster: booster.clone(), lookups, missing_bins, trees_of_field },
                )
            }
        };
        Ok(PredictiveModel { saved, fields, scorer })
    }

    /// Reads and checks a model file.
    pub fn read(path: &Path) -> Result<PredictiveModel, PredictiveError> {
        PredictiveModel::new(SavedModel::read(path)?, &path.display().to_string())
    }

    pub fn saved(&self) -> &SavedModel {
        &self.saved
    }

    /// The log-odds of conversion, and with `effects` each field's effect on the probability.
    fn log_odds(&self, values: &[&Value], effects: Option<&mut Vec<f64>>) -> f64 {
        match &self.scorer {
            Scorer::Logistic { encoder, model, blocks, lookups } => {
                let mut x = Vec::with_capacity(model.coefficients.len());
                for ((encoding, lookup), value) in encoder.columns.iter().zip(lookups).zip(values) {
                    encode(encoding, lookup, value, &mut x);
                }
                let term = |range: &std::ops::Range<usize>, x: &[f64]| -> f64 {
                    x[range.clone()].iter().zip(&model.coefficients[range.clone()]).map(|(a, b)| a * b).sum()
                };
                let z = model.intercept + x.iter().zip(&model.coefficients).map(|(a, b)| a * b).sum::<f64>();
                if let Some(effects) = effects {
                    let p = sigmoid(z);
                    effects.clear();
                    let mut unknown = Vec::new();
                    for ((encoding, lookup), block) in encoder.columns.iter().zip(lookups).zip(blocks) {
                        unknown.clear();
                        encode(encoding, lookup, &Value::Missing, &mut unknown);
                        let coefficients = &model.coefficients[block.clone()];
                        let without: f64 = unknown.iter().zip(coefficients).map(|(a, b)| a * b).sum();
                        effects.push(p - sigmoid(z - term(block, &x) + without));
                    }
                }
                z
            }
            Scorer::Gbdt { booster, lookups, missing_bins, trees_of_field } => {
                let mut bins: Vec<u16> = booster
                    .features
                    .iter()
                    .zip(lookups)
                    .zip(values)
                    .map(|((f, lookup), v)| bin(f, lookup, v))
                    .collect();
                let outputs: Vec<f64> = booster.trees.iter().map(|t| t.predict(&bins, missing_bins)).collect();
                let z = booster.init_score + outputs.iter().sum::<f64>();
                if let Some(effects) = effects {
                    let p = sigmoid(z);
                    effects.clear();
                    for (field, trees) in trees_of_field.iter().enumerate() {
                        if bins[field] == missing_bins[field] {
                            effects.push(0.0);
                            continue;
                        }
                        let kept = std::mem::replace(&mut bins[field], missing_bins[field]);
                        let change: f64 =
                            trees.iter().map(|&t| booster.trees[t].predict(&bins, missing_bins) - outputs[t]).sum();
                        bins[field] = kept;
                        effects.push(p - sigmoid(z + change));
                    }
                }
                z
            }
        }
    }
}

impl Predictor for PredictiveModel {
    fn fields(&self) -> &[String] {
        &self.fields
    }

    fn predict(&self, values: &[&Value], effects: Option<&mut Vec<f64>>) -> f64 {
        sigmoid(self.log_odds(values, effects))
    }
}

fn column_name(encoding: &ColumnEncoding) -> &str {
    match encoding {
        ColumnEncoding::Numeric { column, .. }
        | ColumnEncoding::Boolean { column, .. }
        | ColumnEncoding::Categorical { column, .. } => column,
    }
}

/// The value as the text a CSV cell would hold, or `None` when unknown.
fn present_text(value: &Value) -> Option<std::borrow::Cow<'_, str>> {
    let text = value.as_text()?;
    if leadscore_core::value::is_missing_token(&text) { None } else { Some(text) }
}

/// A number, or for a date column the days since 1970-01-01 of a date or time text.
fn number(value: &Value, date: bool) -> Option<f64> {
    let text = present_text(value)?;
    if date { crate::dataset::parse_date(text.trim()) } else { value.as_number() }
}

fn boolean(value: &Value) -> Option<bool> {
    present_text(value)?;
    value.as_bool()
}

/// Appends the features of one field, as [`Encoder::transform`] encodes a cell.
fn encode(encoding: &ColumnEncoding, lookup: &HashMap<String, usize>, value: &Value, out: &mut Vec<f64>) {
    match encoding {
        ColumnEncoding::Numeric { median, standardiser, missing_indicator, date, .. } => {
            let v = number(value, *date);
            out.push(standardiser.apply(v.unwrap_or(*median)));
            if let Some(s) = missing_indicator {
                out.push(s.apply(f64::from(u8::from(v.is_none()))));
            }
        }
        ColumnEncoding::Boolean { missing_indicator, .. } => {
            let v = boolean(value);
            out.push(f64::from(u8::from(v == Some(true))));
            if *missing_indicator {
                out.push(f64::from(u8::from(v.is_none())));
            }
        }
        ColumnEncoding::Categorical { categories, other, .. } => {
            let start = out.len();
            out.resize(start + categories.len() + usize::from(*other), 0.0);
            let text = present_text(value);
            if let Some(&i) = lookup.get(text.as_deref().map_or(MISSING_CATEGORY, |t| t.trim())) {
                out[start + i] = 1.0;
            }
        }
    }
}

/// The bin of one field's value, as the booster bins a cell; unknown values go to the missing bin.
fn bin(feature: &FeatureBins, lookup: &HashMap<String, u16>, value: &Value) -> u16 {
    let missing = feature.missing_bin() as u16;
    match feature {
        FeatureBins::Numeric { upper_bounds, date, .. } => {
            number(value, *date).map_or(missing, |v| crate::gbdt::numeric_bin(upper_bounds, v))
        }
        FeatureBins::Boolean { .. } => boolean(value).map_or(missing, u16::from),
        FeatureBins::Categorical { .. } => {
            present_text(value).and_then(|t| lookup.get(t.trim()).copied()).unwrap_or(missing)
        }
    }
}

/// Every index a tree holds is in range and every node is reached from the root at most once, so
/// that walking it neither panics nor loops.
fn check_tree(tree: &Tree, n_features: usize) -> Result<(), String> {
    let mut seen = vec![false; tree.nodes.len()];
    let mut stack = if tree.nodes.is_empty() { vec![] } else { vec![0] };
    if tree.nodes.is_empty() && tree.leaves.is_empty() {
        return Err("a tree without leaves".to_string());
    }
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut seen[i], true) {
            return Err(format!("node {i} is reached twice"));
        }
        let node = &tree.nodes[i];
        if node.feature >= n_features {
            return Err(format!("node {i} splits on feature {} of {n_features}", node.feature));
        }
        for child in [node.left, node.right] {
            match child {
                Child::Node(j) if j < tree.nodes.len() => stack.push(j),
                Child::Leaf(j) if j < tree.leaves.len() => {}
                _ => return Err(format!("node {i} points outside the tree")),
            }
        }
    }
    Ok(())
}
