//! Gradient-boosted decision trees for a binary outcome, in the style of LightGBM.
//!
//! Why it is written here: no Rust crate matches LightGBM's accuracy and speed on tabular lead data with the
//! dependencies this workspace accepts. `perpetual` needs a nightly compiler; `lightgbm3` builds the C++ library
//! with cmake and bindgen; the pure-Rust tree crates (linfa-trees, smartcore) grow one exact tree at a time from a
//! dense numeric matrix and have no histogram boosting, categorical splits or missing-value handling. The algorithm
//! below is small: histogram boosting of log loss with leaf-wise growth, with LightGBM's defaults.
//!
//! # Binning ([`FeatureBins`]), learned on the training rows only
//! - numeric: at most [`Params::max_bin`] bins with about equal counts of training rows (every distinct value its
//!   own bin when there are few, a value that alone fills a bin its own bin), bin edges halfway between
//!   consecutive distinct values; plus a last bin for missing cells.
//! - categorical: one bin per category seen in training (the [`Params::max_bin`] most frequent), plus a last bin
//!   for missing cells, categories never seen in training and dropped rare ones.
//! - boolean: bins `no`/`false` and `yes`/`true`, plus the missing bin.
//!
//! # Training ([`Booster::fit`])
//! The initial score is the log-odds of the training base rate. Each iteration fits one tree to the gradients
//! `p − y` and hessians `p(1 − p)` of the log loss: per leaf, a histogram per feature holds (Σg, Σh, count) per bin
//! (the larger child's histogram is the parent's minus the smaller child's), and the split of gain
//! `G_L²/(H_L+λ) + G_R²/(H_R+λ) − G²/(H+λ)` is found over
//! - numeric and boolean features: `bin ≤ t`, the missing bin sent to the side with more gain (left when the leaf
//!   has no missing value);
//! - categorical features: with at most [`Params::max_cat_to_onehot`] bins, one category against the rest;
//!   otherwise LightGBM's many-vs-many split: categories with at least [`Params::cat_smooth`] rows are sorted by
//!   `Σg/(Σh + cat_smooth)` and a prefix of that order (from either end, at most [`Params::max_cat_threshold`]
//!   categories) goes left, with λ increased by [`Params::cat_l2`]. The missing bin counts as a category; a
//!   category unseen in training goes right.
//!
//! Trees grow leaf-wise (best-first): the leaf whose best split gains most is split next, until
//! [`Params::num_leaves`] leaves or no split gains more than [`Params::min_gain_to_split`] while leaving at least
//! [`Params::min_data_in_leaf`] rows and [`Params::min_sum_hessian_in_leaf`] hessian on each side. A leaf's value
//! is `−G/(H+λ)` times the learning rate. Everything is sequential and uses no randomness, so two fits of the same
//! data give identical boosters (ties go to the lower feature, bin and leaf index).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::dataset::{ColumnKind, DatasetError, Table};

/// Training settings. [`Params::default`] gives LightGBM's defaults for binary classification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Params {
    /// Shrinkage of every leaf value (LightGBM `learning_rate`, 0.1).
    pub learning_rate: f64,
    /// Number of trees (LightGBM `num_iterations`, 100).
    pub num_iterations: usize,
    /// Maximum leaves per tree (LightGBM `num_leaves`, 31).
    pub num_leaves: usize,
    /// Maximum depth of a tree; `None` for no limit (LightGBM `max_depth = -1`).
    pub max_depth: Option<usize>,
    /// Minimum training rows in a leaf (LightGBM `min_data_in_leaf`, 20).
    pub min_data_in_leaf: usize,
    /// Minimum sum of hessians in a leaf (LightGBM `min_sum_hessian_in_leaf`, 1e-3).
    pub min_sum_hessian_in_leaf: f64,
    /// L2 penalty on leaf values (LightGBM `lambda_l2`, 0).
    pub lambda_l2: f64,
    /// Minimum gain of a split (LightGBM `min_gain_to_split`, 0).
    pub min_gain_to_split: f64,
    /// Maximum bins per feature, the missing bin excluded (LightGBM `max_bin`, 255).
    pub max_bin: usize,
    /// Categorical features with at most this many bins use one-vs-rest splits (LightGBM `max_cat_to_onehot`, 4).
    pub max_cat_to_onehot: usize,
    /// Maximum categories on the left of a many-vs-many split (LightGBM `max_cat_threshold`, 32).
    pub max_cat_threshold: usize,
    /// Smoothing of the category order, and minimum rows of a category to take part (LightGBM `cat_smooth`, 10).
    pub cat_smooth: f64,
    /// Extra L2 penalty in many-vs-many categorical splits (LightGBM `cat_l2`, 10).
    pub cat_l2: f64,
    /// Minimum rows per group of categories in a many-vs-many split (LightGBM `min_data_per_group`, 100).
    pub min_data_per_group: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            learning_rate: 0.1,
            num_iterations: 100,
            num_leaves: 31,
            max_depth: None,
            min_data_in_leaf: 20,
            min_sum_hessian_in_leaf: 1e-3,
            lambda_l2: 0.0,
            min_gain_to_split: 0.0,
            max_bin: 255,
            max_cat_to_onehot: 4,
            max_cat_threshold: 32,
            cat_smooth: 10.0,
            cat_l2: 10.0,
            min_data_per_group: 100,
        }
    }
}

