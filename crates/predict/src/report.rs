//! A self-contained HTML evaluation report: a table of key figures and inline SVG charts (ROC curve,
//! calibration, lift and cumulative gain by decile, score distribution), with no external assets and no
//! JavaScript, so the single file can be mailed, archived or opened offline.
//!
//! The SVG is written by hand rather than with a plotting crate: there are only four simple charts, and
//! `plotters` (the usual choice) estimates text metrics itself, which misplaces labels in a browser's fonts, and
//! has no hooks for accessibility (`role="img"`, `<title>`, `aria-label`). Hand-written SVG keeps text as real
//! text, styled by the page, and keeps the crate free of a heavy dependency.
//!
//! Every chart has a fixed `viewBox` and matching `width`/`height` attributes, so the browser knows its aspect
//! ratio before layout (no layout shift) and scales it to the page width. All text from the caller (title,
//! subtitle, summary) is escaped as HTML entities; titles often come from file names. Non-finite numbers never
//! reach the output: NaN scores are skipped and undefined figures (e.g. lift without positives) are explained
//! in the chart instead of drawn.

use std::fmt::Write as _;

use crate::metrics;

/// What the report shows.
#[derive(Debug, Clone)]
pub struct ReportInput<'a> {
    /// Page title (plain text; escaped).
    pub title: &'a str,
    /// A line under the title (plain text; escaped), e.g. the data set and model.
    pub subtitle: &'a str,
    /// Scores of the evaluated leads (any scale; higher = more likely to convert).
    pub scores: &'a [f64],
    /// Outcomes, same order and length as `scores` (true = converted).
    pub labels: &'a [bool],
    /// Predicted probabilities, same length as `labels`; the calibration chart is shown only when given.
    pub probabilities: Option<&'a [f64]>,
    /// Key figures shown as a two-column table, in this order (plain text; escaped).
    pub summary: Vec<(String, String)>,
}

// Colours (Okabe–Ito, readable for colour-blind viewers) and geometry shared by all charts.
const BLUE: &str = "#0072B2";
const ORANGE: &str = "#E69F00";
const GREY: &str = "#767676";
const INK: &str = "#222222";
const GRID: &str = "#e6e6e6";
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 400.0;

const CSS: &str = "body{font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;color:#222;background:#fff;\
margin:0;line-height:1.4}main{max-width:1320px;margin:0 auto;padding:24px}@media(max-width:480px){main{padding:12px}}h1{font-size:1.6rem;margin:0 0 4px}\
.subtitle{color:#555;margin:0 0 20px}h2{font-size:1.15rem;margin:0 0 8px}table{border-collapse:collapse;\
margin-bottom:28px}th,td{text-align:left;padding:4px 14px 4px 0;border-bottom:1px solid #ddd;\
font-variant-numeric:tabular-nums}th{font-weight:600}.charts{display:grid;\
grid-template-columns:repeat(auto-fit,minmax(min(100%,480px),1fr));gap:28px}figure{margin:0}\
figcaption{font-weight:600;margin-bottom:6px}svg{display:block;width:100%;height:auto}\
svg text{font-size:13px;fill:#222}";

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The whole report as one HTML page.
///
/// # Panics
/// When `labels` (or `probabilities`) and `scores` differ in length, a bug in the caller.
pub fn html(input: &ReportInput) -> String {
    assert_eq!(input.scores.len(), input.labels.len(), "report: scores and labels differ in length");
    if let Some(probabilities) = input.probabilities {
        assert_eq!(probabilities.len(), input.labels.len(), "report: probabilities and labels differ in length");
    }
    let title = escape(input.title);
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{title}</title>\n\
         <style>{CSS}</style>\n</head>\n<body>\n<main>\n<h1>{title}</h1>\n"
    );
    if !input.subtitle.is_empty() {
        let _ = writeln!(out, "<p class=\"subtitle\">{}</p>", escape(input.subtitle));
    }
    if !input.summary.is_empty() {
        out.push_str("<section>\n<h2>Key figures</h2>\n<table>\n<tbody>\n");
        for (key, value) in &input.summary {
            let _ = writeln!(out, "<tr><th scope=\"row\">{}</th><td>{}</td></tr>", escape(key), escape(value));
        }
        out.push_str("</tbody>\n</table>\n</section>\n");
    }
    out.push_str("<section class=\"charts\">\n");
    let charts = [
        Some(roc_chart(input.scores, input.labels)),
        input.probabilities.map(|p| calibration_chart(p, input.labels)),
        Some(lift_chart(input.scores, input.labels)),
        Some(histogram_chart(input.scores, input.labels)),
    ];
    for chart in charts.into_iter().flatten() {
        out.push_str(&chart);
    }
    out.push_str("</section>\n</main>\n</body>\n</html>\n");
    out
}

