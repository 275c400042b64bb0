//! Typed configuration: read once from the environment (and `.env`), validated
//! once, every problem reported together in one message.
//!
//! Nothing else in devx reads environment variables. A value is looked up under
//! its devx name first and then under the source products' aliases (`POSTGRES_*`),
//! so a deployment written for any of the five source products keeps working.
//! Secrets (the database password) are never printed: [`Config::describe`]
//! masks them, and the error messages never echo a password's value.
//!
//! A `.env` file ([`dotenv`]) fills in what the environment does not set; a
//! malformed line in it is a problem like a bad value. Names that look like
//! devx's but are not (`DB_PASWORD`) and settings that override each other
//! (`DATABASE_URL` with `DB_HOST`) are warnings ([`Config::warnings`]).

pub mod dotenv;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

crate::text_enum! {
    /// How devx talks TLS to PostgreSQL.
    ///
    /// `prefer` and `require` encrypt without verifying the server certificate
    /// (as libpq does); `verify-full` checks the chain against the web PKI roots
    /// and the host name.
    ///
    /// `parse` takes any case and libpq's and the specs' other spellings
    /// (`true`/`on`, `allow`, `verify-ca`, ...); `as_str` gives the first name.
    #[strum(ascii_case_insensitive)]
    pub enum SslMode {
        #[strum(to_string = "disable", serialize = "false", serialize = "off")]
        Disable,
        #[strum(to_string = "prefer", serialize = "allow")]
        Prefer,
        #[strum(to_string = "require", serialize = "true", serialize = "on")]
        Require,
        #[strum(to_string = "verify-full", serialize = "verify_full", serialize = "verify-ca")]
        #[serde(rename = "verify-full")]
        VerifyFull,
    }
}

crate::text_enum! {
    /// How the pool runs parameterized statements (`DB_STATEMENT_MODE`).
    /// `parse` takes any case and the other names (`named`, `pgbouncer`).
    #[strum(ascii_case_insensitive)]
    pub enum StatementMode {
        /// Named statements, prepared once per connection and reused: fastest
        /// against a server or a session-pooling PgBouncer.
        #[strum(to_string = "prepared", serialize = "named")]
        Prepared,
        /// Unnamed statements only (prepare, bind and execute in one round trip)
        /// and no session state kept between transactions: for PgBouncer in
        /// transaction pooling mode, which hands each transaction a different
        /// server connection.
        #[strum(to_string = "unnamed", serialize = "pgbouncer")]
        Unnamed,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where the database is.
#[derive(Clone, PartialEq, Eq)]
pub enum DbSource {
    /// `DATABASE_URL` or the `DB_*` parts: an explicit server.
    Explicit(Box<tokio_postgres::Config>),
    /// Nothing configured: use a local server if one answers, otherwise start
    /// a private one (see `db::embedded`).
    EmbeddedDefault,
}

impl fmt::Debug for DbSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Explicit(cfg) => write!(f, "Explicit({})", masked_target(cfg)),
            Self::EmbeddedDefault => f.write_str("EmbeddedDefault"),
        }
    }
}

/// Renders a connection target as a URL with the password masked.
pub fn masked_target(cfg: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let user = cfg.get_user().unwrap_or("");
    let password = if cfg.get_password().is_some() { ":****" } else { "" };
    let at = if user.is_empty() && password.is_empty() { "" } else { "@" };
    let host = match cfg.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => format!("[{}]", p.display()),
        None => "localhost".to_string(),
    };
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    let db = cfg.get_dbname().unwrap_or(user);
    format!("postgres://{user}{password}{at}{host}:{port}/{db}")
}

/// Read replicas (`DATABASE_REPLICA_URLS`) and the limits on reading from
/// them. No targets: every statement goes to the primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaConfig {
    pub targets: Vec<tokio_postgres::Config>,
    /// A replica further behind than this (replay time) is taken out.
    pub max_lag: Duration,
    /// A replica further behind than this many WAL bytes is taken out.
    pub max_lag_bytes: u64,
    pub probe_interval: Duration,
    /// How long a caller's last write position is kept for its reads.
    pub read_your_writes_window: Duration,
    /// `METHOD /route/{template}` pairs always read on the primary.
    pub primary_routes: Vec<(String, String)>,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        ReplicaConfig {
            targets: Vec::new(),
            max_lag: Duration::from_secs(10),
            max_lag_bytes: 16 * 1024 * 1024,
            probe_interval: Duration::from_millis(250),
            read_your_writes_window: Duration::from_secs(60),
            primary_routes: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseConfig {
    pub source: DbSource,
    /// `None`: decided by the host (off for loopback and unix sockets, where
    /// encryption buys nothing; `prefer` elsewhere).
    pub ssl_mode: Option<SslMode>,
    /// The CA that signs the server's certificate, and a client certificate.
    pub tls_files: TlsFiles,
    pub pool_min: usize,
    pub pool_max: usize,
    pub idle_timeout: Duration,
    pub connect_timeout: Duration,
    /// How long a request waits for a pooled connection before it is told the
    /// database is unavailable.
    pub acquire_timeout: Duration,
    pub statement_timeout: Duration,
    /// A statement waiting this long for a lock fails (and its request gets 503 or 409).
    pub lock_timeout: Duration,
    /// A transaction left idle this long is ended by the server.
    pub idle_in_transaction_timeout: Duration,
    pub slow_query_threshold: Duration,
    /// `devx db insights` and `/api/admin/insights` report statements running
    /// (and transactions left idle) longer than this.
    pub long_query_threshold: Duration,
    /// Connections, besides the pool, that concurrent short reads share
    /// (`db::pipeline`); 0 turns them off.
    pub pipeline_connections: usize,
    /// The statement and lock timeout of those connections: a read that
    /// takes longer runs again on a pooled connection.
    pub pipeline_timeout: Duration,
    pub statement_mode: StatementMode,
    /// A direct (not pooled through PgBouncer) URL for migrations, whose
    /// session advisory lock needs a real server session.
    pub migration_source: Option<Box<tokio_postgres::Config>>,
    /// Streaming replicas that take reads, and when one may not.
    pub replicas: ReplicaConfig,
    /// How long `serve` waits at start for a database that does not answer
    /// yet (`DEVX_DB_WAIT`); zero: fail at once.
    pub start_wait: Duration,
    /// The pool gives up opening a connection (connect, TLS, sign-in) after
    /// this (`DB_CREATE_TIMEOUT`; unset: `connect_timeout`).
    pub create_timeout: Duration,
    /// How often idle connections past `idle_timeout` are closed
    /// (`DB_REAP_INTERVAL`; unset: `idle_timeout`, at most 10 s).
    pub reap_interval: Duration,
    /// `serve` checks the database this often, for `/readyz` and the
    /// metrics (`DB_HEALTH_CHECK_ENABLED`, `DB_HEALTH_CHECK_INTERVAL`);
    /// `None`: no periodic check.
    pub health_check_interval: Option<Duration>,
    /// Which statements are logged, and at which level.
    pub statement_log: StatementLog,
}

/// Certificates for TLS to PostgreSQL (`DB_SSL_ROOT_CERT`, `DB_SSL_CERT`,
/// `DB_SSL_KEY`, or `sslrootcert`, `sslcert`, `sslkey` in the URL), read
/// from their PEM files with the configuration, so a missing or unreadable
/// file is a configuration problem at start. Compared and printed by path;
/// the key never is.
#[derive(Clone, Default)]
pub struct TlsFiles {
    pub root_cert: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// The certificates of `root_cert`: what verify-full trusts instead of
    /// the web PKI roots.
    pub roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// `client_cert`'s chain and `client_key`, presented to the server.
    pub identity:
        Option<(Vec<rustls::pki_types::CertificateDer<'static>>, Arc<rustls::pki_types::PrivateKeyDer<'static>>)>,
}

impl PartialEq for TlsFiles {
    fn eq(&self, other: &Self) -> bool {
        (&self.root_cert, &self.client_cert, &self.client_key)
            == (&other.root_cert, &other.client_cert, &other.client_key)
    }
}

impl Eq for TlsFiles {}

impl fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsFiles")
            .field("root_cert", &self.root_cert)
            .field("client_cert", &self.client_cert)
            .field("client_key", &self.client_key)
            .finish()
    }
}

/// The certificates of a PEM file; an error says what is wrong with it.
fn pem_certificates(path: &std::path::Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| format!("cannot read certificates from {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path.display()));
    }
    Ok(certs)
}

/// Which statements the instrumented layer logs (`DB_LOGGING_ENABLED`,
/// `DB_LOG_QUERIES`, `DB_LOG_SLOW_QUERIES`, `DB_LOGGING_LEVEL`). Statements
/// are timed and counted whatever this says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatementLog {
    /// Every statement, with its duration, at `level`.
    pub all: bool,
    /// Statements slower than `slow_query_threshold`, at `warn`.
    pub slow: bool,
    pub level: LogLevel,
}

crate::text_enum! {
    /// A log level for statement lines.
    #[strum(ascii_case_insensitive)]
    pub enum LogLevel {
        Trace,
        Debug,
        Info,
        Warn,
    }
}

impl DatabaseConfig {
    /// The TLS mode to use against `cfg`'s host.
    pub fn effective_ssl_mode(&self, cfg: &tokio_postgres::Config) -> SslMode {
        if let Some(mode) = self.ssl_mode {
            return mode;
        }
        if on_this_machine(cfg) { SslMode::Disable } else { SslMode::Prefer }
    }

    /// Whether the database runs on this machine: the embedded default, or
    /// every host a unix socket, `localhost` or a loopback address.
    pub fn on_this_machine(&self) -> bool {
        match &self.source {
            DbSource::EmbeddedDefault => true,
            DbSource::Explicit(cfg) => on_this_machine(cfg),
        }
    }
}

fn worker_threads_for(configured: usize, cpus: usize, database_here: bool) -> usize {
    match configured {
        0 if database_here => (cpus / 2).max(1),
        0 => cpus.max(1),
        n => n,
    }
}

