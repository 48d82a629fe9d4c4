//! `leadscore train`: a predictive model from past leads and their outcome, evaluated honestly
//! on leads it did not see (a stratified holdout), written to a JSON model file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use leadscore_predict::dataset::{Encoder, Table};
use leadscore_predict::gbdt::{Booster, Params};
use leadscore_predict::logistic::{LogisticRegression, Model as LogisticModel};
use leadscore_predict::points::{self, PointsOptions};
use leadscore_predict::predictive::{self, SavedModel};
use leadscore_predict::report::{self, ReportInput};
use leadscore_predict::{metrics, random, threshold};
use serde_json::json;

use super::figure;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Algorithm {
    Logistic,
    Gbdt,
    Auto,
}

/// A fitted model of either kind.
enum Fitted {
    Logistic { encoder: Encoder, model: LogisticModel },
    Gbdt(Booster),
}

impl Fitted {
    fn fit(
        algorithm: Algorithm,
        table: &Table,
        features: &[&str],
        rows: &[usize],
        labels: &[bool],
        c: f64,
    ) -> anyhow::Result<Fitted> {
        let row_labels: Vec<bool> = rows.iter().map(|&i| labels[i]).collect();
        Ok(match algorithm {
            Algorithm::Gbdt => Fitted::Gbdt(Booster::fit(table, features, rows, &row_labels, &Params::default())?),
            _ => {
                let encoder = Encoder::fit(table, features, rows)?;
                let model = LogisticRegression::fit(&encoder.transform(table, rows)?, &row_labels, c, 100)?;
                Fitted::Logistic { encoder, model }
            }
        })
    }

    fn predict(&self, table: &Table, rows: &[usize]) -> anyhow::Result<Vec<f64>> {
        Ok(match self {
            Fitted::Logistic { encoder, model } => model.predict_proba(&encoder.transform(table, rows)?),
            Fitted::Gbdt(booster) => booster.predict_proba(table, rows)?,
        })
    }

    fn name(&self) -> &'static str {
        match self {
            Fitted::Logistic { .. } => "logistic",
            Fitted::Gbdt(_) => "gbdt",
        }
    }

    /// The strongest features: standardised coefficients, or total split gain.
    fn strongest(&self) -> Vec<(String, f64)> {
        let mut weights: Vec<(String, f64)> = match self {
            Fitted::Logistic { model, .. } => model.named_coefficients().map(|(n, w)| (n.to_string(), w)).collect(),
            Fitted::Gbdt(booster) => booster.feature_importance(),
        };
        weights.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        weights.truncate(10);
        weights
    }
}

/// A progress bar on a terminal (nothing when standard error is redirected).
fn progress(steps: u64) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(steps);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg:>24} [{bar:30}] {pos}/{len} {elapsed}")
            .expect("the template is valid")
            .progress_chars("=> "),
    );
    Some(bar)
}

fn step(bar: &Option<indicatif::ProgressBar>, message: &'static str) {
    if let Some(bar) = bar {
        bar.set_message(message);
        bar.inc(1);
    }
}

/// Mean AUC of each algorithm over `k` stratified folds of the training rows.
fn cross_validate(
    table: &Table,
    features: &[&str],
    train: &[usize],
    labels: &[bool],
    c: f64,
    seed: u64,
    bar: &Option<indicatif::ProgressBar>,
) -> anyhow::Result<Vec<(Algorithm, f64)>> {
    let train_labels: Vec<bool> = train.iter().map(|&i| labels[i]).collect();
    let folds = random::stratified_folds(&train_labels, 3, seed);
    let mut results = Vec::new();
    for algorithm in [Algorithm::Logistic, Algorithm::Gbdt] {
        let mut total = 0.0;
        for fold in &folds {
            let held: Vec<usize> = fold.iter().map(|&i| train[i]).collect();
            let fit_rows: Vec<usize> =
                (0..train.len()).filter(|i| fold.binary_search(i).is_err()).map(|i| train[i]).collect();
            let fitted = Fitted::fit(algorithm, table, features, &fit_rows, labels, c)?;
            step(bar, "cross-validating");
            let held_labels: Vec<bool> = held.iter().map(|&i| labels[i]).collect();
            total += metrics::roc_auc(&fitted.predict(table, &held)?, &held_labels).unwrap_or(0.5);
        }
        results.push((algorithm, total / folds.len() as f64));
    }
    Ok(results)
}

