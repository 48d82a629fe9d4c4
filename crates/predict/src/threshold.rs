//! Where to draw the line: threshold advice from scores and outcomes.
//!
//! Every function takes scores (any scale: probabilities, points) and outcomes (true = the lead converted) of the
//! same leads, and answers with an [`Advice`]: a threshold and what passing the leads at or above it to sales
//! would have done on these leads.
//!
//! - [`for_capacity`]: sales can take a share of the leads (capacity K per period over N leads: `K / N`).
//! - [`best_f1`]: the threshold with the best F1 of "passed" against "converted".
//! - [`best_expected_value`]: the threshold that maximises `value × conversions passed − cost × leads passed`.
//! - [`evaluate`]: the same numbers at a given threshold (to check a threshold chosen on training data against a
//!   holdout).
//!
//! # Ties and edge cases
//! A threshold passes every lead whose score is `>= threshold`, so leads with equal scores are always passed or
//! held back together; the candidate thresholds are the distinct scores, plus one just above the highest score
//! (`f64::next_up` of it) that passes nobody. A NaN score is never passed. The functions return `None` when there
//! is no lead with a score that is not NaN; they panic only when `scores` and `labels` differ in length.

use serde::Serialize;

/// What passing the leads with a score `>= threshold` does on the leads given.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Advice {
    /// Leads with a score at or above it are passed.
    pub threshold: f64,
    /// Leads passed.
    pub leads_passed: usize,
    /// Conversions among the leads passed.
    pub conversions_passed: usize,
    /// `leads_passed / leads` (0 for no lead).
    pub share_passed: f64,
    /// Conversions among the leads passed / leads passed (precision; 0 when nothing is passed).
    pub conversion_rate_passed: f64,
    /// Conversions passed / all conversions (recall; 0 when nothing converted).
    pub share_of_conversions_captured: f64,
    /// `value × conversions passed − cost × leads passed`, for [`best_expected_value`] (`None` otherwise).
    pub expected_value: Option<f64>,
}

/// One candidate threshold and what it passes.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    threshold: f64,
    passed: usize,
    converted: usize,
}

/// Candidate thresholds from the highest (passing nobody) to the lowest score (passing every lead whose score is
/// not NaN), with the totals: `(candidates, leads, conversions)`. `None` when no score is usable.
fn candidates(scores: &[f64], labels: &[bool]) -> Option<(Vec<Candidate>, usize, usize)> {
    assert_eq!(scores.len(), labels.len(), "threshold advice: {} scores but {} labels", scores.len(), labels.len());
    let mut pairs: Vec<(f64, bool)> =
        scores.iter().copied().zip(labels.iter().copied()).filter(|(s, _)| !s.is_nan()).collect();
    if pairs.is_empty() {
        return None;
    }
    pairs.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    let leads = scores.len();
    let conversions = labels.iter().filter(|&&y| y).count();
    let mut out = vec![Candidate { threshold: pairs[0].0.next_up(), passed: 0, converted: 0 }];
    let (mut passed, mut converted) = (0, 0);
    let mut start = 0;
    while start < pairs.len() {
        // `==` so that -0.0 and 0.0 (adjacent after the sort) are one tie group.
        let end = start + pairs[start..].iter().take_while(|p| p.0 == pairs[start].0).count();
        passed += end - start;
        converted += pairs[start..end].iter().filter(|p| p.1).count();
        out.push(Candidate { threshold: pairs[start].0, passed, converted });
        start = end;
    }
    Some((out, leads, conversions))
}

fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 { 0.0 } else { num as f64 / den as f64 }
}

fn advice(c: Candidate, leads: usize, conversions: usize, expected_value: Option<f64>) -> Advice {
    Advice {
        threshold: c.threshold,
        leads_passed: c.passed,
        conversions_passed: c.converted,
        share_passed: ratio(c.passed, leads),
        conversion_rate_passed: ratio(c.converted, c.passed),
        share_of_conversions_captured: ratio(c.converted, conversions),
        expected_value,
    }
}