fn on_this_machine(cfg: &tokio_postgres::Config) -> bool {
    use tokio_postgres::config::Host;
    cfg.get_hosts().iter().all(|h| match h {
        Host::Unix(_) => true,
        Host::Tcp(name) => name == "localhost" || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()),
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationConfig {
    pub auto_migrate: bool,
    /// `lock_timeout` for each migration's statements: fail fast instead of
    /// queueing behind live traffic.
    pub lock_timeout: Duration,
    /// How long a process waits for another one that holds the migration lock.
    pub wait_timeout: Duration,
}

/// The API server's limits and the account rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    pub request_timeout: Duration,
    /// After SIGTERM, in-flight requests get this long to finish.
    pub shutdown_grace: Duration,
    /// After SIGTERM and before the listener closes, `/readyz` answers 503
    /// for this long while requests are still served.
    pub shutdown_drain: Duration,
    /// A session ends this long after sign-in, however active.
    pub session_ttl: Duration,
    /// A session ends after this long without a request.
    pub session_idle_timeout: Duration,
    /// Failed sign-ins allowed per account within `login_window`.
    pub login_max_failures: u32,
    /// Failed sign-ins allowed per client address within `login_window`.
    pub login_max_failures_per_address: u32,
    /// Registrations allowed per client address within `login_window`.
    pub register_max_per_address: u32,
    pub login_window: Duration,
    /// The first lockout's length; each lockout in a row doubles it (up to an hour).
    pub login_lockout: Duration,
    /// Proxies whose `X-Forwarded-For` / `Forwarded` headers are believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Browser origins allowed to call the API (CORS); empty: no CORS headers.
    pub cors_origins: Vec<String>,
    /// Threads that hash passwords (each holds 19 MiB while in use); 0: one per CPU.
    pub hash_concurrency: usize,
    /// Threads that run requests; 0: decided by [`Config::worker_threads`].
    pub worker_threads: usize,
    /// Sign-ins and registrations that may wait for a hashing thread; past
    /// this they get 503 at once.
    pub hash_queue: usize,
    /// When set, `GET /metrics` needs `Authorization: Bearer <token>`.
    pub metrics_token: Option<Secret>,
    /// How often the metrics history takes a sample.
    pub metrics_sample_interval: Duration,
}

impl HttpConfig {
    /// Password-hashing threads: as configured, or one per CPU.
    pub fn hash_threads(&self) -> usize {
        if self.hash_concurrency > 0 {
            self.hash_concurrency
        } else {
            std::thread::available_parallelism().map_or(2, usize::from)
        }
    }
}

/// A secret string (a token): `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub database: DatabaseConfig,
    pub migrations: MigrationConfig,
    pub http: HttpConfig,
    pub addr: SocketAddr,
    pub log_format: LogFormat,
    pub log_filter: String,
    /// Where devx keeps its own files (the embedded server's data directory).
    pub data_dir: PathBuf,
    /// Encrypt deployment secrets at rest; `None` = such secrets cannot be
    /// stored or read (a clear 503 says so), everything else works.
    pub secret_keys: Option<SecretKeys>,
    /// `NO_COLOR` is set: no ANSI colours in the log, even on a terminal.
    pub no_color: bool,
    /// Settings that are suspicious but not wrong: a misspelt name, two
    /// that override each other. Logged at start, shown by `config check`.
    pub warnings: Vec<String>,
}

/// A 256-bit key for encrypting secrets at rest (`DEVX_SECRET_KEY`). Its
/// `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        SecretKey(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 32 bytes as 64 hex digits or as base64 (standard or URL-safe, padded
    /// or not). The error never repeats the value.
    pub fn parse(raw: &str) -> Result<Self, String> {
        use base64::Engine;
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
        let raw = raw.trim();
        let decoded = if raw.len() == 64 && raw.chars().all(|c| c.is_ascii_hexdigit()) {
            hex::decode(raw).ok()
        } else {
            [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD].iter().find_map(|e| e.decode(raw).ok())
        };
        match decoded {
            None => Err("is neither base64 nor 64 hex digits".into()),
            Some(bytes) => <[u8; 32]>::try_from(bytes.as_slice())
                .map(SecretKey)
                .map_err(|_| format!("decodes to {} bytes; it must be exactly 32", bytes.len())),
        }
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(****)")
    }
}

/// The keys of `DEVX_SECRET_KEY`, each with its id: the first seals, every
/// one unseals the values sealed under its id. A bare key (the only form
/// before rotation existed) is one key with the id [`SecretKeys::DEFAULT_ID`].
/// Its `Debug` shows the ids, never a key.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKeys(Vec<(String, SecretKey)>);

impl SecretKeys {
    /// The id of a key given bare, and of values sealed before keys had ids.
    pub const DEFAULT_ID: &'static str = "default";
    pub const ID_MAX_LEN: usize = 64;

    /// One key under the id `default`.
    pub fn single(key: SecretKey) -> Self {
        SecretKeys(vec![(Self::DEFAULT_ID.to_string(), key)])
    }

    /// Keys in order (the first seals); `None` when the list is empty or an
    /// id repeats.
    pub fn new(keys: Vec<(String, SecretKey)>) -> Option<Self> {
        let unique = keys.iter().enumerate().all(|(i, (id, _))| keys[..i].iter().all(|(other, _)| other != id));
        (!keys.is_empty() && unique && keys.iter().all(|(id, _)| Self::valid_id(id))).then_some(SecretKeys(keys))
    }

    pub fn valid_id(id: &str) -> bool {
        !id.is_empty()
            && id.len() <= Self::ID_MAX_LEN
            && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    }

    /// A bare key, or `id:key` pairs separated by commas (ids of letters,
    /// digits, `_` and `-`, at most 64, each once). The error never repeats
    /// a key.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if !raw.contains(':') && !raw.contains(',') {
            return SecretKey::parse(raw).map(Self::single);
        }
        let mut keys: Vec<(String, SecretKey)> = Vec::new();
        for (n, item) in raw.split(',').map(str::trim).enumerate() {
            let n = n + 1;
            let Some((id, key)) = item.split_once(':') else {
                return Err(format!(
                    "key {n} of the list has no id: a list of keys is `id:key` pairs separated by commas"
                ));
            };
            let id = id.trim();
            if !Self::valid_id(id) {
                return Err(format!(
                    "key {n} of the list has an id that is not 1 to {} letters, digits, `_` or `-`",
                    Self::ID_MAX_LEN
                ));
            }
            if keys.iter().any(|(other, _)| other == id) {
                return Err(format!("the id {id:?} is listed twice"));
            }
            let key = SecretKey::parse(key).map_err(|e| format!("the key with id {id:?} {e}"))?;
            keys.push((id.to_string(), key));
        }
        Ok(SecretKeys(keys))
    }

    /// The key new values are sealed under, with its id.
    pub fn sealing(&self) -> (&str, &SecretKey) {
        let (id, key) = &self.0[0];
        (id, key)
    }

    /// The key with this id, if configured.
    pub fn get(&self, id: &str) -> Option<&SecretKey> {
        self.0.iter().find(|(other, _)| other == id).map(|(_, key)| key)
    }

    /// The ids, the sealing one first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(id, _)| id.as_str())
    }
}

impl fmt::Debug for SecretKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKeys({}: ****)", self.ids().collect::<Vec<_>>().join(", "))
    }
}

/// One configuration problem: which variable, what is wrong, what would work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub variable: String,
    pub problem: String,
    pub example: String,
}

/// Every problem found, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<ConfigProblem>,
    /// The log format asked for (text when that too is unreadable), so the
    /// report of the problems can honour it.
    pub log_format: LogFormat,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(f, "invalid configuration ({n} problem{}):", if n == 1 { "" } else { "s" })?;
        for p in &self.problems {
            writeln!(f, "  - {}: {} (example: {})", p.variable, p.problem, p.example)?;
        }
        write!(f, "Set them in the environment or in .env (`devx config example` lists every variable).")
    }
}

/// Every variable devx reads, with its default and meaning: the source of
/// `.env.example` and of `devx config check`.
pub const VARIABLES: &[(&str, &str, &str)] = &[
    ("DATABASE_URL", "", "PostgreSQL URL; unset (and no DB_* set) = the embedded default"),
    ("DB_HOST", "", "server host or unix socket directory (alias POSTGRES_HOST)"),
    ("DB_PORT", "5432", "server port (alias POSTGRES_PORT)"),
    ("DB_NAME", "devx", "database name (alias POSTGRES_DB)"),
    ("DB_USER", "postgres", "user name (alias POSTGRES_USER)"),
    ("DB_PASSWORD", "", "password (alias POSTGRES_PASSWORD); never printed"),
    ("DB_SSL_MODE", "", "disable|prefer|require|verify-full; unset = disable on loopback, prefer elsewhere"),
    (
        "DB_SSL_ROOT_CERT",
        "",
        "PEM file of the CA that signs the server's certificate (or sslrootcert= in the URL): verify-full trusts it instead of the web PKI; set without DB_SSL_MODE, the mode is verify-full",
    ),
    ("DB_SSL_CERT", "", "PEM client certificate presented to the server (or sslcert= in the URL); needs DB_SSL_KEY"),
    ("DB_SSL_KEY", "", "PEM private key of DB_SSL_CERT (or sslkey= in the URL)"),
    ("DB_POOL_MIN", "2", "connections opened at start and kept warm"),
    ("DB_POOL_MAX", "20", "most connections in the pool"),
    ("DB_IDLE_TIMEOUT", "30s", "close connections idle this long (above DB_POOL_MIN)"),
    ("DB_CONNECT_TIMEOUT", "2s", "give up connecting to the server after this"),
    ("DB_ACQUIRE_TIMEOUT", "5s", "a request waits this long for a free connection, then gets 503"),
    ("DB_STATEMENT_TIMEOUT", "30s", "cancel a statement that runs longer"),
    ("DB_LOCK_TIMEOUT", "5s", "a statement waiting longer than this for a lock fails instead of queueing"),
    ("DB_IDLE_IN_TRANSACTION_TIMEOUT", "30s", "the server ends a transaction left idle this long"),
    ("DB_SLOW_QUERY_THRESHOLD", "1s", "log and count queries slower than this"),
    ("DB_LONG_QUERY_THRESHOLD", "1m", "db insights reports statements running (or transactions idle) longer than this"),
    (
        "DB_PIPELINE_CONNECTIONS",
        "1",
        "connections, besides the pool, on which concurrent authenticated reads are pipelined; 0 = off (always off with DB_STATEMENT_MODE=unnamed)",
    ),
    (
        "DB_PIPELINE_TIMEOUT",
        "1s",
        "statement and lock timeout on those connections; a read that takes longer runs again on a pooled connection",
    ),
    (
        "DB_CREATE_TIMEOUT",
        "",
        "the pool gives up opening a connection (connect, TLS, sign-in) after this; unset = DB_CONNECT_TIMEOUT",
    ),
    (
        "DB_REAP_INTERVAL",
        "",
        "how often idle connections past DB_IDLE_TIMEOUT are closed; unset = DB_IDLE_TIMEOUT, at most 10s",
    ),
    (
        "DB_HEALTH_CHECK_ENABLED",
        "false",
        "serve runs a query every DB_HEALTH_CHECK_INTERVAL: /readyz answers 503 while the last one failed; devx_database_health_check_* metrics",
    ),
    ("DB_HEALTH_CHECK_INTERVAL", "30s", "how often the periodic health check runs"),
    ("DB_LOGGING_ENABLED", "true", "false = log no statements (neither DB_LOG_QUERIES nor DB_LOG_SLOW_QUERIES)"),
    ("DB_LOGGING_LEVEL", "debug", "trace|debug|info|warn: the level of DB_LOG_QUERIES lines"),
    ("DB_LOG_QUERIES", "false", "log every statement with its duration (SQL text only, never parameters)"),
    ("DB_LOG_SLOW_QUERIES", "true", "log statements slower than DB_SLOW_QUERY_THRESHOLD (warn); counted either way"),
    (
        "DB_STATEMENT_MODE",
        "prepared",
        "prepared|unnamed; unnamed = behind PgBouncer in transaction pooling mode: no named prepared statements, no session state; the session timeouts are set per transaction (SET LOCAL)",
    ),
    ("DATABASE_MIGRATION_URL", "", "direct server URL for migrations when DATABASE_URL goes through PgBouncer"),
    (
        "DATABASE_REPLICA_URLS",
        "",
        "streaming replicas for reads, URLs separated by spaces or commas; a caller's reads follow its own writes (see DB_READ_YOUR_WRITES_WINDOW)",
    ),
    ("DB_REPLICA_MAX_LAG", "10s", "a replica further behind the primary than this in time is not read from"),
    (
        "DB_REPLICA_MAX_LAG_BYTES",
        "16777216",
        "a replica further behind the primary than this many WAL bytes is not read from",
    ),
    ("DB_REPLICA_PROBE_INTERVAL", "250ms", "how often each replica's replay position and lag are read"),
    (
        "DB_READ_YOUR_WRITES_WINDOW",
        "60s",
        "after a write, the caller's reads go only to a replica that has replayed it, for this long (kept in PostgreSQL for every devx process)",
    ),
    (
        "DB_PRIMARY_ROUTES",
        "",
        "routes whose reads always go to the primary, comma-separated as METHOD /path/{template} (e.g. GET /api/projects/{id})",
    ),
    (
        "DEVX_DB_WAIT",
        "30s",
        "serve waits this long at start for a database that does not answer yet (retrying with backoff; /livez answers, /readyz is 503); 0 = fail at once",
    ),
    (
        "DEVX_AUTO_MIGRATE",
        "true",
        "serve applies pending migrations at start; false = refuse to start when any are pending",
    ),
    ("DEVX_MIGRATION_LOCK_TIMEOUT", "5s", "lock_timeout of each migration statement"),
    ("DEVX_MIGRATION_WAIT", "60s", "wait this long for another process's migration lock"),
    ("DEVX_ADDR", "127.0.0.1:8080", "address the API server listens on"),
    ("DEVX_BODY_LIMIT", "1048576", "largest request body in bytes (larger gets 413)"),
    ("DEVX_REQUEST_TIMEOUT", "30s", "a request running longer is answered 504"),
    (
        "DEVX_SHUTDOWN_DRAIN",
        "5s",
        "on SIGTERM/SIGINT, /readyz answers 503 this long while requests are still served (a second signal skips it), so a load balancer stops sending first",
    ),
    ("DEVX_SHUTDOWN_GRACE", "20s", "then in-flight requests get this long to finish"),
    ("DEVX_SESSION_TTL", "30d", "a session ends this long after sign-in"),
    (
        "DEVX_SESSION_IDLE_TIMEOUT",
        "7d",
        "a session ends after this long without a request (activity is recorded at most once a minute, so to the minute)",
    ),
    ("DEVX_LOGIN_MAX_FAILURES", "5", "failed sign-ins per account before it is locked (429 with Retry-After)"),
    (
        "DEVX_LOGIN_MAX_FAILURES_PER_ADDRESS",
        "100",
        "failed sign-ins per client address before it is locked; high, so one attacked account does not lock its neighbours",
    ),
    ("DEVX_REGISTER_MAX_PER_ADDRESS", "20", "registrations per client address within DEVX_LOGIN_WINDOW"),
    ("DEVX_LOGIN_WINDOW", "15m", "the window failures are counted in; a quiet window forgets them"),
    ("DEVX_LOGIN_LOCKOUT", "1m", "the first lockout; each one in a row doubles it, up to an hour"),
    (
        "DEVX_CORS_ORIGINS",
        "",
        "comma-separated browser origins allowed to call the API (https://app.example.com); unset: no CORS headers",
    ),
    (
        "DEVX_TRUSTED_PROXIES",
        "",
        "comma-separated CIDRs of proxies whose X-Forwarded-For/Forwarded name the client; unset: the peer address is the client",
    ),
    (
        "DEVX_HASH_CONCURRENCY",
        "0",
        "threads that hash passwords, 19 MiB each; 0 = one per CPU. Bounds the memory sign-ins can take",
    ),
    (
        "DEVX_WORKER_THREADS",
        "0",
        "threads that run requests; 0 = one per CPU, or half the CPUs (at least one) when the database runs on this machine",
    ),
    ("DEVX_HASH_QUEUE", "64", "sign-ins that may wait for a hashing thread; past this they get 503 with Retry-After"),
    (
        "DEVX_METRICS_TOKEN",
        "",
        "when set, GET /metrics needs `Authorization: Bearer <token>`; unset = open; never printed",
    ),
    (
        "DEVX_METRICS_SAMPLE_INTERVAL",
        "10s",
        "how often serve samples its own request and database statistics into the 24-hour history the dashboard draws (GET /api/admin/metrics/history); 100ms to 1h",
    ),
    ("DEVX_LOG_FORMAT", "text", "text|json"),
    ("DEVX_LOG", "info", "log filter (tracing EnvFilter syntax; RUST_LOG also works)"),
    ("DEVX_DATA_DIR", ".devx", "devx's own files: the embedded PostgreSQL lives in <dir>/postgres"),
    (
        "DEVX_SECRET_KEY",
        "",
        "32 bytes, base64 or hex (`openssl rand -base64 32`): encrypts deployment secrets at rest; unset = they cannot be stored; never printed. To rotate, list `id:key` pairs, comma separated: the first seals, all unseal (a bare key is the one with id `default`)",
    ),
];

