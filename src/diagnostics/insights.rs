//! Database insights, the checks PgHero makes, for `devx db insights` and
//! `GET /api/admin/insights`: slow and frequent statements
//! (`pg_stat_statements`), unused and duplicate indexes, tables read by
//! sequential scans, estimated bloat, long-running and blocked statements,
//! connections by state, cache hit ratios and sequences near their limit.
//!
//! Everything is read from PostgreSQL's statistics views, scoped to the
//! current database (and to the `devx` and `templates` schemas where a check
//! is about tables). Each problem becomes an [`Insight`] with a severity and
//! a sentence saying what to do. `warning` means "act on this"; `info` is
//! worth knowing but often expected (an index nobody has used yet on a young
//! database). The CLI exits 3 when any insight is a warning.
//!
//! The one change this module may make: when the `pg_stat_statements`
//! library is loaded but the extension is missing from the database, it runs
//! `CREATE EXTENSION pg_stat_statements` (if the user may), since the
//! statistics are otherwise unreadable.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::error::SqlState;

use super::introspect::human_bytes;
use crate::db::{DbError, FromRow, Queryable};

/// The schemas whose tables and indexes devx owns.
const SCHEMAS: &str = "('devx', 'templates')";
/// Statement texts are cut to this many characters in a report.
const QUERY_TEXT_MAX: i32 = 1000;

crate::text_enum! {
    #[derive(PartialOrd, Ord)]
    pub enum Severity {
        Info,
        Warning,
    }
}

/// One thing the checks found, and what to do about it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Insight {
    /// `slow-query`, `frequent-query`, `pg-stat-statements-unavailable`,
    /// `unused-index`, `duplicate-index`, `seq-scans`, `table-bloat`,
    /// `long-running-query`, `idle-in-transaction`, `blocked-query`,
    /// `connections-near-limit`, `low-cache-hit`, `sequence-near-limit`.
    pub kind: &'static str,
    pub severity: Severity,
    /// What it is about: a schema-qualified table, index or sequence, a
    /// statement (`queryid ...`), a backend (`pid ...`) or the database.
    pub object: String,
    pub detail: String,
    /// What to do, as one concrete sentence.
    pub advice: String,
}

/// The limits the checks use. [`Thresholds::new`] gives PgHero's defaults.
#[derive(Debug, Clone)]
pub struct Thresholds {
    /// Statements running (and transactions idle) longer than this are reported.
    pub long_query: Duration,
    /// A statement is slow when its mean time is at least this...
    pub slow_query_mean_ms: f64,
    /// ...over at least this many calls.
    pub slow_query_min_calls: i64,
    /// A statement is reported as frequent when it takes at least this share
    /// of the database's statement time...
    pub frequent_query_share: f64,
    /// ...over at least this many calls.
    pub frequent_query_min_calls: i64,
    /// Tables smaller than this are cheap to scan whatever happens.
    pub seq_scan_min_rows: i64,
    pub seq_scan_min_scans: i64,
    /// Reported when less than this share of a table's scans use an index.
    pub seq_scan_max_index_share: f64,
    /// Dead tuples as a share of all tuples for a table to count as bloated...
    pub bloat_dead_share: f64,
    /// ...with at least this many dead tuples.
    pub bloat_min_dead: i64,
    /// Cache hit ratios below this are reported...
    pub cache_hit_min: f64,
    /// ...once at least this many blocks were read (a young database reads
    /// everything from disk once).
    pub cache_min_blocks: i64,
    /// Sequences past this share of their range are reported.
    pub sequence_used_share: f64,
    /// Server connections past this share of the usable maximum are reported.
    pub connections_share: f64,
    /// Rows in each list of statements.
    pub top: i64,
}

impl Thresholds {
    pub fn new(long_query: Duration) -> Self {
        Thresholds {
            long_query,
            slow_query_mean_ms: 20.0,
            slow_query_min_calls: 100,
            frequent_query_share: 0.25,
            frequent_query_min_calls: 10_000,
            seq_scan_min_rows: 10_000,
            seq_scan_min_scans: 10,
            seq_scan_max_index_share: 0.95,
            bloat_dead_share: 0.2,
            bloat_min_dead: 1_000,
            cache_hit_min: 0.99,
            cache_min_blocks: 10_000,
            sequence_used_share: 0.75,
            connections_share: 0.8,
            top: 10,
        }
    }
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds::new(Duration::from_secs(60))
    }
}

/// Whether statement statistics could be read, and if not, how to get them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StatementsStatus {
    /// `enabled`, `created` (the extension was created in this database just
    /// now), `not-loaded` (the library is not in `shared_preload_libraries`),
    /// `not-installed` (loaded, but `CREATE EXTENSION` was not possible) or
    /// `unknown` (the user may not read `shared_preload_libraries`).
    pub state: &'static str,
    pub available: bool,
    /// The extension's version, when installed.
    pub version: Option<String>,
    pub detail: String,
}

/// One normalized statement from `pg_stat_statements`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, FromRow)]
pub struct QueryStat {
    pub queryid: Option<i64>,
    /// As `pg_stat_statements` normalized it (constants replaced by `$n`),
    /// cut to 1000 characters.
    pub query: String,
    pub calls: i64,
    pub total_ms: f64,
    pub mean_ms: f64,
    pub rows: i64,
    /// This statement's share of all statement time in the database, 0..1.
    pub share: f64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, FromRow)]