/// Points of the ROC curve `(false positive rate, true positive rate)`, one per distinct score threshold
/// (tied scores move the curve diagonally in one step), from (0, 0) to (1, 1). NaN scores are skipped.
/// `None` when either class is missing.
pub fn roc_points(scores: &[f64], labels: &[bool]) -> Option<Vec<(f64, f64)>> {
    let mut pairs: Vec<(f64, bool)> =
        scores.iter().copied().zip(labels.iter().copied()).filter(|(s, _)| !s.is_nan()).collect();
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let positives = pairs.iter().filter(|p| p.1).count();
    let negatives = pairs.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut points = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut start = 0;
    while start < pairs.len() {
        let end = start + pairs[start..].iter().take_while(|p| p.0 == pairs[start].0).count();
        let group_positives = pairs[start..end].iter().filter(|p| p.1).count();
        tp += group_positives;
        fp += end - start - group_positives;
        points.push((fp as f64 / negatives as f64, tp as f64 / positives as f64));
        start = end;
    }
    Some(points)
}

/// Plot area of a chart: maps data coordinates to SVG pixels.
struct Frame {
    x_range: (f64, f64),
    y_range: (f64, f64),
    left: f64,
    top: f64,
    right: f64,
    bottom: f64,
}

impl Frame {
    fn new(x_range: (f64, f64), y_range: (f64, f64), right_margin: f64) -> Self {
        Frame { x_range, y_range, left: 68.0, top: 44.0, right: WIDTH - right_margin, bottom: HEIGHT - 56.0 }
    }

    fn x(&self, value: f64) -> f64 {
        let (lo, hi) = self.x_range;
        finite(self.left + (value - lo) / (hi - lo) * (self.right - self.left))
    }

    fn y(&self, value: f64) -> f64 {
        let (lo, hi) = self.y_range;
        finite(self.bottom - (value - lo) / (hi - lo) * (self.bottom - self.top))
    }

    /// Grid lines, the axis lines, ticks with labels and the axis titles.
    fn axes(
        &self,
        out: &mut String,
        x_ticks: &[(f64, String)],
        y_ticks: &[(f64, String)],
        x_label: &str,
        y_label: &str,
    ) {
        out.push_str("<g aria-hidden=\"true\">\n");
        for (value, text) in y_ticks {
            let y = self.y(*value);
            let _ = writeln!(
                out,
                "<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{GRID}\"/>\
                 <line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{INK}\"/>\
                 <text x=\"{:.1}\" y=\"{y:.1}\" text-anchor=\"end\" dominant-baseline=\"middle\">{}</text>",
                self.left,
                self.right,
                self.left - 5.0,
                self.left,
                self.left - 8.0,
                escape(text)
            );
        }
        for (value, text) in x_ticks {
            let x = self.x(*value);
            let _ = writeln!(
                out,
                "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"{INK}\"/>\
                 <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                self.bottom,
                self.bottom + 5.0,
                self.bottom + 20.0,
                escape(text)
            );
        }
        let _ = writeln!(
            out,
            "<path d=\"M{l:.1},{t:.1}V{b:.1}H{r:.1}\" fill=\"none\" stroke=\"{INK}\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n\
             <text transform=\"translate(18 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
            (self.left + self.right) / 2.0,
            HEIGHT - 14.0,
            escape(x_label),
            (self.top + self.bottom) / 2.0,
            escape(y_label),
            l = self.left,
            t = self.top,
            b = self.bottom,
            r = self.right,
        );
        out.push_str("</g>\n");
    }

    /// A message in the middle of the plot area, for charts without data.
    fn message(&self, out: &mut String, text: &str) {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"{GREY}\">{}</text>",
            (self.left + self.right) / 2.0,
            (self.top + self.bottom) / 2.0,
            escape(text)
        );
    }
}

/// Replaces a non-finite coordinate by 0, so that no NaN can reach the SVG.
fn finite(value: f64) -> f64 {
    if value.is_finite() { value } else { 0.0 }
}

