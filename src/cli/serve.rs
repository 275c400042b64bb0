//! `devx serve`: migrate (or refuse on pending migrations), load the built-in
//! catalog, then serve the API until SIGINT/SIGTERM, with the retention job
//! running beside it.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::with_database;
use crate::app::{Application, shutdown_signal};
use crate::config::Config;
use crate::db::Db;
use crate::http::AppState;
use crate::{catalog, migrate, retention};

#[derive(Args)]
#[command(
    about = "Run the API server and dashboard on DEVX_ADDR (migrates first)",
    long_about = "Run the API server and dashboard on DEVX_ADDR (default 127.0.0.1:8080).\n\n\
        Applies pending migrations first (DEVX_AUTO_MIGRATE=false makes it refuse to start instead),\n\
        adds missing built-in templates to the catalog, runs the retention job every retention.interval\n\
        (unless retention.enabled is false), and stops gracefully on SIGINT or SIGTERM.",
    after_help = "Examples:\n  devx serve\n  DEVX_ADDR=0.0.0.0:8080 DATABASE_URL=postgres://devx@db/devx devx serve"
)]
pub struct ServeArgs {}

pub async fn run(config: &Config, _args: ServeArgs) -> anyhow::Result<ExitCode> {
    with_database(config, async |database| {
        tracing::info!(database = %crate::config::masked_target(&database.target), origin = %database.origin, "database");
        migrate::prepare_for_serve(config, &database.target).await?;
        let db = Db::connect(&config.database, &database.target)
            .await
            .context("cannot open the connection pool")?;
        match seed_catalog(&db).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(templates = n, "added built-in templates to the catalog"),
            Err(e) => tracing::warn!(error = %e, "could not load the built-in catalog; it is still served as a fallback"),
        }
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("cannot listen on {} (DEVX_ADDR)", config.addr))?;
        let app = Application::build(listener, AppState::new(db.clone(), config.clone()));
        tracing::info!(addr = %app.local_addr()?, version = env!("CARGO_PKG_VERSION"), "devx listening on http://{}", app.local_addr()?);
        let retention = tokio::spawn(retention::job(db.clone()));
        let reaper = tokio::spawn(reap_idle_connections(db, config.database.idle_timeout, config.database.pool_min));
        let result = app.run_until(shutdown_signal()).await;
        retention.abort();
        reaper.abort();
        result?;
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
    .await
}

async fn seed_catalog(db: &Db) -> Result<usize, crate::db::DbError> {
    let mut client = db.client().await?;
    let tx = client.transaction_as("system:catalog-seed").await?;
    let added = catalog::seed_builtin(&tx).await?;
    tx.commit().await?;
    Ok(added)
}

/// deadpool does not close idle connections itself.
async fn reap_idle_connections(db: Db, idle: Duration, keep: usize) {
    let mut tick = tokio::time::interval(idle.min(Duration::from_secs(10)));
    loop {
        tick.tick().await;
        db.reap_idle(idle, keep);
    }
}
