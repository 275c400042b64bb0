//! What the database says about itself: server version and round trip (for
//! `db health` and the status endpoints) and per-table sizes and row counts
//! (for `db stats`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::db::row::single;
use crate::db::{DbError, FromRow, Queryable};

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

#[derive(FromRow)]
struct ServerRow {
    version: String,
    database: String,
}

pub async fn server_info(db: &impl Queryable) -> Result<ServerInfo, DbError> {
    let start = Instant::now();
    let row: ServerRow = db
        .query_one_as("SELECT current_setting('server_version') AS version, current_database() AS database", &[])
        .await?;
    Ok(ServerInfo { version: row.version, database: row.database, round_trip: start.elapsed() })
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

/// A [`TableStats`] as the catalog query reads it (`rows` is the estimate).
#[derive(FromRow)]
struct TableRow {
    schema: String,
    table: String,
    rows: i64,
    total_bytes: i64,
    index_bytes: i64,
}

/// Every devx table, largest first.
pub async fn table_stats(db: &impl Queryable, exact: bool) -> Result<Vec<TableStats>, DbError> {
    let rows: Vec<TableRow> = db
        .query_as(
            // A partitioned table is one table: its partitions are summed
            // into it and not listed.
            "SELECT n.nspname AS schema, c.relname AS \"table\", t.rows, t.total_bytes, t.index_bytes
               FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace
               CROSS JOIN LATERAL (
                    SELECT coalesce(sum(s.n_live_tup), 0)::int8 AS rows,
                           coalesce(sum(pg_total_relation_size(p.relid)), 0)::int8 AS total_bytes,
                           coalesce(sum(pg_indexes_size(p.relid)), 0)::int8 AS index_bytes
                      FROM pg_partition_tree(c.oid) p
                      LEFT JOIN pg_stat_user_tables s ON s.relid = p.relid) t
              WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname IN ('devx', 'templates')
              ORDER BY t.total_bytes DESC, n.nspname, c.relname",
            &[],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let rows = if exact {
            // Identifiers come from pg_class, quoted by PostgreSQL itself.
            let sql = format!("SELECT count(*) FROM {}", quote_qualified(&row.schema, &row.table));
            db.query_scalar(&sql, &[]).await?
        } else {
            row.rows
        };
        out.push(TableStats {
            schema: row.schema,
            table: row.table,
            rows,
            exact,
            total_bytes: row.total_bytes,
            index_bytes: row.index_bytes,
        });
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

/// A constraint and its table, as the checks of [`schema_findings`] read it.
#[derive(FromRow)]
struct ConstraintRow {
    table_name: String,
    constraint_name: String,
}

/// A foreign key without an index, and its columns.
#[derive(FromRow)]
struct ForeignKeyRow {
    table_name: String,
    constraint_name: String,
    columns: String,
}

/// The strings of a statement's one column, one per row.
fn strings(rows: &[tokio_postgres::Row]) -> Result<Vec<String>, DbError> {
    rows.iter().map(single).collect()
}

/// Structural checks of the devx schemas: the invariants the migrations
/// promise (an index behind every foreign key, a primary key on every table,
/// an `updated_at` trigger wherever the column exists) and the leftovers of
/// interrupted operations (an invalid index from a failed
/// `CREATE INDEX CONCURRENTLY`, a constraint added `NOT VALID` and never
/// validated). An empty list means the schema is sound.
pub async fn schema_findings(db: &impl Queryable) -> Result<Vec<Finding>, DbError> {
    let mut findings = Vec::new();
    let fk_without_index: Vec<ForeignKeyRow> = db
        .query_as(
            "SELECT format('%I.%I', n.nspname, t.relname) AS table_name, c.conname AS constraint_name,
                    (SELECT string_agg(a.attname, ', ' ORDER BY k.ord)
                       FROM unnest(c.conkey) WITH ORDINALITY k(attnum, ord)
                       JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum) AS columns
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
    for ForeignKeyRow { table_name: table, constraint_name, columns } in fk_without_index {
        findings.push(Finding {
            kind: "fk-without-index",
            object: format!("{table} ({constraint_name})"),
            detail: format!(
                "no index starts with ({columns}): deleting a parent row scans {table}; add one in a migration"
            ),
        });
    }
    let invalid_indexes = strings(
        &db.query(
            "SELECT format('%I.%I', n.nspname, c.relname)
               FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE NOT i.indisvalid AND n.nspname IN ('devx', 'templates', 'devx_meta')
              ORDER BY 1",
            &[],
        )
        .await?,
    )?;
    for index in invalid_indexes {
        findings.push(Finding {
            kind: "invalid-index",
            detail: format!(
                "left invalid by an interrupted CREATE INDEX CONCURRENTLY: `DROP INDEX CONCURRENTLY {index};` then re-run the migration that creates it"
            ),
            object: index,
        });
    }
    let unvalidated: Vec<ConstraintRow> = db
        .query_as(
            "SELECT format('%I.%I', n.nspname, t.relname) AS table_name, c.conname AS constraint_name
               FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
              WHERE NOT c.convalidated AND n.nspname IN ('devx', 'templates')
              ORDER BY 1, 2",
            &[],
        )
        .await?;
    for ConstraintRow { table_name: table, constraint_name: name } in unvalidated {
        findings.push(Finding {
            kind: "unvalidated-constraint",
            detail: format!("added NOT VALID and never checked: `ALTER TABLE {table} VALIDATE CONSTRAINT {name};`"),
            object: format!("{table} ({name})"),
        });
    }
    let no_primary_key = strings(
        &db.query(
            "SELECT format('%I.%I', n.nspname, c.relname)
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'p') AND n.nspname IN ('devx', 'templates')
                AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p')
              ORDER BY 1",
            &[],
        )
        .await?,
    )?;
    for table in no_primary_key {
        findings.push(Finding {
            kind: "missing-primary-key",
            object: table,
            detail: "every table needs a primary key (replication, keyset pagination and the audit trail rely on it)"
                .into(),
        });
    }
    let no_updated_at_trigger = strings(
        &db.query(
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
        .await?,
    )?;
    for table in no_updated_at_trigger {
        findings.push(Finding {
            kind: "missing-updated-at-trigger",
            object: table,
            detail: "has updated_at but no devx.set_updated_at() trigger, so the column goes stale".into(),
        });
    }
    Ok(findings)
}

/// The parts of a schema that migrations declare, each rendered by
/// PostgreSQL itself (`format_type`, `pg_get_indexdef`, `pg_get_constraintdef`,
/// `pg_get_triggerdef`, `pg_get_viewdef`, `pg_get_functiondef`), keyed by a
/// stable name such as `column devx.users.email`, with every name
/// schema-qualified whatever the session's search path. Two databases built
/// by the same migrations have equal snapshots. Partitions are left out: the
/// retention run creates and drops them by date, and each copies its
/// parent's columns, indexes, constraints and triggers, which are in.
pub async fn schema_snapshot(db: &impl Queryable) -> Result<BTreeMap<String, String>, DbError> {
    const SCHEMAS: &str = "ARRAY['devx', 'templates']";
    let queries = [
        format!(
            "SELECT 'table ' || n.nspname || '.' || c.relname AS object, c.relkind::text AS definition
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition AND n.nspname = ANY({SCHEMAS})"
        ),
        format!(
            "SELECT 'column ' || n.nspname || '.' || c.relname || '.' || a.attname AS object,
                    format_type(a.atttypid, a.atttypmod)
                    || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
                    || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
                    || CASE WHEN a.attidentity <> '' THEN ' IDENTITY' ELSE '' END AS definition
               FROM pg_attribute a
               JOIN pg_class c ON c.oid = a.attrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
               LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
              WHERE c.relkind IN ('r', 'p', 'v', 'm') AND a.attnum > 0 AND NOT a.attisdropped
                AND NOT c.relispartition AND n.nspname = ANY({SCHEMAS})"
        ),
        format!(
            "SELECT 'index ' || n.nspname || '.' || c.relname AS object, pg_get_indexdef(c.oid) AS definition
               FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_class t ON t.oid = i.indrelid
              WHERE NOT t.relispartition AND n.nspname = ANY({SCHEMAS})"
        ),
        format!(
            "SELECT 'constraint ' || n.nspname || '.' || t.relname || '.' || c.conname AS object,
                    pg_get_constraintdef(c.oid) AS definition
               FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
              WHERE NOT t.relispartition AND n.nspname = ANY({SCHEMAS})"
        ),
        format!(
            "SELECT 'trigger ' || n.nspname || '.' || t.relname || '.' || g.tgname AS object,
                    pg_get_triggerdef(g.oid) AS definition
               FROM pg_trigger g JOIN pg_class t ON t.oid = g.tgrelid JOIN pg_namespace n ON n.oid = t.relnamespace
              WHERE NOT g.tgisinternal AND NOT t.relispartition AND n.nspname = ANY({SCHEMAS})"
        ),
        format!(
            "SELECT 'view ' || n.nspname || '.' || c.relname AS object, pg_get_viewdef(c.oid) AS definition
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('v', 'm') AND n.nspname = ANY({SCHEMAS})"
        ),
        format!(
            "SELECT 'function ' || n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
                        AS object,
                    md5(pg_get_functiondef(p.oid)) AS definition
               FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE p.prokind IN ('f', 'p') AND n.nspname = ANY({SCHEMAS})"
        ),
    ];
    // PostgreSQL leaves out the schema of names on the search path, which a
    // database may set (devx's own does, for psql users): read everything
    // under a fixed one so that two databases render alike, then put the
    // session's back.
    let previous: String = db.query_scalar("SELECT current_setting('search_path')", &[]).await?;
    db.execute("SELECT set_config('search_path', 'pg_catalog', false)", &[]).await?;
    let mut snapshot = BTreeMap::new();
    let mut read = Ok(());
    'queries: for sql in &queries {
        match db.query_as::<SnapshotRow>(sql, &[]).await {
            Ok(rows) => snapshot.extend(rows.into_iter().map(|row| (row.object, row.definition))),
            Err(e) => {
                read = Err(e);
                break 'queries;
            }
        }
    }
    db.execute("SELECT set_config('search_path', $1, false)", &[&previous]).await?;
    read.map(|()| snapshot)
}

/// One entry of [`schema_snapshot`].
#[derive(FromRow)]
struct SnapshotRow {
    object: String,
    definition: String,
}

/// One difference between the live schema and the one the migrations build.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum SchemaDifference {
    /// Declared by the migrations, absent from the database.
    Missing { object: String, expected: String },
    /// In the database, not declared by any migration (a hand-made change).
    Unexpected { object: String, actual: String },
    /// Present in both, defined differently.
    Changed { object: String, expected: String, actual: String },
}

impl std::fmt::Display for SchemaDifference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing { object, expected } => write!(f, "missing    {object}: expected {expected}"),
            Self::Unexpected { object, actual } => write!(f, "unexpected {object}: {actual}"),
            Self::Changed { object, expected, actual } => {
                write!(f, "changed    {object}:\n             expected {expected}\n             actual   {actual}")
            }
        }
    }
}

