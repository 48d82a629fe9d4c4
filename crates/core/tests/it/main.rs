//! Through the public API: every rule kind from TOML, error messages as snapshots, engine properties, changes and outlooks, the model format reference, the built-in lists and the core's purity.
//!
//! One test binary per crate (each file here is a module of it): a binary per file would link
//! the crate and its dependencies again for every file.

mod changes;
mod common;
mod errors;
mod gibberish;
mod language;
mod lists;
mod model_format_doc;
mod outlook;
mod precision;
mod predictive;
mod properties;
mod purity;
mod rules;