pub struct StateCount {
    /// `active`, `idle`, `idle in transaction`, ... (`unknown` when the
    /// user may not see it).
    pub state: String,
    pub count: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Connections {
    /// Client connections to this database, by state.
    pub by_state: Vec<StateCount>,
    /// Client connections to the whole server.
    pub server_total: i64,
    /// `max_connections` less `superuser_reserved_connections`.
    pub server_max: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CacheHit {
    /// Share of table block reads served from shared buffers, 0..1 (null
    /// when nothing was read yet).
    pub heap: Option<f64>,
    pub index: Option<f64>,
    pub heap_blocks: i64,
    pub index_blocks: i64,
    /// The server's `shared_buffers`, as it shows it.
    pub shared_buffers: String,
}

/// A backend running a statement (or idle in a transaction) for long.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, FromRow)]
pub struct ActiveQuery {
    pub pid: i32,
    pub user: Option<String>,
    pub application: Option<String>,
    pub state: String,
    /// How long the statement has run (or, idle in a transaction, how long
    /// it has been idle).
    pub seconds: f64,
    pub query: String,
}

/// A backend waiting for a lock that other backends hold.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, FromRow)]
pub struct BlockedQuery {
    pub pid: i32,
    /// The backends it waits for (`pg_blocking_pids`).
    pub blocked_by: Vec<i32>,
    pub user: Option<String>,
    pub application: Option<String>,
    /// How long its statement has been running (mostly waiting).
    pub seconds: f64,
    pub wait_event: Option<String>,
    pub query: String,
    /// What the first blocker is doing: its state and statement.
    pub blocker_state: Option<String>,
    pub blocker_query: Option<String>,
}

/// Everything the checks saw, and what they found.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Report {
    pub database: String,
    pub server_version: String,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    pub generated_at: DateTime<Utc>,
    /// When this database's statistics were last reset (null: never, so they
    /// go back to its creation or the last crash).
    #[serde(serialize_with = "crate::timestamp::optional")]
    pub stats_reset: Option<DateTime<Utc>>,
    pub long_query_seconds: f64,
    pub statements: StatementsStatus,
    /// Highest mean time first.
    pub slow_queries: Vec<QueryStat>,
    /// Most calls first.
    pub frequent_queries: Vec<QueryStat>,
    pub long_running: Vec<ActiveQuery>,
    pub blocked: Vec<BlockedQuery>,
    pub connections: Connections,
    pub cache_hit: CacheHit,
    /// Warnings first.
    pub findings: Vec<Insight>,
}

impl Report {
    pub fn warnings(&self) -> usize {
        self.findings.iter().filter(|f| f.severity == Severity::Warning).count()
    }

    /// The report as a person reads it, section by section.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let since = match self.stats_reset {
            Some(t) => format!("statistics since {}", t.format("%Y-%m-%d %H:%M UTC")),
            None => "statistics never reset".to_string(),
        };
        let _ = writeln!(
            out,
            "Database insights: {} (PostgreSQL {}), {}, {since}",
            self.database,
            self.server_version,
            self.generated_at.format("%Y-%m-%d %H:%M:%S UTC")
        );

        let _ = writeln!(out, "\n== Queries (pg_stat_statements)");
        if self.statements.available {
            let _ = writeln!(out, "{}", self.statements.detail);
            let _ = writeln!(out, "slowest by mean time:");
            write_queries(&mut out, &self.slow_queries);
            let _ = writeln!(out, "most frequent:");
            write_queries(&mut out, &self.frequent_queries);
        } else {
            let _ = writeln!(out, "not available ({}): {}", self.statements.state, self.statements.detail);
        }

        let _ = writeln!(out, "\n== Long-running queries (over {})", seconds_text(self.long_query_seconds));
        if self.long_running.is_empty() {
            let _ = writeln!(out, "none");
        }
        for q in &self.long_running {
            let _ = writeln!(
                out,
                "pid {:<8} {:<22} {:>9}  {}",
                q.pid,
                q.state,
                seconds_text(q.seconds),
                one_line(&q.query, 90)
            );
        }

        let _ = writeln!(out, "\n== Blocked queries");
        if self.blocked.is_empty() {
            let _ = writeln!(out, "none");
        }
        for b in &self.blocked {
            let blockers: Vec<String> = b.blocked_by.iter().map(i32::to_string).collect();
            let _ = writeln!(
                out,
                "pid {} waits {} for pid {}: {}",
                b.pid,
                seconds_text(b.seconds),
                blockers.join(", "),
                one_line(&b.query, 80)
            );
            if let (Some(state), Some(query)) = (&b.blocker_state, &b.blocker_query) {
                let _ = writeln!(out, "    blocker is {state}: {}", one_line(query, 80));
            }
        }

        let _ = writeln!(out, "\n== Connections by state");
        let states: Vec<String> =
            self.connections.by_state.iter().map(|s| format!("{} {}", s.state, s.count)).collect();
        let _ = writeln!(
            out,
            "{} (server: {} of {} usable)",
            if states.is_empty() { "none".to_string() } else { states.join(", ") },
            self.connections.server_total,
            self.connections.server_max
        );

        let _ = writeln!(out, "\n== Cache hit ratio");
        let ratio = |r: Option<f64>, blocks: i64| match r {
            Some(r) => format!("{:.2}% of {blocks} block reads", r * 100.0),
            None => "no reads yet".to_string(),
        };
        let _ = writeln!(
            out,
            "tables  {}\nindexes {}\n(shared_buffers = {})",
            ratio(self.cache_hit.heap, self.cache_hit.heap_blocks),
            ratio(self.cache_hit.index, self.cache_hit.index_blocks),
            self.cache_hit.shared_buffers
        );

        let warnings = self.warnings();
        let _ = writeln!(
            out,
            "\n== Findings ({} warning{}, {} info)",
            warnings,
            if warnings == 1 { "" } else { "s" },
            self.findings.len() - warnings
        );
        if self.findings.is_empty() {
            let _ = writeln!(out, "nothing to report");
        }
        for f in &self.findings {
            let _ = writeln!(out, "[{}] {} {}", f.severity.as_str(), f.kind, f.object);
            let _ = writeln!(out, "    {}", f.detail);
            let _ = writeln!(out, "    what to do: {}", f.advice);
        }
        out
    }
}

