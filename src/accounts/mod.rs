//! Accounts and access: users, sessions, API keys, and their administration.
//! `secrets` makes and checks credentials, `model` is what the API shows,
//! `queries` is the SQL, `routes` the HTTP handlers. The bearer extractor
//! that uses them lives in `http::auth`.

pub mod model;
pub mod queries;
mod routes;
pub mod secrets;

pub use routes::routes;
