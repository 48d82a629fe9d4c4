//! Charts drawn on the server as SVG, so that they show without script and print.
//!
//! A waterfall is drawn as rows: each row's label and value are text of the page (they wrap and
//! keep their size on a phone), and only its bar is an SVG strip stretched to its column, hidden
//! from screen readers, which read a table of the same figures. Written by hand: a few rectangles
//! and lines on a linear scale need no plotting crate, which would also estimate text sizes
//! itself. Every number placed is finite.
//!
//! A score over time is drawn in two layers: an inner SVG of lines only (the score's steps, the
//! tiers' thresholds, a tick per event, a line per stage move, each with a `<title>`) stretched
//! to the chart's box, inside an outer SVG in CSS pixels whose labels (thresholds, stage moves,
//! the axis) are placed in percent: text keeps its size on a phone while the lines stretch.

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

/// A point of a score's line: its value from `at` on.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    pub at: i64,
    pub value: f64,
}

/// A moment marked on a chart over time: an event or a stage move.
#[derive(Debug, Clone)]
pub struct Mark {
    pub at: i64,
    /// A short text shown by the mark (stage moves) or on hover (events).
    pub label: String,
}

/// A score over time, drawn.
#[derive(Debug, Clone)]
pub struct TimeChart {
    /// The chart, labels included, hidden from screen readers (the page says what it shows).
    pub svg: String,
    pub start: String,
    pub end: String,
    /// How many events and stage moves are marked.
    pub events: usize,
    pub stages: usize,
}

const TIME_WIDTH: f64 = 1000.0;
const TIME_HEIGHT: f64 = 240.0;
/// The band at the foot of the chart where events are ticked.
const TICKS: f64 = 16.0;

/// Text for SVG: `&`, `<`, `>` and quotes escaped (event types and stages come from clients).
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A date as the chart's axis shows it.
fn day(at: i64) -> String {
    leadscore_core::Timestamp(at).to_string().chars().take(10).collect()
}

