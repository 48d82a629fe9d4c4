//! One module per subcommand.

pub mod check;
pub mod evaluate;
pub mod keys;
pub mod score;
pub mod serve;
pub mod train;

/// A figure of a report with four decimals, or `n/a` when there is none or it is not finite (as
/// its JSON, where such a number is `null`).
pub(crate) fn number(value: impl Into<Option<f64>>) -> String {
    value.into().filter(|v| v.is_finite()).map_or("n/a".to_string(), |v| format!("{v:.4}"))
}