/// Why a fit or a prediction failed.
#[derive(Debug, thiserror::Error)]
pub enum GbdtError {
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error("{rows} training rows but {labels} labels")]
    LengthMismatch { rows: usize, labels: usize },
    #[error("no training rows")]
    NoRows,
    #[error("no feature columns")]
    NoFeatures,
    #[error("every training label is {0}: boosting needs both outcomes")]
    SingleClass(bool),
    #[error("invalid parameter {name}: {message}")]
    InvalidParam { name: &'static str, message: String },
}

/// How the cells of one feature column become bin indexes. The last bin (index [`FeatureBins::missing_bin`]) holds
/// missing cells, and for categorical columns also categories not kept from training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeatureBins {
    Numeric {
        column: String,
        /// Ascending; value `v` goes to bin `i`, the number of bounds below `v` (so bin `i` is
        /// `upper_bounds[i-1] < v ≤ upper_bounds[i]`).
        upper_bounds: Vec<f64>,
    },
    Boolean {
        column: String,
    },
    Categorical {
        column: String,
        /// The category of each bin, most frequent in training first.
        categories: Vec<String>,
    },
}

impl FeatureBins {
    /// The column name.
    pub fn column(&self) -> &str {
        match self {
            FeatureBins::Numeric { column, .. }
            | FeatureBins::Boolean { column }
            | FeatureBins::Categorical { column, .. } => column,
        }
    }

    /// The index of the missing bin, which is also the number of other bins.
    pub fn missing_bin(&self) -> usize {
        match self {
            FeatureBins::Numeric { upper_bounds, .. } => upper_bounds.len() + 1,
            FeatureBins::Boolean { .. } => 2,
            FeatureBins::Categorical { categories, .. } => categories.len(),
        }
    }

    fn is_categorical(&self) -> bool {
        matches!(self, FeatureBins::Categorical { .. })
    }

    /// Learns the bins of `column` from the training rows; returns them with the bin of each training row.
    fn fit(
        table: &Table,
        column: &str,
        rows: &[usize],
        max_bin: usize,
    ) -> Result<(FeatureBins, Vec<u16>), DatasetError> {
        let c = table.column_index(column)?;
        let column = column.to_string();
        let fitted = match table.kinds()[c] {
            ColumnKind::Numeric => {
                // Parse once: the bounds come from the present values, then every row is binned.
                let mut values = Vec::with_capacity(rows.len());
                for &r in rows {
                    values.push(match table.cell(r, c) {
                        Some(text) => Some(parse_number(table, r, &column, text)?),
                        None => None,
                    });
                }
                let upper_bounds = numeric_bounds(values.iter().flatten().copied().collect(), max_bin);
                let missing = upper_bounds.len() as u16 + 1;
                let binned = values.iter().map(|v| v.map_or(missing, |v| numeric_bin(&upper_bounds, v))).collect();
                return Ok((FeatureBins::Numeric { upper_bounds, column }, binned));
            }
            ColumnKind::Boolean => FeatureBins::Boolean { column },
            ColumnKind::Categorical => {
                let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
                for &r in rows {
                    if let Some(text) = table.cell(r, c) {
                        *counts.entry(text).or_default() += 1;
                    }
                }
                let mut counts: Vec<(&str, usize)> = counts.into_iter().collect();
                counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                counts.truncate(max_bin);
                FeatureBins::Categorical {
                    column,
                    categories: counts.into_iter().map(|(v, _)| v.to_string()).collect(),
                }
            }
        };
        let binned = fitted.bin_rows(table, rows)?;
        Ok((fitted, binned))
    }

