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

/// Something `devx db check` found wrong with the schema, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Finding {
    /// `fk-without-index`, `invalid-index`, `unvalidated-constraint`,
    /// `missing-primary-key`, `missing-updated-at-trigger`.
    pub kind: &'static str,
    /// The table, index or constraint concerned, schema-qualified.
    pub object: String,
    pub detail: String,
}

/// Structural checks of the devx schemas: the invariants the migrations
/// promise (an index behind every foreign key, a primary key on every table,
/// an `updated_at` trigger wherever the column exists) and the leftovers of
/// interrupted operations (an invalid index from a failed
/// `CREATE INDEX CONCURRENTLY`, a constraint added `NOT VALID` and never
/// validated). An empty list means the schema is sound.
pub async fn schema_findings(db: &impl Queryable) -> Result<Vec<Finding>, DbError> {
    let mut findings = Vec::new();
    let fk_without_index = db
        .query(
            "SELECT format('%I.%I', n.nspname, t.relname), c.conname,
                    (SELECT string_agg(a.attname, ', ' ORDER BY k.ord)
                       FROM unnest(c.conkey) WITH ORDINALITY k(attnum, ord)
                       JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum)
               FROM pg_constraint c
               JOIN pg_class t ON t.oid = c.conrelid
               JOIN pg_namespace n ON n.oid = t.relnamespace
              WHERE c.contype = 'f' AND n.nspname IN ('devx', 'templates')
                AND NOT EXISTS (
                    SELECT 1 FROM pg_index i
                     WHERE i.indrelid = c.conrelid
                       AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] @> c.conkey
                       AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] <@ c.conkey)
              ORDER BY 1, 2",
            &[],
        )
        .await?;
    for row in fk_without_index {
        let table: String = row.get(0);
        let columns: String = row.get(2);
        findings.push(Finding {
            kind: "fk-without-index",
            object: format!("{table} ({})", row.get::<_, String>(1)),
            detail: format!(
                "no index starts with ({columns}): deleting a parent row scans {table}; add one in a migration"
            ),
        });
    }
    let invalid_indexes = db
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname)
               FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE NOT i.indisvalid AND n.nspname IN ('devx', 'templates', 'devx_meta')
              ORDER BY 1",
            &[],
        )
        .await?;
    for row in invalid_indexes {
        let index: String = row.get(0);
        findings.push(Finding {
            kind: "invalid-index",
            detail: format!(
                "left invalid by an interrupted CREATE INDEX CONCURRENTLY: `DROP INDEX CONCURRENTLY {index};` then re-run the migration that creates it"
            ),
            object: index,
        });
    }
    let unvalidated = db
        .query(
            "SELECT format('%I.%I', n.nspname, t.relname), c.conname
               FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
              WHERE NOT c.convalidated AND n.nspname IN ('devx', 'templates')
              ORDER BY 1, 2",
            &[],
        )
        .await?;
    for row in unvalidated {
        let table: String = row.get(0);
        let name: String = row.get(1);
        findings.push(Finding {
            kind: "unvalidated-constraint",
            detail: format!("added NOT VALID and never checked: `ALTER TABLE {table} VALIDATE CONSTRAINT {name};`"),
            object: format!("{table} ({name})"),
        });
    }
    let no_primary_key = db
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname)
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'p') AND n.nspname IN ('devx', 'templates')
                AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p')
              ORDER BY 1",
            &[],
        )
        .await?;
    for row in no_primary_key {
        findings.push(Finding {
            kind: "missing-primary-key",
            object: row.get(0),
            detail: "every table needs a primary key (replication, keyset pagination and the audit trail rely on it)"
                .into(),
        });
    }
    let no_updated_at_trigger = db
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname)
               FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'updated_at' AND NOT a.attisdropped
              WHERE c.relkind IN ('r', 'p') AND n.nspname IN ('devx', 'templates')
                AND NOT EXISTS (
                    SELECT 1 FROM pg_trigger g JOIN pg_proc p ON p.oid = g.tgfoid
                     WHERE g.tgrelid = c.oid AND p.proname = 'set_updated_at' AND NOT g.tgisinternal)
              ORDER BY 1",
            &[],
        )
        .await?;
    for row in no_updated_at_trigger {
        findings.push(Finding {
            kind: "missing-updated-at-trigger",
            object: row.get(0),
            detail: "has updated_at but no devx.set_updated_at() trigger, so the column goes stale".into(),
        });
    }
    Ok(findings)
}
