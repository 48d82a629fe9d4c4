//! `leadscore train` on a slice of the UCI Bank Marketing data without `duration`
//! (crates/predict/tests/fixtures/bank).

use std::path::Path;
use std::process::Command;

fn train(out: &Path, extra: &[&str]) -> (i32, String, String) {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../predict/tests/fixtures/bank/bank-slice.csv");
    let output = Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(["train", "--target", "y", "--data"])
        .arg(data)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn training_is_evaluated_on_held_out_leads_and_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
    let (code, stdout, stderr) = train(&a, &["--json", "--seed", "3"]);
    assert_eq!(code, 0, "{stderr}");
    let evaluation: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let auc = evaluation["auc"].as_f64().unwrap();
    assert!(auc > 0.7 && auc < 0.9, "AUC {auc}: a working model on this data is well above chance");
    assert!(evaluation["log_loss"].as_f64().unwrap() > 0.0);
    assert_eq!(evaluation["test_rows"].as_u64().unwrap() + evaluation["train_rows"].as_u64().unwrap(), 3000);
    assert_eq!(evaluation["lift_by_decile"].as_array().unwrap().len(), 10);
    // The same seed gives the same model, byte for byte; another seed another split.
    train(&b, &["--json", "--seed", "3"]);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    train(&b, &["--json", "--seed", "4"]);
    assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&a).unwrap()).unwrap();
    assert_eq!(saved["kind"], "leadscore-predictive-model");
    assert!(!saved["features"].as_array().unwrap().iter().any(|f| f == "duration" || f == "y"));
}

#[test]
fn training_mistakes_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.json");
    let (code, _, stderr) = train(&out, &["--drop", "no_such_column"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no column \"no_such_column\""), "{stderr}");
    let (code, _, stderr) = train(&out, &["--positive", "maybe"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("the positive value \"maybe\" never occurs"), "{stderr}");
    let (code, _, stderr) = train(&out, &["--test-fraction", "1.5"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--test-fraction"), "{stderr}");
}

#[test]
fn evaluate_backtests_and_compares_models() {
    let dir = tempfile::tempdir().unwrap();
    let predictive = dir.path().join("model.json");
    assert_eq!(train(&predictive, &["--json"]).0, 0);
    let points = dir.path().join("points.toml");
    std::fs::write(
        &points,
        r#"
[scores.fit]
tiers = [{ label = "cold" }, { label = "hot", min = 10 }]
[[scores.fit.rules]]
name = "earlier success"
when = { field = "poutcome", equals = "success" }
points = 20
[[scores.fit.rules]]
name = "no contact type"
when = { field = "contact", equals = "unknown" }
points = -5
"#,
    )
    .unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../predict/tests/fixtures/bank/bank-slice.csv");
    let output = Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(["evaluate", "--target", "y", "--json", "--rounds", "200", "--model"])
        .arg(&points)
        .arg("--compare")
        .arg(&predictive)
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let fit = &report["scores"]["fit"];
    assert!(fit["auc"].as_f64().unwrap() > 0.5);
    assert!(fit["log_loss"].as_f64().unwrap() > 0.0);
    let tiers = fit["tiers"].as_array().unwrap();
    let leads: u64 = tiers.iter().map(|t| t["leads"].as_u64().unwrap()).sum();
    let converted: u64 = tiers.iter().map(|t| t["conversions"].as_u64().unwrap()).sum();
    assert_eq!(leads, report["leads"].as_u64().unwrap());
    assert_eq!(converted, report["conversions"].as_u64().unwrap());
    let hot = tiers.iter().find(|t| t["tier"] == "hot").unwrap()["rate"].as_f64().unwrap();
    let cold = tiers.iter().find(|t| t["tier"] == "cold").unwrap()["rate"].as_f64().unwrap();
    assert!(hot > cold, "leads with an earlier success convert more: {hot} vs {cold}");
    let difference = &report["compare"]["auc_difference"];
    let (d, lo, hi) = (
        difference["difference"].as_f64().unwrap(),
        difference["lower_95"].as_f64().unwrap(),
        difference["upper_95"].as_f64().unwrap(),
    );
    assert!(lo <= d && d <= hi, "{difference}");
    assert!(report["compare"]["scores"]["probability"]["auc"].as_f64().unwrap() > 0.7);
}

#[test]
fn points_from_data_and_threshold_advice() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.json");
    let points = dir.path().join("points.toml");
    let points_arg = points.display().to_string();
    let (code, stdout, stderr) = train(
        &out,
        &["--json", "--points-out", &points_arg, "--capacity", "0.2", "--touch-cost", "5", "--conversion-value", "100"],
    );
    assert_eq!(code, 0, "{stderr}");
    let evaluation: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let full = evaluation["auc"].as_f64().unwrap();
    let rounded = evaluation["points_model"]["auc"].as_f64().unwrap();
    assert!((full - rounded).abs() < 0.03, "whole points keep most of the model's ranking: {rounded} vs {full}");
    let capacity = &evaluation["thresholds"]["capacity"];
    assert!(capacity["share_passed"].as_f64().unwrap() <= 0.2);
    assert!(capacity["conversion_rate_passed"].as_f64().unwrap() > evaluation["test_positive_rate"].as_f64().unwrap());
    assert!(!evaluation["thresholds"]["expected_value"].is_null());
    assert!(evaluation["attributes"].as_array().unwrap().len() > 3);
    // The points model is an ordinary, valid scoring model.
    let check = Command::new(env!("CARGO_BIN_EXE_leadscore")).arg("check").arg(&points).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
}

#[test]
fn reports_are_self_contained_pages() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.json");
    let page = dir.path().join("report.html");
    let page_arg = page.display().to_string();
    assert_eq!(train(&out, &["--algorithm", "logistic", "--report", &page_arg]).0, 0);
    let html = std::fs::read_to_string(&page).unwrap();
    for chart in ["ROC curve", "Calibration", "Lift and cumulative gain", "Score distribution"] {
        assert!(html.contains(chart), "{chart} is missing");
    }
    let without_namespaces = html.replace("http://www.w3.org/2000/svg", "");
    assert!(!without_namespaces.contains("http://") && !without_namespaces.contains("https://"), "no external assets");
    assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
}

