//! Gradient-boosted decision trees for a binary outcome, grown leaf-wise as LightGBM grows them or symmetric as
//! CatBoost does.
//!
//! Why it is written here: no Rust crate matches LightGBM's accuracy and speed on tabular lead data with the
//! dependencies this workspace accepts. `perpetual` needs a nightly compiler; `lightgbm3` builds the C++ library
//! with cmake and bindgen; the pure-Rust tree crates (linfa-trees, smartcore) grow one exact tree at a time from a
//! dense numeric matrix and have no histogram boosting, categorical splits or missing-value handling. The algorithm
//! below is small: histogram boosting of log loss with leaf-wise growth and LightGBM's defaults
//! ([`Params::default`]), or symmetric growth ([`Params::symmetric`], what `leadscore train` fits).
//!
//! # Binning ([`FeatureBins`]), learned on the training rows only
//! - numeric: at most [`Params::max_bin`] bins with about equal counts of training rows (every distinct value its
//!   own bin when there are few, a value that alone fills a bin its own bin), bin edges halfway between
//!   consecutive distinct values; plus a last bin for missing cells.
//! - categorical: one bin per category seen in training (the [`Params::max_bin`] most frequent), plus a last bin
//!   for missing cells, categories never seen in training and dropped rare ones.
//! - boolean: bins `no`/`false` and `yes`/`true`, plus the missing bin.
//! - date: as numeric, on the days since 1970-01-01 (see [`crate::dataset`]).
//!
//! # Training ([`Booster::fit`])
//! The initial score is the log-odds of the training base rate. Each iteration fits one tree to the gradients
//! `p − y` and hessians `p(1 − p)` of the log loss: per leaf, a histogram per feature holds (Σg, Σh) per bin (the
//! larger child's histogram is the parent's minus the smaller child's; a bin's row count is estimated from its
//! share of the leaf's hessian, as LightGBM does), and the split of gain `G_L²/(H_L+λ) + G_R²/(H_R+λ) − G²/(H+λ)`
//! is found over
//! - numeric and boolean features: `bin ≤ t`, the missing bin sent to the side with more gain (left when the leaf
//!   has no missing value);
//! - categorical features: with at most [`Params::max_cat_to_onehot`] bins, one category against the rest;
//!   otherwise LightGBM's many-vs-many split: categories with at least [`Params::cat_smooth`] rows are sorted by
//!   `Σg/(Σh + cat_smooth)` and a prefix of that order (from either end, at most [`Params::max_cat_threshold`]
//!   categories) goes left, with λ increased by [`Params::cat_l2`] for the two sides (not for the parent, and not
//!   for the leaf values), each side keeping [`Params::min_data_per_group`] rows. The missing bin counts as a
//!   category; a category unseen in training goes right.
//!
//! Categorical features may instead split on their ordered target statistic ([`Params::target_statistics`],
//! [`crate::target_stats`]), binned as a number: `statistic ≤ t`. The tree then keeps the rule as the set of
//! categories whose statistic over all the training rows is at most `t`, so that a saved model scores new leads
//! with the statistics of training folded into its rules, and explains them by the category as any other tree.
//!
//! Symmetric trees ([`Growth::Symmetric`]) grow level by level to [`Params::max_depth`]: the split of a level is
//! the one rule, over every leaf of the level, whose gains summed over those leaves are largest (categories one
//! against the rest, the same category for every leaf); a level adds nothing when no rule gains more than
//! [`Params::min_gain_to_split`]. There is no minimum of rows per leaf: a leaf without rows has the value 0, and
//! the L2 penalty keeps the values of small leaves small. Such trees are shallow and coarse, each fitting less of
//! the noise of the training rows than a leaf-wise tree of as many leaves.
//!
//! Leaf-wise trees grow best-first: the leaf whose best split gains most is split next, until
//! [`Params::num_leaves`] leaves or no split gains more than [`Params::min_gain_to_split`] while leaving at least
//! [`Params::min_data_in_leaf`] rows and [`Params::min_sum_hessian_in_leaf`] hessian on each side. A leaf's value
//! is `−G/(H+λ)` times the learning rate.
//!
//! # Speed
//! The training rows' bins are kept row after row as histogram indexes (for histograms) and feature by feature
//! (for splitting a leaf), and each leaf's rows as a range of one index array that a split partitions in place.
//! Only leaves that may still be split get a histogram. Gradients with the root's histogram, the histograms and
//! partitions of many rows, the two children's split searches, binning and prediction run on rayon's threads.
//!
//! # Reproducibility
//! No randomness, and threads never change a result: work is divided by fixed sizes (blocks of `BLOCK_ROWS` rows,
//! one feature, one leaf), never by the number of threads, and partial sums are added in block order. Two fits of
//! the same data give identical boosters (ties go to the lower feature, bin and leaf index).

use std::collections::BTreeMap;

use rayon::prelude::*;
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
    /// How trees grow: leaf-wise (LightGBM) or symmetric (CatBoost), see [`Growth`].
    pub growth: Growth,
    /// Split categorical features with more than [`Params::max_cat_to_onehot`] categories on ordered target
    /// statistics (CatBoost) rather than on their categories' gradients (LightGBM); see [`crate::target_stats`].
    pub target_statistics: bool,
    /// Maximum bins of a target statistic (CatBoost `ctr_border_count`, 15).
    pub target_statistic_bins: usize,
    /// Weight, in rows, of the prior (the training base rate) in a target statistic.
    pub prior_weight: f64,
    /// Seed of the row order in which target statistics are accumulated.
    pub seed: u64,
}

/// How a tree grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Growth {
    /// Best-first: the leaf whose best split gains most is split next (LightGBM).
    #[default]
    LeafWise,
    /// Level by level, every leaf of a level split by the same rule, the one whose gains summed over the level's
    /// leaves are largest, to [`Params::max_depth`] levels (CatBoost's oblivious trees).
    Symmetric,
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
            growth: Growth::LeafWise,
            target_statistics: false,
            target_statistic_bins: 15,
            prior_weight: 1.0,
            seed: 0,
        }
    }
}