/// Opens a `<figure>` with a visible caption and an accessible `<svg>`; close with [`close_chart`].
fn open_chart(out: &mut String, title: &str, description: &str) {
    let (title, description) = (escape(title), escape(description));
    let _ = writeln!(
        out,
        "<figure>\n<figcaption>{title}</figcaption>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" \
         aria-label=\"{title}. {description}\">\n<title>{title}</title>\n<desc>{description}</desc>"
    );
}

fn close_chart(out: &mut String) {
    out.push_str("</svg>\n</figure>\n");
}

/// Legend entries `(colour, label, is_line)` in a row above the plot area.
fn legend(out: &mut String, frame: &Frame, entries: &[(&str, &str, bool)]) {
    let mut x = frame.left;
    let y = 22.0;
    out.push_str("<g aria-hidden=\"true\">\n");
    for (colour, label, is_line) in entries {
        if *is_line {
            let _ = write!(
                out,
                "<line x1=\"{x:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{colour}\" stroke-width=\"2.5\"/>",
                x + 18.0
            );
        } else {
            let _ =
                write!(out, "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"18\" height=\"12\" fill=\"{colour}\"/>", y - 6.0);
        }
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{y:.1}\" dominant-baseline=\"middle\">{}</text>",
            x + 24.0,
            escape(label)
        );
        // Rough width of the label; only spacing depends on it, so an estimate is enough.
        x += 24.0 + 7.5 * label.chars().count() as f64 + 20.0;
    }
    out.push_str("</g>\n");
}

/// A "nice" tick step (1, 2 or 5 times a power of ten) for about `target` intervals over `span`.
fn nice_step(span: f64, target: f64) -> f64 {
    if !(span.is_finite() && span > 0.0) {
        return 1.0;
    }
    let raw = span / target;
    let magnitude = 10f64.powf(raw.log10().floor());
    let normalised = raw / magnitude;
    let factor = if normalised < 1.5 {
        1.0
    } else if normalised < 3.0 {
        2.0
    } else if normalised < 7.0 {
        5.0
    } else {
        10.0
    };
    factor * magnitude
}

/// Formats `value` with as many decimals as `step` needs.
fn format_tick(value: f64, step: f64) -> String {
    let decimals = if step >= 1.0 { 0 } else { (-step.log10().floor()) as usize }.min(10);
    let text = format!("{value:.decimals$}");
    // Avoid "-0" and "-0.0".
    if text.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
        text.trim_start_matches('-').to_string()
    } else {
        text
    }
}

/// Ticks at multiples of `step` within `[lo, hi]`, labelled by `label`.
fn ticks(lo: f64, hi: f64, step: f64, label: impl Fn(f64) -> String) -> Vec<(f64, String)> {
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last).take(100).map(|i| i as f64 * step).map(|v| (v, label(v))).collect()
}

fn unit_ticks() -> Vec<(f64, String)> {
    ticks(0.0, 1.0, 0.2, |v| format!("{v:.1}"))
}

fn percent_ticks() -> Vec<(f64, String)> {
    ticks(0.0, 1.0, 0.2, |v| format!("{:.0}%", v * 100.0))
}

fn dashed_diagonal(out: &mut String, frame: &Frame) {
    let _ = writeln!(
        out,
        "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{GREY}\" stroke-width=\"1.5\" \
         stroke-dasharray=\"6 4\"/>",
        frame.x(0.0),
        frame.y(0.0),
        frame.x(1.0),
        frame.y(1.0)
    );
}

fn polyline(points: impl Iterator<Item = (f64, f64)>) -> String {
    points.map(|(x, y)| format!("{x:.1},{y:.1}")).collect::<Vec<_>>().join(" ")
}

