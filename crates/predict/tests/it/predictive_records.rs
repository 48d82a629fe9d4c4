//! A saved model scoring single leads (as a predictive score does) agrees with scoring the table,
//! for both algorithms, on the bank fixture with some cells blanked out.

use leadscore_core::{Predictor, Value};
use leadscore_predict::dataset::{Encoder, Table};
use leadscore_predict::gbdt::{Booster, Params};
use leadscore_predict::logistic::LogisticRegression;
use leadscore_predict::predictive::{Fitted, KIND, PredictiveError, PredictiveModel, SavedModel, VERSION};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bank/bank-slice.csv");

/// The fixture with every 7th `balance`, every 11th `job` and every 13th `housing` cell blank, so
/// that missing values take every path.
fn table() -> Table {
    let text = std::fs::read_to_string(FIXTURE).unwrap();
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let mut cells: Vec<&str> = line.split(',').collect();
        if i > 0 {
            if i % 7 == 0 {
                cells[5] = "";
            }
            if i % 11 == 0 {
                cells[1] = "NA";
            }
            if i % 13 == 0 {
                cells[6] = "";
            }
        }
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    Table::from_csv_reader(out.as_bytes(), "bank.csv").unwrap()
}

fn saved(fitted: Fitted, features: &[&str]) -> SavedModel {
    SavedModel {
        kind: KIND.to_string(),
        version: VERSION,
        target: "y".to_string(),
        positive: None,
        features: features.iter().map(|f| f.to_string()).collect(),
        seed: 1,
        fitted,
        evaluation: serde_json::Value::Null,
    }
}

fn models(table: &Table) -> Vec<SavedModel> {
    let features: Vec<&str> = table.columns().iter().map(String::as_str).filter(|&c| c != "y").collect();
    let labels = table.target("y", None).unwrap();
    let train: Vec<usize> = (0..2000).collect();
    let train_labels: Vec<bool> = train.iter().map(|&r| labels[r]).collect();
    let encoder = Encoder::fit(table, &features, &train).unwrap();
    let model = LogisticRegression::fit(&encoder.transform(table, &train).unwrap(), &train_labels, 1.0, 100).unwrap();
    let params = Params { num_iterations: 30, ..Params::default() };
    let booster = Booster::fit(table, &features, &train, &train_labels, &params).unwrap();
    vec![saved(Fitted::Logistic { encoder, model }, &features), saved(Fitted::Gbdt { booster }, &features)]
}

/// One row's values in the predictor's field order, as a lead's attributes would arrive.
fn record(table: &Table, predictor: &PredictiveModel, row: usize) -> Vec<Value> {
    predictor
        .fields()
        .iter()
        .map(|field| {
            let column = table.column_index(field).unwrap();
            table.cell(row, column).map_or(Value::Missing, Value::text)
        })
        .collect()
}

#[test]
fn single_leads_score_as_the_table_does() {
    let table = table();
    let test: Vec<usize> = (2000..table.n_rows()).collect();
    for saved in models(&table) {
        let expected = saved.fitted.predict_table(&table, &test).unwrap();
        // Through the file format, as a scoring model loads it.
        let text = serde_json::to_vec(&saved).unwrap();
        let predictor = PredictiveModel::new(SavedModel::from_json(&text, "m.json").unwrap(), "m.json").unwrap();
        for (&row, &want) in test.iter().zip(&expected) {
            let values = record(&table, &predictor, row);
            let refs: Vec<&Value> = values.iter().collect();
            let got = predictor.predict(&refs, None);
            assert!((got - want).abs() < 1e-12, "{} row {row}: {got} vs {want}", saved.fitted.name());
        }
    }
}

