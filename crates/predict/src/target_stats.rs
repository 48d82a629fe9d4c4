//! Ordered target statistics of a categorical feature, as CatBoost computes them: each category replaced by
//! the share of positive outcomes among the rows of that category, smoothed towards a prior.
//!
//! Why ordered: a statistic that counts a row's own outcome leaks it (a category seen once is then a perfect
//! predictor in training and noise afterwards). So the training rows are put in a random order (from a seed,
//! for reproducibility), and each row's statistic counts only the rows before it in that order:
//! `(positives before + prior · weight) / (rows before + weight)`. New leads get the statistic of all the
//! training rows of their category, which is what [`Stats::per_category`] holds; boosted trees fold those into
//! the category sets of their rules (see [`crate::gbdt`]), so a saved model needs nothing more to score.

use crate::random::Rng;

/// The statistics of one categorical feature.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// Per training row (in the rows' order), from the rows before it in the random order only.
    pub per_row: Vec<f64>,
    /// Per category (bin), from all the training rows: what new rows get.
    pub per_category: Vec<f64>,
}

/// The ordered statistics of rows whose categories are `bins` (each below `n_categories`) and outcomes `labels`,
/// with the prior `prior` weighing as `weight` rows, the rows taken in the order `Rng::seeded(seed)` shuffles
/// them into.
pub fn ordered(bins: &[u16], n_categories: usize, labels: &[bool], prior: f64, weight: f64, seed: u64) -> Stats {
    debug_assert_eq!(bins.len(), labels.len());
    let mut order: Vec<u32> = (0..bins.len() as u32).collect();
    Rng::seeded(seed).shuffle(&mut order);
    let mut positives = vec![0.0; n_categories];
    let mut counts = vec![0.0; n_categories];
    let mut per_row = vec![0.0; bins.len()];
    for &r in &order {
        let (c, r) = (usize::from(bins[r as usize]), r as usize);
        per_row[r] = (positives[c] + prior * weight) / (counts[c] + weight);
        positives[c] += f64::from(u8::from(labels[r]));
        counts[c] += 1.0;
    }
    let per_category = positives.iter().zip(&counts).map(|(p, n)| (p + prior * weight) / (n + weight)).collect();
    Stats { per_row, per_category }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn statistics_by_hand() {
        // One category, outcomes yes, no, yes: whatever the order, the first row in it gets the prior alone.
        let stats = ordered(&[0, 0, 0], 1, &[true, false, true], 0.5, 1.0, 3);
        assert!(stats.per_row.contains(&0.5));
        assert_eq!(stats.per_category, [(2.0 + 0.5) / 4.0]);
        // Each row's statistic is one of those its predecessors allow: (k + 0.5) / (m + 1).
        let possible = [0.5, 0.25, 0.75, 1.5 / 3.0, 0.5 / 3.0, 2.5 / 3.0];
        assert!(stats.per_row.iter().all(|v| possible.iter().any(|p| (p - v).abs() < 1e-12)), "{stats:?}");
        // An unused category keeps the prior.
        assert_eq!(ordered(&[0], 2, &[true], 0.2, 2.0, 1).per_category[1], 0.2);
    }

    proptest! {
        /// A row's statistic never depends on its own outcome: flipping it leaves the row's statistic as it was.
        #[test]
        fn a_row_never_sees_its_own_label(
            rows in proptest::collection::vec((0u16..4, any::<bool>()), 1..60),
            flip in any::<proptest::sample::Index>(),
            seed in any::<u64>(),
        ) {
            let bins: Vec<u16> = rows.iter().map(|r| r.0).collect();
            let mut labels: Vec<bool> = rows.iter().map(|r| r.1).collect();
            let before = ordered(&bins, 4, &labels, 0.3, 1.0, seed);
            let i = flip.index(labels.len());
            labels[i] = !labels[i];
            let after = ordered(&bins, 4, &labels, 0.3, 1.0, seed);
            prop_assert_eq!(before.per_row[i], after.per_row[i]);
            prop_assert!(before.per_row.iter().all(|v| (0.0..=1.0).contains(v)));
        }
    }
}