impl Params {
    /// Symmetric trees of depth 6 with CatBoost's L2 penalty on leaf values (`l2_leaf_reg`, 3), categories split
    /// one against the rest: what `leadscore train` fits. Fewer trees with a larger learning rate than CatBoost's
    /// 1000 at about 0.05, for the time of LightGBM's 100 (docs/benchmarks.md, "Predictive scoring").
    pub fn symmetric() -> Params {
        Params {
            growth: Growth::Symmetric,
            max_depth: Some(6),
            lambda_l2: 3.0,
            learning_rate: 0.15,
            num_iterations: 100,
            ..Params::default()
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
        /// A date column: its values are read as days since 1970-01-01.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        date: bool,
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
            kind @ (ColumnKind::Numeric | ColumnKind::Date) => {
                let date = kind == ColumnKind::Date;
                // Parse once: the bounds come from the present values, then every row is binned.
                let mut values = Vec::with_capacity(rows.len());
                for &r in rows {
                    values.push(match table.cell(r, c) {
                        Some(text) => Some(parse_number(table, r, &column, text, date)?),
                        None => None,
                    });
                }
                let upper_bounds = numeric_bounds(values.iter().flatten().copied().collect(), max_bin);
                let missing = upper_bounds.len() as u16 + 1;
                let binned = values.iter().map(|v| v.map_or(missing, |v| numeric_bin(&upper_bounds, v))).collect();
                return Ok((FeatureBins::Numeric { upper_bounds, column, date }, binned));
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
            FeatureBins::Numeric { column, upper_bounds, date } => {
                for &r in rows {
                    out.push(match table.cell(r, c) {
                        None => missing,
                        Some(text) => numeric_bin(upper_bounds, parse_number(table, r, column, text, *date)?),
                    });
                }
            }
            FeatureBins::Boolean { column } => {
                for &r in rows {
                    out.push(match table.cell(r, c) {
                        None => missing,
                        Some(text) => match leadscore_core::value::read_bool(text) {
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

fn parse_number(table: &Table, row: usize, column: &str, text: &str, date: bool) -> Result<f64, DatasetError> {
    crate::dataset::number_of(text, date).ok_or_else(|| DatasetError::NotNumeric {
        file: table.name().to_string(),
        line: table.line(row),
        column: column.to_string(),
        value: text.to_string(),
    })
}

pub(crate) fn numeric_bin(upper_bounds: &[f64], v: f64) -> u16 {
    upper_bounds.partition_point(|&b| b < v) as u16
}

/// Bin edges for `values` (the non-missing training values): at most `max_bin` bins of about equal counts.
fn numeric_bounds(mut values: Vec<f64>, max_bin: usize) -> Vec<f64> {
    // Values equal in this order are the same bits: an unstable sort gives the same result, sooner.
    values.sort_unstable_by(f64::total_cmp);
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
    /// The tree's output for a row with the bins `bins`, rule by rule (one lead at a time); [`FlatTree`] gives the
    /// same faster for many rows.
    pub fn predict(&self, bins: &[u16], missing_bins: &[u16]) -> f64 {
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

/// A tree as prediction over many rows reads it: every rule as a bit per bin of its feature (set when the bin goes
/// left), and children as indexes, negative for leaves. One lookup per node instead of a rule to interpret.
struct FlatTree {
    /// Per node: the feature, where its bits start in `bits`, the left and right child (`!leaf` for a leaf).
    nodes: Vec<(usize, usize, isize, isize)>,
    bits: Vec<u64>,
    leaves: Vec<f64>,
}

impl FlatTree {
    fn new(tree: &Tree, missing_bins: &[u16]) -> FlatTree {
        let child = |c: Child| match c {
            Child::Node(i) => i as isize,
            Child::Leaf(i) => !(i as isize),
        };
        let mut bits = Vec::new();
        let nodes = tree
            .nodes
            .iter()
            .map(|node| {
                let start = bits.len();
                let missing = missing_bins[node.feature];
                bits.resize(start + usize::from(missing) / 64 + 1, 0);
                for b in 0..=missing {
                    if node.rule.goes_left(b, missing) {
                        bits[start + usize::from(b) / 64] |= 1 << (b % 64);
                    }
                }
                (node.feature, start, child(node.left), child(node.right))
            })
            .collect();
        FlatTree { nodes, bits, leaves: tree.leaves.clone() }
    }

    /// The output for a row with the bins `bins` (each at most its feature's missing bin).
    #[cfg(test)]
    fn predict(&self, bins: &[u16]) -> f64 {
        let mut next = if self.nodes.is_empty() { !0 } else { 0 };
        while next >= 0 {
            let (feature, start, left, right) = self.nodes[next as usize];
            let b = usize::from(bins[feature]);
            next = if self.bits[start + b / 64] >> (b % 64) & 1 == 1 { left } else { right };
        }
        self.leaves[!next as usize]
    }

    /// Adds the outputs for rows to `out`, `bins` holding `p` bins per row. Eight rows go down the tree together:
    /// their steps do not depend on each other, so the processor overlaps their lookups rather than waiting for
    /// each in turn.
    fn add_outputs(&self, bins: &[u16], p: usize, out: &mut [f64]) {
        for (bins, out) in bins.chunks(8 * p).zip(out.chunks_mut(8)) {
            let mut next = [if self.nodes.is_empty() { !0 } else { 0 }; 8];
            let next = &mut next[..out.len()];
            let mut walking = true;
            while walking {
                walking = false;
                for (j, next) in next.iter_mut().enumerate() {
                    if *next >= 0 {
                        let (feature, start, left, right) = self.nodes[*next as usize];
                        let b = usize::from(bins[j * p + feature]);
                        *next = if self.bits[start + b / 64] >> (b % 64) & 1 == 1 { left } else { right };
                        walking = true;
                    }
                }
            }
            for (out, &leaf) in out.iter_mut().zip(next.iter()) {
                *out += self.leaves[!leaf as usize];
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

/// One histogram bin: the sums of the gradients and of the hessians of its rows. Like LightGBM, it holds no row
/// count: split finding estimates a bin's rows from its hessian (see [`Trainer::best_split`]), which leaves the
/// histogram loops one memory update per row and feature rather than two.
type Bin = [f64; 2];

/// Sums over the rows of a leaf, or of a bin with its estimated row count.
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

    /// The rest once `o` is taken out. Estimated counts can add up to more than the leaf's rows: the rest then
    /// has none (LightGBM's count goes negative, which fails the same minimum).
    fn minus(&self, o: &Sums) -> Sums {
        Sums { g: self.g - o.g, h: self.h - o.h, n: self.n.saturating_sub(o.n) }
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
    /// The sums of the rows that go left.
    left: Sums,
}

/// A leaf being grown. Its rows are `order[start..start + sums.n]` of [`Trainer::grow`].
struct GrowingLeaf {
    start: usize,
    hist: Vec<Bin>,
    sums: Sums,
    depth: usize,
    best: Option<Candidate>,
    /// The node whose child this leaf is, and whether on the left.
    parent: Option<(usize, bool)>,
}

/// The bins of the training rows, row after row (`n_features` per row), each as its index in a leaf's histogram
/// (the bin plus its feature's offset): two bytes each unless the histogram has more than 65536 bins. A leaf's
/// rows are scattered, so keeping a row's bins together means one memory access per row rather than one per
/// feature; and the features of one row go to different histogram bins, so the additions do not wait on each other
/// as they would feature by feature (most rows fall in a few bins).
enum BinMatrix {
    Short(Vec<u16>),
    Long(Vec<u32>),
}

impl BinMatrix {
    /// From the bins of each feature (`columns[f][r]`) and the features' histogram offsets.
    fn new(columns: &[Vec<u16>], offsets: &[usize], n_rows: usize) -> BinMatrix {
        let index = |r: usize| columns.iter().zip(offsets).map(move |(c, &offset)| offset + usize::from(c[r]));
        if offsets.last().is_some_and(|&n| n <= 1 << 16) {
            BinMatrix::Short((0..n_rows).flat_map(index).map(|i| i as u16).collect())
        } else {
            BinMatrix::Long((0..n_rows).flat_map(index).map(|i| i as u32).collect())
        }
    }
}

/// A histogram index as stored in a [`BinMatrix`].
trait HistIndex: Copy {
    fn get(self) -> usize;
}

impl HistIndex for u16 {
    fn get(self) -> usize {
        usize::from(self)
    }
}

impl HistIndex for u32 {
    fn get(self) -> usize {
        self as usize
    }
}

/// Adds the gradient pairs of the rows `rows` into `hist`, from `matrix` (`p` histogram indexes per row).
fn accumulate<B: HistIndex>(matrix: &[B], p: usize, rows: &[u32], gh: &[[f64; 2]], hist: &mut [Bin]) {
    let mut add = |i: B, g: f64, h: f64| {
        let s = &mut hist[i.get()];
        s[0] += g;
        s[1] += h;
    };
    for &r in rows {
        let r = r as usize;
        let [g, h] = gh[r];
        // By fours, which the compiler unrolls: the loop's own counting is then a small part of the work.
        let (fours, rest) = matrix[r * p..(r + 1) * p].as_chunks::<4>();
        for four in fours {
            for &i in four {
                add(i, g, h);
            }
        }
        for &i in rest {
            add(i, g, h);
        }
    }
}

/// The bins of the training rows for one feature, one byte each when the feature has at most 256 bins. Splitting
/// a leaf reads one feature of its rows, in ascending order: from a column of its own, that is a short walk
/// through memory rather than one cache line per row of the [`BinMatrix`].
enum BinColumn {
    Narrow(Vec<u8>),
    Wide(Vec<u16>),
}

impl BinColumn {
    fn new(bins: &[u16], n_bins: usize) -> BinColumn {
        if n_bins <= 256 {
            BinColumn::Narrow(bins.iter().map(|&b| b as u8).collect())
        } else {
            BinColumn::Wide(bins.to_vec())
        }
    }
}

/// Reorders `rows` so that those whose bin in `column` goes left come first, keeping their order on each side (so
/// rows stay ascending within a leaf, and bins are read in memory order); returns how many go left. The left rows
/// move in place and the right ones through `scratch`, without branches: a row goes either way about as often as
/// the other, and mispredicted branches would cost more than the copies.
fn partition<B: Copy + Into<usize>>(
    column: &[B],
    goes_left: &[bool],
    rows: &mut [u32],
    scratch: &mut Vec<u32>,
) -> usize {
    if scratch.len() < rows.len() {
        scratch.resize(rows.len(), 0);
    }
    let (mut n_left, mut n_right) = (0, 0);
    for k in 0..rows.len() {
        let r = rows[k];
        let left = goes_left[column[r as usize].into()];
        rows[n_left] = r;
        scratch[n_right] = r;
        n_left += usize::from(left);
        n_right += usize::from(!left);
    }
    rows[n_left..].copy_from_slice(&scratch[..n_right]);
    n_left
}

/// The sum of blocks' histograms, added in block order.
fn add_blocks(blocks: Vec<Vec<Bin>>) -> Vec<Bin> {
    let mut blocks = blocks.into_iter();
    let mut hist = blocks.next().unwrap_or_default();
    for b in blocks {
        for (s, o) in hist.iter_mut().zip(&b) {
            s[0] += o[0];
            s[1] += o[1];
        }
    }
    hist
}

/// Rows per histogram task: each block of this many rows is summed on its own, and the blocks' histograms added
/// in block order, so the result depends on the rows only, never on the threads.
const BLOCK_ROWS: usize = 2048;

/// Rows per prediction task: enough to share the cost of walking each tree, few enough for the threads to share.
const PREDICT_ROWS: usize = 256;

/// The binned training data and what split finding needs.
struct Trainer<'a> {
    params: &'a Params,
    bins: Vec<FeatureBins>,
    /// Per feature split on target statistics: the bin of each category's statistic over all the training rows,
    /// by which rules on the statistic become rules on the categories.
    stat_bins: Vec<Option<Vec<u16>>>,
    matrix: BinMatrix,
    columns: Vec<BinColumn>,
    /// Offset of each feature's histogram in a leaf's histogram; the last entry is the total length.
    offsets: Vec<usize>,
}

impl<'a> Trainer<'a> {
    /// Bins the columns `features` of the table rows `rows`, whose outcomes are `labels`.
    fn new(
        table: &Table,
        features: &[&str],
        rows: &[usize],
        labels: &[bool],
        params: &'a Params,
    ) -> Result<Trainer<'a>, DatasetError> {
        let (bins, mut columns): (Vec<FeatureBins>, Vec<Vec<u16>>) = features
            .par_iter()
            .map(|&f| FeatureBins::fit(table, f, rows, params.max_bin))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .unzip();
        let prior = labels.iter().filter(|&&y| y).count() as f64 / labels.len().max(1) as f64;
        // Categorical features with many categories split on their ordered target statistic, binned as a number
        // is: training rows by their own statistic, categories by their statistic over all the rows.
        let stats: Vec<Option<(Vec<u16>, usize)>> = bins
            .par_iter()
            .zip(columns.par_iter_mut())
            .enumerate()
            .map(|(f, (b, column))| {
                let n_categories = b.missing_bin() + 1;
                if !(params.target_statistics && b.is_categorical() && n_categories > params.max_cat_to_onehot) {
                    return None;
                }
                let seed = params.seed.wrapping_add(f as u64);
                let stats =
                    crate::target_stats::ordered(column, n_categories, labels, prior, params.prior_weight, seed);
                let bounds = numeric_bounds(stats.per_row.clone(), params.target_statistic_bins);
                *column = stats.per_row.iter().map(|&v| numeric_bin(&bounds, v)).collect();
                let per_category = stats.per_category.iter().map(|&v| numeric_bin(&bounds, v)).collect();
                // A statistic's bins as a number's: one per bound and one more, plus an (empty) missing bin.
                Some((per_category, bounds.len() + 2))
            })
            .collect();
        let mut offsets = vec![0];
        for (b, stat) in bins.iter().zip(&stats) {
            let width = stat.as_ref().map_or(b.missing_bin() + 1, |s| s.1);
            offsets.push(offsets.last().unwrap_or(&0) + width);
        }
        let stat_bins = stats.into_iter().map(|s| s.map(|s| s.0)).collect();
        let matrix = BinMatrix::new(&columns, &offsets, rows.len());
        let columns = columns.iter().zip(offsets.windows(2)).map(|(c, w)| BinColumn::new(c, w[1] - w[0])).collect();
        Ok(Trainer { params, bins, stat_bins, matrix, columns, offsets })
    }

    /// The missing bin of feature `f` as split here (a statistic's differs from its categories').
    fn split_missing_bin(&self, f: usize) -> usize {
        self.offsets[f + 1] - self.offsets[f] - 1
    }

    /// The rule a tree keeps for a split found here: on target statistics, the categories whose statistic over
    /// all the training rows falls on the left.
    fn stored_rule(&self, feature: usize, rule: Rule) -> Rule {
        match (&self.stat_bins[feature], rule) {
            (Some(stat_bins), Rule::Threshold { bin_threshold, .. }) => Rule::Categories {
                left_bins: (0..stat_bins.len() as u16)
                    .filter(|&c| stat_bins[usize::from(c)] <= bin_threshold)
                    .collect(),
            },
            (_, rule) => rule,
        }
    }

    /// The histogram of the rows `rows`, from the gradient pairs `gh` of all training rows.
    fn histogram(&self, rows: &[u32], gh: &[[f64; 2]]) -> Vec<Bin> {
        let block = |rows: &[u32]| {
            let mut hist = vec![[0.0; 2]; *self.offsets.last().unwrap_or(&0)];
            match &self.matrix {
                BinMatrix::Short(m) => accumulate(m, self.bins.len(), rows, gh, &mut hist),
                BinMatrix::Long(m) => accumulate(m, self.bins.len(), rows, gh, &mut hist),
            }
            hist
        };
        if rows.len() <= BLOCK_ROWS {
            return block(rows);
        }
        add_blocks(rows.par_chunks(BLOCK_ROWS).map(block).collect())
    }

    /// The histogram of the rows `first..first + gh.len()`, `gh` being their gradient pairs: what
    /// [`Trainer::histogram`] gives for one block of all the rows in order.
    fn block_histogram(&self, first: usize, gh: &[[f64; 2]]) -> Vec<Bin> {
        let mut hist = vec![[0.0; 2]; *self.offsets.last().unwrap_or(&0)];
        let (p, rows) = (self.bins.len(), (0..gh.len() as u32).collect::<Vec<u32>>());
        let block = first * p..(first + gh.len()) * p;
        match &self.matrix {
            BinMatrix::Short(m) => accumulate(&m[block], p, &rows, gh, &mut hist),
            BinMatrix::Long(m) => accumulate(&m[block], p, &rows, gh, &mut hist),
        }
        hist
    }

    fn allowed(&self, s: &Sums) -> bool {
        s.n >= self.params.min_data_in_leaf.max(1) && s.h >= self.params.min_sum_hessian_in_leaf
    }

    /// The best split of a leaf with the histogram `hist` and the sums `total`. A bin's row count is estimated as
    /// its share of the leaf's hessian times the leaf's rows, rounded, as LightGBM does.
    fn best_split(&self, hist: &[Bin], total: &Sums) -> Option<Candidate> {
        let mut best: Option<Candidate> = None;
        let rows_per_hessian = if total.h > 0.0 { total.n as f64 / total.h } else { 0.0 };
        let mut h: Vec<Sums> = Vec::new();
        for (f, fb) in self.bins.iter().enumerate() {
            h.clear();
            h.extend(hist[self.offsets[f]..self.offsets[f + 1]].iter().map(|&[g, h]| Sums {
                g,
                h,
                // `as` saturates: a negative estimate (from subtraction) is 0 rows.
                n: (h * rows_per_hessian + 0.5) as usize,
            }));
            let h = h.as_slice();
            let categories = fb.is_categorical() && self.stat_bins[f].is_none();
            let found = if categories && h.len() > self.params.max_cat_to_onehot {
                self.best_many_vs_many(h, total)
            } else if categories {
                self.best_one_vs_rest(h, total)
            } else {
                self.best_threshold(h, total)
            };
            if let Some((gain, rule, left)) = found
                && best.as_ref().is_none_or(|b| gain > b.gain)
            {
                best = Some(Candidate { feature: f, rule, gain, left });
            }
        }
        best
    }

    /// `(gain, rule, left sums)` of the best `bin ≤ t` split of a histogram whose last bin is the missing one.
    fn best_threshold(&self, h: &[Sums], total: &Sums) -> Option<(f64, Rule, Sums)> {
        let lambda = self.params.lambda_l2;
        let parent = leaf_gain(total, lambda) + self.params.min_gain_to_split;
        let missing_bin = h.len() - 1;
        let missing = h[missing_bin];
        let mut best: Option<(f64, Rule, Sums)> = None;
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
                    best = Some((gain - parent, Rule::Threshold { bin_threshold: t as u16, missing_left }, left));
                }
            }
        }
        best.map(|(g, r, left)| (g + self.params.min_gain_to_split, r, left))
    }

    fn best_one_vs_rest(&self, h: &[Sums], total: &Sums) -> Option<(f64, Rule, Sums)> {
        let lambda = self.params.lambda_l2;
        let parent = leaf_gain(total, lambda) + self.params.min_gain_to_split;
        let mut best: Option<(f64, Rule, Sums)> = None;
        for (b, left) in h.iter().enumerate() {
            let right = total.minus(left);
            if !self.allowed(left) || !self.allowed(&right) {
                continue;
            }
            let gain = leaf_gain(left, lambda) + leaf_gain(&right, lambda);
            if gain > parent && best.as_ref().is_none_or(|x| gain - parent > x.0) {
                best = Some((gain - parent, Rule::Categories { left_bins: vec![b as u16] }, *left));
            }
        }
        best.map(|(g, r, left)| (g + self.params.min_gain_to_split, r, left))
    }

    fn best_many_vs_many(&self, h: &[Sums], total: &Sums) -> Option<(f64, Rule, Sums)> {
        let p = self.params;
        // As LightGBM: the children's gains with the larger penalty, the parent's with the usual one.
        let lambda = p.lambda_l2 + p.cat_l2;
        let parent = leaf_gain(total, p.lambda_l2) + p.min_gain_to_split;
        let mut order: Vec<usize> = (0..h.len()).filter(|&b| h[b].n as f64 >= p.cat_smooth).collect();
        let ratio = |b: usize| h[b].g / (h[b].h + p.cat_smooth);
        order.sort_by(|&a, &b| ratio(a).total_cmp(&ratio(b)));
        let max_left = p.max_cat_threshold.min(order.len().div_ceil(2)).max(1);
        let mut best: Option<(f64, bool, usize, Sums)> = None;
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
                if !self.allowed(&right) || right.n < p.min_data_per_group {
                    break;
                }
                if in_group < p.min_data_per_group {
                    continue;
                }
                in_group = 0;
                let gain = leaf_gain(&left, lambda) + leaf_gain(&right, lambda);
                if gain > parent && best.is_none_or(|x| gain - parent > x.0) {
                    best = Some((gain - parent, reverse, i + 1, left));
                }
            }
        }
        best.map(|(gain, reverse, k, left)| {
            let mut left_bins: Vec<u16> = if reverse {
                order[order.len() - k..].iter().map(|&b| b as u16).collect()
            } else {
                order[..k].iter().map(|&b| b as u16).collect()
            };
            left_bins.sort_unstable();
            (gain + p.min_gain_to_split, Rule::Categories { left_bins }, left)
        })
    }

    /// Reorders `rows` so that those `rule` sends left (on `feature`) come first; returns how many they are.
    fn partition(&self, feature: usize, rule: &Rule, rows: &mut [u32], scratch: &mut Vec<u32>) -> usize {
        let missing_bin = self.split_missing_bin(feature);
        let goes_left: Vec<bool> = (0..=missing_bin).map(|b| rule.goes_left(b as u16, missing_bin as u16)).collect();
        let split = |rows: &mut [u32], scratch: &mut Vec<u32>| match &self.columns[feature] {
            BinColumn::Narrow(c) => partition(c, &goes_left, rows, scratch),
            BinColumn::Wide(c) => partition(c, &goes_left, rows, scratch),
        };
        if rows.len() <= 2 * BLOCK_ROWS {
            return split(rows, scratch);
        }
        // Many rows: blocks partitioned on the threads, then their left rows and their right rows put together in
        // block order. The same order as one partition of all the rows.
        let blocks: Vec<(Vec<u32>, usize)> = rows
            .par_chunks(BLOCK_ROWS)
            .map(|block| {
                let mut block = block.to_vec();
                let n_left = split(&mut block, &mut Vec::new());
                (block, n_left)
            })
            .collect();
        let mut k = 0;
        for (block, n_left) in &blocks {
            rows[k..k + n_left].copy_from_slice(&block[..*n_left]);
            k += n_left;
        }
        let n_left = k;
        for (block, n_block_left) in &blocks {
            let right = &block[*n_block_left..];
            rows[k..k + right.len()].copy_from_slice(right);
            k += right.len();
        }
        n_left
    }

    /// A leaf and its best split; one without a histogram is not to be split.
    fn new_leaf(
        &self,
        start: usize,
        hist: Option<Vec<Bin>>,
        sums: Sums,
        depth: usize,
        parent: Option<(usize, bool)>,
    ) -> GrowingLeaf {
        let best = hist.as_ref().and_then(|h| self.best_split(h, &sums));
        GrowingLeaf { start, hist: hist.unwrap_or_default(), sums, depth, best, parent }
    }

    /// Grows one tree on the gradient pairs `gh` (one per training row). `order` holds every row index and is
    /// left grouped by leaf; returns the tree and, per leaf, where its rows start in `order` and how many they are.
    /// `hist` is the histogram of all the rows.
    fn grow(&self, gh: &[[f64; 2]], hist: Vec<Bin>, order: &mut [u32]) -> (Tree, Vec<(usize, usize)>) {
        let p = self.params;
        for (i, r) in order.iter_mut().enumerate() {
            *r = i as u32;
        }
        // The root's sums from one feature's histogram: every row is in exactly one of its bins.
        let mut sums = Sums { n: order.len(), ..Sums::default() };
        for s in &hist[..self.offsets.get(1).copied().unwrap_or(0)] {
            sums.g += s[0];
            sums.h += s[1];
        }
        let root_splits = p.max_depth.is_none_or(|d| d > 0);
        let mut leaves = vec![self.new_leaf(0, root_splits.then_some(hist), sums, 0, None)];
        let mut nodes: Vec<Node> = Vec::new();
        let mut scratch: Vec<u32> = Vec::new();
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
            let leaves_after = leaves.len() + 1;
            let leaf = &mut leaves[i];
            let Some(Candidate { feature, rule, gain, left }) = leaf.best.take() else { break };
            let rows = &mut order[leaf.start..leaf.start + leaf.sums.n];
            let n_left = self.partition(feature, &rule, rows, &mut scratch);
            let n_right = rows.len() - n_left;
            // The split's row counts were estimates: the children have the rows the partition gave them.
            let left_sums = Sums { n: n_left, ..left };
            let right_sums = Sums { g: leaf.sums.g - left.g, h: leaf.sums.h - left.h, n: n_right };
            // A child needs a histogram only if it may be split: not after the last split, and not with fewer rows
            // than two leaves need. Only the smaller child's histogram is built from its rows; the larger one's is
            // the parent's minus it.
            let depth = leaf.depth + 1;
            let may_split = |n: usize| {
                leaves_after < p.num_leaves
                    && n >= 2 * p.min_data_in_leaf.max(1)
                    && p.max_depth.is_none_or(|d| depth < d)
            };
            let (split_left, split_right) = (may_split(n_left), may_split(n_right));
            let (left_hist, right_hist) = if split_left || split_right {
                let (left_rows, right_rows) = rows.split_at(n_left);
                let left_smaller = n_left <= n_right;
                let small = self.histogram(if left_smaller { left_rows } else { right_rows }, gh);
                let large_needed = if left_smaller { split_right } else { split_left };
                let large = large_needed.then(|| {
                    let mut large = std::mem::take(&mut leaf.hist);
                    for (l, s) in large.iter_mut().zip(&small) {
                        l[0] -= s[0];
                        l[1] -= s[1];
                    }
                    large
                });
                if left_smaller { (Some(small), large) } else { (large, Some(small)) }
            } else {
                (None, None)
            };
            let (start, parent) = (leaf.start, leaf.parent);
            let node = nodes.len();
            let right_index = leaves.len();
            let rule = self.stored_rule(feature, rule);
            nodes.push(Node { feature, rule, gain, left: Child::Leaf(i), right: Child::Leaf(right_index) });
            if let Some((pnode, is_left)) = parent {
                if is_left {
                    nodes[pnode].left = Child::Node(node);
                } else {
                    nodes[pnode].right = Child::Node(node);
                }
            }
            // The children's best splits are independent: one may be found on another thread.
            let (left_leaf, right_leaf) = rayon::join(
                || self.new_leaf(start, left_hist, left_sums, depth, Some((node, true))),
                || self.new_leaf(start + n_left, right_hist, right_sums, depth, Some((node, false))),
            );
            leaves[i] = left_leaf;
            leaves.push(right_leaf);
        }
        let values = leaves.iter().map(|l| -l.sums.g / (l.sums.h + p.lambda_l2 + 1e-15) * p.learning_rate).collect();
        (Tree { nodes, leaves: values }, leaves.iter().map(|l| (l.start, l.sums.n)).collect())
    }

    /// Grows one symmetric tree (see [`Growth::Symmetric`]), with the arguments and results of [`Trainer::grow`].
    /// Its nodes are numbered level by level (node `2^d − 1 + k` is the `k`-th of level `d`, and its children are
    /// the `2k`-th and `2k + 1`-th of the next level); a leaf without training rows has the value 0.
    fn grow_symmetric(&self, gh: &[[f64; 2]], hist: Vec<Bin>, order: &mut [u32]) -> (Tree, Vec<(usize, usize)>) {
        let p = self.params;
        for (i, r) in order.iter_mut().enumerate() {
            *r = i as u32;
        }
        // Sums from histograms rather than rows: the root's from one feature's bins (every row is in exactly one),
        // a child's from its parent's bins of the split feature.
        let mut root = Sums { n: order.len(), ..Sums::default() };
        for s in &hist[..self.offsets.get(1).copied().unwrap_or(0)] {
            root.g += s[0];
            root.h += s[1];
        }
        let depth = p.max_depth.unwrap_or(6);
        // The leaves of the level grown so far: where their rows start, their sums and histograms.
        let mut leaves: Vec<(usize, Sums, Vec<Bin>)> = vec![(0, root, hist)];
        // Per level, the split and each leaf's gain from it.
        let mut levels: Vec<(usize, Rule, Vec<f64>)> = Vec::new();
        let mut scratch = Vec::new();
        for level in 0..depth {
            let Some((feature, rule)) = self.best_level_split(&leaves) else { break };
            let missing = self.split_missing_bin(feature);
            let goes_left: Vec<bool> = (0..=missing).map(|b| rule.goes_left(b as u16, missing as u16)).collect();
            // Each leaf's sums on the left (without their row count) and gain.
            let (lefts, gains): (Vec<Sums>, Vec<f64>) = leaves
                .iter()
                .map(|(_, sums, hist)| {
                    let mut left = Sums::default();
                    if sums.n == 0 {
                        return (left, 0.0);
                    }
                    for (b, s) in hist[self.offsets[feature]..self.offsets[feature + 1]].iter().enumerate() {
                        if goes_left[b] {
                            left.g += s[0];
                            left.h += s[1];
                        }
                    }
                    let lambda = p.lambda_l2;
                    let right = Sums { g: sums.g - left.g, h: sums.h - left.h, n: 0 };
                    (left, leaf_gain(&left, lambda) + leaf_gain(&right, lambda) - leaf_gain(sums, lambda))
                })
                .unzip();
            let n_lefts: Vec<usize> = leaves
                .iter()
                .map(|(start, sums, _)| {
                    self.partition(feature, &rule, &mut order[*start..*start + sums.n], &mut scratch)
                })
                .collect();
            let last = level + 1 == depth;
            let order: &[u32] = order;
            leaves = leaves
                .into_par_iter()
                .zip(n_lefts)
                .zip(lefts)
                .flat_map_iter(|(((start, sums, mut hist), n_left), left)| {
                    let (left_rows, right_rows) = order[start..start + sums.n].split_at(n_left);
                    let right = Sums { g: sums.g - left.g, h: sums.h - left.h, n: right_rows.len() };
                    let left = Sums { n: n_left, ..left };
                    let (left_hist, right_hist) = if last || sums.n == 0 {
                        (Vec::new(), Vec::new())
                    } else {
                        // The smaller child's histogram from its rows, the larger one's by subtraction.
                        let left_smaller = left_rows.len() <= right_rows.len();
                        let small = self.histogram(if left_smaller { left_rows } else { right_rows }, gh);
                        for (l, s) in hist.iter_mut().zip(&small) {
                            l[0] -= s[0];
                            l[1] -= s[1];
                        }
                        if left_smaller { (small, hist) } else { (hist, small) }
                    };
                    [(start, left, left_hist), (start + left_rows.len(), right, right_hist)]
                })
                .collect();
            levels.push((feature, rule, gains));
        }
        let mut nodes = Vec::new();
        for (level, (feature, rule, gains)) in levels.iter().enumerate() {
            let next = (1usize << (level + 1)) - 1;
            let child = |k: usize| if level + 1 == levels.len() { Child::Leaf(k) } else { Child::Node(next + k) };
            let rule = self.stored_rule(*feature, rule.clone());
            for (k, &gain) in gains.iter().enumerate() {
                nodes.push(Node {
                    feature: *feature,
                    rule: rule.clone(),
                    gain,
                    left: child(2 * k),
                    right: child(2 * k + 1),
                });
            }
        }
        let values = leaves
            .iter()
            .map(|(_, s, _)| if s.n == 0 { 0.0 } else { -s.g / (s.h + p.lambda_l2 + 1e-15) * p.learning_rate })
            .collect();
        (Tree { nodes, leaves: values }, leaves.iter().map(|(start, s, _)| (*start, s.n)).collect())
    }

    /// The split shared by every leaf of a level that gains most in all (ties to the lower feature, then the
    /// order below), or `None` when none gains more than [`Params::min_gain_to_split`]. Numbers, booleans and
    /// target statistics split as `bin ≤ t` with the missing bin on either side; categories one against the rest.
    fn best_level_split(&self, leaves: &[(usize, Sums, Vec<Bin>)]) -> Option<(usize, Rule)> {
        let lambda = self.params.lambda_l2;
        let per_feature: Vec<Option<(f64, Rule)>> = (0..self.bins.len())
            .into_par_iter()
            .map(|f| {
                let missing = self.split_missing_bin(f);
                let range = self.offsets[f]..self.offsets[f + 1];
                let categories = self.bins[f].is_categorical() && self.stat_bins[f].is_none();
                // Gains of the candidates: categories, bin b alone on the left; otherwise `bin ≤ t` with the missing
                // bin on the left (index t) or on the right (index missing + t).
                let mut gains = vec![0.0; if categories { missing + 1 } else { 2 * missing }];
                for (_, sums, hist) in leaves {
                    if sums.n == 0 {
                        continue;
                    }
                    let parent = leaf_gain(sums, lambda);
                    let h = &hist[range.clone()];
                    let gain_of = |left: &Sums| leaf_gain(left, lambda) + leaf_gain(&sums.minus(left), lambda) - parent;
                    if categories {
                        for (b, s) in h.iter().enumerate() {
                            gains[b] += gain_of(&Sums { g: s[0], h: s[1], n: 0 });
                        }
                    } else {
                        for (side, start) in [(0, h[missing]), (missing, [0.0, 0.0])] {
                            let mut left = Sums { g: start[0], h: start[1], n: 0 };
                            for (t, s) in h[..missing].iter().enumerate() {
                                left.g += s[0];
                                left.h += s[1];
                                gains[side + t] += gain_of(&left);
                            }
                        }
                    }
                }
                let mut best: Option<(f64, usize)> = None;
                for (i, &g) in gains.iter().enumerate() {
                    if g > self.params.min_gain_to_split.max(1e-12) && best.is_none_or(|(b, _)| g > b) {
                        best = Some((g, i));
                    }
                }
                best.map(|(g, i)| {
                    let rule = if categories {
                        Rule::Categories { left_bins: vec![i as u16] }
                    } else {
                        Rule::Threshold { bin_threshold: (i % missing) as u16, missing_left: i < missing }
                    };
                    (g, rule)
                })
            })
            .collect();
        let mut best: Option<(f64, usize, Rule)> = None;
        for (f, found) in per_feature.into_iter().enumerate() {
            if let Some((g, rule)) = found
                && best.as_ref().is_none_or(|b| g > b.0)
            {
                best = Some((g, f, rule));
            }
        }
        best.map(|(_, f, rule)| (f, rule))
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
        // On one of rayon's threads: the many small parallel steps of growing a tree then hand work to the other
        // threads cheaply, rather than each waking the pool from outside and waiting for it.
        rayon::scope(|_| Booster::boost(table, features, rows, labels, positives, params))
    }

    /// [`Booster::fit`] once the arguments are checked.
    fn boost(
        table: &Table,
        features: &[&str],
        rows: &[usize],
        labels: &[bool],
        positives: usize,
        params: &Params,
    ) -> Result<Booster, GbdtError> {
        let trainer = Trainer::new(table, features, rows, labels, params)?;
        let n = rows.len();
        let base_rate = positives as f64 / n as f64;
        let init_score = (base_rate / (1.0 - base_rate)).ln();
        let mut score = vec![init_score; n];
        let mut gh = vec![[0.0; 2]; n];
        let mut order = vec![0u32; n];
        let mut trees = Vec::with_capacity(params.num_iterations);
        for _ in 0..params.num_iterations {
            // The gradients, and with them the root's histogram while they are at hand.
            let blocks = gh
                .par_chunks_mut(BLOCK_ROWS)
                .zip(score.par_chunks(BLOCK_ROWS))
                .zip(labels.par_chunks(BLOCK_ROWS))
                .enumerate()
                .map(|(block, ((gh, score), labels))| {
                    for ((gh, &score), &y) in gh.iter_mut().zip(score).zip(labels) {
                        let p = sigmoid(score);
                        *gh = [p - f64::from(u8::from(y)), p * (1.0 - p)];
                    }
                    trainer.block_histogram(block * BLOCK_ROWS, gh)
                })
                .collect();
            let hist = add_blocks(blocks);
            let (tree, leaf_rows) = match params.growth {
                Growth::LeafWise => trainer.grow(&gh, hist, &mut order),
                Growth::Symmetric => trainer.grow_symmetric(&gh, hist, &mut order),
            };
            if tree.nodes.is_empty() {
                // No split meets the requirements any more: later trees would be the same single leaf.
                break;
            }
            for (value, &(start, len)) in tree.leaves.iter().zip(&leaf_rows) {
                for &r in &order[start..start + len] {
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
        let columns = self.features.par_iter().map(|b| b.bin_rows(table, rows)).collect::<Result<Vec<_>, _>>()?;
        let missing_bins: Vec<u16> = self.features.iter().map(|b| b.missing_bin() as u16).collect();
        let trees: Vec<FlatTree> = self.trees.iter().map(|t| FlatTree::new(t, &missing_bins)).collect();
        // Blocks of rows, tree after tree (a tree's nodes stay in cache for the whole block). Each row's outputs are
        // added in tree order, from −0.0 as `Iterator::sum` does: the blocks and threads do not change the result.
        let mut raw = vec![-0.0; rows.len()];
        raw.par_chunks_mut(PREDICT_ROWS).enumerate().for_each(|(block, out)| {
            let first = block * PREDICT_ROWS;
            let bins: Vec<u16> = (first..first + out.len()).flat_map(|i| columns.iter().map(move |c| c[i])).collect();
            for tree in &trees {
                tree.add_outputs(&bins, p, out);
            }
            for v in out {
                *v += self.init_score;
            }
        });
        Ok(raw)
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
        assert_eq!(n, FeatureBins::Numeric { column: "n".into(), upper_bounds: vec![1.5, 2.5], date: false });
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

    /// A table of `n` rows: a numeric column with many values and some missing, a categorical one with nine
    /// categories and some missing, a boolean one, and an outcome that depends on all three and on chance.
    fn synthetic(n: usize, seed: u64) -> (Table, Vec<bool>) {
        let mut rng = crate::random::Rng::seeded(seed);
        let mut text = String::from("x,k,b,y\n");
        for _ in 0..n {
            let x = rng.below(1000);
            let k = rng.below(10);
            let b = rng.below(2) == 1;
            let z = x as f64 / 250.0 - 2.0
                + [0.5, -1.0, 0.0, 1.5, -0.5, 0.2, 0.0, 2.0, -2.0, 0.3][k]
                + f64::from(u8::from(b));
            let y = rng.uniform() < sigmoid(z);
            let x = if rng.below(20) == 0 { String::new() } else { x.to_string() };
            let k = if k == 9 { String::new() } else { format!("c{k}") };
            text += &format!("{x},{k},{},{}\n", if b { "yes" } else { "no" }, if y { "yes" } else { "no" });
        }
        let t = table(&text);
        let labels = t.target("y", None).unwrap();
        (t, labels)
    }

    fn close(a: &[Bin], b: &[Bin]) -> bool {
        a.iter().zip(b).all(|(x, y)| (0..2).all(|i| (x[i] - y[i]).abs() <= 1e-9 * (1.0 + x[i].abs())))
    }

    #[test]
    fn histograms_by_blocks_and_by_subtraction_match_direct_sums() {
        let (t, labels) = synthetic(3 * BLOCK_ROWS + 123, 1);
        let rows: Vec<usize> = (0..t.n_rows()).collect();
        let params = Params::default();
        let trainer = Trainer::new(&t, &["x", "k", "b"], &rows, &labels, &params).unwrap();
        let mut rng = crate::random::Rng::seeded(2);
        let gh: Vec<[f64; 2]> = rows.iter().map(|_| [rng.uniform() - 0.5, rng.uniform() * 0.25]).collect();
        // Directly, one row at a time.
        let direct = |rows: &[u32]| {
            let mut hist = vec![[0.0; 2]; *trainer.offsets.last().unwrap()];
            for &r in rows {
                for (f, b) in trainer.bins.iter().enumerate() {
                    let bins = b.bin_rows(&t, &[r as usize]).unwrap();
                    let s = &mut hist[trainer.offsets[f] + usize::from(bins[0])];
                    s[0] += gh[r as usize][0];
                    s[1] += gh[r as usize][1];
                }
            }
            hist
        };
        let mut order: Vec<u32> = (0..t.n_rows() as u32).collect();
        let parent = trainer.histogram(&order, &gh);
        assert!(close(&parent, &direct(&order)));
        // Split on x ≤ bin 150, missing left: the partition keeps each side's order and loses no row.
        let rule = Rule::Threshold { bin_threshold: 150, missing_left: true };
        let n_left = trainer.partition(0, &rule, &mut order, &mut Vec::new());
        let (left, right) = order.split_at(n_left);
        assert!(left.windows(2).all(|w| w[0] < w[1]) && right.windows(2).all(|w| w[0] < w[1]));
        let mut all = order.clone();
        all.sort_unstable();
        assert!(all.iter().enumerate().all(|(i, &r)| r as usize == i));
        let missing = trainer.bins[0].missing_bin() as u16;
        let x_bins = trainer.bins[0].bin_rows(&t, &rows).unwrap();
        assert!(left.iter().all(|&r| rule.goes_left(x_bins[r as usize], missing)));
        assert!(right.iter().all(|&r| !rule.goes_left(x_bins[r as usize], missing)));
        assert!(left.len() > BLOCK_ROWS && right.len() > BLOCK_ROWS, "{} {}", left.len(), right.len());
        // The larger side by subtraction, as grown trees do.
        let small = trainer.histogram(right, &gh);
        assert!(close(&small, &direct(right)));
        let large: Vec<Bin> = parent.iter().zip(&small).map(|(p, s)| [p[0] - s[0], p[1] - s[1]]).collect();
        assert!(close(&large, &direct(left)));
        assert!(close(&large, &trainer.histogram(left, &gh)));
    }

    #[test]
    fn row_counts_estimated_from_hessians() {
        // Equal hessians: a bin's estimate is its exact count.
        let params = Params { min_data_in_leaf: 3, ..Params::default() };
        let t = table("x,y\n1,no\n1,no\n1,yes\n2,no\n2,yes\n2,yes\n2,yes\n3,yes\n");
        let rows: Vec<usize> = (0..8).collect();
        let labels = t.target("y", None).unwrap();
        let trainer = Trainer::new(&t, &["x"], &rows, &labels, &params).unwrap();
        let gh: Vec<[f64; 2]> = [0.5, 0.5, -0.5, 0.5, -0.5, -0.5, -0.5, -0.5].iter().map(|&g| [g, 0.25]).collect();
        let order: Vec<u32> = (0..8).collect();
        let hist = trainer.histogram(&order, &gh);
        let total = Sums { g: -1.0, h: 2.0, n: 8 };
        // Only x ≤ 1 against x ≥ 2 leaves 3 rows on each side.
        let best = trainer.best_split(&hist, &total).unwrap();
        assert_eq!(best.rule, Rule::Threshold { bin_threshold: 0, missing_left: true });
        assert_eq!(best.left, Sums { g: 0.5, h: 0.75, n: 3 });
    }

    #[test]
    fn symmetric_trees_share_one_rule_per_level() {
        let (t, labels) = synthetic(3000, 5);
        let rows: Vec<usize> = (0..t.n_rows()).collect();
        let params = Params { num_iterations: 15, max_depth: Some(4), target_statistics: true, ..Params::symmetric() };
        let booster = Booster::fit(&t, &["x", "k", "b"], &rows, &labels, &params).unwrap();
        assert_eq!(booster.trees.len(), 15);
        for tree in &booster.trees {
            let depth = tree.leaves.len().trailing_zeros() as usize;
            assert!((1..=4).contains(&depth) && tree.leaves.len() == 1 << depth, "{} leaves", tree.leaves.len());
            assert_eq!(tree.nodes.len(), tree.leaves.len() - 1);
            for level in 0..depth {
                let nodes = &tree.nodes[(1 << level) - 1..(1 << (level + 1)) - 1];
                assert!(nodes.iter().all(|n| n.feature == nodes[0].feature && n.rule == nodes[0].rule));
            }
            // Every row reaches the leaf its bins lead to level by level.
            let missing: Vec<u16> = booster.features.iter().map(|f| f.missing_bin() as u16).collect();
            let columns: Vec<Vec<u16>> =
                booster.features.iter().map(|f| f.bin_rows(&t, &rows[..50]).unwrap()).collect();
            for r in 0..50 {
                let bins: Vec<u16> = columns.iter().map(|c| c[r]).collect();
                let mut k = 0;
                for level in 0..depth {
                    let node = &tree.nodes[(1 << level) - 1 + k];
                    k = 2 * k + usize::from(!node.rule.goes_left(bins[node.feature], missing[node.feature]));
                }
                assert_eq!(tree.predict(&bins, &missing), tree.leaves[k]);
            }
        }
        // The categorical feature (nine categories and missing) splits on its statistic: rules keep categories.
        let on_k: Vec<&Rule> =
            booster.trees.iter().flat_map(|t| &t.nodes).filter(|n| n.feature == 1).map(|n| &n.rule).collect();
        assert!(!on_k.is_empty() && on_k.iter().all(|r| matches!(r, Rule::Categories { .. })));
        let p = booster.predict_proba(&t, &rows).unwrap();
        let auc = crate::metrics::roc_auc(&p, &labels).unwrap();
        assert!(auc > 0.7, "{auc}");
    }

    #[test]
    fn category_sets_follow_the_statistics_of_all_rows() {
        // Categories a and c are mostly positive, b and d mostly negative, e rare: one split on the statistic
        // sends a and c to one side and b and d to the other.
        let mut text = String::from("k,y\n");
        for (k, pos, neg) in [("a", 40, 10), ("b", 5, 45), ("c", 30, 10), ("d", 8, 40), ("e", 1, 1)] {
            text += &format!("{k},yes\n").repeat(pos);
            text += &format!("{k},no\n").repeat(neg);
        }
        let t = table(&text);
        let labels = t.target("y", None).unwrap();
        let rows: Vec<usize> = (0..t.n_rows()).collect();
        let params = Params { num_iterations: 1, max_depth: Some(1), target_statistics: true, ..Params::symmetric() };
        let booster = Booster::fit(&t, &["k"], &rows, &labels, &params).unwrap();
        let FeatureBins::Categorical { categories, .. } = &booster.features[0] else { panic!() };
        let Rule::Categories { left_bins } = &booster.trees[0].nodes[0].rule else { panic!() };
        let left: Vec<&str> =
            left_bins.iter().filter_map(|&b| categories.get(usize::from(b))).map(|c| c.as_str()).collect();
        let (ac, bd) = (["a", "c"].map(|c| left.contains(&c)), ["b", "d"].map(|c| left.contains(&c)));
        assert!(ac == [true; 2] && bd == [false; 2] || ac == [false; 2] && bd == [true; 2], "{left:?}");
    }

    #[test]
    fn a_saved_symmetric_booster_predicts_as_before() {
        let (t, labels) = synthetic(2000, 6);
        let rows: Vec<usize> = (0..t.n_rows()).collect();
        let params = Params { num_iterations: 10, ..Params::symmetric() };
        let booster = Booster::fit(&t, &["x", "k", "b"], &rows, &labels, &params).unwrap();
        assert!(booster.trees.iter().flat_map(|t| &t.nodes).any(|n| matches!(n.rule, Rule::Categories { .. })));
        let back: Booster = serde_json::from_value(serde_json::to_value(&booster).unwrap()).unwrap();
        assert_eq!(back, booster);
        assert_eq!(back.predict_raw(&t, &rows).unwrap(), booster.predict_raw(&t, &rows).unwrap());
        // Through text, a number may come back one unit in the last place away (serde_json's default parsing).
        let back: Booster = serde_json::from_str(&serde_json::to_string(&booster).unwrap()).unwrap();
        let (a, b) = (back.predict_raw(&t, &rows).unwrap(), booster.predict_raw(&t, &rows).unwrap());
        assert!(a.iter().zip(&b).all(|(a, b)| (a - b).abs() <= 1e-12), "{:?}", a.iter().zip(&b).find(|(a, b)| a != b));
    }

    #[test]
    fn threads_do_not_change_symmetric_boosters() {
        let (t, labels) = synthetic(2 * BLOCK_ROWS + 777, 7);
        let rows: Vec<usize> = (0..t.n_rows()).collect();
        for target_statistics in [false, true] {
            let params = Params { num_iterations: 20, target_statistics, ..Params::symmetric() };
            let fit_with = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                pool.install(|| Booster::fit(&t, &["x", "k", "b"], &rows, &labels, &params).unwrap())
            };
            let one = fit_with(1);
            assert_eq!(one.trees.len(), 20);
            for threads in [2, 3, 8] {
                assert_eq!(fit_with(threads), one);
            }
        }
    }

    #[test]
    fn threads_do_not_change_the_booster() {
        let (t, labels) = synthetic(2 * BLOCK_ROWS + 777, 3);
        let rows: Vec<usize> = (0..t.n_rows()).collect();
        let params = Params { num_iterations: 20, ..Params::default() };
        let fit_with = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| Booster::fit(&t, &["x", "k", "b"], &rows, &labels, &params).unwrap())
        };
        let one = fit_with(1);
        assert_eq!(one.trees.len(), 20);
        assert!(
            one.trees.iter().any(|t| t
                .nodes
                .iter()
                .any(|n| matches!(&n.rule, Rule::Categories { left_bins } if left_bins.len() > 1)))
        );
        for threads in [2, 3, 8] {
            let other = fit_with(threads);
            assert_eq!(serde_json::to_string(&other).unwrap(), serde_json::to_string(&one).unwrap());
            assert_eq!(other, one);
        }
    }

    #[test]
    fn flat_trees_predict_as_the_rules_do() {
        let (t, labels) = synthetic(3000, 4);
        let train: Vec<usize> = (0..2000).collect();
        let params = Params { num_iterations: 30, min_data_in_leaf: 5, ..Params::default() };
        let booster = Booster::fit(&t, &["x", "k", "b"], &train, &labels[..2000], &params).unwrap();
        let all: Vec<usize> = (0..t.n_rows()).collect();
        let columns: Vec<Vec<u16>> = booster.features.iter().map(|f| f.bin_rows(&t, &all).unwrap()).collect();
        let missing: Vec<u16> = booster.features.iter().map(|f| f.missing_bin() as u16).collect();
        let flat: Vec<FlatTree> = booster.trees.iter().map(|tree| FlatTree::new(tree, &missing)).collect();
        let raw = booster.predict_raw(&t, &all).unwrap();
        for (i, &r) in raw.iter().enumerate() {
            let bins: Vec<u16> = columns.iter().map(|c| c[i]).collect();
            let by_rules: f64 = booster.trees.iter().map(|tree| tree.predict(&bins, &missing)).sum();
            let by_bits: f64 = flat.iter().map(|tree| tree.predict(&bins)).sum();
            assert_eq!(by_rules, by_bits);
            assert_eq!(r, booster.init_score + by_rules);
        }
    }

    #[test]
    fn a_saved_model_loads_and_predicts_as_before() {
        // A booster in the form earlier versions saved: its predictions are worked out by hand.
        let json = r#"{
            "params": {"learning_rate": 0.1, "num_iterations": 2, "num_leaves": 31, "max_depth": null,
                "min_data_in_leaf": 20, "min_sum_hessian_in_leaf": 0.001, "lambda_l2": 0.0, "min_gain_to_split": 0.0,
                "max_bin": 255, "max_cat_to_onehot": 4, "max_cat_threshold": 32, "cat_smooth": 10.0, "cat_l2": 10.0,
                "min_data_per_group": 100},
            "features": [
                {"kind": "numeric", "column": "x", "upper_bounds": [1.5, 2.5]},
                {"kind": "categorical", "column": "k", "categories": ["a", "b", "c"]},
                {"kind": "boolean", "column": "b"}
            ],
            "init_score": -1.0,
            "trees": [
                {"nodes": [
                    {"feature": 0, "rule": {"kind": "threshold", "bin_threshold": 0, "missing_left": false},
                        "gain": 3.0, "left": {"leaf": 0}, "right": {"node": 1}},
                    {"feature": 1, "rule": {"kind": "categories", "left_bins": [0, 2]},
                        "gain": 1.0, "left": {"leaf": 1}, "right": {"leaf": 2}}
                ], "leaves": [-0.5, 0.25, 1.0]},
                {"nodes": [
                    {"feature": 2, "rule": {"kind": "threshold", "bin_threshold": 0, "missing_left": true},
                        "gain": 2.0, "left": {"leaf": 0}, "right": {"leaf": 1}}
                ], "leaves": [0.0, 0.5]},
                {"nodes": [], "leaves": [0.125]}
            ]
        }"#;
        let booster: Booster = serde_json::from_str(json).unwrap();
        let t = table("x,k,b\n1,a,yes\n2,c,no\n,b,\n3,zz,yes\n9,,no\n");
        let raw = booster.predict_raw(&t, &[0, 1, 2, 3, 4]).unwrap();
        // Row 0: x ≤ 1.5 → −0.5; yes → 0.5. Row 1: x in bin 1, c → 0.25; no → 0. Row 2: missing x goes right, b →
        // 1.0; missing b goes left → 0. Row 3: unseen category (missing bin 3) → 1.0; yes → 0.5. Row 4: 1.0; 0.
        let want = [-1.0 - 0.5 + 0.5, -1.0 + 0.25, -1.0 + 1.0, -1.0 + 1.0 + 0.5, -1.0 + 1.0].map(|v| v + 0.125);
        assert_eq!(raw, want);
        let back: Booster = serde_json::from_value(serde_json::to_value(&booster).unwrap()).unwrap();
        assert_eq!(back, booster);
    }
}