fn write_queries(out: &mut String, queries: &[QueryStat]) {
    if queries.is_empty() {
        let _ = writeln!(out, "  none recorded yet");
    }
    for q in queries {
        let _ = writeln!(
            out,
            "  {:>10.2} ms mean {:>10} calls {:>5.1}% of time  {}",
            q.mean_ms,
            q.calls,
            q.share * 100.0,
            one_line(&q.query, 70)
        );
    }
}

fn seconds_text(s: f64) -> String {
    if s >= 120.0 { format!("{:.0} min", s / 60.0) } else { format!("{s:.1} s") }
}

/// Whitespace collapsed and cut to `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        let cut: String = flat.chars().take(max.saturating_sub(3)).collect();
        format!("{cut}...")
    }
}

/// Warnings first; within a severity, by kind and object (stable output).
fn sort_findings(findings: &mut [Insight]) {
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.kind.cmp(b.kind)).then_with(|| a.object.cmp(&b.object)));
}

fn sqlstate(e: &DbError) -> Option<&SqlState> {
    match e {
        DbError::Other(e) => e.code(),
        _ => None,
    }
}

/// What a [`Report`] says about the database before the checks.
#[derive(FromRow)]
struct ReportHeader {
    database: String,
    server_version: String,
    generated_at: DateTime<Utc>,
    stats_reset: Option<DateTime<Utc>>,
}

/// Runs every check against the database `db` is connected to.
pub async fn report(db: &impl Queryable, limits: &Thresholds) -> Result<Report, DbError> {
    let header: ReportHeader = db
        .query_one_as(
            "SELECT current_database() AS database, current_setting('server_version') AS server_version,
                    now() AS generated_at,
                    (SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()) AS stats_reset",
            &[],
        )
        .await?;
    let mut report = Report {
        database: header.database,
        server_version: header.server_version,
        generated_at: header.generated_at,
        stats_reset: header.stats_reset,
        long_query_seconds: limits.long_query.as_secs_f64(),
        statements: StatementsStatus { state: "unknown", available: false, version: None, detail: String::new() },
        slow_queries: Vec::new(),
        frequent_queries: Vec::new(),
        long_running: Vec::new(),
        blocked: Vec::new(),
        connections: Connections { by_state: Vec::new(), server_total: 0, server_max: 0 },
        cache_hit: CacheHit { heap: None, index: None, heap_blocks: 0, index_blocks: 0, shared_buffers: String::new() },
        findings: Vec::new(),
    };
    let mut findings = Vec::new();

    statements(db, limits, &mut report, &mut findings).await?;
    unused_indexes(db, &mut findings).await?;
    duplicate_indexes(db, &mut findings).await?;
    seq_scans(db, limits, &mut findings).await?;
    bloat(db, limits, &mut findings).await?;
    long_running(db, limits, &mut report, &mut findings).await?;
    blocked(db, &mut report, &mut findings).await?;
    connections(db, limits, &mut report, &mut findings).await?;
    cache_hit(db, limits, &mut report, &mut findings).await?;
    sequences(db, limits, &mut findings).await?;

    sort_findings(&mut findings);
    report.findings = findings;
    Ok(report)
}

const ENABLE_HOWTO: &str = "add `shared_preload_libraries = 'pg_stat_statements'` to postgresql.conf, restart \
     PostgreSQL, then run `CREATE EXTENSION pg_stat_statements` in this database as a superuser \
     (devx's embedded private server preloads it already)";

/// Where the `pg_stat_statements` extension is installed, and its version.
#[derive(FromRow)]
struct Extension {
    schema: String,
    version: String,
}

