//! Database errors, classified once so that every caller (HTTP handlers, CLI
//! commands) can answer them the same way: a unique violation names its
//! constraint, an unreachable server is "unavailable", and nothing else needs
//! to look at SQLSTATE codes.

use tokio_postgres::error::SqlState;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had: the server is down, refusing, or the pool
    /// stayed exhausted for the whole acquire timeout.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("duplicate value violates {constraint}")]
    UniqueViolation { constraint: String },
    #[error("referenced row is missing ({constraint})")]
    ForeignKeyViolation { constraint: String },
    #[error("value violates {constraint}")]
    CheckViolation { constraint: String },
    #[error("column {column} must not be null")]
    NotNullViolation { column: String },
    /// The statement hit `statement_timeout` or `lock_timeout`.
    #[error("database statement timed out")]
    Timeout,
    /// Serialization failure or deadlock: safe to retry the whole transaction.
    #[error("transaction conflict, retry")]
    Conflict,
    /// The value sent was not acceptable to PostgreSQL (bad JSON, out of range...).
    #[error("invalid value: {0}")]
    InvalidValue(String),
    /// The connection broke while `COMMIT` was on its way: the transaction
    /// may or may not have been committed, so it is not safe to run again.
    #[error("connection lost during commit: {0}")]
    InDoubt(String),
    /// `query_one` found no row.
    #[error("expected a row, found none")]
    NoRow,
    /// A row did not fit the type it was read into: a column missing from
    /// the statement, or a stored value the type cannot hold (an unknown
    /// status, a number past f64). The text names the column.
    #[error("cannot read the row: {0}")]
    Decode(String),
    #[error(transparent)]
    Other(tokio_postgres::Error),
}

impl DbError {
    /// Whether running the same idempotent read again may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, DbError::Unavailable(_) | DbError::Conflict)
    }

    /// A row that could not be read into its type, with the column named.
    #[allow(clippy::needless_pass_by_value, reason = "shaped for map_err(DbError::decode)")]
    pub fn decode(e: tokio_postgres::Error) -> DbError {
        let cause = std::error::Error::source(&e).map(|c| format!(": {c}")).unwrap_or_default();
        DbError::Decode(format!("{e}{cause}"))
    }

    /// The constraint a violation names, if this is one.
    pub fn constraint(&self) -> Option<&str> {
        match self {
            DbError::UniqueViolation { constraint }
            | DbError::ForeignKeyViolation { constraint }
            | DbError::CheckViolation { constraint } => Some(constraint),
            _ => None,
        }
    }
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        let Some(db) = e.as_db_error() else {
            // No server error: the connection broke, was closed, or never opened.
            let source = std::error::Error::source(&e);
            return if e.is_closed() || source.is_some_and(<dyn std::error::Error + 'static>::is::<std::io::Error>) {
                DbError::Unavailable(match source {
                    Some(cause) => format!("{e}: {cause}"),
                    None => e.to_string(),
                })
            } else {
                DbError::Other(e)
            };
        };
        let constraint = || db.constraint().unwrap_or("unknown").to_string();
        let code = db.code();
        if *code == SqlState::UNIQUE_VIOLATION || *code == SqlState::EXCLUSION_VIOLATION {
            DbError::UniqueViolation { constraint: constraint() }
        } else if *code == SqlState::FOREIGN_KEY_VIOLATION {
            DbError::ForeignKeyViolation { constraint: constraint() }
        } else if *code == SqlState::CHECK_VIOLATION {
            DbError::CheckViolation { constraint: constraint() }
        } else if *code == SqlState::NOT_NULL_VIOLATION {
            DbError::NotNullViolation { column: db.column().unwrap_or("unknown").to_string() }
        } else if *code == SqlState::QUERY_CANCELED || *code == SqlState::LOCK_NOT_AVAILABLE {
            DbError::Timeout
        } else if *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED {
            DbError::Conflict
        } else if code.code().starts_with("08")
            || code.code().starts_with("57P")
            || *code == SqlState::TOO_MANY_CONNECTIONS
            || *code == SqlState::CANNOT_CONNECT_NOW
        {
            // Connection exceptions, admin shutdown / crash recovery, server full.
            DbError::Unavailable(db.message().to_string())
        } else if code.code().starts_with("22") {
            DbError::InvalidValue(db.message().to_string())
        } else {
            DbError::Other(e)
        }
    }
}

impl From<deadpool_postgres::PoolError> for DbError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        use deadpool_postgres::PoolError;
        match e {
            PoolError::Backend(e) => match DbError::from(e) {
                DbError::Other(e) => DbError::Unavailable(e.to_string()),
                other => other,
            },
            PoolError::Timeout(_) => DbError::Unavailable("timed out waiting for a database connection".into()),
            other => DbError::Unavailable(other.to_string()),
        }
    }
}