/// A score's line from its changes (oldest first) to `end` (now), with its tiers' thresholds,
/// the events (ticks at the foot) and the stage moves (labelled lines) within its time; `None`
/// without a point to draw.
pub fn over_time(
    points: &[Point],
    end: i64,
    thresholds: &[Threshold],
    events: &[Mark],
    stages: &[Mark],
) -> Option<TimeChart> {
    let points: Vec<Point> = points.iter().copied().filter(|p| p.value.is_finite() && p.at <= end).collect();
    let first = points.first()?;
    // The line starts at the first recorded change; the events and stage moves before it are
    // shown too, so that the chart tells what happened before the score moved.
    let marks = stages.iter().chain(events).map(|mark| mark.at).filter(|at| *at <= end);
    let mut start = marks.fold(first.at, i64::min);
    if end - start < 3_600_000 {
        start = end - 86_400_000;
    }
    let (mut low, mut high) = (0.0f64, f64::MIN);
    for value in points.iter().map(|p| p.value).chain(thresholds.iter().map(|t| t.at).filter(|v| v.is_finite())) {
        low = low.min(value);
        high = high.max(value);
    }
    if high - low < 1e-9 {
        high = low + 1.0;
    }
    // The highest value the score took, labelled on the axis beside 0.
    let highest = points.iter().map(|p| p.value).fold(f64::MIN, f64::max);
    // Room above the highest line for the stage moves' labels, clear of the thresholds' labels.
    high += (high - low) * 0.2;
    let plot = TIME_HEIGHT - TICKS;
    let x = |at: i64| ((at.clamp(start, end) - start) as f64 / (end - start) as f64) * TIME_WIDTH;
    let y = |value: f64| plot - (value - low) / (high - low) * plot;
    let percent = |y: f64| y / TIME_HEIGHT * 100.0;
    let mut svg = format!(
        r#"<svg class="tc-plot" viewBox="0 0 {TIME_WIDTH} {TIME_HEIGHT}" preserveAspectRatio="none" width="100%" height="100%">"#
    );
    let mut labels = String::new();
    let _ = write!(
        svg,
        r#"<line class="tc-axis" x1="0" y1="{plot}" x2="{TIME_WIDTH}" y2="{plot}" vector-effect="non-scaling-stroke"/>"#
    );
    for threshold in thresholds.iter().filter(|t| t.at.is_finite()) {
        let at = y(threshold.at);
        let _ = write!(
            svg,
            r#"<line class="tc-threshold" x1="0" y1="{at:.1}" x2="{TIME_WIDTH}" y2="{at:.1}" vector-effect="non-scaling-stroke"><title>{} from {}</title></line>"#,
            escape(&threshold.label),
            plain(threshold.at)
        );
        let _ = write!(
            labels,
            r#"<text class="tc-threshold-label" x="100%" y="{:.1}%" dx="-4" dy="-4" text-anchor="end">{} {}</text>"#,
            percent(at),
            escape(&threshold.label),
            plain(threshold.at)
        );
    }
    let shown_stages: Vec<&Mark> = stages.iter().filter(|s| s.at >= start && s.at <= end).collect();
    for stage in &shown_stages {
        let at = x(stage.at);
        let _ = write!(
            svg,
            r#"<line class="tc-stage" x1="{at:.1}" y1="0" x2="{at:.1}" y2="{plot}" vector-effect="non-scaling-stroke"><title>moved to {} on {}</title></line>"#,
            escape(&stage.label),
            day(stage.at)
        );
        // A label near the right edge ends at its line rather than running off the chart.
        let (anchor, dx) = if at > TIME_WIDTH * 0.8 { ("end", -4) } else { ("start", 4) };
        let _ = write!(
            labels,
            r#"<text class="tc-stage-label" x="{:.1}%" y="14" dx="{dx}" text-anchor="{anchor}">{}</text>"#,
            at / TIME_WIDTH * 100.0,
            escape(&stage.label)
        );
    }
    let marked: Vec<&Mark> = events.iter().filter(|e| e.at >= start && e.at <= end).collect();
    for event in &marked {
        let at = x(event.at);
        let _ = write!(
            svg,
            r#"<line class="tc-event" x1="{at:.1}" y1="{plot}" x2="{at:.1}" y2="{TIME_HEIGHT}" vector-effect="non-scaling-stroke"><title>{} on {}</title></line>"#,
            escape(&event.label),
            day(event.at)
        );
    }
    // Steps: a value holds until the next change.
    let mut path = format!("M{:.1} {:.1}", x(first.at), y(first.value));
    for point in &points[1..] {
        let _ = write!(path, " H{:.1} V{:.1}", x(point.at), y(point.value));
    }
    let _ = write!(path, " H{TIME_WIDTH}");
    let _ = write!(svg, r#"<path class="tc-line" d="{path}" vector-effect="non-scaling-stroke"/></svg>"#);
    let top_label = if highest > low + 1e-9 {
        format!(r#"<text class="tc-y" x="2" y="{:.1}%" dy="-4">{}</text>"#, percent(y(highest)), plain(highest))
    } else {
        String::new()
    };
    let svg = format!(
        r#"<svg class="tc-chart" width="100%" height="{TIME_HEIGHT}" aria-hidden="true" focusable="false">{svg}<text class="tc-y" x="2" y="{:.1}%" dy="-4">{}</text>{top_label}{labels}</svg>"#,
        percent(plot),
        plain(low),
    );
    Some(TimeChart { svg, start: day(start), end: day(end), events: marked.len(), stages: shown_stages.len() })
}

// Funnel page charts: columns by week, a line of shares by week, and bar strips beside figures.

/// A horizontal bar strip for a figure shown beside it as text: `value` of `max` of the width,
/// hidden from screen readers (the figure is on the page).
pub fn strip(value: f64, max: f64, class: &str) -> String {
    let share = if max > 0.0 && value.is_finite() { (value / max).clamp(0.0, 1.0) } else { 0.0 };
    let width = if share > 0.0 { (share * STRIP).max(4.0) } else { 0.0 };
    format!(
        r#"<svg class="strip" viewBox="0 0 {STRIP} 20" preserveAspectRatio="none" aria-hidden="true" focusable="false"><rect class="strip-track" x="0" y="3" width="{STRIP}" height="14"/><rect class="{class}" x="0" y="3" width="{width:.1}" height="14"/></svg>"#
    )
}

/// One point of a chart by week: the label under it and its value (`None`: nothing to show).
#[derive(Debug, Clone)]
pub struct WeekPoint {
    pub label: String,
    pub value: Option<f64>,
}

/// The frame of a weekly chart: its coordinates are sized for a column of 420 to 640 px (the
/// stylesheet's bounds; a phone scrolls it sideways), so that its text reads at 12 to 19 px.
const CHART_WIDTH: f64 = 480.0;
const CHART_HEIGHT: f64 = 240.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 52.0;

/// A round step for an axis from 0 to at least `high`, with about four ticks.
fn axis_step(high: f64) -> f64 {
    let raw = (high / 4.0).max(1e-9);
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(10.0 * magnitude);
    if high <= 4.0 { step.max(1.0) } else { step }
}

/// The opening of a chart (its title and description for screen readers), its horizontal grid
/// with the axis's values, the axis's name, and the x position of each point.
fn frame(
    id: &str,
    title: &str,
    description: &str,
    y_name: &str,
    y_max: f64,
    suffix: &str,
    points: &[WeekPoint],
) -> (String, Vec<f64>, f64) {
    let step = axis_step(y_max);
    let top = (y_max / step).ceil().max(1.0) * step;
    let plot_height = CHART_HEIGHT - TOP - BOTTOM;
    let y = |v: f64| TOP + plot_height - v / top * plot_height;
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" role="img" aria-labelledby="{id}-title {id}-desc"><title id="{id}-title">{}</title><desc id="{id}-desc">{}</desc>"#,
        escape(title),
        escape(description)
    );
    let mut tick = 0.0;
    while tick <= top + 1e-9 {
        let at = y(tick);
        let label = if step.fract() == 0.0 { format!("{tick:.0}{suffix}") } else { format!("{tick:.1}{suffix}") };
        let _ = write!(
            svg,
            r#"<line class="chart-grid" x1="{LEFT}" y1="{at:.1}" x2="{:.1}" y2="{at:.1}"/><text class="chart-tick" x="{:.1}" y="{:.1}" text-anchor="end">{label}</text>"#,
            CHART_WIDTH - RIGHT,
            LEFT - 6.0,
            at + 4.0
        );
        tick += step;
    }
    let _ = write!(
        svg,
        r#"<text class="chart-axis" x="16" y="{:.1}" transform="rotate(-90 16 {:.1})" text-anchor="middle">{}</text>"#,
        TOP + plot_height / 2.0,
        TOP + plot_height / 2.0,
        escape(y_name)
    );
    let slot = (CHART_WIDTH - LEFT - RIGHT) / points.len().max(1) as f64;
    let xs: Vec<f64> = (0..points.len()).map(|i| LEFT + slot * (i as f64 + 0.5)).collect();
    // Every label when they fit, else every second, fourth...: the table has them all.
    let every = (1..).find(|n| points.len().div_ceil(*n) <= 6).unwrap_or(1);
    for (i, (point, x)) in points.iter().zip(&xs).enumerate() {
        if i % every == 0 {
            let _ = write!(
                svg,
                r#"<text class="chart-tick" x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                CHART_HEIGHT - BOTTOM + 20.0,
                escape(&point.label)
            );
        }
    }
    let _ = write!(
        svg,
        r#"<text class="chart-axis" x="{:.1}" y="{:.1}" text-anchor="middle">Week (starting Monday)</text>"#,
        LEFT + (CHART_WIDTH - LEFT - RIGHT) / 2.0,
        CHART_HEIGHT - 8.0
    );
    (svg, xs, top)
}

/// Columns by week, from zero, each with its value above it when there is room.
pub fn week_columns(id: &str, title: &str, description: &str, y_name: &str, points: &[WeekPoint]) -> String {
    let high = points.iter().filter_map(|p| p.value).filter(|v| v.is_finite()).fold(0.0f64, f64::max);
    // Room above the highest column for its value.
    let (mut svg, xs, top) = frame(id, title, description, y_name, high.max(1.0) * 1.12, "", points);
    let plot_height = CHART_HEIGHT - TOP - BOTTOM;
    let slot = (CHART_WIDTH - LEFT - RIGHT) / points.len().max(1) as f64;
    let width = (slot * 0.7).max(1.0);
    for (point, x) in points.iter().zip(xs) {
        let value = point.value.filter(|v| v.is_finite()).unwrap_or(0.0).max(0.0);
        let height = value / top * plot_height;
        let _ = write!(
            svg,
            r#"<rect class="chart-column" x="{:.1}" y="{:.1}" width="{width:.1}" height="{height:.1}"/>"#,
            x - width / 2.0,
            TOP + plot_height - height
        );
        if points.len() <= 16 && value > 0.0 {
            let _ = write!(
                svg,
                r#"<text class="chart-value" x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                TOP + plot_height - height - 5.0,
                plain(value)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// A line of percentages by week on an axis from 0 to 100 %, each point marked (a square, so
/// the line reads without its colour); weeks without a value break the line.
pub fn week_percentages(id: &str, title: &str, description: &str, y_name: &str, points: &[WeekPoint]) -> String {
    let (mut svg, xs, top) = frame(id, title, description, y_name, 100.0, " %", points);
    let plot_height = CHART_HEIGHT - TOP - BOTTOM;
    let y = |v: f64| TOP + plot_height - v.clamp(0.0, top) / top * plot_height;
    let mut path = String::new();
    let mut pen_down = false;
    for (point, x) in points.iter().zip(&xs) {
        match point.value.filter(|v| v.is_finite()) {
            Some(value) => {
                let _ = write!(path, "{}{x:.1} {:.1} ", if pen_down { "L" } else { "M" }, y(value));
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    if !path.is_empty() {
        let _ = write!(svg, r#"<path class="chart-line" d="{}"/>"#, path.trim_end());
    }
    for (point, x) in points.iter().zip(&xs) {
        if let Some(value) = point.value.filter(|v| v.is_finite()) {
            let _ = write!(
                svg,
                r#"<rect class="chart-point" x="{:.1}" y="{:.1}" width="8" height="8"/>"#,
                x - 4.0,
                y(value) - 4.0
            );
            if points.len() <= 16 {
                let _ = write!(
                    svg,
                    r#"<text class="chart-value" x="{x:.1}" y="{:.1}" text-anchor="middle">{} %</text>"#,
                    y(value) - 10.0,
                    plain(value)
                );
            }
        }
    }
    svg.push_str("</svg>");
    svg
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
    fn a_score_over_time_steps_between_its_changes_and_marks_what_happened() {
        let day = 86_400_000;
        let points = [Point { at: 0, value: 10.0 }, Point { at: 5 * day, value: 60.0 }];
        let thresholds = [Threshold { label: "mql".into(), at: 50.0 }];
        let events =
            [Mark { at: 5 * day, label: "demo <request>".into() }, Mark { at: 11 * day, label: "later".into() }];
        let stages = [Mark { at: 6 * day, label: "mql".into() }];
        let chart = over_time(&points, 10 * day, &thresholds, &events, &stages).unwrap();
        // From 0 to 60 and 20% of room above (72); the plot is 224 high.
        assert!(chart.svg.contains(r#"d="M0.0 192.9 H500.0 V37.3 H1000""#), "{}", chart.svg);
        // The axis names 0 and the highest value, at its height.
        assert!(chart.svg.contains(r#"<text class="tc-y" x="2" y="15.6%" dy="-4">60</text>"#), "{}", chart.svg);
        assert_eq!(chart.events, 1, "an event after the chart's end is not marked");
        assert!(chart.svg.contains("<title>demo &lt;request&gt; on 1970-01-06</title>"));
        assert_eq!(chart.stages, 1);
        assert!(
            chart
                .svg
                .contains(r#"<text class="tc-stage-label" x="60.0%" y="14" dx="4" text-anchor="start">mql</text>"#)
        );
        assert!(chart.svg.contains(r#">mql 50</text>"#), "the threshold is labelled");
        assert_eq!((chart.start.as_str(), chart.end.as_str()), ("1970-01-01", "1970-01-11"));
        assert!(!chart.svg.contains("NaN"));
        assert!(over_time(&[], 10, &[], &[], &[]).is_none());
        let single = over_time(
            &[Point { at: 10 * day, value: f64::NAN }, Point { at: 10 * day, value: 3.0 }],
            10 * day,
            &[],
            &[],
            &[],
        )
        .unwrap();
        assert_eq!(single.start, "1970-01-10", "a single change is drawn over the day before");
        let earlier = over_time(&points, 10 * day, &[], &[Mark { at: -10 * day, label: "visit".into() }], &[]).unwrap();
        assert_eq!(
            (earlier.start.as_str(), earlier.events),
            ("1969-12-22", 1),
            "events before the first change widen the chart"
        );
        assert!(!single.svg.contains("NaN"));
    }

    #[test]
    fn points_read_signed_with_one_decimal() {
        assert_eq!(signed(12.0), "+12");
        assert_eq!(signed(-4.25), "−4.3");
        assert_eq!(signed(0.04), "0");
        assert_eq!(plain(112.06), "112.1");
    }

    #[test]
    fn weekly_charts_label_their_axes_and_escape_their_text() {
        let points: Vec<WeekPoint> = (0..3)
            .map(|i| WeekPoint { label: format!("{} Nov", 2 + 7 * i), value: Some(f64::from(i) * 3.0) })
            .collect();
        let columns = week_columns("mql", "New MQLs <per week>", "3 weeks", "MQLs", &points);
        assert!(
            columns.contains(r#"role="img""#)
                && columns.contains("<title id=\"mql-title\">New MQLs &lt;per week&gt;</title>")
        );
        assert_eq!(columns.matches("chart-column").count(), 3);
        assert!(
            columns.contains(">16 Nov<") && columns.contains(">Week (starting Monday)<") && columns.contains(">MQLs<")
        );
        // Values 0, 3, 6 on an axis of 0 to 8 by 2.
        assert!(columns.contains(">8<") && !columns.contains(">10<"), "{columns}");
        let mut gaps = points.clone();
        gaps[1].value = None;
        let line = week_percentages("top", "Top tier", "share", "Share", &gaps);
        assert_eq!(line.matches("chart-point").count(), 2);
        assert!(line.contains(">100 %<"));
        assert_eq!(line.matches('M').count() - line.matches("Monday").count(), 2, "the line breaks at the gap: {line}");
        assert!(!line.contains("NaN") && !columns.contains("NaN"));
        assert!(strip(5.0, 10.0, "s").contains(r#"width="500.0""#));
        assert!(strip(1.0, 0.0, "s").contains(r#"width="0.0""#));
    }
}
