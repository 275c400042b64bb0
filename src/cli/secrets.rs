//! `devx secrets rotate` and `devx secrets check`: re-seal every stored
//! secret under the first key of `DEVX_SECRET_KEY`, or say which ones the
//! configured keys cannot open.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::{EXIT_CHECK_FAILED, usage, with_database};
use crate::config::Config;
use crate::db::Db;
use crate::runtime::secrets::{self, CheckReport, RotationReport};

/// Most rows one batch may take.
pub const MAX_BATCH_SIZE: i64 = 10_000;

#[derive(Args)]
#[command(
    about = "Rotate and check the keys that seal stored secrets (DEVX_SECRET_KEY)",
    after_help = "Rotating to a new key:\n  \
        1. DEVX_SECRET_KEY=new:$(openssl rand -base64 32),old:<the old key>   (restart devx: new values use `new`)\n  \
        2. devx secrets rotate\n  \
        3. devx secrets check\n  \
        4. DEVX_SECRET_KEY=new:<the new key>   (drop the old key)\n\n\
        A bare key (no id) is the key with id `default`."
)]
pub struct SecretsArgs {
    #[command(subcommand)]
    command: SecretsCommand,
}

#[derive(Subcommand)]
enum SecretsCommand {
    /// Re-seal every stored secret that is not sealed under the first key of
    /// DEVX_SECRET_KEY, in batches (each its own short transaction, audited
    /// as system:secrets), and print how many per column. A value that no
    /// configured key opens is left alone and reported; then it exits 1.
    #[command(after_help = "Example:\n  DEVX_SECRET_KEY=new:<key>,old:<key> devx secrets rotate")]
    Rotate {
        /// Rows per batch.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(i64).range(1..=MAX_BATCH_SIZE))]
        batch_size: i64,
    },
    /// Open every stored secret with the configured keys and print, per
    /// column, how many open under each key id and which are sealed under a
    /// key that is no longer configured (or that does not open them); exits
    /// 3 if there are any. Changes nothing.
    #[command(after_help = "Example:\n  devx secrets check")]
    Check {
        /// Rows per batch.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(i64).range(1..=MAX_BATCH_SIZE))]
        batch_size: i64,
    },
}

pub async fn run(config: &Config, args: SecretsArgs) -> anyhow::Result<ExitCode> {
    let Some(keys) = config.secret_keys.clone() else {
        return Err(usage(secrets::MISSING_KEY));
    };
    with_database(config, async |database| {
        let db = Db::connect(&config.database, &database.target).await.context("cannot connect to the database")?;
        {
            let client = db.client().await?;
            if !crate::migrate::pending_ids(&client).await?.is_empty() {
                anyhow::bail!("the database has pending migrations: run `devx migrate up` first");
            }
        }
        let outcome = match args.command {
            SecretsCommand::Rotate { batch_size } => {
                let moved =
                    crate::runtime::env::legacy::move_legacy(&db, Some(&keys), crate::runtime::env::legacy::ACTOR)
                        .await
                        .map_err(|e| anyhow::anyhow!("moving legacy service environment variables: {e}"))?;
                if moved.moved > 0 {
                    println!("services.environment_vars: moved {} into env_vars (sealed)", moved.moved);
                }
                secrets::rotate(&db, &keys, batch_size).await.map(|report| {
                    print!("{}", render_rotation(&report));
                    if report.unreadable() > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
                })
            }
            SecretsCommand::Check { batch_size } => secrets::check(&db, &keys, batch_size).await.map(|report| {
                print!("{}", render_check(&report));
                if report.problems() > 0 { ExitCode::from(EXIT_CHECK_FAILED) } else { ExitCode::SUCCESS }
            }),
        };
        db.close();
        Ok(outcome?)
    })
    .await
}

fn by_key(counts: &std::collections::BTreeMap<String, u64>) -> String {
    counts.iter().map(|(id, n)| format!("{n} under {id:?}")).collect::<Vec<_>>().join(", ")
}

/// One line per column, then the totals.
pub fn render_rotation(report: &RotationReport) -> String {
    let mut out = String::new();
    for c in &report.columns {
        let mut line = format!("{}.{}: re-sealed {} under {:?}", c.table, c.column, c.resealed, report.key_id);
        if !c.unreadable.is_empty() {
            line.push_str(&format!("; left alone, no configured key opens them: {}", by_key(&c.unreadable)));
        }
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(&format!("total: re-sealed {}, unreadable {}\n", report.resealed(), report.unreadable()));
    if report.unreadable() > 0 {
        out.push_str("add the missing keys to DEVX_SECRET_KEY (as `id:key` after the first) and run it again\n");
    }
    out
}

/// One line per column, then the totals.
pub fn render_check(report: &CheckReport) -> String {
    let mut out = String::new();
    for c in &report.columns {
        let opened: u64 = c.opened.values().sum();
        let mut line = format!("{}.{}: {opened} open", c.table, c.column);
        if !c.opened.is_empty() {
            line.push_str(&format!(" ({})", by_key(&c.opened)));
        }
        if !c.not_configured.is_empty() {
            line.push_str(&format!("; sealed under a key no longer configured: {}", by_key(&c.not_configured)));
        }
        if !c.undecryptable.is_empty() {
            line.push_str(&format!("; not opened by the key with their id: {}", by_key(&c.undecryptable)));
        }
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(&format!("total: {} open, {} cannot be read\n", report.opened(), report.problems()));
    out
}
