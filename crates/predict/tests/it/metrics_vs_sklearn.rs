//! Checks `leadscore_predict::metrics` against scikit-learn on a fixed input with many ties.
//!
//! The expected values were computed by scikit-learn and stored in `tests/fixtures/metrics/sklearn.json` by
//! `tests/fixtures/metrics/make_fixture.py` (its docstring says how it was run); this test needs no Python.
//! Inputs are read from their IEEE-754 bit patterns, so they are exactly what scikit-learn saw.

use leadscore_predict::metrics::{brier, calibration, log_loss, roc_auc};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    sklearn_version: String,
    labels: Vec<bool>,
    probabilities: Vec<f64>,
    probabilities_bits: Vec<u64>,
    coarse_scores: Vec<f64>,
    coarse_scores_bits: Vec<u64>,
    roc_auc: f64,
    roc_auc_coarse: f64,
    log_loss: f64,
    brier: f64,
    calibration: Vec<Curve>,
}

#[derive(Deserialize)]
struct Curve {
    n_bins: usize,
    prob_true: Vec<f64>,
    prob_pred: Vec<f64>,
}

struct Inputs {
    fixture: Fixture,
    probabilities: Vec<f64>,
    coarse: Vec<f64>,
}

fn load() -> Inputs {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/metrics/sklearn.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let fixture: Fixture = serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"));
    let from_bits = |bits: &[u64], decimal: &[f64]| -> Vec<f64> {
        assert_eq!(bits.len(), decimal.len());
        let exact: Vec<f64> = bits.iter().map(|&b| f64::from_bits(b)).collect();
        // The decimal copies are for people reading the fixture; they must say the same thing.
        for (x, y) in exact.iter().zip(decimal) {
            assert!((x - y).abs() <= f64::EPSILON, "bits {x} vs decimal {y}");
        }
        exact
    };
    let probabilities = from_bits(&fixture.probabilities_bits, &fixture.probabilities);
    let coarse = from_bits(&fixture.coarse_scores_bits, &fixture.coarse_scores);
    assert_eq!(probabilities.len(), fixture.labels.len());
    assert!(probabilities.len() >= 300, "the fixture should have about 300 rows");
    Inputs { fixture, probabilities, coarse }
}

fn assert_close(what: &str, ours: f64, sklearn: f64, tolerance: f64, version: &str) {
    assert!(
        (ours - sklearn).abs() <= tolerance,
        "{what}: ours {ours:.17} vs scikit-learn {version} {sklearn:.17} (difference {:e})",
        ours - sklearn
    );
}

#[test]
fn roc_auc_matches_sklearn_with_ties() {
    let Inputs { fixture, probabilities, coarse } = load();
    let v = &fixture.sklearn_version;
    assert_close("roc_auc", roc_auc(&probabilities, &fixture.labels).unwrap(), fixture.roc_auc, 1e-12, v);
    assert_close("roc_auc coarse", roc_auc(&coarse, &fixture.labels).unwrap(), fixture.roc_auc_coarse, 1e-12, v);
}

#[test]
fn log_loss_matches_sklearn_with_clipping() {
    let Inputs { fixture, probabilities, .. } = load();
    // The fixture has certain and wrong predictions (p = 0 for a positive), which only clipping keeps finite.
    assert!(probabilities.iter().zip(&fixture.labels).any(|(&p, &l)| l && p == 0.0));
    let ours = log_loss(&probabilities, &fixture.labels);
    assert_close("log_loss", ours, fixture.log_loss, 1e-9, &fixture.sklearn_version);
}

#[test]
fn brier_matches_sklearn() {
    let Inputs { fixture, probabilities, .. } = load();
    let ours = brier(&probabilities, &fixture.labels);
    assert_close("brier", ours, fixture.brier, 1e-12, &fixture.sklearn_version);
}

#[test]
fn calibration_matches_sklearn_uniform_curve() {
    let Inputs { fixture, probabilities, coarse } = load();
    let v = &fixture.sklearn_version;
    // The curves are, in order: probabilities with 10 and 5 bins, coarse scores with 10 bins.
    let inputs = [&probabilities, &probabilities, &coarse];
    assert_eq!(fixture.calibration.len(), inputs.len());
    for (curve, input) in fixture.calibration.iter().zip(inputs) {
        let ours = calibration(input, &fixture.labels, curve.n_bins);
        assert_eq!(
            ours.len(),
            curve.prob_true.len(),
            "n_bins {}: {} non-empty bins vs scikit-learn's {}",
            curve.n_bins,
            ours.len(),
            curve.prob_true.len()
        );
        assert_eq!(ours.iter().map(|b| b.count).sum::<usize>(), input.len());
        for (i, bin) in ours.iter().enumerate() {
            let what = format!("n_bins {} bin [{}, {}]", curve.n_bins, bin.lower, bin.upper);
            assert_close(&format!("{what} observed_rate"), bin.observed_rate, curve.prob_true[i], 1e-12, v);
            assert_close(&format!("{what} mean_predicted"), bin.mean_predicted, curve.prob_pred[i], 1e-12, v);
        }
    }
}
