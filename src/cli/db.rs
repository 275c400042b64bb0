//! `devx db ...`: health, creating the configured database, statistics,
//! schema check, sample data, grants and insights.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::seed;
use super::{EXIT_CHECK_FAILED, EXIT_USAGE, with_database};
use crate::config::{Config, masked_target};
use crate::db::{Db, PgClient, Queryable};
use crate::diagnostics::insights;
use crate::diagnostics::introspect::{self, human_bytes};

#[derive(Args)]
#[command(
    about = "Check and inspect the database",
    after_help = "Examples:\n  devx db health\n  devx db create\n  devx db check\n  devx db seed\n  devx db stats --exact"
)]
pub struct DbArgs {
    #[command(subcommand)]
    command: DbCommand,
}

#[derive(Subcommand)]
enum DbCommand {
    /// Connect through the pool and report server version, round trip and
    /// pool numbers. Exits 0 when healthy, 3 when the database cannot be reached.
    #[command(after_help = "Example:\n  devx db health && echo ready")]
    Health,
    /// Create the configured database on its server when it does not exist
    /// (connecting to the server's `postgres` database as the configured
    /// user, who needs the CREATEDB privilege). Does nothing when it exists.
    #[command(after_help = "Example:\n  DATABASE_URL=postgres://devx:secret@db/devx devx db create && devx migrate up")]
    Create,
    /// Compare the live schema with the one the migrations build (tables,
    /// columns, indexes, constraints, triggers, views, functions) and check
    /// its invariants (an index behind every foreign key, no invalid index,
    /// no unvalidated constraint). Lists every difference; exits 3 if any.
    #[command(after_help = "Examples:\n  devx db check\n  devx db check || echo 'schema drift: see the list above'")]
    Check,
    /// Load sample data into every table (idempotent), for demos and the
    /// dashboard. Refuses on a database that already has users or projects
    /// unless --force.
    #[command(after_help = "Examples:\n  devx db seed\n  devx db seed --force")]
    Seed {
        /// Load even though the database already holds data (rows with the
        /// sample ids are left as they are).
        #[arg(long)]
        force: bool,
    },
    /// The least privileges `devx serve` needs, for a role that only reads
    /// and writes data while migrations run as the schema's owner
    /// (`DATABASE_MIGRATION_URL`): prints the GRANT statements, or runs them
    /// with --apply. Run it as the owner of the devx schemas, after
    /// `devx migrate up`; default privileges cover tables later migrations add.
    #[command(after_help = "Examples:\n  devx db grants --role devx_app\n  devx db grants --role devx_app --apply\n\n\
        Then serve with DATABASE_URL naming devx_app and DATABASE_MIGRATION_URL naming the owner.")]
    Grants {
        /// The role `devx serve` connects as (it must exist: CREATE ROLE devx_app LOGIN PASSWORD '...').
        #[arg(long)]
        role: String,
        /// Run the statements (in one transaction) instead of printing them.
        #[arg(long)]
        apply: bool,
    },
    /// Row counts and sizes of every devx table, largest first.
    #[command(after_help = "Examples:\n  devx db stats\n  devx db stats --exact")]
    Stats {
        /// Count rows exactly (reads every table) instead of using PostgreSQL's estimate.
        #[arg(long)]
        exact: bool,
    },
    /// What PgHero would tell you: slow and frequent queries
    /// (pg_stat_statements), unused and duplicate indexes, tables read by
    /// sequential scans, estimated bloat, long-running and blocked queries,
    /// connections by state, cache hit ratio and sequences near their limit,
    /// each finding with what to do. Exits 0 when no finding is a warning,
    /// 3 when any is.
    #[command(
        after_help = "Examples:\n  devx db insights\n  devx db insights --json | jq '.findings[] | select(.severity == \"warning\")'\n  devx db insights --long-query 10s"
    )]
    Insights {
        /// Print the report as JSON (the same document as GET /api/admin/insights).
        #[arg(long)]
        json: bool,
        /// Report statements running (or transactions idle) longer than this;
        /// default DB_LONG_QUERY_THRESHOLD (1m).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        long_query: Option<std::time::Duration>,
    },
}