/// The text of `.env.example`: every variable, commented out, at its default.
pub fn env_example() -> String {
    let mut out = String::from(
        "# devx configuration: every variable at its default. devx reads .env if present\n\
         # (real environment variables win); `devx config check` shows the effective values.\n\
         # Durations: 30s, 500ms, 2m, 1h, 7d; a bare number is milliseconds.\n\
         # Regenerate with `devx config example > .env.example`.\n",
    );
    for (name, default, meaning) in VARIABLES {
        out.push_str(&format!("\n# {meaning}\n#{name}={default}\n"));
    }
    out
}

/// The default of a variable, as `VARIABLES` states it: the one place a
/// default is written (and `.env.example` shows).
fn default_of(name: &str) -> &'static str {
    VARIABLES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map_or_else(|| panic!("{name} is read but not listed in VARIABLES"), |(_, default, _)| *default)
}

/// Reads a variable by any of its names.
struct Reader<'a, F: Fn(&str) -> Option<String>> {
    env: &'a F,
    problems: Vec<ConfigProblem>,
}

impl<F: Fn(&str) -> Option<String>> Reader<'_, F> {
    /// The first of `names` that is set to a non-empty value, with the name
    /// it was found under.
    fn get(&self, names: &[&str]) -> Option<(String, String)> {
        names
            .iter()
            .find_map(|n| (self.env)(n).filter(|v| !v.trim().is_empty()).map(|v| (n.to_string(), v.trim().to_string())))
    }

    fn problem(&mut self, variable: &str, problem: impl Into<String>, example: &str) {
        self.problems.push(ConfigProblem {
            variable: variable.to_string(),
            problem: problem.into(),
            example: example.to_string(),
        });
    }

    fn duration(&mut self, names: &[&str], example: &str) -> Duration {
        let default = parse_duration(default_of(names[0])).expect("a VARIABLES default is a duration");
        let Some((name, raw)) = self.get(names) else { return default };
        match parse_duration(&raw) {
            Some(d) => d,
            None => {
                self.problem(&name, format!("{raw:?} is not a duration"), example);
                default
            }
        }
    }

    /// The TLS files: each variable, else the URL's parameter; each read
    /// and parsed now.
    fn tls_files(&mut self, url: [Option<PathBuf>; 3]) -> TlsFiles {
        let [url_root, url_cert, url_key] = url;
        let pick = |name: &str, from_url: Option<PathBuf>| {
            self.get(&[name]).map(|(n, v)| (n, PathBuf::from(v))).or(from_url.map(|p| ("DATABASE_URL".to_string(), p)))
        };
        let root = pick("DB_SSL_ROOT_CERT", url_root);
        let cert = pick("DB_SSL_CERT", url_cert);
        let key = pick("DB_SSL_KEY", url_key);
        let mut files = TlsFiles {
            root_cert: root.as_ref().map(|(_, p)| p.clone()),
            client_cert: cert.as_ref().map(|(_, p)| p.clone()),
            client_key: key.as_ref().map(|(_, p)| p.clone()),
            ..TlsFiles::default()
        };
        if let Some((name, path)) = &root {
            match pem_certificates(path) {
                Ok(roots) => files.roots = roots,
                Err(e) => self.problem(name, e, "DB_SSL_ROOT_CERT=/etc/devx/db-ca.pem"),
            }
        }
        match (&cert, &key) {
            (None, None) => {}
            (Some(_), None) | (None, Some(_)) => self.problem(
                if cert.is_some() { "DB_SSL_KEY" } else { "DB_SSL_CERT" },
                "a client certificate needs both DB_SSL_CERT and DB_SSL_KEY (or sslcert and sslkey)",
                "DB_SSL_CERT=/etc/devx/client.pem DB_SSL_KEY=/etc/devx/client.key",
            ),
            (Some((cert_name, cert_path)), Some((key_name, key_path))) => {
                use rustls::pki_types::pem::PemObject;
                let chain = pem_certificates(cert_path);
                let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key_path)
                    .map_err(|e| format!("cannot read a PEM private key from {}: {e}", key_path.display()));
                match (chain, key) {
                    (Ok(chain), Ok(key)) => files.identity = Some((chain, Arc::new(key))),
                    (chain, key) => {
                        if let Err(e) = chain {
                            self.problem(cert_name, e, "DB_SSL_CERT=/etc/devx/client.pem");
                        }
                        if let Err(e) = key {
                            self.problem(key_name, e, "DB_SSL_KEY=/etc/devx/client.key");
                        }
                    }
                }
            }
        }
        files
    }

    /// A positive duration with no default (`None` when unset or wrong,
    /// the latter a problem).
    fn optional_duration(&mut self, names: &[&str], example: &str) -> Option<Duration> {
        let (name, raw) = self.get(names)?;
        match parse_duration(&raw) {
            Some(d) if !d.is_zero() => Some(d),
            Some(_) => {
                self.problem(&name, "must be greater than zero", example);
                None
            }
            None => {
                self.problem(&name, format!("{raw:?} is not a duration"), example);
                None
            }
        }
    }

    fn positive_duration(&mut self, names: &[&str], example: &str) -> Duration {
        let default = parse_duration(default_of(names[0])).expect("a VARIABLES default is a duration");
        let d = self.duration(names, example);
        if d.is_zero() {
            self.problem(names[0], "must be greater than zero", example);
            return default;
        }
        d
    }

    /// A duration within `range` (the default when it is not).
    fn duration_within(
        &mut self,
        names: &[&str],
        range: std::ops::RangeInclusive<Duration>,
        example: &str,
    ) -> Duration {
        let default = parse_duration(default_of(names[0])).expect("a VARIABLES default is a duration");
        let d = self.duration(names, example);
        if !range.contains(&d) {
            let (low, high) = (humantime::format_duration(*range.start()), humantime::format_duration(*range.end()));
            self.problem(names[0], format!("must be from {low} to {high}"), example);
            return default;
        }
        d
    }

    fn number(&mut self, names: &[&str], range: std::ops::RangeInclusive<usize>, example: &str) -> usize {
        let default = default_of(names[0]).parse().expect("a VARIABLES default is a whole number");
        let Some((name, raw)) = self.get(names) else { return default };
        match raw.parse::<usize>() {
            Ok(n) if range.contains(&n) => n,
            _ => {
                self.problem(
                    &name,
                    format!("{raw:?} is not a whole number from {} to {}", range.start(), range.end()),
                    example,
                );
                default
            }
        }
    }

    /// `DATABASE_REPLICA_URLS` and the limits on reading from replicas.
    fn replicas(&mut self) -> ReplicaConfig {
        let example =
            "DATABASE_REPLICA_URLS=postgres://devx:secret@replica1:5432/devx postgres://devx:secret@replica2:5432/devx";
        let mut targets = Vec::new();
        if let Some((name, raw)) = self.get(&["DATABASE_REPLICA_URLS"]) {
            for url in split_urls(&raw) {
                match parse_url(url) {
                    Ok(parsed) => targets.push(parsed.config),
                    Err(e) => self.problem(&name, format!("{}: {e}", masked_url(url)), example),
                }
            }
        }
        let primary_routes = match self.get(&["DB_PRIMARY_ROUTES"]) {
            None => Vec::new(),
            Some((name, raw)) => raw
                .split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .filter_map(|route| match route.split_once(char::is_whitespace) {
                    Some((method, path)) if path.trim().starts_with('/') => {
                        Some((method.to_ascii_uppercase(), path.trim().to_string()))
                    }
                    _ => {
                        self.problem(
                            &name,
                            format!("{route:?} is not METHOD /path"),
                            "DB_PRIMARY_ROUTES=GET /api/projects/{id}, GET /api/tasks",
                        );
                        None
                    }
                })
                .collect(),
        };
        ReplicaConfig {
            targets,
            max_lag: self.positive_duration(&["DB_REPLICA_MAX_LAG"], "DB_REPLICA_MAX_LAG=10s"),
            max_lag_bytes: self.number(
                &["DB_REPLICA_MAX_LAG_BYTES"],
                1..=usize::MAX,
                "DB_REPLICA_MAX_LAG_BYTES=16777216",
            ) as u64,
            probe_interval: self.positive_duration(&["DB_REPLICA_PROBE_INTERVAL"], "DB_REPLICA_PROBE_INTERVAL=250ms"),
            read_your_writes_window: self
                .positive_duration(&["DB_READ_YOUR_WRITES_WINDOW"], "DB_READ_YOUR_WRITES_WINDOW=60s"),
            primary_routes,
        }
    }

    /// A comma-separated list of origins (`scheme://host[:port]`, no path).
    fn origins(&mut self, names: &[&str], example: &str) -> Vec<String> {
        let Some((name, raw)) = self.get(names) else { return Vec::new() };
        let mut origins = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let well_formed = part.split_once("://").is_some_and(|(scheme, rest)| {
                matches!(scheme, "http" | "https") && !rest.is_empty() && !rest.contains('/')
            }) && axum::http::HeaderValue::from_str(part).is_ok();
            if well_formed {
                origins.push(part.to_string());
            } else {
                self.problem(&name, format!("{part:?} is not an origin such as https://app.example.com"), example);
            }
        }
        origins
    }

    /// A comma-separated list of CIDR networks or single addresses.
    fn networks(&mut self, names: &[&str], example: &str) -> Vec<ipnet::IpNet> {
        let Some((name, raw)) = self.get(names) else { return Vec::new() };
        let mut networks = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.parse::<ipnet::IpNet>().or_else(|_| part.parse::<std::net::IpAddr>().map(ipnet::IpNet::from)) {
                Ok(net) => networks.push(net),
                Err(_) => self.problem(&name, format!("{part:?} is not an IP address or CIDR network"), example),
            }
        }
        networks
    }

    fn boolean(&mut self, names: &[&str], example: &str) -> bool {
        let default = default_of(names[0]) == "true";
        let Some((name, raw)) = self.get(names) else { return default };
        match raw.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => {
                self.problem(&name, format!("{raw:?} is not true or false"), example);
                default
            }
        }
    }
}

