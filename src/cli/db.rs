//! `devx db ...`: health, statistics, schema check and sample data.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{EXIT_CHECK_FAILED, with_database};
use crate::config::{Config, masked_target};
use crate::db::Db;
use crate::db::introspect::{self, human_bytes};

#[derive(Args)]
#[command(about = "Check and inspect the database")]
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
    /// Row counts and sizes of every devx table, largest first.
    #[command(after_help = "Examples:\n  devx db stats\n  devx db stats --exact")]
    Stats {
        /// Count rows exactly (reads every table) instead of using PostgreSQL's estimate.
        #[arg(long)]
        exact: bool,
    },
}

pub async fn run(config: &Config, args: DbArgs) -> anyhow::Result<ExitCode> {
    with_database(config, async |database| {
        let target = masked_target(&database.target);
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
        }
        drop(client);
        db.close();
        Ok(ExitCode::SUCCESS)
    })
    .await
}
