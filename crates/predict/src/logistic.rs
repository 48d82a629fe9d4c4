//! L2-regularised logistic regression, fitted to the exact optimum of scikit-learn's objective.
//!
//! Why it is written here: no Rust crate gives a scikit-learn-equivalent logistic regression with the preprocessing
//! in front of it (linfa-logistic fits the model but leaves imputation, scaling and one-hot encoding, which decide
//! most of the AUC gap, to the user; see [`crate::dataset`]), and the model is small enough to solve exactly.
//!
//! [`LogisticRegression::fit`] minimises
//!
//! ```text
//! ½‖w‖² + C · Σᵢ logloss(yᵢ, σ(xᵢ·w + b))
//! ```
//!
//! with the intercept `b` not penalised: the objective of scikit-learn's
//! `LogisticRegression(penalty="l2", C=C)`. It uses Newton's method (iteratively reweighted least squares): each
//! step solves the (p+1)×(p+1) Hessian system with a dense Cholesky factorisation written below (p is a few dozen
//! features for lead data, so the O(n·p²) Hessian is cheap), with a step-halving (Armijo) line search. It stops when
//! the gradient norm is at most 1e-8 times its value at the start (w = 0, b = 0), which is far tighter than
//! scikit-learn's default `tol=1e-4`: two fits of the same data agree to about 1e-7 in probability.

use serde::{Deserialize, Serialize};

use crate::dataset::Features;

/// Convergence threshold on the gradient norm, relative to the gradient norm at the starting point.
pub const RELATIVE_GRADIENT_TOLERANCE: f64 = 1e-8;

/// Why a fit failed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FitError {
    #[error("{features} feature rows but {labels} labels")]
    LengthMismatch { features: usize, labels: usize },
    #[error("no training rows")]
    NoRows,
    #[error("C must be positive and finite, got {0}")]
    InvalidC(f64),
    #[error("every training label is {0}: a logistic regression needs both outcomes")]
    SingleClass(bool),
    #[error("a feature value is not finite (row {row}, feature \"{feature}\")")]
    NonFinite { row: usize, feature: String },
    #[error("did not converge in {iterations} Newton iterations (relative gradient norm {relative_gradient:e})")]
    NotConverged { iterations: usize, relative_gradient: f64 },
}

/// The estimator: see [`LogisticRegression::fit`].
#[derive(Debug, Clone, Copy)]
pub struct LogisticRegression;

/// A fitted logistic regression: `P(y) = σ(intercept + Σ coefficientsⱼ · featureⱼ)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub feature_names: Vec<String>,
    pub coefficients: Vec<f64>,
    pub intercept: f64,
    /// The inverse regularisation strength used.
    pub c: f64,
    /// Newton iterations taken.
    pub iterations: usize,
    /// Gradient norm at the end, relative to the starting point's.
    pub relative_gradient: f64,
}

/// The logistic function, without overflow.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// log(1 + e^z) without overflow.
fn softplus(z: f64) -> f64 {
    if z > 0.0 { z + (-z).exp().ln_1p() } else { z.exp().ln_1p() }
}