fn plural_is(n: usize) -> &'static str {
    if n == 1 { "is" } else { "are" }
}

/// Names devx reads besides `VARIABLES`: the source products' aliases.
const ALIASES: &[&str] = &[
    "POSTGRES_HOST",
    "POSTGRES_PORT",
    "POSTGRES_DB",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "DB_SSL",
    "DATABASE_SSL",
    "DATABASE_POOL_SIZE",
    "DB_POOL_IDLE_TIMEOUT",
    "DB_CONNECTION_TIMEOUT",
    "DB_POOL_CONNECTION_TIMEOUT",
    "DB_POOL_ACQUIRE_TIMEOUT",
    "DB_QUERY_TIMEOUT",
    "DATABASE_TIMEOUT",
    "RUST_LOG",
];

/// Variables of the source products that have nothing to map onto in devx:
/// set, each is a warning saying so (and never "did you mean").
const IGNORED: &[(&str, &str)] = &[(
    "DB_DESTROY_TIMEOUT",
    "devx closes a connection by dropping it, which never waits, so there is no destroy timeout to set",
)];

/// `DEVX_*` names that belong to devx's tests, not to devx.
const NOT_SETTINGS: &[&str] = &["DEVX_TEST_PG_URL", "DEVX_UPDATE_SNAPSHOTS"];

/// Warnings for `names` that look like devx's but are not: every unknown
/// `DEVX_*`, and a `DB_*` or `DATABASE_*` close to a known name (other
/// programs' `DB_*` variables are none of devx's business).
pub fn unknown_variables(names: &[String]) -> Vec<String> {
    let known: Vec<&str> = VARIABLES
        .iter()
        .map(|(n, _, _)| *n)
        .chain(ALIASES.iter().copied())
        .chain(IGNORED.iter().map(|(n, _)| *n))
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    let mut warnings = Vec::new();
    for name in names {
        let ours = name.starts_with("DEVX_");
        if !(ours || name.starts_with("DB_") || name.starts_with("DATABASE_"))
            || known.contains(&name.as_str())
            || NOT_SETTINGS.contains(&name.as_str())
            || !seen.insert(name.as_str())
        {
            continue;
        }
        let nearest = known
            .iter()
            .map(|k| (edit_distance(name, k), *k))
            .filter(|(d, k)| *d <= 2 || (*d <= 3 && k.len() >= 16))
            .min();
        match nearest {
            Some((_, k)) => warnings.push(format!("{name} is not a devx variable and is ignored; did you mean {k}?")),
            None if ours => warnings.push(format!(
                "{name} is not a devx variable and is ignored (`devx config example` lists every variable)"
            )),
            None => {}
        }
    }
    warnings
}

/// Edits (insert, delete, replace, swap two neighbours) from `a` to `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// `30s`, `500ms`, `2m`, `1h 30m`; a bare number is milliseconds (the
/// `DB_IDLE_TIMEOUT=30000` style of the source products' deployments).
pub fn parse_duration(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    if let Ok(ms) = raw.parse::<u64>() {
        return Some(Duration::from_millis(ms));
    }
    humantime::parse_duration(raw).ok()
}

/// The parameters of a connection URL tokio-postgres reads itself.
const URL_PARAMETERS: &[&str] = &[
    "user",
    "password",
    "dbname",
    "options",
    "application_name",
    "sslnegotiation",
    "host",
    "hostaddr",
    "port",
    "connect_timeout",
    "tcp_user_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_retries",
    "target_session_attrs",
    "channel_binding",
    "load_balance_hosts",
];

/// A connection URL: what tokio-postgres reads, and the TLS mode it names
/// (`sslmode=`, or `ssl=true|false` as the source products write it).
struct ParsedUrl {
    config: tokio_postgres::Config,
    ssl_mode: Option<SslMode>,
    /// `sslrootcert`, `sslcert`, `sslkey`.
    tls_paths: [Option<PathBuf>; 3],
}

/// The URLs of a list separated by spaces or commas; a comma inside one
/// URL (several hosts: `postgres://a,b/devx`) does not split it.
fn split_urls(raw: &str) -> Vec<&str> {
    let mut urls = Vec::new();
    for word in raw.split_whitespace() {
        let mut rest = word;
        loop {
            let next = ["postgres://", "postgresql://"]
                .iter()
                .filter_map(|scheme| rest.get(1..).and_then(|r| r.find(&format!(",{scheme}"))))
                .min();
            match next {
                Some(at) => {
                    urls.push(&rest[..=at]);
                    rest = &rest[at + 2..];
                }
                None => break,
            }
        }
        let last = rest.trim_matches(',');
        if !last.is_empty() {
            urls.push(last);
        }
    }
    urls.into_iter().map(|u| u.trim_matches(',')).filter(|u| !u.is_empty()).collect()
}

/// A URL as a problem may show it: the password replaced.
fn masked_url(url: &str) -> String {
    match parse_url(url) {
        Ok(parsed) => masked_target(&parsed.config),
        Err(_) => match url.split_once('@') {
            Some((before, after)) => match before.rsplit_once(':') {
                Some((user, _)) if user.contains("//") => format!("{user}:****@{after}"),
                _ => url.to_string(),
            },
            None => url.to_string(),
        },
    }
}

fn parse_url(raw: &str) -> Result<ParsedUrl, String> {
    if !(raw.starts_with("postgres://") || raw.starts_with("postgresql://") || raw.contains('=')) {
        return Err("must start with postgres:// or postgresql://".into());
    }
    let mut text = raw.to_string();
    let mut ssl_mode = None;
    let mut tls_paths: [Option<PathBuf>; 3] = Default::default();
    if (raw.starts_with("postgres://") || raw.starts_with("postgresql://"))
        && let Some((base, query)) = raw.split_once('?')
    {
        let (mut kept, mut unknown) = (Vec::new(), Vec::new());
        let (mut ssl, mut sslmode) = (None, None);
        for segment in query.split('&').filter(|s| !s.is_empty()) {
            let (key, value) = form_urlencoded::parse(segment.as_bytes()).next().unwrap_or_default();
            match key.as_ref() {
                "ssl" => ssl = Some(value.into_owned()),
                "sslmode" => sslmode = Some(value.into_owned()),
                "sslrootcert" => tls_paths[0] = Some(PathBuf::from(value.as_ref())),
                "sslcert" => tls_paths[1] = Some(PathBuf::from(value.as_ref())),
                "sslkey" => tls_paths[2] = Some(PathBuf::from(value.as_ref())),
                k if URL_PARAMETERS.contains(&k) => kept.push(segment),
                k => unknown.push(k.to_string()),
            }
        }
        if !unknown.is_empty() {
            return Err(format!(
                "has parameters devx does not know: {}; it reads ssl, sslmode, sslrootcert, sslcert, sslkey, {}",
                unknown.join(", "),
                URL_PARAMETERS.join(", ")
            ));
        }
        let ssl = match ssl.as_deref() {
            None => None,
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "on" | "yes" => Some(SslMode::Require),
                "false" | "0" | "off" | "no" => Some(SslMode::Disable),
                _ => return Err(format!("has ssl={v}, which is neither true nor false")),
            },
        };
        let sslmode = match sslmode.as_deref() {
            None => None,
            Some(v) => Some(SslMode::parse(v).ok_or_else(|| {
                format!("has sslmode={v}, which is not one of disable, allow, prefer, require, verify-ca, verify-full")
            })?),
        };
        if let (Some(ssl), Some(mode)) = (ssl, sslmode)
            && (ssl == SslMode::Disable) != (mode == SslMode::Disable)
        {
            return Err(format!(
                "says ssl={} but sslmode={}; keep one of them",
                if ssl == SslMode::Disable { "false" } else { "true" },
                mode.as_str()
            ));
        }
        ssl_mode = sslmode.or(ssl);
        text = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
    }
    // tokio-postgres's message can quote the input, which may hold a password.
    let config =
        text.parse::<tokio_postgres::Config>().map_err(|_| "is not a valid PostgreSQL connection URL".to_string())?;
    // A key/value string's `sslmode` is read by tokio-postgres (its default
    // is prefer, so only the other two say something).
    let ssl_mode = ssl_mode.or(match config.get_ssl_mode() {
        tokio_postgres::config::SslMode::Disable => Some(SslMode::Disable),
        tokio_postgres::config::SslMode::Require => Some(SslMode::Require),
        _ => None,
    });
    Ok(ParsedUrl { config, ssl_mode, tls_paths })
}

