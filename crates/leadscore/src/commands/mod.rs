//! One module per subcommand.

pub mod check;
pub mod evaluate;
pub mod keys;
pub mod score;
pub mod serve;
pub mod train;
