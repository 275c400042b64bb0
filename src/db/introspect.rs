//! What the database says about itself: server version and round trip (for
//! `db health` and the status endpoints) and per-table sizes and row counts
//! (for `db stats`).

use std::time::{Duration, Instant};

use super::{DbError, Queryable};

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ServerInfo {
    /// `server_version` as PostgreSQL reports it, e.g. `15.20 (Debian 15.20-0+deb12u1)`.
    pub version: String,
    pub database: String,
    #[serde(serialize_with = "as_millis")]
    #[schema(value_type = f64)]
    pub round_trip: Duration,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

pub async fn server_info(db: &impl Queryable) -> Result<ServerInfo, DbError> {
    let start = Instant::now();
    let row = db.query_one("SELECT current_setting('server_version'), current_database()", &[]).await?;
    Ok(ServerInfo { version: row.get(0), database: row.get(1), round_trip: start.elapsed() })
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct TableStats {
    pub schema: String,
    pub table: String,
    /// Exact when counted, otherwise PostgreSQL's live-tuple estimate.
    pub rows: i64,
    pub exact: bool,
    /// Table, indexes and TOAST, in bytes.
    pub total_bytes: i64,
    pub index_bytes: i64,
}

/// Every devx table, largest first.
pub async fn table_stats(db: &impl Queryable, exact: bool) -> Result<Vec<TableStats>, DbError> {
    let rows = db
        .query(
            "SELECT n.nspname, c.relname, coalesce(s.n_live_tup, 0)::int8,
                    pg_total_relation_size(c.oid), pg_indexes_size(c.oid)
               FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace
               LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
              WHERE c.relkind IN ('r', 'p') AND n.nspname IN ('devx', 'templates')
              ORDER BY pg_total_relation_size(c.oid) DESC, n.nspname, c.relname",
            &[],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let schema: String = row.get(0);
        let table: String = row.get(1);
        let rows = if exact {
            // Identifiers come from pg_class, quoted by PostgreSQL itself.
            let sql = format!("SELECT count(*) FROM {}", quote_qualified(&schema, &table));
            db.query_one(&sql, &[]).await?.get::<_, i64>(0)
        } else {
            row.get(2)
        };
        out.push(TableStats { schema, table, rows, exact, total_bytes: row.get(3), index_bytes: row.get(4) });
    }
    Ok(out)
}

/// `"schema"."table"` with embedded quotes doubled.
pub fn quote_qualified(schema: &str, table: &str) -> String {
    format!("\"{}\".\"{}\"", schema.replace('"', "\"\""), table.replace('"', "\"\""))
}

/// Bytes as a short human string (`12.3 MB`).
pub fn human_bytes(bytes: i64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < units.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", units[unit]) }
}