async fn statements(
    db: &impl Queryable,
    limits: &Thresholds,
    report: &mut Report,
    findings: &mut Vec<Insight>,
) -> Result<(), DbError> {
    let installed: Option<Extension> = db
        .query_opt_as(
            "SELECT n.nspname AS schema, e.extversion AS version
               FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
              WHERE e.extname = 'pg_stat_statements'",
            &[],
        )
        .await?;
    // Only superusers and pg_read_all_settings see this setting (no row otherwise).
    let preload: Option<String> =
        db.query_scalar_opt("SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries'", &[]).await?;
    let loaded = preload.map(|p| p.split(',').any(|l| l.trim().trim_matches('"') == "pg_stat_statements"));

    let mut created = false;
    let installed = match (installed, loaded) {
        (Some(ext), _) => Some((ext.schema, ext.version)),
        (None, Some(false)) => {
            report.statements = StatementsStatus {
                state: "not-loaded",
                available: false,
                version: None,
                detail: format!("the pg_stat_statements library is not loaded: {ENABLE_HOWTO}"),
            };
            None
        }
        (None, None) => {
            report.statements = StatementsStatus {
                state: "unknown",
                available: false,
                version: None,
                detail: format!(
                    "the pg_stat_statements extension is not installed in this database, and this user may not \
                     see whether its library is loaded: ask a superuser to check; to enable it, {ENABLE_HOWTO}"
                ),
            };
            None
        }
        (None, Some(true)) => match db.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", &[]).await {
            Ok(_) => {
                created = true;
                let ext: Extension = db
                    .query_one_as(
                        "SELECT n.nspname AS schema, e.extversion AS version FROM pg_extension e
                           JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'",
                        &[],
                    )
                    .await?;
                Some((ext.schema, ext.version))
            }
            Err(e) => {
                let why = if sqlstate(&e) == Some(&SqlState::INSUFFICIENT_PRIVILEGE) {
                    "this user may not create it".to_string()
                } else {
                    format!("creating it failed: {e}")
                };
                report.statements = StatementsStatus {
                    state: "not-installed",
                    available: false,
                    version: None,
                    detail: format!(
                        "the pg_stat_statements library is loaded but the extension is not installed in this \
                         database ({why}): ask a superuser to run `CREATE EXTENSION pg_stat_statements` in it"
                    ),
                };
                None
            }
        },
    };

    if let Some((schema, version)) = installed {
        match query_statements(db, &schema, &version, limits).await {
            Ok((slow, frequent)) => {
                report.statements = StatementsStatus {
                    state: if created { "created" } else { "enabled" },
                    available: true,
                    version: Some(version),
                    detail: if created {
                        "pg_stat_statements was loaded but not installed here: created the extension".into()
                    } else {
                        "statement statistics from pg_stat_statements".into()
                    },
                };
                report.slow_queries = slow;
                report.frequent_queries = frequent;
            }
            Err(e) if sqlstate(&e) == Some(&SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE) => {
                report.statements = StatementsStatus {
                    state: "not-loaded",
                    available: false,
                    version: Some(version),
                    detail: "the extension is installed but its library is not loaded: add \
                         `shared_preload_libraries = 'pg_stat_statements'` to postgresql.conf and restart PostgreSQL"
                        .into(),
                };
            }
            Err(e) => return Err(e),
        }
    }

    if !report.statements.available {
        let advice = match (report.statements.state, &report.statements.version) {
            ("not-installed", _) => {
                "ask a superuser to run `CREATE EXTENSION pg_stat_statements` in this database.".to_string()
            }
            ("not-loaded", Some(_)) => "add `shared_preload_libraries = 'pg_stat_statements'` to postgresql.conf and \
                                       restart PostgreSQL."
                .to_string(),
            _ => format!("enable pg_stat_statements: {ENABLE_HOWTO}."),
        };
        findings.push(Insight {
            kind: "pg-stat-statements-unavailable",
            severity: Severity::Info,
            object: report.database.clone(),
            detail: format!(
                "slow and frequent queries cannot be shown: pg_stat_statements is {}",
                match report.statements.state {
                    "not-loaded" => "not in shared_preload_libraries",
                    "not-installed" => "loaded but not installed in this database",
                    _ => "not installed in this database (whether its library is loaded is hidden from this user)",
                }
            ),
            advice,
        });
        return Ok(());
    }
    for q in report
        .slow_queries
        .iter()
        .filter(|q| q.mean_ms >= limits.slow_query_mean_ms && q.calls >= limits.slow_query_min_calls)
    {
        findings.push(Insight {
            kind: "slow-query",
            severity: Severity::Warning,
            object: query_object(q),
            detail: format!(
                "{:.1} ms on average over {} calls ({:.1}% of all statement time): {}",
                q.mean_ms,
                q.calls,
                q.share * 100.0,
                one_line(&q.query, 200)
            ),
            advice: "run EXPLAIN (ANALYZE, BUFFERS) on it with real parameters and add the index its filter or \
                     sort needs (CREATE INDEX CONCURRENTLY in a migration), or narrow what it reads."
                .into(),
        });
    }
    for q in report
        .frequent_queries
        .iter()
        .filter(|q| q.calls >= limits.frequent_query_min_calls && q.share >= limits.frequent_query_share)
    {
        findings.push(Insight {
            kind: "frequent-query",
            severity: Severity::Info,
            object: query_object(q),
            detail: format!(
                "{} calls take {:.1}% of all statement time ({:.2} ms each): {}",
                q.calls,
                q.share * 100.0,
                q.mean_ms,
                one_line(&q.query, 200)
            ),
            advice: "it dominates the database's work: cache its result in the caller, batch the calls (one \
                     statement for many ids), or make each call cheaper with an index."
                .into(),
        });
    }
    Ok(())
}

fn query_object(q: &QueryStat) -> String {
    match q.queryid {
        Some(id) => format!("queryid {id}"),
        None => format!("query {}", one_line(&q.query, 40)),
    }
}

async fn query_statements(
    db: &impl Queryable,
    schema: &str,
    version: &str,
    limits: &Thresholds,
) -> Result<(Vec<QueryStat>, Vec<QueryStat>), DbError> {
    // 1.8 (PostgreSQL 13) renamed total_time and mean_time.
    let (total, mean) = match version.split_once('.').map(|(a, b)| (a.parse::<u32>(), b.parse::<u32>())) {
        Some((Ok(major), Ok(minor))) if (major, minor) < (1, 8) => ("total_time", "mean_time"),
        _ => ("total_exec_time", "mean_exec_time"),
    };
    let view = super::introspect::quote_qualified(schema, "pg_stat_statements");
    // The window sum runs before LIMIT, so `share` is against every statement.
    let select = |order: &str| {
        format!(
            "SELECT queryid, left(query, {QUERY_TEXT_MAX}) AS query, calls, {total} AS total_ms, {mean} AS mean_ms,
                    rows, coalesce({total} / nullif(sum({total}) OVER (), 0), 0) AS share
               FROM {view}
              WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
              ORDER BY {order} DESC
              LIMIT $1"
        )
    };
    let slow = db.query_as(&select(mean), &[&limits.top]).await?;
    let frequent = db.query_as(&select("calls"), &[&limits.top]).await?;
    Ok((slow, frequent))
}

/// Below this an unused index costs writes too little to be worth a
/// migration, and on a young database nearly every index is still unscanned:
/// reporting them all would bury the findings that matter.
const UNUSED_INDEX_MIN_BYTES: i64 = 1024 * 1024;

/// Indexes of at least [`UNUSED_INDEX_MIN_BYTES`] never scanned since the
/// statistics began that enforce nothing: not unique, not a primary key, not
/// behind a constraint, and not the index a foreign key needs (deleting a
/// parent row would scan the table without it).
#[derive(FromRow)]
struct UnusedIndex {
    index: String,
    table: String,
    bytes: i64,
    definition: String,
}

