//! Evaluation metrics for binary lead scores: ROC AUC, log loss, Brier score, calibration, lift and gain by
//! decile, the confusion matrix at a threshold, and a bootstrap interval for the AUC difference of two models.
//!
//! They are written here by hand because no Rust crate offers them with scikit-learn's conventions (tie-averaged
//! ranks for the AUC, sklearn's clipping in the log loss, `calibration_curve`'s bin edges), and the project
//! checks its numbers against scikit-learn: `tests/it/metrics_vs_sklearn.rs` compares them with values computed
//! by scikit-learn on a fixed input with many ties (`tests/fixtures/metrics/`).
//!
//! All functions are pure, take scores or probabilities as `&[f64]` and outcomes as `&[bool]` (true = the
//! lead converted), and panic only when the two slices differ in length, which is a bug in the caller.
//! Where a metric is undefined (one class missing for the AUC, empty input) the result says so with `None` or
//! is documented as NaN.

use serde::Serialize;

use crate::random::Rng;

fn check_lengths(what: &str, values: &[f64], labels: &[bool]) {
    assert_eq!(values.len(), labels.len(), "{what}: {} values but {} labels", values.len(), labels.len());
}

/// Area under the ROC curve, computed as the Mann–Whitney U statistic with tie-averaged ranks: the probability
/// that a random positive scores higher than a random negative, ties counting one half. This equals
/// `sklearn.metrics.roc_auc_score`.
///
/// Returns `None` when either class is missing (the AUC is undefined) or when a score is NaN.
/// Constant scores give 0.5; scores that separate the classes perfectly give 1.0.
///
/// # Panics
/// When `scores` and `labels` differ in length.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    check_lengths("roc_auc", scores, labels);
    let mut pairs: Vec<(f64, bool)> = scores.iter().copied().zip(labels.iter().copied()).collect();
    auc_of_pairs(&mut pairs)
}

/// The AUC of `(score, label)` pairs; sorts `pairs` in place.
fn auc_of_pairs(pairs: &mut [(f64, bool)]) -> Option<f64> {
    if pairs.iter().any(|(score, _)| score.is_nan()) {
        return None;
    }
    pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    // 2U = sum over tie groups of positives_in_group * (2 * negatives_below + negatives_in_group), exact in
    // integers, so the only rounding is the final division.
    let mut twice_u: u128 = 0;
    let mut negatives_below: u128 = 0;
    let mut positives_total: u128 = 0;
    let mut start = 0;
    while start < pairs.len() {
        // `==` rather than `total_cmp` so that -0.0 and 0.0 (adjacent after the sort) form one tie group.
        let end = start + pairs[start..].iter().take_while(|p| p.0 == pairs[start].0).count();
        let positives = pairs[start..end].iter().filter(|p| p.1).count() as u128;
        let negatives = (end - start) as u128 - positives;
        twice_u += positives * (2 * negatives_below + negatives);
        negatives_below += negatives;
        positives_total += positives;
        start = end;
    }
    if positives_total == 0 || negatives_below == 0 {
        return None;
    }
    Some(twice_u as f64 / (2.0 * positives_total as f64 * negatives_below as f64))
}

/// Mean binary cross-entropy (natural logarithm), like `sklearn.metrics.log_loss`: the predicted probability
/// of the observed outcome (`p` for a positive, `1 - p` for a negative) is clipped to `[eps, 1 - eps]` with
/// `eps = f64::EPSILON` (numpy's `finfo(float64).eps`, scikit-learn ≥ 1.5) before taking the logarithm, so a
/// confident wrong prediction costs about 36.04 instead of infinity.
///
/// Returns NaN for empty input. Probabilities are not validated (scikit-learn rejects values outside
/// `[0, 1]`; here they are clipped like the others).
///
/// # Panics
/// When `probabilities` and `labels` differ in length.
pub fn log_loss(probabilities: &[f64], labels: &[bool]) -> f64 {
    check_lengths("log_loss", probabilities, labels);
    let eps = f64::EPSILON;
    let total: f64 = probabilities
        .iter()
        .zip(labels)
        .map(|(&p, &label)| {
            // sklearn clips the column of the observed class, i.e. clip(1 - p) for a negative, not 1 - clip(p).
            let observed = if label { p } else { 1.0 - p };
            -observed.clamp(eps, 1.0 - eps).ln()
        })
        .sum();
    total / probabilities.len() as f64
}

