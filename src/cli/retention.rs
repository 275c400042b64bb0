//! `devx retention run [--dry-run]`: delete what has outlived its retention
//! period, now, and print what was removed per table.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::with_database;
use crate::config::Config;
use crate::db::Db;
use crate::retention::{self, RetentionError, RetentionReport, RunOptions};

#[derive(Args)]
#[command(
    about = "Delete data older than its retention period",
    after_help = "Examples:\n  devx retention run --dry-run\n  devx retention run"
)]
pub struct RetentionArgs {
    #[command(subcommand)]
    command: RetentionCommand,
}

#[derive(Subcommand)]
enum RetentionCommand {
    /// Delete, in bounded batches, the chat messages, deleted file records,
    /// stopped containers, execution log lines, closed accounts and audit
    /// rows older than their periods (the retention.* settings, e.g.
    /// `retention.chat_messages` = "6 months"), and print what went per
    /// table. The time-partitioned history tables first get their
    /// partitions ahead, then lose whole expired partitions (detached and
    /// dropped, named in the output) before the batched deletion. `devx serve` does the same every `retention.interval` unless
    /// `retention.enabled` is false. Exits 1 if a table could not be finished.
    #[command(after_help = "Examples:\n  devx retention run --dry-run\n  devx retention run\n  \
        devx retention run --batch-size 500")]
    Run {
        /// Count what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Rows per batch (each batch is one short transaction); default: the
        /// retention.batch_size setting.
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..=retention::MAX_BATCH_SIZE))]
        batch_size: Option<i64>,
    },
}

pub async fn run(config: &Config, args: RetentionArgs) -> anyhow::Result<ExitCode> {
    let RetentionCommand::Run { dry_run, batch_size } = args.command;
    with_database(config, async |database| {
        let db = Db::connect(&config.database, &database.target).await.context("cannot connect to the database")?;
        {
            let client = db.client().await?;
            if !crate::migrate::pending_ids(&client).await?.is_empty() {
                anyhow::bail!("the database has pending migrations: run `devx migrate up` first");
            }
        }
        let outcome = retention::run(&db, &RunOptions { dry_run, batch_size }).await;
        db.close();
        match outcome {
            Ok(report) => {
                print!("{}", render(&report));
                Ok(if report.failed() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
            }
            Err(RetentionError::Busy) => {
                eprintln!("{}", RetentionError::Busy);
                Ok(ExitCode::SUCCESS)
            }
            Err(RetentionError::Db(e)) => Err(e.into()),
        }
    })
    .await
}

/// The report as printed: one line per table, then the total.
pub fn render(report: &RetentionReport) -> String {
    let verb = if report.dry_run { "would remove" } else { "removed" };
    let mut out = String::new();
    if report.dry_run {
        out.push_str("dry run: nothing is deleted\n");
    } else if report.partitions_created > 0 {
        out.push_str(&format!("created {} ahead\n", plural(u64::from(report.partitions_created), "partition")));
    }
    if let Some(error) = &report.partitions_error {
        out.push_str(&format!("partitions ahead not created: {error}\n"));
    }
    for t in &report.tables {
        let rows = plural(t.rows, "row");
        let mut line = match t.cutoff {
            Some(cutoff) => format!(
                "{:<16} {verb} {rows} older than {} (before {})",
                t.name,
                t.period,
                cutoff.format("%Y-%m-%d %H:%M:%S UTC")
            ),
            None => format!("{:<16} {verb} {rows}", t.name),
        };
        if !report.dry_run && t.batches > 0 {
            line.push_str(&format!(" in {}", plural(u64::from(t.batches), "batch")));
        }
        if !t.partitions_dropped.is_empty() {
            let verb = if report.dry_run { "would drop" } else { "dropped" };
            line.push_str(&format!(
                "; {verb} {} whole: {}",
                plural(t.partitions_dropped.len() as u64, "partition"),
                t.partitions_dropped.join(", ")
            ));
        }
        if let Some(error) = &t.error {
            line.push_str(&format!("; not finished: {error}"));
        }
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(&format!(
        "total: {verb} {} in {:.1} s (batch size {})\n",
        plural(report.total_rows(), "row"),
        report.duration.as_secs_f64(),
        report.batch_size
    ));
    out
}

fn plural(n: u64, word: &str) -> String {
    match (n, word) {
        (1, _) => format!("1 {word}"),
        (_, "batch") => format!("{n} batches"),
        _ => format!("{n} {word}s"),
    }
}
