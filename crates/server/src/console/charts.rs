//! Charts drawn on the server as SVG, so that they show without script and print.
//!
//! A waterfall is drawn as rows: each row's label and value are text of the page (they wrap and
//! keep their size on a phone), and only its bar is an SVG strip stretched to its column, hidden
//! from screen readers, which read a table of the same figures. Written by hand: a few rectangles
//! and lines on a linear scale need no plotting crate, which would also estimate text sizes
//! itself. Every number placed is finite.

use std::fmt::Write as _;

/// One step of a waterfall: a share of a score from where the previous ended.
#[derive(Debug, Clone)]
pub struct Step {
    pub label: String,
    pub points: f64,
}

/// A tier threshold, drawn as a dashed line across the rows.
#[derive(Debug, Clone)]
pub struct Threshold {
    pub label: String,
    pub at: f64,
}

/// One row of a drawn waterfall: its label and value as text, its bar as a strip of SVG.
#[derive(Debug, Clone)]
pub struct WaterfallRow {
    pub label: String,
    pub value: String,
    /// `up`, `down` or `total`.
    pub kind: &'static str,
    pub bar: String,
}

/// The width of a bar strip's coordinates; strips stretch to their column.
const STRIP: f64 = 1000.0;

/// Points as a chart labels them: signed, at most one decimal, a true minus sign.
pub fn signed(points: f64) -> String {
    let rounded = (points * 10.0).round() / 10.0;
    let text = if rounded.fract() == 0.0 { format!("{rounded:.0}") } else { format!("{rounded:.1}") };
    if rounded > 0.0 {
        format!("+{text}")
    } else if rounded == 0.0 {
        "0".to_string()
    } else {
        text.replace('-', "−")
    }
}

/// A value as a chart shows it: at most one decimal.
pub fn plain(value: f64) -> String {
    signed(value).trim_start_matches('+').to_string()
}

/// A waterfall as rows: each step a bar from the running total, then the total from zero, with
/// the thresholds as dashed lines across every row.
pub fn waterfall(steps: &[Step], total: f64, thresholds: &[Threshold]) -> Vec<WaterfallRow> {
    let finite = |v: f64| if v.is_finite() { v } else { 0.0 };
    let total = finite(total);
    let mut running = 0.0;
    let (mut low, mut high) = (0.0f64.min(total), total.max(0.0));
    for step in steps {
        running += finite(step.points);
        low = low.min(running);
        high = high.max(running);
    }
    for threshold in thresholds {
        low = low.min(finite(threshold.at));
        high = high.max(finite(threshold.at));
    }
    if high - low < 1e-9 {
        high = low + 1.0;
    }
    let x = |v: f64| (finite(v) - low) / (high - low) * STRIP;
    let strip = |from: f64, to: f64, class: &str| {
        let (left, right) = (x(from.min(to)), x(from.max(to)));
        let mut svg = format!(
            r#"<svg class="wf-bar" viewBox="0 0 {STRIP} 20" preserveAspectRatio="none" aria-hidden="true" focusable="false">"#
        );
        for threshold in thresholds {
            let at = x(threshold.at);
            let _ = write!(
                svg,
                r#"<line class="wf-threshold" x1="{at:.1}" y1="0" x2="{at:.1}" y2="20" vector-effect="non-scaling-stroke"/>"#
            );
        }
        let zero = x(0.0);
        let _ = write!(
            svg,
            r#"<line class="wf-zero" x1="{zero:.1}" y1="0" x2="{zero:.1}" y2="20" vector-effect="non-scaling-stroke"/><rect class="{class}" x="{left:.1}" y="3" width="{w:.1}" height="14"/></svg>"#,
            w = (right - left).max(2.0),
        );
        svg
    };
    let mut rows = Vec::with_capacity(steps.len() + 1);
    let mut running = 0.0;
    for step in steps {
        let from = running;
        running += finite(step.points);
        let kind = if step.points >= 0.0 { "up" } else { "down" };
        rows.push(WaterfallRow {
            label: step.label.clone(),
            value: signed(step.points),
            kind,
            bar: strip(from, running, &format!("wf-{kind}")),
        });
    }
    rows.push(WaterfallRow {
        label: "Score".to_string(),
        value: plain(total),
        kind: "total",
        bar: strip(0.0, total, "wf-total"),
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waterfall_has_a_row_per_step_and_the_total_each_from_the_running_total() {
        let steps = vec![
            Step { label: "visited <pricing>".into(), points: 20.0 },
            Step { label: "inactive".into(), points: -5.0 },
        ];
        let rows = waterfall(&steps, 15.0, &[Threshold { label: "mql".into(), at: 10.0 }]);
        let summary: Vec<(&str, &str, &str)> =
            rows.iter().map(|r| (r.label.as_str(), r.value.as_str(), r.kind)).collect();
        assert_eq!(summary, [("visited <pricing>", "+20", "up"), ("inactive", "−5", "down"), ("Score", "15", "total")]);
        // On a scale from 0 to 20: the drop runs from 15 to 20, the total from 0 to 15.
        assert!(rows[1].bar.contains(r#"<rect class="wf-down" x="750.0" y="3" width="250.0""#), "{}", rows[1].bar);
        assert!(rows[2].bar.contains(r#"<rect class="wf-total" x="0.0" y="3" width="750.0""#), "{}", rows[2].bar);
        assert_eq!(rows[0].bar.matches("wf-threshold").count(), 1);
        assert!(rows.iter().all(|r| !r.bar.contains("NaN") && r.bar.contains(r#"aria-hidden="true""#)));
        let empty = waterfall(&[], f64::NAN, &[]);
        assert!(!empty[0].bar.contains("NaN") && empty[0].value == "0");
    }

    #[test]
    fn points_read_signed_with_one_decimal() {
        assert_eq!(signed(12.0), "+12");
        assert_eq!(signed(-4.25), "−4.3");
        assert_eq!(signed(0.04), "0");
        assert_eq!(plain(112.06), "112.1");
    }
}
