//! One module per subcommand.

pub mod check;
pub mod evaluate;
pub mod keys;
pub mod score;
pub mod serve;
pub mod train;

/// A number from a JSON report with four decimals, or `n/a`.
pub(crate) fn figure(value: &serde_json::Value) -> String {
    value.as_f64().map_or("n/a".to_string(), |v| format!("{v:.4}"))
}