/// The lowest threshold that passes at most `share` of the leads (`share` is clamped to 0–1; NaN counts as 0):
/// the top `floor(share × leads)` leads, fewer when a tie at the boundary would exceed it (ties are passed
/// together or not at all). `share = 0` gives a threshold just above the highest score; `share = 1` the lowest
/// score.
pub fn for_capacity(scores: &[f64], labels: &[bool], share: f64) -> Option<Advice> {
    let (candidates, leads, conversions) = candidates(scores, labels)?;
    let share = if share.is_nan() { 0.0 } else { share.clamp(0.0, 1.0) };
    // The small allowance keeps 0.3 × 10 at 3 despite rounding.
    let capacity = (share * leads as f64 + 1e-9).floor() as usize;
    let best = candidates.iter().rev().find(|c| c.passed <= capacity).copied().unwrap_or(candidates[0]);
    Some(advice(best, leads, conversions, None))
}

/// The threshold with the highest F1 score (harmonic mean of the conversion rate passed and the share of
/// conversions captured). Among equal F1 scores, the highest threshold (fewest leads passed) wins; with no
/// conversion at all that is the threshold that passes nobody.
pub fn best_f1(scores: &[f64], labels: &[bool]) -> Option<Advice> {
    let (candidates, leads, conversions) = candidates(scores, labels)?;
    // F1 = 2TP / (2TP + FP + FN) = 2TP / (passed + conversions).
    let f1 = |c: &Candidate| ratio(2 * c.converted, c.passed + conversions);
    let mut best = candidates[0];
    for c in &candidates[1..] {
        if f1(c) > f1(&best) {
            best = *c;
        }
    }
    Some(advice(best, leads, conversions, None))
}

/// The threshold that maximises `value_per_conversion × conversions passed − cost_per_touch × leads passed` (the
/// value of working the leads passed, on these leads). Among equal values, the highest threshold wins, so when no
/// threshold earns more than nothing the advice passes nobody (expected value 0).
pub fn best_expected_value(
    scores: &[f64],
    labels: &[bool],
    cost_per_touch: f64,
    value_per_conversion: f64,
) -> Option<Advice> {
    let (candidates, leads, conversions) = candidates(scores, labels)?;
    let value = |c: &Candidate| value_per_conversion * c.converted as f64 - cost_per_touch * c.passed as f64;
    let mut best = candidates[0];
    for c in &candidates[1..] {
        if value(c) > value(&best) {
            best = *c;
        }
    }
    Some(advice(best, leads, conversions, Some(value(&best))))
}

