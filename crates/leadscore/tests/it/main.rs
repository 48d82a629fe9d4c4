//! The real `leadscore` binary as a process: the command line on examples and bad input, and the service over real HTTP.
//!
//! One test binary per crate (each file here is a module of it): a binary per file would link
//! the crate and its dependencies again for every file.

mod activations;
mod balancer;
mod browser;
mod cli;
mod common;
mod connections;
mod console;
mod console_workspaces;
mod dbt;
mod examples;
mod full_disk;
mod history;
mod import;
mod instance_faults;
mod instances;
mod keys;
mod layering;
mod migrate_store;
mod openapi;
mod overrides;
mod pg_cluster;
mod privacy;
mod reference;
mod segment_python;
mod serve;
mod service_and_batch;
mod train;
mod users;
mod website;
mod website_browser;