fn roc_chart(scores: &[f64], labels: &[bool]) -> String {
    let mut out = String::new();
    let frame = Frame::new((0.0, 1.0), (0.0, 1.0), 24.0);
    let auc = metrics::roc_auc(scores, labels);
    let points = roc_points(scores, labels);
    let title = match auc {
        Some(auc) => format!("ROC curve (AUC {auc:.3})"),
        None => "ROC curve (AUC undefined)".to_string(),
    };
    let description = match auc {
        Some(auc) => format!(
            "True positive rate against false positive rate over all score thresholds; area under the curve \
             {auc:.3}, where 0.5 is the dashed diagonal of a random ranking and 1 a perfect one."
        ),
        None => "Not drawn: it needs both converted and not converted leads.".to_string(),
    };
    open_chart(&mut out, &title, &description);
    legend(&mut out, &frame, &[(BLUE, "Model", true), (GREY, "Random", true)]);
    frame.axes(&mut out, &unit_ticks(), &unit_ticks(), "False positive rate", "True positive rate");
    dashed_diagonal(&mut out, &frame);
    match points {
        Some(points) => {
            let _ = writeln!(
                out,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{BLUE}\" stroke-width=\"2.5\" stroke-linejoin=\"round\"/>",
                polyline(points.iter().map(|&(x, y)| (frame.x(x), frame.y(y))))
            );
        }
        None => frame.message(&mut out, "Needs both converted and not converted leads"),
    }
    close_chart(&mut out);
    out
}

fn calibration_chart(probabilities: &[f64], labels: &[bool]) -> String {
    let mut out = String::new();
    let frame = Frame::new((0.0, 1.0), (0.0, 1.0), 24.0);
    let bins = metrics::calibration(probabilities, labels, 10);
    open_chart(
        &mut out,
        "Calibration",
        &format!(
            "Observed conversion rate against mean predicted probability in {} of 10 equal-width probability \
             bins; point area shows how many leads a bin holds; the dashed diagonal is perfect calibration.",
            bins.len()
        ),
    );
    legend(&mut out, &frame, &[(BLUE, "Bins (area = leads)", false), (GREY, "Perfect calibration", true)]);
    frame.axes(&mut out, &unit_ticks(), &unit_ticks(), "Mean predicted probability", "Observed conversion rate");
    dashed_diagonal(&mut out, &frame);
    if bins.is_empty() {
        frame.message(&mut out, "No probabilities");
    } else {
        let max_count = bins.iter().map(|b| b.count).max().unwrap_or(1).max(1) as f64;
        let _ = writeln!(
            out,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{BLUE}\" stroke-width=\"1.5\" stroke-opacity=\"0.6\"/>",
            polyline(bins.iter().map(|b| (frame.x(b.mean_predicted), frame.y(b.observed_rate))))
        );
        for bin in &bins {
            let radius = 3.0 + 11.0 * (bin.count as f64 / max_count).sqrt();
            let _ = writeln!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{radius:.1}\" fill=\"{BLUE}\" fill-opacity=\"0.55\" \
                 stroke=\"{BLUE}\"><title>{:.2}–{:.2}: {} leads, predicted {:.3}, observed {:.3}</title></circle>",
                frame.x(bin.mean_predicted),
                frame.y(bin.observed_rate),
                bin.lower,
                bin.upper,
                bin.count,
                finite(bin.mean_predicted),
                finite(bin.observed_rate)
            );
        }
    }
    close_chart(&mut out);
    out
}