/// Brier score: the mean squared difference between the predicted probability and the outcome (1 or 0), like
/// `sklearn.metrics.brier_score_loss` for binary outcomes. Lower is better; 0.25 is what always predicting 0.5
/// earns.
///
/// Returns NaN for empty input.
///
/// # Panics
/// When `probabilities` and `labels` differ in length.
pub fn brier(probabilities: &[f64], labels: &[bool]) -> f64 {
    check_lengths("brier", probabilities, labels);
    let total: f64 = probabilities
        .iter()
        .zip(labels)
        .map(|(&p, &label)| {
            let error = p - if label { 1.0 } else { 0.0 };
            error * error
        })
        .sum();
    total / probabilities.len() as f64
}

/// One bin of a reliability (calibration) curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CalibrationBin {
    /// Lower edge of the bin.
    pub lower: f64,
    /// Upper edge of the bin.
    pub upper: f64,
    /// How many predictions fell into the bin (never 0: empty bins are omitted).
    pub count: usize,
    /// Mean predicted probability in the bin (`prob_pred` in scikit-learn).
    pub mean_predicted: f64,
    /// Fraction of positives in the bin (`prob_true` in scikit-learn).
    pub observed_rate: f64,
}

/// Reliability curve over `bins` equal-width bins of `[0, 1]`, like
/// `sklearn.calibration.calibration_curve(strategy="uniform", n_bins=bins)`, with empty bins omitted.
///
/// The bin edges are numpy's `linspace(0, 1, bins + 1)` (edge `i` is `i * (1 / bins)`, the last exactly 1),
/// and, as in scikit-learn (`searchsorted` on the inner edges), a probability lying exactly on an inner edge
/// belongs to the bin *below* it: bin 0 is `[0, e1]`, bin `i` is `(e_i, e_{i+1}]`. Values below 0 fall in the
/// first bin and above 1 in the last (scikit-learn rejects them); NaN probabilities are skipped.
/// Returns an empty vector when `bins` is 0 or there is no input.
///
/// # Panics
/// When `probabilities` and `labels` differ in length.
pub fn calibration(probabilities: &[f64], labels: &[bool], bins: usize) -> Vec<CalibrationBin> {
    check_lengths("calibration", probabilities, labels);
    if bins == 0 {
        return Vec::new();
    }
    let step = 1.0 / bins as f64;
    let edge = |i: usize| if i == bins { 1.0 } else { i as f64 * step };
    let inner_edges: Vec<f64> = (1..bins).map(edge).collect();
    let mut sums = vec![0.0; bins];
    let mut positives = vec![0usize; bins];
    let mut counts = vec![0usize; bins];
    for (&p, &label) in probabilities.iter().zip(labels) {
        if p.is_nan() {
            continue;
        }
        let bin = inner_edges.partition_point(|&e| e < p);
        sums[bin] += p;
        positives[bin] += usize::from(label);
        counts[bin] += 1;
    }
    (0..bins)
        .filter(|&bin| counts[bin] > 0)
        .map(|bin| CalibrationBin {
            lower: edge(bin),
            upper: edge(bin + 1),
            count: counts[bin],
            mean_predicted: sums[bin] / counts[bin] as f64,
            observed_rate: positives[bin] as f64 / counts[bin] as f64,
        })
        .collect()
}