fn parse_duration(raw: &str) -> Result<std::time::Duration, String> {
    crate::config::parse_duration(raw)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{raw:?} is not a duration such as 30s or 2m"))
}

pub async fn run(config: &Config, args: DbArgs) -> anyhow::Result<ExitCode> {
    with_database(config, async |database| {
        let target = masked_target(&database.target);
        if let DbCommand::Create = args.command {
            return create_database(config, &database.target).await;
        }
        let db = match Db::connect(&config.database, &database.target).await {
            Ok(db) => db,
            Err(e) if matches!(args.command, DbCommand::Health) => {
                println!("database: {target} ({})\nstatus:   unhealthy: {e}", database.origin);
                return Ok(ExitCode::from(EXIT_CHECK_FAILED));
            }
            Err(e) => return Err(anyhow::anyhow!("cannot connect to {target}: {e}")),
        };
        let client = db.client().await?;
        match args.command {
            DbCommand::Health => {
                let info = introspect::server_info(&client).await?;
                let pool = db.status();
                println!("database:   {target} ({})", database.origin);
                println!("status:     healthy");
                println!("server:     PostgreSQL {}", info.version);
                println!("round trip: {:.2} ms", info.round_trip.as_secs_f64() * 1000.0);
                println!(
                    "pool:       {} open ({} idle, {} in use, {} waiting), max {}",
                    pool.size, pool.idle, pool.in_use, pool.waiting, pool.max_size
                );
            }
            DbCommand::Create => unreachable!("handled before connecting"),
            DbCommand::Check => {
                let code = check(config, &database.target, &client).await?;
                drop(client);
                db.close();
                return Ok(code);
            }
            DbCommand::Seed { force } => {
                drop(client);
                let code = seed(&db, config.secret_keys.as_ref(), force).await?;
                db.close();
                return Ok(code);
            }
            DbCommand::Stats { exact } => {
                let tables = introspect::table_stats(&client, exact).await?;
                if tables.is_empty() {
                    println!("no devx tables: run `devx migrate up`");
                }
                let label = if exact { "rows" } else { "rows (est.)" };
                println!("{:<34} {:>12} {:>10} {:>10}", "table", label, "total", "indexes");
                for t in tables {
                    let name = format!("{}.{}", t.schema, t.table);
                    println!(
                        "{name:<34} {:>12} {:>10} {:>10}",
                        t.rows,
                        human_bytes(t.total_bytes),
                        human_bytes(t.index_bytes)
                    );
                }
            }
            DbCommand::Grants { role, apply } => {
                drop(client);
                let code = grants(&db, &role, apply).await?;
                db.close();
                return Ok(code);
            }
            DbCommand::Insights { json, long_query } => {
                let limits = insights::Thresholds::new(long_query.unwrap_or(config.database.long_query_threshold));
                let report = insights::report(&client, &limits).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    print!("{}", report.render_text());
                }
                drop(client);
                db.close();
                return Ok(if report.warnings() > 0 { ExitCode::from(EXIT_CHECK_FAILED) } else { ExitCode::SUCCESS });
            }
        }
        drop(client);
        db.close();
        Ok(ExitCode::SUCCESS)
    })
    .await
}