fn lift_chart(scores: &[f64], labels: &[bool]) -> String {
    let mut out = String::new();
    let deciles = metrics::lift_by_decile(scores, labels);
    let defined = !deciles.is_empty() && deciles.iter().all(|d| d.lift.is_finite() && d.cumulative_gain.is_finite());
    let max_lift = deciles.iter().map(|d| d.lift).filter(|l| l.is_finite()).fold(1.0f64, f64::max);
    let step = nice_step(max_lift * 1.05, 5.0);
    let top = (max_lift * 1.05 / step).ceil() * step;
    // x: share of leads, 0..1; each decile is a band of 0.1.
    let frame = Frame { right: WIDTH - 68.0, ..Frame::new((0.0, 1.0), (0.0, top), 68.0) };
    open_chart(
        &mut out,
        "Lift and cumulative gain by decile",
        "Bars: conversion rate of each tenth of the leads, ranked by descending score, divided by the overall \
         rate (left axis, 1 = random). Line: share of all conversions found in the top deciles (right axis), \
         against the dashed diagonal of a random ranking.",
    );
    legend(&mut out, &frame, &[(BLUE, "Lift", false), (ORANGE, "Cumulative gain", true), (GREY, "Random", true)]);
    let x_ticks: Vec<(f64, String)> = (1..=10).map(|d| ((d as f64 - 0.5) / 10.0, d.to_string())).collect();
    let y_ticks = ticks(0.0, top, step, |v| format_tick(v, step));
    frame.axes(&mut out, &x_ticks, &y_ticks, "Decile (1 = highest scores)", "Lift");
    // Right axis for the gain, 0..100 %, mapped onto the same pixel range.
    let gain_y = |g: f64| finite(frame.bottom - g * (frame.bottom - frame.top));
    out.push_str("<g aria-hidden=\"true\">\n");
    for (value, text) in percent_ticks() {
        let y = gain_y(value);
        let _ = writeln!(
            out,
            "<line x1=\"{r:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{INK}\"/>\
             <text x=\"{:.1}\" y=\"{y:.1}\" dominant-baseline=\"middle\">{text}</text>",
            frame.right + 5.0,
            frame.right + 8.0,
            r = frame.right
        );
    }
    let _ = writeln!(
        out,
        "<line x1=\"{r:.1}\" y1=\"{:.1}\" x2=\"{r:.1}\" y2=\"{:.1}\" stroke=\"{INK}\"/>\
         <text transform=\"translate({:.1} {:.1}) rotate(90)\" text-anchor=\"middle\">Cumulative gain</text>",
        frame.top,
        frame.bottom,
        WIDTH - 14.0,
        (frame.top + frame.bottom) / 2.0,
        r = frame.right
    );
    out.push_str("</g>\n");
    if !defined {
        let text = if deciles.is_empty() { "No leads" } else { "Undefined: no converted leads" };
        frame.message(&mut out, text);
        close_chart(&mut out);
        return out;
    }
    let band = (frame.right - frame.left) / 10.0;
    for d in &deciles {
        let x = frame.left + band * (d.decile as f64 - 1.0) + band * 0.15;
        let y = frame.y(d.lift);
        let _ = writeln!(
            out,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{BLUE}\" fill-opacity=\"0.8\">\
             <title>Decile {}: {} leads, {} converted, rate {:.1}%, lift {:.2}</title></rect>",
            band * 0.7,
            (frame.bottom - y).max(0.0),
            d.decile,
            d.count,
            d.positives,
            d.rate * 100.0,
            d.lift
        );
    }
    // Lift 1 reference line.
    let _ = writeln!(
        out,
        "<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{INK}\" stroke-dasharray=\"2 3\"/>",
        frame.left,
        frame.right,
        y = frame.y(1.0)
    );
    // Random gain: the diagonal from (0, 0 %) to (1, 100 %).
    let _ = writeln!(
        out,
        "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{GREY}\" stroke-width=\"1.5\" \
         stroke-dasharray=\"6 4\"/>",
        frame.left,
        gain_y(0.0),
        frame.right,
        gain_y(1.0)
    );
    // Gain at the end of each decile: x = share of leads seen so far.
    let n = deciles.iter().map(|d| d.count).sum::<usize>() as f64;
    let mut seen = 0usize;
    let mut gain_points = vec![(frame.x(0.0), gain_y(0.0))];
    for d in &deciles {
        seen += d.count;
        gain_points.push((frame.x(seen as f64 / n), gain_y(d.cumulative_gain)));
    }
    let _ = writeln!(
        out,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"{ORANGE}\" stroke-width=\"2.5\" stroke-linejoin=\"round\"/>",
        polyline(gain_points.iter().copied())
    );
    for &(x, y) in &gain_points[1..] {
        let _ = writeln!(out, "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3.5\" fill=\"{ORANGE}\"/>");
    }
    close_chart(&mut out);
    out
}

