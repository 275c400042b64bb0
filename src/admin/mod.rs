//! Administration: runtime settings (`devx.system_config`, checked per known
//! key in `settings`), the audit trail the database's triggers write, recent
//! activity, system statistics, and the periodic jobs' shared schedule
//! (`GET /api/admin/jobs`, read from `jobs`). `model` is what the API shows,
//! `queries` the SQL, `routes` the HTTP handlers (admins only).

pub mod model;
pub mod queries;
mod routes;
pub mod settings;

pub use routes::routes;
