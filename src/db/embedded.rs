//! Where the database is when none is configured (placeholder: being written).

use crate::config::{Config, DbSource};

/// The database a command will use, and the private server behind it if devx
/// started one.
pub struct ResolvedDatabase {
    pub target: tokio_postgres::Config,
    /// Human-readable origin for logs (`configured`, `local server ...`, `embedded ...`).
    pub origin: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("{0}")]
    Unavailable(String),
}

pub async fn resolve(config: &Config) -> Result<ResolvedDatabase, EmbeddedError> {
    match &config.database.source {
        DbSource::Explicit(target) => Ok(ResolvedDatabase { target: (**target).clone(), origin: "configured".into() }),
        DbSource::EmbeddedDefault => Err(EmbeddedError::Unavailable("no database configured: set DATABASE_URL".into())),
    }
}

impl ResolvedDatabase {
    /// Stops the private server if devx started one.
    pub async fn shutdown(self) {}
}