/// Every difference from `expected` to `actual`, in object order.
pub fn diff_schemas(expected: &BTreeMap<String, String>, actual: &BTreeMap<String, String>) -> Vec<SchemaDifference> {
    let mut out = Vec::new();
    for (object, want) in expected {
        match actual.get(object) {
            None => out.push(SchemaDifference::Missing { object: object.clone(), expected: want.clone() }),
            Some(have) if have != want => out.push(SchemaDifference::Changed {
                object: object.clone(),
                expected: want.clone(),
                actual: have.clone(),
            }),
            Some(_) => {}
        }
    }
    for (object, have) in actual {
        if !expected.contains_key(object) {
            out.push(SchemaDifference::Unexpected { object: object.clone(), actual: have.clone() });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn diff_reports_missing_unexpected_and_changed() {
        let expected = map(&[("column devx.users.email", "text NOT NULL"), ("index devx.a", "CREATE INDEX a")]);
        let actual = map(&[("column devx.users.email", "text"), ("index devx.b", "CREATE INDEX b")]);
        let diff = diff_schemas(&expected, &actual);
        assert_eq!(
            diff,
            vec![
                SchemaDifference::Changed {
                    object: "column devx.users.email".into(),
                    expected: "text NOT NULL".into(),
                    actual: "text".into()
                },
                SchemaDifference::Missing { object: "index devx.a".into(), expected: "CREATE INDEX a".into() },
                SchemaDifference::Unexpected { object: "index devx.b".into(), actual: "CREATE INDEX b".into() },
            ]
        );
        assert!(diff_schemas(&expected, &expected).is_empty());
    }

    #[test]
    fn human_bytes_picks_a_unit() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 kB");
        assert_eq!(human_bytes(5 * 1024 * 1024), "5.0 MB");
    }
}
