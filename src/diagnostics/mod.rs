//! What devx can tell an operator about its database, read-only: the
//! server's own account of itself and the structure of the devx schemas
//! (`introspect`: version, round trip, table sizes, the schema snapshot and
//! its diff, structural findings) and PgHero's checks over the statistics
//! views (`insights`). Used by `devx db health|stats|check|insights`, the
//! status endpoints and the admin dashboard; never on a request's hot path.

pub mod insights;
pub mod introspect;