    /// The bin of every row in `rows`.
    fn bin_rows(&self, table: &Table, rows: &[usize]) -> Result<Vec<u16>, DatasetError> {
        let c = table.column_index(self.column())?;
        let missing = self.missing_bin() as u16;
        let mut out = Vec::with_capacity(rows.len());
        match self {
            FeatureBins::Numeric { column, upper_bounds } => {
                for &r in rows {
                    out.push(match table.cell(r, c) {
                        None => missing,
                        Some(text) => numeric_bin(upper_bounds, parse_number(table, r, column, text)?),
                    });
                }
            }
            FeatureBins::Boolean { column } => {
                for &r in rows {
                    out.push(match table.cell(r, c) {
                        None => missing,
                        Some(text) => match parse_bool(text) {
                            Some(b) => u16::from(b),
                            None => {
                                return Err(DatasetError::NotBoolean {
                                    file: table.name().to_string(),
                                    line: table.line(r),
                                    column: column.clone(),
                                    value: text.to_string(),
                                });
                            }
                        },
                    });
                }
            }
            FeatureBins::Categorical { categories, .. } => {
                // A sorted list searched by bisection: faster than hashing for the few categories of lead data.
                let mut lookup: Vec<(&str, u16)> =
                    categories.iter().enumerate().map(|(i, v)| (v.as_str(), i as u16)).collect();
                lookup.sort_unstable();
                let find = |text: &str| lookup.binary_search_by(|(v, _)| (*v).cmp(text)).ok().map(|i| lookup[i].1);
                for &r in rows {
                    out.push(table.cell(r, c).and_then(find).unwrap_or(missing));
                }
            }
        }
        Ok(out)
    }
}

fn parse_number(table: &Table, row: usize, column: &str, text: &str) -> Result<f64, DatasetError> {
    text.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| DatasetError::NotNumeric {
        file: table.name().to_string(),
        line: table.line(row),
        column: column.to_string(),
        value: text.to_string(),
    })
}

fn parse_bool(cell: &str) -> Option<bool> {
    if cell.eq_ignore_ascii_case("yes") || cell.eq_ignore_ascii_case("true") {
        Some(true)
    } else if cell.eq_ignore_ascii_case("no") || cell.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn numeric_bin(upper_bounds: &[f64], v: f64) -> u16 {
    upper_bounds.partition_point(|&b| b < v) as u16
}

/// Bin edges for `values` (the non-missing training values): at most `max_bin` bins of about equal counts.
fn numeric_bounds(mut values: Vec<f64>, max_bin: usize) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    let mut distinct: Vec<(f64, usize)> = Vec::new();
    for v in values {
        match distinct.last_mut() {
            Some((last, n)) if *last == v => *n += 1,
            _ => distinct.push((v, 1)),
        }
    }
    let midpoint = |i: usize| distinct[i].0 + (distinct[i + 1].0 - distinct[i].0) / 2.0;
    if distinct.len() <= max_bin.max(1) {
        return (0..distinct.len().saturating_sub(1)).map(midpoint).collect();
    }
    let mut bounds = Vec::new();
    let mut rest_rows: usize = distinct.iter().map(|d| d.1).sum();
    let mut rest_bins = max_bin;
    let mut in_bin = 0;
    for (i, &(_, n)) in distinct[..distinct.len() - 1].iter().enumerate() {
        if rest_bins <= 1 {
            break;
        }
        let target = rest_rows as f64 / rest_bins as f64;
        // A value that alone fills a bin starts a bin of its own.
        if in_bin > 0 && n as f64 >= target {
            bounds.push(midpoint(i - 1));
            rest_rows -= in_bin;
            rest_bins -= 1;
            in_bin = 0;
            if rest_bins <= 1 {
                break;
            }
        }
        in_bin += n;
        let target = rest_rows as f64 / rest_bins as f64;
        if in_bin as f64 >= target {
            bounds.push(midpoint(i));
            rest_rows -= in_bin;
            rest_bins -= 1;
            in_bin = 0;
        }
    }
    bounds
}

/// Which rows go left at a split node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rule {
    /// Left when `bin ≤ bin_threshold`; the missing bin goes left when `missing_left`.
    Threshold { bin_threshold: u16, missing_left: bool },
    /// Left when the bin is one of `left_bins` (sorted).
    Categories { left_bins: Vec<u16> },
}

impl Rule {
    fn goes_left(&self, bin: u16, missing_bin: u16) -> bool {
        match self {
            Rule::Threshold { bin_threshold, missing_left } => {
                if bin == missing_bin {
                    *missing_left
                } else {
                    bin <= *bin_threshold
                }
            }
            Rule::Categories { left_bins } => left_bins.binary_search(&bin).is_ok(),
        }
    }
}

/// A child of a split node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Child {
    Node(usize),
    Leaf(usize),
}

/// A split node of a tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Index into [`Booster::features`].
    pub feature: usize,
    pub rule: Rule,
    /// Decrease of the training loss's second-order approximation brought by this split.
    pub gain: f64,
    pub left: Child,
    pub right: Child,
}

/// One tree: split nodes (the root is node 0 when there is any) and leaf values (already scaled by the learning
/// rate). A tree without nodes is its single leaf 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
    pub leaves: Vec<f64>,
}

impl Tree {
    fn predict(&self, bins: &[u16], missing_bins: &[u16]) -> f64 {
        let mut child = if self.nodes.is_empty() { Child::Leaf(0) } else { Child::Node(0) };
        loop {
            match child {
                Child::Leaf(i) => return self.leaves[i],
                Child::Node(i) => {
                    let node = &self.nodes[i];
                    let f = node.feature;
                    child = if node.rule.goes_left(bins[f], missing_bins[f]) { node.left } else { node.right };
                }
            }
        }
    }
}

