//! The integration tests: one binary, a module per capability.

mod harness;
mod migrate;
