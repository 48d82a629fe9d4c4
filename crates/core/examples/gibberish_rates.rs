//! How often the `gibberish` condition flags the names of each file given (one name a line, `#`
//! comments): the false-positive rate on real names, the detection rate on gibberish. Run by
//! bench/gibberish/run.sh; `--scores FILE` prints the trigram model's mean log-probability of
//! the a-z words of four letters or more of the file, at some percentiles, to choose the
//! threshold.
//!
//! cargo run --release -p leadscore-core --example gibberish_rates -- FILE... [--show N]

use std::collections::BTreeMap;
use std::process::ExitCode;

use leadscore_core::gibberish_reason;
use leadscore_core::rules::gibberish::word_log_probability;

fn names(path: &str) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    Ok(text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).map(str::to_string).collect())
}

/// Removes `--flag VALUE` from `args` and returns the value.
fn take_option(args: &mut Vec<String>, flag: &str) -> Result<Option<String>, String> {
    let Some(i) = args.iter().position(|a| a == flag) else { return Ok(None) };
    if i + 1 >= args.len() {
        return Err(format!("{flag} needs a value"));
    }
    let value = args.remove(i + 1);
    args.remove(i);
    Ok(Some(value))
}

fn percentiles(path: &str) -> Result<(), String> {
    let mut scores: Vec<f64> = names(path)?
        .iter()
        .flat_map(|n| n.split(|c: char| !c.is_ascii_alphabetic()).map(str::to_lowercase).collect::<Vec<_>>())
        .filter(|w| w.len() >= 4)
        .filter_map(|w| word_log_probability(&w))
        .collect();
    if scores.is_empty() {
        return Err(format!("{path} has no a-z word of four letters or more"));
    }
    scores.sort_by(f64::total_cmp);
    for p in [0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 50.0, 90.0, 99.0] {
        let at = ((p / 100.0) * (scores.len() - 1) as f64).round() as usize;
        println!("{path}: {p:>5}% of {} words below {:.3}", scores.len(), scores[at]);
    }
    Ok(())
}

fn rates(paths: &[String], show: usize) -> Result<(), String> {
    for path in paths {
        let all = names(path)?;
        let mut by_reason: BTreeMap<String, usize> = BTreeMap::new();
        let mut flagged = Vec::new();
        for name in &all {
            if let Some(reason) = gibberish_reason(name) {
                *by_reason.entry(format!("{reason:?}")).or_default() += 1;
                flagged.push((name, reason));
            }
        }
        let rate = 100.0 * flagged.len() as f64 / all.len().max(1) as f64;
        println!("{path}: {} of {} names flagged ({rate:.2}%), by reason {by_reason:?}", flagged.len(), all.len());
        for (name, reason) in flagged.iter().take(show) {
            println!("  {name}\t{reason:?}");
        }
    }
    Ok(())
}

fn run() -> Result<(), String> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let show = match take_option(&mut args, "--show")? {
        Some(n) => n.parse().map_err(|_| format!("--show takes a number, not {n}"))?,
        None => 0,
    };
    if let Some(path) = take_option(&mut args, "--scores")? {
        return percentiles(&path);
    }
    if args.is_empty() {
        return Err("usage: gibberish_rates FILE... [--show N] | --scores FILE".to_string());
    }
    rates(&args, show)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}
