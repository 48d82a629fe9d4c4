//! The boosted trees on the slice of UCI Bank Marketing (CC BY 4.0) in `tests/fixtures/bank/` (see
//! `logistic_vs_sklearn.rs`): trained on the fixture's training rows, scored on its test rows.

use leadscore_predict::dataset::Table;
use leadscore_predict::gbdt::{Booster, Params};
use leadscore_predict::metrics::roc_auc;
use serde::Deserialize;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bank");

#[derive(Deserialize)]
struct Split {
    train: Vec<usize>,
    test: Vec<usize>,
}

struct Data {
    table: Table,
    features: Vec<String>,
    split: Split,
    labels: Vec<bool>,
}

fn load() -> Data {
    let path = format!("{FIXTURE}/bank-slice.csv");
    let table = Table::from_csv_reader(std::fs::File::open(&path).unwrap(), &path).unwrap();
    let split: Split =
        serde_json::from_str(&std::fs::read_to_string(format!("{FIXTURE}/split.json")).unwrap()).unwrap();
    let labels = table.target("y", None).unwrap();
    let features = table.columns().iter().filter(|&c| c != "y").cloned().collect();
    Data { table, features, split, labels }
}

fn fit(data: &Data) -> Booster {
    let features: Vec<&str> = data.features.iter().map(String::as_str).collect();
    let train_labels: Vec<bool> = data.split.train.iter().map(|&r| data.labels[r]).collect();
    Booster::fit(&data.table, &features, &data.split.train, &train_labels, &Params::default()).unwrap()
}

#[test]
fn beats_a_trivial_bar_on_the_test_rows() {
    let data = load();
    let booster = fit(&data);
    let proba = booster.predict_proba(&data.table, &data.split.test).unwrap();
    let test_labels: Vec<bool> = data.split.test.iter().map(|&r| data.labels[r]).collect();
    let auc = roc_auc(&proba, &test_labels).unwrap();
    println!("gbdt test AUC on the bank slice: {auc:.4} ({} trees)", booster.trees.len());
    assert!(auc > 0.70, "test AUC {auc}");
    assert!(proba.iter().all(|p| (0.0..=1.0).contains(p)));
    let importance = booster.feature_importance();
    assert_eq!(importance.len(), data.features.len());
    assert!(importance.windows(2).all(|w| w[0].1 >= w[1].1));
    println!("top features by gain: {:?}", &importance[..5]);
}

#[test]
fn two_fits_are_identical() {
    let data = load();
    let (a, b) = (fit(&data), fit(&data));
    assert_eq!(a, b);
    let all: Vec<usize> = (0..data.table.n_rows()).collect();
    assert_eq!(a.predict_proba(&data.table, &all).unwrap(), b.predict_proba(&data.table, &all).unwrap());
}

#[test]
fn serde_round_trip_keeps_predictions() {
    let data = load();
    let booster = fit(&data);
    let json = serde_json::to_string(&booster).unwrap();
    let back: Booster = serde_json::from_str(&json).unwrap();
    let all: Vec<usize> = (0..data.table.n_rows()).collect();
    let before = booster.predict_proba(&data.table, &all).unwrap();
    let after = back.predict_proba(&data.table, &all).unwrap();
    // JSON keeps f64 to the last digit in print; parsing may differ in the last bit without `float_roundtrip`.
    for (x, y) in before.iter().zip(&after) {
        assert!((x - y).abs() < 1e-12, "{x} vs {y}");
    }
}

#[test]
fn symmetric_trees_beat_the_bar_whatever_the_threads() {
    let data = load();
    let features: Vec<&str> = data.features.iter().map(String::as_str).collect();
    let train_labels: Vec<bool> = data.split.train.iter().map(|&r| data.labels[r]).collect();
    let fit_with = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            Booster::fit(&data.table, &features, &data.split.train, &train_labels, &Params::symmetric()).unwrap()
        })
    };
    let booster = fit_with(1);
    assert_eq!(fit_with(2), booster);
    assert!(booster.trees.iter().all(|t| t.leaves.len().is_power_of_two() && t.leaves.len() <= 64));
    let proba = booster.predict_proba(&data.table, &data.split.test).unwrap();
    let test_labels: Vec<bool> = data.split.test.iter().map(|&r| data.labels[r]).collect();
    let auc = roc_auc(&proba, &test_labels).unwrap();
    println!("symmetric trees' test AUC on the bank slice: {auc:.4} ({} trees)", booster.trees.len());
    assert!(auc > 0.70, "test AUC {auc}");
}