/// The bank slice as leads: the same columns with a `lead_id` first.
fn bank_leads(path: &Path) {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../predict/tests/fixtures/bank/bank-slice.csv");
    let text = std::fs::read_to_string(data).unwrap();
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        if i == 0 {
            out.push_str("lead_id,");
        } else {
            out.push_str(&format!("L{i},"));
        }
        out.push_str(line);
        out.push('\n');
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn a_trained_model_is_a_score_of_a_scoring_model() {
    let dir = tempfile::tempdir().unwrap();
    let bank = Path::new(env!("CARGO_MANIFEST_DIR")).join("../predict/tests/fixtures/bank/bank-slice.csv");
    for algorithm in ["logistic", "gbdt"] {
        let predictive = dir.path().join(format!("{algorithm}.json"));
        let (code, _, stderr) = train(&predictive, &["--algorithm", algorithm]);
        assert_eq!(code, 0, "{stderr}");
        let model = dir.path().join(format!("{algorithm}.toml"));
        std::fs::write(
            &model,
            format!(
                r#"
[scores.conversion]
predictive = "{algorithm}.json"
factors = 2
tiers = [{{ label = "low" }}, {{ label = "high", min = 30 }}]
"#
            ),
        )
        .unwrap();
        // `check` loads the trained model and knows the score's range.
        let check = Command::new(env!("CARGO_BIN_EXE_leadscore")).arg("check").arg(&model).output().unwrap();
        assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
        let report = String::from_utf8_lossy(&check.stdout);
        assert!(
            report.contains(&format!("score `conversion` (predictive: the probability of `{algorithm}.json`, times 100): lowest 0, highest 100")),
            "{report}"
        );
        // The score ranks leads exactly as the trained model does: the same AUC on the same rows.
        let auc = |model: &Path| -> f64 {
            let output = Command::new(env!("CARGO_BIN_EXE_leadscore"))
                .args(["evaluate", "--target", "y", "--json", "--model"])
                .arg(model)
                .arg("--data")
                .arg(&bank)
                .output()
                .unwrap();
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
            let scores = report["scores"].as_object().unwrap();
            scores.values().next().unwrap()["auc"].as_f64().unwrap()
        };
        let (as_score, as_model) = (auc(&model), auc(&predictive));
        assert!((as_score - as_model).abs() < 1e-12, "{algorithm}: {as_score} vs {as_model}");
        // Batch scoring explains each lead by its two strongest fields and the rest.
        let leads = dir.path().join("leads.csv");
        bank_leads(&leads);
        let output = Command::new(env!("CARGO_BIN_EXE_leadscore"))
            .args(["score", "--explain", "--as-of", "2026-01-01T00:00:00Z", "--model"])
            .arg(&model)
            .arg("--leads")
            .arg(&leads)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let stdout = String::from_utf8(output.stdout).unwrap();
        let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 3000);
        let mut high = 0;
        for lead in &lines {
            let score = &lead["scores"]["conversion"];
            let value = score["value"].as_f64().unwrap();
            assert!((0.0..=100.0).contains(&value));
            let contributions = score["contributions"].as_array().unwrap();
            let total: f64 = contributions.iter().map(|c| c["points"].as_f64().unwrap()).sum();
            // Each is written rounded to 6 decimals: the sum may be off by half a millionth each.
            assert!((total - value).abs() <= 5e-7 * (contributions.len() + 1) as f64 + 1e-12, "{lead}");
            let factors = contributions.iter().filter(|c| c["kind"] == "factor").count();
            assert!(factors <= 2, "{lead}");
            assert_eq!(contributions.last().unwrap()["kind"], "other_factors", "{lead}");
            high += usize::from(score["tier"] == "high");
        }
        assert!(high > 0 && high < 3000, "{algorithm}: some leads but not all are likely to convert ({high})");
    }
}

