//! Predictive scores: a trained model's probability as a score, explained by its strongest fields.

use std::sync::Arc;

use leadscore_core::{LeadState, Predictor, Source, Timestamp, Value, check, compile, compile_with};

/// A logistic model over two fields: software companies and large ones convert more.
#[derive(Debug)]
struct Toy {
    fields: Vec<String>,
}

impl Toy {
    fn logit(values: &[Option<&Value>]) -> f64 {
        let software = values[0].and_then(|v| v.as_text()).is_some_and(|t| t == "software");
        let employees = values[1].and_then(|v| v.as_number());
        -2.0 + if software { 1.5 } else { 0.0 } + employees.map_or(0.0, |n| (n / 1000.0).min(1.0))
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl Predictor for Toy {
    fn fields(&self) -> &[String] {
        &self.fields
    }

    fn predict(&self, values: &[&Value], effects: Option<&mut Vec<f64>>) -> f64 {
        let present: Vec<Option<&Value>> = values.iter().map(|v| (!v.is_missing()).then_some(*v)).collect();
        let p = sigmoid(Toy::logit(&present));
        if let Some(effects) = effects {
            effects.clear();
            for i in 0..values.len() {
                let mut without = present.clone();
                without[i] = None;
                effects.push(p - sigmoid(Toy::logit(&without)));
            }
        }
        p
    }
}

fn toy_loader(reference: &str) -> Result<Arc<dyn Predictor>, String> {
    match reference {
        "toy.json" => Ok(Arc::new(Toy { fields: vec!["industry".to_string(), "employees".to_string()] })),
        other => Err(format!("cannot read {other}: no such file")),
    }
}

const MODEL: &str = r#"
[scores.fit]
rules = [{ name = "Director", when = { field = "title", contains = "director" }, points = 10 }]

[scores.conversion]
predictive = "toy.json"
factors = 1
tiers = [
  { label = "low" },
  { label = "high", min = 40 },
]
disqualifiers = [{ name = "Student", when = { field = "title", equals = "student" } }]
"#;

fn lead(model: &leadscore_core::Model, fields: &[(&str, Value)]) -> Vec<Value> {
    model
        .lead_fields()
        .iter()
        .map(|name| fields.iter().find(|(n, _)| n == name).map_or(Value::Missing, |(_, v)| v.clone()))
        .collect()
}

#[test]
fn the_probability_is_the_score_and_its_strongest_fields_explain_it() {
    let model = compile_with(MODEL, &toy_loader).expect("compiles").model;
    assert_eq!(model.scores()[1].predictive_reference(), Some("toy.json"));
    let record = lead(&model, &[("industry", Value::text("software")), ("employees", Value::Number(500.0))]);
    let at = Timestamp::parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
    let scores = model.evaluate(&record, &LeadState::new(&model), at);
    let conversion = scores.get("conversion").unwrap();
    let expected = 100.0 * sigmoid(-2.0 + 1.5 + 0.5);
    assert!((conversion.value - expected).abs() < 1e-9, "{} vs {expected}", conversion.value);
    assert_eq!(conversion.tier, Some("high"));
    // One factor (the industry, the larger effect) and the rest; they add up to the value.
    assert_eq!(conversion.contributions.len(), 2);
    assert_eq!(
        conversion.contributions[0].source,
        Source::Factor { field: "industry", value: Some("software".to_string()) }
    );
    let industry_effect = 100.0 * (sigmoid(0.0) - sigmoid(-1.5));
    assert!((conversion.contributions[0].points - industry_effect).abs() < 1e-9);
    assert_eq!(conversion.contributions[1].source, Source::OtherFactors);
    let total: f64 = conversion.contributions.iter().map(|c| c.points).sum();
    assert_eq!(total, conversion.value);
}

#[test]
fn qualifiers_and_disqualifiers_apply_to_predictive_scores() {
    let model = compile_with(MODEL, &toy_loader).unwrap().model;
    let record = lead(&model, &[("industry", Value::text("software")), ("title", Value::text("student"))]);
    let at = Timestamp::parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
    let scores = model.evaluate(&record, &LeadState::new(&model), at);
    let conversion = scores.get("conversion").unwrap();
    assert_eq!(conversion.tier, Some("disqualified"));
    assert_eq!(conversion.disqualified_by, Some("Student"));
    // An unknown lead gets the base rate, explained by the rest alone.
    let unknown = lead(&model, &[]);
    let scores = model.evaluate(&unknown, &LeadState::new(&model), at);
    let conversion = scores.get("conversion").unwrap();
    // The probability as a score, rounded to the default 6 decimals.
    assert!((conversion.value - 100.0 * sigmoid(-2.0)).abs() <= 0.5e-6);
    assert_eq!(conversion.value, 11.920292);
    assert_eq!(conversion.contributions.len(), 1);
    assert_eq!(conversion.tier, Some("low"));
}

#[test]
fn the_range_of_a_predictive_score_is_0_to_100() {
    let model = compile_with(MODEL, &toy_loader).unwrap().model;
    let report = check::report(&model);
    assert_eq!((report[1].range.min, report[1].range.max), (0.0, 100.0));
}

#[test]
fn mistakes_in_predictive_scores_are_reported_at_their_place() {
    let text = r#"
[scores.a]
predictive = "missing.json"

[scores.b]
predictive = "toy.json"
max = 10
rules = [{ name = "x", when = { field = "f", equals = "y" }, points = 1 }]

[scores.c]
factors = 2
rules = [{ name = "x", when = { field = "f", equals = "y" }, points = 1 }]

[scores.d]
predictive = "toy.json"
factors = 99
"#;
    let error = compile_with(text, &toy_loader).unwrap_err().render("model.toml");
    insta::assert_snapshot!(error);
    // Without a loader, every predictive score is an error naming its model.
    let error = compile("[scores.a]\npredictive = \"toy.json\"\n").unwrap_err().render("model.toml");
    assert!(error.contains("model.toml:2:14"), "{error}");
    assert!(error.contains("toy.json"), "{error}");
}
