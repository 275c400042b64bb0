//! Services: the deployable units of a project (or standalone ones generated
//! from a template), with a globally unique slug.

pub mod model;
pub mod queries;
mod routes;

pub use routes::routes;
