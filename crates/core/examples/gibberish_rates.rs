//! How often the `gibberish` condition flags the names of each file given (one name a line, `#`
//! comments): the false-positive rate on real names, the detection rate on gibberish. Run by
//! bench/gibberish/run.sh; `--scores FILE` prints the trigram model's mean log-probability of
//! every a-z word of the file, at some percentiles, to choose the threshold.
//!
//! cargo run --release -p leadscore-core --example gibberish_rates -- FILE... [--show N]

use std::collections::BTreeMap;

use leadscore_core::gibberish_reason;
use leadscore_core::rules::gibberish::word_log_probability;

fn names(path: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).map(str::to_string).collect()
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut show = 0;
    if let Some(i) = args.iter().position(|a| a == "--show") {
        show = args.get(i + 1).and_then(|n| n.parse().ok()).expect("--show N");
        args.drain(i..i + 2);
    }
    if let Some(i) = args.iter().position(|a| a == "--scores") {
        let path = args.get(i + 1).expect("--scores FILE").clone();
        let mut scores: Vec<f64> = names(&path)
            .iter()
            .flat_map(|n| n.split(|c: char| !c.is_ascii_alphabetic()).map(str::to_lowercase).collect::<Vec<_>>())
            .filter(|w| w.len() >= 4)
            .filter_map(|w| word_log_probability(&w))
            .collect();
        scores.sort_by(f64::total_cmp);
        for p in [0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 50.0, 90.0, 99.0] {
            let at = ((p / 100.0) * (scores.len() - 1) as f64).round() as usize;
            println!("{path}: {p:>5}% of {} words below {:.3}", scores.len(), scores[at]);
        }
        return;
    }
    for path in &args {
        let all = names(path);
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
}
