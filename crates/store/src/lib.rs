//! leadscore-store: the service's storage, one SQLite file in WAL mode or a PostgreSQL database
//! (see [`postgres`]). What follows describes SQLite's.
//!
//! All writes go through one writer thread that owns the only write connection and commits
//! several callers' work in one transaction (group commit): each caller's work runs in its own
//! savepoint, so one failure never undoes another's (but ingestion's, see
//! [`Store::write_coherent`]), and every caller hears back only after the transaction is durable
//! (`synchronous = FULL`). Reads use a small pool of read-only connections
//! and see every committed write.
//!
//! # Layout
//! - [`storage`]: the interface the service uses ([`Storage`], [`Reads`], [`Transaction`]), shaped by what
//!   it does, and its SQLite implementation.
//! - [`Store`] (`handle`): opening the data directory and sending work to the writer or a reader;
//!   `writer`: the writer thread, group commit and the WAL's checkpoints; [`WriteHealth`]
//!   (`health`): whether writes fail for a storage reason; [`StoreError`] (`error`).
//! - [`migrate`]: versioned schema migrations applied at open.
//! - [`postgres`]: the PostgreSQL store, the same interface for several instances sharing one
//!   database; [`Location`] (`location`): which of the two a command line names, opened behind
//!   [`Storage`].
//! - [`copy`]: copying a SQLite store into an empty PostgreSQL database, and checking the copy.
//! - [`message_ids`]: which message ids are stored (idempotent ingestion), partly in the writer's
//!   memory; hence one ingesting process per data directory ([`Store::open_ingesting`]).
//! - [`workspaces`], [`keys`], [`users`], [`models`], [`leads`], [`events`], [`scores`], [`stages`]: typed operations on
//!   one table family each, as functions of a `&Connection` so that callers compose them inside
//!   one transaction.
//! - [`overrides`]: people's overrides of a lead's score, in force or lifted, with who and why.
//! - [`erasure`]: erasing a lead, its record and the suppression list of erased identifiers.
//! - [`retention`]: how long a workspace keeps events, and deleting the older ones lead by lead.
//! - [`funnel`]: the funnel report's aggregates (stages, tiers and their changes over weeks).

pub use rusqlite;

pub mod cache_versions;
pub mod copy;
pub mod erasure;
mod error;
pub mod events;
pub mod funnel;
mod handle;
mod health;
pub mod keys;
pub mod leads;
mod location;
pub mod merge;
pub mod message_ids;
pub mod migrate;
pub mod models;
pub mod overrides;
pub mod postgres;
pub mod predictive;
pub mod rescorings;
pub mod retention;
pub mod scores;
pub mod sessions;
pub mod stages;
pub mod storage;
pub mod users;
pub mod webhooks;
pub mod workspaces;
mod writer;

pub use error::StoreError;
pub use handle::{Store, now_ms};
pub use health::WriteHealth;
pub use location::{Access, Location};
pub use storage::{Reads, Storage, Transaction};
pub use writer::Generation;
