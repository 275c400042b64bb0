//! Database errors, classified once so that every caller (HTTP handlers, CLI
//! commands) can answer them the same way: a unique violation names its
//! constraint, an unreachable server is "unavailable", and nothing else needs
//! to look at SQLSTATE codes.
//!
//! tokio-postgres's own `Display` says only "db error" or "error connecting to
//! server"; the reason is in its source. [`describe`] is the one rendering
//! for operators (the CLI, logs): PostgreSQL's severity, message, SQLSTATE,
//! detail and hint, or each cause of a client-side error once, followed by
//! what to do when the cause is a known one (a wrong password, a missing role
//! or database, PgBouncer in transaction mode, a certificate that does not
//! verify). API clients never see it: `http::ApiError` withholds it.

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
    #[error("{}", describe(.0))]
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
                DbError::Unavailable(describe(&e))
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
        } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
            // A standby, or a primary demoted by a failover: the pool
            // reconnects (`db::DbContext::note_read_only`) and finds the
            // writable host when the URL lists several.
            DbError::Unavailable("the database server is read-only (a standby, or demoted by a failover)".into())
        } else if code.code().starts_with("08")
            || code.code().starts_with("57P")
            || *code == SqlState::TOO_MANY_CONNECTIONS
            || *code == SqlState::CANNOT_CONNECT_NOW
        {
            // Connection exceptions, admin shutdown / crash recovery, server full.
            DbError::Unavailable(describe(&e))
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
                DbError::Other(e) => DbError::Unavailable(describe(&e)),
                other => other,
            },
            PoolError::Timeout(_) => DbError::Unavailable("timed out waiting for a database connection".into()),
            other => DbError::Unavailable(other.to_string()),
        }
    }
}

/// Whether a failed connection attempt may succeed if tried again later: no
/// server answered (refused, no socket, timed out, name not resolved), or
/// it is starting up, shutting down or full. A server that answered and
/// refused devx (password, role, database, TLS) is not: waiting changes
/// nothing there.
pub fn is_unreachable(e: &tokio_postgres::Error) -> bool {
    match e.as_db_error() {
        Some(db) => {
            let code = db.code();
            code.code().starts_with("08") && !db.message().contains("unsupported startup parameter")
                || code.code().starts_with("57P")
                || *code == SqlState::TOO_MANY_CONNECTIONS
                || *code == SqlState::CANNOT_CONNECT_NOW
        }
        None => {
            let mut source = std::error::Error::source(e);
            let mut io = false;
            while let Some(cause) = source {
                io |= cause.is::<std::io::Error>();
                source = cause.source();
            }
            e.is_closed() || io || e.to_string() == "timeout waiting for server"
        }
    }
}

/// `e` as an operator reads it, on one line: PostgreSQL's own words (severity,
/// message, SQLSTATE, detail, hint), or for a client-side error each cause
/// once; then, for a known cause, what to do about it.
pub fn describe(e: &tokio_postgres::Error) -> String {
    let mut out = reason(e);
    if let Some(fix) = fix(e) {
        out.push_str(". ");
        out.push_str(&fix);
    }
    out
}

fn reason(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut out = format!("{}: {} (SQLSTATE {})", db.severity(), db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            out.push_str(&format!("; detail: {}", one_line(detail)));
        }
        if let Some(hint) = db.hint() {
            out.push_str(&format!("; hint: {}", one_line(hint)));
        }
        return out;
    }
    let causes = causes(e);
    if causes.first().is_some_and(|c| c == "invalid configuration") && causes.iter().any(|c| c == "password missing") {
        return "the server asks for a password, and none was given".into();
    }
    causes.join(": ")
}

/// The error's text and its sources', leaving out any that repeats what an
/// earlier one already said.
fn causes(e: &tokio_postgres::Error) -> Vec<String> {
    let mut out: Vec<String> = vec![e.to_string()];
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = one_line(&cause.to_string());
        if !text.is_empty() && !out.iter().any(|seen| seen.contains(&text)) {
            out.push(text);
        }
        source = cause.source();
    }
    out
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What to do about a known cause, naming the variable to set.
fn fix(e: &tokio_postgres::Error) -> Option<String> {
    if let Some(db) = e.as_db_error() {
        let (code, message) = (db.code(), db.message());
        let quoted = message.split('"').nth(1).unwrap_or("");
        return if *code == SqlState::INVALID_PASSWORD {
            Some(
                "The password is wrong for this user: set DB_PASSWORD (or the password in DATABASE_URL) to the \
                 role's password"
                    .into(),
            )
        } else if message.starts_with("Peer authentication failed") || message.starts_with("Ident authentication") {
            Some(
                "Peer authentication lets in only the operating-system user of the same name: connect over TCP \
                 with a password (DB_HOST=127.0.0.1 and DB_PASSWORD), or run devx as that user"
                    .into(),
            )
        } else if message.contains("pg_hba.conf") {
            Some(
                "The server's pg_hba.conf has no entry that lets this user in to this database from here: add \
                 one and reload the server, or connect as a user it lets in (DB_USER)"
                    .into(),
            )
        } else if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION && message.starts_with("role ") {
            Some(format!(
                "Set DB_USER (or the user in DATABASE_URL) to a role that exists, or create this one: \
                 CREATE ROLE \"{quoted}\" LOGIN PASSWORD '...'"
            ))
        } else if *code == SqlState::INVALID_CATALOG_NAME {
            Some(format!(
                "Create it (`createdb {quoted}` on that server, or `devx db create`, which needs the CREATEDB \
                 privilege), or set DB_NAME (or the database in DATABASE_URL) to one that exists"
            ))
        } else if message.contains("unsupported startup parameter") {
            Some(
                "This looks like PgBouncer in transaction pooling mode, which refuses the session options devx \
                 sends: set DB_STATEMENT_MODE=unnamed (and DATABASE_MIGRATION_URL to the server itself)"
                    .into(),
            )
        } else if *code == SqlState::INVALID_SQL_STATEMENT_NAME {
            Some(
                "Named prepared statements do not survive between transactions behind PgBouncer in transaction \
                 pooling mode: set DB_STATEMENT_MODE=unnamed"
                    .into(),
            )
        } else if *code == SqlState::TOO_MANY_CONNECTIONS {
            Some("The server is at max_connections: lower DB_POOL_MAX (per replica) or raise max_connections".into())
        } else {
            None
        };
    }
    let text = causes(e).join(": ");
    if text.contains("password missing") {
        Some("Set DB_PASSWORD (or put the password in DATABASE_URL: postgres://user:password@host/db)".into())
    } else if text.starts_with("error performing TLS handshake") && text.contains("server does not support TLS") {
        Some("The server does not offer TLS: enable ssl on it, or set DB_SSL_MODE=disable".into())
    } else if text.starts_with("error performing TLS handshake") && text.contains("certificate") {
        Some(
            "The server's certificate does not verify under DB_SSL_MODE=verify-full (checked against the CA of \
             DB_SSL_ROOT_CERT when it is set, else the public web PKI roots, and the host name): set \
             DB_SSL_ROOT_CERT to the CA that signed the server's certificate, or give the server a certificate \
             from a public CA that names the host devx connects to, connect by the name on its certificate, or \
             set DB_SSL_MODE=require to encrypt without verifying"
                .into(),
        )
    } else if text.contains("Connection refused") || text.contains("No such file or directory") {
        Some(
            "Nothing listens there: is PostgreSQL running, and are DB_HOST and DB_PORT (or DATABASE_URL) right?".into(),
        )
    } else {
        None
    }
}
