//! Containers: what the runtime started for a project, and their lifecycle
//! (`created -> running <-> stopped`, any -> `deleted`). Transitions are
//! conditional updates on the expected status, so two concurrent requests
//! cannot both win; no two running containers share a port (a partial unique
//! index in the database).

pub mod model;
pub mod queries;
mod routes;

pub use routes::routes;
