//! One module per subcommand.

pub mod check;
pub mod keys;
pub mod score;
pub mod serve;
pub mod train;
