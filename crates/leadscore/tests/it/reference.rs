//! The reference model against DuckDB: `leadscore score` must give every lead of a generated data
//! set the score (to 1e-6) and tier that DuckDB's SQL version of the model gives it.
//! The data and DuckDB's output are committed in tests/fixtures/reference (see its README).

use std::path::Path;
use std::process::Command;

fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines().skip(1).map(split_csv_line).collect()
}

/// Splits a CSV line with optional quotes (ids and tiers here never contain newlines).
fn split_csv_line(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().unwrap().push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (c, _) => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

#[test]
fn scores_and_tiers_match_duckdb() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixture = root.join("tests/fixtures/reference");
    let output = Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(["score", "--as-of", "2026-11-01T00:00:00Z", "--model"])
        .arg(root.join("../../examples/reference.toml"))
        .arg("--leads")
        .arg(fixture.join("leads.csv"))
        .arg("--events")
        .arg(fixture.join("events.csv"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let ours = String::from_utf8(output.stdout).unwrap();
    assert!(ours.starts_with("lead_id,score,score_tier\n"));
    let expected = std::fs::read_to_string(fixture.join("expected.csv")).unwrap();
    let (ours, expected) = (rows(&ours), rows(&expected));
    assert_eq!(ours.len(), 1500);
    assert_eq!(ours.len(), expected.len());
    let mut tiers = std::collections::BTreeMap::new();
    for (got, want) in ours.iter().zip(&expected) {
        assert_eq!(got[0], want[0], "lead order");
        let (g, w): (f64, f64) = (got[1].parse().unwrap(), want[1].parse().unwrap());
        assert!((g - w).abs() <= 1e-6, "lead {}: {g} instead of {w}", got[0]);
        assert_eq!(got[2], want[2], "lead {} tier", got[0]);
        *tiers.entry(got[2].clone()).or_insert(0) += 1;
    }
    // The data set covers every tier.
    assert_eq!(
        tiers.into_iter().collect::<Vec<_>>(),
        [("cold".into(), 746), ("mql".into(), 225), ("warm".into(), 529)]
    );
}
