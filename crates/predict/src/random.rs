//! The seeded random generator and stratified splits.
//!
//! Everything random in this crate (splits, folds, bootstrap resamples) goes through [`Rng`], which is
//! built only from an explicit `u64` seed, so that a training or evaluation run is reproducible: the same
//! seed gives the same split on every machine and every run.
//!
//! [`Rng`] wraps ChaCha8 from `rand_chacha`, whose output for a given seed is documented as stable across
//! releases and platforms; the thin layer on top (uniform floats, unbiased bounded integers, Fisher–Yates
//! shuffling, stratified splits and folds) is written here by hand because it is small and because pulling in
//! the whole `rand` crate would tie reproducibility to its distribution code, whose value stability is not
//! promised across versions.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng as _, SeedableRng};

/// A seeded, deterministic random generator (ChaCha8).
///
/// Not for cryptographic use: the seed is only 64 bits and chosen by the caller.
#[derive(Debug, Clone)]
pub struct Rng {
    inner: ChaCha8Rng,
}

impl Rng {
    /// A generator whose whole output is determined by `seed`.
    pub fn seeded(seed: u64) -> Self {
        Self { inner: ChaCha8Rng::seed_from_u64(seed) }
    }

    /// The next 64 uniformly distributed bits.
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// A uniformly distributed `f64` in `[0, 1)`, with 53 bits of precision.
    pub fn uniform(&mut self) -> f64 {
        // The top 53 bits, scaled by 2^-53: every value is a multiple of 2^-53 and 1.0 is never reached.
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniformly distributed integer in `0..n`, without modulo bias (Lemire's widening multiplication
    /// with rejection).
    ///
    /// # Panics
    /// When `n` is 0, since the range is empty.
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "Rng::below(0): the range 0..0 is empty");
        let n = n as u64;
        let mut product = u128::from(self.next_u64()) * u128::from(n);
        let mut low = product as u64;
        if low < n {
            // 2^64 mod n: the number of low values that would make some results more likely.
            let threshold = n.wrapping_neg() % n;
            while low < threshold {
                product = u128::from(self.next_u64()) * u128::from(n);
                low = product as u64;
            }
        }
        (product >> 64) as usize
    }

