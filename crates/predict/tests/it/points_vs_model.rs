//! Points from data on the bank fixture (see `logistic_vs_sklearn.rs`): the rounded points model written as TOML
//! compiles, scores exactly like `PointsModel::score_rows` through leadscore-core, and ranks the holdout nearly as
//! well as the full logistic regression.

use leadscore_core::{Timestamp, Value};
use leadscore_predict::dataset::{Encoder, Table};
use leadscore_predict::logistic::LogisticRegression;
use leadscore_predict::metrics::roc_auc;
use leadscore_predict::points::{PointsOptions, conversion_report, points_model};
use leadscore_predict::threshold;
use serde::Deserialize;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bank");

#[derive(Deserialize)]
struct Split {
    train: Vec<usize>,
    test: Vec<usize>,
}

fn read_json<T: for<'de> Deserialize<'de>>(name: &str) -> T {
    let text = std::fs::read_to_string(format!("{FIXTURE}/{name}")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn read_table() -> Table {
    let path = format!("{FIXTURE}/bank-slice.csv");
    Table::from_csv_reader(std::fs::File::open(&path).unwrap(), &path).unwrap()
}

#[test]
fn points_model_compiles_scores_like_the_engine_and_keeps_the_auc() {
    let table = read_table();
    let split: Split = read_json("split.json");
    let labels = table.target("y", None).unwrap();
    let features: Vec<&str> = table.columns().iter().map(String::as_str).filter(|&c| c != "y").collect();
    let encoder = Encoder::fit(&table, &features, &split.train).unwrap();
    let train = encoder.transform(&table, &split.train).unwrap();
    let test = encoder.transform(&table, &split.test).unwrap();
    let train_labels: Vec<bool> = split.train.iter().map(|&r| labels[r]).collect();
    let test_labels: Vec<bool> = split.test.iter().map(|&r| labels[r]).collect();
    let model = LogisticRegression::fit(&train, &train_labels, 1.0, 100).unwrap();

    let options = PointsOptions { score_name: "fit".to_string(), scale_max: 20.0, ..PointsOptions::default() };
    let points = points_model(&table, &split.train, &encoder, &model, &options).unwrap();
    let toml = points.to_toml();
    if std::env::var_os("SHOW_POINTS_TOML").is_some() {
        eprintln!("{toml}");
    }
    let compiled = leadscore_core::compile(&toml).unwrap_or_else(|e| panic!("{}\n{toml}", e.render("points.toml")));
    assert!(compiled.warnings.is_empty(), "{:?}", compiled.warnings);
    let core = compiled.model;

    // The compiled model gives exactly the direct totals, at any as-of time, without events.
    let direct = points.score_rows(&table, &split.test).unwrap();
    let field_columns: Vec<usize> = core.lead_fields().iter().map(|f| table.column_index(f).unwrap()).collect();
    for (&r, &want) in split.test.iter().zip(&direct) {
        let lead: Vec<Value> =
            field_columns.iter().map(|&c| table.cell(r, c).map_or(Value::Missing, Value::text)).collect();
        for as_of in [Timestamp(0), Timestamp(1_800_000_000_000)] {
            let scores = core.score(&lead, [], as_of);
            assert_eq!(scores.get("fit").unwrap().value, want, "row {r} (line {})", table.line(r));
        }
    }

    let full_auc = roc_auc(&model.predict_proba(&test), &test_labels).unwrap();
    let points_auc = roc_auc(&direct, &test_labels).unwrap();
    let rules: usize = points.columns.iter().map(|c| c.attributes.len()).sum();
    eprintln!(
        "test AUC: full model {full_auc:.4}, points model {points_auc:.4} ({rules} rules, scale {:.3} points per \
         log-odds unit, tiers {:?})",
        points.scale,
        points.tiers.iter().map(|t| (&t.label, t.min, t.share_of_training)).collect::<Vec<_>>()
    );
    assert!((full_auc - points_auc).abs() <= 0.02, "full {full_auc} vs points {points_auc}");

    // Threshold advice on the points: chosen on the training rows, measured on the test rows.
    let train_points = points.score_rows(&table, &split.train).unwrap();
    let advice = threshold::for_capacity(&train_points, &train_labels, 0.1).unwrap();
    assert!(advice.share_passed <= 0.1);
    let held_out = threshold::evaluate(&direct, &test_labels, advice.threshold, None);
    eprintln!("top 10% on training: {advice:?}; on test: {held_out:?}");
    assert!(held_out.conversion_rate_passed > test_labels.iter().filter(|&&y| y).count() as f64 / direct.len() as f64);

    // The conversion report covers every feature column and is sorted by lift.
    let report = conversion_report(&table, &labels, &split.train, &features, 30, 5).unwrap();
    assert!(report.windows(2).all(|w| w[0].lift >= w[1].lift));
    assert!(report.iter().all(|r| r.count >= 30));
    for column in &features {
        assert!(report.iter().any(|r| r.column == *column), "{column}");
    }
    eprintln!("top lift: {:?}", &report[..3]);
}

#[test]
fn threshold_advice_on_a_small_example() {
    // Eight leads; points 30, 20, 20, 10, 10, 10, 0, 0; conversions at 30, one 20 and one 10 (3 in all).
    let scores = [10.0, 30.0, 0.0, 20.0, 10.0, 20.0, 0.0, 10.0];
    let labels = [false, true, false, true, true, false, false, false];

    // Capacity 3 of 8: 30 and the two 20s (the tie fits exactly).
    let a = threshold::for_capacity(&scores, &labels, 3.0 / 8.0).unwrap();
    assert_eq!((a.threshold, a.leads_passed, a.conversions_passed), (20.0, 3, 2));
    assert_eq!((a.share_passed, a.share_of_conversions_captured), (0.375, 2.0 / 3.0));
    assert!((a.conversion_rate_passed - 2.0 / 3.0).abs() < 1e-15);
    // Capacity 2: the 20s tie would make 3, so only the 30 passes.
    let a = threshold::for_capacity(&scores, &labels, 0.25).unwrap();
    assert_eq!((a.threshold, a.leads_passed), (30.0, 1));

    // F1 = 2TP / (passed + 3): ≥30 → 2/4, ≥20 → 4/6, ≥10 → 6/9, ≥0 → 6/11. 4/6 = 6/9: the higher threshold wins.
    let a = threshold::best_f1(&scores, &labels).unwrap();
    assert_eq!((a.threshold, a.leads_passed, a.conversions_passed), (20.0, 3, 2));

    // A conversion is worth 100, a touch costs 30: ≥30 → 70, ≥20 → 200 − 90 = 110, ≥10 → 300 − 180 = 120,
    // ≥0 → 300 − 240 = 60.
    let a = threshold::best_expected_value(&scores, &labels, 30.0, 100.0).unwrap();
    assert_eq!((a.threshold, a.leads_passed, a.expected_value), (10.0, 6, Some(120.0)));
    assert_eq!(a.share_of_conversions_captured, 1.0);
    assert_eq!(a.conversion_rate_passed, 0.5);
    // Touches at 60: ≥30 → 40, ≥20 → 20, ≥10 → −60: only the top lead.
    let a = threshold::best_expected_value(&scores, &labels, 60.0, 100.0).unwrap();
    assert_eq!((a.threshold, a.expected_value), (30.0, Some(40.0)));

    assert_eq!(threshold::best_f1(&[], &[]), None);
}