/// A fitted model: `P(y) = σ(init_score + Σ tree outputs)`. Serialisable, to be saved and loaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Booster {
    pub params: Params,
    pub features: Vec<FeatureBins>,
    /// Log-odds of the training base rate.
    pub init_score: f64,
    pub trees: Vec<Tree>,
}

/// Sums over the rows of one histogram bin (or of a leaf).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Sums {
    g: f64,
    h: f64,
    n: usize,
}

impl Sums {
    fn add(&mut self, o: &Sums) {
        self.g += o.g;
        self.h += o.h;
        self.n += o.n;
    }

    fn minus(&self, o: &Sums) -> Sums {
        Sums { g: self.g - o.g, h: self.h - o.h, n: self.n - o.n }
    }
}

fn leaf_gain(s: &Sums, lambda: f64) -> f64 {
    s.g * s.g / (s.h + lambda + 1e-15)
}

/// The best split of one leaf.
#[derive(Debug, Clone)]
struct Candidate {
    feature: usize,
    rule: Rule,
    gain: f64,
}

/// A leaf being grown.
struct GrowingLeaf {
    rows: Vec<u32>,
    hist: Vec<Sums>,
    sums: Sums,
    depth: usize,
    best: Option<Candidate>,
    /// The node whose child this leaf is, and whether on the left.
    parent: Option<(usize, bool)>,
}

/// The binned training data and what split finding needs.
struct Trainer<'a> {
    params: &'a Params,
    bins: Vec<FeatureBins>,
    /// Row-major bins of the training rows (`n_features` per row), each plus its feature's offset: an index into a
    /// leaf's histogram.
    row_bins: Vec<u32>,
    /// Offset of each feature's histogram in a leaf's histogram; the last entry is the total length.
    offsets: Vec<usize>,
}