fn histogram_chart(scores: &[f64], labels: &[bool]) -> String {
    const BINS: usize = 20;
    let mut out = String::new();
    let finite_scores: Vec<(f64, bool)> =
        scores.iter().copied().zip(labels.iter().copied()).filter(|(s, _)| s.is_finite()).collect();
    let (mut lo, mut hi) =
        finite_scores.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(s, _)| (lo.min(s), hi.max(s)));
    if finite_scores.is_empty() {
        (lo, hi) = (0.0, 1.0);
    } else if hi - lo <= 0.0 {
        // All scores equal: centre them in a unit-wide range.
        (lo, hi) = (lo - 0.5, hi + 0.5);
    }
    let width = (hi - lo) / BINS as f64;
    let mut counts = [[0usize; BINS]; 2];
    for &(score, label) in &finite_scores {
        let bin = (((score - lo) / width).floor().max(0.0) as usize).min(BINS - 1);
        counts[usize::from(label)][bin] += 1;
    }
    let totals = [counts[0].iter().sum::<usize>(), counts[1].iter().sum::<usize>()];
    let share = |class: usize, bin: usize| {
        if totals[class] == 0 { 0.0 } else { counts[class][bin] as f64 / totals[class] as f64 }
    };
    let max_share = (0..BINS).flat_map(|b| [share(0, b), share(1, b)]).fold(0.0f64, f64::max).max(0.05);
    let y_step = nice_step(max_share, 5.0);
    let y_top = (max_share / y_step).ceil() * y_step;
    let frame = Frame::new((lo, hi), (0.0, y_top), 24.0);
    open_chart(
        &mut out,
        "Score distribution",
        &format!(
            "Histogram of scores in 20 equal-width bins from {} to {}, as the share of each group: {} converted \
             and {} not converted leads.",
            format_tick(lo, width),
            format_tick(hi, width),
            totals[1],
            totals[0]
        ),
    );
    legend(
        &mut out,
        &frame,
        &[
            (BLUE, &format!("Not converted (n = {})", totals[0]), false),
            (ORANGE, &format!("Converted (n = {})", totals[1]), false),
        ],
    );
    let x_step = nice_step(hi - lo, 6.0);
    let x_ticks = ticks(lo, hi, x_step, |v| format_tick(v, x_step));
    let y_ticks = ticks(0.0, y_top, y_step, |v| format!("{}%", format_tick(v * 100.0, y_step * 100.0)));
    frame.axes(&mut out, &x_ticks, &y_ticks, "Score", "Share of group");
    if finite_scores.is_empty() {
        frame.message(&mut out, "No scores");
    }
    let band = (frame.right - frame.left) / BINS as f64;
    for (class, colour, offset, name) in [(0, BLUE, 0.08, "not converted"), (1, ORANGE, 0.5, "converted")] {
        for (bin, &count) in counts[class].iter().enumerate() {
            if count == 0 {
                continue;
            }
            let y = frame.y(share(class, bin));
            let _ = writeln!(
                out,
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\">\
                 <title>{} to {}: {} {name} ({:.1}%)</title></rect>",
                frame.left + band * (bin as f64 + offset),
                band * 0.42,
                (frame.bottom - y).max(0.0),
                format_tick(lo + width * bin as f64, width),
                format_tick(lo + width * (bin + 1) as f64, width),
                count,
                share(class, bin) * 100.0
            );
        }
    }
    close_chart(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(scores: &'a [f64], labels: &'a [bool], probabilities: Option<&'a [f64]>) -> ReportInput<'a> {
        ReportInput {
            title: "Leads <script>alert(1)</script> & \"co\"",
            subtitle: "test set",
            scores,
            labels,
            probabilities,
            summary: vec![("AUC".to_string(), "0.8".to_string()), ("Rows <b>".to_string(), "10".to_string())],
        }
    }

    /// A deterministic, realistic-looking data set: scores rise with the chance to convert.
    fn sample(n: usize) -> (Vec<f64>, Vec<bool>, Vec<f64>) {
        let mut state: u64 = 42;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut scores = Vec::new();
        let mut labels = Vec::new();
        let mut probabilities = Vec::new();
        for _ in 0..n {
            let p: f64 = next() * next();
            labels.push(next() < p);
            probabilities.push(p);
            scores.push((p * 100.0).round());
        }
        (scores, labels, probabilities)
    }

    fn check_well_formed(page: &str) {
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.trim_end().ends_with("</html>"));
        assert_eq!(page.matches("<svg").count(), page.matches("</svg>").count());
        assert_eq!(page.matches("<figure>").count(), page.matches("</figure>").count());
        assert_eq!(page.matches("<title>").count(), page.matches("</title>").count());
        assert_eq!(page.matches("<text").count(), page.matches("</text>").count());
        assert_eq!(page.matches("<g ").count(), page.matches("</g>").count());
        assert!(!page.contains("NaN"), "NaN in the output");
        for infinity in [" inf", "\"inf", "-inf", ",inf", ">inf"] {
            assert!(!page.contains(infinity), "infinity in the output");
        }
        assert!(!page.contains("<script"), "unescaped script tag");
        for svg in page.split("<svg").skip(1) {
            let head = &svg[..svg.find('>').unwrap()];
            assert!(head.contains("role=\"img\"") && head.contains("aria-label=\"") && head.contains("viewBox="));
            assert!(svg.trim_start_matches(|c| c != '>').starts_with(">\n<title>"));
        }
    }

    const TITLES: [&str; 4] = [
        "<title>ROC curve (AUC ",
        "<title>Calibration</title>",
        "<title>Lift and cumulative",
        "<title>Score distribution</title>",
    ];

    #[test]
    fn full_report_has_four_charts_and_escapes_text() {
        let (scores, labels, probabilities) = sample(500);
        let page = html(&input(&scores, &labels, Some(&probabilities)));
        check_well_formed(&page);
        assert_eq!(page.matches("<svg").count(), 4);
        for title in TITLES {
            assert!(page.contains(title), "missing {title}");
        }
        assert!(page.contains("Leads &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;co&quot;"));
        assert!(page.contains("<th scope=\"row\">Rows &lt;b&gt;</th><td>10</td>"));
        if let Ok(path) = std::env::var("LEADSCORE_REPORT_HTML") {
            std::fs::write(path, &page).unwrap();
        }
    }

    #[test]
    fn without_probabilities_there_is_no_calibration_chart() {
        let (scores, labels, _) = sample(200);
        let page = html(&input(&scores, &labels, None));
        check_well_formed(&page);
        assert_eq!(page.matches("<svg").count(), 3);
        assert!(!page.contains(TITLES[1]));
        for title in [TITLES[0], TITLES[2], TITLES[3]] {
            assert!(page.contains(title), "missing {title}");
        }
    }

    #[test]
    fn roc_points_are_monotone_from_origin_to_one_and_match_the_auc() {
        let (scores, labels, _) = sample(300);
        let points = roc_points(&scores, &labels).unwrap();
        assert_eq!(points[0], (0.0, 0.0));
        assert_eq!(*points.last().unwrap(), (1.0, 1.0));
        assert!(points.windows(2).all(|w| w[1].0 >= w[0].0 && w[1].1 >= w[0].1));
        // One point per distinct score, plus the origin.
        let mut distinct = scores.clone();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        assert_eq!(points.len(), distinct.len() + 1);
        // The trapezoidal area under these points is the tie-averaged AUC.
        let area: f64 = points.windows(2).map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0).sum();
        assert!((area - metrics::roc_auc(&scores, &labels).unwrap()).abs() < 1e-12);
    }

    #[test]
    fn roc_points_ties_and_missing_classes() {
        assert_eq!(roc_points(&[0.5; 4], &[true, false, true, false]), Some(vec![(0.0, 0.0), (1.0, 1.0)]));
        assert_eq!(roc_points(&[0.9, 0.1], &[true, false]), Some(vec![(0.0, 0.0), (0.0, 1.0), (1.0, 1.0)]));
        assert_eq!(roc_points(&[0.9, 0.1], &[true, true]), None);
        assert_eq!(roc_points(&[], &[]), None);
    }

    #[test]
    fn degenerate_inputs_render_without_nan() {
        let cases: [(&[f64], &[bool]); 5] = [
            (&[0.7; 6], &[true, false, false, true, false, false]),
            (&[0.2, 0.8], &[false, true]),
            (&[0.2, 0.8], &[false, false]),
            (&[0.3], &[true]),
            (&[], &[]),
        ];
        for (scores, labels) in cases {
            let probabilities: Vec<f64> = scores.iter().map(|s| s.clamp(0.0, 1.0)).collect();
            for probabilities in [Some(probabilities.as_slice()), None] {
                let page = html(&input(scores, labels, probabilities));
                check_well_formed(&page);
                assert_eq!(page.matches("<svg").count(), if probabilities.is_some() { 4 } else { 3 });
            }
        }
        let page = html(&input(&[f64::NAN, 0.4, 0.6], &[true, false, true], None));
        check_well_formed(&page);
    }

    #[test]
    fn ticks_and_formatting() {
        assert_eq!(nice_step(1.0, 5.0), 0.2);
        assert_eq!(nice_step(37.0, 5.0), 10.0);
        assert_eq!(nice_step(20.0, 5.0), 5.0);
        assert_eq!(format_tick(-0.0, 0.1), "0.0");
        assert_eq!(format_tick(2.5, 0.5), "2.5");
        assert_eq!(ticks(0.0, 1.0, 0.25, |v| v.to_string()).len(), 5);
        assert_eq!(escape("a<b>&'\""), "a&lt;b&gt;&amp;&#39;&quot;");
    }
}