impl Config {
    /// The threads that run requests: `DEVX_WORKER_THREADS`, or one per CPU,
    /// halved (at least one) when the database runs on this machine.
    ///
    /// Why halve: PostgreSQL's backends need the other CPUs, and a worker
    /// thread per CPU beside them makes the workers sleep and wake for
    /// every statement's answer. On 2 CPUs, one worker served the same
    /// reads with 10-20% less CPU per request than two.
    pub fn worker_threads(&self) -> usize {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        worker_threads_for(self.http.worker_threads, cpus, self.database.on_this_machine())
    }

    /// Reads the process environment, and for what it does not set the
    /// `.env` file of the working directory (or of its nearest ancestor that
    /// has one). A malformed line of that file is a problem like a bad value.
    pub fn from_process_env() -> Result<Self, ConfigError> {
        let process = |name: &str| std::env::var(name).ok();
        let mut problems = Vec::new();
        let file = match std::env::current_dir().ok().and_then(|dir| dotenv::find(&dir)) {
            None => None,
            Some(path) => match dotenv::load(&path, &process) {
                Ok(file) => Some(file),
                Err(e) => {
                    problems.push(ConfigProblem {
                        variable: path.display().to_string(),
                        problem: format!("cannot be read: {e}"),
                        example: "fix its permissions, or remove it".into(),
                    });
                    None
                }
            },
        };
        if let Some(file) = &file {
            problems.extend(file.problems.iter().map(|p| ConfigProblem {
                variable: format!("{} line {}", file.path.display(), p.line),
                problem: p.problem.clone(),
                example: p.fix.clone(),
            }));
        }
        let lookup = |name: &str| process(name).or_else(|| file.as_ref().and_then(|f| f.get(name)).map(str::to_string));
        let mut names: Vec<String> = std::env::vars_os().filter_map(|(name, _)| name.into_string().ok()).collect();
        names.extend(file.iter().flat_map(|f| f.vars.iter().map(|(name, _)| name.clone())));
        Self::from_sources(&lookup, problems, &names)
    }

    /// Reads configuration through `env`, so tests can pass a map.
    pub fn from_lookup<F: Fn(&str) -> Option<String>>(env: &F) -> Result<Self, ConfigError> {
        Self::from_sources(env, Vec::new(), &[])
    }

    /// Reads configuration through `env`, after `problems` found elsewhere
    /// (the `.env` file); `names` are the variables set, checked for names
    /// devx does not know.
    fn from_sources<F: Fn(&str) -> Option<String>>(
        env: &F,
        problems: Vec<ConfigProblem>,
        names: &[String],
    ) -> Result<Self, ConfigError> {
        let mut r = Reader { env, problems };
        let mut warnings = unknown_variables(names);

        let url_example = "DATABASE_URL=postgres://devx:secret@db.internal:5432/devx";
        let part_names: [&[&str]; 5] = [
            &["DB_HOST", "POSTGRES_HOST"],
            &["DB_PORT", "POSTGRES_PORT"],
            &["DB_NAME", "POSTGRES_DB"],
            &["DB_USER", "POSTGRES_USER"],
            &["DB_PASSWORD", "POSTGRES_PASSWORD"],
        ];
        let any_part = part_names.iter().any(|names| r.get(names).is_some());

        let parts_set: Vec<String> = part_names.iter().filter_map(|names| r.get(names).map(|(name, _)| name)).collect();
        let mut url_ssl_mode = None;
        let mut url_tls_paths: [Option<PathBuf>; 3] = Default::default();
        let source = if let Some((name, raw)) = r.get(&["DATABASE_URL"]) {
            if !parts_set.is_empty() {
                let password = parts_set.iter().find(|n| n.ends_with("PASSWORD"));
                let ignored: Vec<&str> =
                    parts_set.iter().filter(|n| Some(*n) != password).map(String::as_str).collect();
                let mut warning = format!("DATABASE_URL and {} are both set: DATABASE_URL wins", parts_set.join(", "));
                if !ignored.is_empty() {
                    warning.push_str(&format!("; {} {} ignored", ignored.join(", "), plural_is(ignored.len())));
                }
                if let Some(password) = password {
                    warning.push_str(&format!("; {password} is used only when the URL has no password"));
                }
                warnings.push(warning);
            }
            match parse_url(&raw) {
                Ok(ParsedUrl { config: mut cfg, ssl_mode, tls_paths }) => {
                    url_tls_paths = tls_paths;
                    // Explicit parts refine the URL (the source products' deployments set both).
                    if let Some((_, pw)) = r.get(part_names[4])
                        && cfg.get_password().is_none()
                    {
                        cfg.password(pw);
                    }
                    url_ssl_mode = ssl_mode;
                    DbSource::Explicit(Box::new(cfg))
                }
                Err(e) => {
                    r.problem(&name, e, url_example);
                    DbSource::EmbeddedDefault
                }
            }
        } else if any_part {
            let mut cfg = tokio_postgres::Config::new();
            let host = r.get(part_names[0]).map_or_else(|| "localhost".into(), |(_, v)| v);
            cfg.host(&host);
            match r.get(part_names[1]) {
                Some((name, raw)) => match raw.parse::<u16>() {
                    Ok(p) if p > 0 => {
                        cfg.port(p);
                    }
                    _ => r.problem(&name, format!("{raw:?} is not a port number from 1 to 65535"), "DB_PORT=5432"),
                },
                None => {
                    cfg.port(default_of("DB_PORT").parse().expect("the DB_PORT default is a port"));
                }
            }
            cfg.dbname(r.get(part_names[2]).map_or_else(|| default_of("DB_NAME").into(), |(_, v)| v));
            cfg.user(r.get(part_names[3]).map_or_else(|| default_of("DB_USER").into(), |(_, v)| v));
            if let Some((_, pw)) = r.get(part_names[4]) {
                cfg.password(pw);
            }
            DbSource::Explicit(Box::new(cfg))
        } else {
            DbSource::EmbeddedDefault
        };

        let migration_source = match r.get(&["DATABASE_MIGRATION_URL"]) {
            Some((name, raw)) => match parse_url(&raw) {
                Ok(parsed) => Some(Box::new(parsed.config)),
                Err(e) => {
                    r.problem(&name, e, "DATABASE_MIGRATION_URL=postgres://devx:secret@db.internal:5432/devx");
                    None
                }
            },
            None => None,
        };

        let ssl_mode = match r.get(&["DB_SSL_MODE", "DB_SSL", "DATABASE_SSL"]) {
            Some((name, raw)) => match SslMode::parse(&raw) {
                Some(m) => Some(m),
                None => {
                    r.problem(
                        &name,
                        format!("{raw:?} is not one of disable, prefer, require, verify-full"),
                        "DB_SSL_MODE=require",
                    );
                    None
                }
            },
            None => None,
        };
        let ssl_mode = match (ssl_mode, url_ssl_mode) {
            (Some(env), Some(url)) if env != url => {
                warnings.push(format!(
                    "DATABASE_URL asks for sslmode {} but {} is {}: {} wins",
                    url.as_str(),
                    r.get(&["DB_SSL_MODE", "DB_SSL", "DATABASE_SSL"]).map(|(n, _)| n).unwrap_or_default(),
                    env.as_str(),
                    env.as_str()
                ));
                Some(env)
            }
            (env, url) => env.or(url),
        };
        let tls_files = r.tls_files(url_tls_paths);
        // A CA given only makes sense verified against.
        let ssl_mode = ssl_mode.or(tls_files.root_cert.as_ref().map(|_| SslMode::VerifyFull));

        let statement_mode = match r.get(&["DB_STATEMENT_MODE"]) {
            Some((name, raw)) => StatementMode::parse(&raw).unwrap_or_else(|| {
                r.problem(&name, format!("{raw:?} is not one of prepared, unnamed"), "DB_STATEMENT_MODE=unnamed");
                StatementMode::Prepared
            }),
            None => StatementMode::Prepared,
        };

        let pool_max = r.number(&["DB_POOL_MAX", "DATABASE_POOL_SIZE"], 1..=10_000, "DB_POOL_MAX=20");
        let pool_min = match r.get(&["DB_POOL_MIN"]) {
            Some(_) => r.number(&["DB_POOL_MIN"], 0..=10_000, "DB_POOL_MIN=2"),
            // Unset: the default, but never more than the pool may hold.
            None => r.number(&["DB_POOL_MIN"], 0..=10_000, "DB_POOL_MIN=2").min(pool_max),
        };
        if pool_min > pool_max {
            r.problem("DB_POOL_MIN", format!("{pool_min} is larger than DB_POOL_MAX ({pool_max})"), "DB_POOL_MIN=2");
        }

        let mut database = DatabaseConfig {
            source,
            ssl_mode,
            tls_files,
            pool_min,
            pool_max,
            idle_timeout: r.positive_duration(&["DB_IDLE_TIMEOUT", "DB_POOL_IDLE_TIMEOUT"], "DB_IDLE_TIMEOUT=30s"),
            connect_timeout: r.positive_duration(
                &["DB_CONNECT_TIMEOUT", "DB_CONNECTION_TIMEOUT", "DB_POOL_CONNECTION_TIMEOUT"],
                "DB_CONNECT_TIMEOUT=2s",
            ),
            acquire_timeout: r
                .positive_duration(&["DB_ACQUIRE_TIMEOUT", "DB_POOL_ACQUIRE_TIMEOUT"], "DB_ACQUIRE_TIMEOUT=5s"),
            statement_timeout: r.duration(
                &["DB_STATEMENT_TIMEOUT", "DB_QUERY_TIMEOUT", "DATABASE_TIMEOUT"],
                "DB_STATEMENT_TIMEOUT=30s",
            ),
            lock_timeout: r.duration(&["DB_LOCK_TIMEOUT"], "DB_LOCK_TIMEOUT=5s"),
            idle_in_transaction_timeout: r
                .duration(&["DB_IDLE_IN_TRANSACTION_TIMEOUT"], "DB_IDLE_IN_TRANSACTION_TIMEOUT=30s"),
            slow_query_threshold: r.duration(&["DB_SLOW_QUERY_THRESHOLD"], "DB_SLOW_QUERY_THRESHOLD=250ms"),
            long_query_threshold: r.positive_duration(&["DB_LONG_QUERY_THRESHOLD"], "DB_LONG_QUERY_THRESHOLD=30s"),
            pipeline_connections: r.number(&["DB_PIPELINE_CONNECTIONS"], 0..=16, "DB_PIPELINE_CONNECTIONS=1"),
            pipeline_timeout: r.duration_within(
                &["DB_PIPELINE_TIMEOUT"],
                Duration::from_millis(10)..=Duration::from_secs(60),
                "DB_PIPELINE_TIMEOUT=1s",
            ),
            statement_mode,
            migration_source,
            replicas: r.replicas(),
            start_wait: r.duration(&["DEVX_DB_WAIT"], "DEVX_DB_WAIT=60s"),
            create_timeout: Duration::ZERO,
            reap_interval: Duration::ZERO,
            health_check_interval: r
                .boolean(&["DB_HEALTH_CHECK_ENABLED"], "DB_HEALTH_CHECK_ENABLED=true")
                .then(|| r.positive_duration(&["DB_HEALTH_CHECK_INTERVAL"], "DB_HEALTH_CHECK_INTERVAL=30s")),
            statement_log: StatementLog {
                all: r.boolean(&["DB_LOG_QUERIES"], "DB_LOG_QUERIES=true"),
                slow: r.boolean(&["DB_LOG_SLOW_QUERIES"], "DB_LOG_SLOW_QUERIES=false"),
                level: match r.get(&["DB_LOGGING_LEVEL"]) {
                    None => LogLevel::Debug,
                    Some((name, raw)) => LogLevel::parse(&raw).unwrap_or_else(|| {
                        r.problem(
                            &name,
                            format!("{raw:?} is not one of trace, debug, info, warn"),
                            "DB_LOGGING_LEVEL=info",
                        );
                        LogLevel::Debug
                    }),
                },
            },
        };
        database.create_timeout =
            r.optional_duration(&["DB_CREATE_TIMEOUT"], "DB_CREATE_TIMEOUT=3s").unwrap_or(database.connect_timeout);
        database.reap_interval = r
            .optional_duration(&["DB_REAP_INTERVAL"], "DB_REAP_INTERVAL=1s")
            .unwrap_or_else(|| database.idle_timeout.min(Duration::from_secs(10)));
        if !r.boolean(&["DB_LOGGING_ENABLED"], "DB_LOGGING_ENABLED=false") {
            database.statement_log.all = false;
            database.statement_log.slow = false;
        }
        for (name, why) in IGNORED {
            if r.get(&[name]).is_some() {
                warnings.push(format!("{name} is set but devx ignores it: {why}"));
            }
        }

        let migrations = MigrationConfig {
            auto_migrate: r.boolean(&["DEVX_AUTO_MIGRATE"], "DEVX_AUTO_MIGRATE=false"),
            lock_timeout: r.positive_duration(&["DEVX_MIGRATION_LOCK_TIMEOUT"], "DEVX_MIGRATION_LOCK_TIMEOUT=5s"),
            wait_timeout: r.positive_duration(&["DEVX_MIGRATION_WAIT"], "DEVX_MIGRATION_WAIT=60s"),
        };

        let http = HttpConfig {
            body_limit: r.number(&["DEVX_BODY_LIMIT"], 1024..=1024 * 1024 * 1024, "DEVX_BODY_LIMIT=1048576"),
            request_timeout: r.positive_duration(&["DEVX_REQUEST_TIMEOUT"], "DEVX_REQUEST_TIMEOUT=30s"),
            shutdown_grace: r.duration(&["DEVX_SHUTDOWN_GRACE"], "DEVX_SHUTDOWN_GRACE=20s"),
            shutdown_drain: r.duration(&["DEVX_SHUTDOWN_DRAIN"], "DEVX_SHUTDOWN_DRAIN=5s"),
            session_ttl: r.positive_duration(&["DEVX_SESSION_TTL"], "DEVX_SESSION_TTL=30d"),
            session_idle_timeout: r.positive_duration(&["DEVX_SESSION_IDLE_TIMEOUT"], "DEVX_SESSION_IDLE_TIMEOUT=7d"),
            login_max_failures: r.number(&["DEVX_LOGIN_MAX_FAILURES"], 1..=1000, "DEVX_LOGIN_MAX_FAILURES=5") as u32,
            login_max_failures_per_address: r.number(
                &["DEVX_LOGIN_MAX_FAILURES_PER_ADDRESS"],
                1..=1_000_000,
                "DEVX_LOGIN_MAX_FAILURES_PER_ADDRESS=100",
            ) as u32,
            register_max_per_address: r.number(
                &["DEVX_REGISTER_MAX_PER_ADDRESS"],
                1..=1_000_000,
                "DEVX_REGISTER_MAX_PER_ADDRESS=20",
            ) as u32,
            login_lockout: r.positive_duration(&["DEVX_LOGIN_LOCKOUT"], "DEVX_LOGIN_LOCKOUT=1m"),
            trusted_proxies: r.networks(&["DEVX_TRUSTED_PROXIES"], "DEVX_TRUSTED_PROXIES=10.0.0.0/8,127.0.0.1"),
            cors_origins: r.origins(&["DEVX_CORS_ORIGINS"], "DEVX_CORS_ORIGINS=https://app.example.com"),
            login_window: r.positive_duration(&["DEVX_LOGIN_WINDOW"], "DEVX_LOGIN_WINDOW=15m"),
            hash_concurrency: r.number(&["DEVX_HASH_CONCURRENCY"], 0..=256, "DEVX_HASH_CONCURRENCY=2"),
            worker_threads: r.number(&["DEVX_WORKER_THREADS"], 0..=1024, "DEVX_WORKER_THREADS=4"),
            hash_queue: r.number(&["DEVX_HASH_QUEUE"], 0..=100_000, "DEVX_HASH_QUEUE=64"),
            metrics_token: r.get(&["DEVX_METRICS_TOKEN"]).map(|(_, v)| Secret(v)),
            metrics_sample_interval: r.duration_within(
                &["DEVX_METRICS_SAMPLE_INTERVAL"],
                Duration::from_millis(100)..=Duration::from_secs(3600),
                "DEVX_METRICS_SAMPLE_INTERVAL=10s",
            ),
        };

        let default_addr: SocketAddr = default_of("DEVX_ADDR").parse().expect("the DEVX_ADDR default is an address");
        let addr = match r.get(&["DEVX_ADDR"]) {
            Some((name, raw)) => match raw.parse::<SocketAddr>() {
                Ok(a) => a,
                Err(_) => {
                    r.problem(&name, format!("{raw:?} is not an IP address and port"), "DEVX_ADDR=0.0.0.0:8080");
                    default_addr
                }
            },
            None => default_addr,
        };

        let log_format = match r.get(&["DEVX_LOG_FORMAT"]) {
            Some((name, raw)) => match raw.to_ascii_lowercase().as_str() {
                "text" | "pretty" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    r.problem(&name, format!("{raw:?} is not text or json"), "DEVX_LOG_FORMAT=json");
                    LogFormat::Text
                }
            },
            None => LogFormat::Text,
        };
        let log_filter = r.get(&["DEVX_LOG", "RUST_LOG"]).map_or_else(|| "info".into(), |(_, v)| v);
        if tracing_subscriber::EnvFilter::try_new(&log_filter).is_err() {
            r.problem("DEVX_LOG", format!("{log_filter:?} is not a valid log filter"), "DEVX_LOG=info,devx=debug");
        }
        let data_dir = r.get(&["DEVX_DATA_DIR"]).map_or_else(|| PathBuf::from(".devx"), |(_, v)| PathBuf::from(v));

