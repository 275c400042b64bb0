//! Accounts and access: users, sessions, API keys, and their administration.
//! `secrets` makes and checks credentials, `model` is what the API shows,
//! `queries` is the SQL, `routes` the HTTP handlers, and `identity` the
//! bearer extractor every other capability uses to know who is calling.

pub mod activity;
pub mod hasher;
mod identity;
pub mod import;
pub mod model;
pub mod people;
pub mod queries;
mod routes;
pub mod secrets;
pub mod throttle;
pub mod touch;

pub use hasher::Hasher;
pub use identity::{AccountsContext, AdminPrincipal, Bearer, Credential, Principal, RouteScopes};
pub use people::{PersonRef, resolve_person};
pub use routes::routes;
pub use touch::Touches;
