//! `leadscore check MODEL`: every problem of a model file with its line and column, then what each
//! score can reach and which tiers no lead can reach, and the model's `[[tests]]` that fail.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use leadscore_core::check::{self, ScoreReport};
use leadscore_core::value::format_number;

use crate::model_file;

#[derive(clap::Args)]
pub struct Args {
    /// The model file (TOML)
    model: PathBuf,
    /// Warn of what keeping events only this many days does to the rules (a rule that counts
    /// forever, a `window` or an inactivity longer than it), as the service's retention does
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..=36_500))]
    retention_days: Option<i64>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let loaded = model_file::load(&args.model)?;
    // Write errors (a closed pipe) end the command quietly instead of panicking.
    let mut out = std::io::stdout().lock();
    match &loaded.compiled {
        Err(error) => {
            writeln!(out, "{}", error.render(&loaded.path))?;
            let n = error.errors().count();
            writeln!(out, "{}: {n} error{}", loaded.path, if n == 1 { "" } else { "s" })?;
            Ok(ExitCode::from(1))
        }
        Ok(compiled) => {
            for warning in &compiled.warnings {
                writeln!(out, "{}", warning.render(&loaded.path, &loaded.source))?;
            }
            if let Some(days) = args.retention_days {
                let kept = leadscore_core::Duration::from_days(days);
                for warning in leadscore_core::check::retention_warnings(&compiled.model, kept) {
                    writeln!(out, "{}", warning.render(&loaded.path, &loaded.source))?;
                }
            }
            let model = &compiled.model;
            let n_rules: usize = model.scores().iter().map(|s| s.rules().len()).sum();
            writeln!(
                out,
                "{}: model `{}` is valid: {} score{}, {n_rules} rule{}",
                loaded.path,
                model.name(),
                model.scores().len(),
                if model.scores().len() == 1 { "" } else { "s" },
                if n_rules == 1 { "" } else { "s" },
            )?;
            write!(out, "{}", render_report(&check::report(model)))?;
            // The model's own tests: a failure is a problem of the file, at the test's name.
            let outcomes = leadscore_core::model_tests::run(model);
            let failures: Vec<_> = outcomes.iter().filter_map(|o| o.diagnostic()).collect();
            if !outcomes.is_empty() {
                writeln!(
                    out,
                    "\n{} test{}, {} failed",
                    outcomes.len(),
                    if outcomes.len() == 1 { "" } else { "s" },
                    failures.len()
                )?;
            }
            for failure in &failures {
                writeln!(out, "{}", failure.render(&loaded.path, &loaded.source))?;
            }
            Ok(if failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
    }
}

fn bound(value: f64) -> String {
    if value.is_infinite() { "unbounded".to_string() } else { format_number(value) }
}

/// The per-score part of the report.
pub fn render_report(reports: &[ScoreReport]) -> String {
    let mut out = String::new();
    for report in reports {
        let kind = match &report.predictive {
            Some(reference) => format!(" (predictive: the probability of `{reference}`, times 100)"),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "\nscore `{}`{kind}: lowest {}, highest {}",
            report.score,
            bound(report.range.min),
            bound(report.range.max)
        );
        for tier in &report.tiers {
            let range = match (tier.min, tier.max, tier.below) {
                _ if tier.note.as_deref() == Some("only through a qualifier")
                    && tier.min.is_none()
                    && tier.max.is_none() =>
                {
                    "by qualifier".to_string()
                }
                (None, None, None) => "any score".to_string(),
                (None, None, Some(below)) => format!("below {}", format_number(below)),
                (Some(min), None, Some(below)) => format!("{} to below {}", format_number(min), format_number(below)),
                (Some(min), None, None) => format!("{} and up", format_number(min)),
                (None, Some(max), _) => format!("up to {}", format_number(max)),
                (Some(min), Some(max), _) => format!("{} to {}", format_number(min), format_number(max)),
            };
            let status = match (&tier.note, tier.reachable) {
                (None, _) => String::new(),
                (Some(note), true) => format!("  ({note})"),
                (Some(note), false) => format!("  UNREACHABLE: {note}"),
            };
            let _ = writeln!(out, "  - {}: {range}{status}", tier.label);
        }
    }
    out
}