#[test]
fn numbers_and_booleans_from_json_score_as_their_text() {
    let table = table();
    for saved in models(&table) {
        let predictor = PredictiveModel::new(saved, "m.json").unwrap();
        let text = record(&table, &predictor, 2001);
        let typed: Vec<Value> = text
            .iter()
            .map(|v| match v.as_text().as_deref() {
                Some("yes") => Value::Bool(true),
                Some("no") => Value::Bool(false),
                _ => v.as_number().map_or(v.clone(), Value::Number),
            })
            .collect();
        let a = predictor.predict(&text.iter().collect::<Vec<_>>(), None);
        let b = predictor.predict(&typed.iter().collect::<Vec<_>>(), None);
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
}

#[test]
fn a_fields_effect_is_the_change_when_it_is_unknown() {
    let table = table();
    for saved in models(&table) {
        let name = saved.fitted.name();
        let predictor = PredictiveModel::new(saved, "m.json").unwrap();
        for row in [2000, 2100, 2222, 2999] {
            let values = record(&table, &predictor, row);
            let refs: Vec<&Value> = values.iter().collect();
            let mut effects = Vec::new();
            let p = predictor.predict(&refs, Some(&mut effects));
            assert_eq!(effects.len(), values.len());
            for i in 0..values.len() {
                let mut without = refs.clone();
                without[i] = &Value::Missing;
                let expected = p - predictor.predict(&without, None);
                assert!((effects[i] - expected).abs() < 1e-12, "{name} row {row} field {i}");
            }
            assert!(effects.iter().any(|e| *e != 0.0), "{name}: some field matters");
        }
    }
}

#[test]
fn unreadable_values_count_as_unknown() {
    let table = table();
    for saved in models(&table) {
        let predictor = PredictiveModel::new(saved, "m.json").unwrap();
        let age = predictor.fields().iter().position(|f| f == "age").unwrap();
        let mut values = record(&table, &predictor, 2003);
        values[age] = Value::text("forty");
        let garbled = predictor.predict(&values.iter().collect::<Vec<_>>(), None);
        values[age] = Value::Missing;
        let unknown = predictor.predict(&values.iter().collect::<Vec<_>>(), None);
        assert_eq!(garbled, unknown);
    }
}

#[test]
fn files_that_are_not_models_are_refused_with_the_reason() {
    let error = SavedModel::from_json(b"{\"kind\": \"other\"}", "x.json").unwrap_err();
    assert!(matches!(error, PredictiveError::NotAModel { .. }), "{error}");
    assert!(error.to_string().starts_with("x.json: not a model written by `leadscore train`"), "{error}");
    let error = SavedModel::from_json(b"not json", "x.json").unwrap_err();
    assert!(matches!(error, PredictiveError::NotAModel { .. }), "{error}");
    let newer = format!("{{\"kind\": \"{KIND}\", \"version\": 99}}");
    let error = SavedModel::from_json(newer.as_bytes(), "x.json").unwrap_err();
    assert!(error.to_string().contains("upgrade leadscore"), "{error}");
    // A tree pointing outside itself is refused when loading, not when scoring.
    let table = table();
    let mut gbdt = models(&table).pop().unwrap();
    if let Fitted::Gbdt { booster } = &mut gbdt.fitted {
        booster.trees[0].nodes[0].feature = 999;
    }
    let error = PredictiveModel::new(gbdt, "m.json").unwrap_err();
    assert!(error.to_string().contains("tree 0"), "{error}");
}

/// Leads that signed up later convert more; a date column is learned from and scored from its
/// text, for single leads as for the table.
#[test]
fn date_columns_are_learned_and_scored_from_their_text() {
    let mut text = String::from("signed_up,plan,converted\n");
    for i in 0..400u32 {
        let month = 1 + i % 12;
        let day = 1 + (i * 7) % 28;
        let plan = ["free", "team", "enterprise"][(i % 3) as usize];
        // Later in the year converts more, with exceptions so that both outcomes are everywhere.
        let converted = (month > 6) != (i % 5 == 0);
        let when = if i % 9 == 0 {
            String::new()
        } else if i % 2 == 0 {
            format!("2026-{month:02}-{day:02}")
        } else {
            format!("2026-{month:02}-{day:02}T09:30:00+01:00")
        };
        text.push_str(&format!("{when},{plan},{}\n", if converted { "yes" } else { "no" }));
    }
    let table = Table::from_csv_reader(text.as_bytes(), "dated.csv").unwrap();
    assert_eq!(table.kinds()[0], leadscore_predict::dataset::ColumnKind::Date);
    let labels = table.target("converted", None).unwrap();
    let features = ["signed_up", "plan"];
    let train: Vec<usize> = (0..300).collect();
    let test: Vec<usize> = (300..400).collect();
    let train_labels: Vec<bool> = train.iter().map(|&r| labels[r]).collect();
    let test_labels: Vec<bool> = test.iter().map(|&r| labels[r]).collect();
    let encoder = Encoder::fit(&table, &features, &train).unwrap();
    let model = LogisticRegression::fit(&encoder.transform(&table, &train).unwrap(), &train_labels, 1.0, 100).unwrap();
    let booster = Booster::fit(&table, &features, &train, &train_labels, &Params::default()).unwrap();
    for fitted in [Fitted::Logistic { encoder, model }, Fitted::Gbdt { booster }] {
        let name = fitted.name();
        let expected = fitted.predict_table(&table, &test).unwrap();
        let auc = leadscore_predict::metrics::roc_auc(&expected, &test_labels).unwrap();
        assert!(auc > 0.7, "{name}: the sign-up date predicts conversion (AUC {auc})");
        let predictor = PredictiveModel::new(saved(fitted, &features), "m.json").unwrap();
        for (&row, &want) in test.iter().zip(&expected) {
            let values = record(&table, &predictor, row);
            let got = predictor.predict(&values.iter().collect::<Vec<_>>(), None);
            assert!((got - want).abs() < 1e-12, "{name} row {row}: {got} vs {want}");
        }
    }
}