#[test]
fn evaluate_counts_behaviour_from_the_leads_events() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.toml");
    std::fs::write(
        &model,
        r#"
[scores.engagement]
tiers = [{ label = "cold" }, { label = "hot", min = 20 }]
[[scores.engagement.rules]]
name = "demo request"
event = "demo_request"
points = 30
"#,
    )
    .unwrap();
    // Every lead that asked for a demo converted; titles say nothing.
    let mut history = String::from("lead_id,title,converted\n");
    let mut events = String::from("lead_id,type,ts\n");
    for i in 0..40 {
        let demo = i % 4 == 0;
        // `NA` is a lead id here, though a data table would read it as a missing value.
        let id = if i == 0 { "NA".to_string() } else { format!("L{i}") };
        history.push_str(&format!("{id},engineer,{}\n", if demo { "yes" } else { "no" }));
        events.push_str(&format!("{id},page_view,2026-01-0{}T10:00:00Z\n", 1 + i % 5));
        if demo {
            events.push_str(&format!("{id},demo_request,2026-01-02T10:00:00Z\n"));
        }
    }
    let (history_path, events_path) = (dir.path().join("history.csv"), dir.path().join("events.csv"));
    std::fs::write(&history_path, history).unwrap();
    std::fs::write(&events_path, events).unwrap();
    let evaluate = |extra: &[&str]| -> serde_json::Value {
        let output = Command::new(env!("CARGO_BIN_EXE_leadscore"))
            .args(["evaluate", "--target", "converted", "--json", "--as-of", "2026-02-01T00:00:00Z", "--model"])
            .arg(&model)
            .arg("--data")
            .arg(&history_path)
            .args(extra)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let without = evaluate(&[]);
    assert_eq!(without["scores"]["engagement"]["auc"].as_f64(), Some(0.5));
    let with = evaluate(&["--events", events_path.to_str().unwrap()]);
    let engagement = &with["scores"]["engagement"];
    assert_eq!(engagement["auc"].as_f64(), Some(1.0));
    let hot = engagement["tiers"].as_array().unwrap().iter().find(|t| t["tier"] == "hot").unwrap().clone();
    assert_eq!((hot["leads"].as_u64(), hot["conversions"].as_u64()), (Some(10), Some(10)));
    // Events need lead ids in the data to be matched.
    std::fs::write(&history_path, "title,converted\nengineer,yes\nengineer,no\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(["evaluate", "--target", "converted", "--model"])
        .arg(&model)
        .arg("--data")
        .arg(&history_path)
        .arg("--events")
        .arg(&events_path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("needs a lead id column"));
}

#[test]
fn date_columns_are_learned_as_dates() {
    let dir = tempfile::tempdir().unwrap();
    let mut history = String::from("lead_id,signed_up,plan,converted\n");
    for i in 0..600 {
        let (month, day) = (1 + i % 12, 1 + (i * 7) % 28);
        let converted = (month > 6) != (i % 5 == 0);
        let when = if i % 9 == 0 { String::new() } else { format!("2026-{month:02}-{day:02}") };
        let plan = ["free", "team", "enterprise"][i % 3];
        history.push_str(&format!("L{i},{when},{plan},{}\n", if converted { "yes" } else { "no" }));
    }
    let data = dir.path().join("history.csv");
    std::fs::write(&data, history).unwrap();
    let (model, points) = (dir.path().join("dated.json"), dir.path().join("points.toml"));
    let output = Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(["train", "--target", "converted", "--drop", "lead_id", "--json", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&model)
        .arg("--points-out")
        .arg(&points)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(report["auc"].as_f64().unwrap() > 0.7, "{}", report["auc"]);
    let labels: Vec<&str> =
        report["attributes"].as_array().unwrap().iter().filter_map(|a| a["value"].as_str()).collect();
    assert!(labels.iter().any(|l| l.contains(" to before 2026-")), "{labels:?}");
    // The points model cannot test dates and says so.
    assert!(std::fs::read_to_string(&points).unwrap().contains("# --- signed_up (date)"));
    // As a score, a late sign-up is likelier to convert than an early one.
    std::fs::write(dir.path().join("m.toml"), "[scores.c]\npredictive = \"dated.json\"\n").unwrap();
    std::fs::write(
        dir.path().join("leads.csv"),
        "lead_id,signed_up,plan\nlate,2026-11-02,team\nearly,2026-02-01,team\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(["score", "--model"])
        .arg(dir.path().join("m.toml"))
        .arg("--leads")
        .arg(dir.path().join("leads.csv"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let value = |id: &str| -> f64 {
        let line = stdout.lines().find(|l| l.starts_with(&format!("{id},"))).unwrap();
        line.split(',').nth(1).unwrap().parse().unwrap()
    };
    assert!(value("late") > value("early") + 20.0, "{stdout}");
}