/// One tenth of the leads, ranked by score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Decile {
    /// 1 for the highest-scored tenth, 10 for the lowest.
    pub decile: usize,
    /// Leads in this decile.
    pub count: usize,
    /// Positive outcomes among them.
    pub positives: usize,
    /// `positives / count`.
    pub rate: f64,
    /// `rate` divided by the overall positive rate (1.0 = no better than random). NaN when there are no
    /// positives at all.
    pub lift: f64,
    /// Share of all positives found in deciles 1 to this one (1.0 for the last). NaN when there are no
    /// positives at all.
    pub cumulative_gain: f64,
}

/// Lift and cumulative gain by decile: leads sorted by descending score (ties keep their input order, a stable
/// sort), cut into 10 groups as equal as possible (sizes differ by at most one, the larger groups first, like
/// `numpy.array_split`).
///
/// With fewer than 10 leads the empty groups are omitted; empty input gives an empty vector. NaN scores sort
/// as the highest.
///
/// # Panics
/// When `scores` and `labels` differ in length.
pub fn lift_by_decile(scores: &[f64], labels: &[bool]) -> Vec<Decile> {
    check_lengths("lift_by_decile", scores, labels);
    let n = scores.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let total_positives = labels.iter().filter(|&&l| l).count();
    let overall_rate = total_positives as f64 / n as f64;
    let (base, larger) = (n / 10, n % 10);
    let mut deciles = Vec::with_capacity(10);
    let mut start = 0;
    let mut cumulative_positives = 0;
    for decile in 1..=10 {
        let count = base + usize::from(decile <= larger);
        if count == 0 {
            continue;
        }
        let positives = order[start..start + count].iter().filter(|&&i| labels[i]).count();
        start += count;
        cumulative_positives += positives;
        let rate = positives as f64 / count as f64;
        let (lift, cumulative_gain) = if total_positives == 0 {
            (f64::NAN, f64::NAN)
        } else {
            (rate / overall_rate, cumulative_positives as f64 / total_positives as f64)
        };
        deciles.push(Decile { decile, count, positives, rate, lift, cumulative_gain });
    }
    deciles
}

/// Confusion matrix and the usual ratios at one threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Confusion {
    /// Predicted positive, was positive.
    pub tp: usize,
    /// Predicted positive, was negative.
    pub fp: usize,
    /// Predicted negative, was negative.
    pub tn: usize,
    /// Predicted negative, was positive.
    pub fn_: usize,
    /// `tp / (tp + fp)`; 0 when nothing is predicted positive.
    pub precision: f64,
    /// `tp / (tp + fn)`; 0 when there are no positives.
    pub recall: f64,
    /// Harmonic mean of precision and recall; 0 when both are 0.
    pub f1: f64,
    /// `(tp + tn) / n`; 0 for empty input.
    pub accuracy: f64,
}

/// The confusion matrix when a lead is predicted positive if its score is `>= threshold`.
///
/// A ratio whose denominator is zero is reported as 0, like scikit-learn's `zero_division=0`. A NaN score is
/// never `>= threshold`, so it counts as predicted negative.
///
/// # Panics
/// When `scores` and `labels` differ in length.
pub fn confusion(scores: &[f64], labels: &[bool], threshold: f64) -> Confusion {
    check_lengths("confusion", scores, labels);
    let (mut tp, mut fp, mut tn, mut fn_) = (0, 0, 0, 0);
    for (&score, &label) in scores.iter().zip(labels) {
        match (score >= threshold, label) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, false) => tn += 1,
            (false, true) => fn_ += 1,
        }
    }
    let ratio = |num: usize, den: usize| if den == 0 { 0.0 } else { num as f64 / den as f64 };
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, tp + fn_);
    // 2tp / (2tp + fp + fn) equals the harmonic mean of precision and recall, without a 0/0 when tp = 0.
    let f1 = ratio(2 * tp, 2 * tp + fp + fn_);
    let accuracy = ratio(tp + tn, scores.len());
    Confusion { tp, fp, tn, fn_, precision, recall, f1, accuracy }
}

