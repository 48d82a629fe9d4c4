//! The encoder and the logistic regression against scikit-learn on a slice of UCI Bank Marketing (CC BY 4.0).
//!
//! The fixture in `tests/fixtures/bank/` was made by `make_fixture.py` there (run it again to regenerate): 3,000
//! rows with a few cells blanked, a stratified split as explicit row lists, and scikit-learn's test-set
//! probabilities for `ColumnTransformer(median imputer + indicator + StandardScaler | OneHotEncoder(ignore) |
//! booleans) + LogisticRegression(C=1)` solved to its optimum. This test needs no Python.

use std::collections::HashMap;

use leadscore_predict::dataset::{ColumnKind, Encoder, Table};
use leadscore_predict::logistic::{LogisticRegression, Model};
use serde::Deserialize;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bank");

#[derive(Deserialize)]
struct Split {
    train: Vec<usize>,
    test: Vec<usize>,
}

#[derive(Deserialize)]
struct Expected {
    test_auc: f64,
    intercept: f64,
    coefficients: HashMap<String, f64>,
    test_proba: Vec<f64>,
}

fn read_json<T: for<'de> Deserialize<'de>>(name: &str) -> T {
    let text = std::fs::read_to_string(format!("{FIXTURE}/{name}")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// ROC AUC by the rank-sum (Mann–Whitney) formula, ties counted one half.
fn roc_auc(scores: &[f64], labels: &[bool]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let mid_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += mid_rank * order[i..=j].iter().filter(|&&k| labels[k]).count() as f64;
        i = j + 1;
    }
    let pos = labels.iter().filter(|&&y| y).count() as f64;
    let neg = labels.len() as f64 - pos;
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

/// The logistic regression fitted on the fixture's training rows, with its probabilities for the test rows.
struct FittedFixture {
    model: Model,
    proba: Vec<f64>,
    test_labels: Vec<bool>,
}

fn fit_fixture() -> (Table, Encoder, FittedFixture) {
    let path = format!("{FIXTURE}/bank-slice.csv");
    let table = Table::from_csv_reader(std::fs::File::open(&path).unwrap(), &path).unwrap();
    let split: Split = read_json("split.json");
    let labels = table.target("y", None).unwrap();
    let features: Vec<&str> = table.columns().iter().map(String::as_str).filter(|&c| c != "y").collect();
    let encoder = Encoder::fit(&table, &features, &split.train).unwrap();
    let train = encoder.transform(&table, &split.train).unwrap();
    let test = encoder.transform(&table, &split.test).unwrap();
    let train_labels: Vec<bool> = split.train.iter().map(|&r| labels[r]).collect();
    let test_labels: Vec<bool> = split.test.iter().map(|&r| labels[r]).collect();
    let model = LogisticRegression::fit(&train, &train_labels, 1.0, 100).unwrap();
    let proba = model.predict_proba(&test);
    (table, encoder, FittedFixture { model, proba, test_labels })
}

#[test]
fn column_kinds_match_the_fixture_pipeline() {
    let path = format!("{FIXTURE}/bank-slice.csv");
    let table = Table::from_csv_reader(std::fs::File::open(&path).unwrap(), &path).unwrap();
    assert_eq!(table.n_rows(), 3000);
    let kinds: HashMap<&str, ColumnKind> =
        table.columns().iter().map(String::as_str).zip(table.kinds().iter().copied()).collect();
    for c in ["age", "balance", "day", "campaign", "pdays", "previous"] {
        assert_eq!(kinds[c], ColumnKind::Numeric, "{c}");
    }
    for c in ["job", "marital", "education", "contact", "month", "poutcome"] {
        assert_eq!(kinds[c], ColumnKind::Categorical, "{c}");
    }
    for c in ["default", "housing", "loan", "y"] {
        assert_eq!(kinds[c], ColumnKind::Boolean, "{c}");
    }
}

#[test]
fn probabilities_auc_and_coefficients_match_sklearn() {
    let expected: Expected = read_json("expected.json");
    let (_, encoder, fitted) = fit_fixture();
    let FittedFixture { model, proba, test_labels } = fitted;

    // Same features, by name (scikit-learn orders them by transformer, the encoder by column).
    let mut ours: Vec<&str> = encoder.feature_names.iter().map(String::as_str).collect();
    let mut theirs: Vec<&str> = expected.coefficients.keys().map(String::as_str).collect();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs);

    assert_eq!(proba.len(), expected.test_proba.len());
    let max_gap = proba.iter().zip(&expected.test_proba).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    let auc = roc_auc(&proba, &test_labels);
    let sklearn_auc = roc_auc(&expected.test_proba, &test_labels);
    eprintln!(
        "iterations {}, max |p - p_sklearn| {max_gap:e}, AUC {auc:.6} vs sklearn {:.6} (recomputed {sklearn_auc:.6}), \
         intercept {:.8} vs {:.8}",
        model.iterations, expected.test_auc, model.intercept, expected.intercept
    );
    // Observed: about 2e-11 (both sides solve the same objective to its optimum).
    assert!(max_gap <= 1e-9, "max probability gap {max_gap:e}");
    assert!((sklearn_auc - expected.test_auc).abs() <= 1e-12, "the local AUC helper disagrees with sklearn's");
    assert!((auc - expected.test_auc).abs() <= 1e-9, "AUC {auc} vs {}", expected.test_auc);
    assert!((model.intercept - expected.intercept).abs() <= 1e-7, "intercept {}", model.intercept);
    for (name, w) in model.named_coefficients() {
        let want = expected.coefficients[name];
        assert!((w - want).abs() <= 1e-7, "coefficient {name}: {w} vs {want}");
    }
}

#[test]
fn a_saved_encoder_and_model_score_the_same() {
    let (table, encoder, fitted) = fit_fixture();
    let split: Split = read_json("split.json");
    let encoder: Encoder = serde_json::from_str(&serde_json::to_string(&encoder).unwrap()).unwrap();
    let model: Model = serde_json::from_str(&serde_json::to_string(&fitted.model).unwrap()).unwrap();
    let proba = model.predict_proba(&encoder.transform(&table, &split.test).unwrap());
    let max_gap = proba.iter().zip(&fitted.proba).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(max_gap <= 1e-14, "{max_gap:e}");
}
