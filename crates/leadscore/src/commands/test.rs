//! `leadscore test MODEL`: runs the `[[tests]]` a model carries and prints each as ok or FAILED;
//! a failure shows the expected and actual value and tier and the score's contributions, so the
//! author sees where the points came from.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use leadscore_core::model_tests::{self, TestOutcome};
use leadscore_core::value::format_number;
use leadscore_core::{Contribution, Source, round_score};

use crate::model_file;

#[derive(clap::Args)]
pub struct Args {
    /// The model file (TOML)
    model: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let loaded = model_file::load(&args.model)?;
    let mut out = std::io::stdout().lock();
    let compiled = match &loaded.compiled {
        Err(error) => {
            writeln!(out, "{}", error.render(&loaded.path))?;
            return Ok(ExitCode::from(2));
        }
        Ok(compiled) => compiled,
    };
    let outcomes = model_tests::run(&compiled.model);
    for outcome in &outcomes {
        write!(out, "{}", render_outcome(outcome))?;
    }
    let failed = outcomes.iter().filter(|o| !o.passed()).count();
    writeln!(
        out,
        "{}: {} test{}, {failed} failed",
        loaded.path,
        outcomes.len(),
        if outcomes.len() == 1 { "" } else { "s" }
    )?;
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `test NAME ... ok`, or `FAILED` followed by each score that differs and its contributions.
pub fn render_outcome(outcome: &TestOutcome<'_>) -> String {
    if outcome.passed() {
        return format!("test {} ... ok\n", outcome.name);
    }
    let mut text = format!("test {} ... FAILED\n", outcome.name);
    for mismatch in &outcome.mismatches {
        text.push_str(&format!("  {}\n", mismatch.describe()));
        if mismatch.actual.contributions.is_empty() {
            text.push_str("    no contributions\n");
        }
        for contribution in &mismatch.actual.contributions {
            text.push_str(&format!("    {:>10}  {}\n", points(contribution), source(&contribution.source)));
        }
    }
    text
}

fn points(contribution: &Contribution<'_>) -> String {
    let points = round_score(contribution.points);
    if points >= 0.0 { format!("+{}", format_number(points)) } else { format_number(points) }
}

fn source(source: &Source<'_>) -> String {
    match source {
        Source::Rule { rule, group: Some(group) } => format!("rule `{rule}` (group `{group}`)"),
        Source::Rule { rule, group: None } => format!("rule `{rule}`"),
        Source::GroupLimit { group } => format!("limit of group `{group}`"),
        Source::Component { score, weight } => format!("score `{score}` times {}", format_number(*weight)),
        Source::ScoreLimit => "the score's min/max".to_string(),
        Source::Normalization => "normalization to 0-100".to_string(),
        Source::Factor { field, value } => format!("field `{field}` = {}", value.as_deref().unwrap_or("unknown")),
        Source::OtherFactors => "other factors".to_string(),
        Source::NotApplicable => "not applicable to this lead".to_string(),
        Source::Segment { score } => format!("segment score `{score}`"),
    }
}