/// Paired, stratified bootstrap of the AUC difference between two models scored on the same leads:
/// returns `(auc(a) - auc(b), lower_95, upper_95)`, the point difference on the full data and the 2.5 % and
/// 97.5 % percentiles (numpy's default linear interpolation) of the difference over `rounds` resamples.
///
/// Each resample draws, with replacement, as many positives from the positives and as many negatives from the
/// negatives as the data has (a stratified bootstrap, so every resample has both classes), and scores both
/// models on the same resampled leads. An interval that excludes 0 suggests a real difference. The result is
/// deterministic for a `seed`.
///
/// Returns `None` when a class is missing, a score is NaN, or `rounds` is 0.
///
/// # Panics
/// When the three slices differ in length.
pub fn bootstrap_auc_difference(
    a_scores: &[f64],
    b_scores: &[f64],
    labels: &[bool],
    rounds: usize,
    seed: u64,
) -> Option<(f64, f64, f64)> {
    check_lengths("bootstrap_auc_difference (a)", a_scores, labels);
    check_lengths("bootstrap_auc_difference (b)", b_scores, labels);
    if rounds == 0 {
        return None;
    }
    let difference = roc_auc(a_scores, labels)? - roc_auc(b_scores, labels)?;
    let positives: Vec<usize> = (0..labels.len()).filter(|&i| labels[i]).collect();
    let negatives: Vec<usize> = (0..labels.len()).filter(|&i| !labels[i]).collect();
    let mut rng = Rng::seeded(seed);
    let mut sample = Vec::with_capacity(labels.len());
    let mut pairs_a = Vec::with_capacity(labels.len());
    let mut pairs_b = Vec::with_capacity(labels.len());
    let mut differences = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        sample.clear();
        for class in [&positives, &negatives] {
            sample.extend((0..class.len()).map(|_| class[rng.below(class.len())]));
        }
        pairs_a.clear();
        pairs_a.extend(sample.iter().map(|&i| (a_scores[i], labels[i])));
        pairs_b.clear();
        pairs_b.extend(sample.iter().map(|&i| (b_scores[i], labels[i])));
        differences.push(auc_of_pairs(&mut pairs_a)? - auc_of_pairs(&mut pairs_b)?);
    }
    differences.sort_unstable_by(f64::total_cmp);
    Some((difference, percentile(&differences, 0.025), percentile(&differences, 0.975)))
}