impl Trainer<'_> {
    fn histogram(&self, rows: &[u32], grad: &[f64], hess: &[f64]) -> Vec<Sums> {
        let mut hist = vec![Sums::default(); *self.offsets.last().unwrap_or(&0)];
        let p = self.bins.len();
        for &r in rows {
            let r = r as usize;
            let (g, h) = (grad[r], hess[r]);
            for &b in &self.row_bins[r * p..(r + 1) * p] {
                let s = &mut hist[b as usize];
                s.g += g;
                s.h += h;
                s.n += 1;
            }
        }
        hist
    }

    fn allowed(&self, s: &Sums) -> bool {
        s.n >= self.params.min_data_in_leaf.max(1) && s.h >= self.params.min_sum_hessian_in_leaf
    }

    fn best_split(&self, hist: &[Sums], total: &Sums) -> Option<Candidate> {
        let mut best: Option<Candidate> = None;
        for (f, fb) in self.bins.iter().enumerate() {
            let h = &hist[self.offsets[f]..self.offsets[f + 1]];
            let found = if fb.is_categorical() && h.len() > self.params.max_cat_to_onehot {
                self.best_many_vs_many(h, total)
            } else if fb.is_categorical() {
                self.best_one_vs_rest(h, total)
            } else {
                self.best_threshold(h, total)
            };
            if let Some((gain, rule)) = found
                && best.as_ref().is_none_or(|b| gain > b.gain)
            {
                best = Some(Candidate { feature: f, rule, gain });
            }
        }
        best
    }

    /// `(gain, rule)` of the best `bin ≤ t` split of a histogram whose last bin is the missing one.
    fn best_threshold(&self, h: &[Sums], total: &Sums) -> Option<(f64, Rule)> {
        let lambda = self.params.lambda_l2;
        let parent = leaf_gain(total, lambda) + self.params.min_gain_to_split;
        let missing_bin = h.len() - 1;
        let missing = h[missing_bin];
        let mut best: Option<(f64, Rule)> = None;
        let directions: &[bool] = if missing.n > 0 { &[false, true] } else { &[true] };
        for &missing_left in directions {
            let mut left = if missing_left { missing } else { Sums::default() };
            // With the missing bin on the right, "every other bin left" is a split too.
            let last = if missing_left { missing_bin.saturating_sub(1) } else { missing_bin };
            for (t, s) in h[..last].iter().enumerate() {
                left.add(s);
                if s.n == 0 || !self.allowed(&left) {
                    continue;
                }
                let right = total.minus(&left);
                if !self.allowed(&right) {
                    break;
                }
                let gain = leaf_gain(&left, lambda) + leaf_gain(&right, lambda);
                if gain > parent && best.as_ref().is_none_or(|b| gain - parent > b.0) {
                    best = Some((gain - parent, Rule::Threshold { bin_threshold: t as u16, missing_left }));
                }
            }
        }
        best.map(|(g, r)| (g + self.params.min_gain_to_split, r))
    }

    fn best_one_vs_rest(&self, h: &[Sums], total: &Sums) -> Option<(f64, Rule)> {
        let lambda = self.params.lambda_l2;
        let parent = leaf_gain(total, lambda) + self.params.min_gain_to_split;
        let mut best: Option<(f64, Rule)> = None;
        for (b, left) in h.iter().enumerate() {
            let right = total.minus(left);
            if !self.allowed(left) || !self.allowed(&right) {
                continue;
            }
            let gain = leaf_gain(left, lambda) + leaf_gain(&right, lambda);
            if gain > parent && best.as_ref().is_none_or(|x| gain - parent > x.0) {
                best = Some((gain - parent, Rule::Categories { left_bins: vec![b as u16] }));
            }
        }
        best.map(|(g, r)| (g + self.params.min_gain_to_split, r))
    }

    fn best_many_vs_many(&self, h: &[Sums], total: &Sums) -> Option<(f64, Rule)> {
        let p = self.params;
        let lambda = p.lambda_l2 + p.cat_l2;
        let parent = leaf_gain(total, lambda) + p.min_gain_to_split;
        let mut order: Vec<usize> = (0..h.len()).filter(|&b| h[b].n as f64 >= p.cat_smooth).collect();
        let ratio = |b: usize| h[b].g / (h[b].h + p.cat_smooth);
        order.sort_by(|&a, &b| ratio(a).total_cmp(&ratio(b)));
        let max_left = p.max_cat_threshold.min(order.len().div_ceil(2)).max(1);
        let mut best: Option<(f64, bool, usize)> = None;
        for reverse in [false, true] {
            let mut left = Sums::default();
            let mut in_group = 0;
            for i in 0..order.len().min(max_left) {
                let b = if reverse { order[order.len() - 1 - i] } else { order[i] };
                left.add(&h[b]);
                in_group += h[b].n;
                if !self.allowed(&left) {
                    continue;
                }
                let right = total.minus(&left);
                if !self.allowed(&right) {
                    break;
                }
                if in_group < p.min_data_per_group {
                    continue;
                }
                in_group = 0;
                let gain = leaf_gain(&left, lambda) + leaf_gain(&right, lambda);
                if gain > parent && best.is_none_or(|x| gain - parent > x.0) {
                    best = Some((gain - parent, reverse, i + 1));
                }
            }
        }
        best.map(|(gain, reverse, k)| {
            let mut left_bins: Vec<u16> = if reverse {
                order[order.len() - k..].iter().map(|&b| b as u16).collect()
            } else {
                order[..k].iter().map(|&b| b as u16).collect()
            };
            left_bins.sort_unstable();
            (gain + p.min_gain_to_split, Rule::Categories { left_bins })
        })
    }

    fn new_leaf(
        &self,
        rows: Vec<u32>,
        hist: Vec<Sums>,
        sums: Sums,
        depth: usize,
        parent: Option<(usize, bool)>,
    ) -> GrowingLeaf {
        let depth_ok = self.params.max_depth.is_none_or(|d| depth < d);
        let best = if depth_ok { self.best_split(&hist, &sums) } else { None };
        GrowingLeaf { rows, hist, sums, depth, best, parent }
    }

    /// Grows one tree on the gradients; returns it and, per leaf, the training rows in it.
    fn grow(&self, all_rows: Vec<u32>, grad: &[f64], hess: &[f64]) -> (Tree, Vec<Vec<u32>>) {
        let p = self.params;
        let hist = self.histogram(&all_rows, grad, hess);
        let mut sums = Sums::default();
        for &r in &all_rows {
            sums.add(&Sums { g: grad[r as usize], h: hess[r as usize], n: 1 });
        }
        let mut leaves = vec![self.new_leaf(all_rows, hist, sums, 0, None)];
        let mut nodes: Vec<Node> = Vec::new();
        while leaves.len() < p.num_leaves {
            let mut chosen: Option<(usize, f64)> = None;
            for (i, leaf) in leaves.iter().enumerate() {
                if let Some(c) = &leaf.best
                    && chosen.is_none_or(|(_, g)| c.gain > g)
                {
                    chosen = Some((i, c.gain));
                }
            }
            let Some((i, _)) = chosen else { break };
            let leaf = &mut leaves[i];
            let Candidate { feature, rule, gain } = leaf.best.take().expect("chosen leaf has a split");
            let missing_bin = self.bins[feature].missing_bin() as u16;
            let (p, offset) = (self.bins.len(), self.offsets[feature] as u32);
            let bin_of = |r: u32| (self.row_bins[r as usize * p + feature] - offset) as u16;
            let rows = std::mem::take(&mut leaf.rows);
            let (left_rows, right_rows): (Vec<u32>, Vec<u32>) =
                rows.into_iter().partition(|&r| rule.goes_left(bin_of(r), missing_bin));
            let sum_of = |rows: &[u32]| {
                let mut s = Sums::default();
                for &r in rows {
                    s.add(&Sums { g: grad[r as usize], h: hess[r as usize], n: 1 });
                }
                s
            };
            let (left_sums, right_sums) = (sum_of(&left_rows), sum_of(&right_rows));
            let parent_hist = std::mem::take(&mut leaf.hist);
            let (left_hist, right_hist) = if left_rows.len() <= right_rows.len() {
                let small = self.histogram(&left_rows, grad, hess);
                let large = parent_hist.iter().zip(&small).map(|(a, b)| a.minus(b)).collect();
                (small, large)
            } else {
                let small = self.histogram(&right_rows, grad, hess);
                let large = parent_hist.iter().zip(&small).map(|(a, b)| a.minus(b)).collect();
                (large, small)
            };
            let depth = leaf.depth + 1;
            let parent = leaf.parent;
            let node = nodes.len();
            let right_index = leaves.len();
            nodes.push(Node { feature, rule, gain, left: Child::Leaf(i), right: Child::Leaf(right_index) });
            if let Some((pnode, is_left)) = parent {
                if is_left {
                    nodes[pnode].left = Child::Node(node);
                } else {
                    nodes[pnode].right = Child::Node(node);
                }
            }
            leaves[i] = self.new_leaf(left_rows, left_hist, left_sums, depth, Some((node, true)));
            let right = self.new_leaf(right_rows, right_hist, right_sums, depth, Some((node, false)));
            leaves.push(right);
        }
        let values = leaves.iter().map(|l| -l.sums.g / (l.sums.h + p.lambda_l2 + 1e-15) * p.learning_rate).collect();
        (Tree { nodes, leaves: values }, leaves.into_iter().map(|l| l.rows).collect())
    }
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

