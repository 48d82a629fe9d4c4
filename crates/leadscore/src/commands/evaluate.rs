//! `leadscore evaluate`: backtests a scoring model (TOML) or a predictive model (the JSON `train`
//! writes) against the outcomes of past leads: AUC and log loss of every score, conversion rate
//! per tier, the score distribution; with `--compare`, two models side by side with a bootstrap
//! confidence interval on their AUC difference. This command scores the leads with the models;
//! the figures are `leadscore_predict::evaluation`'s.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use leadscore_core::{Timestamp, Value};
use leadscore_predict::dataset::Table;
use leadscore_predict::evaluation::{Backtest, ScoreColumn, ScoreEvaluation};
use leadscore_predict::predictive::SavedModel;
use serde_json::Value as Json;

use super::number;
use crate::model_file;

#[derive(clap::Args)]
pub struct Args {
    /// A scoring model (.toml) or a predictive model written by `leadscore train` (.json)
    #[arg(long)]
    model: PathBuf,
    /// Past leads with their outcome: CSV with a header line, or JSON Lines (.jsonl)
    #[arg(long)]
    data: PathBuf,
    /// The outcome column
    #[arg(long)]
    target: String,
    /// The outcome value that counts as converted [default: yes, true or 1 when present]
    #[arg(long)]
    positive: Option<String>,
    /// A second model to compare with the first on the same leads
    #[arg(long)]
    compare: Option<PathBuf>,
    /// The leads' events (CSV or JSON Lines with lead_id, type and ts, as for `leadscore score`):
    /// scoring models then count behaviour too; the data needs a lead id column to match them
    #[arg(long)]
    events: Option<PathBuf>,
    /// Score scoring models as of this instant (RFC 3339) [default: now]
    #[arg(long, value_parser = |s: &str| Timestamp::parse_rfc3339(s).map_err(|e| e.to_string()))]
    as_of: Option<Timestamp>,
    /// Bootstrap rounds for the confidence interval of `--compare`
    #[arg(long, default_value_t = 1000)]
    rounds: usize,
    /// Seed of the bootstrap
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Print the metrics as one JSON object instead of a report
    #[arg(long)]
    json: bool,
    /// Also write a self-contained HTML page with the charts of the model's first score
    #[arg(long)]
    report: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let name = args.data.display().to_string();
    let table = Table::from_path(&args.data)?;
    let labels = table.target(&args.target, args.positive.as_deref())?;
    let as_of = args.as_of.unwrap_or_else(|| Timestamp(leadscore_store::now_ms()));
    let source = Source { table: &table, data: &args.data, events: args.events.as_deref(), as_of };
    let first = score_with(&args.model, &source)?;
    let mut backtest = Backtest::new(args.model.display().to_string(), &first, &labels);
    if let Some(other) = &args.compare {
        let second = score_with(other, &source)?;
        backtest.compare(other.display().to_string(), &first[0], &second, &labels, args.rounds, args.seed);
    }
    if let Some(path) = &args.report {
        let score = &first[0];
        let probabilities = score.probabilities(&labels);
        let figures = &backtest.scores[&score.name];
        let summary = vec![
            ("score".to_string(), score.name.clone()),
            ("leads".to_string(), labels.len().to_string()),
            ("conversions".to_string(), backtest.conversions.to_string()),
            ("AUC".to_string(), number(figures.auc)),
            ("log loss".to_string(), number(figures.log_loss)),
        ];
        let subtitle = format!("{} on {}, target `{}`", args.model.display(), name, args.target);
        let page = leadscore_predict::report::html(&leadscore_predict::report::ReportInput {
            title: "leadscore evaluate",
            subtitle: &subtitle,
            scores: &score.values,
            labels: &labels,
            probabilities: Some(&probabilities),
            summary,
        });
        std::fs::write(path, page).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.json {
        println!("{}", backtest.to_json());
    } else {
        print_report(&backtest);
    }
    Ok(ExitCode::SUCCESS)
}

/// One empty column per score of a scoring model, for `rows` leads.
fn columns_for(model: &leadscore_core::Model, rows: usize) -> Vec<ScoreColumn> {
    model
        .scores()
        .iter()
        .map(|s| ScoreColumn {
            name: s.name().to_string(),
            values: Vec::with_capacity(rows),
            tiers: (!s.tiers().is_empty()).then(Vec::new),
            probabilities: s.predictive_reference().is_some(),
        })
        .collect()
}

/// What to score: the data's rows, and the leads' events if any.
struct Source<'a> {
    table: &'a Table,
    data: &'a Path,
    events: Option<&'a Path>,
    as_of: Timestamp,
}

/// Scores every row of the table with a model file.
fn score_with(path: &Path, source: &Source<'_>) -> anyhow::Result<Vec<ScoreColumn>> {
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
    match (extension, source.events) {
        ("toml", None) => score_points(path, source.table, source.as_of),
        ("toml", Some(events)) => score_points_with_events(path, source, events),
        ("json", _) => score_predictive(path, source.table),
        _ => bail!(
            "{}: a model is a scoring model (.toml) or a predictive model from `leadscore train` (.json)",
            path.display()
        ),
    }
}