/// The numbers of [`Advice`] at a given `threshold` (for instance one chosen on the training rows, measured on a
/// holdout). With `economics = Some((cost_per_touch, value_per_conversion))` the expected value is filled in. Empty
/// input gives zero counts and shares.
pub fn evaluate(scores: &[f64], labels: &[bool], threshold: f64, economics: Option<(f64, f64)>) -> Advice {
    assert_eq!(scores.len(), labels.len(), "threshold advice: {} scores but {} labels", scores.len(), labels.len());
    let mut c = Candidate { threshold, passed: 0, converted: 0 };
    for (&s, &y) in scores.iter().zip(labels) {
        if s >= threshold {
            c.passed += 1;
            c.converted += usize::from(y);
        }
    }
    let conversions = labels.iter().filter(|&&y| y).count();
    let value = economics.map(|(cost, value)| value * c.converted as f64 - cost * c.passed as f64);
    advice(c, scores.len(), conversions, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Ten leads, scores with a tie at 0.7 (one converted, one not):
    //   0.9 y, 0.8 n, 0.7 y, 0.7 n, 0.6 y, 0.5 n, 0.4 n, 0.3 y, 0.2 n, 0.1 n   (4 conversions)
    const SCORES: [f64; 10] = [0.7, 0.1, 0.9, 0.3, 0.5, 0.8, 0.2, 0.7, 0.6, 0.4];
    const LABELS: [bool; 10] = [true, false, true, true, false, false, false, false, true, false];

    #[test]
    fn capacity_respects_ties() {
        // Top 30%: 0.9, 0.8 and one of the 0.7 pair would be 3, but the pair goes together: only 2 pass.
        let a = for_capacity(&SCORES, &LABELS, 0.3).unwrap();
        assert_eq!((a.threshold, a.leads_passed, a.conversions_passed), (0.8, 2, 1));
        assert_eq!(a.share_passed, 0.2);
        assert_eq!(a.conversion_rate_passed, 0.5);
        assert_eq!(a.share_of_conversions_captured, 0.25);
        assert_eq!(a.expected_value, None);
        let a = for_capacity(&SCORES, &LABELS, 0.4).unwrap();
        assert_eq!((a.threshold, a.leads_passed, a.conversions_passed), (0.7, 4, 2));
        assert_eq!(a.share_of_conversions_captured, 0.5);
        let all = for_capacity(&SCORES, &LABELS, 1.0).unwrap();
        assert_eq!((all.threshold, all.leads_passed, all.share_passed), (0.1, 10, 1.0));
        let none = for_capacity(&SCORES, &LABELS, 0.0).unwrap();
        assert_eq!((none.leads_passed, none.conversion_rate_passed), (0, 0.0));
        assert!(none.threshold > 0.9 && none.threshold < 0.9000001);
        assert_eq!(for_capacity(&SCORES, &LABELS, 7.0).unwrap().leads_passed, 10);
        assert_eq!(for_capacity(&SCORES, &LABELS, f64::NAN).unwrap().leads_passed, 0);
    }

    #[test]
    fn best_f1_by_hand() {
        // passed/TP: 0.9 1/1 (F1 2/5), 0.8 2/1 (2/6), 0.7 4/2 (4/8), 0.6 5/3 (6/9 = 0.667), 0.5 6/3 (6/10),
        // 0.4 7/3, 0.3 8/4 (8/12 = 0.667), 0.2 9/4, 0.1 10/4. Tie 0.6 and 0.3: the higher threshold wins.
        let a = best_f1(&SCORES, &LABELS).unwrap();
        assert_eq!((a.threshold, a.leads_passed, a.conversions_passed), (0.6, 5, 3));
        assert_eq!(a.conversion_rate_passed, 0.6);
        assert_eq!(a.share_of_conversions_captured, 0.75);
        // No conversion: every F1 is 0, nobody is passed.
        let a = best_f1(&SCORES, &[false; 10]).unwrap();
        assert_eq!((a.leads_passed, a.share_of_conversions_captured), (0, 0.0));
    }

    #[test]
    fn best_expected_value_by_hand() {
        // Value 10 per conversion, cost 3 per touch: 0.9 → 10−3 = 7, 0.8 → 10−6 = 4, 0.7 → 20−12 = 8,
        // 0.6 → 30−15 = 15, 0.5 → 12, 0.4 → 9, 0.3 → 40−24 = 16, 0.2 → 13, 0.1 → 10.
        let a = best_expected_value(&SCORES, &LABELS, 3.0, 10.0).unwrap();
        assert_eq!((a.threshold, a.leads_passed, a.expected_value), (0.3, 8, Some(16.0)));
        // Touching costs more than a conversion is worth: pass nobody.
        let a = best_expected_value(&SCORES, &LABELS, 11.0, 10.0).unwrap();
        assert_eq!((a.leads_passed, a.expected_value), (0, Some(0.0)));
        // Free touches: everyone (ties by fewer leads only among equal values: 0.3 already has all 4).
        let a = best_expected_value(&SCORES, &LABELS, 0.0, 1.0).unwrap();
        assert_eq!((a.threshold, a.expected_value), (0.3, Some(4.0)));
    }

    #[test]
    fn evaluate_matches_and_edge_cases() {
        let a = evaluate(&SCORES, &LABELS, 0.6, Some((3.0, 10.0)));
        assert_eq!(a, Advice { expected_value: Some(15.0), ..best_f1(&SCORES, &LABELS).unwrap() });
        assert_eq!(for_capacity(&[], &[], 0.5), None);
        assert_eq!(best_f1(&[f64::NAN], &[true]), None);
        assert_eq!(evaluate(&[], &[], 0.5, None).share_passed, 0.0);
        // A NaN score is never passed but counts among the leads.
        let a = for_capacity(&[f64::NAN, 1.0], &[true, true], 1.0).unwrap();
        assert_eq!((a.leads_passed, a.share_passed, a.share_of_conversions_captured), (1, 0.5, 0.5));
        // Constant scores: one group.
        let a = for_capacity(&[2.0; 4], &[true, false, false, false], 0.5).unwrap();
        assert_eq!(a.leads_passed, 0);
        let a = best_f1(&[2.0; 4], &[true, false, false, false]).unwrap();
        assert_eq!((a.threshold, a.leads_passed), (2.0, 4));
    }

    #[test]
    #[should_panic(expected = "2 scores but 1 labels")]
    fn length_mismatch_panics() {
        let _ = best_f1(&[1.0, 2.0], &[true]);
    }
}