        let secret_keys = match r.get(&["DEVX_SECRET_KEY"]) {
            Some((name, raw)) => match SecretKeys::parse(&raw) {
                Ok(keys) => Some(keys),
                Err(e) => {
                    r.problem(&name, e, "DEVX_SECRET_KEY=$(openssl rand -base64 32)");
                    None
                }
            },
            None => None,
        };

        // https://no-color.org: set and not empty.
        let no_color = (r.env)("NO_COLOR").is_some_and(|v| !v.is_empty());

        if r.problems.is_empty() {
            Ok(Config {
                database,
                migrations,
                http,
                addr,
                log_format,
                log_filter,
                data_dir,
                secret_keys,
                no_color,
                warnings,
            })
        } else {
            Err(ConfigError { problems: r.problems, log_format })
        }
    }

    /// The effective configuration as `variable -> value`, secrets masked.
    pub fn describe(&self) -> BTreeMap<&'static str, String> {
        let d = &self.database;
        let secs = |x: Duration| humantime::format_duration(x).to_string();
        let mut m = BTreeMap::new();
        m.insert(
            "DATABASE_URL",
            match &d.source {
                DbSource::Explicit(cfg) => masked_target(cfg),
                DbSource::EmbeddedDefault => "(unset: local server if one answers, else embedded)".into(),
            },
        );
        m.insert(
            "DB_SSL_MODE",
            match (d.ssl_mode, &d.source) {
                (Some(mode), _) => mode.as_str().into(),
                (None, DbSource::Explicit(cfg)) => format!("{} (by host)", d.effective_ssl_mode(cfg).as_str()),
                (None, DbSource::EmbeddedDefault) => "disable (local)".into(),
            },
        );
        m.insert("DB_POOL_MIN", d.pool_min.to_string());
        m.insert("DB_POOL_MAX", d.pool_max.to_string());
        m.insert("DB_IDLE_TIMEOUT", secs(d.idle_timeout));
        m.insert("DB_CONNECT_TIMEOUT", secs(d.connect_timeout));
        m.insert("DB_ACQUIRE_TIMEOUT", secs(d.acquire_timeout));
        m.insert("DB_STATEMENT_TIMEOUT", secs(d.statement_timeout));
        m.insert("DB_LOCK_TIMEOUT", secs(d.lock_timeout));
        m.insert("DB_IDLE_IN_TRANSACTION_TIMEOUT", secs(d.idle_in_transaction_timeout));
        m.insert("DB_SLOW_QUERY_THRESHOLD", secs(d.slow_query_threshold));
        m.insert("DB_LONG_QUERY_THRESHOLD", secs(d.long_query_threshold));
        m.insert("DB_PIPELINE_CONNECTIONS", d.pipeline_connections.to_string());
        m.insert("DB_PIPELINE_TIMEOUT", secs(d.pipeline_timeout));
        m.insert("DB_STATEMENT_MODE", d.statement_mode.as_str().into());
        let path = |p: &Option<PathBuf>| p.as_ref().map_or_else(|| "(unset)".to_string(), |p| p.display().to_string());
        m.insert("DB_SSL_ROOT_CERT", path(&d.tls_files.root_cert));
        m.insert("DB_SSL_CERT", path(&d.tls_files.client_cert));
        m.insert("DB_SSL_KEY", path(&d.tls_files.client_key));
        m.insert("DB_CREATE_TIMEOUT", secs(d.create_timeout));
        m.insert("DB_REAP_INTERVAL", secs(d.reap_interval));
        m.insert("DB_HEALTH_CHECK_ENABLED", d.health_check_interval.is_some().to_string());
        m.insert("DB_HEALTH_CHECK_INTERVAL", d.health_check_interval.map_or_else(|| "(off)".into(), secs));
        m.insert("DB_LOGGING_ENABLED", (d.statement_log.all || d.statement_log.slow).to_string());
        m.insert("DB_LOGGING_LEVEL", d.statement_log.level.as_str().into());
        m.insert("DB_LOG_QUERIES", d.statement_log.all.to_string());
        m.insert("DB_LOG_SLOW_QUERIES", d.statement_log.slow.to_string());
        m.insert(
            "DATABASE_MIGRATION_URL",
            d.migration_source.as_deref().map_or_else(|| "(unset: DATABASE_URL)".into(), masked_target),
        );
        m.insert(
            "DATABASE_REPLICA_URLS",
            if d.replicas.targets.is_empty() {
                "(unset: every read on the primary)".into()
            } else {
                d.replicas.targets.iter().map(masked_target).collect::<Vec<_>>().join(" ")
            },
        );
        m.insert("DB_REPLICA_MAX_LAG", secs(d.replicas.max_lag));
        m.insert("DB_REPLICA_MAX_LAG_BYTES", d.replicas.max_lag_bytes.to_string());
        m.insert("DB_REPLICA_PROBE_INTERVAL", secs(d.replicas.probe_interval));
        m.insert("DB_READ_YOUR_WRITES_WINDOW", secs(d.replicas.read_your_writes_window));
        m.insert(
            "DB_PRIMARY_ROUTES",
            d.replicas.primary_routes.iter().map(|(m, p)| format!("{m} {p}")).collect::<Vec<_>>().join(", "),
        );
        m.insert("DEVX_DB_WAIT", secs(d.start_wait));
        m.insert("DEVX_AUTO_MIGRATE", self.migrations.auto_migrate.to_string());
        m.insert("DEVX_MIGRATION_LOCK_TIMEOUT", secs(self.migrations.lock_timeout));
        m.insert("DEVX_MIGRATION_WAIT", secs(self.migrations.wait_timeout));
        m.insert("DEVX_ADDR", self.addr.to_string());
        let h = &self.http;
        m.insert("DEVX_BODY_LIMIT", h.body_limit.to_string());
        m.insert("DEVX_REQUEST_TIMEOUT", secs(h.request_timeout));
        m.insert("DEVX_SHUTDOWN_GRACE", secs(h.shutdown_grace));
        m.insert("DEVX_SHUTDOWN_DRAIN", secs(h.shutdown_drain));
        m.insert("DEVX_SESSION_TTL", secs(h.session_ttl));
        m.insert("DEVX_SESSION_IDLE_TIMEOUT", secs(h.session_idle_timeout));
        m.insert("DEVX_LOGIN_MAX_FAILURES", h.login_max_failures.to_string());
        m.insert("DEVX_LOGIN_MAX_FAILURES_PER_ADDRESS", h.login_max_failures_per_address.to_string());
        m.insert("DEVX_REGISTER_MAX_PER_ADDRESS", h.register_max_per_address.to_string());
        m.insert("DEVX_LOGIN_LOCKOUT", secs(h.login_lockout));
        m.insert("DEVX_CORS_ORIGINS", h.cors_origins.join(","));
        m.insert(
            "DEVX_TRUSTED_PROXIES",
            h.trusted_proxies.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
        );
        m.insert("DEVX_HASH_CONCURRENCY", h.hash_concurrency.to_string());
        m.insert(
            "DEVX_WORKER_THREADS",
            if h.worker_threads > 0 {
                h.worker_threads.to_string()
            } else {
                format!("{} (0: by CPUs and where the database is)", self.worker_threads())
            },
        );
        m.insert("DEVX_HASH_QUEUE", h.hash_queue.to_string());
        m.insert("DEVX_LOGIN_WINDOW", secs(h.login_window));
        m.insert(
            "DEVX_METRICS_TOKEN",
            if h.metrics_token.is_some() { "(set, hidden)".into() } else { "(unset: /metrics is open)".into() },
        );
        m.insert("DEVX_METRICS_SAMPLE_INTERVAL", secs(h.metrics_sample_interval));
        m.insert("DEVX_LOG_FORMAT", format!("{:?}", self.log_format).to_lowercase());
        m.insert("DEVX_LOG", self.log_filter.clone());
        m.insert("DEVX_DATA_DIR", self.data_dir.display().to_string());
        m.insert(
            "DEVX_SECRET_KEY",
            match &self.secret_keys {
                Some(keys) => {
                    format!("**** (set; key ids {}, the first seals)", keys.ids().collect::<Vec<_>>().join(", "))
                }
                None => "(unset: deployment secrets cannot be stored)".into(),
            },
        );
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(&|name| map.get(name).cloned())
    }

    #[test]
    fn replica_urls_split_on_spaces_and_commas_but_not_inside_a_url() {
        assert_eq!(
            split_urls("postgres://a/devx, postgres://b,c/devx postgresql://d/devx,postgres://e/devx"),
            ["postgres://a/devx", "postgres://b,c/devx", "postgresql://d/devx", "postgres://e/devx"]
        );
        let c = config(&[
            ("DATABASE_URL", "postgres://devx@primary/devx"),
            ("DATABASE_REPLICA_URLS", "postgres://devx:pw@r1/devx,postgres://devx:pw@r2:6432/devx"),
            ("DB_REPLICA_MAX_LAG", "3s"),
            ("DB_PRIMARY_ROUTES", "GET /api/projects/{id}, get /api/tasks"),
        ])
        .unwrap();
        let r = &c.database.replicas;
        assert_eq!(r.targets.len(), 2);
        assert_eq!(r.targets[1].get_ports(), [6432]);
        assert_eq!(r.max_lag, Duration::from_secs(3));
        assert_eq!(
            r.primary_routes,
            [("GET".to_string(), "/api/projects/{id}".to_string()), ("GET".to_string(), "/api/tasks".to_string())]
        );
        assert!(!c.describe().values().any(|v| v.contains("pw")), "replica passwords are masked");
    }

    #[test]
    fn a_bad_replica_url_or_pinned_route_is_a_problem_that_names_it_without_its_password() {
        let e = config(&[
            ("DATABASE_REPLICA_URLS", "postgres://devx:hunter2@r1/devx mysql://devx:hunter2@r2/devx"),
            ("DB_PRIMARY_ROUTES", "/api/projects"),
            ("DB_REPLICA_MAX_LAG", "0s"),
        ])
        .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("DATABASE_REPLICA_URLS") && text.contains("postgres://"), "{text}");
        assert!(text.contains("DB_PRIMARY_ROUTES") && text.contains("METHOD /path"), "{text}");
        assert!(text.contains("DB_REPLICA_MAX_LAG"), "{text}");
        assert!(!text.contains("hunter2"), "no password in a problem: {text}");
    }

    #[test]
    fn defaults_pick_the_embedded_database_and_spec_pool_settings() {
        let c = config(&[]).unwrap();
        assert_eq!(c.database.source, DbSource::EmbeddedDefault);
        assert_eq!(c.database.pool_max, 20);
        assert_eq!(c.database.idle_timeout, Duration::from_secs(30));
        assert_eq!(c.database.connect_timeout, Duration::from_secs(2));
        assert!(c.migrations.auto_migrate);
        assert_eq!(c.addr.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn worker_threads_leave_half_the_cpus_to_a_database_on_this_machine() {
        assert!(config(&[]).unwrap().database.on_this_machine(), "the embedded default is here");
        for (url, here) in [
            ("postgres://devx@localhost/devx", true),
            ("postgres://devx@127.0.0.1:5433/devx", true),
            ("postgres://devx@[::1]/devx", true),
            ("postgresql:///devx?host=/var/run/postgresql", true),
            ("postgres://devx@db.internal/devx", false),
            ("postgres://devx@localhost,db.internal/devx", false),
        ] {
            assert_eq!(config(&[("DATABASE_URL", url)]).unwrap().database.on_this_machine(), here, "{url}");
        }
        assert_eq!(worker_threads_for(0, 2, true), 1);
        assert_eq!(worker_threads_for(0, 1, true), 1, "never none");
        assert_eq!(worker_threads_for(0, 8, true), 4);
        assert_eq!(worker_threads_for(0, 8, false), 8);
        assert_eq!(worker_threads_for(3, 8, true), 3, "as configured");
        let e = config(&[("DEVX_WORKER_THREADS", "many")]).unwrap_err();
        assert!(e.to_string().contains("DEVX_WORKER_THREADS=4"), "{e}");
        let c = config(&[("DEVX_WORKER_THREADS", "3")]).unwrap();
        assert_eq!((c.http.worker_threads, c.worker_threads()), (3, 3));
    }

    #[test]
    fn every_bad_variable_is_reported_at_once() {
        let err = config(&[
            ("DB_PORT", "abc"),
            ("DB_POOL_MAX", "0"),
            ("DB_IDLE_TIMEOUT", "soon"),
            ("DB_SSL_MODE", "maybe"),
            ("DEVX_AUTO_MIGRATE", "perhaps"),
            ("DEVX_ADDR", "localhost"),
        ])
        .unwrap_err();
        let vars: Vec<&str> = err.problems.iter().map(|p| p.variable.as_str()).collect();
        for v in ["DB_PORT", "DB_POOL_MAX", "DB_IDLE_TIMEOUT", "DB_SSL_MODE", "DEVX_AUTO_MIGRATE", "DEVX_ADDR"] {
            assert!(vars.contains(&v), "{v} missing from {vars:?}");
        }
        let text = err.to_string();
        assert!(text.contains("6 problems"), "{text}");
        assert!(text.contains("example: DB_PORT=5432"), "{text}");
    }

    #[test]
    fn spec_aliases_are_accepted() {
        let c =
            config(&[("POSTGRES_HOST", "db.example"), ("POSTGRES_DB", "platform"), ("POSTGRES_USER", "devx")]).unwrap();
        let DbSource::Explicit(cfg) = &c.database.source else { panic!("expected explicit source") };
        assert_eq!(cfg.get_dbname(), Some("platform"));
        assert_eq!(cfg.get_user(), Some("devx"));
        assert_eq!(c.database.effective_ssl_mode(cfg), SslMode::Prefer);
    }

    #[test]
    fn bare_numbers_are_milliseconds_as_in_the_specs() {
        let c = config(&[("DB_IDLE_TIMEOUT", "30000"), ("DB_SLOW_QUERY_THRESHOLD", "250ms")]).unwrap();
        assert_eq!(c.database.idle_timeout, Duration::from_secs(30));
        assert_eq!(c.database.slow_query_threshold, Duration::from_millis(250));
    }

    #[test]
    fn the_password_never_appears_in_errors_or_descriptions() {
        let secret = "hunter2-very-secret";
        let c = config(&[("DATABASE_URL", &format!("postgres://devx:{secret}@127.0.0.1:5432/devx"))]).unwrap();
        let described = format!("{:?} {:?}", c.describe(), c);
        assert!(!described.contains(secret), "{described}");
        assert!(described.contains("postgres://devx:****@127.0.0.1:5432/devx"), "{described}");

        let err = config(&[("DATABASE_URL", &format!("postgres://devx:{secret}@host:notaport/devx"))]).unwrap_err();
        assert!(!err.to_string().contains(secret), "{err}");
        assert_eq!(err.problems[0].variable, "DATABASE_URL");
    }

    #[test]
    fn the_metrics_token_is_never_shown() {
        let token = "scrape-me-secret-token";
        let c = config(&[("DEVX_METRICS_TOKEN", token)]).unwrap();
        assert_eq!(c.http.metrics_token.as_ref().map(Secret::expose), Some(token));
        let described = format!("{:?} {:?}", c.describe(), c);
        assert!(!described.contains(token), "{described}");
        assert!(config(&[]).unwrap().http.metrics_token.is_none());
    }

    #[test]
    fn loopback_and_sockets_default_to_plain_connections() {
        let c = config(&[("DATABASE_URL", "postgres://postgres@127.0.0.1/devx")]).unwrap();
        let DbSource::Explicit(cfg) = &c.database.source else { panic!() };
        assert_eq!(c.database.effective_ssl_mode(cfg), SslMode::Disable);
        let c = config(&[("DATABASE_URL", "postgres://postgres@127.0.0.1/devx"), ("DB_SSL_MODE", "require")]).unwrap();
        let DbSource::Explicit(cfg) = &c.database.source else { panic!() };
        assert_eq!(c.database.effective_ssl_mode(cfg), SslMode::Require);
    }

    #[test]
    fn statement_mode_defaults_to_prepared_and_names_bad_values() {
        assert_eq!(config(&[]).unwrap().database.statement_mode, StatementMode::Prepared);
        let c = config(&[("DB_STATEMENT_MODE", "Unnamed")]).unwrap();
        assert_eq!(c.database.statement_mode, StatementMode::Unnamed);
        assert_eq!(c.describe()["DB_STATEMENT_MODE"], "unnamed");
        let err = config(&[("DB_STATEMENT_MODE", "session")]).unwrap_err();
        assert_eq!(err.problems[0].variable, "DB_STATEMENT_MODE");
        assert!(err.problems[0].problem.contains("prepared, unnamed"), "{err}");
    }

    #[test]
    fn modes_take_every_spelling_in_any_case_and_show_their_first_name() {
        let ssl = [
            ("disable", SslMode::Disable),
            ("FALSE", SslMode::Disable),
            ("off", SslMode::Disable),
            ("Prefer", SslMode::Prefer),
            ("allow", SslMode::Prefer),
            ("require", SslMode::Require),
            ("true", SslMode::Require),
            ("ON", SslMode::Require),
            ("verify-full", SslMode::VerifyFull),
            ("verify_full", SslMode::VerifyFull),
            ("Verify-CA", SslMode::VerifyFull),
        ];
        for (text, mode) in ssl {
            assert_eq!(SslMode::parse(text), Some(mode), "{text}");
        }
        assert_eq!(SslMode::parse("verify"), None);
        let names: Vec<&str> = SslMode::ALL.iter().map(|m| m.as_str()).collect();
        assert_eq!(names, ["disable", "prefer", "require", "verify-full"]);
        for mode in SslMode::ALL {
            assert_eq!(serde_json::to_value(mode).unwrap(), mode.as_str());
        }
        assert_eq!(StatementMode::parse("PgBouncer"), Some(StatementMode::Unnamed));
        assert_eq!(StatementMode::parse("named"), Some(StatementMode::Prepared));
        let names: Vec<&str> = StatementMode::ALL.iter().map(|m| m.as_str()).collect();
        assert_eq!(names, ["prepared", "unnamed"]);
    }

    #[test]
    fn env_example_is_current() {
        assert_eq!(
            include_str!("../.env.example"),
            env_example(),
            ".env.example is stale: run `cargo run -- config example > .env.example`"
        );
    }

    #[test]
    fn the_secret_key_is_base64_or_hex_and_never_shown() {
        let b64 = "q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k=";
        let from_b64 = config(&[("DEVX_SECRET_KEY", b64)]).unwrap().secret_keys.unwrap();
        let hex = "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789";
        let from_hex = config(&[("DEVX_SECRET_KEY", hex)]).unwrap().secret_keys.unwrap();
        assert_eq!(from_b64, from_hex);
        assert_eq!(from_b64.sealing().0, "default", "a bare key has the id default");
        let c = config(&[("DEVX_SECRET_KEY", b64)]).unwrap();
        let shown = format!("{:?} {:?}", c, c.describe());
        assert!(!shown.contains(b64) && !shown.contains("q83v"), "{shown}");
        assert!(config(&[]).unwrap().secret_keys.is_none());

        let err = config(&[("DEVX_SECRET_KEY", "dG9vIHNob3J0")]).unwrap_err();
        assert_eq!(err.problems[0].variable, "DEVX_SECRET_KEY");
        assert!(err.to_string().contains("must be exactly 32"), "{err}");
        assert!(!err.to_string().contains("dG9vIHNob3J0"), "{err}");
    }

    #[test]
    fn the_secret_key_may_list_keys_with_ids_and_the_first_seals() {
        let a = "q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k=";
        let b = "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456788";
        let c = config(&[("DEVX_SECRET_KEY", &format!("new:{b}, old:{a}"))]).unwrap();
        let keys = c.secret_keys.as_ref().unwrap();
        assert_eq!(keys.ids().collect::<Vec<_>>(), ["new", "old"]);
        assert_eq!(keys.sealing().0, "new");
        assert_eq!(keys.get("old"), Some(&SecretKey::parse(a).unwrap()));
        assert!(keys.get("default").is_none());
        let shown = format!("{:?} {:?}", c, c.describe());
        assert!(!shown.contains(a) && !shown.contains(b) && shown.contains("new, old"), "{shown}");

        for (raw, says) in [
            (format!("new:{b},{a}"), "key 2 of the list has no id"),
            (format!("new:{b},new:{a}"), "listed twice"),
            (format!("bad id:{b}"), "letters, digits"),
            (format!("new:{b},old:dG9vIHNob3J0"), "\"old\" decodes to 9 bytes"),
        ] {
            let err = config(&[("DEVX_SECRET_KEY", &raw)]).unwrap_err();
            assert!(err.to_string().contains(says), "{raw}: {err}");
            assert!(!err.to_string().contains(b), "{err}");
        }
    }

    #[test]
    fn names_close_to_devx_variables_are_warned_about_with_a_suggestion() {
        let names: Vec<String> = [
            "DB_PASWORD",
            "DEVX_ADRR",
            "DEVX_FROBNICATE",
            "DB_ROOT_PASSWORD",
            "DATABASE_URL",
            "DEVX_TEST_PG_URL",
            "PATH",
        ]
        .map(String::from)
        .to_vec();
        let warnings = unknown_variables(&names);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].contains("DB_PASWORD") && warnings[0].ends_with("did you mean DB_PASSWORD?"));
        assert!(warnings[1].contains("DEVX_ADRR") && warnings[1].ends_with("did you mean DEVX_ADDR?"));
        assert!(warnings[2].contains("DEVX_FROBNICATE is not a devx variable"), "{warnings:?}");
    }

    #[test]
    fn every_name_devx_reads_is_known_to_the_misspelling_check() {
        let source = include_str!("config.rs");
        let code = &source[..source.find("#[cfg(test)]").unwrap()];
        let known: Vec<&str> = VARIABLES
            .iter()
            .map(|(n, _, _)| *n)
            .chain(ALIASES.iter().copied())
            .chain(IGNORED.iter().map(|(n, _)| *n))
            .collect();
        for literal in code.split('"').skip(1).step_by(2) {
            let looks_like_ours = ["DEVX_", "DB_", "DATABASE_", "POSTGRES_"].iter().any(|p| literal.starts_with(p))
                && literal.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if looks_like_ours && !literal.ends_with('_') && !NOT_SETTINGS.contains(&literal) {
                assert!(known.contains(&literal), "{literal} is read but missing from VARIABLES, ALIASES or IGNORED");
            }
        }
    }

    #[test]
    fn url_parameters_the_ssl_alias_and_unknown_names() {
        let url = "postgres://u@db.internal/devx?ssl=true&application_name=spec&sslmode=require";
        let c = config(&[("DATABASE_URL", url)]).unwrap();
        assert_eq!(c.database.ssl_mode, Some(SslMode::Require));
        let DbSource::Explicit(target) = &c.database.source else { panic!("a URL") };
        assert_eq!(target.get_application_name(), Some("spec"), "the parameters tokio-postgres reads are kept");
        let e = config(&[("DATABASE_URL", "postgres://u:hunter2@db.internal/devx?foo=1&ssl=true")]).unwrap_err();
        assert!(e.to_string().contains("does not know: foo") && !e.to_string().contains("hunter2"), "{e}");
        let verify = config(&[("DATABASE_URL", "postgres://u@db.internal/devx?sslmode=verify-full")]).unwrap();
        assert_eq!(verify.database.ssl_mode, Some(SslMode::VerifyFull));
        let both = config(&[
            ("DATABASE_URL", "postgres://u@db.internal/devx?sslmode=require"),
            ("DB_SSL_MODE", "verify-full"),
        ])
        .unwrap();
        assert_eq!(both.database.ssl_mode, Some(SslMode::VerifyFull));
        assert!(both.warnings.iter().any(|w| w.contains("verify-full wins")), "{:?}", both.warnings);
        let key_value = config(&[("DATABASE_URL", "host=db.internal dbname=devx sslmode=disable")]).unwrap();
        assert_eq!(key_value.database.ssl_mode, Some(SslMode::Disable));
    }

    #[test]
    fn database_url_with_db_parts_says_which_wins() {
        let c = config(&[
            ("DATABASE_URL", "postgres://devx@db.internal/devx"),
            ("DB_HOST", "other"),
            ("DB_PASSWORD", "pw"),
        ])
        .unwrap();
        assert_eq!(
            c.warnings,
            ["DATABASE_URL and DB_HOST, DB_PASSWORD are both set: DATABASE_URL wins; DB_HOST is ignored; \
              DB_PASSWORD is used only when the URL has no password"]
        );
        let DbSource::Explicit(cfg) = &c.database.source else { panic!() };
        assert_eq!(cfg.get_hosts(), [tokio_postgres::config::Host::Tcp("db.internal".into())]);
        assert!(config(&[("DATABASE_URL", "postgres://devx@db.internal/devx")]).unwrap().warnings.is_empty());
    }

    #[test]
    fn the_metrics_sample_interval_defaults_to_10s_within_100ms_and_1h() {
        assert_eq!(config(&[]).unwrap().http.metrics_sample_interval, Duration::from_secs(10));
        let fast = config(&[("DEVX_METRICS_SAMPLE_INTERVAL", "250ms")]).unwrap();
        assert_eq!(fast.http.metrics_sample_interval, Duration::from_millis(250));
        for bad in ["50ms", "2h", "0", "often"] {
            let e = config(&[("DEVX_METRICS_SAMPLE_INTERVAL", bad)]).unwrap_err();
            assert_eq!(e.problems[0].variable, "DEVX_METRICS_SAMPLE_INTERVAL", "{bad}");
        }
    }

    #[test]
    fn the_start_wait_defaults_to_30s_and_0_means_fail_at_once() {
        assert_eq!(config(&[]).unwrap().database.start_wait, Duration::from_secs(30));
        assert_eq!(config(&[("DEVX_DB_WAIT", "0")]).unwrap().database.start_wait, Duration::ZERO);
        assert_eq!(config(&[("DEVX_DB_WAIT", "soon")]).unwrap_err().problems[0].variable, "DEVX_DB_WAIT");
    }

    #[test]
    fn no_color_counts_only_when_set_and_not_empty() {
        assert!(!config(&[]).unwrap().no_color);
        assert!(!config(&[("NO_COLOR", "")]).unwrap().no_color);
        assert!(config(&[("NO_COLOR", "1")]).unwrap().no_color);
    }

    #[test]
    fn pool_min_above_max_is_refused() {
        let err = config(&[("DB_POOL_MIN", "30"), ("DB_POOL_MAX", "10")]).unwrap_err();
        assert_eq!(err.problems[0].variable, "DB_POOL_MIN");
    }

    #[test]
    fn shared_read_connections_default_to_one_and_take_zero_to_turn_off() {
        let c = config(&[]).unwrap();
        assert_eq!((c.database.pipeline_connections, c.database.pipeline_timeout), (1, Duration::from_secs(1)));
        let c = config(&[("DB_PIPELINE_CONNECTIONS", "0"), ("DB_PIPELINE_TIMEOUT", "250ms")]).unwrap();
        assert_eq!((c.database.pipeline_connections, c.database.pipeline_timeout), (0, Duration::from_millis(250)));
        for (name, bad) in
            [("DB_PIPELINE_CONNECTIONS", "17"), ("DB_PIPELINE_TIMEOUT", "0"), ("DB_PIPELINE_TIMEOUT", "soon")]
        {
            let err = config(&[(name, bad)]).unwrap_err();
            assert_eq!(err.problems[0].variable, name, "{bad}");
        }
    }
}
