//! The one integration-test binary: a module per capability. Every test gets
//! its own database (see `harness`), and API tests a real server on port 0
//! (see `app`).

mod accounts;
mod activity;
mod admin;
mod agents;
mod app;
mod bench_scripts;
mod browser;
mod catalog;
mod chat_files;
mod connection;
mod contract;
mod dashboard;
mod deployments;
mod embedded;
mod env_vars;
mod failover;
mod hardening;
mod harness;
mod hooks;
mod insights;
mod metrics_history;
mod migrate;
mod multiproc;
mod openapi;
mod ops;
mod outage;
mod partitions;
mod pgbouncer;
mod projects;
mod readme;
mod runtime;
mod schema;
mod scopes;
mod semantics;
mod snapshots;
mod spec_000;
mod spec_001;
mod spec_002;
mod spec_003;
mod spec_004;
mod support;
mod throttle;
mod user_admin;
mod visibility;