#[derive(clap::Args)]
pub struct Args {
    /// Past leads with their outcome: CSV with a header line, or JSON Lines (.jsonl)
    #[arg(long)]
    data: PathBuf,
    /// The outcome column
    #[arg(long)]
    target: String,
    /// The outcome value that counts as converted [default: yes, true or 1 when present]
    #[arg(long)]
    positive: Option<String>,
    /// Columns not to learn from, comma-separated (ids, outcomes known only later)
    #[arg(long, value_delimiter = ',')]
    drop: Vec<String>,
    /// Seed of the train/test split: the same seed gives the same model
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Share of the leads held out for evaluation
    #[arg(long, default_value_t = 0.2)]
    test_fraction: f64,
    /// Evaluate on these leads (same columns) instead of holding out a share of --data
    #[arg(long)]
    test_data: Option<PathBuf>,
    /// logistic (interpretable), gbdt (boosted trees, usually more accurate) or auto (the better
    /// of the two by 3-fold cross-validation on the training leads)
    #[arg(long, value_enum, default_value_t = Algorithm::Auto)]
    algorithm: Algorithm,
    /// Inverse strength of the L2 regularisation (logistic)
    #[arg(long, default_value_t = 1.0)]
    c: f64,
    /// Probability above which a lead is predicted to convert (for the confusion matrix)
    #[arg(long, default_value_t = 0.5)]
    threshold: f64,
    /// Where to write the model (JSON)
    #[arg(long)]
    out: PathBuf,
    /// Also write an editable points model (TOML, leadscore's format) made from the fitted model
    #[arg(long)]
    points_out: Option<PathBuf>,
    /// Points of the strongest attribute value in the points model
    #[arg(long, default_value_t = 20.0)]
    points_max: f64,
    /// Sales capacity: the share of leads sales can call, for threshold advice
    #[arg(long, default_value_t = 0.1)]
    capacity: f64,
    /// Cost of one sales touch, for the expected-value threshold (with --conversion-value)
    #[arg(long)]
    touch_cost: Option<f64>,
    /// Value of one conversion, for the expected-value threshold (with --touch-cost)
    #[arg(long)]
    conversion_value: Option<f64>,
    /// Attribute values reported with their conversion rate and lift (at least this many leads)
    #[arg(long, default_value_t = 30)]
    report_min_count: usize,
    /// Print the evaluation as one JSON object instead of a report
    #[arg(long)]
    json: bool,
    /// Also write a self-contained HTML page with the ROC curve, calibration, lift and score
    /// distribution of the held-out leads
    #[arg(long)]
    report: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !(args.test_fraction > 0.0 && args.test_fraction < 1.0) {
        bail!("--test-fraction must be between 0 and 1 (exclusive), not {}", args.test_fraction);
    }
    let name = args.data.display().to_string();
    let table = Table::from_path(&args.data)?;
    let labels = table.target(&args.target, args.positive.as_deref())?;
    for column in &args.drop {
        table.column_index(column)?;
    }
    let features: Vec<&str> = table
        .columns()
        .iter()
        .map(String::as_str)
        .filter(|c| *c != args.target && !args.drop.iter().any(|d| d == c))
        .collect();
    if features.is_empty() {
        bail!("{name}: no column is left to learn from once the target and --drop are removed");
    }
    // Either a stratified holdout of --data, or all of it for training and --test-data to test.
    let held_out;
    let (train, test, test_table, test_labels): (Vec<usize>, Vec<usize>, &Table, Vec<bool>) = match &args.test_data {
        None => {
            let (train, test) = random::stratified_split(&labels, args.test_fraction, args.seed);
            let test_labels = test.iter().map(|&i| labels[i]).collect();
            (train, test, &table, test_labels)
        }
        Some(path) => {
            held_out = Table::from_path(path)?;
            let test_labels = held_out.target(&args.target, args.positive.as_deref())?;
            ((0..table.n_rows()).collect(), (0..held_out.n_rows()).collect(), &held_out, test_labels)
        }
    };
    let bar = progress(if args.algorithm == Algorithm::Auto { 8 } else { 2 });
    let cross_validation = match args.algorithm {
        Algorithm::Auto => cross_validate(&table, &features, &train, &labels, args.c, args.seed, &bar)?,
        _ => Vec::new(),
    };