async fn unused_indexes(db: &impl Queryable, findings: &mut Vec<Insight>) -> Result<(), DbError> {
    let rows: Vec<UnusedIndex> = db
        .query_as(
            &format!(
                // A partitioned table's index is one index: its partitions'
                // copies are summed into it (and cannot be dropped alone).
                "SELECT format('%I.%I', n.nspname, ci.relname) AS index,
                        format('%I.%I', n.nspname, ct.relname) AS \"table\",
                        sum(pg_relation_size(s.indexrelid))::int8 AS bytes, pg_get_indexdef(ci.oid) AS definition
                   FROM pg_stat_user_indexes s
                   JOIN pg_class ci ON ci.oid = coalesce(pg_partition_root(s.indexrelid), s.indexrelid)
                   JOIN pg_namespace n ON n.oid = ci.relnamespace
                   JOIN pg_index i ON i.indexrelid = ci.oid
                   JOIN pg_class ct ON ct.oid = i.indrelid
                  WHERE s.schemaname IN {SCHEMAS}
                    AND NOT i.indisunique AND NOT i.indisprimary
                    AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
                    AND NOT EXISTS (
                        SELECT 1 FROM pg_constraint c
                         WHERE c.contype = 'f' AND c.conrelid = i.indrelid
                           AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] @> c.conkey
                           AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] <@ c.conkey)
                  GROUP BY n.nspname, ci.oid, ci.relname, ct.relname
                 HAVING sum(s.idx_scan) = 0 AND sum(pg_relation_size(s.indexrelid))::int8 >= $1
                  ORDER BY bytes DESC, 1"
            ),
            &[&UNUSED_INDEX_MIN_BYTES],
        )
        .await?;
    for UnusedIndex { index, table, bytes, definition } in rows {
        findings.push(Insight {
            kind: "unused-index",
            // Small unused indexes cost little; large ones slow every write.
            severity: if bytes >= 10 * 1024 * 1024 { Severity::Warning } else { Severity::Info },
            object: index.clone(),
            detail: format!(
                "on {table}, {}, never scanned since the statistics began: {definition}",
                human_bytes(bytes),
            ),
            advice: format!(
                "if the statistics cover a representative period (and read replicas do not use it either), \
                 drop it in a migration with `DROP INDEX CONCURRENTLY {index};` to make writes cheaper."
            ),
        });
    }
    Ok(())
}

/// Indexes another index on the same table makes redundant: the same key
/// columns (and operator classes, predicate and expressions), or, for
/// b-trees, a leading prefix of the other's keys. Indexes behind a
/// constraint are never the redundant one; of two identical plain indexes
/// the newer is.
#[derive(FromRow)]
struct DuplicateIndex {
    index: String,
    covering: String,
    table: String,
    bytes: i64,
    definition: String,
    covering_definition: String,
}

async fn duplicate_indexes(db: &impl Queryable, findings: &mut Vec<Insight>) -> Result<(), DbError> {
    let rows: Vec<DuplicateIndex> = db
        .query_as(
            &format!(
                "SELECT format('%I.%I', n.nspname, ca.relname) AS index,
                        format('%I.%I', n.nspname, cb.relname) AS covering,
                        format('%I.%I', n.nspname, t.relname) AS \"table\", pg_relation_size(a.indexrelid) AS bytes,
                        pg_get_indexdef(a.indexrelid) AS definition,
                        pg_get_indexdef(b.indexrelid) AS covering_definition
                   FROM pg_index a
                   JOIN pg_index b ON b.indrelid = a.indrelid AND b.indexrelid <> a.indexrelid
                   JOIN pg_class ca ON ca.oid = a.indexrelid
                   JOIN pg_class cb ON cb.oid = b.indexrelid
                   JOIN pg_class t ON t.oid = a.indrelid
                   JOIN pg_namespace n ON n.oid = t.relnamespace
                   JOIN pg_am am ON am.oid = ca.relam
                  WHERE n.nspname IN {SCHEMAS} AND NOT t.relispartition
                    AND ca.relam = cb.relam AND a.indisvalid AND b.indisvalid
                    AND NOT a.indisprimary
                    AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = a.indexrelid)
                    AND a.indnatts = a.indnkeyatts
                    AND pg_get_expr(a.indpred, a.indrelid) IS NOT DISTINCT FROM pg_get_expr(b.indpred, b.indrelid)
                    AND pg_get_expr(a.indexprs, a.indrelid) IS NOT DISTINCT FROM pg_get_expr(b.indexprs, b.indrelid)
                    AND (
                        (   (a.indkey::int2[])[0:a.indnkeyatts - 1] = (b.indkey::int2[])[0:b.indnkeyatts - 1]
                        AND (a.indclass::oid[])[0:a.indnkeyatts - 1] = (b.indclass::oid[])[0:b.indnkeyatts - 1]
                        AND (   (NOT a.indisunique AND b.indisunique)
                             OR (a.indisunique = b.indisunique
                                 AND (b.indisprimary
                                      OR EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = b.indexrelid)
                                      OR a.indexrelid > b.indexrelid))))
                     OR (   am.amname = 'btree' AND NOT a.indisunique AND a.indnkeyatts < b.indnkeyatts
                        AND (a.indkey::int2[])[0:a.indnkeyatts - 1] = (b.indkey::int2[])[0:a.indnkeyatts - 1]
                        AND (a.indclass::oid[])[0:a.indnkeyatts - 1] = (b.indclass::oid[])[0:a.indnkeyatts - 1]))
                  ORDER BY 1, 2"
            ),
            &[],
        )
        .await?;
    let mut seen = std::collections::HashSet::new();
    for DuplicateIndex { index, covering, table, bytes, definition, covering_definition } in rows {
        // An index covered by several others is reported once, against the first.
        if !seen.insert(index.clone()) {
            continue;
        }
        findings.push(Insight {
            kind: "duplicate-index",
            severity: Severity::Warning,
            object: index.clone(),
            detail: format!(
                "on {table}, {}, is covered by {covering}: `{definition}` is redundant with `{covering_definition}`",
                human_bytes(bytes),
            ),
            advice: format!(
                "drop it in a migration with `DROP INDEX CONCURRENTLY {index};`: {covering} serves the same \
                 lookups, and every write pays for both."
            ),
        });
    }
    Ok(())
}

