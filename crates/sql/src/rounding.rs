//! The engine's one rounding of a score's value (`round_to_precision` in the core), as SQL: the
//! value of every score and the points `--explain` writes.

use crate::dialect::Dialect;

/// `round_to_precision`: half away from zero at `decimals` decimals, without a negative zero.
/// `scaled - FLOOR(scaled)` is exact for any double, so the half is found exactly (Spark SQL
/// floors as [`Dialect::floor_non_negative`] says).
pub(crate) fn round_to_precision(dialect: Dialect, value: &str, decimals: u8) -> String {
    let scale = dialect.double(10f64.powi(i32::from(decimals.min(6))));
    let scaled = format!("(ABS({value}) * {scale})");
    let whole = dialect.floor_non_negative(&scaled);
    format!(
        "(SIGN({value}) * ({whole} + (CASE WHEN {scaled} - {whole} >= {} THEN {} ELSE {} END)) / {scale} + {})",
        dialect.double(0.5),
        dialect.double(1.0),
        dialect.double(0.0),
        dialect.double(0.0)
    )
}
