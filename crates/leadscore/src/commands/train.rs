//! `leadscore train`: a predictive model from past leads and their outcome, evaluated honestly
//! on leads it did not see (a stratified holdout), written to a JSON model file. The training and
//! its evaluation are `leadscore_predict`'s; this command reads the arguments, shows progress,
//! writes the files and prints the report.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use leadscore_predict::dataset::Table;
use leadscore_predict::evaluation::{Evaluation, PointsEvaluation, TrainingReport, TrainingReportOptions};
use leadscore_predict::points::PointsOptions;
use leadscore_predict::predictive::{Algorithm, Fitted, SavedModel};
use leadscore_predict::report::{self, ReportInput};
use leadscore_predict::training::{self, Holdout, TrainingOptions};

use super::number;

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

/// `--algorithm`: one of the algorithms, or `auto` for the better of the two.
const ALGORITHMS: [&str; 3] = ["logistic", "gbdt", "auto"];

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
    #[arg(long, default_value = "auto", value_parser = clap::builder::PossibleValuesParser::new(ALGORITHMS))]
    algorithm: String,
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

impl Args {
    /// The algorithm asked for, `None` for `auto`.
    fn algorithm(&self) -> Option<Algorithm> {
        match self.algorithm.as_str() {
            "logistic" => Some(Algorithm::Logistic),
            "gbdt" => Some(Algorithm::Gbdt),
            _ => None,
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !(args.test_fraction > 0.0 && args.test_fraction < 1.0) {
        bail!("--test-fraction must be between 0 and 1 (exclusive), not {}", args.test_fraction);
    }
    let name = args.data.display().to_string();
    let table = Table::from_path(&args.data)?;
    let labels = table.target(&args.target, args.positive.as_deref())?;
    let features = training::features(&table, &args.target, &args.drop)?;
    // Either a stratified holdout of --data, or all of it for training and --test-data to test.
    let test_table;
    let holdout = match &args.test_data {
        None => Holdout::split(&table, &labels, args.test_fraction, args.seed),
        Some(path) => {
            test_table = Table::from_path(path)?;
            let test_labels = test_table.target(&args.target, args.positive.as_deref())?;
            Holdout::separate(&table, &test_table, test_labels)
        }
    };
    let options = TrainingOptions { algorithm: args.algorithm(), c: args.c, seed: args.seed };
    let bar = progress(training::steps(&options));
    let trained = training::train(&table, &labels, &features, &holdout, &options, &mut |message| {
        if let Some(bar) = &bar {
            bar.set_message(message);
            bar.inc(1);
        }
    })?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }

    let mut points_evaluation = None;
    if let Some(path) = &args.points_out {
        let points_options = PointsOptions { scale_max: args.points_max, ..PointsOptions::default() };
        let points =
            training::points_model(&table, &labels, &features, &holdout, &trained.fitted, &options, &points_options)?;
        std::fs::write(path, points.to_toml()).with_context(|| format!("cannot write {}", path.display()))?;
        points_evaluation = Some(PointsEvaluation::new(path.display().to_string(), &points, &holdout)?);
    }
    let report_options = TrainingReportOptions {
        threshold: args.threshold,
        capacity: args.capacity,
        economics: args.touch_cost.zip(args.conversion_value),
        attribute_min_count: args.report_min_count,
    };
    let mut evaluation = Evaluation::new(&trained, &holdout);
    evaluation.report =
        Some(TrainingReport::new(&table, &labels, &features, &trained, &holdout, &report_options, points_evaluation)?);
    let features = features.iter().map(|f| f.to_string()).collect();
    let saved = SavedModel::new(
        &args.target,
        args.positive.as_deref(),
        features,
        args.seed,
        trained.fitted.clone(),
        evaluation.to_json(),
    );
    std::fs::write(&args.out, serde_json::to_vec_pretty(&saved)?)
        .with_context(|| format!("cannot write {}", args.out.display()))?;

    if let Some(path) = &args.report {
        let summary = vec![
            ("algorithm".to_string(), trained.fitted.name().to_string()),
            ("training leads".to_string(), holdout.train.len().to_string()),
            ("held-out leads".to_string(), holdout.test.len().to_string()),
            ("test AUC".to_string(), number(evaluation.auc)),
            ("log loss".to_string(), number(evaluation.log_loss)),
            ("Brier score".to_string(), number(evaluation.brier)),
        ];
        let fitted = trained.fitted.name();
        let subtitle = format!("{fitted} on {name}, target `{}`, seed {}", args.target, args.seed);
        let page = report::html(&ReportInput {
            title: "leadscore train",
            subtitle: &subtitle,
            scores: &trained.predicted,
            labels: &holdout.test_labels,
            probabilities: Some(&trained.predicted),
            summary,
        });
        std::fs::write(path, page).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.json {
        println!("{}", evaluation.to_json());
    } else {
        print_report(&evaluation, &trained.fitted, &args);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(evaluation: &Evaluation, fitted: &Fitted, args: &Args) {
    let Some(report) = &evaluation.report else { return };
    for cv in &report.cross_validation {
        println!(
            "cross-validation (3 folds of the training leads): {} mean AUC {}",
            cv.algorithm.name(),
            number(cv.mean_auc)
        );
    }
    let algorithm = match fitted {
        Fitted::Logistic { .. } => format!("logistic regression (L2, C = {})", args.c),
        Fitted::Gbdt { .. } => "gradient-boosted trees (100 trees, 31 leaves, learning rate 0.1)".to_string(),
    };
    println!(
        "{algorithm} on {} leads, evaluated on {} held out (seed {})",
        evaluation.train_rows, evaluation.test_rows, args.seed
    );
    println!(
        "test AUC {}  log loss {}  Brier {}  conversion rate {}",
        number(evaluation.auc),
        number(evaluation.log_loss),
        number(evaluation.brier),
        number(evaluation.test_positive_rate)
    );
    let confusion = &report.confusion;
    println!(
        "at threshold {}: {} true positives, {} false positives, {} false negatives, {} true negatives (precision {}, recall {})",
        args.threshold,
        confusion.tp,
        confusion.fp,
        confusion.fn_,
        confusion.tn,
        number(confusion.precision),
        number(confusion.recall)
    );
    println!("\nlift by decile (1 = the leads scored highest):");
    println!("  decile  leads  converted   rate    lift  share of conversions");
    for decile in &report.lift_by_decile {
        println!(
            "  {:>6}  {:>5}  {:>9}  {:>6}  {:>6}  {:>6}",
            decile.decile.to_string(),
            decile.count.to_string(),
            decile.positives.to_string(),
            number(decile.rate),
            number(decile.lift),
            number(decile.cumulative_gain)
        );
    }
    println!("\nthresholds (on the held-out leads):");
    let advice = &report.thresholds;
    for (label, advice) in [
        (format!("top {:.0}% (capacity)", args.capacity * 100.0), advice.capacity),
        ("best F1".to_string(), advice.best_f1),
        ("best expected value".to_string(), advice.expected_value.flatten()),
    ] {
        let Some(a) = advice else { continue };
        println!(
            "  {label:<22} probability >= {}: passes {} of leads, who convert at {}, capturing {} of conversions",
            number(a.threshold),
            number(a.share_passed),
            number(a.conversion_rate_passed),
            number(a.share_of_conversions_captured)
        );
    }
    if let Some(points) = &report.points_model {
        println!(
            "\npoints model written to {}: test AUC {} (full model {})",
            points.file,
            number(points.auc),
            number(evaluation.auc)
        );
    }
    println!("\nattribute values by lift (training leads):");
    println!("  {:<32} {:>7} {:>9} {:>7} {:>6}", "value", "leads", "converted", "rate", "lift");
    for a in report.attributes.iter().take(10) {
        println!(
            "  {:<32} {:>7} {:>9} {:>7} {:>6}",
            format!("{} = {}", a.column, a.value),
            a.count.to_string(),
            a.conversions.to_string(),
            number(a.rate),
            number(a.lift)
        );
    }
    let what = if matches!(fitted, Fitted::Logistic { .. }) { "standardised coefficients" } else { "total split gain" };
    println!("\nstrongest features ({what}):");
    for (name, weight) in fitted.strongest_features(10) {
        println!("  {weight:>10.4}  {name}");
    }
    println!("\nmodel written to {}", args.out.display());
}