fn check_params(p: &Params) -> Result<(), GbdtError> {
    let invalid = |name, message: &str| Err(GbdtError::InvalidParam { name, message: message.to_string() });
    if !(p.learning_rate > 0.0 && p.learning_rate.is_finite()) {
        return invalid("learning_rate", "must be positive and finite");
    }
    if p.num_leaves < 2 {
        return invalid("num_leaves", "must be at least 2");
    }
    if !(2..=u16::MAX as usize - 1).contains(&p.max_bin) {
        return invalid("max_bin", "must be between 2 and 65534");
    }
    let non_negative = |x: f64| x >= 0.0 && x.is_finite();
    for (name, value) in [
        ("lambda_l2", p.lambda_l2),
        ("cat_l2", p.cat_l2),
        ("cat_smooth", p.cat_smooth),
        ("min_sum_hessian_in_leaf", p.min_sum_hessian_in_leaf),
        ("min_gain_to_split", p.min_gain_to_split),
    ] {
        if !non_negative(value) {
            return invalid(name, "must be non-negative and finite");
        }
    }
    Ok(())
}

fn check_rows(table: &Table, rows: &[usize]) -> Result<(), DatasetError> {
    match rows.iter().find(|&&r| r >= table.n_rows()) {
        Some(&row) => Err(DatasetError::RowOutOfRange { file: table.name().to_string(), row, rows: table.n_rows() }),
        None => Ok(()),
    }
}

impl Booster {
    /// Fits the booster on the table rows `rows` (the training rows), with `labels` parallel to `rows`
    /// (`labels[i]` is the outcome of row `rows[i]`), using the columns `features` (numeric, boolean and
    /// categorical, as inferred by the table).
    pub fn fit(
        table: &Table,
        features: &[&str],
        rows: &[usize],
        labels: &[bool],
        params: &Params,
    ) -> Result<Booster, GbdtError> {
        check_params(params)?;
        check_rows(table, rows)?;
        if rows.len() != labels.len() {
            return Err(GbdtError::LengthMismatch { rows: rows.len(), labels: labels.len() });
        }
        if rows.is_empty() {
            return Err(GbdtError::NoRows);
        }
        if features.is_empty() {
            return Err(GbdtError::NoFeatures);
        }
        let positives = labels.iter().filter(|&&y| y).count();
        if positives == 0 || positives == labels.len() {
            return Err(GbdtError::SingleClass(labels[0]));
        }
        let (bins, columns): (Vec<FeatureBins>, Vec<Vec<u16>>) = features
            .iter()
            .map(|&f| FeatureBins::fit(table, f, rows, params.max_bin))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .unzip();
        let mut offsets = vec![0];
        for b in &bins {
            offsets.push(offsets.last().unwrap() + b.missing_bin() + 1);
        }
        let mut row_bins = Vec::with_capacity(rows.len() * bins.len());
        for i in 0..rows.len() {
            row_bins.extend(columns.iter().zip(&offsets).map(|(column, &offset)| column[i] as u32 + offset as u32));
        }
        let trainer = Trainer { params, bins, row_bins, offsets };

        let n = rows.len();
        let base_rate = positives as f64 / n as f64;
        let init_score = (base_rate / (1.0 - base_rate)).ln();
        let y: Vec<f64> = labels.iter().map(|&l| f64::from(u8::from(l))).collect();
        let mut score = vec![init_score; n];
        let mut grad = vec![0.0; n];
        let mut hess = vec![0.0; n];
        let mut trees = Vec::with_capacity(params.num_iterations);
        for _ in 0..params.num_iterations {
            for i in 0..n {
                let p = sigmoid(score[i]);
                grad[i] = p - y[i];
                hess[i] = p * (1.0 - p);
            }
            let (tree, leaf_rows) = trainer.grow((0..n as u32).collect(), &grad, &hess);
            if tree.nodes.is_empty() {
                // No split meets the requirements any more: later trees would be the same single leaf.
                break;
            }
            for (value, rows) in tree.leaves.iter().zip(&leaf_rows) {
                for &r in rows {
                    score[r as usize] += value;
                }
            }
            trees.push(tree);
        }
        Ok(Booster { params: params.clone(), features: trainer.bins, init_score, trees })
    }