/// A scoring model on the data's leads with their events, scored as `leadscore score --explain`
/// scores them, without the outlooks it does not read (strict: a bad row stops the evaluation
/// rather than leaving a lead unscored), then matched to the table's rows by lead id.
fn score_points_with_events(path: &Path, source: &Source<'_>, events: &Path) -> anyhow::Result<Vec<ScoreColumn>> {
    use leadscore_batch::columns::{LEAD_ID_COLUMNS, find_column};
    let table = source.table;
    let model = model_file::load(path)?.into_model()?;
    let id_column = find_column(table.columns(), LEAD_ID_COLUMNS).ok_or_else(|| {
        anyhow::anyhow!(
            "{}: --events needs a lead id column in the data to match events to leads (one of {})",
            table.name(),
            LEAD_ID_COLUMNS.join(", ")
        )
    })?;
    let options = leadscore_batch::BatchOptions {
        leads: source.data,
        events: Some(events),
        as_of: source.as_of,
        output: leadscore_batch::OutputFormat::ContributionsJsonLines,
        strict: true,
        read: leadscore_batch::ReadOptions::default(),
    };
    let mut out = Vec::new();
    leadscore_batch::score_files(&model, &options, &mut out, &|_, _, _| {})?;
    // One output row per lead, in the data's order (strict: any bad row stopped the run above).
    let mut rows: Vec<(String, Json)> = Vec::with_capacity(table.n_rows());
    for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let mut row: Json = serde_json::from_slice(line).context("reading the scores back")?;
        let id = row["lead_id"].as_str().unwrap_or_default().to_string();
        rows.push((id, row["scores"].take()));
    }
    if rows.len() != table.n_rows() {
        bail!("{}: {} leads scored for {} rows; every row needs a lead id", table.name(), rows.len(), table.n_rows());
    }
    let mut scored = columns_for(&model, table.n_rows());
    for (row, (id, scores)) in rows.iter().enumerate() {
        // The table reads ids such as `NA` as missing; the scorer keeps them as ids.
        if let Some(cell) = table.cell(row, id_column)
            && cell.trim() != id.trim()
        {
            bail!("{}:{}: lead `{cell}` was scored as `{id}`", table.name(), table.line(row));
        }
        for out in &mut scored {
            let score = &scores[&out.name];
            let value = score["value"].as_f64().with_context(|| format!("no value of `{}` for lead {id}", out.name))?;
            out.values.push(value);
            if let Some(tiers) = &mut out.tiers {
                tiers.push(score["tier"].as_str().unwrap_or("").to_string());
            }
        }
    }
    Ok(scored)
}

/// A scoring model on the table's rows as leads (their columns as fields; no events).
fn score_points(path: &Path, table: &Table, as_of: Timestamp) -> anyhow::Result<Vec<ScoreColumn>> {
    let model = model_file::load(path)?.into_model()?;
    let columns: Vec<Option<usize>> =
        model.lead_fields().iter().map(|f| table.columns().iter().position(|c| c == f)).collect();
    for (field, column) in model.lead_fields().iter().zip(&columns) {
        if column.is_none() {
            eprintln!(
                "warning: {}: no column `{field}`, which the model reads: every lead is missing it",
                table.name()
            );
        }
    }
    let mut scored = columns_for(&model, table.n_rows());
    let mut lead = Vec::with_capacity(columns.len());
    for row in 0..table.n_rows() {
        lead.clear();
        lead.extend(columns.iter().map(|c| c.and_then(|c| table.cell(row, c)).map_or(Value::Missing, Value::text)));
        let scores = model.score(&lead, std::iter::empty(), as_of);
        for (out, score) in scored.iter_mut().zip(&scores.scores) {
            out.values.push(score.value);
            if let Some(tiers) = &mut out.tiers {
                tiers.push(score.tier.unwrap_or("").to_string());
            }
        }
    }
    Ok(scored)
}

/// A predictive model's probability (0-100) on the table's rows.
fn score_predictive(path: &Path, table: &Table) -> anyhow::Result<Vec<ScoreColumn>> {
    let saved = SavedModel::read(path)?;
    let rows: Vec<usize> = (0..table.n_rows()).collect();
    let probabilities = saved.fitted.predict_table(table, &rows)?;
    Ok(vec![ScoreColumn {
        name: "probability".to_string(),
        values: probabilities.iter().map(|p| p * 100.0).collect(),
        tiers: None,
        probabilities: true,
    }])
}

fn print_scores(scores: &std::collections::BTreeMap<String, ScoreEvaluation>) {
    for (name, figures) in scores {
        let distribution = &figures.distribution;
        println!(
            "  {name}: AUC {}  log loss {}  (median {}, range {} to {})",
            number(figures.auc),
            number(figures.log_loss),
            number(distribution.median),
            number(distribution.min),
            number(distribution.max)
        );
        for tier in figures.tiers.iter().flatten() {
            let label = if tier.tier.is_empty() { "(no tier)" } else { tier.tier.as_str() };
            println!(
                "    {label:<16} {:>7} leads  {:>6} converted  rate {}",
                tier.leads.to_string(),
                tier.conversions.to_string(),
                number(tier.rate)
            );
        }
    }
}

fn print_report(backtest: &Backtest) {
    println!("{} leads, {} converted; model {}", backtest.leads, backtest.conversions, backtest.model);
    print_scores(&backtest.scores);
    if let Some(compare) = &backtest.compare {
        println!("compared with {}", compare.model);
        print_scores(&compare.scores);
        if let Some(d) = &compare.auc_difference {
            println!(
                "AUC of `{}` minus `{}`: {} (95% bootstrap interval {} to {}, {} rounds)",
                d.first,
                d.second,
                number(d.difference),
                number(d.lower_95),
                number(d.upper_95),
                d.rounds
            );
        }
    }
}