    /// Shuffles `items` in place (Fisher–Yates); every permutation is equally likely.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// The indices of the positive and of the negative labels, each shuffled (positives first, from the same
/// generator), so that splits and folds draw from each class separately.
fn shuffled_classes(labels: &[bool], rng: &mut Rng) -> [Vec<usize>; 2] {
    let mut positives: Vec<usize> = (0..labels.len()).filter(|&i| labels[i]).collect();
    let mut negatives: Vec<usize> = (0..labels.len()).filter(|&i| !labels[i]).collect();
    rng.shuffle(&mut positives);
    rng.shuffle(&mut negatives);
    [positives, negatives]
}

/// Splits the row indices `0..labels.len()` into `(train, test)`, keeping the class proportions.
///
/// Each class is shuffled separately and `round(n_class * test_fraction)` of its rows (rounding half away
/// from zero) go to the test side, the rest to training. Both returned lists are sorted ascending; the result
/// depends only on `labels`, `test_fraction` and `seed`.
///
/// # Panics
/// When `test_fraction` is not within `[0, 1]` (including NaN).
pub fn stratified_split(labels: &[bool], test_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    assert!(
        (0.0..=1.0).contains(&test_fraction),
        "stratified_split: test_fraction {test_fraction} is not within [0, 1]"
    );
    let mut rng = Rng::seeded(seed);
    let mut train = Vec::with_capacity(labels.len());
    let mut test = Vec::new();
    for class in shuffled_classes(labels, &mut rng) {
        let n_test = ((class.len() as f64 * test_fraction).round() as usize).min(class.len());
        test.extend_from_slice(&class[..n_test]);
        train.extend_from_slice(&class[n_test..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

/// Splits the row indices `0..labels.len()` into `k` disjoint folds that together cover every row, keeping
/// the class proportions in each fold.
///
/// Each class is shuffled separately and dealt round-robin to the folds; the deal of the negatives continues
/// where the positives stopped, so fold sizes differ by at most one and each class's count per fold differs by
/// at most one. Each fold is sorted ascending. With more folds than rows some folds are empty.
///
/// # Panics
/// When `k` is 0.
pub fn stratified_folds(labels: &[bool], k: usize, seed: u64) -> Vec<Vec<usize>> {
    assert!(k > 0, "stratified_folds: k must be at least 1");
    let mut rng = Rng::seeded(seed);
    let mut folds: Vec<Vec<usize>> = vec![Vec::with_capacity(labels.len() / k + 1); k];
    let mut next_fold = 0;
    for class in shuffled_classes(labels, &mut rng) {
        for index in class {
            folds[next_fold].push(index);
            next_fold = (next_fold + 1) % k;
        }
    }
    for fold in &mut folds {
        fold.sort_unstable();
    }
    folds
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(n: usize, every: usize) -> Vec<bool> {
        (0..n).map(|i| i % every == 0).collect()
    }

    #[test]
    fn same_seed_same_stream_different_seed_different_stream() {
        let mut a = Rng::seeded(42);
        let mut b = Rng::seeded(42);
        let mut c = Rng::seeded(43);
        let xa: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let xb: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let xc: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
    }

    #[test]
    fn stream_is_pinned() {
        // Guards against a silent change of the generator (e.g. a dependency bump) that would change every
        // split made with an existing seed. If this fails on purpose, say so in the changelog.
        let mut rng = Rng::seeded(0);
        let first: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        assert_eq!(first, PINNED_SEED0);
    }

    const PINNED_SEED0: [u64; 3] = [13080132717333068652, 8594738769458413623, 12896916468484187878];

    #[test]
    fn uniform_is_in_unit_interval_and_roughly_uniform() {
        let mut rng = Rng::seeded(7);
        let n = 100_000;
        let mut sum = 0.0;
        let mut histogram = [0usize; 10];
        for _ in 0..n {
            let u = rng.uniform();
            assert!((0.0..1.0).contains(&u));
            sum += u;
            histogram[(u * 10.0) as usize] += 1;
        }
        assert!((sum / n as f64 - 0.5).abs() < 0.01);
        for count in histogram {
            assert!((count as f64 - 10_000.0).abs() < 500.0, "{histogram:?}");
        }
    }

    #[test]
    fn below_stays_in_range_and_hits_every_value() {
        let mut rng = Rng::seeded(1);
        let mut seen = [0usize; 7];
        for _ in 0..7_000 {
            seen[rng.below(7)] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800 && c < 1200), "{seen:?}");
        assert_eq!(rng.below(1), 0);
        let big = usize::MAX;
        assert!(rng.below(big) < big);
    }

    #[test]
    #[should_panic(expected = "empty")]
    fn below_zero_panics() {
        Rng::seeded(1).below(0);
    }

    #[test]
    fn shuffle_is_a_permutation_and_reproducible() {
        let mut a: Vec<u32> = (0..50).collect();
        let mut b = a.clone();
        Rng::seeded(9).shuffle(&mut a);
        Rng::seeded(9).shuffle(&mut b);
        assert_eq!(a, b);
        assert_ne!(a, (0..50).collect::<Vec<_>>());
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        let mut empty: [u8; 0] = [];
        Rng::seeded(9).shuffle(&mut empty);
        let mut one = [5];
        Rng::seeded(9).shuffle(&mut one);
        assert_eq!(one, [5]);
    }

    #[test]
    fn split_is_reproducible_for_a_seed() {
        let y = labels(500, 4);
        assert_eq!(stratified_split(&y, 0.2, 3), stratified_split(&y, 0.2, 3));
        assert_ne!(stratified_split(&y, 0.2, 3).1, stratified_split(&y, 0.2, 4).1);
    }

    #[test]
    fn split_preserves_class_proportions_and_covers_all_rows() {
        let y = labels(503, 4); // 126 positives, 377 negatives
        let (train, test) = stratified_split(&y, 0.25, 11);
        let test_positives = test.iter().filter(|&&i| y[i]).count();
        let test_negatives = test.len() - test_positives;
        assert_eq!(test_positives, (126.0f64 * 0.25).round() as usize); // 31.5 -> 32
        assert_eq!(test_negatives, (377.0f64 * 0.25).round() as usize); // 94.25 -> 94
        let mut all: Vec<usize> = train.iter().chain(&test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..503).collect::<Vec<_>>());
        assert!(train.windows(2).all(|w| w[0] < w[1]));
        assert!(test.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn split_edge_fractions_and_one_class() {
        let y = labels(20, 2);
        let (train, test) = stratified_split(&y, 0.0, 1);
        assert_eq!((train.len(), test.len()), (20, 0));
        let (train, test) = stratified_split(&y, 1.0, 1);
        assert_eq!((train.len(), test.len()), (0, 20));
        let (train, test) = stratified_split(&[false; 10], 0.3, 1);
        assert_eq!((train.len(), test.len()), (7, 3));
        let (train, test) = stratified_split(&[], 0.3, 1);
        assert!(train.is_empty() && test.is_empty());
    }

    #[test]
    #[should_panic(expected = "test_fraction")]
    fn split_rejects_bad_fraction() {
        stratified_split(&[true, false], 1.5, 1);
    }

    #[test]
    fn folds_partition_rows_and_keep_proportions() {
        let y = labels(103, 3); // 35 positives, 68 negatives
        let folds = stratified_folds(&y, 5, 2);
        assert_eq!(folds, stratified_folds(&y, 5, 2));
        assert_eq!(folds.len(), 5);
        let mut all: Vec<usize> = folds.concat();
        all.sort_unstable();
        assert_eq!(all, (0..103).collect::<Vec<_>>());
        let sizes: Vec<usize> = folds.iter().map(Vec::len).collect();
        assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "{sizes:?}");
        for fold in &folds {
            let positives = fold.iter().filter(|&&i| y[i]).count();
            assert!(positives == 7, "{positives}");
        }
        assert_ne!(folds, stratified_folds(&y, 5, 3));
    }

    #[test]
    fn more_folds_than_rows() {
        let folds = stratified_folds(&[true, false, true], 5, 0);
        assert_eq!(folds.len(), 5);
        assert_eq!(folds.iter().map(Vec::len).sum::<usize>(), 3);
    }
}