/// Tables with enough rows to matter that are mostly read by sequential scans.
/// `pg_stat_user_tables` with a partitioned table's partitions summed into
/// it, so that a table is one finding, not one per month. `vacuumed` is its
/// least recently vacuumed part.
const BY_TABLE: &str = "SELECT format('%I.%I', n.nspname, c.relname) AS \"table\",
        sum(s.seq_scan)::int8 AS seq_scan, sum(s.seq_tup_read)::int8 AS seq_tup_read,
        sum(coalesce(s.idx_scan, 0))::int8 AS idx_scan, sum(s.n_live_tup)::int8 AS n_live_tup,
        sum(s.n_dead_tup)::int8 AS n_dead_tup, sum(pg_table_size(s.relid))::int8 AS bytes,
        min(greatest(s.last_vacuum, s.last_autovacuum)) AS vacuumed
   FROM pg_stat_user_tables s
   JOIN pg_class c ON c.oid = coalesce(pg_partition_root(s.relid), s.relid)
   JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE s.schemaname IN ('devx', 'templates')
  GROUP BY n.nspname, c.relname";

#[derive(FromRow)]
struct ScannedTable {
    table: String,
    seq_scan: i64,
    seq_tup_read: i64,
    idx_scan: i64,
    n_live_tup: i64,
}

async fn seq_scans(db: &impl Queryable, limits: &Thresholds, findings: &mut Vec<Insight>) -> Result<(), DbError> {
    let rows: Vec<ScannedTable> = db
        .query_as(
            &format!(
                "SELECT \"table\", seq_scan, seq_tup_read, idx_scan, n_live_tup
                   FROM ({BY_TABLE}) t
                  WHERE seq_scan >= $1 AND n_live_tup >= $2
                    AND idx_scan::float8 / (seq_scan + idx_scan) < $3
                  ORDER BY seq_tup_read DESC, 1"
            ),
            &[&limits.seq_scan_min_scans, &limits.seq_scan_min_rows, &limits.seq_scan_max_index_share],
        )
        .await?;
    for r in rows {
        let (table, seq, read, idx, live) = (r.table, r.seq_scan, r.seq_tup_read, r.idx_scan, r.n_live_tup);
        findings.push(Insight {
            kind: "seq-scans",
            severity: Severity::Warning,
            object: table.clone(),
            detail: format!(
                "{seq} sequential scans read {read} rows in all (about {live} live rows), against {idx} index scans"
            ),
            advice: format!(
                "find the statements that filter {table} (pg_stat_statements, EXPLAIN) and add an index on the \
                 columns they filter or sort by, with CREATE INDEX CONCURRENTLY in a migration."
            ),
        });
    }
    Ok(())
}

/// Dead tuples as a share of all tuples: an estimate of bloat, from
/// `pg_stat_user_tables` (no page-level measurement).
#[derive(FromRow)]
struct DeadTuples {
    table: String,
    n_live_tup: i64,
    n_dead_tup: i64,
    bytes: i64,
    vacuumed: Option<DateTime<Utc>>,
}

