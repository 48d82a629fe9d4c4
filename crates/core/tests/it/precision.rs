//! A score's `precision`: its value is rounded once, and its tier is the rounded value's, so that
//! points which add up to a threshold reach it however long decay has run.

use crate::common::*;
use leadscore_core::{Timestamp, compile};
use proptest::prelude::*;

/// Three events worth 15 + 20 + 15 = 50 points under a slow decay, and `mql` from 50.
fn decaying_model(precision: &str) -> String {
    format!(
        r#"
[scores.engagement]
{precision}
tiers = [{{ label = "cold" }}, {{ label = "mql", min = 50 }}]
[[scores.engagement.rules]]
name = "webinar"
event = "webinar"
points = 15
decay = {{ half_life = "1180d" }}
[[scores.engagement.rules]]
name = "demo"
event = "demo"
points = 20
decay = {{ half_life = "1180d" }}
"#
    )
}

#[test]
fn points_that_add_up_to_a_threshold_reach_it_a_second_later() {
    let events = [ev("webinar", at(AS_OF)), ev("demo", at(AS_OF)), ev("webinar", at(AS_OF))];
    let a_second_later = Timestamp(at(AS_OF).0 + 1_000);
    // Unrounded, the three shares a second later add up to just under 50.
    let exact = 50.0 * 0.5f64.powf(1.0 / (1180.0 * 86_400.0));
    assert!(exact < 50.0 && exact > 49.9999996, "{exact}");
    for precision in ["", "precision = 6", "precision = 2", "precision = 0"] {
        let m = model(&decaying_model(precision));
        let outcome = score_at(&m, &[], &events, a_second_later).remove(0);
        assert_eq!(outcome.value, 50.0, "{precision}");
        assert_eq!(outcome.tier.as_deref(), Some("mql"), "{precision}");
        // The explanation keeps the exact shares: they add up to the value within half a unit.
        let sum: f64 = outcome.contributions.iter().map(|c| c.2).sum();
        assert!(sum < 50.0 && 50.0 - sum < 0.5e-6, "{sum}");
    }
}

#[test]
fn precision_rounds_half_away_from_zero_to_its_decimals() {
    let text = |precision: u8, points: &str| {
        format!(
            "[scores.s]\nprecision = {precision}\n[[scores.s.rules]]\nname = \"r\"\nwhen = {{ field = \"x\", present = true }}\npoints = {points}\n"
        )
    };
    for (precision, points, expected) in [
        (2, "12.345678", 12.35),
        (2, "-12.344", -12.34),
        (0, "49.5", 50.0),
        (0, "-0.4", 0.0),
        (3, "0.0004", 0.0),
        (6, "8.503741234", 8.503741),
    ] {
        let m = model(&text(precision, points));
        let (value, _) = first(&m, &[("x", "1")], &[]);
        assert_eq!(value, expected, "precision {precision}, points {points}");
        assert!(value.is_sign_positive() || value != 0.0, "no negative zero");
    }
}

#[test]
fn precision_is_a_number_of_decimals_from_0_to_6() {
    for (value, column) in [("7", 13), ("-1", 13)] {
        let text = format!("[scores.s]\nprecision = {value}\n");
        let error = compile(&text).expect_err("out-of-range precision is an error").render("model.toml");
        assert!(error.contains(&format!("`precision` is a number of decimals from 0 to 6, not {value}")), "{error}");
        assert!(error.contains(&format!("model.toml:2:{column}")), "{error}");
    }
    let error = compile("[scores.s]\nprecision = 2.5\n").expect_err("a fraction is an error").render("model.toml");
    assert!(error.contains("model.toml:2:"), "{error}");
}

#[test]
fn a_tier_limit_with_more_decimals_than_the_precision_is_a_warning() {
    let text = "[scores.s]\nprecision = 2\ntiers = [{ label = \"low\" }, { label = \"high\", min = 50.005 }]\n\
                [[scores.s.rules]]\nname = \"r\"\nwhen = { field = \"x\", present = true }\npoints = 50.004\n";
    let compiled = compile(text).expect("a warning, not an error");
    let warnings: Vec<String> = compiled.warnings.iter().map(|w| w.render("model.toml", text)).collect();
    assert_eq!(
        warnings,
        [
            "model.toml:3:53: warning: tier `high` has `min` 50.005, with more decimals than the score's `precision` (2): values are rounded to 2 decimals before tiers are compared"
        ]
    );
    // 50.004 rounds to 50, below 50.005: the tier is the rounded value's.
    assert_eq!(first(&compiled.model, &[("x", "1")], &[]), (50.0, Some("low".to_string())));
    let same_decimals = text.replace("50.005", "50.01");
    assert!(compile(&same_decimals).unwrap().warnings.is_empty());
}

proptest! {
    /// Rounding never moves a value across a tier boundary that the unrounded value missed, or
    /// reached, by more than half a unit of the precision.
    #[test]
    fn rounding_crosses_a_tier_boundary_only_within_half_a_unit(
        precision in 0u8..=6,
        threshold_units in -100_000i64..100_000,
        threshold_decimals in 0u8..=8,
        offset in -3.0f64..3.0,
    ) {
        let unit = 10f64.powi(-i32::from(precision));
        // Thresholds with as many decimals as the precision, or more (which no rounded value
        // can equal), and points within a few units of them.
        let threshold = threshold_units as f64 / 10f64.powi(i32::from(threshold_decimals));
        let points = threshold + offset * unit;
        let text = format!(
            "[scores.s]\nprecision = {precision}\ntiers = [{{ label = \"low\" }}, {{ label = \"high\", min = {threshold:?} }}]\n\
             [[scores.s.rules]]\nname = \"r\"\nwhen = {{ field = \"x\", present = true }}\npoints = {points:?}\n"
        );
        let m = model(&text);
        let (value, tier) = first(&m, &[("x", "1")], &[]);
        let reached = tier.as_deref() == Some("high");
        prop_assert_eq!(reached, value >= threshold, "the tier is the rounded value's");
        prop_assert!((value - points).abs() <= unit / 2.0 + 1e-9 * points.abs().max(1.0), "{} from {}", value, points);
        // Floating point leaves a few ulps either side of the half unit.
        let slack = unit / 2.0 + 1e-9 * points.abs().max(1.0);
        if reached {
            prop_assert!(points >= threshold - slack, "{} reached {} from {}", value, threshold, points);
        } else {
            prop_assert!(points < threshold + slack, "{} missed {} from {}", value, threshold, points);
        }
    }
}
