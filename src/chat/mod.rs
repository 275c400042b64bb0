//! The chat with the AI assistant, per project and conversation
//! (`session_id`), and per container (the messages posted with its
//! `container_id`), as the container-keyed design reads it. Messages are appended and read in order; paging is keyset
//! on `(created_at, id)` in either direction, so the last page of 100,000
//! messages costs what the first does.

pub mod model;
pub mod queries;
mod routes;

pub use routes::routes;