async fn bloat(db: &impl Queryable, limits: &Thresholds, findings: &mut Vec<Insight>) -> Result<(), DbError> {
    let rows: Vec<DeadTuples> = db
        .query_as(
            &format!(
                "SELECT \"table\", n_live_tup, n_dead_tup, bytes, vacuumed
                   FROM ({BY_TABLE}) t
                  WHERE n_dead_tup >= $1
                    AND n_dead_tup::float8 / nullif(n_live_tup + n_dead_tup, 0) >= $2
                  ORDER BY n_dead_tup DESC, 1"
            ),
            &[&limits.bloat_min_dead, &limits.bloat_dead_share],
        )
        .await?;
    for DeadTuples { table, n_live_tup: live, n_dead_tup: dead, bytes, vacuumed } in rows {
        let share = dead as f64 / (live + dead) as f64;
        findings.push(Insight {
            kind: "table-bloat",
            severity: Severity::Warning,
            object: table.clone(),
            detail: format!(
                "estimated {:.0}% dead rows ({dead} dead, {live} live; table {}), an estimate from dead-tuple \
                 counts, not a page-level measurement; last vacuumed {}",
                share * 100.0,
                human_bytes(bytes),
                vacuumed.map_or_else(|| "never".into(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            ),
            advice: format!(
                "run `VACUUM (ANALYZE) {table};`; if it keeps coming back, lower autovacuum_vacuum_scale_factor \
                 for this table, and look for long transactions that keep dead rows alive."
            ),
        });
    }
    Ok(())
}

async fn long_running(
    db: &impl Queryable,
    limits: &Thresholds,
    report: &mut Report,
    findings: &mut Vec<Insight>,
) -> Result<(), DbError> {
    let rows: Vec<ActiveQuery> = db
        .query_as(
            &format!(
                "SELECT pid, usename::text AS \"user\", application_name AS application,
                        coalesce(state, 'unknown') AS state,
                        extract(epoch FROM now() - CASE WHEN state = 'active' THEN query_start ELSE state_change END)::float8
                            AS seconds,
                        left(coalesce(query, ''), {QUERY_TEXT_MAX}) AS query
                   FROM pg_stat_activity
                  WHERE datname = current_database() AND pid <> pg_backend_pid()
                    AND backend_type = 'client backend'
                    AND (   (state = 'active' AND now() - query_start > make_interval(secs => $1))
                         OR (state LIKE 'idle in transaction%' AND now() - state_change > make_interval(secs => $1)))
                  ORDER BY 5 DESC"
            ),
            &[&limits.long_query.as_secs_f64()],
        )
        .await?;
    for q in rows {
        let idle = q.state != "active";
        let by = match (&q.user, &q.application) {
            (Some(u), Some(a)) if !a.is_empty() => format!(" (user {u}, application {a})"),
            (Some(u), _) => format!(" (user {u})"),
            _ => String::new(),
        };
        findings.push(Insight {
            kind: if idle { "idle-in-transaction" } else { "long-running-query" },
            severity: Severity::Warning,
            object: format!("pid {}", q.pid),
            detail: if idle {
                format!(
                    "{} for {}{by}, holding its locks and snapshot; last statement: {}",
                    q.state,
                    seconds_text(q.seconds),
                    one_line(&q.query, 200)
                )
            } else {
                format!("running for {}{by}: {}", seconds_text(q.seconds), one_line(&q.query, 200))
            },
            advice: if idle {
                format!(
                    "fix the client that leaves its transaction open; to end it now run \
                     `SELECT pg_terminate_backend({})`, and set idle_in_transaction_session_timeout.",
                    q.pid
                )
            } else {
                format!(
                    "if it should not take this long, cancel it with `SELECT pg_cancel_backend({})` and EXPLAIN it; \
                     a statement_timeout (DB_STATEMENT_TIMEOUT for devx) stops such statements automatically.",
                    q.pid
                )
            },
        });
        report.long_running.push(q);
    }
    Ok(())
}

async fn blocked(db: &impl Queryable, report: &mut Report, findings: &mut Vec<Insight>) -> Result<(), DbError> {
    let rows: Vec<BlockedQuery> = db
        .query_as(
            &format!(
                "SELECT w.pid, w.blockers AS blocked_by, a.usename::text AS \"user\", a.application_name AS application,
                        coalesce(extract(epoch FROM now() - a.query_start)::float8, 0) AS seconds,
                        CASE WHEN a.wait_event IS NULL THEN NULL ELSE a.wait_event_type || ':' || a.wait_event END
                            AS wait_event,
                        left(coalesce(a.query, ''), {QUERY_TEXT_MAX}) AS query,
                        b.state AS blocker_state, left(b.query, {QUERY_TEXT_MAX}) AS blocker_query
                   FROM (SELECT pid, pg_blocking_pids(pid) AS blockers
                           FROM pg_stat_activity
                          WHERE datname = current_database() AND pid <> pg_backend_pid()) w
                   JOIN pg_stat_activity a ON a.pid = w.pid
                   LEFT JOIN pg_stat_activity b ON b.pid = w.blockers[1]
                  WHERE cardinality(w.blockers) > 0
                  ORDER BY 5 DESC"
            ),
            &[],
        )
        .await?;
    for b in rows {
        let blockers: Vec<String> = b.blocked_by.iter().map(i32::to_string).collect();
        let first = b.blocked_by.first().copied().unwrap_or_default();
        findings.push(Insight {
            kind: "blocked-query",
            severity: Severity::Warning,
            object: format!("pid {}", b.pid),
            detail: format!(
                "waiting {} for a lock held by pid {}{}: {}",
                seconds_text(b.seconds),
                blockers.join(", "),
                match (&b.blocker_state, &b.blocker_query) {
                    (Some(s), Some(q)) => format!(" ({s}: {})", one_line(q, 120)),
                    _ => String::new(),
                },
                one_line(&b.query, 200)
            ),
            advice: format!(
                "find out why pid {first} holds its lock (a long or idle-in-transaction session?); if it must go, \
                 `SELECT pg_terminate_backend({first})`; keep transactions short and take locks in one order."
            ),
        });
        report.blocked.push(b);
    }
    Ok(())
}

#[derive(FromRow)]
struct ServerConnections {
    total: i64,
    max: i64,
}

async fn connections(
    db: &impl Queryable,
    limits: &Thresholds,
    report: &mut Report,
    findings: &mut Vec<Insight>,
) -> Result<(), DbError> {
    report.connections.by_state = db
        .query_as(
            "SELECT coalesce(state, 'unknown') AS state, count(*)::int8 AS count
               FROM pg_stat_activity
              WHERE datname = current_database() AND backend_type = 'client backend'
              GROUP BY 1 ORDER BY 2 DESC, 1",
            &[],
        )
        .await?;
    let row: ServerConnections = db
        .query_one_as(
            "SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int8 AS total,
                    (current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int)::int8
                        AS max",
            &[],
        )
        .await?;
    let (total, max) = (row.total, row.max);
    report.connections.server_total = total;
    report.connections.server_max = max;
    if max > 0 && total as f64 >= max as f64 * limits.connections_share {
        findings.push(Insight {
            kind: "connections-near-limit",
            severity: Severity::Warning,
            object: report.database.clone(),
            detail: format!("{total} client connections on the server, of {max} usable (max_connections)"),
            advice: "lower the pools' sizes (DB_POOL_MAX for devx) or put PgBouncer in front of the server; \
                     raise max_connections only with the memory to back it."
                .into(),
        });
    }
    Ok(())
}

#[derive(FromRow)]
struct BlockReads {
    heap_hit: i64,
    heap_read: i64,
    idx_hit: i64,
    idx_read: i64,
    shared_buffers: String,
}

async fn cache_hit(
    db: &impl Queryable,
    limits: &Thresholds,
    report: &mut Report,
    findings: &mut Vec<Insight>,
) -> Result<(), DbError> {
    let BlockReads { heap_hit, heap_read, idx_hit, idx_read, shared_buffers } = db
        .query_one_as(
            "SELECT coalesce(sum(heap_blks_hit), 0)::int8 AS heap_hit,
                    coalesce(sum(heap_blks_read), 0)::int8 AS heap_read,
                    coalesce(sum(idx_blks_hit), 0)::int8 AS idx_hit,
                    coalesce(sum(idx_blks_read), 0)::int8 AS idx_read,
                    current_setting('shared_buffers') AS shared_buffers
               FROM pg_statio_user_tables",
            &[],
        )
        .await?;
    let ratio = |hit: i64, read: i64| (hit + read > 0).then(|| hit as f64 / (hit + read) as f64);
    report.cache_hit = CacheHit {
        heap: ratio(heap_hit, heap_read),
        index: ratio(idx_hit, idx_read),
        heap_blocks: heap_hit + heap_read,
        index_blocks: idx_hit + idx_read,
        shared_buffers,
    };
    for (what, r, blocks) in [
        ("tables", report.cache_hit.heap, report.cache_hit.heap_blocks),
        ("indexes", report.cache_hit.index, report.cache_hit.index_blocks),
    ] {
        if let Some(r) = r
            && blocks >= limits.cache_min_blocks
            && r < limits.cache_hit_min
        {
            findings.push(Insight {
                kind: "low-cache-hit",
                severity: Severity::Warning,
                object: format!("{} ({what})", report.database),
                detail: format!(
                    "{:.2}% of {blocks} {what} block reads came from shared buffers (below {:.0}%)",
                    r * 100.0,
                    limits.cache_hit_min * 100.0
                ),
                advice: format!(
                    "the working set does not fit in memory: raise shared_buffers (now {}; about a quarter of RAM), \
                     add memory, or stop the large sequential scans that push it out.",
                    report.cache_hit.shared_buffers
                ),
            });
        }
    }
    Ok(())
}

/// Sequences past a share of their range, where the range is the smaller of
/// the sequence's own maximum and the maximum of the column it feeds.
#[derive(FromRow)]
struct SequenceUse {
    seq: String,
    last_value: i64,
    max_value: i64,
    col: Option<String>,
    col_max: Option<i64>,
    used: f64,
}

async fn sequences(db: &impl Queryable, limits: &Thresholds, findings: &mut Vec<Insight>) -> Result<(), DbError> {
    let rows: Vec<SequenceUse> = db
        .query_as(
            "SELECT seq, last_value, max_value, col, col_max,
                    last_value::float8 / least(max_value, coalesce(col_max, max_value)) AS used
               FROM (SELECT format('%I.%I', s.schemaname, s.sequencename) AS seq, s.last_value, s.max_value,
                            c.col, c.col_max
                       FROM pg_sequences s
                       LEFT JOIN LATERAL (
                            SELECT format('%I.%I.%I', tn.nspname, t.relname, a.attname) AS col,
                                   CASE a.atttypid WHEN 'int2'::regtype::oid THEN 32767::int8
                                                   WHEN 'int4'::regtype::oid THEN 2147483647::int8 END AS col_max
                              FROM pg_depend d
                              JOIN pg_class t ON t.oid = d.refobjid
                              JOIN pg_namespace tn ON tn.oid = t.relnamespace
                              JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                             WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
                               AND d.objid = format('%I.%I', s.schemaname, s.sequencename)::regclass
                               AND d.deptype IN ('a', 'i')
                             LIMIT 1) c ON true
                      WHERE s.schemaname IN ('devx', 'templates', 'devx_meta')
                        AND s.last_value IS NOT NULL AND s.increment_by > 0 AND s.max_value > 0) q
              WHERE last_value::float8 / least(max_value, coalesce(col_max, max_value)) > $1
              ORDER BY 6 DESC, 1",
            &[&limits.sequence_used_share],
        )
        .await?;
    for SequenceUse { seq, last_value: last, max_value: max, col, col_max, used } in rows {
        let column_limits = col_max.is_some_and(|c| c < max);
        findings.push(Insight {
            kind: "sequence-near-limit",
            severity: Severity::Warning,
            object: seq.clone(),
            detail: format!(
                "{:.1}% used: last value {last} of {}{}",
                used * 100.0,
                col_max.map_or(max, |c| c.min(max)),
                match (&col, column_limits) {
                    (Some(col), true) => format!(" (the limit of its column {col})"),
                    (Some(col), false) => format!(" (feeds {col})"),
                    (None, _) => String::new(),
                }
            ),
            advice: match (&col, column_limits) {
                (Some(col), true) => format!(
                    "change {col} to bigint in a migration (a table rewrite: plan for it) and then \
                     `ALTER SEQUENCE {seq} AS bigint;`, before inserts start failing."
                ),
                _ => format!(
                    "raise its limit with `ALTER SEQUENCE {seq} AS bigint MAXVALUE 9223372036854775807;` (and \
                     widen the column it feeds), before nextval starts failing."
                ),
            },
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_collapses_and_cuts() {
        assert_eq!(one_line("SELECT *\n   FROM t", 80), "SELECT * FROM t");
        assert_eq!(one_line("abcdefghij", 6), "abc...");
    }

    #[test]
    fn warnings_sort_first_and_are_counted() {
        let insight = |kind, severity| Insight {
            kind,
            severity,
            object: "x".into(),
            detail: String::new(),
            advice: String::new(),
        };
        let mut findings = [
            insight("unused-index", Severity::Info),
            insight("duplicate-index", Severity::Warning),
            insight("blocked-query", Severity::Info),
        ];
        sort_findings(&mut findings);
        let kinds: Vec<&str> = findings.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, ["duplicate-index", "blocked-query", "unused-index"]);
        assert_eq!(serde_json::to_value(Severity::Warning).unwrap(), "warning");
    }
}
