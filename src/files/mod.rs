//! File records: what the assistant produced for a project, by path. One live
//! record per path: posting a path again replaces the record (the old one is
//! kept, marked deleted, until retention removes it). Paths are relative and
//! never climb out of the project (`projects::path`).

pub mod model;
pub mod queries;
mod routes;

pub use routes::routes;
