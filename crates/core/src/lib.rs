//! leadscore-core: the model format, its compiler and the scoring engine.
//!
//! The crate is pure: it does no I/O and never reads a clock. Callers parse a model file's text
//! with [`compile()`], pass leads as one [`Value`] per [`Model::lead_fields`] entry, events as
//! [`Event`]s, and the "as of" instant as a [`Timestamp`].
//!
//! # Layout
//! - [`mod@format`]: the model file's serde types, as people write it.
//! - [`mod@compile`]: checks a file once and resolves it into a [`Model`] ([`model`]).
//! - [`engine`]: lead state, applying events, assembling scores from rules with explanations.
//! - [`predictor`]: predictive scores (a trained model's probability), behind a trait.
//! - [`rules`]: each rule kind, compiled and evaluated, and conditions on lead fields and event
//!   properties.
//! - [`model_tests`]: the `[[tests]]` a model carries, run against it.
//! - [`changes`]: why scores moved between two instants or two model versions, in terms that add
//!   up to each change.
//! - [`outlook`]: what would move each score next (the next tier, the events that reach it,
//!   when it falls without new activity).
//! - [`check`]: what a model can reach (score ranges, unreachable tiers).
//! - [`time`]: instants, durations and RFC 3339.

pub mod changes;
pub mod check;
pub mod compile;
pub mod diagnostic;
pub mod engine;
pub mod format;
pub mod model;
pub mod model_tests;
pub mod outlook;
pub mod predictor;
pub mod rules;
pub mod time;
pub mod value;

pub use changes::{Cause, ScoreChange, Snapshot, Term, changes_between, changes_between_ending, model_changes};
pub use compile::{Compiled, compile, compile_with};
pub use diagnostic::{Diagnostic, ModelError, Severity};
pub use engine::{Contribution, Event, LeadScores, LeadState, ScoreResult, Source, round_score};
pub use model::{EventTypeId, Model, Score};
pub use outlook::{Action, ActionKind, Fall, ScoreOutlook};
pub use predictor::{NoPredictors, Predictor, PredictorLoader};
pub use rules::gibberish::{gibberish_reason, looks_like_gibberish};
pub use rules::lists::ListName;
pub use time::{Duration, Timestamp};
pub use value::Value;
