//! The SQL of agents, one file per resource. Small functions taking
//! `&impl Queryable` so that handlers compose several into one transaction.
//!
//! Who sees what is decided in two ways, both from the caller's [`Principal`](crate::accounts::Principal):
//! single rows are loaded with their owner (the owner of the task's project,
//! or for a PR validation or error log tied to no task, the user who filed
//! it) and the handler compares; lists filter in SQL on the owner only when
//! there is one (`None` means an admin): the statement is built with
//! [`crate::db::Statement`], which adds `owner = $n` for a user and nothing
//! for an admin, like every other optional filter. Rows of soft-deleted
//! projects are seen by no one.

pub mod errors;
pub mod executions;
pub mod logs;
pub mod pr_validations;
pub mod tasks;
