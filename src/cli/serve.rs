//! `devx serve`: bind the address first (a port in use fails at once), wait
//! for the database (`DEVX_DB_WAIT`) while `/livez` answers and `/readyz`
//! says why it is not ready, migrate (or refuse on pending migrations), load
//! the built-in catalog, then serve the API until SIGINT/SIGTERM, with the
//! retention job and the agents' reaper (`agents::reaper`) running beside it,
//! each once per period across every `serve` process on the database
//! (`jobs`), and the per-process tasks: the idle-connection reaper, the
//! optional health check (and the metrics history's sampler, which the
//! application itself starts and stops).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::with_database;
use crate::app::{Application, Opening, shutdown_signal};
use crate::config::{Config, masked_target};
use crate::db::Db;
use crate::embedded::ResolvedDatabase;
use crate::http::AppState;
use crate::{agents, catalog, health, migrate, retention};

#[derive(Args)]
#[command(
    about = "Run the API server and dashboard on DEVX_ADDR (migrates first)",
    long_about = "Run the API server and dashboard on DEVX_ADDR (default 127.0.0.1:8080).\n\n\
        Binds DEVX_ADDR first, so a port in use fails at once. Then waits up to DEVX_DB_WAIT (30s) for a\n\
        database that does not answer yet, retrying with backoff (/livez answers meanwhile; /readyz is 503\n\
        and says why). Applies pending migrations (DEVX_AUTO_MIGRATE=false makes it refuse to start\n\
        instead), adds missing built-in templates to the catalog, runs the retention job every\n\
        retention.interval (unless retention.enabled is false) and the reaper of lost task executions every\n\
        agents.reaper_interval_seconds (once per period across every devx serve process on the database:\n\
        the schedule is kept in PostgreSQL, see GET /api/admin/jobs), samples its own request and database statistics every\n\
        DEVX_METRICS_SAMPLE_INTERVAL (10s) for the dashboard, and stops gracefully on SIGINT or SIGTERM.",
    after_help = "Examples:\n  devx serve\n  DEVX_ADDR=0.0.0.0:8080 DATABASE_URL=postgres://devx@db/devx devx serve\n  \
        DEVX_DB_WAIT=2m devx serve   # in docker-compose or Kubernetes, next to a database still starting"
)]
pub struct ServeArgs {}

pub async fn run(config: &Config, _args: ServeArgs) -> anyhow::Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("cannot listen on {} (DEVX_ADDR)", config.addr))?;
    let (app, opening) = Application::starting(listener, config, "looking for the database");
    let addr = app.local_addr()?;
    tracing::info!(
        %addr,
        version = env!("CARGO_PKG_VERSION"),
        worker_threads = config.worker_threads(),
        "devx listening on http://{addr}; starting"
    );

    // One stop request for the start-up and the server alike.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let server = tokio::spawn(app.run_until(stopped()));

    with_database(config, async |database| {
        let db = tokio::select! {
            db = start(config, database, &opening) => match db {
                Ok(db) => db,
                Err(e) => {
                    server.abort();
                    return Err(e);
                }
            },
            () = stopped() => {
                tracing::info!("stopped before the database was ready");
                let _ = server.await;
                return Ok(ExitCode::SUCCESS);
            }
        };
        let state = AppState::new(db.clone(), config.clone());
        opening.open(state.clone());
        tracing::info!(%addr, "devx ready on http://{addr}");
        let retention = tokio::spawn(retention::job(db.clone()));
        let agents_reaper = tokio::spawn(agents::reaper::job(db.clone()));
        let database = &config.database;
        let reaper =
            tokio::spawn(reap_idle_connections(db, database.idle_timeout, database.pool_min, database.reap_interval));
        let checker =
            config.database.health_check_interval.map(|every| tokio::spawn(health::periodic_check(state, every)));
        let result = server.await;
        retention.abort();
        agents_reaper.abort();
        reaper.abort();
        if let Some(checker) = checker {
            checker.abort();
        }
        result.context("the server task failed")??;
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
    .await
}

/// Everything between binding and serving: wait for the database, migrate,
/// open the pool, load the catalog.
async fn start(config: &Config, database: &ResolvedDatabase, opening: &Opening) -> anyhow::Result<Db> {
    tracing::info!(database = %masked_target(&database.target), origin = %database.origin, "database");
    wait_for_database(config, database, opening).await?;
    opening.waiting_for("applying migrations");
    migrate::prepare_for_serve(config, &database.target).await?;
    opening.waiting_for("opening the connection pool");
    let db = Db::connect(&config.database, &database.target).await.context("cannot open the connection pool")?;
    // The legacy plaintext service variables become sealed rows (SQL
    // cannot seal); without a key they wait, still readable where they are.
    match crate::runtime::env::legacy::move_legacy(&db, config.secret_keys.as_ref(), crate::runtime::env::legacy::ACTOR)
        .await
    {
        Ok(m) if m.moved > 0 || m.left > 0 => {
            tracing::info!(moved = m.moved, left = m.left, "moved legacy service environment variables into env_vars");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "legacy service environment variables were not moved into env_vars"),
    }
    match seed_catalog(&db).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(templates = n, "added built-in templates to the catalog"),
        Err(e) => tracing::warn!(error = %e, "could not load the built-in catalog; it is still served as a fallback"),
    }
    Ok(db)
}

