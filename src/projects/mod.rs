//! Projects: the caller's projects, their code context and change requests
//! (modifications), and the generation history. `access` decides who may
//! touch a project, for this slice and every slice whose rows belong to one;
//! `path` what a file path in a project may be (for file records too);
//! `model` is what the API shows (and the pure rules: status transitions,
//! template rendering), `queries` the SQL, and the handlers are split by
//! resource: `routes` (projects, the caller's summary), `context`,
//! `modifications`, `generations`.

pub mod access;
mod context;
mod generations;
pub mod model;
mod modifications;
pub mod path;
pub mod queries;
mod routes;

pub use routes::routes;