/// The `q` quantile (0..=1) of sorted, non-empty `values`, with linear interpolation between neighbours
/// (numpy's default method).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    let fraction = position - below as f64;
    sorted[below] + (sorted[above] - sorted[below]) * fraction
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn auc_perfect_inverted_and_constant() {
        let labels = [false, false, true, true];
        assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &labels), Some(1.0));
        assert_eq!(roc_auc(&[0.9, 0.8, 0.2, 0.1], &labels), Some(0.0));
        assert_eq!(roc_auc(&[0.5; 4], &labels), Some(0.5));
    }

    #[test]
    fn auc_averages_ties() {
        // sklearn: roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
        assert_eq!(roc_auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]), Some(0.75));
        // A positive tied with a negative counts one half: pairs (p=0.5 vs n=0.5) 0.5, (p=0.5 vs n=0.1) 1,
        // (p=0.9 vs both) 2 -> 3.5 / 4.
        assert_eq!(roc_auc(&[0.5, 0.5, 0.9, 0.1], &[true, false, true, false]), Some(0.875));
        // -0.0 and 0.0 are one tie.
        assert_eq!(roc_auc(&[-0.0, 0.0], &[true, false]), Some(0.5));
    }

    #[test]
    fn auc_undefined_cases() {
        assert_eq!(roc_auc(&[0.1, 0.2], &[true, true]), None);
        assert_eq!(roc_auc(&[0.1, 0.2], &[false, false]), None);
        assert_eq!(roc_auc(&[], &[]), None);
        assert_eq!(roc_auc(&[f64::NAN, 0.2], &[true, false]), None);
    }

    #[test]
    #[should_panic(expected = "2 values but 1 labels")]
    fn mismatched_lengths_panic() {
        roc_auc(&[0.1, 0.2], &[true]);
    }

    #[test]
    fn log_loss_values_and_clipping() {
        let ln2 = std::f64::consts::LN_2;
        assert!(close(log_loss(&[0.5, 0.5], &[true, false]), ln2));
        assert!(close(log_loss(&[1.0, 0.0], &[true, false]), -(1.0 - f64::EPSILON).ln()));
        let confident_wrong = log_loss(&[0.0], &[true]);
        assert!(close(confident_wrong, -f64::EPSILON.ln()), "{confident_wrong}");
        assert!((confident_wrong - 36.04365338911715).abs() < 1e-12);
        assert!(log_loss(&[], &[]).is_nan());
        // one class only is fine for log loss
        assert!(close(log_loss(&[0.8, 0.6], &[true, true]), -(0.8f64.ln() + 0.6f64.ln()) / 2.0));
    }

    #[test]
    fn brier_values() {
        assert_eq!(brier(&[0.5, 0.5], &[true, false]), 0.25);
        assert_eq!(brier(&[1.0, 0.0], &[true, false]), 0.0);
        assert_eq!(brier(&[0.0, 1.0], &[true, false]), 1.0);
        assert!(close(brier(&[0.9, 0.2, 0.4], &[true, false, true]), (0.01 + 0.04 + 0.36) / 3.0));
        assert!(brier(&[], &[]).is_nan());
    }

    #[test]
    fn calibration_bins_edges_and_empty_bins() {
        let probabilities = [0.0, 0.05, 0.1, 0.15, 0.95, 1.0, 0.55];
        let labels = [false, false, true, false, true, true, false];
        let bins = calibration(&probabilities, &labels, 10);
        // 0.1 sits exactly on the first inner edge and belongs to the lower bin, like sklearn.
        assert_eq!(bins.len(), 4);
        assert_eq!((bins[0].lower, bins[0].upper, bins[0].count), (0.0, 0.1, 3));
        assert!(close(bins[0].mean_predicted, 0.05));
        assert!(close(bins[0].observed_rate, 1.0 / 3.0));
        assert_eq!((bins[1].lower, bins[1].count, bins[1].observed_rate), (0.1, 1, 0.0));
        assert_eq!((bins[2].lower, bins[2].count), (0.5, 1));
        assert_eq!((bins[3].lower, bins[3].upper, bins[3].count, bins[3].observed_rate), (0.9, 1.0, 2, 1.0));
        assert!(calibration(&probabilities, &labels, 0).is_empty());
        assert!(calibration(&[], &[], 10).is_empty());
        let single = calibration(&[0.2, f64::NAN, 0.7], &[true, true, false], 1);
        assert_eq!(single.len(), 1);
        assert_eq!(single[0].count, 2);
    }

    #[test]
    fn lift_groups_are_balanced_and_sorted_by_score() {
        // 23 leads -> groups 3,3,3,2,2,2,2,2,2,2; the top 3 scores are positives.
        let scores: Vec<f64> = (0..23).map(|i| i as f64).collect();
        let labels: Vec<bool> = (0..23).map(|i| i >= 20 || i == 0).collect();
        let deciles = lift_by_decile(&scores, &labels);
        let counts: Vec<usize> = deciles.iter().map(|d| d.count).collect();
        assert_eq!(counts, [3, 3, 3, 2, 2, 2, 2, 2, 2, 2]);
        assert_eq!(deciles[0].decile, 1);
        assert_eq!(deciles[0].positives, 3);
        assert!(close(deciles[0].rate, 1.0));
        assert!(close(deciles[0].lift, 1.0 / (4.0 / 23.0)));
        assert!(close(deciles[0].cumulative_gain, 0.75));
        assert_eq!(deciles[9].positives, 1);
        assert!(close(deciles[9].cumulative_gain, 1.0));
    }

    #[test]
    fn lift_ties_keep_input_order() {
        // All scores tie: the stable sort keeps the input order, so the first tenth is the first rows.
        let labels: Vec<bool> = (0..20).map(|i| i < 2).collect();
        let deciles = lift_by_decile(&[0.3; 20], &labels);
        assert_eq!(deciles[0].positives, 2);
        assert!(deciles[1..].iter().all(|d| d.positives == 0));
    }

    #[test]
    fn lift_small_and_degenerate_inputs() {
        assert!(lift_by_decile(&[], &[]).is_empty());
        let few = lift_by_decile(&[0.1, 0.9, 0.5], &[false, true, false]);
        assert_eq!(few.iter().map(|d| d.decile).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(few[0].positives, 1);
        let none = lift_by_decile(&[0.1, 0.9], &[false, false]);
        assert!(none.iter().all(|d| d.lift.is_nan() && d.cumulative_gain.is_nan() && d.rate == 0.0));
    }

    #[test]
    fn confusion_counts_and_ratios() {
        let scores = [0.9, 0.8, 0.5, 0.4, 0.2];
        let labels = [true, false, true, false, true];
        let c = confusion(&scores, &labels, 0.5);
        assert_eq!((c.tp, c.fp, c.tn, c.fn_), (2, 1, 1, 1));
        assert!(close(c.precision, 2.0 / 3.0));
        assert!(close(c.recall, 2.0 / 3.0));
        assert!(close(c.f1, 2.0 / 3.0));
        assert!(close(c.accuracy, 0.6));
        let nothing = confusion(&scores, &labels, 2.0);
        assert_eq!((nothing.tp, nothing.fp, nothing.precision, nothing.recall, nothing.f1), (0, 0, 0.0, 0.0, 0.0));
        let empty = confusion(&[], &[], 0.5);
        assert_eq!(empty.accuracy, 0.0);
    }

    #[test]
    fn bootstrap_is_reproducible_and_brackets_the_difference() {
        let mut rng = Rng::seeded(5);
        let labels: Vec<bool> = (0..400).map(|_| rng.uniform() < 0.3).collect();
        let good: Vec<f64> = labels.iter().map(|&l| rng.uniform() + if l { 0.6 } else { 0.0 }).collect();
        let weak: Vec<f64> = labels.iter().map(|&l| rng.uniform() + if l { 0.1 } else { 0.0 }).collect();
        let (difference, lower, upper) = bootstrap_auc_difference(&good, &weak, &labels, 300, 1).unwrap();
        assert!(close(difference, roc_auc(&good, &labels).unwrap() - roc_auc(&weak, &labels).unwrap()));
        assert!(lower < difference && difference < upper, "{lower} {difference} {upper}");
        assert!(lower > 0.0, "a clearly better model should have an interval above 0: {lower}");
        assert_eq!(bootstrap_auc_difference(&good, &weak, &labels, 300, 1), Some((difference, lower, upper)));
        assert_ne!(bootstrap_auc_difference(&good, &weak, &labels, 300, 2), Some((difference, lower, upper)));
        let (same, lo, hi) = bootstrap_auc_difference(&good, &good, &labels, 50, 1).unwrap();
        assert_eq!((same, lo, hi), (0.0, 0.0, 0.0));
    }

    #[test]
    fn bootstrap_undefined_cases() {
        assert_eq!(bootstrap_auc_difference(&[0.1, 0.2], &[0.2, 0.1], &[true, true], 10, 0), None);
        assert_eq!(bootstrap_auc_difference(&[0.1, 0.2], &[0.2, 0.1], &[true, false], 0, 0), None);
    }

    #[test]
    fn percentile_matches_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4], [2.5, 97.5]) == [1.075, 3.925]
        let sorted = [1.0, 2.0, 3.0, 4.0];
        assert!(close(percentile(&sorted, 0.025), 1.075));
        assert!(close(percentile(&sorted, 0.975), 3.925));
        assert_eq!(percentile(&[7.0], 0.5), 7.0);
    }
}