    /// The raw scores (log-odds) of the table rows `rows`. The table may be another file than the training one:
    /// columns are looked up by name.
    pub fn predict_raw(&self, table: &Table, rows: &[usize]) -> Result<Vec<f64>, GbdtError> {
        check_rows(table, rows)?;
        let p = self.features.len();
        let columns = self.features.iter().map(|b| b.bin_rows(table, rows)).collect::<Result<Vec<_>, _>>()?;
        let missing_bins: Vec<u16> = self.features.iter().map(|b| b.missing_bin() as u16).collect();
        let mut bins = vec![0u16; p];
        Ok((0..rows.len())
            .map(|i| {
                for (f, column) in columns.iter().enumerate() {
                    bins[f] = column[i];
                }
                self.init_score + self.trees.iter().map(|t| t.predict(&bins, &missing_bins)).sum::<f64>()
            })
            .collect())
    }

    /// The probability of the positive outcome for the table rows `rows` (see [`Booster::predict_raw`]). Errors
    /// when a feature column is absent or a cell does not parse as its column's kind.
    pub fn predict_proba(&self, table: &Table, rows: &[usize]) -> Result<Vec<f64>, GbdtError> {
        Ok(self.predict_raw(table, rows)?.into_iter().map(sigmoid).collect())
    }

