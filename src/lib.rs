//! devx: the data service of an AI developer platform.
//!
//! One binary (`src/main.rs` only parses the command line) over this library:
//! `config` reads the environment once, `db` owns connections and the
//! instrumented statement path, `migrate` is the migration engine, and `cli`
//! holds one module per command group. See docs/ARCHITECTURE.md for the map.

pub mod accounts;
pub mod admin;
pub mod agents;
pub mod app;
pub mod catalog;
pub mod chat;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod db;
pub mod diagnostics;
pub mod embedded;
pub mod files;
pub mod health;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod migrate;
pub mod projects;
pub mod retention;
pub mod runtime;
pub mod text_enum;
pub mod timestamp;

#[cfg(test)]
mod layering;