/// Waits until the database (and the migration URL, when set) lets devx in:
/// retries, with backoff, while no server answers, for up to
/// `DEVX_DB_WAIT`, logging each try and why it failed. A server that answers
/// and refuses (password, role, database, TLS) fails at once: waiting
/// would not change its answer.
async fn wait_for_database(config: &Config, database: &ResolvedDatabase, opening: &Opening) -> anyhow::Result<()> {
    let wait = config.database.start_wait;
    let deadline = tokio::time::Instant::now() + wait;
    let mut targets =
        vec![(&database.target, config.database.statement_mode == crate::config::StatementMode::Prepared)];
    if let Some(migration) = config.database.migration_source.as_deref() {
        targets.push((migration, true));
    }
    for (target, direct) in targets {
        let shown = masked_target(target);
        let mut delay = Duration::from_millis(250);
        let mut attempt = 1u32;
        loop {
            let Err(failure) = crate::db::try_connect(&config.database, target, direct).await else {
                if attempt > 1 {
                    tracing::info!(database = %shown, attempt, "the database answers");
                }
                break;
            };
            let now = tokio::time::Instant::now();
            if !failure.unreachable || now >= deadline {
                let waited = if attempt > 1 {
                    format!(
                        " (after {attempt} tries in {}; raise DEVX_DB_WAIT to wait longer)",
                        humantime::format_duration(wait)
                    )
                } else {
                    String::new()
                };
                anyhow::bail!("cannot connect to {shown}{waited}: {}", failure.reason);
            }
            let pause = delay.min(deadline - now);
            tracing::warn!(
                database = %shown,
                attempt,
                retry_in = %humantime::format_duration(round_to_ms(pause)),
                reason = %failure.reason,
                "the database does not answer yet; waiting (DEVX_DB_WAIT)"
            );
            opening.waiting_for(format!("waiting for the database (attempt {attempt}): {}", failure.reason));
            tokio::time::sleep(pause).await;
            delay = (delay * 2).min(Duration::from_secs(5));
            attempt += 1;
        }
    }
    Ok(())
}

fn round_to_ms(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

async fn seed_catalog(db: &Db) -> Result<usize, crate::db::DbError> {
    let mut client = db.client().await?;
    let tx = client.transaction_as("system:catalog-seed").await?;
    let added = catalog::seed_builtin(&tx).await?;
    tx.commit().await?;
    Ok(added)
}

/// deadpool does not close idle connections itself: every
/// `DB_REAP_INTERVAL`, those idle past `DB_IDLE_TIMEOUT` (above
/// `DB_POOL_MIN`) are closed. Per process by nature (this process's pool),
/// unlike the shared periodic jobs of `jobs`.
async fn reap_idle_connections(db: Db, idle: Duration, keep: usize, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        db.reap_idle(idle, keep);
    }
}