impl LogisticRegression {
    /// Fits the model to `features` and `labels` (one per row) with inverse regularisation strength `c`
    /// (scikit-learn's `C`; 1.0 is its default) in at most `max_iter` Newton iterations (about 10 are usual).
    pub fn fit(features: &Features, labels: &[bool], c: f64, max_iter: usize) -> Result<Model, FitError> {
        let n = features.n_rows;
        let p = features.n_features;
        if labels.len() != n {
            return Err(FitError::LengthMismatch { features: n, labels: labels.len() });
        }
        if n == 0 {
            return Err(FitError::NoRows);
        }
        if !(c > 0.0 && c.is_finite()) {
            return Err(FitError::InvalidC(c));
        }
        if labels.iter().all(|&y| y == labels[0]) {
            return Err(FitError::SingleClass(labels[0]));
        }
        if let Some(i) = features.values.iter().position(|v| !v.is_finite()) {
            return Err(FitError::NonFinite { row: i / p, feature: features.names[i % p].clone() });
        }
        let y: Vec<f64> = labels.iter().map(|&l| f64::from(u8::from(l))).collect();
        let problem = Problem { x: features, y: &y, c };

        // Parameters: θ = (w₀ … w_{p-1}, b).
        let mut theta = vec![0.0; p + 1];
        let mut margins = vec![0.0; n];
        let mut f = problem.objective(&theta, &mut margins);
        let mut gradient = problem.gradient(&theta, &margins);
        let g0 = norm(&gradient);
        let mut iterations = 0;
        let mut relative = norm(&gradient) / g0;
        let mut trial = vec![0.0; p + 1];
        let mut trial_margins = vec![0.0; n];
        while relative > RELATIVE_GRADIENT_TOLERANCE {
            if iterations == max_iter {
                return Err(FitError::NotConverged { iterations, relative_gradient: relative });
            }
            iterations += 1;
            let hessian = problem.hessian(&margins);
            let direction = solve_spd(hessian, p + 1, &gradient.iter().map(|g| -g).collect::<Vec<_>>());
            let slope: f64 = gradient.iter().zip(&direction).map(|(g, d)| g * d).sum();
            // Step halving until the Armijo condition holds. A Newton direction on a convex objective is a descent
            // direction, so this ends unless the objective is flat to rounding, where the gradient test decides.
            let mut step = 1.0;
            let mut accepted = false;
            for _ in 0..60 {
                for ((t, th), d) in trial.iter_mut().zip(&theta).zip(&direction) {
                    *t = th + step * d;
                }
                let f_trial = problem.objective(&trial, &mut trial_margins);
                if f_trial <= f + 1e-4 * step * slope {
                    accepted = true;
                    f = f_trial;
                    break;
                }
                step *= 0.5;
            }
            if !accepted {
                // Rounding floor: accept the full Newton step only if it does not make the gradient worse.
                for ((t, th), d) in trial.iter_mut().zip(&theta).zip(&direction) {
                    *t = th + d;
                }
                let f_trial = problem.objective(&trial, &mut trial_margins);
                let g_trial = problem.gradient(&trial, &trial_margins);
                if norm(&g_trial) >= norm(&gradient) {
                    return Err(FitError::NotConverged { iterations, relative_gradient: relative });
                }
                f = f_trial;
            }
            std::mem::swap(&mut theta, &mut trial);
            std::mem::swap(&mut margins, &mut trial_margins);
            gradient = problem.gradient(&theta, &margins);
            relative = norm(&gradient) / g0;
        }
        let intercept = theta[p];
        theta.truncate(p);
        Ok(Model {
            feature_names: features.names.clone(),
            coefficients: theta,
            intercept,
            c,
            iterations,
            relative_gradient: relative,
        })
    }
}

struct Problem<'a> {
    x: &'a Features,
    y: &'a [f64],
    c: f64,
}

impl Problem<'_> {
    /// The objective at θ; fills `margins` with xᵢ·w + b.
    fn objective(&self, theta: &[f64], margins: &mut [f64]) -> f64 {
        let p = self.x.n_features;
        let (w, b) = (&theta[..p], theta[p]);
        let mut loss = 0.0;
        for (i, (m, &y)) in margins.iter_mut().zip(self.y).enumerate() {
            *m = b + dot(self.x.row(i), w);
            loss += softplus(*m) - y * *m;
        }
        0.5 * dot(w, w) + self.c * loss
    }

    fn gradient(&self, theta: &[f64], margins: &[f64]) -> Vec<f64> {
        let p = self.x.n_features;
        let mut g = vec![0.0; p + 1];
        for (i, (&m, &y)) in margins.iter().zip(self.y).enumerate() {
            let r = self.c * (sigmoid(m) - y);
            for (gj, xj) in g.iter_mut().zip(self.x.row(i)) {
                *gj += r * xj;
            }
            g[p] += r;
        }
        for (gj, wj) in g.iter_mut().zip(&theta[..p]) {
            *gj += wj;
        }
        g
    }

    /// The (p+1)×(p+1) Hessian, row-major: C·Xᵀ D X (X with a column of ones) + I on the weights only.
    fn hessian(&self, margins: &[f64]) -> Vec<f64> {
        let p = self.x.n_features;
        let d = p + 1;
        let mut h = vec![0.0; d * d];
        let mut row = vec![1.0; d];
        for (i, &m) in margins.iter().enumerate() {
            let s = sigmoid(m);
            let weight = self.c * s * (1.0 - s);
            row[..p].copy_from_slice(self.x.row(i));
            // Lower triangle only; mirrored below.
            for j in 0..d {
                let wj = weight * row[j];
                if wj == 0.0 {
                    continue;
                }
                let hj = &mut h[j * d..j * d + j + 1];
                for (hjk, xk) in hj.iter_mut().zip(&row[..=j]) {
                    *hjk += wj * xk;
                }
            }
        }
        for j in 0..p {
            h[j * d + j] += 1.0;
        }
        for j in 0..d {
            for k in 0..j {
                h[k * d + j] = h[j * d + k];
            }
        }
        h
    }
}