/// `devx db create`: the configured database, made through the server's
/// `postgres` (else `template1`) database as the configured user.
async fn create_database(config: &Config, target: &tokio_postgres::Config) -> anyhow::Result<ExitCode> {
    use tokio_postgres::error::SqlState;
    let name = target.get_dbname().or(target.get_user()).unwrap_or("postgres").to_string();
    let mut admin = None;
    let mut last = None;
    for maintenance in ["postgres", "template1"] {
        let mut t = target.clone();
        t.dbname(maintenance);
        match crate::db::connect_one(&config.database, &t).await {
            Ok(client) => {
                admin = Some(client);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let Some(admin) = admin else {
        let reason = last.map(|e| e.to_string()).unwrap_or_default();
        anyhow::bail!("cannot connect to the server of {} to create {name}: {reason}", masked_target(target));
    };
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .map_err(|e| anyhow::anyhow!(crate::db::describe(&e)))?
        .is_some();
    if exists {
        println!("database {name} exists already on {}; nothing to do", masked_target(target));
        return Ok(ExitCode::SUCCESS);
    }
    match admin.batch_execute(&format!("CREATE DATABASE {}", quote_ident(&name))).await {
        Ok(()) => {
            println!("created database {name} on {}; next: devx migrate up", masked_target(target));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if e.code() == Some(&SqlState::DUPLICATE_DATABASE) => {
            println!("database {name} exists already on {}; nothing to do", masked_target(target));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => anyhow::bail!(
            "{}: the user may not create databases; create it as a superuser (createdb {name}), or grant \
             CREATEDB to the user",
            crate::db::describe(&e)
        ),
        Err(e) => anyhow::bail!("cannot create database {name}: {}", crate::db::describe(&e)),
    }
}

/// `"name"`, with embedded quotes doubled, as PostgreSQL's `quote_ident` does.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The statements that let `role` run `devx serve` and nothing more: use the
/// schemas, read and write rows (retention deletes, the audit trail is
/// written by triggers running as the table owner's functions), read the
/// migration ledger (`/readyz`), and the same on tables that migrations run
/// by `owner` create later.
pub fn grant_statements(role: &str, owner: &str, database: &str) -> Vec<String> {
    let (role, owner, database) = (quote_ident(role), quote_ident(owner), quote_ident(database));
    vec![
        format!("GRANT CONNECT ON DATABASE {database} TO {role}"),
        format!("GRANT USAGE ON SCHEMA devx, templates, devx_meta TO {role}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA devx, templates TO {role}"),
        format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA devx, templates TO {role}"),
        format!("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA devx, templates TO {role}"),
        format!("GRANT SELECT ON ALL TABLES IN SCHEMA devx_meta TO {role}"),
        format!(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA devx, templates \
             GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}"
        ),
        format!(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA devx, templates GRANT USAGE, SELECT ON SEQUENCES TO {role}"
        ),
        format!(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA devx, templates GRANT EXECUTE ON FUNCTIONS TO {role}"
        ),
        format!("ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA devx_meta GRANT SELECT ON TABLES TO {role}"),
    ]
}

async fn grants(db: &Db, role: &str, apply: bool) -> anyhow::Result<ExitCode> {
    if role.is_empty() || role.len() > 63 {
        eprintln!("--role must name a PostgreSQL role (1 to 63 characters)");
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let mut client = db.client().await?;
    #[derive(crate::db::FromRow)]
    struct Here {
        owner: String,
        database: String,
        role_exists: bool,
        migrated: bool,
    }
    let here: Here = client
        .query_one_as(
            "SELECT current_user::text AS owner, current_database()::text AS database,
                    EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS role_exists,
                    to_regclass('devx_meta.schema_migrations') IS NOT NULL AS migrated",
            &[&role],
        )
        .await?;
    if !here.migrated {
        anyhow::bail!("the database has no devx schema yet: run `devx migrate up` first, as the schema's owner");
    }
    let statements = grant_statements(role, &here.owner, &here.database);
    if !apply {
        println!(
            "-- Least privileges for `devx serve` as {role}; run as {} (or `devx db grants --apply`).",
            here.owner
        );
        if !here.role_exists {
            println!("-- The role does not exist yet: CREATE ROLE {} LOGIN PASSWORD '...';", quote_ident(role));
        }
        for statement in &statements {
            println!("{statement};");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !here.role_exists {
        eprintln!(
            "role {role} does not exist: create it first (CREATE ROLE {} LOGIN PASSWORD '...'), then run this again",
            quote_ident(role)
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let tx = client.transaction_as("system:cli grants").await?;
    for statement in &statements {
        tx.batch_execute(statement).await?;
    }
    tx.commit().await?;
    println!("granted {role} what `devx serve` needs ({} statements, as {})", statements.len(), here.owner);
    Ok(ExitCode::SUCCESS)
}

async fn seed(db: &Db, keys: Option<&crate::config::SecretKeys>, force: bool) -> anyhow::Result<ExitCode> {
    let mut client = db.client().await?;
    if !crate::migrate::pending_ids(&client).await?.is_empty() {
        anyhow::bail!("the database has pending migrations: run `devx migrate up` first");
    }
    if !force && !seed::is_empty(&client).await? {
        eprintln!(
            "refusing to seed: the database already has users or projects.\n\
             Sample data is for an empty database; run `devx db seed --force` to add it anyway."
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let tx = client.transaction_as("system:seed").await?;
    let templates = seed::load(&tx).await?;
    tx.commit().await?;
    // The sample services' variables are written as the legacy object (SQL
    // cannot seal); with a key they become sealed rows now, else when
    // `devx serve` first runs with one.
    if keys.is_some() {
        crate::runtime::env::legacy::move_legacy(db, keys, "system:seed")
            .await
            .map_err(|e| anyhow::anyhow!("moving the sample services' environment variables: {e}"))?;
    }
    println!("sample data loaded ({templates} built-in templates added); `devx db stats --exact` shows the rows");
    Ok(ExitCode::SUCCESS)
}

async fn check(config: &Config, target: &tokio_postgres::Config, client: &PgClient) -> anyhow::Result<ExitCode> {
    let mut problems = 0usize;
    let pending = crate::migrate::pending_ids(client).await?;
    if !pending.is_empty() {
        problems += pending.len();
        println!("pending migrations ({}): {}\n  fix: devx migrate up", pending.len(), pending.join(", "));
    }
    match expected_schema(config, target).await {
        Ok(expected) => {
            let actual = introspect::schema_snapshot(client).await?;
            let differences = introspect::diff_schemas(&expected, &actual);
            problems += differences.len();
            for d in &differences {
                println!("{d}");
            }
            if differences.is_empty() {
                println!("schema matches the migrations ({} objects compared)", expected.len());
            }
        }
        Err(e) => println!("warning: could not build the reference schema, so it was not compared: {e:#}"),
    }
    let findings = introspect::schema_findings(client).await?;
    problems += findings.len();
    for f in &findings {
        println!("{:<28} {}: {}", f.kind, f.object, f.detail);
    }
    if problems == 0 {
        println!("ok: no problems found");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{problems} problem(s) found");
        Ok(ExitCode::from(EXIT_CHECK_FAILED))
    }
}

/// The schema the embedded migrations build, read from a scratch database
/// created on the same server and dropped afterwards (the checked database
/// is never written to).
async fn expected_schema(
    config: &Config,
    target: &tokio_postgres::Config,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    use anyhow::Context;
    let set = crate::migrate::MigrationSet::embedded()?;
    let admin = crate::db::connect_one(&config.database, target).await?;
    let scratch = format!("devx_check_{}", uuid::Uuid::new_v4().simple());
    admin
        .batch_execute(&format!("CREATE DATABASE {scratch} TEMPLATE template0"))
        .await
        .context("the database user may not create a scratch database (CREATEDB) to build the reference schema in")?;
    let result = async {
        let mut scratch_target = target.clone();
        scratch_target.dbname(&scratch);
        // Never the configured migration URL: that is the checked database.
        let mut scratch_config = config.clone();
        scratch_config.database.migration_source = None;
        let mut migrator = crate::migrate::Migrator::connect(&scratch_config, &scratch_target, set).await?.quiet();
        migrator.up(None).await?;
        drop(migrator);
        let mut cfg = config.database.clone();
        (cfg.pool_min, cfg.pool_max) = (1, 1);
        let db = Db::connect(&cfg, &scratch_target).await?;
        let snapshot = introspect::schema_snapshot(&db.client().await?).await?;
        db.close();
        anyhow::Ok(snapshot)
    }
    .await;
    if let Err(e) = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {scratch} WITH (FORCE)")).await {
        tracing::warn!(database = %scratch, error = %e, "could not drop the scratch database; drop it by hand");
    }
    result
}