    /// The total split gain of each feature column over all trees, largest first (ties in feature order).
    pub fn feature_importance(&self) -> Vec<(String, f64)> {
        let mut gains = vec![0.0; self.features.len()];
        for node in self.trees.iter().flat_map(|t| &t.nodes) {
            gains[node.feature] += node.gain;
        }
        let mut out: Vec<(String, f64)> = self.features.iter().map(|f| f.column().to_string()).zip(gains).collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Table {
        Table::from_csv_reader(text.as_bytes(), "t.csv").unwrap()
    }

    #[test]
    fn numeric_bins_few_and_many_values() {
        assert_eq!(numeric_bounds(vec![3.0, 1.0, 2.0, 2.0], 255), [1.5, 2.5]);
        assert_eq!(numeric_bounds(vec![], 255), Vec::<f64>::new());
        assert_eq!(numeric_bounds(vec![7.0, 7.0], 255), Vec::<f64>::new());
        // 1..=100 into 4 bins of 25.
        let b = numeric_bounds((1..=100).map(f64::from).collect(), 4);
        assert_eq!(b, [25.5, 50.5, 75.5]);
        // A value holding most rows gets a bin of its own.
        let mut v: Vec<f64> = (1..=10).map(f64::from).collect();
        v.extend(std::iter::repeat_n(11.0, 80));
        v.extend((12..=21).map(f64::from));
        let b = numeric_bounds(v, 4);
        assert!(b.contains(&10.5) && b.contains(&11.5), "{b:?}");
        assert!(b.len() <= 3);
        assert_eq!(numeric_bin(&[1.5, 2.5], 1.0), 0);
        assert_eq!(numeric_bin(&[1.5, 2.5], 1.5), 0);
        assert_eq!(numeric_bin(&[1.5, 2.5], 2.0), 1);
        assert_eq!(numeric_bin(&[1.5, 2.5], 9.0), 2);
    }

    #[test]
    fn binning_of_table_columns() {
        let t = table("n,b,c\n1,yes,a\n2,no,b\n,,a\n3,TRUE,\n5,no,zz\n");
        let train = [0, 1, 2, 3];
        let (n, binned) = FeatureBins::fit(&t, "n", &train, 255).unwrap();
        assert_eq!(binned, [0, 1, 3, 2]);
        assert_eq!(n, FeatureBins::Numeric { column: "n".into(), upper_bounds: vec![1.5, 2.5] });
        assert_eq!(n.bin_rows(&t, &[0, 1, 2, 3, 4]).unwrap(), [0, 1, 3, 2, 2]);
        let (b, _) = FeatureBins::fit(&t, "b", &train, 255).unwrap();
        assert_eq!(b.bin_rows(&t, &[0, 1, 2, 3]).unwrap(), [1, 0, 2, 1]);
        let (c, binned) = FeatureBins::fit(&t, "c", &train, 255).unwrap();
        assert_eq!(binned, [0, 1, 0, 2]);
        assert_eq!(c, FeatureBins::Categorical { column: "c".into(), categories: vec!["a".into(), "b".into()] });
        // Missing and never-seen categories share the last bin.
        assert_eq!(c.bin_rows(&t, &[0, 1, 3, 4]).unwrap(), [0, 1, 2, 2]);
    }

    #[test]
    fn one_split_by_hand() {
        // x ≤ 2 is all negative, x ≥ 3 all positive.
        let t = table("x,y\n1,no\n1,no\n2,no\n2,no\n3,yes\n3,yes\n4,yes\n4,yes\n");
        let rows: Vec<usize> = (0..8).collect();
        let labels = t.target("y", None).unwrap();
        let params =
            Params { num_iterations: 1, num_leaves: 2, min_data_in_leaf: 1, learning_rate: 1.0, ..Params::default() };
        let booster = Booster::fit(&t, &["x"], &rows, &labels, &params).unwrap();
        assert_eq!(booster.init_score, 0.0);
        let tree = &booster.trees[0];
        assert_eq!(tree.nodes.len(), 1);
        assert_eq!(tree.nodes[0].rule, Rule::Threshold { bin_threshold: 1, missing_left: true });
        // At p = 0.5: g = p − y = ±0.5, h = 0.25. Left: G = 4·0.5 = 2, H = 1 → value −2; right value +2.
        // Gain = 2²/1 + 2²/1 − 0²/2 = 8 (x ≤ 1 would gain 1²/0.5 + 1²/1.5 ≈ 2.67).
        assert!((tree.nodes[0].gain - 8.0).abs() < 1e-9, "{}", tree.nodes[0].gain);
        assert!((tree.leaves[0] + 2.0).abs() < 1e-9 && (tree.leaves[1] - 2.0).abs() < 1e-9, "{:?}", tree.leaves);
        let p = booster.predict_proba(&t, &rows).unwrap();
        assert!((p[0] - sigmoid(-2.0)).abs() < 1e-12 && (p[7] - sigmoid(2.0)).abs() < 1e-12);
        assert_eq!(booster.feature_importance(), [("x".to_string(), tree.nodes[0].gain)]);
    }

    #[test]
    fn categorical_and_missing_splits() {
        // Category b is all positive, a and c negative: one-vs-rest sends b alone to the left.
        let t = table("k,y\na,no\na,no\nb,yes\nb,yes\nc,no\nc,no\n");
        let labels = t.target("y", None).unwrap();
        let rows: Vec<usize> = (0..6).collect();
        let params = Params { num_iterations: 1, num_leaves: 2, min_data_in_leaf: 1, ..Params::default() };
        let booster = Booster::fit(&t, &["k"], &rows, &labels, &params).unwrap();
        let FeatureBins::Categorical { categories, .. } = &booster.features[0] else { panic!() };
        let b = categories.iter().position(|c| c == "b").unwrap() as u16;
        assert_eq!(booster.trees[0].nodes[0].rule, Rule::Categories { left_bins: vec![b] });
        // Missing values that are positive: the missing bin joins the positive side.
        let t = table("x,y\n1,no\n2,no\n3,no\n4,yes\n,yes\n,yes\n");
        let labels = t.target("y", None).unwrap();
        let booster = Booster::fit(&t, &["x"], &rows, &labels, &params).unwrap();
        assert_eq!(booster.trees[0].nodes[0].rule, Rule::Threshold { bin_threshold: 2, missing_left: false });
    }

    #[test]
    fn errors() {
        let t = table("x,y\n1,no\n2,yes\n");
        let p = Params::default();
        assert!(matches!(Booster::fit(&t, &["x"], &[0, 1], &[true], &p), Err(GbdtError::LengthMismatch { .. })));
        assert!(matches!(Booster::fit(&t, &["x"], &[0, 1], &[true, true], &p), Err(GbdtError::SingleClass(true))));
        assert!(matches!(Booster::fit(&t, &["z"], &[0, 1], &[true, false], &p), Err(GbdtError::Dataset(_))));
        assert!(matches!(Booster::fit(&t, &["x"], &[0, 5], &[true, false], &p), Err(GbdtError::Dataset(_))));
        let bad = Params { num_leaves: 1, ..Params::default() };
        assert!(matches!(Booster::fit(&t, &["x"], &[0, 1], &[true, false], &bad), Err(GbdtError::InvalidParam { .. })));
    }
}