    let chosen = match args.algorithm {
        Algorithm::Auto => {
            cross_validation.iter().max_by(|a, b| a.1.total_cmp(&b.1)).map_or(Algorithm::Logistic, |b| b.0)
        }
        other => other,
    };
    let fitted = Fitted::fit(chosen, &table, &features, &train, &labels, args.c)?;
    step(&bar, "fitting");
    let predicted = fitted.predict(test_table, &test)?;
    step(&bar, "evaluating");
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }

    let mut advice = json!({
        "capacity": threshold::for_capacity(&predicted, &test_labels, args.capacity),
        "best_f1": threshold::best_f1(&predicted, &test_labels),
    });
    if let (Some(cost), Some(value)) = (args.touch_cost, args.conversion_value) {
        advice["expected_value"] = json!(threshold::best_expected_value(&predicted, &test_labels, cost, value));
    }
    let attributes = points::conversion_report(&table, &labels, &train, &features, args.report_min_count, 5)?;
    let mut points_evaluation = serde_json::Value::Null;
    if let Some(path) = &args.points_out {
        // Points come from a logistic regression's coefficients, whichever model was chosen.
        let logistic = match &fitted {
            Fitted::Logistic { .. } => None,
            Fitted::Gbdt(_) => Some(Fitted::fit(Algorithm::Logistic, &table, &features, &train, &labels, args.c)?),
        };
        let Fitted::Logistic { encoder, model } = logistic.as_ref().unwrap_or(&fitted) else {
            unreachable!("a logistic fit was made above")
        };
        let options = PointsOptions { scale_max: args.points_max, ..PointsOptions::default() };
        let points = points::points_model(&table, &train, encoder, model, &options)?;
        std::fs::write(path, points.to_toml()).with_context(|| format!("cannot write {}", path.display()))?;
        let totals = points.score_rows(test_table, &test)?;
        points_evaluation = json!({
            "file": path.display().to_string(),
            "auc": metrics::roc_auc(&totals, &test_labels),
        });
    }
    let positives = test_labels.iter().filter(|l| **l).count();
    let evaluation = json!({
        "algorithm": fitted.name(),
        "cross_validation": cross_validation.iter().map(|(a, auc)| json!({ "algorithm": format!("{a:?}").to_lowercase(), "mean_auc": auc })).collect::<Vec<_>>(),
        "train_rows": train.len(),
        "test_rows": test.len(),
        "test_positive_rate": positives as f64 / test.len().max(1) as f64,
        "auc": metrics::roc_auc(&predicted, &test_labels),
        "log_loss": metrics::log_loss(&predicted, &test_labels),
        "brier": metrics::brier(&predicted, &test_labels),
        "threshold": args.threshold,
        "confusion": metrics::confusion(&predicted, &test_labels, args.threshold),
        "calibration": metrics::calibration(&predicted, &test_labels, 10),
        "lift_by_decile": metrics::lift_by_decile(&predicted, &test_labels),
        "thresholds": advice,
        "points_model": points_evaluation,
        "attributes": attributes.iter().take(20).collect::<Vec<_>>(),
    });
    let saved = SavedModel {
        kind: predictive::KIND.to_string(),
        version: predictive::VERSION,
        target: args.target.clone(),
        positive: args.positive.clone(),
        features: features.iter().map(|f| f.to_string()).collect(),
        seed: args.seed,
        fitted: match &fitted {
            Fitted::Logistic { encoder, model } => {
                predictive::Fitted::Logistic { encoder: encoder.clone(), model: model.clone() }
            }
            Fitted::Gbdt(booster) => predictive::Fitted::Gbdt { booster: booster.clone() },
        },
        evaluation: evaluation.clone(),
    };
    std::fs::write(&args.out, serde_json::to_vec_pretty(&saved)?)
        .with_context(|| format!("cannot write {}", args.out.display()))?;

    if let Some(path) = &args.report {
        let summary = vec![
            ("algorithm".to_string(), fitted.name().to_string()),
            ("training leads".to_string(), train.len().to_string()),
            ("held-out leads".to_string(), test.len().to_string()),
            ("test AUC".to_string(), figure(&evaluation["auc"])),
            ("log loss".to_string(), figure(&evaluation["log_loss"])),
            ("Brier score".to_string(), figure(&evaluation["brier"])),
        ];
        let subtitle = format!("{} on {}, target `{}`, seed {}", fitted.name(), name, args.target, args.seed);
        let page = report::html(&ReportInput {
            title: "leadscore train",
            subtitle: &subtitle,
            scores: &predicted,
            labels: &test_labels,
            probabilities: Some(&predicted),
            summary,
        });
        std::fs::write(path, page).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.json {
        println!("{evaluation}");
    } else {
        print_report(&evaluation, &fitted, &args);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(evaluation: &serde_json::Value, fitted: &Fitted, args: &Args) {
    for cv in evaluation["cross_validation"].as_array().into_iter().flatten() {
        println!(
            "cross-validation (3 folds of the training leads): {} mean AUC {}",
            cv["algorithm"].as_str().unwrap_or(""),
            figure(&cv["mean_auc"])
        );
    }
    let algorithm = match fitted {
        Fitted::Logistic { .. } => format!("logistic regression (L2, C = {})", args.c),
        Fitted::Gbdt(_) => "gradient-boosted trees (100 trees, 31 leaves, learning rate 0.1)".to_string(),
    };
    println!(
        "{algorithm} on {} leads, evaluated on {} held out (seed {})",
        evaluation["train_rows"], evaluation["test_rows"], args.seed
    );
    println!(
        "test AUC {}  log loss {}  Brier {}  conversion rate {}",
        figure(&evaluation["auc"]),
        figure(&evaluation["log_loss"]),
        figure(&evaluation["brier"]),
        figure(&evaluation["test_positive_rate"])
    );
    let confusion = &evaluation["confusion"];
    println!(
        "at threshold {}: {} true positives, {} false positives, {} false negatives, {} true negatives (precision {}, recall {})",
        args.threshold,
        confusion["tp"],
        confusion["fp"],
        confusion["fn_"],
        confusion["tn"],
        figure(&confusion["precision"]),
        figure(&confusion["recall"])
    );
    println!("\nlift by decile (1 = the leads scored highest):");
    println!("  decile  leads  converted   rate    lift  share of conversions");
    for decile in evaluation["lift_by_decile"].as_array().into_iter().flatten() {
        println!(
            "  {:>6}  {:>5}  {:>9}  {:>6}  {:>6}  {:>6}",
            decile["decile"].to_string(),
            decile["count"].to_string(),
            decile["positives"].to_string(),
            figure(&decile["rate"]),
            figure(&decile["lift"]),
            figure(&decile["cumulative_gain"])
        );
    }
    println!("\nthresholds (on the held-out leads):");
    let advice = &evaluation["thresholds"];
    for (label, key) in [
        (format!("top {:.0}% (capacity)", args.capacity * 100.0), "capacity"),
        ("best F1".to_string(), "best_f1"),
        ("best expected value".to_string(), "expected_value"),
    ] {
        let a = &advice[key];
        if a.is_null() {
            continue;
        }
        println!(
            "  {label:<22} probability >= {}: passes {} of leads, who convert at {}, capturing {} of conversions",
            figure(&a["threshold"]),
            figure(&a["share_passed"]),
            figure(&a["conversion_rate_passed"]),
            figure(&a["share_of_conversions_captured"])
        );
    }
    if !evaluation["points_model"].is_null() {
        println!(
            "\npoints model written to {}: test AUC {} (full model {})",
            evaluation["points_model"]["file"].as_str().unwrap_or(""),
            figure(&evaluation["points_model"]["auc"]),
            figure(&evaluation["auc"])
        );
    }
    println!("\nattribute values by lift (training leads):");
    println!("  {:<32} {:>7} {:>9} {:>7} {:>6}", "value", "leads", "converted", "rate", "lift");
    for a in evaluation["attributes"].as_array().into_iter().flatten().take(10) {
        println!(
            "  {:<32} {:>7} {:>9} {:>7} {:>6}",
            format!("{} = {}", a["column"].as_str().unwrap_or(""), a["value"].as_str().unwrap_or("")),
            a["count"].to_string(),
            a["conversions"].to_string(),
            figure(&a["rate"]),
            figure(&a["lift"])
        );
    }
    let what = if matches!(fitted, Fitted::Logistic { .. }) { "standardised coefficients" } else { "total split gain" };
    println!("\nstrongest features ({what}):");
    for (name, weight) in fitted.strongest() {
        println!("  {weight:>10.4}  {name}");
    }
    println!("\nmodel written to {}", args.out.display());
}