impl Model {
    /// The probability of the positive outcome for every row.
    ///
    /// # Panics
    /// If `features` does not have as many features as the model (an encoder and a model saved together agree).
    pub fn predict_proba(&self, features: &Features) -> Vec<f64> {
        assert_eq!(features.n_features, self.coefficients.len(), "feature count differs from the model's");
        (0..features.n_rows).map(|i| sigmoid(self.intercept + dot(features.row(i), &self.coefficients))).collect()
    }

    /// `(feature name, coefficient)` pairs, in feature order.
    pub fn named_coefficients(&self) -> impl Iterator<Item = (&str, f64)> {
        self.feature_names.iter().map(String::as_str).zip(self.coefficients.iter().copied())
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// In-place Cholesky factorisation A = L Lᵀ of a symmetric `d`×`d` row-major matrix (lower triangle read, L left in
/// the lower triangle). Returns false if A is not (numerically) positive definite.
fn cholesky(a: &mut [f64], d: usize) -> bool {
    for j in 0..d {
        let mut diag = a[j * d + j];
        for k in 0..j {
            diag -= a[j * d + k] * a[j * d + k];
        }
        if diag.is_nan() || diag <= 0.0 {
            return false;
        }
        let ljj = diag.sqrt();
        a[j * d + j] = ljj;
        for i in j + 1..d {
            let mut v = a[i * d + j];
            for k in 0..j {
                v -= a[i * d + k] * a[j * d + k];
            }
            a[i * d + j] = v / ljj;
        }
    }
    true
}

/// Solves A x = rhs for a symmetric positive (semi-)definite A. If the factorisation fails (the intercept's diagonal
/// can tend to zero on separable data), a growing multiple of the identity is added until it succeeds.
fn solve_spd(a: Vec<f64>, d: usize, rhs: &[f64]) -> Vec<f64> {
    let scale = (0..d).map(|j| a[j * d + j].abs()).fold(0.0, f64::max).max(1.0);
    let mut jitter = 0.0;
    let l = loop {
        let mut m = a.clone();
        for j in 0..d {
            m[j * d + j] += jitter;
        }
        if cholesky(&mut m, d) {
            break m;
        }
        jitter = if jitter == 0.0 { scale * 1e-12 } else { jitter * 10.0 };
    };
    // Forward: L z = rhs; backward: Lᵀ x = z.
    let mut x = rhs.to_vec();
    for i in 0..d {
        for k in 0..i {
            x[i] -= l[i * d + k] * x[k];
        }
        x[i] /= l[i * d + i];
    }
    for i in (0..d).rev() {
        for k in i + 1..d {
            x[i] -= l[k * d + i] * x[k];
        }
        x[i] /= l[i * d + i];
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(rows: &[&[f64]]) -> Features {
        let p = rows[0].len();
        Features {
            n_rows: rows.len(),
            n_features: p,
            names: (0..p).map(|j| format!("x{j}")).collect(),
            values: rows.iter().flat_map(|r| r.iter().copied()).collect(),
        }
    }

    #[test]
    fn cholesky_solves_a_small_system() {
        let a = vec![4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
        let x = solve_spd(a.clone(), 3, &[1.0, 2.0, 3.0]);
        for i in 0..3 {
            let ax: f64 = (0..3).map(|k| a[i * 3 + k] * x[k]).sum();
            assert!((ax - [1.0, 2.0, 3.0][i]).abs() < 1e-12);
        }
    }

    /// One feature x ∈ {-1, +1}, balanced so the intercept is exactly 0 by symmetry. With k positives out of m rows
    /// at x = +1 (and the mirror at x = -1), the optimum satisfies w + 2C(m σ(w) − k) = 0.
    #[test]
    fn one_feature_matches_the_closed_condition() {
        let mut rows: Vec<&[f64]> = Vec::new();
        let mut labels = Vec::new();
        for i in 0..4 {
            rows.push(&[1.0]);
            labels.push(i < 3); // 3 of 4 positive at x = +1
            rows.push(&[-1.0]);
            labels.push(i >= 3); // 1 of 4 positive at x = -1
        }
        let model = LogisticRegression::fit(&features(&rows), &labels, 1.0, 50).unwrap();
        let w = model.coefficients[0];
        assert!(model.intercept.abs() < 1e-12, "{model:?}");
        // The gradient at the start is 2 (for w), so the stopping rule leaves at most 2e-8 here.
        assert!((w + 2.0 * (4.0 * sigmoid(w) - 3.0)).abs() <= 2e-8, "{model:?}");
        // Unregularised it would be logit(3/4) = ln 3; the penalty shrinks it.
        assert!(w > 0.5 && w < 3f64.ln(), "{w}");
        // Huge C: close to the unpenalised maximum likelihood estimate ln 3.
        let model = LogisticRegression::fit(&features(&rows), &labels, 1e8, 50).unwrap();
        assert!((model.coefficients[0] - 3f64.ln()).abs() < 1e-6, "{model:?}");
        let proba = model.predict_proba(&features(&[&[1.0], &[-1.0]]));
        assert!((proba[0] - 0.75).abs() < 1e-6 && (proba[1] - 0.25).abs() < 1e-6);
    }

    #[test]
    fn separable_data_converges_to_a_finite_optimum() {
        // Perfectly separated by x0 > 0, plus a noise feature and a constant one.
        let xs: Vec<Vec<f64>> = (0..40).map(|i| vec![f64::from(i) - 19.5, f64::from((i * 7) % 5), 3.0]).collect();
        let rows: Vec<&[f64]> = xs.iter().map(Vec::as_slice).collect();
        let labels: Vec<bool> = (0..40).map(|i| i >= 20).collect();
        for c in [1.0, 1e3] {
            let model = LogisticRegression::fit(&features(&rows), &labels, c, 100).unwrap();
            assert!(model.relative_gradient <= RELATIVE_GRADIENT_TOLERANCE);
            assert!(model.coefficients.iter().all(|w| w.is_finite()) && model.coefficients[0] > 0.0);
            let proba = model.predict_proba(&features(&rows));
            assert!(proba.iter().zip(&labels).all(|(p, &y)| (*p > 0.5) == y));
        }
    }

    #[test]
    fn rejects_bad_input() {
        let f = features(&[&[1.0], &[2.0]]);
        assert_eq!(
            LogisticRegression::fit(&f, &[true], 1.0, 10),
            Err(FitError::LengthMismatch { features: 2, labels: 1 })
        );
        assert_eq!(LogisticRegression::fit(&f, &[true, true], 1.0, 10), Err(FitError::SingleClass(true)));
        assert_eq!(LogisticRegression::fit(&f, &[true, false], 0.0, 10), Err(FitError::InvalidC(0.0)));
        let bad = features(&[&[1.0], &[f64::NAN]]);
        assert!(matches!(
            LogisticRegression::fit(&bad, &[true, false], 1.0, 10),
            Err(FitError::NonFinite { row: 1, .. })
        ));
    }

    #[test]
    fn model_round_trips_through_json() {
        let f = features(&[&[1.0, 0.0], &[0.0, 1.0], &[1.0, 1.0], &[0.0, 0.0]]);
        let model = LogisticRegression::fit(&f, &[true, false, true, false], 1.0, 50).unwrap();
        let back: Model = serde_json::from_str(&serde_json::to_string(&model).unwrap()).unwrap();
        // serde_json without its `float_roundtrip` feature may parse the last digit of an f64 one unit off.
        assert_eq!(back.feature_names, model.feature_names);
        for (a, b) in
            back.coefficients.iter().chain([&back.intercept]).zip(model.coefficients.iter().chain([&model.intercept]))
        {
            assert!((a - b).abs() <= 1e-15 * b.abs().max(1.0));
        }
        assert_eq!(back.named_coefficients().map(|(n, _)| n).collect::<Vec<_>>(), ["x0", "x1"]);
    }
}
